//! The state hub (`core::hub`) as the simulation runs it: a Durable Object whose storage is a
//! map, answering each request with the same [`serve`] the Worker's Durable Object runs, and
//! counting what Cloudflare bills (<https://developers.cloudflare.com/durable-objects/platform/pricing/>):
//! requests, wall-clock duration while active, and storage rows read and written (key-value
//! calls on a SQLite-backed object are billed as rows).
//!
//! Duration is modelled, not measured: each request keeps the object active for
//! [`ACTIVE_MS_PER_REQUEST`] plus [`ACTIVE_MS_PER_ROW`] per storage row it touches, and
//! overlapping requests share the time (the object is billed once while active).

use crate::fleet_support::block_on;
use cmo_edge_router::core::config::Config;
use cmo_edge_router::core::fleet::Rng;
use cmo_edge_router::core::hub::{serve, Hub, HubMemory, HubRequest, HubResponse, Stored};
use cmo_edge_router::core::store::{ListPage, StateStore, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// Wall-clock time one request keeps the object active (a generous figure for a request that
/// parses a small JSON body and touches a few rows).
pub const ACTIVE_MS_PER_REQUEST: f64 = 10.0;
/// Extra active time per storage row read or written.
pub const ACTIVE_MS_PER_ROW: f64 = 0.05;

/// Round trip from each location (`traffic::LOCATIONS`, in order) to the object, which lives
/// in the first (IAD): great-circle distances at roughly 100 km per ms of round trip, plus
/// 5 ms to answer. Assumptions: Cloudflare places an object near its first caller and routes
/// every request there.
pub const RTT_MS: [u64; 12] = [5, 25, 70, 80, 90, 85, 85, 160, 230, 200, 120, 190];

/// What the hub counted.
#[derive(Debug, Clone, Default)]
pub struct HubCounts {
    pub requests: u64,
    pub rows_read: u64,
    pub rows_written: u64,
    /// Billed wall-clock time (ms).
    pub active_ms: f64,
    /// Requests per simulated minute.
    pub per_minute: Vec<u64>,
}

/// The Durable Object.
#[derive(Debug)]
pub struct SimHub {
    start_ms: u64,
    /// The object's config (the Worker's variables): the controller's tick runs with it.
    config: Config,
    storage: RefCell<BTreeMap<String, Stored>>,
    counts: RefCell<HubCounts>,
    busy_until: Cell<f64>,
    /// The object's memory (the fleet's breakers) and its rolls.
    memory: HubMemory,
    rng: RefCell<Rng>,
}

impl SimHub {
    pub fn new(start_ms: u64, config: Config) -> SimHub {
        SimHub {
            start_ms,
            config,
            storage: RefCell::default(),
            counts: RefCell::default(),
            busy_until: Cell::new(0.0),
            memory: HubMemory::default(),
            rng: RefCell::new(Rng::new(start_ms ^ 0x0b1e_c7ed)),
        }
    }

    pub fn counts(&self) -> HubCounts {
        self.counts.borrow().clone()
    }

    /// One request to the object at `now_ms`, answered by `core::hub::serve`.
    pub fn request(&self, req: HubRequest, now_ms: u64) -> HubResponse {
        let (r0, w0) = {
            let c = self.counts.borrow();
            (c.rows_read, c.rows_written)
        };
        let hub = Hub {
            now_ms,
            roll: self.rng.borrow_mut().roll(),
            memory: &self.memory,
            config: &self.config,
        };
        let answer = block_on(serve(&HubStorage { hub: self, now_ms }, req, &hub));
        let mut c = self.counts.borrow_mut();
        c.requests += 1;
        let m = (now_ms.saturating_sub(self.start_ms) / 60_000) as usize;
        if c.per_minute.len() <= m {
            c.per_minute.resize(m + 1, 0);
        }
        c.per_minute[m] += 1;
        let rows = (c.rows_read - r0 + c.rows_written - w0) as f64;
        let start = now_ms as f64;
        let end = start + ACTIVE_MS_PER_REQUEST + rows * ACTIVE_MS_PER_ROW;
        let busy = self.busy_until.get();
        c.active_ms += (end - start.max(busy)).max(0.0);
        self.busy_until.set(busy.max(end));
        answer
    }

    /// A value as stored now, without counting (the report's view of the truth).
    pub fn peek(&self, key: &str, now_ms: u64) -> Option<String> {
        self.storage
            .borrow()
            .get(key)
            .filter(|s| s.live(now_ms))
            .map(|s| s.value.clone())
    }

    /// The Worker's handle on the object at `now_ms` (one request per call).
    pub fn client(&self, now_ms: u64) -> HubClient<'_> {
        HubClient { hub: self, now_ms }
    }
}

/// The object's own storage, as `serve` sees it: counts rows, honours expiry.
struct HubStorage<'a> {
    hub: &'a SimHub,
    now_ms: u64,
}

impl StateStore for HubStorage<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.hub.counts.borrow_mut().rows_read += 1;
        let mut st = self.hub.storage.borrow_mut();
        match st.get(key) {
            Some(s) if s.live(self.now_ms) => Ok(Some(s.value.clone())),
            Some(_) => {
                st.remove(key);
                self.hub.counts.borrow_mut().rows_written += 1;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        self.hub.counts.borrow_mut().rows_written += 1;
        self.hub.storage.borrow_mut().insert(
            key.to_string(),
            Stored::new(value, ttl_seconds, self.now_ms),
        );
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.max(1) as usize;
        let mut st = self.hub.storage.borrow_mut();
        let expired: Vec<String> = st
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, s)| !s.live(self.now_ms))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            st.remove(k);
        }
        let start = cursor.map_or(prefix.to_string(), str::to_string);
        let mut keys = Vec::new();
        let mut complete = true;
        for (k, _) in st.range(start..) {
            if !k.starts_with(prefix) {
                break;
            }
            if cursor.is_some_and(|c| k.as_str() <= c) {
                continue;
            }
            if keys.len() == limit {
                complete = false;
                break;
            }
            keys.push(k.clone());
        }
        let mut c = self.hub.counts.borrow_mut();
        c.rows_read += keys.len().max(1) as u64;
        c.rows_written += expired.len() as u64;
        let cursor = if complete { None } else { keys.last().cloned() };
        Ok(ListPage {
            keys,
            cursor,
            complete,
        })
    }
}

/// What the Worker's `edge::hub::HubClient` does, against the simulated object: every call is
/// one request; a refresh's reads and a controller tick are one request each.
pub struct HubClient<'a> {
    hub: &'a SimHub,
    now_ms: u64,
}

impl HubClient<'_> {
    /// One request to the object.
    pub fn request(&self, req: HubRequest) -> HubResponse {
        self.hub.request(req, self.now_ms)
    }
}

impl StateStore for HubClient<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let keys = vec![key.to_string()];
        let r = self
            .hub
            .request(HubRequest::Get { keys: keys.clone() }, self.now_ms);
        r.into_values(&keys).pop().unwrap_or(Ok(None))
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        let req = HubRequest::Put {
            key: key.to_string(),
            value: value.to_string(),
            ttl_seconds,
        };
        self.hub.request(req, self.now_ms).into_done(key)
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let req = HubRequest::List {
            prefix: prefix.to_string(),
            cursor: cursor.map(str::to_string),
            limit,
        };
        self.hub.request(req, self.now_ms).into_page(prefix)
    }

    async fn get_many(&self, keys: &[String]) -> Vec<Result<Option<String>, StoreError>> {
        let req = HubRequest::Get {
            keys: keys.to_vec(),
        };
        self.hub.request(req, self.now_ms).into_values(keys)
    }
}
