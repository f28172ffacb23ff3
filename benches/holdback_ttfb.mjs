// What the no-context hold-back costs a healthy LightRAG stream in time to first byte
// (issue 11, Deliver 1 and 7): the same release bundle in workerd (Miniflare 4), the same mock
// LightRAG streaming a real-shaped NDJSON answer on loopback, three configurations measured in
// one process, interleaved request by request so machine noise hits all alike:
//
//   off       LIGHTRAG_NO_CONTEXT_FALLBACK=false: answers are not held at all (the baseline)
//   default   the hold-back as shipped: a stream commits on its first text that cannot be the
//             start of LightRAG's canned replies (LIGHTRAG_NO_CONTEXT_HOLD_BACK_MS = 1500 bounds it)
//   patterns  with LIGHTRAG_NO_CONTEXT_PATTERNS set: held until the first 256 characters arrived
//
// and two answer shapes: a normal answer, and one whose first chunk reads like the canned
// "Sorry, I'm not able to provide an answer to that question." (held one chunk longer by the
// default rule).
// TTFB is the time from sending the request to the first SSE frame carrying answer text.
//
//   make build && node benches/holdback_ttfb.mjs [--requests 40] [--chunk-ms 40] [--json out.json]
import { Miniflare } from "miniflare";
import { writeFileSync } from "node:fs";
import os from "node:os";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { routerOptions } from "./edge_latency.mjs";
import { percentile } from "./lib/stats.mjs";
import { arg, quick } from "./lib/cli.mjs";

const REQUESTS = Number(arg("requests", quick ? 5 : 40));
const CHUNK_MS = Number(arg("chunk-ms", 40));
const JSON_OUT = arg("json", null);

const CONFIGS = {
  off: { LIGHTRAG_NO_CONTEXT_FALLBACK: "false" },
  default: {},
  patterns: { LIGHTRAG_NO_CONTEXT_PATTERNS: "do not have enough information, cannot answer" },
};
// ~600 characters in 12 chunks (~50 characters every CHUNK_MS ms, a fast LLM's pace).
const ANSWER =
  "Pyruvate is reduced to lactate by lactate dehydrogenase, which oxidises NADH to NAD+ so that " +
  "glycolysis can continue when oxygen is scarce. In clinical metabolomics, raised plasma lactate " +
  "with a high lactate-to-pyruvate ratio points to impaired oxidative phosphorylation, as in sepsis " +
  "or mitochondrial disease, while a normal ratio suggests increased glycolytic flux. Mass " +
  "spectrometry panels measure both metabolites together with alanine, whose transamination from " +
  "pyruvate links the pathway to nitrogen balance; NMR studies report the same relationships.";
const SHAPES = {
  answer: ANSWER,
  // Its first chunk is a prefix of the canned "Sorry, I'm not able to provide an answer to that
  // question.": the default rule holds it until the second chunk leaves that prefix.
  "canned-like start": "Sorry, I'm not able to provide an answer to that question without a caveat: " + ANSWER,
};

async function ttfb(url, user, stream = true) {
  const t0 = performance.now();
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "sonar", user, stream, messages: [{ role: "user", content: "How is pyruvate turned into lactate?" }] }),
  });
  if (r.status !== 200 || r.headers.get("x-route-upstream") !== "lightrag") throw new Error(`HTTP ${r.status} from ${r.headers.get("x-route-upstream")}`);
  const dec = new TextDecoder();
  let seen = "";
  let first = null;
  for await (const chunk of r.body) {
    seen += dec.decode(chunk, { stream: true });
    if (first === null && /"delta":\{"content":"[^"]/.test(seen)) first = performance.now() - t0;
  }
  if (first === null) throw new Error(`no answer text in ${seen.slice(0, 200)}`);
  return first;
}

const up = await startUpstreams({ lightragKey: "lr", perplexityKey: "px" });
const workers = {};
try {
  for (const [name, vars] of Object.entries(CONFIGS)) {
    const mf = new Miniflare(
      routerOptions(up, { LIGHTRAG_ROLLOUT_PERCENTAGE: "100", LIGHTRAG_API_KEY: "lr", ...vars }),
    );
    workers[name] = { mf, url: new URL("/v1/chat/completions", await mf.ready).toString() };
  }
  const results = {};
  for (const [shape, text] of Object.entries(SHAPES)) {
    up.setBehaviour("lightrag", { answerText: text, chunks: 12, chunkDelayMs: CHUNK_MS });
    for (const w of Object.values(workers)) for (let i = 0; i < 3; i++) await ttfb(w.url, `warm-${i}`);
    const xs = Object.fromEntries(Object.keys(workers).map((k) => [k, []]));
    for (let i = 0; i < REQUESTS; i++) {
      const order = Object.keys(workers);
      if (i % 2) order.reverse();
      for (const k of order) xs[k].push(await ttfb(workers[k].url, `bench-${i}`));
    }
    results[shape] = Object.fromEntries(
      Object.entries(xs).map(([k, v]) => [k, { p10: percentile(v, 0.1), p50: percentile(v, 0.5), p90: percentile(v, 0.9), n: v.length }]),
    );
  }
  const doc = { date: new Date().toISOString(), load: os.loadavg().map((x) => Number(x.toFixed(2))), cpu: os.cpus()[0]?.model, chunkMs: CHUNK_MS, requests: REQUESTS, results };
  console.log(`hold-back TTFB (ms to the first answer text; ${REQUESTS} requests per cell, chunks every ${CHUNK_MS} ms; load ${doc.load.join(" ")})`);
  console.log("| answer | config | p10 | p50 | p90 | p50 − off |");
  console.log("|---|---|---|---|---|---|");
  for (const [shape, r] of Object.entries(results)) {
    for (const [k, v] of Object.entries(r)) {
      console.log(`| ${shape} | ${k} | ${v.p10.toFixed(1)} | ${v.p50.toFixed(1)} | ${v.p90.toFixed(1)} | ${(v.p50 - r.off.p50).toFixed(1)} |`);
    }
  }
  if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(doc, null, 2)}\n`);
} finally {
  for (const w of Object.values(workers)) await w.mf.dispose();
  await up.close();
}
