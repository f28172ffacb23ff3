// The preview page (www/) is served at /preview through the ASSETS binding (wrangler [assets]
// with run_worker_first), and API routes are never shadowed by assets.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { startWorker, ROOT } from "./harness.mjs";

let w;
before(async () => {
  w = await startWorker({
    options: {
      assets: {
        directory: path.join(ROOT, "www"),
        binding: "ASSETS",
        routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
      },
    },
  });
});
after(async () => { await w?.close(); });

test("GET /preview redirects to /preview/ and serves www/index.html", async () => {
  const r = await w.fetch("/preview", { redirect: "manual" });
  assert.equal(r.status, 301);
  assert.equal(r.headers.get("location"), "/preview/");
  await r.arrayBuffer();
  const p = await w.fetch("/preview/");
  assert.equal(p.status, 200);
  assert.match(p.headers.get("content-type"), /text\/html/);
  assert.match(await p.text(), /<html/i);
  const js = await w.fetch("/preview/app.js");
  assert.equal(js.status, 200);
  await js.arrayBuffer();
});

test("API routes still answer with assets bound", async () => {
  const r = await w.fetch("/healthz");
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  const n = await w.fetch("/index.html");
  assert.equal(n.status, 404, "assets are only under /preview");
  assert.equal((await n.json()).error.code, "not_found");
});
