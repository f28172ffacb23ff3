// The operator's console (www/) in Debian's Chromium, served on loopback with the CSP the
// router sends on /preview. Every number it shows must be the core's: pinned hash vectors,
// the decision order, a 100,000-user simulation, who moves when the rollout rises, the plan
// function's errors and the breaker replay pinned in tests/spec/breaker/replay.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { serveDir } from "./static-server.mjs";
import { CSP, ROOT, launch, openConsole, screenshot, setConfig, until } from "./browser.mjs";

const VECTORS = JSON.parse(readFileSync(path.join(ROOT, "tests/vectors/cohort.json"), "utf8")).vectors;
const REPLAY = JSON.parse(readFileSync(path.join(ROOT, "tests/spec/breaker/replay.json"), "utf8"));
const ON = (pct, extra = {}) => ({ LIGHTRAG_INTEGRATION_ENABLED: "true", LIGHTRAG_ROLLOUT_PERCENTAGE: pct, ...extra });

let server, browser, page, problems;

before(async () => {
  server = await serveDir(path.join(ROOT, "www"), { headers: { "content-security-policy": CSP } });
  browser = await launch();
  ({ page, problems } = await openConsole(browser.ctx, server.url));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function rows() {
  return page.$$eval("#who-table tbody tr", (trs) => trs.map((tr) => {
    const c = [...tr.children].map((td) => td.textContent.trim());
    return { user: tr.dataset.user, position: c[1], upstream: c[2], reason: c[3], arm: c[4], rule: c[5], qtype: c[6] };
  }));
}

async function whoFor(users) {
  await page.fill("#who-users", users.join("\n"));
  await until(page, (n) => document.querySelectorAll("#who-table tbody tr").length === n && document.querySelector("#who-table tbody tr").dataset.user, users.length);
  // The debounced render has run for exactly these ids.
  await until(page, ([u, q]) => [...document.querySelectorAll("#who-table tbody tr")].map((t) => t.dataset.user).join("\n") === u && document.getElementById("who-table").dataset.query === q, [users.join("\n"), await page.inputValue("#who-query")]);
  return rows();
}

test("the page loads the wasm core under the router's CSP, with no errors", async () => {
  const version = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8").match(/^version = "(.+)"/m)[1];
  assert.equal(await page.getAttribute("body", "data-ready"), "true");
  assert.equal((await page.textContent("#version")).trim(), version);
  assert.equal((await page.textContent("#status")).trim(), "ready");
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
  assert.deepEqual(problems, []);
});

test("positions shown match the pinned vectors for every salt", async () => {
  const usable = VECTORS.filter((v) => v.salt && v.key && v.key.trim() === v.key && !/[\u0000-\u001f]/.test(v.key));
  assert.ok(usable.length >= 12);
  for (const v of usable) {
    await setConfig(page, ON("10", { LIGHTRAG_USER_HASH_SALT: v.salt }));
    const [r] = await whoFor([v.key]);
    assert.equal(r.position, v.position.toFixed(2), `${v.salt}:${v.key}`);
  }
  await setConfig(page, ON("10"));
  const [r] = await whoFor(["user-42"]);
  assert.equal(r.position, "76.52", "no salt: the default salt");
});

test("raising the rollout moves user-42 (76.52) to LightRAG and never evicts anyone", async () => {
  const users = ["user-42", "user-1", "user-2", "user-3"];
  const seenIn = new Set();
  for (const pct of ["0", "10", "50", "76.52", "76.53", "100"]) {
    await setConfig(page, ON(pct));
    const rs = await whoFor(users);
    const u42 = rs.find((r) => r.user === "user-42");
    assert.equal(u42.upstream, Number(pct) > 76.52 ? "lightrag" : "perplexity", `at ${pct} %`);
    for (const r of rs) {
      if (seenIn.has(r.user)) assert.equal(r.upstream, "lightrag", `${r.user} evicted at ${pct} %`);
      if (r.upstream === "lightrag") seenIn.add(r.user);
    }
  }
  assert.equal(seenIn.size, users.length);
});

test("each config problem is shown next to its field, worded as the loader reports it", async () => {
  await setConfig(page, ON("10", { LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE: "200", LIGHTRAG_FORCE_USER_COHORT: "sideways" }));
  const win = await until(page, () => document.getElementById("problem-LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE").textContent);
  assert.match(win, /from 1 to 128/);
  assert.equal(await page.getAttribute("#var-LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE", "aria-invalid"), "true");
  assert.match(await page.textContent("#problem-LIGHTRAG_FORCE_USER_COHORT"), /expected lightrag, perplexity, or none/);
  // The same words as the core's loader (the Live test checks them against the worker's 422).
  const expected = await page.evaluate(async () => {
    const m = await import("./pkg/cmo_edge_router.js");
    return m.loadConfig({ LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE: "200" }).problems[0].message;
  });
  assert.ok(win.includes(expected), `${win} vs ${expected}`);
  // Typing into the form updates the JSON view, and a fixed value clears its problem.
  await page.fill("#var-LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE", "40");
  await until(page, () => document.getElementById("problem-LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE").textContent === "");
  assert.equal(JSON.parse(await page.inputValue("#config-json")).LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE, "40");
  // A bad rule is reported against its card.
  await setConfig(page, ON("10", { LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: "true", LIGHTRAG_ROUTING_RULES: [{ name: "ok", action: "perplexity", when: { keywords_any: ["latest"] } }, { name: "bad name!", action: "lightrag" }] }));
  assert.match(await until(page, () => document.getElementById("problem-rule-1")?.textContent), /name/);
  assert.equal(await page.textContent("#problem-rule-0"), "");
  // Invalid JSON is not applied and says why.
  await page.fill("#config-json", "{not json");
  assert.match(await until(page, () => document.getElementById("config-json-error").textContent), /Not applied/);
  await setConfig(page, ON("10"));
});

test("a rule edited in the form routes as the core decides, with its name as the reason", async () => {
  await setConfig(page, ON("100", { LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: "true", LIGHTRAG_ROUTING_RULES: [{ name: "news", action: "perplexity", when: { query_type: ["temporal"] } }] }));
  await page.fill("#who-query", "What are the latest 2025 guidelines on newborn screening?");
  await until(page, () => document.getElementById("who-qtype").textContent === "temporal");
  let [r] = await whoFor(["user-42"]);
  assert.deepEqual([r.upstream, r.reason, r.rule, r.arm], ["perplexity", "rule:news", "news", "none"]);
  await page.selectOption("#rule-0-action", "lightrag");
  await until(page, () => document.querySelector('#who-table tr[data-user="user-42"] .reason')?.textContent === "rule:news" && document.querySelector('#who-table tr[data-user="user-42"] .upstream').textContent === "lightrag");
  await page.fill("#who-query", "How does the TCA cycle relate to lactate accumulation in sepsis?");
  await until(page, () => document.querySelector('#who-table tr[data-user="user-42"] .reason')?.textContent === "rollout_in");
  [r] = await rows();
  assert.equal(r.qtype, "mechanism");
  await setConfig(page, ON("10"));
});

test("live state controls reroute exactly as the worker's decision order says", async () => {
  await setConfig(page, ON("100"));
  await whoFor(["user-42"]);
  const reason = () => page.textContent('#who-table tr[data-user="user-42"] .reason');
  const wait = (want) => until(page, (w) => document.querySelector('#who-table tr[data-user="user-42"] .reason')?.textContent === w, want);
  await wait("rollout_in");
  await page.selectOption("#state-breaker", "open");
  await wait("circuit_open");
  await page.check("#state-rollback");
  await wait("rollback");
  await page.uncheck("#state-rollback");
  await page.selectOption("#state-breaker", "half_open_probe");
  await wait("rollout_in");
  await page.selectOption("#state-breaker", "closed");
  assert.equal(await reason(), "rollout_in");
});

test("a 100,000-user simulation at 25 % puts 25 ± 0.5 % on LightRAG", async () => {
  await setConfig(page, ON("25"));
  await page.fill("#dist-n", "100000");
  const before = Number((await page.getAttribute("#dist-summary", "data-done")) ?? 0);
  await page.click("#dist-run");
  await until(page, (b) => Number(document.getElementById("dist-summary").dataset.done) > b, before);
  const share = Number(await page.getAttribute("#dist-summary", "data-share"));
  assert.equal(await page.getAttribute("#dist-summary", "data-total"), "100000");
  assert.ok(Math.abs(100 * share - 25) <= 0.5, `${100 * share} %`);
  assert.match(await page.textContent("#dist-summary"), /rollout 25 %/);
  assert.equal(await page.locator("#dist-chart svg rect.bar:not(.lr)").count(), 100);
  // At 25 % exactly the first 25 buckets hold LightRAG users.
  assert.equal(await page.locator("#dist-chart svg rect.bar.lr").count(), 25);
  assert.equal(await page.locator("#dist-chart svg line.rollout-line").count(), 1);
  const reasons = await page.$$eval("#dist-reasons tbody tr", (t) => t.map((r) => r.children[0].textContent));
  assert.deepEqual(reasons.sort(), ["rollout_in", "rollout_out"]);
});

test("raising the rollout from 10 to 20 % moves nobody out of LightRAG", async () => {
  await setConfig(page, ON("10"));
  await page.click("#moves-from-config");
  await page.fill("#moves-rollout", "20");
  await until(page, () => JSON.parse(document.getElementById("moves-proposed").value).LIGHTRAG_ROLLOUT_PERCENTAGE === "20");
  await page.fill("#moves-n", "100000");
  await page.click("#moves-run");
  await until(page, () => document.getElementById("moves-verdict"));
  assert.equal(await page.getAttribute("#moves-result .flow.out", "data-count"), "0");
  const moved = Number(await page.getAttribute("#moves-result .flow.in", "data-count"));
  assert.ok(Math.abs(moved - 10_000) <= 500, `${moved} moved in`);
  assert.match(await page.textContent("#moves-verdict"), /Nobody moves out of LightRAG/);
  assert.match(await page.textContent("#moves-result .flow.in"), /rollout_out → rollout_in/);
  // And lowering it again moves exactly those users back out.
  await page.fill("#moves-current", await page.inputValue("#moves-proposed"));
  await page.fill("#moves-rollout", "10");
  await page.click("#moves-run");
  await until(page, (m) => document.querySelector("#moves-result .flow.out")?.dataset.count === String(m), moved);
  assert.match(await page.textContent("#moves-verdict"), /would lose it/);
});

test("an invalid plan shows the worker's plan error; a valid one its stages and chart", async () => {
  await page.selectOption("#plan-strategy", "linear");
  await page.fill("#plan-increment", "0");
  const err = await until(page, () => document.getElementById("plan-error").textContent);
  assert.match(err, /increment: must be a percentage in \[0\.01, 100\], got 0/);
  assert.equal(await page.getAttribute("#plan-error", "data-field"), "increment");
  assert.equal(await page.getAttribute("#plan-increment", "aria-invalid"), "true");
  await page.fill("#plan-json", JSON.stringify({ strategy: "canary", increment: 10 }));
  assert.match(await until(page, () => /increment: is not a field here/.test(document.getElementById("plan-error").textContent) && document.getElementById("plan-error").textContent), /accepted:/);
  await page.fill("#plan-json", JSON.stringify({ strategy: "canary", canary_percentage: 5 }));
  await until(page, () => document.getElementById("plan-error").textContent === "" && document.querySelectorAll("#plan-stages tbody tr").length === 2);
  assert.match(await page.textContent("#plan-summary"), /5 % → 100 %.*3 h.*1 approval/);
  assert.equal(await page.locator("#plan-chart svg circle.gate.approval").count(), 1);
  await page.selectOption("#plan-strategy", "exponential");
  await until(page, () => document.querySelectorAll("#plan-stages tbody tr").length === 8);
});

test("the breaker timeline for the pinned outcome sequence matches the native breaker test", async () => {
  await setConfig(page, { ...ON("10"), ...REPLAY.config });
  await page.check('input[name="breaker-mode"][value="typed"]');
  await page.fill("#breaker-lines", REPLAY.lines.join("\n"));
  const want = REPLAY.expect.transitions;
  await until(page, (n) => document.querySelectorAll("#breaker-transitions tbody tr").length === n && !document.getElementById("breaker-error").textContent, want.length);
  const got = await page.$$eval("#breaker-transitions tbody tr", (trs) => trs.map((t) => ({
    at_ms: Number(t.dataset.atMs), from: t.dataset.from, to: t.dataset.to, cause: t.dataset.cause,
    open_until_ms: t.dataset.openUntilMs === "" ? null : Number(t.dataset.openUntilMs),
  })));
  assert.deepEqual(got, want);
  const summary = await page.textContent("#breaker-summary");
  assert.match(summary, new RegExp(`${REPLAY.expect.admitted} admitted \\(${REPLAY.expect.probes} as half-open probes`));
  assert.match(summary, new RegExp(`${REPLAY.expect.rejected} rejected; ${REPLAY.expect.trips} trip`));
  assert.equal(await page.locator("#breaker-chart svg rect.band.open:not(.legend)").count(), 3);
  // Each transition says why.
  assert.match(await page.textContent("#breaker-transitions tbody tr:first-child"), /3 consecutive failures reached the threshold of 3/);
  // A bad line names itself.
  await page.fill("#breaker-lines", "1 200\nsoon 503");
  assert.match(await until(page, () => document.getElementById("breaker-error").textContent), /^line 2: /);
  // A generated scenario: a burst of errors trips it.
  await page.check('input[name="breaker-mode"][value="generated"]');
  await until(page, () => !document.getElementById("breaker-error").textContent && document.querySelectorAll("#breaker-transitions tbody tr").length > 0);
  await page.fill("#gen-errors", "2");
  assert.match(await until(page, () => document.getElementById("breaker-error").textContent), /error_rate: must be a number in \[0, 1\]/);
  await page.fill("#gen-errors", "0.02");
  await setConfig(page, ON("10"));
});

test("every control has a label, and the keyboard alone runs a simulation", async () => {
  const unlabelled = await page.$$eval("main input, main select, main textarea, main button", (els) => els
    .filter((e) => !(e.labels?.length || e.getAttribute("aria-label") || (e.tagName === "BUTTON" && e.textContent.trim())))
    .map((e) => e.id || e.outerHTML.slice(0, 60)));
  assert.deepEqual(unlabelled, []);
  const before = Number(await page.getAttribute("#dist-summary", "data-done"));
  await page.focus("#dist-n");
  await page.keyboard.press("Tab"); // → query
  await page.keyboard.press("Tab"); // → Simulate
  assert.equal(await page.evaluate(() => document.activeElement.id), "dist-run");
  await page.keyboard.press("Enter");
  await until(page, (b) => Number(document.getElementById("dist-summary").dataset.done) > b, before);
});

test("screenshots of each panel (laptop and phone width) are written as test artefacts", async () => {
  for (const id of ["config", "who", "moves", "dist", "plan", "breaker", "live"]) {
    await screenshot(page, `#panel-${id}`, `panel-${id}-1280`);
  }
  await page.setViewportSize({ width: 375, height: 800 });
  try {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 375, `the page scrolls sideways at 375 px (${overflow})`);
    for (const id of ["config", "who", "dist", "breaker"]) await screenshot(page, `#panel-${id}`, `panel-${id}-375`);
  } finally {
    await page.setViewportSize({ width: 1280, height: 800 });
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
});

test("a clear message when the wasm cannot be loaded", async () => {
  const p = await browser.ctx.newPage();
  try {
    await p.route("**/*.wasm", (r) => r.fulfill({ status: 404, body: "not found" }));
    await p.goto(server.url);
    await p.waitForSelector("body[data-ready=failed]", { timeout: 20_000 });
    assert.equal(await p.isVisible("#fatal"), true);
    assert.match(await p.textContent("#fatal"), /routing core \(WebAssembly\) could not be loaded/);
    assert.equal(await p.isDisabled("#dist-run"), true);
    await screenshot(p, null, "wasm-failed");
  } finally {
    await p.close();
  }
});

test("a router that has a rollout API: its phase is shown and its stored plan charted", async () => {
  // main's router has no /admin/rollout yet (tests/browser/live.test.mjs checks the 404 message
  // against the real worker); this answers the three GETs on the page's own origin with the
  // documents' shapes, the stored plan being the core's own (planTimeline's strategy/stages/safety).
  const p = await browser.ctx.newPage();
  try {
    await p.goto(server.url);
    await p.waitForSelector("body[data-ready=true]");
    const plan = await p.evaluate(async () => {
      const m = await import("./pkg/cmo_edge_router.js");
      const { strategy, stages, safety } = m.planTimeline({ strategy: "canary", canary_percentage: 2 });
      const effective = m.loadConfig({ LIGHTRAG_INTEGRATION_ENABLED: "true", LIGHTRAG_ROLLOUT_PERCENTAGE: "2" }).config;
      return { plan: { strategy, stages, safety }, effective };
    });
    const seen = [];
    await p.route(/\/admin\/(config|status|rollout)$/, (route) => {
      const which = new URL(route.request().url()).pathname.split("/").pop();
      seen.push([which, route.request().headers().authorization]);
      const body = {
        config: { version: 2, etag: "\"v2\"", overrides: {}, updated_ms: 0, effective: plan.effective, problems: [] },
        status: { service_performance: { circuit_breaker: { state: "closed" }, performance: {} }, rollout_status: { rollback_active: false, quality_gate_closed: false } },
        rollout: { phase: "awaiting_approval", current_percentage: 2, current_stage_index: 0, stage_count: 2, next_percentage: 100, plan: plan.plan },
      }[which];
      route.fulfill({ status: 200, contentType: "application/json", headers: { etag: "\"v2\"" }, body: JSON.stringify(body) });
    });
    await p.fill("#live-base", server.url);
    await p.fill("#live-token", "t0ken");
    await p.click("#live-connect");
    await p.waitForSelector("#live-result[data-connected=true]");
    assert.match(await p.textContent("#live-rollout"), /awaiting_approval.*2 %.*1 of 2.*100 %/s);
    assert.equal(await p.locator("#live-plan svg circle.gate.approval").count(), 1);
    assert.deepEqual(seen.map(([w]) => w), ["config", "status", "rollout"]);
    assert.ok(seen.every(([, a]) => a === "Bearer t0ken"), "the token goes only in the Authorization header");
    await p.click("#live-use");
    assert.equal(await p.inputValue("#var-LIGHTRAG_ROLLOUT_PERCENTAGE"), "2");
  } finally {
    await p.close();
  }
});
