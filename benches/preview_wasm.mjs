// Benchmark: the preview exports called from JS through the wasm boundary (Node), i.e. what the
// browser page pays per call. Run `make preview` first, then `node benches/preview_wasm.mjs`.
// Reports the median over batches of ns per call (plus p10/p90 of the batch means).
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// PKG=<dir> benchmarks another build of the preview (e.g. a different opt-level).
const PKG = path.resolve(ROOT, process.env.PKG ?? "www/pkg");
const { initSync, bucket, decide, Router } = await import(path.join(PKG, "cmo_edge_router.js"));
initSync({ module: readFileSync(path.join(PKG, "cmo_edge_router_bg.wasm")) });

const BATCHES = Number(process.env.BATCHES ?? 30);
const PER_BATCH = Number(process.env.PER_BATCH ?? 20_000);
const keys = Array.from({ length: 1024 }, (_, i) => `user-${i}`);
const query = "How does the TCA cycle relate to lactate accumulation in sepsis?";
const config = {
  LIGHTRAG_INTEGRATION_ENABLED: "true",
  LIGHTRAG_ROLLOUT_PERCENTAGE: "25",
  LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: "true",
  LIGHTRAG_ROUTING_RULES: JSON.stringify([
    { name: "news", when: { query_type: "temporal" }, action: "perplexity" },
    { name: "short", when: { max_length: 12 }, action: "perplexity" },
    { name: "pathways", when: { keywords_any: ["pathway", "mechanism"] }, action: "rollout" },
  ]),
};

function bench(name, perBatch, fn) {
  for (let i = 0; i < perBatch; i++) fn(i); // warm-up
  const ns = [];
  let sink = 0;
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) sink ^= fn(i) | 0;
    ns.push(Number(process.hrtime.bigint() - t0) / perBatch);
  }
  ns.sort((a, b) => a - b);
  const q = (p) => ns[Math.min(ns.length - 1, Math.floor(p * ns.length))];
  console.log(`${name.padEnd(34)} median ${q(0.5).toFixed(1).padStart(8)} ns/call   p10 ${q(0.1).toFixed(1)}  p90 ${q(0.9).toFixed(1)}   (sink ${sink & 1})`);
  return q(0.5);
}

console.log(`${path.relative(ROOT, PKG) || PKG}: node ${process.version} on ${os.cpus()[0]?.model ?? "?"} (${os.cpus().length} cores), ${BATCHES} batches`);
const router = new Router(config, undefined);
const problems = router.problems();
if (problems.length) throw new Error(`bench config has problems: ${JSON.stringify(problems)}`);
bench("bucket(salt, key)", PER_BATCH, (i) => bucket("cmo_lightrag_2025", keys[i & 1023]) * 100);
bench("Router.route(key, query)", PER_BATCH, (i) => router.route(keys[i & 1023], query));
router.prepareQuery(query);
bench("Router.routePrepared(key)", PER_BATCH, (i) => router.routePrepared(keys[i & 1023]));
bench("Router.decide({key, query})", PER_BATCH / 10, (i) => (router.decide({ key: keys[i & 1023], query }).upstream === "lightrag" ? 1 : 0));
bench("decide(config, request) one-shot", PER_BATCH / 100, (i) => (decide(config, { key: keys[i & 1023], query }, undefined).upstream === "lightrag" ? 1 : 0));
