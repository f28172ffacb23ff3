// Where a streamed answer's time to first text goes, router vs bare, in one run: client-side
// timestamps and the mock upstream's (same Node process, same clock) split it into
// intake (client send → the mock has the request's headers written back, i.e. the upstream call
// is made) and pipe (the mock's first SSE frame written → the client has the first answer text).
//   node benches/stream_phases.mjs [build dir …]   (default: build)
import http from "node:http";
import path from "node:path";
import { Miniflare } from "miniflare";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { routerOptions, bareOptions, chatBody } from "./edge_latency.mjs";
import { FLOOR } from "./stream_floor.mjs";

let lastHead = NaN;
let firstWrite = NaN;
const origWriteHead = http.ServerResponse.prototype.writeHead;
http.ServerResponse.prototype.writeHead = function (...a) {
  lastHead = performance.now();
  firstWrite = NaN;
  return origWriteHead.apply(this, a);
};
const origWrite = http.ServerResponse.prototype.write;
http.ServerResponse.prototype.write = function (...a) {
  if (Number.isNaN(firstWrite)) firstWrite = performance.now();
  return origWrite.apply(this, a);
};

async function one(url, i) {
  const t0 = performance.now();
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: chatBody(i, true) });
  const tH = performance.now();
  const dec = new TextDecoder();
  let seen = "";
  let tF = NaN;
  for await (const chunk of r.body) {
    if (Number.isNaN(tF)) {
      seen += dec.decode(chunk, { stream: true });
      if (/"content":"[^"]/.test(seen)) tF = performance.now();
    }
  }
  return { intake: lastHead - t0, pipe: tF - firstWrite, head: tH - firstWrite, total: tF - t0 };
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const dirs = process.argv.slice(2).length ? process.argv.slice(2) : ["build"];
const up = await startUpstreams({ perplexityKey: "px" });
const sides = { bare: new Miniflare(bareOptions(up)), floor: new Miniflare({ ...bareOptions(up), script: FLOOR }) };
for (const d of dirs) sides[d] = new Miniflare({ ...routerOptions(up), scriptPath: path.resolve(d, "index.js"), modulesRoot: path.resolve(d) });
const urls = {};
for (const [k, mf] of Object.entries(sides)) urls[k] = new URL(k === "bare" || k === "floor" ? "/chat/completions" : "/v1/chat/completions", await mf.ready).toString();
for (const k of Object.keys(sides)) for (let i = 0; i < 200; i++) await one(urls[k], i);
const rounds = Number(process.env.ROUNDS ?? 6);
const n = Number(process.env.N ?? 200);
const acc = Object.fromEntries(Object.keys(sides).map((k) => [k, { intake: [], pipe: [], head: [], total: [] }]));
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? Object.keys(sides).reverse() : Object.keys(sides);
  for (const k of order) {
    const xs = [];
    for (let i = 0; i < n; i++) xs.push(await one(urls[k], i));
    for (const f of ["intake", "pipe", "head", "total"]) acc[k][f].push(med(xs.map((x) => x[f])));
  }
}
for (const [k, a] of Object.entries(acc)) {
  console.log(`${k.padEnd(14)} ` + ["intake", "head", "pipe", "total"].map((f) => `${f} ${med(a[f]).toFixed(3)}`).join("  ") + " ms (medians of round p50s)");
}
for (const k of Object.keys(sides)) await sides[k].dispose();
await up.close();
