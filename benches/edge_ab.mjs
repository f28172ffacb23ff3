// Router builds side by side (two or more), against a bare pass-through worker, in the same run: workerd
// CPU per request, p50 latency and (STREAM=1) the streamed time to the first answer text, in
// rounds where the sides take turns request by request.
// Why: an optimisation of the edge path moves the router's cost by tens of microseconds, less
// than the spread between two separate runs of benches/edge_latency.mjs on a shared machine;
// measured in one process, turn by turn, the builds see the same noise.
//
//   cp -r build /tmp/before && <change, make build> && node benches/edge_ab.mjs /tmp/before build
//   ROUNDS=10 N=400 STREAM=1 (defaults 8, 400 and off; streamed: N/4 requests per side a round,
//   STREAM=only: N streamed requests per side a round and nothing else;
//   their time to the first answer text and workerd CPU per streamed request)
import path from "node:path";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { routerOptions, bareOptions, once, firstByte, cpuMs, startWithPid } from "./edge_latency.mjs";
import { takeTurns } from "./lib/turns.mjs";

// Two or more builds: A, B, C, … in the order given.
const dirs = process.argv.slice(2).map((d) => path.resolve(d));
if (dirs.length < 2) throw new Error("usage: node benches/edge_ab.mjs <build dir A> <build dir B> [more…]");
const names = dirs.map((_, i) => String.fromCharCode(65 + i));
const rounds = Number(process.env.ROUNDS ?? 8);
const n = Number(process.env.N ?? 400);
const streamed = process.env.STREAM === "1" || process.env.STREAM === "only";
// STREAM=only: the streamed rounds alone (N streamed requests per side a round).
const streamOnly = process.env.STREAM === "only";

// workerd CPU per process and the Miniflare start that finds its process: edge_latency.mjs.
const cpu = cpuMs;
const start = startWithPid;
const build = (dir, up) => ({ ...routerOptions(up), scriptPath: path.join(dir, "index.js"), modulesRoot: dir });
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const up = await startUpstreams({ perplexityKey: "px" });
const sides = { bare: await start(bareOptions(up)) };
for (const [i, k] of names.entries()) sides[k] = await start(build(dirs[i], up));
const url = (k) => new URL(k === "bare" ? "/chat/completions" : "/v1/chat/completions", sides[k].url).toString();
for (const k of Object.keys(sides)) for (let i = 0; i < 200; i++) await once(url(k), i);
const series = () => Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
const cpuPer = series();
const p50 = series();
const ttfb = series();
const cpuStream = series();
// Within a round the sides take turns request by request (benches/lib/turns.mjs says why).
const keys = ["bare", ...names];
const turns = { keys, url, cpuOf: (k) => cpu(sides[k].pid), p50Of: median };
const round = (m, call, cpuOut, p50Out) => takeTurns(turns, m, call, cpuOut, p50Out);
for (let r = 0; r < rounds; r++) {
  if (!streamOnly) await round(n, once, cpuPer, p50);
  if (streamed) await round(streamOnly ? n : Math.max(20, n >> 2), firstByte, cpuStream, ttfb);
}
for (const k of Object.keys(sides)) {
  const head = streamOnly ? "" : `CPU/request median ${median(cpuPer[k]).toFixed(3)} ms [${cpuPer[k].map((x) => x.toFixed(2)).join(" ")}], p50 median ${median(p50[k]).toFixed(3)} ms`;
  console.log(`${k.padEnd(4)} ${head}${streamed ? `, streamed first text p50 median ${median(ttfb[k]).toFixed(3)} ms, streamed CPU/request median ${median(cpuStream[k]).toFixed(3)} ms` : ""}`);
}
for (const [i, k] of names.entries()) {
  const dc = (streamOnly ? NaN : median(cpuPer[k].map((x, i) => x - cpuPer.bare[i])));
  const dl = (streamOnly ? NaN : median(p50[k].map((x, i) => x - p50.bare[i])));
  const ds = streamed
    ? `, added streamed first text p50 ${median(ttfb[k].map((x, i) => x - ttfb.bare[i])).toFixed(3)} ms [${ttfb[k].map((x, i) => (x - ttfb.bare[i]).toFixed(2)).join(" ")}], added streamed CPU ${median(cpuStream[k].map((x, i) => x - cpuStream.bare[i])).toFixed(3)} ms`
    : "";
  console.log(`${k} (${dirs[i]}):${streamOnly ? "" : ` added CPU ${dc.toFixed(3)} ms, added p50 ${dl.toFixed(3)} ms`}${ds}`);
}
for (const s of Object.values(sides)) await s.mf.dispose();
await up.close();
