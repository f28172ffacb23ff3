//! The status document and the Prometheus text.

use cmo_edge_router::core::breaker::{Breaker, BreakerPolicy};
use cmo_edge_router::core::config;
use cmo_edge_router::core::fleet::KvHealth;
use cmo_edge_router::core::model::Arm;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::OutcomeKind;
use cmo_edge_router::core::report::{prometheus, status_document, AnswerInputs, ReportInputs};
use cmo_edge_router::core::store::OpCounts;
use cmo_edge_router::core::window::{MetricKey, Sample, Stats};
use serde_json::{json, Map};
use std::collections::BTreeMap;

fn fixture() -> (
    config::Loaded,
    Vec<(Upstream, cmo_edge_router::core::breaker::BreakerStatus)>,
    BTreeMap<MetricKey, Stats>,
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
    let mut local = BTreeMap::new();
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
    assert!(text.contains("# TYPE cmo_router_requests gauge\n"));
    assert!(text.contains("cmo_router_requests{upstream=\"lightrag\",arm=\"treatment\"} 3\n"));
    assert!(text.contains("cmo_router_errors{upstream=\"lightrag\",arm=\"treatment\"} 1\n"));
    assert!(text.contains("cmo_router_breaker_state{upstream=\"lightrag\",state=\"closed\"} 1\n"));
    assert!(text.contains("cmo_router_breaker_state{upstream=\"lightrag\",state=\"open\"} 0\n"));
    assert!(text.contains("cmo_router_rollout_percentage 25\n"));
    assert!(text.contains("cmo_router_kv_operations_total{op=\"read\"} 4\n"));
    assert!(text.contains("cmo_router_config_problems 1\n"));
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
