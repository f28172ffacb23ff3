// CORS as a browser enforces it: the OpenFeature web SDK (@openfeature/web-sdk 1.10.0) with its
// OFREP provider (@openfeature/ofrep-web-provider 0.4.3), loaded from npm's files into a page in
// Debian's Chromium (playwright-core), served from one loopback origin and calling the router
// (release bundle in workerd via Miniflare) on another. An origin on ROUTER_ALLOWED_ORIGINS reads
// a user's cohort; any other origin is blocked by the browser (no CORS headers are sent).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startStack, positionHundredths } from "../node/common.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const NM = path.join(ROOT, "node_modules");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const SALT = "cmo_lightrag_2025";

// The packages' own ES module builds, mapped for the page (no bundler, nothing from a CDN).
const IMPORTS = {
  "@openfeature/core": "/nm/@openfeature/core/dist/esm/index.js",
  "@openfeature/web-sdk": "/nm/@openfeature/web-sdk/dist/esm/index.js",
  "@openfeature/ofrep-core": "/nm/@openfeature/ofrep-web-provider/node_modules/@openfeature/ofrep-core/index.esm.js",
  "@openfeature/ofrep-web-provider": "/nm/@openfeature/ofrep-web-provider/index.esm.js",
};

function page(routerUrl) {
  return `<!doctype html><html><head><meta charset="utf-8">
<script type="importmap">${JSON.stringify({ imports: IMPORTS })}</script>
<script type="module">
import { OpenFeature } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
const user = new URLSearchParams(location.search).get("user");
window.result = (async () => {
  await OpenFeature.setContext({ targetingKey: user });
  let init = "ready";
  try {
    await OpenFeature.setProviderAndWait(new OFREPWebProvider({ baseUrl: ${JSON.stringify(routerUrl)}, cacheMode: "disabled" }));
  } catch (e) {
    init = "failed: " + e;
  }
  const d = OpenFeature.getClient().getStringDetails("lightrag-routing", "no-answer");
  return { init, value: d.value, reason: d.reason, errorCode: d.errorCode ?? null };
})();
</script></head><body></body></html>`;
}

/** A loopback server for the test page and the packages' files. */
async function pageServer(routerUrl /* () => string */) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page(routerUrl()));
      return;
    }
    const rel = decodeURIComponent(url.pathname).replace(/^\/nm\//, "");
    const file = path.join(NM, path.normalize(rel));
    if (!url.pathname.startsWith("/nm/") || !file.startsWith(NM + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    try {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(await readFile(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

let s, allowed, other, ctx, profile;
before(async () => {
  // The page servers first (their origins go into the router's vars); the router's URL is
  // filled into their page when it is served.
  let routerUrl = "";
  allowed = await pageServer(() => routerUrl);
  other = await pageServer(() => routerUrl);
  s = await startStack({
    vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "25", ROUTER_ALLOWED_ORIGINS: allowed.origin },
    options: { host: "127.0.0.1", port: 0 },
  });
  routerUrl = s.w.url.origin;
  profile = await mkdtemp(path.join(os.tmpdir(), "cmo-cors-"));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await ctx?.close();
  await allowed?.close();
  await other?.close();
  await s?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function evaluate(origin, user) {
  const p = await ctx.newPage();
  const console = [];
  p.on("console", (m) => console.push(m.text()));
  try {
    await p.goto(`${origin}/?user=${encodeURIComponent(user)}`);
    const result = await p.evaluate(() => window.result);
    return { result, console };
  } finally {
    await p.close();
  }
}

test("a page on an allowed origin reads each user's cohort through the OFREP web provider", async () => {
  for (const user of ["user-1", "user-42", "user-7", "cors-anna", "cors-bob"]) {
    const { result } = await evaluate(allowed.origin, user);
    const expected = positionHundredths(SALT, user) < 2500 ? "lightrag" : "perplexity";
    assert.equal(result.init, "ready", JSON.stringify(result));
    assert.equal(result.value, expected, `${user}: ${JSON.stringify(result)}`);
    assert.equal(result.errorCode, null);
  }
});

test("a page on another origin is blocked by the browser and gets only its default", async () => {
  const { result, console } = await evaluate(other.origin, "user-42");
  assert.equal(result.value, "no-answer", JSON.stringify(result));
  assert.notEqual(result.errorCode, null);
  assert.ok(
    console.some((l) => /CORS policy/.test(l) && /Access-Control-Allow-Origin/.test(l)),
    `Chromium reports the CORS block: ${JSON.stringify(console)}`,
  );
});
