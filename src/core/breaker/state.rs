//! The breaker's state, each variant carrying exactly the data that state needs, so an
//! impossible combination (probes counted while closed, an open breaker without an end) cannot
//! be written down.

use super::window::KeySet;
use serde::{Deserialize, Serialize};

/// The three states by name, as they appear in snapshots, transitions and the status API
/// (serde: `"closed"`, `"open"`, `"half_open"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The stored state. `streak` counts consecutive trips not yet forgiven by a sustained close; it
/// sets how long the next trip stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Admitting everything, counting outcomes in the window since `since_ms`.
    Closed { since_ms: u64, streak: u32 },
    /// Rejecting until `until_ms`; read as half-open from then on (see `Breaker::refresh`).
    Open { until_ms: u64, streak: u32 },
    /// Admitting probes. `since_ms` is when the open period ended, `probes` are admitted and not
    /// yet finished, `succeeded` / `failed` the distinct keys whose probes finished well / badly
    /// (each key's first result counts, once), and `last_event_ms` is the last admission or
    /// completion (a stall past `half_open_max_wait_ms` writes the probes off).
    HalfOpen {
        since_ms: u64,
        streak: u32,
        probes: u32,
        succeeded: KeySet,
        failed: KeySet,
        last_event_ms: u64,
    },
}

impl State {
    pub fn kind(&self) -> BreakerState {
        match self {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    pub fn streak(&self) -> u32 {
        match *self {
            State::Closed { streak, .. }
            | State::Open { streak, .. }
            | State::HalfOpen { streak, .. } => streak,
        }
    }

    /// The end of the open period that led here (open and half-open), for snapshots and status.
    pub fn open_until_ms(&self) -> Option<u64> {
        match *self {
            State::Closed { .. } => None,
            State::Open { until_ms, .. } => Some(until_ms),
            State::HalfOpen { since_ms, .. } => Some(since_ms),
        }
    }
}
