// Where the router's per-request time goes in workerd: a V8 CPU profile of the release router
// (build/, `make build`) over N sequential requests against the mock Perplexity, through
// Miniflare's inspector (Chrome DevTools protocol over a WebSocket). Prints the functions with
// the most self time, grouped as JS glue, wasm, runtime and idle, and writes the raw
// .cpuprofile (open it in Chrome DevTools) next to the JSON summary.
//   node benches/profile_edge.mjs [--requests 3000] [--out bench-results/edge.cpuprofile] [--stream]
// --stream profiles streamed requests (`"stream": true`, each read to the end) instead.
// The wasm shows function names only if the build kept its name section:
//   CARGO_PROFILE_RELEASE_STRIP=false make build
import { Miniflare } from "miniflare";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { firstByte, once, routerOptions } from "./edge_latency.mjs";
import { arg, isMain } from "./lib/cli.mjs";

async function cdp(port) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = list.find((t) => t.webSocketDebuggerUrl) ?? list[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((ok, fail) => { ws.once("open", ok); ws.once("error", fail); });
  let id = 0;
  const waiting = new Map();
  ws.on("message", (m) => {
    const msg = JSON.parse(m.toString());
    if (msg.id && waiting.has(msg.id)) {
      const { ok, fail } = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error) fail(new Error(JSON.stringify(msg.error))); else ok(msg.result);
    }
  });
  const send = (method, params = {}) => new Promise((ok, fail) => {
    const n = ++id;
    waiting.set(n, { ok, fail });
    ws.send(JSON.stringify({ id: n, method, params }));
  });
  return { send, close: () => ws.close() };
}

/** Self time per function (ms), from a CDP profile. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const hits = new Map();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const total = profile.samples.length;
  const ms = (profile.endTime - profile.startTime) / 1000;
  const out = new Map();
  for (const [nodeId, n] of hits) {
    const f = byId.get(nodeId).callFrame;
    const url = f.url || "";
    const kind = url.startsWith("wasm://") ? "wasm" : f.functionName.startsWith("(") ? f.functionName : url ? "js" : "runtime";
    const name = `${f.functionName || "(anonymous)"} [${kind}${url && kind === "js" ? " " + path.basename(url) : ""}]`;
    out.set(name, (out.get(name) ?? 0) + n);
  }
  return { total, ms, rows: [...out].map(([name, n]) => ({ name, share: n / total, ms: (n / total) * ms })).sort((a, b) => b.share - a.share) };
}

export async function profileEdge({ requests, out, stream = false }) {
  const one = stream ? firstByte : once;
  const up = await startUpstreams({ perplexityKey: "px" });
  const inspectorPort = 9229 + Math.floor(Math.random() * 500);
  const mf = new Miniflare({ ...routerOptions(up), inspectorPort });
  try {
    const url = new URL("/v1/chat/completions", await mf.ready).toString();
    for (let i = 0; i < 300; i++) await once(url, i); // warm up (JIT, first KV load)
    const c = await cdp(inspectorPort);
    await c.send("Profiler.enable");
    await c.send("Profiler.setSamplingInterval", { interval: 100 });
    await c.send("Profiler.start");
    const t0 = performance.now();
    for (let i = 0; i < requests; i++) await one(url, i);
    const wall = performance.now() - t0;
    const { profile } = await c.send("Profiler.stop");
    c.close();
    if (out) {
      mkdirSync(path.dirname(out), { recursive: true });
      writeFileSync(out, JSON.stringify(profile));
    }
    return { requests, wallMsPerRequest: wall / requests, ...selfTimes(profile) };
  } finally {
    await mf.dispose();
    await up.close();
  }
}

if (isMain(import.meta.url)) {
  const r = await profileEdge({
    requests: Number(arg("requests", 3000)),
    out: arg("out", "bench-results/edge.cpuprofile"),
    stream: process.argv.includes("--stream"),
  });
  const perReq = (ms) => `${((ms * 1000) / r.requests).toFixed(1).padStart(7)} µs/req`;
  console.log(`${r.requests} requests, ${r.wallMsPerRequest.toFixed(3)} ms each (client-side wall); profile ${r.ms.toFixed(0)} ms, ${r.total} samples`);
  const groups = new Map();
  for (const row of r.rows) {
    const g = row.name.match(/\[([^\] ]+)[^\]]*\]$/)[1];
    groups.set(g, (groups.get(g) ?? 0) + row.ms);
  }
  for (const [g, ms] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`  ${g.padEnd(16)} ${perReq(ms)}`);
  console.log("top functions by self time:");
  for (const row of r.rows.slice(0, 30)) console.log(`  ${(100 * row.share).toFixed(1).padStart(5)} %  ${perReq(row.ms)}  ${row.name}`);
}
