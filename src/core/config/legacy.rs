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
use crate::core::rules::{Action, OneOrMany, Rule, RuleSpec, When};
use serde_json::{Map, Value};

/// Name of the catch-all rule that ends a translated set.
pub const NO_MATCH_RULE: &str = "legacy-no-rule-matched";

pub(super) struct Translation {
    pub(super) rules: Vec<Rule>,
    pub(super) problems: Vec<Note>,
}

pub(super) struct Note {
    pub(super) message: String,
    pub(super) severity: Severity,
}

/// Whether `map` has the previous service's shape: every entry a named condition object (so a
/// single rule of ours written without its list brackets is not mistaken for it).
pub(super) fn is_legacy(map: &Map<String, Value>) -> bool {
    map.iter().all(|(_, v)| v.is_object())
}

/// Translates the object form. An empty object (the old default, `{}`) is no rules at all.
pub(super) fn translate(map: &Map<String, Value>) -> Translation {
    let mut t = Translation {
        rules: Vec::new(),
        problems: Vec::new(),
    };
    if map.is_empty() {
        return t;
    }
    let never = |name: &str, why: &str| Note {
        message: format!("previous-service rule `{name}` left out, it can never match here: {why}"),
        severity: Severity::Error,
    };
    for (name, entry) in map {
        let spec = match when(entry) {
            Ok(when) => RuleSpec {
                name: rule_name(name),
                when,
                action: Action::Rollout,
            },
            Err(why) => {
                t.problems.push(never(name, why));
                continue;
            }
        };
        if t.rules.iter().any(|r| r.name() == spec.name) {
            t.problems.push(never(name, "its name is taken"));
            continue;
        }
        match Rule::compile(spec) {
            Ok(r) => t.rules.push(r),
            Err(e) => t.problems.push(never(name, &e.to_string())),
        }
    }
    let translated = t.rules.len();
    let catch_all = RuleSpec {
        name: NO_MATCH_RULE.to_string(),
        when: When::default(),
        action: Action::Perplexity,
    };
    if let Ok(r) = Rule::compile(catch_all) {
        t.rules.push(r);
    }
    t.problems.push(Note {
        message: format!(
            "the previous service's rule object was translated into {translated} `rollout` \
             rule(s) and a final `{NO_MATCH_RULE}` → perplexity rule (a request matching none \
             goes to Perplexity, as before)"
        ),
        severity: Severity::Note,
    });
    t
}

/// The conditions of one named entry, or why there are none.
fn when(entry: &Value) -> Result<When, &'static str> {
    let mut when = When::default();
    match entry.get("type").and_then(Value::as_str) {
        Some("query_length") => {
            for (key, slot) in [
                ("min_length", &mut when.min_length),
                ("max_length", &mut when.max_length),
            ] {
                match entry.get(key) {
                    None | Some(Value::Null) => {}
                    Some(v) => match v.as_f64().filter(|x| x.is_finite() && *x >= 0.0) {
                        Some(x) => *slot = Some(x.ceil() as usize),
                        None => return Err("min_length / max_length must be non-negative numbers"),
                    },
                }
            }
            if when.min_length == Some(0) {
                when.min_length = None;
            }
        }
        Some("query_type") => {
            let mut known = Vec::new();
            for t in entry
                .get("allowed_types")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(q) = t.as_str().and_then(QueryType::parse) {
                    known.push(q);
                }
            }
            if known.is_empty() {
                return Err("none of its allowed_types is a class this router computes \
                            (temporal, mechanism, definition, comparison, general)");
            }
            when.query_type = Some(OneOrMany::Many(known));
        }
        Some("query_complexity") => return Err("no query complexity is computed here"),
        _ => return Err("its type is not query_length or query_type"),
    }
    Ok(when)
}

/// A rule name our schema accepts: `[A-Za-z0-9_.-]`, 1–64 characters.
fn rule_name(name: &str) -> String {
    let mut n = String::new();
    for c in name.chars().take(64) {
        n.push(
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            },
        );
    }
    if n.is_empty() {
        n.push_str("legacy");
    }
    n
}
