// Renders the results document of benches/run.mjs as one markdown table (plus its header:
// when, where, which commit), so a run can be pasted into the README or an issue as it is.

const ns = (x) => (x < 1000 ? `${x.toFixed(1)} ns` : `${(x / 1000).toFixed(2)} µs`);
const ms = (x) => `${x.toFixed(2)} ms`;
const ms0 = (x) => `${x.toFixed(0)} ms`;
const rps = (x) => `${x.toFixed(0)} req/s`;
const pct = (x) => `${(100 * x).toFixed(0)} %`;
const kib = (x) => `${(x / 1024).toFixed(1)} KiB`;
const num = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
const int = (x) => x.toLocaleString("en");

/** Median cell and "min–max" cell of a summary in one unit. */
const cells = (s, f) => [f(s.median), `${f(s.min)} – ${f(s.max)}`];

function criterionRows(r) {
  // 100 samples on a shared machine reach far into the tails: the interquartile range says more.
  return r.rows.map((x) => ["native (criterion)", `\`${x.id}\``, ...cells(x.nsPerIter, ns), `${x.nsPerIter.n} samples`, `IQR ${ns(x.nsPerIter.p25)} – ${ns(x.nsPerIter.p75)}`]);
}

function peerRows(r) {
  const runs = `${r.runs} × ${int(r.ids)} ids`;
  const rows = r.rows.map((x) => [
    "wasm vs peers (Node)",
    `${x.name} — ${x.note}`,
    ...cells(x.nsPerCall, ns),
    runs,
    x.peer
      ? `in rollout ${(100 * x.inRolloutShare).toFixed(2)} %`
      : `${x.speedupVsFastestPeer.toFixed(2)}× as fast as ${r.fastestPeer} (fastest peer)${x.name === "ours/route" ? "; target ≥ 3×" : ""}`,
  ]);
  const c = r.cohortCheck;
  rows.push([
    "wasm vs peers (Node)",
    "cohort = unleash-client's at every whole % 1..100 (docs/architecture.md#cohort-hashing)",
    "equal",
    "0 disagreements",
    `${int(c.comparisons)} comparisons`,
    `${int(c.ids)} ids × ${c.percentages} percentages, and all ${int(c.agreeAt25PercentOnAllIds)} ids at ${r.rollout} %`,
  ]);
  return rows;
}

function edgeRows(r) {
  const lat = `${r.rounds} rounds × ${r.requestsPerRound} req`;
  const thr = `${r.slices} × ${r.secondsPerSlice} s`;
  const E = "edge (workerd, Miniflare)";
  return [
    [E, "bare pass-through worker, p50", ...cells(r.bare.p50, ms), lat, ""],
    [E, "router, p50", ...cells(r.router.p50, ms), lat, ""],
    [E, "added by router, p50", ...cells(r.added.p50, ms), lat, "target ≤ 0.25 ms"],
    [E, "bare pass-through worker, p95", ...cells(r.bare.p95, ms), lat, ""],
    [E, "router, p95", ...cells(r.router.p95, ms), lat, ""],
    [E, "added by router, p95", ...cells(r.added.p95, ms), lat, ""],
    [E, `bare, throughput at ${r.concurrency} clients`, ...cells(r.bare.rps, rps), thr, ""],
    [E, `router, throughput at ${r.concurrency} clients`, ...cells(r.router.rps, rps), thr, ""],
    [E, "router / bare requests/s (same slice)", ...cells(r.rpsRatio, pct), thr, "target ≥ 80 %"],
    ...(r.added.cpu
      ? [
          [E, "workerd CPU per request, bare", ...cells(r.bare.cpu, ms), lat, "user + system time of its workerd process"],
          [E, "workerd CPU per request, router", ...cells(r.router.cpu, ms), lat, ""],
          [E, "CPU added by router per request", ...cells(r.added.cpu, ms), lat, ""],
        ]
      : []),
    [E, "streamed: time to first answer text, bare, p50", ...cells(r.bare.ttfb, ms), `${r.rounds} rounds`, ""],
    [E, "streamed: time to first answer text, router, p50", ...cells(r.router.ttfb, ms), `${r.rounds} rounds`, ""],
    [E, "streamed: added to time to first answer text", ...cells(r.added.ttfb, ms), `${r.rounds} rounds`, "target ≤ 0.25 ms"],
  ];
}

// The router against the smallest Rust workers that forward and translate (benches/floor): the
// floor's own excess over bare, and the router's share beyond it, per round.
function floorRows(r) {
  const F = "edge: the Rust floor (workerd)";
  const rounds = `${r.rounds} rounds × ${r.n} req`;
  const rows = [];
  const s = r.summary ?? {};
  if (s["lean-translate"]?.added?.p50) rows.push([F, "floor `lean-translate` (forward + translate, the router's edge glue), added over bare, p50", ...cells(s["lean-translate"].added.p50, ms), rounds, "what any Rust worker doing this job adds"]);
  if (r.own?.p50?.ms) rows.push([F, "router's own share: router − `lean-translate`, p50", ...cells(r.own.p50.ms, ms), rounds, "the decision, breaker, metrics, deadlines, identity, KV state"]);
  if (s["lean-translate-pump"]?.added?.ttfb) rows.push([F, "streamed floor `lean-translate-pump` (the stream read through Rust), added to first text", ...cells(s["lean-translate-pump"].added.ttfb, ms), `${r.rounds} rounds`, ""]);
  if (r.own?.ttfb?.ms) rows.push([F, "router's own streamed share: router − `lean-translate-pump`, first text", ...cells(r.own.ttfb.ms, ms), `${r.rounds} rounds`, ""]);
  return rows;
}

function coldRows(r) {
  const C = "cold start";
  const runs = `${r.runs} runs per side`;
  return [
    [C, "router: start workerd → first answer", ...cells(r.router.firstAnswer, ms0), runs, `of which ready ${ms0(r.router.ready.median)}`],
    [C, "bare: start workerd → first answer", ...cells(r.bare.firstAnswer, ms0), runs, `of which ready ${ms0(r.bare.ready.median)}`],
    [C, "added by router", ...cells(r.added, ms0), runs, "same run, router − bare"],
    ...(r.breakdown ? coldBreakdownRows(r.breakdown, runs) : []),
  ];
}

// Where the added time goes (benches/cold_start.mjs names the sides): medians of per-run
// differences, so a part can come out negative in a noisy run.
function coldBreakdownRows(b, runs) {
  const C = "cold start: where it goes";
  const ms1 = (x) => `${x.toFixed(1)} ms`;
  return [
    [C, "bindings' set-up (Miniflare's KV namespace, the vars)", ...cells(b.bindingsSetup, ms1), runs, "ready: bare + bindings − bare"],
    [C, "wasm compile (the router's wasm loaded, not instantiated)", ...cells(b.wasmCompile, ms1), runs, "ready: + wasm − bare + bindings"],
    [C, "index.js, wasm instantiation, `#[event(start)]`", ...cells(b.instantiateAndStart, ms1), runs, "ready: router − bare + bindings + wasm"],
    [C, "KV's first use (six reads in a plain worker)", ...cells(b.kvFirstUse, ms1), runs, "first request: bare + bindings − bare"],
    [C, "router's own first-request work (no KV bound)", ...cells(b.routerFirstRequestOwn, ms1), runs, "first request: router without KV − bare; mostly V8 compiling the chat path's wasm on its first call"],
    [C, "first KV load and the wait for it", ...cells(b.firstKvLoadAndWait, ms1), runs, "first request: router − router without KV"],
    [C, "the same with every KV operation 10 ms slower", ...cells(b.firstSlowKvLoadAndWait, ms1), runs, "first request; the wait is bounded by STATE_FIRST_LOAD_WAIT_MS (50 ms)"],
  ];
}

const wasmGzip = (b) => b.files.filter((f) => f.file.endsWith(".wasm")).reduce((a, f) => a + f.gzip, 0);

function bundleRows(r) {
  return [
    ["bundle", "worker (build/: every file uploaded), gzip -9", kib(r.worker.gzip), "—", "deterministic", `raw ${kib(r.worker.raw)}; wasm alone ${kib(wasmGzip(r.worker))}; target ≤ 250 KB`],
    ["bundle", "preview (www/pkg: wasm + JS glue), gzip -9", kib(r.preview.gzip), "—", "deterministic", `raw ${kib(r.preview.raw)}; wasm alone ${kib(wasmGzip(r.preview))}; target ≤ 80 KB`],
  ];
}

function kvRows(r) {
  const ops = (o, f) => `reads ${f(o.reads)} · writes ${f(o.writes)} · lists ${f(o.lists)}`;
  const med = (o) => ops({ reads: o.reads.median, writes: o.writes.median, lists: o.lists.median }, num);
  const spread = (o) => ops({ reads: o.reads, writes: o.writes, lists: o.lists }, (s) => `${num(s.min)}–${num(s.max)}`);
  const runs = `${r.runs} run${r.runs === 1 ? "" : "s"} × ${int(r.requests)} req`;
  const rows = [];
  for (const [k, label] of [["default", "refresh/flush from wrangler.toml"], ["paced", "refresh 1 s, flush 10 s"]]) {
    const s = r[k];
    if (!s) continue;
    rows.push(["KV ops / 1,000 requests", `${label}: first ${int(r.requests)} requests after start`, med(s.cold), spread(s.cold), runs, `includes start-up reads; ${s.coldSeconds.median.toFixed(1)} s`]);
    rows.push([
      "KV ops / 1,000 requests",
      `${label}: next ${int(r.requests)} (steady state)`,
      med(s.steady),
      spread(s.steady),
      runs,
      `${s.steadySeconds.median.toFixed(1)} s${s.steadyRate ? ` (paced at ${s.steadyRate} req/s)` : ""}`,
    ]);
  }
  return rows;
}

function pageRows(r) {
  const P = "page (Chromium)";
  const runs = `${r.runs} runs`;
  return [
    [P, `simulate ${int(r.users)} users (Distribution panel, click → drawn)`, ...cells(r.simulate, ms0), runs, `target < 1 s; LightRAG ${(100 * r.lightragShare).toFixed(2)} % at 25 %`],
    [P, `who moves among ${int(r.users)} users (two configs each)`, ...cells(r.compare, ms0), runs, ""],
  ];
}

const RENDER = { criterion: criterionRows, peers: peerRows, edge: edgeRows, floor: floorRows, cold: coldRows, bundle: bundleRows, kv: kvRows, page: pageRows };

export function renderMarkdown(doc) {
  const m = doc.machine;
  const head = [
    `# Benchmark results${doc.quick ? " (BENCH_QUICK smoke run: few ids and runs, not for quoting)" : ""}`,
    "",
    `- date: ${doc.date}; took ${Math.round(doc.seconds)} s`,
    `- commit: ${doc.git.commit ?? "?"} (${doc.git.branch ?? "?"}${doc.git.dirty ? ", uncommitted changes" : ""})`,
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}`,
    `- load average (1/5/15 min): ${m.loadStart.join(" / ")} at start, ${(m.loadEnd ?? []).join(" / ")} at end`,
    `- ${doc.versions.node ? `node ${doc.versions.node}` : ""}; ${doc.versions.rustc ?? "rustc ?"}`,
    "- every figure: median over the runs named, spread = min – max over those runs",
    "",
  ];
  const rows = [];
  for (const [k, render] of Object.entries(RENDER)) {
    const r = doc.results[k];
    if (!r) continue;
    if (r.error) rows.push([k, "**FAILED**", r.error, "", "", ""]);
    else rows.push(...render(r));
  }
  const esc = (c) => String(c).replaceAll("|", "\\|");
  const table = [
    "| section | measurement | median | spread (min – max) | runs | note |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ];
  const fail = doc.failures.length ? ["", `**FAILED:** ${doc.failures.join("; ")}`] : [];
  return `${[...head, ...table, ...fail].join("\n")}\n`;
}
