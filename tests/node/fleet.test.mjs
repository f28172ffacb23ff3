// The fleet in workerd: state shared between router processes through one KV store.
// - A cold isolate's first requests wait (bounded) for its first KV load instead of routing on
//   the [vars] alone.
// - Two router processes (two Miniflare instances, each its own workerd process) on the same
//   persisted KV directory: one trips its LightRAG breaker, the other adopts the open state
//   within the refresh interval; an admin reset on either closes both; every request meanwhile
//   is answered 2xx (by Perplexity while LightRAG fails).
// - A router idle for longer than the refresh interval reads the shared state before routing
//   its next request.
// With ROUTER_STATE_BACKEND=durable_object (`make test-worker-hub`) the same tests run on the
// state hub: the two routers are two workerd processes bound to one StateHub object owned by a
// Worker in a third, joined by Miniflare's dev registry (issue 14 item 4; tests/node/harness.mjs
// startRouters). On the hub, failures spread over two routers, too few in
// either to trip it, trip the fleet's breaker in the hub (core::breaker::fleet), which both adopt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { HUB, startPair, startWorker } from "./harness.mjs";
import { startUpstreams } from "../mock/upstreams.mjs";
import { ADMIN, auth, chatBody, post, waitFor } from "./common.mjs";

const Q = "What is the role of glutathione in oxidative stress?";

function bindingsFor(up, vars = {}) {
  return {
    LIGHTRAG_INTEGRATION_ENABLED: "true",
    LIGHTRAG_ROLLOUT_PERCENTAGE: "100",
    LIGHTRAG_BASE_URL: up.lightragUrl,
    PERPLEXITY_BASE_URL: up.perplexityUrl,
    LIGHTRAG_API_KEY: "lr-key",
    PERPLEXITY_API: "px-key",
    ADMIN_TOKEN: ADMIN,
    // These tests read X-Route-Config-Version, which is operator detail.
    ROUTER_EXPOSE_ROUTING_DETAIL: "true",
    ...vars,
  };
}

const status = async (w) => (await w.fetch("/admin/status", { headers: auth })).json();

test("a cold isolate's first requests wait for its first KV load", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "fleet-cold-"));
  const up = await startUpstreams({ lightragKey: "lr-key", perplexityKey: "px-key" });
  try {
    // A first router stores an override set (version 1: rollout 0 %), then stops.
    let w = await startWorker({ bindings: bindingsFor(up), persist: dir });
    const g = await w.fetch("/admin/config", { headers: auth });
    const r = await w.fetch("/admin/config", {
      method: "PUT",
      headers: { ...auth, "if-match": g.headers.get("etag"), "content-type": "application/json" },
      body: JSON.stringify({ LIGHTRAG_ROLLOUT_PERCENTAGE: 0 }),
    });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    await w.close();
    // A cold router on the same KV (vars: 100 %), hit by 8 concurrent first requests. The wait
    // bound is generous so that a loaded machine cannot make the KV read miss it.
    w = await startWorker({ bindings: bindingsFor(up, { STATE_FIRST_LOAD_WAIT_MS: "5000" }), persist: dir });
    try {
      const rs = await Promise.all(
        Array.from({ length: 8 }, (_, i) => post(w, "/v1/chat/completions", chatBody(Q, { user: `cold-${i}` }))),
      );
      const bodies = await Promise.all(rs.map((x) => x.text()));
      if (rs.some((x) => x.status !== 200)) console.log(rs.map((x, i) => `${x.status} ${bodies[i].slice(0, 300)}`));
      const versions = rs.map((x) => x.headers.get("x-route-config-version"));
      assert.deepEqual(versions, Array(8).fill("1"), "every first request routed on the stored config");
      assert.ok(rs.every((x) => x.headers.get("x-route-upstream") === "perplexity"));
      const st = await status(w);
      assert.equal(st.kv.first_load.routed_before_kv, 0);
      assert.equal(typeof st.kv.first_load.arrived_ms, "number");
    } finally {
      await w.close();
    }
  } finally {
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("one client cannot trip the breaker; failures from three users do", async () => {
  const up = await startUpstreams({ lightragKey: "lr-key", perplexityKey: "px-key" });
  const w = await startWorker({ bindings: bindingsFor(up, { LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: "600" }) });
  try {
    up.setBehaviour("lightrag", { status: 500 });
    // One id (in the LightRAG cohort: 100 %) makes LightRAG fail 12 times in a row. Every
    // request is answered by the Perplexity fallback; the breaker stays closed.
    for (let i = 0; i < 12; i++) {
      const r = await post(w, "/v1/chat/completions", chatBody(Q, { user: "attacker" }));
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
    }
    let st = await status(w);
    assert.equal(st.service_performance.circuit_breaker.state, "closed");
    assert.equal(st.service_performance.circuit_breakers.lightrag.capped_calls, 7, "5 in the window, 7 capped");
    assert.ok(!JSON.stringify(st).includes("attacker"), "no raw id in the status");
    // Two more users fail as well: three distinct keys in the run of failures → open.
    for (const user of ["alice", "bob"]) {
      const r = await post(w, "/v1/chat/completions", chatBody(Q, { user }));
      await r.arrayBuffer();
      assert.equal(r.status, 200);
    }
    st = await status(w);
    assert.equal(st.service_performance.circuit_breaker.state, "open");
  } finally {
    await w.close();
    await up.close();
  }
});

test("two routers on one KV store: a trip in one opens the other; an admin reset on either closes both", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "fleet-two-"));
  const up = await startUpstreams({ lightragKey: "lr-key", perplexityKey: "px-key" });
  const vars = {
    STATE_REFRESH_SECONDS: "1",
    LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "3",
    LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: "600",
    LIGHTRAG_CIRCUIT_BREAKER_JITTER: "0",
  };
  const [a, b] = await startPair({ bindings: bindingsFor(up, vars), persist: dir });
  const answers = [];
  let n = 0;
  const ask = async (w) => {
    const r = await post(w, "/v1/chat/completions", chatBody(Q, { user: `two-${n++}` }));
    const body = await r.json();
    answers.push({ status: r.status, upstream: r.headers.get("x-route-upstream"), reason: r.headers.get("x-route-reason") });
    assert.equal(r.status, 200, JSON.stringify(body));
    return r;
  };
  const lightragBreaker = async (w) => (await status(w)).service_performance.circuit_breaker;
  try {
    // Both warm, both closed, both send to LightRAG.
    assert.equal((await ask(a)).headers.get("x-route-upstream"), "lightrag");
    assert.equal((await ask(b)).headers.get("x-route-upstream"), "lightrag");

    // LightRAG fails; three users' requests to A trip A's breaker (each served by the
    // Perplexity fallback).
    up.setBehaviour("lightrag", { status: 500 });
    for (let i = 0; i < 3; i++) {
      const r = await ask(a);
      assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
    }
    assert.equal((await lightragBreaker(a)).state, "open");

    // B adopts the open state from KV within its refresh interval (1 s; generous deadline for a
    // loaded machine), without a single failure of its own.
    const t0 = Date.now();
    await waitFor("B to adopt A's open breaker", async () => {
      const r = await ask(b);
      return r.headers.get("x-route-reason") === "circuit_open";
    }, { timeoutMs: 30_000, intervalMs: 100 });
    const adoptMs = Date.now() - t0;
    assert.equal((await lightragBreaker(b)).state, "open");
    const lightragCalls = up.requests("lightrag").length;

    // LightRAG recovers; an operator resets the breaker through B: both close.
    up.setBehaviour("lightrag", null);
    const reset = await b.fetch("/admin/breaker/lightrag/reset", { method: "POST", headers: auth });
    assert.equal(reset.status, 200);
    assert.equal((await reset.json()).breaker.state, "closed");
    await waitFor("A to obey B's reset", async () => {
      const r = await ask(a);
      return r.headers.get("x-route-upstream") === "lightrag" && (await lightragBreaker(a)).state === "closed";
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.ok(up.requests("lightrag").length > lightragCalls);

    // And the other way round: force-open through A, reset through A, B follows both.
    let r = await a.fetch("/admin/breaker/lightrag/open", { method: "POST", headers: auth });
    assert.equal((await r.json()).breaker.state, "open");
    await waitFor("B to obey A's force-open", async () => (await ask(b)).headers.get("x-route-reason") === "circuit_open", { timeoutMs: 30_000, intervalMs: 100 });
    r = await a.fetch("/admin/breaker/lightrag/reset", { method: "POST", headers: auth });
    assert.equal((await r.json()).breaker.state, "closed");
    await waitFor("B to obey A's reset", async () => (await ask(b)).headers.get("x-route-upstream") === "lightrag", { timeoutMs: 30_000, intervalMs: 100 });

    // Nothing was lost: every request was answered 2xx, LightRAG's failures by Perplexity.
    assert.ok(answers.every((x) => x.status === 200));
    console.log(`# two routers: B adopted A's open breaker after ${adoptMs} ms (refresh interval 1 s); ${answers.length} requests, all 2xx`);
  } finally {
    await a.close();
    await b.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an idle router's next request reads the shared state before it is routed", async () => {
  // Issue 14's fleet simulation: the refresh ran only after a request, so a router idle for
  // longer than STATE_REFRESH_SECONDS routed its next request on old state — here, to a
  // LightRAG an operator had cut off through the other router. Now that request refreshes
  // first (waiting at most STATE_FIRST_LOAD_WAIT_MS, generous here for a loaded machine).
  const dir = mkdtempSync(path.join(tmpdir(), "fleet-idle-"));
  const up = await startUpstreams({ lightragKey: "lr-key", perplexityKey: "px-key" });
  const vars = { STATE_REFRESH_SECONDS: "1", STATE_FIRST_LOAD_WAIT_MS: "5000", LIGHTRAG_CIRCUIT_BREAKER_JITTER: "0" };
  const [a, b] = await startPair({ bindings: bindingsFor(up, vars), persist: dir });
  const ask = (w, user) => post(w, "/v1/chat/completions", chatBody(Q, { user }));
  try {
    const warm = await ask(b, "idle-1");
    assert.equal(warm.headers.get("x-route-upstream"), "lightrag");
    await warm.arrayBuffer();
    // An operator opens LightRAG's breaker through A (the command is in KV when this returns).
    const r = await a.fetch("/admin/breaker/lightrag/open", { method: "POST", headers: auth });
    assert.equal((await r.json()).breaker.state, "open");
    // B stays idle until its state is older than the refresh interval (the precondition of
    // this test is elapsed time, not an effect to wait for).
    await new Promise((res) => setTimeout(res, 1_500));
    // B's very next request is routed on the new state.
    const next = await ask(b, "idle-2");
    await next.arrayBuffer();
    assert.equal(next.headers.get("x-route-reason"), "circuit_open");
    assert.equal(next.headers.get("x-route-upstream"), "perplexity");
    const st = await status(b);
    assert.equal(st.kv.refresh.stale_routes, 0, "the refresh arrived within the wait");
    assert.equal(up.requests("lightrag").length, 1, "only the warm-up request reached LightRAG");
  } finally {
    await a.close();
    await b.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("on the state hub, failures spread over two routers trip both, though neither saw enough to trip alone", { skip: !HUB && "the fleet's breaker is the state hub's (KV has none)" }, async () => {
  const up = await startUpstreams({ lightragKey: "lr-key", perplexityKey: "px-key" });
  const vars = {
    STATE_REFRESH_SECONDS: "1",
    LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "3",
    LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS: "3",
    LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: "600",
    LIGHTRAG_CIRCUIT_BREAKER_JITTER: "0",
  };
  const [a, b] = await startPair({ bindings: bindingsFor(up, vars) });
  const ask = async (w, user) => {
    const r = await post(w, "/v1/chat/completions", chatBody(Q, { user }));
    const body = await r.text();
    assert.equal(r.status, 200, body);
    return r;
  };
  const breaker = async (w) => (await status(w)).service_performance.circuit_breakers.lightrag;
  try {
    assert.equal((await ask(a, "warm-a")).headers.get("x-route-upstream"), "lightrag");
    assert.equal((await ask(b, "warm-b")).headers.get("x-route-upstream"), "lightrag");
    up.setBehaviour("lightrag", { status: 500 });
    // Three users, three failures: two through A, one through B. A's own breaker has seen two
    // consecutive failures (its threshold is three), B's one.
    for (const [w, user] of [[a, "fleet-1"], [b, "fleet-2"], [a, "fleet-3"]]) {
      const r = await ask(w, user);
      assert.equal(r.headers.get("x-route-fallback"), "lightrag->perplexity");
    }
    // The hub saw all three: its fleet breaker trips and A adopts the record from the hub's
    // answer to its report, with no request of its own.
    const t0 = Date.now();
    await waitFor("A to adopt the fleet's trip", async () => (await breaker(a)).state === "open", { timeoutMs: 30_000, intervalMs: 100 });
    const adoptMs = Date.now() - t0;
    assert.equal((await breaker(a)).consecutive_failures, 2, "A itself saw two failures");
    // B adopts it at its next refresh: its requests go to Perplexity without calling LightRAG.
    await waitFor("B to adopt the fleet's trip", async () => (await ask(b, "after")).headers.get("x-route-reason") === "circuit_open", { timeoutMs: 30_000, intervalMs: 100 });
    assert.equal((await breaker(b)).state, "open");
    console.log(`# fleet trip: A adopted the hub's open record ${adoptMs} ms after its last failure`);
  } finally {
    await a.close();
    await b.close();
    await up.close();
  }
});
