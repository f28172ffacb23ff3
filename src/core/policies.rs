//! Derives the resilience policies (breaker, fallback, quality gate) from the routing
//! [`Config`].
//!
//! Why a separate module: the config (DESIGN §8) and the resilience core were built as
//! independent units with their own settings types; this is the one place that maps one onto
//! the other, so the Worker, the cron controller and tests build identical policies. A mapping
//! that the resilience core rejects falls back to its defaults and says why (never a panic).

use crate::core::breaker::{BreakerPolicy, BreakerSettings};
use crate::core::config::Config;
use crate::core::fallback::FallbackSettings;
use crate::core::gate::GateSettings;

/// The breaker settings for both upstreams.
pub fn breaker_settings(c: &Config) -> BreakerSettings {
    let b = &c.breaker;
    BreakerSettings {
        enabled: b.enabled,
        failure_threshold: b.failure_threshold,
        failure_rate_threshold: b.failure_rate_threshold,
        window_size: b.window_size,
        minimum_calls: b.minimum_calls,
        slow_call_ms: b.slow_call_ms,
        recovery_timeout_ms: b.recovery_timeout_ms,
        max_recovery_timeout_ms: b.max_recovery_timeout_ms.max(b.recovery_timeout_ms),
        half_open_probe_share: b.half_open_probe_share,
        half_open_successes_to_close: b.half_open_successes_to_close,
        jitter: b.jitter.min(0.5),
        ..BreakerSettings::default()
    }
}

/// A validated breaker policy, or the default policy and the reason.
pub fn breaker_policy(c: &Config) -> (BreakerPolicy, Option<String>) {
    match BreakerPolicy::try_new(breaker_settings(c)) {
        Ok(p) => (p, None),
        Err(e) => (
            BreakerPolicy::default(),
            Some(format!("breaker settings rejected ({e}); using defaults")),
        ),
    }
}

/// Fallback settings: the seed's `LIGHTRAG_FALLBACK_TO_PERPLEXITY` and its reverse.
pub fn fallback_settings(c: &Config) -> FallbackSettings {
    FallbackSettings {
        lightrag_to_perplexity: c.fallback_to_perplexity,
        perplexity_to_lightrag: c.perplexity_fallback_to_lightrag,
        ..FallbackSettings::default()
    }
}

/// Quality gate settings.
pub fn gate_settings(c: &Config) -> GateSettings {
    GateSettings {
        enabled: c.enable_quality_metrics,
        min_quality: c.min_quality_threshold,
        min_samples: u64::from(c.quality_gate_min_samples),
        probe_share: c.quality_gate_probe_share.max(0.0001),
        ..GateSettings::default()
    }
}
