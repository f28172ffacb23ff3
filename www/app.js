// Routing preview page. All arithmetic happens in the router's own core, compiled to wasm
// (./pkg, built by `make preview`): this file only reads the form and draws the results.
import init, * as router from "./pkg/cmo_edge_router.js";

const $ = (id) => document.getElementById(id);

function configObject() {
  const vars = {};
  const extra = $("config").value.trim();
  if (extra) {
    let parsed;
    try { parsed = JSON.parse(extra); } catch (e) { throw new Error(`Extra configuration is not valid JSON: ${e.message}`); }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new Error("Extra configuration must be a JSON object of variables");
    }
    Object.assign(vars, parsed);
  }
  vars.LIGHTRAG_USER_HASH_SALT = $("salt").value;
  vars.LIGHTRAG_ROLLOUT_PERCENTAGE = $("rollout").value;
  if (!("LIGHTRAG_INTEGRATION_ENABLED" in vars)) vars.LIGHTRAG_INTEGRATION_ENABLED = "true";
  return vars;
}

// The live state the worker would pass to the same decision (breaker, rollback, quality gate).
function stateObject() {
  return {
    lightrag_breaker: $("breaker").value,
    rollback_active: $("rollback").checked,
    quality_gate_closed: $("gate").checked,
  };
}

function users() {
  return $("users").value.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function decideOne(cfg, key, query) {
  return router.decide(cfg, { key, query, headers: {} }, stateObject());
}

function drawHistogram(hist, rollout) {
  const box = $("histogram");
  box.replaceChildren();
  const max = Math.max(1, ...hist);
  hist.forEach((n, i) => {
    const bar = document.createElement("div");
    bar.style.height = `${(100 * n) / max}%`;
    bar.title = `${i}–${i + 1} %: ${n}`;
    if (i < rollout) bar.classList.add("in");
    box.appendChild(bar);
  });
}

function render() {
  $("config-error").textContent = "";
  const tbody = $("decisions").querySelector("tbody");
  tbody.replaceChildren();
  let cfg;
  try {
    cfg = configObject();
    const query = $("query").value;
    const { problems } = router.loadConfig(cfg);
    $("config-error").textContent = problems.map((p) => `${p.variable}: ${p.message}`).join("\n");
    $("qtype").textContent = router.classify(query);
    const hist = new Array(100).fill(0);
    let lightrag = 0;
    const list = users();
    for (const key of list) {
      const d = decideOne(cfg, key, query);
      const tr = document.createElement("tr");
      tr.dataset.user = key;
      cell(tr, key);
      cell(tr, d.position == null ? "–" : d.position.toFixed(2), "position");
      cell(tr, d.upstream, d.upstream);
      cell(tr, d.reason, "reason");
      cell(tr, d.arm ?? "–", "arm");
      tbody.appendChild(tr);
      if (d.upstream === "lightrag") lightrag += 1;
      if (d.position != null) hist[Math.floor(d.position)] += 1;
    }
    $("summary").textContent = `${lightrag} of ${list.length} users → LightRAG`;
    drawHistogram(hist, Number(cfg.LIGHTRAG_ROLLOUT_PERCENTAGE));
  } catch (e) {
    $("config-error").textContent = String(e.message ?? e);
  }
}

function simulate() {
  $("config-error").textContent = "";
  try {
    const cfg = configObject();
    const n = Math.max(0, Math.min(1_000_000, Math.floor(Number($("sim-n").value) || 0)));
    const keys = Array.from({ length: n }, (_, i) => `user-${i}`);
    const s = router.simulate(cfg, keys, $("query").value, stateObject());
    const pct = s.total ? ((100 * (s.per_upstream?.lightrag ?? 0)) / s.total).toFixed(2) : "0.00";
    $("summary").textContent = `simulated ${s.total} users: ${pct} % → LightRAG; reasons ${JSON.stringify(s.per_reason)}`;
    drawHistogram(s.histogram, Number(cfg.LIGHTRAG_ROLLOUT_PERCENTAGE));
  } catch (e) {
    $("config-error").textContent = String(e.message ?? e);
  }
}

async function main() {
  try {
    await init();
  } catch (e) {
    $("status").textContent = `failed to load wasm: ${e}`;
    return;
  }
  $("version").textContent = router.version();
  for (const id of ["salt", "rollout", "config", "query", "users"]) $(id).addEventListener("input", render);
  for (const id of ["breaker", "rollback", "gate"]) $(id).addEventListener("change", render);
  $("simulate").addEventListener("click", simulate);
  render();
  $("status").textContent = "ready";
  document.body.dataset.ready = "true";
}

main();
