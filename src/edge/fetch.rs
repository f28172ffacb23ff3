//! The runtime's `fetch(url, init)`, called directly.
//!
//! Why not `worker::Fetch`: it builds a `worker::Request` (reading the new request's method,
//! URL, headers and `cf` back out of JS), then a second `Request` to attach the abort signal,
//! and wraps the answer in a `worker::Response` (reading its headers, status, `websocket` and
//! `cf`); reading the body as text then builds yet another JS `Response` around the stream. A
//! workerd CPU profile of the router (benches/profile_edge.mjs) showed those wrappers among the
//! largest costs of a request. The upstream adapters need only the status, the body as text or
//! as a stream, and an abort signal — all on `web_sys::Response` as the runtime gives it.
//!
//! The same holds for the incoming request: `worker::Request::from` reads its `cf` object
//! (workerd builds it from the request's metadata on every read: ~5 % of the router's CPU in
//! that profile), and the router never looks at it. [`without_cf`] hides it first.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` of the Workers runtime.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &web_sys::RequestInit) -> js_sys::Promise;
}

/// A POST of `body` (text) to `url` with `headers`, aborted with `signal`.
pub struct Post<'a> {
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a str,
    pub signal: Option<&'a web_sys::AbortSignal>,
}

/// Sends `p`; the response once its headers have arrived, or the runtime's error as text.
pub async fn post(p: &Post<'_>) -> Result<web_sys::Response, String> {
    let headers = web_sys::Headers::new().map_err(js_text)?;
    for (k, v) in p.headers {
        headers.set(k, v).map_err(js_text)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&wasm_bindgen::JsValue::from_str(p.body));
    if let Some(s) = p.signal {
        init.set_signal(Some(s));
    }
    let resp = JsFuture::from(global_fetch(p.url, &init))
        .await
        .map_err(js_text)?;
    resp.dyn_into::<web_sys::Response>()
        .map_err(|_| "fetch did not return a Response".to_string())
}

/// The whole body as text, read by the runtime in one call (`Response.text()`).
pub async fn text(resp: &web_sys::Response) -> Result<String, String> {
    let promise = resp.text().map_err(js_text)?;
    JsFuture::from(promise)
        .await
        .map_err(js_text)?
        .as_string()
        .ok_or_else(|| "the body is not text".to_string())
}

/// The incoming request as a `worker::Request`, without reading its `cf` object: an own
/// `cf` property set to `undefined` shadows the runtime's getter on this one object (the router
/// neither reads `cf` nor forwards the client's request anywhere).
pub fn without_cf(raw: web_sys::Request) -> worker::Request {
    let desc = js_sys::Object::new();
    // `value: undefined`, not writable or enumerable: only `worker::Request::from` reads it.
    let hidden = js_sys::Reflect::set(&desc, &"value".into(), &wasm_bindgen::JsValue::UNDEFINED)
        .and_then(|_| js_sys::Reflect::define_property(raw.as_ref(), &"cf".into(), &desc));
    // If the runtime refuses, the getter stays: correct, only slower.
    let _ = hidden;
    worker::Request::from(raw)
}

/// A JS exception as text (its message when it is an `Error`).
fn js_text(e: wasm_bindgen::JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}
