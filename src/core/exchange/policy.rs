//! What an exchange runs on: the fallback policy and the request's budget, the slow-call bound,
//! the limits of a committed stream, and whether answers are inspected before they reach the
//! client.
//!
//! Why stream limits of their own: once the first byte reached the client a stream cannot fall
//! back, and its length is the length of the answer — a healthy 40-second answer is not a slow
//! upstream. So after the first byte a stream is bounded by silence between chunks
//! (`LIGHTRAG_STREAM_IDLE_TIMEOUT_SECONDS`) and by a ceiling on its whole duration
//! (`LIGHTRAG_STREAM_MAX_SECONDS`), never by what is left of the request's budget, which only
//! covers the wait for the first byte (docs/architecture.md#timeouts-and-fallback).

use crate::core::config::Config;
use crate::core::fallback::{Deadline, FallbackPolicy};
use crate::core::policy::Bounds;
use serde::Serialize;

/// `LIGHTRAG_STREAM_IDLE_TIMEOUT_SECONDS`: longest silence between two chunks of a committed
/// stream.
pub const STREAM_IDLE_SECONDS: Bounds = Bounds::open_closed(0.0, 600.0);
/// `LIGHTRAG_STREAM_MAX_SECONDS`: longest committed stream, first byte to end.
pub const STREAM_MAX_SECONDS: Bounds = Bounds::open_closed(0.0, 3600.0);

/// Default silence allowed between chunks (s).
pub const DEFAULT_STREAM_IDLE_SECONDS: f64 = 30.0;
/// Default longest stream (s).
pub const DEFAULT_STREAM_MAX_SECONDS: f64 = 300.0;

/// Bounds on a stream after its first byte reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamLimits {
    /// Silence between chunks that cuts the stream, ≥ 1.
    pub idle_ms: u64,
    /// Length of the whole stream that cuts it, ≥ 1.
    pub max_ms: u64,
}

impl StreamLimits {
    /// From the two variables, in seconds (already checked against [`STREAM_IDLE_SECONDS`] and
    /// [`STREAM_MAX_SECONDS`] by the config loader; anything else is clamped to ≥ 1 ms).
    pub fn from_seconds(idle_s: f64, max_s: f64) -> StreamLimits {
        let ms = |s: f64| {
            if s.is_finite() && s > 0.0 {
                ((s * 1000.0).round() as u64).max(1)
            } else {
                1
            }
        };
        StreamLimits {
            idle_ms: ms(idle_s),
            max_ms: ms(max_s),
        }
    }
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits::from_seconds(DEFAULT_STREAM_IDLE_SECONDS, DEFAULT_STREAM_MAX_SECONDS)
    }
}

/// Whether an answer is inspected before it is released to the client (the extension point for
/// answer-aware routing: a reply that does not answer — LightRAG's no-context reply — can then
/// still fall back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Inspect {
    /// Released at once: a stream commits at its first byte, an answer is sent as it arrives.
    #[default]
    Off,
    /// Held back: a complete answer is inspected before it is sent; a stream's first text is
    /// held for at most `hold_back_ms` (or until the edge's check decides sooner) before it
    /// commits. Each costs the client that much time to first byte, at most.
    HoldBack { hold_back_ms: u64 },
}

/// Everything an [`super::Exchange`] needs to know about the configuration. Plain data built
/// from already-validated parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExchangePolicy {
    pub fallback: FallbackPolicy,
    /// `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS` in ms: the budget up to the first byte (across
    /// the primary attempt and any fallback), and for a complete answer up to its last byte.
    pub budget_ms: u64,
    /// `LIGHTRAG_CIRCUIT_BREAKER_SLOW_CALL_MS`: a first byte this late is a slow call (0: off).
    pub slow_call_ms: u64,
    pub stream: StreamLimits,
    pub inspect: Inspect,
}

impl ExchangePolicy {
    /// The policy the configuration describes.
    pub fn from_config(c: &Config) -> ExchangePolicy {
        ExchangePolicy {
            fallback: c.fallback,
            budget_ms: Deadline::from_timeout_seconds(0, c.integration_timeout_seconds).total_ms,
            slow_call_ms: c.breaker.settings().slow_call_ms,
            stream: StreamLimits::from_seconds(c.stream_idle_timeout_seconds, c.stream_max_seconds),
            // The no-context fallback (docs/answer-aware.md): answers are judged before they
            // reach the client; a stream is held back at most this long.
            inspect: if c.no_context_fallback {
                Inspect::HoldBack {
                    hold_back_ms: c.no_context_hold_back_ms,
                }
            } else {
                Inspect::Off
            },
        }
    }
}

impl Default for ExchangePolicy {
    fn default() -> Self {
        ExchangePolicy::from_config(&Config::default())
    }
}
