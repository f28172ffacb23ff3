//! `lean`: the bare worker through the router's tricks, to show how much of the idiomatic
//! floor (`pass`) they remove. The router's own entry.rs and settle.rs (compiled from its
//! files) and, as its mod.rs `fetch_export`, body.rs and fetch.rs do: no `#[event(fetch)]` (whose `future_to_promise` spawns the
//! handler on wasm-bindgen-futures' queue) — the handler is polled at once in the export call,
//! and again directly when a promise it awaits settles, each settlement reported to one
//! callback made once per isolate (no closure pair per await); the body read by one JS call as
//! bytes; the upstream call one JS call with the headers as one string; the answer handed back
//! as one string with its headers as one string. The configuration is read once per isolate
//! (the router's `isolate` caches its secrets). No deadlines and no abort signals: the bare
//! worker has neither. With the `pump` feature a streamed answer goes through Rust chunk by
//! chunk ([`super::pump`]). With the `json` feature (the `lean-translate` build) the texts go
//! through [`super::translate`] on the way.

use entry::run;
use settle::Settle;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

// The router's own executor and awaits, compiled from the router's files (not copies), so this
// floor measures exactly the mechanism the router uses. Their JS modules are named from the
// crate root (`/src/edge/*.js`): src/edge/ here holds symlinks to the router's files.
#[path = "../../../src/edge/entry.rs"]
mod entry;
#[path = "../../../src/edge/settle.rs"]
mod settle;

/// What entry.rs reads from the router's `isolate`: the clock (src/edge/isolate.rs `now_ms`).
mod isolate {
    pub fn now_ms() -> u64 {
        js_sys::Date::now() as u64
    }
}

#[wasm_bindgen(module = "/src/edge/incoming.js")]
extern "C" {
    #[wasm_bindgen(js_name = arrayBody)]
    fn array_body(request: &web_sys::Request, id: u32, done: &js_sys::Function);
}

#[wasm_bindgen(module = "/src/lean.js")]
extern "C" {
    fn complete(url: &str, headers: &str, body: &str) -> js_sys::Promise;
    fn open(url: &str, headers: &str, body: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = respondWith)]
    fn respond_with(body: &str, status: u16, headers: &str) -> web_sys::Response;
    #[wasm_bindgen(js_name = respondWith)]
    fn respond_stream_with(body: &JsValue, status: u16, headers: &str) -> web_sys::Response;
    #[cfg(feature = "pump")]
    fn pipe(body: &JsValue, pump: super::pump::FloorPump, ctx: &JsValue) -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    /// `complete`'s and `open`'s value.
    type Outcome;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Outcome) -> u16;
    #[wasm_bindgen(method, getter)]
    fn text(this: &Outcome) -> String;
    #[wasm_bindgen(method, getter)]
    fn body(this: &Outcome) -> JsValue;
    #[wasm_bindgen(js_name = queueMicrotask)]
    fn queue_microtask(f: &js_sys::Function);
}

/// The upstream's URL and headers (`name\0value\0…`), read from the environment once.
struct Config {
    url: String,
    headers: String,
}

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

fn config(env: &worker::Env) -> worker::Result<Rc<Config>> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let base = env.var("PERPLEXITY_BASE_URL")?.to_string();
    let key = env.var("PERPLEXITY_API")?.to_string();
    let c = Rc::new(Config {
        url: format!("{base}/chat/completions"),
        headers: format!("content-type\0application/json\0authorization\0Bearer {key}"),
    });
    CONFIG.with(|x| *x.borrow_mut() = Some(c.clone()));
    Ok(c)
}

#[wasm_bindgen(js_name = fetch)]
pub fn fetch_export(raw: web_sys::Request, env: worker::Env, ctx: JsValue) -> JsValue {
    run(async move {
        match handle(raw, env, ctx).await {
            Ok(r) => r.into(),
            Err(e) => {
                respond_with(&format!("floor: {e:?}"), 500, "content-type\0text/plain").into()
            }
        }
    })
}

async fn handle(
    raw: web_sys::Request,
    env: worker::Env,
    ctx: JsValue,
) -> Result<web_sys::Response, JsValue> {
    let bytes = Settle::reported(|id, done| array_body(&raw, id, done)).await?;
    let bytes = bytes.unchecked_into::<js_sys::Uint8Array>().to_vec();
    let text = String::from_utf8(bytes).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let (body, stream) = super::translate::request(text).map_err(|e| JsValue::from_str(&e))?;
    let c = config(&env).map_err(|e| JsValue::from_str(&e.to_string()))?;
    if stream {
        let got: Outcome = Settle::new(open(&c.url, &c.headers, &body))
            .await?
            .unchecked_into();
        #[cfg(feature = "pump")]
        let body = pipe(&got.body(), super::pump::FloorPump::new(), &ctx);
        #[cfg(not(feature = "pump"))]
        let body = {
            let _ = &ctx;
            got.body()
        };
        return Ok(respond_stream_with(
            &body,
            got.status(),
            "content-type\0text/event-stream",
        ));
    }
    let got: Outcome = Settle::new(complete(&c.url, &c.headers, &body))
        .await?
        .unchecked_into();
    let text = super::translate::answer(got.text()).map_err(|e| JsValue::from_str(&e))?;
    Ok(respond_with(
        &text,
        got.status(),
        "content-type\0application/json",
    ))
}
