//! The no-context detector: does this reply answer the question?
//!
//! What LightRAG 1.5.7 sends when it cannot answer (tests/fixtures/lightrag/README.md):
//! `{"response": "Sorry, I'm not able to provide an answer to that question.[no-context]",
//! "references": [], "llm_generated": false}` (`PROMPTS["fail_response"]`), and, when its own LLM
//! is down, `"No relevant context found for the query."` with `llm_generated: false`. On
//! `/query/stream` each is ONE NDJSON line carrying the same three fields. An LLM-written
//! answer can also decline ("state that you do not have enough information to answer", as its
//! `rag_response` prompt instructs): operators catch those with their own patterns.
//!
//! A reply is a **no-context reply** when any of these holds ([`NoContextCause`]):
//! 1. it is empty (blank after trimming) — judged once the answer is complete;
//! 2. the upstream says nothing generated it (`llm_generated: false`);
//! 3. its head contains the marker [`NO_CONTEXT_MARKER`];
//! 4. its head contains an operator pattern (`LIGHTRAG_NO_CONTEXT_PATTERNS`, case-insensitive
//!    substrings);
//! 5. the whole reply is one of LightRAG's canned texts ([`CANNED_REPLIES`], case-insensitive,
//!    surrounding whitespace ignored).
//!
//! The **head** is the first [`HEAD_CHARS`] characters: markers and patterns are looked for
//! there only, for complete answers and streams alike, so a question is judged the same whether
//! it was asked streamed or not, and a stream's hold-back is bounded by a length.
//!
//! **Streams** ([`NoContextDetector::judge`] with `complete: false`) are judged on the text so
//! far; the answer is [`Judgement::Undecided`] while it could still turn out a no-context reply:
//! - with no operator patterns (the default), while the text is a (case-insensitive) prefix of
//!   a canned reply — so a real answer commits on its first chunk that leaves those prefixes
//!   (`"Pyruvate is"` at once, `"No, glucose…"` one chunk later), and LightRAG's one-line
//!   no-context reply is decided as soon as it arrives (`llm_generated: false`);
//! - with operator patterns, until the head is complete ([`HEAD_CHARS`] characters), since a
//!   pattern may appear anywhere in it.
//!
//! The marker is only looked for in what has arrived: LightRAG sends it only inside its canned
//! one-line reply (never streamed in pieces by its LLM, whose prompt does not know it), so a
//! stream is not held for it. The edge bounds the wait with `LIGHTRAG_NO_CONTEXT_HOLD_BACK_MS`
//! and commits an undecided stream when that passes, or judges the whole reply when it ends.

use serde::Serialize;

/// LightRAG's no-context marker (`lightrag/prompt.py` `PROMPTS["fail_response"]`).
pub const NO_CONTEXT_MARKER: &str = "[no-context]";

/// LightRAG's canned replies, each a whole reply: its `fail_response` (with the marker, as
/// 1.5.x sends it, and without, as older releases did) and what `/query` substitutes when the
/// query produced no content, e.g. its own LLM down (`lightrag/api/routers/query_routes.py`).
pub const CANNED_REPLIES: [&str; 3] = [
    "Sorry, I'm not able to provide an answer to that question.[no-context]",
    "Sorry, I'm not able to provide an answer to that question.",
    "No relevant context found for the query.",
];

/// How many leading characters of a reply markers and patterns are looked for in: enough for
/// LightRAG's canned replies (71 characters at most) and for an LLM's one- or two-sentence
/// refusal, short enough that holding a stream back for it (with operator patterns) costs a
/// fraction of a second of a streamed answer.
pub const HEAD_CHARS: usize = 256;

/// Longest operator pattern kept (longer ones could never fit the head).
pub const MAX_PATTERN_CHARS: usize = HEAD_CHARS;

/// Why a reply was judged a no-context reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoContextCause {
    /// Blank.
    Empty,
    /// `llm_generated: false`.
    NotGenerated,
    /// The `[no-context]` marker in its head.
    Marker,
    /// One of LightRAG's canned texts, whole.
    CannedReply,
    /// An operator pattern in its head (its index in the configured list).
    Pattern(usize),
}

/// The detector's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// It answers.
    Answer,
    /// It does not.
    NoContext(NoContextCause),
    /// A stream that could still turn out either way: read on (within the hold-back).
    Undecided,
}

/// What has arrived of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerHead<'a> {
    /// The answer text so far (all of it for a complete answer).
    pub text: &'a str,
    /// What the upstream said about it (LightRAG's `llm_generated`), when it said anything.
    pub llm_generated: Option<bool>,
    /// Whether `text` is the whole reply.
    pub complete: bool,
}

/// The detector: the built-in rules plus the operator's patterns, lower-cased once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoContextDetector {
    patterns: Vec<String>,
}

/// The first `n` characters of `s`.
fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Whether `text` (lower-cased) is a prefix of `whole` (lower-cased), compared char by char.
fn is_prefix_ci(text: &str, whole: &str) -> bool {
    let mut w = whole.chars().flat_map(char::to_lowercase);
    text.chars()
        .flat_map(char::to_lowercase)
        .all(|c| w.next() == Some(c))
}

impl NoContextDetector {
    /// A detector with these operator patterns (blank ones are skipped; each is trimmed,
    /// lower-cased and cut to [`MAX_PATTERN_CHARS`]).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> NoContextDetector {
        let mut out: Vec<String> = Vec::new();
        for p in patterns {
            let p = prefix_chars(p.trim(), MAX_PATTERN_CHARS).to_lowercase();
            if !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
        NoContextDetector { patterns: out }
    }

    /// The operator patterns in use (lower-cased).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Judges a reply, or a stream's head (see the module docs).
    pub fn judge(&self, a: &AnswerHead<'_>) -> Judgement {
        if a.llm_generated == Some(false) {
            return Judgement::NoContext(NoContextCause::NotGenerated);
        }
        let text = a.text.trim_start();
        let head = prefix_chars(text, HEAD_CHARS);
        if head.contains(NO_CONTEXT_MARKER) {
            return Judgement::NoContext(NoContextCause::Marker);
        }
        if !self.patterns.is_empty() {
            let lower = head.to_lowercase();
            if let Some(i) = self
                .patterns
                .iter()
                .position(|p| lower.contains(p.as_str()))
            {
                return Judgement::NoContext(NoContextCause::Pattern(i));
            }
        }
        if a.complete {
            let whole = text.trim_end();
            if whole.is_empty() {
                return Judgement::NoContext(NoContextCause::Empty);
            }
            if CANNED_REPLIES.iter().any(|c| c.eq_ignore_ascii_case(whole)) {
                return Judgement::NoContext(NoContextCause::CannedReply);
            }
            return Judgement::Answer;
        }
        let head_complete = text.chars().nth(HEAD_CHARS.saturating_sub(1)).is_some();
        if head_complete {
            return Judgement::Answer;
        }
        if !self.patterns.is_empty() || text.trim_end().is_empty() {
            return Judgement::Undecided;
        }
        let t = text.trim_end();
        if CANNED_REPLIES.iter().any(|c| is_prefix_ci(t, c)) {
            Judgement::Undecided
        } else {
            Judgement::Answer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(text: &str) -> AnswerHead<'_> {
        AnswerHead {
            text,
            llm_generated: None,
            complete: false,
        }
    }

    #[test]
    fn prefixes_compare_case_insensitively() {
        assert!(is_prefix_ci("sorry, I'M", CANNED_REPLIES[0]));
        assert!(!is_prefix_ci("Sorry, we", CANNED_REPLIES[0]));
        assert!(is_prefix_ci("", CANNED_REPLIES[0]));
        assert_eq!(prefix_chars("äbc", 2), "äb");
        assert_eq!(prefix_chars("ab", 5), "ab");
    }

    #[test]
    fn a_stream_past_its_head_is_decided() {
        let d = NoContextDetector::new(["not enough information"]);
        let long = "x".repeat(HEAD_CHARS + 1);
        assert_eq!(d.judge(&partial(&long)), Judgement::Answer);
        let exactly = "x".repeat(HEAD_CHARS);
        assert_eq!(d.judge(&partial(&exactly)), Judgement::Answer);
        let short = "x".repeat(HEAD_CHARS - 1);
        assert_eq!(d.judge(&partial(&short)), Judgement::Undecided);
    }
}
