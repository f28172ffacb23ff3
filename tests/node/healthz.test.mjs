// Foundation checks of the worker in workerd: health with a real KV read, JSON 404s.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { startWorker, ROOT, HUB } from "./harness.mjs";

const version = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8").match(/^version = "(.+)"/m)[1];
let w;
before(async () => { w = await startWorker(); });
after(async () => { await w?.close(); });

test("GET /healthz reports the build version and a real KV read", async () => {
  const res = await w.fetch("/healthz");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /application\/json/);
  const body = await res.json();
  assert.equal(body.version, version);
  assert.equal(body.status, "ok");
  assert.equal(body.kv.ok, true);
});

test("healthz says degraded when the KV binding is missing", async () => {
  // On the hub backend: no hub binding either, so the router falls back to KV (and says so).
  const bare = await startWorker({ kvNamespaces: [], options: HUB ? { durableObjects: {} } : {} });
  try {
    const res = await bare.fetch("/healthz");
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.status, "degraded");
    assert.equal(body.kv.ok, false);
    // The KV error's own text (binding names, internals) goes to the log, not the client.
    assert.equal(body.kv.error, "unavailable");
    assert.deepEqual(Object.keys(body.kv).sort(), ["binding", "error", "ok"]);
  } finally {
    await bare.close();
  }
});

test("unknown routes get a JSON 404 naming the route", async () => {
  const res = await w.fetch("/no/such/thing", { method: "POST" });
  assert.equal(res.status, 404);
  const body = await res.json();
  assert.equal(body.error.code, "not_found");
  assert.match(body.error.message, /\/no\/such\/thing/);
});
