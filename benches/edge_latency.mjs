// Added latency of the router over a bare pass-through worker, in the same runtime (workerd via
// Miniflare 4), against the same mock upstream (Perplexity, non-streamed, on loopback).
//
//   node benches/edge_latency.mjs [--requests 1200] [--rounds 6] [--concurrency 16] [--seconds 6]
//
// Both workers are served on real loopback ports and driven by Node's fetch with keep-alive:
// `--requests` sequential requests per side split into `--rounds` interleaved rounds (p50 / p99
// per round, medians reported), then `--concurrency` clients for `--seconds` per side in three
// interleaved slices (requests/s). The machine is shared: expect run-to-run noise of ~1 ms. The router runs the full path: body parsing, identity, the
// routing decision, the upstream adapter with timeouts, answer translation, scoring, metrics.
// Needs `make build` (build/index.js).
import { Miniflare } from "miniflare";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { wranglerVars } from "../tests/node/harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg("requests", 1200);
const C = arg("concurrency", 16);
const SECONDS = arg("seconds", 6);
const ROUNDS = arg("rounds", 6);

// The bare worker: forward the body to Perplexity, return its answer. Nothing else.
const BARE = `
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

const up = await startUpstreams({ perplexityKey: "px" });
const common = { compatibilityDate: "2026-04-01", cf: false, host: "127.0.0.1", port: 0 };
const router = new Miniflare({
  ...common,
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
    LIGHTRAG_INTEGRATION_ENABLED: "true",
    LIGHTRAG_ROLLOUT_PERCENTAGE: "0",
    PERPLEXITY_BASE_URL: up.perplexityUrl,
    LIGHTRAG_BASE_URL: up.lightragUrl,
    PERPLEXITY_API: "px",
  },
});
const bare = new Miniflare({
  ...common,
  modules: true,
  script: BARE,
  bindings: { PERPLEXITY_BASE_URL: up.perplexityUrl, PERPLEXITY_API: "px" },
});
const routerUrl = new URL("/v1/chat/completions", await router.ready).toString();
const bareUrl = new URL("/chat/completions", await bare.ready).toString();

const body = (i) =>
  JSON.stringify({ model: "sonar", user: `bench-user-${i % 500}`, messages: [{ role: "user", content: "What is the role of glutamine in cancer metabolism?" }] });

async function once(url, i) {
  const t0 = performance.now();
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: body(i) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return performance.now() - t0;
}

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function latency(url, n) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await once(url, i));
  return { p50: pct(xs, 0.5), p99: pct(xs, 0.99) };
}

async function throughput(url, seconds) {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: C }, async (_, c) => {
      while (performance.now() < end) {
        await once(url, c * 100000 + n);
        n++;
      }
    }),
  );
  return n / seconds;
}

const median = (xs) => pct(xs, 0.5);

try {
  for (let i = 0; i < 100; i++) {
    await once(bareUrl, i);
    await once(routerUrl, i);
  }
  // Interleaved rounds so machine noise hits both sides alike; medians over rounds.
  const per = Math.max(50, Math.floor(N / ROUNDS));
  const rows = [];
  for (let r = 0; r < ROUNDS; r++) {
    const b = await latency(bareUrl, per);
    const x = await latency(routerUrl, per);
    rows.push({ b, x });
  }
  const tb = [];
  const tx = [];
  for (let r = 0; r < 3; r++) {
    tb.push(await throughput(bareUrl, SECONDS / 3));
    tx.push(await throughput(routerUrl, SECONDS / 3));
  }
  const f = (x) => x.toFixed(2);
  const b50 = median(rows.map((r) => r.b.p50));
  const x50 = median(rows.map((r) => r.x.p50));
  const b99 = median(rows.map((r) => r.b.p99));
  const x99 = median(rows.map((r) => r.x.p99));
  const d50 = median(rows.map((r) => r.x.p50 - r.b.p50));
  const d99 = median(rows.map((r) => r.x.p99 - r.b.p99));
  console.log(`${ROUNDS} interleaved rounds x ${per} sequential requests per side (medians over rounds); throughput: ${C} clients, 3 x ${(SECONDS / 3).toFixed(1)} s per side`);
  console.log(`bare pass-through : p50 ${f(b50)} ms  p99 ${f(b99)} ms  ${median(tb).toFixed(0)} req/s`);
  console.log(`router            : p50 ${f(x50)} ms  p99 ${f(x99)} ms  ${median(tx).toFixed(0)} req/s`);
  console.log(`added by router   : p50 ${f(d50)} ms  p99 ${f(d99)} ms  (target: <= 1 ms at p50)`);
} finally {
  await router.dispose();
  await bare.dispose();
  await up.close();
}
