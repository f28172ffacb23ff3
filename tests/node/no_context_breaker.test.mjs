// An outage hiding behind no-context replies (issue 11, Deliver 1): a LightRAG whose own LLM is
// down answers only its no-context text. With LIGHTRAG_NO_CONTEXT_BREAKER_RATE set, once the
// no-context share of LightRAG's recent replies crosses it, from enough distinct callers,
// further no-context replies are breaker failures and the breaker opens; one caller alone
// never gets there. Status shows the watch.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, adminStatus } from "./common.mjs";

let s;
before(async () => {
  s = await startStack({
    vars: {
      LIGHTRAG_ROLLOUT_PERCENTAGE: "100",
      LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "3",
      LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE: "10",
      LIGHTRAG_CIRCUIT_BREAKER_MINIMUM_CALLS: "4",
      LIGHTRAG_NO_CONTEXT_BREAKER_RATE: "0.8",
      LIGHTRAG_NO_CONTEXT_BREAKER_MIN_KEYS: "3",
    },
  });
});
after(async () => {
  await s?.close();
});

const ask = (user) => post(s.w, "/v1/chat/completions", chatBody("How is pyruvate turned into lactate?", { user }));

test("one caller's no-context replies never escalate; several callers' do, and the breaker opens", async () => {
  s.up.setBehaviour("lightrag", { noContext: true });
  for (let i = 0; i < 8; i++) {
    const r = await ask("lonely");
    assert.equal(r.headers.get("x-route-fallback"), "no_context");
    await r.text();
  }
  let st = await adminStatus(s.w);
  let watch = st.answer_aware.no_context.breaker_watch;
  assert.equal(watch.escalated, false, JSON.stringify(watch));
  assert.equal(watch.distinct_keys, 1);
  assert.equal(st.service_performance.circuit_breakers.lightrag.state, "closed");

  for (let i = 0; i < 6; i++) await (await ask(`caller-${i}`)).text();
  st = await adminStatus(s.w);
  watch = st.answer_aware.no_context.breaker_watch;
  assert.equal(watch.escalated, true, JSON.stringify(watch));
  assert.ok(watch.distinct_keys >= 3);
  assert.equal(st.service_performance.circuit_breakers.lightrag.state, "open", JSON.stringify(st.service_performance.circuit_breakers.lightrag));
  // Now LightRAG is skipped altogether.
  const r = await ask("after");
  assert.equal(r.headers.get("x-route-reason"), "circuit_open");
  assert.equal(r.headers.get("x-route-upstream"), "perplexity");
});
