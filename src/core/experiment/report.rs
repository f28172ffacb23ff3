//! The experiment report behind `GET /admin/experiment`: from each arm's sufficient statistics,
//! every comparison with its interval, the sequential p-values, the sample-ratio check and a
//! one-line verdict.
//!
//! Why arms by cohort: the routing decision assigns each stickiness key to the treatment
//! (LightRAG) or control (Perplexity) cohort; comparing *those* groups is intention to treat,
//! the only comparison the randomisation makes fair. "Requests LightRAG served" vs "requests
//! Perplexity served" is not: fallbacks, forced cohorts, rules and the breaker move requests
//! between upstreams for reasons correlated with the outcome. So a treatment request that fell
//! back to Perplexity still counts in the treatment arm, with whatever outcome the user got.

use super::insufficient::Insufficient;
use super::memory::Carried;
use super::moments::{Moments, Proportion};
use super::proportions::two_proportion_z_test;
use super::sequential::{
    additional_treatment_samples, means_evidence, mixture_sprt, proportions_evidence, Evidence,
    Projection, SequentialTest,
};
use super::settings::ExperimentSettings;
use super::srm::{sample_ratio_mismatch, SampleRatio};
use super::verdict;
use super::welch::welch_t_test;
use crate::core::classify::QueryType;
use crate::core::sorted_map::SortedMap;
use crate::core::window::{Stats, TypeCounts};
use serde::{Deserialize, Serialize};

/// One arm's sufficient statistics over the period analysed (one rollout stage, cumulative).
///
/// Serde shape: `{"outcomes":{"successes":117,"n":120},"latency_ms":{"n":120,"mean":1840.5,
/// "m2":3.1e7},"quality":{"n":80,"mean":0.78,"m2":1.9},"latency_p50_ms":1700,"latency_p95_ms":3900}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// Requests assigned to the arm by cohort, and how many ended in an answer for the user.
    pub outcomes: Proportion,
    /// Latency of those requests, in ms.
    pub latency_ms: Moments,
    /// Quality scores of the *scored* answers only: an unscored request is absent, never 0.0.
    pub quality: Moments,
    /// Percentiles from the latency histogram (not derivable from moments; passed through).
    #[serde(default)]
    pub latency_p50_ms: Option<u64>,
    #[serde(default)]
    pub latency_p95_ms: Option<u64>,
    /// Requests of the arm (the same `n` as `outcomes`) and how many had a no-context reply
    /// (docs/answer-aware.md): `Proportion` of no-context replies.
    #[serde(default)]
    pub no_context: Proportion,
    /// The same, per query type (`{"mechanism": [40, 2]}`).
    #[serde(default)]
    pub no_context_by_type: SortedMap<QueryType, TypeCounts>,
}

/// The shadow series (dark launch, docs/answer-aware.md#shadow-comparison): LightRAG's answers
/// to questions Perplexity served, measured and discarded. Never an arm of the comparison: the
/// users never saw these answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShadowSummary {
    /// Shadow calls that reached a verdict (rejected requests are not counted).
    pub calls: u64,
    /// Of those, how many answered (a no-context reply counts as answered, and is counted in
    /// `no_context` as well).
    pub successes: u64,
    pub no_context: u64,
    /// Time to the first answer text, ms.
    pub first_byte_p50_ms: Option<u64>,
    pub first_byte_p95_ms: Option<u64>,
    /// Time to the whole answer, ms.
    pub total_p50_ms: Option<u64>,
    pub total_p95_ms: Option<u64>,
    /// Answers scored, and their mean quality.
    pub quality_n: u64,
    pub quality_mean: Option<f64>,
    pub no_context_by_type: SortedMap<QueryType, TypeCounts>,
}

impl ShadowSummary {
    /// The shadow series' window statistics, summarised.
    pub fn from_stats(s: &Stats) -> ShadowSummary {
        ShadowSummary {
            calls: s.count,
            successes: s.successes,
            no_context: s.no_context,
            first_byte_p50_ms: s.p50(),
            first_byte_p95_ms: s.p95(),
            total_p50_ms: s.total_latency.p50(),
            total_p95_ms: s.total_latency.p95(),
            quality_n: s.quality_count,
            quality_mean: s.mean_quality(),
            no_context_by_type: s.by_type.clone(),
        }
    }

    /// no_context / calls.
    pub fn no_context_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.no_context.min(self.calls) as f64 / self.calls as f64)
    }
}

/// Sequential memory for every metric, carried by the controller from one look to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    pub success_rate: Option<Carried>,
    pub latency_ms: Option<Carried>,
    pub quality: Option<Carried>,
    pub no_context_rate: Option<Carried>,
}

/// Everything [`experiment_report`] reads.
#[derive(Debug, Clone, Copy)]
pub struct ExperimentInput<'a> {
    /// The treatment cohort (routed to LightRAG).
    pub treatment: &'a ArmSummary,
    /// The control cohort (routed to Perplexity).
    pub control: &'a ArmSummary,
    /// The share of traffic the rollout puts in treatment (percentage / 100).
    pub expected_treatment_share: f64,
    pub settings: &'a ExperimentSettings,
    /// The memory returned by the previous look at the same sequence, if any.
    pub previous: Option<&'a Memory>,
    /// The shadow series, when shadow calls ran (reported beside the arms, never compared).
    pub shadow: Option<&'a ShadowSummary>,
}

/// One arm, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArmReport {
    pub n: u64,
    pub successes: u64,
    pub success_rate: Option<f64>,
    pub latency_mean_ms: Option<f64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    /// Answers that were scored.
    pub quality_n: u64,
    /// Mean over scored answers.
    pub quality_mean: Option<f64>,
    /// Requests with a no-context reply, and their share.
    pub no_context: u64,
    pub no_context_rate: Option<f64>,
}

impl ArmReport {
    fn of(arm: &ArmSummary) -> ArmReport {
        ArmReport {
            n: arm.outcomes.n(),
            successes: arm.outcomes.successes(),
            success_rate: arm.outcomes.rate(),
            latency_mean_ms: arm.latency_ms.mean(),
            latency_p50_ms: arm.latency_p50_ms,
            latency_p95_ms: arm.latency_p95_ms,
            quality_n: arm.quality.n(),
            quality_mean: arm.quality.mean(),
            no_context: arm.no_context.successes(),
            no_context_rate: arm.no_context.rate(),
        }
    }
}

/// A single-look test, valid only at a sample size fixed in advance (reference only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FixedHorizon {
    /// "welch_t" or "two_proportion_z".
    pub test: &'static str,
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The mSPRT, carried over looks: this is what decisions use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sequential {
    /// Always-valid p-value: the minimum over the looks of this sequence.
    pub p_value: f64,
    /// Always-valid interval: the intersection over the looks of this sequence.
    pub ci_low: f64,
    pub ci_high: f64,
    /// `p_value ≤ α`.
    pub significant: bool,
    /// This look's p-value alone.
    pub look_p_value: f64,
}

/// "About this many more requests would detect an effect of this size."
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SamplesNeeded {
    /// More treatment-arm requests.
    pub treatment: u64,
    /// More control-arm requests at the current split.
    pub control: u64,
    /// The difference (in the metric's units) that would then be detected: τ, the effect the
    /// test is tuned for.
    pub effect: f64,
}

/// Which metric a comparison is about (for wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    SuccessRate,
    LatencyMs,
    Quality,
    NoContextRate,
}

/// A metric compared between the arms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub treatment: f64,
    pub control: f64,
    /// treatment − control.
    pub difference: f64,
    pub sequential: Sequential,
    pub fixed_horizon: FixedHorizon,
    /// Present while not significant.
    pub samples_needed: Option<SamplesNeeded>,
    /// One plain-language line.
    pub summary: String,
}

/// A metric's comparison, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MetricReport {
    InsufficientData { why: Insufficient, summary: String },
    Compared(Comparison),
}

impl MetricReport {
    pub fn comparison(&self) -> Option<&Comparison> {
        match self {
            MetricReport::Compared(c) => Some(c),
            MetricReport::InsufficientData { .. } => None,
        }
    }
}

/// The sample-ratio check, or why there is none (e.g. a 100 % rollout has no control arm).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SampleRatioReport {
    InsufficientData { why: Insufficient, summary: String },
    Checked(SampleRatio),
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    pub treatment: ArmReport,
    pub control: ArmReport,
    pub sample_ratio: SampleRatioReport,
    pub success_rate: MetricReport,
    pub latency_ms: MetricReport,
    pub quality: MetricReport,
    /// The share of no-context replies, treatment vs control (the same two-proportion tests as
    /// the success rate). Reported, not part of the verdict: control's upstream is rarely
    /// judged, so a difference is expected.
    pub no_context_rate: MetricReport,
    /// "LightRAG had no context for 14.0 % of treatment queries (70 of 500)".
    pub no_context_summary: Option<String>,
    /// Per arm, per query type: requests and no-context replies.
    pub no_context_by_type: ArmsByType,
    /// The shadow series and its no-context share, when shadow calls ran.
    pub shadow: Option<ShadowReport>,
    pub alpha: f64,
    pub mixing_effect_size: f64,
    pub min_samples_per_arm: u64,
    /// One line for an operator.
    pub verdict: String,
    /// Store this and pass it back as `previous` at the next look.
    pub memory: Memory,
}

/// Per-type counts of both arms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArmsByType {
    pub treatment: SortedMap<QueryType, TypeCounts>,
    pub control: SortedMap<QueryType, TypeCounts>,
}

/// The shadow series as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowReport {
    #[serde(flatten)]
    pub summary: ShadowSummary,
    pub no_context_rate: Option<f64>,
}

/// What one metric's comparison is made from.
struct MetricInput<'a> {
    metric: Metric,
    treatment_mean: Option<f64>,
    control_mean: Option<f64>,
    treatment_n: u64,
    control_n: u64,
    evidence: Result<Evidence, Insufficient>,
    fixed: Result<FixedHorizon, Insufficient>,
    /// Per-request variance of each arm, for the "how much longer" projection.
    per_request_variance: (f64, f64),
    previous: Option<&'a Carried>,
    settings: &'a ExperimentSettings,
}

fn compare(input: MetricInput<'_>) -> (MetricReport, Option<Carried>) {
    let insufficient = |why: Insufficient| {
        let summary = verdict::insufficient_line(input.metric, &why);
        (MetricReport::InsufficientData { why, summary }, None)
    };
    let test: SequentialTest = match input
        .evidence
        .and_then(|e| mixture_sprt(&e, input.settings.alpha()))
    {
        Ok(t) => t,
        Err(why) => return insufficient(why),
    };
    let fixed = match input.fixed {
        Ok(f) => f,
        Err(why) => return insufficient(why),
    };
    let (Some(treatment), Some(control)) = (input.treatment_mean, input.control_mean) else {
        return insufficient(Insufficient::NotFinite);
    };
    let carried = Carried::update(&test, input.treatment_n, input.control_n, input.previous);
    let alpha = input.settings.alpha();
    let sequential = Sequential {
        p_value: carried.p_value,
        ci_low: carried.ci_low,
        ci_high: carried.ci_high,
        significant: carried.p_value <= alpha.get(),
        look_p_value: test.p_value,
    };
    let samples_needed = if sequential.significant {
        None
    } else {
        let effect = test.mixing_variance.sqrt();
        additional_treatment_samples(&Projection {
            treatment_n: input.treatment_n,
            control_n: input.control_n,
            treatment_variance: input.per_request_variance.0,
            control_variance: input.per_request_variance.1,
            mixing_variance: test.mixing_variance,
            effect,
            alpha,
        })
        .map(|k| SamplesNeeded {
            treatment: k,
            control: (k as f64 * input.control_n as f64 / input.treatment_n.max(1) as f64).round()
                as u64,
            effect,
        })
    };
    let mut comparison = Comparison {
        treatment,
        control,
        difference: test.difference,
        sequential,
        fixed_horizon: fixed,
        samples_needed,
        summary: String::new(),
    };
    comparison.summary = verdict::metric_line(input.metric, &comparison, alpha);
    (MetricReport::Compared(comparison), Some(carried))
}

/// Builds the report. Never panics: degenerate arms give `insufficient_data` sections.
pub fn experiment_report(input: &ExperimentInput<'_>) -> ExperimentReport {
    let (t, c, settings) = (input.treatment, input.control, input.settings);
    let alpha = settings.alpha();
    let min = settings.min_samples_per_arm();
    let previous = input.previous.copied().unwrap_or_default();
    let enough = |tn: u64, cn: u64| super::insufficient::require_samples(min, tn, cn);

    let sample_ratio = match sample_ratio_mismatch(
        t.outcomes.n(),
        c.outcomes.n(),
        input.expected_treatment_share,
    ) {
        Ok(s) => SampleRatioReport::Checked(s),
        Err(why) => SampleRatioReport::InsufficientData {
            summary: why.to_string(),
            why,
        },
    };

    let pooled_rate = {
        let n = t.outcomes.n() + c.outcomes.n();
        let s = t.outcomes.successes() + c.outcomes.successes();
        if n > 0 {
            let p = s as f64 / n as f64;
            p * (1.0 - p)
        } else {
            0.0
        }
    };
    let (success_rate, success_mem) = compare(MetricInput {
        metric: Metric::SuccessRate,
        treatment_mean: t.outcomes.rate(),
        control_mean: c.outcomes.rate(),
        treatment_n: t.outcomes.n(),
        control_n: c.outcomes.n(),
        evidence: proportions_evidence(&t.outcomes, &c.outcomes, settings),
        fixed: enough(t.outcomes.n(), c.outcomes.n())
            .and_then(|()| two_proportion_z_test(&t.outcomes, &c.outcomes, alpha))
            .map(|z| FixedHorizon {
                test: "two_proportion_z",
                p_value: z.p_value,
                ci_low: z.ci_low,
                ci_high: z.ci_high,
            }),
        per_request_variance: (pooled_rate, pooled_rate),
        previous: previous.success_rate.as_ref(),
        settings,
    });

    let pooled_no_context = {
        let n = t.no_context.n() + c.no_context.n();
        let k = t.no_context.successes() + c.no_context.successes();
        if n > 0 {
            let p = k as f64 / n as f64;
            p * (1.0 - p)
        } else {
            0.0
        }
    };
    let (no_context_rate, no_context_mem) = compare(MetricInput {
        metric: Metric::NoContextRate,
        treatment_mean: t.no_context.rate(),
        control_mean: c.no_context.rate(),
        treatment_n: t.no_context.n(),
        control_n: c.no_context.n(),
        evidence: proportions_evidence(&t.no_context, &c.no_context, settings),
        fixed: enough(t.no_context.n(), c.no_context.n())
            .and_then(|()| two_proportion_z_test(&t.no_context, &c.no_context, alpha))
            .map(|z| FixedHorizon {
                test: "two_proportion_z",
                p_value: z.p_value,
                ci_low: z.ci_low,
                ci_high: z.ci_high,
            }),
        per_request_variance: (pooled_no_context, pooled_no_context),
        previous: previous.no_context_rate.as_ref(),
        settings,
    });

    let means = |metric: Metric, a: &Moments, b: &Moments, prev: Option<&Carried>| {
        compare(MetricInput {
            metric,
            treatment_mean: a.mean(),
            control_mean: b.mean(),
            treatment_n: a.n(),
            control_n: b.n(),
            evidence: means_evidence(a, b, settings),
            fixed: enough(a.n(), b.n())
                .and_then(|()| welch_t_test(a, b, alpha))
                .map(|w| FixedHorizon {
                    test: "welch_t",
                    p_value: w.p_value,
                    ci_low: w.ci_low,
                    ci_high: w.ci_high,
                }),
            per_request_variance: (a.variance().unwrap_or(0.0), b.variance().unwrap_or(0.0)),
            previous: prev,
            settings,
        })
    };
    let (latency_ms, latency_mem) = means(
        Metric::LatencyMs,
        &t.latency_ms,
        &c.latency_ms,
        previous.latency_ms.as_ref(),
    );
    let (quality, quality_mem) = means(
        Metric::Quality,
        &t.quality,
        &c.quality,
        previous.quality.as_ref(),
    );

    let mut report = ExperimentReport {
        treatment: ArmReport::of(t),
        control: ArmReport::of(c),
        sample_ratio,
        success_rate,
        latency_ms,
        quality,
        no_context_rate,
        no_context_summary: verdict::no_context_line(
            (t.no_context.successes(), t.no_context.n()),
            (c.no_context.successes(), c.no_context.n()),
        ),
        no_context_by_type: ArmsByType {
            treatment: t.no_context_by_type.clone(),
            control: c.no_context_by_type.clone(),
        },
        shadow: input.shadow.map(|s| ShadowReport {
            summary: s.clone(),
            no_context_rate: s.no_context_rate(),
        }),
        alpha: alpha.get(),
        mixing_effect_size: settings.mixing_effect_size(),
        min_samples_per_arm: min,
        verdict: String::new(),
        memory: Memory {
            success_rate: success_mem,
            latency_ms: latency_mem,
            quality: quality_mem,
            no_context_rate: no_context_mem,
        },
    };
    report.verdict = verdict::overall_line(&report);
    report
}
