// Live: with an admin token typed by the operator, read a running router's config, status and
// rollout, and preview a change against them. The token lives in this module's memory only:
// never in localStorage, sessionStorage, cookies or the address; it is sent only as the
// Authorization header of these three GETs, to the router the operator named.
import { $, el, errText, fmtInt, present } from "./dom.js";
import { store } from "./store.js";
import { setMoves } from "./moves.js";
import { planChart } from "./svg.js";

let core;
let token = "";
let live = null; // {variables, state}

/** Same origin when the page is served by the router at /preview; a typed address otherwise. */
function base() {
  const typed = $("live-base").value.trim().replace(/\/+$/, "");
  if (typed) return typed;
  if (location.pathname.startsWith("/preview")) return location.origin;
  throw new Error("Type the router's address (this page is not served by a router at /preview).");
}

async function get(url, path) {
  let r;
  try {
    r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` }, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  } catch (e) {
    const cross = new URL(url).origin !== location.origin;
    throw new Error(`Could not reach the router at ${url} (${e.message}).${cross ? ` The page is on another origin (${location.origin}): the router must allow it (ROUTER_ALLOWED_ORIGINS) and the page's own policy must let it connect.` : ""}`);
  }
  let body = null;
  try {
    body = await r.json();
  } catch {
    // not JSON: described below
  }
  return { status: r.status, body, etag: r.headers.get("etag") };
}

function refusal(path, res) {
  const msg = res.body?.error?.message ?? "";
  if (res.status === 401) return `The router refused the token (401 on ${path}${msg ? `: ${msg}` : ""}). Check the token and try again.`;
  if (res.status === 403) return `The router's admin API is disabled (403 on ${path}${msg ? `: ${msg}` : ""}).`;
  return `GET ${path} answered ${res.status}${msg ? `: ${msg}` : ""}.`;
}

function dl(pairs) {
  return el("dl", {}, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function connect(ev) {
  ev.preventDefault();
  const err = $("live-error");
  const out = $("live-result");
  err.textContent = "";
  token = $("live-token").value.trim();
  let url;
  try {
    url = base();
    if (!token) throw new Error("Type the admin token first.");
  } catch (e) {
    err.textContent = e.message;
    return;
  }
  out.replaceChildren(el("p", { class: "meta" }, `Reading ${url} …`));
  $("live-use").disabled = true;
  $("live-propose").disabled = true;
  try {
    const cfg = await get(url, "/admin/config");
    if (cfg.status !== 200 || !cfg.body) throw new Error(refusal("/admin/config", cfg));
    const st = await get(url, "/admin/status");
    if (st.status !== 200 || !st.body) throw new Error(refusal("/admin/status", st));
    const ro = await get(url, "/admin/rollout");
    const vars = core.liveVariables(cfg.body.effective);
    const state = core.liveState(st.body);
    live = { variables: vars.variables, state: state.state };
    const problems = cfg.body.problems ?? [];
    const rollout = ro.status === 404
      ? el("p", { id: "live-rollout", "data-missing": "true" }, "This router has no rollout API yet (GET /admin/rollout answered 404); it routes by LIGHTRAG_ROLLOUT_PERCENTAGE.")
      : ro.status === 200 && ro.body
        ? el("div", { id: "live-rollout" }, dl([
          ["phase", String(ro.body.phase ?? "–")],
          ["current percentage", ro.body.phase === "idle" || ro.body.current_percentage == null
            ? "none: no rollout running, the router uses LIGHTRAG_ROLLOUT_PERCENTAGE"
            : `${ro.body.current_percentage} %`],
          ["stage", ro.body.current_stage_index == null ? "–" : `${ro.body.current_stage_index + 1} of ${ro.body.stage_count ?? "?"}`],
          ["next percentage", ro.body.next_percentage == null ? "–" : `${ro.body.next_percentage} %`],
          ["blocking", (ro.body.stage_progress?.blocking_gates ?? []).map((g) => g.gate ?? g.name ?? JSON.stringify(g)).join(", ") || "–"],
        ]))
        : el("p", { id: "live-rollout" }, refusal("/admin/rollout", ro));
    // The running plan, re-validated and charted by the same plan function as the Plan panel.
    let planBox = null;
    if (ro.status === 200 && ro.body?.plan) {
      planBox = el("div", { class: "chart", id: "live-plan" });
      try {
        planChart(planBox, core.storedPlanTimeline(ro.body.plan).timeline);
      } catch (e) {
        planBox.append(el("p", { class: "problem" }, `The stored plan does not validate: ${errText(e)}`));
      }
    }
    out.replaceChildren(...present(
      el("h3", {}, `Config ${cfg.etag ?? `v${cfg.body.version}`}`),
      dl([
        ["rollout", `${cfg.body.effective.rollout_percentage} % (integration ${cfg.body.effective.integration_enabled ? "on" : "off"})`],
        ["overrides", Object.keys(cfg.body.overrides ?? {}).join(", ") || "none"],
        ["problems", problems.length ? problems.map((p) => `${p.variable}: ${p.message}`).join("; ") : "none"],
      ]),
      vars.notes.length ? el("ul", { class: "notes" }, vars.notes.map((n) => el("li", {}, n))) : null,
      el("h3", {}, "Status"),
      dl([
        ["LightRAG breaker", state.breaker],
        ["rollback", st.body.rollout_status?.rollback_active ? "ACTIVE — everybody to Perplexity" : "no"],
        ["quality gate", st.body.rollout_status?.quality_gate_closed ? "closed" : "open"],
        ["requests (this isolate, last hour)", fmtInt(Object.values(st.body.service_performance?.performance ?? {}).reduce((a, p) => a + (p.total_requests ?? 0), 0))],
      ]),
      state.notes.length ? el("ul", { class: "notes" }, state.notes.map((n) => el("li", {}, n))) : null,
      el("h3", {}, "Rollout"),
      rollout,
      planBox,
    ));
    out.dataset.connected = "true";
    $("live-use").disabled = false;
    $("live-propose").disabled = false;
  } catch (e) {
    live = null;
    out.replaceChildren();
    delete out.dataset.connected;
    err.textContent = errText(e);
  }
}

export function initLive(c) {
  core = c;
  if (location.pathname.startsWith("/preview")) $("live-base").placeholder = `same origin (${location.origin})`;
  else $("live-base").placeholder = "https://router.example.org";
  $("live-form").addEventListener("submit", connect);
  $("live-forget").addEventListener("click", () => {
    token = "";
    $("live-token").value = "";
    $("live-error").textContent = "";
    $("live-result").replaceChildren(el("p", { class: "meta" }, "Token forgotten."));
    delete $("live-result").dataset.connected;
    $("live-use").disabled = true;
    $("live-propose").disabled = true;
  });
  $("live-use").addEventListener("click", () => {
    if (!live) return;
    store.set({ vars: { ...live.variables }, state: { ...live.state } }, "live");
    $("panel-who").scrollIntoView();
  });
  $("live-propose").addEventListener("click", () => {
    if (!live) return;
    setMoves(live.variables, { ...live.variables });
    $("panel-moves").scrollIntoView();
    $("moves-rollout").focus();
  });
}
