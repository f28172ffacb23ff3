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
//!
//! The operator's console (`www/`) asks its questions through one export each, every one a thin
//! wrapper over a core function: `decideMany` (who goes where), `diffConfigs` (who moves,
//! `core::movers`), `simulate` by count (`core::simulate` over `core::population`: the ids are
//! generated in wasm), `planTimeline` / `storedPlanTimeline` (`core::rollout::request` +
//! `timeline`: a bad plan fails with the worker's own plan error), `breakerReplay`
//! (`core::breaker::replay` over typed lines or a generated scenario), `liveVariables` /
//! `liveState` (`core::live`: a running router's config and status as preview inputs) and
//! `defaultVariables`. Errors about one field of the input carry it as `error.field`.

use crate::core::breaker::replay::{self, ReplayError, ReplayInput};
use crate::core::breaker::scenario::{self, CallDoc, Scenario};
use crate::core::classify::{self, QueryType};
use crate::core::cohort;
use crate::core::config::{self, Loaded};
use crate::core::decide::{
    self, Decision, PreparedQuery, RouteRequest, RouteRequestDoc, RouteState,
};
use crate::core::live;
use crate::core::model::{Reason, Upstream};
use crate::core::movers::{self, Change};
use crate::core::population::Population;
use crate::core::rollout::{request as plan_request, timeline, Plan, PlanError};
use crate::core::simulate;
use serde::{Deserialize, Serialize};
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
pub fn in_rollout(salt: &str, key: &str, percentage: f64) -> Result<bool, JsValue> {
    let pct = cohort::Percent::from_percent(percentage).ok_or_else(|| {
        error(&format!(
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
pub fn load_config(config: JsValue) -> Result<JsValue, JsValue> {
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
pub fn decide(config: JsValue, request: JsValue, state: JsValue) -> Result<JsValue, JsValue> {
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

/// Largest population `simulate` and `diffConfigs` take by count.
const MAX_USERS: f64 = 10_000_000.0;

/// `users` as the exports take it: a whole number `n` (the synthetic `user-0 … user-(n-1)`,
/// generated inside wasm) or an array of id strings.
enum Users {
    Count(u64),
    Keys(Vec<String>),
}

fn parse_users(users: JsValue) -> Result<Users, JsValue> {
    if let Some(n) = users.as_f64() {
        if !(0.0..=MAX_USERS).contains(&n) || n.fract() != 0.0 {
            return Err(field_error(
                "users",
                &format!("must be an array of ids or a whole number in [0, {MAX_USERS}], got {n}"),
            ));
        }
        return Ok(Users::Count(n as u64));
    }
    from_js::<Vec<String>>(&users)
        .map(Users::Keys)
        .map_err(|e| field_error("users", &format!("must be an array of strings: {e}")))
}

/// Decides for every key in `users` (an array of strings, or a number `n` meaning
/// `user-0 … user-(n-1)`, generated inside wasm) with the same `query`, and returns counts per
/// upstream, reason and arm plus a 100-bucket histogram of positions.
#[wasm_bindgen]
pub fn simulate(
    config: JsValue,
    users: JsValue,
    query: Option<String>,
    state: JsValue,
) -> Result<JsValue, JsValue> {
    let loaded = load(&config)?;
    let state = route_state(&state)?;
    let query = query.unwrap_or_default();
    let sim = match parse_users(users)? {
        Users::Count(n) => {
            simulate::simulate_population(&loaded.config, &state, Population::users(n), &query)
        }
        Users::Keys(keys) => simulate::simulate(&loaded.config, &state, keys.iter(), &query),
    };
    to_js(&sim)
}

/// One decision per key in `keys` for the same `request` (`{query, headers?}`): the page's "who
/// goes where" table. Returns `{rows, summary}`: each row is the decision (as [`decide`] returns
/// it) with its `key`; `summary` counts them as [`simulate`] does.
#[wasm_bindgen(js_name = decideMany)]
pub fn decide_many(
    config: JsValue,
    keys: JsValue,
    request: JsValue,
    state: JsValue,
) -> Result<JsValue, JsValue> {
    #[derive(Serialize)]
    struct Row<'a> {
        key: &'a str,
        #[serde(flatten)]
        decision: Explained<'a>,
    }
    const MAX_KEYS: usize = 100_000;
    let loaded = load(&config)?;
    let state = route_state(&state)?;
    let keys: Vec<String> = from_js(&keys)
        .map_err(|e| field_error("keys", &format!("must be an array of strings: {e}")))?;
    if keys.len() > MAX_KEYS {
        return Err(field_error(
            "keys",
            &format!("at most {MAX_KEYS} ids at once, got {}", keys.len()),
        ));
    }
    let doc = if request.is_undefined() || request.is_null() {
        RouteRequestDoc::default()
    } else {
        route_request(&request)?
    };
    let prepared = PreparedQuery::new(&doc.query);
    let decisions: Vec<Decision> = keys
        .iter()
        .map(|k| {
            decide::decide(
                &loaded.config,
                &state,
                &RouteRequest {
                    key: Some(k),
                    query: prepared.as_query(),
                    headers: &doc.headers,
                    override_cohort: doc.override_cohort,
                    override_authorized: doc.override_authorized,
                },
            )
        })
        .collect();
    let query_type = prepared.query_type();
    let rows: Vec<Row<'_>> = keys
        .iter()
        .zip(&decisions)
        .map(|(k, d)| Row {
            key: k,
            decision: Explained {
                decision: d,
                query_type,
            },
        })
        .collect();
    to_js(&serde_json::json!({
        "rows": rows,
        "summary": simulate::summarize(&decisions),
    }))
}

/// Who moves between the `current` and the `proposed` configuration: every user in `users` (a
/// count or an array of ids, as for [`simulate`]) decided under both, with `options`
/// `{query?, state?, sample?}` (sample: ids kept per direction, default 10, at most 100).
/// Returns `{total, moved, lightrag_to_perplexity: {count, by_reason, sample},
/// perplexity_to_lightrag, stayed_lightrag, stayed_perplexity, reason_changes, arm_changes,
/// lightrag_before, lightrag_after}`.
#[wasm_bindgen(js_name = diffConfigs)]
pub fn diff_configs(
    current: JsValue,
    proposed: JsValue,
    users: JsValue,
    options: JsValue,
) -> Result<JsValue, JsValue> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Options {
        query: String,
        state: Option<RouteState>,
        sample: Option<usize>,
    }
    let current = load(&current)?;
    let proposed = load(&proposed)?;
    let o: Options = if options.is_undefined() || options.is_null() {
        Options::default()
    } else {
        from_js(&options).map_err(|e| {
            field_error(
                "options",
                &format!("must be {{query?, state?, sample?}}: {e}"),
            )
        })?
    };
    let state = o.state.unwrap_or_default();
    let change = Change {
        current: &current.config,
        proposed: &proposed.config,
        state: &state,
        query: &o.query,
        sample: o.sample.unwrap_or(10).min(movers::MAX_SAMPLE),
    };
    let m = match parse_users(users)? {
        Users::Count(n) => movers::movement_of_population(change, Population::users(n)),
        Users::Keys(keys) => movers::movement(change, keys.iter()),
    };
    to_js(&m)
}

/// The plan's percentage over time (docs/rollout.md#strategies), from a `POST /admin/rollout`
/// body (an object, or its JSON text): `{strategy, stages, safety, timeline}` where `stages`
/// hold each stage's target, minimum duration and gates and `timeline` its start and end
/// offsets. A plan the worker would refuse throws the worker's error (`error.field` names the
/// field, as in its 422).
#[wasm_bindgen(js_name = planTimeline)]
pub fn plan_timeline(plan: JsValue) -> Result<JsValue, JsValue> {
    let parsed = match plan.as_string() {
        Some(text) => plan_request::parse_plan(&text),
        None => {
            let v: Value = from_js(&plan).map_err(|e| field_error("body", &e))?;
            plan_request::plan_from_value(&v)
        }
    };
    plan_view(&parsed.map_err(|e: PlanError| field_error(&e.field, &e.message))?)
}

/// [`plan_timeline`] for a plan as the rollout state stores it (`GET /admin/rollout` → `plan`:
/// `{strategy, stages: [{target_percentage, min_duration_ms, …}], safety}`), re-validated.
#[wasm_bindgen(js_name = storedPlanTimeline)]
pub fn stored_plan_timeline(plan: JsValue) -> Result<JsValue, JsValue> {
    let v: Value = from_js(&plan).map_err(|e| field_error("plan", &e))?;
    let plan = Plan::deserialize(&v).map_err(|e| field_error("plan", &e.to_string()))?;
    plan_view(&plan)
}

fn plan_view(plan: &Plan) -> Result<JsValue, JsValue> {
    let mut v = serde_json::to_value(plan).map_err(|e| {
        JsValue::from(js_sys::Error::new(&format!(
            "could not convert the plan: {e}"
        )))
    })?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "timeline".into(),
            serde_json::to_value(timeline::timeline(plan)).unwrap_or(Value::Null),
        );
    }
    to_js(&v)
}

/// Replays calls through LightRAG's breaker under `config`'s breaker settings
/// (`core::breaker::replay`). `input` is text, one call per line
/// (`<seconds> <status | outcome> [latency] [probe roll]`), an array of calls
/// `[{at_ms, status | kind, latency_ms?, probe_roll?}]`, or a scenario object
/// `{duration_s, calls_per_minute, error_rate, slow_rate, error_status, latency_ms,
/// slow_latency_ms, bursts: [{at_s, duration_s, error_rate}], seed}`. `options`:
/// `{jitter_roll?}` (default 0.5: no jitter). Returns `{transitions: [{at_ms, from, to, cause,
/// open_until_ms, reason}], segments, calls, admitted, rejected, probes, failures, trips,
/// start_ms, end_ms}`.
#[wasm_bindgen(js_name = breakerReplay)]
pub fn breaker_replay(
    config: JsValue,
    input: JsValue,
    options: JsValue,
) -> Result<JsValue, JsValue> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Options {
        jitter_roll: Option<f64>,
    }
    let loaded = load(&config)?;
    let policy = loaded.config.breaker;
    let slow = policy.settings().slow_call_ms;
    let o: Options = if options.is_undefined() || options.is_null() {
        Options::default()
    } else {
        from_js(&options).map_err(|e| field_error("options", &e))?
    };
    let (calls, until_ms) = match input.as_string() {
        Some(text) => (
            scenario::parse_lines(&text, slow).map_err(replay_error)?,
            None,
        ),
        None if js_sys::Array::is_array(&input) => {
            let docs: Vec<CallDoc> = from_js(&input).map_err(|e| field_error("calls", &e))?;
            (
                scenario::calls_from_docs(&docs, slow).map_err(replay_error)?,
                None,
            )
        }
        None => {
            let sc: Scenario = from_js(&input).map_err(|e| field_error("scenario", &e))?;
            let until = (sc.duration_s * 1000.0).round() as u64;
            (sc.calls(slow).map_err(replay_error)?, Some(until))
        }
    };
    let r = replay::replay(&ReplayInput {
        policy,
        calls: &calls,
        jitter_roll: o.jitter_roll.unwrap_or(0.5),
        until_ms,
    })
    .map_err(replay_error)?;
    to_js(&r)
}

fn replay_error(e: ReplayError) -> JsValue {
    field_error(&e.field, &e.message)
}

/// A running router's `GET /admin/config` → `effective` as the variables that produce it:
/// `{variables, notes}` (notes name what the router did not report).
#[wasm_bindgen(js_name = liveVariables)]
pub fn live_variables(effective: JsValue) -> Result<JsValue, JsValue> {
    let v: Value = from_js(&effective).map_err(|e| field_error("effective", &e))?;
    let l = live::variables_of_effective(&v).map_err(|e| field_error("effective", &e))?;
    to_js(&l)
}

/// A running router's `GET /admin/status` as the live state of a decision:
/// `{state, breaker, notes}`.
#[wasm_bindgen(js_name = liveState)]
pub fn live_state(status: JsValue) -> Result<JsValue, JsValue> {
    let v: Value = from_js(&status).map_err(|e| field_error("status", &e))?;
    let l = live::route_state_of_status(&v).map_err(|e| field_error("status", &e))?;
    to_js(&l)
}

/// Every configuration variable the worker reads, in its table's order.
#[wasm_bindgen(js_name = knownVariables)]
pub fn known_variables() -> Result<JsValue, JsValue> {
    to_js(config::KNOWN_VARIABLES)
}

/// Every variable at its default, as variables (what the page's form shows when a field is
/// left blank).
#[wasm_bindgen(js_name = defaultVariables)]
pub fn default_variables() -> Result<JsValue, JsValue> {
    to_js(&live::variables(&config::defaults()))
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
    pub fn new(config: JsValue, state: JsValue) -> Result<Router, JsValue> {
        Ok(Router {
            loaded: load(&config)?,
            state: route_state(&state)?,
            prepared: None,
        })
    }

    /// Every rejected configuration value (`[{variable, value, message, source, index?}]`).
    pub fn problems(&self) -> Result<JsValue, JsValue> {
        to_js(&self.loaded.problems)
    }

    /// The full decision object, as [`decide`] returns it.
    pub fn decide(&self, request: JsValue) -> Result<JsValue, JsValue> {
        let request = route_request(&request)?;
        let d = decide::decide(&self.loaded.config, &self.state, &request.as_request());
        to_js(&explained(&d, &request.query))
    }

    /// The decision for `key` asking `query`, packed into one integer so the call allocates no
    /// JS object: bit 0 = upstream (1 LightRAG, 0 Perplexity); bits 1–3 = reason code
    /// (0 disabled, 1 forced, 2 rollback, 3 circuit_open, 4 quality_gate, 5 rule, 6 rollout_in,
    /// 7 rollout_out); bit 4 = in experiment; bits 8 and up = position in hundredths.
    /// `query` crosses into wasm only when the configuration has a rule that could read it
    /// ([`decide::reads_query`]); otherwise it stays a JS string and is never copied, so a
    /// plain rollout costs one string copy (the key), not two. A `query` that is not a string
    /// (`undefined`, a number…) is the empty query.
    pub fn route(&self, key: &str, query: &JsValue) -> u32 {
        let text = if decide::reads_query(&self.loaded.config) {
            query.as_string()
        } else {
            None
        };
        pack(&decide::decide(
            &self.loaded.config,
            &self.state,
            &RouteRequest::new(Some(key), text.as_deref().unwrap_or("")),
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

fn load(config: &JsValue) -> Result<Loaded, JsValue> {
    if config.is_undefined() || config.is_null() {
        return Ok(config::load(&Map::new(), None, 0));
    }
    let value: Value = from_js(config).map_err(|e| {
        error(&format!(
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
        other => Err(error(&format!(
            "config must be an object of variables, got {}",
            json_type(&other)
        ))),
    }
}

fn route_state(state: &JsValue) -> Result<RouteState, JsValue> {
    if state.is_undefined() || state.is_null() {
        return Ok(RouteState::default());
    }
    from_js(state).map_err(|e| {
        error(&format!(
            "state must be {{rollback_active, lightrag_breaker, quality_gate_closed, quality_probe_roll, rollout_percentage}}: {e}"
        ))
    })
}

fn route_request(request: &JsValue) -> Result<RouteRequestDoc, JsValue> {
    if request.is_undefined() || request.is_null() {
        return Err(error(
            "request is required: {key, query, headers?, override_cohort?, override_authorized?}",
        ));
    }
    from_js(request).map_err(|e| {
        error(&format!(
            "request must be {{key, query, headers?, override_cohort?, override_authorized?}}: {e}"
        ))
    })
}

/// A JS `Error` with `message`.
fn error(message: &str) -> JsValue {
    js_sys::Error::new(message).into()
}

/// A JS `Error` about one field of the input: the message is `field: message` (as the worker
/// words it) and `error.field` names the field for the page to point at.
fn field_error(field: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(&format!("{field}: {message}"));
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&e, &JsValue::from_str("field"), &JsValue::from_str(field));
    e.into()
}

/// A plain JS value → `T`, through JSON text (`JSON.stringify`, then serde_json): one
/// deserializer for every type, which keeps the preview build small. Values JSON cannot hold
/// (functions, `undefined` members) are dropped as `JSON.stringify` drops them.
fn from_js<T: serde::de::DeserializeOwned>(v: &JsValue) -> Result<T, String> {
    let text = js_sys::JSON::stringify(v)
        .map_err(|_| "the value cannot be written as JSON (a cycle or a BigInt?)".to_string())?;
    let text = String::from(text);
    crate::core::json::from_text(&text).map_err(|e| e.to_string())
}

/// `value` → a plain JS value, through JSON text (serde_json, then `JSON.parse`).
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value)
        .map_err(|e| error(&format!("could not convert the result: {e}")))?;
    js_sys::JSON::parse(&text)
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
