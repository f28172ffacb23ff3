// When LightRAG fails and Perplexity's fallback answer is slow, LightRAG's breaker must learn of
// the failure when it happens, not when the fallback has finished: otherwise, while LightRAG is
// down and every fallback takes seconds (a long Perplexity answer), each new request still goes
// to LightRAG first and waits for it to fail. Found by the soak (tests/soak): under 20 clients
// ~10 failures were logged before the breaker opened on its threshold of 3.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, auth, waitFor } from "./common.mjs";

const Q = "How is glucose connected to lactate in metabolomics?";

test("a primary's failure reaches its breaker before the fallback has answered", async () => {
  const s = await startStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "100" } });
  try {
    s.up.setBehaviour("lightrag", { status: 500 });
    // Perplexity answers the fallbacks after 8 s (well within the budget they have left).
    s.up.setBehaviour("perplexity", { delayMs: 8000 });
    const settled = [];
    const requests = [1, 2, 3].map((i) =>
      post(s.w, "/v1/chat/completions", chatBody(Q, { user: `timing-${i}` })).then(async (r) => {
        settled.push(i);
        return { status: r.status, fallback: r.headers.get("x-route-fallback"), body: await r.text() };
      }),
    );
    await waitFor("LightRAG's breaker to open", async () => {
      const st = await (await s.w.fetch("/admin/status", { headers: auth })).json();
      return st.service_performance.circuit_breakers.lightrag.state === "open";
    }, { timeoutMs: 30_000, intervalMs: 50 });
    const answered = s.up.requests("perplexity").filter((e) => e.endAt !== undefined);
    assert.equal(answered.length, 0, "the breaker opened while the three fallbacks were still waiting for Perplexity");
    assert.deepEqual(settled, []);
    for (const r of await Promise.all(requests)) {
      assert.equal(r.status, 200, r.body);
      assert.equal(r.fallback, "lightrag->perplexity");
    }
  } finally {
    await s.close();
  }
});
