//! Counting each minute once: how the controller turns the isolates' last-hour windows into
//! totals that only grow (the fleet's `/metrics` counters) and into a stage's cumulative
//! evidence (the rollout gates and the sequential tests).
//!
//! Why minutes and a watermark: every isolate flushes its windows of one-minute slots (the
//! last hour) under its own key, with an expiry, and isolates die without notice. Summing the
//! current flushes gives a last-hour view that shrinks when an isolate's key expires — fine for
//! a gauge, wrong for a counter or for a sequential test, which both need cumulative data.
//! Keeping each isolate's last-seen counters in the controller would grow with the fleet. So the
//! controller *commits* minutes instead: once a minute can no longer change (it ended more than
//! [`settle_ms`] ago: one flush period for its last flush, another for KV to show it), its slots
//! are added to the ledger once, and the ledger's `through_ms` moves past it. The ledger is
//! O(metric keys), whatever the number of isolates, and it never shrinks.
//!
//! A minute younger than that is *recent*: summed from the current flushes at every pass and
//! shown on top of the committed total (so a stage's evidence is current to the last flush),
//! but not committed. The flushes' expiry ([`crate::core::store::metrics_ttl_seconds`]) is
//! longer than the settle time plus a tick, so a dead isolate's last minutes are committed
//! before its key disappears.
//!
//! What is lost: counts that reach KV more than the settle time after their minute ended — an
//! isolate that recorded a request and then saw no traffic for minutes flushes it late (it
//! flushes after a request, never on a timer). Both arms lose such counts alike.

use crate::core::window::{MetricKey, Stats, Window};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Slot boundaries are whole minutes.
pub const MINUTE_MS: u64 = 60_000;

/// How long after its end a minute is committed: two flush periods (the isolate's last flush of
/// it, then KV's propagation, which takes up to a minute), at least two minutes.
pub fn settle_ms(flush_seconds: u64) -> u64 {
    flush_seconds.saturating_mul(2_000).max(2 * MINUTE_MS)
}

/// The boundary a pass starting at `now_ms` commits up to (exclusive): the start of the minute
/// `settle` before now.
pub fn closed_ms(now_ms: u64, settle: u64) -> u64 {
    let t = now_ms.saturating_sub(settle);
    t - t % MINUTE_MS
}

/// Totals committed minute by minute.
///
/// Serde shape: `{"through_ms": 1700000040000, "stats": {"lightrag.treatment": {…}}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ledger {
    /// Every slot ending at or before this time has been committed (0: nothing yet).
    pub through_ms: u64,
    pub stats: BTreeMap<MetricKey, Stats>,
}

impl Ledger {
    /// Adds what a pass committed and moves the watermark to `closed_ms` (never backwards).
    pub fn commit(&mut self, fresh: &BTreeMap<MetricKey, Stats>, closed_ms: u64) {
        for (k, s) in fresh {
            self.stats.entry(*k).or_default().merge(s);
        }
        self.through_ms = self.through_ms.max(closed_ms);
    }

    /// The committed totals plus `recent`.
    pub fn with(&self, recent: &BTreeMap<MetricKey, Stats>) -> BTreeMap<MetricKey, Stats> {
        let mut out = self.stats.clone();
        for (k, s) in recent {
            out.entry(*k).or_default().merge(s);
        }
        out
    }
}

/// Where one window's slots go in a pass.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    /// The ledger's watermark when the pass started: slots starting before it are counted.
    pub through_ms: u64,
    /// The pass's boundary: slots ending at or before it are committed by this pass.
    pub closed_ms: u64,
}

/// Sorts `window`'s slots into `fresh` (to commit: `through ≤ start`, `end ≤ closed`) and
/// `recent` (`through ≤ start`, `end > closed`). Slots starting before the watermark were
/// committed by an earlier pass and are skipped. (With the isolates' one-minute slots a slot
/// never straddles a boundary; a window of another geometry loses the straddling slots.)
pub fn sort_slots<K: Ord + Clone>(
    key: K,
    window: &Window,
    split: Split,
    fresh: &mut BTreeMap<K, Stats>,
    recent: &mut BTreeMap<K, Stats>,
) {
    let bucket = window.bucket_ms();
    for slot in window.slots() {
        let start = slot.index.saturating_mul(bucket);
        let end = start.saturating_add(bucket);
        if start < split.through_ms {
            continue;
        }
        let target = if end <= split.closed_ms {
            &mut *fresh
        } else {
            &mut *recent
        };
        target.entry(key.clone()).or_default().merge(&slot.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Arm, Upstream};
    use crate::core::outcome::OutcomeKind;
    use crate::core::window::Sample;

    const T: u64 = 1_800_000_000_000; // a whole minute

    fn ok() -> Sample {
        Sample {
            kind: OutcomeKind::Success,
            latency_ms: 100,
            fallback: false,
            quality: None,
            no_context: false,
            query_type: None,
            total_ms: None,
        }
    }

    #[test]
    fn each_minute_is_committed_once_and_the_ledger_never_shrinks() {
        let key = MetricKey::new(Upstream::Lightrag, Arm::Treatment);
        let mut w = Window::default();
        for m in 0..10u64 {
            w.record(T + m * MINUTE_MS + 5, &ok());
        }
        let mut ledger = Ledger::default();
        let mut last = 0;
        // Passes every minute from T+10 min: each commits what settled since the last one.
        for tick in 10..30u64 {
            let now = T + tick * MINUTE_MS + 1_000;
            let split = Split {
                through_ms: ledger.through_ms,
                closed_ms: closed_ms(now, settle_ms(60)),
            };
            let (mut fresh, mut recent) = (BTreeMap::new(), BTreeMap::new());
            sort_slots(key, &w, split, &mut fresh, &mut recent);
            ledger.commit(&fresh, split.closed_ms);
            let committed = ledger.stats.get(&key).map_or(0, |s| s.count);
            let shown = ledger.with(&recent).get(&key).map_or(0, |s| s.count);
            assert!(committed >= last);
            assert_eq!(shown, 10, "committed + recent is every request, once");
            last = committed;
        }
        assert_eq!(last, 10);
    }

    #[test]
    fn settle_and_boundaries() {
        assert_eq!(settle_ms(60), 120_000);
        assert_eq!(settle_ms(10), 120_000);
        assert_eq!(settle_ms(300), 600_000);
        assert_eq!(closed_ms(T + 125_000, 120_000), T);
        assert_eq!(closed_ms(5, 120_000), 0);
    }
}
