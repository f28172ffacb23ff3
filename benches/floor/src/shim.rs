//! `shim`: a Rust worker whose `fetch` export hands the request straight to the bare worker's
//! JavaScript (`shim.js`), so nothing of the request crosses into wasm. What it adds over the
//! bare worker is what the bundle costs before any Rust work: worker-build's shim (its
//! `WorkerEntrypoint` class, the proxies around it, the reinitialisation check) and one call
//! into wasm and back.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(module = "/src/shim.js")]
extern "C" {
    fn bare(request: &JsValue, env: &JsValue) -> JsValue;
}

/// `env` as `worker::Env`, as every workers-rs export takes it: the one use of `worker` here,
/// which links it in, and with it the exports worker-build's shim calls at load
/// (`__worker_init_state`).
#[wasm_bindgen(js_name = fetch)]
pub fn fetch_export(raw: JsValue, env: worker::Env, _ctx: JsValue) -> JsValue {
    bare(&raw, env.as_ref())
}
