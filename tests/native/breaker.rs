//! Circuit-breaker timelines on a virtual clock, in the style of linkerd2-proxy's failure
//! accrual tests: every step says what time it is, what happens, and what the breaker must do.
//! Jitter is zero (roll 0.5 with `jitter: 0.0`) unless the test is about jitter.

use cmo_edge_router::core::breaker::{
    Admission, Breaker, BreakerPolicy, BreakerSettings, BreakerSnapshot, BreakerState,
    TransitionCause,
};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::outcome::{classify_status, Outcome, OutcomeKind};

const T0: u64 = 1_700_000_000_000;
const SEC: u64 = 1_000;
const NO_JITTER: f64 = 0.5;

thread_local! {
    static NEXT_KEY: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// A stickiness key never seen before: these timelines are about the breaker's arithmetic, so
/// every call comes from a different user (the distinct-key rules have their own tests).
fn someone() -> KeyTag {
    NEXT_KEY.with(|n| {
        let v = n.get();
        n.set(v + 1);
        KeyTag::from_raw(v)
    })
}

/// Defaults, minus jitter, with small numbers that keep the timelines short.
fn settings() -> BreakerSettings {
    BreakerSettings {
        failure_threshold: 3,
        failure_rate_threshold: 0.5,
        window_size: 10,
        minimum_calls: 6,
        slow_call_ms: 10 * SEC,
        recovery_timeout_ms: 30 * SEC,
        max_recovery_timeout_ms: 100 * SEC,
        backoff_multiplier: 2.0,
        backoff_reset_ms: 600 * SEC,
        half_open_probe_share: 0.1,
        half_open_max_probes: 2,
        half_open_successes_to_close: 2,
        half_open_max_wait_ms: 20 * SEC,
        jitter: 0.0,
        // The plain breaker's arithmetic: one failed probe reopens it. The distinct-key rules
        // have their own timelines (breaker_keys.rs).
        min_distinct_keys: 1,
        max_calls_per_key: 128,
        ..BreakerSettings::default()
    }
}

fn breaker(s: BreakerSettings) -> Breaker {
    Breaker::new(BreakerPolicy::try_new(s).unwrap())
}

fn ok() -> Outcome {
    Outcome::success(100)
}

fn fail() -> Outcome {
    Outcome::new(OutcomeKind::HttpServerError(503), 100)
}

/// Trips `b` at `at` with three consecutive 503s; returns `open_until`.
fn trip(b: &mut Breaker, at: u64) -> u64 {
    assert_eq!(b.record(&fail(), someone(), at, NO_JITTER), None);
    assert_eq!(b.record(&fail(), someone(), at, NO_JITTER), None);
    let t = b
        .record(&fail(), someone(), at, NO_JITTER)
        .expect("third failure trips");
    assert_eq!(t.to, BreakerState::Open);
    t.open_until_ms.unwrap()
}

/// The failure rate over the breaker's window, as the status API reports it.
fn rate(b: &Breaker) -> f64 {
    b.status(T0).failure_rate
}

/// Goes half-open at `at` and closes it with two successful probes.
fn close_via_probes(b: &mut Breaker, at: u64) {
    assert_eq!(b.admit(at, 0.0), Admission::Probe);
    assert_eq!(b.admit(at, 0.0), Admission::Probe);
    assert_eq!(b.record(&ok(), someone(), at, NO_JITTER), None);
    let t = b
        .record(&ok(), someone(), at, NO_JITTER)
        .expect("second success closes");
    assert_eq!(
        (t.from, t.to),
        (BreakerState::HalfOpen, BreakerState::Closed)
    );
    assert_eq!(t.cause, TransitionCause::ProbesSucceeded);
}

#[test]
fn trips_on_consecutive_failures_and_rejects_until_open_until() {
    let mut b = breaker(settings());
    // t=0: two failures, a success resets the streak.
    b.record(&fail(), someone(), T0, NO_JITTER);
    b.record(&fail(), someone(), T0, NO_JITTER);
    b.record(&ok(), someone(), T0, NO_JITTER);
    assert_eq!(b.state(T0), BreakerState::Closed);
    assert_eq!(b.admit(T0, 0.0), Admission::Allowed);
    // t=1s: three in a row trip it for exactly the recovery timeout (jitter 0).
    b.record(&fail(), someone(), T0 + SEC, NO_JITTER);
    b.record(&fail(), someone(), T0 + SEC, NO_JITTER);
    let t = b.record(&fail(), someone(), T0 + SEC, NO_JITTER).unwrap();
    assert_eq!(t.cause, TransitionCause::ConsecutiveFailures);
    assert_eq!(t.from, BreakerState::Closed);
    assert_eq!(t.open_until_ms, Some(T0 + 31 * SEC));
    assert_eq!(t.generation, 1);
    // t=1s..31s: rejected, whatever the roll.
    assert_eq!(b.admit(T0 + SEC, 0.0), Admission::Rejected);
    assert_eq!(b.admit(T0 + 31 * SEC - 1, 0.0), Admission::Rejected);
    assert_eq!(b.state(T0 + 20 * SEC), BreakerState::Open);
    // t=31s: half-open.
    assert_eq!(b.state(T0 + 31 * SEC), BreakerState::HalfOpen);
    let st = b.status(T0 + 20 * SEC);
    assert!(st.is_open);
    assert_eq!(st.trips, 1);
    assert_eq!(st.consecutive_failures, 3);
    assert_eq!(st.open_until_ms, Some(T0 + 31 * SEC));
}

#[test]
fn trips_by_rate_only_after_minimum_calls() {
    // Consecutive threshold out of reach so only the rate can trip it.
    let mut b = breaker(BreakerSettings {
        failure_threshold: 100,
        ..settings()
    });
    // t=0: F S F S F: 3/5 = 60% ≥ 50%, but only 5 < 6 minimum calls.
    for o in [fail(), ok(), fail(), ok(), fail()] {
        assert_eq!(b.record(&o, someone(), T0, NO_JITTER), None);
    }
    assert_eq!(b.state(T0), BreakerState::Closed);
    assert!((rate(&b) - 0.6).abs() < 1e-12);
    // t=1s: a success makes 6 calls at 3/6 = 50%: trips on the rate.
    let t = b.record(&ok(), someone(), T0 + SEC, NO_JITTER).unwrap();
    assert_eq!(t.cause, TransitionCause::FailureRate);
}

#[test]
fn rate_window_slides() {
    let mut b = breaker(BreakerSettings {
        failure_threshold: 100,
        ..settings()
    });
    // 3 failures in 10 calls: the rate stays under 50% once the 6 minimum calls are seen.
    let seq = [
        ok(),
        ok(),
        fail(),
        ok(),
        fail(),
        ok(),
        ok(),
        fail(),
        ok(),
        ok(),
    ];
    for o in seq {
        assert_eq!(b.record(&o, someone(), T0, NO_JITTER), None);
    }
    assert!((rate(&b) - 0.3).abs() < 1e-12);
    for _ in 0..10 {
        b.record(&ok(), someone(), T0, NO_JITTER);
    }
    // 10 more successes push every failure out of the 10-call window.
    assert_eq!(rate(&b), 0.0);
    assert_eq!(b.state(T0), BreakerState::Closed);
}

#[test]
fn slow_calls_count_as_failures() {
    let mut b = breaker(settings());
    // Three 200s that each took 12 s (slow bound 10 s) trip it like three 503s.
    let slow = Outcome::from_response(200, 12 * SEC, 10 * SEC);
    assert_eq!(slow.kind, OutcomeKind::SlowCall);
    b.record(&slow, someone(), T0, NO_JITTER);
    b.record(&slow, someone(), T0, NO_JITTER);
    assert!(b.record(&slow, someone(), T0, NO_JITTER).is_some());
}

#[test]
fn the_breaker_trusts_the_classification_it_is_given() {
    // Slowness is classified once, where the call is measured (the metrics record the same
    // kind): a call recorded as a success is a success, however long it took.
    let mut b = breaker(settings());
    for _ in 0..5 {
        assert_eq!(
            b.record(&Outcome::success(11 * SEC), someone(), T0, NO_JITTER),
            None
        );
    }
    assert_eq!(b.status(T0).consecutive_failures, 0);
}

#[test]
fn client_errors_do_not_count_but_429_and_408_do() {
    let mut b = breaker(settings());
    for status in [400, 415, 404, 422, 400, 404, 413, 400, 404, 400] {
        assert!(matches!(
            classify_status(status),
            OutcomeKind::ClientError(_)
        ));
        assert_eq!(
            b.record(
                &Outcome::from_response(status, 50, 0),
                someone(),
                T0,
                NO_JITTER
            ),
            None
        );
    }
    assert_eq!(rate(&b), 0.0);
    assert_eq!(b.status(T0).consecutive_failures, 0);
    // 429, 408, 429 in a row trip it.
    b.record(
        &Outcome::from_response(429, 50, 0),
        someone(),
        T0,
        NO_JITTER,
    );
    b.record(
        &Outcome::from_response(408, 50, 0),
        someone(),
        T0,
        NO_JITTER,
    );
    assert!(b
        .record(
            &Outcome::from_response(429, 50, 0),
            someone(),
            T0,
            NO_JITTER
        )
        .is_some());
}

#[test]
fn every_failure_kind_counts() {
    for kind in [
        OutcomeKind::NetworkError,
        OutcomeKind::FirstByteTimeout,
        OutcomeKind::TotalTimeout,
        OutcomeKind::TruncatedStream,
        OutcomeKind::HttpServerError(500),
    ] {
        let mut b = breaker(settings());
        for _ in 0..2 {
            b.record(&Outcome::new(kind, 10), someone(), T0, NO_JITTER);
        }
        assert!(
            b.record(&Outcome::new(kind, 10), someone(), T0, NO_JITTER)
                .is_some(),
            "{kind:?}"
        );
    }
}

#[test]
fn half_open_admission_is_bounded_and_probabilistic() {
    let mut b = breaker(settings());
    let open_until = trip(&mut b, T0);
    let t = open_until;
    // Rolls at or above the 10% share are rejected (and reported as half-open rejects).
    assert_eq!(b.admit(t, 0.1), Admission::Rejected);
    assert_eq!(b.admit(t, 0.5), Admission::Rejected);
    assert_eq!(b.state(t), BreakerState::HalfOpen);
    // Rolls under it are probes, up to 2 in flight.
    assert_eq!(b.admit(t, 0.05), Admission::Probe);
    assert_eq!(b.admit(t + 1, 0.0), Admission::Probe);
    assert_eq!(
        b.admit(t + 2, 0.0),
        Admission::Rejected,
        "third probe exceeds the bound"
    );
    // One probe completes (success): a slot frees up.
    assert_eq!(b.record(&ok(), someone(), t + 3, NO_JITTER), None);
    assert_eq!(b.admit(t + 4, 0.0), Admission::Probe);
    assert_eq!(b.admit(t + 5, 0.0), Admission::Rejected);
}

#[test]
fn probe_successes_close_and_clear_the_window() {
    let mut b = breaker(settings());
    let open_until = trip(&mut b, T0);
    close_via_probes(&mut b, open_until);
    assert_eq!(b.state(open_until), BreakerState::Closed);
    assert_eq!(b.admit(open_until, 0.99), Admission::Allowed);
    let st = b.status(open_until);
    assert_eq!(st.failure_rate, 0.0);
    assert_eq!(st.consecutive_failures, 0);
    assert_eq!(st.open_until_ms, None);
    // Two new failures do not trip: the old ones were forgotten.
    assert_eq!(b.record(&fail(), someone(), open_until, NO_JITTER), None);
    assert_eq!(b.record(&fail(), someone(), open_until, NO_JITTER), None);
}

#[test]
fn probe_failure_reopens_for_longer_capped() {
    let mut b = breaker(settings());
    // Trip 1 at t=0: 30 s.
    let until1 = trip(&mut b, T0);
    assert_eq!(until1 - T0, 30 * SEC);
    // t=30s: a probe fails → open for 60 s.
    assert_eq!(b.admit(until1, 0.0), Admission::Probe);
    let t = b.record(&fail(), someone(), until1, NO_JITTER).unwrap();
    assert_eq!(t.cause, TransitionCause::ProbeFailed);
    assert_eq!(t.from, BreakerState::HalfOpen);
    let until2 = t.open_until_ms.unwrap();
    assert_eq!(until2 - until1, 60 * SEC);
    // Next failure: 120 s capped to 100 s, and it stays capped.
    b.admit(until2, 0.0);
    let until3 = b
        .record(&fail(), someone(), until2, NO_JITTER)
        .unwrap()
        .open_until_ms
        .unwrap();
    assert_eq!(until3 - until2, 100 * SEC);
    b.admit(until3, 0.0);
    let until4 = b
        .record(&fail(), someone(), until3, NO_JITTER)
        .unwrap()
        .open_until_ms
        .unwrap();
    assert_eq!(until4 - until3, 100 * SEC);
    assert_eq!(b.status(until4).trips, 4);
}

#[test]
fn growth_resets_after_a_sustained_close_but_not_a_brief_one() {
    let mut b = breaker(settings());
    let until1 = trip(&mut b, T0);
    close_via_probes(&mut b, until1);
    // Closed only 5 s, trips again: second trip in the streak → 60 s.
    let until2 = trip(&mut b, until1 + 5 * SEC);
    assert_eq!(until2 - (until1 + 5 * SEC), 60 * SEC);
    close_via_probes(&mut b, until2);
    // Closed 10 minutes (backoff_reset_ms): back to 30 s.
    let at = until2 + 600 * SEC;
    let until3 = trip(&mut b, at);
    assert_eq!(until3 - at, 30 * SEC);
}

#[test]
fn jitter_spreads_open_time_within_bounds() {
    let mut s = settings();
    s.jitter = 0.1;
    let p = BreakerPolicy::try_new(s).unwrap();
    assert_eq!(p.open_ms(1, 0.0), 27 * SEC);
    assert_eq!(p.open_ms(1, 0.5), 30 * SEC);
    assert_eq!(p.open_ms(1, 0.999_999), 32_999);
    // Never above the cap, even with positive jitter on a capped streak.
    assert_eq!(p.open_ms(10, 0.999), 100 * SEC);
    // The roll passed to record is the one used.
    let mut b = Breaker::new(p);
    b.record(&fail(), someone(), T0, 0.0);
    b.record(&fail(), someone(), T0, 0.0);
    let t = b.record(&fail(), someone(), T0, 0.0).unwrap();
    assert_eq!(t.open_until_ms, Some(T0 + 27 * SEC));
}

/// 401/403 and other 4xx the request did not cause (a wrong key, a wrong base URL) fail every
/// request: they count, or a broken LightRAG key would never take LightRAG out of the path.
#[test]
fn a_refused_key_counts_as_a_failure() {
    for status in [401, 403, 405, 410] {
        assert_eq!(classify_status(status), OutcomeKind::Refused(status));
        let mut b = breaker(settings());
        b.record(
            &Outcome::from_response(status, 50, 0),
            someone(),
            T0,
            NO_JITTER,
        );
        b.record(
            &Outcome::from_response(status, 50, 0),
            someone(),
            T0,
            NO_JITTER,
        );
        let t = b.record(
            &Outcome::from_response(status, 50, 0),
            someone(),
            T0,
            NO_JITTER,
        );
        assert_eq!(t.map(|t| t.to), Some(BreakerState::Open), "{status}");
    }
}

/// A probe whose call reports nothing (never sent, the client left, the request was refused)
/// hands its permit back instead of holding the slot until the stall timeout.
#[test]
fn a_released_probe_frees_its_slot_without_judging() {
    let mut b = breaker(settings());
    let t = trip(&mut b, T0);
    // t: two probes out (the bound).
    assert_eq!(b.admit(t, 0.0), Admission::Probe);
    assert_eq!(b.admit(t, 0.0), Admission::Probe);
    assert_eq!(b.admit(t + 1, 0.0), Admission::Rejected);
    // t+1s: one probe's client disconnects: released, not recorded.
    b.release(t + SEC);
    assert_eq!(b.state(t + SEC), BreakerState::HalfOpen);
    assert_eq!(b.status(t + SEC).total_requests, 3, "only the trip's calls");
    assert_eq!(
        b.admit(t + SEC, 0.0),
        Admission::Probe,
        "the slot is free again"
    );
    assert_eq!(b.admit(t + SEC, 0.0), Admission::Rejected);
    // Two successes still close it: releasing judged nothing.
    assert_eq!(b.record(&ok(), someone(), t + 2 * SEC, NO_JITTER), None);
    let closed = b
        .record(&ok(), someone(), t + 2 * SEC, NO_JITTER)
        .expect("closes");
    assert_eq!(closed.to, BreakerState::Closed);
    // Closed (or open): there is nothing to release.
    b.release(t + 3 * SEC);
    assert_eq!(b.state(t + 3 * SEC), BreakerState::Closed);
}

#[test]
fn half_open_never_gets_stuck_on_lost_probes() {
    let mut b = breaker(settings());
    let t = trip(&mut b, T0);
    // t: two probes admitted; their requests are cancelled and never recorded.
    assert_eq!(b.admit(t, 0.0), Admission::Probe);
    assert_eq!(b.admit(t, 0.0), Admission::Probe);
    assert_eq!(b.admit(t + 19 * SEC, 0.0), Admission::Rejected);
    // t+20s (half_open_max_wait): the lost probes are written off, a new probe goes out even
    // with a roll that would normally be rejected.
    assert_eq!(b.admit(t + 20 * SEC, 0.99), Admission::Probe);
    assert_eq!(b.admit(t + 20 * SEC, 0.99), Admission::Rejected);
}

#[test]
fn half_open_never_gets_stuck_on_unlucky_rolls() {
    let mut b = breaker(settings());
    let t = trip(&mut b, T0);
    // Every roll misses the 10% share for 20 s…
    for i in 0..20 {
        assert_eq!(b.admit(t + i * SEC, 0.5), Admission::Rejected);
    }
    // …then the next request is admitted as a probe regardless.
    assert_eq!(b.admit(t + 20 * SEC, 0.5), Admission::Probe);
}

#[test]
fn late_results_while_open_do_not_change_state() {
    let mut b = breaker(settings());
    let until = trip(&mut b, T0);
    // Calls started before the trip finish while open: counted, but no transition.
    assert_eq!(b.record(&ok(), someone(), T0 + SEC, NO_JITTER), None);
    assert_eq!(b.record(&fail(), someone(), T0 + SEC, NO_JITTER), None);
    assert_eq!(b.state(T0 + SEC), BreakerState::Open);
    assert_eq!(b.status(T0 + SEC).total_requests, 5);
    assert_eq!(b.status(T0 + SEC).open_until_ms, Some(until));
}

#[test]
fn force_open_and_reset() {
    let mut b = breaker(settings());
    // t=0: operator forces it open for 10 minutes.
    let t = b.force_open(T0, 600 * SEC);
    assert_eq!(t.cause, TransitionCause::ForcedOpen);
    assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
    assert_eq!(b.admit(T0 + 599 * SEC, 0.0), Admission::Rejected);
    // t=5min: operator resets it: closed at once.
    let r = b.reset(T0 + 300 * SEC);
    assert_eq!(r.cause, TransitionCause::Reset);
    assert_eq!((r.from, r.to), (BreakerState::Open, BreakerState::Closed));
    assert_eq!(r.generation, 2);
    assert_eq!(b.admit(T0 + 300 * SEC, 0.99), Admission::Allowed);
    // After a forced open expires it goes half-open like any other.
    b.force_open(T0 + 400 * SEC, 10 * SEC);
    assert_eq!(b.state(T0 + 410 * SEC), BreakerState::HalfOpen);
}

#[test]
fn adopts_newer_remote_open_state_and_refuses_older() {
    // Isolate A trips and writes its snapshot; isolate B reads it.
    let mut a = breaker(settings());
    let mut b = breaker(settings());
    let until = trip(&mut a, T0);
    let snap = a.snapshot();
    assert_eq!(snap.state, BreakerState::Open);
    assert_eq!(snap.generation, 1);
    // Round-trips through KV JSON.
    let json = serde_json::to_string(&snap).unwrap();
    let back: BreakerSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    // t=2s: B adopts A's open state until A's open_until.
    assert!(b.merge_remote(&back, T0 + 2 * SEC));
    assert_eq!(b.admit(T0 + 2 * SEC, 0.0), Admission::Rejected);
    assert_eq!(b.status(T0 + 2 * SEC).open_until_ms, Some(until));
    // Re-reading the same snapshot changes nothing.
    assert!(!b.merge_remote(&back, T0 + 3 * SEC));
    // Meanwhile A recovers (A gen 2) and an operator resets B (B gen 1 → 2). A stale read of
    // A's gen-1 open state from KV must not reopen B.
    close_via_probes(&mut a, until);
    b.reset(T0 + 4 * SEC);
    assert_eq!(b.snapshot().generation, 2);
    let old = BreakerSnapshot {
        generation: 1,
        ..snap
    };
    assert!(!b.merge_remote(&old, T0 + 5 * SEC));
    assert_eq!(b.state(T0 + 5 * SEC), BreakerState::Closed);
}

#[test]
fn remote_reset_with_higher_generation_closes() {
    let mut a = breaker(settings());
    let mut b = breaker(settings());
    trip(&mut b, T0); // B open locally, gen 1
    a.force_open(T0, 60 * SEC); // gen 1
    let reset = a.reset(T0 + SEC); // gen 2
    assert_eq!(reset.generation, 2);
    assert!(b.merge_remote(&a.snapshot(), T0 + 2 * SEC));
    assert_eq!(b.state(T0 + 2 * SEC), BreakerState::Closed);
    assert_eq!(b.admit(T0 + 2 * SEC, 0.99), Admission::Allowed);
    // B's next local transition carries a generation above the adopted one.
    let t = b.force_open(T0 + 3 * SEC, SEC);
    assert_eq!(t.generation, 3);
}

#[test]
fn adopting_an_expired_remote_open_goes_half_open() {
    let mut b = breaker(settings());
    let snap = BreakerSnapshot {
        state: BreakerState::Open,
        open_until_ms: Some(T0),
        generation: 4,
        trips: 2,
        updated_ms: T0 - 30 * SEC,
        admin_epoch: 0,
    };
    assert!(b.merge_remote(&snap, T0 + SEC));
    assert_eq!(b.state(T0 + SEC), BreakerState::HalfOpen);
    assert_eq!(b.admit(T0 + SEC, 0.0), Admission::Probe);
    assert_eq!(b.status(T0 + SEC).trips, 2);
}

#[test]
fn disabled_breaker_always_allows_and_never_trips() {
    let mut b = Breaker::new(BreakerPolicy::disabled());
    for i in 0..50 {
        assert_eq!(b.record(&fail(), someone(), T0 + i, NO_JITTER), None);
        assert_eq!(b.admit(T0 + i, 0.99), Admission::Allowed);
    }
    let st = b.status(T0 + 100);
    assert!(!st.enabled && !st.is_open);
    assert_eq!(st.state, BreakerState::Closed);
    assert_eq!(st.total_requests, 50);

    // Disabling at run time (a new policy: the isolate rebuilds its breaker and carries the
    // shared state over through a snapshot) admits everything even while the fleet is open;
    // enabling again picks the open state back up.
    let mut b = breaker(settings());
    let until = trip(&mut b, T0);
    let mut off = Breaker::new(BreakerPolicy::disabled());
    assert!(off.merge_remote(&b.snapshot(), T0 + SEC));
    assert_eq!(off.admit(T0 + SEC, 0.99), Admission::Allowed);
    assert_eq!(off.state(T0 + SEC), BreakerState::Closed);
    let mut on = breaker(settings());
    assert!(on.merge_remote(&off.snapshot(), T0 + 2 * SEC));
    assert_eq!(on.admit(T0 + 2 * SEC, 0.99), Admission::Rejected);
    assert_eq!(on.status(T0 + 2 * SEC).open_until_ms, Some(until));
}

#[test]
fn invalid_policies_are_rejected_with_the_field_name() {
    let bad = [
        (
            BreakerSettings {
                failure_threshold: 0,
                ..settings()
            },
            "failure_threshold",
        ),
        (
            BreakerSettings {
                failure_rate_threshold: 0.0,
                ..settings()
            },
            "failure_rate_threshold",
        ),
        (
            BreakerSettings {
                failure_rate_threshold: f64::NAN,
                ..settings()
            },
            "failure_rate_threshold",
        ),
        (
            BreakerSettings {
                window_size: 0,
                ..settings()
            },
            "window_size",
        ),
        (
            BreakerSettings {
                window_size: 129,
                ..settings()
            },
            "window_size",
        ),
        (
            BreakerSettings {
                minimum_calls: 11,
                ..settings()
            },
            "minimum_calls",
        ),
        (
            BreakerSettings {
                recovery_timeout_ms: 0,
                ..settings()
            },
            "recovery_timeout_ms",
        ),
        (
            BreakerSettings {
                max_recovery_timeout_ms: 1,
                ..settings()
            },
            "max_recovery_timeout_ms",
        ),
        (
            BreakerSettings {
                backoff_multiplier: 0.5,
                ..settings()
            },
            "backoff_multiplier",
        ),
        (
            BreakerSettings {
                half_open_probe_share: 0.0,
                ..settings()
            },
            "half_open_probe_share",
        ),
        (
            BreakerSettings {
                half_open_max_probes: 0,
                ..settings()
            },
            "half_open_max_probes",
        ),
        (
            BreakerSettings {
                half_open_successes_to_close: 0,
                ..settings()
            },
            "half_open_successes_to_close",
        ),
        (
            BreakerSettings {
                half_open_max_wait_ms: 0,
                ..settings()
            },
            "half_open_max_wait_ms",
        ),
        (
            BreakerSettings {
                jitter: 0.9,
                ..settings()
            },
            "jitter",
        ),
    ];
    for (s, field) in bad {
        let err = BreakerPolicy::try_new(s).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    assert!(BreakerPolicy::try_new(BreakerSettings::default()).is_ok());
    assert!(BreakerPolicy::try_new(BreakerSettings {
        window_size: 128,
        minimum_calls: 128,
        ..settings()
    })
    .is_ok());
}

#[test]
fn defaults_match_the_documented_values() {
    let s = BreakerSettings::default();
    assert_eq!(s.failure_threshold, 3);
    assert_eq!(s.recovery_timeout_ms, 300_000);
    assert_eq!(s.failure_rate_threshold, 0.5);
    assert_eq!((s.window_size, s.minimum_calls), (20, 10));
    assert_eq!(s.slow_call_ms, 10_000);
    assert_eq!(s.max_recovery_timeout_ms, 8 * s.recovery_timeout_ms);
    assert_eq!(s.half_open_probe_share, 0.1);
    assert_eq!(s.half_open_successes_to_close, 3);
    assert_eq!(s.jitter, 0.1);
}

#[test]
fn snapshot_and_status_serde_shapes() {
    let mut b = breaker(settings());
    assert_eq!(
        serde_json::to_value(b.snapshot()).unwrap(),
        serde_json::json!({"state":"closed","generation":0,"trips":0,"updated_ms":0})
    );
    trip(&mut b, T0);
    assert_eq!(
        serde_json::to_value(b.snapshot()).unwrap(),
        serde_json::json!({"state":"open","open_until_ms":T0 + 30 * SEC,"generation":1,"trips":1,"updated_ms":T0})
    );
    let st = serde_json::to_value(b.status(T0)).unwrap();
    assert_eq!(st["is_open"], true);
    assert_eq!(st["state"], "open");
    assert_eq!(st["total_requests"], 3);
    assert_eq!(st["consecutive_failures"], 3);
    assert_eq!(st["last_failure_ms"], T0);
    assert_eq!(st["last_success_ms"], serde_json::Value::Null);
    assert_eq!(st["failure_rate"], 1.0);
}

proptest::proptest! {
    /// The 128-bit shift-register window agrees with a naive "last N outcomes" vector, for
    /// every window size, and the breaker trips exactly when the naive model says it should.
    #[test]
    fn window_matches_naive_model(
        window_size in 1u32..=128,
        min_frac in 0.0f64..=1.0,
        outcomes in proptest::collection::vec(proptest::bool::weighted(0.3), 0..400),
    ) {
        let minimum_calls = ((f64::from(window_size) * min_frac) as u32).clamp(1, window_size);
        let s = BreakerSettings {
            failure_threshold: 1_000,
            failure_rate_threshold: 0.5,
            window_size,
            minimum_calls,
            slow_call_ms: 0,
            ..settings()
        };
        let mut b = breaker(s);
        let mut naive: Vec<bool> = Vec::new();
        for failed in outcomes {
            let o = if failed { fail() } else { ok() };
            let t = b.record(&o, someone(), T0, NO_JITTER);
            naive.push(failed);
            let start = naive.len().saturating_sub(window_size as usize);
            let last = &naive[start..];
            let failures = last.iter().filter(|f| **f).count();
            let should_trip = last.len() >= minimum_calls as usize
                && failures as f64 >= 0.5 * last.len() as f64;
            proptest::prop_assert_eq!(t.is_some(), should_trip);
            if should_trip {
                break;
            }
            let naive_rate = failures as f64 / last.len() as f64;
            proptest::prop_assert!((rate(&b) - naive_rate).abs() < 1e-12);
        }
    }
}
