//! The controller's tick: this stage's evidence → hold, advance, await approval, complete or
//! roll back. The order of decisions is in the `machine` module docs.

use crate::core::rollout::emergency::emergency;
use crate::core::rollout::event::{EventKind, RollbackReason, Transition, Trigger};
use crate::core::rollout::evidence::StageEvidence;
use crate::core::rollout::gates::{
    evaluate, GateInput, GateName, GateResult, GateStatus, Switches,
};
use crate::core::rollout::machine::{Change, Rollout};
use crate::core::rollout::phase::{next_stage, Evaluation, Phase, ResumeTo, Run};
use crate::core::rollout::stage::Stage;
use serde::{Deserialize, Serialize};

/// Two failing ticks closer than this count once toward the failure limit.
pub const FAILURE_SPACING_MS: u64 = 30_000;

/// Why a tick held the stage.
///
/// Serde shape: `{"kind": "insufficient_data", "gates": ["error_rate", …]}` etc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldReason {
    Paused,
    AwaitingApproval,
    GatesFailing {
        gates: Vec<GateName>,
        streak: u32,
        limit: u32,
    },
    SampleRatioMismatch {
        p_value: Option<f64>,
    },
    InsufficientData {
        gates: Vec<GateName>,
    },
    MinDuration {
        remaining_ms: u64,
    },
}

fn names(gates: &[GateName]) -> String {
    gates
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl HoldReason {
    pub fn describe(&self) -> String {
        match self {
            HoldReason::Paused => "hold: paused by an operator".into(),
            HoldReason::AwaitingApproval => {
                "hold: stage complete, waiting for an operator's approve".into()
            }
            HoldReason::GatesFailing {
                gates,
                streak,
                limit,
            } => format!(
                "hold: failing {} (failing tick {streak} of {limit} before rollback)",
                names(gates)
            ),
            HoldReason::SampleRatioMismatch { p_value } => format!(
                "hold: sample-ratio mismatch (p {}) — the split is not what the rollout expects; check routing and metrics",
                p_value.map_or("n/a".into(), |p| format!("{p:.2e}"))
            ),
            HoldReason::InsufficientData { gates } => {
                format!("hold: not enough data yet for {}", names(gates))
            }
            HoldReason::MinDuration { remaining_ms } => format!(
                "hold: gates pass; {} min left of the stage's minimum duration",
                remaining_ms.div_ceil(60_000)
            ),
        }
    }
}

/// What a tick did.
#[derive(Debug, Clone, PartialEq)]
pub enum TickOutcome {
    /// Idle, completed or rolled back: nothing to evaluate.
    Inactive,
    Hold(HoldReason),
    Advance(Transition),
    AwaitApproval(Transition),
    Complete(Transition),
    Rollback(Transition),
}

impl TickOutcome {
    pub fn transition(&self) -> Option<&Transition> {
        match self {
            TickOutcome::Inactive | TickOutcome::Hold(_) => None,
            TickOutcome::Advance(t)
            | TickOutcome::AwaitApproval(t)
            | TickOutcome::Complete(t)
            | TickOutcome::Rollback(t) => Some(t),
        }
    }
}

/// What a tick looks at.
#[derive(Debug, Clone, Copy)]
pub struct TickInput<'a> {
    pub evidence: &'a StageEvidence,
    pub switches: &'a Switches,
    pub now_ms: u64,
}

impl Rollout {
    /// One controller tick on this stage's evidence. See the module docs for the order of
    /// decisions.
    pub fn tick(&mut self, input: &TickInput<'_>) -> TickOutcome {
        // The machine's clock never runs backwards: a cron host whose clock is behind the last
        // writer's ticks at the last change's time (as commands are clamped). Otherwise a stage
        // could start before the rollout did, and the stored document would no longer read back
        // (found by `make fuzz`, target `kv_rollout_state`).
        let now = input.now_ms.max(self.updated_at);
        let from_phase = self.phase.name();
        let from_percentage = self.phase.percentage();
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        let (mut run, state) = match phase {
            Phase::Progressing(run) => (run, Running::Progressing),
            Phase::AwaitingApproval { run, since } => (run, Running::Awaiting { since }),
            Phase::Paused {
                run,
                since,
                resume_to,
            } => (run, Running::Paused { since, resume_to }),
            other => {
                self.phase = other;
                return TickOutcome::Inactive;
            }
        };
        let stage = run.stage().clone();
        let safety = run.plan.safety().clone();
        let gates = evaluate(&GateInput {
            stage: &stage,
            evidence: input.evidence,
            switches: input.switches,
        });
        let decision = decide(Decide {
            run: &mut run,
            state,
            stage: &stage,
            gates: &gates,
            breach: emergency(&safety, input.evidence, input.switches),
            now,
        });
        run.last_evaluation = Some(Evaluation {
            at: now,
            stage_index: run.stage_index,
            gates: gates.clone(),
            evidence: input.evidence.tidied(),
            decision: decision.describe(),
        });
        let reported: Vec<GateResult> = run.reported_gates();
        let change = |event, reason: String, rollback| Change {
            event,
            from_phase,
            from_percentage,
            trigger: Trigger::Controller,
            reason,
            gates: reported.clone(),
            rollback,
        };
        match decision {
            Decision::Hold(h) => {
                self.phase = state.rebuild(run);
                self.bump(now);
                TickOutcome::Hold(h)
            }
            Decision::Rollback(reason) => {
                let line = match &reason {
                    RollbackReason::Emergency { breach } => breach.describe(),
                    RollbackReason::FailureLimit { streak, limit } => format!(
                        "gates failed on {streak} consecutive ticks (limit {limit}): {}",
                        failing_notes(&gates)
                    ),
                    RollbackReason::Operator { .. } => "rolled back".into(),
                };
                self.phase = Phase::RolledBack {
                    run,
                    at: now,
                    reason: reason.clone(),
                };
                TickOutcome::Rollback(
                    self.record(change(EventKind::RolledBack, line, Some(reason)), now),
                )
            }
            Decision::AwaitApproval => {
                let line = format!(
                    "stage {} of {} at {} % passed its gates; waiting for an operator's approve",
                    run.stage_index + 1,
                    run.plan.len(),
                    stage.target_percentage.percent()
                );
                self.phase = Phase::AwaitingApproval { run, since: now };
                TickOutcome::AwaitApproval(
                    self.record(change(EventKind::AwaitingApproval, line, None), now),
                )
            }
            Decision::Advance => {
                let (phase, event, line) = next_stage(run, now, "gates passed");
                self.phase = phase;
                let t = self.record(change(event, line, None), now);
                if event == EventKind::Completed {
                    TickOutcome::Complete(t)
                } else {
                    TickOutcome::Advance(t)
                }
            }
        }
    }
}

fn failing_notes(gates: &[GateResult]) -> String {
    gates
        .iter()
        .filter(|g| g.is_rollback_failure())
        .map(|g| format!("{} ({})", g.name.as_str(), g.note))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The running phase a tick started from.
#[derive(Debug, Clone, Copy)]
enum Running {
    Progressing,
    Awaiting { since: u64 },
    Paused { since: u64, resume_to: ResumeTo },
}

impl Running {
    fn rebuild(self, run: Run) -> Phase {
        match self {
            Running::Progressing => Phase::Progressing(run),
            Running::Awaiting { since } => Phase::AwaitingApproval { run, since },
            Running::Paused { since, resume_to } => Phase::Paused {
                run,
                since,
                resume_to,
            },
        }
    }
}

enum Decision {
    Hold(HoldReason),
    Rollback(RollbackReason),
    AwaitApproval,
    Advance,
}

impl Decision {
    fn describe(&self) -> String {
        match self {
            Decision::Hold(h) => h.describe(),
            Decision::Rollback(RollbackReason::Emergency { breach }) => {
                format!("roll back: {}", breach.describe())
            }
            Decision::Rollback(RollbackReason::FailureLimit { streak, limit }) => {
                format!("roll back: gates failed on {streak} consecutive ticks (limit {limit})")
            }
            Decision::Rollback(RollbackReason::Operator { .. }) => "roll back".into(),
            Decision::AwaitApproval => "await approval".into(),
            Decision::Advance => "advance".into(),
        }
    }
}

/// What [`decide`] needs.
struct Decide<'a> {
    run: &'a mut Run,
    state: Running,
    stage: &'a Stage,
    gates: &'a [GateResult],
    breach: Option<crate::core::rollout::emergency::Breach>,
    now: u64,
}

/// The tick's decision, in the order of the module docs. Updates the failure streak.
fn decide(d: Decide<'_>) -> Decision {
    let Decide {
        run,
        state,
        stage,
        gates,
        breach,
        now,
    } = d;
    // 2. Emergency, in every running phase.
    if let Some(breach) = breach {
        return Decision::Rollback(RollbackReason::Emergency { breach });
    }
    // 3. Paused: nothing moves, nothing is counted.
    if let Running::Paused { .. } = state {
        return Decision::Hold(HoldReason::Paused);
    }
    // 4. Failures.
    let failing: Vec<GateName> = gates
        .iter()
        .filter(|g| g.is_rollback_failure())
        .map(|g| g.name)
        .collect();
    let limit = run.plan.safety().failure_limit;
    if !failing.is_empty() {
        let counts = run
            .last_failure_at
            .is_none_or(|last| now >= last.saturating_add(FAILURE_SPACING_MS));
        if counts {
            run.failure_streak = run.failure_streak.saturating_add(1);
            run.last_failure_at = Some(now);
        }
        if run.failure_streak >= limit {
            return Decision::Rollback(RollbackReason::FailureLimit {
                streak: run.failure_streak,
                limit,
            });
        }
        return Decision::Hold(HoldReason::GatesFailing {
            gates: failing,
            streak: run.failure_streak,
            limit,
        });
    }
    run.failure_streak = 0;
    run.last_failure_at = None;
    // 5. Awaiting approval.
    if let Running::Awaiting { .. } = state {
        return Decision::Hold(HoldReason::AwaitingApproval);
    }
    // 6. Sample-ratio mismatch.
    if let Some(srm) = gates
        .iter()
        .find(|g| g.name == GateName::SampleRatio && g.status == GateStatus::Fail)
    {
        return Decision::Hold(HoldReason::SampleRatioMismatch {
            p_value: srm.observed,
        });
    }
    // 7. Not enough data.
    let thin: Vec<GateName> = gates
        .iter()
        .filter(|g| g.status == GateStatus::InsufficientData)
        .map(|g| g.name)
        .collect();
    if !thin.is_empty() {
        return Decision::Hold(HoldReason::InsufficientData { gates: thin });
    }
    // 8. Minimum duration (active time only).
    let elapsed = run.active_elapsed(now, None);
    if elapsed < stage.min_duration_ms {
        return Decision::Hold(HoldReason::MinDuration {
            remaining_ms: stage.min_duration_ms - elapsed,
        });
    }
    // 9. Ready.
    if stage.auto_advance {
        Decision::Advance
    } else {
        Decision::AwaitApproval
    }
}

#[cfg(test)]
mod tests {
    use crate::core::rollout::request::plan_from_value;
    use crate::core::rollout::{
        ArmEvidence, Operation, Rollout, RolloutId, StageEvidence, Switches, TickInput,
    };

    fn arm(requests: u64) -> ArmEvidence {
        ArmEvidence {
            requests,
            successes: requests,
            errors: 0,
            scored: requests,
            quality_mean: Some(0.8),
            latency_p95_ms: Some(1_000),
            no_context: None,
        }
    }

    #[test]
    fn a_tick_from_a_clock_behind_the_last_change_keeps_the_state_readable() {
        let plan = plan_from_value(&serde_json::json!({
            "strategy": "exponential", "start_percentage": 10, "stage_duration": 0,
            "min_requests": 1, "min_scored": 1}))
        .unwrap_or_else(|e| panic!("{e:?}"));
        let t0 = 1_700_000_000_000;
        let mut r = Rollout::new();
        let id = RolloutId::try_new("r-1").unwrap_or_else(|e| panic!("{e}"));
        r.apply(
            Operation::Start {
                rollout_id: id,
                plan,
            },
            t0,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let switches = Switches::ALL_ON;
        for behind in [1_000, 60_000, t0] {
            let evidence = StageEvidence {
                treatment: arm(1_000),
                control: arm(9_000),
                breaker_trips: 0,
                expected_treatment_percentage: r.current_percentage(),
                shadow_samples: None,
            };
            r.tick(&TickInput {
                evidence: &evidence,
                switches: &switches,
                now_ms: t0 - behind,
            });
            let back = Rollout::from_json(&r.to_json()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, r);
            assert!(r.updated_at() >= t0);
        }
    }

    /// Found by `make fuzz` (target `kv_rollout_state`): `updated_at` may be absent from a
    /// stored document (it defaults to 0), and the clock clamps then let a command issued on a
    /// host with a wrong clock start a stage before the rollout started.
    #[test]
    fn a_document_without_updated_at_still_keeps_the_clock_from_running_back() {
        let plan = plan_from_value(&serde_json::json!({"strategy": "linear", "increment": 30}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let t0 = 1_700_000_000_000;
        let mut r = Rollout::new();
        let id = RolloutId::try_new("r-1").unwrap_or_else(|e| panic!("{e}"));
        r.apply(
            Operation::Start {
                rollout_id: id,
                plan,
            },
            t0,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let mut doc: serde_json::Value =
            serde_json::from_str(&r.to_json()).unwrap_or_else(|e| panic!("{e}"));
        if let Some(o) = doc.as_object_mut() {
            o.remove("updated_at");
        }
        let mut r = Rollout::from_json(&doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.updated_at(), t0);
        let cid = crate::core::rollout::CommandId::try_new("c-1").unwrap_or_else(|e| panic!("{e}"));
        let advance = crate::core::rollout::Command {
            id: cid,
            issued_at: 42,
            op: Operation::Advance,
        };
        r.apply_commands(&[advance], 42);
        Rollout::from_json(&r.to_json()).unwrap_or_else(|e| panic!("{e}"));
    }
}
