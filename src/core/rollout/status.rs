//! The `GET /admin/rollout` document: where the rollout stands and what it is waiting for.
//!
//! Why computed from the stored state and `now_ms` only (no fresh metrics): answering must
//! not cost a pass over every isolate's metric keys. The last tick's evaluation (at most a cron
//! period old, its time included) carries the gate numbers; elapsed time and duration progress
//! are computed at `now_ms`, so the page moves between ticks.

use crate::core::cohort::Percent;
use crate::core::rollout::command::CommandResult;
use crate::core::rollout::event::{RollbackReason, Transition};
use crate::core::rollout::gates::{GateName, GateStatus};
use crate::core::rollout::ids::RolloutId;
use crate::core::rollout::machine::Rollout;
use crate::core::rollout::pct;
use crate::core::rollout::phase::{Evaluation, Phase, PhaseName, Routing};
use crate::core::rollout::plan::Strategy;
use crate::core::rollout::stage::Stage;
use serde::Serialize;

/// One arm's progress toward the stage's `min_requests`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmProgress {
    pub observed: u64,
    pub required: u64,
    /// `observed / required`, capped at 1.
    pub progress: f64,
}

impl ArmProgress {
    fn new(observed: u64, required: u64) -> ArmProgress {
        ArmProgress {
            observed,
            required,
            progress: if required == 0 {
                1.0
            } else {
                (observed as f64 / required as f64).min(1.0)
            },
        }
    }
}

/// Requests progress per arm; `control` is `null` when no control arm is compared (A/B testing
/// off, or 100 %).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestsProgress {
    pub treatment: ArmProgress,
    pub control: Option<ArmProgress>,
}

/// How far the current stage is. Durations in ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageProgress {
    /// Active (unpaused) time in the stage, ms.
    pub elapsed: u64,
    /// The stage's minimum duration, ms.
    pub min_duration: u64,
    /// `elapsed / min_duration`, capped at 1 (1 for a zero-length stage).
    pub duration_progress: f64,
    pub requests_progress: RequestsProgress,
    /// Every gate of the last evaluation allows it and the minimum duration is up: the next
    /// tick advances (or, for a stage without `auto_advance`, waits for approval).
    pub ready_to_advance: bool,
    /// What stands in the way: gate names that fail or lack data, plus `min_duration` while
    /// time remains and `approval` while awaiting one, `paused` while paused.
    pub blocking_gates: Vec<String>,
}

/// The status document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutStatus {
    pub rollout_id: Option<RolloutId>,
    pub phase: PhaseName,
    pub strategy: Option<Strategy>,
    pub current_stage_index: Option<usize>,
    pub stage_count: Option<usize>,
    #[serde(with = "pct")]
    pub current_percentage: Percent,
    /// `"inactive"` (no rollout: the configured percentage applies), `"percentage"`, or
    /// `"rolled_back"` (everybody to Perplexity).
    pub routing: &'static str,
    pub started_at: Option<u64>,
    pub stage_started_at: Option<u64>,
    pub current_stage: Option<Stage>,
    /// The next stage's percentage, if there is one.
    pub next_percentage: Option<f64>,
    pub stage_progress: Option<StageProgress>,
    pub failure_streak: u32,
    pub failure_limit: Option<u32>,
    pub paused_at: Option<u64>,
    pub awaiting_since: Option<u64>,
    pub completed_at: Option<u64>,
    pub rolled_back_at: Option<u64>,
    pub rollback_reason: Option<RollbackReason>,
    /// The last tick's gates (with their numbers), evidence and decision.
    pub last_evaluation: Option<Evaluation>,
    /// Transitions, oldest first.
    pub history: Vec<Transition>,
    pub history_dropped: u64,
    pub recent_commands: Vec<CommandResult>,
    pub revision: u64,
    /// Epoch ms of the last change.
    pub updated_at: u64,
}

/// The status of `rollout` at `now_ms`.
pub fn status(rollout: &Rollout, now_ms: u64) -> RolloutStatus {
    let phase = rollout.phase();
    let run = phase.run();
    let mut s = RolloutStatus {
        rollout_id: run.map(|r| r.rollout_id.clone()),
        phase: phase.name(),
        strategy: run.map(|r| r.plan.strategy()),
        current_stage_index: run.map(|r| r.stage_index),
        stage_count: run.map(|r| r.plan.len()),
        current_percentage: rollout.current_percentage(),
        routing: match rollout.routing() {
            Routing::Inactive => "inactive",
            Routing::Percentage(_) => "percentage",
            Routing::RolledBack => "rolled_back",
        },
        started_at: run.map(|r| r.started_at),
        stage_started_at: run.map(|r| r.stage_started_at),
        current_stage: run.map(|r| r.stage().clone()),
        next_percentage: run.and_then(|r| {
            r.plan
                .stage(r.stage_index + 1)
                .map(|s| s.target_percentage.percent())
        }),
        stage_progress: None,
        failure_streak: run.map_or(0, |r| r.failure_streak),
        failure_limit: run.map(|r| r.plan.safety().failure_limit),
        paused_at: phase.paused_since(),
        awaiting_since: None,
        completed_at: None,
        rolled_back_at: None,
        rollback_reason: None,
        last_evaluation: run.and_then(|r| r.last_evaluation.clone()),
        history: rollout.history().to_vec(),
        history_dropped: rollout.history_dropped(),
        recent_commands: rollout.commands().recent().to_vec(),
        revision: rollout.revision(),
        updated_at: rollout.updated_at(),
    };
    match phase {
        Phase::AwaitingApproval { since, .. } => s.awaiting_since = Some(*since),
        Phase::Completed { at, .. } => s.completed_at = Some(*at),
        Phase::RolledBack { at, reason, .. } => {
            s.rolled_back_at = Some(*at);
            s.rollback_reason = Some(reason.clone());
        }
        _ => {}
    }
    if let (Some(run), PhaseName::Progressing | PhaseName::AwaitingApproval | PhaseName::Paused) =
        (run, phase.name())
    {
        let stage = run.stage();
        let elapsed = run.active_elapsed(now_ms, phase.paused_since());
        let min_duration = stage.min_duration_ms;
        let eval = run
            .last_evaluation
            .as_ref()
            .filter(|e| e.stage_index == run.stage_index);
        let required = stage.gates.min_requests;
        let control_compared = eval.is_none_or(|e| {
            e.gates
                .iter()
                .any(|g| g.name == GateName::MinSamplesControl && g.status != GateStatus::Skipped)
        });
        let (t, c) = eval.map_or((0, 0), |e| {
            (e.evidence.treatment.requests, e.evidence.control.requests)
        });
        let mut blocking: Vec<String> = match eval {
            Some(e) => e
                .gates
                .iter()
                .filter(|g| !g.status.allows_advance())
                .map(|g| g.name.as_str().to_string())
                .collect(),
            // Not evaluated yet in this stage: nothing is known to pass.
            None => vec!["not_evaluated".to_string()],
        };
        if elapsed < min_duration {
            blocking.push("min_duration".into());
        }
        let gates_ready = blocking.is_empty();
        match phase.name() {
            PhaseName::AwaitingApproval => blocking.push("approval".into()),
            PhaseName::Paused => blocking.push("paused".into()),
            _ => {}
        }
        s.stage_progress = Some(StageProgress {
            elapsed,
            min_duration,
            duration_progress: if min_duration == 0 {
                1.0
            } else {
                (elapsed as f64 / min_duration as f64).min(1.0)
            },
            requests_progress: RequestsProgress {
                treatment: ArmProgress::new(t, required),
                control: control_compared.then(|| ArmProgress::new(c, required)),
            },
            ready_to_advance: gates_ready && phase.name() != PhaseName::Paused,
            blocking_gates: blocking,
        });
    }
    s
}
