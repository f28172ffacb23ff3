//! The admin API (bearer `ADMIN_TOKEN`, constant-time compare; 401 without it, 403 when no
//! token is configured): status, config overrides with `If-Match`, breaker open/reset, the
//! Prometheus text, and on-demand metric flush / controller tick.

use super::http;
use super::isolate::{self, now_ms, secret, with};
use super::kv::Kv;
use crate::core::config::Source;
use crate::core::identity::{check_admin, AdminAuth};
use crate::core::model::Upstream;
use crate::core::policies;
use crate::core::report::{prometheus, status_document, ReportInputs};
use crate::core::store::{self, OverridesDoc, StateStore, CONFIG_KEY, CONTROLLER_MAX_OPS};
use serde_json::{json, Map, Value};
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

fn report<T>(f: impl FnOnce(&ReportInputs<'_>) -> T) -> Option<T> {
    let now = now_ms();
    let ops = isolate::kv_ops();
    with(|i| {
        let local = i.local_stats(now);
        let breakers = i.breaker_statuses(now);
        let mut warnings = i.warnings.clone();
        if let Some(w) = &i.policy_warning {
            warnings.push(w.clone());
        }
        let inputs = ReportInputs {
            now_ms: now,
            isolate: &i.id,
            config: i.config(),
            problems: i.problems(),
            breakers: &breakers,
            local: &local,
            rollout: i.rollout.as_ref(),
            kv_warnings: &warnings,
            kv_ops: &ops,
            last_refresh_ms: i.sched.last_refresh_ms,
            last_flush_ms: i.sched.last_flush_ms,
        };
        f(&inputs)
    })
}

/// `GET /admin/status`.
pub fn status() -> Result<Response> {
    match report(status_document) {
        Some(doc) => http::json(200, &doc),
        None => http::error(503, "not_ready", "router state unavailable"),
    }
}

/// `GET /metrics`.
pub fn metrics() -> Result<Response> {
    match report(prometheus) {
        Some(text) => http::text(200, text, "text/plain; version=0.0.4; charset=utf-8"),
        None => http::error(503, "not_ready", "router state unavailable"),
    }
}

fn etag(version: u64) -> String {
    format!("\"v{version}\"")
}

/// `GET /admin/config`.
pub fn get_config() -> Result<Response> {
    let doc = with(|i| {
        json!({
            "version": i.overrides.version,
            "etag": etag(i.overrides.version),
            "overrides": i.overrides.overrides,
            "updated_ms": i.overrides.updated_ms,
            "effective": i.config(),
            "problems": i.problems(),
        })
    });
    let Some(doc) = doc else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let version = doc.get("version").and_then(Value::as_u64).unwrap_or(0);
    let r = http::json(200, &doc)?;
    r.headers().set("etag", &etag(version))?;
    Ok(r)
}

/// `PUT /admin/config`: replaces the override set. Requires `If-Match` with the current ETag
/// (428 without, 412 on mismatch) so two operators cannot silently overwrite each other.
/// Rejected values → 422 listing every problem; nothing is stored.
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
    let body = match super::chat::read_body(&mut req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return http::error(
                400,
                "malformed_body",
                &format!("request body is not valid JSON ({e})"),
            )
        }
    };
    let overrides: Map<String, Value> = match parsed {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("overrides") => {
            match o.remove("overrides") {
                Some(Value::Object(m)) => m,
                _ => {
                    return http::error(
                        400,
                        "invalid_field",
                        "`overrides` must be an object of VARIABLE: value",
                    )
                }
            }
        }
        Value::Object(o) => o,
        _ => {
            return http::error(
                400,
                "malformed_body",
                "expected a JSON object of VARIABLE: value",
            )
        }
    };
    // The admin path reads KV directly (never the hot path): the version check must see the
    // stored version, not this isolate's cached one.
    let current: OverridesDoc = match store.get(CONFIG_KEY).await {
        Ok(Some(t)) => match store::parse_value(CONFIG_KEY, &t) {
            Ok(d) => d,
            Err(w) => {
                worker::console_error!("{}", w);
                OverridesDoc::default()
            }
        },
        Ok(None) => OverridesDoc::default(),
        Err(e) => {
            return http::error(
                503,
                "kv_unavailable",
                &format!("cannot read the current config: {e}"),
            )
        }
    };
    let want = etag(current.version);
    let matches = if_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == want);
    if !matches {
        let r = http::error(
            412,
            "precondition_failed",
            &format!(
                "the config changed since you read it: current ETag is {want}, you sent {if_match}; GET it again and re-apply your change"
            ),
        )?;
        r.headers().set("etag", &want)?;
        return Ok(r);
    }
    let version = current.version + 1;
    let Some(loaded) = with(|i| i.validate(&overrides, version)) else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let problems: Vec<_> = loaded
        .problems
        .iter()
        .filter(|p| p.source == Source::Override)
        .collect();
    if !problems.is_empty() {
        return http::json(
            422,
            &json!({"error": {
                "code": "invalid_config",
                "status": 422,
                "message": format!("{} override value(s) rejected; nothing was stored", problems.len()),
                "problems": problems,
            }}),
        );
    }
    let now = now_ms();
    let doc = OverridesDoc {
        version,
        overrides,
        updated_ms: now,
    };
    let text = serde_json::to_string(&doc).unwrap_or_default();
    if let Err(e) = store.put(CONFIG_KEY, &text, None).await {
        return http::error(
            503,
            "kv_unavailable",
            &format!("cannot store the config: {e}"),
        );
    }
    with(|i| i.set_overrides(doc, now));
    let r = get_config()?;
    Ok(r)
}

/// `POST /admin/breaker/{upstream}/{open|reset}`.
pub fn breaker_action(
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
    let now = now_ms();
    let status = with(|i| {
        let duration = policies::breaker_settings(i.config()).recovery_timeout_ms;
        let t = match (action, i.breakers.get_mut(&u)) {
            ("open", Some(b)) => Some(b.force_open(now, duration)),
            ("reset", Some(b)) => Some(b.reset(now)),
            _ => None,
        };
        if let Some(t) = &t {
            i.note_transition(u, t, now);
        }
        t.map(|_| i.breakers.get(&u).map(|b| b.status(now)))
    })
    .flatten()
    .flatten();
    match status {
        Some(s) => {
            isolate::background(env, ctx);
            http::json(200, &json!({"upstream": u, "action": action, "breaker": s}))
        }
        None => http::error(
            404,
            "not_found",
            &format!("unknown breaker action `{action}`; use open or reset"),
        ),
    }
}

/// `POST /admin/metrics/flush`: writes this isolate's metrics now.
pub async fn flush(env: &Env) -> Result<Response> {
    match isolate::flush_now(env).await {
        Ok(key) => http::json(200, &json!({"flushed": key})),
        Err(e) => http::error(503, "kv_unavailable", &e),
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
    isolate::ensure(env).await;
    let store = Kv::open(env)?;
    let gate = with(|i| policies::gate_settings(i.config())).unwrap_or_default();
    let rep = store::controller_tick(&store, now_ms(), &gate, CONTROLLER_MAX_OPS).await;
    for w in &rep.warnings {
        worker::console_error!("{}", w);
    }
    worker::console_log!(
        "controller tick: {} ops, {} keys, completed {}, gate closed {}",
        rep.ops,
        rep.keys_read,
        rep.completed,
        rep.gate_closed
    );
    let remote = store::load_remote(&store).await;
    with(|i| i.apply_remote(remote, now_ms()));
    Some(rep)
}
