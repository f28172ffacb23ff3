// The fetch handler's promise, settled from Rust (src/edge/entry.rs says why).

/** A pending promise with its `resolve` kept on it. */
export function pending() {
  let resolve;
  const p = new Promise((r) => (resolve = r));
  p.settle = resolve;
  return p;
}

/** Resolves `p` (from `pending`) with `value`. */
export function settle(p, value) {
  p.settle(value);
}
