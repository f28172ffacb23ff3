//! `core::fleet::IsolateState` on a virtual clock: several isolates sharing one in-memory KV
//! store, driven the way the Worker's shell drives them (`fleet_support::step`).

use crate::fleet_support::*;
use crate::memory_store::MemoryStore;
use cmo_edge_router::core::breaker::{BreakerAction, BreakerSnapshot, BreakerState};
use cmo_edge_router::core::fleet::{CallRecord, IsolateState};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use cmo_edge_router::core::store::StateStore;

fn lightrag_state(iso: &IsolateState, now: u64) -> BreakerState {
    iso.breaker(Upstream::Lightrag).unwrap().state(now)
}

fn fail_from(iso: &mut IsolateState, user: u64, now: u64) {
    iso.record_call(
        &CallRecord {
            upstream: Upstream::Lightrag,
            outcome: Outcome::new(OutcomeKind::HttpServerError(500), 80),
            key: KeyTag::from_raw(user),
        },
        now,
    );
}

/// An operator's action through `iso`, as the admin API performs it (the command written now).
fn admin(iso: &mut IsolateState, store: &MemoryStore, action: BreakerAction, now: u64) {
    let done = iso.breaker_action(Upstream::Lightrag, action, now).unwrap();
    block_on(store.put(&done.command.key, &done.command.value, None)).unwrap();
}

fn stored_snapshot(store: &MemoryStore) -> BreakerSnapshot {
    serde_json::from_str(&store.value("breaker/lightrag").unwrap()).unwrap()
}

#[test]
fn an_admin_reset_through_one_isolate_closes_an_isolate_with_a_higher_generation() {
    let store = MemoryStore::new();
    let (mut a, mut b) = (isolate("a", vars(&[]), T0), isolate("b", vars(&[]), T0));
    // t=0: both start and load KV (empty).
    step(&mut a, &store, T0);
    step(&mut b, &store, T0);
    // t=0..: an operator flaps A's breaker (open, reset, open): A's generation is 3, open; the
    // throttle lets the first write through and keeps the last one pending.
    for (n, action) in [
        BreakerAction::Open,
        BreakerAction::Reset,
        BreakerAction::Open,
    ]
    .into_iter()
    .enumerate()
    {
        admin(&mut a, &store, action, T0 + n as u64);
    }
    step(&mut a, &store, T0 + 10);
    assert_eq!(
        a.breaker(Upstream::Lightrag).unwrap().snapshot().generation,
        3
    );
    // t=1s: three of B's users fail; B trips on its own (generation 1).
    for user in 1..=3 {
        fail_from(&mut b, user, T0 + SEC);
    }
    assert_eq!(lightrag_state(&b, T0 + SEC), BreakerState::Open);
    // t=2s: another operator resets the breaker through B (generation 2 < A's 3).
    admin(&mut b, &store, BreakerAction::Reset, T0 + 2 * SEC);
    step(&mut b, &store, T0 + 2 * SEC);
    // t=31s: A writes its open state that was pending behind the throttle (it has not seen the
    // reset yet), then its refresh reads B's command and closes, whatever its generation.
    step(&mut a, &store, T0 + 31 * SEC);
    assert_eq!(lightrag_state(&a, T0 + 31 * SEC), BreakerState::Closed);
    let stale = stored_snapshot(&store);
    assert_eq!((stale.state, stale.generation), (BreakerState::Open, 3));
    // t=62s: B reads that stale open state (generation 3 > its 2): it predates the command, so
    // B stays closed.
    step(&mut b, &store, T0 + 62 * SEC);
    assert_eq!(lightrag_state(&b, T0 + 62 * SEC), BreakerState::Closed);
    // t=63s: LightRAG fails again for three users on A: that trip reaches B.
    for user in 10..=12 {
        fail_from(&mut a, user, T0 + 63 * SEC);
    }
    step(&mut a, &store, T0 + 63 * SEC);
    step(&mut b, &store, T0 + 93 * SEC);
    assert_eq!(lightrag_state(&b, T0 + 93 * SEC), BreakerState::Open);
}
