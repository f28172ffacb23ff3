//! JSON response helpers, so every answer the router gives (including errors) has the same
//! shape and content type, and building a response can never panic.

use worker::{Response, Result};

/// A JSON response with the given status.
pub fn json(status: u16, body: &serde_json::Value) -> Result<Response> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    let resp = Response::ok(text)?.with_status(status);
    resp.headers().set("content-type", "application/json; charset=utf-8")?;
    Ok(resp)
}

/// A JSON error: `{"error": {"code", "message", "status"}}`.
pub fn error(status: u16, code: &str, message: &str) -> Result<Response> {
    json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message, "status": status}}),
    )
}
