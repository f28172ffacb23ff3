//! Answer quality: a pluggable [`Scorer`] and a cheap default heuristic.
//!
//! Why a heuristic and not an LLM judge: the score is computed for every answer on the edge,
//! inside the request's CPU budget (a Worker gets milliseconds, not seconds), and it feeds the
//! quality gate and the rollout controller, which compare *windows* of scores between arms.
//! A consistent, cheap, explainable signal is worth more there than an expensive, noisy one;
//! a better scorer can be plugged in behind the trait (e.g. one that reads a judge's verdict
//! computed off the hot path).
//!
//! The default scorer's components, each in [0, 1]:
//! - **relevance**: share of the query's content terms (stop words and 1–2 letter tokens
//!   dropped, lightly stemmed: plural `-s`/`-ies`, `-ing`, `-ed`, final `-e`) found in the answer;
//! - **completeness**: a length band (too short is incomplete, very long is rambling);
//! - **sources**: Perplexity citations / LightRAG references (0 → 0, 1 → 0.6, 2 → 0.8, ≥3 → 1);
//! - **clean**: 1 unless the answer is a refusal ("I cannot", "as an AI", …) or an upstream
//!   error page leaked through as content (HTML, "502 Bad Gateway", a JSON error body);
//! - **latency**: 1 up to `latency_good_ms`, falling linearly to 0 at `latency_bad_ms`.
//!
//! The total is the weighted mean, then capped for the failure markers (an empty answer scores
//! 0, an error page at most 0.05, a refusal at most 0.3) because a fast, well-cited refusal is
//! still a refusal.
//!
//! Performance: scoring a 2 KB answer must stay well under 20 µs, so there is no regex and no
//! allocation: words ([`text::words`]) are lowercased into a small stack buffer, query terms live in
//! a fixed array, and marker searches are bounded to the answer's head.

use crate::core::model::Upstream;
use crate::core::policy::{Bounds, PolicyError};
use crate::core::text;
use serde::{Deserialize, Serialize};

/// What a scorer sees of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreInput<'a> {
    pub query: &'a str,
    pub answer: &'a str,
    /// Citations (Perplexity) or references (LightRAG) returned with the answer.
    pub sources: usize,
    pub latency_ms: u64,
    pub upstream: Upstream,
}

/// Which failure marker, if any, the answer carried (serde snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityFlag {
    Ok,
    Empty,
    Refusal,
    ErrorPage,
}

/// A score with its components, all in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityScore {
    pub total: f64,
    pub relevance: f64,
    pub completeness: f64,
    pub sources: f64,
    pub clean: f64,
    pub latency: f64,
    pub flag: QualityFlag,
}

/// Anything that can score an answer. Implementations must return components and a total in
/// [0, 1] and must not panic.
pub trait Scorer {
    fn score(&self, input: &ScoreInput<'_>) -> QualityScore;
}

/// Weights and bands of the [`DefaultScorer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScorerSettings {
    pub w_relevance: f64,
    pub w_completeness: f64,
    pub w_sources: f64,
    pub w_clean: f64,
    pub w_latency: f64,
    /// Below this many bytes an answer is too short to be complete.
    pub min_len: usize,
    /// From this many bytes an answer counts as complete.
    pub good_len: usize,
    /// Beyond this many bytes completeness declines (to 0.6 at twice the length).
    pub max_len: usize,
    pub latency_good_ms: u64,
    pub latency_bad_ms: u64,
}

impl Default for ScorerSettings {
    fn default() -> Self {
        ScorerSettings {
            w_relevance: 0.35,
            w_completeness: 0.2,
            w_sources: 0.15,
            w_clean: 0.2,
            w_latency: 0.1,
            min_len: 40,
            good_len: 300,
            max_len: 8_000,
            latency_good_ms: 3_000,
            latency_bad_ms: 30_000,
        }
    }
}

/// The default heuristic scorer (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultScorer {
    s: ScorerSettings,
    weight_sum: f64,
}

impl Default for DefaultScorer {
    fn default() -> Self {
        let s = ScorerSettings::default();
        let weight_sum = s.w_relevance + s.w_completeness + s.w_sources + s.w_clean + s.w_latency;
        DefaultScorer { s, weight_sum }
    }
}

const ERROR_PAGE_CAP: f64 = 0.05;
const REFUSAL_CAP: f64 = 0.3;
const REFUSAL_CLEAN: f64 = 0.2;
/// Marker searches look at the answer's head only: markers sit at the start of refusals.
const HEAD_BYTES: usize = 400;
/// Error phrases are only trusted in short answers (a long answer may discuss "bad gateway").
const SHORT_ERROR_BYTES: usize = 600;

impl DefaultScorer {
    pub fn try_new(s: ScorerSettings) -> Result<DefaultScorer, PolicyError> {
        for (field, w) in [
            ("w_relevance", s.w_relevance),
            ("w_completeness", s.w_completeness),
            ("w_sources", s.w_sources),
            ("w_clean", s.w_clean),
            ("w_latency", s.w_latency),
        ] {
            Bounds::closed(0.0, 100.0).check(field, w)?;
        }
        let weight_sum = s.w_relevance + s.w_completeness + s.w_sources + s.w_clean + s.w_latency;
        if weight_sum <= 0.0 {
            return Err(PolicyError::new(
                "w_*",
                "at least one weight must be positive",
            ));
        }
        if !(s.min_len < s.good_len && s.good_len <= s.max_len) {
            return Err(PolicyError::new(
                "min_len",
                format!(
                    "need min_len < good_len <= max_len, got {} / {} / {}",
                    s.min_len, s.good_len, s.max_len
                ),
            ));
        }
        if s.latency_good_ms >= s.latency_bad_ms {
            return Err(PolicyError::new(
                "latency_good_ms",
                format!(
                    "must be below latency_bad_ms ({}), got {}",
                    s.latency_bad_ms, s.latency_good_ms
                ),
            ));
        }
        Ok(DefaultScorer { s, weight_sum })
    }

    pub fn settings(&self) -> &ScorerSettings {
        &self.s
    }

    fn completeness(&self, len: usize) -> f64 {
        let s = &self.s;
        let l = len as f64;
        if len < s.min_len {
            0.3 * l / s.min_len as f64
        } else if len < s.good_len {
            0.3 + 0.7 * (l - s.min_len as f64) / (s.good_len - s.min_len) as f64
        } else if len <= s.max_len {
            1.0
        } else {
            (1.0 - 0.4 * (l - s.max_len as f64) / s.max_len as f64).max(0.6)
        }
    }

    fn latency(&self, ms: u64) -> f64 {
        let s = &self.s;
        if ms <= s.latency_good_ms {
            1.0
        } else if ms >= s.latency_bad_ms {
            0.0
        } else {
            1.0 - (ms - s.latency_good_ms) as f64 / (s.latency_bad_ms - s.latency_good_ms) as f64
        }
    }
}

fn sources_component(n: usize) -> f64 {
    match n {
        0 => 0.0,
        1 => 0.6,
        2 => 0.8,
        _ => 1.0,
    }
}

impl Scorer for DefaultScorer {
    fn score(&self, input: &ScoreInput<'_>) -> QualityScore {
        let answer = input.answer.trim();
        let latency = self.latency(input.latency_ms);
        if answer.is_empty() {
            return QualityScore {
                total: 0.0,
                relevance: 0.0,
                completeness: 0.0,
                sources: sources_component(input.sources),
                clean: 0.0,
                latency,
                flag: QualityFlag::Empty,
            };
        }
        let bytes = answer.as_bytes();
        let flag = detect_markers(bytes);
        let clean = match flag {
            QualityFlag::Ok => 1.0,
            QualityFlag::Refusal => REFUSAL_CLEAN,
            QualityFlag::Empty | QualityFlag::ErrorPage => 0.0,
        };
        let relevance = relevance(input.query, answer);
        let completeness = self.completeness(bytes.len());
        let sources = sources_component(input.sources);
        let s = &self.s;
        let mut total = (s.w_relevance * relevance
            + s.w_completeness * completeness
            + s.w_sources * sources
            + s.w_clean * clean
            + s.w_latency * latency)
            / self.weight_sum;
        total = match flag {
            QualityFlag::Ok => total,
            QualityFlag::Refusal => total.min(REFUSAL_CAP),
            QualityFlag::ErrorPage => total.min(ERROR_PAGE_CAP),
            QualityFlag::Empty => 0.0,
        };
        QualityScore {
            total: total.clamp(0.0, 1.0),
            relevance,
            completeness,
            sources,
            clean,
            latency,
            flag,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Markers

const HTML_MARKERS: &[&[u8]] = &[b"<!doctype", b"<html", b"<head", b"<body", b"<title"];
const ERROR_PHRASES: &[&[u8]] = &[
    b"internal server error",
    b"bad gateway",
    b"gateway timeout",
    b"gateway time-out",
    b"service unavailable",
    b"service temporarily unavailable",
    b"upstream connect error",
    b"error code:",
    b"\"error\"",
];
const REFUSALS: &[&[u8]] = &[
    b"i cannot",
    b"i can't",
    "i can\u{2019}t".as_bytes(),
    b"i can not",
    b"i'm unable",
    "i\u{2019}m unable".as_bytes(),
    b"i am unable",
    b"i'm not able to",
    b"i am not able to",
    b"as an ai",
    b"i'm sorry, but",
    "i\u{2019}m sorry, but".as_bytes(),
    b"i apologize, but",
    b"i don't have enough information",
    b"i do not have enough information",
    b"i don't have access",
    b"i do not have access",
    b"no relevant information",
    b"i don't know",
    b"i do not know",
    b"unable to answer",
];

fn head(bytes: &[u8], n: usize) -> &[u8] {
    bytes.get(..n).unwrap_or(bytes)
}

/// Whether any of `needles` (lowercase, non-empty) occurs in `hay`, ASCII-case-insensitively.
///
/// One pass over `hay`: a 256-bit set of the needles' first bytes skips almost every position
/// with one table lookup, so the cost is ~one load per byte rather than one per byte and needle.
fn contains_any_ci(hay: &[u8], needles: &[&[u8]]) -> bool {
    let mut first = [false; 256];
    for n in needles {
        if let Some(&b) = n.first() {
            if let Some(slot) = first.get_mut(usize::from(b)) {
                *slot = true;
            }
        }
    }
    for (i, &b) in hay.iter().enumerate() {
        let lb = b.to_ascii_lowercase();
        if !first.get(usize::from(lb)).copied().unwrap_or(false) {
            continue;
        }
        let rest = hay.get(i..).unwrap_or(&[]);
        for n in needles {
            if n.first() == Some(&lb)
                && rest
                    .get(..n.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(n))
            {
                return true;
            }
        }
    }
    false
}

/// ASCII-case-insensitive substring search; `needle` must be lowercase.
#[cfg(test)]
fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || contains_any_ci(hay, &[needle])
}

fn detect_markers(bytes: &[u8]) -> QualityFlag {
    let h = head(bytes, HEAD_BYTES);
    if bytes.first() == Some(&b'<') && contains_any_ci(h, HTML_MARKERS) {
        return QualityFlag::ErrorPage;
    }
    if bytes.len() <= SHORT_ERROR_BYTES && contains_any_ci(bytes, ERROR_PHRASES) {
        return QualityFlag::ErrorPage;
    }
    if contains_any_ci(h, REFUSALS) {
        return QualityFlag::Refusal;
    }
    QualityFlag::Ok
}

// ---------------------------------------------------------------------------------------------
// Relevance

const MAX_TERMS: usize = 24;
const MAX_TOKEN: usize = 24;

const STOP_WORDS: &[&[u8]] = &[
    b"the",
    b"and",
    b"for",
    b"are",
    b"but",
    b"not",
    b"you",
    b"all",
    b"any",
    b"can",
    b"had",
    b"her",
    b"was",
    b"one",
    b"our",
    b"out",
    b"has",
    b"his",
    b"how",
    b"its",
    b"may",
    b"who",
    b"what",
    b"which",
    b"when",
    b"where",
    b"why",
    b"with",
    b"this",
    b"that",
    b"these",
    b"those",
    b"from",
    b"into",
    b"about",
    b"does",
    b"did",
    b"been",
    b"being",
    b"have",
    b"there",
    b"their",
    b"they",
    b"them",
    b"then",
    b"than",
    b"some",
    b"such",
    b"also",
    b"more",
    b"most",
    b"other",
    b"would",
    b"could",
    b"should",
    b"will",
    b"your",
    b"please",
    b"tell",
    b"explain",
    b"describe",
    b"give",
    b"list",
    b"between",
    b"over",
    b"under",
    b"via",
    b"like",
    b"used",
    b"use",
    b"using",
    b"known",
    b"many",
    b"much",
    b"very",
    b"each",
    b"both",
    b"only",
    b"just",
    b"whether",
    b"while",
    b"within",
    b"without",
    b"were",
    b"is",
    b"an",
    b"of",
    b"role",
];

/// A lowercased, stemmed token in a stack buffer.
#[derive(Clone, Copy)]
struct Token {
    buf: [u8; MAX_TOKEN],
    len: usize,
}

impl Token {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    fn ends_with(&self, suffix: &[u8]) -> bool {
        self.as_bytes().ends_with(suffix)
    }

    /// Light suffix stripping, applied identically to query and answer tokens, so only
    /// consistency matters: plural `-ies`→`-y`, `-s` (not `-ss`), then `-ing` / `-ed`, then a
    /// final `-e` ("regulate", "regulates", "regulated", "regulating" → "regulat").
    fn stem(&mut self) {
        if self.len > 4 && self.ends_with(b"ies") {
            self.len -= 2;
            if let Some(b) = self.buf.get_mut(self.len - 1) {
                *b = b'y';
            }
        } else if self.len > 3 && self.ends_with(b"s") && !self.ends_with(b"ss") {
            self.len -= 1;
        }
        if self.len > 5 && self.ends_with(b"ing") {
            self.len -= 3;
        } else if self.len > 4 && self.ends_with(b"ed") {
            self.len -= 2;
        }
        if self.len > 4 && self.ends_with(b"e") {
            self.len -= 1;
        }
    }
}

/// Calls `f` with each word of `text` ([`text::words`]), lowercased (ASCII) and truncated to
/// `MAX_TOKEN` bytes, unstemmed. Stops early when `f` returns false.
fn for_each_token(text: &str, mut f: impl FnMut(&mut Token) -> bool) {
    for w in text::words(text) {
        let mut tok = Token {
            buf: [0; MAX_TOKEN],
            len: w.text.len().min(MAX_TOKEN),
        };
        for (slot, b) in tok.buf.iter_mut().zip(w.text.bytes()) {
            *slot = b.to_ascii_lowercase();
        }
        if !f(&mut tok) {
            return;
        }
    }
}

/// Share of the query's content terms present in the answer; 0.5 (neutral) when the query has
/// no content terms.
fn relevance(query: &str, answer: &str) -> f64 {
    let mut terms = [Token {
        buf: [0; MAX_TOKEN],
        len: 0,
    }; MAX_TERMS];
    let mut n = 0usize;
    for_each_token(query, |tok| {
        if tok.len < 3 || STOP_WORDS.contains(&tok.as_bytes()) {
            return true;
        }
        tok.stem();
        let t = *tok;
        let known = terms
            .get(..n)
            .is_some_and(|seen| seen.iter().any(|s| s.as_bytes() == t.as_bytes()));
        if !known {
            if let Some(slot) = terms.get_mut(n) {
                *slot = t;
                n += 1;
            }
        }
        n < MAX_TERMS
    });
    if n == 0 {
        return 0.5;
    }
    let all: u32 = if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
    let mut matched: u32 = 0;
    let active = terms.get(..n).unwrap_or(&[]);
    for_each_token(answer, |tok| {
        if tok.len < 3 {
            return true;
        }
        tok.stem();
        let t = tok.as_bytes();
        for (i, q) in active.iter().enumerate() {
            if q.len == t.len() && q.as_bytes() == t {
                matched |= 1 << i;
            }
        }
        matched != all
    });
    f64::from(matched.count_ones()) / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stemming_is_consistent() {
        let r = relevance(
            "How do pathways regulate diseases?",
            "The pathway regulating this disease is known.",
        );
        assert!((r - 1.0).abs() < 1e-12, "{r}");
    }

    #[test]
    fn contains_ci_finds_mixed_case() {
        assert!(contains_ci(b"Sorry, I CANNOT help", b"i cannot"));
        assert!(!contains_ci(b"I can", b"i cannot"));
    }
}
