//! A request that finds its isolate's state older than the refresh interval refreshes before it
//! is routed (`IsolateState::before_routing`). The defect it fixes (issue 14's fleet
//! simulation): the refresh ran only after a request, so an isolate idle for ten minutes routed
//! its next request on ten-minute-old state — to a LightRAG every other isolate had stopped
//! using.

use crate::fleet_support::*;
use crate::memory_store::MemoryStore;
use cmo_edge_router::core::breaker::BreakerAction;
use cmo_edge_router::core::decide::RouteRequest;
use cmo_edge_router::core::fleet::IsolateState;
use cmo_edge_router::core::model::{Reason, Upstream};
use cmo_edge_router::core::store::{load_remote, StateStore};
use serde_json::json;

const MIN: u64 = 60 * SEC;

fn ask(key: &str) -> RouteRequest<'_> {
    RouteRequest::new(Some(key), "What is glutathione?")
}

/// An isolate whose first load is in, at `T0`.
fn loaded(id: &str, pct: &str, store: &MemoryStore) -> IsolateState {
    let mut iso = isolate(id, vars(&[("LIGHTRAG_ROLLOUT_PERCENTAGE", json!(pct))]), T0);
    let t = iso.start_refresh(T0);
    iso.refresh_done(t, block_on(load_remote(store)), T0);
    iso
}

#[test]
fn an_idle_isolate_refreshes_before_routing_to_a_lightrag_the_fleet_has_given_up_on() {
    let store = MemoryStore::new();
    let mut idle = loaded("idle", "100", &store);
    // Fresh state: nothing to do before routing.
    let fresh = idle.before_routing(&ask("u1"), T0 + 10 * SEC);
    assert_eq!((fresh.start, fresh.wait_for), (None, None));

    // Ten minutes later an operator opens LightRAG's breaker through another isolate.
    let mut other = loaded("other", "100", &store);
    let at = T0 + 10 * MIN;
    let done = other
        .breaker_action(Upstream::Lightrag, BreakerAction::Open, at)
        .unwrap();
    block_on(store.put(&done.command.key, &done.command.value, None)).unwrap();
    step(&mut other, &store, at);

    // The idle isolate's next request: its state is ten minutes old and would send it to
    // LightRAG, so it starts a refresh and waits for it.
    let now = at + SEC;
    let b = idle.before_routing(&ask("u1"), now);
    let ticket = b.start.expect("a refresh to start");
    assert_eq!(b.wait_for, Some(ticket));
    // A second request meanwhile joins the refresh in flight instead of starting another.
    let joined = idle.before_routing(&ask("u2"), now + 5);
    assert_eq!((joined.start, joined.wait_for), (None, Some(ticket)));
    assert!(!idle.refresh_applied(ticket));

    idle.refresh_done(ticket, block_on(load_remote(&store)), now + 20);
    assert!(idle.refresh_applied(ticket));
    let (d, _) = idle.decide(&ask("u1"), now + 20);
    assert_eq!(
        (d.upstream, d.reason),
        (Upstream::Perplexity, Reason::CircuitOpen)
    );
}

#[test]
fn a_request_the_old_state_sends_to_perplexity_starts_the_refresh_without_waiting() {
    let store = MemoryStore::new();
    let mut idle = loaded("idle", "0", &store);
    let b = idle.before_routing(&ask("u1"), T0 + 10 * MIN);
    assert!(b.start.is_some(), "the refresh still runs");
    assert_eq!(
        b.wait_for, None,
        "no safety step can make Perplexity the wrong choice"
    );
}

#[test]
fn a_request_that_gave_up_waiting_is_counted() {
    let store = MemoryStore::new();
    let mut idle = loaded("idle", "100", &store);
    let now = T0 + 10 * MIN;
    assert!(idle.before_routing(&ask("u1"), now).wait_for.is_some());
    idle.note_stale_route(now);
    assert_eq!(idle.kv_health().stale_routes, 1);
}
