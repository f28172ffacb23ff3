//! The plan's percentage over time, for the preview page's chart: "if every gate passes, when
//! does the rollout reach what share?"
//!
//! Why from the plan alone: the preview answers before anything is started, so it cannot know
//! traffic or gate results. It assumes every gate passes the moment a stage's minimum duration
//! is up and that an approval, where a stage needs one, is given at once — and marks those
//! stages, so the page can say "waits for approval here". Real rollouts are never faster than
//! this timeline, only slower (low traffic holds, failing gates hold or roll back, pauses do
//! not count).

use crate::core::cohort::Percent;
use crate::core::rollout::pct;
use crate::core::rollout::plan::Plan;
use serde::Serialize;

/// One stage on the timeline: `[starts_at_ms, ends_at_ms)` after the start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineStep {
    pub stage_index: usize,
    #[serde(with = "pct")]
    pub target_percentage: Percent,
    /// Offset from the start, in ms.
    pub starts_at_ms: u64,
    /// Offset at which the stage's minimum duration is up.
    pub ends_at_ms: u64,
    /// The stage waits for an operator's approve at its end (assumed given at once).
    pub awaits_approval: bool,
}

/// The whole plan as a step function of time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub steps: Vec<TimelineStep>,
    /// Offset at which the rollout completes (the last stage's end).
    pub completes_at_ms: u64,
}

impl Timeline {
    /// The share routed to LightRAG `offset_ms` after the start: the stage in force then, or the
    /// final percentage once complete.
    pub fn percentage_at(&self, offset_ms: u64) -> Percent {
        self.steps
            .iter()
            .rev()
            .find(|s| s.starts_at_ms <= offset_ms)
            .map(|s| s.target_percentage)
            .unwrap_or(Percent::ZERO)
    }
}

/// The timeline of `plan`, assuming every gate passes and every approval is immediate.
pub fn timeline(plan: &Plan) -> Timeline {
    let mut at = 0u64;
    let steps = plan
        .stages()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let start = at;
            at = at.saturating_add(s.min_duration_ms);
            TimelineStep {
                stage_index: i,
                target_percentage: s.target_percentage,
                starts_at_ms: start,
                ends_at_ms: at,
                awaits_approval: !s.auto_advance,
            }
        })
        .collect();
    Timeline {
        steps,
        completes_at_ms: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rollout::strategy::{CanarySpec, LinearSpec, PlanSpec, StrategySpec};

    const MIN: u64 = 60_000;

    #[test]
    fn linear_climbs_every_hour() {
        let p = PlanSpec::new(StrategySpec::Linear(LinearSpec::default()))
            .build()
            .unwrap();
        let t = timeline(&p);
        assert_eq!(t.completes_at_ms, 11 * 60 * MIN);
        assert_eq!(t.percentage_at(0).percent(), 5.0);
        assert_eq!(t.percentage_at(60 * MIN - 1).percent(), 5.0);
        assert_eq!(t.percentage_at(60 * MIN).percent(), 15.0);
        assert_eq!(t.percentage_at(10 * 60 * MIN).percent(), 100.0);
        assert_eq!(t.percentage_at(u64::MAX).percent(), 100.0);
        // Never decreasing.
        let mut last = Percent::ZERO;
        for m in 0..700 {
            let p = t.percentage_at(m * MIN);
            assert!(p >= last);
            last = p;
        }
    }

    #[test]
    fn canary_marks_its_approval() {
        let p = PlanSpec::new(StrategySpec::Canary(CanarySpec::default()))
            .build()
            .unwrap();
        let t = timeline(&p);
        assert!(t.steps[0].awaits_approval);
        assert!(!t.steps[1].awaits_approval);
        assert_eq!(t.steps[1].starts_at_ms, 120 * MIN);
        assert_eq!(t.completes_at_ms, 180 * MIN);
    }
}
