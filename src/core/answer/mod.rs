//! Answer-aware routing (docs/answer-aware.md): judging what an upstream *answered*, not only
//! whether it answered.
//!
//! Why: the commonest way LightRAG fails a user is a `200` with its no-context reply (`Sorry,
//! I'm not able to provide an answer to that question.[no-context]`) or, when its own LLM is
//! down, `No relevant context found for the query.` after ~8 s of retries. Transport-level
//! fallback never sees either. This module holds the pure parts of the answer-aware features;
//! the exchange ([`crate::core::exchange`]) holds an answer back and the edge reports the
//! verdict these give:
//!
//! - [`detect`]: the no-context detector (empty answer, `llm_generated: false`, the
//!   `[no-context]` marker, LightRAG's canned texts, operator patterns) for complete answers and
//!   for a stream's head, with the bounded hold-back rule for streams.
//! - [`watch`]: the windowed no-context rate over distinct callers that lets the breaker count
//!   no-context replies as failures when an outage hides behind them.
//! - [`shadow`]: dark-launch shadow calls — who gets one, the per-isolate per-minute cap.
//! - [`cache`]: the opt-in response cache's key (per upstream, normalised query, query mode).

pub mod cache;
pub mod detect;
pub mod shadow;
pub mod watch;

pub use detect::{AnswerHead, Judgement, NoContextCause, NoContextDetector};
