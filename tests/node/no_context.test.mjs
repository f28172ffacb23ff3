// Answer-aware routing in workerd (issue 11, Deliver 1, 2 and 6) against the mock upstreams,
// whose LightRAG replies are the real server's (tests/fixtures/lightrag/README.md): a
// no-context reply — JSON, NDJSON stream, the marker split across chunks, LightRAG's LLM down —
// never reaches the client; Perplexity answers instead, marked, and LightRAG's breaker stays
// closed. A healthy stream commits on its first text. Operator patterns, the held reply when
// no fallback can be made, the metrics, the breaker escalation over distinct callers, and the
// whole conversation reaching LightRAG within its limits.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, putConfig, adminStatus, sseContent, waitFor, auth } from "./common.mjs";
import { LIGHTRAG_NO_CONTEXT, LIGHTRAG_NO_RESULT, LIGHTRAG_LIMITS } from "../mock/upstreams.mjs";

let s;
before(async () => {
  s = await startStack({
    vars: {
      // Everybody with a key is in the LightRAG cohort.
      LIGHTRAG_ROLLOUT_PERCENTAGE: "100",
      LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "3",
      // Long enough that a test can tell "committed on the first text" from "waited it out".
      LIGHTRAG_NO_CONTEXT_HOLD_BACK_MS: "10000",
      // Room for conversations over LightRAG's own limits.
      LIGHTRAG_MAX_BODY_BYTES: "1048576",
      // The cohort header is operator detail (hidden by default: guard.test.mjs).
      ROUTER_EXPOSE_ROUTING_DETAIL: "true",
    },
  });
});
after(async () => {
  await s?.close();
});
beforeEach(async () => {
  s.up.reset();
  const r = await putConfig(s.w, {});
  assert.equal(r.status, 200, await r.text());
});

const OFF_TOPIC = "Who won the football world cup in 1998?";
const Q = "How is pyruvate turned into lactate?";

async function chat(user, text = OFF_TOPIC, extra = {}) {
  const r = await post(s.w, "/v1/chat/completions", chatBody(text, { user, ...extra }));
  return { r, text: await r.text() };
}

function lightragBreaker(st) {
  return st.service_performance.circuit_breakers.lightrag;
}

test("a no-context JSON reply falls back to Perplexity, marked, and the breaker stays closed", async () => {
  s.up.setBehaviour("lightrag", { noContext: true });
  for (let i = 0; i < 5; i++) {
    const { r, text } = await chat(`nc-json-${i}`);
    assert.equal(r.status, 200, text);
    assert.equal(r.headers.get("x-route-upstream"), "perplexity");
    assert.equal(r.headers.get("x-route-cohort"), "lightrag");
    assert.equal(r.headers.get("x-route-fallback"), "no_context");
    const b = JSON.parse(text);
    assert.match(b.choices[0].message.content, /^\[Perplexity/);
    assert.doesNotMatch(text, /no-context|not able to provide/);
    assert.equal(b.routing.fallback_used, true);
    assert.equal(b.routing.fallback_reason, "no_context");
  }
  assert.equal(s.up.requests("lightrag").length, 5);
  assert.equal(s.up.requests("perplexity").length, 5);
  const st = await adminStatus(s.w);
  assert.equal(lightragBreaker(st).state, "closed", "five no-context replies (threshold 3) are not failures");
  assert.equal(lightragBreaker(st).consecutive_failures, 0);
  const t = st.answer_aware.no_context.by_arm.treatment;
  assert.ok(t.no_context >= 5 && t.requests >= 5, JSON.stringify(t));
  assert.equal(st.answer_aware.no_context.by_arm.treatment.by_query_type.general?.no_context >= 5, true, JSON.stringify(t));
  const metrics = await (await s.w.fetch("/metrics", { headers: auth })).text();
  assert.match(metrics, /cmo_router_isolate_no_context\{scope="isolate",upstream="perplexity",arm="treatment"\} [1-9]/);
});

test("a no-context NDJSON stream falls back: the client's SSE holds Perplexity's answer and nothing of LightRAG's", async () => {
  s.up.setBehaviour("lightrag", { noContext: true });
  const { r, text } = await chat("nc-stream", OFF_TOPIC, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  assert.equal(r.headers.get("x-route-fallback"), "no_context");
  const sse = sseContent(text);
  assert.ok(sse.done);
  assert.match(sse.content, /^\[Perplexity/);
  assert.doesNotMatch(text, /no-context|not able to provide/);
  assert.equal(sse.last.routing.fallback_reason, "no_context");
  assert.equal(lightragBreaker(await adminStatus(s.w)).state, "closed");
});

test("the marker split across chunks is still found (stream, pieces 50 ms apart)", async () => {
  s.up.setBehaviour("lightrag", { noContext: true, lineSplits: ["Sorry, I'm not", "[no-con"], chunkDelayMs: 50 });
  const { r, text } = await chat("nc-split", OFF_TOPIC, { stream: true });
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
  assert.equal(r.headers.get("x-route-fallback"), "no_context");
  assert.doesNotMatch(text, /no-context|not able to provide|Sorry/);
  // Split without the marker: the text alone (a prefix of the canned reply) holds it back.
  s.up.reset();
  s.up.setBehaviour("lightrag", { noContext: true, lineSplits: [10, 30, 60], chunkDelayMs: 50 });
  const again = await chat("nc-split-2", OFF_TOPIC, { stream: true });
  assert.equal(again.r.headers.get("x-route-fallback"), "no_context");
  assert.doesNotMatch(again.text, /Sorry/);
});

test("LightRAG's LLM down (its slow 'No relevant context' reply) falls back, JSON and stream", async () => {
  s.up.setBehaviour("lightrag", { llmDown: true, llmDownMs: 200 });
  const j = await chat("down-json", Q);
  assert.equal(j.r.headers.get("x-route-fallback"), "no_context");
  assert.doesNotMatch(j.text, new RegExp(LIGHTRAG_NO_RESULT));
  const st = await chat("down-stream", Q, { stream: true });
  assert.equal(st.r.headers.get("x-route-fallback"), "no_context");
  assert.doesNotMatch(st.text, new RegExp(LIGHTRAG_NO_RESULT));
});

test("when no fallback can be made, or it fails, the held reply is served rather than an error", async () => {
  // Fallback off: LightRAG's reply after all, counted as no-context, no breaker failure.
  let r = await putConfig(s.w, { LIGHTRAG_FALLBACK_TO_PERPLEXITY: "false" });
  assert.equal(r.status, 200);
  s.up.setBehaviour("lightrag", { noContext: true });
  let c = await chat("held-off");
  assert.equal(c.r.status, 200);
  assert.equal(c.r.headers.get("x-route-upstream"), "lightrag");
  assert.equal(c.r.headers.get("x-route-fallback"), null);
  assert.equal(JSON.parse(c.text).choices[0].message.content, LIGHTRAG_NO_CONTEXT);
  assert.equal(s.up.requests("perplexity").length, 0);
  // Fallback on, but Perplexity fails: still LightRAG's reply, not a 502.
  r = await putConfig(s.w, {});
  assert.equal(r.status, 200);
  s.up.reset();
  s.up.setBehaviour("lightrag", { noContext: true });
  s.up.setBehaviour("perplexity", { status: 500 });
  c = await chat("held-failed");
  assert.equal(c.r.status, 200, c.text);
  assert.equal(c.r.headers.get("x-route-upstream"), "lightrag");
  assert.equal(JSON.parse(c.text).choices[0].message.content, LIGHTRAG_NO_CONTEXT);
  const sc = await chat("held-failed-stream", OFF_TOPIC, { stream: true });
  assert.equal(sc.r.status, 200);
  assert.equal(sc.r.headers.get("x-route-upstream"), "lightrag");
  assert.equal(sseContent(sc.text).content, LIGHTRAG_NO_CONTEXT);
  assert.equal(lightragBreaker(await adminStatus(s.w)).state, "closed");
});

test("a healthy stream commits on its first text: the client has it while LightRAG is still generating", async () => {
  // Two chunks, then 4 s of silence (well inside the 30 s idle limit), then the rest; the
  // hold-back limit is 10 s, so a client that sees text during the silence was not held.
  s.up.setBehaviour("lightrag", { chunks: 6, stallAfterChunks: 2, stallMs: 4000 });
  const r = await post(s.w, "/v1/chat/completions", chatBody(Q, { user: "healthy", stream: true }));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-route-upstream"), "lightrag");
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let seen = "";
  while (!/"content":"\[LightRAG/.test(seen)) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the stream ended before any text");
    seen += dec.decode(value, { stream: true });
  }
  const [entry] = s.up.requests("lightrag");
  assert.equal(entry.finishedAt, null, "the first text reached the client while LightRAG was still streaming");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += dec.decode(value, { stream: true });
  }
  assert.ok(entry.finishedAt !== null);
  assert.ok(sseContent(seen).done);
});

test("operator patterns catch an LLM that declines in its own words (JSON and stream)", async () => {
  const r = await putConfig(s.w, { LIGHTRAG_NO_CONTEXT_PATTERNS: "do not have enough information, keine Angaben" });
  assert.equal(r.status, 200, await r.text());
  const decline = "I do not have enough information to answer this question from the provided context.";
  s.up.setBehaviour("lightrag", { answerText: decline });
  const j = await chat("pattern-json", Q);
  assert.equal(j.r.headers.get("x-route-fallback"), "no_context");
  assert.doesNotMatch(j.text, /enough information/);
  const st = await chat("pattern-stream", Q, { stream: true });
  assert.equal(st.r.headers.get("x-route-fallback"), "no_context");
  assert.doesNotMatch(st.text, /enough information/);
  // A real answer passes the same check.
  s.up.reset();
  const ok = await chat("pattern-ok", Q, { stream: true });
  assert.equal(ok.r.headers.get("x-route-upstream"), "lightrag");
  assert.equal(ok.r.headers.get("x-route-fallback"), null);
});

test("LIGHTRAG_NO_CONTEXT_FALLBACK=false: answers pass unjudged", async () => {
  const r = await putConfig(s.w, { LIGHTRAG_NO_CONTEXT_FALLBACK: "false" });
  assert.equal(r.status, 200);
  s.up.setBehaviour("lightrag", { noContext: true });
  const c = await chat("off");
  assert.equal(c.r.headers.get("x-route-upstream"), "lightrag");
  assert.equal(JSON.parse(c.text).choices[0].message.content, LIGHTRAG_NO_CONTEXT);
});

test("a multi-turn chat reaches LightRAG whole: earlier turns as conversation_history, system as user_prompt", async () => {
  const messages = [
    { role: "system", content: "Answer for clinicians." },
    { role: "user", content: "What does citrate do in the TCA cycle?" },
    { role: "assistant", content: "Citrate is formed from acetyl-CoA and oxaloacetate." },
    { role: "user", content: "And isocitrate?" },
  ];
  const r = await post(s.w, "/v1/chat/completions", JSON.stringify({ model: "sonar", user: "multi", messages }));
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get("x-route-upstream"), "lightrag");
  const [req] = s.up.requests("lightrag");
  assert.equal(req.body.query, "And isocitrate?");
  assert.equal(req.body.user_prompt, "Answer for clinicians.");
  assert.deepEqual(req.body.conversation_history, [
    { role: "user", content: "What does citrate do in the TCA cycle?" },
    { role: "assistant", content: "Citrate is formed from acetyl-CoA and oxaloacetate." },
  ]);
  // Perplexity still gets the same conversation (its own shape).
  const p = await post(s.w, "/v1/chat/completions", JSON.stringify({ model: "sonar", user: "multi", messages, stream: false }), { "x-route-override": "perplexity", ...auth });
  assert.equal(p.headers.get("x-route-upstream"), "perplexity");
  assert.equal(s.up.requests("perplexity")[0].body.messages.length, 4);
});

test("a conversation over LightRAG's limits is trimmed, oldest first, not refused", async () => {
  const L = LIGHTRAG_LIMITS;
  const messages = [];
  for (let i = 0; i < 140; i++) {
    messages.push({ role: i % 2 ? "assistant" : "user", content: `turn ${i}: ` + "glycolysis ".repeat(100) });
  }
  // One turn over the per-message cap, and enough text overall to pass the total budget.
  messages[130] = { role: "user", content: "x".repeat(L.MAX_MESSAGE_CHARS + 5000) };
  messages.push({ role: "user", content: "How is pyruvate turned into lactate?" });
  const r = await post(s.w, "/v1/chat/completions", JSON.stringify({ model: "sonar", user: "long", messages }));
  const text = await r.text();
  assert.equal(r.status, 200, text);
  assert.equal(r.headers.get("x-route-upstream"), "lightrag", "LightRAG accepted the trimmed request");
  assert.equal(r.headers.get("x-route-fallback"), null);
  const [req] = s.up.requests("lightrag");
  const h = req.body.conversation_history;
  assert.ok(h.length <= L.MAX_MESSAGES_PER_REQUEST, `${h.length} turns`);
  assert.ok(h.every((m) => m.content.length <= L.MAX_MESSAGE_CHARS));
  assert.equal(h.at(-1).content, messages[139].content, "the newest turns are kept");
  assert.ok(!h.some((m) => m.content.startsWith("turn 0:")), "the oldest went first");
});

test("a 422 LightRAG gives for the request itself is the client's: not a breaker failure", async () => {
  s.up.setBehaviour("lightrag", { status: 422 });
  for (let i = 0; i < 4; i++) await chat(`r422-${i}`, Q);
  const st = await adminStatus(s.w);
  assert.equal(lightragBreaker(st).state, "closed");
  assert.equal(lightragBreaker(st).consecutive_failures, 0);
});
