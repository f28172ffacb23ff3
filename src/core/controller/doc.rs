//! `controller/state`: what the cron controller carries from one tick to the next besides the
//! rollout itself — the paged pass in progress, the last complete last-hour aggregate and the
//! quality gate's verdict, the fleet's committed totals (the `/metrics` counters), the current
//! stage's evidence ledger with its sequential-test memory, and the last routing document it
//! wrote.
//!
//! Why apart from `rollout/state`: that document is the operator's (strict reader, versioned,
//! history, commands); this one is the controller's bookkeeping, rebuilt from the isolates'
//! flushes. Its size does not grow with the number of isolates (see [`super::ledger`]).

use super::ledger::{HourView, Ledger, MINUTE_MS};
use super::routing::{RoutingDoc, SplitTag};
use crate::core::cohort::Percent;
use crate::core::experiment::Memory;
use crate::core::gate::GateStatus;
use crate::core::model::Upstream;
use crate::core::sorted_map::SortedMap;
use crate::core::window::{MetricKey, Stats, Window};
use serde::{Deserialize, Serialize};

/// KV key of the controller's document.
pub const CONTROLLER_KEY: &str = "controller/state";

/// A finished pass over every isolate's flush: the fleet's last hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub completed_ms: u64,
    pub isolates: u64,
    /// Flushes that failed to parse and were skipped.
    #[serde(default)]
    pub corrupt: u64,
    /// How many controller ticks the pass took (more than one when there were too many isolate
    /// keys for one invocation's 1,000 KV operations).
    #[serde(default)]
    pub ticks: u64,
    /// The last hour at the pass's start: committed minutes plus what the flushes show of
    /// the minutes since (its last minute or two are short by what is not visible yet).
    #[serde(default)]
    pub stats: SortedMap<MetricKey, Stats>,
    /// The sixty committed minutes before `settled_until_ms`: exact (every flush is in), up
    /// to the settle time old (`super::ledger::LastHour`).
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub settled: SortedMap<MetricKey, Stats>,
    #[serde(default)]
    pub settled_until_ms: u64,
    /// The shadow series summed over the isolates' flushes (last hour;
    /// docs/answer-aware.md#shadow-comparison).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Stats>,
}

/// A pass in progress (resumes at `cursor` on the next tick).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PassProgress {
    pub cursor: Option<String>,
    pub started_ms: u64,
    pub isolates: u64,
    pub corrupt: u64,
    pub ticks: u64,
    /// Unused since the last-hour aggregate is built from [`PassProgress::slots`] (kept so a
    /// pass stored by an older version still reads).
    #[serde(skip_serializing_if = "SortedMap::is_empty")]
    pub stats: SortedMap<MetricKey, Stats>,
    /// The flushes' slots not committed yet (starting at or after the totals' watermark),
    /// summed over the isolates: with [`ControllerDoc::hour`], the last-hour aggregate.
    #[serde(skip_serializing_if = "SortedMap::is_empty")]
    pub slots: SortedMap<MetricKey, Window>,
    /// The boundary this pass commits up to ([`super::ledger::closed_ms`] at its start).
    pub closed_ms: u64,
    /// The shadow series summed over the isolates' flushes (last hour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Stats>,
    /// Fleet slots to commit to the totals.
    pub fresh: SortedMap<MetricKey, Stats>,
    /// The same by reason, to commit to `reason_totals`.
    pub reasons_fresh: SortedMap<String, Stats>,
    /// The stage this pass collects evidence for.
    pub split: Option<SplitTag>,
    /// That stage's slots to commit, and its recent ones.
    pub stage_fresh: SortedMap<MetricKey, Stats>,
    pub stage_recent: SortedMap<MetricKey, Stats>,
    /// The shadow series' slots since the stage opened, to commit, and its recent ones.
    pub stage_shadow_fresh: Stats,
    pub stage_shadow_recent: Stats,
}

/// The current stage's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageBook {
    pub split: SplitTag,
    /// The percentage the stage routes at (the split the sample-ratio check expects).
    #[serde(with = "crate::core::rollout::pct")]
    pub percentage: Percent,
    /// When the controller started this book.
    pub opened_ms: u64,
    /// Committed minutes.
    #[serde(default)]
    pub ledger: Ledger,
    /// Minutes not yet committed, as the last completed pass saw them.
    #[serde(default)]
    pub recent: SortedMap<MetricKey, Stats>,
    /// LightRAG breaker trips (the fleet's counter, `breaker/lightrag`) when the stage began.
    #[serde(default)]
    pub trips_at_open: u64,
    /// The sequential tests' memory for this stage's sequence of looks.
    #[serde(default)]
    pub memory: Memory,
    /// Passes folded in (looks taken).
    #[serde(default)]
    pub looks: u64,
    /// Shadow calls (docs/answer-aware.md#shadow-comparison) committed since the stage opened:
    /// the shadow series is not tagged with a stage, so it is counted by time, from the start
    /// of the minute the controller opened this book (calls earlier in that minute count too).
    #[serde(default)]
    pub shadow: Stats,
    /// Shadow slots not yet committed, as the last completed pass saw them.
    #[serde(default)]
    pub shadow_recent: Stats,
    /// The shadow watermark: slots starting before it are committed (or predate the stage).
    #[serde(default)]
    pub shadow_through_ms: u64,
}

impl StageBook {
    pub fn open(split: SplitTag, percentage: Percent, trips: u64, now_ms: u64) -> StageBook {
        StageBook {
            split,
            percentage,
            opened_ms: now_ms,
            ledger: Ledger::default(),
            recent: SortedMap::new(),
            trips_at_open: trips,
            memory: Memory::default(),
            looks: 0,
            shadow: Stats::default(),
            shadow_recent: Stats::default(),
            shadow_through_ms: now_ms - now_ms % MINUTE_MS,
        }
    }

    /// Shadow calls since the stage opened, committed plus recent.
    pub fn shadow_calls(&self) -> u64 {
        self.shadow.count.saturating_add(self.shadow_recent.count)
    }

    /// Committed plus recent: the stage's cumulative data.
    pub fn stats(&self) -> SortedMap<MetricKey, Stats> {
        self.ledger.with(&self.recent)
    }
}

/// The controller's document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControllerDoc {
    pub updated_ms: u64,
    pub quality_gate_closed: bool,
    pub gate: Option<GateStatus>,
    pub aggregate: Option<Aggregate>,
    pub pass: Option<PassProgress>,
    /// The fleet's totals since the controller first counted: they only grow.
    pub totals: Ledger,
    /// The committed minutes of the last hour, per key (`super::ledger::HourView`).
    #[serde(skip_serializing_if = "SortedMap::is_empty")]
    pub hour: HourView,
    /// The same requests by reason, committed with `totals` (same watermark).
    pub reason_totals: SortedMap<String, Stats>,
    /// Breaker trips per upstream as last read from `breaker/<upstream>` (the fleet's counter:
    /// adopting a snapshot takes the larger count, so one outage counts once, not once per
    /// isolate).
    pub breaker_trips: SortedMap<Upstream, u64>,
    pub stage: Option<StageBook>,
    /// The last routing document this controller wrote.
    pub routing_written: Option<RoutingDoc>,
}
