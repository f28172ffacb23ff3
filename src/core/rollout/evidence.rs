//! What the controller measured in the current stage: per-arm aggregates, breaker trips and
//! the split the traffic was routed at.
//!
//! Why per arm, and why these fields: the arms are treatment vs control **by cohort** (the
//! users the hash put below / above the rollout percentage), with each outcome recorded in the
//! arm its user was assigned to even when a fallback served it (intention to treat, docs/architecture.md#ab-arms).
//! So a LightRAG failure rescued by Perplexity still shows up in the treatment arm's success
//! rate. Quality is a count of scored answers and their mean — a request that was never
//! scored is *unscored*, never a 0.0, which is how the old system rolled back every rollout
//! whose quality metrics were off. All counts cover the current stage only (the edge aggregates
//! the metric flushes since `stage_started_at`).

use crate::core::cohort::Percent;
use crate::core::rollout::decimal::tidy;
use crate::core::rollout::pct;
use crate::core::window::Stats;
use serde::{Deserialize, Serialize};

/// One arm's aggregates for the current stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArmEvidence {
    /// Requests of users assigned to this arm.
    pub requests: u64,
    /// Requests the assigned upstream answered itself (no fallback, no failure).
    pub successes: u64,
    /// Requests that failed for the user (5xx, timeout, truncated stream, … after fallback).
    pub errors: u64,
    /// Answers that were scored; the others are unscored, not 0.0.
    pub scored: u64,
    /// Mean quality of the scored answers, in [0, 1]; `None` when none were scored.
    pub quality_mean: Option<f64>,
    /// p95 latency in ms; `None` without data.
    pub latency_p95_ms: Option<u64>,
    /// Answers in which LightRAG reported no context, when the edge counts them.
    pub no_context: Option<u64>,
}

impl ArmEvidence {
    /// An arm's evidence from its merged window statistics (all upstreams of the arm added up).
    ///
    /// `successes` are the window's successes minus its fallbacks: a request a fallback
    /// rescued did not succeed *for the assigned upstream*. (A fallback that also failed is
    /// counted in both, so this undercounts successes slightly — the conservative side.)
    pub fn from_stats(s: &Stats) -> ArmEvidence {
        ArmEvidence {
            requests: s.count,
            successes: s.successes.saturating_sub(s.fallbacks),
            errors: s.errors,
            scored: s.quality_count,
            quality_mean: s.mean_quality(),
            latency_p95_ms: s.p95(),
            // Counted by the edge's answer check (docs/answer-aware.md); the
            // `max_no_context_rate` gate reads it.
            no_context: Some(s.no_context),
        }
    }

    /// errors / requests; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        ratio(self.errors, self.requests)
    }

    /// successes / requests; `None` without requests.
    pub fn success_rate(&self) -> Option<f64> {
        ratio(self.successes, self.requests)
    }

    /// The mean quality when at least `min_scored` answers were scored and it is a valid score.
    pub fn quality(&self, min_scored: u64) -> Option<f64> {
        if self.scored < min_scored.max(1) {
            return None;
        }
        self.quality_mean
            .filter(|q| q.is_finite() && (0.0..=1.0).contains(q))
    }
}

/// Ratio clamped to [0, 1] (counts from many isolates can disagree by a few).
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64).min(1.0))
}

/// Everything a tick looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageEvidence {
    pub treatment: ArmEvidence,
    pub control: ArmEvidence,
    /// LightRAG breaker trips this stage (distinct trips, e.g. generation increases of the
    /// mirrored breaker key — not one per isolate).
    #[serde(default)]
    pub breaker_trips: u64,
    /// The rollout percentage the traffic was routed at: the split the sample-ratio check
    /// expects (treatment share of the experiment's users).
    #[serde(with = "pct")]
    pub expected_treatment_percentage: Percent,
    /// Shadow (dark-launch) samples this stage, when such a feature reports them. The edge
    /// feeds it from the shadow series (docs/answer-aware.md#shadow-comparison): the calls in
    /// the controller's aggregate `shadow` stats (`Stats::count`) summed since
    /// `stage_started_at`, the same way the arms' counts are.
    #[serde(default)]
    pub shadow_samples: Option<u64>,
}

impl StageEvidence {
    /// A copy whose floats survive a JSON round trip exactly (for the stored evaluation).
    pub(crate) fn tidied(&self) -> StageEvidence {
        let mut e = self.clone();
        for a in [&mut e.treatment, &mut e.control] {
            a.quality_mean = a.quality_mean.map(tidy);
        }
        e
    }

    /// No traffic yet at `pct`.
    pub fn empty(pct: Percent) -> StageEvidence {
        StageEvidence {
            treatment: ArmEvidence::default(),
            control: ArmEvidence::default(),
            breaker_trips: 0,
            expected_treatment_percentage: pct,
            shadow_samples: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::outcome::OutcomeKind;
    use crate::core::window::Sample;

    #[test]
    fn from_stats_keeps_unscored_out_of_the_mean() {
        let mut s = Stats::default();
        for (kind, fallback, q) in [
            (OutcomeKind::Success, false, Some(0.8)),
            (OutcomeKind::Success, false, None),
            (OutcomeKind::Success, true, Some(0.6)),
            (OutcomeKind::HttpServerError(503), false, None),
        ] {
            s.record(&Sample {
                kind,
                latency_ms: 100,
                fallback,
                quality: q,
                no_context: false,
                query_type: None,
                total_ms: None,
            });
        }
        let a = ArmEvidence::from_stats(&s);
        assert_eq!((a.requests, a.successes, a.errors, a.scored), (4, 2, 1, 2));
        assert!((a.quality_mean.unwrap() - 0.7).abs() < 1e-9);
        assert_eq!(a.error_rate(), Some(0.25));
        assert_eq!(a.success_rate(), Some(0.5));
        assert_eq!(a.quality(3), None);
        assert!(a.quality(2).is_some());
        assert_eq!(ArmEvidence::default().error_rate(), None);
    }
}
