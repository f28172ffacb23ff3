//! Router state in Workers KV (docs/architecture.md#workers-kv-budget): the key layout, the documents stored under each key,
//! the per-key write throttle and the background refresh. The cron controller that reads the
//! metric flushes and drives the rollout is `core::controller`.
//!
//! Why here and not in `edge`: every rule of the KV budget (what is read when, what may be
//! written how often, what a corrupt value does, how the controller stays under 1,000
//! operations) is logic worth testing, and none of it needs a runtime. The store itself is a
//! small trait, [`StateStore`], implemented by the Worker over a KV namespace and, in the tests,
//! by an in-memory map that counts operations (`tests/support/memory_store.rs`), and by the
//! state hub (`core::hub`), a Durable Object holding the same keys (`STATE_BACKEND`).
//!
//! Key layout (all values JSON):
//! - `config/overrides` → [`OverridesDoc`] `{version, overrides, updated_ms}` — admin overrides,
//!   versioned; the version is the admin API's ETag.
//! - `breaker/lightrag`, `breaker/perplexity` → a breaker snapshot, written on transitions only,
//!   at most once a second per key ([`WriteThrottle`]).
//! - `breaker/<upstream>/admin` → the operator's last [`AdminCommand`] on that breaker (reset or
//!   force-open), which dominates every generation (see `core::breaker::replica`).
//! - `metrics/<isolate id>` → [`MetricsFlush`] — one isolate's windows (and its windows of the
//!   rollout stage it routes at), written at most every `METRICS_FLUSH_SECONDS`, with an expiry
//!   so dead isolates disappear on their own.
//! - `rollout/state` → the rollout machine's document (`core::rollout::state`), written by the
//!   cron controller only.
//! - `rollout/commands/<issued_at>-<id>` → one queued operator command (`core::rollout::command`),
//!   written by the admin API with a one-hour expiry, applied by the controller.
//! - `rollout/routing` → [`RoutingDoc`], the small document isolates route by (controller, and
//!   the admin API's projection of a queued command).
//! - `controller/state` → the controller's bookkeeping (`core::controller::doc`): paged pass,
//!   last-hour aggregate, quality gate, fleet totals, the stage's evidence ledger.
//!
//! A value that fails to parse is ignored: the loader returns a warning naming the key (for the
//! log and the status API) and the router keeps running on what it had.

use crate::core::breaker::{AdminCommand, BreakerSnapshot};
use crate::core::controller::{RoutingDoc, SplitTag, ROUTING_KEY};
use crate::core::model::Upstream;
use crate::core::sorted_map::SortedMap;
use crate::core::window::{MetricKey, Stats, Window};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::future::Future;

pub const CONFIG_KEY: &str = "config/overrides";
pub const METRICS_PREFIX: &str = "metrics/";
pub const ROLLOUT_KEY: &str = "rollout/state";
/// Workers KV allows one write per second per key.
pub const MIN_WRITE_INTERVAL_MS: u64 = 1_000;
/// The interval the isolates' write throttle keeps per key: KV's second plus a margin for the
/// time a write takes to reach KV. The throttle hands a write out only when it is to be made
/// ([`WriteThrottle::hold`] then [`WriteThrottle::due`]), so the interval is between the writes
/// themselves, not between the transitions that asked for them (which the soak showed reaching
/// KV 890 ms apart when a transition waited for the next background run).
pub const THROTTLE_INTERVAL_MS: u64 = MIN_WRITE_INTERVAL_MS + 100;
/// One cron invocation may make at most 1,000 KV operations; keep a margin.
pub const CONTROLLER_MAX_OPS: u32 = 950;
/// KV's smallest accepted expiration TTL.
pub const MIN_TTL_SECONDS: u64 = 60;

/// `breaker/<upstream>`.
pub fn breaker_key(u: Upstream) -> String {
    format!("breaker/{}", u.as_str())
}

/// The upstream whose `breaker/<upstream>` record `key` is, if it is one.
pub fn breaker_upstream(key: &str) -> Option<Upstream> {
    Upstream::ALL.into_iter().find(|u| breaker_key(*u) == key)
}

/// `breaker/<upstream>/admin`: the last operator command on that breaker (written by the admin
/// API only, so no automatic transition can overwrite it before the fleet has read it).
pub fn breaker_admin_key(u: Upstream) -> String {
    format!("breaker/{}/admin", u.as_str())
}

/// `metrics/<isolate>`.
pub fn metrics_key(isolate: &str) -> String {
    format!("{METRICS_PREFIX}{isolate}")
}

/// The expiry of a metrics flush: three flush periods, so a live isolate's key never lapses
/// between two flushes and a dead one's disappears soon after — but at least two minutes longer
/// than the controller waits before it commits a minute (`core::controller::ledger`), so a dead
/// isolate's last minutes are counted before its key goes (never below KV's 60 s minimum).
pub fn metrics_ttl_seconds(flush_seconds: u64) -> u64 {
    let settle_s = crate::core::controller::settle_ms(flush_seconds) / 1000;
    flush_seconds
        .saturating_mul(3)
        .max(settle_s.saturating_add(120))
        .max(MIN_TTL_SECONDS)
}

/// One page of a `list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    pub cursor: Option<String>,
    pub complete: bool,
}

/// Which KV operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Read,
    Write,
    List,
}

/// What went wrong with KV. Callers log it and carry on (never a crash); its text is what the
/// status API lists under `kv.warnings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The operation itself failed (binding, network, limits): the backend's message. `key` is
    /// the prefix for a list.
    Failed {
        op: StoreOp,
        key: String,
        message: String,
    },
    /// A stored value did not parse and was ignored.
    Corrupt { key: String, message: String },
}

impl StoreError {
    pub fn failed(op: StoreOp, key: &str, message: impl fmt::Display) -> StoreError {
        StoreError::Failed {
            op,
            key: key.to_string(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Failed { op, key, message } => {
                let op = match op {
                    StoreOp::Read => "read",
                    StoreOp::Write => "write",
                    StoreOp::List => "list",
                };
                write!(f, "KV {op} of `{key}` failed: {message}")
            }
            StoreError::Corrupt { key, message } => {
                write!(f, "KV value `{key}` is corrupt and was ignored: {message}")
            }
        }
    }
}

/// The few KV operations the router uses. (No `Send` bounds: Workers futures are
/// single-threaded.)
pub trait StateStore {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>>;
    fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>>;
    fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<ListPage, StoreError>>;

    /// Reads `keys`, one result per key in their order. Default: one [`StateStore::get`] each,
    /// in turn; Workers KV (`edge::kv`) starts them all at once, and a backend whose every call
    /// is a round trip (the Durable Object, `core::hub`) answers them in one request.
    fn get_many(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Vec<Result<Option<String>, StoreError>>> {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(self.get(k).await);
            }
            out
        }
    }
}

/// Operation counters, kept by every store implementation the router uses (the Worker's KV
/// wrapper counts too, and reports them in the status API and `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    pub reads: u64,
    pub writes: u64,
    pub lists: u64,
    /// Requests to the state hub (`STATE_BACKEND=durable_object`; `core::hub`): one per
    /// read, write or list, and one for all the reads of a refresh. Reads, writes and lists
    /// above count the keys the requests read, wrote or listed, as with KV.
    #[serde(default)]
    pub hub_requests: u64,
    /// Writes per key, to check the one-write-per-second rule.
    pub writes_by_key: SortedMap<String, u64>,
    /// The shortest time observed between two writes of the same key by this isolate (ms),
    /// per key written at least twice: a soak test asserts "≤ 1 write/s per key" as every
    /// value ≥ 1000. (Only this isolate's writes: KV's limit is per key across the fleet, which
    /// the design meets by giving each isolate its own metrics key and writing breaker keys on
    /// transitions only.)
    #[serde(default)]
    pub min_write_gap_ms: SortedMap<String, u64>,
    #[serde(skip)]
    last_write_ms: SortedMap<String, u64>,
}

impl OpCounts {
    pub fn total(&self) -> u64 {
        self.reads + self.writes + self.lists
    }

    /// Books the next write of `key`, asked for at `now_ms`: returns how long the writer must
    /// wait so that it starts at least [`MIN_WRITE_INTERVAL_MS`] after the key's previous write
    /// (booked writes included, so two writers racing for one key queue up), and counts it at
    /// the time it will start. The write throttle decides when a write is due, but the write
    /// runs later (after the ones queued before it in the same background task), so two writes
    /// due 1,100 ms apart reached KV 992 ms apart under load; this is the check at the door.
    pub fn book_write(&mut self, key: &str, now_ms: u64) -> u64 {
        let start = self.last_write_ms.get(key).map_or(now_ms, |last| {
            now_ms.max(last.saturating_add(MIN_WRITE_INTERVAL_MS))
        });
        self.note_write(key, start);
        start - now_ms
    }

    /// Counts one write of `key` at `now_ms`.
    pub fn note_write(&mut self, key: &str, now_ms: u64) {
        self.writes += 1;
        *self.writes_by_key.entry(key.to_string()).or_default() += 1;
        if let Some(last) = self.last_write_ms.insert(key.to_string(), now_ms) {
            let gap = now_ms.saturating_sub(last);
            let min = self.min_write_gap_ms.entry(key.to_string()).or_insert(gap);
            *min = (*min).min(gap);
        }
    }
}

/// `config/overrides`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OverridesDoc {
    pub version: u64,
    #[serde(default)]
    pub overrides: Map<String, Value>,
    #[serde(default)]
    pub updated_ms: u64,
}

/// `metrics/<isolate>`: one isolate's windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsFlush {
    pub isolate: String,
    pub flushed_ms: u64,
    #[serde(default)]
    pub windows: SortedMap<MetricKey, Window>,
    /// The experiment's traffic routed at the rollout stage `tag` (treatment and control arms
    /// only), recorded since this isolate adopted that stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitFlush>,
    /// The same requests by why they were routed where they were (`Reason::as_str`: rule names
    /// are folded into `rule`, so the label's values stay a fixed set); the fleet's
    /// `cmo_router_decisions_total`.
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub reasons: SortedMap<String, Window>,
    /// Shadow calls' window (docs/answer-aware.md#shadow-comparison): LightRAG's answers to
    /// questions Perplexity served, a series of its own, never an arm's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Window>,
}

/// The windows of the traffic an isolate routed at one rollout stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitFlush {
    pub tag: SplitTag,
    #[serde(default)]
    pub windows: SortedMap<MetricKey, Window>,
}

/// One KV value as a refresh found it. A failed read or a corrupt value is not the same as a
/// missing key: the reader keeps what it had instead of falling back to defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Fetched<T> {
    /// The key does not exist.
    #[default]
    Absent,
    Found(T),
    /// The read failed or the value did not parse (a warning names the key).
    Unreadable,
}

/// What a refresh read from KV.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteState {
    pub overrides: Option<OverridesDoc>,
    pub breakers: Vec<(Upstream, BreakerSnapshot)>,
    /// The operators' last commands, applied before the snapshots.
    pub admin: Vec<(Upstream, AdminCommand)>,
    /// `rollout/routing`.
    pub routing: Fetched<RoutingDoc>,
    /// Corrupt values and failed reads, naming the key.
    pub warnings: Vec<String>,
}

/// Parses a KV value; a parse failure is [`StoreError::Corrupt`] naming the key.
pub fn parse_value<T: serde::de::DeserializeOwned>(key: &str, text: &str) -> Result<T, StoreError> {
    crate::core::json::from_text(text).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// What one read of `key` came to: a missing key, a parsed value, or a failed read / a value
/// that did not parse (with a warning naming the key).
fn fetched<T: serde::de::DeserializeOwned>(
    key: &str,
    raw: Option<Result<Option<String>, StoreError>>,
    warnings: &mut Vec<String>,
) -> Fetched<T> {
    match raw {
        Some(Ok(Some(text))) => match parse_value(key, &text) {
            Ok(v) => Fetched::Found(v),
            Err(w) => {
                warnings.push(w.to_string());
                Fetched::Unreadable
            }
        },
        Some(Ok(None)) => Fetched::Absent,
        Some(Err(e)) => {
            warnings.push(e.to_string());
            Fetched::Unreadable
        }
        None => {
            warnings.push(StoreError::failed(StoreOp::Read, key, "no value returned").to_string());
            Fetched::Unreadable
        }
    }
}

fn found<T>(f: Fetched<T>) -> Option<T> {
    match f {
        Fetched::Found(v) => Some(v),
        Fetched::Absent | Fetched::Unreadable => None,
    }
}

/// The keys a refresh reads: overrides, the two breaker snapshots, the two operator commands,
/// the routing document.
pub fn refresh_keys() -> Vec<String> {
    let mut keys = vec![CONFIG_KEY.to_string()];
    keys.extend(Upstream::ALL.map(breaker_key));
    keys.extend(Upstream::ALL.map(breaker_admin_key));
    keys.push(ROUTING_KEY.to_string());
    keys
}

/// Reads everything the hot path needs ([`refresh_keys`]: six reads on KV, one request to the
/// Durable Object), done in the background at most every `STATE_REFRESH_SECONDS` (and once
/// when an isolate starts).
pub async fn load_remote<S: StateStore>(store: &S) -> RemoteState {
    let keys = refresh_keys();
    // One result per key, in the order of `refresh_keys`.
    let mut raw = store.get_many(&keys).await.into_iter();
    let mut warnings = Vec::new();
    let overrides = found(fetched::<OverridesDoc>(
        CONFIG_KEY,
        raw.next(),
        &mut warnings,
    ));
    let mut breakers = Vec::new();
    for u in Upstream::ALL {
        let key = breaker_key(u);
        if let Some(s) = found(fetched::<BreakerSnapshot>(&key, raw.next(), &mut warnings)) {
            breakers.push((u, s));
        }
    }
    let mut admin = Vec::new();
    for u in Upstream::ALL {
        let key = breaker_admin_key(u);
        if let Some(c) = found(fetched::<AdminCommand>(&key, raw.next(), &mut warnings)) {
            admin.push((u, c));
        }
    }
    let routing = fetched::<RoutingDoc>(ROUTING_KEY, raw.next(), &mut warnings);
    RemoteState {
        overrides,
        breakers,
        admin,
        routing,
        warnings,
    }
}

/// At most one write per `min_interval_ms` per key: a write offered too soon is kept as the
/// key's pending value (a later offer replaces it) and handed out by [`WriteThrottle::due`].
#[derive(Debug, Clone, Default)]
pub struct WriteThrottle {
    pub min_interval_ms: u64,
    last: SortedMap<String, u64>,
    pending: SortedMap<String, String>,
}

impl WriteThrottle {
    pub fn new(min_interval_ms: u64) -> Self {
        WriteThrottle {
            min_interval_ms,
            ..Default::default()
        }
    }

    fn allowed(&self, key: &str, now_ms: u64) -> bool {
        self.last
            .get(key)
            .is_none_or(|t| now_ms >= t.saturating_add(self.min_interval_ms))
    }

    /// Offers a write. Returns it when it may happen now (and records it as done).
    pub fn offer(&mut self, key: &str, value: String, now_ms: u64) -> Option<(String, String)> {
        if self.allowed(key, now_ms) {
            self.pending.remove(key);
            self.last.insert(key.to_string(), now_ms);
            Some((key.to_string(), value))
        } else {
            self.pending.insert(key.to_string(), value);
            None
        }
    }

    /// Keeps a write as `key`'s pending value (replacing any older one) for [`WriteThrottle::due`]
    /// to hand out: the caller that makes writes asks for them when it is about to make them,
    /// so the interval is kept between the writes themselves.
    pub fn hold(&mut self, key: &str, value: String) {
        self.pending.insert(key.to_string(), value);
    }

    /// When `key` may be written next (now, if it never was).
    pub fn ready_at(&self, key: &str) -> u64 {
        self.last
            .get(key)
            .map_or(0, |t| t.saturating_add(self.min_interval_ms))
    }

    /// Whether a write of `key` is pending.
    pub fn is_pending(&self, key: &str) -> bool {
        self.pending.contains_key(key)
    }

    /// Drops `key`'s pending write (what it held is older than state adopted since).
    pub fn cancel(&mut self, key: &str) {
        self.pending.remove(key);
    }

    /// Pending writes whose interval has passed (recorded as done).
    pub fn due(&mut self, now_ms: u64) -> Vec<(String, String)> {
        let keys: Vec<String> = self
            .pending
            .keys()
            .filter(|k| self.allowed(k, now_ms))
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(v) = self.pending.remove(&k) {
                self.last.insert(k.clone(), now_ms);
                out.push((k, v));
            }
        }
        out
    }
}

/// Sums per-key stats of an aggregate into one per upstream (all arms).
pub fn per_upstream(stats: &SortedMap<MetricKey, Stats>) -> SortedMap<Upstream, Stats> {
    let mut out: SortedMap<Upstream, Stats> = SortedMap::new();
    for (k, s) in stats {
        out.entry(k.upstream).or_default().merge(s);
    }
    out
}
