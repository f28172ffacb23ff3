// One measuring round in which the sides take turns request by request, the order rotating every
// request (so each side is first, second, … equally often). Why: the machine's speed drifts
// within a second on a shared VM, and a block of N requests per side let that drift, and the
// block's position, land on one side (the build listed second read ~0.06 ms slower in block
// rounds). CPU is read per workerd process, so turns do not mix the sides' CPU.
// benches/edge_ab.mjs and benches/rust_floor.mjs measure this way.

/**
 * `m` requests per side, `call(url(k), i)` resolving to one request's time; then per side the
 * process CPU per request (`cpuOf(k)` before and after, in ms) onto `cpuOut[k]` and the round's
 * p50 (`p50Of(times)`) onto `p50Out[k]`.
 */
export async function takeTurns({ keys, url, cpuOf, p50Of }, m, call, cpuOut, p50Out) {
  const c0 = Object.fromEntries(keys.map((k) => [k, cpuOf(k)]));
  const xs = Object.fromEntries(keys.map((k) => [k, []]));
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(i + j) % keys.length];
      xs[k].push(await call(url(k), i));
    }
  }
  for (const k of keys) {
    cpuOut[k].push((cpuOf(k) - c0[k]) / m);
    p50Out[k].push(p50Of(xs[k]));
  }
}
