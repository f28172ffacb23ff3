//! Workers KV as the fleet meets it: eventually consistent between locations, one write per
//! second per key, expiring keys, 1,000 operations per invocation, every operation counted.
//!
//! Why a model and not the in-memory map of the other tests: the design questions of issue 14
//! (does a breaker trip reach every isolate in time, does the controller's aggregate add up,
//! does any invocation break a limit, what does it cost) are answered by exactly these
//! properties. The model follows Cloudflare's documentation
//! (<https://developers.cloudflare.com/kv/platform/limits>,
//! <https://developers.cloudflare.com/kv/concepts/how-kv-works/>):
//!
//! - **Propagation.** A write is visible at once in the location that made it and after a
//!   delay of up to [`MAX_PROPAGATION_MS`] (KV's cache TTL) elsewhere. The delay is drawn per
//!   write and per reading location from the seed, so two locations see one write at different
//!   times, and a location never sees an older value after a newer one.
//! - **One write per second per key**, fleet-wide: a second write within [`WRITE_GAP_MS`] of
//!   the last accepted one is refused with an error (KV answers 429), and counted.
//! - **Expiry**: a key written with a TTL disappears `ttl` seconds later, everywhere.
//! - **1,000 operations per invocation**: [`KvView`] is one invocation's handle; operation 1,001
//!   and later fail and are counted.
//! - Reads, writes and lists are counted, in total and per simulated minute.

use cmo_edge_router::core::store::{ListPage, StateStore, StoreError, StoreOp};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// The longest a write takes to reach another location (KV's default cache TTL, 60 s).
pub const MAX_PROPAGATION_MS: u64 = 60_000;
/// KV refuses a second write to a key within this gap.
pub const WRITE_GAP_MS: u64 = 1_000;
/// A refresh's six reads from the isolate's own location (KV serves them from the location's
/// cache: a few milliseconds each). An assumption: a read that misses the cache goes to a
/// central store and takes longer.
pub const REFRESH_LATENCY_MS: u64 = 20;
/// Operations one Worker invocation may make.
pub const MAX_OPS_PER_INVOCATION: u32 = 1_000;

#[derive(Debug, Clone)]
struct Version {
    value: String,
    written_ms: u64,
    location: usize,
    expires_ms: Option<u64>,
    /// Seed of this version's per-location delays.
    salt: u64,
}

/// What the store counted.
#[derive(Debug, Clone, Default)]
pub struct KvCounts {
    pub reads: u64,
    pub writes: u64,
    pub lists: u64,
    /// Writes refused because the key was written less than a second before.
    pub rejected_writes: u64,
    /// The keys of the refused writes, with how many each.
    pub rejected_keys: BTreeMap<String, u64>,
    /// Operations refused because their invocation had made 1,000 already.
    pub over_limit_ops: u64,
    /// The most operations one invocation attempted.
    pub max_ops_in_invocation: u32,
    /// Per simulated minute: reads, writes, lists.
    pub per_minute: Vec<[u64; 3]>,
}

impl KvCounts {
    fn minute(&mut self, start_ms: u64, now_ms: u64) -> &mut [u64; 3] {
        let m = (now_ms.saturating_sub(start_ms) / 60_000) as usize;
        if self.per_minute.len() <= m {
            self.per_minute.resize(m + 1, [0; 3]);
        }
        &mut self.per_minute[m]
    }
}

/// The simulated KV namespace.
#[derive(Debug)]
pub struct SimKv {
    start_ms: u64,
    seed: u64,
    keys: RefCell<BTreeMap<String, Vec<Version>>>,
    last_write: RefCell<BTreeMap<String, u64>>,
    counts: RefCell<KvCounts>,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SimKv {
    pub fn new(start_ms: u64, seed: u64) -> SimKv {
        SimKv {
            start_ms,
            seed,
            keys: RefCell::default(),
            last_write: RefCell::default(),
            counts: RefCell::default(),
        }
    }

    /// One invocation at `location`, at `now_ms`.
    pub fn view(&self, location: usize, now_ms: u64) -> KvView<'_> {
        KvView {
            kv: self,
            location,
            now_ms,
            ops: Cell::new(0),
        }
    }

    pub fn counts(&self) -> KvCounts {
        self.counts.borrow().clone()
    }

    fn delay(v: &Version, location: usize) -> u64 {
        if v.location == location {
            0
        } else {
            mix(v.salt ^ (location as u64).wrapping_mul(0x1000_0000_01b3))
                % (MAX_PROPAGATION_MS + 1)
        }
    }

    /// The value `location` sees at `now_ms`: the newest version that has reached it, unless
    /// expired.
    fn visible(versions: &[Version], location: usize, now_ms: u64) -> Option<&str> {
        let v = versions
            .iter()
            .rev()
            .find(|v| v.written_ms.saturating_add(SimKv::delay(v, location)) <= now_ms)?;
        match v.expires_ms {
            Some(e) if e <= now_ms => None,
            _ => Some(&v.value),
        }
    }

    /// What a reader with no propagation delay would see (the controller with perfect data).
    pub fn latest(&self, key: &str, now_ms: u64) -> Option<String> {
        let keys = self.keys.borrow();
        let v = keys.get(key)?.last()?;
        match v.expires_ms {
            Some(e) if e <= now_ms => None,
            _ => Some(v.value.clone()),
        }
    }
}

/// One invocation's handle on the namespace, at one location.
pub struct KvView<'a> {
    kv: &'a SimKv,
    location: usize,
    now_ms: u64,
    ops: Cell<u32>,
}

impl KvView<'_> {
    /// Counts one operation of this invocation; refuses it past the limit.
    fn op(&self, op: StoreOp, key: &str) -> Result<(), StoreError> {
        let n = self.ops.get() + 1;
        self.ops.set(n);
        let mut c = self.kv.counts.borrow_mut();
        c.max_ops_in_invocation = c.max_ops_in_invocation.max(n);
        if n > MAX_OPS_PER_INVOCATION {
            c.over_limit_ops += 1;
            return Err(StoreError::failed(
                op,
                key,
                "Too many API requests by single worker invocation",
            ));
        }
        let m = c.minute(self.kv.start_ms, self.now_ms);
        match op {
            StoreOp::Read => m[0] += 1,
            StoreOp::Write => m[1] += 1,
            StoreOp::List => m[2] += 1,
        }
        match op {
            StoreOp::Read => c.reads += 1,
            StoreOp::Write => c.writes += 1,
            StoreOp::List => c.lists += 1,
        }
        Ok(())
    }

    pub fn ops(&self) -> u32 {
        self.ops.get()
    }
}

impl StateStore for KvView<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.op(StoreOp::Read, key)?;
        let keys = self.kv.keys.borrow();
        Ok(keys
            .get(key)
            .and_then(|vs| SimKv::visible(vs, self.location, self.now_ms))
            .map(str::to_string))
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        self.op(StoreOp::Write, key)?;
        let now = self.now_ms;
        {
            let mut last = self.kv.last_write.borrow_mut();
            if let Some(&t) = last.get(key) {
                if now < t.saturating_add(WRITE_GAP_MS) {
                    let mut c = self.kv.counts.borrow_mut();
                    c.rejected_writes += 1;
                    *c.rejected_keys.entry(key.to_string()).or_default() += 1;
                    return Err(StoreError::failed(
                        StoreOp::Write,
                        key,
                        "429 Too Many Requests: one write per second per key",
                    ));
                }
            }
            last.insert(key.to_string(), now);
        }
        let mut keys = self.kv.keys.borrow_mut();
        let versions = keys.entry(key.to_string()).or_default();
        let salt = mix(self.kv.seed ^ mix(now ^ mix(versions.len() as u64 ^ key.len() as u64)));
        versions.push(Version {
            value: value.to_string(),
            written_ms: now,
            location: self.location,
            expires_ms: ttl_seconds.map(|s| now.saturating_add(s.saturating_mul(1000))),
            salt,
        });
        // Versions older than one every location already sees newer are unreachable.
        let settled = versions
            .iter()
            .rposition(|v| v.written_ms.saturating_add(MAX_PROPAGATION_MS) <= now);
        if let Some(i) = settled {
            versions.drain(..i);
        }
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.op(StoreOp::List, prefix)?;
        let limit = limit.clamp(1, 1000) as usize;
        let keys = self.kv.keys.borrow();
        let mut out = Vec::new();
        let mut complete = true;
        let start = cursor.map_or(prefix.to_string(), str::to_string);
        for (k, vs) in keys.range(start..) {
            if !k.starts_with(prefix) {
                break;
            }
            if cursor.is_some_and(|c| k.as_str() <= c) {
                continue;
            }
            if SimKv::visible(vs, self.location, self.now_ms).is_none() {
                continue;
            }
            if out.len() == limit {
                complete = false;
                break;
            }
            out.push(k.clone());
        }
        let cursor = if complete { None } else { out.last().cloned() };
        Ok(ListPage {
            keys: out,
            cursor,
            complete,
        })
    }
}

#[cfg(test)]
mod model {
    //! The simulated KV keeps the limits it models.
    use super::*;
    use crate::fleet_support::block_on;

    const T: u64 = 1_000_000;

    #[test]
    fn one_write_per_second_per_key_fleet_wide() {
        let kv = SimKv::new(T, 1);
        assert!(block_on(kv.view(0, T).put("k", "1", None)).is_ok());
        assert!(block_on(kv.view(3, T + 999).put("k", "2", None)).is_err());
        assert!(block_on(kv.view(3, T + 999).put("other", "2", None)).is_ok());
        assert!(block_on(kv.view(3, T + 1_000).put("k", "3", None)).is_ok());
        assert_eq!(kv.counts().rejected_writes, 1);
        assert_eq!(kv.counts().rejected_keys.get("k"), Some(&1));
    }

    #[test]
    fn writes_reach_other_locations_within_the_propagation_delay() {
        let kv = SimKv::new(T, 2);
        block_on(kv.view(0, T).put("k", "v", None)).unwrap();
        assert_eq!(
            block_on(kv.view(0, T).get("k")).unwrap().as_deref(),
            Some("v")
        );
        let late = (1..12)
            .filter(|&loc| block_on(kv.view(loc, T + 1).get("k")).unwrap().is_none())
            .count();
        assert!(late > 0, "some location sees the write late");
        for loc in 0..12 {
            let seen = block_on(kv.view(loc, T + MAX_PROPAGATION_MS).get("k")).unwrap();
            assert_eq!(seen.as_deref(), Some("v"), "location {loc}");
        }
    }

    #[test]
    fn keys_expire_and_an_invocation_stops_at_1000_operations() {
        let kv = SimKv::new(T, 3);
        block_on(kv.view(0, T).put("k", "v", Some(60))).unwrap();
        assert!(block_on(kv.view(0, T + 59_999).get("k")).unwrap().is_some());
        assert!(block_on(kv.view(0, T + 60_000).get("k")).unwrap().is_none());
        let view = kv.view(0, T);
        for _ in 0..MAX_OPS_PER_INVOCATION {
            block_on(view.get("k")).unwrap();
        }
        assert!(block_on(view.get("k")).is_err());
        assert_eq!(kv.counts().over_limit_ops, 1);
    }
}
