//! The ground truth: every metric sample the isolates counted, by minute, so the controller's
//! aggregate can be held against what really happened in the same window.

use cmo_edge_router::core::model::Arm;
use cmo_edge_router::core::window::{MetricKey, Sample, Stats};
use std::collections::{BTreeMap, HashMap};

/// Minutes in a metric window (`core::window::Window::default`).
pub const WINDOW_MINUTES: u64 = 60;

#[derive(Default)]
pub struct Truth {
    minutes: HashMap<u64, BTreeMap<MetricKey, Stats>>,
}

impl Truth {
    pub fn record(&mut self, now_ms: u64, key: MetricKey, sample: &Sample) {
        self.minutes
            .entry(now_ms / 60_000)
            .or_default()
            .entry(key)
            .or_default()
            .record(sample);
    }

    /// Every sample of the window a `core::window::Window` totals at `now_ms`.
    pub fn window(&self, now_ms: u64) -> BTreeMap<MetricKey, Stats> {
        let cur = now_ms / 60_000;
        let mut out: BTreeMap<MetricKey, Stats> = BTreeMap::new();
        for m in cur.saturating_sub(WINDOW_MINUTES - 1)..=cur {
            if let Some(keys) = self.minutes.get(&m) {
                for (k, s) in keys {
                    out.entry(*k).or_default().merge(s);
                }
            }
        }
        out
    }
}

/// One arm's stats, every upstream added up.
pub fn arm(stats: &BTreeMap<MetricKey, Stats>, arm: Arm) -> Stats {
    let mut out = Stats::default();
    for (k, s) in stats {
        if k.arm == arm {
            out.merge(s);
        }
    }
    out
}
