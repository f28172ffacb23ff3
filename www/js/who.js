// Who goes where: pasted user ids and a query → each one's decision (upstream, reason, arm,
// position, matched rule, query type), all from decideMany in wasm; the counts too.
import { $, el, debounce, errText, fmtInt, fmtShare, parseHeaders } from "./dom.js";
import { store } from "./store.js";

/** Rows drawn in the table; the summary counts every id. */
const MAX_ROWS = 500;
let core;

function ids() {
  return $("who-users").value.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
}

function render() {
  const err = $("who-error");
  err.textContent = "";
  const query = $("who-query").value;
  $("who-qtype").textContent = core.classify(query);
  const keys = ids();
  const tbody = $("who-table").querySelector("tbody");
  let out;
  try {
    out = core.decideMany(store.vars, keys, { query, headers: parseHeaders($("who-headers").value) }, store.state);
  } catch (e) {
    err.textContent = errText(e);
    tbody.replaceChildren();
    return;
  }
  const rows = out.rows.slice(0, MAX_ROWS).map((d) => {
    const tr = el("tr", { "data-user": d.key }, [
      el("td", {}, d.key),
      el("td", { class: "position" }, d.position == null ? "–" : d.position.toFixed(2)),
      el("td", { class: `upstream ${d.upstream}` }, d.upstream),
      el("td", { class: "reason" }, d.reason),
      el("td", { class: "arm" }, d.arm),
      el("td", { class: "rule" }, d.rule ?? "–"),
      el("td", { class: "qtype" }, d.query_type),
    ]);
    return tr;
  });
  tbody.replaceChildren(...rows);
  $("who-table").dataset.query = query;
  const s = out.summary;
  const lr = s.per_upstream.lightrag ?? 0;
  const summary = $("who-summary");
  summary.textContent = `${fmtInt(s.total)} ${s.total === 1 ? "user" : "users"}: ${fmtInt(lr)} → LightRAG (${fmtShare(s.lightrag_share)}), ${fmtInt(s.per_upstream.perplexity ?? 0)} → Perplexity`;
  summary.dataset.lightrag = String(lr);
  $("who-more").textContent = s.total > MAX_ROWS ? `Showing the first ${MAX_ROWS} of ${fmtInt(s.total)} users; the counts above cover all of them.` : "";
}

export function initWho(c) {
  core = c;
  const later = debounce(render, 120);
  for (const id of ["who-users", "who-query", "who-headers"]) $(id).addEventListener("input", later);
  store.subscribe(render);
  render();
}

