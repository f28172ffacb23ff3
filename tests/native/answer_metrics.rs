//! No-context replies in the metrics (per arm, per query type), the status document, the
//! Prometheus text and the experiment report; the shadow series beside the arms.

use cmo_edge_router::core::answer::watch::{NoContextWatch, WatchSettings};
use cmo_edge_router::core::breaker::{Breaker, BreakerPolicy};
use cmo_edge_router::core::classify::QueryType;
use cmo_edge_router::core::config;
use cmo_edge_router::core::experiment::report::ShadowSummary;
use cmo_edge_router::core::experiment::{
    experiment_report, ArmSummary, ExperimentInput, ExperimentSettings, Moments, Proportion,
};
use cmo_edge_router::core::fleet::KvHealth;
use cmo_edge_router::core::model::{Arm, Upstream};
use cmo_edge_router::core::outcome::OutcomeKind;
use cmo_edge_router::core::report::{prometheus, status_document, AnswerInputs, ReportInputs};
use cmo_edge_router::core::rollout::evidence::ArmEvidence;
use cmo_edge_router::core::sorted_map::SortedMap;
use cmo_edge_router::core::store::OpCounts;
use cmo_edge_router::core::window::{MetricKey, Sample, Stats, TypeCounts};
use serde_json::{json, Map};

fn sample(kind: OutcomeKind, no_context: bool, t: QueryType) -> Sample {
    Sample {
        no_context,
        query_type: Some(t),
        fallback: no_context,
        ..Sample::new(kind, 900)
    }
}

/// A treatment arm where LightRAG had no context for 3 of 10 mechanism questions (Perplexity
/// answered them) and 1 of 10 definitions.
fn treatment() -> SortedMap<MetricKey, Stats> {
    let mut lr = Stats::default();
    let mut px = Stats::default();
    for i in 0..10 {
        let t = QueryType::Mechanism;
        if i < 3 {
            px.record(&sample(OutcomeKind::Success, true, t));
        } else {
            lr.record(&sample(OutcomeKind::Success, false, t));
        }
        let t = QueryType::Definition;
        if i < 1 {
            px.record(&sample(OutcomeKind::Success, true, t));
        } else {
            lr.record(&sample(OutcomeKind::Success, false, t));
        }
    }
    // A request-caused refusal is in neither count.
    lr.record(&sample(
        OutcomeKind::ClientError(422),
        false,
        QueryType::General,
    ));
    SortedMap::from([
        (MetricKey::new(Upstream::Lightrag, Arm::Treatment), lr),
        (MetricKey::new(Upstream::Perplexity, Arm::Treatment), px),
    ])
}

#[test]
fn counts_per_arm_and_query_type_survive_merging_and_json() {
    let local = treatment();
    let mut arm = Stats::default();
    local.values().for_each(|s| arm.merge(s));
    assert_eq!((arm.count, arm.no_context, arm.rejected), (20, 4, 1));
    assert_eq!(arm.no_context_rate(), Some(0.2));
    assert_eq!(
        arm.by_type.get(&QueryType::Mechanism),
        Some(&TypeCounts {
            requests: 10,
            no_context: 3
        })
    );
    let json = serde_json::to_value(&arm).unwrap();
    assert_eq!(json["by_type"]["mechanism"], json!([10, 3]));
    assert_eq!(json["no_context"], json!(4));
    let back: Stats = serde_json::from_value(json).unwrap();
    assert_eq!(back, arm);
    // A document written before these fields existed still reads.
    let old: Stats = serde_json::from_str(r#"{"count":2,"successes":2}"#).unwrap();
    assert_eq!((old.no_context, old.by_type.len()), (0, 0));
    // The rollout's no-context gate is fed from the same count.
    assert_eq!(ArmEvidence::from_stats(&arm).no_context, Some(4));
}

#[test]
fn status_and_metrics_show_the_rates_the_watch_and_the_shadow_series() {
    let mut vars = Map::new();
    vars.insert("LIGHTRAG_NO_CONTEXT_BREAKER_RATE".into(), json!("0.5"));
    vars.insert("LIGHTRAG_SHADOW_PERCENTAGE".into(), json!("10"));
    let loaded = config::load(&vars, None, 1);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let b = Breaker::new(BreakerPolicy::default());
    let breakers = vec![
        (Upstream::Lightrag, b.status(0)),
        (Upstream::Perplexity, b.status(0)),
    ];
    let local = treatment();
    let mut w: NoContextWatch<u64> = NoContextWatch::new(WatchSettings {
        rate: loaded.config.no_context_breaker_rate,
        ..WatchSettings::default()
    });
    for k in 0..12 {
        w.observe(true, k);
    }
    let mut shadow = Stats::default();
    let mut s = sample(OutcomeKind::Success, true, QueryType::General);
    s.fallback = false;
    s.total_ms = Some(4_000);
    shadow.record(&s);
    shadow.record(&Sample {
        no_context: false,
        ..s
    });
    let answer = AnswerInputs {
        watch: Some(w.status()),
        shadow,
        ..AnswerInputs::default()
    };
    let ops = OpCounts::default();
    let inputs = ReportInputs {
        now_ms: 0,
        isolate: "iso",
        config: &loaded.config,
        problems: &loaded.problems,
        breakers: &breakers,
        local: &local,
        routing: None,
        controller: None,
        rollout: None,
        kv_warnings: &[],
        kv_ops: &ops,
        last_refresh_ms: None,
        last_flush_ms: 0,
        health: &KvHealth::default(),
        first_load_wait_ms: 50,
        last_tick: None,
        quota: &Default::default(),
        answer: &answer,
    };
    let doc = status_document(&inputs);
    let nc = &doc["answer_aware"]["no_context"];
    assert_eq!(nc["fallback"], json!(true));
    assert_eq!(nc["by_arm"]["treatment"]["rate"], json!(0.2));
    assert_eq!(
        nc["by_arm"]["treatment"]["by_query_type"]["mechanism"],
        json!({"requests": 10, "no_context": 3, "rate": 0.3})
    );
    assert_eq!(nc["by_arm"]["control"]["requests"], json!(0));
    assert_eq!(nc["breaker_watch"]["escalated"], json!(true));
    let sh = &doc["answer_aware"]["shadow"];
    assert_eq!(sh["percentage"], json!(10.0));
    assert_eq!(sh["series"]["calls"], json!(2));
    assert_eq!(sh["series"]["no_context_rate"], json!(0.5));
    assert!(sh["series"]["total_p50_ms"].as_u64().unwrap() >= 3_000);
    assert_eq!(
        doc["service_performance"]["performance"]["perplexity"]["no_context_count"],
        json!(4)
    );
    let text = prometheus(&inputs);
    // This isolate's series (docs/answer-aware.md): `cmo_router_isolate_*`, `scope="isolate"`.
    assert!(text.contains("cmo_router_isolate_no_context{scope=\"isolate\",upstream=\"perplexity\",arm=\"treatment\"} 4\n"));
    assert!(text.contains(
        "cmo_router_isolate_no_context_by_type{scope=\"isolate\",upstream=\"perplexity\",arm=\"treatment\",query_type=\"mechanism\"} 3\n"
    ));
    assert!(text.contains("cmo_router_isolate_shadow_calls{scope=\"isolate\"} 2\n"));
    assert!(text.contains("cmo_router_isolate_no_context_escalated{scope=\"isolate\"} 1\n"));
}

fn arm(n: u64, no_context: u64) -> ArmSummary {
    ArmSummary {
        outcomes: Proportion::try_new(n, n).unwrap(),
        latency_ms: Moments::from_values(
            &(0..n).map(|i| 1_000.0 + (i % 7) as f64).collect::<Vec<_>>(),
        ),
        quality: Moments::EMPTY,
        no_context: Proportion::try_new(no_context, n).unwrap(),
        no_context_by_type: SortedMap::from([(
            QueryType::Mechanism,
            TypeCounts {
                requests: n,
                no_context,
            },
        )]),
        ..ArmSummary::default()
    }
}

#[test]
fn the_experiment_report_compares_no_context_rates_and_carries_the_shadow_series() {
    let t = arm(500, 70);
    let c = arm(1_500, 0);
    let shadow = ShadowSummary {
        calls: 40,
        successes: 38,
        no_context: 6,
        ..ShadowSummary::default()
    };
    let r = experiment_report(&ExperimentInput {
        treatment: &t,
        control: &c,
        expected_treatment_share: 0.25,
        settings: &ExperimentSettings::default(),
        previous: None,
        shadow: Some(&shadow),
    });
    assert_eq!(r.treatment.no_context, 70);
    assert_eq!(r.treatment.no_context_rate, Some(0.14));
    assert_eq!(
        r.no_context_summary.as_deref(),
        Some("LightRAG had no context for 14.0 % of treatment queries (70 of 500)")
    );
    let cmp = r.no_context_rate.comparison().expect("compared");
    assert_eq!(cmp.fixed_horizon.test, "two_proportion_z");
    assert!((cmp.difference - 0.14).abs() < 1e-12);
    assert!(cmp.sequential.significant);
    assert!(cmp.summary.contains("no-context rate"), "{}", cmp.summary);
    assert!(r.memory.no_context_rate.is_some());
    // Not part of the verdict (control's upstream is rarely judged: a difference is expected).
    assert!(!r.verdict.contains("no-context"), "{}", r.verdict);
    let sh = r.shadow.as_ref().unwrap();
    assert_eq!((sh.summary.calls, sh.no_context_rate), (40, Some(0.15)));
    assert_eq!(
        r.no_context_by_type.treatment[&QueryType::Mechanism].no_context,
        70
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["shadow"]["calls"], json!(40));
    assert_eq!(json["no_context_rate"]["status"], json!("compared"));
}
