//! Properties of the routing decision (proptest) and the rollout's accuracy over 100,000
//! synthetic users. The reference model below is deliberately naive — floats and the formula
//! straight from docs/architecture.md#cohort-hashing — so the integer fast path in `core::cohort` is checked against an
//! independent reading of the spec, not against itself.

use cmo_edge_router::core::cohort::{hash, Percent};
use cmo_edge_router::core::config::{defaults, load, Config};
use cmo_edge_router::core::decide::{decide, RouteRequest, RouteState};
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::model::{Arm, BreakerView, Reason};
use cmo_edge_router::core::simulate::simulate;
use cmo_edge_router::core::stats::chi_square_fit;
use proptest::prelude::*;
use serde_json::json;

fn enabled(pct_hundredths: u16) -> Config {
    let mut c = defaults();
    c.integration_enabled = true;
    c.rollout_percentage = Percent::from_hundredths(pct_hundredths).unwrap();
    c
}

fn req<'a>(key: &'a str, query: &'a str) -> RouteRequest<'a> {
    RouteRequest::new(Some(key), query)
}

fn breaker() -> impl Strategy<Value = BreakerView> {
    prop_oneof![
        Just(BreakerView::Closed),
        Just(BreakerView::Open),
        Just(BreakerView::HalfOpenProbe),
        Just(BreakerView::HalfOpenReject),
    ]
}

fn state() -> impl Strategy<Value = RouteState> {
    (
        any::<bool>(),
        breaker(),
        any::<bool>(),
        0.0f64..1.0,
        proptest::option::of(0u16..=10_000),
    )
        .prop_map(|(rb, b, q, roll, pct)| RouteState {
            rollback_active: rb,
            lightrag_breaker: b,
            quality_gate_closed: q,
            quality_probe_roll: roll,
            rollout_percentage: pct.and_then(Percent::from_hundredths),
        })
}

fn upstream() -> impl Strategy<Value = Upstream> {
    prop_oneof![Just(Upstream::Lightrag), Just(Upstream::Perplexity)]
}

/// The naive model: the cohort formula read literally, in floating point.
fn naive_in_rollout(salt: &str, key: &str, pct: f64) -> bool {
    let h = hash(salt, key) as f64;
    let pos = (h % 100.0) + ((h / 100.0).floor() % 100.0) / 100.0;
    // Compare in hundredths, rounded, to sidestep float representation of e.g. 9.77.
    (pos * 100.0).round() < (pct * 100.0).round()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A user's side depends on the key alone: any two questions, under a config built anew,
    /// put them at the same position, in the same arm, on the same upstream.
    #[test]
    fn sticky(key in "\\PC{0,24}", q1 in "\\PC{0,60}", q2 in "\\PC{0,60}", pct in 0u16..=10_000) {
        let st = RouteState::default();
        let a = decide(&enabled(pct), &st, &req(&key, &q1));
        let b = decide(&enabled(pct), &st, &req(&key, &q2));
        prop_assert_eq!(a.position, b.position);
        prop_assert_eq!(a.arm, b.arm);
        prop_assert_eq!(a.upstream, b.upstream);
    }

    #[test]
    fn monotone_in_r(key in "\\PC{0,24}", a in 0u16..=10_000, b in 0u16..=10_000) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let st = RouteState::default();
        let r = req(&key, "q");
        if decide(&enabled(lo), &st, &r).upstream == Upstream::Lightrag {
            prop_assert_eq!(decide(&enabled(hi), &st, &r).upstream, Upstream::Lightrag);
        }
    }

    #[test]
    fn hash_agrees_with_naive_model(salt in "\\PC{0,20}", key in "\\PC{0,24}", pct in 0u16..=10_000) {
        let mut c = enabled(pct);
        c.user_hash_salt = cmo_edge_router::core::cohort::Salt::new(salt.clone());
        let d = decide(&c, &RouteState::default(), &req(&key, "q"));
        let want = naive_in_rollout(&salt, &key, f64::from(pct) / 100.0);
        prop_assert_eq!(d.upstream == Upstream::Lightrag, want);
        prop_assert_eq!(d.reason, if want { Reason::RolloutIn } else { Reason::RolloutOut });
        prop_assert_eq!(d.arm, if want { Arm::Treatment } else { Arm::Control });
    }

    /// A forced route beats the hash, except that a rollback beats a forced route to
    /// LightRAG: "roll back" means everybody.
    #[test]
    fn forced_beats_hash(key in "\\PC{1,24}", pct in 0u16..=10_000, st in state(), u in upstream()) {
        let mut c = enabled(pct);
        c.force_user_cohort = Some(u);
        let d = decide(&c, &st, &req(&key, "latest news"));
        if st.rollback_active && u == Upstream::Lightrag {
            prop_assert_eq!(d.upstream, Upstream::Perplexity);
            prop_assert_eq!(d.reason, Reason::Rollback);
        } else {
            prop_assert_eq!(d.upstream, u);
            prop_assert_eq!(d.reason, Reason::Forced);
        }
        prop_assert!(!d.in_experiment);
        prop_assert_eq!(d.arm, Arm::None);
    }

    /// Under a rollback nothing reaches LightRAG, whatever forces, lists, headers or rules say.
    #[test]
    fn rollback_sends_everybody_to_perplexity(key in "\\PC{0,24}", pct in 0u16..=10_000, st in state(),
                                              force in proptest::option::of(upstream()), allow in any::<bool>(),
                                              ov in proptest::option::of(upstream()), auth in any::<bool>()) {
        let mut c = enabled(pct);
        c.force_user_cohort = force;
        if allow { c.allow_users.insert(key.clone()); }
        let mut r = req(&key, "q");
        r.override_cohort = ov;
        r.override_authorized = auth;
        let st = RouteState { rollback_active: true, ..st };
        let d = decide(&c, &st, &r);
        prop_assert_eq!(d.upstream, Upstream::Perplexity);
    }

    #[test]
    fn disabled_is_perplexity(key in "\\PC{0,24}", pct in 0u16..=10_000, st in state(),
                              force in proptest::option::of(upstream()), allow in any::<bool>(),
                              ov in proptest::option::of(upstream()), auth in any::<bool>()) {
        let mut c = enabled(pct);
        c.integration_enabled = false;
        c.force_user_cohort = force;
        if allow { c.allow_users.insert(key.clone()); }
        let mut r = req(&key, "q");
        r.override_cohort = ov;
        r.override_authorized = auth;
        let d = decide(&c, &st, &r);
        prop_assert_eq!(d.upstream, Upstream::Perplexity);
        prop_assert_eq!(d.reason, Reason::Disabled);
        prop_assert_eq!(d.arm, Arm::None);
    }

    #[test]
    fn deny_beats_everything_but_disabled(key in "\\PC{1,24}", pct in 0u16..=10_000, st in state(),
                                          force in proptest::option::of(upstream()),
                                          ov in proptest::option::of(upstream()), auth in any::<bool>(),
                                          rules_on in any::<bool>()) {
        let vars = json!({
            "LIGHTRAG_INTEGRATION_ENABLED": true,
            "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING": rules_on,
            "LIGHTRAG_ROUTING_RULES": [{"name": "all", "action": "lightrag"}],
        });
        let mut c = load(vars.as_object().unwrap(), None, 0).config;
        c.rollout_percentage = Percent::from_hundredths(pct).unwrap();
        c.force_user_cohort = force;
        c.allow_users.insert(key.clone());
        c.deny_users.insert(key.clone());
        let mut r = req(&key, "q");
        r.override_cohort = ov;
        r.override_authorized = auth;
        let d = decide(&c, &st, &r);
        prop_assert_eq!(d.upstream, Upstream::Perplexity);
        prop_assert_eq!(d.reason, Reason::Forced);
    }

    #[test]
    fn unauthorized_override_changes_nothing(key in "\\PC{0,24}", pct in 0u16..=10_000, st in state(), u in upstream()) {
        let c = enabled(pct);
        let plain = req(&key, "q");
        let mut tampered = plain;
        tampered.override_cohort = Some(u);
        prop_assert_eq!(decide(&c, &st, &plain), decide(&c, &st, &tampered));
    }

    #[test]
    fn config_load_never_panics(v in proptest::collection::btree_map(
        prop_oneof![Just("LIGHTRAG_ROLLOUT_PERCENTAGE".to_string()), Just("LIGHTRAG_INTEGRATION_ENABLED".to_string()),
                    Just("LIGHTRAG_ROUTING_RULES".to_string()), Just("LIGHTRAG_DENY_USERS".to_string()), "[A-Z_]{1,12}"],
        "\\PC{0,40}", 0..6)) {
        let vars: serde_json::Map<_, _> = v.into_iter().map(|(k, s)| (k, json!(s))).collect();
        let l = load(&vars, Some(&vars), 1);
        let _ = decide(&l.config, &RouteState::default(), &req("k", "q"));
    }
}

const USERS: usize = 100_000;

#[test]
fn rollout_share_is_accurate_and_arms_pass_srm() {
    let keys: Vec<String> = (0..USERS).map(|i| format!("user-{i}")).collect();
    for pct in [1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 99.0] {
        let c = enabled(Percent::from_percent(pct).unwrap().hundredths());
        let sim = simulate(&c, &RouteState::default(), &keys, "what is a metabolite");
        let share = 100.0 * sim.lightrag_share;
        assert!(
            (share - pct).abs() <= 0.5,
            "{pct} %: LightRAG share {share:.3} %"
        );
        let t = sim.per_arm.get(&Arm::Treatment).copied().unwrap_or(0);
        let ctl = sim.per_arm.get(&Arm::Control).copied().unwrap_or(0);
        assert_eq!(t + ctl, USERS as u64);
        let srm = chi_square_fit(&[t, ctl], &[pct, 100.0 - pct]).unwrap();
        assert!(
            srm.p_value > 0.001,
            "{pct} %: SRM p = {} (treatment {t}, control {ctl})",
            srm.p_value
        );
    }
}

#[test]
fn positions_are_uniform() {
    let keys: Vec<String> = (0..USERS).map(|i| format!("user-{i}")).collect();
    let sim = simulate(&defaults(), &RouteState::default(), &keys, "");
    let chi = cmo_edge_router::core::stats::chi_square_uniform(&sim.histogram).unwrap();
    assert!(
        chi.p_value > 0.001,
        "position histogram not uniform: {chi:?}"
    );
}

/// The SRM check must be able to fail: a 1-point skew over 100,000 users is flagged.
#[test]
fn srm_detects_a_skew() {
    let srm = chi_square_fit(&[51_000, 49_000], &[50.0, 50.0]).unwrap();
    assert!(srm.p_value < 0.001);
}

/// Queries assembled from the words the keyword rules look for, in any case, with punctuation,
/// apostrophes and non-ASCII words around them.
fn keyword_query() -> impl Strategy<Value = String> {
    let pieces = proptest::sample::select(vec![
        "pathway",
        "Pathways",
        "REGULATE",
        "regulates",
        "TCA",
        "c++",
        "C++x",
        "current",
        "Guidelines",
        "métabolome",
        "MÉTABOLOME",
        "2025",
        "what's",
        "whats",
        "x",
        "-",
        "β",
        "news",
        "newsletter",
    ]);
    let seps = proptest::sample::select(vec![" ", "", ", ", "-", "'", "?", "  "]);
    proptest::collection::vec((pieces, seps), 0..10)
        .prop_map(|v| v.into_iter().flat_map(|(p, s)| [p, s]).collect())
}

proptest! {
    /// A prepared query (read once: class, length, sorted words) gives exactly the decision of
    /// its plain text — the keyword lookup in its words agrees with searching the text.
    #[test]
    fn prepared_query_decides_like_its_text(
        key in "[a-z0-9-]{0,12}",
        query in prop_oneof![
            Just("What is the latest news on TMAO in 2025?".to_string()),
            Just("How does the kynurenine pathway regulate inflammation?".to_string()),
            Just("define lactate".to_string()),
            "[a-zA-Z ]{0,60}",
            "\\PC{0,40}",
            keyword_query(),
        ],
        pct in 0.0f64..=100.0,
    ) {
        use cmo_edge_router::core::decide::PreparedQuery;
        let vars = serde_json::json!({
            "LIGHTRAG_INTEGRATION_ENABLED": "true",
            "LIGHTRAG_ROLLOUT_PERCENTAGE": format!("{pct:.2}"),
            "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING": "true",
            "LIGHTRAG_ROUTING_RULES": [
                {"name": "news", "when": {"query_type": "temporal"}, "action": "perplexity"},
                {"name": "both", "when": {"keywords_all": ["tca", "c++"]}, "action": "lightrag"},
                {"name": "graph", "when": {"keywords_any": ["pathway", "regulate"]}, "action": "lightrag"},
                {"name": "mixed", "when": {"keywords_any": ["current guidelines", "Métabolome", "2025", "what's"]}, "action": "perplexity"},
                {"name": "short", "when": {"max_length": 14}, "action": "rollout"}
            ]
        });
        let cfg = cmo_edge_router::core::config::load(vars.as_object().unwrap(), None, 1).config;
        let state = RouteState::default();
        let prepared = PreparedQuery::new(&query);
        let a = decide(&cfg, &state, &RouteRequest::new(Some(&key), query.as_str()));
        let b = decide(&cfg, &state, &RouteRequest::new(Some(&key), prepared.as_query()));
        prop_assert_eq!(a, b);
    }
}
