//! Per-key rate limiting with the Workers Rate Limiting binding (`[[ratelimits]]` named
//! `ROUTER_RATE_LIMIT` in wrangler.toml): 429 JSON with `Retry-After` before anything is
//! decided, so a limited request never draws a breaker permit, calls an upstream or lands in an
//! experiment arm. The key is opaque ([`crate::core::guard::ratelimit`]). Without the binding
//! nothing is limited (the status document says so outside development); a failing binding
//! lets the request through and logs why — the limiter is a brake, not a gate.

use super::http;
use super::incoming::Incoming;
use super::isolate::{now_ms, with};
use crate::core::guard::deployment::RATE_LIMIT_BINDING;
use crate::core::guard::ratelimit::{limit_key, retry_after_s, Subject, PERIOD_S};
use crate::core::identity::{identify, KeySource};
use serde_json::json;
use std::cell::Cell;
use worker::{console_error, Env, Response, Result};

thread_local! {
    /// Whether this isolate has no limiter binding: an isolate's bindings never change, and
    /// looking a missing one up failed anew on every request (a lookup, an error text).
    static UNBOUND: Cell<bool> = const { Cell::new(false) };
}

/// `None` when the request may go on, else the 429. `user` / `session` are the body's ids;
/// the router's cookie is read here; with none of them the client's address is the subject.
pub async fn admit(
    req: &Incoming,
    env: &Env,
    user: Option<&str>,
    session: Option<&str>,
) -> Option<Result<Response>> {
    if UNBOUND.with(Cell::get) {
        return None;
    }
    let Ok(limiter) = env.rate_limiter(RATE_LIMIT_BINDING) else {
        UNBOUND.with(|u| u.set(true));
        return None;
    };
    let cookie = req.headers().get("cookie").ok().flatten();
    // The random id is never used: a request without a key is counted by address.
    let ident = identify(user, session, cookie.as_deref(), || [0; 16]);
    let address = req.headers().get("cf-connecting-ip").ok().flatten();
    let subject = match ident.source {
        KeySource::Issued => Subject::Address(address.as_deref()),
        _ => Subject::Key(&ident.key),
    };
    let salt = with(|i| i.config().user_hash_salt.as_str().to_string()).unwrap_or_default();
    let key = limit_key(&salt, subject);
    match limiter.limit(key).await {
        Ok(outcome) if outcome.success => None,
        Ok(_) => Some(too_many(retry_after_s(now_ms()))),
        Err(e) => {
            console_error!("rate limiter {RATE_LIMIT_BINDING} failed; request let through: {e}");
            None
        }
    }
}

fn too_many(retry_after: u64) -> Result<Response> {
    let r = http::json(
        429,
        &json!({"error": {
            "code": "rate_limited",
            "status": 429,
            "message": format!(
                "too many requests for this user (per user, session or cookie; by address without one) in the current {PERIOD_S}-second window; retry after {retry_after} s"
            ),
            "retry_after_s": retry_after,
        }}),
    )?;
    r.headers().set("retry-after", &retry_after.to_string())?;
    Ok(r)
}
