//! The upstream call as an idiomatic workers-rs worker makes it: `worker::Fetch` with a
//! `worker::Request` built from a `RequestInit` and a `Headers` — the same two headers the
//! bare JavaScript worker sends.

use wasm_bindgen::JsValue;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

/// POSTs `body` to Perplexity's chat completions; the runtime's response, its body unread.
pub async fn post(env: &Env, body: &str) -> Result<Response> {
    let base = env.var("PERPLEXITY_BASE_URL")?.to_string();
    let key = env.var("PERPLEXITY_API")?.to_string();
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("authorization", &format!("Bearer {key}"))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(body)));
    let request = Request::new_with_init(&format!("{base}/chat/completions"), &init)?;
    Fetch::Request(request).send().await
}
