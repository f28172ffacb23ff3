// The front door against hostile clients, in workerd (Miniflare 4) with the release bundle:
// client token, application/json only, the model allow list, CORS, per-key rate limiting with
// the Workers Rate Limiting binding (Miniflare emulates it), upstream URLs that never receive a
// key over http outside development, the operator-only routing detail, and JSON error bodies
// that say what was wrong (docs/architecture.md#the-front-door-guard).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, auth, ADMIN, waitFor } from "./common.mjs";

const CLIENT = "client-token-for-tests";
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const status = async (w) => (await w.fetch("/admin/status", { headers: auth })).json();

/** A JSON error body naming what was wrong. */
async function jsonError(r, status, code, pattern) {
  assert.equal(r.status, status);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  const b = await r.json();
  assert.equal(b.error.status, status);
  assert.equal(b.error.code, code);
  if (pattern) assert.match(b.error.message, pattern);
  return b;
}

async function withStack(opts, fn) {
  const s = await startStack(opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

test("production without ROUTER_CLIENT_TOKEN refuses chat traffic (503 naming it) and says so in status", async () => {
  await withStack({ vars: { ROUTER_ENV: "production" } }, async (s) => {
    for (const [path, body] of [
      ["/v1/chat/completions", chatBody("What is lactate?", { user: "u1" })],
      ["/query", JSON.stringify({ query_text: "What is lactate?", user_id: "u1" })],
    ]) {
      await jsonError(await post(s.w, path, body), 503, "client_auth_unconfigured", /ROUTER_CLIENT_TOKEN/);
      // Not even the admin token gets through a misconfigured production router.
      await jsonError(await post(s.w, path, body, auth), 503, "client_auth_unconfigured");
    }
    assert.equal(s.up.requests("perplexity").length + s.up.requests("lightrag").length, 0);
    const st = await status(s.w);
    const p = st.config_problems.find((x) => x.variable === "ROUTER_CLIENT_TOKEN");
    assert.ok(p, JSON.stringify(st.config_problems));
    assert.equal(p.source, "secrets");
    // http mock upstreams in production: reported against their variables.
    for (const v of ["LIGHTRAG_BASE_URL", "PERPLEXITY_BASE_URL"]) {
      assert.ok(st.config_problems.some((x) => x.variable === v && /not https/.test(x.message)), v);
    }
    assert.ok(st.config_problems.some((x) => x.variable === "ROUTER_RATE_LIMIT"));
  });
});

test("client token: missing, empty, wrong, over-long → 401 JSON; right token or admin token → 200", async () => {
  await withStack({ vars: { ROUTER_CLIENT_TOKEN: `${CLIENT}\n`, LIGHTRAG_ROLLOUT_PERCENTAGE: "0" } }, async (s) => {
    const body = chatBody("What is lactate?", { user: "auth-user" });
    await jsonError(await post(s.w, "/v1/chat/completions", body), 401, "unauthorized", /missing/);
    await jsonError(await post(s.w, "/v1/chat/completions", body, { authorization: "Bearer " }), 401, "unauthorized", /missing/);
    await jsonError(await post(s.w, "/v1/chat/completions", body, bearer("nope")), 401, "unauthorized", /invalid client token/);
    await jsonError(await post(s.w, "/v1/chat/completions", body, bearer(CLIENT.slice(0, -1))), 401, "unauthorized");
    await jsonError(await post(s.w, "/v1/chat/completions", body, bearer("x".repeat(16_000))), 401, "unauthorized");
    await jsonError(await post(s.w, "/query", JSON.stringify({ query_text: "What is lactate?" }), bearer("nope")), 401, "unauthorized");
    assert.equal(s.up.requests("perplexity").length, 0, "nothing reached an upstream");
    // The stored token had a trailing newline: it still matches.
    let r = await post(s.w, "/v1/chat/completions", body, bearer(CLIENT));
    assert.equal(r.status, 200, await r.text());
    r = await post(s.w, "/v1/chat/completions", body, auth);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  });
});

test("development without a client token lets any caller through (make dev)", async () => {
  await withStack({}, async (s) => {
    const r = await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "dev-user" }), bearer("sk-anything"));
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  });
});

test("every body-reading route takes application/json only: 415 JSON naming the type", async () => {
  await withStack({}, async (s) => {
    const routes = [
      ["POST", "/v1/chat/completions", chatBody("What is lactate?")],
      ["POST", "/query", JSON.stringify({ query_text: "What is lactate?" })],
      ["POST", "/ofrep/v1/evaluate/flags/lightrag-routing", JSON.stringify({ context: { targetingKey: "u" } })],
      ["POST", "/ofrep/v1/evaluate/flags", JSON.stringify({ context: { targetingKey: "u" } })],
      ["PUT", "/admin/config", "{}"],
    ];
    for (const [method, path, body] of routes) {
      for (const ct of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", null]) {
        const headers = { ...(ct ? { "content-type": ct } : {}), ...(path === "/admin/config" ? { ...auth, "if-match": "*" } : {}) };
        // A string body would get `text/plain;charset=UTF-8` from fetch; bytes get no type.
        const r = await s.w.fetch(path, { method, headers, body: ct ? body : Buffer.from(body) });
        const b = await jsonError(r, 415, "unsupported_media_type", /application\/json/);
        assert.match(b.error.message, ct ? new RegExp(ct.split(";")[0].replace("/", "\\/")) : /no Content-Type/, `${path} ${ct}`);
      }
    }
    assert.equal(s.up.requests("perplexity").length + s.up.requests("lightrag").length, 0);
  });
});

test("only configured models reach Perplexity: an unlisted model is 400 naming the allowed ones", async () => {
  await withStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "0" } }, async (s) => {
    const b = await jsonError(
      await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "m1", model: "sonar-deep-research" })),
      400,
      "model_not_allowed",
      /`sonar-deep-research` is not allowed; use one of: sonar/,
    );
    assert.ok(b.error.message.includes("LIGHTRAG_ALLOWED_MODELS"));
    assert.equal(s.up.requests("perplexity").length, 0);
    let r = await post(s.w, "/v1/chat/completions", JSON.stringify({ user: "m1", messages: [{ role: "user", content: "What is lactate?" }] }));
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    r = await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "m1", model: "sonar" }));
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    assert.deepEqual(s.up.requests("perplexity").map((q) => q.body.model), ["sonar", "sonar"]);
  });
  await withStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "0", LIGHTRAG_ALLOWED_MODELS: "sonar-pro, sonar-reasoning" } }, async (s) => {
    const r = await post(s.w, "/v1/chat/completions", JSON.stringify({ user: "m2", messages: [{ role: "user", content: "What is lactate?" }] }));
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    assert.equal(s.up.requests("perplexity")[0].body.model, "sonar-pro", "no model named: the first allowed");
    await jsonError(await post(s.w, "/v1/chat/completions", chatBody("x?", { model: "sonar" })), 400, "model_not_allowed", /sonar-pro, sonar-reasoning/);
  });
});

test("CORS: listed origins get preflight answers and Allow-Origin on chat and OFREP; others get none", async () => {
  const ok = "http://127.0.0.1:5173";
  await withStack({ vars: { ROUTER_ALLOWED_ORIGINS: `${ok}, https://chat.example.org` } }, async (s) => {
    for (const path of ["/v1/chat/completions", "/query", "/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/lightrag-routing"]) {
      let r = await s.w.fetch(path, {
        method: "OPTIONS",
        headers: { origin: ok, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
      });
      assert.equal(r.status, 204, path);
      assert.equal(r.headers.get("access-control-allow-origin"), ok);
      assert.match(r.headers.get("access-control-allow-methods"), /POST/);
      assert.match(r.headers.get("access-control-allow-headers"), /content-type/);
      assert.equal(r.headers.get("access-control-max-age"), "600");
      assert.match(r.headers.get("vary"), /Origin/);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
      await r.arrayBuffer();
      r = await s.w.fetch(path, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
      assert.equal(r.status, 204);
      assert.equal(r.headers.get("access-control-allow-origin"), null, `${path}: no CORS for others`);
      assert.equal(r.headers.get("access-control-allow-methods"), null);
      await r.arrayBuffer();
    }
    const body = JSON.stringify({ context: { targetingKey: "cors-user" } });
    let r = await post(s.w, "/ofrep/v1/evaluate/flags", body, { origin: ok });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("access-control-allow-origin"), ok);
    assert.match(r.headers.get("access-control-expose-headers"), /etag/);
    assert.match(r.headers.get("vary"), /Origin/);
    await r.arrayBuffer();
    r = await post(s.w, "/ofrep/v1/evaluate/flags", body, { origin: "https://evil.example" });
    assert.equal(r.headers.get("access-control-allow-origin"), null);
    await r.arrayBuffer();
    r = await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "c1" }), { origin: "https://chat.example.org" });
    assert.equal(r.headers.get("access-control-allow-origin"), "https://chat.example.org");
    await r.arrayBuffer();
    // Admin routes never answer CORS.
    r = await s.w.fetch("/admin/status", { headers: { ...auth, origin: ok } });
    assert.equal(r.headers.get("access-control-allow-origin"), null);
    await r.arrayBuffer();
  });
});

test("rate limit per stickiness key: 429 JSON with Retry-After; limited requests touch no upstream, breaker or metrics", async () => {
  const LIMIT = 3;
  await withStack(
    {
      vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "100" },
      options: { ratelimits: { ROUTER_RATE_LIMIT: { simple: { limit: LIMIT, period: 60 } } } },
    },
    async (s) => {
      // The binding counts in fixed minute windows: start early in one so all requests share it.
      await waitFor("the start of a rate-limit window", () => Date.now() % 60_000 < 40_000, { timeoutMs: 30_000, intervalMs: 200 });
      const send = (user) => post(s.w, "/v1/chat/completions", chatBody("How does the TCA cycle affect lactate?", { user }));
      const statuses = [];
      for (let i = 0; i < LIMIT + 4; i++) {
        const r = await send("limited-user");
        statuses.push(r.status);
        if (r.status === 429) {
          const b = await jsonError(r, 429, "rate_limited", /per user/);
          const ra = Number(r.headers.get("retry-after"));
          assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 60, `Retry-After ${ra}`);
          assert.ok(b.error.retry_after_s >= 1);
        } else {
          await r.arrayBuffer();
        }
      }
      assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429, 429]);
      // Another user is not limited by the first one's traffic (the chat app calls from one address).
      const other = await send("other-user");
      assert.equal(other.status, 200);
      await other.arrayBuffer();
      assert.equal(s.up.requests("lightrag").length, LIMIT + 1, "limited requests never reached LightRAG");
      const st = await status(s.w);
      assert.equal(st.service_performance.circuit_breakers.lightrag.total_requests, LIMIT + 1);
      assert.equal(st.service_performance.performance.lightrag.total_requests, LIMIT + 1);
      assert.equal(st.service_performance.performance.perplexity.total_requests, 0);
      // Anonymous callers without any id are counted by address, not given a fresh bucket each.
      const anon = [];
      for (let i = 0; i < LIMIT + 1; i++) {
        const r = await post(s.w, "/v1/chat/completions", chatBody("What is lactate?"), { "cf-connecting-ip": "203.0.113.7" });
        anon.push(r.status);
        await r.arrayBuffer();
      }
      assert.deepEqual(anon, [200, 200, 200, 429]);
    },
  );
});

test("base URLs are never runtime overrides (422 naming the variable); https only outside development", async () => {
  await withStack({}, async (s) => {
    const cur = await (await s.w.fetch("/admin/config", { headers: auth })).json();
    for (const [k, v] of [["PERPLEXITY_BASE_URL", "https://attacker.example"], ["LIGHTRAG_BASE_URL", "https://attacker.example"], ["ROUTER_ENV", "development"]]) {
      const r = await s.w.fetch("/admin/config", {
        method: "PUT",
        headers: { ...auth, "content-type": "application/json", "if-match": cur.etag },
        body: JSON.stringify({ [k]: v }),
      });
      const b = await jsonError(r, 422, "invalid_config");
      assert.deepEqual(b.error.problems.map((p) => p.variable), [k]);
      assert.match(b.error.problems[0].message, /wrangler vars or secrets only/);
    }
  });
  // Production with a client token and plain-http upstreams: the keys are never sent.
  await withStack({ vars: { ROUTER_ENV: "production", ROUTER_CLIENT_TOKEN: CLIENT, LIGHTRAG_ROLLOUT_PERCENTAGE: "0" } }, async (s) => {
    const r = await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "p1" }), bearer(CLIENT));
    assert.ok(r.status >= 500, `status ${r.status}`);
    await r.arrayBuffer();
    assert.equal(s.up.requests("perplexity").length, 0, "no request (and no key) went to the http upstream");
    assert.equal(s.up.requests("lightrag").length, 0);
  });
});

test("cohort, position, arm and config version go to admin-token requests only", async () => {
  await withStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "50" } }, async (s) => {
    const body = chatBody("What is lactate?", { user: "detail-user" });
    let r = await post(s.w, "/v1/chat/completions", body);
    for (const h of ["x-route-cohort", "x-route-position", "x-route-arm", "x-route-config-version"]) {
      assert.equal(r.headers.get(h), null, h);
    }
    assert.ok(r.headers.get("x-route-upstream"));
    assert.ok(r.headers.get("x-route-reason"));
    let b = await r.json();
    assert.equal(b.routing.position, null, "no position in the body either");
    r = await post(s.w, "/v1/chat/completions", body, auth);
    assert.match(r.headers.get("x-route-position"), /^\d+\.\d\d$/);
    assert.ok(r.headers.get("x-route-cohort") && r.headers.get("x-route-arm") && r.headers.get("x-route-config-version"));
    b = await r.json();
    assert.equal(typeof b.routing.position, "number");
    // OFREP: the position is operator detail too.
    const ev = JSON.stringify({ context: { targetingKey: "detail-user" } });
    let o = await (await post(s.w, "/ofrep/v1/evaluate/flags/lightrag-routing", ev)).json();
    assert.equal(o.metadata.position, undefined);
    o = await (await post(s.w, "/ofrep/v1/evaluate/flags/lightrag-routing", ev, auth)).json();
    assert.equal(typeof o.metadata.position, "number");
  });
  await withStack({ vars: { ROUTER_EXPOSE_ROUTING_DETAIL: "true" } }, async (s) => {
    const r = await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "detail-user" }));
    assert.ok(r.headers.get("x-route-position"), "the variable shows it to everyone");
    await r.arrayBuffer();
  });
});

test("the override header is ignored without the admin token, even with the client token", async () => {
  await withStack({ vars: { ROUTER_CLIENT_TOKEN: CLIENT, LIGHTRAG_ROLLOUT_PERCENTAGE: "0" } }, async (s) => {
    const body = chatBody("What is lactate?", { user: "ov-user" });
    for (const headers of [bearer(CLIENT), { ...bearer(CLIENT), "x-route-override": "lightrag" }]) {
      const r = await post(s.w, "/v1/chat/completions", body, { ...headers, "x-route-override": "lightrag" });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-route-upstream"), "perplexity");
      assert.notEqual(r.headers.get("x-route-reason"), "override");
      await r.arrayBuffer();
    }
    const r = await post(s.w, "/v1/chat/completions", body, { ...auth, "x-route-override": "lightrag" });
    assert.equal(r.headers.get("x-route-upstream"), "lightrag");
    await r.arrayBuffer();
  });
});

test("admin endpoints: missing, empty, wrong, over-long and right tokens", async () => {
  await withStack({ vars: { ADMIN_TOKEN: `${ADMIN}\n` } }, async (s) => {
    const routes = [
      ["GET", "/admin/status"],
      ["GET", "/admin/config"],
      ["GET", "/metrics"],
      ["POST", "/admin/breaker/lightrag/reset"],
      ["POST", "/admin/metrics/flush"],
      ["POST", "/admin/controller/tick"],
    ];
    for (const [method, path] of routes) {
      for (const [headers, why] of [
        [{}, /missing/],
        [{ authorization: "" }, /missing/],
        [{ authorization: "Bearer " }, /missing/],
        [{ authorization: "Basic YWRtaW4=" }, /missing/],
        [bearer("wrong"), /invalid admin token/],
        [bearer(ADMIN + "x"), /invalid admin token/],
        [bearer(ADMIN.repeat(2000)), /invalid admin token/],
        // Header values travel as bytes: Latin-1 beyond ASCII is what a client can send.
        [bearer("tést-ådmin-\u00ff\u00fe"), /invalid admin token/],
      ]) {
        const r = await s.w.fetch(path, { method, headers });
        const b = await jsonError(r, 401, "unauthorized", why);
        assert.ok(!JSON.stringify(b).includes(ADMIN), "the token is never echoed");
      }
      const r = await s.w.fetch(path, { method, headers: auth });
      assert.equal(r.status, 200, `${method} ${path}: the stored token's newline is trimmed`);
      await r.arrayBuffer();
    }
  });
});

test("hostile headers and Unicode ids: no crash, no reflection, JSON answers", async () => {
  await withStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "50", LIGHTRAG_USER_HASH_SALT: "secret-salt-for-tests" } }, async (s) => {
    const ids = ["用户-🙂", "\u202eevil", "a".repeat(5000), "x\u0000y", "' OR 1=1 --", "<script>alert(1)</script>", "\ud83d"];
    for (const user of ids) {
      const r = await post(s.w, "/v1/chat/completions", chatBody("What is lactate? 乳酸とは", { user }), {
        cookie: `cmo_rid=${"z".repeat(70)}; cmo_rid=<x>`,
        "x-route-override": "lightrag\r\nx: y".replace(/[\r\n]/g, " "),
        "x-forwarded-for": "1.1.1.1, 2.2.2.2",
        "user-agent": "\u00ff\u00e9".repeat(200),
        "x-user-id": "用户".replace(/./g, "\u00e7"),
      });
      assert.ok([200, 400].includes(r.status), `${JSON.stringify(user).slice(0, 40)} → ${r.status}`);
      const text = await r.text();
      assert.ok(!text.includes("secret-salt-for-tests"));
      if (r.status === 400) assert.equal(JSON.parse(text).error.status, 400);
    }
    const st = JSON.stringify(await status(s.w));
    assert.ok(!st.includes("secret-salt-for-tests"), "the salt is never shown, only its fingerprint");
    const cfg = JSON.stringify(await (await s.w.fetch("/admin/config", { headers: auth })).json());
    assert.ok(!cfg.includes("secret-salt-for-tests"));
    assert.match(cfg, /"user_hash_salt":"sha256:[0-9a-f]{12}"/);
    // Unknown routes and methods answer JSON and reflect nothing executable.
    const r = await s.w.fetch("/%3Cscript%3E", { method: "POST" });
    assert.equal(r.status, 404);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    await r.arrayBuffer();
  });
});

test("X-Content-Type-Options: nosniff on every kind of answer (JSON, SSE, text, errors, 204, 304)", async () => {
  await withStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "0" } }, async (s) => {
    const answers = [
      await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "n1" })),
      await post(s.w, "/v1/chat/completions", chatBody("What is lactate?", { user: "n1", stream: true })),
      await s.w.fetch("/metrics", { headers: auth }),
      await s.w.fetch("/healthz"),
      await s.w.fetch("/nope"),
      await s.w.fetch("/v1/chat/completions"),
      await s.w.fetch("/query", { method: "OPTIONS" }),
    ];
    const ev = JSON.stringify({ context: { targetingKey: "n1" } });
    const first = await post(s.w, "/ofrep/v1/evaluate/flags", ev);
    answers.push(first, await post(s.w, "/ofrep/v1/evaluate/flags", ev, { "if-none-match": first.headers.get("etag") }));
    assert.match(answers[1].headers.get("content-type"), /text\/event-stream/);
    assert.equal(answers.at(-1).status, 304);
    for (const r of answers) {
      assert.equal(r.headers.get("x-content-type-options"), "nosniff", `${r.status} ${r.headers.get("content-type")}`);
      await r.arrayBuffer();
    }
  });
});
