// Summaries of repeated runs: every figure `make bench` reports is the median of several runs
// with their spread, because one run on a shared machine says little (issue 13, Deliver 5).

/** The q-quantile (0..1) of `xs` by linear interpolation between order statistics. */
export function quantile(xs, q) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export const median = (xs) => quantile(xs, 0.5);

/** `{median, min, max, p25, p75, n, runs}`: what every row of the results table carries. */
export function summarize(xs) {
  const runs = xs.map((x) => Number(x));
  if (runs.length === 0 || runs.some((x) => !Number.isFinite(x))) {
    throw new Error(`cannot summarize ${JSON.stringify(xs)}: need finite numbers`);
  }
  return {
    median: median(runs),
    min: Math.min(...runs),
    max: Math.max(...runs),
    p25: quantile(runs, 0.25),
    p75: quantile(runs, 0.75),
    n: runs.length,
    runs,
  };
}

/** Nearest-rank percentile of one run's samples (latencies): an observed value, not a blend. */
export function percentile(xs, q) {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
