//! How many samples one stickiness key may add to an isolate's metric windows.
//!
//! Why: the quality gate and the A/B comparison read the metric windows, so a client that
//! invents an id in the LightRAG cohort and asks questions LightRAG answers badly could close
//! the gate for everybody, or tilt the experiment, from one id. Each key's contribution is
//! capped per period (`LIGHTRAG_METRICS_MAX_SAMPLES_PER_KEY` per hour, the windows' span):
//! its requests are still answered, but samples past the cap are not counted. Ids are cheap, so
//! this only raises the bar (the real gate is client authentication); a closed gate now needs
//! at least `min_samples / cap` distinct keys.
//!
//! The count is per isolate (keys are keyed tags that never leave it), in fixed periods, with
//! a bound on the keys tracked: past [`MAX_TRACKED_KEYS`] distinct keys in one period, new keys
//! are admitted uncounted (`untracked`), so memory stays bounded under any traffic.

use crate::core::keytag::KeyTag;
use serde::Serialize;
use std::collections::BTreeMap;

/// The period of the per-key count: one hour, the metric windows' span.
pub const QUOTA_PERIOD_MS: u64 = 3_600_000;
/// Most distinct keys counted in one period (≈ 1 MB at most).
pub const MAX_TRACKED_KEYS: usize = 50_000;

/// What the status API says about the quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QuotaStatus {
    /// Samples not counted because their key had reached the cap.
    pub capped_samples: u64,
    /// Samples counted without a per-key check (the period's key table was full).
    pub untracked_samples: u64,
    /// Keys counted in the current period.
    pub keys_this_period: u64,
}

/// Per-key sample counts in the current period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyQuota {
    period: u64,
    counts: BTreeMap<KeyTag, u64>,
    capped: u64,
    untracked: u64,
}

impl KeyQuota {
    /// Whether one more sample from `key` may be counted at `now_ms` under `limit` per period
    /// (and counts it).
    pub fn admit(&mut self, key: KeyTag, limit: u64, now_ms: u64) -> bool {
        let period = now_ms / QUOTA_PERIOD_MS;
        if period != self.period {
            self.period = period;
            self.counts.clear();
        }
        if let Some(c) = self.counts.get_mut(&key) {
            if *c >= limit {
                self.capped = self.capped.saturating_add(1);
                return false;
            }
            *c += 1;
            return true;
        }
        if self.counts.len() >= MAX_TRACKED_KEYS {
            self.untracked = self.untracked.saturating_add(1);
            return true;
        }
        self.counts.insert(key, 1);
        true
    }

    pub fn status(&self) -> QuotaStatus {
        QuotaStatus {
            capped_samples: self.capped,
            untracked_samples: self.untracked,
            keys_this_period: self.counts.len() as u64,
        }
    }
}
