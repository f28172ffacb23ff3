//! The routing decision (DESIGN §3): configuration + state + request → upstream and why.
//!
//! Why one pure function: the worker, the browser preview and the spec files must agree on every
//! request, so the decision takes everything it depends on as arguments — the [`Config`], a
//! [`RouteState`] the caller computed from its breaker, quality window and rollout state (with
//! any randomness already drawn as a roll), and the [`RouteRequest`]. No clock, no I/O, no
//! randomness here.
//!
//! # Order (each step names its reason; the first that applies wins)
//! 1. `disabled` — integration off → Perplexity.
//! 2. `forced`, in this order: deny list → Perplexity (beats everything but `disabled`);
//!    an override header, honoured only when the request carried the admin/preview token;
//!    allow list → LightRAG; the global `LIGHTRAG_FORCE_USER_COHORT`. Most specific first, so an
//!    operator can test one request or one user while everybody else is forced.
//! 3. `rollback` — `LIGHTRAG_EMERGENCY_ROLLBACK` or the controller's rollback state → Perplexity.
//! 4. `circuit_open` — breaker enabled and open, or half-open and this request not admitted as
//!    a probe → Perplexity. A probe (`HalfOpenProbe`) continues and is flagged `probe`.
//! 5. `quality_gate` — quality metrics enabled and the gate closed → Perplexity, except when
//!    `quality_probe_roll < LIGHTRAG_QUALITY_GATE_PROBE_SHARE`: that request continues (flagged
//!    `probe`) so LightRAG keeps being measured and the gate can reopen.
//! 6. `rule:<name>` — conditional routing enabled and a rule with action `lightrag` or
//!    `perplexity` matches first. A first-matching `rollout` rule stops rule evaluation and goes
//!    to step 7; its name is still reported in `rule`.
//! 7. `rollout_in` / `rollout_out` — `pos < R` → LightRAG, else Perplexity.
//!
//! # Arms (A/B)
//! The arm is the user's assignment by hash: treatment iff `pos < R`, else control. Requests
//! that reach step 7, and those diverted by steps 3–5, are **in the experiment** and keep their
//! assigned arm: intention to treat, so fallbacks and outages count against the arm that
//! suffered them (DESIGN §3). `disabled`, `forced` and rule-routed requests are out of the
//! experiment and carry arm `none`; they are still recorded under their reason.
//!
//! A request without a stickiness key (the caller normally always has one: user id, session id
//! or the router's cookie id) is hashed as the empty string so it still gets a deterministic
//! route, but it is never counted in the experiment — one shared bucket would otherwise pool
//! every anonymous user into one arm.
//!
//! # Cost (criterion `decide/*`, `benches/routing.rs`; issue 3 targets ≤ 100 ns natively)
//! - One murmur3 over `salt`, `":"`, `key`, streamed without building the string (~20 ns).
//! - One pass over the query ([`classify::scan`]): it classifies and, when rules are on, fills a
//!   256-bit Bloom filter of the query's words. ASCII queries without apostrophes go 64 bytes at
//!   a time (bitmask of letters/digits, words walked with bit tricks, one hash-table probe per
//!   word); other text takes a byte-wise path. Time grows with the query's length and word
//!   count (~1.5–2 ns per byte today on the 2-core EPYC), and dominates the decision.
//! - Rules, in order, on precompiled conditions: lengths are O(1) for ASCII queries (known from
//!   the pass); query type, users and headers are comparisons; a single-word ASCII keyword the
//!   filter does not contain is rejected without reading the query (a filter hit, ~1 % false
//!   positives, is confirmed by the exact whole-word search); phrases, punctuation and
//!   non-ASCII keywords always search. A regex condition runs regex-lite over the whole query
//!   (no DFA: µs-scale on a 70-character query), so keep regex rules last or rare.
//! - Allocation: none, unless a rule matches (its name, in `rule` and in `Reason::Rule`).
//!   [`decide_parts`] takes the request's parts borrowed, so callers need not build a
//!   [`RouteRequest`].

use crate::core::classify::{self, QueryType};
use crate::core::cohort::{in_rollout, position, Position};
use crate::core::config::Config;
use crate::core::model::{Arm, BreakerView, Reason, Upstream};
use crate::core::rules::{first_match, Action, Query};
use serde::{Deserialize, Deserializer, Serialize};

/// Live state the decision depends on, computed by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteState {
    pub rollback_active: bool,
    pub lightrag_breaker: BreakerView,
    pub quality_gate_closed: bool,
    /// A roll in `[0, 1)`; the request is a quality probe iff it is below the probe share.
    /// Defaults to `1.0`: never a probe.
    pub quality_probe_roll: f64,
}

impl Default for RouteState {
    fn default() -> Self {
        RouteState {
            rollback_active: false,
            lightrag_breaker: BreakerView::Closed,
            quality_gate_closed: false,
            quality_probe_roll: 1.0,
        }
    }
}

/// One request, as the decision sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteRequest {
    /// Stickiness key: user id, else session id, else the router's cookie id.
    pub key: Option<String>,
    pub query: String,
    /// Header names are lower-cased by the caller; matching is case-insensitive anyway.
    /// Accepts a JSON object `{"name": "value"}` or a list of `[name, value]` pairs.
    #[serde(deserialize_with = "de_headers")]
    pub headers: Vec<(String, String)>,
    /// Cohort asked for by the override header.
    pub override_cohort: Option<Upstream>,
    /// Whether the request carried the admin/preview token (checked by the caller).
    pub override_authorized: bool,
}

fn de_headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Headers {
        Map(std::collections::BTreeMap<String, String>),
        Pairs(Vec<(String, String)>),
    }
    Ok(match Option::<Headers>::deserialize(d)? {
        None => Vec::new(),
        Some(Headers::Map(m)) => m
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        Some(Headers::Pairs(p)) => p
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
    })
}

/// An explainable routing decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub upstream: Upstream,
    pub reason: Reason,
    pub arm: Arm,
    /// The key's position on the rollout line (always computed; see module docs for no key).
    pub position: Option<Position>,
    /// The same position as a percentage, e.g. `9.77`.
    pub position_percent: Option<f64>,
    /// The rule that matched first, if any (including a `rollout` rule).
    pub rule: Option<String>,
    pub query_type: QueryType,
    pub config_version: u64,
    /// Whether this request counts in the A/B experiment.
    pub in_experiment: bool,
    /// Admitted as a half-open breaker probe or a quality-gate probe.
    pub probe: bool,
}

/// Decides which upstream answers `req` (see the module docs for the order).
pub fn decide(cfg: &Config, state: &RouteState, req: &RouteRequest) -> Decision {
    decide_parts(
        cfg,
        state,
        req.key.as_deref(),
        &req.query,
        &req.headers,
        req.override_cohort,
        req.override_authorized,
    )
}

/// [`decide`] on borrowed parts of a request, for callers that do not own a [`RouteRequest`]
/// (the preview's `Router.route(key, query)`, a worker reading the body in place): building one
/// would copy the key and the query. `headers` are `(lower-cased name, value)` pairs.
pub fn decide_parts(
    cfg: &Config,
    state: &RouteState,
    key: Option<&str>,
    query: &str,
    headers: &[(String, String)],
    override_cohort: Option<Upstream>,
    override_authorized: bool,
) -> Decision {
    // One pass over the query classifies it and, when rules may run, collects its words for
    // keyword conditions.
    let rules_on = cfg.enable_conditional_routing && !cfg.routing_rules.is_empty();
    let scan = classify::scan(query, rules_on);
    decide_scanned(
        cfg,
        state,
        key,
        query,
        &scan,
        headers,
        override_cohort,
        override_authorized,
    )
}

/// A query scanned once — classified, and its words collected for keyword rules — so that many
/// users can be decided against it without rescanning (the preview's "who goes where for this
/// question" loop). [`decide_prepared`] gives exactly what [`decide_parts`] gives for the same
/// text.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    text: String,
    scan: classify::Scan,
}

impl PreparedQuery {
    pub fn new(query: &str) -> PreparedQuery {
        PreparedQuery {
            text: query.to_string(),
            scan: classify::scan(query, true),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn query_type(&self) -> QueryType {
        self.scan.signals.query_type()
    }
}

/// [`decide_parts`] for a [`PreparedQuery`].
pub fn decide_prepared(
    cfg: &Config,
    state: &RouteState,
    key: Option<&str>,
    query: &PreparedQuery,
    headers: &[(String, String)],
    override_cohort: Option<Upstream>,
    override_authorized: bool,
) -> Decision {
    decide_scanned(
        cfg,
        state,
        key,
        &query.text,
        &query.scan,
        headers,
        override_cohort,
        override_authorized,
    )
}

#[allow(clippy::too_many_arguments)]
fn decide_scanned(
    cfg: &Config,
    state: &RouteState,
    key: Option<&str>,
    query: &str,
    scan: &classify::Scan,
    headers: &[(String, String)],
    override_cohort: Option<Upstream>,
    override_authorized: bool,
) -> Decision {
    let pos = position(&cfg.user_hash_salt, key.unwrap_or(""));
    let assigned = if in_rollout(pos, cfg.rollout_percentage) {
        Arm::Treatment
    } else {
        Arm::Control
    };
    let rules_on = cfg.enable_conditional_routing && !cfg.routing_rules.is_empty();
    let query_type = scan.signals.query_type();
    let mut d = Decision {
        upstream: Upstream::Perplexity,
        reason: Reason::Disabled,
        arm: Arm::None,
        position: Some(pos),
        position_percent: Some(pos.percent()),
        rule: None,
        query_type,
        config_version: cfg.version,
        in_experiment: false,
        probe: false,
    };

    // 1. Disabled.
    if !cfg.integration_enabled {
        return d;
    }

    // 2. Forced.
    let forced = if key.is_some_and(|k| cfg.deny_users.contains(k)) {
        Some(Upstream::Perplexity)
    } else if let Some(u) = override_cohort.filter(|_| override_authorized) {
        Some(u)
    } else if key.is_some_and(|k| cfg.allow_users.contains(k)) {
        Some(Upstream::Lightrag)
    } else {
        cfg.force_user_cohort
    };
    if let Some(u) = forced {
        d.upstream = u;
        d.reason = Reason::Forced;
        return d;
    }

    // From here on the request keeps its assigned arm (intention to treat).
    let in_experiment = key.is_some();
    d.arm = if in_experiment { assigned } else { Arm::None };
    d.in_experiment = in_experiment;

    // 3. Emergency rollback.
    if cfg.emergency_rollback || state.rollback_active {
        d.reason = Reason::Rollback;
        return d;
    }

    // 4. Circuit breaker.
    if cfg.breaker.settings().enabled {
        match state.lightrag_breaker {
            BreakerView::Closed => {}
            BreakerView::HalfOpenProbe => d.probe = true,
            BreakerView::Open | BreakerView::HalfOpenReject => {
                d.reason = Reason::CircuitOpen;
                return d;
            }
        }
    }

    // 5. Quality gate.
    if cfg.quality_gate.settings().enabled && state.quality_gate_closed {
        if cfg.quality_gate.admits_probe(state.quality_probe_roll) {
            d.probe = true;
        } else {
            d.reason = Reason::QualityGate;
            return d;
        }
    }

    // 6. Conditional rules.
    if rules_on {
        let q = Query::from_scan(query, scan, key, headers);
        if let Some(rule) = first_match(&cfg.routing_rules, &q) {
            d.rule = Some(rule.name().to_string());
            if let Some(u) = rule.action().upstream() {
                d.upstream = u;
                d.reason = Reason::Rule(rule.name().to_string());
                d.arm = Arm::None;
                d.in_experiment = false;
                return d;
            }
            debug_assert_eq!(rule.action(), Action::Rollout);
        }
    }

    // 7. Hash.
    if assigned == Arm::Treatment {
        d.upstream = Upstream::Lightrag;
        d.reason = Reason::RolloutIn;
    } else {
        d.reason = Reason::RolloutOut;
    }
    d
}

/// The golden-spec driver, shared by the native test (`tests/routing_spec.rs`) and the wasm
/// preview tests, so browser and edge are checked against the very same files.
///
/// A spec file is `{"cases": [case, ...]}`; a case is
/// `{"name", "config": {VAR: value}, "overrides": {...} | null, "version": n, "state": RouteState,
///   "request": RouteRequest, "expect": {...}}`.
/// Only the fields present in `expect` are checked: `upstream`, `reason`, `arm`, `position`
/// (percentage number), `rule` (string or null), `query_type`, `in_experiment`, `probe`,
/// `config_version`, `problems` (list of `VARIABLE` or `VARIABLE[index]`, order-insensitive,
/// exact), and `config` (an object of serialized-config fields, dotted paths allowed, e.g.
/// `"breaker.enabled"`).
pub mod spec {
    use super::*;
    use crate::core::config::{load, Problem};
    use serde_json::{Map, Value};

    /// One spec case's inputs, as the runner receives them.
    pub struct SpecInput<'a> {
        pub vars: &'a Map<String, Value>,
        pub overrides: Option<&'a Map<String, Value>>,
        pub version: u64,
        /// `RouteState` JSON (`null` = default).
        pub state: &'a Value,
        /// `RouteRequest` JSON (`null` = default).
        pub request: &'a Value,
    }

    /// What a runner produced: the decision in its public JSON shape ([`decision_json`]), the
    /// problem keys (`VAR` / `VAR[i]`) and the effective config as JSON.
    pub struct SpecOutcome {
        pub decision: Value,
        pub problems: Vec<String>,
        pub config: Value,
    }

    /// The native runner: `config::load` + [`decide`] called directly.
    pub fn native_run(input: &SpecInput<'_>) -> Result<SpecOutcome, String> {
        let state: RouteState = match input.state {
            Value::Null => RouteState::default(),
            v => RouteState::deserialize(v).map_err(|e| format!("state: {e}"))?,
        };
        let request: RouteRequest = match input.request {
            Value::Null => RouteRequest::default(),
            v => RouteRequest::deserialize(v).map_err(|e| format!("request: {e}"))?,
        };
        let loaded = load(input.vars, input.overrides, input.version);
        let decision = decide(&loaded.config, &state, &request);
        Ok(SpecOutcome {
            decision: decision_json(&decision),
            problems: loaded.problems.iter().map(Problem::key).collect(),
            config: serde_json::to_value(&loaded.config).map_err(|e| e.to_string())?,
        })
    }

    /// Checks one case natively; `Err` lists every mismatch.
    pub fn check_spec_case(case: &Value) -> Result<(), String> {
        check_spec_case_with(case, &native_run)
    }

    /// Checks one case with any runner — natively, or through the wasm preview exports — so the
    /// same driver judges every layer. `Err` lists every mismatch.
    pub fn check_spec_case_with(
        case: &Value,
        run: &dyn Fn(&SpecInput<'_>) -> Result<SpecOutcome, String>,
    ) -> Result<(), String> {
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        let fail = |msg: String| format!("{name}: {msg}");
        let empty = Map::new();
        let vars = match case.get("config") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Err(fail("config must be an object".into())),
        };
        let overrides = match case.get("overrides") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(fail("overrides must be an object or null".into())),
        };
        let expect = case
            .get("expect")
            .and_then(Value::as_object)
            .ok_or_else(|| fail("missing expect object".into()))?;
        let input = SpecInput {
            vars,
            overrides,
            version: case.get("version").and_then(Value::as_u64).unwrap_or(0),
            state: case.get("state").unwrap_or(&Value::Null),
            request: case.get("request").unwrap_or(&Value::Null),
        };
        let out = run(&input).map_err(fail)?;
        let got = &out.decision;

        let mut errors = Vec::new();
        for (field, want) in expect {
            match field.as_str() {
                "upstream" | "reason" | "arm" | "rule" | "query_type" | "in_experiment"
                | "probe" | "config_version" => {
                    let g = got.get(field).unwrap_or(&Value::Null);
                    if !json_eq(g, want) {
                        errors.push(format!("{field}: got {g}, want {want}"));
                    }
                }
                "position" => {
                    let hundredths = |v: Option<&Value>| {
                        v.and_then(Value::as_f64)
                            .map(|w| (w * 100.0).round() as i64)
                    };
                    if hundredths(got.get("position")) != hundredths(Some(want)) {
                        errors.push(format!(
                            "position: got {}, want {want}",
                            got.get("position").unwrap_or(&Value::Null)
                        ));
                    }
                }
                "problems" => {
                    let mut g = out.problems.clone();
                    let mut w: Vec<String> = want
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    g.sort();
                    w.sort();
                    if g != w {
                        errors.push(format!("problems: got {g:?}, want {w:?}"));
                    }
                }
                "config" => {
                    let Some(fields) = want.as_object() else {
                        errors.push("expect.config must be an object".into());
                        continue;
                    };
                    for (path, w) in fields {
                        let g = path.split('.').try_fold(&out.config, |v, k| v.get(k));
                        if !g.is_some_and(|g| json_eq(g, w)) {
                            errors.push(format!("config.{path}: got {g:?}, want {w}"));
                        }
                    }
                }
                other => errors.push(format!("unknown expect field {other:?}")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(fail(errors.join("; ")))
        }
    }

    /// JSON equality where numbers compare by value: `0` equals `0.0`, as it must once a value
    /// has crossed into JavaScript (which has one number type) and back.
    pub fn json_eq(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
            }
            _ => a == b,
        }
    }

    /// Checks every case of a spec document natively; returns the number of cases, or every
    /// failure.
    pub fn check_spec_file(doc: &Value) -> Result<usize, Vec<String>> {
        check_spec_file_with(doc, &native_run)
    }

    /// [`check_spec_file`] with any runner.
    pub fn check_spec_file_with(
        doc: &Value,
        run: &dyn Fn(&SpecInput<'_>) -> Result<SpecOutcome, String>,
    ) -> Result<usize, Vec<String>> {
        let Some(cases) = doc.get("cases").and_then(Value::as_array) else {
            return Err(vec!["spec file has no \"cases\" array".into()]);
        };
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|c| check_spec_case_with(c, run).err())
            .collect();
        if failures.is_empty() {
            Ok(cases.len())
        } else {
            Err(failures)
        }
    }
}

/// The decision's public JSON shape, shared by the preview exports and the spec driver:
/// `position` is a percentage (`76.52`), not hundredths.
pub fn decision_json(d: &Decision) -> serde_json::Value {
    serde_json::json!({
        "upstream": d.upstream,
        "reason": d.reason,
        "arm": d.arm,
        "position": d.position_percent,
        "rule": d.rule,
        "query_type": d.query_type,
        "config_version": d.config_version,
        "in_experiment": d.in_experiment,
        "probe": d.probe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::load;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> Config {
        let l = load(v.as_object().unwrap(), None, 3);
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        l.config
    }

    fn req(key: &str, query: &str) -> RouteRequest {
        RouteRequest {
            key: Some(key.into()),
            query: query.into(),
            ..Default::default()
        }
    }

    #[test]
    fn pinned_vector_user_42() {
        // user-42 sits at 76.52 under the default salt.
        let c = cfg(
            json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "76.53"}),
        );
        let d = decide(&c, &RouteState::default(), &req("user-42", "hi"));
        assert_eq!(
            (d.upstream, d.reason.clone(), d.arm),
            (Upstream::Lightrag, Reason::RolloutIn, Arm::Treatment)
        );
        assert_eq!(d.position_percent, Some(76.52));
        assert_eq!(d.config_version, 3);
        let c = cfg(
            json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "76.52"}),
        );
        let d = decide(&c, &RouteState::default(), &req("user-42", "hi"));
        assert_eq!(
            (d.upstream, d.reason, d.arm),
            (Upstream::Perplexity, Reason::RolloutOut, Arm::Control)
        );
    }

    #[test]
    fn safety_steps_keep_the_arm_and_probes_pass() {
        let c = cfg(
            json!({"LIGHTRAG_INTEGRATION_ENABLED": "1", "LIGHTRAG_ROLLOUT_PERCENTAGE": "100",
                           "LIGHTRAG_ENABLE_QUALITY_METRICS": "on"}),
        );
        let r = req("u", "q");
        let st = RouteState {
            lightrag_breaker: BreakerView::Open,
            ..Default::default()
        };
        let d = decide(&c, &st, &r);
        assert_eq!(
            (d.upstream, d.reason, d.arm, d.in_experiment),
            (
                Upstream::Perplexity,
                Reason::CircuitOpen,
                Arm::Treatment,
                true
            )
        );
        let st = RouteState {
            lightrag_breaker: BreakerView::HalfOpenProbe,
            ..Default::default()
        };
        let d = decide(&c, &st, &r);
        assert_eq!((d.reason, d.probe), (Reason::RolloutIn, true));
        let st = RouteState {
            quality_gate_closed: true,
            quality_probe_roll: 0.04,
            ..Default::default()
        };
        assert_eq!(decide(&c, &st, &r).reason, Reason::RolloutIn);
        let st = RouteState {
            quality_gate_closed: true,
            quality_probe_roll: 0.05,
            ..Default::default()
        };
        assert_eq!(decide(&c, &st, &r).reason, Reason::QualityGate);
    }

    #[test]
    fn headers_deserialize_from_object_or_pairs() {
        let a: RouteRequest =
            serde_json::from_value(json!({"headers": {"X-Client": "a"}})).unwrap();
        let b: RouteRequest =
            serde_json::from_value(json!({"headers": [["x-client", "a"]]})).unwrap();
        assert_eq!(a, b);
        let c: RouteRequest = serde_json::from_value(json!({"headers": null})).unwrap();
        assert!(c.headers.is_empty());
    }
}
