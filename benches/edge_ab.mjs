// Two router builds side by side, against a bare pass-through worker, in the same run: workerd
// CPU per request and p50 latency, interleaved rounds (the order reversed every other round).
// Why: an optimisation of the edge path moves the router's cost by tens of microseconds, less
// than the spread between two separate runs of benches/edge_latency.mjs on a shared machine;
// measured in one process, rounds interleaved, the two builds see the same noise.
//
//   cp -r build /tmp/before && <change, make build> && node benches/edge_ab.mjs /tmp/before build
//   ROUNDS=10 N=400 (defaults 8 and 400)
import { Miniflare } from "miniflare";
import path from "node:path";
import { readFileSync, readdirSync } from "node:fs";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { routerOptions, bareOptions, once } from "./edge_latency.mjs";

const [A, B] = process.argv.slice(2).map((d) => path.resolve(d));
if (!A || !B) throw new Error("usage: node benches/edge_ab.mjs <build dir A> <build dir B>");
const rounds = Number(process.env.ROUNDS ?? 8);
const n = Number(process.env.N ?? 400);

/** workerd processes that are children of this Node process (Linux /proc). */
function pids() {
  const out = new Set();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = readFileSync(`/proc/${d}/stat`, "utf8").trim().match(/^\d+ \((.*)\) (.*)$/);
      if (m && m[1] === "workerd" && Number(m[2].split(" ")[1]) === process.pid) out.add(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
/** User + system CPU ms of a process (10 ms clock ticks). */
const cpu = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
};
async function start(options) {
  const before = pids();
  const mf = new Miniflare(options);
  const url = await mf.ready;
  return { mf, url, pid: [...pids()].find((p) => !before.has(p)) };
}
const build = (dir, up) => ({ ...routerOptions(up), scriptPath: path.join(dir, "index.js"), modulesRoot: dir });
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const up = await startUpstreams({ perplexityKey: "px" });
const sides = { bare: await start(bareOptions(up)), A: await start(build(A, up)), B: await start(build(B, up)) };
const url = (k) => new URL(k === "bare" ? "/chat/completions" : "/v1/chat/completions", sides[k].url).toString();
for (const k of Object.keys(sides)) for (let i = 0; i < 200; i++) await once(url(k), i);
const cpuPer = { bare: [], A: [], B: [] };
const p50 = { bare: [], A: [], B: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? ["B", "A", "bare"] : ["bare", "A", "B"];
  for (const k of order) {
    const c0 = cpu(sides[k].pid);
    const xs = [];
    for (let i = 0; i < n; i++) xs.push(await once(url(k), i));
    cpuPer[k].push((cpu(sides[k].pid) - c0) / n);
    p50[k].push(median(xs));
  }
}
for (const k of Object.keys(sides)) {
  console.log(`${k.padEnd(4)} CPU/request median ${median(cpuPer[k]).toFixed(3)} ms [${cpuPer[k].map((x) => x.toFixed(2)).join(" ")}], p50 median ${median(p50[k]).toFixed(3)} ms`);
}
for (const k of ["A", "B"]) {
  const dc = median(cpuPer[k].map((x, i) => x - cpuPer.bare[i]));
  const dl = median(p50[k].map((x, i) => x - p50.bare[i]));
  console.log(`${k} (${k === "A" ? A : B}): added CPU ${dc.toFixed(3)} ms, added p50 ${dl.toFixed(3)} ms`);
}
for (const s of Object.values(sides)) await s.mf.dispose();
await up.close();
