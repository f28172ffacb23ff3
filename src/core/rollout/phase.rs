//! The six phases and the data each carries, plus the run a started rollout keeps.
//!
//! Why an enum carrying its data: a paused rollout has a pause start and a phase to return to,
//! an awaiting one has the time it began waiting, a rolled-back one has its reason; none of
//! those can exist in another phase, so they cannot be written down there by mistake (no
//! `paused_at` left over on a running rollout, no sentinel zeros).

use crate::core::cohort::Percent;
use crate::core::rollout::event::{EventKind, RollbackReason};
use crate::core::rollout::evidence::StageEvidence;
use crate::core::rollout::gates::{GateResult, GateStatus};
use crate::core::rollout::ids::RolloutId;
use crate::core::rollout::plan::Plan;
use crate::core::rollout::stage::Stage;
use serde::{Deserialize, Serialize};

/// A phase's name (serde: snake_case), for documents, errors and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseName {
    Idle,
    Progressing,
    AwaitingApproval,
    Paused,
    Completed,
    RolledBack,
}

impl PhaseName {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Idle => "idle",
            PhaseName::Progressing => "progressing",
            PhaseName::AwaitingApproval => "awaiting_approval",
            PhaseName::Paused => "paused",
            PhaseName::Completed => "completed",
            PhaseName::RolledBack => "rolled_back",
        }
    }
}

/// The last tick's evaluation: its gates, the evidence they saw and what the tick decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Epoch ms of the tick.
    pub at: u64,
    pub stage_index: usize,
    pub gates: Vec<GateResult>,
    pub evidence: StageEvidence,
    /// What the tick decided, in one line.
    pub decision: String,
}

/// A running (or finished) rollout's data: the plan and where it stands in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub rollout_id: RolloutId,
    pub plan: Plan,
    /// Epoch ms of the start.
    pub started_at: u64,
    /// Always a valid index into `plan` (checked wherever it is set or loaded).
    pub stage_index: usize,
    /// Epoch ms at which the current stage began.
    pub stage_started_at: u64,
    /// Paused time in the current stage from pauses that have ended.
    pub stage_paused_ms: u64,
    /// Consecutive failing ticks in this stage.
    pub failure_streak: u32,
    /// When the streak last grew.
    pub last_failure_at: Option<u64>,
    pub last_evaluation: Option<Evaluation>,
}

impl Run {
    pub(crate) fn new(rollout_id: RolloutId, plan: Plan, now_ms: u64) -> Run {
        Run {
            rollout_id,
            plan,
            started_at: now_ms,
            stage_index: 0,
            stage_started_at: now_ms,
            stage_paused_ms: 0,
            failure_streak: 0,
            last_failure_at: None,
            last_evaluation: None,
        }
    }

    /// The current stage.
    pub fn stage(&self) -> &Stage {
        let stages = self.plan.stages();
        // A plan is never empty and `stage_index` is kept in range; clamp regardless.
        &stages[self.stage_index.min(stages.len().saturating_sub(1))]
    }

    pub fn is_last_stage(&self) -> bool {
        self.stage_index + 1 >= self.plan.len()
    }

    /// Active time in the current stage at `now_ms`: wall time since the stage began minus
    /// paused time (including a pause still running since `paused_since`).
    pub fn active_elapsed(&self, now_ms: u64, paused_since: Option<u64>) -> u64 {
        let wall = now_ms.saturating_sub(self.stage_started_at);
        let running_pause = paused_since.map_or(0, |s| now_ms.saturating_sub(s));
        wall.saturating_sub(self.stage_paused_ms.saturating_add(running_pause))
    }

    fn enter_stage(&mut self, index: usize, now_ms: u64) {
        self.stage_index = index;
        self.stage_started_at = now_ms;
        self.stage_paused_ms = 0;
        self.failure_streak = 0;
        self.last_failure_at = None;
        self.last_evaluation = None;
    }

    /// The last evaluation's gates that were not skipped (what a transition reports).
    pub(crate) fn reported_gates(&self) -> Vec<GateResult> {
        self.last_evaluation
            .as_ref()
            .map(|e| {
                e.gates
                    .iter()
                    .filter(|g| g.status != GateStatus::Skipped)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Where a paused rollout returns on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeTo {
    Progressing,
    AwaitingApproval { since: u64 },
}

/// The six phases, each carrying its data.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// No rollout has been started (the configured `LIGHTRAG_ROLLOUT_PERCENTAGE` applies).
    Idle,
    Progressing(Run),
    /// The stage is done and waits for an operator's approve (since epoch ms `since`).
    AwaitingApproval {
        run: Run,
        since: u64,
    },
    /// Promotion stopped by an operator at `since`.
    Paused {
        run: Run,
        since: u64,
        resume_to: ResumeTo,
    },
    /// Every stage passed; the final percentage stays.
    Completed {
        run: Run,
        at: u64,
    },
    /// Everybody to Perplexity until a new start.
    RolledBack {
        run: Run,
        at: u64,
        reason: RollbackReason,
    },
}

impl Phase {
    pub fn name(&self) -> PhaseName {
        match self {
            Phase::Idle => PhaseName::Idle,
            Phase::Progressing(_) => PhaseName::Progressing,
            Phase::AwaitingApproval { .. } => PhaseName::AwaitingApproval,
            Phase::Paused { .. } => PhaseName::Paused,
            Phase::Completed { .. } => PhaseName::Completed,
            Phase::RolledBack { .. } => PhaseName::RolledBack,
        }
    }

    pub fn run(&self) -> Option<&Run> {
        match self {
            Phase::Idle => None,
            Phase::Progressing(run)
            | Phase::AwaitingApproval { run, .. }
            | Phase::Paused { run, .. }
            | Phase::Completed { run, .. }
            | Phase::RolledBack { run, .. } => Some(run),
        }
    }

    /// The share routed to LightRAG in this phase.
    pub fn percentage(&self) -> Percent {
        match self {
            Phase::Idle | Phase::RolledBack { .. } => Percent::ZERO,
            Phase::Progressing(run)
            | Phase::AwaitingApproval { run, .. }
            | Phase::Paused { run, .. }
            | Phase::Completed { run, .. } => run.stage().target_percentage,
        }
    }

    /// Epoch ms since which the phase has been paused, if it is.
    pub fn paused_since(&self) -> Option<u64> {
        match self {
            Phase::Paused { since, .. } => Some(*since),
            _ => None,
        }
    }
}

/// What the router should do with the rollout's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// No rollout has been started: route by the configured percentage.
    Inactive,
    /// Route by this percentage (running, paused, awaiting approval, or completed).
    Percentage(Percent),
    /// Rolled back: everybody to Perplexity, forced users included (docs/architecture.md#the-routing-decision, step 3).
    RolledBack,
}

/// Moves `run` to its next stage, or completes it after the last.
pub(crate) fn next_stage(mut run: Run, now: u64, why: &str) -> (Phase, EventKind, String) {
    if run.is_last_stage() {
        let line = format!(
            "{why}: completed at {} %",
            run.stage().target_percentage.percent()
        );
        (
            Phase::Completed { run, at: now },
            EventKind::Completed,
            line,
        )
    } else {
        let from = run.stage().target_percentage.percent();
        run.enter_stage(run.stage_index + 1, now);
        let line = format!(
            "{why}: stage {} of {}, {from} % → {} %",
            run.stage_index + 1,
            run.plan.len(),
            run.stage().target_percentage.percent()
        );
        (Phase::Progressing(run), EventKind::StageAdvanced, line)
    }
}
