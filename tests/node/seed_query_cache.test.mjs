// `POST /query` as the previous service answered it (issue 11, Deliver 4) and the opt-in
// response cache (Deliver 5), in workerd: the router sends the previous service's Perplexity
// body (model, temperature 0.1, no Wikipedia, the confidence-score prompt), returns
// `confidence_scores` per citation with the annotations stripped, honours `query_type` as a
// rule condition and `timeout_seconds` within the configured budget; the cache answers hits as
// such, never across cohorts, and never counts them as fresh outcomes.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, putConfig, adminStatus, waitFor, userIn } from "./common.mjs";

const SALT = "cmo_lightrag_2025";
const LR = userIn(SALT, 50, true, "cache-lr");
const PX = userIn(SALT, 50, false, "cache-px");
// A question the classifier calls general, so the mechanism rule below leaves it to the rollout.
const Q = "Tell me about lactate levels in sepsis";

let s;
before(async () => {
  s = await startStack({
    vars: {
      LIGHTRAG_ROLLOUT_PERCENTAGE: "50",
      LIGHTRAG_RESPONSE_CACHE_SECONDS: "120",
      LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: "true",
      LIGHTRAG_ROUTING_RULES: JSON.stringify([{ name: "mechanisms-to-lightrag", when: { query_type: "mechanism" }, action: "lightrag" }]),
    },
  });
});
after(async () => {
  await s?.close();
});
beforeEach(async () => {
  s.up.reset();
  const r = await putConfig(s.w, {});
  assert.equal(r.status, 200);
});

const query = (body) => post(s.w, "/query", JSON.stringify(body));

test("/query sends the previous service's Perplexity body and returns confidence_scores", async () => {
  const r = await query({ query_text: "What is new in lipidomics this year?", user_id: PX });
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  assert.equal(b.service_used, "perplexity");
  const [req] = s.up.requests("perplexity");
  assert.equal(req.body.model, "sonar");
  assert.equal(req.body.temperature, 0.1);
  assert.deepEqual(req.body.search_domain_filter, ["-wikipedia.org"]);
  assert.equal(req.body.messages.length, 2);
  assert.equal(req.body.messages[0].role, "system");
  assert.match(req.body.messages[0].content, /expert in clinical metabolomics/);
  assert.match(req.body.messages[0].content, /\(confidence score: X\.X\)/);
  assert.deepEqual(req.body.messages[1], { role: "user", content: "What is new in lipidomics this year?" });
  assert.deepEqual(b.confidence_scores, { 1: 0.9, 2: 0.7 });
  assert.doesNotMatch(b.content, /confidence score/i);
  assert.match(b.content, /glycolysis \[1\]/);
  assert.equal(b.cached, false);
  // Every parameter can be overridden.
  const p = await putConfig(s.w, {
    PERPLEXITY_QUERY_MODEL: "sonar-pro",
    PERPLEXITY_QUERY_TEMPERATURE: 0.3,
    PERPLEXITY_QUERY_SEARCH_DOMAIN_FILTER: "[]",
    PERPLEXITY_QUERY_SYSTEM_PROMPT: "Be brief.",
  });
  assert.equal(p.status, 200, await p.text());
  s.up.reset();
  const b2 = await (await query({ query_text: "What is new in lipidomics this year?", user_id: PX })).json();
  const [req2] = s.up.requests("perplexity");
  assert.equal(req2.body.model, "sonar-pro");
  assert.equal(req2.body.temperature, 0.3);
  assert.deepEqual(req2.body.search_domain_filter, []);
  assert.equal(req2.body.messages[0].content, "Be brief.");
  assert.deepEqual(b2.confidence_scores, {});
  // The chat endpoint stays a pass-through: the client's own messages and model.
  s.up.reset();
  await (await post(s.w, "/v1/chat/completions", chatBody("What is new in lipidomics this year?", { user: PX }))).text();
  const [chatReq] = s.up.requests("perplexity");
  assert.equal(chatReq.body.temperature, undefined);
  assert.equal(chatReq.body.messages.length, 1);
});

test("/query honours query_type as a rule condition and timeout_seconds within the budget", async () => {
  // "Tell me about X" classifies as general; the caller says it is a mechanism question.
  const q = "Tell me about lactate dehydrogenase";
  let b = await (await query({ query_text: q, user_id: PX })).json();
  assert.equal(b.service_used, "perplexity");
  assert.equal(b.routing.reason, "rollout_out");
  b = await (await query({ query_text: q, user_id: PX, query_type: "mechanism" })).json();
  assert.equal(b.service_used, "lightrag");
  assert.equal(b.routing.reason, "rule:mechanisms-to-lightrag");
  // LightRAG needs 8 s; the caller allows 5 s (the primary gets half, a fallback needs at
  // least 2 s left): Perplexity answers. The configured 30 s budget would have waited.
  s.up.reset();
  s.up.setBehaviour("lightrag", { delayMs: 8000 });
  const r = await query({ query_text: Q, user_id: LR, timeout_seconds: 5 });
  b = await r.json();
  assert.equal(b.service_used, "perplexity", JSON.stringify(b));
  assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
  assert.equal(b.fallback_used, true);
  const bad = await query({ query_text: Q, timeout_seconds: -1 });
  assert.equal(bad.status, 400);
});

test("the response cache: hits are reported, never cross cohorts, never count as outcomes", async () => {
  const counts = async () => (await adminStatus(s.w)).answer_aware.response_cache.counts;
  const total = async () => (await adminStatus(s.w)).service_performance.performance;
  // A LightRAG-cohort user: a miss, then stored in the background.
  const first = await post(s.w, "/v1/chat/completions", chatBody(Q, { user: LR }));
  const firstBody = await first.json();
  assert.equal(first.headers.get("x-route-upstream"), "lightrag");
  assert.equal(first.headers.get("x-route-cache"), null);
  await waitFor("the LightRAG answer to be stored", async () => (await counts()).lightrag?.stored >= 1);
  const lrCalls = s.up.requests("lightrag").length;
  const perfBefore = await total();
  // The same question, differently spelt, from the same cohort: a hit, LightRAG not asked.
  const hit = await post(s.w, "/v1/chat/completions", chatBody("  tell me about LACTATE   levels in sepsis? ", { user: LR }));
  const hitBody = await hit.json();
  assert.equal(hit.headers.get("x-route-cache"), "hit");
  assert.equal(hit.headers.get("x-route-upstream"), "lightrag");
  assert.equal(hitBody.routing.cache, "hit");
  assert.equal(hitBody.choices[0].message.content, firstBody.choices[0].message.content);
  assert.equal(s.up.requests("lightrag").length, lrCalls);
  // A Perplexity-cohort user asking the same: Perplexity's own answer, never LightRAG's.
  const px = await post(s.w, "/v1/chat/completions", chatBody(Q, { user: PX }));
  const pxBody = await px.json();
  assert.equal(px.headers.get("x-route-upstream"), "perplexity");
  assert.equal(px.headers.get("x-route-cache"), null);
  assert.match(pxBody.choices[0].message.content, /^\[Perplexity/);
  await waitFor("the Perplexity answer to be stored", async () => (await counts()).perplexity?.stored >= 1);
  const pxHit = await post(s.w, "/v1/chat/completions", chatBody(Q, { user: PX }));
  const pxHitBody = await pxHit.json();
  assert.equal(pxHit.headers.get("x-route-cache"), "hit");
  assert.match(pxHitBody.choices[0].message.content, /^\[Perplexity/);
  // And the LightRAG user still gets LightRAG's.
  const lrAgain = await (await post(s.w, "/v1/chat/completions", chatBody(Q, { user: LR }))).json();
  assert.match(lrAgain.choices[0].message.content, /^\[LightRAG/);
  // Hits are counted as hits, not as requests.
  const c = await counts();
  assert.ok(c.lightrag.hits >= 2 && c.perplexity.hits >= 1, JSON.stringify(c));
  const perfAfter = await total();
  assert.equal(perfAfter.lightrag.total_requests, perfBefore.lightrag.total_requests, "a hit is no fresh outcome");
  // A no-context reply is never cached; neither is a conversation with history.
  s.up.setBehaviour("lightrag", { noContext: true });
  const nc = await post(s.w, "/v1/chat/completions", chatBody("Who won the football world cup in 1998?", { user: LR }));
  assert.equal(nc.headers.get("x-route-fallback"), "no_context");
  await nc.text();
  const stored = (await counts()).lightrag.stored;
  s.up.reset();
  const nc2 = await post(s.w, "/v1/chat/completions", chatBody("Who won the football world cup in 1998?", { user: LR }));
  assert.equal(nc2.headers.get("x-route-cache"), null, "the no-context reply was not cached under LightRAG");
  await nc2.text();
  assert.equal((await counts()).lightrag.stored >= stored, true);
});

test("the seed /query uses the cache too, and marks hits", async () => {
  const q = "Which enzymes regulate glycolysis flux?";
  const a = await (await query({ query_text: q, user_id: LR })).json();
  assert.equal(a.cached, false);
  await waitFor("stored", async () => {
    const r = await (await query({ query_text: q, user_id: LR })).json();
    return r.cached === true && r;
  });
});
