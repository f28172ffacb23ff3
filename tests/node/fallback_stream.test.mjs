// Upstream adapters in workerd against the mock upstreams: fallback on 500, timeout and
// connection reset (only before the first byte), SSE through both adapters, translation both
// ways, truncated streams, both-failed errors, and the breaker tripping.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, sseData, sseContent, userIn, auth, waitFor } from "./common.mjs";

const SALT = "cmo_lightrag_2025";
const LR = userIn(SALT, 50, true, "lr");   // in the 50 % rollout → LightRAG
const PX = userIn(SALT, 50, false, "px");  // out → Perplexity
let s;
before(async () => {
  s = await startStack({
    vars: {
      LIGHTRAG_ROLLOUT_PERCENTAGE: "50",
      LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS: "6",
      // High threshold so single failures do not trip the breaker in these tests.
      LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "50",
      // These tests read X-Route-Cohort (operator detail, hidden by default: guard.test.mjs).
      ROUTER_EXPOSE_ROUTING_DETAIL: "true",
    },
  });
});
after(async () => { await s?.close(); });
beforeEach(() => s.up.reset());

const Q = "How is glucose connected to lactate in metabolomics?";

async function chat(user, extra = {}) {
  const r = await post(s.w, "/v1/chat/completions", chatBody(Q, { user, ...extra }));
  return { r, text: await r.text() };
}

async function status() {
  return (await s.w.fetch("/admin/status", { headers: auth })).json();
}

test("non-stream: LightRAG JSON becomes an OpenAI completion with citations", async () => {
  const { r, text } = await chat(LR);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "lightrag");
  assert.equal(r.headers.get("x-route-fallback"), null);
  const b = JSON.parse(text);
  assert.match(b.choices[0].message.content, /LightRAG/);
  assert.ok(b.citations.length >= 1);
  assert.equal(b.routing.upstream, "lightrag");
  assert.equal(s.up.requests("lightrag")[0].path, "/query");
});

test("non-stream: Perplexity answer becomes the seed /query shape", async () => {
  const r = await post(s.w, "/query", JSON.stringify({ query_text: Q, user_id: PX }));
  const b = await r.json();
  assert.equal(b.service_used, "perplexity");
  assert.equal(b.quality_score, null, "scoring is off unless LIGHTRAG_ENABLE_QUALITY_METRICS");
  assert.ok(b.citations.some((c) => c.url && c.url.startsWith("http")));
  assert.equal(s.up.requests("perplexity")[0].path, "/chat/completions");
});

test("fallback on 500: served by Perplexity, X-Route-Fallback set", async () => {
  s.up.setBehaviour("lightrag", { status: 500 });
  const { r, text } = await chat(LR);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  assert.equal(r.headers.get("x-route-cohort"), "lightrag");
  assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
  assert.equal(JSON.parse(text).routing.fallback_used, true);
});

test("fallback on time-to-first-byte timeout (one deadline budget)", async () => {
  s.up.setBehaviour("lightrag", { delayMs: 4500 });
  const t0 = Date.now();
  const { r } = await chat(LR);
  const took = Date.now() - t0;
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
  assert.ok(took >= 2900 && took < 6000, `took ${took} ms (TTFB budget is half of 6 s)`);
});

test("fallback on connection reset", async () => {
  s.up.setBehaviour("lightrag", { reset: true });
  const { r } = await chat(LR);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
});

test("both upstreams failing gives a clear 502 JSON error", async () => {
  s.up.setBehaviour("lightrag", { status: 503 });
  s.up.setBehaviour("perplexity", { status: 500 });
  const { r, text } = await chat(LR);
  assert.equal(r.status, 502);
  const b = JSON.parse(text);
  assert.equal(b.error.code, "upstream_failed");
  assert.match(b.error.message, /lightrag: http_server_error:503/);
  assert.match(b.error.message, /perplexity: http_server_error:500/);
});

test("Perplexity users do not fall back to LightRAG by default", async () => {
  s.up.setBehaviour("perplexity", { status: 500 });
  const { r } = await chat(PX);
  assert.equal(r.status, 502);
  assert.equal(s.up.requests("lightrag").length, 0);
});

test("SSE: LightRAG NDJSON is translated to OpenAI SSE chunks", async () => {
  const { r, text } = await chat(LR, { stream: true });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /text\/event-stream/);
  assert.equal(s.up.requests("lightrag")[0].path, "/query/stream");
  const frames = sseData(text);
  assert.equal(frames.at(-1), "[DONE]");
  const objs = frames.slice(0, -1).map((f) => JSON.parse(f));
  assert.equal(objs[0].choices[0].delta.role, "assistant");
  const content = objs.map((o) => o.choices?.[0]?.delta?.content ?? "").join("");
  assert.match(content, /LightRAG .*Knowledge-graph answer/);
  const last = objs.at(-1);
  assert.equal(last.choices[0].finish_reason, "stop");
  assert.ok(last.citations.length >= 1);
  assert.equal(last.routing.upstream, "lightrag");
  assert.ok(objs.length >= 5, "several delta chunks, piped as they arrive");
});

test("SSE: Perplexity SSE is re-encoded as OpenAI SSE with citations", async () => {
  const { r, text } = await chat(PX, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  const frames = sseData(text);
  assert.equal(frames.at(-1), "[DONE]");
  const objs = frames.slice(0, -1).map((f) => JSON.parse(f));
  const content = objs.map((o) => o.choices?.[0]?.delta?.content ?? "").join("");
  assert.ok(content.length > 20);
  assert.ok(objs.at(-1).citations.some((c) => c.startsWith("http")));
});

/** The SSE frames of a streamed answer Perplexity served whole: 200, not truncated, ends with [DONE]. */
function completePerplexityStream({ r, text }) {
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  assert.ok(!text.includes("stream_truncated"), text);
  const frames = sseData(text);
  assert.equal(frames.at(-1), "[DONE]");
  return frames;
}

test("SSE: a Perplexity event split over several reads (the first one too) is read whole", async () => {
  const whole = sseData((await chat(PX, { stream: true })).text);
  const texts = (frames) => frames.slice(0, -1).map((f) => JSON.parse(f)).map((o) => o.choices?.[0]?.delta?.content ?? "").join("");
  // Cut inside `data:`, inside the JSON, and between the CRLF pairs of the blank line.
  for (const eventSplits of [[3, 40, 200], ["\r\n"], ["\"content\":\""]]) {
    s.up.setBehaviour("perplexity", { eventSplits, chunkDelayMs: 5 });
    const frames = completePerplexityStream(await chat(PX, { stream: true }));
    assert.equal(texts(frames), texts(whole), JSON.stringify(eventSplits));
    const last = JSON.parse(frames.at(-2));
    assert.equal(last.choices[0].finish_reason, "stop");
    assert.deepEqual(last.citations, JSON.parse(whole.at(-2)).citations);
  }
  // Cut inside the first event: no text came, so this is a failed attempt (LightRAG's users
  // fall back to Perplexity; Perplexity's users get the 502), not a truncated answer.
  s.up.setBehaviour("perplexity", { eventSplits: [40], cutAfterChunks: 1 });
  const { r, text } = await chat(PX, { stream: true });
  assert.equal(r.status, 502);
  assert.match(JSON.parse(text).error.message, /perplexity: network_error/);
});

test("SSE: a LightRAG first line longer than one read (~300 KB) streams whole", async () => {
  const answerText = "lactate ".repeat(40000);
  s.up.setBehaviour("lightrag", { answerText, chunks: 1 });
  const { r, text } = await chat(LR, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "lightrag");
  const { content, done } = sseContent(text);
  assert.ok(done, "ends with [DONE]");
  assert.equal(content, answerText);
});

test("SSE: a first line that never ends is given up at the line limit (1 MiB), not buffered to the deadline", async () => {
  // 4 MiB in 64 KiB writes, 10 ms apart; the NDJSON decoder refuses a line over 1 MiB (16
  // writes), so the router must stop reading (and close the connection) long before the mock
  // has sent it all.
  s.up.setBehaviour("lightrag", { endlessLineBytes: 4 << 20, chunkDelayMs: 10 });
  const t0 = Date.now();
  const { r } = await chat(LR, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  assert.ok(r.headers.get("x-route-fallback"), "served by the fallback");
  assert.ok(Date.now() - t0 < 5000, "well inside the 6 s first-byte budget");
  const sent = s.up.requests("lightrag")[0].chunksSent;
  assert.ok(sent < 40, `the mock wrote ${sent} of 65 pieces before the router let go`);
});

test("SSE: a real Perplexity stream (finish_reason, no [DONE]) is complete, not truncated", async () => {
  const perf = async () => (await status()).service_performance.performance.perplexity;
  const before = await perf();
  for (const sendDone of [false, true, false]) {
    s.up.setBehaviour("perplexity", sendDone ? { sendDone } : null);
    const frames = completePerplexityStream(await chat(PX, { stream: true }));
    const objs = frames.slice(0, -1).map((f) => JSON.parse(f));
    assert.ok(objs.every((o) => !o.error));
    const content = objs.map((o) => o.choices?.[0]?.delta?.content ?? "").join("");
    // The delta only: the cumulative `message` must not repeat the text.
    assert.equal((content.match(/Web answer/g) || []).length, 1, content);
    assert.equal(objs.at(-1).choices[0].finish_reason, "stop");
  }
  const after = await perf();
  assert.equal(after.truncated_count, before.truncated_count, "no stream counted as truncated");
  assert.equal(after.error_count ?? 0, before.error_count ?? 0, "no stream counted as an error");
  assert.equal(after.success_count, before.success_count + 3);
});

test("SSE: a stream that fails before its first text falls back", async () => {
  s.up.setBehaviour("lightrag", { cutAfterChunks: 1 }); // references line only, then reset
  const { r, text } = await chat(LR, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
  assert.equal(sseData(text).at(-1), "[DONE]");
  assert.ok(!text.includes("stream_truncated"));
});

test("SSE: a stream cut after the first byte ends with an error event and counts as truncated", async () => {
  const before = (await status()).service_performance.performance.lightrag.truncated_count;
  s.up.setBehaviour("lightrag", { cutAfterChunks: 3 });
  const { r, text } = await chat(LR, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "lightrag");
  const frames = sseData(text);
  assert.equal(frames.at(-1), "[DONE]");
  const err = JSON.parse(frames.at(-2));
  assert.equal(err.error.code, "stream_truncated");
  assert.equal(s.up.requests("perplexity").length, 0, "no fallback after the first byte");
  const after = (await status()).service_performance.performance.lightrag.truncated_count;
  assert.equal(after, before + 1);
});

test("SSE: Perplexity stream cut after the first byte is truncated too", async () => {
  s.up.setBehaviour("perplexity", { cutAfterChunks: 3 });
  const { text } = await chat(PX, { stream: true });
  const frames = sseData(text);
  assert.equal(JSON.parse(frames.at(-2)).error.code, "stream_truncated");
});

test("SSE: an error reported inside the stream ends with an error event (the upstream's text stays in the log)", async () => {
  s.up.setBehaviour("lightrag", { streamError: "model overloaded" });
  const { r, text } = await chat(LR, { stream: true });
  const frames = sseData(text);
  const err = JSON.parse(frames.at(-2));
  assert.equal(err.error.code, "stream_truncated");
  assert.match(err.error.message, /lightrag stream was cut after it started \(upstream_error\)/);
  assert.ok(err.error.message.includes(r.headers.get("x-request-id")));
  assert.ok(!err.error.message.includes("model overloaded"));
});

test("the breaker trips after consecutive failures and routes to Perplexity", async () => {
  const t = await startStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "100", LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "3" } });
  try {
    t.up.setBehaviour("lightrag", { status: 500 });
    for (let i = 0; i < 3; i++) {
      const r = await post(t.w, "/v1/chat/completions", chatBody(Q, { user: `trip-${i}` }));
      await r.arrayBuffer();
      assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
    }
    const n = t.up.requests("lightrag").length;
    const r = await post(t.w, "/v1/chat/completions", chatBody(Q, { user: "after-trip" }));
    await r.arrayBuffer();
    assert.equal(r.headers.get("x-route-reason"), "circuit_open");
    assert.equal(r.headers.get("x-route-upstream"), "perplexity");
    assert.equal(t.up.requests("lightrag").length, n, "open breaker: LightRAG not called");
    const st = await (await t.w.fetch("/admin/status", { headers: auth })).json();
    assert.equal(st.service_performance.circuit_breaker.is_open, true);
    assert.equal(st.service_performance.circuit_breaker.state, "open");
    // The transition is written to KV (in the background).
    const kv = await t.w.kv();
    await waitFor("the open breaker in KV", async () => JSON.parse((await kv.get("breaker/lightrag")) ?? "{}").state === "open");
    // Admin reset closes it.
    const reset = await t.w.fetch("/admin/breaker/lightrag/reset", { method: "POST", headers: auth });
    assert.equal((await reset.json()).breaker.state, "closed");
  } finally {
    await t.close();
  }
});

test("half-open: probes go to LightRAG, successes close the breaker", async () => {
  const t = await startStack({
    vars: {
      LIGHTRAG_ROLLOUT_PERCENTAGE: "100",
      LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "2",
      // Two users' failures trip it (the default needs three distinct keys).
      LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS: "2",
      // Long enough that the request right after the trip surely finds it open, even on a
      // loaded machine; the test then waits for half-open instead of sleeping.
      LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: "5",
      LIGHTRAG_CIRCUIT_BREAKER_JITTER: "0",
      LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_PROBE_SHARE: "1",
    },
  });
  try {
    t.up.setBehaviour("lightrag", { status: 500, times: 2 });
    for (let i = 0; i < 2; i++) {
      const r = await post(t.w, "/v1/chat/completions", chatBody(Q, { user: `ho-${i}` }));
      await r.arrayBuffer();
    }
    let r = await post(t.w, "/v1/chat/completions", chatBody(Q, { user: "ho-open" }));
    await r.arrayBuffer();
    assert.equal(r.headers.get("x-route-reason"), "circuit_open");
    const status = async () => (await (await t.w.fetch("/admin/status", { headers: auth })).json()).service_performance.circuit_breaker;
    await waitFor("the breaker to go half-open", async () => (await status()).state === "half_open");
    const reasons = [];
    for (let i = 0; i < 5; i++) {
      r = await post(t.w, "/v1/chat/completions", chatBody(Q, { user: `ho-probe-${i}` }));
      await r.arrayBuffer();
      reasons.push(`${r.headers.get("x-route-reason")}/${r.headers.get("x-route-upstream")}`);
    }
    assert.ok(reasons.every((x) => x === "rollout_in/lightrag"), reasons.join(", "));
    const st = await (await t.w.fetch("/admin/status", { headers: auth })).json();
    assert.equal(st.service_performance.circuit_breaker.state, "closed");
  } finally {
    await t.close();
  }
});
