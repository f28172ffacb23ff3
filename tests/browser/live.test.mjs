// The Live panel against a real router: the release worker bundle in workerd (Miniflare 4, as
// tests/node does) with mock upstreams on loopback, serving the page at /preview through its
// assets binding — so the page reads /admin/* from its own origin, as in production. The
// decisions the page shows for the live config must be the ones the worker makes for the same
// users; the worker's own 422 words must be the ones the page shows next to the field.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { startStack, chatBody, post, auth, ADMIN } from "../node/common.mjs";
import { ROOT, launch, openConsole, screenshot, until } from "./browser.mjs";

const NEWS = "What are the latest 2025 guidelines on newborn screening?";
const PATHWAY = "How does the TCA cycle relate to lactate accumulation in sepsis?";
const USERS = [...Array.from({ length: 40 }, (_, i) => `user-${i}`), "müller@klinik.de", "研究者-7"];

let stack, browser, page, problems, base;

before(async () => {
  stack = await startStack({
    vars: {
      LIGHTRAG_ROLLOUT_PERCENTAGE: "30",
      LIGHTRAG_DENY_USERS: "user-3",
      LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: "true",
      LIGHTRAG_ROUTING_RULES: JSON.stringify([{ name: "news", when: { query_type: "temporal" }, action: "perplexity" }]),
    },
    options: {
      assets: {
        directory: path.join(ROOT, "www"),
        binding: "ASSETS",
        routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
      },
    },
  });
  base = stack.w.url.toString().replace(/\/$/, "");
  browser = await launch();
  ({ page, problems } = await openConsole(browser.ctx, `${base}/preview/`));
  assert.equal(await page.getAttribute("body", "data-ready"), "true", "the page served by the router loads its wasm");
});

after(async () => {
  await browser?.close();
  await stack?.close();
});

async function connect(token) {
  await page.fill("#live-token", token);
  await page.click("#live-connect");
}

/** What the worker does for `user` asking `query` (a real request through the router). */
async function workerDecision(user, query) {
  const r = await post(stack.w, "/v1/chat/completions", chatBody(query, { user }));
  await r.arrayBuffer();
  assert.equal(r.status, 200, `chat for ${user}`);
  return {
    upstream: r.headers.get("x-route-upstream"),
    reason: r.headers.get("x-route-reason"),
    arm: r.headers.get("x-route-arm"),
    position: r.headers.get("x-route-position"),
  };
}


async function compareWithWorker(query) {
  // The who panel re-renders on input (debounced): wait until it shows this query's decisions.
  const shown = await until(page, ([q, users]) => {
    if (document.getElementById("who-table").dataset.query !== q) return null;
    const trs = [...document.querySelectorAll("#who-table tbody tr")];
    if (trs.map((t) => t.dataset.user).join("\n") !== users.join("\n")) return null;
    return Object.fromEntries(trs.map((tr) => [tr.dataset.user, {
      upstream: tr.querySelector(".upstream").textContent, reason: tr.querySelector(".reason").textContent,
      arm: tr.querySelector(".arm").textContent, position: tr.querySelector(".position").textContent,
    }]));
  }, [query, USERS]);
  let compared = 0;
  for (const user of USERS) {
    const w = await workerDecision(user, query);
    const p = shown[user];
    assert.equal(p.upstream, w.upstream, `upstream of ${user} / ${query}`);
    assert.equal(p.reason, w.reason, `reason of ${user} / ${query}`);
    // Cohort headers may be admin-only on a hardened router; compared when present.
    if (w.arm) assert.equal(p.arm, w.arm, `arm of ${user}`);
    if (w.position) assert.equal(p.position, w.position, `position of ${user}`);
    compared++;
  }
  return { compared, shown };
}

test("a wrong token is refused with a clear message", async () => {
  await connect("not-the-token");
  const err = await until(page, () => document.getElementById("live-error").textContent);
  assert.match(err, /refused the token \(401 on \/admin\/config: invalid admin token\)/);
  assert.equal(await page.isDisabled("#live-use"), true);
});

test("decisions shown for the live config equal the worker's, request by request", async () => {
  await connect(ADMIN);
  await until(page, () => document.getElementById("live-result").dataset.connected === "true");
  assert.equal(await page.textContent("#live-error"), "");
  // The router has the rollout API (GET /admin/rollout); no rollout has been started.
  assert.equal(await page.getAttribute("#live-rollout", "data-missing"), null);
  assert.match(await page.textContent("#live-rollout"), /phase\s*idle/);
  assert.match(await page.textContent("#live-rollout"), /current percentage\s*none: no rollout running/);
  assert.doesNotMatch(await page.textContent("#live-result"), /\bnull\b|undefined|NaN/);
  await page.click("#live-use");
  await until(page, () => document.getElementById("var-LIGHTRAG_ROLLOUT_PERCENTAGE").value === "30");
  await page.fill("#who-users", USERS.join("\n"));
  for (const query of [PATHWAY, NEWS]) {
    await page.fill("#who-query", query);
    const { compared, shown } = await compareWithWorker(query);
    assert.equal(compared, USERS.length);
    const reasons = new Set(Object.values(shown).map((d) => d.reason));
    if (query === NEWS) assert.deepEqual([...reasons].sort(), ["forced", "rule:news"]);
    else assert.ok(reasons.has("rollout_in") && reasons.has("rollout_out") && reasons.has("forced"), [...reasons].join());
  }
  await screenshot(page, "#panel-live", "panel-live-connected");
  await screenshot(page, "#panel-who", "panel-who-live");
});

test("an open breaker read from the router reroutes the page as it reroutes the worker", async () => {
  const r = await post(stack.w, "/admin/breaker/lightrag/open", "", auth);
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  try {
    await page.click("#live-connect");
    await until(page, () => document.getElementById("live-result").dataset.connected === "true" && /LightRAG breaker\s*open/.test(document.getElementById("live-result").textContent));
    await page.click("#live-use");
    await until(page, () => document.getElementById("state-breaker").value === "open");
    await page.fill("#who-query", PATHWAY);
    const { shown } = await compareWithWorker(PATHWAY);
    assert.ok(Object.values(shown).some((d) => d.reason === "circuit_open"));
  } finally {
    const reset = await post(stack.w, "/admin/breaker/lightrag/reset", "", auth);
    await reset.arrayBuffer();
    // The page keeps the state it read until told otherwise: back to what the router now says.
    await page.selectOption("#state-breaker", "closed");
  }
});

test("a value the worker refuses (422) shows the worker's words next to its field", async () => {
  const g = await stack.w.fetch("/admin/config", { headers: auth });
  const etag = g.headers.get("etag");
  await g.arrayBuffer();
  const put = await stack.w.fetch("/admin/config", {
    method: "PUT", headers: { ...auth, "if-match": etag, "content-type": "application/json" },
    body: JSON.stringify({ LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE: "200" }),
  });
  assert.equal(put.status, 422);
  const refused = (await put.json()).error.problems;
  assert.equal(refused.length, 1);
  await page.fill("#var-LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE", "200");
  const shown = await until(page, () => document.getElementById("problem-LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE").textContent);
  assert.ok(shown.includes(refused[0].message), `page: ${shown}\nworker: ${refused[0].message}`);
  await page.fill("#var-LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE", "");
});

test("a change previewed against the live config: raising 30 → 50 % moves nobody out", async () => {
  await page.click("#live-propose");
  assert.equal(Number(JSON.parse(await page.inputValue("#moves-current")).LIGHTRAG_ROLLOUT_PERCENTAGE), 30);
  assert.equal(await page.evaluate(() => document.activeElement.id), "moves-rollout");
  await page.fill("#moves-rollout", "50");
  await page.fill("#moves-n", "20000");
  await page.click("#moves-run");
  await until(page, () => document.getElementById("moves-verdict"));
  assert.equal(await page.getAttribute("#moves-result .flow.out", "data-count"), "0");
  assert.ok(Number(await page.getAttribute("#moves-result .flow.in", "data-count")) > 3000);
  await screenshot(page, "#panel-moves", "panel-moves-live");
});

test("the token stays in memory: no storage, no cookie, not in the address; forgetting clears it", async () => {
  const leaks = await page.evaluate((t) => ({
    local: Object.keys(localStorage).length, session: Object.keys(sessionStorage).length,
    cookie: document.cookie, href: location.href.includes(t), history: history.state,
  }), ADMIN);
  assert.deepEqual(leaks, { local: 0, session: 0, cookie: "", href: false, history: null });
  assert.deepEqual(await browser.ctx.cookies(), []);
  await page.click("#live-forget");
  assert.equal(await page.inputValue("#live-token"), "");
  assert.equal(await page.isDisabled("#live-use"), true);
  assert.deepEqual(problems, []);
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
});
