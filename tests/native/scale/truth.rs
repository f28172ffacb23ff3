//! The ground truth: every metric sample the isolates counted, by minute, so the controller's
//! aggregate can be held against what really happened in the same window.

use cmo_edge_router::core::controller::SplitTag;
use cmo_edge_router::core::model::Arm;
use cmo_edge_router::core::sorted_map::SortedMap;
use cmo_edge_router::core::window::{MetricKey, Sample, Stats};
use std::collections::HashMap;

/// Minutes in a metric window (`core::window::Window::default`).
pub const WINDOW_MINUTES: u64 = 60;

#[derive(Default)]
pub struct Truth {
    minutes: HashMap<u64, SortedMap<MetricKey, Stats>>,
    /// Per rollout stage (the split tag the recording isolate routed under): a stage's
    /// evidence with perfect data.
    stages: SortedMap<SplitTag, SortedMap<MetricKey, Stats>>,
}

impl Truth {
    pub fn record(
        &mut self,
        now_ms: u64,
        key: MetricKey,
        sample: &Sample,
        split: Option<&SplitTag>,
    ) {
        if let Some(tag) = split {
            self.stages
                .entry(tag.clone())
                .or_default()
                .entry(key)
                .or_default()
                .record(sample);
        }
        self.minutes
            .entry(now_ms / 60_000)
            .or_default()
            .entry(key)
            .or_default()
            .record(sample);
    }

    /// Every sample of the window a `core::window::Window` totals at `now_ms`.
    pub fn window(&self, now_ms: u64) -> SortedMap<MetricKey, Stats> {
        let cur = now_ms / 60_000;
        let mut out: SortedMap<MetricKey, Stats> = SortedMap::new();
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

impl Truth {
    /// Every sample recorded under stage `tag`.
    pub fn stage(&self, tag: &SplitTag) -> SortedMap<MetricKey, Stats> {
        self.stages.get(tag).cloned().unwrap_or_default()
    }

    /// Every sample of the minutes starting in `[from_ms, to_ms)` (the minute `from_ms` falls
    /// in included).
    pub fn between(&self, from_ms: u64, to_ms: u64) -> SortedMap<MetricKey, Stats> {
        let mut out: SortedMap<MetricKey, Stats> = SortedMap::new();
        for (m, keys) in &self.minutes {
            if *m >= from_ms / 60_000 && m * 60_000 < to_ms {
                for (k, s) in keys {
                    out.entry(*k).or_default().merge(s);
                }
            }
        }
        out
    }
}

/// One arm's stats, every upstream added up.
pub fn arm(stats: &SortedMap<MetricKey, Stats>, arm: Arm) -> Stats {
    let mut out = Stats::default();
    for (k, s) in stats {
        if k.arm == arm {
            out.merge(s);
        }
    }
    out
}
