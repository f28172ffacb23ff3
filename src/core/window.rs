//! Windowed per-arm statistics: counts, success rate, mean quality and a latency histogram,
//! in one-minute buckets that merge across isolates.
//!
//! Why this shape: each isolate counts its own traffic and flushes it to KV under its own key
//! at most once a minute; the cron controller reads them all and adds them up (docs/architecture.md#workers-kv-budget).
//! So every statistic here must be a *mergeable summary*: merging is associative and
//! commutative (tested), and nothing depends on seeing individual requests. That rules out
//! exact percentiles; instead latency goes into a fixed log-bucket histogram (the scheme of
//! HdrHistogram and Envoy's / Prometheus' native histograms, coarsened): values below 8 ms are
//! exact, above that each power of two is split into 4 sub-buckets, so a reported percentile is
//! within one bucket (≤ 25 % relative width) of the true one, and two histograms merge by
//! adding counts. Quality sums are kept in integer millionths for the same reason: float sums
//! are not associative, integer sums are.
//!
//! Serialisation is compact because it is written to KV by every isolate: the histogram is a
//! sparse list of `[bucket, count]` pairs, zero fields are omitted, and a window only writes
//! its non-empty minutes.

use crate::core::classify::QueryType;
use crate::core::model::{Arm, Upstream};
use crate::core::outcome::OutcomeKind;
use crate::core::policy::PolicyError;
use crate::core::sorted_map::SortedMap;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Exact buckets for 0..8 ms, then 4 per power of two up to 2^24 ms (~4.7 h); larger values
/// land in the last bucket.
pub const HISTOGRAM_BUCKETS: usize = 8 + 21 * 4;
const MAX_EXP: u32 = 23;

/// A fixed log-bucket latency histogram (milliseconds).
///
/// Serde shape: `[[bucket_index, count], …]` for the non-zero buckets, in index order.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<(u8, u64)>", try_from = "Vec<(u8, u64)>")]
pub struct Histogram {
    counts: [u64; HISTOGRAM_BUCKETS],
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(Vec::<(u8, u64)>::from(self.clone()))
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; HISTOGRAM_BUCKETS],
        }
    }
}

impl From<Histogram> for Vec<(u8, u64)> {
    fn from(h: Histogram) -> Self {
        h.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (i as u8, c))
            .collect()
    }
}

/// A serialized histogram named a bucket past the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketOutOfRange(pub u8);

impl fmt::Display for BucketOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "histogram bucket {} out of range", self.0)
    }
}

impl TryFrom<Vec<(u8, u64)>> for Histogram {
    type Error = BucketOutOfRange;
    fn try_from(v: Vec<(u8, u64)>) -> Result<Self, Self::Error> {
        let mut h = Histogram::default();
        for (i, c) in v {
            match h.counts.get_mut(usize::from(i)) {
                Some(slot) => *slot = slot.saturating_add(c),
                None => return Err(BucketOutOfRange(i)),
            }
        }
        Ok(h)
    }
}

impl Histogram {
    /// The bucket a latency falls in.
    pub fn bucket_index(ms: u64) -> usize {
        if ms < 8 {
            return ms as usize;
        }
        let exp = 63 - ms.leading_zeros(); // ≥ 3
        if exp > MAX_EXP {
            return HISTOGRAM_BUCKETS - 1;
        }
        let sub = ((ms >> (exp - 2)) & 3) as usize;
        8 + (exp as usize - 3) * 4 + sub
    }

    /// The `[low, high)` latency range of a bucket (the last bucket's high is its nominal one).
    pub fn bucket_range(index: usize) -> (u64, u64) {
        if index < 8 {
            return (index as u64, index as u64 + 1);
        }
        let i = index.min(HISTOGRAM_BUCKETS - 1) - 8;
        let exp = (i / 4) as u32 + 3;
        let sub = (i % 4) as u64;
        let step = 1u64 << (exp - 2);
        let low = (1u64 << exp) + sub * step;
        (low, low + step)
    }

    /// The value reported for a bucket: the middle of its range (exact below 8 ms).
    pub fn bucket_value(index: usize) -> u64 {
        let (lo, hi) = Histogram::bucket_range(index);
        lo + (hi - lo - 1) / 2
    }

    pub fn record(&mut self, ms: u64) {
        if let Some(c) = self.counts.get_mut(Histogram::bucket_index(ms)) {
            *c = c.saturating_add(1);
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// The `q`-quantile (q in [0, 1]) by nearest rank: the bucket holding the
    /// `ceil(q·n)`-th smallest value (at least the first), reported as [`Histogram::bucket_value`].
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let q = if q.is_finite() {
            q.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen >= rank {
                return Some(Histogram::bucket_value(i));
            }
        }
        None
    }

    pub fn p50(&self) -> Option<u64> {
        self.quantile(0.5)
    }

    pub fn p95(&self) -> Option<u64> {
        self.quantile(0.95)
    }
}

/// One observation for [`Stats::record`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub kind: OutcomeKind,
    pub latency_ms: u64,
    /// A fallback served this request.
    pub fallback: bool,
    /// The answer's quality score in [0, 1], when scored. Non-finite or out-of-range scores are
    /// ignored.
    pub quality: Option<f64>,
    /// An upstream's answer to this request was judged a no-context reply (whether a fallback
    /// then served it or not).
    pub no_context: bool,
    /// The query's class, for the per-type counts.
    pub query_type: Option<QueryType>,
    /// The whole answer's time (a stream's end), when measured: kept in its own histogram.
    pub total_ms: Option<u64>,
}

impl Sample {
    /// A sample of `kind` taking `latency_ms`, with nothing else known.
    pub fn new(kind: OutcomeKind, latency_ms: u64) -> Sample {
        Sample {
            kind,
            latency_ms,
            fallback: false,
            quality: None,
            no_context: false,
            query_type: None,
            total_ms: None,
        }
    }
}

/// Requests of one query type, and how many of them had a no-context reply.
///
/// Serde shape: `[requests, no_context]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u64, u64)", into = "(u64, u64)")]
pub struct TypeCounts {
    pub requests: u64,
    pub no_context: u64,
}

impl From<(u64, u64)> for TypeCounts {
    fn from((requests, no_context): (u64, u64)) -> Self {
        TypeCounts {
            requests,
            no_context,
        }
    }
}

impl From<TypeCounts> for (u64, u64) {
    fn from(t: TypeCounts) -> Self {
        (t.requests, t.no_context)
    }
}

impl TypeCounts {
    /// no_context / requests; `None` without requests.
    pub fn no_context_rate(&self) -> Option<f64> {
        (self.requests > 0)
            .then(|| (self.no_context.min(self.requests)) as f64 / self.requests as f64)
    }
}

const QUALITY_SCALE: f64 = 1_000_000.0;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_wide(v: &u128) -> bool {
    *v == 0
}

/// Mergeable counters for one key over some period.
///
/// Serde shape: `{"count":120,"successes":117,"errors":3,"fallbacks":2,"truncated":1,
/// "rejected":4,"quality_sum":95400000,"quality_count":118,"latency":[[40,3],[41,10],…],
/// "no_context":9,"by_type":{"mechanism":[40,2]},"total_latency":[…]}`; zero counters, empty
/// maps and empty histograms are omitted.
///
/// Requests the upstream refused because of the request itself (a 422, a query too short for
/// LightRAG, see [`OutcomeKind::is_request_caused`]) are counted in `rejected` only: not in
/// `count`, the rates or the latency histogram, so requests made to fail cannot move an arm's
/// error rate either way. `quality_sum` is in millionths (integer, so merging is
/// exactly associative): mean quality = `quality_sum / 1e6 / quality_count`.
///
/// The sums of squares (`latency_sum_sq` in ms², `quality_sum_sq` in millionths²) and
/// `latency_sum` are what the A/B statistics need (`core::experiment::Moments::from_integer_sums`)
/// and what a Prometheus histogram's `_sum` reports: exact integers, so they merge associatively
/// too. The squares are u128 (a quality square alone is up to 10¹², so a u64 would overflow
/// after ~1.8·10⁷ scored answers); JSON carries them as plain integers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    #[serde(skip_serializing_if = "is_zero")]
    pub count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub successes: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub errors: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub fallbacks: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub truncated: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub quality_sum: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub quality_count: u64,
    #[serde(skip_serializing_if = "Histogram::is_empty")]
    pub latency: Histogram,
    /// Σ latency (ms) of the requests in `count`.
    #[serde(skip_serializing_if = "is_zero")]
    pub latency_sum: u64,
    /// Σ latency² (ms²).
    #[serde(skip_serializing_if = "is_zero_wide")]
    pub latency_sum_sq: u128,
    /// Σ quality² of the scored answers (millionths²).
    #[serde(skip_serializing_if = "is_zero_wide")]
    pub quality_sum_sq: u128,
    /// Requests in which an upstream's answer was a no-context reply (in `count` too).
    #[serde(skip_serializing_if = "is_zero")]
    pub no_context: u64,
    /// Per query type: requests and no-context replies (`{"mechanism": [12, 3]}`).
    #[serde(skip_serializing_if = "SortedMap::is_empty")]
    pub by_type: SortedMap<QueryType, TypeCounts>,
    /// Whole-answer times, for samples that measured one (shadow calls).
    #[serde(skip_serializing_if = "Histogram::is_empty")]
    pub total_latency: Histogram,
}

impl Stats {
    pub fn record(&mut self, s: &Sample) {
        if s.kind.is_request_caused() {
            self.rejected = self.rejected.saturating_add(1);
            return;
        }
        self.count = self.count.saturating_add(1);
        if s.kind.is_failure() {
            self.errors = self.errors.saturating_add(1);
        } else {
            self.successes = self.successes.saturating_add(1);
        }
        if s.fallback {
            self.fallbacks = self.fallbacks.saturating_add(1);
        }
        if s.kind == OutcomeKind::TruncatedStream {
            self.truncated = self.truncated.saturating_add(1);
        }
        if s.no_context {
            self.no_context = self.no_context.saturating_add(1);
        }
        if let Some(t) = s.query_type {
            let c = self.by_type.entry(t).or_default();
            c.requests = c.requests.saturating_add(1);
            if s.no_context {
                c.no_context = c.no_context.saturating_add(1);
            }
        }
        if let Some(total) = s.total_ms {
            self.total_latency.record(total);
        }
        if let Some(q) = s
            .quality
            .filter(|q| q.is_finite() && (0.0..=1.0).contains(q))
        {
            let millionths = (q * QUALITY_SCALE).round() as u64;
            self.quality_sum = self.quality_sum.saturating_add(millionths);
            self.quality_sum_sq = self
                .quality_sum_sq
                .saturating_add(u128::from(millionths) * u128::from(millionths));
            self.quality_count = self.quality_count.saturating_add(1);
        }
        self.latency.record(s.latency_ms);
        self.latency_sum = self.latency_sum.saturating_add(s.latency_ms);
        self.latency_sum_sq = self
            .latency_sum_sq
            .saturating_add(u128::from(s.latency_ms) * u128::from(s.latency_ms));
    }

    pub fn merge(&mut self, o: &Stats) {
        self.count = self.count.saturating_add(o.count);
        self.successes = self.successes.saturating_add(o.successes);
        self.errors = self.errors.saturating_add(o.errors);
        self.fallbacks = self.fallbacks.saturating_add(o.fallbacks);
        self.truncated = self.truncated.saturating_add(o.truncated);
        self.rejected = self.rejected.saturating_add(o.rejected);
        self.quality_sum = self.quality_sum.saturating_add(o.quality_sum);
        self.quality_count = self.quality_count.saturating_add(o.quality_count);
        self.latency.merge(&o.latency);
        self.latency_sum = self.latency_sum.saturating_add(o.latency_sum);
        self.latency_sum_sq = self.latency_sum_sq.saturating_add(o.latency_sum_sq);
        self.quality_sum_sq = self.quality_sum_sq.saturating_add(o.quality_sum_sq);
        self.no_context = self.no_context.saturating_add(o.no_context);
        for (t, c) in &o.by_type {
            let mine = self.by_type.entry(*t).or_default();
            mine.requests = mine.requests.saturating_add(c.requests);
            mine.no_context = mine.no_context.saturating_add(c.no_context);
        }
        self.total_latency.merge(&o.total_latency);
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.quality_count == 0 && self.rejected == 0
    }

    /// Successes / count; `None` without data.
    pub fn success_rate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.successes as f64 / self.count as f64)
    }

    /// No-context replies / count; `None` without data.
    pub fn no_context_rate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.no_context.min(self.count) as f64 / self.count as f64)
    }

    /// Errors / count; `None` without data.
    pub fn error_rate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.errors as f64 / self.count as f64)
    }

    /// Mean quality score; `None` without scored samples.
    pub fn mean_quality(&self) -> Option<f64> {
        (self.quality_count > 0)
            .then(|| self.quality_sum as f64 / QUALITY_SCALE / self.quality_count as f64)
    }

    pub fn p50(&self) -> Option<u64> {
        self.latency.p50()
    }

    pub fn p95(&self) -> Option<u64> {
        self.latency.p95()
    }
}

/// One bucket of a [`Window`]: the period index (`now_ms / bucket_ms`) and its stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    #[serde(rename = "t")]
    pub index: u64,
    #[serde(rename = "s")]
    pub stats: Stats,
}

/// A ring of `len` buckets of `bucket_ms` each (default 60 one-minute buckets): the last hour.
///
/// Serde shape: `{"bucket_ms":60000,"len":60,"slots":[{"t":28333333,"s":{…}},…]}` with only
/// the non-empty slots, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowWire", into = "WindowWire")]
pub struct Window {
    bucket_ms: u64,
    slots: Vec<Option<Slot>>,
}

#[derive(Serialize, Deserialize)]
struct WindowWire {
    bucket_ms: u64,
    len: usize,
    #[serde(default)]
    slots: Vec<Slot>,
}

impl From<Window> for WindowWire {
    fn from(w: Window) -> Self {
        let len = w.slots.len();
        let mut slots: Vec<Slot> = w.slots.into_iter().flatten().collect();
        crate::core::order::sort_by(&mut slots, |a, b| a.index.cmp(&b.index));
        WindowWire {
            bucket_ms: w.bucket_ms,
            len,
            slots,
        }
    }
}

impl TryFrom<WindowWire> for Window {
    type Error = PolicyError;
    fn try_from(w: WindowWire) -> Result<Self, Self::Error> {
        let mut out = Window::try_new(w.bucket_ms, w.len)?;
        for slot in w.slots {
            out.merge_slot(&slot);
        }
        Ok(out)
    }
}

/// Most buckets a window may have (a day of minutes).
pub const MAX_WINDOW_BUCKETS: usize = 1_440;

impl Default for Window {
    fn default() -> Self {
        Window {
            bucket_ms: 60_000,
            slots: vec![None; 60],
        }
    }
}

impl Window {
    pub fn try_new(bucket_ms: u64, len: usize) -> Result<Window, PolicyError> {
        if bucket_ms == 0 {
            return Err(PolicyError::new("bucket_ms", "must be at least 1"));
        }
        if len == 0 || len > MAX_WINDOW_BUCKETS {
            return Err(PolicyError::new(
                "len",
                format!("must be in 1..={MAX_WINDOW_BUCKETS}, got {len}"),
            ));
        }
        Ok(Window {
            bucket_ms,
            slots: vec![None; len],
        })
    }

    pub fn bucket_ms(&self) -> u64 {
        self.bucket_ms
    }

    /// The non-empty slots, in ring order (not time order).
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    fn position(&self, index: u64) -> usize {
        (index % self.slots.len().max(1) as u64) as usize
    }

    /// Adds a slot's stats: the newer period wins a ring position, equal periods add up.
    /// This per-position "max index, then sum" rule is what makes merging associative.
    pub fn merge_slot(&mut self, slot: &Slot) {
        let pos = self.position(slot.index);
        let Some(cell) = self.slots.get_mut(pos) else {
            return;
        };
        match cell {
            Some(own) if own.index == slot.index => own.stats.merge(&slot.stats),
            Some(own) if own.index > slot.index => {}
            _ => *cell = Some(slot.clone()),
        }
    }

    /// Records one sample at `now_ms`.
    pub fn record(&mut self, now_ms: u64, sample: &Sample) {
        let index = now_ms / self.bucket_ms;
        let pos = self.position(index);
        let Some(cell) = self.slots.get_mut(pos) else {
            return;
        };
        match cell {
            Some(own) if own.index == index => own.stats.record(sample),
            Some(own) if own.index > index => {} // clock went backwards past the ring: drop
            _ => {
                let mut stats = Stats::default();
                stats.record(sample);
                *cell = Some(Slot { index, stats });
            }
        }
    }

    /// Sum of the buckets inside the window ending at `now_ms` (the current bucket and the
    /// `len - 1` before it).
    pub fn total(&self, now_ms: u64) -> Stats {
        let current = now_ms / self.bucket_ms;
        let oldest = current.saturating_sub(self.slots.len() as u64 - 1);
        let mut out = Stats::default();
        for slot in self.slots.iter().flatten() {
            if slot.index >= oldest && slot.index <= current {
                out.merge(&slot.stats);
            }
        }
        out
    }

    /// Merges another isolate's window. Both must have the same geometry.
    pub fn merge(&mut self, other: &Window) -> Result<(), PolicyError> {
        if other.bucket_ms != self.bucket_ms || other.slots.len() != self.slots.len() {
            return Err(PolicyError::new(
                "window",
                format!(
                    "cannot merge a {}x{} ms window into a {}x{} ms window",
                    other.slots.len(),
                    other.bucket_ms,
                    self.slots.len(),
                    self.bucket_ms
                ),
            ));
        }
        for slot in other.slots.iter().flatten() {
            self.merge_slot(slot);
        }
        Ok(())
    }

    /// Drops buckets older than the window ending at `now_ms` (before serialising).
    pub fn prune(&mut self, now_ms: u64) {
        let current = now_ms / self.bucket_ms;
        let oldest = current.saturating_sub(self.slots.len() as u64 - 1);
        for cell in &mut self.slots {
            if cell.as_ref().is_some_and(|s| s.index < oldest) {
                *cell = None;
            }
        }
    }
}

/// What a metrics window is keyed by: the upstream that *served* the request and the arm the
/// user was *assigned* to (intention to treat: a treatment user served by a Perplexity
/// fallback is recorded under `perplexity.treatment`, with `fallback` set).
///
/// Serde shape: the string `"lightrag.treatment"` (usable as a JSON map key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct MetricKey {
    pub upstream: Upstream,
    pub arm: Arm,
}

impl MetricKey {
    pub fn new(upstream: Upstream, arm: Arm) -> MetricKey {
        MetricKey { upstream, arm }
    }

    /// All six keys, in a stable order.
    pub fn all() -> impl Iterator<Item = MetricKey> {
        Upstream::ALL
            .into_iter()
            .flat_map(|u| Arm::ALL.into_iter().map(move |a| MetricKey::new(u, a)))
    }

    pub fn parse(s: &str) -> Option<MetricKey> {
        let (u, a) = s.split_once('.')?;
        Some(MetricKey::new(Upstream::parse(u)?, Arm::parse(a)?))
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.upstream.as_str(), self.arm.as_str())
    }
}

impl From<MetricKey> for String {
    fn from(k: MetricKey) -> String {
        k.to_string()
    }
}

/// A string that is not `<upstream>.<arm>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMetricKey(pub String);

impl fmt::Display for UnknownMetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown metric key {:?}", self.0)
    }
}

impl TryFrom<String> for MetricKey {
    type Error = UnknownMetricKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MetricKey::parse(&s).ok_or(UnknownMetricKey(s))
    }
}
