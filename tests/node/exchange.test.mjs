// The exchange in workerd (issue 8 items 2, 3, 6, 11, 12): long healthy streams do not trip the
// breaker, stalled and endless streams are cut and marked, request-caused refusals blame
// nobody, upstream error text never reaches a client, a declined fallback keeps no probe
// permit, and a client that leaves mid-stream aborts the upstream and hands its probe back.
import { test, before, after, beforeEach, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startStack, chatBody, post, sseData, userIn, auth, waitFor } from "./common.mjs";

const SALT = "cmo_lightrag_2025";
const LR = userIn(SALT, 50, true, "lr"); // in the 50 % rollout → LightRAG
const PX = userIn(SALT, 50, false, "px"); // out → Perplexity
const Q = "How is glucose connected to lactate in metabolomics?";
// What an older server or a proxy in front of it may put in an error: a provider key and paths.
const LEAKY = "litellm.AuthenticationError: Incorrect API key provided: sk-proj-AbCdEf0123456789XyZ at /app/lightrag/llm/openai.py line 88";
const SECRETS = ["sk-proj-AbCdEf0123456789XyZ", "/app/lightrag", "openai.py", "/srv/proxy", "lr-key", "px-key"];

async function chat(w, user, extra = {}) {
  const r = await post(w, "/v1/chat/completions", chatBody(Q, { user, ...extra }));
  return { r, text: await r.text() };
}

async function status(w) {
  return (await w.fetch("/admin/status", { headers: auth })).json();
}

const perf = async (w, u = "lightrag") => (await status(w)).service_performance.performance[u];
const breaker = async (w, u = "lightrag") => (await status(w)).service_performance.circuit_breakers[u];

async function resetBreakers(w) {
  for (const u of ["lightrag", "perplexity"]) {
    const r = await w.fetch(`/admin/breaker/${u}/reset`, { method: "POST", headers: auth });
    await r.arrayBuffer();
  }
}

/**
 * A client that goes away: POSTs `body` over a real socket, reads the first bytes of the
 * answer, then closes the connection. Resolves with the response headers.
 */
function openAndDrop(url, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, url), { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      res.once("data", () => {
        req.on("error", () => {});
        req.destroy();
        resolve(res.headers);
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

function assertNoLeak(text) {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${s} reached the client: ${text}`);
}

describe("streams, slowness and cuts", () => {
  let s;
  before(async () => {
    s = await startStack({
      vars: {
        LIGHTRAG_ROLLOUT_PERCENTAGE: "50",
        LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS: "6",
        LIGHTRAG_CIRCUIT_BREAKER_SLOW_CALL_MS: "400",
        LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "3",
        LIGHTRAG_STREAM_IDLE_TIMEOUT_SECONDS: "1",
        LIGHTRAG_STREAM_MAX_SECONDS: "3",
      },
    });
  });
  after(async () => s?.close());
  beforeEach(async () => {
    s.up.reset();
    await resetBreakers(s.w);
  });

  test("the new stream variables are known (no config problem)", async () => {
    const st = await status(s.w);
    assert.deepEqual(st.config_problems, []);
  });

  test("three long-but-healthy LightRAG streams (fast first byte) leave the breaker closed", async () => {
    const before = await perf(s.w);
    // ~1.2 s per answer, three times slow_call_ms; the first text comes at once.
    s.up.setBehaviour("lightrag", { chunks: 8, chunkDelayMs: 150 });
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const { r, text } = await chat(s.w, LR, { stream: true });
      const took = Date.now() - t0;
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-route-upstream"), "lightrag");
      assert.ok(took >= 1000, `the stream took ${took} ms`);
      assert.ok(!text.includes("stream_truncated"), text);
      assert.equal(sseData(text).at(-1), "[DONE]");
    }
    const b = await breaker(s.w);
    assert.equal(b.state, "closed");
    assert.equal(b.consecutive_failures, 0);
    const after = await perf(s.w);
    assert.equal(after.success_count, before.success_count + 3);
    assert.equal(after.error_count ?? 0, before.error_count ?? 0);
    // The latency recorded is the time to the first byte, not the whole answer.
    assert.ok(after.p95_response_time < 1000, `p95 ${after.p95_response_time} ms`);
    const { r } = await chat(s.w, LR);
    assert.equal(r.headers.get("x-route-reason"), "rollout_in");
  });

  test("a stream that stalls longer than LIGHTRAG_STREAM_IDLE_TIMEOUT_SECONDS is cut, marked and aborted", async () => {
    const before = await perf(s.w);
    s.up.setBehaviour("lightrag", { stallAfterChunks: 3, stallMs: 6000 });
    const t0 = Date.now();
    const { r, text } = await chat(s.w, LR, { stream: true });
    const took = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.ok(took < 5000, `cut after ${took} ms, not when the upstream resumed`);
    const frames = sseData(text);
    assert.equal(frames.at(-1), "[DONE]");
    const err = JSON.parse(frames.at(-2)).error;
    assert.equal(err.code, "stream_truncated");
    assert.match(err.message, /idle/);
    const content = frames.slice(0, -2).map((f) => JSON.parse(f).choices?.[0]?.delta?.content ?? "").join("");
    assert.match(content, /LightRAG/, "what arrived before the stall was forwarded");
    const after = await perf(s.w);
    assert.equal(after.truncated_count, before.truncated_count + 1);
    await waitFor("the upstream fetch to be aborted", () => s.up.requests("lightrag")[0]?.closedEarly);
  });

  test("a stream longer than LIGHTRAG_STREAM_MAX_SECONDS is cut even while chunks keep coming", async () => {
    s.up.setBehaviour("perplexity", { chunks: 20, chunkDelayMs: 400 });
    const t0 = Date.now();
    const { r, text } = await chat(s.w, PX, { stream: true });
    const took = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.ok(took < 6500, `cut after ${took} ms`);
    const err = JSON.parse(sseData(text).at(-2)).error;
    assert.equal(err.code, "stream_truncated");
    assert.match(err.message, /max/);
  });

  test("a request-caused 422 is the client's: 422, no fallback, no breaker failure, counted as rejected", async () => {
    const before = await perf(s.w);
    s.up.setBehaviour("lightrag", { status: 422 });
    for (let i = 0; i < 4; i++) {
      const { r, text } = await chat(s.w, LR);
      assert.equal(r.status, 422, text);
      assert.equal(JSON.parse(text).error.code, "request_rejected");
    }
    assert.equal(s.up.requests("perplexity").length, 0, "no fallback that blames LightRAG");
    const b = await breaker(s.w);
    assert.equal(b.state, "closed");
    assert.equal(b.consecutive_failures, 0);
    const after = await perf(s.w);
    assert.equal(after.rejected_count, (before.rejected_count ?? 0) + 4);
    assert.equal(after.error_count ?? 0, before.error_count ?? 0);
    assert.equal(after.success_count ?? 0, before.success_count ?? 0);
  });

  test("an upstream 4xx answered as 502 is an error in the metrics, not a success", async () => {
    const before = await perf(s.w);
    // Both keys refused (rotated without updating the secrets).
    s.up.setBehaviour("lightrag", { status: 401 });
    s.up.setBehaviour("perplexity", { status: 401 });
    const { r, text } = await chat(s.w, LR);
    assert.equal(r.status, 502, text);
    const after = await perf(s.w);
    assert.equal(after.error_count ?? 0, (before.error_count ?? 0) + 1);
    assert.equal(after.success_count ?? 0, before.success_count ?? 0);
    assert.equal((await breaker(s.w)).consecutive_failures, 1, "a refused key counts against LightRAG");
  });

  test("upstream error bodies never reach the client: a generic message and a request id", async () => {
    s.up.setBehaviour("lightrag", { status: 500, body: JSON.stringify({ detail: LEAKY }) });
    s.up.setBehaviour("perplexity", { status: 502, body: "<html><body>Bad gateway: upstream /srv/proxy/conf.d failed</body></html>" });
    const { r, text } = await chat(s.w, LR);
    assert.equal(r.status, 502);
    assertNoLeak(text);
    const id = r.headers.get("x-request-id");
    assert.match(id, /^[0-9a-f]{32}$/);
    const e = JSON.parse(text).error;
    assert.equal(e.code, "upstream_failed");
    assert.ok(e.message.includes(id), e.message);
    // The seed's /query shape too.
    s.up.setBehaviour("lightrag", { status: 500, body: JSON.stringify({ detail: LEAKY }) });
    s.up.setBehaviour("perplexity", { status: 500, body: JSON.stringify({ error: { message: LEAKY } }) });
    const q = await post(s.w, "/query", JSON.stringify({ query_text: Q, user_id: LR }));
    const qt = await q.text();
    assert.equal(q.status, 502);
    assertNoLeak(qt);
    assert.ok(JSON.parse(qt).error.includes(q.headers.get("x-request-id")), qt);
  });

  test("an error inside a committed stream reaches the client as a generic error event", async () => {
    s.up.setBehaviour("lightrag", { streamError: LEAKY });
    const { r, text } = await chat(s.w, LR, { stream: true });
    assert.equal(r.status, 200);
    assertNoLeak(text);
    const err = JSON.parse(sseData(text).at(-2)).error;
    assert.equal(err.code, "stream_truncated");
    assert.ok(err.message.includes(r.headers.get("x-request-id")), err.message);
  });

  test("every answer carries X-Request-Id, distinct per request", async () => {
    const a = await chat(s.w, LR);
    const b = await chat(s.w, PX, { stream: true });
    const bad = await post(s.w, "/v1/chat/completions", "{");
    await bad.arrayBuffer();
    const ids = [a.r, b.r, bad].map((r) => r.headers.get("x-request-id"));
    for (const id of ids) assert.match(id ?? "", /^[0-9a-f]{32}$/);
    assert.equal(new Set(ids).size, 3);
  });
});

describe("fallback settings for a request LightRAG cannot take", () => {
  let s;
  before(async () => {
    s = await startStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "100", LIGHTRAG_FALLBACK_TO_PERPLEXITY: "false" } });
  });
  after(async () => s?.close());

  test("a query too short for LightRAG is not sent, and with fallback off nobody answers it (422)", async () => {
    const r = await post(s.w, "/v1/chat/completions", chatBody("ab", { user: "short-1" }));
    const text = await r.text();
    assert.equal(r.status, 422, text);
    assert.equal(JSON.parse(text).error.code, "request_rejected");
    assert.match(JSON.parse(text).error.message, /at least 3 characters/);
    assert.equal(s.up.requests("lightrag").length, 0);
    assert.equal(s.up.requests("perplexity").length, 0, "the fallback setting is obeyed");
    assert.equal((await perf(s.w)).rejected_count, 1);
  });
});

describe("half-open probe permits", () => {
  let s;
  before(async () => {
    s = await startStack({
      vars: {
        LIGHTRAG_ROLLOUT_PERCENTAGE: "50",
        LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: "1",
        LIGHTRAG_CIRCUIT_BREAKER_JITTER: "0",
        LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_PROBE_SHARE: "1",
        LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_SUCCESSES: "50",
      },
    });
  });
  after(async () => s?.close());

  /** Forces LightRAG's breaker open and waits until it is half-open (three probe slots free). */
  async function halfOpen() {
    s.up.reset();
    await resetBreakers(s.w);
    const r = await s.w.fetch("/admin/breaker/lightrag/open", { method: "POST", headers: auth });
    await r.arrayBuffer();
    await waitFor("LightRAG's breaker to go half-open", async () => (await breaker(s.w)).state === "half_open");
  }

  test("a fallback the plan declines draws no probe permit", async () => {
    await halfOpen();
    // Perplexity users whose Perplexity fails: Perplexity → LightRAG fallback is off by
    // default, so none of these may take one of LightRAG's three probe slots.
    s.up.setBehaviour("perplexity", { status: 500 });
    for (let i = 0; i < 4; i++) {
      const { r } = await chat(s.w, `${PX}`);
      assert.equal(r.status, 502);
    }
    s.up.setBehaviour("perplexity", null);
    const { r } = await chat(s.w, LR);
    assert.equal(`${r.headers.get("x-route-reason")}/${r.headers.get("x-route-upstream")}`, "rollout_in/lightrag");
  });

  test("a client that disconnects mid-stream aborts the upstream fetch and releases the probe", async () => {
    await halfOpen();
    s.up.setBehaviour("lightrag", { chunks: 30, chunkDelayMs: 250 });
    for (let i = 0; i < 3; i++) {
      const h = await openAndDrop(s.w.url, "/v1/chat/completions", chatBody(Q, { user: LR, stream: true }));
      assert.equal(h["x-route-upstream"], "lightrag", "admitted as a probe");
    }
    await waitFor("the three upstream fetches to be aborted", () => {
      const log = s.up.requests("lightrag");
      return log.length === 3 && log.every((e) => e.closedEarly);
    });
    // All three probe slots were held by those streams; released, the next request is a probe.
    s.up.setBehaviour("lightrag", null);
    await waitFor("a fourth probe to be admitted", async () => {
      const { r } = await chat(s.w, LR);
      return r.headers.get("x-route-reason") === "rollout_in";
    }, { timeoutMs: 5000 });
  });
});

describe("the quality score's latency part", () => {
  let s;
  before(async () => {
    s = await startStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "100", LIGHTRAG_ENABLE_QUALITY_METRICS: "true" } });
  });
  after(async () => s?.close());

  test("is the time to the first byte: the same answer streamed slowly scores the same", async () => {
    const quality = async () => (await perf(s.w)).avg_quality_score;
    // The mock's answer depends on the query only: the same text and sources both times.
    const fast = await chat(s.w, "q-1", { stream: true });
    assert.equal(fast.r.headers.get("x-route-upstream"), "lightrag");
    const q1 = await quality();
    assert.ok(q1 > 0, `scored ${q1}`);
    // ~6.6 s from first to last chunk: as a whole-answer latency that would cost ~0.013.
    s.up.setBehaviour("lightrag", { chunks: 6, chunkDelayMs: 1100 });
    const slow = await chat(s.w, "q-2", { stream: true });
    assert.ok(!slow.text.includes("stream_truncated"));
    assert.equal((await perf(s.w)).quality_samples, 2);
    assert.equal(await quality(), q1);
  });
});
