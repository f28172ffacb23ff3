//! Reading a request body within its limit, on every route that reads one.
//!
//! Why one helper: the limit used to be checked after `req.bytes()` had buffered the whole body,
//! so a chunked body without `Content-Length` could make the router hold any amount of memory
//! first, and OFREP had no limit at all. Here the body is read as a stream and each chunk is
//! counted against [`crate::core::guard::body::BodyLimit`] as it arrives; the first chunk that
//! crosses the limit ends the read with 413 (the rest is never read). The reading itself is one
//! call into `incoming.js` (`body`).

use super::http;
use super::incoming::Incoming;
use super::isolate::with;
use super::settle::Settle;
use crate::core::guard::body::{BodyLimit, TooLarge};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Request, Response, Result};

#[wasm_bindgen(module = "/src/edge/incoming.js")]
extern "C" {
    /// A body without a declared length, read within `limit`: its bytes, the count that
    /// crossed the limit, or why it was unreadable.
    #[wasm_bindgen(js_name = body)]
    fn js_body(request: &web_sys::Request, limit: f64) -> js_sys::Promise;
    /// The whole body as a `Uint8Array`, reported to `done` as `settle.js` reports a promise.
    #[wasm_bindgen(js_name = arrayBody)]
    fn js_array_body(request: &web_sys::Request, id: u32, done: &js_sys::Function);
}

/// The limit when the isolate state is not loaded (`LIGHTRAG_MAX_BODY_BYTES`'s default).
const FALLBACK_LIMIT: u64 = 65_536;

/// The configured body limit.
pub fn limit() -> u64 {
    with(|i| i.config().max_body_bytes).unwrap_or(FALLBACK_LIMIT)
}

fn unreadable(e: &str) -> Result<Response> {
    http::error(
        400,
        "unreadable_body",
        &format!("could not read the request body: {e}"),
    )
}

/// A JS exception as text (its message when it is an `Error`).
fn js_text(e: &JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => e
            .as_string()
            .unwrap_or_else(|| "the body could not be read".to_string()),
    }
}

fn too_large(e: TooLarge) -> Result<Response> {
    http::error(413, "too_large", &e.to_string())
}

/// Reads the body, refusing it with 413 as soon as it crosses the configured limit (or at once
/// when its declared `Content-Length` does); 400 when it cannot be read.
pub async fn read(req: &mut Request) -> std::result::Result<Vec<u8>, Result<Response>> {
    let declared = req.headers().get("content-length").ok().flatten();
    read_raw(req.inner(), declared.as_deref()).await
}

/// [`read`] for the chat routes' [`Incoming`] (its `Content-Length` from the snapshot).
pub async fn read_incoming(req: &Incoming) -> std::result::Result<Vec<u8>, Result<Response>> {
    let declared = req.headers().get("content-length").ok().flatten();
    read_raw(req.inner(), declared.as_deref()).await
}

/// The body of `raw`, whose `Content-Length` is `declared`, within the limit. One await either
/// way: a declared body is read whole, one without a declared length is read by
/// `incoming.js` `body`, which counts each chunk against the limit as it arrives (driven from
/// Rust, every chunk cost a promise, a closure pair and a microtask).
async fn read_raw(
    raw: &web_sys::Request,
    declared: Option<&str>,
) -> std::result::Result<Vec<u8>, Result<Response>> {
    let limit = limit();
    let mut budget = BodyLimit::new(limit);
    budget.declared(declared).map_err(too_large)?;
    // A declared length within the limit frames the body (the HTTP layer reads exactly that
    // many bytes), so it is read in one call: streaming it chunk by chunk cost a reader, a
    // read per chunk and a lock release per request (a tenth of the router's CPU time in a
    // workerd profile, benches/profile_edge.mjs). The count is still checked.
    if declared.is_some_and(|d| d.trim().parse::<u64>().is_ok()) {
        let bytes = Settle::reported(|id, done| js_array_body(raw, id, done))
            .await
            .map_err(|e| unreadable(&js_text(&e)))?;
        let body = bytes.unchecked_into::<js_sys::Uint8Array>().to_vec();
        budget.take(body.len()).map_err(too_large)?;
        return Ok(body);
    }
    let got = Settle::new(js_body(raw, limit as f64))
        .await
        .map_err(|e| unreadable(&js_text(&e)))?;
    if got.as_f64().is_some() {
        // It crossed the limit (the rest was not read).
        return Err(too_large(TooLarge { limit }));
    }
    if let Some(why) = got.as_string() {
        return Err(unreadable(&why));
    }
    let body = got.unchecked_into::<js_sys::Uint8Array>().to_vec();
    budget.take(body.len()).map_err(too_large)?;
    Ok(body)
}
