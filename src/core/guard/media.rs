//! `application/json` only.
//!
//! Why: every body the router reads is JSON, and refusing other media types (415) also stops a
//! cross-site HTML form from posting to it — a form can send only `text/plain`,
//! `multipart/form-data` or `application/x-www-form-urlencoded` without a CORS preflight.

/// Whether a `Content-Type` header names `application/json` (any case, parameters such as
/// `charset` allowed). A missing header is not JSON.
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The 415 message for a request to `what` (e.g. `POST /query`).
pub fn refusal(what: &str, content_type: Option<&str>) -> String {
    let got = match content_type.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => {
            let shown: String = v.chars().take(80).collect();
            format!("got `{}`", shown.escape_default())
        }
        None => "no Content-Type was sent".to_string(),
    };
    format!("{what} takes `Content-Type: application/json`; {got}")
}
