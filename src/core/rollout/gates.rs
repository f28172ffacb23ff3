//! Gates: the stage's evidence against its thresholds → one result per gate, each with the
//! number it saw and the number it was held to.
//!
//! Why every gate has three outcomes, not two: "not enough data yet" must never look like
//! "failed" (the old system rolled back after 20 requests when quality metrics were off,
//! because an unscored answer counted as quality 0.0). So each gate first asks whether it has
//! the samples it needs; without them it says [`GateStatus::InsufficientData`] and the machine
//! holds. A gate that is switched off or cannot apply says [`GateStatus::Skipped`] and never
//! blocks. Only a gate with enough data and a bad number says [`GateStatus::Fail`].
//!
//! | gate | passes when | needs |
//! |---|---|---|
//! | `min_samples_treatment` / `_control` | each arm has `min_requests` this stage | — |
//! | `error_rate` | treatment error rate ≤ `max_error_rate` | `min_requests` treatment |
//! | `success_rate` | treatment success rate ≥ `min_success_rate` | `min_requests` treatment |
//! | `min_quality` | treatment mean quality ≥ `min_quality` | `min_scored` scored |
//! | `quality_drop` | control mean − treatment mean ≤ `max_quality_drop` | `min_scored` in each arm |
//! | `latency_ratio` | treatment p95 / control p95 ≤ `max_latency_ratio` | `min_requests` in each arm |
//! | `sample_ratio` | χ² of arm sizes vs the routed split has p ≥ 0.001 | `min_requests` expected in the smaller arm |
//! | `breaker_trips` | LightRAG breaker trips ≤ `max_breaker_trips` | — |
//! | `no_context_rate` | share of "no context" answers ≤ `max_no_context_rate` | a count from the edge |
//! | `shadow_samples` | shadow samples ≥ `min_shadow_samples` (dark-launch hook) | — |
//!
//! Switches ([`Switches`], from `LIGHTRAG_ENABLE_*`): A/B testing off skips every gate that
//! compares with the control arm (`min_samples_control`, `quality_drop`, `latency_ratio`,
//! `sample_ratio`) while the absolute gates still run; performance comparison off skips
//! `latency_ratio`; quality metrics off skips both quality gates (and the emergency quality
//! check) — they never fail for lack of scores. At 100 % there is no control arm, so the
//! comparison gates are skipped there too.
//!
//! A failing `sample_ratio` means the split itself is wrong (a routing or logging bug), which
//! makes every comparison untrustworthy but says nothing about LightRAG: it holds the rollout
//! ([`GateName::on_failure`]), it does not count towards a rollback.

use crate::core::cohort::Percent;
use crate::core::config::Config;
use crate::core::rollout::decimal::tidy;
use crate::core::rollout::evidence::{ArmEvidence, StageEvidence};
use crate::core::rollout::stage::Stage;
use crate::core::stats::chi_square_fit;
use serde::{Deserialize, Serialize};

/// Sample-ratio mismatch threshold: p below this holds the rollout.
pub const SRM_P_THRESHOLD: f64 = 0.001;

/// Which measurements the operator turned on (`LIGHTRAG_ENABLE_AB_TESTING`,
/// `LIGHTRAG_ENABLE_PERFORMANCE_COMPARISON`, `LIGHTRAG_ENABLE_QUALITY_METRICS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switches {
    pub ab_testing: bool,
    pub performance_comparison: bool,
    pub quality_metrics: bool,
}

impl Switches {
    pub const ALL_ON: Switches = Switches {
        ab_testing: true,
        performance_comparison: true,
        quality_metrics: true,
    };

    pub fn from_config(c: &Config) -> Switches {
        Switches {
            ab_testing: c.enable_ab_testing,
            performance_comparison: c.enable_performance_comparison,
            quality_metrics: c.quality_gate.settings().enabled,
        }
    }
}

/// The gates, in report order (serde: snake_case names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateName {
    MinSamplesTreatment,
    MinSamplesControl,
    ErrorRate,
    SuccessRate,
    MinQuality,
    QualityDrop,
    LatencyRatio,
    SampleRatio,
    BreakerTrips,
    NoContextRate,
    ShadowSamples,
}

/// What a failing gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Counts towards the failure streak that rolls back.
    CountsTowardRollback,
    /// Holds the stage, never rolls back (the measurement, not LightRAG, is in doubt).
    Hold,
}

impl GateName {
    pub fn as_str(self) -> &'static str {
        match self {
            GateName::MinSamplesTreatment => "min_samples_treatment",
            GateName::MinSamplesControl => "min_samples_control",
            GateName::ErrorRate => "error_rate",
            GateName::SuccessRate => "success_rate",
            GateName::MinQuality => "min_quality",
            GateName::QualityDrop => "quality_drop",
            GateName::LatencyRatio => "latency_ratio",
            GateName::SampleRatio => "sample_ratio",
            GateName::BreakerTrips => "breaker_trips",
            GateName::NoContextRate => "no_context_rate",
            GateName::ShadowSamples => "shadow_samples",
        }
    }

    pub fn on_failure(self) -> OnFailure {
        match self {
            GateName::SampleRatio => OnFailure::Hold,
            _ => OnFailure::CountsTowardRollback,
        }
    }
}

/// A gate's verdict (serde: `"pass"`, `"fail"`, `"insufficient_data"`, `"skipped"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Pass,
    Fail,
    InsufficientData,
    /// Switched off, not configured for this stage, or not applicable (no control arm).
    Skipped,
}

impl GateStatus {
    /// Whether this verdict lets the stage advance.
    pub fn allows_advance(self) -> bool {
        matches!(self, GateStatus::Pass | GateStatus::Skipped)
    }
}

/// One gate's verdict with its numbers.
///
/// Serde shape: `{"name": "error_rate", "status": "fail", "observed": 0.12, "threshold": 0.05,
/// "note": "treatment error rate 12.00 % (24/200) > 5.00 %"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub name: GateName,
    pub status: GateStatus,
    /// What was measured (a rate, a count, a ratio, a p-value); `None` without data.
    pub observed: Option<f64>,
    /// What it was held to; `None` when the gate is off.
    pub threshold: Option<f64>,
    pub note: String,
}

impl GateResult {
    fn new(name: GateName, status: GateStatus, note: impl Into<String>) -> GateResult {
        GateResult {
            name,
            status,
            observed: None,
            threshold: None,
            note: note.into(),
        }
    }

    fn numbers(mut self, observed: Option<f64>, threshold: Option<f64>) -> GateResult {
        self.observed = observed.filter(|v| v.is_finite()).map(tidy);
        self.threshold = threshold.filter(|v| v.is_finite()).map(tidy);
        self
    }

    /// A failing gate that counts towards rollback.
    pub fn is_rollback_failure(&self) -> bool {
        self.status == GateStatus::Fail && self.name.on_failure() == OnFailure::CountsTowardRollback
    }
}

/// What [`evaluate`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    pub stage: &'a Stage,
    pub evidence: &'a StageEvidence,
    pub switches: &'a Switches,
}

fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

/// Evaluates every gate, in [`GateName`] order.
pub fn evaluate(input: &GateInput<'_>) -> Vec<GateResult> {
    let g = &input.stage.gates;
    let ev = input.evidence;
    let sw = input.switches;
    let t = &ev.treatment;
    let c = &ev.control;
    let min = g.min_requests;
    let has_control = input.stage.target_percentage < Percent::FULL;
    // Why a comparison gate does not run, if it does not.
    let no_comparison: Option<&str> = if !sw.ab_testing {
        Some("A/B testing is off (LIGHTRAG_ENABLE_AB_TESTING)")
    } else if !has_control {
        Some("no control arm at 100 %")
    } else {
        None
    };
    let quality_off = (!sw.quality_metrics)
        .then_some("quality metrics are off (LIGHTRAG_ENABLE_QUALITY_METRICS)");
    let enough_t = t.requests >= min;
    let enough_c = c.requests >= min;
    let mut out = Vec::with_capacity(11);

    out.push(min_samples(
        GateName::MinSamplesTreatment,
        "treatment",
        t,
        min,
    ));
    out.push(match no_comparison {
        Some(why) => GateResult::new(GateName::MinSamplesControl, GateStatus::Skipped, why),
        None => min_samples(GateName::MinSamplesControl, "control", c, min),
    });

    out.push(rate_gate(RateGate {
        name: GateName::ErrorRate,
        what: "treatment error rate",
        observed: t.error_rate(),
        part: t.errors,
        arm: t,
        enough: enough_t,
        min,
        threshold: g.max_error_rate,
        bad: |o, th| o > th,
        cmp: ">",
    }));
    out.push(rate_gate(RateGate {
        name: GateName::SuccessRate,
        what: "treatment success rate",
        observed: t.success_rate(),
        part: t.successes,
        arm: t,
        enough: enough_t,
        min,
        threshold: g.min_success_rate,
        bad: |o, th| o < th,
        cmp: "<",
    }));

    out.push(match (quality_off, g.min_quality) {
        (Some(why), _) => GateResult::new(GateName::MinQuality, GateStatus::Skipped, why),
        (None, None) => GateResult::new(
            GateName::MinQuality,
            GateStatus::Skipped,
            "min_quality is off for this stage",
        ),
        (None, Some(th)) => match t.quality(g.min_scored) {
            None => GateResult::new(
                GateName::MinQuality,
                GateStatus::InsufficientData,
                format!(
                    "{} of {} treatment answers scored so far",
                    t.scored, g.min_scored
                ),
            )
            .numbers(None, Some(th)),
            Some(q) if q < th => GateResult::new(
                GateName::MinQuality,
                GateStatus::Fail,
                format!(
                    "treatment mean quality {q:.3} < {th:.3} ({} scored)",
                    t.scored
                ),
            )
            .numbers(Some(q), Some(th)),
            Some(q) => GateResult::new(
                GateName::MinQuality,
                GateStatus::Pass,
                format!(
                    "treatment mean quality {q:.3} ≥ {th:.3} ({} scored)",
                    t.scored
                ),
            )
            .numbers(Some(q), Some(th)),
        },
    });

    out.push(match (quality_off.or(no_comparison), g.max_quality_drop) {
        (Some(why), _) => GateResult::new(GateName::QualityDrop, GateStatus::Skipped, why),
        (None, None) => GateResult::new(
            GateName::QualityDrop,
            GateStatus::Skipped,
            "max_quality_drop is off for this stage",
        ),
        (None, Some(th)) => match (t.quality(g.min_scored), c.quality(g.min_scored)) {
            (Some(qt), Some(qc)) => {
                let drop = qc - qt;
                let status = if drop > th {
                    GateStatus::Fail
                } else {
                    GateStatus::Pass
                };
                GateResult::new(
                    GateName::QualityDrop,
                    status,
                    format!(
                        "treatment {qt:.3} vs control {qc:.3}: drop {drop:.3} {} {th:.3}",
                        if drop > th { ">" } else { "≤" }
                    ),
                )
                .numbers(Some(drop), Some(th))
            }
            _ => GateResult::new(
                GateName::QualityDrop,
                GateStatus::InsufficientData,
                format!(
                    "scored answers: treatment {}, control {} (need {} each)",
                    t.scored, c.scored, g.min_scored
                ),
            )
            .numbers(None, Some(th)),
        },
    });

    let latency_off = no_comparison.or((!sw.performance_comparison)
        .then_some("performance comparison is off (LIGHTRAG_ENABLE_PERFORMANCE_COMPARISON)"));
    out.push(match (latency_off, g.max_latency_ratio) {
        (Some(why), _) => GateResult::new(GateName::LatencyRatio, GateStatus::Skipped, why),
        (None, None) => GateResult::new(
            GateName::LatencyRatio,
            GateStatus::Skipped,
            "max_latency_ratio is off for this stage",
        ),
        (None, Some(th)) => match (t.latency_p95_ms, c.latency_p95_ms) {
            (Some(pt), Some(pc)) if enough_t && enough_c => {
                // A sub-millisecond control p95 is measured as ≥ 1 ms, so the ratio is finite.
                let ratio = pt as f64 / (pc.max(1)) as f64;
                let status = if ratio > th {
                    GateStatus::Fail
                } else {
                    GateStatus::Pass
                };
                GateResult::new(
                    GateName::LatencyRatio,
                    status,
                    format!(
                        "p95 treatment {pt} ms / control {pc} ms = {ratio:.2} {} {th:.2}",
                        if ratio > th { ">" } else { "≤" }
                    ),
                )
                .numbers(Some(ratio), Some(th))
            }
            _ => GateResult::new(
                GateName::LatencyRatio,
                GateStatus::InsufficientData,
                format!(
                    "requests: treatment {}, control {} (need {min} each)",
                    t.requests, c.requests
                ),
            )
            .numbers(None, Some(th)),
        },
    });

    out.push(match no_comparison {
        Some(why) => GateResult::new(GateName::SampleRatio, GateStatus::Skipped, why),
        None => sample_ratio(ev, min),
    });

    let trips = ev.breaker_trips;
    let max_trips = g.max_breaker_trips;
    out.push(
        GateResult::new(
            GateName::BreakerTrips,
            if trips > max_trips {
                GateStatus::Fail
            } else {
                GateStatus::Pass
            },
            format!("{trips} LightRAG breaker trips this stage (at most {max_trips} tolerated)"),
        )
        .numbers(Some(trips as f64), Some(max_trips as f64)),
    );

    out.push(match (g.max_no_context_rate, t.no_context) {
        (None, _) => GateResult::new(
            GateName::NoContextRate,
            GateStatus::Skipped,
            "max_no_context_rate is off for this stage",
        ),
        (Some(_), None) => GateResult::new(
            GateName::NoContextRate,
            GateStatus::Skipped,
            "the edge does not report no-context answers",
        ),
        (Some(th), Some(n)) => rate_gate(RateGate {
            name: GateName::NoContextRate,
            what: "treatment no-context rate",
            observed: (t.requests > 0).then(|| (n as f64 / t.requests as f64).min(1.0)),
            part: n,
            arm: t,
            enough: enough_t,
            min,
            threshold: th,
            bad: |o, th| o > th,
            cmp: ">",
        }),
    });

    out.push(match g.min_shadow_samples {
        None => GateResult::new(
            GateName::ShadowSamples,
            GateStatus::Skipped,
            "min_shadow_samples is off for this stage",
        ),
        Some(need) => {
            let have = ev.shadow_samples.unwrap_or(0);
            GateResult::new(
                GateName::ShadowSamples,
                if have >= need {
                    GateStatus::Pass
                } else {
                    GateStatus::InsufficientData
                },
                format!("{have} of {need} shadow samples"),
            )
            .numbers(Some(have as f64), Some(need as f64))
        }
    });
    out
}

fn min_samples(name: GateName, arm: &str, a: &ArmEvidence, min: u64) -> GateResult {
    let status = if a.requests >= min {
        GateStatus::Pass
    } else {
        GateStatus::InsufficientData
    };
    GateResult::new(
        name,
        status,
        format!("{} of {min} {arm} requests this stage", a.requests),
    )
    .numbers(Some(a.requests as f64), Some(min as f64))
}

/// A rate gate on the treatment arm.
struct RateGate<'a> {
    name: GateName,
    what: &'a str,
    observed: Option<f64>,
    part: u64,
    arm: &'a ArmEvidence,
    enough: bool,
    min: u64,
    threshold: f64,
    bad: fn(f64, f64) -> bool,
    cmp: &'a str,
}

fn rate_gate(r: RateGate<'_>) -> GateResult {
    match r.observed {
        Some(o) if r.enough => {
            let bad = (r.bad)(o, r.threshold);
            GateResult::new(
                r.name,
                if bad {
                    GateStatus::Fail
                } else {
                    GateStatus::Pass
                },
                format!(
                    "{} {} ({}/{}) {} {}",
                    r.what,
                    pct(o),
                    r.part,
                    r.arm.requests,
                    if bad { r.cmp } else { "within" },
                    pct(r.threshold)
                ),
            )
            .numbers(Some(o), Some(r.threshold))
        }
        _ => GateResult::new(
            r.name,
            GateStatus::InsufficientData,
            format!(
                "{} of {} treatment requests this stage",
                r.arm.requests, r.min
            ),
        )
        .numbers(r.observed, Some(r.threshold)),
    }
}

fn sample_ratio(ev: &StageEvidence, min: u64) -> GateResult {
    let share = ev.expected_treatment_percentage.percent() / 100.0;
    let (t, c) = (ev.treatment.requests, ev.control.requests);
    let total = t.saturating_add(c) as f64;
    if share <= 0.0 || share >= 1.0 {
        return GateResult::new(
            GateName::SampleRatio,
            GateStatus::Skipped,
            "the expected split has a single arm",
        );
    }
    // Expected size of the smaller arm; judged on expectations, so a badly skewed split is
    // not delayed by the arm it starves.
    let smaller = total * share.min(1.0 - share);
    if smaller < min as f64 {
        return GateResult::new(
            GateName::SampleRatio,
            GateStatus::InsufficientData,
            format!(
                "{t} treatment / {c} control requests; the smaller arm is expected to hold {smaller:.0} of the {min} needed"
            ),
        )
        .numbers(None, Some(SRM_P_THRESHOLD));
    }
    match chi_square_fit(&[t, c], &[share, 1.0 - share]) {
        Some(x) if x.p_value.is_finite() => {
            let bad = x.p_value < SRM_P_THRESHOLD;
            GateResult::new(
                GateName::SampleRatio,
                if bad {
                    GateStatus::Fail
                } else {
                    GateStatus::Pass
                },
                format!(
                    "{t} treatment / {c} control vs expected {:.2} % treatment: χ² {:.2}, p {:.2e} {} {SRM_P_THRESHOLD}",
                    share * 100.0,
                    x.statistic,
                    x.p_value,
                    if bad { "<" } else { "≥" }
                ),
            )
            .numbers(Some(x.p_value), Some(SRM_P_THRESHOLD))
        }
        _ => GateResult::new(
            GateName::SampleRatio,
            GateStatus::InsufficientData,
            "no requests to compare",
        )
        .numbers(None, Some(SRM_P_THRESHOLD)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rollout::stage::StageGates;

    fn stage(pct: f64) -> Stage {
        Stage {
            target_percentage: Percent::from_percent(pct).unwrap(),
            min_duration_ms: 0,
            auto_advance: true,
            gates: StageGates {
                min_quality: Some(0.6),
                ..StageGates::default()
            },
        }
    }

    fn arm(requests: u64, errors: u64, scored: u64, q: f64, p95: u64) -> ArmEvidence {
        ArmEvidence {
            requests,
            successes: requests - errors,
            errors,
            scored,
            quality_mean: (scored > 0).then_some(q),
            latency_p95_ms: (requests > 0).then_some(p95),
            no_context: None,
        }
    }

    fn ev(t: ArmEvidence, c: ArmEvidence, pct: f64) -> StageEvidence {
        StageEvidence {
            treatment: t,
            control: c,
            breaker_trips: 0,
            expected_treatment_percentage: Percent::from_percent(pct).unwrap(),
            shadow_samples: None,
        }
    }

    fn status(rs: &[GateResult], n: GateName) -> GateStatus {
        rs.iter().find(|r| r.name == n).unwrap().status
    }

    #[test]
    fn healthy_stage_passes_every_gate() {
        let s = stage(25.0);
        let e = ev(
            arm(250, 2, 100, 0.8, 900),
            arm(750, 5, 300, 0.78, 800),
            25.0,
        );
        let rs = evaluate(&GateInput {
            stage: &s,
            evidence: &e,
            switches: &Switches::ALL_ON,
        });
        assert_eq!(rs.len(), 11);
        assert!(rs.iter().all(|r| r.status.allows_advance()), "{rs:#?}");
    }

    #[test]
    fn no_data_is_never_a_failure() {
        let s = stage(25.0);
        let e = StageEvidence::empty(s.target_percentage);
        let rs = evaluate(&GateInput {
            stage: &s,
            evidence: &e,
            switches: &Switches::ALL_ON,
        });
        assert!(rs.iter().all(|r| r.status != GateStatus::Fail), "{rs:#?}");
        assert_eq!(
            status(&rs, GateName::ErrorRate),
            GateStatus::InsufficientData
        );
        assert_eq!(
            status(&rs, GateName::MinQuality),
            GateStatus::InsufficientData
        );
    }

    #[test]
    fn switches_skip_their_gates() {
        let s = stage(25.0);
        let e = ev(arm(250, 50, 0, 0.0, 9000), arm(750, 5, 0, 0.0, 800), 25.0);
        let off = Switches {
            ab_testing: false,
            performance_comparison: false,
            quality_metrics: false,
        };
        let rs = evaluate(&GateInput {
            stage: &s,
            evidence: &e,
            switches: &off,
        });
        for n in [
            GateName::MinSamplesControl,
            GateName::MinQuality,
            GateName::QualityDrop,
            GateName::LatencyRatio,
            GateName::SampleRatio,
        ] {
            assert_eq!(status(&rs, n), GateStatus::Skipped, "{n:?}");
        }
        // Absolute gates still run.
        assert_eq!(status(&rs, GateName::ErrorRate), GateStatus::Fail);
    }

    #[test]
    fn skewed_split_fails_sample_ratio_only() {
        let s = stage(50.0);
        let e = ev(arm(400, 0, 50, 0.8, 500), arm(600, 0, 50, 0.8, 500), 50.0);
        let rs = evaluate(&GateInput {
            stage: &s,
            evidence: &e,
            switches: &Switches::ALL_ON,
        });
        let srm = rs.iter().find(|r| r.name == GateName::SampleRatio).unwrap();
        assert_eq!(srm.status, GateStatus::Fail);
        assert!(srm.observed.unwrap() < 1e-9);
        assert!(!srm.is_rollback_failure());
        assert!(rs
            .iter()
            .filter(|r| r.name != GateName::SampleRatio)
            .all(|r| r.status.allows_advance()));
    }
}
