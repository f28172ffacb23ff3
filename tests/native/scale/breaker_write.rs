//! A breaker transition that KV refuses because another isolate wrote `breaker/<upstream>`
//! within the same second (429; the fleet simulation saw it once at 10 and twice at 100
//! isolates): the isolate's throttle cannot see other isolates' writes, so the refusal must be
//! handled after the fact. The driver reads the record back; when it already carries this
//! transition or a newer one nothing is retried (and a newer one is adopted), otherwise the
//! isolate's record is written again a throttle interval later.

use super::fleet::perform;
use super::kv::SimKv;
use crate::fleet_support::{isolate, vars, T0};
use cmo_edge_router::core::breaker::{BreakerSnapshot, BreakerState};
use cmo_edge_router::core::fleet::{CallRecord, IsolateState};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use cmo_edge_router::core::store::{breaker_key, StateStore};

fn trip(iso: &mut IsolateState, now: u64) {
    for user in 1..=5 {
        iso.record_call(
            &CallRecord {
                upstream: Upstream::Lightrag,
                outcome: Outcome::new(OutcomeKind::HttpServerError(500), 80),
                key: KeyTag::from_raw(user),
            },
            now,
        );
    }
    let b = iso.breaker(Upstream::Lightrag);
    assert_eq!(b.map(|b| b.state(now)), Some(BreakerState::Open));
}

/// Another isolate's record, written at `at` from `location`.
fn other_writes(kv: &SimKv, location: usize, at: u64, state: BreakerState, generation: u64) {
    let snap = BreakerSnapshot {
        state,
        open_until_ms: (state == BreakerState::Open).then_some(at + 30_000),
        generation,
        trips: u64::from(state == BreakerState::Open),
        updated_ms: at,
        admin_epoch: 0,
    };
    let text = serde_json::to_string(&snap).unwrap_or_default();
    let written = crate::fleet_support::block_on(kv.view(location, at).put(
        &breaker_key(Upstream::Lightrag),
        &text,
        None,
    ));
    assert!(written.is_ok());
}

fn stored(kv: &SimKv, now: u64) -> Option<BreakerSnapshot> {
    kv.latest(&breaker_key(Upstream::Lightrag), now)
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// One request's background work at `now` through `iso`'s location 0.
fn step(kv: &SimKv, iso: &mut IsolateState, now: u64) {
    let bg = iso.background(now);
    perform(&kv.view(0, now), iso, bg, now);
}

#[test]
fn a_refused_transition_is_written_again_when_the_stored_record_is_older() {
    let kv = SimKv::new(T0, 3);
    let mut b = isolate("b", vars(&[]), T0);
    step(&kv, &mut b, T0);
    // Another isolate, elsewhere, writes an older record (closed, generation 0) at 10 s.
    other_writes(&kv, 1, T0 + 10_000, BreakerState::Closed, 0);
    // Half a second later B trips: its write is refused (one write per second per key).
    trip(&mut b, T0 + 10_500);
    step(&kv, &mut b, T0 + 10_500);
    assert_eq!(kv.counts().rejected_writes, 1);
    // B's next background run, two seconds later: its transition reaches KV.
    step(&kv, &mut b, T0 + 12_500);
    let s = stored(&kv, T0 + 12_500);
    assert_eq!(
        s.map(|s| (s.state, s.generation)),
        Some((BreakerState::Open, 1)),
        "B's trip must not be lost to the other isolate's older write"
    );
}

#[test]
fn a_refused_transition_is_not_retried_when_the_stored_record_carries_a_newer_one() {
    let kv = SimKv::new(T0, 3);
    let mut b = isolate("b", vars(&[]), T0);
    step(&kv, &mut b, T0);
    // Another isolate in B's location writes a newer record (open, generation 4) at 10 s.
    other_writes(&kv, 0, T0 + 10_000, BreakerState::Open, 4);
    trip(&mut b, T0 + 10_500);
    step(&kv, &mut b, T0 + 10_500);
    assert_eq!(kv.counts().rejected_writes, 1);
    let writes = kv.counts().writes;
    step(&kv, &mut b, T0 + 12_500);
    assert_eq!(
        kv.counts().writes,
        writes,
        "no blind retry over a newer record"
    );
    assert_eq!(stored(&kv, T0 + 12_500).map(|s| s.generation), Some(4));
    // B adopted the newer record.
    let g = b
        .breaker(Upstream::Lightrag)
        .map(|b| b.snapshot().generation);
    assert_eq!(g, Some(4));
}
