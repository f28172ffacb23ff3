//! The previous (Python) service's `LIGHTRAG_ROUTING_RULES`, carried over.
//!
//! Why: a deployment moving to this router keeps its variables, and its rules were a JSON
//! *object* of named conditions, not our list of rules:
//!
//! ```json
//! {"long_queries": {"type": "query_length", "min_length": 100, "max_length": 1000},
//!  "typed":        {"type": "query_type", "allowed_types": ["mechanism"]}}
//! ```
//!
//! The old service (`FeatureFlagManager._parse_routing_rules` / `_evaluate_conditional_rules`
//! in the CMO `lightrag_integration` package) compiled each entry to a predicate and, with
//! conditional routing on, let a request continue to the rollout hash when *any* predicate
//! matched and sent it to Perplexity when none did. The same meaning in our rules is one
//! `rollout` rule per entry followed by a catch-all `perplexity` rule. Entries that cannot be
//! expressed here (`query_complexity`, which nothing computes here, query types this
//! classifier does not produce, unknown `type`s) never match — as a predicate over a missing
//! value never matched there — and each is reported. The translation itself is reported as a
//! note, so the status page shows the rules actually in force.

use super::problem::Severity;
use crate::core::classify::QueryType;
use serde_json::{json, Map, Value};

/// Name of the catch-all rule that ends a translated set.
pub const NO_MATCH_RULE: &str = "legacy-no-rule-matched";

pub(super) struct Translation {
    /// A JSON array in our rule schema.
    pub(super) rules: Value,
    pub(super) problems: Vec<Note>,
}

pub(super) struct Note {
    pub(super) message: String,
    pub(super) severity: Severity,
}

/// Whether `map` has the previous service's shape: every entry a named condition object (so a
/// single rule of ours written without its list brackets is not mistaken for it).
pub(super) fn is_legacy(map: &Map<String, Value>) -> bool {
    map.values().all(Value::is_object)
}

/// Translates the object form. An empty object (the old default, `{}`) is no rules at all.
pub(super) fn translate(map: &Map<String, Value>) -> Translation {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    if map.is_empty() {
        return Translation {
            rules: Value::Array(rules),
            problems,
        };
    }
    for (name, entry) in map {
        match rule(name, entry) {
            Ok(r) => rules.push(r),
            Err(why) => problems.push(Note {
                message: format!(
                    "previous-service rule {name:?} can never match here ({why}); it is left out"
                ),
                severity: Severity::Error,
            }),
        }
    }
    let translated = rules.len();
    rules.push(json!({"name": NO_MATCH_RULE, "action": "perplexity"}));
    problems.push(Note {
        message: format!(
            "the previous service's rule object was translated into {translated} `rollout` rule(s) \
             and a final `{NO_MATCH_RULE}` → perplexity rule: a request matching any of them \
             routes by the rollout hash, any other goes to Perplexity (as before); write a JSON \
             array of rules to say something else"
        ),
        severity: Severity::Note,
    });
    Translation {
        rules: Value::Array(rules),
        problems,
    }
}

/// Our rule for one named entry, or why there is none.
fn rule(name: &str, entry: &Value) -> Result<Value, String> {
    let name = rule_name(name);
    match entry.get("type").and_then(Value::as_str) {
        Some("query_length") => {
            let bound = |k: &str| -> Result<Option<u64>, String> {
                match entry.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_f64()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .map(|x| Some(x.ceil() as u64))
                        .ok_or_else(|| format!("{k} is not a non-negative number")),
                }
            };
            let mut when = Map::new();
            if let Some(lo) = bound("min_length")?.filter(|lo| *lo > 0) {
                when.insert("min_length".into(), lo.into());
            }
            if let Some(hi) = bound("max_length")? {
                when.insert("max_length".into(), hi.into());
            }
            Ok(json!({"name": name, "when": when, "action": "rollout"}))
        }
        Some("query_type") => {
            let wanted: Vec<&str> = entry
                .get("allowed_types")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let known: Vec<QueryType> = wanted.iter().filter_map(|t| QueryType::parse(t)).collect();
            if known.is_empty() {
                return Err(format!(
                    "none of the allowed_types {wanted:?} is a query type this router classifies \
                     (temporal, mechanism, definition, comparison, general)"
                ));
            }
            Ok(json!({"name": name, "when": {"query_type": known}, "action": "rollout"}))
        }
        Some("query_complexity") => Err("no query complexity is computed here".into()),
        Some(other) => Err(format!("unknown type {other:?}")),
        None => Err("no \"type\"".into()),
    }
}

/// A rule name our schema accepts: `[A-Za-z0-9_.-]`, 1–64 characters.
fn rule_name(name: &str) -> String {
    let mut n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if n.is_empty() {
        n.push_str("legacy");
    }
    n
}
