//! The opt-in response cache's key (`LIGHTRAG_RESPONSE_CACHE_SECONDS`, default 0 = off).
//!
//! Why keyed by upstream: the previous service cached answers by query alone, so a LightRAG
//! answer could be served to a Perplexity-cohort user and the other way round — which both
//! breaks the A/B comparison and hands users an answer from the upstream they were not routed
//! to. Here the key names the upstream the request was routed to (its cohort's upstream), the
//! normalised question and the query mode (LightRAG's `mode`; Perplexity's model), so a lookup
//! can only ever find an answer of the same upstream asked the same way.
//!
//! What is cached, and when (the edge's side, docs/answer-aware.md#response-cache): complete
//! (non-streamed) single-question requests only — a conversation's answer depends on its
//! earlier turns, so requests with history are neither looked up nor stored; only answers
//! judged to answer (never a no-context reply, never an error). A hit is answered as such
//! (`X-Route-Cache: hit`), counted apart, and never recorded in the breaker, the metric windows
//! or the experiment: it says nothing new about the upstream.
//!
//! The key is a URL (the Workers Cache API keys on a `Request`): the normalised question goes
//! in as percent-encoded text, not a hash, so two questions can never collide; a question
//! whose key would exceed [`MAX_KEY_BYTES`] is not cached.

use crate::core::model::Upstream;
use serde::Serialize;

/// What the cache did for one upstream's key space, in this isolate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheCounts {
    /// Answers served from the cache.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Answers stored.
    pub stored: u64,
}

/// Origin of the cache keys: never fetched, only a namespace (`.invalid` is reserved).
pub const KEY_ORIGIN: &str = "https://response-cache.cmo-router.invalid";

/// Longest key built; longer questions are not cached.
pub const MAX_KEY_BYTES: usize = 8 * 1024;

/// `LIGHTRAG_RESPONSE_CACHE_SECONDS`'s largest value (a day).
pub const MAX_TTL_SECONDS: u64 = 86_400;

/// The question as the cache compares it: trimmed, lower-cased, runs of whitespace made one
/// space, trailing `?`, `!`, `.` and spaces dropped.
pub fn normalise_query(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for w in q.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    let kept = out
        .trim_end_matches(|c: char| c == '?' || c == '!' || c == '.' || c.is_whitespace())
        .len();
    out.truncate(kept);
    out
}

fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
            }
        }
    }
}

/// The cache key for `query` asked of `upstream` in `mode`; `None` when the question is blank
/// or the key would be longer than [`MAX_KEY_BYTES`].
pub fn cache_key(upstream: Upstream, mode: &str, query: &str) -> Option<String> {
    let q = normalise_query(query);
    if q.is_empty() {
        return None;
    }
    let mut key = format!("{KEY_ORIGIN}/v1/{}/", upstream.as_str());
    encode(mode, &mut key);
    key.push_str("?q=");
    encode(&q, &mut key);
    (key.len() <= MAX_KEY_BYTES).then_some(key)
}
