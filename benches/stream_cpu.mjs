// workerd CPU per streamed request against the number of SSE events the upstream sends (1, 5,
// 20, back to back: `chunks`, `chunkDelayMs: 0` of the mock Perplexity), router builds against
// the bare pass-through worker, interleaved rounds in one run. Why: the slope is what the router
// spends per streamed chunk (decode, translate, write), the intercept what a stream costs at
// all; edge_ab's streamed CPU mixes both with the event-loop turns of a paced stream.
//   make build && node benches/stream_cpu.mjs <build dir> [more…]   (ROUNDS=4 N=200)
import path from "node:path";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { routerOptions, bareOptions, firstByte, cpuMs, startWithPid } from "./edge_latency.mjs";

// workerd CPU per process and the Miniflare start that finds its process: edge_latency.mjs.
const cpu = cpuMs;
const start = startWithPid;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rounds = Number(process.env.ROUNDS ?? 4);
const n = Number(process.env.N ?? 200);

const up = await startUpstreams({ perplexityKey: "px" });
const sides = { bare: await start(bareOptions(up)) };
for (const d of process.argv.slice(2)) {
  sides[d] = await start({ ...routerOptions(up), scriptPath: path.resolve(d, "index.js"), modulesRoot: path.resolve(d) });
}
const url = (k) => new URL(k === "bare" ? "/chat/completions" : "/v1/chat/completions", sides[k].url).toString();
for (const k of Object.keys(sides)) for (let i = 0; i < 100; i++) await firstByte(url(k), i);
const per = {};
for (const chunks of [1, 5, 20]) {
  up.setBehaviour("perplexity", { chunks, chunkDelayMs: 0 });
  const res = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const k of r % 2 ? Object.keys(sides).reverse() : Object.keys(sides)) {
      const c0 = cpu(sides[k].pid);
      for (let i = 0; i < n; i++) await firstByte(url(k), i);
      res[k].push((cpu(sides[k].pid) - c0) / n);
    }
  }
  per[chunks] = Object.fromEntries(Object.keys(sides).map((k) => [k, median(res[k])]));
  console.log(`${String(chunks).padStart(2)} events: ` + Object.keys(sides).map((k) => `${k} ${per[chunks][k].toFixed(3)}`).join(", ") + " ms CPU/request");
}
for (const k of Object.keys(sides)) {
  console.log(`${k}: ${((per[20][k] - per[1][k]) / 19 * 1000).toFixed(0)} µs CPU per further event, ${per[1][k].toFixed(3)} ms for a one-event stream`);
}
for (const s of Object.values(sides)) await s.mf.dispose();
await up.close();
