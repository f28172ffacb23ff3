//! The rollout's stored document (KV `rollout/…`): versioned JSON that survives a restart with
//! the stage clock intact.
//!
//! Why a flat, redundant document with a strict reader: operators read it (`wrangler kv key
//! get`), so it names things the way the status page does (`phase`, `current_stage_index`,
//! `current_percentage`, `stage_started_at`, all times in epoch ms); and the worker must never
//! route on a document it half-understood. So reading re-validates everything — the plan
//! through [`Plan::try_new`], the ids, the fields each phase needs, that the stored percentage
//! is the one the phase and stage imply — and any failure is a [`StateError`], never a default
//! state: defaulting would silently forget a rollback. A document from a newer schema
//! (`version` > [`STATE_VERSION`]) is refused the same way.
//!
//! The stage clock is `stage_started_at` plus `stage_paused_ms` (ended pauses) plus
//! `paused_at` (a pause in progress); since all three are absolute or accumulated, a restart
//! resumes the stage exactly where it was.

use crate::core::cohort::Percent;
use crate::core::rollout::command::CommandLog;
use crate::core::rollout::error::StateError;
use crate::core::rollout::event::{RollbackReason, Transition, HISTORY_LIMIT};
use crate::core::rollout::ids::RolloutId;
use crate::core::rollout::machine::Rollout;
use crate::core::rollout::pct;
use crate::core::rollout::phase::{Evaluation, Phase, PhaseName, ResumeTo, Run};
use crate::core::rollout::plan::{Plan, Strategy};
use serde::{Deserialize, Serialize};

/// The schema version this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// Serde shape of the document; see the module docs.
#[derive(Debug, Serialize, Deserialize)]
struct StateDoc {
    version: u32,
    revision: u64,
    #[serde(default)]
    updated_at: u64,
    phase: PhaseName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout_id: Option<RolloutId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strategy: Option<Strategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_stage_index: Option<usize>,
    #[serde(with = "pct")]
    current_percentage: Percent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stage_started_at: Option<u64>,
    #[serde(default)]
    stage_paused_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paused_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume_to: Option<PhaseName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    awaiting_since: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rolled_back_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollback_reason: Option<RollbackReason>,
    #[serde(default)]
    failure_streak: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_failure_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_evaluation: Option<Evaluation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan: Option<Plan>,
    #[serde(default)]
    history: Vec<Transition>,
    #[serde(default)]
    history_dropped: u64,
    #[serde(default)]
    commands: CommandLog,
}

fn need<T>(v: Option<T>, field: &str, phase: PhaseName) -> Result<T, StateError> {
    v.ok_or_else(|| {
        StateError::new(format!(
            "rollout state: phase {} needs {field}",
            phase.as_str()
        ))
    })
}

impl Rollout {
    /// The stored document.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_doc()).unwrap_or_default()
    }

    /// The stored document, pretty-printed (for operators and tests).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_doc()).unwrap_or_default()
    }

    /// Reads a stored document; anything corrupt or inconsistent is an error.
    pub fn from_json(s: &str) -> Result<Rollout, StateError> {
        let doc: StateDoc = crate::core::json::from_text(s)
            .map_err(|e| StateError::new(format!("rollout state: {e}")))?;
        Rollout::from_doc(doc)
    }

    fn to_doc(&self) -> StateDoc {
        let mut d = StateDoc {
            version: STATE_VERSION,
            revision: self.revision,
            updated_at: self.updated_at,
            phase: self.phase.name(),
            rollout_id: None,
            strategy: None,
            current_stage_index: None,
            current_percentage: self.current_percentage(),
            started_at: None,
            stage_started_at: None,
            stage_paused_ms: 0,
            paused_at: None,
            resume_to: None,
            awaiting_since: None,
            completed_at: None,
            rolled_back_at: None,
            rollback_reason: None,
            failure_streak: 0,
            last_failure_at: None,
            last_evaluation: None,
            plan: None,
            history: self.history.clone(),
            history_dropped: self.history_dropped,
            commands: self.commands.clone(),
        };
        if let Some(run) = self.phase.run() {
            d.rollout_id = Some(run.rollout_id.clone());
            d.strategy = Some(run.plan.strategy());
            d.current_stage_index = Some(run.stage_index);
            d.started_at = Some(run.started_at);
            d.stage_started_at = Some(run.stage_started_at);
            d.stage_paused_ms = run.stage_paused_ms;
            d.failure_streak = run.failure_streak;
            d.last_failure_at = run.last_failure_at;
            d.last_evaluation = run.last_evaluation.clone();
            d.plan = Some(run.plan.clone());
        }
        match &self.phase {
            Phase::Idle | Phase::Progressing(_) => {}
            Phase::AwaitingApproval { since, .. } => d.awaiting_since = Some(*since),
            Phase::Paused {
                since, resume_to, ..
            } => {
                d.paused_at = Some(*since);
                match resume_to {
                    ResumeTo::Progressing => d.resume_to = Some(PhaseName::Progressing),
                    ResumeTo::AwaitingApproval { since } => {
                        d.resume_to = Some(PhaseName::AwaitingApproval);
                        d.awaiting_since = Some(*since);
                    }
                }
            }
            Phase::Completed { at, .. } => d.completed_at = Some(*at),
            Phase::RolledBack { at, reason, .. } => {
                d.rolled_back_at = Some(*at);
                d.rollback_reason = Some(reason.clone());
            }
        }
        d
    }

    fn from_doc(d: StateDoc) -> Result<Rollout, StateError> {
        if d.version != STATE_VERSION {
            return Err(StateError::new(format!(
                "rollout state: unsupported version {} (this build reads {STATE_VERSION})",
                d.version
            )));
        }
        if d.history.len() > HISTORY_LIMIT {
            return Err(StateError::new(format!(
                "rollout state: history holds {} entries, at most {HISTORY_LIMIT} are written",
                d.history.len()
            )));
        }
        // The machine's clock never runs behind a time the document records: commands and
        // ticks are clamped to `updated_at`, so a document whose `updated_at` is missing (it
        // defaults to 0) or older than its own stage start could otherwise start a stage before
        // the rollout and write a document this reader refuses (found by `make fuzz`, target
        // `kv_rollout_state`).
        let latest = [
            d.started_at,
            d.stage_started_at,
            d.paused_at,
            d.awaiting_since,
            d.completed_at,
            d.rolled_back_at,
        ]
        .into_iter()
        .flatten()
        .fold(d.updated_at, u64::max);
        let name = d.phase;
        let phase = if name == PhaseName::Idle {
            Phase::Idle
        } else {
            let plan = need(d.plan, "plan", name)?;
            let index = need(d.current_stage_index, "current_stage_index", name)?;
            if index >= plan.len() {
                return Err(StateError::new(format!(
                    "rollout state: current_stage_index {index} is outside the plan's {} stages",
                    plan.len()
                )));
            }
            if let Some(s) = d.strategy {
                if s != plan.strategy() {
                    return Err(StateError::new(format!(
                        "rollout state: strategy {} does not match the plan's {}",
                        s.as_str(),
                        plan.strategy().as_str()
                    )));
                }
            }
            let started_at = need(d.started_at, "started_at", name)?;
            let stage_started_at = need(d.stage_started_at, "stage_started_at", name)?;
            if stage_started_at < started_at {
                return Err(StateError::new(
                    "rollout state: stage_started_at is before started_at",
                ));
            }
            let run = Run {
                rollout_id: need(d.rollout_id, "rollout_id", name)?,
                plan,
                started_at,
                stage_index: index,
                stage_started_at,
                stage_paused_ms: d.stage_paused_ms,
                failure_streak: d.failure_streak,
                last_failure_at: d.last_failure_at,
                last_evaluation: d.last_evaluation,
            };
            match name {
                PhaseName::Idle | PhaseName::Progressing => Phase::Progressing(run),
                PhaseName::AwaitingApproval => Phase::AwaitingApproval {
                    run,
                    since: need(d.awaiting_since, "awaiting_since", name)?,
                },
                PhaseName::Paused => {
                    let resume_to = match need(d.resume_to, "resume_to", name)? {
                        PhaseName::Progressing => ResumeTo::Progressing,
                        PhaseName::AwaitingApproval => ResumeTo::AwaitingApproval {
                            since: need(d.awaiting_since, "awaiting_since", name)?,
                        },
                        other => {
                            return Err(StateError::new(format!(
                                "rollout state: a paused rollout cannot resume to {}",
                                other.as_str()
                            )))
                        }
                    };
                    Phase::Paused {
                        run,
                        since: need(d.paused_at, "paused_at", name)?,
                        resume_to,
                    }
                }
                PhaseName::Completed => Phase::Completed {
                    run,
                    at: need(d.completed_at, "completed_at", name)?,
                },
                PhaseName::RolledBack => Phase::RolledBack {
                    run,
                    at: need(d.rolled_back_at, "rolled_back_at", name)?,
                    reason: need(d.rollback_reason, "rollback_reason", name)?,
                },
            }
        };
        if phase.percentage() != d.current_percentage {
            return Err(StateError::new(format!(
                "rollout state: current_percentage {} does not match phase {} (expected {})",
                d.current_percentage.percent(),
                name.as_str(),
                phase.percentage().percent()
            )));
        }
        Ok(Rollout {
            phase,
            revision: d.revision,
            updated_at: latest,
            history: d.history,
            history_dropped: d.history_dropped,
            commands: d.commands,
        })
    }
}
