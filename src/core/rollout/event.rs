//! Transition records: one type for the state document's history and the webhook payload.
//!
//! Why one type: the operator who gets a "rolled back" webhook at 3 a.m. and the one who reads
//! `GET /admin/rollout` the next morning must see the same reason and the same numbers. Every
//! transition says what happened (`event`), who caused it (`trigger`: the controller's tick or
//! an operator's command, with its id), where the rollout went (phase, stage, percentage), why
//! (`reason`, one line) and the gate numbers behind it.

use crate::core::cohort::Percent;
use crate::core::json;
use crate::core::rollout::emergency::Breach;
use crate::core::rollout::gates::GateResult;
use crate::core::rollout::ids::{CommandId, RolloutId};
use crate::core::rollout::pct;
use crate::core::rollout::phase::PhaseName;
use serde::{Deserialize, Deserializer, Serialize};

/// Transitions kept in the state document (older ones are dropped and counted).
pub const HISTORY_LIMIT: usize = 20;

/// What happened (serde: snake_case; the webhook's `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Started,
    StageAdvanced,
    AwaitingApproval,
    Paused,
    Resumed,
    RolledBack,
    Completed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::StageAdvanced => "stage_advanced",
            EventKind::AwaitingApproval => "awaiting_approval",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::RolledBack => "rolled_back",
            EventKind::Completed => "completed",
        }
    }
}

/// Who caused a transition (serde: `{"by": "controller"}` or `{"by": "operator",
/// "command_id": "…"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Trigger {
    /// The controller's tick, on evidence.
    Controller,
    /// An operator's operation; `command_id` when it came through the command queue.
    Operator {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command_id: Option<CommandId>,
    },
}

/// Why a rollout was rolled back, with its numbers.
///
/// Serde shape: `{"kind": "operator", "note": "…"}`, `{"kind": "failure_limit", "streak": 3,
/// "limit": 3}`, `{"kind": "emergency", "breach": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RollbackReason {
    /// An operator's rollback.
    Operator {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Gates failed on `streak` consecutive ticks (≥ the plan's `failure_limit`).
    FailureLimit { streak: u32, limit: u32 },
    /// A severe breach, rolled back at once.
    Emergency { breach: Breach },
}

// Read by hand (`json::deserialize_with`): serde's derive for an internally tagged enum goes
// through its `Content` buffer, a whole extra deserializer in the wasm.
impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_with(d, |v| {
            let m = json::members(v, "internally tagged enum Trigger")?;
            match json::tag(m, "by")? {
                "controller" => Ok(Trigger::Controller),
                "operator" => {
                    #[derive(Deserialize)]
                    struct Operator {
                        #[serde(default)]
                        command_id: Option<CommandId>,
                    }
                    let o = Operator::deserialize(v)?;
                    Ok(Trigger::Operator {
                        command_id: o.command_id,
                    })
                }
                other => Err(json::unknown_variant(other, &["controller", "operator"])),
            }
        })
    }
}

impl<'de> Deserialize<'de> for RollbackReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_with(d, |v| {
            let m = json::members(v, "internally tagged enum RollbackReason")?;
            match json::tag(m, "kind")? {
                "operator" => {
                    #[derive(Deserialize)]
                    struct Operator {
                        #[serde(default)]
                        note: Option<String>,
                    }
                    Ok(RollbackReason::Operator {
                        note: Operator::deserialize(v)?.note,
                    })
                }
                "failure_limit" => {
                    #[derive(Deserialize)]
                    struct FailureLimit {
                        streak: u32,
                        limit: u32,
                    }
                    let f = FailureLimit::deserialize(v)?;
                    Ok(RollbackReason::FailureLimit {
                        streak: f.streak,
                        limit: f.limit,
                    })
                }
                "emergency" => {
                    #[derive(Deserialize)]
                    struct Emergency {
                        breach: Breach,
                    }
                    Ok(RollbackReason::Emergency {
                        breach: Emergency::deserialize(v)?.breach,
                    })
                }
                other => Err(json::unknown_variant(
                    other,
                    &["operator", "failure_limit", "emergency"],
                )),
            }
        })
    }
}

/// One transition: a history entry and a webhook payload.
///
/// Serde shape: `{"event": "rolled_back", "rollout_id": "…", "at": 1700000000000,
/// "from_phase": "progressing", "to_phase": "rolled_back", "stage_index": 2,
/// "from_percentage": 25.0, "to_percentage": 0.0, "trigger": {"by": "controller"},
/// "reason": "error_rate failed on 3 consecutive ticks: …", "gates": [GateResult…],
/// "rollback": {"kind": "failure_limit", …}}`. `at` is epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub event: EventKind,
    pub rollout_id: RolloutId,
    pub at: u64,
    pub from_phase: PhaseName,
    pub to_phase: PhaseName,
    /// The stage the rollout is in after the transition.
    pub stage_index: usize,
    #[serde(with = "pct")]
    pub from_percentage: Percent,
    #[serde(with = "pct")]
    pub to_percentage: Percent,
    pub trigger: Trigger,
    pub reason: String,
    /// The gate results behind the transition (skipped gates left out).
    #[serde(default)]
    pub gates: Vec<GateResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReason>,
}

impl Transition {
    /// The webhook body: the transition itself, as JSON.
    pub fn webhook_payload(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Appends to a bounded history, dropping (and counting) the oldest.
pub(crate) fn push_history(history: &mut Vec<Transition>, dropped: &mut u64, t: Transition) {
    history.push(t);
    if history.len() > HISTORY_LIMIT {
        let excess = history.len() - HISTORY_LIMIT;
        history.drain(..excess);
        *dropped = dropped.saturating_add(excess as u64);
    }
}
