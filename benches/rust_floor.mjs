// The Rust/wasm floor: what the simplest Rust worker adds over the bare JavaScript worker
// (edge_latency.mjs `BARE`) before routing anything, next to what the router adds, in one run.
// Why: issue 13 asks the router to add ≤ 0.25 ms at p50 over that bare worker; part of what it
// adds is paid by any workers-rs worker (wasm-bindgen's glue, the fetch event, the
// Request/Response wrappers, the body copied into wasm and back), and only the rest is the
// router's own (docs/performance.md, "Eighth round: the Rust floor").
//
//   bash benches/floor/build.sh && make build && node benches/rust_floor.mjs [router build dir]
//   ROUNDS=8 N=400 (defaults; BENCH_QUICK=1: 1 × 20); STREAM=0 leaves the streamed rounds out;
//   FLOOR=pass,lean picks the floor variants (default: every one built in benches/floor/build/);
//   JSON=<file> or `--json <file>` also writes every round's figures there, with the summaries
//   (tests/bench/rust_floor.test.mjs reads it; `make bench` runs it as its `floor` section)
//
// The router's own share: router − `lean-translate` (non-streamed p50) and router −
// `lean-translate-pump` (streamed, time to the first text), per round, when those sides run:
// what the router costs beyond the floor any Rust worker that forwards and translates (and, for
// streams, reads them) pays (docs/performance.md, "Eighth round: where the missed targets stand").
//
// Sides: bare, each floor variant (benches/floor/src/lib.rs says what each does; `bare-pump`
// and `bare-transform`, below, are JS), and the router
// (build/, or the directory given), each its own workerd process against the same mock
// Perplexity. Each round takes N sequential non-streamed requests per side, the sides taking
// turns request by request, the order rotating every request (edge_ab.mjs says why), then N/4
// streamed ones the same way. Per side and round: p50 latency, the streamed time to the first
// answer text (p50), and workerd CPU per request (the process's user + system time over the
// round, 10 ms ticks). "added" is the side minus bare in the same round; the table gives the
// median over rounds and the min–max.
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { BARE, routerOptions, bareOptions, once, firstByte, cpuMs, startWithPid } from "./edge_latency.mjs";
import { percentile, summarize } from "./lib/stats.mjs";
import { arg, quick } from "./lib/cli.mjs";
import { takeTurns } from "./lib/turns.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FLOOR_BUILD = path.join(ROOT, "benches", "floor", "build");
const ORDER = ["shim", "pass", "lean", "sync", "translate", "lean-translate", "sync-translate", "bare-pump", "bare-transform", "lean-pump", "lean-translate-pump"];

// `BARE` with its streamed answer read in JS and written into a native IdentityTransformStream
// (as the router's upstream_io.js `pipe` does, without Rust): what reading the stream costs any
// worker that does not hand it on untouched. Not a wasm build: always available.
const BARE_PUMP = BARE.replace(
  "return new Response(r.body,",
  `const { readable, writable } = new IdentityTransformStream();
      ctx.waitUntil((async (w, reader) => {
        try {
          for (;;) {
            const x = await reader.read();
            if (x.done) break;
            await w.write(x.value);
          }
          await w.close();
        } catch {}
      })(writable.getWriter(), r.body.getReader()));
      return new Response(readable,`,
).replace("async fetch(req, env)", "async fetch(req, env, ctx)");
if (!BARE_PUMP.includes("IdentityTransformStream") || !BARE_PUMP.includes("env, ctx")) throw new Error("BARE changed: rust_floor.mjs BARE_PUMP needs updating");

// `BARE` with its streamed answer piped through a JS `TransformStream` (`pipeThrough`, each chunk
// handed to a `transform` callback and enqueued as it is): the runtime's own pipe with a JS hook
// per chunk, the other way a router can see every chunk. Set against `bare-pump` to tell whether
// the pump's read/write loop or the hook itself is what reading the stream costs.
const BARE_TRANSFORM = BARE.replace(
  "return new Response(r.body,",
  `const readable = r.body.pipeThrough(new TransformStream({ transform(c, ctl) { ctl.enqueue(c); } }));
      return new Response(readable,`,
);
if (!BARE_TRANSFORM.includes("pipeThrough")) throw new Error("BARE changed: rust_floor.mjs BARE_TRANSFORM needs updating");

// The router's build: the first argument that is not an option or an option's value.
const positional = process.argv.slice(2).find((a, i, xs) => !a.startsWith("--") && xs[i - 1] !== "--json");
const routerDir = path.resolve(positional ?? path.join(ROOT, "build"));
if (!existsSync(path.join(routerDir, "index.js"))) throw new Error(`no router build in ${routerDir}: run make build`);
const rounds = Number(process.env.ROUNDS ?? (quick ? 1 : 8));
const n = Number(process.env.N ?? (quick ? 20 : 400));
const jsonOut = arg("json", process.env.JSON);
const streamed = process.env.STREAM !== "0";
const built = ["bare-pump", "bare-transform", ...(existsSync(FLOOR_BUILD) ? readdirSync(FLOOR_BUILD).filter((v) => existsSync(path.join(FLOOR_BUILD, v, "index.js"))) : [])];
const variants = process.env.FLOOR ? process.env.FLOOR.split(",") : ORDER.filter((v) => built.includes(v));
for (const v of variants) {
  if (!built.includes(v)) throw new Error(`no benches/floor/build/${v}/index.js: run bash benches/floor/build.sh ${v}`);
}
if (variants.length === 0) throw new Error("no floor variant built: run bash benches/floor/build.sh");

/** Miniflare options for a floor variant: the bare worker's two bindings, nothing else. */
function floorOptions(up, v) {
  if (v === "bare-pump") return { ...bareOptions(up), script: BARE_PUMP };
  if (v === "bare-transform") return { ...bareOptions(up), script: BARE_TRANSFORM };
  const dir = path.join(FLOOR_BUILD, v);
  const { bindings, ...common } = bareOptions(up);
  delete common.script;
  return {
    ...common,
    scriptPath: path.join(dir, "index.js"),
    modulesRoot: dir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    bindings,
  };
}

const up = await startUpstreams({ perplexityKey: "px" });
const sides = { bare: await startWithPid(bareOptions(up)) };
for (const v of variants) sides[v] = await startWithPid(floorOptions(up, v));
sides.router = await startWithPid({ ...routerOptions(up), scriptPath: path.join(routerDir, "index.js"), modulesRoot: routerDir });
const keys = Object.keys(sides);
const url = (k) => new URL(k === "router" ? "/v1/chat/completions" : "/chat/completions", sides[k].url).toString();

// Each side answers with the mock's text, both ways (a floor that answered 500 would be fast).
for (const k of keys) {
  const r = await fetch(url(k), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "sonar", messages: [{ role: "user", content: "What is glutamine?" }] }) });
  const text = await r.text();
  if (r.status !== 200 || !/"content":"[^"]/.test(text)) throw new Error(`${k}: HTTP ${r.status} ${text.slice(0, 300)}`);
  await firstByte(url(k), 0);
}
for (const k of keys) for (let i = 0; i < 200; i++) await once(url(k), i);

const series = () => Object.fromEntries(keys.map((k) => [k, []]));
const p50 = series();
const cpu = series();
const ttfb = series();
const cpuStream = series();
// The sides take turns request by request (benches/lib/turns.mjs says why).
const turns = { keys, url, cpuOf: (k) => cpuMs(sides[k].pid), p50Of: (xs) => percentile(xs, 0.5) };
const round = (m, call, cpuOut, p50Out) => takeTurns(turns, m, call, cpuOut, p50Out);
for (let r = 0; r < rounds; r++) {
  await round(n, once, cpu, p50);
  if (streamed) await round(Math.max(20, n >> 2), firstByte, cpuStream, ttfb);
  const last = (s, k) => s[k].at(-1).toFixed(3);
  console.error(`rust_floor: round ${r + 1}/${rounds}: p50 ${keys.map((k) => `${k} ${last(p50, k)}`).join(", ")}${streamed ? `; first text ${keys.map((k) => `${k} ${last(ttfb, k)}`).join(", ")}` : ""}`);
}
for (const s of Object.values(sides)) await s.mf.dispose();
await up.close();

// The table: per side the median over rounds, and its excess over bare (median, min–max of the
// per-round differences).
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : "–");
const cell = (xs) => {
  if (!xs.length || !xs.every(Number.isFinite)) return "–";
  const s = summarize(xs);
  return `${f3(s.median)} (${f3(s.min)} – ${f3(s.max)})`;
};
const med = (xs) => (xs.length && xs.every(Number.isFinite) ? summarize(xs).median : NaN);
const diff = (s, a, b) => s[a].map((x, i) => x - s[b][i]);
const minus = (s, k) => diff(s, k, "bare");
const head = ["side", "p50", "added p50", "CPU/req", "added CPU"];
if (streamed) head.push("first text p50", "added first text", "streamed CPU/req", "added streamed CPU");
const rows = keys.map((k) => {
  const row = [k, f3(med(p50[k])), k === "bare" ? "" : cell(minus(p50, k)), f3(med(cpu[k])), k === "bare" ? "" : cell(minus(cpu, k))];
  if (streamed) row.push(f3(med(ttfb[k])), k === "bare" ? "" : cell(minus(ttfb, k)), f3(med(cpuStream[k])), k === "bare" ? "" : cell(minus(cpuStream, k)));
  return row;
});
console.log(`${rounds} rounds × ${n} non-streamed${streamed ? ` + ${Math.max(20, n >> 2)} streamed` : ""} requests per side, turns request by request; ms, median over rounds (added: min – max over rounds); router: ${routerDir}`);
console.log(`| ${head.join(" | ")} |`);
console.log(`|${head.map(() => "---").join("|")}|`);
for (const r of rows) console.log(`| ${r.join(" | ")} |`);

// Summaries for `make bench` (benches/lib/table.mjs): per side the median over rounds and its
// excess over bare; and the router's own share over the translating floors, where they ran.
const sum = (xs) => (xs.length && xs.every(Number.isFinite) ? summarize(xs) : null);
const summary = Object.fromEntries(
  keys.map((k) => [
    k,
    {
      p50: sum(p50[k]),
      cpu: sum(cpu[k]),
      ttfb: streamed ? sum(ttfb[k]) : null,
      added: k === "bare" ? null : { p50: sum(minus(p50, k)), cpu: sum(minus(cpu, k)), ttfb: streamed ? sum(minus(ttfb, k)) : null },
    },
  ]),
);
const own = {
  p50: keys.includes("lean-translate") ? { floor: "lean-translate", ms: sum(diff(p50, "router", "lean-translate")) } : null,
  ttfb: streamed && keys.includes("lean-translate-pump") ? { floor: "lean-translate-pump", ms: sum(diff(ttfb, "router", "lean-translate-pump")) } : null,
};
if (own.p50) console.log(`router's own share over lean-translate, p50: ${cell(diff(p50, "router", "lean-translate"))} ms`);
if (own.ttfb) console.log(`router's own share over lean-translate-pump, first text: ${cell(diff(ttfb, "router", "lean-translate-pump"))} ms`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ rounds, n, streamed, routerDir, sides: keys, p50, cpu, ttfb, cpuStream, summary, own }, null, 2));
