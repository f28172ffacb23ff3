//! Breaker replication through KV (docs/architecture.md#breaker-replication), as timelines on a
//! virtual clock: what one isolate adopts from the snapshots and admin commands other isolates
//! wrote. A snapshot can claim anything (a corrupt value, a writer with a broken clock), so
//! adoption is bounded; an operator's command must win everywhere, whatever each isolate's
//! generation.

use cmo_edge_router::core::breaker::{
    AdminCommand, Admission, Breaker, BreakerAction, BreakerPolicy, BreakerSettings,
    BreakerSnapshot, BreakerState,
};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use std::cell::Cell;

const T0: u64 = 1_700_000_000_000;
const SEC: u64 = 1_000;
const DAY: u64 = 86_400 * SEC;
const NO_JITTER: f64 = 0.5;

fn settings() -> BreakerSettings {
    BreakerSettings {
        failure_threshold: 3,
        window_size: 10,
        minimum_calls: 6,
        recovery_timeout_ms: 30 * SEC,
        max_recovery_timeout_ms: 100 * SEC,
        half_open_max_probes: 3,
        half_open_successes_to_close: 2,
        jitter: 0.0,
        ..BreakerSettings::default()
    }
}

fn breaker() -> Breaker {
    Breaker::new(BreakerPolicy::try_new(settings()).unwrap())
}

thread_local! {
    static NEXT: Cell<u64> = const { Cell::new(1) };
}

/// A stickiness key never seen before (each call a different user).
fn someone() -> KeyTag {
    NEXT.with(|n| {
        let v = n.get();
        n.set(v + 1);
        KeyTag::from_raw(v)
    })
}

fn fail() -> Outcome {
    Outcome::new(OutcomeKind::HttpServerError(503), 100)
}

/// Trips `b` at `at` with three users' 503s; returns `open_until`.
fn trip(b: &mut Breaker, at: u64) -> u64 {
    let mut last = None;
    for _ in 0..3 {
        last = b.record(&fail(), someone(), at, NO_JITTER);
    }
    let t = last.expect("the third failure trips");
    assert_eq!(t.to, BreakerState::Open);
    t.open_until_ms.unwrap()
}

/// Half-open at `at`, closed by two users' successful probes.
fn close_via_probes(b: &mut Breaker, at: u64) {
    assert_eq!(b.admit(at, 0.0), Admission::Probe);
    assert_eq!(b.admit(at, 0.0), Admission::Probe);
    b.record(&Outcome::success(100), someone(), at, NO_JITTER);
    let t = b.record(&Outcome::success(100), someone(), at, NO_JITTER);
    assert_eq!(t.map(|t| t.to), Some(BreakerState::Closed));
}

fn open_snapshot(until: u64, generation: u64) -> BreakerSnapshot {
    BreakerSnapshot {
        state: BreakerState::Open,
        open_until_ms: Some(until),
        generation,
        trips: 1,
        updated_ms: T0,
        admin_epoch: 0,
    }
}

#[test]
fn an_adopted_open_state_never_outlasts_the_maximum_open_time() {
    let mut b = breaker();
    // t=0: KV says "open for 100 days" (a corrupt value, or a writer whose clock is wrong).
    assert!(b.merge_remote(&open_snapshot(T0 + 100 * DAY, 9), T0));
    // Adopted as open, but for at most the policy's maximum open time (100 s) from now.
    assert_eq!(b.state(T0), BreakerState::Open);
    assert_eq!(b.status(T0).open_until_ms, Some(T0 + 100 * SEC));
    // t=100s: half-open, probing, as after any trip.
    assert_eq!(b.state(T0 + 100 * SEC), BreakerState::HalfOpen);
    assert_eq!(b.admit(T0 + 100 * SEC, 0.0), Admission::Probe);
}

#[test]
fn generations_saturate_instead_of_wrapping() {
    let mut b = breaker();
    // t=0: a snapshot at the largest generation there is (closed).
    let top = BreakerSnapshot {
        state: BreakerState::Closed,
        open_until_ms: None,
        ..open_snapshot(0, u64::MAX)
    };
    assert!(b.merge_remote(&top, T0));
    // t=1s: a local trip; its generation stays at the top instead of wrapping to 0.
    trip(&mut b, T0 + SEC);
    assert_eq!(b.snapshot().generation, u64::MAX);
    // t=2s: a generation-0 closed snapshot (what a wrapped counter would have written) is
    // older, not newer: the breaker stays open.
    let wrapped = BreakerSnapshot {
        generation: 0,
        ..top
    };
    assert!(!b.merge_remote(&wrapped, T0 + 2 * SEC));
    assert_eq!(b.state(T0 + 2 * SEC), BreakerState::Open);
}

#[test]
fn an_admin_reset_wins_where_the_generation_is_higher() {
    // Isolate A has flapped for a while (generation 7, open); isolate B tripped once
    // (generation 1, open).
    let (mut a, mut b) = (breaker(), breaker());
    let mut at = T0;
    for _ in 0..3 {
        let until = trip(&mut a, at);
        close_via_probes(&mut a, until);
        at = until + SEC;
    }
    trip(&mut a, at);
    assert_eq!(a.snapshot().generation, 7);
    let stale_a = a.snapshot();
    trip(&mut b, at);
    assert_eq!(b.snapshot().generation, 1);

    // at+1s: an operator resets the breaker through B. B closes at once and issues a command.
    let (cmd, t) = b.apply(BreakerAction::Reset, at + SEC);
    assert_eq!((t.from, t.to), (BreakerState::Open, BreakerState::Closed));
    assert_eq!(cmd.action, BreakerAction::Reset);

    // at+2s: A reads the command from KV and closes, although its generation (7) is higher.
    assert!(a.adopt_admin(&cmd, at + 2 * SEC).is_some());
    assert_eq!(a.state(at + 2 * SEC), BreakerState::Closed);
    assert!(
        a.adopt_admin(&cmd, at + 3 * SEC).is_none(),
        "the same command is applied once"
    );

    // at+3s: B reads A's stale pre-reset snapshot (generation 7) from KV: it predates the
    // command, so B stays closed.
    assert!(!b.merge_remote(&stale_a, at + 3 * SEC));
    assert_eq!(b.state(at + 3 * SEC), BreakerState::Closed);

    // at+10s: LightRAG fails again and A trips after the reset: that newer trip does reach B.
    trip(&mut a, at + 10 * SEC);
    assert!(b.merge_remote(&a.snapshot(), at + 11 * SEC));
    assert_eq!(b.state(at + 11 * SEC), BreakerState::Open);
}

#[test]
fn the_latest_admin_command_wins_in_any_reading_order() {
    let (mut a, mut b) = (breaker(), breaker());
    // t=0: an operator forces it open through A; t=1s: another resets it through B (B has not
    // seen A's command yet).
    let (open, _) = a.apply(BreakerAction::Open, T0);
    let (reset, _) = b.apply(BreakerAction::Reset, T0 + SEC);
    assert!(reset.epoch > open.epoch);
    // Isolate C reads them in one order, isolate D in the other: both end closed.
    let (mut c, mut d) = (breaker(), breaker());
    c.adopt_admin(&open, T0 + 2 * SEC);
    c.adopt_admin(&reset, T0 + 2 * SEC);
    d.adopt_admin(&reset, T0 + 2 * SEC);
    d.adopt_admin(&open, T0 + 2 * SEC);
    assert_eq!(c.state(T0 + 2 * SEC), BreakerState::Closed);
    assert_eq!(d.state(T0 + 2 * SEC), BreakerState::Closed);
    // A adopts the later reset over its own earlier forced open.
    a.adopt_admin(&reset, T0 + 2 * SEC);
    assert_eq!(a.state(T0 + 2 * SEC), BreakerState::Closed);
}

#[test]
fn a_forced_open_command_is_adopted_for_at_most_the_maximum_open_time() {
    let mut b = breaker();
    // A command claiming "open for 100 days" (corrupt, or issued under another policy).
    let cmd = AdminCommand {
        action: BreakerAction::Open,
        epoch: T0,
        open_until_ms: Some(T0 + 100 * DAY),
    };
    assert!(b.adopt_admin(&cmd, T0).is_some());
    assert_eq!(b.status(T0).open_until_ms, Some(T0 + 100 * SEC));
    // The command's serde shape (the `breaker/<upstream>/admin` KV value).
    assert_eq!(
        serde_json::to_value(cmd).unwrap(),
        serde_json::json!({"action":"open","epoch":T0,"open_until_ms":T0 + 100 * DAY})
    );
}
