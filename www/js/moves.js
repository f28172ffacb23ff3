// What moves: a current and a proposed configuration side by side; every user decided under
// both (diffConfigs in wasm), counted by direction and reason, with a sample of ids.
import { $, el, errText, fmtInt, fmtOf, parseObject, present } from "./dom.js";
import { store } from "./store.js";

let core;

function pretty(v) {
  return JSON.stringify(v, null, 2);
}

/** Loads the current and the proposed configuration into the two editors. */
export function setMoves(current, proposed) {
  $("moves-current").value = pretty(current);
  $("moves-proposed").value = pretty(proposed);
  syncRolloutField();
}

function syncRolloutField() {
  try {
    const p = parseObject($("moves-proposed").value, "The proposed configuration");
    const v = p.LIGHTRAG_ROLLOUT_PERCENTAGE;
    if (document.activeElement !== $("moves-rollout")) $("moves-rollout").value = v === undefined ? "" : String(v);
  } catch {
    // shown when comparing
  }
}

function problemsOf(vars, box) {
  const problems = core.loadConfig(vars).problems.filter((p) => p.severity !== "note");
  box.textContent = problems.length ? `The worker would refuse: ${problems.map((p) => `${p.variable}${p.index !== undefined ? `[${p.index}]` : ""}: ${p.message}`).join("; ")}` : "";
}

function flow(title, f, total, cls) {
  const reasons = Object.entries(f.by_reason);
  return el("div", { class: `flow ${cls}`, "data-count": f.count }, [
    el("h3", {}, title),
    el("p", { class: "big" }, [el("span", { class: "count" }, fmtInt(f.count)), ` users (${fmtOf(f.count, total)})`]),
    reasons.length ? el("table", {}, [el("caption", {}, "by reason, before → after"), el("tbody", {}, reasons.map(([r, n]) => el("tr", {}, [el("td", {}, r), el("td", {}, fmtInt(n))])))]) : el("p", { class: "meta" }, "nobody"),
    f.sample.length ? el("p", { class: "sample" }, [el("span", { class: "meta" }, "for example: "), f.sample.join(", ")]) : null,
  ]);
}

function run() {
  const box = $("moves-result");
  let current, proposed;
  try {
    current = parseObject($("moves-current").value, "The current configuration");
    $("moves-current-error").textContent = "";
  } catch (e) {
    $("moves-current-error").textContent = e.message;
    return;
  }
  try {
    proposed = parseObject($("moves-proposed").value, "The proposed configuration");
    $("moves-proposed-error").textContent = "";
  } catch (e) {
    $("moves-proposed-error").textContent = e.message;
    return;
  }
  problemsOf(current, $("moves-current-error"));
  problemsOf(proposed, $("moves-proposed-error"));
  const n = Number($("moves-n").value);
  let m;
  const t0 = performance.now();
  try {
    m = core.diffConfigs(current, proposed, n, { query: $("moves-query").value, state: store.state, sample: 10 });
  } catch (e) {
    box.replaceChildren(el("p", { class: "problem" }, errText(e)));
    return;
  }
  const ms = performance.now() - t0;
  const out = m.lightrag_to_perplexity.count;
  const verdict = out === 0
    ? el("p", { class: "verdict ok", id: "moves-verdict" }, `Nobody moves out of LightRAG. ${fmtInt(m.perplexity_to_lightrag.count)} users move to LightRAG.`)
    : el("p", { class: "verdict warn", id: "moves-verdict" }, `${fmtInt(out)} users who have LightRAG today would lose it.`);
  const arms = Object.entries(m.arm_changes);
  const reasons = Object.entries(m.reason_changes);
  box.replaceChildren(...present(
    verdict,
    el("p", { class: "meta" }, `${fmtInt(m.total)} users compared in ${ms.toFixed(0)} ms · LightRAG ${fmtInt(m.lightrag_before)} → ${fmtInt(m.lightrag_after)} · stayed on LightRAG ${fmtInt(m.stayed_lightrag)}, on Perplexity ${fmtInt(m.stayed_perplexity)}`),
    el("div", { class: "flows" }, [
      flow("LightRAG → Perplexity", m.lightrag_to_perplexity, m.total, "out"),
      flow("Perplexity → LightRAG", m.perplexity_to_lightrag, m.total, "in"),
    ]),
    arms.length || reasons.length ? el("div", { class: "table-wrap" }, el("table", { id: "moves-other" }, [
      el("caption", {}, "Other changes"),
      el("tbody", {}, [...arms.map(([k, v]) => el("tr", {}, [el("td", {}, `arm ${k}`), el("td", {}, fmtInt(v))])), ...reasons.map(([k, v]) => el("tr", {}, [el("td", {}, `same upstream, reason ${k}`), el("td", {}, fmtInt(v))]))]),
    ])) : null,
  ));
  box.dataset.done = String(Number(box.dataset.done ?? 0) + 1);
}

export function initMoves(c) {
  core = c;
  // Both sides start as the Config panel's configuration; the operator edits the proposal.
  const fromConfig = () => setMoves(store.vars, { ...store.vars });
  $("moves-from-config").addEventListener("click", fromConfig);
  $("moves-run").addEventListener("click", run);
  $("moves-rollout").addEventListener("input", () => {
    let p;
    try {
      p = parseObject($("moves-proposed").value, "The proposed configuration");
    } catch (e) {
      $("moves-proposed-error").textContent = e.message;
      return;
    }
    const v = $("moves-rollout").value.trim();
    if (v === "") delete p.LIGHTRAG_ROLLOUT_PERCENTAGE;
    else p.LIGHTRAG_ROLLOUT_PERCENTAGE = v;
    $("moves-proposed").value = pretty(p);
  });
  $("moves-proposed").addEventListener("input", syncRolloutField);
  fromConfig();
}

