//! The one JSON error body of the router: `{"error": {"code", "message", "status"}}`.
//!
//! Why one shape: clients and operators should parse every 4xx/5xx the same way, whether a body
//! was malformed (400), too large (413), a route unknown (404) or both upstreams failed
//! (502/504). The message says what was wrong (docs/architecture.md#bad-input-and-failure); it never carries secrets.

use super::answer::{to_json, WireError};
use serde_json::json;

/// `{"error": {"code": code, "message": message, "status": status}}`.
pub fn error_body(status: u16, code: &str, message: &str) -> String {
    to_json(&json!({
        "error": {"code": code, "message": message, "status": status}
    }))
}

/// The status and body for a [`WireError`] caused by a client's request.
pub fn wire_error_response(err: &WireError) -> (u16, String) {
    let status = err.status();
    (status, error_body(status, err.code(), &err.to_string()))
}
