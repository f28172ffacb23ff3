//! The status document and the Prometheus text.

use cmo_edge_router::core::breaker::{Breaker, BreakerPolicy};
use cmo_edge_router::core::config;
use cmo_edge_router::core::fleet::KvHealth;
use cmo_edge_router::core::model::Arm;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::OutcomeKind;
use cmo_edge_router::core::report::{prometheus, status_document, AnswerInputs, ReportInputs};
use cmo_edge_router::core::sorted_map::SortedMap;
use cmo_edge_router::core::store::OpCounts;
use cmo_edge_router::core::window::{MetricKey, Sample, Stats};
use serde_json::{json, Map};

fn fixture() -> (
    config::Loaded,
    Vec<(Upstream, cmo_edge_router::core::breaker::BreakerStatus)>,
    SortedMap<MetricKey, Stats>,
) {
    let mut vars = Map::new();
    vars.insert("LIGHTRAG_INTEGRATION_ENABLED".into(), json!("true"));
    vars.insert("LIGHTRAG_ROLLOUT_PERCENTAGE".into(), json!("25"));
    vars.insert("LIGHTRAG_MIN_QUALITY_THRESHOLD".into(), json!("2"));
    let loaded = config::load(&vars, None, 3);
    let b = Breaker::new(BreakerPolicy::default());
    let breakers = vec![
        (Upstream::Lightrag, b.status(0)),
        (Upstream::Perplexity, b.status(0)),
    ];
    let mut s = Stats::default();
    for (kind, ms, q) in [
        (OutcomeKind::Success, 100, Some(0.8)),
        (OutcomeKind::Success, 300, Some(0.6)),
        (OutcomeKind::HttpServerError(500), 50, None),
    ] {
        s.record(&Sample {
            kind,
            latency_ms: ms,
            fallback: false,
            quality: q,
            no_context: false,
            query_type: None,
            total_ms: None,
        });
    }
    let mut local = SortedMap::new();
    local.insert(MetricKey::new(Upstream::Lightrag, Arm::Treatment), s);
    (loaded, breakers, local)
}

#[test]
fn status_has_the_seed_shape() {
    let (loaded, breakers, local) = fixture();
    let ops = OpCounts::default();
    let doc = status_document(&ReportInputs {
        now_ms: 1_700_000_000_000,
        isolate: "iso",
        config: &loaded.config,
        problems: &loaded.problems,
        breakers: &breakers,
        local: &local,
        routing: None,
        controller: None,
        rollout: None,
        kv_warnings: &["KV value `x` is corrupt".to_string()],
        kv_ops: &ops,
        last_refresh_ms: None,
        last_flush_ms: 0,
        health: &KvHealth::default(),
        first_load_wait_ms: 50,
        last_tick: None,
        quota: &Default::default(),
        answer: &AnswerInputs::default(),
    });
    assert_eq!(doc["timestamp"], json!(1_700_000_000.0));
    assert_eq!(doc["timestamp_iso"], json!("2023-11-14T22:13:20.000Z"));
    assert_eq!(doc["integration_enabled"], json!(true));
    assert_eq!(doc["config_summary"]["rollout_percentage"], json!(25.0));
    assert_eq!(doc["config_summary"]["config_version"], json!(3));
    let cb = &doc["service_performance"]["circuit_breaker"];
    assert_eq!(cb["is_open"], json!(false));
    assert_eq!(cb["state"], json!("closed"));
    let lr = &doc["service_performance"]["performance"]["lightrag"];
    assert_eq!(lr["success_count"], json!(2));
    assert_eq!(lr["error_count"], json!(1));
    assert_eq!(lr["avg_quality_score"], json!(0.7));
    assert!(lr["p95_response_time"].as_u64().unwrap() >= 250);
    assert!(lr["avg_response_time"].as_f64().unwrap() > 100.0);
    assert_eq!(
        doc["service_performance"]["performance"]["perplexity"]["success_count"],
        json!(0)
    );
    let problems = doc["config_problems"].as_array().unwrap();
    assert_eq!(
        problems[0]["variable"],
        json!("LIGHTRAG_MIN_QUALITY_THRESHOLD")
    );
    assert_eq!(doc["kv"]["warnings"][0], json!("KV value `x` is corrupt"));
    assert_eq!(doc["rollout_status"]["quality_gate_closed"], json!(false));
}

#[test]
fn prometheus_text_is_well_formed() {
    let (loaded, breakers, local) = fixture();
    let mut ops = OpCounts::default();
    ops.reads = 4;
    let text = prometheus(&ReportInputs {
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
        answer: &AnswerInputs::default(),
    });
    let iso = "scope=\"isolate\"";
    assert!(text.contains("# TYPE cmo_router_isolate_requests gauge\n"));
    assert!(text.contains(&format!(
        "cmo_router_isolate_requests{{{iso},upstream=\"lightrag\",arm=\"treatment\"}} 3\n"
    )));
    assert!(text.contains(&format!(
        "cmo_router_isolate_errors{{{iso},upstream=\"lightrag\",arm=\"treatment\"}} 1\n"
    )));
    assert!(text.contains(&format!(
        "cmo_router_isolate_breaker_state{{{iso},upstream=\"lightrag\",state=\"closed\"}} 1\n"
    )));
    assert!(text.contains(&format!(
        "cmo_router_isolate_breaker_state{{{iso},upstream=\"lightrag\",state=\"open\"}} 0\n"
    )));
    assert!(text.contains(&format!(
        "cmo_router_isolate_rollout_percentage{{{iso}}} 25\n"
    )));
    assert!(text.contains(&format!(
        "cmo_router_isolate_kv_operations_total{{{iso},op=\"read\"}} 4\n"
    )));
    assert!(text.contains(&format!("cmo_router_isolate_config_problems{{{iso}}} 1\n")));
    assert!(
        !text.contains("cmo_router_requests_total"),
        "no fleet series without the controller's document"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = line.rsplit_once(' ').unwrap();
        assert!(
            v.parse::<f64>().is_ok() || v == "NaN",
            "bad sample line {line}"
        );
    }
}

#[test]
fn iso_dates() {
    use cmo_edge_router::core::report::iso8601;
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(iso8601(1_795_567_661_070), "2026-11-25T00:47:41.070Z");
}

/// The fleet series come from the controller's committed totals: counters per upstream, arm
/// and outcome, and a histogram whose buckets are cumulative, exact at their bounds, and end
/// at `_count`.
#[test]
fn fleet_counters_and_histogram() {
    use cmo_edge_router::core::controller::ControllerDoc;
    let (loaded, breakers, local) = fixture();
    let mut doc = ControllerDoc::default();
    let mut s = Stats::default();
    for ms in [0u64, 1, 2, 3, 7, 8, 1_023, 1_024, 5_000, 70_000] {
        s.record(&Sample {
            kind: OutcomeKind::Success,
            latency_ms: ms,
            fallback: false,
            quality: Some(0.5),
            no_context: false,
            query_type: None,
            total_ms: None,
        });
    }
    s.record(&Sample {
        kind: OutcomeKind::HttpServerError(502),
        latency_ms: 40,
        fallback: false,
        quality: None,
        no_context: false,
        query_type: None,
        total_ms: None,
    });
    doc.reason_totals.insert("rollout_in".into(), s.clone());
    // A reason read from KV is escaped, not trusted.
    doc.reason_totals
        .insert("odd\"reason\n".into(), Stats::default());
    doc.totals
        .stats
        .insert(MetricKey::new(Upstream::Lightrag, Arm::Treatment), s);
    doc.totals.through_ms = 1_800_000_000_000;
    doc.breaker_trips.insert(Upstream::Lightrag, 2);
    let ops = OpCounts::default();
    let text = prometheus(&ReportInputs {
        now_ms: 0,
        isolate: "iso",
        config: &loaded.config,
        problems: &loaded.problems,
        breakers: &breakers,
        local: &local,
        routing: None,
        controller: Some(&doc),
        rollout: None,
        kv_warnings: &[],
        kv_ops: &ops,
        last_refresh_ms: None,
        last_flush_ms: 0,
        health: &KvHealth::default(),
        first_load_wait_ms: 50,
        last_tick: None,
        quota: &Default::default(),
        answer: &AnswerInputs::default(),
    });
    let lt = "upstream=\"lightrag\",arm=\"treatment\"";
    assert!(text.contains("# TYPE cmo_router_requests_total counter\n"));
    assert!(text.contains(&format!(
        "cmo_router_requests_total{{{lt},outcome=\"success\"}} 10\n"
    )));
    assert!(text.contains(&format!(
        "cmo_router_requests_total{{{lt},outcome=\"error\"}} 1\n"
    )));
    assert!(text.contains("# TYPE cmo_router_decisions_total counter\n"));
    assert!(
        text.contains("cmo_router_decisions_total{reason=\"rollout_in\",outcome=\"success\"} 10\n")
    );
    assert!(
        text.contains("cmo_router_decisions_total{reason=\"rollout_in\",outcome=\"error\"} 1\n")
    );
    assert!(text
        .contains("cmo_router_decisions_total{reason=\"odd\\\"reason\\n\",outcome=\"error\"} 0\n"));
    assert!(text.contains("# TYPE cmo_router_latency_seconds histogram\n"));
    // le = (2^k - 1) ms: 0, 1 ≤ 0.001 s; 2, 3 ≤ 0.003 s; 7 ≤ 0.007 s; 8 ≤ 0.015 s; …
    for (le, want) in [
        ("0.001", 2),
        ("0.003", 4),
        ("0.007", 5),
        ("0.015", 6),
        ("0.063", 7),
        ("1.023", 8),
        ("2.047", 9),
        ("8.191", 10),
        ("131.071", 11),
        ("+Inf", 11),
    ] {
        let line = format!("cmo_router_latency_seconds_bucket{{{lt},le=\"{le}\"}} {want}\n");
        assert!(text.contains(&line), "missing {line}");
    }
    assert!(text.contains(&format!("cmo_router_latency_seconds_count{{{lt}}} 11\n")));
    assert!(text.contains(&format!("cmo_router_latency_seconds_sum{{{lt}}} 77.108\n")));
    assert!(text.contains(&format!("cmo_router_quality_score_sum{{{lt}}} 5\n")));
    assert!(text.contains(&format!("cmo_router_quality_score_count{{{lt}}} 10\n")));
    assert!(text.contains("cmo_router_breaker_trips_total{upstream=\"lightrag\"} 2\n"));
    assert!(text.contains("cmo_router_fleet_counted_through_seconds 1800000000\n"));
    // Buckets never decrease.
    let mut last = 0.0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("cmo_router_latency_seconds_bucket"))
    {
        let v: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
        assert!(v >= last, "{line}");
        last = v;
    }
}
