//! What isolates share about a breaker through KV: the record written on transitions, and the
//! ordering that decides whether another isolate's record is newer than ours.
//!
//! Isolates share no memory (docs/architecture.md#breaker-replication): each
//! writes only its transitions, and adopts any snapshot with a higher `generation`. The
//! generation is a Lamport-style counter: every local transition bumps it, adoption copies the
//! remote one, so an admin reset (a transition like any other) closes every isolate that sees
//! it, and an old open state re-read from an eventually consistent KV can never reopen a breaker
//! that has since moved on.

use super::state::BreakerState;
use serde::{Deserialize, Serialize};

/// This isolate's replication bookkeeping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Replica {
    pub(super) generation: u64,
    /// Trips seen, here or adopted (the status API's `trips`).
    pub(super) trips: u64,
    /// When the state last changed.
    pub(super) updated_ms: u64,
}

impl Replica {
    /// A local transition at `now_ms`.
    pub(super) fn bump(&mut self, now_ms: u64) {
        // Saturating: a snapshot from KV may carry `u64::MAX` (found by `make fuzz`, target
        // `kv_breaker_snapshot`); `+= 1` then panicked in debug and wrapped to 0 in release,
        // after which no other isolate would adopt this one's transitions.
        self.generation = self.generation.saturating_add(1);
        self.updated_ms = now_ms;
    }

    /// Whether `snap` is newer than what we hold (and so must be adopted).
    pub(super) fn is_newer(&self, snap: &BreakerSnapshot) -> bool {
        snap.generation > self.generation
    }

    /// Takes over a newer snapshot's counters.
    pub(super) fn adopt(&mut self, snap: &BreakerSnapshot, now_ms: u64) {
        self.generation = snap.generation;
        self.trips = self.trips.max(snap.trips);
        self.updated_ms = now_ms;
    }
}

/// The part of a breaker other isolates need, written to KV on transitions.
///
/// Serde shape: `{"state":"open","open_until_ms":1700000300000,"generation":7,"trips":2,
/// "updated_ms":1700000000000}`; `open_until_ms` is omitted when closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until_ms: Option<u64>,
    pub generation: u64,
    #[serde(default)]
    pub trips: u64,
    #[serde(default)]
    pub updated_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::super::{Breaker, BreakerPolicy};
    use super::*;

    #[test]
    fn a_maximal_remote_generation_does_not_overflow() {
        let mut b = Breaker::new(BreakerPolicy::default());
        let snap = BreakerSnapshot {
            state: BreakerState::Closed,
            open_until_ms: None,
            generation: u64::MAX,
            trips: 0,
            updated_ms: 0,
        };
        assert!(b.merge_remote(&snap, 1_000));
        let t = b.force_open(1_000, 60_000);
        assert_eq!(t.generation, u64::MAX);
        b.reset(2_000);
        assert_eq!(b.snapshot().generation, u64::MAX);
    }
}
