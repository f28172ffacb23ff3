//! `core::backend`: which store `STATE_BACKEND` selects, and the fallback to KV (with the
//! warning `/admin/status` shows) when the value is invalid or the hub is not bound.

use cmo_edge_router::core::backend::{choose, BackendFacts, StateBackend};
use cmo_edge_router::core::config::{self, STATE_BACKEND, VARS_ONLY};
use cmo_edge_router::core::overrides::{self, Put, PutOutcome};
use cmo_edge_router::core::store::OverridesDoc;
use serde_json::{json, Map, Value};

fn pick(requested: Option<&str>, hub_bound: bool) -> (StateBackend, Option<String>) {
    let c = choose(&BackendFacts {
        requested,
        hub_bound,
    });
    (c.selected, c.warning)
}

#[test]
fn unset_or_kv_is_kv_without_a_warning() {
    assert_eq!(pick(None, true), (StateBackend::Kv, None));
    assert_eq!(pick(Some(""), false), (StateBackend::Kv, None));
    assert_eq!(pick(Some("kv"), true), (StateBackend::Kv, None));
    assert_eq!(pick(Some(" KV "), false), (StateBackend::Kv, None));
}

#[test]
fn durable_object_with_its_binding_is_the_hub() {
    for v in ["durable_object", "Durable_Object", "do", "hub"] {
        assert_eq!(
            pick(Some(v), true),
            (StateBackend::DurableObject, None),
            "{v}"
        );
    }
}

#[test]
fn durable_object_without_its_binding_falls_back_to_kv_and_says_so() {
    let (b, w) = pick(Some("durable_object"), false);
    assert_eq!(b, StateBackend::Kv);
    let w = w.unwrap_or_default();
    assert!(
        w.contains("STATE_HUB") && w.contains("using Workers KV"),
        "{w}"
    );
}

#[test]
fn an_invalid_value_falls_back_to_kv_and_says_so() {
    let (b, w) = pick(Some("redis"), true);
    assert_eq!(b, StateBackend::Kv);
    let w = w.unwrap_or_default();
    assert!(
        w.contains("`redis`") && w.contains("using Workers KV"),
        "{w}"
    );
    // A long value is not echoed whole.
    let long = "x".repeat(5000);
    let (_, w) = pick(Some(&long), true);
    assert!(w.unwrap_or_default().len() < 200);
}

#[test]
fn the_variable_is_read_by_the_config_and_reported_when_invalid() {
    let mut vars = Map::new();
    vars.insert(STATE_BACKEND.into(), json!("durable_object"));
    let l = config::load(&vars, None, 0);
    assert_eq!(l.config.state_backend, StateBackend::DurableObject);
    assert!(l.problems.is_empty());
    vars.insert(STATE_BACKEND.into(), json!("nonsense"));
    let l = config::load(&vars, None, 0);
    assert_eq!(l.config.state_backend, StateBackend::Kv);
    assert!(
        l.problems
            .iter()
            .any(|p| format!("{p:?}").contains("STATE_BACKEND")),
        "{:?}",
        l.problems
    );
}

#[test]
fn it_is_deployment_only_never_a_runtime_override() {
    assert!(VARS_ONLY.contains(&STATE_BACKEND));
    let mut new = Map::new();
    new.insert(STATE_BACKEND.into(), Value::String("durable_object".into()));
    let current = OverridesDoc::default();
    let out = overrides::apply_put(&Put {
        vars: &Map::new(),
        current: &current,
        if_match: &overrides::etag(current.version),
        overrides: &new,
        now_ms: 1_800_000_000_000,
    });
    match out {
        PutOutcome::Rejected(problems) => assert!(
            format!("{problems:?}").contains("STATE_BACKEND"),
            "{problems:?}"
        ),
        other => panic!("a STATE_BACKEND override was not refused: {other:?}"),
    }
}
