//! The state store the Worker runs on: Workers KV or the state hub, as `STATE_BACKEND` selects
//! (`core::backend`; docs/architecture.md#state-backends).
//!
//! Why one type: every handler that touches shared state (the isolate's refresh and writes,
//! the admin API, the rollout API, the cron) opens a [`Store`] and talks to it through
//! [`StateStore`], so the backend is chosen in one place and both run the same core code. The
//! hub answers a refresh's reads in one request (`get_many`) and the controller's tick in one
//! request ([`Store::tick`]). Both count their operations in the same counters (`kv::ops`),
//! the hub also its requests.

use super::hub::HubClient;
use super::hub_storage::HubStorage;
use super::kv::{self, Kv};
use crate::core::backend::{choose, BackendChoice, BackendFacts, StateBackend, HUB_BINDING};
use crate::core::config::STATE_BACKEND;
use crate::core::controller::{controller_tick, ControllerInput, TickReport};
use crate::core::fleet::FleetReport;
use crate::core::hub::HubRequest;
use crate::core::store::{ListPage, StateStore, StoreError};
use std::cell::RefCell;
use worker::Env;

thread_local! {
    /// The choice, made once per isolate: the variable and the bindings are the same for the
    /// isolate's life, and a request opens the store more than once (as `kv::Kv::open` keeps
    /// its binding).
    static CHOICE: RefCell<Option<BackendChoice>> = const { RefCell::new(None) };
}

/// The backend this Worker runs on, and the warning when it is not the one asked for.
pub fn choice(env: &Env) -> BackendChoice {
    if let Some(c) = CHOICE.with(|c| c.borrow().clone()) {
        return c;
    }
    let requested = env.var(STATE_BACKEND).ok().map(|v| v.to_string());
    let hub_bound = env.durable_object(HUB_BINDING).is_ok();
    let c = choose(&BackendFacts {
        requested: requested.as_deref(),
        hub_bound,
    });
    CHOICE.with(|cell| *cell.borrow_mut() = Some(c.clone()));
    c
}

/// The shared state's store.
pub enum Store {
    /// Workers KV.
    Kv(Kv),
    /// The state hub, from a Worker: one request per call.
    Hub(HubClient),
    /// The state hub's own storage, inside the object (`super::hub::StateHub`). A variant here
    /// rather than a store of its own so that the core code generic over the store (the
    /// controller's tick above all) is compiled once for both sides.
    Local(HubStorage),
}

impl Store {
    /// The selected backend's store; `None` when KV is selected (or fallen back to) and its
    /// binding is missing.
    pub fn open(env: &Env) -> Option<Store> {
        if choice(env).selected == StateBackend::DurableObject {
            if let Some(h) = HubClient::open(env) {
                return Some(Store::Hub(h));
            }
        }
        Kv::open(env).map(Store::Kv)
    }

    /// Sends calls to the fleet's breaker (`core::breaker::fleet`) and returns the stored
    /// breaker record after them. Only the hub has a fleet breaker: on KV nothing is sent.
    pub async fn report(&self, report: FleetReport) -> Result<Option<String>, StoreError> {
        match self {
            Store::Hub(h) => {
                kv::count(|o| o.hub_requests += 1);
                let upstream = report.upstream;
                let req = HubRequest::Report {
                    upstream,
                    calls: report.calls,
                };
                h.request(&req).await.into_record(upstream)
            }
            Store::Kv(_) | Store::Local(_) => Ok(None),
        }
    }

    /// One controller tick: on KV this invocation runs it (`core::controller`); on the hub the
    /// object runs it next to its data (`core::hub`), in one request.
    pub async fn tick(&self, input: &ControllerInput<'_>) -> TickReport {
        match self {
            Store::Kv(_) | Store::Local(_) => controller_tick(self, input).await,
            Store::Hub(h) => {
                kv::count(|o| o.hub_requests += 1);
                h.request(&HubRequest::Tick).await.into_tick()
            }
        }
    }
}

impl StateStore for Store {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Kv(k) => k.get(key).await,
            Store::Local(l) => l.get(key).await,
            Store::Hub(_) => self
                .get_many(&[key.to_string()])
                .await
                .pop()
                .unwrap_or(Ok(None)),
        }
    }

    async fn get_many(&self, keys: &[String]) -> Vec<Result<Option<String>, StoreError>> {
        match self {
            Store::Kv(k) => k.get_many(keys).await,
            Store::Local(l) => l.get_many(keys).await,
            Store::Hub(h) => {
                kv::count(|o| {
                    o.hub_requests += 1;
                    o.reads += keys.len() as u64;
                });
                h.request(&HubRequest::Get {
                    keys: keys.to_vec(),
                })
                .await
                .into_values(keys)
            }
        }
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Kv(k) => k.put(key, value, ttl_seconds).await,
            Store::Local(l) => l.put(key, value, ttl_seconds).await,
            Store::Hub(h) => {
                // No one-write-a-second limit on the hub: counted, never held back.
                let now = super::isolate::now_ms();
                kv::count(|o| {
                    o.hub_requests += 1;
                    o.note_write(key, now);
                });
                h.request(&HubRequest::Put {
                    key: key.to_string(),
                    value: value.to_string(),
                    ttl_seconds,
                })
                .await
                .into_done(key)
            }
        }
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        match self {
            Store::Kv(k) => k.list(prefix, cursor, limit).await,
            Store::Local(l) => l.list(prefix, cursor, limit).await,
            Store::Hub(h) => {
                kv::count(|o| {
                    o.hub_requests += 1;
                    o.lists += 1;
                });
                h.request(&HubRequest::List {
                    prefix: prefix.to_string(),
                    cursor: cursor.map(str::to_string),
                    limit,
                })
                .await
                .into_page(prefix)
            }
        }
    }
}
