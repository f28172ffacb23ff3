//! From a stage's per-key statistics to what the rollout gates and the A/B statistics read.
//!
//! Arms are cohorts (intention to treat): the treatment arm is every request of a user the hash
//! put below the stage's percentage, whichever upstream served it — so `lightrag.treatment` and
//! `perplexity.treatment` (a fallback) are added up, and likewise for control. Requests outside
//! the experiment (arm `none`: forced, rule-routed, keyless) are left out.

use crate::core::cohort::Percent;
use crate::core::experiment::report::ShadowSummary;
use crate::core::experiment::{
    experiment_report, ArmSummary, ExperimentInput, ExperimentReport, ExperimentSettings, Memory,
    Moments, Proportion,
};
use crate::core::model::{Arm, Upstream};
use crate::core::rollout::{ArmEvidence, StageEvidence};
use crate::core::sorted_map::SortedMap;
use crate::core::window::{MetricKey, Stats};

/// The significance level of each metric's test in the controller's experiment report:
/// α = 5 % / 3. The report tests three metrics (success rate, latency, quality) and its verdict
/// calls the arms different when any one is significant, so each is tested at α/3 (Bonferroni):
/// the chance that an A/A experiment is called different on *any* metric stays ≤ 5 %, however
/// often it is looked at (docs/experiment.md measured ≈ 10 % any-metric at α each). The
/// intervals shown are therefore 98.3 % intervals.
pub const FAMILY_ALPHA: f64 = 0.05;
/// Metrics the verdict looks at.
pub const METRICS_TESTED: f64 = 3.0;

/// The report's settings: [`FAMILY_ALPHA`] split over [`METRICS_TESTED`], the defaults otherwise.
pub fn settings() -> ExperimentSettings {
    let d = ExperimentSettings::default();
    ExperimentSettings::try_new(
        FAMILY_ALPHA / METRICS_TESTED,
        d.mixing_effect_size(),
        d.min_samples_per_arm(),
    )
    .unwrap_or(d)
}

/// One arm's statistics: both upstreams' windows of that arm, added up.
pub fn arm_stats(stats: &SortedMap<MetricKey, Stats>, arm: Arm) -> Stats {
    let mut out = Stats::default();
    for u in Upstream::ALL {
        if let Some(s) = stats.get(&MetricKey::new(u, arm)) {
            out.merge(s);
        }
    }
    out
}

/// What a tick looks at.
pub fn stage_evidence(
    stats: &SortedMap<MetricKey, Stats>,
    breaker_trips: u64,
    percentage: Percent,
    shadow_calls: u64,
) -> StageEvidence {
    StageEvidence {
        treatment: ArmEvidence::from_stats(&arm_stats(stats, Arm::Treatment)),
        control: ArmEvidence::from_stats(&arm_stats(stats, Arm::Control)),
        breaker_trips,
        expected_treatment_percentage: percentage,
        shadow_samples: Some(shadow_calls),
    }
}

/// An arm's sufficient statistics for the experiment report: outcomes (an answer for the user,
/// whoever served it), latency moments from the exact integer sums, quality moments of the
/// scored answers only.
pub fn arm_summary(s: &Stats) -> ArmSummary {
    let outcomes = Proportion::try_new(s.successes.min(s.count), s.count).unwrap_or_default();
    let latency =
        Moments::from_integer_sums(s.count, u128::from(s.latency_sum), s.latency_sum_sq, 1.0)
            .unwrap_or(Moments::EMPTY);
    let quality = Moments::from_integer_sums(
        s.quality_count,
        u128::from(s.quality_sum),
        s.quality_sum_sq,
        1_000_000.0,
    )
    .unwrap_or(Moments::EMPTY);
    ArmSummary {
        outcomes,
        latency_ms: latency,
        quality,
        latency_p50_ms: s.p50(),
        latency_p95_ms: s.p95(),
        no_context: Proportion::try_new(s.no_context.min(s.count), s.count).unwrap_or_default(),
        no_context_by_type: s.by_type.clone(),
    }
}

/// The experiment report on a stage's cumulative statistics, carrying `previous`; `shadow`
/// (the fleet's last-hour shadow series) is reported beside the arms, never compared.
pub fn report(
    stats: &SortedMap<MetricKey, Stats>,
    percentage: Percent,
    previous: Option<&Memory>,
    shadow: Option<&ShadowSummary>,
) -> ExperimentReport {
    let treatment = arm_summary(&arm_stats(stats, Arm::Treatment));
    let control = arm_summary(&arm_stats(stats, Arm::Control));
    experiment_report(&ExperimentInput {
        treatment: &treatment,
        control: &control,
        expected_treatment_share: percentage.percent() / 100.0,
        settings: &settings(),
        previous,
        shadow,
    })
}
