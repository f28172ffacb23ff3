// Shadow comparison (issue 11, Deliver 3) in workerd: at LIGHTRAG_SHADOW_PERCENTAGE=100 every
// request Perplexity served is also asked of LightRAG from wait_until; users get only
// Perplexity's answers, sent before LightRAG has finished; the shadow series fills (status and
// metrics); the per-isolate per-minute cap holds; no shadow while LightRAG's breaker is open;
// a shadow's failures never touch LightRAG's breaker.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, adminStatus, waitFor, auth } from "./common.mjs";

const Q = "How is pyruvate turned into lactate?";

let s;
before(async () => {
  s = await startStack({
    vars: {
      // Nobody in the LightRAG cohort: a dark launch.
      LIGHTRAG_ROLLOUT_PERCENTAGE: "0",
      LIGHTRAG_SHADOW_PERCENTAGE: "100",
      LIGHTRAG_SHADOW_MAX_PER_MINUTE: "1000",
      LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "2",
    },
  });
});
after(async () => {
  await s?.close();
});
beforeEach(async () => {
  s.up.reset();
  await (await s.w.fetch("/admin/breaker/lightrag/reset", { method: "POST", headers: auth })).text();
});

const series = async () => (await adminStatus(s.w)).answer_aware.shadow.series;

test("shadow at 100 %: LightRAG gets every question, users get only Perplexity, before LightRAG finishes", async () => {
  const before = (await series()).calls;
  // LightRAG takes 1.5 s to its first text: the users' answers must not wait for it.
  s.up.setBehaviour("lightrag", { ttfbDelayMs: 1500 });
  const answered = [];
  for (let i = 0; i < 3; i++) {
    const r = await post(s.w, "/v1/chat/completions", chatBody(`${Q} (${i})`, { user: `dark-${i}` }));
    const b = await r.json();
    answered.push(Date.now());
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-route-upstream"), "perplexity");
    assert.equal(r.headers.get("x-route-fallback"), null);
    assert.match(b.choices[0].message.content, /^\[Perplexity/);
  }
  // A stream too: the shadow starts when Perplexity's stream commits.
  const st = await post(s.w, "/v1/chat/completions", chatBody(`${Q} (stream)`, { user: "dark-s", stream: true }));
  assert.equal(st.headers.get("x-route-upstream"), "perplexity");
  assert.doesNotMatch(await st.text(), /LightRAG/);
  answered.push(Date.now());

  const reqs = await waitFor("LightRAG to receive the four shadow questions", () => {
    const r = s.up.requests("lightrag");
    return r.length >= 4 && r.every((e) => e.finishedAt) && r;
  });
  assert.equal(reqs.length, 4);
  assert.ok(reqs.every((e) => e.path === "/query/stream"));
  assert.deepEqual(reqs.map((e) => e.body.query).sort(), [0, 1, 2, "stream"].map((i) => `${Q} (${i})`).sort());
  // Each user had Perplexity's answer before LightRAG had finished answering the same question.
  for (let i = 0; i < 4; i++) {
    const e = reqs.find((x) => x.body.query === `${Q} (${i === 3 ? "stream" : i})`);
    assert.ok(e.finishedAt > answered[i], `user ${i} answered at ${answered[i]}, LightRAG finished at ${e.finishedAt}`);
  }
  const sh = await waitFor("the shadow series to count them", async () => {
    const x = await series();
    return x.calls >= before + 4 && x;
  });
  assert.equal(sh.successes - 0 >= 4, true, JSON.stringify(sh));
  assert.ok(sh.first_byte_p50_ms >= 1000, `first byte ${sh.first_byte_p50_ms} ms (LightRAG waited 1.5 s)`);
  assert.ok(sh.total_p50_ms >= sh.first_byte_p50_ms);
  assert.ok(sh.quality_n >= 4 && sh.quality_mean > 0, "shadow answers are scored");
  // The arms know nothing of it: the treatment arm is empty.
  const st2 = await adminStatus(s.w);
  assert.equal(st2.answer_aware.no_context.by_arm.treatment.requests, 0);
  const metrics = await (await s.w.fetch("/metrics", { headers: auth })).text();
  assert.match(metrics, /cmo_router_isolate_shadow_calls\{scope="isolate"\} [4-9]/);
});

test("shadow no-context replies are counted in the series; shadow failures never touch the breaker", async () => {
  const before = await series();
  s.up.setBehaviour("lightrag", { noContext: true, times: 2 });
  for (let i = 0; i < 2; i++) await (await post(s.w, "/v1/chat/completions", chatBody(Q, { user: `nc-${i}` }))).text();
  const sh = await waitFor("two no-context shadows", async () => {
    const x = await series();
    return x.no_context >= before.no_context + 2 && x;
  });
  assert.ok(sh.no_context_rate > 0);
  s.up.setBehaviour("lightrag", { status: 500 });
  for (let i = 0; i < 4; i++) await (await post(s.w, "/v1/chat/completions", chatBody(Q, { user: `err-${i}` }))).text();
  await waitFor("four failed shadows", async () => (await series()).errors >= before.errors + 4);
  const st = await adminStatus(s.w);
  assert.equal(st.service_performance.circuit_breakers.lightrag.state, "closed", "threshold 2, four shadow 500s");
  assert.equal(st.service_performance.circuit_breakers.lightrag.total_requests, 0);
});

test("no shadow while LightRAG's breaker is open", async () => {
  await (await s.w.fetch("/admin/breaker/lightrag/open", { method: "POST", headers: auth })).text();
  const skipped = (await adminStatus(s.w)).answer_aware.shadow.gate.skipped_breaker;
  for (let i = 0; i < 3; i++) await (await post(s.w, "/v1/chat/completions", chatBody(Q, { user: `open-${i}` }))).text();
  const gate = (await adminStatus(s.w)).answer_aware.shadow.gate;
  assert.equal(gate.skipped_breaker, skipped + 3);
  assert.equal(s.up.requests("lightrag").length, 0);
});

test("the per-isolate per-minute cap holds", async () => {
  const capped = await startStack({
    vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "0", LIGHTRAG_SHADOW_PERCENTAGE: "100", LIGHTRAG_SHADOW_MAX_PER_MINUTE: "2" },
  });
  try {
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) {
      const r = await post(capped.w, "/v1/chat/completions", chatBody(Q, { user: `cap-${i}` }));
      assert.equal(r.headers.get("x-route-upstream"), "perplexity");
      await r.text();
    }
    const t1 = Date.now();
    const minutes = Math.floor(t1 / 60000) - Math.floor(t0 / 60000) + 1;
    const gate = await waitFor("the gate to have counted six requests", async () => {
      const g = (await adminStatus(capped.w)).answer_aware.shadow.gate;
      return g.started + g.skipped_cap >= 6 && g;
    });
    assert.ok(gate.started <= 2 * minutes, JSON.stringify(gate));
    assert.ok(gate.skipped_cap >= 6 - 2 * minutes, JSON.stringify(gate));
    await waitFor("the admitted shadows to reach LightRAG", () => capped.up.requests("lightrag").length >= gate.started);
    assert.equal(capped.up.requests("lightrag").length, gate.started);
  } finally {
    await capped.close();
  }
});
