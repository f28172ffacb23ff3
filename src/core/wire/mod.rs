//! Wire formats: every byte the router reads from or writes to the network, as pure functions.
//!
//! Why a separate layer: the Worker (`edge`) should only move bytes and call these functions,
//! so that everything that can be wrong about a format (a chunk split mid-event, a UTF-8
//! sequence cut in half, a field of the wrong type, an upstream error hidden in a 200 body)
//! is decided here and tested natively with `cargo test`, with no runtime and no network.
//!
//! - [`sse`] / [`ndjson`]: incremental stream decoders that give the same result for any
//!   split of the byte stream into chunks.
//! - [`lightrag`] / [`perplexity`]: the two upstreams' request bodies and responses (docs/architecture.md#upstreams-and-the-front-door),
//!   normalised into [`UpstreamAnswer`] and [`StreamItem`].
//!   [`perplexity_reply`] and [`perplexity_event`] read the usual answer and streamed event in one
//!   pass, leaving anything unusual to the general readers.
//! - [`conversation`]: a chat's earlier turns and system prompt for LightRAG, within its limits.
//! - [`perplexity_query`]: `POST /query`'s Perplexity request as the previous service built it,
//!   and its confidence scores read out of the answer.
//! - [`openai`] / [`seed`]: the router's front door (OpenAI chat completions, the seed's
//!   `POST /query`), parsed with errors that name the offending field (docs/architecture.md#bad-input-and-failure).
//! - [`ofrep`]: the OpenFeature Remote Evaluation Protocol for flag `lightrag-routing`.
//! - [`error`]: the one JSON error body every 4xx/5xx of the router uses.
//!
//! Nothing here panics, reads a clock or performs I/O; errors are values ([`WireError`]).

pub mod answer;
pub mod conversation;
pub mod error;
pub(crate) mod json_out;
pub mod lightrag;
pub mod ndjson;
pub mod ofrep;
pub mod openai;
pub mod perplexity;
pub mod perplexity_event;
pub mod perplexity_query;
pub mod perplexity_reply;
mod perplexity_scan;
pub mod seed;
pub mod sse;

pub use answer::{Citation, StreamAccumulator, StreamItem, UpstreamAnswer, WireError};
