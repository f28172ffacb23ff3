//! Golden cases for the default answer scorer, and quality-gate timelines: the gate closes on
//! evidence, keeps probing while closed, and reopens (with hysteresis) when LightRAG recovers.

use cmo_edge_router::core::gate::{evaluate, GatePolicy, GateReason, GateSettings, GateStatus};
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::OutcomeKind;
use cmo_edge_router::core::quality::{
    DefaultScorer, QualityFlag, ScoreInput, Scorer, ScorerSettings,
};
use cmo_edge_router::core::window::{Sample, Stats, Window};

const QUERY: &str = "What is the role of glutathione metabolism in oxidative stress?";

const GOOD: &str = "Glutathione (GSH) is the main intracellular antioxidant. In glutathione \
metabolism, glutamate, cysteine and glycine are joined by glutamate-cysteine ligase and glutathione \
synthetase. Under oxidative stress, glutathione peroxidase uses GSH to reduce hydrogen peroxide and \
lipid peroxides, producing oxidised glutathione (GSSG), which glutathione reductase recycles with \
NADPH. The GSH/GSSG ratio is therefore a marker of cellular redox state, and metabolomics studies \
report depleted glutathione in diseases driven by oxidative stress [1][2].";

fn input<'a>(query: &'a str, answer: &'a str, sources: usize, latency_ms: u64) -> ScoreInput<'a> {
    ScoreInput {
        query,
        answer,
        sources,
        latency_ms,
        upstream: Upstream::Lightrag,
    }
}

fn in_unit(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

#[test]
fn golden_good_cited_answer_scores_high() {
    let s = DefaultScorer::default().score(&input(QUERY, GOOD, 3, 2_000));
    assert_eq!(s.flag, QualityFlag::Ok);
    assert!(s.relevance > 0.99, "{s:?}");
    assert_eq!(s.completeness, 1.0);
    assert_eq!(s.sources, 1.0);
    assert!(s.total > 0.9, "{s:?}");
}

#[test]
fn golden_refusal_scores_low() {
    let refusal = "I'm sorry, but I cannot provide information about glutathione metabolism and \
                   oxidative stress as an AI language model.";
    let s = DefaultScorer::default().score(&input(QUERY, refusal, 2, 1_000));
    assert_eq!(s.flag, QualityFlag::Refusal);
    assert!(s.total <= 0.3, "{s:?}");
    for q in [
        "I cannot answer that.",
        "As an AI, I do not have opinions.",
        "I don't know.",
    ] {
        let s = DefaultScorer::default().score(&input(QUERY, q, 0, 1_000));
        assert_eq!(s.flag, QualityFlag::Refusal, "{q}");
    }
}

#[test]
fn golden_html_error_page_scores_very_low() {
    let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
                <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>\
                </body></html>";
    let s = DefaultScorer::default().score(&input(QUERY, page, 0, 500));
    assert_eq!(s.flag, QualityFlag::ErrorPage);
    assert!(s.total <= 0.05, "{s:?}");
    for body in [
        "error code: 1015",
        "{\"error\":{\"message\":\"overloaded\"}}",
        "Service Unavailable",
    ] {
        let s = DefaultScorer::default().score(&input(QUERY, body, 0, 500));
        assert_eq!(s.flag, QualityFlag::ErrorPage, "{body}");
    }
}

#[test]
fn golden_empty_answer_scores_zero() {
    for empty in ["", "   \n\t "] {
        let s = DefaultScorer::default().score(&input(QUERY, empty, 5, 100));
        assert_eq!(s.flag, QualityFlag::Empty);
        assert_eq!(s.total, 0.0);
    }
}

#[test]
fn components_move_the_way_they_should() {
    let sc = DefaultScorer::default();
    let base = sc.score(&input(QUERY, GOOD, 3, 2_000));
    // Fewer sources, slower, off-topic: each lowers the total.
    assert!(sc.score(&input(QUERY, GOOD, 0, 2_000)).total < base.total);
    assert!(sc.score(&input(QUERY, GOOD, 3, 25_000)).total < base.total);
    let off = "Photosynthesis converts light energy into chemical energy in chloroplasts, \
               using water and carbon dioxide to produce sugars and releasing oxygen.";
    let off = sc.score(&input(QUERY, off, 3, 2_000));
    assert!(off.relevance < 0.2, "{off:?}");
    assert!(off.total < base.total);
    // A long answer that only mentions "bad gateway" in passing is not an error page.
    let long = format!("{GOOD} A proxy returning bad gateway is unrelated. {GOOD}");
    assert_eq!(
        sc.score(&input(QUERY, &long, 3, 2_000)).flag,
        QualityFlag::Ok
    );
    // Every component stays in [0, 1] for odd inputs.
    for (q, a) in [
        ("", "x"),
        ("the of and", "word"),
        ("ünïcode größe", "Größe ünïcode"),
        (QUERY, &"a".repeat(50_000)),
    ] {
        let s = sc.score(&input(q, a, usize::MAX, u64::MAX));
        for c in [
            s.total,
            s.relevance,
            s.completeness,
            s.sources,
            s.clean,
            s.latency,
        ] {
            assert!(in_unit(c), "{q:?} {s:?}");
        }
    }
}

#[test]
fn scorer_settings_are_validated() {
    assert!(DefaultScorer::try_new(ScorerSettings {
        w_relevance: -1.0,
        ..Default::default()
    })
    .is_err());
    assert!(DefaultScorer::try_new(ScorerSettings {
        w_relevance: 0.0,
        w_completeness: 0.0,
        w_sources: 0.0,
        w_clean: 0.0,
        w_latency: 0.0,
        ..Default::default()
    })
    .is_err());
    assert!(DefaultScorer::try_new(ScorerSettings {
        latency_good_ms: 50_000,
        ..Default::default()
    })
    .is_err());
    assert!(DefaultScorer::try_new(ScorerSettings::default()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Quality gate

const MIN: u64 = 60_000;
const T0: u64 = 1_700_000_000_000 / MIN * MIN;

fn scored(q: f64) -> Sample {
    Sample {
        kind: OutcomeKind::Success,
        latency_ms: 1_000,
        fallback: false,
        quality: Some(q),
        no_context: false,
        query_type: None,
        total_ms: None,
    }
}

fn stats_with(n: u64, q: f64) -> Stats {
    let mut s = Stats::default();
    for _ in 0..n {
        s.record(&scored(q));
    }
    s
}

/// An enabled gate needing 20 samples, with a 10 % probe share.
fn gate_settings() -> GateSettings {
    GateSettings {
        enabled: true,
        min_samples: 20,
        probe_share: 0.1,
        ..GateSettings::default()
    }
}

fn gate() -> GatePolicy {
    GatePolicy::try_new(gate_settings()).unwrap()
}

#[test]
fn one_bad_score_never_closes_the_gate() {
    // The seed's bug: one bad answer locked LightRAG out forever.
    let status = evaluate(&stats_with(1, 0.0), &Stats::default(), &gate(), false);
    assert!(!status.closed);
    assert_eq!(status.reason, GateReason::InsufficientSamples);
}

#[test]
fn absolute_and_relative_thresholds() {
    let g = gate();
    // 0.65 < 0.7 → closed (absolute).
    let s = evaluate(&stats_with(20, 0.65), &Stats::default(), &g, false);
    assert!(s.closed);
    assert_eq!(s.reason, GateReason::BelowThreshold);
    assert_eq!(s.samples, 20);
    // 0.75 clears 0.7, but Perplexity at 0.9 is more than 0.1 better → closed (relative).
    let s = evaluate(&stats_with(20, 0.75), &stats_with(20, 0.9), &g, false);
    assert!(s.closed);
    assert_eq!(s.reason, GateReason::BelowPerplexity);
    // Perplexity without enough samples is not compared.
    let s = evaluate(&stats_with(20, 0.75), &stats_with(5, 0.9), &g, false);
    assert!(!s.closed);
    assert_eq!(s.reason, GateReason::Healthy);
    // Disabled → open whatever the data.
    let off = GatePolicy::try_new(GateSettings {
        enabled: false,
        ..gate_settings()
    })
    .unwrap();
    assert!(!evaluate(&stats_with(100, 0.0), &Stats::default(), &off, false).closed);
}

#[test]
fn gate_closes_probes_and_reopens_with_hysteresis_on_a_timeline() {
    // A 10-minute window of one-minute buckets, evaluated every minute like the cron tick.
    let mut lr = Window::try_new(MIN, 10).unwrap();
    let px = stats_with(100, 0.8);
    let policy = gate();
    // The controller's memory: the last verdict, fed back for hysteresis.
    let mut g: Option<GateStatus> = None;
    // Each minute, 100 requests would go to LightRAG; while the gate is closed only the probe
    // share does (evenly spaced rolls, so the test is deterministic), then the controller
    // re-evaluates on the window.
    let minute = |g: &mut Option<GateStatus>, lr: &mut Window, m: u64, q: f64| -> usize {
        let now = T0 + m * MIN;
        let closed = g.is_some_and(|s| s.closed);
        let admitted = (0..100)
            .filter(|i| !closed || policy.admits_probe(*i as f64 / 100.0))
            .count();
        for _ in 0..admitted {
            lr.record(now, &scored(q));
        }
        let status = evaluate(&lr.total(now), &px, &policy, closed);
        *g = Some(status);
        (status.closed as usize) * 1000 + admitted
    };
    // t=0..1: LightRAG answers at 0.8: open, all 100 admitted.
    assert_eq!(minute(&mut g, &mut lr, 0, 0.8), 100);
    // t=1..3: LightRAG degrades to 0.3. At t=1 the window mean is 0.55 → closed.
    assert_eq!(minute(&mut g, &mut lr, 1, 0.3), 1000 + 100);
    assert_eq!(g.unwrap().reason, GateReason::BelowThreshold);
    // While closed only the 10% probe share flows, and it keeps being measured.
    assert_eq!(minute(&mut g, &mut lr, 2, 0.3), 1000 + 10);
    // t=3..: LightRAG recovers to 0.9. The old bad minutes keep the mean low for a while, and
    // hysteresis keeps it closed until the mean clears 0.75 (0.7 + 0.05) — but it must reopen
    // within the window length.
    let mut reopened_at = None;
    for m in 3..=13 {
        let r = minute(&mut g, &mut lr, m, 0.9);
        if r < 1000 {
            reopened_at = Some(m);
            break;
        }
        assert_eq!(r, 1000 + 10, "still probing at minute {m}");
    }
    let m = reopened_at.expect("gate reopened within the window");
    assert!(
        m >= 4,
        "hysteresis held it closed at least one extra tick, reopened at {m}"
    );
    assert!(!g.unwrap().closed);
    assert_eq!(g.unwrap().reason, GateReason::Healthy);
}

#[test]
fn hysteresis_prevents_flapping_at_the_threshold() {
    let g = gate();
    // Mean 0.72: a fresh gate stays open, a closed gate stays closed (needs ≥ 0.75).
    assert!(!evaluate(&stats_with(50, 0.72), &Stats::default(), &g, false).closed);
    assert!(evaluate(&stats_with(50, 0.72), &Stats::default(), &g, true).closed);
    assert!(!evaluate(&stats_with(50, 0.76), &Stats::default(), &g, true).closed);
}

#[test]
fn gate_settings_are_validated() {
    for bad in [
        GateSettings {
            min_quality: 1.5,
            ..GateSettings::default()
        },
        GateSettings {
            min_samples: 0,
            ..GateSettings::default()
        },
        GateSettings {
            probe_share: 0.0,
            ..GateSettings::default()
        },
        GateSettings {
            hysteresis: f64::NAN,
            ..GateSettings::default()
        },
    ] {
        assert!(GatePolicy::try_new(bad).is_err());
    }
    let s = serde_json::to_value(evaluate(
        &stats_with(30, 0.5),
        &Stats::default(),
        &gate(),
        false,
    ))
    .unwrap();
    assert_eq!(s["closed"], true);
    assert_eq!(s["reason"], "below_threshold");
    assert_eq!(s["samples"], 30);
}
