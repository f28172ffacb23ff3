// Configuration as the Worker reads it from its bindings: a typo'd LIGHTRAG_* var is reported
// (not silently ignored), the previous service's variables carry over (t/f booleans, the
// LIGHTRAG_ROUTING_RULES object form, also as a TOML table), and a value a policy cannot hold
// is refused naming its variable instead of resetting the whole policy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, auth, JSON_CT } from "./common.mjs";

const status = async (w) => (await w.fetch("/admin/status", { headers: auth })).json();
const config = async (w) => (await w.fetch("/admin/config", { headers: auth })).json();

test("an unknown LIGHTRAG_* var in wrangler.toml is reported by the Worker", async () => {
  const t = await startStack({ vars: { LIGHTRAG_ROLOUT_PERCENTAGE: "50" } });
  try {
    const st = await status(t.w);
    const p = st.config_problems.find((x) => x.variable === "LIGHTRAG_ROLOUT_PERCENTAGE");
    assert.ok(p, JSON.stringify(st.config_problems));
    assert.match(p.message, /unknown LIGHTRAG_ variable/);
    assert.equal(p.source, "vars");
    assert.equal(st.config_summary.rollout_percentage, 25, "the real variable still applies");
  } finally {
    await t.close();
  }
});

for (const [form, rules] of [
  ["a JSON string", JSON.stringify({ "long queries": { type: "query_length", min_length: 40 } })],
  ["a TOML table", { "long queries": { type: "query_length", min_length: 40 } }],
]) {
  test(`the previous service's variables carry over: t/f booleans and its rule object as ${form}`, async () => {
    const t = await startStack({
      vars: {
        LIGHTRAG_ROLLOUT_PERCENTAGE: "100",
        LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: "t",
        LIGHTRAG_FALLBACK_TO_PERPLEXITY: "f",
        LIGHTRAG_ROUTING_RULES: rules,
      },
    });
    try {
      const c = await config(t.w);
      assert.equal(c.effective.enable_conditional_routing, true);
      assert.equal(c.effective.fallback.lightrag_to_perplexity, false);
      assert.deepEqual(
        c.effective.routing_rules.map((r) => [r.name, r.action]),
        [["long-queries", "rollout"], ["legacy-no-rule-matched", "perplexity"]],
      );
      const notes = c.problems.filter((p) => p.severity === "note");
      assert.equal(notes.length, 1, JSON.stringify(c.problems));
      assert.equal(notes[0].variable, "LIGHTRAG_ROUTING_RULES");
      // As before: a question matching a rule goes by the rollout hash, any other to Perplexity.
      let r = await post(t.w, "/v1/chat/completions", chatBody("How do branched-chain amino acids affect insulin signalling?", { user: "legacy-1" }));
      await r.arrayBuffer();
      assert.equal(r.headers.get("x-route-reason"), "rollout_in");
      r = await post(t.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "legacy-1" }));
      await r.arrayBuffer();
      assert.equal(r.headers.get("x-route-reason"), "rule:legacy-no-rule-matched");
      assert.equal(r.headers.get("x-route-upstream"), "perplexity");
    } finally {
      await t.close();
    }
  });
}

test("PUT /admin/config refuses a breaker window the breaker cannot hold, naming it", async () => {
  const t = await startStack({ vars: { LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "7" } });
  try {
    const r = await t.w.fetch("/admin/config", {
      method: "PUT",
      headers: { ...auth, ...JSON_CT, "if-match": '"v0"' },
      body: JSON.stringify({ LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE: 200, LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: 60 }),
    });
    assert.equal(r.status, 422);
    const body = await r.json();
    assert.deepEqual(body.error.problems.map((p) => p.variable), ["LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE"]);
    assert.match(body.error.problems[0].message, /from 1 to 128/);
    // Nothing was stored; the operator's threshold still stands.
    const c = await config(t.w);
    assert.equal(c.version, 0);
    assert.equal(c.effective.breaker.failure_threshold, 7);
    assert.equal(c.effective.breaker.recovery_timeout_ms, 300000);
  } finally {
    await t.close();
  }
});
