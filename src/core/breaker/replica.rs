//! What isolates share about a breaker through KV: the record written on transitions, the
//! operator's commands, and the ordering that decides whether another isolate's record is newer
//! than ours.
//!
//! Isolates share no memory (docs/architecture.md#breaker-replication): each writes only its
//! transitions to `breaker/<upstream>` and adopts any snapshot that is newer than what it holds.
//! "Newer" is the pair `(admin_epoch, generation)`, compared in that order:
//!
//! - `generation` is a Lamport-style counter: every local transition bumps it (saturating: at
//!   `u64::MAX` it stays there, it never wraps to 0 and so never makes a new state look old),
//!   adoption copies the remote one, so an old open state re-read from an eventually
//!   consistent KV can never reopen a breaker that has since moved on.
//! - `admin_epoch` is the issue time of the last operator command this isolate applied. An
//!   operator's reset or force-open is written, besides the snapshot, to its own key
//!   `breaker/<upstream>/admin` as an [`AdminCommand`] that only operators write — so no
//!   automatic transition elsewhere can overwrite it before every isolate has read it — and it
//!   dominates every generation: an isolate whose generation is far above the commanding
//!   isolate's still obeys, and a snapshot written before the command (a lower epoch) is never
//!   adopted after it. Between two commands the later issue time wins, in whatever order an
//!   isolate reads them.
//!
//! Adoption is bounded: an open state is adopted until at most `now + max_recovery_timeout`
//! (a corrupt value or a writer with a wrong clock cannot keep a breaker open for days).

use super::state::BreakerState;
use super::BreakerAction;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// This isolate's replication bookkeeping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Replica {
    pub(super) generation: u64,
    /// The epoch of the last operator command applied here (0: none).
    pub(super) admin_epoch: u64,
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

    fn order(&self) -> (u64, u64) {
        (self.admin_epoch, self.generation)
    }

    /// Whether `snap` is newer than what we hold (and so must be adopted).
    pub(super) fn is_newer(&self, snap: &BreakerSnapshot) -> bool {
        (snap.admin_epoch, snap.generation).cmp(&self.order()) == Ordering::Greater
    }

    /// Takes over a newer snapshot's counters.
    pub(super) fn adopt(&mut self, snap: &BreakerSnapshot, now_ms: u64) {
        self.generation = snap.generation;
        self.admin_epoch = snap.admin_epoch;
        self.trips = self.trips.max(snap.trips);
        self.updated_ms = now_ms;
    }

    /// The epoch for a command issued here at `now_ms`: its issue time, and always above every
    /// epoch seen here (so two commands from one isolate in one millisecond stay ordered).
    pub(super) fn next_epoch(&self, now_ms: u64) -> u64 {
        now_ms.max(self.admin_epoch.saturating_add(1))
    }
}

/// The part of a breaker other isolates need, written to KV on transitions.
///
/// Serde shape: `{"state":"open","open_until_ms":1700000300000,"generation":7,"trips":2,
/// "updated_ms":1700000000000,"admin_epoch":1699999990000}`; `open_until_ms` is omitted when
/// closed, `admin_epoch` when no command was ever applied (and read as 0 when absent, so
/// snapshots written before it existed still parse).
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
    #[serde(default, skip_serializing_if = "is_zero")]
    pub admin_epoch: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// An operator's command (`POST /admin/breaker/{upstream}/{open|reset}`), stored under
/// `breaker/<upstream>/admin` and applied by every isolate that reads it, once.
///
/// Serde shape: `{"action":"open","epoch":1700000000000,"open_until_ms":1700000300000}`
/// (`open_until_ms` only for `open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminCommand {
    pub action: BreakerAction,
    /// Issue time (ms), raised above every epoch the issuing isolate had seen.
    pub epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until_ms: Option<u64>,
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
            admin_epoch: 0,
        };
        assert!(b.merge_remote(&snap, 1_000));
        let t = b.force_open(1_000, 60_000);
        assert_eq!(t.generation, u64::MAX);
        b.reset(2_000);
        assert_eq!(b.snapshot().generation, u64::MAX);
    }
}
