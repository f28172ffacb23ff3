//! The closed breaker's memory: the last `window_size` calls as a count-based sliding window
//! (Resilience4j `COUNT_BASED`), who made each of them, and the current run of consecutive
//! failures with the distinct keys it came from.
//!
//! Why a shift register: recording one call is a shift, a mask and two counter updates, with no
//! allocation, which keeps `record` + `admit` under the hot path's 50 ns budget. The window is at
//! most [`super::settings::MAX_WINDOW_SIZE`] calls long for that reason. Beside it, a ring of the
//! calls' key tags (newest first, as the bits) answers "how many of these calls are this key's"
//! and "from how many distinct keys are the failures" by a scan of at most `window_size` tags.

use super::settings::{MAX_DISTINCT_KEYS, MAX_WINDOW_SIZE};
use crate::core::keytag::KeyTag;

/// Distinct keys, in arrival order, at most [`MAX_DISTINCT_KEYS`] of them (enough to decide
/// every `min_distinct_keys` the policy allows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<KeyTag>,
}

impl KeySet {
    pub(super) fn contains(&self, k: KeyTag) -> bool {
        self.keys.contains(&k)
    }

    /// Adds `k` if new (and there is room).
    pub(super) fn insert(&mut self, k: KeyTag) {
        if !self.contains(k) && self.keys.len() < MAX_DISTINCT_KEYS as usize {
            self.keys.push(k);
        }
    }

    pub(super) fn len(&self) -> u32 {
        self.keys.len() as u32
    }

    pub(super) fn clear(&mut self) {
        self.keys.clear();
    }
}

const RING: usize = MAX_WINDOW_SIZE as usize;

/// Bit `i` of `bits` is 1 if the `i`-th most recent call failed. `keys` is a ring of the
/// calls' keys: the first `len` slots hold the window's calls (a fixed array, so counting one
/// key's calls is a branch-free pass over contiguous memory), the newest at `head - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CountWindow {
    bits: u128,
    len: u32,
    /// Failures in `bits` (its popcount, kept incrementally).
    failures: u32,
    /// Failures since the last success (also counted while half-open).
    consecutive: u32,
    keys: [KeyTag; RING],
    /// Where the next call's key goes.
    head: usize,
    /// The distinct keys of the current run of consecutive failures.
    streak_keys: KeySet,
}

impl Default for CountWindow {
    fn default() -> Self {
        CountWindow {
            bits: 0,
            len: 0,
            failures: 0,
            consecutive: 0,
            keys: [KeyTag::from_raw(0); RING],
            head: 0,
            streak_keys: KeySet::default(),
        }
    }
}

impl CountWindow {
    /// Shifts one call in; the oldest falls out once `size` calls are held.
    pub(super) fn record(&mut self, failed: bool, key: KeyTag, size: u32) {
        let evicted = self.len >= size && (self.bits >> (size - 1)) & 1 == 1;
        self.bits = ((self.bits << 1) | u128::from(failed)) & mask(size);
        self.len = (self.len + 1).min(size);
        self.failures = self.failures.saturating_sub(u32::from(evicted)) + u32::from(failed);
        let size = (size as usize).clamp(1, RING);
        if let Some(slot) = self.keys.get_mut(self.head % size) {
            *slot = key;
        }
        self.head = (self.head % size) + 1;
        self.note_streak(failed, key);
    }

    /// Updates only the consecutive-failure run (half-open probes do not enter the window).
    pub(super) fn note_streak(&mut self, failed: bool, key: KeyTag) {
        if failed {
            self.consecutive = self.consecutive.saturating_add(1);
            self.streak_keys.insert(key);
        } else {
            self.consecutive = 0;
            self.streak_keys.clear();
        }
    }

    pub(super) fn len(&self) -> u32 {
        self.len
    }

    pub(super) fn failures(&self) -> u32 {
        self.failures
    }

    pub(super) fn consecutive(&self) -> u32 {
        self.consecutive
    }

    /// Distinct keys in the current run of consecutive failures.
    pub(super) fn streak_keys(&self) -> u32 {
        self.streak_keys.len()
    }

    fn held(&self) -> &[KeyTag] {
        self.keys.get(..self.len as usize).unwrap_or(&[])
    }

    /// How many of the window's calls `key` made.
    pub(super) fn calls_from(&self, key: KeyTag) -> u32 {
        self.held().iter().map(|k| u32::from(*k == key)).sum()
    }

    /// Distinct keys among the window's failures, counted up to `enough`.
    pub(super) fn failing_keys(&self, enough: u32) -> u32 {
        let held = self.held();
        let n = held.len();
        let mut seen = KeySet::default();
        for i in 0..n {
            if seen.len() >= enough {
                break;
            }
            // The i-th most recent call sits just before `head`, wrapping at `n` (the ring's
            // size once full; before that `head == len`).
            if (self.bits >> i) & 1 == 1 {
                if let Some(k) = held.get((self.head + n - 1 - i) % n) {
                    seen.insert(*k);
                }
            }
        }
        seen.len()
    }

    /// Failure rate over the window (0 when empty).
    pub(super) fn rate(&self) -> f64 {
        if self.len == 0 {
            0.0
        } else {
            f64::from(self.failures) / f64::from(self.len)
        }
    }
}

fn mask(size: u32) -> u128 {
    if size >= 128 {
        u128::MAX
    } else {
        (1u128 << size) - 1
    }
}
