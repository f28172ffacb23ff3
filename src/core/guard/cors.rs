//! The CORS policy of the chat and OFREP routes (`ROUTER_ALLOWED_ORIGINS`).
//!
//! Why: the chat app's page evaluates the `lightrag-routing` flag with the OpenFeature web SDK's
//! OFREP provider, which calls the router from the app's origin — a cross-origin `POST` with a
//! JSON body, so the browser first sends a preflight `OPTIONS`. Origins on the list get the
//! preflight answer and `Access-Control-Allow-Origin` on the actual response (with
//! `Vary: Origin`, since the answer depends on it); every other origin gets no CORS header at
//! all, and the browser keeps the response from the page. There is no `*`: an allow list of
//! exact origins is the only form, so widening it is always a deliberate act.

use serde::Serialize;
use std::collections::BTreeSet;

/// `Access-Control-Allow-Methods` of a preflight answer.
pub const ALLOW_METHODS: &str = "POST, OPTIONS";
/// `Access-Control-Allow-Headers`: JSON bodies, the client token, OFREP's ETag revalidation.
pub const ALLOW_HEADERS: &str = "authorization, content-type, if-none-match";
/// `Access-Control-Max-Age` in seconds (Chromium caps it at 7,200).
pub const MAX_AGE_S: &str = "600";
/// `Access-Control-Expose-Headers`: what a page may read beyond the safelisted ones (OFREP's
/// provider keeps the bulk `ETag`; the public routing headers; `Retry-After` on a 429).
pub const EXPOSE_HEADERS: &str =
    "etag, retry-after, x-route-upstream, x-route-reason, x-route-fallback";

/// Exact origins (`scheme://host[:port]`, lower case), validated once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AllowedOrigins(BTreeSet<String>);

impl AllowedOrigins {
    pub fn new(origins: BTreeSet<String>) -> AllowedOrigins {
        AllowedOrigins(origins)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request's `Origin` header is on the list.
    pub fn allows(&self, origin: &str) -> bool {
        parse_origin(origin).is_ok_and(|o| self.0.contains(&o))
    }
}

/// An origin as browsers serialise it: `http` or `https`, a host, an optional port, nothing
/// else (a trailing `/` is forgiven). Lower-cased.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    let lower = t.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| {
            "expected an origin such as https://chat.example.org (http or https, no `*`)"
                .to_string()
        })?;
    let bad = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if rest.is_empty() || rest.chars().any(bad) {
        return Err(
            "expected scheme://host[:port] only: no path, query, user info, spaces or `*`".into(),
        );
    }
    Ok(lower)
}

/// The headers of a preflight answer for `origin` (`None`: not allowed, send none).
pub fn preflight_headers(
    origins: &AllowedOrigins,
    origin: Option<&str>,
) -> Option<[(&'static str, String); 5]> {
    let o = origin.filter(|o| origins.allows(o))?;
    Some([
        ("access-control-allow-origin", o.to_string()),
        ("access-control-allow-methods", ALLOW_METHODS.to_string()),
        ("access-control-allow-headers", ALLOW_HEADERS.to_string()),
        ("access-control-max-age", MAX_AGE_S.to_string()),
        ("vary", "Origin".to_string()),
    ])
}

/// The headers added to an actual response for `origin` (`None`: not allowed, send none).
pub fn response_headers(
    origins: &AllowedOrigins,
    origin: Option<&str>,
) -> Option<[(&'static str, String); 2]> {
    let o = origin.filter(|o| origins.allows(o))?;
    Some([
        ("access-control-allow-origin", o.to_string()),
        ("access-control-expose-headers", EXPOSE_HEADERS.to_string()),
    ])
}
