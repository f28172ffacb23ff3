//! Fallback policy and the one deadline shared by the primary attempt and its fallback.
//!
//! Why a budget and not "retry with a fresh timeout": with a fresh timeout per attempt a
//! request could take twice `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS` before the user sees an
//! error, which is exactly what tower's retry *budget* and Envoy's route-level `timeout` (which
//! spans all retries, unlike `per_try_timeout`) exist to prevent. So a request gets one
//! [`Deadline`]; each attempt gets a time-to-first-byte and a total timeout carved out of what
//! is left ([`FallbackPolicy::timeouts`]); a fallback happens only if at least `min_budget_ms` remains,
//! because a fallback that cannot finish only adds load to the healthy upstream.
//!
//! Why "only before the first byte": once bytes reached the client we cannot take them back,
//! so a stream cut later is reported as truncated (docs/architecture.md#upstreams-and-the-front-door), never silently replaced by a
//! second answer spliced onto the first.
//!
//! The timeout split: `T = LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS` is the whole request's budget.
//! The primary attempt's time-to-first-byte budget is `ttfb_share · T` (default one half), so
//! an upstream that never answers still leaves the fallback half the budget; its total
//! budget is everything remaining. A fallback attempt gets the remaining budget for both.

use crate::core::model::Upstream;
use crate::core::outcome::OutcomeKind;
use crate::core::policy::{check_min, Bounds, PolicyError};
use serde::{Deserialize, Serialize};

/// The seed's `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS` default.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// One request's time budget across every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub start_ms: u64,
    pub total_ms: u64,
}

impl Deadline {
    pub fn new(start_ms: u64, total_ms: u64) -> Deadline {
        Deadline { start_ms, total_ms }
    }

    /// `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS` as a deadline starting at `start_ms`. Non-finite
    /// or non-positive values fall back to the 30 s default.
    pub fn from_timeout_seconds(start_ms: u64, seconds: f64) -> Deadline {
        let ms = if seconds.is_finite() && seconds > 0.0 {
            (seconds * 1000.0).min(u64::MAX as f64 / 2.0) as u64
        } else {
            DEFAULT_TIMEOUT_MS
        };
        Deadline::new(start_ms, ms.max(1))
    }

    /// Epoch ms at which the budget is spent.
    pub fn deadline_ms(&self) -> u64 {
        self.start_ms.saturating_add(self.total_ms)
    }

    pub fn remaining(&self, now_ms: u64) -> u64 {
        self.deadline_ms().saturating_sub(now_ms)
    }
}

/// Timeouts for one attempt, relative to its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptTimeouts {
    /// Response headers / first byte must arrive within this.
    pub ttfb_ms: u64,
    /// The whole body must arrive within this.
    pub total_ms: u64,
}

/// Share of the whole budget the primary may wait for its first byte.
pub const TTFB_SHARE: Bounds = Bounds::open_closed(0.0, 1.0);

/// Fallback configuration (plain data); [`FallbackPolicy::try_new`] validates it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FallbackSettings {
    /// `LIGHTRAG_FALLBACK_TO_PERPLEXITY` (seed default true).
    pub lightrag_to_perplexity: bool,
    /// `LIGHTRAG_PERPLEXITY_FALLBACK_TO_LIGHTRAG`: Perplexity failures may fall back to
    /// LightRAG (default false: LightRAG is the experiment, so it only backs Perplexity up when
    /// an operator says so).
    pub perplexity_to_lightrag: bool,
    /// Below this much remaining budget a fallback is pointless, ≥ 1.
    pub min_budget_ms: u64,
    /// [`TTFB_SHARE`].
    pub ttfb_share: f64,
}

impl FallbackSettings {
    pub const DEFAULT: FallbackSettings = FallbackSettings {
        lightrag_to_perplexity: true,
        perplexity_to_lightrag: false,
        min_budget_ms: 2_000,
        ttfb_share: 0.5,
    };
}

impl Default for FallbackSettings {
    fn default() -> Self {
        FallbackSettings::DEFAULT
    }
}

/// Validated fallback settings; only [`FallbackPolicy::try_new`] (or `Default`) builds one.
/// Serializes as its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct FallbackPolicy {
    s: FallbackSettings,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        FallbackPolicy {
            s: FallbackSettings::DEFAULT,
        }
    }
}

/// Which attempt of a request is about to start (serde: `"primary"`, `"fallback"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// The decision's upstream: its first byte may take only `ttfb_share` of the budget.
    Primary,
    /// The other upstream, after the primary failed: it gets everything that is left.
    Fallback,
}

/// A failed attempt, as [`FallbackPolicy::plan`] needs to see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackCase {
    /// The upstream that failed.
    pub primary: Upstream,
    pub kind: OutcomeKind,
    /// Bytes of its answer already reached the client.
    pub first_byte_sent: bool,
    /// The other upstream's breaker admits a request (e.g. [`crate::core::breaker::Breaker::admit`]
    /// of LightRAG's breaker for a Perplexity failure).
    pub other_admits: bool,
    /// [`Deadline::remaining`] now.
    pub remaining_ms: u64,
}

impl FallbackPolicy {
    pub fn try_new(s: FallbackSettings) -> Result<FallbackPolicy, PolicyError> {
        check_min("min_budget_ms", s.min_budget_ms, 1)?;
        TTFB_SHARE.check("ttfb_share", s.ttfb_share)?;
        Ok(FallbackPolicy { s })
    }

    pub fn settings(&self) -> &FallbackSettings {
        &self.s
    }

    /// Whether falling back from `primary` to the other upstream is configured.
    pub fn allows(&self, primary: Upstream) -> bool {
        match primary {
            Upstream::Lightrag => self.s.lightrag_to_perplexity,
            Upstream::Perplexity => self.s.perplexity_to_lightrag,
        }
    }

    /// Timeouts for an attempt starting at `now_ms` (see the module docs for the split).
    pub fn timeouts(&self, deadline: &Deadline, now_ms: u64, attempt: Attempt) -> AttemptTimeouts {
        let remaining = deadline.remaining(now_ms);
        let ttfb = match attempt {
            Attempt::Fallback => remaining,
            Attempt::Primary => {
                let share = (deadline.total_ms as f64 * self.s.ttfb_share) as u64;
                share.max(1).min(remaining)
            }
        };
        AttemptTimeouts {
            ttfb_ms: ttfb,
            total_ms: remaining,
        }
    }

    /// Decides whether a failed attempt falls back to the other upstream. Checks run in the
    /// order of [`NoFallbackReason`]'s variants.
    pub fn plan(&self, case: &FallbackCase) -> FallbackDecision {
        let reason = if case.kind.is_request_caused() {
            Some(NoFallbackReason::ClientError)
        } else if !is_fallback_kind(&case.kind) {
            Some(NoFallbackReason::NotAFailure)
        } else if case.first_byte_sent {
            Some(NoFallbackReason::FirstByteSent)
        } else if !self.allows(case.primary) {
            Some(NoFallbackReason::Disabled)
        } else if !case.other_admits {
            Some(NoFallbackReason::OtherUnhealthy)
        } else if case.remaining_ms < self.s.min_budget_ms {
            Some(NoFallbackReason::BudgetExhausted)
        } else {
            None
        };
        match reason {
            Some(reason) => FallbackDecision::NoFallback { reason },
            None => FallbackDecision::Fallback {
                to: case.primary.other(),
                budget_ms: case.remaining_ms,
            },
        }
    }
}

/// Why no fallback happens (serde snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoFallbackReason {
    /// The primary succeeded (or answered slowly: an answer is still an answer).
    NotAFailure,
    /// The request itself was refused (a 400/404/413/422, a context-length error): the other
    /// upstream would most likely refuse it too, and the upstream is not to blame.
    ClientError,
    /// Bytes already reached the client.
    FirstByteSent,
    /// Fallback from this upstream is not configured.
    Disabled,
    /// The other upstream's breaker is not admitting.
    OtherUnhealthy,
    /// Less than `min_budget_ms` remains.
    BudgetExhausted,
}

/// The fallback decision (serde: `{"fallback":{"to":"perplexity","budget_ms":14000}}` or
/// `{"no_fallback":{"reason":"first_byte_sent"}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackDecision {
    Fallback { to: Upstream, budget_ms: u64 },
    NoFallback { reason: NoFallbackReason },
}

/// Whether an outcome of this kind may fall back at all (before the first byte): every
/// failure kind except a slow success (an answer exists) and client 4xx.
pub fn is_fallback_kind(kind: &OutcomeKind) -> bool {
    kind.is_failure() && !matches!(kind, OutcomeKind::SlowCall)
}
