// Rollout plan: a strategy and its parameters (form) or the request body (JSON), checked by
// the core's own plan function (planTimeline in wasm). A plan the worker would refuse shows the
// worker's error, next to its field when the form has it.
import { $, el, debounce, errText, fillRows, fmtDuration } from "./dom.js";
import { planChart } from "./svg.js";

const FIELDS = {
  linear: [["start_percentage", "start %", 5], ["increment", "increment (points)", 10], ["stage_duration", "stage duration (minutes)", 60], ["final_percentage", "final %", 100]],
  exponential: [["start_percentage", "start %", 1], ["multiplier", "multiplier", 2], ["stage_duration", "stage duration (minutes)", 60], ["final_percentage", "final %", 100]],
  canary: [["canary_percentage", "canary %", 1], ["canary_duration", "canary duration (minutes)", 120], ["auto_approve", "approve on its own (true/false)", false], ["final_percentage", "final %", 100], ["final_duration", "final duration (minutes)", 60]],
  steps: [],
};

const STEPS_EXAMPLE = {
  strategy: "steps", stage_duration: 30, max_error_rate: 0.02,
  stages: [{ target_percentage: 0.5, min_duration: 120, auto_advance: false }, { target_percentage: 10 }, { target_percentage: 50, min_quality: 0.7 }, { target_percentage: 100 }],
};

let core;

const typed = (s) => {
  const t = s.trim();
  if (t === "true" || t === "false") return t === "true";
  return /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(t) ? Number(t) : t;
};

function body() {
  return $("plan-json").value;
}

function renderFields(strategy, values) {
  const box = $("plan-fields");
  box.replaceChildren(...FIELDS[strategy].map(([k, label, def]) => el("div", { class: "field" }, [
    el("label", { for: `plan-${k}` }, [label, " ", el("code", {}, k)]),
    el("input", { id: `plan-${k}`, "data-k": k, autocomplete: "off", placeholder: String(def), value: values[k] === undefined ? "" : String(values[k]) }),
  ])));
  if (strategy === "steps") box.append(el("p", { class: "hint" }, "Edit the stage list in the JSON."));
}

function fromForm() {
  let obj;
  try {
    obj = JSON.parse(body());
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) obj = {};
  } catch {
    obj = {};
  }
  for (const input of $("plan-fields").querySelectorAll("input[data-k]")) {
    if (input.value.trim() === "") delete obj[input.dataset.k];
    else obj[input.dataset.k] = typed(input.value);
  }
  obj.strategy = $("plan-strategy").value;
  $("plan-json").value = JSON.stringify(obj, null, 2);
  check();
}

function gatesText(st) {
  const g = [`≥ ${st.min_requests} requests/arm`, `errors ≤ ${st.max_error_rate}`, `success ≥ ${st.min_success_rate}`];
  if (st.min_quality !== null) g.push(`quality ≥ ${st.min_quality}`);
  if (st.max_quality_drop !== null) g.push(`quality drop ≤ ${st.max_quality_drop}`);
  if (st.max_latency_ratio !== null) g.push(`p95 ratio ≤ ${st.max_latency_ratio}`);
  g.push(`breaker trips ≤ ${st.max_breaker_trips}`);
  if (st.max_no_context_rate !== null) g.push(`no-context ≤ ${st.max_no_context_rate}`);
  return g.join(", ");
}

function check() {
  const err = $("plan-error");
  for (const i of document.querySelectorAll("#panel-plan [aria-invalid]")) i.removeAttribute("aria-invalid");
  let plan;
  try {
    plan = core.planTimeline(body());
  } catch (e) {
    err.textContent = `The worker would refuse this plan: ${errText(e)}`;
    err.dataset.field = e.field ?? "";
    const input = e.field ? document.querySelector(`#plan-fields [data-k="${e.field.replace(/_minutes$/, "")}"]`) : null;
    (input ?? $("plan-json")).setAttribute("aria-invalid", "true");
    $("plan-summary").textContent = "";
    $("plan-chart").replaceChildren();
    $("plan-stages").querySelector("tbody").replaceChildren();
    return;
  }
  err.textContent = "";
  delete err.dataset.field;
  const tl = plan.timeline;
  const waits = tl.steps.filter((s) => s.awaits_approval).length;
  $("plan-summary").textContent = `${plan.strategy}: ${tl.steps.length} stages, ${tl.steps.map((s) => `${s.target_percentage} %`).join(" → ")}; at the earliest complete after ${fmtDuration(tl.completes_at_ms)}${waits ? `, waiting for ${waits} approval(s)` : ""}. Rollback after ${plan.safety.failure_limit} failing ticks; at once above ${plan.safety.emergency_error_rate} errors.`;
  planChart($("plan-chart"), tl);
  fillRows($("plan-stages").querySelector("tbody"), plan.stages.map((st, i) => [
    String(i + 1), `${st.target_percentage} %`, fmtDuration(tl.steps[i].starts_at_ms), fmtDuration(st.min_duration_ms),
    st.auto_advance ? "on its own" : "after an approve", gatesText(st),
  ]));
}

export function initPlan(c) {
  core = c;
  $("plan-json").value = JSON.stringify({ strategy: "linear", start_percentage: 5, increment: 10, stage_duration: 60 }, null, 2);
  const sync = () => {
    let obj = {};
    try {
      obj = JSON.parse(body()) ?? {};
    } catch {
      // the error is shown by check()
    }
    if (typeof obj.strategy === "string" && FIELDS[obj.strategy] && $("plan-strategy").value !== obj.strategy) $("plan-strategy").value = obj.strategy;
    renderFields($("plan-strategy").value, obj);
  };
  $("plan-strategy").addEventListener("change", () => {
    const s = $("plan-strategy").value;
    $("plan-json").value = JSON.stringify(s === "steps" ? STEPS_EXAMPLE : { strategy: s }, null, 2);
    renderFields(s, s === "steps" ? STEPS_EXAMPLE : {});
    check();
  });
  $("plan-fields").addEventListener("input", debounce(fromForm, 150));
  $("plan-json").addEventListener("input", debounce(() => { sync(); check(); }, 150));
  sync();
  check();
}
