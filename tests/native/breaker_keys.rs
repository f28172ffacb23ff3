//! The breaker against anonymous clients (issue 8, item 3), as timelines: ids are cheap to
//! invent, so a trip needs failures from `min_distinct_keys` distinct stickiness keys, and one
//! key's share of the count window is capped at `max_calls_per_key`. Keys are keyed tags
//! (`core::keytag`), never raw ids.

use cmo_edge_router::core::breaker::{
    Admission, Breaker, BreakerPolicy, BreakerSettings, BreakerState, TransitionCause,
};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};

const T0: u64 = 1_700_000_000_000;
const SEC: u64 = 1_000;
const NO_JITTER: f64 = 0.5;

/// The defaults (3 distinct keys, 5 calls per key in a window of 20), without jitter.
fn settings() -> BreakerSettings {
    BreakerSettings {
        jitter: 0.0,
        recovery_timeout_ms: 30 * SEC,
        half_open_probe_share: 1.0,
        ..BreakerSettings::default()
    }
}

fn breaker(s: BreakerSettings) -> Breaker {
    Breaker::new(BreakerPolicy::try_new(s).unwrap())
}

fn key(n: u64) -> KeyTag {
    KeyTag::from_raw(n)
}

fn fail() -> Outcome {
    Outcome::new(OutcomeKind::HttpServerError(500), 90)
}

fn ok() -> Outcome {
    Outcome::success(90)
}

#[test]
fn the_defaults_need_three_distinct_keys_and_cap_five_calls_per_key() {
    let s = BreakerSettings::default();
    assert_eq!(s.min_distinct_keys, 3);
    assert_eq!(s.max_calls_per_key, 5);
}

#[test]
fn one_client_cannot_trip_the_breaker_however_often_it_fails() {
    let mut b = breaker(settings());
    // t=0..100s: one attacker (one id) sends queries that make LightRAG fail, 100 times.
    for i in 0..100 {
        assert_eq!(b.record(&fail(), key(666), T0 + i * SEC, NO_JITTER), None);
    }
    assert_eq!(b.state(T0 + 100 * SEC), BreakerState::Closed);
    let st = b.status(T0 + 100 * SEC);
    // Its first five failures entered the window; the other 95 were capped.
    assert_eq!(st.capped_calls, 95);
    assert_eq!(st.total_requests, 100);
}

#[test]
fn two_clients_cannot_trip_it_a_third_distinct_key_does() {
    let mut b = breaker(settings());
    // t=0: two ids alternate failures: ten in the window (five each), consecutive, but from two
    // keys only.
    for i in 0..20 {
        assert_eq!(b.record(&fail(), key(1 + i % 2), T0, NO_JITTER), None);
    }
    assert_eq!(b.state(T0), BreakerState::Closed);
    // t=1s: a third user's request fails too: three distinct keys in a run of failures → trip.
    let t = b.record(&fail(), key(3), T0 + SEC, NO_JITTER).unwrap();
    assert_eq!(t.to, BreakerState::Open);
    assert_eq!(t.cause, TransitionCause::ConsecutiveFailures);
}

#[test]
fn a_real_outage_still_trips_on_the_third_user() {
    let mut b = breaker(settings());
    assert_eq!(b.record(&fail(), key(1), T0, NO_JITTER), None);
    assert_eq!(b.record(&fail(), key(2), T0, NO_JITTER), None);
    let t = b.record(&fail(), key(3), T0, NO_JITTER).unwrap();
    assert_eq!(t.cause, TransitionCause::ConsecutiveFailures);
}

#[test]
fn one_client_fills_at_most_its_share_of_the_rate_window() {
    let mut b = breaker(settings());
    // Interleaved with healthy traffic from other users, one id fails as often as it can; two
    // others fail once each. Window 20, rate threshold 50 %, minimum 10 calls.
    let mut user = 100;
    for round in 0..40 {
        b.record(&fail(), key(666), T0 + round * SEC, NO_JITTER);
        user += 1;
        b.record(&ok(), key(user), T0 + round * SEC, NO_JITTER);
    }
    b.record(&fail(), key(7), T0 + 41 * SEC, NO_JITTER);
    b.record(&fail(), key(8), T0 + 41 * SEC, NO_JITTER);
    // The attacker's failures hold at most 5 of the 20 slots: 7/20 < 50 %.
    assert_eq!(b.state(T0 + 41 * SEC), BreakerState::Closed);
    assert!(b.status(T0 + 41 * SEC).failure_rate < 0.5);
}

#[test]
fn the_rate_rule_needs_distinct_failing_keys_too() {
    let s = BreakerSettings {
        failure_threshold: 1000, // only the rate rule
        max_calls_per_key: 20,
        ..settings()
    };
    let mut b = breaker(s);
    // Two ids fail 10 times each between other users' successes: 20 failures in the window,
    // but from two keys.
    for i in 0..20 {
        b.record(&fail(), key(1 + i % 2), T0, NO_JITTER);
    }
    assert_eq!(b.state(T0), BreakerState::Closed);
    // A third key's failure: 3 distinct failing keys, rate ≥ 50 % → trip.
    let t = b.record(&fail(), key(3), T0, NO_JITTER).unwrap();
    assert_eq!(t.cause, TransitionCause::FailureRate);
}

#[test]
fn half_open_counts_one_result_per_key() {
    let mut b = breaker(settings());
    for k in 1..=3 {
        b.record(&fail(), key(k), T0, NO_JITTER);
    }
    let half = T0 + 30 * SEC;
    assert_eq!(b.state(half), BreakerState::HalfOpen);
    // One attacker's probes fail again and again: one key, so it does not reopen.
    for _ in 0..10 {
        assert_eq!(b.admit(half, 0.0), Admission::Probe);
        assert_eq!(b.record(&fail(), key(666), half, NO_JITTER), None);
    }
    assert_eq!(b.state(half), BreakerState::HalfOpen);
    // Nor can one key's successes close it (3 successes from distinct keys are needed).
    for _ in 0..10 {
        b.admit(half, 0.0);
        assert_eq!(b.record(&ok(), key(42), half, NO_JITTER), None);
    }
    assert_eq!(b.state(half), BreakerState::HalfOpen);
    // Two more users' successes (3 distinct with key 42): closed.
    b.admit(half, 0.0);
    assert_eq!(b.record(&ok(), key(43), half, NO_JITTER), None);
    b.admit(half, 0.0);
    let t = b.record(&ok(), key(44), half, NO_JITTER).unwrap();
    assert_eq!(t.to, BreakerState::Closed);
}

#[test]
fn half_open_reopens_on_failures_from_distinct_keys() {
    let mut b = breaker(settings());
    for k in 1..=3 {
        b.record(&fail(), key(k), T0, NO_JITTER);
    }
    let half = T0 + 30 * SEC;
    // Probes from three different users fail: LightRAG is still down → open again, longer.
    for k in 10..12 {
        b.admit(half, 0.0);
        assert_eq!(b.record(&fail(), key(k), half, NO_JITTER), None);
    }
    b.admit(half, 0.0);
    let t = b.record(&fail(), key(12), half, NO_JITTER).unwrap();
    assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
    assert_eq!(t.cause, TransitionCause::ProbeFailed);
    assert_eq!(t.open_until_ms, Some(half + 60 * SEC));
}

#[test]
fn one_distinct_key_restores_the_plain_breaker() {
    // LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS=1 and a cap at the window size: a single-user
    // deployment (or a test) trips on one client's failures, as before.
    let s = BreakerSettings {
        min_distinct_keys: 1,
        max_calls_per_key: 20,
        ..settings()
    };
    let mut b = breaker(s);
    b.record(&fail(), key(1), T0, NO_JITTER);
    b.record(&fail(), key(1), T0, NO_JITTER);
    assert!(b.record(&fail(), key(1), T0, NO_JITTER).is_some());
}

#[test]
fn the_new_settings_are_validated() {
    for (s, field) in [
        (
            BreakerSettings {
                min_distinct_keys: 0,
                ..settings()
            },
            "min_distinct_keys",
        ),
        (
            BreakerSettings {
                min_distinct_keys: 33,
                ..settings()
            },
            "min_distinct_keys",
        ),
        (
            BreakerSettings {
                max_calls_per_key: 0,
                ..settings()
            },
            "max_calls_per_key",
        ),
    ] {
        let e = BreakerPolicy::try_new(s).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
}

#[test]
fn the_variables_reach_the_policy_and_bad_values_are_named() {
    use cmo_edge_router::core::config;
    use serde_json::{json, Map};
    let mut vars = Map::new();
    vars.insert(
        "LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS".into(),
        json!("1"),
    );
    vars.insert(
        "LIGHTRAG_CIRCUIT_BREAKER_MAX_CALLS_PER_KEY".into(),
        json!("20"),
    );
    vars.insert("LIGHTRAG_METRICS_MAX_SAMPLES_PER_KEY".into(), json!("7"));
    let l = config::load(&vars, None, 0);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    let s = l.config.breaker.settings();
    assert_eq!((s.min_distinct_keys, s.max_calls_per_key), (1, 20));
    assert_eq!(l.config.metrics_max_samples_per_key, 7);

    vars.insert(
        "LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS".into(),
        json!("0"),
    );
    vars.insert("LIGHTRAG_METRICS_MAX_SAMPLES_PER_KEY".into(), json!("-3"));
    let l = config::load(&vars, None, 0);
    let named: Vec<&str> = l.problems.iter().map(|p| p.variable.as_str()).collect();
    assert!(
        named.contains(&"LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS"),
        "{named:?}"
    );
    assert!(
        named.contains(&"LIGHTRAG_METRICS_MAX_SAMPLES_PER_KEY"),
        "{named:?}"
    );
    assert_eq!(
        l.config.breaker.settings().min_distinct_keys,
        3,
        "the default"
    );
}

/// A plain model of the closed breaker with keys: the last `window` recorded calls as a list,
/// a key's call left out once it holds `cap` of them, the run of failures with its keys.
/// Returns the index of the call that trips it, if any.
fn naive_trip(s: &BreakerSettings, calls: &[(bool, u64)]) -> Option<usize> {
    let mut window: Vec<(bool, u64)> = Vec::new();
    let mut run: Vec<u64> = Vec::new();
    for (i, &(failed, k)) in calls.iter().enumerate() {
        if window.iter().filter(|(_, wk)| *wk == k).count() as u32 >= s.max_calls_per_key {
            continue;
        }
        window.insert(0, (failed, k));
        window.truncate(s.window_size as usize);
        if failed {
            run.push(k);
        } else {
            run.clear();
        }
        let mut run_keys = run.clone();
        run_keys.sort_unstable();
        run_keys.dedup();
        let mut failing: Vec<u64> = window.iter().filter(|c| c.0).map(|c| c.1).collect();
        failing.sort_unstable();
        failing.dedup();
        let failures = window.iter().filter(|c| c.0).count() as f64;
        let consecutive =
            run.len() as u32 >= s.failure_threshold && run_keys.len() as u32 >= s.min_distinct_keys;
        let rate = window.len() as u32 >= s.minimum_calls
            && failures >= s.failure_rate_threshold * window.len() as f64
            && failing.len() as u32 >= s.min_distinct_keys.min(s.window_size);
        if consecutive || rate {
            return Some(i);
        }
    }
    None
}

proptest::proptest! {
    /// The ring of keys, the cap and the distinct-key counts agree with the plain model for
    /// every window size, cap and minimum.
    #[test]
    fn keyed_window_matches_the_plain_model(
        window_size in 1u32..=40,
        minimum in 1u32..=40,
        threshold in 1u32..=8,
        min_distinct_keys in 1u32..=5,
        max_calls_per_key in 1u32..=8,
        calls in proptest::collection::vec((proptest::bool::weighted(0.6), 0u64..7), 0..120),
    ) {
        let s = BreakerSettings {
            window_size,
            minimum_calls: minimum.min(window_size),
            failure_threshold: threshold,
            min_distinct_keys,
            max_calls_per_key,
            ..settings()
        };
        let mut b = breaker(s);
        let mut tripped = None;
        for (i, &(failed, k)) in calls.iter().enumerate() {
            let o = if failed { fail() } else { ok() };
            if b.record(&o, key(k), T0, NO_JITTER).is_some() {
                tripped = Some(i);
                break;
            }
        }
        proptest::prop_assert_eq!(tripped, naive_trip(&s, &calls));
    }
}
