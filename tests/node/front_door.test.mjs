// The front door in workerd: cohort split and stickiness (cross-checked against JS hashing),
// response headers, the seed /query shape, and 400/405/413 errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, positionHundredths, loadPreview, configVars } from "./common.mjs";

const SALT = "cmo_lightrag_2025";
let s;
// Positions, cohorts and arms are read from the operator-only headers, shown to every client
// here by ROUTER_EXPOSE_ROUTING_DETAIL (hidden by default: guard.test.mjs).
before(async () => {
  s = await startStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "25", LIGHTRAG_ENABLE_QUALITY_METRICS: "true", ROUTER_EXPOSE_ROUTING_DETAIL: "true" } });
});
after(async () => { await s?.close(); });

test("25 % rollout over 2,000 users: LightRAG share 25 ± 3 points, identical to JS hashing and the preview decide", async () => {
  const N = 2000;
  // `make test-worker` builds the preview first; without it this test fails rather than
  // skipping the comparison.
  const preview = await loadPreview();
  const vars = configVars(s.bindings);
  let compared = 0;
  let lightrag = 0;
  const batch = 50;
  for (let i = 0; i < N; i += batch) {
    const rs = await Promise.all(
      Array.from({ length: batch }, (_, j) => {
        const user = `user-${i + j}`;
        return post(s.w, "/v1/chat/completions", chatBody("How does glycolysis relate to lactate?", { user })).then(async (r) => {
          await r.arrayBuffer();
          return { user, r };
        });
      }),
    );
    for (const { user, r } of rs) {
      assert.equal(r.status, 200);
      const expected = positionHundredths(SALT, user);
      assert.equal(Math.round(Number(r.headers.get("x-route-position")) * 100), expected, `position of ${user}`);
      const inRollout = expected < 2500;
      assert.equal(r.headers.get("x-route-cohort"), inRollout ? "lightrag" : "perplexity", `cohort of ${user}`);
      assert.equal(r.headers.get("x-route-reason"), inRollout ? "rollout_in" : "rollout_out");
      if (r.headers.get("x-route-upstream") === "lightrag") lightrag++;
      const d = preview.decide(vars, { key: user, query: "How does glycolysis relate to lactate?" }, undefined);
      assert.equal(d.upstream, r.headers.get("x-route-cohort"), `preview upstream of ${user}`);
      assert.equal(d.reason, r.headers.get("x-route-reason"), `preview reason of ${user}`);
      assert.equal(d.arm, r.headers.get("x-route-arm"), `preview arm of ${user}`);
      assert.equal(d.position.toFixed(2), r.headers.get("x-route-position"), `preview position of ${user}`);
      compared++;
    }
  }
  assert.equal(compared, N);
  const share = (100 * lightrag) / N;
  assert.ok(Math.abs(share - 25) <= 3, `LightRAG share ${share}%`);
});

test("the same user always lands in the same cohort", async () => {
  const seen = new Set();
  for (let i = 0; i < 5; i++) {
    const r = await post(s.w, "/v1/chat/completions", chatBody(`question number ${i} about metabolites`, { user: "sticky-user" }));
    await r.arrayBuffer();
    seen.add(`${r.headers.get("x-route-cohort")}@${r.headers.get("x-route-position")}`);
  }
  assert.equal(seen.size, 1);
});

test("session id is the key when there is no user; anonymous users get a sticky cookie", async () => {
  const r1 = await post(s.w, "/query", JSON.stringify({ query_text: "What is metabolomics?", session_id: "sess-1" }));
  await r1.arrayBuffer();
  assert.equal(Math.round(Number(r1.headers.get("x-route-position")) * 100), positionHundredths(SALT, "sess-1"));
  assert.equal(r1.headers.get("set-cookie"), null);

  const a = await post(s.w, "/v1/chat/completions", chatBody("What is metabolomics?"));
  await a.arrayBuffer();
  const cookie = a.headers.get("set-cookie");
  assert.match(cookie, /^cmo_rid=[0-9a-f]{32}; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Lax$/);
  const id = cookie.split(";")[0].split("=")[1];
  assert.equal(Math.round(Number(a.headers.get("x-route-position")) * 100), positionHundredths(SALT, id));
  for (let i = 0; i < 3; i++) {
    const b = await post(s.w, "/v1/chat/completions", chatBody("And another question?"), { cookie: `other=1; cmo_rid=${id}` });
    await b.arrayBuffer();
    assert.equal(b.headers.get("set-cookie"), null, "no new cookie when one is sent back");
    assert.equal(b.headers.get("x-route-position"), a.headers.get("x-route-position"));
  }
  // Two anonymous users do not share one bucket.
  const c = await post(s.w, "/v1/chat/completions", chatBody("What is metabolomics?"));
  await c.arrayBuffer();
  assert.notEqual(c.headers.get("set-cookie").split(";")[0], cookie.split(";")[0]);
});

test("seed /query shape with routing facts and headers", async () => {
  const r = await post(s.w, "/query", JSON.stringify({ query_text: "latest news about metabolomics", user_id: "seed-user" }));
  assert.equal(r.status, 200);
  const b = await r.json();
  for (const k of ["content", "citations", "service_used", "routing", "processing_time_ms", "quality_score", "fallback_used", "success"]) {
    assert.ok(k in b, `missing ${k}`);
  }
  assert.equal(b.success, true);
  assert.equal(b.service_used, r.headers.get("x-route-upstream"));
  assert.equal(b.routing.reason, r.headers.get("x-route-reason"));
  assert.equal(b.routing.arm, r.headers.get("x-route-arm"));
  assert.ok(["treatment", "control", "none"].includes(b.routing.arm), `arm ${b.routing.arm}`);
  assert.equal(Math.round(b.routing.position * 100), positionHundredths(SALT, "seed-user"));
  assert.ok(b.content.length > 20);
  assert.ok(b.quality_score >= 0 && b.quality_score <= 1);
});

test("malformed input gets a 400 naming what was wrong", async () => {
  let r = await post(s.w, "/v1/chat/completions", "{not json");
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /invalid JSON/);
  r = await post(s.w, "/v1/chat/completions", JSON.stringify({ model: "x" }));
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /messages/);
  r = await post(s.w, "/v1/chat/completions", JSON.stringify({ messages: [{ role: "robot", content: "hi" }] }));
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /messages\[0\]\.role/);
  r = await post(s.w, "/query", JSON.stringify({ user_id: "x" }));
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /query_text/);
});

test("oversized bodies get 413, wrong methods 405, unknown routes 404", async () => {
  const big = chatBody("x".repeat(70_000));
  let r = await post(s.w, "/v1/chat/completions", big);
  assert.equal(r.status, 413);
  assert.equal((await r.json()).error.code, "too_large");
  r = await s.w.fetch("/v1/chat/completions");
  assert.equal(r.status, 405);
  assert.equal(r.headers.get("allow"), "POST, OPTIONS");
  await r.arrayBuffer();
  r = await s.w.fetch("/query", { method: "PUT", body: "{}" });
  assert.equal(r.status, 405);
  await r.arrayBuffer();
  r = await s.w.fetch("/nope");
  assert.equal(r.status, 404);
  await r.arrayBuffer();
});

test("upstream keys are sent as X-API-Key and Bearer, never echoed", async () => {
  s.up.reset();
  // One request forced to each upstream (the override needs the admin token).
  for (const u of ["lightrag", "perplexity"]) {
    const r = await post(s.w, "/v1/chat/completions", chatBody("glucose and lactate?", { user: "key-check" }), {
      "x-route-override": u,
      authorization: "Bearer test-admin-token",
    });
    const text = await r.text();
    assert.equal(r.headers.get("x-route-upstream"), u);
    assert.ok(!text.includes("lr-key") && !text.includes("px-key"));
  }
  assert.equal(s.up.requests("lightrag").length, 1);
  assert.equal(s.up.requests("perplexity").length, 1);
  assert.equal(s.up.requests("lightrag")[0].headers["x-api-key"], "lr-key");
  assert.equal(s.up.requests("perplexity")[0].headers.authorization, "Bearer px-key");
});

test("the cohort override header needs the admin token", async () => {
  const user = "override-user";
  const plain = await post(s.w, "/v1/chat/completions", chatBody("glucose?", { user }), { "x-route-override": "lightrag" });
  await plain.arrayBuffer();
  assert.notEqual(plain.headers.get("x-route-reason"), "forced");
  const authed = await post(s.w, "/v1/chat/completions", chatBody("glucose metabolism?", { user }), {
    "x-route-override": "lightrag",
    authorization: "Bearer test-admin-token",
  });
  await authed.arrayBuffer();
  assert.equal(authed.headers.get("x-route-reason"), "forced");
  assert.equal(authed.headers.get("x-route-upstream"), "lightrag");
});
