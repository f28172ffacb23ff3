// Added latency and lost throughput of the router over a bare pass-through worker, in the same
// runtime (workerd via Miniflare 4), against the same mock upstream (Perplexity on loopback,
// non-streamed, and streamed for the time to first answer text). Why a bare worker: absolute latencies on a shared machine mean little; the
// difference to a worker that only forwards is what the router costs (issue 13, item 1).
//
//   make build && node benches/edge_latency.mjs [--rounds 7] [--requests 300] [--slices 5] [--seconds 2] [--concurrency 16] [--json out.json]
//
// Both workers are served on real loopback ports and driven by Node's fetch with keep-alive.
// Latency: `--rounds` rounds of `--requests` sequential requests per side, the sides interleaved
// request by request (ABBA: bare, router, router, bare, …; `latencyPair` says why); each
// round gives p50 / p95 / p99 per side and the router's excess over bare in that round; the
// table shows the median over rounds and the min–max. Throughput: `--concurrency` clients for
// `--seconds` per slice, `--slices` interleaved slices per side (requests/s). Streamed: per
// round, `--requests`/4 (≥ 20) streamed requests per side, interleaved the same way, the time to the first body chunk with
// answer text (p50). CPU: each workerd process's user + system time over a latency round, per
// request (Linux /proc). The router runs
// the full path: body parsing, identity, the routing decision, the upstream adapter with
// timeouts, answer translation, scoring, metrics.
import { Miniflare } from "miniflare";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { compatibilityFlags, wranglerVars } from "../tests/node/harness.mjs";
import { percentile, summarize } from "./lib/stats.mjs";
import { arg, isMain, quick } from "./lib/cli.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// The bare worker: forward the body to Perplexity, return its answer (a stream piped through
// as it comes). Nothing else.
export const BARE = `
export default {
  async fetch(req, env) {
    const body = await req.text();
    const r = await fetch(env.PERPLEXITY_BASE_URL + "/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + env.PERPLEXITY_API },
      body,
    });
    if (body.includes('"stream":true')) {
      return new Response(r.body, { status: r.status, headers: { "content-type": "text/event-stream" } });
    }
    return new Response(await r.text(), { status: r.status, headers: { "content-type": "application/json" } });
  },
};`;

const COMMON = { compatibilityDate: "2026-04-01", compatibilityFlags: compatibilityFlags(), cf: false, host: "127.0.0.1", port: 0 };

/** Miniflare options for the release router bundle (`make build`), all traffic to Perplexity. */
export function routerOptions(up, bindings = {}) {
  return {
    ...COMMON,
    modules: true,
    scriptPath: path.join(ROOT, "build", "index.js"),
    modulesRoot: path.join(ROOT, "build"),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    kvNamespaces: ["ROUTER_STATE"],
    bindings: {
      ...wranglerVars(),
      // As `make dev`: loopback http upstreams and no client token.
      ROUTER_ENV: "development",
      LIGHTRAG_INTEGRATION_ENABLED: "true",
      LIGHTRAG_ROLLOUT_PERCENTAGE: "0",
      PERPLEXITY_BASE_URL: up.perplexityUrl,
      LIGHTRAG_BASE_URL: up.lightragUrl,
      PERPLEXITY_API: "px",
      ...bindings,
    },
  };
}

/** Miniflare options for the bare pass-through worker. */
export function bareOptions(up) {
  return { ...COMMON, modules: true, script: BARE, bindings: { PERPLEXITY_BASE_URL: up.perplexityUrl, PERPLEXITY_API: "px" } };
}

export const chatBody = (i, stream = false) =>
  JSON.stringify({ model: "sonar", user: `bench-user-${i % 500}`, ...(stream ? { stream: true } : {}), messages: [{ role: "user", content: "What is the role of glutamine in cancer metabolism?" }] });

/**
 * One streamed POST: ms from sending to the first body chunk carrying answer text (an SSE frame
 * with a `"content"` field: Perplexity's frame through the bare worker, the router's translated
 * chunk through the router), then the rest read to the end.
 */
export async function firstByte(url, i) {
  const t0 = performance.now();
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: chatBody(i, true) });
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  const dec = new TextDecoder();
  let seen = "";
  let at = NaN;
  for await (const chunk of r.body) {
    if (Number.isNaN(at)) {
      seen += dec.decode(chunk, { stream: true });
      if (/"content":"[^"]/.test(seen)) at = performance.now() - t0;
    }
  }
  if (Number.isNaN(at)) throw new Error(`${url}: no answer text in the stream`);
  return at;
}

/** One POST, body read to the end; ms. Throws unless 200. */
export async function once(url, i) {
  const t0 = performance.now();
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: chatBody(i) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return performance.now() - t0;
}

// CPU time of a workerd process, from /proc (Linux): what a request costs the runtime, which
// scheduling noise on a loaded machine does not inflate the way it inflates wall-clock latency.
// Clock ticks are 10 ms, so a round of a few hundred requests is measured to ~1 %.
const TICK_MS = 10;

/** The workerd processes that are children of this Node process. */
function workerdPids() {
  const out = new Set();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8").trim();
      const [, comm, rest] = stat.match(/^\d+ \((.*)\) (.*)$/) ?? [];
      if (comm === "workerd" && Number(rest.split(" ")[1]) === process.pid) out.add(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** User + system CPU ms of `pid` so far, or NaN off Linux. */
export function cpuMs(pid) {
  try {
    const rest = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
    return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
  } catch {
    return NaN;
  }
}

/** Starts `options` in a new Miniflare and finds its workerd process (null when not found). */
export async function startWithPid(options) {
  const before = workerdPids();
  const mf = new Miniflare(options);
  const url = await mf.ready;
  const pid = [...workerdPids()].find((p) => !before.has(p)) ?? null;
  return { mf, url, pid };
}

/**
 * One latency round: `n` sequential requests per side, the two sides interleaved request by
 * request in an ABBA pattern (bare, router, router, bare, …). Why pairs, not one block per side:
 * on a shared VM the machine's speed drifts within a second, and a block of 300 requests per side
 * (~0.5 s) let that drift land on one side only — two runs of the same builds moved the added p50
 * by ±0.2 ms. Neighbouring requests see the same machine, so the drift cancels in the difference;
 * ABBA balances which side goes first. CPU is read per workerd process, so interleaving does not
 * mix the sides' CPU.
 */
async function latencyPair(urls, n, pids) {
  const c0 = { b: pids.b ? cpuMs(pids.b) : NaN, x: pids.x ? cpuMs(pids.x) : NaN };
  const xs = { b: [], x: [] };
  for (let i = 0; i < n; i++) {
    for (const k of i % 2 === 0 ? ["b", "x"] : ["x", "b"]) xs[k].push(await once(urls[k], i));
  }
  const side = (k) => ({
    p50: percentile(xs[k], 0.5),
    p95: percentile(xs[k], 0.95),
    p99: percentile(xs[k], 0.99),
    cpu: pids[k] ? (cpuMs(pids[k]) - c0[k]) / n : NaN,
  });
  return { b: side("b"), x: side("x") };
}

/** A summary, or null when a figure is missing (no /proc: not Linux). */
const finite = (xs) => (xs.every(Number.isFinite) ? summarize(xs) : null);

/** One streamed round: `n` first-text times per side, interleaved ABBA as in `latencyPair`. */
async function ttfbPair(urls, n) {
  const xs = { b: [], x: [] };
  for (let i = 0; i < n; i++) {
    for (const k of i % 2 === 0 ? ["b", "x"] : ["x", "b"]) xs[k].push(await firstByte(urls[k], i));
  }
  return { b: percentile(xs.b, 0.5), x: percentile(xs.x, 0.5) };
}

async function throughput(url, seconds, clients) {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < end) {
        await once(url, c * 100000 + n);
        n++;
      }
    }),
  );
  return n / seconds;
}

export async function runEdge({ rounds, requests, slices, seconds, concurrency, log = console.error }) {
  const up = await startUpstreams({ perplexityKey: "px" });
  const r0 = await startWithPid(routerOptions(up));
  const b0 = await startWithPid(bareOptions(up));
  const router = r0.mf;
  const bare = b0.mf;
  try {
    const routerUrl = new URL("/v1/chat/completions", r0.url).toString();
    const bareUrl = new URL("/chat/completions", b0.url).toString();
    for (let i = 0; i < 100; i++) {
      await once(bareUrl, i);
      await once(routerUrl, i);
    }
    const urls = { b: bareUrl, x: routerUrl };
    const pids = { b: b0.pid, x: r0.pid };
    // Rounds of requests interleaved pair by pair (`latencyPair` says why).
    const rows = [];
    for (let r = 0; r < rounds; r++) {
      const { b, x } = await latencyPair(urls, requests, pids);
      rows.push({ b, x });
      log(`edge: latency round ${r + 1}/${rounds}: bare p50 ${b.p50.toFixed(2)} ms, router p50 ${x.p50.toFixed(2)} ms; workerd CPU per request: bare ${b.cpu.toFixed(3)} ms, router ${x.cpu.toFixed(3)} ms`);
    }
    // Streamed: time to the first answer text, interleaved the same way.
    const fb = [];
    for (let r = 0; r < rounds; r++) {
      const pair = await ttfbPair(urls, Math.max(20, Math.floor(requests / 4)));
      fb.push(pair);
      log(`edge: streamed round ${r + 1}/${rounds}: time to first answer text p50 bare ${pair.b.toFixed(2)} ms, router ${pair.x.toFixed(2)} ms`);
    }
    const tb = [];
    const tx = [];
    for (let s = 0; s < slices; s++) {
      if (s % 2 === 0) {
        tb.push(await throughput(bareUrl, seconds, concurrency));
        tx.push(await throughput(routerUrl, seconds, concurrency));
      } else {
        tx.push(await throughput(routerUrl, seconds, concurrency));
        tb.push(await throughput(bareUrl, seconds, concurrency));
      }
      log(`edge: throughput slice ${s + 1}/${slices}: bare ${tb.at(-1).toFixed(0)} req/s, router ${tx.at(-1).toFixed(0)} req/s`);
    }
    const side = (k) => ({
      p50: summarize(rows.map((r) => r[k].p50)),
      p95: summarize(rows.map((r) => r[k].p95)),
      p99: summarize(rows.map((r) => r[k].p99)),
      cpu: finite(rows.map((r) => r[k].cpu)),
    });
    return {
      rounds,
      requestsPerRound: requests,
      slices,
      secondsPerSlice: seconds,
      concurrency,
      bare: { ...side("b"), rps: summarize(tb), ttfb: summarize(fb.map((p) => p.b)) },
      router: { ...side("x"), rps: summarize(tx), ttfb: summarize(fb.map((p) => p.x)) },
      added: {
        p50: summarize(rows.map((r) => r.x.p50 - r.b.p50)),
        p95: summarize(rows.map((r) => r.x.p95 - r.b.p95)),
        // workerd CPU ms per request, router minus bare in the same round.
        cpu: finite(rows.map((r) => r.x.cpu - r.b.cpu)),
        // Streamed: time to the first answer text, router minus bare in the same round.
        ttfb: summarize(fb.map((p) => p.x - p.b)),
      },
      // Per slice pair: the router's requests/s as a share of bare's in the same slice.
      rpsRatio: summarize(tx.map((x, i) => x / tb[i])),
    };
  } finally {
    await router.dispose();
    await bare.dispose();
    await up.close();
  }
}

if (isMain(import.meta.url)) {
  const r = await runEdge({
    rounds: Number(arg("rounds", quick ? 3 : 7)),
    requests: Number(arg("requests", quick ? 60 : 300)),
    slices: Number(arg("slices", quick ? 3 : 5)),
    seconds: Number(arg("seconds", quick ? 0.5 : 2)),
    concurrency: Number(arg("concurrency", 16)),
  });
  const out = arg("json", undefined);
  if (out) writeFileSync(out, JSON.stringify(r, null, 2));
  const f = (s) => `${s.median.toFixed(2)} ms (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
  console.log(`${r.rounds} rounds x ${r.requestsPerRound} sequential requests per side; throughput ${r.concurrency} clients, ${r.slices} x ${r.secondsPerSlice} s per side`);
  console.log(`bare   : p50 ${f(r.bare.p50)}  p95 ${f(r.bare.p95)}  ${r.bare.rps.median.toFixed(0)} req/s`);
  console.log(`router : p50 ${f(r.router.p50)}  p95 ${f(r.router.p95)}  ${r.router.rps.median.toFixed(0)} req/s`);
  console.log(`added  : p50 ${f(r.added.p50)}  p95 ${f(r.added.p95)}  router/bare req/s ${(100 * r.rpsRatio.median).toFixed(0)} %`);
  if (r.added.cpu) console.log(`workerd CPU per request: bare ${f(r.bare.cpu)}, router ${f(r.router.cpu)}, added ${f(r.added.cpu)}`);
  console.log(`streamed, time to first answer text p50: bare ${f(r.bare.ttfb)}, router ${f(r.router.ttfb)}, added ${f(r.added.ttfb)}`);
}
