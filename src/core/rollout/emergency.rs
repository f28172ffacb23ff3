//! The emergency check: a breach so severe the rollout rolls back on this tick, without
//! waiting for the failure streak.
//!
//! Why separate from the gates: a gate needs its stage's `min_requests` and counts toward
//! `failure_limit` over several ticks, which is right for "a bit worse" and far too slow for
//! "LightRAG is failing one request in five". The emergency limits hold across every stage
//! (they are the plan's [`Safety`]) and need only enough data not to be anecdote: treatment
//! error rate over `emergency_error_rate` (default 10 %) with at least `emergency_min_requests`
//! (50) treatment requests this stage, or — with quality metrics on — treatment mean quality
//! under `emergency_quality` (0.5) with at least `emergency_min_scored` (20) scored answers.

use crate::core::rollout::decimal::tidy;
use crate::core::rollout::evidence::StageEvidence;
use crate::core::rollout::gates::Switches;
use crate::core::rollout::plan::Safety;
use serde::{Deserialize, Serialize};

fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

/// A breach severe enough to roll back at once, with its numbers.
///
/// Serde shape: `{"kind": "error_rate", "observed": 0.2, "threshold": 0.1, "samples": 60}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    pub kind: BreachKind,
    pub observed: f64,
    pub threshold: f64,
    /// Requests (error rate) or scored answers (quality) behind `observed`.
    pub samples: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreachKind {
    ErrorRate,
    Quality,
}

impl Breach {
    pub fn describe(&self) -> String {
        match self.kind {
            BreachKind::ErrorRate => format!(
                "emergency: treatment error rate {} over {} requests > {}",
                pct(self.observed),
                self.samples,
                pct(self.threshold)
            ),
            BreachKind::Quality => format!(
                "emergency: treatment mean quality {:.3} over {} scored answers < {:.3}",
                self.observed, self.samples, self.threshold
            ),
        }
    }
}

/// The emergency check: treatment error rate above `emergency_error_rate` with at least
/// `emergency_min_requests` requests this stage, or (quality metrics on) treatment mean quality
/// below `emergency_quality` with at least `emergency_min_scored` scored answers.
pub fn emergency(safety: &Safety, ev: &StageEvidence, switches: &Switches) -> Option<Breach> {
    let t = &ev.treatment;
    if t.requests >= safety.emergency_min_requests {
        if let Some(rate) = t.error_rate() {
            if rate > safety.emergency_error_rate {
                return Some(Breach {
                    kind: BreachKind::ErrorRate,
                    observed: tidy(rate),
                    threshold: tidy(safety.emergency_error_rate),
                    samples: t.requests,
                });
            }
        }
    }
    if switches.quality_metrics {
        if let Some(q) = t.quality(safety.emergency_min_scored) {
            if q < safety.emergency_quality {
                return Some(Breach {
                    kind: BreachKind::Quality,
                    observed: tidy(q),
                    threshold: tidy(safety.emergency_quality),
                    samples: t.scored,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cohort::Percent;
    use crate::core::rollout::evidence::ArmEvidence;

    fn ev(requests: u64, errors: u64, scored: u64, q: f64) -> StageEvidence {
        StageEvidence {
            treatment: ArmEvidence {
                requests,
                successes: requests - errors,
                errors,
                scored,
                quality_mean: (scored > 0).then_some(q),
                latency_p95_ms: Some(1),
                no_context: None,
            },
            control: ArmEvidence::default(),
            breaker_trips: 0,
            expected_treatment_percentage: Percent::from_percent(5.0).unwrap(),
            shadow_samples: None,
        }
    }

    #[test]
    fn emergency_needs_its_minimum() {
        let safety = Safety::default();
        let on = Switches::ALL_ON;
        // 49 requests, all failing: not enough to call it.
        assert_eq!(emergency(&safety, &ev(49, 49, 0, 0.0), &on), None);
        // 50 requests, 6 failing (12 %): breach.
        let b = emergency(&safety, &ev(50, 6, 0, 0.0), &on).unwrap();
        assert_eq!(b.kind, BreachKind::ErrorRate);
        assert_eq!((b.observed, b.threshold, b.samples), (0.12, 0.1, 50));
        // Exactly 10 % is not over 10 %.
        assert_eq!(emergency(&safety, &ev(50, 5, 0, 0.0), &on), None);
        // 20 scored answers averaging 0.4: breach — unless quality metrics are off.
        let e = ev(50, 0, 20, 0.4);
        assert_eq!(
            emergency(&safety, &e, &on).unwrap().kind,
            BreachKind::Quality
        );
        let quality_off = Switches {
            quality_metrics: false,
            ..Switches::ALL_ON
        };
        assert_eq!(emergency(&safety, &e, &quality_off), None);
        // 19 scored: not enough.
        assert_eq!(emergency(&safety, &ev(50, 0, 19, 0.0), &on), None);
    }
}
