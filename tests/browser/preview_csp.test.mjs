// The preview page served by the router (release bundle in workerd, ASSETS binding) under its
// strict Content-Security-Policy (own scripts and wasm only, no inline scripts): it must load
// its wasm core and compute in Debian's Chromium without a single CSP violation, and every
// asset answer carries `X-Content-Type-Options: nosniff`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startWorker, ROOT } from "../node/harness.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
let w, ctx, profile;

before(async () => {
  w = await startWorker({
    options: {
      host: "127.0.0.1",
      port: 0,
      assets: {
        directory: path.join(ROOT, "www"),
        binding: "ASSETS",
        routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
      },
    },
  });
  profile = await mkdtemp(path.join(os.tmpdir(), "cmo-csp-"));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"],
  });
  // Record every violation the page reports, from its first script on.
  await ctx.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
});

after(async () => {
  await ctx?.close();
  await w?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

test("/preview/ sends a strict CSP and nosniff on the page and its assets", async () => {
  const r = await fetch(`${w.url.origin}/preview/`);
  const csp = r.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  await r.arrayBuffer();
  for (const asset of ["app.js", "style.css", "pkg/cmo_edge_router.js", "pkg/cmo_edge_router_bg.wasm"]) {
    const a = await fetch(`${w.url.origin}/preview/${asset}`);
    assert.equal(a.status, 200, asset);
    assert.equal(a.headers.get("x-content-type-options"), "nosniff", asset);
    await a.arrayBuffer();
  }
});

test("the page works under its CSP in Chromium: wasm loads, decisions show, no violation", async () => {
  const page = await ctx.newPage();
  const messages = [];
  page.on("console", (m) => messages.push(m.text()));
  page.on("pageerror", (e) => messages.push(String(e)));
  await page.goto(`${w.url.origin}/preview/`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
  assert.equal((await page.textContent("#status")).trim(), "ready");
  await page.fill("#who-users", "user-42");
  const row = page.locator('#who-table tbody tr[data-user="user-42"]');
  await row.waitFor({ timeout: 30_000 });
  // The second cell is the position (see tests/browser/console.test.mjs).
  const pos = await row.locator("td").nth(1).textContent();
  assert.equal(pos.trim(), "76.52");
  const violations = await page.evaluate(() => window.__cspViolations);
  assert.deepEqual(violations, [], JSON.stringify(messages));
  assert.ok(!messages.some((m) => /Content Security Policy/.test(m)), JSON.stringify(messages));
  await page.close();
});
