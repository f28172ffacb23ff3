//! The experiment report: what an operator reads at `GET /admin/experiment`. Each scenario
//! builds per-arm sufficient statistics the way the controller will (cohort arms, scored
//! answers only) and checks the numbers against the underlying tests and the verdict's wording.

use cmo_edge_router::core::experiment::report::{MetricReport, SampleRatioReport};
use cmo_edge_router::core::experiment::*;
use proptest::prelude::*;

/// `n` values spread evenly over `mean ± spread` (deterministic, no randomness needed).
fn spread(n: u64, mean: f64, spread: f64) -> Moments {
    let values: Vec<f64> = (0..n)
        .map(|i| mean + spread * (2.0 * ((i * 7_919) % n.max(1)) as f64 / n.max(2) as f64 - 1.0))
        .collect();
    Moments::from_values(&values)
}

fn arm(successes: u64, n: u64, latency: Moments, quality: Moments) -> ArmSummary {
    ArmSummary {
        outcomes: Proportion::try_new(successes, n).unwrap(),
        latency_ms: latency,
        quality,
        latency_p50_ms: Some(1_800),
        latency_p95_ms: Some(4_100),
        ..ArmSummary::default()
    }
}

fn report(
    t: &ArmSummary,
    c: &ArmSummary,
    share: f64,
    previous: Option<&Memory>,
) -> ExperimentReport {
    experiment_report(&ExperimentInput {
        treatment: t,
        control: c,
        expected_treatment_share: share,
        settings: &ExperimentSettings::default(),
        previous,
        shadow: None,
    })
}

fn fmt(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    if v < 0.0 {
        format!("\u{2212}{s}")
    } else if v > 0.0 {
        format!("+{s}")
    } else {
        s
    }
}

#[test]
fn a_significant_drop_reads_as_plain_language_with_the_always_valid_interval() {
    let t = arm(
        900,
        1_000,
        spread(1_000, 2_000.0, 800.0),
        spread(600, 0.75, 0.2),
    );
    let c = arm(
        2_910,
        3_000,
        spread(3_000, 2_000.0, 800.0),
        spread(1_800, 0.75, 0.2),
    );
    let r = report(&t, &c, 0.25, None);
    let seq =
        sequential_proportions(&t.outcomes, &c.outcomes, &ExperimentSettings::default()).unwrap();
    assert!(seq.significant);
    let MetricReport::Compared(s) = &r.success_rate else {
        panic!("success rate not compared: {:?}", r.success_rate)
    };
    assert_eq!(s.sequential.p_value, seq.p_value);
    assert_eq!(
        (s.sequential.ci_low, s.sequential.ci_high),
        (seq.ci_low, seq.ci_high)
    );
    let expected = format!(
        "LightRAG's success rate is 7.0 points lower (95 % CI {} to {}), significant under continuous monitoring (p < 0.001)",
        fmt(100.0 * seq.ci_low, 1),
        fmt(100.0 * seq.ci_high, 1)
    );
    assert_eq!(r.verdict, expected);
    // The fixed-horizon test is there for reference, with its own (narrower) interval.
    let z = two_proportion_z_test(&t.outcomes, &c.outcomes, Alpha::FIVE_PERCENT).unwrap();
    assert_eq!(s.fixed_horizon.p_value, z.p_value);
    assert!(s.fixed_horizon.ci_high - s.fixed_horizon.ci_low < seq.ci_high - seq.ci_low);
    assert!(s.samples_needed.is_none());
    // Identical latency and quality distributions: nothing to report there.
    assert!(!r.latency_ms.comparison().unwrap().sequential.significant);
    assert!(!r.quality.comparison().unwrap().sequential.significant);
    assert_eq!(r.treatment.n, 1_000);
    assert_eq!(r.treatment.latency_p95_ms, Some(4_100));
}

#[test]
fn no_difference_yet_says_how_much_more_data_would_decide() {
    let t = arm(
        194,
        200,
        spread(200, 2_000.0, 800.0),
        spread(120, 0.75, 0.2),
    );
    let c = arm(
        582,
        600,
        spread(600, 2_000.0, 800.0),
        spread(360, 0.75, 0.2),
    );
    let r = report(&t, &c, 0.25, None);
    assert!(
        r.verdict.starts_with(
            "LightRAG's success rate: no significant difference yet (0.0 points, 95 % CI "
        ),
        "{}",
        r.verdict
    );
    let s = r.success_rate.comparison().unwrap();
    let need = s.samples_needed.unwrap();
    assert!(
        need.treatment > 0 && need.control == 3 * need.treatment,
        "{need:?}"
    );
    assert!(r.verdict.contains(&format!(
        "about {} more LightRAG-arm requests",
        group(need.treatment)
    )));
    // The projection is honest: with that much more data at the same rates and an estimate
    // equal to the effect it names, the test would be significant.
    let (nt, nc) = (200 + need.treatment, 600 + need.control);
    let p = 776.0 / 800.0;
    let effect_successes = |n: u64, rate: f64| (rate * n as f64).round() as u64;
    let t2 = Proportion::try_new(effect_successes(nt, p + need.effect), nt).unwrap();
    let c2 = Proportion::try_new(effect_successes(nc, p), nc).unwrap();
    let later = sequential_proportions(&t2, &c2, &ExperimentSettings::default()).unwrap();
    assert!(later.p_value < 0.06, "p = {}", later.p_value);
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[test]
fn a_sample_ratio_mismatch_overrides_every_other_finding() {
    // 40 % in treatment where the rollout says 25 %, and a large "effect" that cannot be trusted.
    let t = arm(
        300,
        400,
        spread(400, 2_000.0, 800.0),
        spread(200, 0.75, 0.2),
    );
    let c = arm(
        590,
        600,
        spread(600, 2_000.0, 800.0),
        spread(300, 0.75, 0.2),
    );
    let r = report(&t, &c, 0.25, None);
    let SampleRatioReport::Checked(srm) = &r.sample_ratio else {
        panic!("no SRM check")
    };
    assert!(srm.mismatch && srm.p_value < SRM_P_THRESHOLD);
    assert!(r.success_rate.comparison().unwrap().sequential.significant);
    assert!(
        r.verdict.starts_with(
            "Sample-ratio mismatch: 40.0 % of requests are in the LightRAG arm, 25.0 % expected (p < 0.001)"
        ),
        "{}",
        r.verdict
    );
    // The same counts at the split that produced them are fine.
    let ok = report(&t, &c, 0.4, None);
    assert!(matches!(ok.sample_ratio, SampleRatioReport::Checked(s) if !s.mismatch));
}

#[test]
fn degenerate_arms_give_insufficient_data_not_panics() {
    let empty = ArmSummary::default();
    let some = arm(95, 100, spread(100, 2_000.0, 500.0), spread(60, 0.8, 0.1));
    for (t, c, share) in [
        (&empty, &empty, 0.25),
        (&some, &empty, 1.0), // 100 % rollout: no control arm
        (&empty, &some, 0.0), // 0 %: no treatment arm
        (&some, &some, f64::NAN),
    ] {
        let r = report(t, c, share, None);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
        assert!(!r.verdict.is_empty());
        if t.outcomes.n() == 0 || c.outcomes.n() == 0 {
            assert!(matches!(
                r.success_rate,
                MetricReport::InsufficientData {
                    why: Insufficient::TooFewSamples { .. },
                    ..
                }
            ));
            assert!(r.verdict.contains("insufficient data"), "{}", r.verdict);
        }
    }
    let r = report(&some, &empty, 1.0, None);
    assert!(matches!(
        r.sample_ratio,
        SampleRatioReport::InsufficientData {
            why: Insufficient::NoExpectedSplit { .. },
            ..
        }
    ));
    // Every request succeeded in both arms: no variance, no p-value, no crash.
    let perfect = arm(100, 100, spread(100, 2_000.0, 500.0), spread(60, 0.8, 0.1));
    let r = report(&perfect, &perfect, 0.5, None);
    assert!(matches!(
        r.success_rate,
        MetricReport::InsufficientData {
            why: Insufficient::NoVariance,
            ..
        }
    ));
}

#[test]
fn unscored_requests_are_absent_never_zero() {
    // LightRAG answered 300 requests but none was scored (quality metrics off): its quality is
    // unknown, not 0.0, and no quality difference is claimed.
    let t = arm(290, 300, spread(300, 2_000.0, 500.0), Moments::EMPTY);
    let c = arm(880, 900, spread(900, 2_000.0, 500.0), spread(500, 0.8, 0.1));
    let r = report(&t, &c, 0.25, None);
    assert_eq!(r.treatment.quality_mean, None);
    assert_eq!(r.treatment.quality_n, 0);
    assert!(matches!(r.quality, MetricReport::InsufficientData { .. }));
    assert!(!r.verdict.contains("quality"), "{}", r.verdict);
}

#[test]
fn memory_keeps_the_running_minimum_within_a_sequence_only() {
    let settings = ExperimentSettings::default();
    // Look 1: a clear drop.
    let t1 = arm(900, 1_000, spread(1_000, 2_000.0, 800.0), Moments::EMPTY);
    let c1 = arm(2_910, 3_000, spread(3_000, 2_000.0, 800.0), Moments::EMPTY);
    let first = report(&t1, &c1, 0.25, None);
    let p1 = first.memory.success_rate.unwrap().p_value;
    assert!(p1 <= 0.05);
    // Look 2: later data regress towards no difference; on its own this look is not significant.
    let t2 = arm(1_900, 2_000, spread(2_000, 2_000.0, 800.0), Moments::EMPTY);
    let c2 = arm(5_790, 6_000, spread(6_000, 2_000.0, 800.0), Moments::EMPTY);
    let alone = sequential_proportions(&t2.outcomes, &c2.outcomes, &settings).unwrap();
    assert!(!alone.significant, "p = {}", alone.p_value);
    let second = report(&t2, &c2, 0.25, Some(&first.memory));
    let s = second.success_rate.comparison().unwrap();
    assert_eq!(s.sequential.p_value, p1);
    assert_eq!(s.sequential.look_p_value, alone.p_value);
    assert!(s.sequential.significant);
    // Interval and p-value still say the same thing (here the later look's interval does not
    // even overlap the first one, so the first, with the smaller p, is kept).
    assert!(s.sequential.ci_high < 0.0);
    assert!(
        second.verdict.starts_with("LightRAG's success rate is"),
        "{}",
        second.verdict
    );
    // A new stage (counts went down): the old memory is not applied.
    let fresh = report(&t1, &c1, 0.25, Some(&second.memory));
    assert_eq!(fresh.memory.success_rate.unwrap().treatment_n, 1_000);
    assert_eq!(
        fresh
            .success_rate
            .comparison()
            .unwrap()
            .sequential
            .look_p_value,
        fresh.success_rate.comparison().unwrap().sequential.p_value
    );
    // The memory round-trips through JSON (the controller stores it in KV; serde_json's
    // default float parser may differ in the last bit).
    let json = serde_json::to_string(&second.memory).unwrap();
    let back: Memory = serde_json::from_str(&json).unwrap();
    let (a, b) = (
        back.success_rate.unwrap(),
        second.memory.success_rate.unwrap(),
    );
    assert_eq!((a.treatment_n, a.control_n), (b.treatment_n, b.control_n));
    for (x, y) in [
        (a.p_value, b.p_value),
        (a.ci_low, b.ci_low),
        (a.ci_high, b.ci_high),
    ] {
        assert!((x - y).abs() <= 1e-15 * y.abs());
    }
}

#[test]
fn arm_summaries_are_validated_when_read() {
    let ok: ArmSummary = serde_json::from_str(
        r#"{"outcomes":{"successes":117,"n":120},"latency_ms":{"n":120,"mean":1840.5,"m2":3.1e7},
            "quality":{"n":80,"mean":0.78,"m2":1.9},"latency_p50_ms":1700,"latency_p95_ms":3900}"#,
    )
    .unwrap();
    assert_eq!(ok.outcomes.n(), 120);
    for bad in [
        r#"{"outcomes":{"successes":121,"n":120},"latency_ms":{"n":0},"quality":{"n":0}}"#,
        r#"{"outcomes":{"successes":1,"n":2},"latency_ms":{"n":2,"mean":1.0,"m2":-1.0},"quality":{"n":0}}"#,
        r#"{"outcomes":{"successes":1,"n":2},"latency_ms":{"n":0,"mean":5.0},"quality":{"n":0}}"#,
    ] {
        assert!(serde_json::from_str::<ArmSummary>(bad).is_err(), "{bad}");
    }
    assert!(ExperimentSettings::try_new(0.0, 0.1, 30).is_err());
    assert!(ExperimentSettings::try_new(0.05, 0.0, 30).is_err());
    assert!(ExperimentSettings::try_new(0.05, 0.1, 1).is_err());
    let s: ExperimentSettings = serde_json::from_str(r#"{"alpha":0.01}"#).unwrap();
    assert_eq!(s.alpha().get(), 0.01);
    assert_eq!(s.min_samples_per_arm(), 30);
    assert!(serde_json::from_str::<ExperimentSettings>(r#"{"alpha":0.7}"#).is_err());
}

fn arb_moments() -> impl Strategy<Value = Moments> {
    prop_oneof![
        Just(Moments::EMPTY),
        (1u64..5_000, -1e6f64..1e6, 0.0f64..1e9).prop_map(|(n, mean, m2)| {
            Moments::try_new(n, mean, if n == 1 { 0.0 } else { m2 }).unwrap()
        }),
    ]
}

fn arb_arm() -> impl Strategy<Value = ArmSummary> {
    (0u64..10_000, 0.0f64..=1.0, arb_moments(), arb_moments()).prop_map(|(n, rate, l, q)| {
        ArmSummary {
            outcomes: Proportion::try_new((n as f64 * rate).floor() as u64, n).unwrap(),
            latency_ms: l,
            quality: q,
            latency_p50_ms: None,
            latency_p95_ms: None,
            ..ArmSummary::default()
        }
    })
}

proptest! {
    /// Any valid input gives a report: no panic, JSON without NaN, p-values in [0, 1], and each
    /// interval around its estimate.
    #[test]
    fn any_input_gives_a_well_formed_report(
        t in arb_arm(),
        c in arb_arm(),
        share in prop_oneof![Just(0.0), Just(1.0), Just(f64::NAN), 0.0f64..1.0],
    ) {
        let r = report(&t, &c, share, None);
        let json = serde_json::to_string(&r).unwrap();
        prop_assert!(!json.contains("NaN"));
        prop_assert!(!r.verdict.is_empty());
        for m in [&r.success_rate, &r.latency_ms, &r.quality] {
            if let Some(cmp) = m.comparison() {
                prop_assert!((0.0..=1.0).contains(&cmp.sequential.p_value));
                prop_assert!((0.0..=1.0).contains(&cmp.fixed_horizon.p_value));
                prop_assert!(cmp.sequential.ci_low <= cmp.difference && cmp.difference <= cmp.sequential.ci_high);
                prop_assert!(cmp.fixed_horizon.ci_low <= cmp.difference && cmp.difference <= cmp.fixed_horizon.ci_high);
            }
        }
    }
}
