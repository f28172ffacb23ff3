//! The breaker's policy: its settings, their accepted ranges and their defaults, validated once.
//!
//! Why the bounds are constants: the configuration loader parses the
//! `LIGHTRAG_CIRCUIT_BREAKER_*` variables against these same bounds, so a value the loader
//! accepts is one [`BreakerPolicy::try_new`] accepts, and a value it refuses is reported against
//! the variable that carried it — never silently swapped for a default policy.

use crate::core::policy::{check_min, Bounds, PolicyError};
use serde::{Deserialize, Serialize};

/// Largest supported `window_size`: the window is a 128-bit shift register, so recording is a
/// shift and a popcount, with no allocation.
pub const MAX_WINDOW_SIZE: u32 = 128;

/// Consecutive failures that trip the breaker.
pub const FAILURE_THRESHOLD: Bounds = Bounds::whole(1, 1000);
/// Failure rate over the window that trips it.
pub const FAILURE_RATE_THRESHOLD: Bounds = Bounds::open_closed(0.0, 1.0);
/// Calls in the sliding window.
pub const WINDOW_SIZE: Bounds = Bounds::whole(1, MAX_WINDOW_SIZE as u64);
/// Calls in the window before the rate may trip it (and at most `window_size`).
pub const MINIMUM_CALLS: Bounds = Bounds::whole(1, MAX_WINDOW_SIZE as u64);
/// A success at least this slow (ms) is classified as a slow call; 0 disables.
pub const SLOW_CALL_MS: Bounds = Bounds::whole(0, 600_000);
/// First open period, in seconds (the variable's unit; the policy keeps milliseconds).
pub const RECOVERY_TIMEOUT_S: Bounds = Bounds::open_closed(0.0, 86_400.0);
/// Cap on the grown open period, in seconds (and at least the recovery timeout).
pub const MAX_RECOVERY_TIMEOUT_S: Bounds = Bounds::open_closed(0.0, 8.0 * 86_400.0);
/// Growth of the open period per consecutive trip.
pub const BACKOFF_MULTIPLIER: Bounds = Bounds::closed(1.0, 16.0);
/// Probability that a half-open request is admitted as a probe.
pub const HALF_OPEN_PROBE_SHARE: Bounds = Bounds::open_closed(0.0, 1.0);
/// Probe successes that close it.
pub const HALF_OPEN_SUCCESSES: Bounds = Bounds::whole(1, 1000);
/// ± fraction applied to every open period.
pub const JITTER: Bounds = Bounds::closed(0.0, 0.5);
/// Largest `min_distinct_keys` (the run of failures remembers this many distinct keys).
pub const MAX_DISTINCT_KEYS: u32 = 32;
/// Distinct stickiness keys whose failures a trip needs (the rate rule asks for at most
/// `window_size` of them, all a window can hold).
pub const MIN_DISTINCT_KEYS: Bounds = Bounds::whole(1, MAX_DISTINCT_KEYS as u64);
/// Outcomes one key may hold in the count window.
pub const MAX_CALLS_PER_KEY: Bounds = Bounds::whole(1, MAX_WINDOW_SIZE as u64);

/// The breaker's settings as configured (plain data). Turn them into a [`BreakerPolicy`] with
/// [`BreakerPolicy::try_new`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerSettings {
    /// `LIGHTRAG_ENABLE_CIRCUIT_BREAKER`. Disabled: always `Allowed`, never trips.
    pub enabled: bool,
    /// `LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD`, [`FAILURE_THRESHOLD`].
    pub failure_threshold: u32,
    /// [`FAILURE_RATE_THRESHOLD`].
    pub failure_rate_threshold: f64,
    /// [`WINDOW_SIZE`].
    pub window_size: u32,
    /// [`MINIMUM_CALLS`], at most `window_size`.
    pub minimum_calls: u32,
    /// [`SLOW_CALL_MS`]; [`crate::core::exchange`] classifies a success whose first byte came
    /// this late as [`crate::core::outcome::OutcomeKind::SlowCall`] before the breaker sees it.
    pub slow_call_ms: u64,
    /// First open time (`LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT`, in ms).
    pub recovery_timeout_ms: u64,
    /// Cap on the grown open time, ≥ recovery_timeout_ms.
    pub max_recovery_timeout_ms: u64,
    /// [`BACKOFF_MULTIPLIER`].
    pub backoff_multiplier: f64,
    /// Closed this long resets the growth, ≥ 1.
    pub backoff_reset_ms: u64,
    /// [`HALF_OPEN_PROBE_SHARE`].
    pub half_open_probe_share: f64,
    /// Probes in flight at once in one isolate, ≥ 1.
    pub half_open_max_probes: u32,
    /// [`HALF_OPEN_SUCCESSES`].
    pub half_open_successes_to_close: u32,
    /// No probe admitted or completed for this long → re-admit, ≥ 1.
    pub half_open_max_wait_ms: u64,
    /// [`JITTER`].
    pub jitter: f64,
    /// [`MIN_DISTINCT_KEYS`]: a trip (consecutive, rate, or a failed half-open probe) needs
    /// failures from this many distinct stickiness keys, so one client inventing requests
    /// cannot open the breaker for everybody.
    pub min_distinct_keys: u32,
    /// [`MAX_CALLS_PER_KEY`]: outcomes one key may hold in the count window; more are counted
    /// in the totals (`capped_calls`) but not in the window or the run of failures.
    pub max_calls_per_key: u32,
}

impl BreakerSettings {
    /// The documented defaults (the seed's threshold 3 and recovery 300 s).
    pub const DEFAULT: BreakerSettings = BreakerSettings {
        enabled: true,
        failure_threshold: 3,
        failure_rate_threshold: 0.5,
        window_size: 20,
        minimum_calls: 10,
        slow_call_ms: 10_000,
        recovery_timeout_ms: 300_000,
        max_recovery_timeout_ms: 2_400_000,
        backoff_multiplier: 2.0,
        backoff_reset_ms: 2_400_000,
        half_open_probe_share: 0.1,
        half_open_max_probes: 3,
        half_open_successes_to_close: 3,
        half_open_max_wait_ms: 60_000,
        jitter: 0.1,
        min_distinct_keys: 3,
        max_calls_per_key: 5,
    };
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings::DEFAULT
    }
}

/// Validated breaker settings. Only [`BreakerPolicy::try_new`] (or `Default`) builds one, so
/// a breaker can never run on an out-of-range policy. Serializes as its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct BreakerPolicy {
    s: BreakerSettings,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            s: BreakerSettings::DEFAULT,
        }
    }
}

impl BreakerPolicy {
    pub fn try_new(s: BreakerSettings) -> Result<BreakerPolicy, PolicyError> {
        let bounded: [(&Bounds, &'static str, f64); 13] = [
            (
                &FAILURE_THRESHOLD,
                "failure_threshold",
                f64::from(s.failure_threshold),
            ),
            (
                &FAILURE_RATE_THRESHOLD,
                "failure_rate_threshold",
                s.failure_rate_threshold,
            ),
            (&WINDOW_SIZE, "window_size", f64::from(s.window_size)),
            (&MINIMUM_CALLS, "minimum_calls", f64::from(s.minimum_calls)),
            (&SLOW_CALL_MS, "slow_call_ms", s.slow_call_ms as f64),
            (
                &RECOVERY_TIMEOUT_S,
                "recovery_timeout_ms",
                s.recovery_timeout_ms as f64 / 1000.0,
            ),
            (
                &MAX_RECOVERY_TIMEOUT_S,
                "max_recovery_timeout_ms",
                s.max_recovery_timeout_ms as f64 / 1000.0,
            ),
            (
                &BACKOFF_MULTIPLIER,
                "backoff_multiplier",
                s.backoff_multiplier,
            ),
            (
                &HALF_OPEN_PROBE_SHARE,
                "half_open_probe_share",
                s.half_open_probe_share,
            ),
            (
                &HALF_OPEN_SUCCESSES,
                "half_open_successes_to_close",
                f64::from(s.half_open_successes_to_close),
            ),
            (&JITTER, "jitter", s.jitter),
            (
                &MIN_DISTINCT_KEYS,
                "min_distinct_keys",
                f64::from(s.min_distinct_keys),
            ),
            (
                &MAX_CALLS_PER_KEY,
                "max_calls_per_key",
                f64::from(s.max_calls_per_key),
            ),
        ];
        for (bounds, field, value) in bounded {
            bounds.check(field, value)?;
        }
        if s.minimum_calls > s.window_size {
            return Err(PolicyError::new(
                "minimum_calls",
                format!(
                    "must be at most window_size ({}), got {}",
                    s.window_size, s.minimum_calls
                ),
            ));
        }
        if s.max_recovery_timeout_ms < s.recovery_timeout_ms {
            return Err(PolicyError::new(
                "max_recovery_timeout_ms",
                format!(
                    "must be at least recovery_timeout_ms ({}), got {}",
                    s.recovery_timeout_ms, s.max_recovery_timeout_ms
                ),
            ));
        }
        for (field, v) in [
            ("backoff_reset_ms", s.backoff_reset_ms),
            ("half_open_max_probes", u64::from(s.half_open_max_probes)),
            ("half_open_max_wait_ms", s.half_open_max_wait_ms),
        ] {
            check_min(field, v, 1)?;
        }
        Ok(BreakerPolicy { s })
    }

    /// A policy whose breaker is disabled (always admits, never trips).
    pub fn disabled() -> BreakerPolicy {
        BreakerPolicy {
            s: BreakerSettings {
                enabled: false,
                ..BreakerSettings::DEFAULT
            },
        }
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.s
    }

    /// The open time for the `streak`-th consecutive trip (1-based) before jitter:
    /// `recovery · multiplier^(streak-1)`, capped.
    pub fn base_open_ms(&self, streak: u32) -> u64 {
        let exp = streak.saturating_sub(1).min(64) as i32;
        let grown = self.s.recovery_timeout_ms as f64 * self.s.backoff_multiplier.powi(exp);
        let cap = self.s.max_recovery_timeout_ms as f64;
        if grown.is_finite() && grown < cap {
            grown as u64
        } else {
            self.s.max_recovery_timeout_ms
        }
    }

    /// The open time for a trip with jitter roll `roll` in [0, 1): the base scaled by
    /// `1 + jitter·(2·roll − 1)`, never above the cap and never below 1 ms.
    pub fn open_ms(&self, streak: u32, roll: f64) -> u64 {
        let base = self.base_open_ms(streak) as f64;
        let roll = if roll.is_finite() {
            roll.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jittered = base * (1.0 + self.s.jitter * (2.0 * roll - 1.0));
        (jittered as u64).clamp(1, self.s.max_recovery_timeout_ms)
    }
}
