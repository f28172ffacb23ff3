//! The closed breaker's memory: the last `window_size` calls as a count-based sliding window
//! (Resilience4j `COUNT_BASED`), and the current run of consecutive failures.
//!
//! Why a shift register: recording one call is a shift, a mask and two counter updates, with no
//! allocation, which keeps `record` + `admit` under the hot path's 50 ns budget. The window is at
//! most [`super::settings::MAX_WINDOW_SIZE`] calls long for that reason.

/// Bit `i` of `bits` is 1 if the `i`-th most recent call failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CountWindow {
    bits: u128,
    len: u32,
    /// Failures in `bits` (its popcount, kept incrementally).
    failures: u32,
    /// Failures since the last success (also counted while half-open).
    consecutive: u32,
}

impl CountWindow {
    /// Shifts one call in; the oldest falls out once `size` calls are held.
    pub(super) fn record(&mut self, failed: bool, size: u32) {
        let evicted = self.len >= size && (self.bits >> (size - 1)) & 1 == 1;
        self.bits = ((self.bits << 1) | u128::from(failed)) & mask(size);
        self.len = (self.len + 1).min(size);
        self.failures = self.failures.saturating_sub(u32::from(evicted)) + u32::from(failed);
        self.note_streak(failed);
    }

    /// Updates only the consecutive-failure run (half-open probes do not enter the window).
    pub(super) fn note_streak(&mut self, failed: bool) {
        self.consecutive = if failed {
            self.consecutive.saturating_add(1)
        } else {
            0
        };
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
