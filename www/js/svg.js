// Charts as inline SVG, drawn here (no chart library): a histogram of positions with the
// rollout line, a plan's percentage over time, and a breaker's state timeline. Each chart has a
// title and a text alternative; the panels also show the same numbers as tables.
import { fmtClock, fmtDuration } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, children = []) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of [].concat(children)) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function frame(width, height, label) {
  const root = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, preserveAspectRatio: "xMidYMid meet" });
  root.append(s("title", {}, label));
  return root;
}

/**
 * 100 bars (positions 0–99 %), each split into the users the core sent to LightRAG (green) and
 * to Perplexity (blue), and a line at the rollout percentage.
 */
export function histogram(box, hist, lightrag, rollout) {
  const W = 800, H = 220, L = 48, B = 28, T = 10, R = 10;
  const max = Math.max(1, ...hist);
  const bw = (W - L - R) / hist.length;
  const label = `Users by position on the rollout line, LightRAG's share of each bar in green; rollout at ${rollout} %`;
  const root = frame(W, H, label);
  root.classList.add("histogram");
  const y = (v) => T + (H - T - B) * (1 - v / max);
  hist.forEach((n, i) => {
    const x = (L + i * bw).toFixed(2);
    const w = Math.max(0.5, bw - 1).toFixed(2);
    const r = s("rect", { x, y: y(n).toFixed(2), width: w, height: (H - B - y(n)).toFixed(2), class: "bar" });
    r.append(s("title", {}, `${i}–${i + 1} %: ${n} users, ${lightrag[i]} to LightRAG`));
    root.append(r);
    if (lightrag[i] > 0) root.append(s("rect", { x, y: y(lightrag[i]).toFixed(2), width: w, height: (H - B - y(lightrag[i])).toFixed(2), class: "bar lr" }));
  });
  for (const t of [0, 25, 50, 75, 100]) {
    const x = L + (t / 100) * (W - L - R);
    root.append(s("text", { x, y: H - 8, class: "tick", "text-anchor": "middle" }, `${t} %`));
  }
  root.append(s("text", { x: 4, y: T + 10, class: "tick" }, String(max)));
  const x = L + (Math.min(100, Math.max(0, rollout)) / 100) * (W - L - R);
  root.append(s("line", { x1: x, x2: x, y1: T - 4, y2: H - B, class: "rollout-line" }));
  root.append(s("text", { x: Math.min(x + 4, W - 90), y: T + 10, class: "tick strong" }, `rollout ${rollout} %`));
  box.replaceChildren(root);
}

/** The plan's percentage over time as a step line, with a marker per stage gate. */
export function planChart(box, timeline) {
  const W = 800, H = 240, L = 48, B = 30, T = 12, R = 16;
  const end = Math.max(1, timeline.completes_at_ms);
  const x = (ms) => L + (ms / end) * (W - L - R);
  const y = (p) => T + (H - T - B) * (1 - p / 100);
  const root = frame(W, H, `Rollout percentage over ${fmtDuration(end)}, ${timeline.steps.length} stages`);
  root.classList.add("plan-chart");
  for (const p of [0, 25, 50, 75, 100]) {
    root.append(s("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), class: "grid" }));
    root.append(s("text", { x: L - 6, y: y(p) + 4, class: "tick", "text-anchor": "end" }, `${p}%`));
  }
  let d = `M ${x(0)} ${y(0)}`;
  for (const st of timeline.steps) d += ` L ${x(st.starts_at_ms)} ${y(st.target_percentage)} L ${x(st.ends_at_ms)} ${y(st.target_percentage)}`;
  root.append(s("path", { d, class: "step-line" }));
  for (const st of timeline.steps) {
    const c = s("circle", { cx: x(st.ends_at_ms), cy: y(st.target_percentage), r: 4, class: st.awaits_approval ? "gate approval" : "gate" });
    c.append(s("title", {}, `stage ${st.stage_index + 1}: ${st.target_percentage} % until ${fmtDuration(st.ends_at_ms)}${st.awaits_approval ? " — waits for an approval" : ""}`));
    root.append(c);
  }
  root.append(s("text", { x: L, y: H - 8, class: "tick" }, "start"));
  root.append(s("text", { x: W - R, y: H - 8, class: "tick", "text-anchor": "end" }, fmtDuration(end)));
  box.replaceChildren(root);
}

/** The breaker's states as bands over time, the calls as ticks, the transitions as markers. */
export function breakerChart(box, replay) {
  const W = 800, H = 170, L = 80, R = 12;
  const start = replay.start_ms, end = Math.max(replay.end_ms, start + 1);
  const x = (ms) => L + ((ms - start) / (end - start)) * (W - L - R);
  const root = frame(W, H, `Breaker state from ${fmtClock(start)} to ${fmtClock(end)}: ${replay.trips} trips, ${replay.transitions.length} transitions`);
  root.classList.add("breaker-chart");
  root.append(s("text", { x: 4, y: 34, class: "tick" }, "state"));
  for (const seg of replay.segments) {
    const r = s("rect", { x: x(seg.from_ms).toFixed(2), y: 18, width: Math.max(1, x(seg.to_ms) - x(seg.from_ms)).toFixed(2), height: 26, class: `band ${seg.state}` });
    r.append(s("title", {}, `${seg.state.replace("_", "-")} from ${fmtClock(seg.from_ms)} to ${fmtClock(seg.to_ms)}`));
    root.append(r);
  }
  root.append(s("text", { x: 4, y: 80, class: "tick" }, "calls"));
  // At most ~2,000 ticks are drawn (every k-th call); the counts above are over all calls.
  const calls = replay.calls;
  const step = Math.max(1, Math.ceil(calls.length / 2000));
  for (let i = 0; i < calls.length; i += step) {
    const c = calls[i];
    const cls = c.admission === "rejected" ? "rejected" : c.failure ? "failed" : "ok";
    const yy = cls === "rejected" ? 96 : cls === "failed" ? 60 : 78;
    root.append(s("line", { x1: x(c.at_ms).toFixed(2), x2: x(c.at_ms).toFixed(2), y1: yy, y2: yy + 12, class: `call ${cls}` }));
  }
  root.append(s("text", { x: 4, y: 130, class: "tick" }, "changes"));
  for (const t of replay.transitions) {
    const m = s("path", { d: `M ${x(t.at_ms)} 118 l 5 10 l -10 0 z`, class: `marker ${t.to}` });
    m.append(s("title", {}, `${fmtClock(t.at_ms)}: ${t.from} → ${t.to} — ${t.reason}`));
    root.append(m);
  }
  root.append(s("text", { x: L, y: H - 6, class: "tick" }, fmtClock(start)));
  root.append(s("text", { x: W - R, y: H - 6, class: "tick", "text-anchor": "end" }, fmtClock(end)));
  const legend = [["closed", "closed"], ["open", "open"], ["half_open", "half-open"]];
  legend.forEach(([cls, name], i) => {
    root.append(s("rect", { x: L + i * 110, y: 2, width: 12, height: 10, class: `legend band ${cls}` }));
    root.append(s("text", { x: L + i * 110 + 16, y: 11, class: "tick" }, name));
  });
  [["ok", "call succeeded"], ["failed", "call failed"], ["rejected", "rejected → Perplexity"]].forEach(([cls, name], i) => {
    root.append(s("line", { x1: L + 330 + i * 115, x2: L + 330 + i * 115, y1: 2, y2: 12, class: `legend call ${cls}` }));
    root.append(s("text", { x: L + 336 + i * 115, y: 11, class: "tick" }, name));
  });
  box.replaceChildren(root);
}
