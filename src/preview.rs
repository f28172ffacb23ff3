//! wasm-bindgen exports of the core for the browser preview page (`www/`) and Node.
//!
//! Why a separate, thin module: the page must compute exactly what the worker computes, so it
//! calls the same core functions (`config::load`, `decide::decide`, `simulate::simulate`,
//! `classify::classify`, `cohort::position`); this file only converts plain JS values in and out
//! (serde-wasm-bindgen) and turns every error into a JS `Error` with a message. Nothing here may
//! panic: a panic in wasm poisons the whole module instance.
//!
//! Two ways to call it:
//! - one-shot functions (`decide(config, request, state?)`, `simulate(...)`) that parse the
//!   configuration on every call — simple, and what the spec suites use;
//! - a prepared [`Router`] (`new Router(config, state?)`) that parses it once, for loops and the
//!   benchmark; `router.route(key, query)` returns a packed integer so a call does not allocate
//!   a JS object.

use crate::core::classify::{self, QueryType};
use crate::core::cohort;
use crate::core::config::{self, Loaded};
use crate::core::decide::{
    self, Decision, PreparedQuery, RouteRequest, RouteRequestDoc, RouteState,
};
use crate::core::model::{Reason, Upstream};
use crate::core::simulate;
use serde::Serialize;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

/// The user's position on the rollout line in `[0, 100)` with 0.01 resolution
/// (docs/architecture.md#cohort-hashing).
#[wasm_bindgen]
pub fn bucket(salt: &str, key: &str) -> f64 {
    cohort::position(salt, key).percent()
}

/// The raw murmur3 hash (`murmur3_x86_32(salt + ":" + key, 0)`), for cross-checking other tools.
#[wasm_bindgen(js_name = hashKey)]
pub fn hash_key(salt: &str, key: &str) -> u32 {
    cohort::hash(salt, key)
}

/// Whether `key` is in a rollout of `percentage` (0–100, 0.01 resolution).
#[wasm_bindgen(js_name = inRollout)]
pub fn in_rollout(salt: &str, key: &str, percentage: f64) -> Result<bool, JsError> {
    let pct = cohort::Percent::from_percent(percentage).ok_or_else(|| {
        JsError::new(&format!(
            "percentage must be a number in [0, 100], got {percentage}"
        ))
    })?;
    Ok(cohort::in_rollout(cohort::position(salt, key), pct))
}

/// The crate version this build came from.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The query type the classifier gives `query` (`temporal`, `mechanism`, …).
#[wasm_bindgen]
pub fn classify(query: &str) -> String {
    classify::classify(query).as_str().to_string()
}

/// Loads a configuration object (variable name → string/number/bool, as wrangler `[vars]`; or
/// `{vars, overrides, version}` to layer runtime overrides as the worker does) and returns `{config, problems}`: the effective typed config and every rejected value.
#[wasm_bindgen(js_name = loadConfig)]
pub fn load_config(config: JsValue) -> Result<JsValue, JsError> {
    let loaded = load(&config)?;
    to_js(&serde_json::json!({
        "config": loaded.config,
        "problems": loaded.problems,
    }))
}

/// The routing decision the worker would make (docs/architecture.md#the-routing-decision) for
/// `request`
/// (`{key, query, headers, override_cohort, override_authorized}`) under `config` and the
/// optional live `state` (`{rollback_active, lightrag_breaker, quality_gate_closed,
/// quality_probe_roll}`).
#[wasm_bindgen]
pub fn decide(config: JsValue, request: JsValue, state: JsValue) -> Result<JsValue, JsError> {
    let loaded = load(&config)?;
    let state = route_state(&state)?;
    let request = route_request(&request)?;
    let d = decide::decide(&loaded.config, &state, &request.as_request());
    to_js(&explained(&d, &request.query))
}

/// A decision as the page shows it: the decision's public shape plus the query's class.
#[derive(Serialize)]
struct Explained<'a> {
    #[serde(flatten)]
    decision: &'a Decision,
    query_type: QueryType,
}

fn explained<'a>(decision: &'a Decision, query: &str) -> Explained<'a> {
    Explained {
        decision,
        query_type: classify::classify(query),
    }
}

/// Decides for every key in `users` (an array of strings, or a number `n` meaning
/// `user-0 … user-(n-1)`) with the same `query`, and returns counts per upstream, reason and
/// arm plus a 100-bucket histogram of positions.
#[wasm_bindgen]
pub fn simulate(
    config: JsValue,
    users: JsValue,
    query: Option<String>,
    state: JsValue,
) -> Result<JsValue, JsError> {
    let loaded = load(&config)?;
    let state = route_state(&state)?;
    let query = query.unwrap_or_default();
    let sim = if let Some(n) = users.as_f64() {
        if !(0.0..=10_000_000.0).contains(&n) || n.fract() != 0.0 {
            return Err(JsError::new(&format!(
                "users must be an array of ids or a whole number in [0, 10000000], got {n}"
            )));
        }
        let n = n as u64;
        simulate::simulate(
            &loaded.config,
            &state,
            (0..n).map(|i| format!("user-{i}")),
            &query,
        )
    } else {
        let keys: Vec<String> = serde_wasm_bindgen::from_value(users)
            .map_err(|e| JsError::new(&format!("users must be an array of strings: {e}")))?;
        simulate::simulate(&loaded.config, &state, keys.iter(), &query)
    };
    to_js(&sim)
}

/// A configuration parsed once, for deciding many requests quickly.
#[wasm_bindgen]
pub struct Router {
    loaded: Loaded,
    state: RouteState,
    prepared: Option<PreparedQuery>,
}

#[wasm_bindgen]
impl Router {
    /// Parses `config` (and the optional `state`) once.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue, state: JsValue) -> Result<Router, JsError> {
        Ok(Router {
            loaded: load(&config)?,
            state: route_state(&state)?,
            prepared: None,
        })
    }

    /// Every rejected configuration value (`[{variable, value, message, source, index?}]`).
    pub fn problems(&self) -> Result<JsValue, JsError> {
        to_js(&self.loaded.problems)
    }

    /// The full decision object, as [`decide`] returns it.
    pub fn decide(&self, request: JsValue) -> Result<JsValue, JsError> {
        let request = route_request(&request)?;
        let d = decide::decide(&self.loaded.config, &self.state, &request.as_request());
        to_js(&explained(&d, &request.query))
    }

    /// The decision for `key` asking `query`, packed into one integer so the call allocates no
    /// JS object: bit 0 = upstream (1 LightRAG, 0 Perplexity); bits 1–3 = reason code
    /// (0 disabled, 1 forced, 2 rollback, 3 circuit_open, 4 quality_gate, 5 rule, 6 rollout_in,
    /// 7 rollout_out); bit 4 = in experiment; bits 8 and up = position in hundredths.
    /// Borrows `key` and `query` ([`RouteRequest`]): no copy beyond the one wasm-bindgen makes to
    /// pass each string in.
    pub fn route(&self, key: &str, query: &str) -> u32 {
        pack(&decide::decide(
            &self.loaded.config,
            &self.state,
            &RouteRequest::new(Some(key), query),
        ))
    }
}

#[wasm_bindgen]
impl Router {
    /// Classifies `query` once for [`Router::route_prepared`]: "who goes where for this
    /// question" over many users without classifying it per user.
    #[wasm_bindgen(js_name = prepareQuery)]
    pub fn prepare_query(&mut self, query: &str) {
        self.prepared = Some(PreparedQuery::new(query));
    }

    /// [`Router::route`] for `key` and the query given to `prepareQuery` (the empty query if none
    /// was given); the same packed result, the same decision.
    #[wasm_bindgen(js_name = routePrepared)]
    pub fn route_prepared(&mut self, key: &str) -> u32 {
        let q = self.prepared.get_or_insert_with(|| PreparedQuery::new(""));
        pack(&decide::decide(
            &self.loaded.config,
            &self.state,
            &RouteRequest::new(Some(key), q.as_query()),
        ))
    }
}

fn pack(d: &Decision) -> u32 {
    let upstream = u32::from(d.upstream == Upstream::Lightrag);
    let reason = match d.reason {
        Reason::Disabled => 0,
        Reason::Forced => 1,
        Reason::Rollback => 2,
        Reason::CircuitOpen => 3,
        Reason::QualityGate => 4,
        Reason::Rule(_) => 5,
        Reason::RolloutIn => 6,
        Reason::RolloutOut => 7,
    };
    let pos = d.position.map_or(0, |p| u32::from(p.hundredths()));
    upstream | (reason << 1) | (u32::from(d.in_experiment) << 4) | (pos << 8)
}

fn load(config: &JsValue) -> Result<Loaded, JsError> {
    if config.is_undefined() || config.is_null() {
        return Ok(config::load(&Map::new(), None, 0));
    }
    let value: Value = serde_wasm_bindgen::from_value(config.clone()).map_err(|e| {
        JsError::new(&format!(
            "config must be an object of variables (e.g. {{\"LIGHTRAG_ROLLOUT_PERCENTAGE\": \"25\"}}): {e}"
        ))
    })?;
    match value {
        // Structured form: {vars, overrides?, version?} — the worker's layering of wrangler vars
        // and KV overrides.
        Value::Object(o) if o.get("vars").is_some_and(Value::is_object) => {
            let empty = Map::new();
            let vars = o.get("vars").and_then(Value::as_object).unwrap_or(&empty);
            let overrides = o.get("overrides").and_then(Value::as_object);
            let version = o.get("version").and_then(Value::as_u64).unwrap_or(0);
            Ok(config::load(vars, overrides, version))
        }
        Value::Object(vars) => Ok(config::load(&vars, None, 0)),
        other => Err(JsError::new(&format!(
            "config must be an object of variables, got {}",
            json_type(&other)
        ))),
    }
}

fn route_state(state: &JsValue) -> Result<RouteState, JsError> {
    if state.is_undefined() || state.is_null() {
        return Ok(RouteState::default());
    }
    serde_wasm_bindgen::from_value(state.clone()).map_err(|e| {
        JsError::new(&format!(
            "state must be {{rollback_active, lightrag_breaker, quality_gate_closed, quality_probe_roll, rollout_percentage}}: {e}"
        ))
    })
}

fn route_request(request: &JsValue) -> Result<RouteRequestDoc, JsError> {
    if request.is_undefined() || request.is_null() {
        return Err(JsError::new(
            "request is required: {key, query, headers?, override_cohort?, override_authorized?}",
        ));
    }
    serde_wasm_bindgen::from_value(request.clone()).map_err(|e| {
        JsError::new(&format!(
            "request must be {{key, query, headers?, override_cohort?, override_authorized?}}: {e}"
        ))
    })
}

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("could not convert the result: {e}")))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
