//! What the preview page reads from a running router, turned into the inputs of the same
//! decision: `GET /admin/config`'s effective config → the variables that produce it, and
//! `GET /admin/status` → the live [`RouteState`] (breaker, rollback, quality gate).
//!
//! Why variables and not the typed config: every preview export takes configuration the way
//! the worker does — variables through [`config::load`] — so a live config must become
//! variables to be previewed, compared with a proposed change, or edited in the page's form. The
//! admin API reports the effective [`Config`] (its wrangler vars stay private to the worker);
//! each of its fields maps back to exactly one variable, and loading those variables gives the
//! same config again (tested below for every variable). A field the router did not report (an
//! older router, or a salt kept secret) is left unset and named in a note, so the page can say
//! that its preview uses the default there.

use crate::core::cohort::{Percent, Salt, DEFAULT_SALT};
use crate::core::config::{self, Config};
use crate::core::decide::RouteState;
use crate::core::model::BreakerView;
use serde::Serialize;
use serde_json::{Map, Value};

/// How a policy setting is stored in the effective config vs its variable.
#[derive(Clone, Copy)]
enum Unit {
    Same,
    /// The config holds milliseconds, the variable seconds.
    MsAsSeconds,
}

/// `(policy in the effective config, its field, the variable, unit)`.
const POLICY_FIELDS: &[(&str, &str, &str, Unit)] = &[
    (
        "breaker",
        "enabled",
        config::ENABLE_CIRCUIT_BREAKER,
        Unit::Same,
    ),
    (
        "breaker",
        "failure_threshold",
        config::CB_FAILURE_THRESHOLD,
        Unit::Same,
    ),
    (
        "breaker",
        "recovery_timeout_ms",
        config::CB_RECOVERY_TIMEOUT,
        Unit::MsAsSeconds,
    ),
    (
        "breaker",
        "failure_rate_threshold",
        config::CB_FAILURE_RATE_THRESHOLD,
        Unit::Same,
    ),
    ("breaker", "window_size", config::CB_WINDOW_SIZE, Unit::Same),
    (
        "breaker",
        "minimum_calls",
        config::CB_MINIMUM_CALLS,
        Unit::Same,
    ),
    (
        "breaker",
        "slow_call_ms",
        config::CB_SLOW_CALL_MS,
        Unit::Same,
    ),
    (
        "breaker",
        "max_recovery_timeout_ms",
        config::CB_MAX_RECOVERY_TIMEOUT,
        Unit::MsAsSeconds,
    ),
    (
        "breaker",
        "half_open_probe_share",
        config::CB_HALF_OPEN_PROBE_SHARE,
        Unit::Same,
    ),
    (
        "breaker",
        "half_open_successes_to_close",
        config::CB_HALF_OPEN_SUCCESSES,
        Unit::Same,
    ),
    ("breaker", "jitter", config::CB_JITTER, Unit::Same),
    (
        "breaker",
        "min_distinct_keys",
        config::CB_MIN_DISTINCT_KEYS,
        Unit::Same,
    ),
    (
        "breaker",
        "max_calls_per_key",
        config::CB_MAX_CALLS_PER_KEY,
        Unit::Same,
    ),
    (
        "fallback",
        "lightrag_to_perplexity",
        config::FALLBACK_TO_PERPLEXITY,
        Unit::Same,
    ),
    (
        "fallback",
        "perplexity_to_lightrag",
        config::PERPLEXITY_FALLBACK_TO_LIGHTRAG,
        Unit::Same,
    ),
    (
        "quality_gate",
        "enabled",
        config::ENABLE_QUALITY_METRICS,
        Unit::Same,
    ),
    (
        "quality_gate",
        "min_quality",
        config::MIN_QUALITY_THRESHOLD,
        Unit::Same,
    ),
    (
        "quality_gate",
        "min_samples",
        config::QUALITY_GATE_MIN_SAMPLES,
        Unit::Same,
    ),
    (
        "quality_gate",
        "probe_share",
        config::QUALITY_GATE_PROBE_SHARE,
        Unit::Same,
    ),
];

/// Every variable this module can recover from an effective config.
pub fn mapped_variables() -> impl Iterator<Item = &'static str> {
    config::CONFIG_FIELDS
        .iter()
        .map(|(_, v)| *v)
        .chain(POLICY_FIELDS.iter().map(|(_, _, v, _)| *v))
}

/// Variables recovered from a running router's effective config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveVariables {
    pub variables: Map<String, Value>,
    /// Fields the router did not report (their variables stay unset: the default applies).
    pub notes: Vec<String>,
}

/// The variables that give `effective` (the `effective` object of `GET /admin/config`, a
/// serialized [`Config`]) when loaded. `null` fields are left unset.
pub fn variables_of_effective(effective: &Value) -> Result<LiveVariables, String> {
    let obj = effective
        .as_object()
        .ok_or("the effective config must be a JSON object (GET /admin/config → effective)")?;
    let mut variables = Map::new();
    let mut notes = Vec::new();
    let mut put = |var: &str, v: Option<&Value>, what: String| match v {
        None => notes.push(format!(
            "the router did not report {what}; {var} is left at its default here"
        )),
        Some(Value::Null) => {}
        Some(v) => {
            variables.insert(var.to_string(), v.clone());
        }
    };
    for (field, var) in config::CONFIG_FIELDS {
        if *field == SALT_FIELD && obj.get(*field).is_some_and(Value::is_string) {
            continue; // below
        }
        put(var, obj.get(*field), format!("`{field}`"));
    }
    for (policy, field, var, unit) in POLICY_FIELDS {
        let raw = obj.get(*policy).and_then(|p| p.get(*field));
        let v = match (unit, raw) {
            (Unit::MsAsSeconds, Some(Value::Number(n))) => n
                .as_f64()
                .and_then(|ms| serde_json::Number::from_f64(ms / 1000.0))
                .map(Value::Number),
            (_, r) => r.cloned(),
        };
        put(var, v.as_ref(), format!("`{policy}.{field}`"));
    }
    // The router shows its salt only as a fingerprint (it may be a secret): the public default
    // is recognised; any other salt must be typed in by the operator.
    if let Some(Value::String(fp)) = obj.get(SALT_FIELD) {
        if *fp == Salt::default().fingerprint() {
            variables.insert(
                config::USER_HASH_SALT.to_string(),
                Value::String(DEFAULT_SALT.into()),
            );
        } else {
            notes.push(format!(
                "the router's salt is not the public default (fingerprint {fp}); type it into {} to preview its cohorts exactly",
                config::USER_HASH_SALT
            ));
        }
    }
    Ok(LiveVariables { variables, notes })
}

/// The effective config's salt field (shown as a fingerprint).
const SALT_FIELD: &str = "user_hash_salt";

/// The variables that give `cfg` when loaded (what a running router with this config would
/// report, recovered).
pub fn variables(cfg: &Config) -> Map<String, Value> {
    serde_json::to_value(cfg)
        .ok()
        .and_then(|v| variables_of_effective(&v).ok())
        .map(|l| l.variables)
        .unwrap_or_default()
}

/// The live state recovered from a status document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveState {
    pub state: RouteState,
    /// The LightRAG breaker's state as the router reported it.
    pub breaker: String,
    pub notes: Vec<String>,
}

/// The [`RouteState`] a router's `GET /admin/status` describes: its LightRAG breaker, rollback
/// and quality gate. A half-open breaker reads as refusing (as the router's own evaluations
/// without a call do): the preview cannot know which request would draw a probe permit.
pub fn route_state_of_status(status: &Value) -> Result<LiveState, String> {
    if !status.is_object() {
        return Err("the status must be a JSON object (GET /admin/status)".into());
    }
    let mut notes = Vec::new();
    let cb = status
        .pointer("/service_performance/circuit_breaker/state")
        .and_then(Value::as_str);
    let (view, breaker) = match cb {
        Some("open") => (BreakerView::Open, "open"),
        Some("half_open") => {
            notes.push(
                "LightRAG's breaker is half-open: a few requests go through as probes; the preview shows the others (circuit_open)".into(),
            );
            (BreakerView::HalfOpenReject, "half_open")
        }
        Some("closed") => (BreakerView::Closed, "closed"),
        other => {
            notes.push(format!(
                "the status did not report LightRAG's breaker state ({other:?}); assuming closed"
            ));
            (BreakerView::Closed, "unknown")
        }
    };
    let flag = |path: &str, notes: &mut Vec<String>| match status.pointer(path) {
        Some(Value::Bool(b)) => *b,
        _ => {
            notes.push(format!("the status did not report {path}; assuming false"));
            false
        }
    };
    let rollback_active = flag("/rollout_status/rollback_active", &mut notes);
    let quality_gate_closed = flag("/rollout_status/quality_gate_closed", &mut notes);
    // While a rollout drives the split, its stage's percentage replaces the configured one.
    let rollout_percentage = match status.pointer("/rollout_status/routing") {
        Some(Value::String(r)) if r == "percentage" => {
            let p = status
                .pointer("/rollout_status/rollout_percentage")
                .and_then(Value::as_f64)
                .and_then(Percent::from_percent);
            if p.is_none() {
                notes.push(
                    "a rollout is running but the status did not report its percentage; using the configured one".into(),
                );
            }
            p
        }
        _ => None,
    };
    Ok(LiveState {
        state: RouteState {
            rollback_active,
            lightrag_breaker: view,
            quality_gate_closed,
            quality_probe_roll: 1.0,
            rollout_percentage,
        },
        breaker: breaker.to_string(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::{load, KNOWN_VARIABLES};
    use serde_json::json;
    use std::collections::BTreeSet;

    #[test]
    fn every_variable_is_recovered() {
        let mapped: BTreeSet<&str> = mapped_variables().collect();
        let known: BTreeSet<&str> = KNOWN_VARIABLES.iter().copied().collect();
        assert_eq!(mapped, known, "a variable the live preview cannot recover");
        assert_eq!(
            mapped.len(),
            KNOWN_VARIABLES.len(),
            "a variable mapped twice"
        );
    }

    #[test]
    fn loading_the_recovered_variables_gives_the_same_config() {
        let vars = json!({
            "LIGHTRAG_INTEGRATION_ENABLED": "true",
            "LIGHTRAG_ROLLOUT_PERCENTAGE": "12.34",
            "LIGHTRAG_USER_HASH_SALT": "s-2026",
            "LIGHTRAG_FORCE_USER_COHORT": "perplexity",
            "LIGHTRAG_ALLOW_USERS": "a,b",
            "LIGHTRAG_DENY_USERS": "[\"x\"]",
            "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING": "on",
            "LIGHTRAG_ROUTING_RULES": [{"name": "news", "when": {"query_type": "temporal", "min_length": 3}, "action": "perplexity"},
                                       {"name": "h", "when": {"headers": [{"name": "X-A", "contains": "b"}], "regex": "^a", "regex_case_insensitive": false}, "action": "rollout"}],
            "LIGHTRAG_QUERY_MODE": "mix",
            "LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "12.5",
            "LIGHTRAG_CIRCUIT_BREAKER_MAX_RECOVERY_TIMEOUT": "99.9",
            "LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE": "40",
            "LIGHTRAG_CIRCUIT_BREAKER_JITTER": "0",
            "LIGHTRAG_FALLBACK_TO_PERPLEXITY": "false",
            "LIGHTRAG_ENABLE_QUALITY_METRICS": "true",
            "LIGHTRAG_QUALITY_GATE_PROBE_SHARE": "0.2",
            "STATE_REFRESH_SECONDS": "5",
        });
        for (vars, version) in [(vars, 4), (json!({}), 0)] {
            let original = load(vars.as_object().unwrap(), None, version);
            assert!(original.problems.is_empty(), "{:?}", original.problems);
            let effective = serde_json::to_value(&original.config).unwrap();
            let mut live = variables_of_effective(&effective).unwrap();
            // A salt other than the public default is shown only as a fingerprint: the page
            // says so and the operator types it in.
            if original.config.user_hash_salt.is_public_default() {
                assert!(live.notes.is_empty(), "{:?}", live.notes);
            } else {
                assert_eq!(live.notes.len(), 1, "{:?}", live.notes);
                assert!(live.notes[0].contains("LIGHTRAG_USER_HASH_SALT"));
                live.variables.insert(
                    config::USER_HASH_SALT.into(),
                    Value::String(original.config.user_hash_salt.as_str().into()),
                );
            }
            let again = load(&live.variables, None, version);
            assert!(again.problems.is_empty(), "{:?}", again.problems);
            assert_eq!(serde_json::to_value(&again.config).unwrap(), effective);
        }
    }

    #[test]
    fn missing_fields_are_named_and_left_at_their_default() {
        let mut effective = serde_json::to_value(config::defaults()).unwrap();
        effective.as_object_mut().unwrap().remove("user_hash_salt");
        let live = variables_of_effective(&effective).unwrap();
        assert_eq!(live.notes.len(), 1);
        assert!(live.notes[0].contains("LIGHTRAG_USER_HASH_SALT"));
        assert!(!live.variables.contains_key("LIGHTRAG_USER_HASH_SALT"));
        assert!(variables_of_effective(&json!([1])).is_err());
    }

    #[test]
    fn status_gives_the_route_state() {
        let s = |cb: &str, rb: bool, gate: bool| {
            json!({"service_performance": {"circuit_breaker": {"state": cb}},
                   "rollout_status": {"rollback_active": rb, "quality_gate_closed": gate}})
        };
        let l = route_state_of_status(&s("open", true, false)).unwrap();
        assert_eq!(l.state.lightrag_breaker, BreakerView::Open);
        assert!(l.state.rollback_active && !l.state.quality_gate_closed);
        assert!(l.notes.is_empty());
        let l = route_state_of_status(&s("half_open", false, true)).unwrap();
        assert_eq!(l.state.lightrag_breaker, BreakerView::HalfOpenReject);
        assert!(l.state.quality_gate_closed);
        assert_eq!(l.notes.len(), 1);
        let l = route_state_of_status(&json!({})).unwrap();
        assert_eq!(l.state, RouteState::default());
        assert_eq!(l.notes.len(), 3);
        assert_eq!(l.state.rollout_percentage, None);
    }

    #[test]
    fn a_running_rollout_routes_by_its_stage() {
        let s = |routing: &str| {
            json!({"service_performance": {"circuit_breaker": {"state": "closed"}},
                   "rollout_status": {"rollback_active": false, "quality_gate_closed": false,
                                      "routing": routing, "rollout_percentage": 15.0,
                                      "configured_percentage": 5.0}})
        };
        let l = route_state_of_status(&s("percentage")).unwrap();
        assert_eq!(l.state.rollout_percentage, Percent::from_percent(15.0));
        assert!(l.notes.is_empty());
        for other in ["inactive", "rolled_back"] {
            let l = route_state_of_status(&s(other)).unwrap();
            assert_eq!(l.state.rollout_percentage, None, "{other}");
        }
    }
}
