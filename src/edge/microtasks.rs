//! How Rust futures are woken in this isolate: by promise jobs, not `queueMicrotask`.
//!
//! Why: every time a future awaiting a JS promise is woken, wasm-bindgen's task queue schedules
//! its next run with `queueMicrotask` when the global has one, else with `then` on a resolved
//! promise (`js_sys::futures::queue`). In workerd `queueMicrotask` is a runtime API that wraps
//! its callback (3.6–5 µs a call against 0.2–0.7 µs for a promise job, measured in workerd), and
//! a chat request wakes its task three times or more: ~4.5 % of a request's samples in a
//! workerd profile (benches/profile_edge.mjs). The queue decides once, when it is created, so
//! it is created at start while `queueMicrotask` is hidden, and the global is put back at once:
//! nothing else in the isolate sees the difference. Both ways run the queue as a microtask, in
//! the same order.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(inline_js = r#"
export function hideQueueMicrotask() {
  const saved = globalThis.queueMicrotask;
  try {
    globalThis.queueMicrotask = undefined;
  } catch {
    // Not writable here: the queue then uses it, as before.
  }
  return saved;
}
export function restoreQueueMicrotask(saved) {
  try {
    delete globalThis.queueMicrotask;
    if (globalThis.queueMicrotask !== saved) globalThis.queueMicrotask = saved;
  } catch {
    // Nothing was changed.
  }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = hideQueueMicrotask)]
    fn hide() -> JsValue;
    #[wasm_bindgen(js_name = restoreQueueMicrotask)]
    fn restore(saved: JsValue);
}

/// Creates wasm-bindgen's task queue (by spawning an empty task) while `queueMicrotask` is
/// hidden, so that it wakes tasks with promise jobs. Call once, at start, before any future.
pub fn wake_by_promise_jobs() {
    let saved = hide();
    wasm_bindgen_futures::spawn_local(async {});
    restore(saved);
}
