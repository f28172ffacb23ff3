// Shared set-up for the page tests: Debian's Chromium through playwright-core, a fresh profile
// per browser, the CSP the router sends on /preview, screenshots into test-artifacts/ (git-ignored).
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = path.join(ROOT, "test-artifacts");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/** The policy `/preview` is served with (script-src 'self' 'wasm-unsafe-eval', no inline). */
export const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export async function launch({ width = 1280, height = 800 } = {}) {
  const profile = await mkdtemp(path.join(os.tmpdir(), "cmo-console-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height },
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"],
  });
  return {
    ctx,
    async close() {
      await ctx.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the page and waits for it to be ready; collects page errors and CSP violations (the
 * page must run under the router's policy without any).
 */
export async function openConsole(ctx, url) {
  const page = await ctx.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/favicon|Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(url);
  await page.waitForSelector("body[data-ready]", { timeout: 30_000 });
  return { page, problems };
}

export async function screenshot(page, selector, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  if (selector) await page.locator(selector).screenshot({ path: file });
  else await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Sets the Config panel's JSON view (the whole configuration) and waits until it applied. */
export async function setConfig(page, vars) {
  await page.fill("#config-json", JSON.stringify(vars, null, 2));
  // Applied means every form field shows this config: the ones named here hold their value,
  // the salt field is empty when no salt is given. Checking the rollout field alone let a test
  // that changes only the salt read the table drawn under the previous salt.
  await page.waitForFunction((v) => {
    const want = { LIGHTRAG_USER_HASH_SALT: "", ...v };
    return Object.entries(want).every(([name, value]) => {
      if (typeof value !== "string" && typeof value !== "number") return true; // rules: JSON, own panel
      const f = document.getElementById(`var-${name}`);
      return !f || f.value === String(value);
    });
  }, vars, { timeout: 10_000 });
}

/** Polls until `check` (evaluated in the page) returns something truthy; returns it. */
export async function until(page, check, arg, timeout = 20_000) {
  const h = await page.waitForFunction(check, arg, { timeout, polling: 50 });
  return h.jsonValue();
}
