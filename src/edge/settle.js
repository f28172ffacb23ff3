// A promise's settlement handed to Rust through one shared callback (src/edge/settle.rs says
// why).

/** Calls `done(id, value, true)` when `p` resolves, `done(id, reason, false)` when it rejects. */
export function settle(p, id, done) {
  p.then(
    (v) => done(id, v, true),
    (e) => done(id, e, false),
  );
}
