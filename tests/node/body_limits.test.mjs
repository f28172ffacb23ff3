// Body limits are enforced while the body is read, on every route that reads one: a chunked
// body without Content-Length that crosses LIGHTRAG_MAX_BODY_BYTES gets 413 while the client is
// still sending (the router never waits for, or buffers, the rest). Real HTTP on loopback into
// workerd, so the body really arrives in chunks.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startStack, auth } from "./common.mjs";

const LIMIT = 2048;
let s;
let port;
before(async () => {
  s = await startStack({ vars: { LIGHTRAG_MAX_BODY_BYTES: String(LIMIT) }, options: { host: "127.0.0.1", port: 0 } });
  port = Number(s.w.url.port);
});
after(async () => { await s?.close(); });

/**
 * Sends `chunks` with chunked transfer encoding and never ends the request; resolves with the
 * response (status, headers, body) and whether the request was still open when it came.
 */
function chunkedNeverEnding(method, path, chunks, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers: { "content-type": "application/json", ...headers } });
    let ended = false;
    req.on("error", (e) => (ended ? null : reject(e)));
    req.on("response", (res) => {
      const parts = [];
      res.on("data", (c) => parts.push(c));
      res.on("end", () => {
        const stillSending = !req.writableEnded;
        ended = true;
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString(), stillSending });
      });
    });
    assert.equal(req.getHeader("content-length"), undefined);
    for (const c of chunks) req.write(c);
    // Deliberately no req.end(): a router that reads the whole body first never answers.
  });
}

const routes = [
  ["POST", "/v1/chat/completions", '{"messages":[{"role":"user","content":"'],
  ["POST", "/query", '{"query_text":"'],
  ["POST", "/ofrep/v1/evaluate/flags", '{"context":{"targetingKey":"'],
  ["POST", "/ofrep/v1/evaluate/flags/lightrag-routing", '{"context":{"targetingKey":"'],
  ["PUT", "/admin/config", '{"LIGHTRAG_ROUTING_RULES":"'],
];

for (const [method, path, prefix] of routes) {
  test(`${method} ${path}: a chunked body over the limit is refused with 413 while it is still being sent`, { timeout: 20_000 }, async () => {
    const headers = path === "/admin/config" ? { ...auth, "if-match": "*" } : {};
    const chunks = [prefix, ...Array.from({ length: 4 }, () => "a".repeat(1024))];
    const r = await chunkedNeverEnding(method, path, chunks, headers);
    assert.equal(r.status, 413, r.body);
    assert.ok(r.stillSending, "answered before the body ended");
    const b = JSON.parse(r.body);
    assert.equal(b.error.code, "too_large");
    assert.match(b.error.message, new RegExp(`limit of ${LIMIT} bytes \\(LIGHTRAG_MAX_BODY_BYTES\\)`));
    assert.equal(r.headers["x-content-type-options"], "nosniff");
  });
}

test("a declared Content-Length over the limit is refused before reading; a body within it is served", async () => {
  const base = s.w.url.origin;
  let r = await fetch(`${base}/ofrep/v1/evaluate/flags/lightrag-routing`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ context: { targetingKey: "u", pad: "p".repeat(LIMIT) } }),
  });
  assert.equal(r.status, 413);
  assert.equal((await r.json()).error.code, "too_large");
  r = await fetch(`${base}/ofrep/v1/evaluate/flags/lightrag-routing`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ context: { targetingKey: "u" } }),
  });
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  assert.equal(s.up.requests("perplexity").length + s.up.requests("lightrag").length, 0);
});
