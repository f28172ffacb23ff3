//! What the edge reports to an exchange: the facts it observed, never their meaning. Turning a
//! fact into an [`OutcomeKind`] happens once, here ([`Fault::kind`]), so the breaker, the
//! fallback decision, the metrics and the client's status code cannot disagree about it.

use crate::core::model::Upstream;
use crate::core::outcome::{classify_status, OutcomeKind};
use serde::Serialize;

/// How an attempt ended before anything reached the client (reported with
/// [`super::Exchange::on_result`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// The router would not send the request to this upstream (its own check refused it, e.g.
    /// a query LightRAG rejects as too short). No subrequest was made.
    NotSent,
    /// The attempt failed; what the edge saw.
    Failed(Fault),
    /// A complete (non-streamed) answer arrived; its response headers came at `head_ms`.
    Answered { head_ms: u64 },
}

/// What went wrong with an attempt, as the edge saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// A response outside 2xx, with this status.
    Status(u16),
    /// The upstream said the request is too long for its model (in an error body, or in the
    /// stream before any text). See [`mentions_context_length`].
    ContextLength,
    /// No response at all: connection refused or reset, DNS, TLS.
    Connect,
    /// The first byte did not come by the call's `first_byte_by_ms`.
    NoFirstByte,
    /// A complete answer's body did not finish by the call's `complete_by_ms`.
    BodyTimeout,
    /// The body broke off while being read.
    BodyBroken,
    /// A 2xx whose body is not an answer: unparsable, an error report, a stream that ended or
    /// reported an error before any answer text.
    Unusable,
}

impl Fault {
    /// The outcome this fault is: the one classification.
    pub fn kind(self) -> OutcomeKind {
        match self {
            Fault::Status(s) => classify_status(s),
            Fault::ContextLength => OutcomeKind::ContextLength,
            Fault::Connect | Fault::BodyBroken => OutcomeKind::NetworkError,
            Fault::NoFirstByte => OutcomeKind::FirstByteTimeout,
            Fault::BodyTimeout => OutcomeKind::TotalTimeout,
            // The upstream answered 2xx with something that is not an answer: its fault.
            Fault::Unusable => OutcomeKind::HttpServerError(502),
        }
    }

    /// A non-2xx response: [`Fault::ContextLength`] when its body says the request was too long
    /// for the model (a provider's 400 or a server's 500 quoting its LLM's error alike),
    /// otherwise [`Fault::Status`].
    pub fn from_error_response(status: u16, body: &str) -> Fault {
        if mentions_context_length(body) {
            Fault::ContextLength
        } else {
            Fault::Status(status)
        }
    }

    /// An error reported inside a 2xx body or stream before any answer text.
    pub fn from_reported_error(message: &str) -> Fault {
        if mentions_context_length(message) {
            Fault::ContextLength
        } else {
            Fault::Unusable
        }
    }
}

/// Phrases with which LLM APIs and the servers quoting them report a prompt over the model's
/// context: OpenAI's `context_length_exceeded` ("This model's maximum context length is 8192
/// tokens…"), Anthropic's "prompt is too long", vLLM / llama.cpp's "exceeds the context
/// window" / "context size". Lower case; matched as substrings of the lower-cased text.
pub const CONTEXT_LENGTH_PHRASES: [&str; 7] = [
    "context_length_exceeded",
    "maximum context length",
    "context length exceeded",
    "context window",
    "context size",
    "prompt is too long",
    "too many tokens",
];

/// Whether an error text says the request was too long for the model.
pub fn mentions_context_length(text: &str) -> bool {
    let t = text.to_lowercase();
    CONTEXT_LENGTH_PHRASES.iter().any(|p| t.contains(p))
}

/// How a committed stream ended (reported with [`super::Exchange::on_stream_end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// The upstream said the answer is complete (a chunk with `finish_reason`, `[DONE]`).
    Done,
    /// The body ended without saying so. Complete for LightRAG, whose NDJSON has no end
    /// marker; cut for Perplexity, whose last chunk carries `finish_reason`
    /// ([`body_end_is_complete`]).
    BodyEnded,
    /// The body broke off (connection error).
    Broken,
    /// The upstream reported an error inside the stream.
    Reported,
}

/// Whether the clean end of `u`'s stream body means its answer is complete
/// (docs/architecture.md#upstreams-and-the-front-door).
pub fn body_end_is_complete(u: Upstream) -> bool {
    match u {
        Upstream::Lightrag => true,
        Upstream::Perplexity => false,
    }
}

/// The edge's judgement of an answer it held back ([`super::Step::Inspect`]), reported with
/// [`super::Exchange::on_answer_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It answers: release it.
    Answer,
    /// It does not answer the question (a no-context reply, an empty answer): fall back if the
    /// policy allows, else release it anyway — a poor answer beats an error.
    NoAnswer,
}
