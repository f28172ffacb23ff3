// OFREP in workerd, served on a real loopback port, with the official OpenFeature server SDK
// and OFREP provider from npm as the client; plus raw-protocol checks (errors, bulk ETag/304).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { startStack, chatBody, post, positionHundredths } from "./common.mjs";

const SALT = "cmo_lightrag_2025";
let s;
let base;
before(async () => {
  // The position in the flag metadata is operator detail, shown to all here (guard.test.mjs
  // checks it is hidden by default).
  s = await startStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "25", ROUTER_EXPOSE_ROUTING_DETAIL: "true" }, options: { host: "127.0.0.1", port: 0 } });
  base = s.w.url.origin;
});
after(async () => {
  await OpenFeature.close();
  await s?.close();
});

test("the OpenFeature SDK with the OFREP provider gets the router's decision", async () => {
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: base }));
  const client = OpenFeature.getClient();
  let inCount = 0;
  for (let i = 0; i < 200; i++) {
    const user = `of-user-${i}`;
    const d = await client.getStringDetails("lightrag-routing", "perplexity", { targetingKey: user });
    const expected = positionHundredths(SALT, user) < 2500 ? "lightrag" : "perplexity";
    assert.equal(d.value, expected, user);
    assert.equal(d.variant, expected);
    assert.equal(d.reason, "SPLIT");
    assert.equal(Math.round(d.flagMetadata.position * 100), positionHundredths(SALT, user));
    if (d.value === "lightrag") inCount++;
  }
  assert.ok(inCount > 20 && inCount < 80);
  // Same answer as the chat route for the same user.
  const user = "of-user-7";
  const r = await post(s.w, "/v1/chat/completions", chatBody("glucose?", { user }));
  await r.arrayBuffer();
  const d = await client.getStringValue("lightrag-routing", "x", { targetingKey: user });
  assert.equal(d, r.headers.get("x-route-cohort"));
});

test("SDK errors: missing targeting key and unknown flag fall back to the default", async () => {
  const client = OpenFeature.getClient();
  const noKey = await client.getStringDetails("lightrag-routing", "fallback-value", {});
  assert.equal(noKey.value, "fallback-value");
  assert.equal(noKey.errorCode, "TARGETING_KEY_MISSING");
  const unknown = await client.getStringDetails("no-such-flag", "dflt", { targetingKey: "u" });
  assert.equal(unknown.value, "dflt");
  assert.equal(unknown.errorCode, "FLAG_NOT_FOUND");
});

test("raw OFREP: PARSE_ERROR, bulk with ETag and 304", async () => {
  const json = { "content-type": "application/json" };
  let r = await fetch(`${base}/ofrep/v1/evaluate/flags/lightrag-routing`, { method: "POST", body: "{oops", headers: json });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).errorCode, "PARSE_ERROR");
  const body = JSON.stringify({ context: { targetingKey: "bulk-user" } });
  r = await fetch(`${base}/ofrep/v1/evaluate/flags`, { method: "POST", body, headers: { "content-type": "application/json" } });
  assert.equal(r.status, 200);
  const etag = r.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  const b = await r.json();
  assert.equal(b.flags.length, 1);
  assert.equal(b.flags[0].key, "lightrag-routing");
  r = await fetch(`${base}/ofrep/v1/evaluate/flags`, { method: "POST", body, headers: { ...json, "if-none-match": etag } });
  assert.equal(r.status, 304);
  await r.arrayBuffer();
  r = await fetch(`${base}/ofrep/v1/evaluate/flags`, { method: "POST", body: JSON.stringify({ context: {} }), headers: json });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).errorCode, "TARGETING_KEY_MISSING");
});
