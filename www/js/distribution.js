// Distribution: N simulated users (user-0 … user-(N−1), generated inside wasm: a million ids
// never exist as JavaScript strings) → counts per upstream, reason and arm, and a histogram of
// positions with the rollout line. Every number comes from simulate() in wasm.
import { $, errText, fillRows, fmtInt, fmtOf, fmtShare } from "./dom.js";
import { histogram } from "./svg.js";
import { store } from "./store.js";

const MAX_USERS = 1_000_000;
let core;

function run() {
  const err = $("dist-error");
  err.textContent = "";
  const n = Number($("dist-n").value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_USERS) {
    err.textContent = `Simulated users must be a whole number from 1 to ${fmtInt(MAX_USERS)}.`;
    return;
  }
  let sim, rollout;
  const t0 = performance.now();
  try {
    sim = core.simulate(store.vars, n, $("dist-query").value, store.state);
    rollout = core.loadConfig(store.vars).config.rollout_percentage;
  } catch (e) {
    err.textContent = errText(e);
    return;
  }
  const ms = performance.now() - t0;
  const lr = sim.per_upstream.lightrag ?? 0;
  const summary = $("dist-summary");
  summary.textContent = `${fmtInt(sim.total)} users simulated in ${ms.toFixed(0)} ms: ${fmtInt(lr)} → LightRAG (${fmtShare(sim.lightrag_share)}), ${fmtInt(sim.per_upstream.perplexity ?? 0)} → Perplexity; rollout ${rollout} %`;
  summary.dataset.share = String(sim.lightrag_share);
  summary.dataset.total = String(sim.total);
  summary.dataset.ms = ms.toFixed(1);
  histogram($("dist-chart"), sim.histogram, sim.histogram_lightrag, rollout);
  fillRows($("dist-reasons").querySelector("tbody"), Object.entries(sim.per_reason).map(([r, c]) => [r, fmtInt(c), fmtOf(c, sim.total)]));
  fillRows($("dist-arms").querySelector("tbody"), [
    ...Object.entries(sim.per_upstream).map(([u, c]) => [`upstream ${u}`, fmtInt(c), fmtOf(c, sim.total)]),
    ...Object.entries(sim.per_arm).map(([a, c]) => [`arm ${a}`, fmtInt(c), fmtOf(c, sim.total)]),
  ]);
  summary.dataset.done = String(Number(summary.dataset.done ?? 0) + 1);
}

export function initDistribution(c) {
  core = c;
  $("dist-run").addEventListener("click", run);
  run();
}

