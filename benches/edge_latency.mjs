// Added latency and lost throughput of the router over a bare pass-through worker, in the same
// runtime (workerd via Miniflare 4), against the same mock upstream (Perplexity, non-streamed,
// on loopback). Why a bare worker: absolute latencies on a shared machine mean little; the
// difference to a worker that only forwards is what the router costs (issue 13, item 1).
//
//   make build && node benches/edge_latency.mjs [--rounds 7] [--requests 300] [--slices 5] [--seconds 2] [--concurrency 16] [--json out.json]
//
// Both workers are served on real loopback ports and driven by Node's fetch with keep-alive.
// Latency: `--rounds` interleaved rounds of `--requests` sequential requests per side; each
// round gives p50 / p95 / p99 per side and the router's excess over bare in that round; the
// table shows the median over rounds and the min–max. Throughput: `--concurrency` clients for
// `--seconds` per slice, `--slices` interleaved slices per side (requests/s). The router runs
// the full path: body parsing, identity, the routing decision, the upstream adapter with
// timeouts, answer translation, scoring, metrics.
import { Miniflare } from "miniflare";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { compatibilityFlags, wranglerVars } from "../tests/node/harness.mjs";
import { percentile, summarize } from "./lib/stats.mjs";
import { arg, isMain, quick } from "./lib/cli.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// The bare worker: forward the body to Perplexity, return its answer. Nothing else.
export const BARE = `
export default {
  async fetch(req, env) {
    const body = await req.text();
    const r = await fetch(env.PERPLEXITY_BASE_URL + "/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + env.PERPLEXITY_API },
      body,
    });
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

export const chatBody = (i) =>
  JSON.stringify({ model: "sonar", user: `bench-user-${i % 500}`, messages: [{ role: "user", content: "What is the role of glutamine in cancer metabolism?" }] });

/** One POST, body read to the end; ms. Throws unless 200. */
export async function once(url, i) {
  const t0 = performance.now();
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: chatBody(i) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return performance.now() - t0;
}

async function latency(url, n) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await once(url, i));
  return { p50: percentile(xs, 0.5), p95: percentile(xs, 0.95), p99: percentile(xs, 0.99) };
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
  const router = new Miniflare(routerOptions(up));
  const bare = new Miniflare(bareOptions(up));
  try {
    const routerUrl = new URL("/v1/chat/completions", await router.ready).toString();
    const bareUrl = new URL("/chat/completions", await bare.ready).toString();
    for (let i = 0; i < 100; i++) {
      await once(bareUrl, i);
      await once(routerUrl, i);
    }
    // Interleaved rounds (alternating which side goes first) so machine noise hits both alike.
    const rows = [];
    for (let r = 0; r < rounds; r++) {
      let b;
      let x;
      if (r % 2 === 0) {
        b = await latency(bareUrl, requests);
        x = await latency(routerUrl, requests);
      } else {
        x = await latency(routerUrl, requests);
        b = await latency(bareUrl, requests);
      }
      rows.push({ b, x });
      log(`edge: latency round ${r + 1}/${rounds}: bare p50 ${b.p50.toFixed(2)} ms, router p50 ${x.p50.toFixed(2)} ms`);
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
    });
    return {
      rounds,
      requestsPerRound: requests,
      slices,
      secondsPerSlice: seconds,
      concurrency,
      bare: { ...side("b"), rps: summarize(tb) },
      router: { ...side("x"), rps: summarize(tx) },
      added: {
        p50: summarize(rows.map((r) => r.x.p50 - r.b.p50)),
        p95: summarize(rows.map((r) => r.x.p95 - r.b.p95)),
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
}
