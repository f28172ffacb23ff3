// The floor of the router's streaming design, measured: a plain JS worker that does only what
// the router must before it answers a stream — read the upstream's first SSE event (a fallback
// stays possible until then), translate it to an OpenAI chunk, answer with a native
// IdentityTransformStream carrying it, and pump the rest — against the bare pass-through worker
// (benches/edge_latency.mjs), in one run. Why: the time to first text a Rust router could reach
// at best with this design, to tell the router's own cost from the design's (issue 13, item 1).
//   make build && node benches/stream_floor.mjs [router build dir …]
import { Miniflare } from "miniflare";
import path from "node:path";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { routerOptions, bareOptions, firstByte } from "./edge_latency.mjs";
import { isMain } from "./lib/cli.mjs";

export const FLOOR = `
const enc = new TextEncoder();
function frame(t) { return "data: " + JSON.stringify({id:"x",object:"chat.completion.chunk",created:1,model:"m",choices:[{index:0,delta:{content:t},finish_reason:null}]}) + "\\n\\n"; }
export default {
  async fetch(req, env) {
    const body = await req.text();
    const r = await fetch(env.PERPLEXITY_BASE_URL + "/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + env.PERPLEXITY_API },
      body,
    });
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let first = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\\r\\n\\r\\n")) >= 0) {
        const ev = buf.slice(6, i); buf = buf.slice(i + 4);
        const o = JSON.parse(ev);
        first += frame(o.choices[0].delta.content);
      }
      if (first) break;
    }
    const { readable, writable } = new IdentityTransformStream();
    const w = writable.getWriter();
    (async () => {
      await w.write(enc.encode(first));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i; let out = "";
        while ((i = buf.indexOf("\\r\\n\\r\\n")) >= 0) {
          const ev = buf.slice(6, i); buf = buf.slice(i + 4);
          const o = JSON.parse(ev);
          out += frame(o.choices[0].delta.content);
        }
        if (out) await w.write(enc.encode(out));
      }
      await w.write(enc.encode("data: [DONE]\\n\\n"));
      await w.close();
    })();
    return new Response(readable, { headers: { "content-type": "text/event-stream" } });
  },
};`;
if (isMain(import.meta.url)) {
const up = await startUpstreams({ perplexityKey: "px" });
const bareO = bareOptions(up);
const sides = {
  bare: new Miniflare(bareO),
  floor: new Miniflare({ ...bareO, script: FLOOR }),
};
for (const d of process.argv.slice(2)) sides[d] = new Miniflare({ ...routerOptions(up), scriptPath: path.resolve(d, "index.js"), modulesRoot: path.resolve(d) });
const urls = {};
for (const [k, mf] of Object.entries(sides)) urls[k] = new URL(k === "bare" || k === "floor" ? "/chat/completions" : "/v1/chat/completions", await mf.ready).toString();
for (const k of Object.keys(sides)) for (let i = 0; i < 100; i++) await firstByte(urls[k], i);
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const res = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
const rounds = Number(process.env.ROUNDS ?? 8);
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? Object.keys(sides).reverse() : Object.keys(sides);
  for (const k of order) {
    const xs = [];
    for (let i = 0; i < 150; i++) xs.push(await firstByte(urls[k], i));
    res[k].push(med(xs));
  }
}
for (const k of Object.keys(sides)) console.log(k.padEnd(12), "added first text p50 median", med(res[k].map((x, i) => x - res.bare[i])).toFixed(3), "[", res[k].map((x, i) => (x - res.bare[i]).toFixed(2)).join(" "), "]");
for (const mf of Object.values(sides)) await mf.dispose();
await up.close();
}
