//! The routing decision (docs/architecture.md#the-routing-decision): configuration + state +
//! request → upstream and why.
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
//!    operator can test one request or one user while everybody else is forced. A forced route
//!    to Perplexity is final; a forced route to LightRAG still meets step 3.
//! 3. `rollback` — `LIGHTRAG_EMERGENCY_ROLLBACK` or the controller's rollback state → Perplexity,
//!    **forced LightRAG routes included** (allow list, override header, global force): "roll
//!    back" means everybody, as the README promises. A forced request keeps arm `none` (it was
//!    never in the experiment); the others keep their assigned arm.
//! 4. `circuit_open` — breaker enabled and open, or half-open and this request not admitted as
//!    a probe → Perplexity. A probe (`HalfOpenProbe`) continues and is flagged `probe`.
//! 5. `quality_gate` — quality metrics enabled and the gate closed → Perplexity, except when
//!    the quality gate admits the request as a probe (`quality_probe_roll` below
//!    `LIGHTRAG_QUALITY_GATE_PROBE_SHARE`): it continues (flagged `probe`) so LightRAG keeps
//!    being measured and the gate can reopen.
//! 6. `rule:<name>` — conditional routing enabled and a rule with action `lightrag` or
//!    `perplexity` matches first. A first-matching `rollout` rule stops rule evaluation and goes
//!    to step 7; its name is still reported in `rule`.
//! 7. `rollout_in` / `rollout_out` — `pos < R` → LightRAG, else Perplexity. `R` is the
//!    running rollout's percentage when the controller drives one
//!    ([`RouteState::rollout_percentage`]), else `LIGHTRAG_ROLLOUT_PERCENTAGE`.
//!
//! # Arms (A/B)
//! The arm is the user's assignment by hash: treatment iff `pos < R`, else control. Requests
//! that reach step 7, and those diverted by steps 3–5, are **in the experiment** and keep their
//! assigned arm: intention to treat, so fallbacks and outages count against the arm that
//! suffered them (docs/architecture.md#ab-arms). `disabled`, `forced` and rule-routed requests
//! are out of the experiment and carry arm `none`; they are still recorded under their reason.
//!
//! A request without a stickiness key (the caller normally always has one: user id, session id
//! or the router's cookie id) is hashed as the empty string so it still gets a deterministic
//! route, but it is never counted in the experiment — one shared bucket would otherwise pool
//! every anonymous user into one arm.
//!
//! # Cost (criterion `decide/*`, `benches/routing.rs`)
//! - One murmur3 over `salt:key` in a stack buffer ([`crate::core::cohort::hash`]).
//! - The query is only read if a rule asks: a `query_type` condition classifies it once
//!   ([`crate::core::classify`]), a keyword condition searches it for that keyword, a length
//!   condition counts its characters once. With rules off nothing reads the query.
//! - A regex condition runs regex-lite over the whole query (no DFA: µs-scale on a
//!   70-character query), so keep regex rules last or rare.
//! - Allocation: none, unless a rule matches (its name, in `rule` and in `Reason::Rule`) or a
//!   keyword rule meets a non-ASCII query (lower-cased once).

use crate::core::classify::QueryType;
use crate::core::cohort::{in_rollout, position, Percent, Position};
use crate::core::config::Config;
use crate::core::model::{Arm, BreakerView, Reason, Upstream};
use crate::core::rules::{first_match, Action, Query, QueryFacts};
use serde::{Deserialize, Deserializer, Serialize};

/// Live state the decision depends on, computed by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteState {
    pub rollback_active: bool,
    pub lightrag_breaker: BreakerView,
    pub quality_gate_closed: bool,
    /// A roll in `[0, 1)`; the request is a quality probe iff the gate admits it as one.
    /// Defaults to `1.0`: never a probe.
    pub quality_probe_roll: f64,
    /// The running rollout's percentage (`core::rollout`), which replaces
    /// `LIGHTRAG_ROLLOUT_PERCENTAGE` while the controller drives a rollout; `None` (absent in
    /// JSON): the configured percentage applies.
    #[serde(with = "opt_percent")]
    pub rollout_percentage: Option<Percent>,
}

impl Default for RouteState {
    fn default() -> Self {
        RouteState {
            rollback_active: false,
            lightrag_breaker: BreakerView::Closed,
            quality_gate_closed: false,
            quality_probe_roll: 1.0,
            rollout_percentage: None,
        }
    }
}

/// `Option<Percent>` as a plain percentage number or `null`.
mod opt_percent {
    use crate::core::cohort::Percent;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(p: &Option<Percent>, s: S) -> Result<S::Ok, S::Error> {
        p.map(Percent::percent).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Percent>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            None => Ok(None),
            Some(v) => Percent::from_percent(v).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "rollout_percentage must be a number in [0, 100], got {v}"
                ))
            }),
        }
    }
}

/// A query's text, and the facts rules ask about it when the caller computed them once (see
/// [`PreparedQuery`]); otherwise each fact is computed only if a rule asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryText<'a> {
    text: &'a str,
    facts: Option<&'a QueryFacts>,
    /// The class the caller declared (the seed `/query`'s `query_type`), which rules then use
    /// instead of the classifier's guess.
    declared: Option<QueryType>,
}

impl<'a> QueryText<'a> {
    pub fn new(text: &'a str) -> QueryText<'a> {
        QueryText {
            text,
            facts: None,
            declared: None,
        }
    }

    /// A query whose class the caller declared (`query_type` conditions match on it).
    pub fn with_declared_type(text: &'a str, declared: Option<QueryType>) -> QueryText<'a> {
        QueryText {
            text,
            facts: None,
            declared,
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }
}

impl<'a> From<&'a str> for QueryText<'a> {
    fn from(text: &'a str) -> QueryText<'a> {
        QueryText::new(text)
    }
}

/// A query read once — classified, measured, its words listed ([`QueryFacts`]) — so that many
/// users can be decided against it without reading it again (the preview's "who goes where for
/// this question" loop). Decides exactly as its plain text does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedQuery {
    text: String,
    facts: QueryFacts,
}

impl PreparedQuery {
    pub fn new(query: &str) -> PreparedQuery {
        PreparedQuery {
            text: query.to_string(),
            facts: QueryFacts::new(query),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn query_type(&self) -> QueryType {
        self.facts.query_type()
    }

    pub fn as_query(&self) -> QueryText<'_> {
        QueryText {
            text: &self.text,
            facts: Some(&self.facts),
            declared: None,
        }
    }
}

/// One request, as the decision sees it. Borrowed, so deciding copies nothing.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// Stickiness key: user id, else session id, else the router's cookie id.
    pub key: Option<&'a str>,
    pub query: QueryText<'a>,
    /// `(lower-cased name, value)` pairs; only conditional rules read them.
    pub headers: &'a [(String, String)],
    /// Cohort asked for by the override header.
    pub override_cohort: Option<Upstream>,
    /// Whether the request carried the admin/preview token (checked by the caller).
    pub override_authorized: bool,
}

impl<'a> RouteRequest<'a> {
    /// A request from `key` asking `query`, with no headers and no override.
    pub fn new(key: Option<&'a str>, query: impl Into<QueryText<'a>>) -> RouteRequest<'a> {
        RouteRequest {
            key,
            query: query.into(),
            headers: &[],
            override_cohort: None,
            override_authorized: false,
        }
    }
}

/// A request in its JSON shape (the preview exports and the spec files):
/// `{key, query, headers, override_cohort, override_authorized}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteRequestDoc {
    pub key: Option<String>,
    pub query: String,
    /// Accepts a JSON object `{"name": "value"}` or a list of `[name, value]` pairs; names are
    /// lower-cased.
    #[serde(deserialize_with = "de_headers")]
    pub headers: Vec<(String, String)>,
    pub override_cohort: Option<Upstream>,
    pub override_authorized: bool,
}

impl RouteRequestDoc {
    pub fn as_request(&self) -> RouteRequest<'_> {
        RouteRequest {
            key: self.key.as_deref(),
            query: QueryText::new(&self.query),
            headers: &self.headers,
            override_cohort: self.override_cohort,
            override_authorized: self.override_authorized,
        }
    }
}

fn de_headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    // By hand, as serde's untagged derive reads (a map, else a list of pairs, else its one
    // error), without its `Content` buffer (`json::deserialize_with` says why).
    crate::core::json::deserialize_with(d, |v| {
        let pairs: Vec<(String, String)> = match v {
            serde_json::Value::Null => Vec::new(),
            _ => match crate::core::sorted_map::SortedMap::<String, String>::deserialize(v) {
                Ok(m) => m.into_iter().collect(),
                Err(_) => match Vec::<(String, String)>::deserialize(v) {
                    Ok(p) => p,
                    Err(_) => {
                        return Err(serde::de::Error::custom(
                            "data did not match any variant of untagged enum Headers",
                        ))
                    }
                },
            },
        };
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect())
    })
}

/// An explainable routing decision. Serializes in its public JSON shape (the preview page, the
/// spec files): `position` is the percentage (`76.52`), not hundredths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub upstream: Upstream,
    pub reason: Reason,
    pub arm: Arm,
    /// The key's position on the rollout line (always computed; see module docs for no key).
    #[serde(skip)]
    pub position: Option<Position>,
    /// The same position as a percentage, e.g. `9.77`.
    #[serde(rename = "position")]
    pub position_percent: Option<f64>,
    /// The rule that matched first, if any (including a `rollout` rule).
    pub rule: Option<String>,
    pub config_version: u64,
    /// Whether this request counts in the A/B experiment.
    pub in_experiment: bool,
    /// Admitted as a half-open breaker probe or a quality-gate probe.
    pub probe: bool,
    /// The arm step 4 would report (the assigned arm for a keyed request, else `none`), and
    /// whether step 4 let this request through as a breaker probe: what
    /// [`Decision::probe_refused`] needs.
    #[serde(skip)]
    breaker_step: Option<Arm>,
}

impl Decision {
    /// The decision had this request been refused the half-open probe permit it went through
    /// step 4 with (the caller draws permits only for requests that end up at LightRAG, after
    /// deciding): step 4's `circuit_open` answer. Any other decision is returned unchanged.
    pub fn probe_refused(self) -> Decision {
        let Some(arm) = self.breaker_step else {
            return self;
        };
        Decision {
            upstream: Upstream::Perplexity,
            reason: Reason::CircuitOpen,
            arm,
            rule: None,
            in_experiment: arm != Arm::None,
            probe: false,
            breaker_step: None,
            ..self
        }
    }
}

/// Whether [`decide`] can read the request's query, headers or length under `cfg`: only the
/// conditional rules do. A caller whose query is costly to obtain (a JS string to copy into
/// wasm, a body to parse) may pass the empty query when this is false; the decision is the
/// same.
pub fn reads_query(cfg: &Config) -> bool {
    cfg.enable_conditional_routing && !cfg.routing_rules.is_empty()
}

/// Decides which upstream answers `req` (see the module docs for the order).
pub fn decide(cfg: &Config, state: &RouteState, req: &RouteRequest<'_>) -> Decision {
    let key = req.key;
    let pos = position(cfg.user_hash_salt.as_str(), key.unwrap_or(""));
    let percentage = state.rollout_percentage.unwrap_or(cfg.rollout_percentage);
    let assigned = if in_rollout(pos, percentage) {
        Arm::Treatment
    } else {
        Arm::Control
    };
    let mut d = Decision {
        upstream: Upstream::Perplexity,
        reason: Reason::Disabled,
        arm: Arm::None,
        position: Some(pos),
        position_percent: Some(pos.percent()),
        rule: None,
        config_version: cfg.version,
        in_experiment: false,
        probe: false,
        breaker_step: None,
    };

    // 1. Disabled.
    if !cfg.integration_enabled {
        return d;
    }

    // 2. Forced.
    let forced = if key.is_some_and(|k| cfg.deny_users.contains(k)) {
        Some(Upstream::Perplexity)
    } else if let Some(u) = req.override_cohort.filter(|_| req.override_authorized) {
        Some(u)
    } else if key.is_some_and(|k| cfg.allow_users.contains(k)) {
        Some(Upstream::Lightrag)
    } else {
        cfg.force_user_cohort
    };
    let rollback = cfg.emergency_rollback || state.rollback_active;
    match forced {
        // 3. for forced routes: rollback beats a forced LightRAG route (arm stays `none`).
        Some(Upstream::Lightrag) if rollback => {
            d.reason = Reason::Rollback;
            return d;
        }
        Some(u) => {
            d.upstream = u;
            d.reason = Reason::Forced;
            return d;
        }
        None => {}
    }

    // From here on the request keeps its assigned arm (intention to treat).
    let in_experiment = key.is_some();
    d.arm = if in_experiment { assigned } else { Arm::None };
    d.in_experiment = in_experiment;

    // 3. Emergency rollback.
    if rollback {
        d.reason = Reason::Rollback;
        return d;
    }

    // 4. Circuit breaker.
    if cfg.breaker.settings().enabled {
        match state.lightrag_breaker {
            BreakerView::Closed => {}
            BreakerView::HalfOpenProbe => {
                d.probe = true;
                d.breaker_step = Some(d.arm);
            }
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
    if reads_query(cfg) {
        let q = Query::new(req.query.text, req.query.facts, key, req.headers)
            .with_declared_type(req.query.declared);
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

    fn req<'a>(key: &'a str, query: &'a str) -> RouteRequest<'a> {
        RouteRequest::new(Some(key), query)
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

    /// Refusing the probe permit after deciding gives exactly what deciding with the breaker
    /// refusing it gives — for rule-routed, hashed, gated and forced requests alike.
    #[test]
    fn probe_refused_equals_deciding_with_a_rejecting_breaker() {
        let c = cfg(json!({
            "LIGHTRAG_INTEGRATION_ENABLED": "true",
            "LIGHTRAG_ROLLOUT_PERCENTAGE": "50",
            "LIGHTRAG_ENABLE_QUALITY_METRICS": "true",
            "LIGHTRAG_ALLOW_USERS": "vip",
            "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING": "true",
            "LIGHTRAG_ROUTING_RULES": [
                {"name": "graph", "when": {"keywords_any": ["pathway"]}, "action": "lightrag"},
                {"name": "news", "when": {"query_type": "temporal"}, "action": "perplexity"}
            ]
        }));
        let probe = RouteState {
            lightrag_breaker: BreakerView::HalfOpenProbe,
            ..Default::default()
        };
        let reject = RouteState {
            lightrag_breaker: BreakerView::HalfOpenReject,
            ..Default::default()
        };
        let mut refused = 0;
        for (i, q) in ["a pathway question", "latest news", "plain question"]
            .iter()
            .enumerate()
        {
            for k in (0..40)
                .map(|n| format!("user-{i}-{n}"))
                .chain(["vip".into()])
            {
                for gate_closed in [false, true] {
                    let s = |st: RouteState| RouteState {
                        quality_gate_closed: gate_closed,
                        quality_probe_roll: 0.01,
                        ..st
                    };
                    let r = req(&k, q);
                    let first = decide(&c, &s(probe), &r);
                    let again = decide(&c, &s(reject), &r);
                    if first.upstream == Upstream::Lightrag && first.breaker_step.is_some() {
                        refused += 1;
                    }
                    let mut got = first.probe_refused();
                    got.breaker_step = None;
                    let want = if again.reason == Reason::CircuitOpen {
                        again
                    } else {
                        // Not affected by the breaker (forced): unchanged either way.
                        Decision {
                            breaker_step: None,
                            ..decide(&c, &s(probe), &r)
                        }
                    };
                    assert_eq!(got, want, "{k} / {q}");
                }
            }
        }
        assert!(refused > 20, "only {refused} requests needed a permit");
    }

    #[test]
    fn headers_deserialize_from_object_or_pairs() {
        let a: RouteRequestDoc =
            serde_json::from_value(json!({"headers": {"X-Client": "a"}})).unwrap();
        let b: RouteRequestDoc =
            serde_json::from_value(json!({"headers": [["x-client", "a"]]})).unwrap();
        assert_eq!(a, b);
        let c: RouteRequestDoc = serde_json::from_value(json!({"headers": null})).unwrap();
        assert!(c.headers.is_empty());
    }

    /// The hand-written reader against serde's untagged derive it replaced.
    #[test]
    fn headers_read_as_the_untagged_derive_did() {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Headers {
            Map(std::collections::BTreeMap<String, String>),
            Pairs(Vec<(String, String)>),
        }
        #[derive(Deserialize)]
        struct Derived {
            #[serde(default)]
            headers: Option<Headers>,
        }
        for h in [
            json!({"B": "1", "a": "2"}),
            json!([["X-A", "1"], ["x-b", "2"], ["X-A", "3"]]),
            json!(null),
            json!({}),
            json!([]),
            json!({"a": 1}),
            json!([["a"]]),
            json!([["a", "b", "c"]]),
            json!("x"),
            json!(7),
            json!(true),
        ] {
            let ours = crate::core::json::from_text::<RouteRequestDoc>(
                &json!({ "headers": h }).to_string(),
            );
            let derived = Derived::deserialize(&json!({ "headers": h }));
            match (ours, derived) {
                (Ok(o), Ok(d)) => {
                    let d: Vec<(String, String)> = match d.headers {
                        None => Vec::new(),
                        Some(Headers::Map(m)) => m.into_iter().collect(),
                        Some(Headers::Pairs(p)) => p,
                    };
                    let d: Vec<(String, String)> = d
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect();
                    assert_eq!(o.headers, d, "{h}");
                }
                (Err(o), Err(d)) => assert_eq!(o.to_string(), d.to_string(), "{h}"),
                (o, d) => panic!("{h}: {:?} vs {:?}", o.is_ok(), d.is_ok()),
            }
        }
    }

    #[test]
    fn decision_serializes_in_its_public_shape() {
        let c = cfg(json!({"LIGHTRAG_INTEGRATION_ENABLED": "true"}));
        let d = decide(&c, &RouteState::default(), &req("user-42", "hi"));
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"upstream": "perplexity", "reason": "rollout_out", "arm": "control",
                   "position": 76.52, "rule": null, "config_version": 3,
                   "in_experiment": true, "probe": false})
        );
    }
}
