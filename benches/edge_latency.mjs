// Added latency of the router over a bare pass-through worker, in the same runtime (workerd via
// Miniflare 4), against the same mock upstream (Perplexity, non-streamed, on loopback).
//
//   node benches/edge_latency.mjs [--requests 1000] [--concurrency 16] [--seconds 5]
//
// Both workers are served on real loopback ports and driven by Node's fetch with keep-alive:
// first `--requests` sequential requests each (p50 / p99 latency), then `--concurrency` clients
// for `--seconds` (requests/s). The router runs the full path: body parsing, identity, the
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
const N = arg("requests", 1000);
const C = arg("concurrency", 16);
const SECONDS = arg("seconds", 5);

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

async function latency(url) {
  for (let i = 0; i < 50; i++) await once(url, i); // warm-up
  const xs = [];
  for (let i = 0; i < N; i++) xs.push(await once(url, i));
  return { p50: pct(xs, 0.5), p99: pct(xs, 0.99) };
}

async function throughput(url) {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: C }, async (_, c) => {
      while (performance.now() < end) {
        await once(url, c * 100000 + n);
        n++;
      }
    }),
  );
  return n / SECONDS;
}

try {
  // Interleave to share any machine noise fairly.
  const b1 = await latency(bareUrl);
  const r1 = await latency(routerUrl);
  const b2 = await latency(bareUrl);
  const r2 = await latency(routerUrl);
  const b = { p50: Math.min(b1.p50, b2.p50), p99: Math.min(b1.p99, b2.p99) };
  const r = { p50: Math.min(r1.p50, r2.p50), p99: Math.min(r1.p99, r2.p99) };
  const brps = await throughput(bareUrl);
  const rrps = await throughput(routerUrl);
  const f = (x) => x.toFixed(2);
  console.log(`requests per latency run: ${N} sequential (best of 2 runs); throughput: ${C} clients for ${SECONDS}s`);
  console.log(`bare pass-through : p50 ${f(b.p50)} ms  p99 ${f(b.p99)} ms  ${brps.toFixed(0)} req/s`);
  console.log(`router            : p50 ${f(r.p50)} ms  p99 ${f(r.p99)} ms  ${rrps.toFixed(0)} req/s`);
  console.log(`added by router   : p50 ${f(r.p50 - b.p50)} ms  p99 ${f(r.p99 - b.p99)} ms  (target: <= 1 ms at p50)`);
} finally {
  await router.dispose();
  await bare.dispose();
  await up.close();
}
