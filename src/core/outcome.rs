//! What happened to one upstream call, in the vocabulary the breaker, the fallback policy and
//! the metrics share.
//!
//! Why a dedicated type instead of "status code or error": the seed counted every non-200 as a
//! failure, so a user's malformed query (400) could open the breaker for everybody. We follow
//! the split Resilience4j (`recordExceptions` / `ignoreExceptions`) and Envoy outlier detection
//! (`consecutive_5xx`, `consecutive_gateway_failure`, with 4xx *not* counted) agree on: the
//! upstream's own failures count (5xx, connection errors, timeouts), the caller's mistakes do
//! not (4xx), except the two 4xx codes that really describe the upstream's state — 429 (it is
//! overloaded) and 408 (it was too slow to read our request). Slow successes count as failures
//! too, like Resilience4j's `slowCallDurationThreshold`, because a backend answering in 40 s is
//! as useless to a chat user as one that errors. A stream cut after the first byte gets its own
//! kind (`TruncatedStream`) so it is never passed off as a success (docs/architecture.md#upstreams-and-the-front-door).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of result one upstream call produced.
///
/// Serde shape (externally tagged, snake_case): unit kinds are plain strings (`"success"`,
/// `"rate_limited"`, `"first_byte_timeout"`, …) and the two kinds carrying a status code are
/// one-key objects (`{"http_server_error":503}`, `{"client_error":404}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// 2xx/3xx within the slow-call bound.
    Success,
    /// 5xx (or a status outside 100..=599, which no healthy upstream sends).
    HttpServerError(u16),
    /// 429: the upstream is shedding load.
    RateLimited,
    /// 408: the upstream timed out reading the request.
    RequestTimeout,
    /// Any other 4xx: the request's fault, not the upstream's. Not a failure.
    ClientError(u16),
    /// Connection refused/reset, DNS, TLS: no HTTP response at all.
    NetworkError,
    /// No response headers/first byte within the time-to-first-byte budget.
    FirstByteTimeout,
    /// The body did not complete within the total budget.
    TotalTimeout,
    /// A successful response that took longer than the slow-call bound.
    SlowCall,
    /// A stream that started (first byte reached the client) and was then cut.
    TruncatedStream,
}

impl OutcomeKind {
    /// Whether the breaker and the error-rate metrics count this as the upstream failing.
    pub fn is_failure(&self) -> bool {
        !matches!(self, OutcomeKind::Success | OutcomeKind::ClientError(_))
    }

    /// Stable snake_case name (without the status code), for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::HttpServerError(_) => "http_server_error",
            OutcomeKind::RateLimited => "rate_limited",
            OutcomeKind::RequestTimeout => "request_timeout",
            OutcomeKind::ClientError(_) => "client_error",
            OutcomeKind::NetworkError => "network_error",
            OutcomeKind::FirstByteTimeout => "first_byte_timeout",
            OutcomeKind::TotalTimeout => "total_timeout",
            OutcomeKind::SlowCall => "slow_call",
            OutcomeKind::TruncatedStream => "truncated_stream",
        }
    }

    /// The HTTP status the kind carries, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            OutcomeKind::HttpServerError(s) | OutcomeKind::ClientError(s) => Some(*s),
            OutcomeKind::RateLimited => Some(429),
            OutcomeKind::RequestTimeout => Some(408),
            _ => None,
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status() {
            Some(s)
                if matches!(
                    self,
                    OutcomeKind::HttpServerError(_) | OutcomeKind::ClientError(_)
                ) =>
            {
                write!(f, "{}:{}", self.as_str(), s)
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// Classifies an HTTP status alone (no latency): 2xx/3xx succeed, 408 and 429 fail, other 4xx
/// are client errors, 5xx and anything outside 100..=599 are server errors. 1xx cannot be a
/// final response from `fetch`, so it is treated as a broken upstream.
pub fn classify_status(status: u16) -> OutcomeKind {
    match status {
        200..=399 => OutcomeKind::Success,
        408 => OutcomeKind::RequestTimeout,
        429 => OutcomeKind::RateLimited,
        400..=499 => OutcomeKind::ClientError(status),
        _ => OutcomeKind::HttpServerError(status),
    }
}

/// Classifies a completed response: the status as [`classify_status`], then a success whose
/// latency reached `slow_call_ms` becomes [`OutcomeKind::SlowCall`]. `slow_call_ms == 0`
/// disables slow-call detection. Failures keep their own kind (a slow 503 is still a 503).
pub fn classify_response(status: u16, latency_ms: u64, slow_call_ms: u64) -> OutcomeKind {
    match classify_status(status) {
        OutcomeKind::Success if slow_call_ms > 0 && latency_ms >= slow_call_ms => {
            OutcomeKind::SlowCall
        }
        other => other,
    }
}

/// One finished upstream call: what happened and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub latency_ms: u64,
}

impl Outcome {
    pub fn new(kind: OutcomeKind, latency_ms: u64) -> Outcome {
        Outcome { kind, latency_ms }
    }

    /// A completed HTTP response, classified by [`classify_response`].
    pub fn from_response(status: u16, latency_ms: u64, slow_call_ms: u64) -> Outcome {
        Outcome::new(
            classify_response(status, latency_ms, slow_call_ms),
            latency_ms,
        )
    }

    pub fn success(latency_ms: u64) -> Outcome {
        Outcome::new(OutcomeKind::Success, latency_ms)
    }

    /// A call that produced an answer after `latency_ms`: a success, or a slow call at or above
    /// `slow_call_ms` (0 disables). The one place a slow answer is classified, so the breaker
    /// and the metrics record the same kind.
    pub fn answered(latency_ms: u64, slow_call_ms: u64) -> Outcome {
        Outcome::from_response(200, latency_ms, slow_call_ms)
    }

    pub fn is_failure(&self) -> bool {
        self.kind.is_failure()
    }
}
