// The state hub's Durable Object class (`StateHub`, src/edge/hub.rs) in workerd, spoken to
// directly in core::hub's protocol, and the backend selection's fallbacks as /admin/status
// shows them (docs/architecture.md#state-backends). Runs in `make test-worker` whatever
// ROUTER_STATE_BACKEND says: each test binds the hub itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HUB_OBJECT_NAME, hubAsKv, hubOptions, startWorker } from "./harness.mjs";
import { auth, waitFor } from "./common.mjs";

const ADMIN = { ADMIN_TOKEN: "test-admin-token" };

async function withHub(fn, bindings = {}) {
  const w = await startWorker({ bindings: { STATE_BACKEND: "durable_object", ...ADMIN, ...bindings }, options: hubOptions() });
  try {
    const ns = () => w.mf.getDurableObjectNamespace("STATE_HUB");
    const raw = async (init) => {
      const n = await ns();
      return n.get(n.idFromName(HUB_OBJECT_NAME)).fetch("https://state-hub.internal/", init);
    };
    await fn({ w, raw, hub: hubAsKv(ns) });
  } finally {
    await w.close();
  }
}

test("bad hub requests get a 400 (or 405) naming the problem, and the object keeps answering", async () => {
  await withHub(async ({ raw, hub }) => {
    for (const body of ["", "{", '{"op":"delete","key":"x"}', '{"op":"get"}', '{"keys":["x"]}', "null"]) {
      const r = await raw({ method: "POST", body });
      assert.equal(r.status, 400, body);
      const a = await r.json();
      assert.match(a.failed.message, /not a hub request/, body);
    }
    const g = await raw({ method: "GET" });
    assert.equal(g.status, 405);
    assert.match((await g.json()).failed.message, /POST/);
    await hub.put("k", "v");
    assert.equal(await hub.get("k"), "v");
  });
});

test("reports trip the fleet's breaker inside the object: three users' failures, not one user's", async () => {
  await withHub(async ({ raw, hub }) => {
    const report = async (calls) => {
      const r = await raw({ method: "POST", body: JSON.stringify({ op: "report", upstream: "lightrag", calls }) });
      assert.equal(r.status, 200);
      return (await r.json()).reported;
    };
    const fail = (at_ms, tag) => ({ at_ms, kind: { http_server_error: 503 }, tag });
    const now = Date.now();
    // One user failing ten times (as many isolates' reports): the per-key cap and the
    // distinct-keys guard hold across the fleet. Nothing is stored.
    for (let i = 0; i < 10; i++) assert.equal((await report([fail(now + i, 42)])).record, null);
    assert.equal(await hub.get("breaker/lightrag"), null);
    // A success, then failures from three users (the default: three in a row from three
    // distinct users): the third trips it; every answer after that carries the open record.
    assert.equal((await report([{ at_ms: now + 20, kind: "success", tag: 1 }])).record, null);
    assert.equal((await report([fail(now + 30, 100)])).record, null);
    assert.equal((await report([fail(now + 31, 101)])).record, null);
    const last = await report([fail(now + 32, 102)]);
    assert.deepEqual(await report([fail(now + 33, 103)]), last);
    const rec = JSON.parse(last.record);
    assert.equal(rec.state, "open");
    assert.equal(JSON.parse(await hub.get("breaker/lightrag")).generation, rec.generation);
    // A report that is not one: 400.
    const bad = await raw({ method: "POST", body: JSON.stringify({ op: "report", upstream: "nope", calls: [] }) });
    assert.equal(bad.status, 400);
  });
});

test("the hub's storage: values expire, lists page with a cursor and leave out expired keys", async () => {
  await withHub(async ({ hub }) => {
    for (const i of [1, 2, 3, 4, 5]) await hub.put(`metrics/iso-${i}`, `flush ${i}`);
    await hub.put("metrics/iso-3", "gone", { expirationTtl: 0 }); // expires at once
    await hub.put("other/key", "x");
    assert.equal(await hub.get("metrics/iso-3"), null);
    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const p = await hub.list({ prefix: "metrics/", cursor, limit: 2 });
      assert.ok(p.keys.length <= 2);
      seen.push(...p.keys.map((k) => k.name));
      cursor = p.list_complete ? undefined : p.cursor;
      pages += 1;
    } while (cursor && pages < 10);
    assert.deepEqual(seen, ["metrics/iso-1", "metrics/iso-2", "metrics/iso-4", "metrics/iso-5"]);
    assert.ok(pages >= 2, `${pages} pages`);
    // A TTL counts from the write: a 1 s value is there, then it is not.
    await hub.put("short", "lived", { expirationTtl: 1 });
    assert.equal(await hub.get("short"), "lived");
    await waitFor("the 1 s value to expire", async () => (await hub.get("short")) === null, { timeoutMs: 10_000, intervalMs: 100 });
  });
});

test("a tick on the hub runs inside the object with the overrides stored there", async () => {
  await withHub(async ({ w, hub }) => {
    const r = await w.fetch("/admin/controller/tick", { method: "POST", headers: auth });
    assert.equal(r.status, 200);
    const rep = await r.json();
    assert.equal(rep.skipped, null);
    assert.equal(rep.completed, true);
    // What the tick wrote is in the hub, not in KV.
    assert.ok(await hub.get("controller/state"), "controller/state in the hub");
    assert.equal(await (await w.mf.getKVNamespace("ROUTER_STATE")).get("controller/state"), null);
    const st = await (await w.fetch("/admin/status", { headers: auth })).json();
    assert.deepEqual(st.state_backend, { requested: "durable_object", selected: "durable_object" });
    assert.ok(st.kv.ops.hub_requests >= 2, JSON.stringify(st.kv.ops));
    const m = await (await w.fetch("/metrics", { headers: auth })).text();
    assert.match(m, /cmo_router_isolate_hub_requests_total\{scope="isolate"\} [1-9]\d*/);
  });
});

test("STATE_BACKEND=durable_object without the binding, or an invalid value, runs on KV and says so", async () => {
  for (const [value, options, want] of [
    ["durable_object", { durableObjects: {} }, /binding `STATE_HUB`.*missing; using Workers KV/],
    ["redis", hubOptions(), /`redis` is not kv or durable_object; using Workers KV/],
  ]) {
    const w = await startWorker({ bindings: { STATE_BACKEND: value, ...ADMIN }, options });
    try {
      const st = await (await w.fetch("/admin/status", { headers: auth })).json();
      assert.equal(st.state_backend.selected, "kv", value);
      assert.match(st.state_backend.warning, want);
      assert.match(st.kv.warnings[0], want);
      // It really runs on KV: an override lands there.
      const g = await w.fetch("/admin/config", { headers: auth });
      const put = await w.fetch("/admin/config", {
        method: "PUT",
        headers: { ...auth, "if-match": g.headers.get("etag"), "content-type": "application/json" },
        body: JSON.stringify({ LIGHTRAG_ROLLOUT_PERCENTAGE: 7 }),
      });
      assert.equal(put.status, 200);
      assert.ok(await (await w.mf.getKVNamespace("ROUTER_STATE")).get("config/overrides"));
    } finally {
      await w.close();
    }
  }
});
