//! What an exchange asks the edge to do next. Every variant is an instruction with the data it
//! needs; deadlines are absolute epoch milliseconds, for the edge to race against.

use crate::core::fallback::{Attempt, NoFallbackReason};
use crate::core::model::Upstream;
use crate::core::outcome::OutcomeKind;
use serde::Serialize;

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Ask `upstream`'s breaker for a permit and report what it said with
    /// [`super::Exchange::on_permit`]. Drawn only once the exchange has decided to call, so a
    /// fallback that is then not made never holds a half-open probe permit.
    Acquire { upstream: Upstream },
    /// Send the request; report its first byte ([`super::Exchange::on_first_byte`], streams)
    /// or how it ended ([`super::Exchange::on_result`]).
    Call(Call),
    /// Hold `upstream`'s answer back and judge it by `until_ms`
    /// ([`super::Exchange::on_answer_head`]): a complete answer is already whole (`until_ms` is
    /// now); a stream keeps being read until the check can decide or `until_ms` passes.
    Inspect { upstream: Upstream, until_ms: u64 },
    /// Stream: send the response head and what arrived so far to the client; from now on the
    /// answer cannot be taken back. Then as [`Step::Forward`].
    Commit(Commit),
    /// Stream: keep piping; report chunks ([`super::Exchange::on_chunk`]), the end
    /// ([`super::Exchange::on_stream_end`]), or [`super::Exchange::on_timer`] when
    /// `wake_at_ms` passes first.
    Forward { wake_at_ms: u64 },
    /// Complete: answer the client with this upstream's answer.
    Respond(Served),
    /// Stream: it ended well; send the final frame.
    Finish,
    /// Stream: it ended badly after the first byte; abort the upstream, mark the answer
    /// incomplete for the client.
    Cut(Cut),
    /// Nothing reached the client and nothing will: answer with this error.
    Fail(Failed),
    /// The client is gone: abort the upstream and stop.
    Abort,
    /// The event did not fit the exchange's phase and changed nothing: carry on with the last
    /// step.
    Wait,
    /// The exchange is over.
    Done,
}

/// One subrequest to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Call {
    pub upstream: Upstream,
    pub attempt: Attempt,
    /// The first byte — response headers for a complete answer, the first answer text for a
    /// stream — must arrive by then, else it is [`super::Fault::NoFirstByte`].
    pub first_byte_by_ms: u64,
    /// A complete answer's body must be in by then, else [`super::Fault::BodyTimeout`]. (A
    /// stream, once committed, is bounded by the stream limits instead.)
    pub complete_by_ms: u64,
}

/// Who serves the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Served {
    pub upstream: Upstream,
    /// Set when a fallback serves it.
    pub fallback: Option<Fallback>,
}

/// A fallback that happened: from which upstream, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fallback {
    pub from: Upstream,
    pub cause: FallbackCause,
}

/// Why the first upstream did not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackCause {
    /// It failed (an upstream failure, never a request-caused one).
    Failed(OutcomeKind),
    /// The router would not send the request there (e.g. a query too short for LightRAG).
    NotSent,
    /// Its answer did not answer ([`super::Verdict::NoAnswer`]).
    NoAnswer,
}

/// A stream committed to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Commit {
    pub served: Served,
    /// Report [`super::Exchange::on_timer`] if nothing arrives by then.
    pub wake_at_ms: u64,
}

/// A committed stream that did not end well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cut {
    pub upstream: Upstream,
    pub cause: CutCause,
}

/// Why a committed stream was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CutCause {
    /// Silent for longer than the idle timeout.
    Idle,
    /// Longer than the maximum stream duration.
    TooLong,
    /// The body broke off.
    Broken,
    /// The upstream reported an error inside the stream.
    Reported,
    /// The body ended without the upstream's end marker.
    Unfinished,
}

impl CutCause {
    pub fn as_str(self) -> &'static str {
        match self {
            CutCause::Idle => "idle_timeout",
            CutCause::TooLong => "max_duration",
            CutCause::Broken => "broken",
            CutCause::Reported => "upstream_error",
            CutCause::Unfinished => "unfinished",
        }
    }
}

/// Why nothing could be served, and what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub status: u16,
    pub code: FailCode,
    /// Every attempt, in order, with how it ended.
    pub attempts: Vec<Attempted>,
    /// Why the last failure did not fall back, when one could have been considered.
    pub no_fallback: Option<NoFallbackReason>,
}

/// One attempt of a failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Attempted {
    pub upstream: Upstream,
    pub kind: OutcomeKind,
}

/// The error code the client sees, chosen by the last attempt's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailCode {
    /// 502: the upstreams failed.
    UpstreamFailed,
    /// 504: they did not answer in time.
    UpstreamTimeout,
    /// 422: the upstream refused the request for what it asked, or the router would not send
    /// it.
    RequestRejected,
    /// 413: the request is too large for the upstream (its 413, or a context-length error).
    RequestTooLarge,
}

impl FailCode {
    /// The code for a failure of this kind.
    pub fn for_kind(kind: OutcomeKind) -> FailCode {
        match kind {
            OutcomeKind::FirstByteTimeout | OutcomeKind::TotalTimeout => FailCode::UpstreamTimeout,
            OutcomeKind::ClientError(413) | OutcomeKind::ContextLength => FailCode::RequestTooLarge,
            k if k.is_request_caused() => FailCode::RequestRejected,
            _ => FailCode::UpstreamFailed,
        }
    }

    pub fn status(self) -> u16 {
        match self {
            FailCode::UpstreamFailed => 502,
            FailCode::UpstreamTimeout => 504,
            FailCode::RequestRejected => 422,
            FailCode::RequestTooLarge => 413,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailCode::UpstreamFailed => "upstream_failed",
            FailCode::UpstreamTimeout => "upstream_timeout",
            FailCode::RequestRejected => "request_rejected",
            FailCode::RequestTooLarge => "request_too_large",
        }
    }
}
