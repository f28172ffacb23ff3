//! Drivers for [`IsolateState`] in native tests: isolates sharing one in-memory KV store, each
//! step on a virtual clock. `step` does what the Worker's shell does after a request: makes the
//! writes the state hands out and, when a refresh is due, reads KV and hands the result back.

use crate::memory_store::MemoryStore;
use cmo_edge_router::core::fleet::{Background, IsolateInit, IsolateState};
use cmo_edge_router::core::guard::deployment::SetupFacts;
use cmo_edge_router::core::keytag::TagSecret;
use cmo_edge_router::core::store::{load_remote, StateStore};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

pub const T0: u64 = 1_800_000_000_000;
pub const SEC: u64 = 1_000;

/// The memory store's futures are always ready.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Vars for a router with LightRAG on for everybody, plus `extra`.
pub fn vars(extra: &[(&str, Value)]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("LIGHTRAG_INTEGRATION_ENABLED".into(), json!("true"));
    m.insert("LIGHTRAG_ROLLOUT_PERCENTAGE".into(), json!("100"));
    m.insert("LIGHTRAG_CIRCUIT_BREAKER_JITTER".into(), json!("0"));
    for (k, v) in extra {
        m.insert((*k).to_string(), v.clone());
    }
    m
}

pub fn isolate(id: &str, vars: Map<String, Value>, now: u64) -> IsolateState {
    IsolateState::new(IsolateInit {
        id: id.to_string(),
        vars,
        seed: 7,
        tag_secret: TagSecret::new([9; 16]),
        setup: SetupFacts {
            client_token: true,
            rate_limiter: true,
        },
        fleet_reports: false,
        now_ms: now,
    })
}

/// Performs `bg` against `store` for `iso`: writes, then the refresh if one is due.
pub fn perform(iso: &mut IsolateState, store: &MemoryStore, bg: Background, now: u64) {
    for w in &bg.writes {
        block_on(store.put(&w.key, &w.value, w.ttl_seconds)).unwrap();
    }
    if let Some(ticket) = bg.refresh {
        let remote = block_on(load_remote(store));
        iso.refresh_done(ticket, remote, now);
    }
}

/// What the Worker's shell does after each request.
pub fn step(iso: &mut IsolateState, store: &MemoryStore, now: u64) {
    let bg = iso.background(now);
    perform(iso, store, bg, now);
}
