//! The rollout state machine: phases, operator operations and the controller's tick.
//!
//! ```text
//!            start                  tick: ready, stage needs approval
//!   idle ─────────────▶ progressing ───────────────────────────────▶ awaiting_approval
//!    ▲                   │  ▲   │ tick: ready, auto_advance → next stage     │ approve / advance
//!    │                   │  │   └──────────────▶ (progressing, stage + 1)◀───┘
//!    │          pause ▼  │  │ resume                     │ last stage done
//!    │             paused ──┘                            ▼
//!    │                                               completed
//!    │   rollback (operator), failure_limit failing ticks, emergency breach
//!    └── any running phase (and completed, by an operator) ──▶ rolled_back ──start──▶ …
//! ```
//!
//! Decisions (each tick, in this order; the edge calls [`Rollout::tick`] once per cron run,
//! after applying queued operator commands):
//! 1. Not running (idle, completed, rolled back) → nothing to do. A rolled-back rollout stays
//!    at 0 % whatever the metrics do afterwards: only a new `start` moves it (no flapping).
//! 2. Emergency breach ([`crate::core::rollout::emergency`]) → roll back at once, in any running phase —
//!    paused included: a pause stops promotion, not protection.
//! 3. Paused → hold. Failures are not counted while paused, and paused time does not count
//!    toward the stage's `min_duration` (the stage clock stops; see [`Run::active_elapsed`]).
//! 4. A gate that counts toward rollback failed → the failure streak grows by one (at most once
//!    per [`FAILURE_SPACING_MS`], so admin-triggered extra ticks cannot hurry a rollback);
//!    at `failure_limit` → roll back, else hold. A tick without such a failure resets the
//!    streak: the limit is on *consecutive* failing ticks.
//! 5. Awaiting approval → hold (its gates keep being watched, as above).
//! 6. Sample-ratio mismatch → hold (the split is wrong; never a rollback).
//! 7. A gate without enough data → hold, naming it.
//! 8. Less than `min_duration` of active time in the stage → hold, saying how long is left.
//! 9. Ready: advance to the next stage (or complete after the last), or, if the stage does
//!    not `auto_advance`, wait for approval.
//!
//! "Gates pass for the stage's duration" means: the evidence of the whole stage (cumulative
//! since the stage started) passes every gate at a tick at least `min_duration` of active time
//! into the stage. Failures on the way are tolerated below `failure_limit` consecutive ticks.

use crate::core::cohort::Percent;
use crate::core::rollout::command::CommandLog;
use crate::core::rollout::event::{push_history, EventKind, RollbackReason, Transition, Trigger};
use crate::core::rollout::gates::GateResult;
use crate::core::rollout::ids::RolloutId;
use crate::core::rollout::phase::{Phase, PhaseName, Routing, Run};

pub use crate::core::rollout::operation::{OpKind, Operation};
pub use crate::core::rollout::phase::{Evaluation, ResumeTo};
pub use crate::core::rollout::tick::{HoldReason, TickInput, TickOutcome, FAILURE_SPACING_MS};

/// The rollout: its phase, a bounded transition history, the operator commands it has
/// applied, and a revision that grows with every change (for the edge's writes and ETags).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub(crate) phase: Phase,
    pub(crate) revision: u64,
    /// Epoch ms of the last change (never moves backwards).
    pub(crate) updated_at: u64,
    pub(crate) history: Vec<Transition>,
    pub(crate) history_dropped: u64,
    pub(crate) commands: CommandLog,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout::new()
    }
}

/// The parts of a transition that vary.
pub(crate) struct Change {
    pub(crate) event: EventKind,
    pub(crate) from_phase: PhaseName,
    pub(crate) from_percentage: Percent,
    pub(crate) trigger: Trigger,
    pub(crate) reason: String,
    pub(crate) gates: Vec<GateResult>,
    pub(crate) rollback: Option<RollbackReason>,
}

impl Rollout {
    /// An idle rollout.
    pub fn new() -> Rollout {
        Rollout {
            phase: Phase::Idle,
            revision: 0,
            updated_at: 0,
            history: Vec::new(),
            history_dropped: 0,
            commands: CommandLog::default(),
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn phase_name(&self) -> PhaseName {
        self.phase.name()
    }

    pub fn run(&self) -> Option<&Run> {
        self.phase.run()
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Oldest first, at most [`crate::core::rollout::event::HISTORY_LIMIT`].
    pub fn history(&self) -> &[Transition] {
        &self.history
    }

    pub fn history_dropped(&self) -> u64 {
        self.history_dropped
    }

    pub fn commands(&self) -> &CommandLog {
        &self.commands
    }

    /// The share routed to LightRAG (0 when idle or rolled back).
    pub fn current_percentage(&self) -> Percent {
        self.phase.percentage()
    }

    /// What the router does with this state.
    pub fn routing(&self) -> Routing {
        match &self.phase {
            Phase::Idle => Routing::Inactive,
            Phase::RolledBack { .. } => Routing::RolledBack,
            p => Routing::Percentage(p.percentage()),
        }
    }

    /// Builds the transition for the current phase, records it and bumps the revision.
    pub(crate) fn record(&mut self, c: Change, now: u64) -> Transition {
        let (rollout_id, stage_index) = match self.phase.run() {
            Some(run) => (run.rollout_id.clone(), run.stage_index),
            // Unreachable (every transition lands in a phase with a run); keep a valid record.
            None => (RolloutId::trusted("none"), 0),
        };
        let t = Transition {
            event: c.event,
            rollout_id,
            at: now,
            from_phase: c.from_phase,
            to_phase: self.phase.name(),
            stage_index,
            from_percentage: c.from_percentage,
            to_percentage: self.phase.percentage(),
            trigger: c.trigger,
            reason: c.reason,
            gates: c.gates,
            rollback: c.rollback,
        };
        push_history(&mut self.history, &mut self.history_dropped, t.clone());
        self.bump(now);
        t
    }

    /// Records a change at `now`: a new revision, and `updated_at` moved forward.
    pub(crate) fn bump(&mut self, now: u64) {
        self.revision = self.revision.saturating_add(1);
        self.updated_at = self.updated_at.max(now);
    }

    /// Epoch ms of the last change (0 for a rollout never changed).
    pub fn updated_at(&self) -> u64 {
        self.updated_at
    }
}
