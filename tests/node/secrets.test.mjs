// No secret and no raw user id anywhere the router writes (issue 8, Prove 4): after a
// representative workload with known secrets and distinctive ids — chat (JSON and SSE) and
// seed /query for users in both cohorts, session ids, an anonymous cookie, OFREP, upstream
// error bodies that quote the key and every header they received (a misbehaving upstream:
// mock behaviour `echo`), an error inside a stream quoting the key, a tripped breaker, rate
// limiting, wrong tokens, the admin API and the cron controller — every response (status line,
// headers, body), every log line the worker wrote (captured from workerd), the /metrics text,
// and every KV key and value (written at any time, seen by a spy on the binding, and the final
// dump) is searched for each secret and each id, as is and lower-cased, URL-encoded and
// JSON-escaped; so is every request the upstreams received (each may see its own key only).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startCapturedStack } from "./capture.mjs";
import { positionHundredths, sseData, waitFor } from "./common.mjs";

const SECRETS = {
  PERPLEXITY_API: "px-secret-Q7w9Zk3mB1vT",
  LIGHTRAG_API_KEY: "lr-secret-H4vN8sT2pXyR",
  ADMIN_TOKEN: "adm-secret-K2jR6yW0qEzU",
  ROUTER_CLIENT_TOKEN: "cli-secret-M5tB9uC3nLwA",
  LIGHTRAG_USER_HASH_SALT: "salt-secret-F8dG1hJ4kSqP",
};
/** A salt an operator tries to set through the admin API (refused: 422). */
const OVERRIDE_SALT = "override-salt-Rw3Ec8Tn";
/** Credentials a client presented that were wrong: not secrets, but never worth logging. */
const WRONG_TOKENS = ["wrong-admin-Jd8Ks2Lq", "wrong-client-Hx4Pz7Nv"];
/** Ids with characters that change when encoded, so every form is distinct. */
const SESSIONS = ["sess/Wq3Zr8Lm?tab=2", "Séance-Pk2Vb7Tq"];
const COOKIE = "ckSecretVb6Nm2Qa9Lp4Zx7R"; // [A-Za-z0-9_-]{16,64}: one the router would have issued
const TARGETING = "ofrep.user+Tz5Yh1Gd@example.org";
const Q = "How is glucose connected to lactate in clinical metabolomics?";

/** Users with distinctive ids, half in each cohort at 50 %. */
function users() {
  const inside = [];
  const outside = [];
  for (let i = 0; inside.length < 4 || outside.length < 4; i++) {
    const id = `Ünïcode User ${i} <alice.O7Rk2+${i}@example.org>`;
    (positionHundredths(SECRETS.LIGHTRAG_USER_HASH_SALT, id) < 5000 ? inside : outside).push(id);
  }
  return { lightrag: inside.slice(0, 4), perplexity: outside.slice(0, 4) };
}

/** The forms a value may take on the way out. */
function forms(s) {
  const json = JSON.stringify(s).slice(1, -1);
  const ascii = json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const out = new Set([s, s.toLowerCase(), encodeURIComponent(s), encodeURIComponent(s).toLowerCase(), json, ascii, ascii.toLowerCase()]);
  return [...out];
}

test("no secret or raw id in any response, log line, metric or KV value", { timeout: 120_000 }, async () => {
  const U = users();
  const ids = [...U.lightrag, ...U.perplexity, ...SESSIONS, COOKIE, TARGETING];
  const s = await startCapturedStack({
    lightragKey: SECRETS.LIGHTRAG_API_KEY,
    perplexityKey: SECRETS.PERPLEXITY_API,
    vars: {
      ...SECRETS,
      LIGHTRAG_ROLLOUT_PERCENTAGE: "50",
      LIGHTRAG_ENABLE_QUALITY_METRICS: "true",
      LIGHTRAG_ENABLE_AB_TESTING: "true",
      LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: "600",
      LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS: "6",
      LIGHTRAG_STREAM_IDLE_TIMEOUT_SECONDS: "1",
      STATE_REFRESH_SECONDS: "1",
    },
    ratelimits: { ROUTER_RATE_LIMIT: { simple: { limit: 6, period: 60 } } },
  });
  const responses = [];
  const client = { authorization: `Bearer ${SECRETS.ROUTER_CLIENT_TOKEN}` };
  const admin = { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` };
  /** Sends a request and keeps everything the client got back. */
  const send = async (label, path, { method = "POST", headers = {}, body } = {}) => {
    const init = { method, headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers } };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    const r = await s.w.fetch(path, init);
    const text = await r.text();
    const head = [...r.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
    responses.push({ label, status: r.status, text: `${r.status} ${r.statusText}\n${head}\n\n${text}` });
    return { r, text };
  };
  const chat = (label, user, extra = {}, headers = client) =>
    send(label, "/v1/chat/completions", { headers, body: { model: "sonar", messages: [{ role: "user", content: Q }], ...(user ? { user } : {}), ...extra } });
  try {
    // Healthy traffic for every id shape, JSON and SSE, both routes.
    for (const user of [...U.lightrag, ...U.perplexity]) {
      assert.equal((await chat("chat json", user)).r.status, 200);
      const sse = await chat("chat sse", user, { stream: true });
      assert.equal(sseData(sse.text).at(-1), "[DONE]");
      assert.equal((await send("query", "/query", { headers: client, body: { query_text: Q, user_id: user } })).r.status, 200);
    }
    for (const session of SESSIONS) {
      assert.equal((await send("query session", "/query", { headers: client, body: { query_text: Q, session_id: session } })).r.status, 200);
      assert.equal((await chat("chat session", null, { session_id: session })).r.status, 200);
    }
    const anon = await chat("chat cookie", null, {}, { ...client, cookie: `cmo_rid=${COOKIE}` });
    assert.equal(anon.r.status, 200);
    assert.equal(anon.r.headers.get("set-cookie"), null, "the client's own cookie is used, not re-issued");
    const ofrep = await send("ofrep", "/ofrep/v1/evaluate/flags/lightrag-routing", { body: { context: { targetingKey: TARGETING } } });
    assert.equal(ofrep.r.status, 200);
    await send("ofrep bulk", "/ofrep/v1/evaluate/flags", { body: { context: { targetingKey: TARGETING } } });

    // Upstreams whose errors quote the key and headers they received: LightRAG fails for three
    // users (the fallback answers; the breaker trips), then both fail, streamed and not.
    s.up.setBehaviour("lightrag", { echo: true });
    for (const user of U.lightrag.slice(0, 3)) assert.equal((await chat("lightrag echo", user)).r.status, 200);
    assert.equal((await s.w.fetch("/admin/breaker/lightrag/reset", { method: "POST", headers: admin })).status, 200);
    s.up.setBehaviour("perplexity", { echo: true, status: 401 });
    assert.equal((await chat("both echo", U.lightrag[3])).r.status, 502);
    assert.equal((await chat("both echo sse", U.lightrag[3], { stream: true })).r.status, 502);
    assert.equal((await send("both echo query", "/query", { headers: client, body: { query_text: Q, user_id: U.perplexity[0] } })).r.status, 502);
    // An error inside a committed stream quoting the key, and a stream that stalls.
    s.up.setBehaviour("perplexity", null);
    s.up.setBehaviour("lightrag", { streamError: `upstream LLM refused key ${SECRETS.LIGHTRAG_API_KEY} (X-API-Key: ${SECRETS.LIGHTRAG_API_KEY})` });
    const cut = await chat("stream error", U.lightrag[1], { stream: true });
    assert.match(cut.text, /stream_truncated/);
    s.up.setBehaviour("lightrag", { stallAfterChunks: 2, stallMs: 3000 });
    assert.match((await chat("stream stall", U.lightrag[2], { stream: true })).text, /stream_truncated/);
    s.up.setBehaviour("lightrag", null);
    // Trip LightRAG's breaker for real (three users), so its state is written to KV.
    s.up.setBehaviour("lightrag", { status: 500 });
    for (const user of U.lightrag.slice(0, 3)) await chat("trip", user);
    s.up.setBehaviour("lightrag", null);

    // Hostile and mistaken callers: wrong and missing tokens, the override header without the
    // admin token, the admin token as the client token, a rate-limited user.
    await chat("wrong client token", U.perplexity[1], {}, { authorization: `Bearer ${WRONG_TOKENS[1]}` });
    await chat("no client token", U.perplexity[1], {}, {});
    await chat("override without admin", U.perplexity[1], {}, { ...client, "x-route-override": "lightrag" });
    await chat("override with admin", U.perplexity[1], {}, { ...admin, "x-route-override": "lightrag" });
    for (const path of ["/admin/status", "/admin/config", "/metrics"]) {
      await send("admin wrong token", path, { method: "GET", headers: { authorization: `Bearer ${WRONG_TOKENS[0]}` } });
      await send("admin client token", path, { method: "GET", headers: client });
    }
    for (let i = 0; i < 8; i++) await chat("rate limit", U.perplexity[2]);
    assert.ok(responses.some((x) => x.label === "rate limit" && x.status === 429), "the rate limit was reached");

    // The admin API and the controller: overrides, breaker commands, a metrics flush, a cron
    // tick (the aggregate in KV), status and metrics.
    const cfg = await send("config get", "/admin/config", { method: "GET", headers: admin });
    const etag = cfg.r.headers.get("etag");
    const put = await send("config put", "/admin/config", {
      method: "PUT",
      headers: { ...admin, "if-match": etag },
      body: { LIGHTRAG_ROLLOUT_PERCENTAGE: "40", LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: "true" },
    });
    assert.equal(put.r.status, 200, put.text);
    // The salt is a secret: never a runtime override, and the refusal does not echo it.
    const salt = await send("config put salt", "/admin/config", {
      method: "PUT",
      headers: { ...admin, "if-match": put.r.headers.get("etag") },
      body: { LIGHTRAG_USER_HASH_SALT: OVERRIDE_SALT },
    });
    assert.equal(salt.r.status, 422, salt.text);
    await send("breaker open", "/admin/breaker/perplexity/open", { headers: admin, body: undefined });
    await send("breaker reset", "/admin/breaker/perplexity/reset", { headers: admin, body: undefined });
    assert.equal((await send("flush", "/admin/metrics/flush", { headers: admin })).r.status, 200);
    const worker = await s.w.mf.getWorker("router");
    await worker.scheduled({ cron: "* * * * *" });
    await waitFor("the breaker's state in KV", async () => (await s.w.dumpKv()).some((k) => k.name === "breaker/lightrag"));
    const status = await send("status", "/admin/status", { method: "GET", headers: admin });
    assert.equal(status.r.status, 200);
    const metrics = await send("metrics", "/metrics", { method: "GET", headers: admin });
    assert.match(metrics.text, /cmo_router_requests/);
    await send("healthz", "/healthz", { method: "GET" });

    // ---- what there is to search --------------------------------------------------------
    const logs = s.w.workerLogs().map((l) => `[${l.level}] ${l.message}`);
    const kvWritten = s.w.kvEvents().filter((e) => e.op === "put").map((e) => `${e.key} = ${e.value}`);
    const kvNow = (await s.w.dumpKv()).map((k) => `${k.name} = ${k.value}`);
    // The workload did what it was meant to: keys quoted to the router, errors logged, state
    // written to KV.
    const echoed = s.up.requests("lightrag").filter((e) => e.behaviour.echo).length;
    assert.ok(echoed >= 5, `${echoed} LightRAG answers quoted the key`);
    assert.ok(logs.some((l) => /lightrag failed \(http_server_error:500\)/.test(l)), "the echoed errors were logged");
    assert.ok(logs.some((l) => /\[redacted\]/.test(l)), "and redacted");
    for (const prefix of ["breaker/lightrag", "metrics/", "controller/state", "config/overrides", "breaker/perplexity/admin"]) {
      assert.ok(kvNow.some((k) => k.startsWith(prefix)), `KV holds ${prefix}`);
    }
    // The search finds what is there (request ids are in responses and logs).
    const someId = status.r.headers.get("x-request-id");
    assert.ok(responses.some((x) => x.text.includes(someId)));

    const places = [
      ...responses.map((x) => [`response to ${x.label}`, x.text]),
      ...logs.map((l) => ["log", l]),
      ...kvWritten.map((v) => ["KV write", v]),
      ...kvNow.map((v) => ["KV now", v]),
    ];
    const needles = [
      ...Object.entries(SECRETS).map(([name, v]) => [name, v]),
      ...WRONG_TOKENS.map((v) => ["a wrong token presented", v]),
      ["a salt offered as an override", OVERRIDE_SALT],
      ...ids.map((v) => ["a raw id", v]),
    ];
    // Upstream error text is logged (redacted of keys, credentials and paths), so the other
    // half of the guarantee is that no upstream ever receives a raw id it could quote back.
    const upstreamSaw = ["lightrag", "perplexity"].flatMap((u) =>
      s.up.requests(u).map((e) => [`a request to ${u}`, `${e.method} ${e.path}\n${JSON.stringify(e.headers)}\n${e.raw}`]),
    );
    places.push(...upstreamSaw.map(([where, text]) => [where, text]));
    const found = [];
    for (const [what, value] of needles) {
      for (const form of forms(value)) {
        for (const [where, text] of places) {
          // The upstreams get their own key, of course; nothing else.
          const ownKey = where === "a request to lightrag" ? SECRETS.LIGHTRAG_API_KEY : where === "a request to perplexity" ? SECRETS.PERPLEXITY_API : null;
          if (ownKey && value === ownKey) continue;
          if (text.includes(form)) found.push(`${what} (${JSON.stringify(form)}) in ${where}: …${text.slice(Math.max(0, text.indexOf(form) - 80), text.indexOf(form) + form.length + 40)}…`);
        }
      }
    }
    console.log(`# searched ${places.length} places (${responses.length} responses, ${logs.length} log lines, ${kvWritten.length} KV writes, ${kvNow.length} KV keys) for ${needles.length} values in ${needles.reduce((n, [, v]) => n + forms(v).length, 0)} forms`);
    assert.deepEqual(found, []);
  } finally {
    await s.close();
  }
});
