//! The admin API (bearer `ADMIN_TOKEN`, constant-time compare; 401 without it, 403 when no
//! token is configured): status, config overrides with `If-Match`, breaker open/reset, the
//! Prometheus text, and on-demand metric flush / controller tick. The rollout's own endpoints
//! are in [`super::rollout`].

use super::http;
use super::isolate::{self, now_ms, secret, with};
use super::store::Store;
use crate::core::breaker::BreakerAction;
use crate::core::controller::{self, read_projection, view, ControllerInput};
use crate::core::fleet::FleetView;
use crate::core::identity::{check_admin, AdminAuth};
use crate::core::model::Upstream;
use crate::core::overrides::{self, Put, PutOutcome};
use crate::core::report::{prometheus, status_document, RolloutSummary};
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

/// `GET /admin/status`: this isolate's view, plus the controller's document and the rollout's
/// projected status read from KV (the same phase and percentage `GET /admin/rollout` shows).
pub async fn status(env: &Env) -> Result<Response> {
    let now = now_ms();
    let (controller, rollout) = match Store::open(env) {
        Some(store) => {
            let c = super::rollout::controller_doc(&store)
                .await
                .unwrap_or_else(|e| {
                    worker::console_error!("{e}");
                    None
                });
            let r: RolloutSummary = read_projection(&store, now)
                .await
                .map(|(p, _)| view(&p, now))
                .map_err(|e| e.to_string());
            (c, Some(r))
        }
        None => (None, None),
    };
    let fleet = FleetView {
        controller: controller.as_ref(),
        rollout: rollout.as_ref(),
    };
    match with(|i| i.report(now, &isolate::kv_ops(), &fleet, status_document)) {
        Some(mut doc) => {
            note_backend(&mut doc, &super::store::choice(env));
            http::json(200, &doc)
        }
        None => http::error(503, "not_ready", "router state unavailable"),
    }
}

/// Adds `state_backend` (which store this Worker runs on) to the status document, and its
/// fallback warning, if any, to `kv.warnings` too, where operators look for state problems.
fn note_backend(doc: &mut Value, choice: &crate::core::backend::BackendChoice) {
    if let Some(w) = &choice.warning {
        if let Some(ws) = doc
            .pointer_mut("/kv/warnings")
            .and_then(Value::as_array_mut)
        {
            ws.insert(0, json!(w));
        }
    }
    if let Some(o) = doc.as_object_mut() {
        o.insert("state_backend".into(), json!(choice));
    }
}

/// `GET /metrics`: the fleet's counters (one KV read of `controller/state`) and this isolate's
/// own series.
pub async fn metrics(env: &Env) -> Result<Response> {
    let controller = match Store::open(env) {
        Some(store) => super::rollout::controller_doc(&store)
            .await
            .unwrap_or_else(|e| {
                worker::console_error!("{e}");
                None
            }),
        None => None,
    };
    let fleet = FleetView {
        controller: controller.as_ref(),
        rollout: None,
    };
    let now = now_ms();
    match with(|i| i.report(now, &isolate::kv_ops(), &fleet, prometheus)) {
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
    let Some(store) = Store::open(env) else {
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
    let Some(store) = Store::open(env) else {
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

/// `POST /admin/controller/tick`: runs one controller tick now (what the cron does); the
/// webhooks of its transitions go out under `wait_until`.
pub async fn tick(env: &Env, ctx: &worker::Context) -> Result<Response> {
    let started = now_ms();
    match run_tick(env).await {
        Some(rep) => {
            let mut doc = serde_json::to_value(&rep).unwrap_or(Value::Null);
            if let Some(o) = doc.as_object_mut() {
                o.insert("started_ms".into(), json!(started));
                o.insert("finished_ms".into(), json!(now_ms()));
            }
            if let Some(url) = super::webhook::target() {
                if !rep.transitions.is_empty() {
                    ctx.wait_until(super::webhook::send_all(url, rep.transitions));
                }
            }
            http::json(200, &doc)
        }
        None => http::error(503, "kv_unavailable", "the KV binding is missing"),
    }
}

/// One controller tick, shared by the cron handler and the admin endpoint. Refreshes this
/// isolate's view of the routing document afterwards.
pub async fn run_tick(env: &Env) -> Option<controller::TickReport> {
    isolate::ensure_loaded(env).await;
    let store = Store::open(env)?;
    let config = with(|i| i.config().clone())?;
    let rep = store
        .tick(&ControllerInput {
            now_ms: now_ms(),
            config: &config,
            max_ops: CONTROLLER_MAX_OPS,
        })
        .await;
    with(|i| i.note_tick(&rep, now_ms()));
    for w in &rep.warnings {
        worker::console_error!("{}", w);
    }
    for t in &rep.transitions {
        worker::console_log!("rollout {}: {}", t.event.as_str(), t.reason);
    }
    worker::console_log!(
        "controller tick: skipped {:?}, {} ops, {} keys, completed {}, gate closed {}, phase {:?}, {}",
        rep.skipped,
        rep.ops,
        rep.keys_read,
        rep.completed,
        rep.gate_closed,
        rep.phase,
        rep.decision.as_deref().unwrap_or("-")
    );
    isolate::refresh_now(&store).await;
    Some(rep)
}
