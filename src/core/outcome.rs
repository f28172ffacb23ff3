//! What happened to one upstream call, in the vocabulary the breaker, the fallback policy and
//! the metrics share.
//!
//! Why a dedicated type instead of "status code or error": the seed counted every non-200 as a
//! failure, so a user's malformed query (400) could open the breaker for everybody. We follow
//! the split Resilience4j (`recordExceptions` / `ignoreExceptions`) and Envoy outlier detection
//! (`consecutive_5xx`, `consecutive_gateway_failure`, with 4xx *not* counted) agree on: the
//! upstream's own failures count (5xx, connection errors, timeouts), the caller's mistakes do
//! not (most 4xx), except the 4xx codes that really describe the upstream's state — 429 (it is
//! overloaded), 408 (it was too slow to read our request) and 401/403 (it refuses our key).
//! Slow successes count as failures too, like Resilience4j's `slowCallDurationThreshold`,
//! because a backend whose first byte takes 40 s is as useless to a chat user as one that
//! errors — measured to the first byte, since a long answer streamed promptly is not slow. A stream cut after the first byte gets its own
//! kind (`TruncatedStream`) so it is never passed off as a success (docs/architecture.md#upstreams-and-the-front-door).
//!
//! Three classes, decided here once ([`OutcomeKind::class`]):
//! - **success** — an answer (a slow one is a [`OutcomeKind::SlowCall`], judged on the time to
//!   the first byte, see [`crate::core::exchange`]);
//! - **upstream failure** — the upstream (or the router's credentials for it) is at fault: it
//!   counts against its breaker, is an error in the metrics and may fall back;
//! - **caused by the request** — the upstream refused *this* request for what it asked (400, 404,
//!   413, 422, a context-length error) or the router would not send it at all: never a breaker
//!   failure, never a fallback that blames the upstream, counted on its own (`rejected`) so that
//!   anonymous clients cannot move the breaker, the quality gate or the A/B error rates with
//!   requests made to fail. 401/403 and the other 4xx are *not* the request's doing — a wrong
//!   key or base URL fails every request — so they are upstream failures
//!   ([`OutcomeKind::Refused`]).

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
    /// 400, 404, 411, 413, 414, 415, 422 or 431: the upstream refused this request for what it
    /// asked. Caused by the request: not a failure.
    ClientError(u16),
    /// Any other 4xx (401, 403, 405, 409, 410, …): the upstream refused the router itself (its
    /// key, its base URL). A failure.
    Refused(u16),
    /// The upstream's model could not take the request's length (a context-length error in an
    /// error body or an in-stream error). Caused by the request: not a failure.
    ContextLength,
    /// The router would not send the request to this upstream (e.g. a query LightRAG refuses as
    /// too short, checked before the subrequest). Caused by the request: not a failure.
    NotSent,
    /// The upstream answered, but not the question (a no-context reply, judged by the edge's
    /// answer check through [`crate::core::exchange::Verdict`]). Neither a success nor a failure
    /// for the breaker: it proves nothing about the upstream's health.
    NoAnswer,
    /// A no-answer counted as a failure: the upstream's no-answer rate over several distinct
    /// callers crossed `LIGHTRAG_NO_CONTEXT_BREAKER_RATE` ([`crate::core::answer::watch`]),
    /// which is how a LightRAG whose own LLM is down looks from outside (it still answers 200,
    /// with its no-context text, after ~8 s of retries). A failure: the breaker may trip.
    NoAnswerOutage,
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

/// The three classes of [`OutcomeKind`] (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An answer (including [`OutcomeKind::NoAnswer`]: something was answered).
    Answered,
    /// The upstream failed.
    Failure,
    /// The request itself was refused.
    RequestCaused,
}

impl OutcomeKind {
    /// Which class the kind is in: the one place that says it.
    pub fn class(&self) -> Class {
        match self {
            OutcomeKind::Success | OutcomeKind::NoAnswer => Class::Answered,
            OutcomeKind::ClientError(_) | OutcomeKind::ContextLength | OutcomeKind::NotSent => {
                Class::RequestCaused
            }
            OutcomeKind::HttpServerError(_)
            | OutcomeKind::RateLimited
            | OutcomeKind::RequestTimeout
            | OutcomeKind::Refused(_)
            | OutcomeKind::NetworkError
            | OutcomeKind::FirstByteTimeout
            | OutcomeKind::TotalTimeout
            | OutcomeKind::SlowCall
            | OutcomeKind::NoAnswerOutage
            | OutcomeKind::TruncatedStream => Class::Failure,
        }
    }

    /// Whether the breaker and the error-rate metrics count this as the upstream failing.
    pub fn is_failure(&self) -> bool {
        self.class() == Class::Failure
    }

    /// Whether the request itself caused it (see the module docs): never the upstream's fault.
    pub fn is_request_caused(&self) -> bool {
        self.class() == Class::RequestCaused
    }

    /// Stable snake_case name (without the status code), for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::HttpServerError(_) => "http_server_error",
            OutcomeKind::RateLimited => "rate_limited",
            OutcomeKind::RequestTimeout => "request_timeout",
            OutcomeKind::ClientError(_) => "client_error",
            OutcomeKind::Refused(_) => "refused",
            OutcomeKind::ContextLength => "context_length",
            OutcomeKind::NotSent => "not_sent",
            OutcomeKind::NoAnswer => "no_answer",
            OutcomeKind::NoAnswerOutage => "no_answer_outage",
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
            OutcomeKind::HttpServerError(s)
            | OutcomeKind::ClientError(s)
            | OutcomeKind::Refused(s) => Some(*s),
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
                    OutcomeKind::HttpServerError(_)
                        | OutcomeKind::ClientError(_)
                        | OutcomeKind::Refused(_)
                ) =>
            {
                write!(f, "{}:{}", self.as_str(), s)
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// The 4xx statuses that say the request itself is wrong (malformed, unknown, too large,
/// invalid): LightRAG's validation 422s, Perplexity's 400s, a 413 for a body over a limit.
pub const REQUEST_CAUSED_STATUSES: [u16; 8] = [400, 404, 411, 413, 414, 415, 422, 431];

/// Classifies an HTTP status alone (no latency): 2xx/3xx succeed, 408 and 429 fail, the
/// [`REQUEST_CAUSED_STATUSES`] are the request's fault, other 4xx are the upstream
/// refusing the router ([`OutcomeKind::Refused`]), 5xx and anything outside 100..=599 are
/// server errors. 1xx cannot be a final response from `fetch`, so it is treated as a broken
/// upstream.
pub fn classify_status(status: u16) -> OutcomeKind {
    match status {
        200..=399 => OutcomeKind::Success,
        408 => OutcomeKind::RequestTimeout,
        429 => OutcomeKind::RateLimited,
        s if REQUEST_CAUSED_STATUSES.contains(&s) => OutcomeKind::ClientError(s),
        400..=499 => OutcomeKind::Refused(status),
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

    /// A call that produced an answer whose first byte came `latency_ms` after the call
    /// started (response headers for a complete answer, the first answer text for a stream —
    /// never the length of the answer): a success, or a slow call at or above `slow_call_ms`
    /// (0 disables). The one place a slow answer is classified, so the breaker, the metrics and
    /// the quality scorer judge the same measure.
    pub fn answered(latency_ms: u64, slow_call_ms: u64) -> Outcome {
        Outcome::from_response(200, latency_ms, slow_call_ms)
    }

    pub fn is_failure(&self) -> bool {
        self.kind.is_failure()
    }
}
