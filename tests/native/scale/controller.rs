//! The controller's side of the simulation: the operator's start of the rollout
//! ([`start_rollout`], what `POST /admin/rollout` does) and the cron's minute
//! ([`controller_step`], what `edge::admin::run_tick` does), both on the real code.
//!
//! The cron runs `core::controller::controller_tick`: it applies the queued start command,
//! aggregates the isolates' flushes, commits settled minutes to the fleet totals and the
//! stage's ledger, ticks the rollout machine on the stage's evidence and writes
//! `rollout/state`, `rollout/routing` (which the isolates route by) and `controller/state`. On
//! KV it runs in the cron's invocation, every operation counted against the same 1,000; on the
//! hub it is one request, run inside the object next to its storage (`core::hub`).
//!
//! The report compares the controller's rollout decisions with those of a controller with
//! perfect data ([`label`] names a decision for that comparison).

use super::hub::HubClient;
use super::kv::KvView;
use crate::fleet_support::block_on;
use cmo_edge_router::core::config::Config;
use cmo_edge_router::core::controller::{
    controller_tick, read_projection, ControllerInput, RoutingDoc, TickReport, Writer, ROUTING_KEY,
};
use cmo_edge_router::core::hub::HubRequest;
use cmo_edge_router::core::rollout::command::COMMAND_MAX_AGE_MS;
use cmo_edge_router::core::rollout::{
    CommandId, EventKind, Operation, Plan, RolloutId, TickOutcome,
};
use cmo_edge_router::core::store::{load_remote, StateStore, CONTROLLER_MAX_OPS};

/// A backend the cron can tick: KV runs the tick in the cron's invocation, the hub inside the
/// object.
pub trait Cron: StateStore + Sized {
    fn tick(&self, config: &Config, now_ms: u64) -> TickReport;
}

impl Cron for KvView<'_> {
    fn tick(&self, config: &Config, now_ms: u64) -> TickReport {
        block_on(controller_tick(
            self,
            &ControllerInput {
                now_ms,
                config,
                max_ops: CONTROLLER_MAX_OPS,
            },
        ))
    }
}

impl Cron for HubClient<'_> {
    /// One request; the object ticks with its own config (loaded from the same variables).
    fn tick(&self, _config: &Config, _now_ms: u64) -> TickReport {
        self.request(HubRequest::Tick).into_tick()
    }
}

/// `POST /admin/rollout` with `plan` at `now_ms` (`edge::rollout::start` → `queue`): reads the
/// projection, issues the start command, queues it under `rollout/commands/` and publishes the
/// projected routing document for the fleet. The next cron tick applies the command.
pub fn start_rollout<S: StateStore>(store: &S, plan: &Plan, now_ms: u64) -> Result<(), String> {
    let (projection, _warnings) =
        block_on(read_projection(store, now_ms)).map_err(|e| format!("{e:?}"))?;
    let rollout_id = RolloutId::try_new("r-sim-1").map_err(|e| e.to_string())?;
    let id = CommandId::try_new("c-sim-1").map_err(|e| e.to_string())?;
    let op = Operation::Start {
        rollout_id,
        plan: plan.clone(),
    };
    let (cmd, projected) = projection
        .issue(op, id, now_ms)
        .map_err(|e| e.message.clone())?;
    block_on(store.put(&cmd.key(), &cmd.to_json(), Some(COMMAND_MAX_AGE_MS / 1000)))
        .map_err(|e| e.to_string())?;
    // The admin isolate has not seen a closed quality gate (none has run yet).
    let routing = RoutingDoc::of(&projected.rollout, false, Writer::Operator, now_ms);
    let text = serde_json::to_string(&routing).map_err(|e| e.to_string())?;
    block_on(store.put(ROUTING_KEY, &text, None)).map_err(|e| e.to_string())
}

/// One cron minute at `now_ms`: the controller's tick, then the cron isolate's refresh
/// (`edge::admin::run_tick`). `config` is the cron isolate's configuration.
pub fn controller_step<S: Cron>(store: &S, config: &Config, now_ms: u64) -> TickReport {
    let tick = store.tick(config, now_ms);
    let _ = block_on(load_remote(store));
    tick
}

/// A short name for a hold (`HoldReason::describe`, the machine's one-line description), to
/// compare two controllers' decisions without their numbers.
fn hold(decision: &str) -> String {
    const KINDS: [(&str, &str); 6] = [
        ("hold: paused", "hold:paused"),
        ("hold: stage complete", "hold:awaiting_approval"),
        ("hold: failing", "hold:gates_failing"),
        ("hold: sample-ratio", "hold:sample_ratio_mismatch"),
        ("hold: not enough data", "hold:insufficient_data"),
        ("hold: gates pass", "hold:min_duration"),
    ];
    KINDS
        .iter()
        .find(|(p, _)| decision.starts_with(p))
        .map_or_else(|| decision.to_string(), |(_, l)| (*l).to_string())
}

/// The name of the rollout decision a tick of the real controller made: its transition, or
/// the evaluation's hold; `None` when it evaluated nothing (no completed pass, no stage).
pub fn tick_label(rep: &TickReport) -> Option<String> {
    if let Some(t) = rep.transitions.last() {
        return Some(
            match t.event {
                EventKind::StageAdvanced => "advance",
                EventKind::AwaitingApproval => "await_approval",
                EventKind::Completed => "complete",
                EventKind::RolledBack => "rollback",
                other => other.as_str(),
            }
            .to_string(),
        );
    }
    rep.decision.as_deref().map(hold)
}

/// The same name for a tick of the machine itself (the perfect-data controller's).
pub fn outcome_label(o: &TickOutcome) -> String {
    match o {
        TickOutcome::Inactive => "inactive".into(),
        TickOutcome::Hold(h) => hold(&h.describe()),
        TickOutcome::Advance(_) => "advance".into(),
        TickOutcome::AwaitApproval(_) => "await_approval".into(),
        TickOutcome::Complete(_) => "complete".into(),
        TickOutcome::Rollback(_) => "rollback".into(),
    }
}
