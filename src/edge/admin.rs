//! The admin API (bearer `ADMIN_TOKEN`, constant-time compare; 401 without it, 403 when no
//! token is configured): status, config overrides with `If-Match`, breaker open/reset, the
//! Prometheus text, and on-demand metric flush / controller tick.

use super::http;
use super::isolate::{self, now_ms, secret, with};
use super::kv::Kv;
use crate::core::breaker::BreakerAction;
use crate::core::identity::{check_admin, AdminAuth};
use crate::core::model::Upstream;
use crate::core::overrides::{self, Put, PutOutcome};
use crate::core::report::{prometheus, status_document};
use crate::core::store::{self, OverridesDoc, StateStore, CONFIG_KEY, CONTROLLER_MAX_OPS};
use serde_json::{json, Value};
use worker::{Env, Request, Response, Result};

/// `None` when authorised, else the response to send.
pub fn authorize(req: &Request, env: &Env) -> Option<Result<Response>> {
    let auth = req.headers().get("authorization").ok().flatten();
    match check_admin(secret(env, "ADMIN_TOKEN").as_deref(), auth.as_deref()) {
        AdminAuth::Ok => None,
        AdminAuth::Disabled => Some(http::error(
            403,
            "admin_disabled",
            "the admin API is disabled: no ADMIN_TOKEN secret is configured",
        )),
        AdminAuth::Missing => Some(unauthorized(
            "missing `Authorization: Bearer <ADMIN_TOKEN>`",
        )),
        AdminAuth::Invalid => Some(unauthorized("invalid admin token")),
    }
}

fn unauthorized(msg: &str) -> Result<Response> {
    let r = http::error(401, "unauthorized", msg)?;
    r.headers().set("www-authenticate", "Bearer")?;
    Ok(r)
}

/// `GET /admin/status`.
pub fn status() -> Result<Response> {
    let now = now_ms();
    match with(|i| i.report(now, &isolate::kv_ops(), status_document)) {
        Some(doc) => http::json(200, &doc),
        None => http::error(503, "not_ready", "router state unavailable"),
    }
}

/// `GET /metrics`.
pub fn metrics() -> Result<Response> {
    let now = now_ms();
    match with(|i| i.report(now, &isolate::kv_ops(), prometheus)) {
        Some(text) => http::text(200, text, "text/plain; version=0.0.4; charset=utf-8"),
        None => http::error(503, "not_ready", "router state unavailable"),
    }
}

/// `GET /admin/config`.
pub fn get_config() -> Result<Response> {
    let Some((doc, version)) = with(|i| i.config_document()) else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let r = http::raw_json(200, doc)?;
    r.headers().set("etag", &overrides::etag(version))?;
    Ok(r)
}

/// `PUT /admin/config`: replaces the override set. Requires `If-Match` with the current ETag
/// (428 without, 412 on mismatch) so two operators cannot silently overwrite each other.
/// Rejected values → 422 listing every problem; nothing is stored. The rules are
/// [`crate::core::overrides`]; this handler reads the stored set and writes the new one.
pub async fn put_config(mut req: Request, env: &Env) -> Result<Response> {
    let Some(if_match) = req.headers().get("if-match").ok().flatten() else {
        return http::error(
            428,
            "precondition_required",
            "PUT /admin/config needs an `If-Match` header with the ETag from GET /admin/config",
        );
    };
    let Some(store) = Kv::open(env) else {
        return http::error(503, "kv_unavailable", "the KV binding is missing");
    };
    let body = match super::body::read(&mut req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let new = match overrides::parse_body(&body) {
        Ok(m) => m,
        Err(e) => return http::error(400, e.code(), &e.to_string()),
    };
    // The admin path reads KV directly (never the hot path): the version check must see the
    // stored version, not this isolate's cached one.
    let current: OverridesDoc = match store.get(CONFIG_KEY).await {
        Ok(Some(t)) => store::parse_value(CONFIG_KEY, &t).unwrap_or_else(|w| {
            worker::console_error!("{}", w);
            OverridesDoc::default()
        }),
        Ok(None) => OverridesDoc::default(),
        Err(e) => {
            return http::error(
                503,
                "kv_unavailable",
                &format!("cannot read the current config: {e}"),
            )
        }
    };
    let now = now_ms();
    let outcome = with(|i| {
        overrides::apply_put(&Put {
            vars: i.vars(),
            current: &current,
            if_match: &if_match,
            overrides: &new,
            now_ms: now,
        })
    });
    let (doc, loaded) = match outcome {
        None => return http::error(503, "not_ready", "router state unavailable"),
        Some(PutOutcome::Stale { current_etag }) => {
            let r = http::error(
                412,
                "precondition_failed",
                &format!(
                    "the config changed since you read it: current ETag is {current_etag}, you sent {if_match}; GET it again and re-apply your change"
                ),
            )?;
            r.headers().set("etag", &current_etag)?;
            return Ok(r);
        }
        Some(PutOutcome::Rejected(problems)) => {
            return http::json(
                422,
                &json!({"error": {
                    "code": "invalid_config",
                    "status": 422,
                    "message": format!("{} override value(s) rejected; nothing was stored", problems.len()),
                    "problems": problems,
                }}),
            )
        }
        Some(PutOutcome::Stored { doc, loaded }) => (doc, *loaded),
    };
    let text = serde_json::to_string(&doc).unwrap_or_default();
    if let Err(e) = store.put(CONFIG_KEY, &text, None).await {
        return http::error(
            503,
            "kv_unavailable",
            &format!("cannot store the config: {e}"),
        );
    }
    with(|i| i.use_config(doc, loaded, now));
    get_config()
}

/// `POST /admin/breaker/{upstream}/{open|reset}`: applied here at once; the command is
/// written to `breaker/<upstream>/admin` before answering, so every isolate obeys it at its
/// next refresh whatever its generation (`core::breaker::replica`). 503 when that write
/// failed (the action then holds in this isolate only).
pub async fn breaker_action(
    upstream: &str,
    action: &str,
    env: &Env,
    ctx: &worker::Context,
) -> Result<Response> {
    let Some(u) = Upstream::parse(upstream) else {
        return http::error(
            404,
            "not_found",
            &format!("unknown upstream `{upstream}`; use lightrag or perplexity"),
        );
    };
    let Some(a) = BreakerAction::parse(action) else {
        return http::error(
            404,
            "not_found",
            &format!("unknown breaker action `{action}`; use open or reset"),
        );
    };
    let Some(store) = Kv::open(env) else {
        return http::error(503, "kv_unavailable", "the KV binding is missing");
    };
    let now = now_ms();
    let Some(done) = with(|i| i.breaker_action(u, a, now)).flatten() else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let t = &done.transition;
    worker::console_log!(
        "breaker {} {} -> {} ({:?}, generation {}) by admin",
        u.as_str(),
        t.from.as_str(),
        t.to.as_str(),
        t.cause,
        t.generation
    );
    let written = store
        .put(&done.command.key, &done.command.value, None)
        .await;
    isolate::background(env, ctx);
    if let Err(e) = written {
        worker::console_error!("{}", e);
        return http::error(
            503,
            "kv_unavailable",
            &format!(
                "the {action} applies in this isolate, but the command could not be stored for the others: {e}"
            ),
        );
    }
    http::json(
        200,
        &json!({"upstream": u, "action": a, "breaker": done.status}),
    )
}

/// `POST /admin/metrics/flush`: writes this isolate's metrics now.
pub async fn flush(env: &Env) -> Result<Response> {
    match isolate::flush_now(env).await {
        Ok(key) => http::json(200, &json!({"flushed": key})),
        Err(e) => http::error(503, "kv_unavailable", &e.to_string()),
    }
}

/// `POST /admin/controller/tick`: runs one controller tick now (what the cron does).
pub async fn tick(env: &Env) -> Result<Response> {
    match run_tick(env).await {
        Some(rep) => http::json(200, &serde_json::to_value(rep).unwrap_or(Value::Null)),
        None => http::error(503, "kv_unavailable", "the KV binding is missing"),
    }
}

/// One controller tick, shared by the cron handler and the admin endpoint. Refreshes this
/// isolate's view of the rollout document afterwards.
pub async fn run_tick(env: &Env) -> Option<store::TickReport> {
    isolate::ensure_loaded(env).await;
    let store = Kv::open(env)?;
    let gate = with(|i| i.config().quality_gate).unwrap_or_default();
    let rep = store::controller_tick(&store, now_ms(), &gate, CONTROLLER_MAX_OPS).await;
    with(|i| i.note_tick(&rep, now_ms()));
    for w in &rep.warnings {
        worker::console_error!("{}", w);
    }
    worker::console_log!(
        "controller tick: skipped {:?}, {} ops, {} keys, completed {}, gate closed {}",
        rep.skipped,
        rep.ops,
        rep.keys_read,
        rep.completed,
        rep.gate_closed
    );
    isolate::refresh_now(&store).await;
    Some(rep)
}
