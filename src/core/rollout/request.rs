//! The `POST /admin/rollout` body → a validated [`Plan`].
//!
//! Why a hand-written reader over `serde_json::Value` instead of `#[derive(Deserialize)]`:
//! an operator who writes `"increment": "10"`, `"stage_duraton": 60` or `"min_requests": 2.5`
//! must be told which field is wrong, in the words they used, and a field that belongs to
//! another strategy (`"increment"` on a canary) must be refused rather than silently ignored.
//! Serde's derive reports a byte position, and its `deny_unknown_fields` cannot coexist with the
//! flattened gate fields. Every value goes through [`PlanSpec::build`] afterwards, so the
//! reader only checks types; ranges are checked in one place.
//!
//! Shape (all fields optional except `strategy`; durations in minutes, with or without the
//! `_minutes` suffix; rates in [0, 1]; percentages in (0, 100], hundredths allowed):
//!
//! ```json
//! {"strategy": "linear", "start_percentage": 5, "increment": 10, "stage_duration": 60,
//!  "final_percentage": 100,
//!  "min_requests": 100, "max_error_rate": 0.05, "min_success_rate": 0.95,
//!  "min_quality": null, "max_quality_drop": 0.1, "max_latency_ratio": 2.0,
//!  "min_scored": 30, "max_breaker_trips": 1, "max_no_context_rate": null,
//!  "min_shadow_samples": null, "auto_advance": true,
//!  "failure_limit": 3, "emergency_error_rate": 0.1, "emergency_min_requests": 50,
//!  "emergency_quality": 0.5, "emergency_min_scored": 20}
//! ```
//! - `exponential`: `start_percentage` (1), `multiplier` (2), `stage_duration`, `final_percentage`,
//!   and `final_stage`: `{min_duration, <gate fields>}` overriding the stricter final gates;
//! - `canary`: `canary_percentage` (1), `canary_duration` (120), `auto_approve` (false),
//!   `final_percentage` (100), `final_duration` (60);
//! - `steps`: `stages: [{target_percentage, min_duration, auto_advance, <gate fields>}, …]`;
//!   top-level gate fields, `stage_duration` and `auto_advance` are the defaults of each step.

use crate::core::rollout::error::PlanError;
use crate::core::rollout::plan::{Plan, Safety, Strategy, MAX_STAGES};
use crate::core::rollout::stage::StageGates;
use crate::core::rollout::strategy::{
    CanarySpec, ExponentialSpec, LinearSpec, PlanSpec, StepSpec, StrategySpec,
};
use serde_json::{Map, Value};

/// Parses and validates a request body.
pub fn parse_plan(body: &str) -> Result<Plan, PlanError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| PlanError::new("body", format!("is not valid JSON: {e}")))?;
    plan_from_value(&v)
}

/// Validates an already-parsed request body.
pub fn plan_from_value(v: &Value) -> Result<Plan, PlanError> {
    spec_from_value(v)?.build()
}

/// Reads a request body into a [`PlanSpec`] (types checked, ranges not yet).
pub fn spec_from_value(v: &Value) -> Result<PlanSpec, PlanError> {
    let map = v
        .as_object()
        .ok_or_else(|| PlanError::new("body", "must be a JSON object"))?;
    let mut f = Fields::new("", map);
    let strategy = match f.take("strategy") {
        None => {
            return Err(PlanError::new(
                "strategy",
                "is required: one of linear, exponential, canary, steps",
            ))
        }
        Some(Value::String(s)) => Strategy::parse(s).ok_or_else(|| {
            PlanError::new(
                "strategy",
                format!("must be one of linear, exponential, canary, steps, got {s:?}"),
            )
        })?,
        Some(other) => {
            return Err(PlanError::new(
                "strategy",
                format!("must be a string (linear, exponential, canary, steps), got {other}"),
            ))
        }
    };
    let gates = read_gates(&mut f, StageGates::default())?;
    let safety = read_safety(&mut f)?;
    let mut spec = PlanSpec {
        strategy: StrategySpec::Steps(Vec::new()),
        gates,
        auto_advance: true,
        safety,
    };
    if strategy != Strategy::Canary {
        spec.auto_advance = f.boolean("auto_advance")?.unwrap_or(true);
    }
    spec.strategy = match strategy {
        Strategy::Linear => {
            let d = LinearSpec::default();
            StrategySpec::Linear(LinearSpec {
                start_percentage: f.number("start_percentage")?.unwrap_or(d.start_percentage),
                increment: f.number("increment")?.unwrap_or(d.increment),
                stage_duration_minutes: f
                    .minutes("stage_duration")?
                    .unwrap_or(d.stage_duration_minutes),
                final_percentage: f.number("final_percentage")?.unwrap_or(d.final_percentage),
            })
        }
        Strategy::Exponential => {
            let d = ExponentialSpec::default();
            let (final_gates, final_duration_minutes) = match f.take("final_stage") {
                None => (None, None),
                Some(Value::Object(m)) => {
                    let mut g = Fields::new("final_stage.", m);
                    let gates = read_gates(&mut g, spec.gates.stricter())?;
                    let minutes = g.minutes("min_duration")?;
                    g.finish()?;
                    (Some(gates), minutes)
                }
                Some(other) => {
                    return Err(PlanError::new(
                        "final_stage",
                        format!("must be an object of gate fields, got {other}"),
                    ))
                }
            };
            StrategySpec::Exponential(ExponentialSpec {
                start_percentage: f.number("start_percentage")?.unwrap_or(d.start_percentage),
                multiplier: f.number("multiplier")?.unwrap_or(d.multiplier),
                stage_duration_minutes: f
                    .minutes("stage_duration")?
                    .unwrap_or(d.stage_duration_minutes),
                final_percentage: f.number("final_percentage")?.unwrap_or(d.final_percentage),
                final_gates,
                final_duration_minutes,
            })
        }
        Strategy::Canary => {
            let d = CanarySpec::default();
            StrategySpec::Canary(CanarySpec {
                canary_percentage: f
                    .number("canary_percentage")?
                    .unwrap_or(d.canary_percentage),
                canary_duration_minutes: f
                    .minutes("canary_duration")?
                    .unwrap_or(d.canary_duration_minutes),
                auto_approve: f.boolean("auto_approve")?.unwrap_or(d.auto_approve),
                final_percentage: f.number("final_percentage")?.unwrap_or(d.final_percentage),
                final_duration_minutes: f
                    .minutes("final_duration")?
                    .unwrap_or(d.final_duration_minutes),
            })
        }
        Strategy::Steps => {
            let default_minutes = f
                .minutes("stage_duration")?
                .unwrap_or(LinearSpec::default().stage_duration_minutes);
            let list = match f.take("stages") {
                Some(Value::Array(a)) => a,
                None => {
                    return Err(PlanError::new(
                        "stages",
                        "is required for strategy steps: a list of {target_percentage, …}",
                    ))
                }
                Some(other) => {
                    return Err(PlanError::new(
                        "stages",
                        format!("must be a list of stage objects, got {other}"),
                    ))
                }
            };
            if list.is_empty() {
                return Err(PlanError::new("stages", "must hold at least one stage"));
            }
            if list.len() > MAX_STAGES {
                return Err(PlanError::new(
                    "stages",
                    format!("must hold at most {MAX_STAGES} stages, got {}", list.len()),
                ));
            }
            let mut steps = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                let prefix = format!("stages[{i}].");
                let m = item.as_object().ok_or_else(|| {
                    PlanError::new(
                        format!("stages[{i}]"),
                        format!("must be an object with target_percentage, got {item}"),
                    )
                })?;
                let mut s = Fields::new(&prefix, m);
                let target = s.number("target_percentage")?.ok_or_else(|| {
                    PlanError::new(format!("{prefix}target_percentage"), "is required")
                })?;
                let step = StepSpec {
                    target_percentage: target,
                    min_duration_minutes: s.minutes("min_duration")?.unwrap_or(default_minutes),
                    auto_advance: s.boolean("auto_advance")?.unwrap_or(spec.auto_advance),
                    gates: read_gates(&mut s, spec.gates.clone())?,
                };
                s.finish()?;
                steps.push(step);
            }
            StrategySpec::Steps(steps)
        }
    };
    f.finish()?;
    Ok(spec)
}

/// Reads the gate fields present in `f` over `base`.
fn read_gates(f: &mut Fields<'_>, base: StageGates) -> Result<StageGates, PlanError> {
    let mut g = base;
    if let Some(v) = f.count("min_requests")? {
        g.min_requests = v;
    }
    if let Some(v) = f.count("min_scored")? {
        g.min_scored = v;
    }
    if let Some(v) = f.number("max_error_rate")? {
        g.max_error_rate = v;
    }
    if let Some(v) = f.number("min_success_rate")? {
        g.min_success_rate = v;
    }
    if let Some(v) = f.optional_number("min_quality")? {
        g.min_quality = v;
    }
    if let Some(v) = f.optional_number("max_quality_drop")? {
        g.max_quality_drop = v;
    }
    if let Some(v) = f.optional_number("max_latency_ratio")? {
        g.max_latency_ratio = v;
    }
    if let Some(v) = f.count("max_breaker_trips")? {
        g.max_breaker_trips = v;
    }
    if let Some(v) = f.optional_number("max_no_context_rate")? {
        g.max_no_context_rate = v;
    }
    if let Some(v) = f.optional_count("min_shadow_samples")? {
        g.min_shadow_samples = v;
    }
    Ok(g)
}

fn read_safety(f: &mut Fields<'_>) -> Result<Safety, PlanError> {
    let mut s = Safety::default();
    if let Some(v) = f.count("failure_limit")? {
        // Out-of-range values are refused by Safety::validate; saturate into u32 for it.
        s.failure_limit = u32::try_from(v).unwrap_or(u32::MAX);
    }
    if let Some(v) = f.number("emergency_error_rate")? {
        s.emergency_error_rate = v;
    }
    if let Some(v) = f.count("emergency_min_requests")? {
        s.emergency_min_requests = v;
    }
    if let Some(v) = f.number("emergency_quality")? {
        s.emergency_quality = v;
    }
    if let Some(v) = f.count("emergency_min_scored")? {
        s.emergency_min_scored = v;
    }
    Ok(s)
}

/// A JSON object being read field by field; whatever is left unread at [`Fields::finish`] is an
/// unknown field.
struct Fields<'a> {
    prefix: String,
    map: &'a Map<String, Value>,
    read: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(prefix: &str, map: &'a Map<String, Value>) -> Fields<'a> {
        Fields {
            prefix: prefix.to_string(),
            map,
            read: Vec::new(),
        }
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn take(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key)
    }

    /// A number; `null` and other types are refused.
    fn number(&mut self, key: &'static str) -> Result<Option<f64>, PlanError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| PlanError::new(self.name(key), "must be a finite number")),
            Some(other) => Err(PlanError::new(
                self.name(key),
                format!("must be a number, got {other}"),
            )),
        }
    }

    /// A number, or `null` to turn the gate off: `Some(None)`.
    fn optional_number(&mut self, key: &'static str) -> Result<Option<Option<f64>>, PlanError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(|v| Some(Some(v)))
                .ok_or_else(|| PlanError::new(self.name(key), "must be a finite number")),
            Some(other) => Err(PlanError::new(
                self.name(key),
                format!("must be a number, or null to turn it off, got {other}"),
            )),
        }
    }

    /// A whole, non-negative number (`100` or `100.0`).
    fn count(&mut self, key: &'static str) -> Result<Option<u64>, PlanError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => self.whole(key, v).map(Some),
        }
    }

    fn optional_count(&mut self, key: &'static str) -> Result<Option<Option<u64>>, PlanError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => self.whole(key, v).map(|n| Some(Some(n))),
        }
    }

    fn whole(&self, key: &str, v: &Value) -> Result<u64, PlanError> {
        let bad = || {
            PlanError::new(
                self.name(key),
                format!("must be a whole number ≥ 0, got {v}"),
            )
        };
        match v {
            Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => Ok(u),
                // 100.0 is a whole number; 2.5, -1 and 1e300 are not counts.
                (None, Some(x)) if x.fract() == 0.0 && (0.0..=9.0e15).contains(&x) => Ok(x as u64),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    fn boolean(&mut self, key: &'static str) -> Result<Option<bool>, PlanError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(PlanError::new(
                self.name(key),
                format!("must be true or false, got {other}"),
            )),
        }
    }

    /// A duration in minutes under `key` or `key_minutes` (not both).
    fn minutes(&mut self, key: &'static str) -> Result<Option<f64>, PlanError> {
        let long: &'static str = match key {
            "stage_duration" => "stage_duration_minutes",
            "canary_duration" => "canary_duration_minutes",
            "final_duration" => "final_duration_minutes",
            "min_duration" => "min_duration_minutes",
            _ => key,
        };
        let a = self.number(key)?;
        let b = self.number(long)?;
        match (a, b) {
            (Some(_), Some(_)) => Err(PlanError::new(
                self.name(long),
                format!("give either {key} or {long} (both are minutes), not both"),
            )),
            (a, b) => Ok(a.or(b)),
        }
    }

    /// Refuses any field that was never read.
    fn finish(self) -> Result<(), PlanError> {
        match self.map.keys().find(|k| !self.read.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => {
                let mut accepted = self.read.clone();
                accepted.sort_unstable();
                accepted.dedup();
                // A blank key is shown quoted, so the error still names what to remove
                // (found by `make fuzz`, target `rollout_plan_request`).
                let key = if k.trim().is_empty() {
                    format!("{k:?}")
                } else {
                    k.clone()
                };
                Err(PlanError::new(
                    self.name(&key),
                    format!("is not a field here; accepted: {}", accepted.join(", ")),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> PlanError {
        plan_from_value(&v).unwrap_err()
    }

    /// Found by `make fuzz` (target `rollout_plan_request`): an unknown field named `""` gave
    /// an error whose field was empty (`: is not a field here`).
    #[test]
    fn a_blank_unknown_field_is_named_quoted() {
        let e = err(json!({"strategy": "linear", "": 1}));
        assert_eq!(e.field, "\"\"");
        let e = err(json!({"strategy": "steps", "stages": [{"target_percentage": 50, " ": 1}]}));
        assert!(e.field.ends_with("\" \""), "{e}");
    }

    #[test]
    fn minimal_requests_use_the_defaults() {
        for s in ["linear", "exponential", "canary"] {
            let p = plan_from_value(&json!({ "strategy": s })).unwrap();
            assert_eq!(p.strategy().as_str(), s);
            assert_eq!(p.final_percentage().percent(), 100.0);
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err(json!({})).field, "strategy");
        assert_eq!(err(json!({"strategy": "blue_green"})).field, "strategy");
        assert_eq!(err(json!([])).field, "body");
        assert_eq!(
            err(json!({"strategy": "linear", "increment": "10"})).field,
            "increment"
        );
        assert_eq!(
            err(json!({"strategy": "linear", "stage_duraton": 60})).field,
            "stage_duraton"
        );
        assert_eq!(
            err(json!({"strategy": "canary", "increment": 10})).field,
            "increment"
        );
        assert_eq!(
            err(json!({"strategy": "linear", "min_requests": 2.5})).field,
            "min_requests"
        );
        assert_eq!(
            err(json!({"strategy": "linear", "stage_duration": 1, "stage_duration_minutes": 1}))
                .field,
            "stage_duration_minutes"
        );
        assert_eq!(
            err(json!({"strategy": "steps", "stages": [{"target_percentage": 10}, {"target_percentage": 5}]}))
                .field,
            "stages[1].target_percentage"
        );
        assert_eq!(
            err(json!({"strategy": "steps", "stages": [{"min_duration": 5}]})).field,
            "stages[0].target_percentage"
        );
        assert_eq!(
            err(json!({"strategy": "exponential", "final_stage": {"max_error_rate": 2}})).field,
            "final_stage.max_error_rate"
        );
        assert_eq!(
            err(json!({"strategy": "linear", "failure_limit": 0})).field,
            "failure_limit"
        );
        assert_eq!(
            err(json!({"strategy": "linear", "max_error_rate": null})).field,
            "max_error_rate"
        );
        assert_eq!(parse_plan("{").unwrap_err().field, "body");
    }

    #[test]
    fn steps_inherit_top_level_defaults() {
        let p = plan_from_value(&json!({
            "strategy": "steps", "stage_duration": 30, "max_error_rate": 0.02,
            "stages": [{"target_percentage": 0.25}, {"target_percentage": 50, "min_duration_minutes": 90, "min_quality": 0.6}]
        }))
        .unwrap();
        assert_eq!(p.stages()[0].target_percentage.hundredths(), 25);
        assert_eq!(p.stages()[0].min_duration_ms, 1_800_000);
        assert_eq!(p.stages()[0].gates.max_error_rate, 0.02);
        assert_eq!(p.stages()[1].min_duration_ms, 5_400_000);
        assert_eq!(p.stages()[1].gates.min_quality, Some(0.6));
        assert_eq!(p.stages()[1].gates.max_error_rate, 0.02);
    }

    #[test]
    fn null_turns_an_optional_gate_off() {
        let p = plan_from_value(&json!({"strategy": "linear", "max_latency_ratio": null})).unwrap();
        assert!(p
            .stages()
            .iter()
            .all(|s| s.gates.max_latency_ratio.is_none()));
    }
}
