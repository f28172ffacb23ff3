//! The rollout's admin API: `POST /admin/rollout` (start), `POST /admin/rollout/{approve|advance|
//! pause|resume|rollback}`, `GET /admin/rollout`, `GET /admin/experiment`.
//!
//! No handler writes `rollout/state` (KV has no compare-and-swap; the controller owns it): each
//! operation is checked against the projection of the stored state and the queued commands
//! (409 when the phase does not allow it), queued under its own key, applied to this isolate's
//! routing at once, and written as the projected `rollout/routing` so the other isolates follow
//! within `STATE_REFRESH_SECONDS`; the next controller tick applies it to the state
//! (`core::controller::operator`).

use super::http;
use super::isolate::{now_ms, random_bytes, with};
use super::store::Store;
use crate::core::controller::evidence::report;
use crate::core::controller::{
    read_projection, view, ControllerDoc, ReadError, RoutingDoc, Writer, CONTROLLER_KEY,
    ROUTING_KEY,
};
use crate::core::experiment::report::ShadowSummary;
use crate::core::identity::new_id;
use crate::core::rollout::command::COMMAND_MAX_AGE_MS;
use crate::core::rollout::request::parse_plan;
use crate::core::rollout::{CommandId, OpKind, Operation, RolloutId};
use crate::core::store::{parse_value, StateStore};
use serde_json::{json, Value};
use worker::{console_error, Env, Request, Response, Result};

fn kv(env: &Env) -> std::result::Result<Store, Result<Response>> {
    Store::open(env).ok_or_else(|| http::error(503, "kv_unavailable", "the KV binding is missing"))
}

fn read_failed(e: &ReadError) -> Result<Response> {
    console_error!("{e}");
    http::error(503, "rollout_state_unavailable", &e.to_string())
}

/// `GET /admin/rollout`: the stored state with the queued commands applied, and the queue.
pub async fn get(env: &Env) -> Result<Response> {
    let store = match kv(env) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = now_ms();
    match read_projection(&store, now).await {
        Ok((p, warnings)) => {
            let mut doc = serde_json::to_value(view(&p, now)).unwrap_or(Value::Null);
            if let Some(o) = doc.as_object_mut() {
                o.insert("warnings".into(), json!(warnings));
            }
            http::json(200, &doc)
        }
        Err(e) => read_failed(&e),
    }
}

/// `POST /admin/rollout`: starts a rollout with the plan in the body.
pub async fn start(mut req: Request, env: &Env) -> Result<Response> {
    let body = match super::body::read(&mut req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = String::from_utf8_lossy(&body);
    let plan = match parse_plan(&text) {
        Ok(p) => p,
        Err(e) => {
            return http::json(
                422,
                &json!({"error": {"code": "invalid_plan", "status": 422, "field": e.field,
                                   "message": e.to_string()}}),
            )
        }
    };
    let Ok(rollout_id) = RolloutId::try_new(format!("r-{}", new_id(&random_bytes()))) else {
        return http::error(500, "internal", "could not make a rollout id");
    };
    queue(Operation::Start { rollout_id, plan }, env).await
}

/// `POST /admin/rollout/{op}` (`{"note": "…"}` optional for a rollback).
pub async fn operate(op: &str, mut req: Request, env: &Env) -> Result<Response> {
    let kind = match OpKind::parse(op) {
        Some(OpKind::Start) | None => {
            return http::error(
                404,
                "not_found",
                &format!(
                    "unknown rollout operation `{op}`; use approve, advance, pause, resume or rollback (start is POST /admin/rollout)"
                ),
            )
        }
        Some(k) => k,
    };
    let body = match super::body::read(&mut req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let note = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => match m.get("note") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return http::error(400, "invalid_body", "`note` must be a string"),
            },
            Ok(_) => return http::error(400, "invalid_body", "the body must be a JSON object"),
            Err(e) => {
                return http::error(400, "invalid_json", &format!("the body is not JSON: {e}"))
            }
        }
    };
    let op = match kind {
        OpKind::Approve => Operation::Approve,
        OpKind::Advance => Operation::Advance,
        OpKind::Pause => Operation::Pause,
        OpKind::Resume => Operation::Resume,
        OpKind::Rollback | OpKind::Start => Operation::Rollback { note },
    };
    queue(op, env).await
}

/// Checks `op` against the projection, queues it, routes by its projection here and publishes
/// that projection for the fleet. 202 with the command and the projected status.
async fn queue(op: Operation, env: &Env) -> Result<Response> {
    let store = match kv(env) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = now_ms();
    let (projection, warnings) = match read_projection(&store, now).await {
        Ok(p) => p,
        Err(e) => return read_failed(&e),
    };
    let Ok(id) = CommandId::try_new(format!("c-{}", new_id(&random_bytes()))) else {
        return http::error(500, "internal", "could not make a command id");
    };
    let kind = op.kind();
    let (cmd, projected) = match projection.issue(op, id, now) {
        Ok(x) => x,
        Err(e) => {
            return http::json(
                409,
                &json!({"error": {"code": "conflict", "status": 409, "message": e.message,
                                   "phase": e.phase, "operation": kind.as_str()}}),
            )
        }
    };
    let key = cmd.key();
    if let Err(e) = store
        .put(&key, &cmd.to_json(), Some(COMMAND_MAX_AGE_MS / 1000))
        .await
    {
        console_error!("{e}");
        return http::error(
            503,
            "kv_unavailable",
            &format!("the command could not be queued (nothing changed): {e}"),
        );
    }
    let gate_closed = with(|i| i.routing().is_some_and(|r| r.quality_gate_closed)).unwrap_or(false);
    let routing = RoutingDoc::of(&projected.rollout, gate_closed, Writer::Operator, now);
    with(|i| i.adopt_routing(routing.clone(), now));
    let mut notes = warnings;
    let text = serde_json::to_string(&routing).unwrap_or_default();
    if let Err(e) = store.put(ROUTING_KEY, &text, None).await {
        console_error!("{e}");
        notes.push(format!(
            "the routing document could not be written ({e}); other isolates follow after the next controller tick"
        ));
    }
    worker::console_log!(
        "rollout command {} ({}) queued by admin",
        cmd.id,
        kind.as_str()
    );
    let mut doc = serde_json::to_value(view(&projected, now)).unwrap_or(Value::Null);
    if let Some(o) = doc.as_object_mut() {
        o.insert(
            "command".into(),
            json!({"id": cmd.id, "op": kind.as_str(), "issued_at": cmd.issued_at, "key": key}),
        );
        o.insert("warnings".into(), json!(notes));
    }
    http::json(202, &doc)
}

/// Reads `controller/state` (`None` when absent; `Err` with the reason when unreadable).
pub async fn controller_doc(store: &Store) -> std::result::Result<Option<ControllerDoc>, String> {
    match store.get(CONTROLLER_KEY).await {
        Ok(Some(t)) => parse_value(CONTROLLER_KEY, &t)
            .map(Some)
            .map_err(|e| e.to_string()),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `GET /admin/experiment`: the A/B report of the current stage's cumulative data (as of the
/// controller's last completed pass). 404 while `LIGHTRAG_ENABLE_AB_TESTING` is off.
pub async fn experiment(env: &Env) -> Result<Response> {
    if !with(|i| i.config().enable_ab_testing).unwrap_or(false) {
        return http::error(
            404,
            "experiment_disabled",
            "A/B reporting is off: set LIGHTRAG_ENABLE_AB_TESTING=true (the rollout's comparison gates are off too)",
        );
    }
    let store = match kv(env) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let doc = match controller_doc(&store).await {
        Ok(d) => d,
        Err(e) => return http::error(503, "controller_state_unavailable", &e),
    };
    let Some(book) = doc.as_ref().and_then(|d| d.stage.as_ref()) else {
        return http::json(
            200,
            &json!({"status": "no_experiment",
                    "verdict": "No rollout stage is running, so there is no experiment to report: start one with POST /admin/rollout."}),
        );
    };
    let stats = book.stats();
    let shadow = doc
        .as_ref()
        .and_then(|d| d.aggregate.as_ref())
        .and_then(|a| a.shadow.as_ref())
        .map(ShadowSummary::from_stats);
    let r = report(&stats, book.percentage, Some(&book.memory), shadow.as_ref());
    let mut out = serde_json::to_value(&r).unwrap_or(Value::Null);
    if let Some(o) = out.as_object_mut() {
        o.insert("status".into(), json!("running"));
        o.insert("stage".into(), json!(book.split));
        o.insert(
            "expected_treatment_percentage".into(),
            json!(book.percentage.percent()),
        );
        o.insert("since_ms".into(), json!(book.opened_ms));
        o.insert("looks".into(), json!(book.looks));
        o.insert(
            "as_of_ms".into(),
            json!(doc
                .as_ref()
                .and_then(|d| d.aggregate.as_ref())
                .map(|a| a.completed_ms)),
        );
        o.insert(
            "family_alpha".into(),
            json!(crate::core::controller::evidence::FAMILY_ALPHA),
        );
        o.remove("memory");
    }
    http::json(200, &out)
}
