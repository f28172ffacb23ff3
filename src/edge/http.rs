//! JSON response helpers, so every answer the router gives (including errors) has the same
//! shape and content type, and building a response can never panic.

use crate::core::wire::error::error_body;
use worker::{Response, ResponseBody, Result};

/// A response with a body, status and content type.
pub fn text(status: u16, body: String, content_type: &str) -> Result<Response> {
    // Not `Response::ok`: it sets `text/plain` first, one more crossing into JS per answer.
    let resp = Response::from_body(ResponseBody::Body(body.into_bytes()))?.with_status(status);
    resp.headers().set("content-type", content_type)?;
    Ok(resp)
}

/// A JSON response with the given status.
pub fn json(status: u16, body: &serde_json::Value) -> Result<Response> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    raw_json(status, text)
}

/// A JSON response from already-serialised text.
pub fn raw_json(status: u16, body: String) -> Result<Response> {
    text(status, body, "application/json; charset=utf-8")
}

/// A JSON error: `{"error": {"code", "message", "status"}}`.
pub fn error(status: u16, code: &str, message: &str) -> Result<Response> {
    raw_json(status, error_body(status, code, message))
}

/// 405 with `Allow`.
pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Result<Response> {
    let resp = error(
        405,
        "method_not_allowed",
        &format!("{method} is not allowed on {path}; use {allow}"),
    )?;
    resp.headers().set("allow", allow)?;
    Ok(resp)
}
