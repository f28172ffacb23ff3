//! `sync`: the least a worker with Rust in the request's path can do — the steps awaited in JS
//! (`sync.js`, the bare worker's code), Rust called twice, synchronously: with the request's
//! bytes (it returns the upstream body) and with the upstream's answer (it returns the client's).
//! No future, no executor, no promise settled into Rust. Set against `lean`, it says what the
//! router's way of awaiting in Rust costs; against `shim`, what the texts crossing cost. With
//! the `json` feature they go through [`super::translate`] on the way.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(module = "/src/sync.js")]
extern "C" {
    fn drive(
        request: &JsValue,
        env: &JsValue,
        plan: &js_sys::Function,
        answer: &js_sys::Function,
    ) -> JsValue;
}

thread_local! {
    static PLAN: Closure<dyn Fn(js_sys::Uint8Array) -> String> = Closure::new(plan);
    static ANSWER: Closure<dyn Fn(String) -> String> = Closure::new(answer);
}

/// The upstream body, prefixed by "s" when the client asked for a stream, else "n" (an error:
/// its message as the body, which the upstream refuses).
fn plan(bytes: js_sys::Uint8Array) -> String {
    let planned = String::from_utf8(bytes.to_vec())
        .map_err(|e| e.to_string())
        .and_then(super::translate::request);
    match planned {
        Ok((body, true)) => "s".to_string() + &body,
        Ok((body, false)) => "n".to_string() + &body,
        Err(e) => "n".to_string() + &e,
    }
}

fn answer(text: String) -> String {
    super::translate::answer(text).unwrap_or_else(|e| e.to_string())
}

/// `env` as `worker::Env`, as every workers-rs export takes it (`shim` says why).
#[wasm_bindgen(js_name = fetch)]
pub fn fetch_export(raw: JsValue, env: worker::Env, _ctx: JsValue) -> JsValue {
    PLAN.with(|p| {
        ANSWER.with(|a| {
            drive(
                &raw,
                env.as_ref(),
                p.as_ref().unchecked_ref(),
                a.as_ref().unchecked_ref(),
            )
        })
    })
}
