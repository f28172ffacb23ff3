//! Operator operations: start, approve, advance, pause, resume, rollback.
//!
//! Why each returns a transition or a typed error: the admin API answers 409 with the error's
//! message when the phase does not allow the operation (approve while not awaiting approval,
//! resume while not paused, a second start while one runs), and the transition is both the
//! history entry and the webhook payload. Rules worth knowing:
//! - `advance` skips the rest of the stage's wait, whatever the gates say; the gates at that
//!   moment are reported with the transition. It is refused while paused (resume first).
//! - `approve` only works while awaiting approval; `advance` there does the same.
//! - `pause` stops promotion and the stage clock; `resume` returns to the phase it paused.
//! - `rollback` works in every running phase and on a completed rollout; only a new `start`
//!   leaves the rolled-back phase.

use crate::core::rollout::error::OpError;
use crate::core::rollout::event::{EventKind, RollbackReason, Transition, Trigger};
use crate::core::rollout::ids::{CommandId, RolloutId};
use crate::core::rollout::machine::{Change, Rollout};
use crate::core::rollout::phase::{next_stage, Phase, ResumeTo, Run};
use crate::core::rollout::plan::Plan;
use serde::{Deserialize, Serialize};

/// Longest operator note kept with a rollback.
pub const MAX_NOTE_CHARS: usize = 200;

/// An operation's name (serde: snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Start,
    Approve,
    Advance,
    Pause,
    Resume,
    Rollback,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Start => "start",
            OpKind::Approve => "approve",
            OpKind::Advance => "advance",
            OpKind::Pause => "pause",
            OpKind::Resume => "resume",
            OpKind::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        match s {
            "start" => Some(OpKind::Start),
            "approve" => Some(OpKind::Approve),
            "advance" => Some(OpKind::Advance),
            "pause" => Some(OpKind::Pause),
            "resume" => Some(OpKind::Resume),
            "rollback" => Some(OpKind::Rollback),
            _ => None,
        }
    }
}

/// An operator's operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Start a new rollout (from idle, completed or rolled back).
    Start { rollout_id: RolloutId, plan: Plan },
    /// Let a stage that waits for approval advance.
    Approve,
    /// Skip the rest of the current stage's wait (gates are still reported with it).
    Advance,
    /// Stop promotion; the stage clock stops too.
    Pause,
    /// Continue a paused rollout where it was.
    Resume,
    /// Everybody to Perplexity, now; stays rolled back until a new start.
    Rollback { note: Option<String> },
}

impl Operation {
    pub fn kind(&self) -> OpKind {
        match self {
            Operation::Start { .. } => OpKind::Start,
            Operation::Approve => OpKind::Approve,
            Operation::Advance => OpKind::Advance,
            Operation::Pause => OpKind::Pause,
            Operation::Resume => OpKind::Resume,
            Operation::Rollback { .. } => OpKind::Rollback,
        }
    }
}

impl Rollout {
    /// Applies an operator's operation at `now_ms`.
    pub fn apply(&mut self, op: Operation, now_ms: u64) -> Result<Transition, OpError> {
        self.apply_with(op, now_ms, Trigger::Operator { command_id: None })
    }

    pub(crate) fn apply_command(
        &mut self,
        op: Operation,
        now_ms: u64,
        id: &CommandId,
    ) -> Result<Transition, OpError> {
        self.apply_with(
            op,
            now_ms,
            Trigger::Operator {
                command_id: Some(id.clone()),
            },
        )
    }

    fn apply_with(
        &mut self,
        op: Operation,
        now: u64,
        trigger: Trigger,
    ) -> Result<Transition, OpError> {
        let kind = op.kind();
        let from_phase = self.phase.name();
        let from_percentage = self.phase.percentage();
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        let change = |event, reason: String, gates, rollback| Change {
            event,
            from_phase,
            from_percentage,
            trigger: trigger.clone(),
            reason,
            gates,
            rollback,
        };
        let wrong = |phase: Phase, wanted: &str| {
            (phase, Err(OpError::wrong_phase(kind, from_phase, wanted)))
        };
        let (phase, result): (Phase, Result<Change, OpError>) = match (op, phase) {
            (
                Operation::Start { rollout_id, plan },
                Phase::Idle | Phase::Completed { .. } | Phase::RolledBack { .. },
            ) => {
                let reason = format!(
                    "started a {} rollout: stage 1 of {} at {} %",
                    plan.strategy().as_str(),
                    plan.len(),
                    plan.stages()[0].target_percentage.percent()
                );
                let run = Run::new(rollout_id, plan, now);
                (
                    Phase::Progressing(run),
                    Ok(change(EventKind::Started, reason, Vec::new(), None)),
                )
            }
            (Operation::Start { .. }, p) => wrong(
                p,
                "roll it back (or let it complete) before starting another",
            ),
            (Operation::Approve, Phase::AwaitingApproval { run, .. }) => {
                let gates = run.reported_gates();
                let (phase, event, reason) = next_stage(run, now, "approved");
                (phase, Ok(change(event, reason, gates, None)))
            }
            (Operation::Approve, p) => wrong(
                p,
                "only a rollout awaiting approval can be approved (use advance to skip a stage's wait)",
            ),
            (Operation::Advance, Phase::Progressing(run) | Phase::AwaitingApproval { run, .. }) => {
                let gates = run.reported_gates();
                let (phase, event, reason) = next_stage(run, now, "advanced by an operator");
                (phase, Ok(change(event, reason, gates, None)))
            }
            (Operation::Advance, p @ Phase::Paused { .. }) => wrong(p, "resume it first"),
            (Operation::Advance, p) => wrong(p, "only a running rollout can advance"),
            (Operation::Pause, Phase::Progressing(run)) => (
                Phase::Paused {
                    run,
                    since: now,
                    resume_to: ResumeTo::Progressing,
                },
                Ok(change(EventKind::Paused, "paused by an operator".into(), Vec::new(), None)),
            ),
            (Operation::Pause, Phase::AwaitingApproval { run, since }) => (
                Phase::Paused {
                    run,
                    since: now,
                    resume_to: ResumeTo::AwaitingApproval { since },
                },
                Ok(change(EventKind::Paused, "paused by an operator".into(), Vec::new(), None)),
            ),
            (Operation::Pause, p) => wrong(p, "only a running rollout can be paused"),
            (
                Operation::Resume,
                Phase::Paused {
                    mut run,
                    since,
                    resume_to,
                },
            ) => {
                let paused = now.saturating_sub(since);
                run.stage_paused_ms = run.stage_paused_ms.saturating_add(paused);
                let reason = format!(
                    "resumed by an operator after {} min paused (not counted toward the stage's minimum duration)",
                    paused / 60_000
                );
                let phase = match resume_to {
                    ResumeTo::Progressing => Phase::Progressing(run),
                    ResumeTo::AwaitingApproval { since } => Phase::AwaitingApproval { run, since },
                };
                (phase, Ok(change(EventKind::Resumed, reason, Vec::new(), None)))
            }
            (Operation::Resume, p) => wrong(p, "only a paused rollout can be resumed"),
            (
                Operation::Rollback { note },
                Phase::Progressing(run)
                | Phase::AwaitingApproval { run, .. }
                | Phase::Paused { run, .. }
                | Phase::Completed { run, .. },
            ) => {
                let note: Option<String> = note
                    .map(|n| n.chars().take(MAX_NOTE_CHARS).collect::<String>())
                    .filter(|n| !n.trim().is_empty());
                let reason = match &note {
                    Some(n) => format!("rolled back by an operator: {n}"),
                    None => "rolled back by an operator".into(),
                };
                let gates = run.reported_gates();
                let why = RollbackReason::Operator { note };
                (
                    Phase::RolledBack {
                        run,
                        at: now,
                        reason: why.clone(),
                    },
                    Ok(change(EventKind::RolledBack, reason, gates, Some(why))),
                )
            }
            (Operation::Rollback { .. }, p) => wrong(
                p,
                "there is no running or completed rollout to roll back",
            ),
        };
        self.phase = phase;
        let change = result?;
        Ok(self.record(change, now))
    }
}
