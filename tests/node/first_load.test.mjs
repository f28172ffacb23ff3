// A cold isolate's first KV load (docs/architecture.md#workers-kv-budget): its first requests
// wait for it, at most STATE_FIRST_LOAD_WAIT_MS, so it reads its keys all at once — one KV round
// trip, not six in a row. Why it matters: with every KV operation 10 ms slower than Miniflare's
// local KV (benches/cold_start.mjs, router-slowkv), six reads in a row outlasted the 50 ms wait
// and a new isolate's first request was routed on the vars alone (`routed_before_kv`).
//
// How it is seen without timing anything: the ROUTER_STATE binding is wrapped (as in
// capture.mjs) so that each get waits on a timer before it reaches the real namespace, and the
// wrapper logs how many gets are in flight whenever one starts. Reads issued together are all
// in flight before the first timer fires, whatever the machine's load; reads issued one after
// another never overlap.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { HUB, bundleWorker } from "./harness.mjs";
import { startUpstreams } from "../mock/upstreams.mjs";
import { chatBody, JSON_CT, waitFor } from "./common.mjs";

const KV_FLIGHT = `
export default function (env) {
  const inner = env.INNER;
  let inFlight = 0;
  const later = () => new Promise((ok) => setTimeout(ok, 5));
  return {
    async get(key, opts) {
      inFlight += 1;
      console.log("kvflight " + inFlight + " " + key);
      try {
        await later();
        return await inner.get(key, opts);
      } finally {
        inFlight -= 1;
      }
    },
    getWithMetadata(key, opts) { return inner.getWithMetadata(key, opts); },
    put(key, value, opts) { return inner.put(key, value, opts); },
    delete(key) { return inner.delete(key); },
    list(opts) { return inner.list(opts); },
  };
}`;

// core::store::refresh_keys: what every refresh reads.
const REFRESH_KEYS = ["config/overrides", "breaker/lightrag", "breaker/perplexity", "breaker/lightrag/admin", "breaker/perplexity/admin", "rollout/routing"];

test("a new isolate's first KV load reads its six keys at once", { skip: HUB && "on the state hub a refresh is one request (core::hub)" }, async () => {
  const up = await startUpstreams({ perplexityKey: "px-key" });
  const lines = [];
  const mf = new Miniflare({
    handleStructuredLogs: ({ message }) => {
      lines.push(message);
    },
    workers: [
      {
        name: "router",
        ...bundleWorker({ PERPLEXITY_BASE_URL: up.perplexityUrl, PERPLEXITY_API: "px-key", LIGHTRAG_BASE_URL: up.lightragUrl }),
        wrappedBindings: { ROUTER_STATE: { scriptName: "kv-flight" } },
      },
      { name: "kv-flight", modules: true, script: KV_FLIGHT, kvNamespaces: ["INNER"] },
    ],
  });
  try {
    await mf.ready;
    const res = await mf.dispatchFetch("http://router.test/v1/chat/completions", { method: "POST", headers: JSON_CT, body: chatBody("What is glutamine?") });
    assert.equal(res.status, 200, await res.text());
    const gets = () => lines.filter((l) => l.startsWith("kvflight ")).map((l) => l.split(" "));
    // The load runs under wait_until: poll until its six reads have been logged.
    await waitFor("the first load's six reads", () => gets().length >= REFRESH_KEYS.length);
    const first = gets().slice(0, REFRESH_KEYS.length);
    assert.deepEqual(first.map((g) => g[2]).sort(), [...REFRESH_KEYS].sort(), "the first load reads the refresh keys");
    assert.equal(Math.max(...first.map((g) => Number(g[1]))), REFRESH_KEYS.length, `reads in flight together: ${JSON.stringify(first)}`);
  } finally {
    await mf.dispose();
    await up.close();
  }
});
