//! Routing benchmarks (criterion): the per-request cost of `decide`, the classifier and the
//! cohort hash. Target: `decide` ≤ 100 ns median natively with rules on.
//! Run: `cargo bench --bench routing -- --warm-up-time 1 --measurement-time 3`.

// Test and bench code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cmo_edge_router::core::classify::classify;
use cmo_edge_router::core::cohort::{position, DEFAULT_SALT};
use cmo_edge_router::core::config::{load, Config};
use cmo_edge_router::core::decide::{decide, RouteRequest, RouteState};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::hint::black_box;

const QUERY: &str = "Which metabolites are altered in plasma of patients with type 2 diabetes?";

fn config(rules: bool, regex: bool) -> Config {
    let vars = json!({
        "LIGHTRAG_INTEGRATION_ENABLED": "true",
        "LIGHTRAG_ROLLOUT_PERCENTAGE": "25",
        "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING": if rules { "true" } else { "false" },
        "LIGHTRAG_DENY_USERS": "blocked-1,blocked-2",
        "LIGHTRAG_ROUTING_RULES": [
            {"name": "news-to-web", "when": {"query_type": "temporal"}, "action": "perplexity"},
            {"name": "graph", "when": {"query_type": ["mechanism", "definition"], "min_length": 10}, "action": "lightrag"},
            {"name": "mobile-beta", "when": {"headers": [{"name": "x-client", "equals": "mobile-beta"}]}, "action": "rollout"},
            {"name": "lipids", "when": {"keywords_any": ["lipidomics", "ceramide", "sphingolipid"]}, "action": "lightrag"}
        ]
    });
    let mut vars = vars;
    if regex {
        // A regex rule that does not match: regex-lite scans the whole query.
        vars["LIGHTRAG_ROUTING_RULES"].as_array_mut().unwrap().push(
            json!({"name": "ids", "when": {"regex": "\\bHMDB\\d{7}\\b"}, "action": "lightrag"}),
        );
    }
    let loaded = load(vars.as_object().unwrap(), None, 1);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded.config
}

fn benches(c: &mut Criterion) {
    let state = RouteState::default();
    let headers = vec![("x-client".to_string(), "web".to_string())];
    let req = RouteRequest {
        headers: &headers,
        ..RouteRequest::new(Some("user-8f3a2c91"), QUERY)
    };
    let mut g = c.benchmark_group("decide");
    let on = config(true, false);
    g.bench_function("typical_rules_on", |b| {
        b.iter(|| decide(black_box(&on), &state, black_box(&req)))
    });
    let off = config(false, false);
    g.bench_function("no_rules", |b| {
        b.iter(|| decide(black_box(&off), &state, black_box(&req)))
    });
    let re = config(true, true);
    g.bench_function("rules_with_regex", |b| {
        b.iter(|| decide(black_box(&re), &state, black_box(&req)))
    });
    g.finish();
    c.bench_function("baseline/lowercase_bytes", |b| {
        b.iter(|| {
            black_box(QUERY).bytes().fold(0u32, |a, x| {
                a.wrapping_mul(31)
                    .wrapping_add(u32::from(x.to_ascii_lowercase()))
            })
        })
    });
    c.bench_function("classify", |b| b.iter(|| classify(black_box(QUERY))));
    c.bench_function("cohort/position", |b| {
        b.iter(|| position(black_box(DEFAULT_SALT), black_box("user-8f3a2c91")))
    });
}

criterion_group!(routing, benches);
criterion_main!(routing);
