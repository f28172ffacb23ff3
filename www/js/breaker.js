// Breaker playground: calls typed or generated → the real breaker replayed over them
// (breakerReplay in wasm) → the state timeline drawn, each transition with its reason.
import { $, debounce, errText, fillRows, fmtClock, fmtInt } from "./dom.js";
import { breakerChart } from "./svg.js";
import { store } from "./store.js";

const EXAMPLE = `# <seconds> <status | outcome> [latency] [probe roll]
# (with the default settings: 3 failures in a row trip it for 300 s)
0 200 120ms
5 503
6 503
7 503
20 200
310 200 80ms
311 200 80ms
312 200 80ms
330 200 12s
331 200`;

let core;

const num = (id) => {
  const v = $(id).value.trim();
  return /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(v) ? Number(v) : v;
};

function input() {
  if (document.querySelector('input[name="breaker-mode"]:checked').value === "typed") return $("breaker-lines").value;
  const minutes = (id) => { const v = num(id); return typeof v === "number" ? v * 60 : v; };
  return {
    duration_s: minutes("gen-duration"),
    calls_per_minute: num("gen-rate"),
    error_rate: num("gen-errors"),
    slow_rate: num("gen-slow"),
    bursts: [{ at_s: minutes("gen-burst-at"), duration_s: minutes("gen-burst-len"), error_rate: num("gen-burst-rate") }],
    seed: num("gen-seed"),
  };
}

function run() {
  const err = $("breaker-error");
  err.textContent = "";
  let r;
  try {
    r = core.breakerReplay(store.vars, input(), undefined);
  } catch (e) {
    err.textContent = errText(e);
    err.dataset.field = e.field ?? "";
    return;
  }
  const summary = $("breaker-summary");
  summary.textContent = `${fmtInt(r.calls.length)} calls: ${fmtInt(r.admitted)} admitted (${fmtInt(r.probes)} as half-open probes, ${fmtInt(r.failures)} failed), ${fmtInt(r.rejected)} rejected; ${r.trips} trip(s).`;
  breakerChart($("breaker-chart"), r);
  const tbody = $("breaker-transitions").querySelector("tbody");
  fillRows(tbody, r.transitions.map((t) => [fmtClock(t.at_ms), t.from, t.to, t.cause, t.reason]));
  r.transitions.forEach((t, i) => {
    const tr = tbody.children[i];
    tr.dataset.atMs = String(t.at_ms);
    tr.dataset.from = t.from;
    tr.dataset.to = t.to;
    tr.dataset.cause = t.cause;
    tr.dataset.openUntilMs = t.open_until_ms == null ? "" : String(t.open_until_ms);
  });
  summary.dataset.done = String(Number(summary.dataset.done ?? 0) + 1);
}

export function initBreaker(c) {
  core = c;
  $("breaker-lines").value = EXAMPLE;
  const later = debounce(run, 150);
  for (const r of document.querySelectorAll('input[name="breaker-mode"]')) {
    r.addEventListener("change", () => {
      const typed = document.querySelector('input[name="breaker-mode"]:checked').value === "typed";
      $("breaker-typed").hidden = !typed;
      $("breaker-generated").hidden = typed;
      run();
    });
  }
  $("breaker-lines").addEventListener("input", later);
  $("breaker-generated").addEventListener("input", later);
  store.subscribe(later);
  run();
}
