// Config panel: every variable as a form field and the same configuration as JSON, kept in
// step; the worker's own loader (loadConfig, through wasm) reports each problem, shown next to
// its field (rule problems next to their rule).
import { $, el, debounce, errText } from "./dom.js";
import { store } from "./store.js";

const RULES = "LIGHTRAG_ROUTING_RULES";
const GROUPS = [
  ["Routing", (n) => /^LIGHTRAG_(INTEGRATION_ENABLED|ROLLOUT_PERCENTAGE|USER_HASH_SALT|FORCE_USER_COHORT|ALLOW_USERS|DENY_USERS|EMERGENCY_ROLLBACK|ENABLE_CONDITIONAL_ROUTING)$/.test(n)],
  ["Circuit breaker", (n) => /CIRCUIT_BREAKER/.test(n)],
  ["Quality, fallback and experiment", (n) => /QUALITY|FALLBACK|AB_TESTING|PERFORMANCE_COMPARISON/.test(n)],
  ["Upstreams and timing", () => true],
];

let core;
let fields = new Map(); // variable → input/select

function show(v) {
  if (v === undefined || v === null) return "";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function fieldFor(name, def) {
  const id = `var-${name}`;
  let input;
  const choices = typeof def === "boolean" ? ["true", "false"] : name === "LIGHTRAG_FORCE_USER_COHORT" ? ["lightrag", "perplexity", "none"] : null;
  if (choices) {
    input = el("select", { id, "data-var": name, "aria-describedby": `problem-${name}` }, [el("option", { value: "" }, `unset (default: ${show(def) || "none"})`), ...choices.map((c) => el("option", { value: c }, c))]);
  } else {
    input = el("input", { id, "data-var": name, autocomplete: "off", spellcheck: "false", placeholder: show(def), "aria-describedby": `problem-${name}` });
  }
  fields.set(name, input);
  return el("div", { class: "field" }, [
    el("label", { for: id }, el("code", {}, name)),
    input,
    el("p", { id: `problem-${name}`, class: "problem", "aria-live": "polite" }),
  ]);
}

function setFieldValue(input, v) {
  const text = show(v);
  if (input.tagName === "SELECT" && text && ![...input.options].some((o) => o.value === text)) {
    input.append(el("option", { value: text, "data-extra": "1" }, text));
  }
  if (document.activeElement !== input) input.value = text;
}

// ---- rules --------------------------------------------------------------------------------

const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
const numOrText = (s) => (/^\s*-?\d+(\.\d+)?\s*$/.test(s) ? Number(s) : s.trim());

function rulesArray() {
  const v = store.vars[RULES];
  if (v === undefined || v === null || v === "") return [];
  if (Array.isArray(v)) return v;
  if (typeof v === "string") {
    try {
      const p = JSON.parse(v);
      return Array.isArray(p) ? p : null;
    } catch {
      return null;
    }
  }
  return null;
}

function ruleFromCard(card) {
  const q = (k) => card.querySelector(`[data-k="${k}"]`).value;
  const when = {};
  if (q("min_length").trim()) when.min_length = numOrText(q("min_length"));
  if (q("max_length").trim()) when.max_length = numOrText(q("max_length"));
  if (list(q("keywords_any")).length) when.keywords_any = list(q("keywords_any"));
  if (list(q("keywords_all")).length) when.keywords_all = list(q("keywords_all"));
  if (list(q("query_type")).length) when.query_type = list(q("query_type"));
  if (q("regex").trim()) when.regex = q("regex");
  const headers = q("headers").split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const c = l.indexOf("~"), e = l.indexOf(":");
    if (c > 0 && (e < 0 || c < e)) return { name: l.slice(0, c).trim(), contains: l.slice(c + 1).trim() };
    if (e > 0) return { name: l.slice(0, e).trim(), equals: l.slice(e + 1).trim() };
    return { name: l };
  });
  if (headers.length) when.headers = headers;
  if (list(q("users")).length) when.users = list(q("users"));
  const rule = { name: q("name"), action: q("action") };
  if (Object.keys(when).length) rule.when = when;
  return rule;
}

function ruleCard(rule, i, count) {
  const w = rule.when ?? {};
  const id = (k) => `rule-${i}-${k}`;
  const input = (k, label, value, attrs = {}) => el("div", { class: "field" }, [el("label", { for: id(k) }, label), el(attrs.rows ? "textarea" : "input", { id: id(k), "data-k": k, autocomplete: "off", spellcheck: "false", ...attrs }, [])]);
  const card = el("li", { class: "rule", "data-index": i }, [
    el("div", { class: "rule-head" }, [
      el("strong", {}, `Rule ${i + 1}`),
      el("button", { type: "button", "data-act": "up", disabled: i === 0, "aria-label": `Move rule ${i + 1} up` }, "↑"),
      el("button", { type: "button", "data-act": "down", disabled: i === count - 1, "aria-label": `Move rule ${i + 1} down` }, "↓"),
      el("button", { type: "button", "data-act": "remove", "aria-label": `Remove rule ${i + 1}` }, "Remove"),
    ]),
    el("div", { class: "rule-grid" }, [
      input("name", "name", rule.name),
      el("div", { class: "field" }, [el("label", { for: id("action") }, "action"), el("select", { id: id("action"), "data-k": "action" }, ["lightrag", "perplexity", "rollout"].map((a) => el("option", { value: a }, a)))]),
      input("min_length", "min length (chars)"),
      input("max_length", "max length (chars)"),
      input("keywords_any", "any of these keywords (comma-separated)"),
      input("keywords_all", "all of these keywords"),
      input("query_type", "query types (temporal, mechanism, definition, comparison, general)"),
      input("regex", "regex"),
      input("headers", "headers: Name: value (equals) or Name ~ value (contains), one per line", undefined, { rows: 2 }),
      input("users", "users (comma-separated)"),
    ]),
    el("p", { class: "problem", id: `problem-rule-${i}`, "aria-live": "polite" }),
  ]);
  const set = (k, v) => { card.querySelector(`[data-k="${k}"]`).value = v ?? ""; };
  set("name", rule.name);
  set("action", rule.action ?? "rollout");
  set("min_length", w.min_length);
  set("max_length", w.max_length);
  set("keywords_any", (w.keywords_any ?? []).join(", "));
  set("keywords_all", (w.keywords_all ?? []).join(", "));
  set("query_type", [].concat(w.query_type ?? []).join(", "));
  set("regex", w.regex);
  set("headers", (w.headers ?? []).map((h) => (h.contains !== undefined ? `${h.name} ~ ${h.contains}` : `${h.name}: ${h.equals ?? ""}`)).join("\n"));
  set("users", (w.users ?? []).join(", "));
  return card;
}

function renderRules() {
  const box = $("rules-list");
  const rules = rulesArray();
  if (rules === null) {
    box.replaceChildren(el("li", { class: "hint" }, "The rules are not a JSON list; fix them in the JSON view (the problem is shown below)."));
    $("rule-add").disabled = true;
    return;
  }
  $("rule-add").disabled = false;
  if (box.contains(document.activeElement) && box.children.length === rules.length) return;
  box.replaceChildren(...rules.map((r, i) => ruleCard(r, i, rules.length)));
}

function rulesFromCards() {
  return [...$("rules-list").querySelectorAll("li.rule")].map(ruleFromCard);
}

// ---- sync ---------------------------------------------------------------------------------

function renderProblems() {
  for (const p of document.querySelectorAll("#panel-config .problem[id^=problem-]")) p.textContent = "";
  const other = $("config-other-problems");
  other.replaceChildren();
  let problems;
  try {
    problems = core.loadConfig(store.vars).problems;
  } catch (e) {
    other.append(el("li", {}, errText(e)));
    return;
  }
  for (const p of problems) {
    const text = `${p.severity === "note" ? "note: " : ""}${p.message} (value: ${JSON.stringify(p.value)})`;
    let target = null;
    if (p.variable === RULES && p.index !== undefined) target = $(`problem-rule-${p.index}`);
    target ??= $(`problem-${p.variable}`);
    if (target) {
      target.textContent = target.textContent ? `${target.textContent}\n${text}` : text;
      fields.get(p.variable)?.setAttribute("aria-invalid", "true");
    } else {
      other.append(el("li", { "data-variable": p.variable }, [el("code", {}, p.variable), `: ${text}`]));
    }
  }
  for (const [name, input] of fields) if (!problems.some((p) => p.variable === name)) input.removeAttribute("aria-invalid");
}

function renderForm() {
  for (const [name, input] of fields) setFieldValue(input, store.vars[name]);
  renderRules();
  const json = $("config-json");
  if (document.activeElement !== json) json.value = JSON.stringify(store.vars, null, 2);
  $("config-json-error").textContent = "";
  const st = store.state;
  $("state-breaker").value = st.lightrag_breaker;
  $("state-rollback").checked = st.rollback_active;
  $("state-gate").checked = st.quality_gate_closed;
  renderProblems();
}

function fromForm(source) {
  const vars = { ...store.vars };
  for (const [name, input] of fields) {
    if (input.value === "") delete vars[name];
    else vars[name] = input.value;
  }
  store.set({ vars }, source);
}

function fromRules() {
  const vars = { ...store.vars, [RULES]: rulesFromCards() };
  store.set({ vars }, "config-rules");
}

export function initConfig(c) {
  core = c;
  const defaults = core.defaultVariables();
  const known = core.knownVariables().filter((n) => n !== RULES);
  const form = $("config-form");
  fields = new Map();
  const used = new Set();
  for (const [title, match] of GROUPS) {
    const names = known.filter((n) => !used.has(n) && match(n));
    names.forEach((n) => used.add(n));
    if (!names.length) continue;
    form.append(el("fieldset", {}, [el("legend", {}, title), ...names.map((n) => fieldFor(n, defaults[n]))]));
  }
  const onField = debounce(() => fromForm("config-form"), 80);
  form.addEventListener("input", onField);
  form.addEventListener("change", onField);
  const rules = $("rules-list");
  const onRules = debounce(fromRules, 80);
  rules.addEventListener("input", onRules);
  rules.addEventListener("change", onRules);
  rules.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b) return;
    const i = Number(b.closest("li").dataset.index);
    const rs = rulesFromCards();
    if (b.dataset.act === "remove") rs.splice(i, 1);
    if (b.dataset.act === "up" && i > 0) [rs[i - 1], rs[i]] = [rs[i], rs[i - 1]];
    if (b.dataset.act === "down" && i < rs.length - 1) [rs[i + 1], rs[i]] = [rs[i], rs[i + 1]];
    $("rules-list").replaceChildren();
    store.set({ vars: { ...store.vars, [RULES]: rs } }, "config-rules");
  });
  $("rule-add").addEventListener("click", () => {
    const rs = rulesFromCards();
    rs.push({ name: `rule-${rs.length + 1}`, when: { query_type: ["temporal"] }, action: "perplexity" });
    $("rules-list").replaceChildren();
    store.set({ vars: { ...store.vars, [RULES]: rs, LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: store.vars.LIGHTRAG_ENABLE_CONDITIONAL_ROUTING ?? "true" } }, "config-rules");
    $(`rule-${rs.length - 1}-name`)?.focus();
  });
  $("config-json").addEventListener("input", debounce(() => {
    let vars;
    try {
      const v = JSON.parse($("config-json").value || "{}");
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("must be a JSON object of variables");
      vars = v;
    } catch (e) {
      $("config-json-error").textContent = `Not applied: ${e.message}`;
      return;
    }
    store.set({ vars }, "config-json");
  }, 150));
  // The three controls edit their fields of the state; the rest (a running rollout's
  // percentage read from a live router) is kept.
  const onState = () => store.set({
    state: { ...store.state, lightrag_breaker: $("state-breaker").value, rollback_active: $("state-rollback").checked, quality_gate_closed: $("state-gate").checked },
  }, "config-state");
  for (const id of ["state-breaker", "state-rollback", "state-gate"]) $(id).addEventListener("change", onState);
  store.subscribe(renderForm);
  renderForm();
}
