//! The per-key rate limit's key and its `Retry-After`.
//!
//! Why per stickiness key: the chat app's server sends every user's requests from one address,
//! so limiting by client IP would throttle all users together. The key is the request's
//! stickiness key (user, else session, else the router's cookie); a request with none of them
//! (a fresh anonymous caller, who could mint a new id per request) is limited by its address
//! instead. Either way the key handed to the Workers Rate Limiting binding is an opaque salted
//! digest, so no raw user id or address leaves the request.

use crate::core::digest::{hex, sha256_parts};

/// The window of the `[[ratelimits]]` binding in `wrangler.toml` (`simple.period`; Cloudflare
/// accepts 10 or 60).
pub const PERIOD_S: u64 = 60;

/// Whom a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A stickiness key the client sent (user, session, or the router's cookie).
    Key(&'a str),
    /// No key: the client's address (`CF-Connecting-IP`), when known.
    Address(Option<&'a str>),
}

/// The opaque key for the binding: `k:` or `ip:` and 32 hex digits of SHA-256 over the salt and
/// the subject.
pub fn limit_key(salt: &str, subject: Subject<'_>) -> String {
    let (kind, value) = match subject {
        Subject::Key(k) => ("k", k),
        Subject::Address(a) => ("ip", a.unwrap_or("unknown")),
    };
    let d = sha256_parts(&[
        salt.as_bytes(),
        b"\0",
        kind.as_bytes(),
        b"\0",
        value.as_bytes(),
    ]);
    format!("{kind}:{}", hex(&d[..16]))
}

/// Seconds until the current window ends (at least 1): what `Retry-After` says.
pub fn retry_after_s(now_ms: u64) -> u64 {
    let period_ms = PERIOD_S * 1000;
    let left_ms = period_ms - now_ms % period_ms;
    left_ms.div_ceil(1000).max(1)
}
