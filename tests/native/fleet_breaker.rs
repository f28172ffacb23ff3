//! The state hub's fleet breaker end to end (`core::breaker::fleet`): isolates report the
//! LightRAG calls they recorded (`IsolateState::fleet_report`), the hub (`core::hub::serve`,
//! op `report`) runs them through one breaker and stores its trip, and the isolates adopt it —
//! the reporting one from the hub's answer, the others at their next refresh.

use crate::fleet_support::{block_on, vars, SEC, T0};
use crate::memory_store::MemoryStore;
use cmo_edge_router::core::breaker::BreakerState;
use cmo_edge_router::core::config::{self, Config};
use cmo_edge_router::core::fleet::{CallRecord, IsolateInit, IsolateState};
use cmo_edge_router::core::guard::deployment::SetupFacts;
use cmo_edge_router::core::hub::{serve, Hub, HubMemory, HubRequest};
use cmo_edge_router::core::keytag::TagSecret;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use cmo_edge_router::core::store::{breaker_key, load_remote};
use serde_json::{json, Map, Value};

fn fleet_vars() -> Map<String, Value> {
    vars(&[
        ("LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD", json!("3")),
        ("LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS", json!("3")),
        ("LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT", json!("600")),
    ])
}

fn isolate(id: &str, fleet_reports: bool) -> IsolateState {
    IsolateState::new(IsolateInit {
        id: id.to_string(),
        vars: fleet_vars(),
        seed: 7,
        tag_secret: TagSecret::derive("the deployment's admin token"),
        setup: SetupFacts {
            client_token: true,
            rate_limiter: true,
        },
        fleet_reports,
        now_ms: T0,
    })
}

/// One LightRAG call from `user` at `now`, recorded in `iso`.
fn call(iso: &mut IsolateState, user: &str, failed: bool, now: u64) {
    let kind = if failed {
        OutcomeKind::HttpServerError(503)
    } else {
        OutcomeKind::Success
    };
    let call = CallRecord {
        upstream: Upstream::Lightrag,
        outcome: Outcome::new(kind, 20),
        key: iso.tag(user),
    };
    iso.record_call(&call, now);
}

struct TheHub {
    store: MemoryStore,
    memory: HubMemory,
    config: Config,
}

impl TheHub {
    fn new() -> TheHub {
        TheHub {
            store: MemoryStore::new(),
            memory: HubMemory::default(),
            config: config::load(&fleet_vars(), None, 0).config,
        }
    }

    /// What `edge::isolate::background` does after a response: the report, the answer adopted.
    /// Returns whether the isolate adopted a record.
    fn report(&self, iso: &mut IsolateState, now: u64) -> bool {
        let Some(r) = iso.fleet_report() else {
            return false;
        };
        let hub = Hub {
            now_ms: now,
            roll: 0.5,
            memory: &self.memory,
            config: &self.config,
        };
        let req = HubRequest::Report {
            upstream: r.upstream,
            calls: r.calls,
        };
        let answer = block_on(serve(&self.store, req, &hub));
        let record = answer.into_record(Upstream::Lightrag).unwrap();
        iso.fleet_reported(Upstream::Lightrag, record.as_deref(), now)
    }
}

fn state(iso: &IsolateState, now: u64) -> BreakerState {
    iso.breaker(Upstream::Lightrag).unwrap().state(now)
}

#[test]
fn failures_spread_over_isolates_trip_the_fleet_and_every_isolate_adopts_it() {
    let hub = TheHub::new();
    let (mut a, mut b, mut c) = (isolate("a", true), isolate("b", true), isolate("c", true));
    let now = T0 + 4 * SEC;
    call(&mut a, "u1", true, T0 + SEC);
    call(&mut b, "u2", true, T0 + 2 * SEC);
    call(&mut a, "u3", true, T0 + 3 * SEC);
    // b reports its failure, then a its two (one report): three in a row, from three users.
    assert!(
        !hub.report(&mut b, now),
        "one failure: nothing to adopt yet"
    );
    assert!(hub.store.value(&breaker_key(Upstream::Lightrag)).is_none());
    assert!(hub.report(&mut a, now), "the third failure trips the fleet");
    assert_eq!(state(&a, now), BreakerState::Open);
    // Neither saw three failures itself.
    let a_status = a.breaker(Upstream::Lightrag).unwrap().status(now);
    assert_eq!(a_status.consecutive_failures, 2);
    assert_eq!(state(&b, now), BreakerState::Closed);
    // The record is stored: b and c (which made no call) adopt it at their refresh.
    let stored = hub.store.value(&breaker_key(Upstream::Lightrag)).unwrap();
    assert!(stored.contains("\"open\""), "{stored}");
    for iso in [&mut b, &mut c] {
        let ticket = iso.start_refresh(now);
        let remote = block_on(load_remote(&hub.store));
        assert!(iso.refresh_done(ticket, remote, now));
        assert_eq!(state(iso, now), BreakerState::Open);
    }
}

#[test]
fn one_isolates_share_alone_does_not_trip_it_and_successes_in_between_count() {
    let hub = TheHub::new();
    let (mut a, mut b) = (isolate("a", true), isolate("b", true));
    let now = T0 + SEC;
    // Each isolate reports right after its call, as the Worker does after each response.
    call(&mut a, "u1", true, now);
    assert!(!hub.report(&mut a, now));
    call(&mut b, "u2", true, now + 1);
    assert!(!hub.report(&mut b, now + 1));
    // A success elsewhere breaks the run: u1, u2, success, u3 is not three in a row.
    call(&mut b, "u9", false, now + 2);
    assert!(!hub.report(&mut b, now + 2));
    call(&mut a, "u3", true, now + 3);
    assert!(!hub.report(&mut a, now + 3));
    assert!(hub.store.value(&breaker_key(Upstream::Lightrag)).is_none());
    // The same user failing through both isolates counts once toward the distinct keys.
    for i in 0..4u64 {
        call(&mut a, "u1", true, now + 10 + i);
        call(&mut b, "u1", true, now + 10 + i);
    }
    assert!(!hub.report(&mut a, now + 20));
    assert!(!hub.report(&mut b, now + 20));
    assert_eq!(state(&a, now + 20), BreakerState::Closed);
}

#[test]
fn isolates_on_kv_report_nothing_and_an_open_breaker_reports_nothing() {
    let mut kv = isolate("kv", false);
    call(&mut kv, "u1", true, T0);
    assert!(kv.fleet_report().is_none());
    let mut a = isolate("a", true);
    let _ = a.breaker_action(
        Upstream::Lightrag,
        cmo_edge_router::core::breaker::BreakerAction::Open,
        T0,
    );
    call(&mut a, "u1", true, T0 + 1);
    assert!(
        a.fleet_report().is_none(),
        "calls while open are not the fleet's"
    );
    // One report in flight at a time; what comes meanwhile goes in the next.
    let mut b = isolate("b", true);
    call(&mut b, "u1", false, T0);
    let first = b.fleet_report().unwrap();
    assert_eq!(first.calls.len(), 1);
    call(&mut b, "u2", false, T0 + 1);
    assert!(b.fleet_report().is_none());
    b.fleet_reported(Upstream::Lightrag, None, T0 + 2);
    assert_eq!(b.fleet_report().unwrap().calls.len(), 1);
}
