// The preview page in real Chromium (Debian's, driven by playwright-core): it must load the
// wasm build from www/pkg and show the same positions the worker computes (pinned vectors).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serveDir } from "./static-server.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VECTORS = JSON.parse(readFileSync(path.join(ROOT, "tests/vectors/cohort.json"), "utf8")).vectors;
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

let server, ctx, page, profile;
const errors = [];

before(async () => {
  server = await serveDir(path.join(ROOT, "www"));
  profile = await mkdtemp(path.join(os.tmpdir(), "cmo-preview-"));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"],
  });
  page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(server.url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 20_000 });
});

after(async () => {
  await ctx?.close();
  await server?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function rowFor(user) {
  const row = page.locator(`#decisions tbody tr[data-user="${user}"]`);
  return {
    position: (await row.locator("td.position").textContent()).trim(),
    upstream: (await row.locator("td").nth(2).textContent()).trim(),
  };
}

async function setUsers(list) {
  await page.fill("#users", list.join("\n"));
}

test("the page loads the wasm core and shows its version", async () => {
  const version = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8").match(/^version = "(.+)"/m)[1];
  assert.equal((await page.textContent("#version")).trim(), version);
  assert.equal((await page.textContent("#status")).trim(), "ready");
});

test("positions shown match the pinned vectors for every salt", async () => {
  // A blank salt means "unset" (the default salt), as for every variable, so vectors with an
  // empty salt are not typed into the form; empty keys and control characters cannot be.
  const usable = VECTORS.filter((v) => v.salt && v.key && v.key.trim() === v.key && !/[\u0000-\u001f]/.test(v.key));
  assert.ok(usable.length >= 12);
  for (const v of usable) {
    await page.fill("#salt", v.salt);
    await setUsers([v.key]);
    const r = await rowFor(v.key);
    assert.equal(r.position, v.position.toFixed(2), `${v.salt}:${v.key}`);
  }
  await page.fill("#salt", "");
  await setUsers(["user-42"]);
  assert.equal((await rowFor("user-42")).position, "76.52", "blank salt falls back to the default");
});

test("raising the rollout moves user-42 (76.52) to LightRAG and never evicts", async () => {
  await page.fill("#salt", "cmo_lightrag_2025");
  await setUsers(["user-42", "user-1", "user-2", "user-3"]);
  const seenIn = new Set();
  const checked = new Map();
  for (const pct of ["0", "10", "50", "76.52", "76.53", "100"]) {
    await page.fill("#rollout", pct);
    const r = await rowFor("user-42");
    assert.equal(r.position, "76.52");
    assert.equal(r.upstream, Number(pct) > 76.52 ? "lightrag" : "perplexity", `at ${pct} %`);
    for (const u of ["user-42", "user-1", "user-2", "user-3"]) {
      const now = (await rowFor(u)).upstream;
      if (seenIn.has(u)) {
        assert.equal(now, "lightrag", `${u} evicted at ${pct} %`);
        checked.set(u, (checked.get(u) ?? 0) + 1);
      }
      if (now === "lightrag") seenIn.add(u);
    }
  }
  // Every user entered before the last step, so the eviction check ran for each of them.
  for (const u of ["user-42", "user-1", "user-2", "user-3"]) assert.ok(checked.get(u) >= 1, `${u} never checked`);
});

test("invalid extra configuration shows an error instead of breaking the page", async () => {
  await page.fill("#config", "{not json");
  assert.match(await page.textContent("#config-error"), /not valid JSON/);
  await page.fill("#config", '{"LIGHTRAG_FORCE_USER_COHORT": "sideways"}');
  assert.match(await page.textContent("#config-error"), /LIGHTRAG_FORCE_USER_COHORT/);
  await page.fill("#config", "");
  assert.equal((await page.textContent("#config-error")).trim(), "");
  assert.deepEqual(errors, []);
});

test("simulating 10,000 users puts about the rollout share on LightRAG", async () => {
  await page.fill("#salt", "cmo_lightrag_2025");
  await page.fill("#rollout", "25");
  await page.fill("#sim-n", "10000");
  await page.click("#simulate");
  const summary = await page.textContent("#summary");
  const pct = Number(summary.match(/([\d.]+) % → LightRAG/)[1]);
  assert.ok(Math.abs(pct - 25) < 1.5, summary);
  assert.equal(await page.locator("#histogram div").count(), 100);
});

test("live state controls reroute exactly as the worker's decision order says", async () => {
  await page.fill("#config", "");
  await page.fill("#salt", "cmo_lightrag_2025");
  await page.fill("#rollout", "100");
  await setUsers(["user-42"]);
  const reason = async () => (await page.locator('#decisions tbody tr[data-user="user-42"] td.reason').textContent()).trim();
  assert.equal((await rowFor("user-42")).upstream, "lightrag");
  assert.equal(await reason(), "rollout_in");
  await page.selectOption("#breaker", "open");
  assert.equal((await rowFor("user-42")).upstream, "perplexity");
  assert.equal(await reason(), "circuit_open");
  await page.check("#rollback");
  assert.equal(await reason(), "rollback", "rollback is checked before the breaker");
  await page.uncheck("#rollback");
  await page.selectOption("#breaker", "half_open_probe");
  assert.equal(await reason(), "rollout_in", "a half-open probe continues to the hash");
  await page.selectOption("#breaker", "closed");
  assert.equal(await reason(), "rollout_in");
});
