//! `POST /query` as the previous service answered it: the router builds the Perplexity
//! request itself, with that service's parameters, and reads the confidence scores its prompt
//! asks for out of the answer.
//!
//! Source: the previous service's `call_perplexity_api` (CMO chatbot, `src/main.py`, the
//! Chainlit app that this router replaces): `model: "sonar"`, `temperature: 0.1`,
//! `search_domain_filter: ["-wikipedia.org"]`, a clinical-metabolomics system prompt asking for
//! `(confidence score: X.X)` after each claim, the question as the only user message; then,
//! with `re.IGNORECASE`, `confidence score:\s*([0-9.]+)(?:\s*\)\s*((?:\[\d+\]\s*)+)|\s+based
//! on\s+(\[\d+\]))` to attach each score to the citation numbers that follow it, and
//! `\(\s*confidence score:\s*[0-9.]+\s*\)` removed from the text, whitespace runs made one
//! space. Each parameter is overridable (`PERPLEXITY_QUERY_*`).
//!
//! One deliberate difference: the old prompt was five Python string literals concatenated
//! without separating spaces ("You respond to" "user queries" became "respond touser
//! queries"); [`SYSTEM_PROMPT`] is the same five sentences with the spaces the literals meant.
//! An operator who wants the old bytes exactly sets `PERPLEXITY_QUERY_SYSTEM_PROMPT`.

use super::answer::{to_json, WireError};
use crate::core::policy::Bounds;
use crate::core::sorted_map::SortedMap;
use regex_lite::Regex;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The previous service's model.
pub const DEFAULT_MODEL: &str = "sonar";
/// The previous service's temperature.
pub const DEFAULT_TEMPERATURE: f64 = 0.1;
/// Perplexity's accepted range for `temperature`.
pub const TEMPERATURE: Bounds = Bounds::closed(0.0, 2.0);
/// The previous service's domain filter: no Wikipedia.
pub const DEFAULT_DOMAIN_FILTER: &str = "-wikipedia.org";

/// The previous service's system prompt (see the module docs for the restored spaces).
pub const SYSTEM_PROMPT: &str = "You are an expert in clinical metabolomics. You respond to \
user queries in a helpful manner, with a focus on correct scientific detail. Include \
peer-reviewed sources for all claims. For each source/claim, provide a confidence score from \
0.0-1.0, formatted as (confidence score: X.X) Respond in a single paragraph, never use lists \
unless explicitly asked.";

/// `{"-wikipedia.org"}`.
pub fn default_domain_filter() -> BTreeSet<String> {
    BTreeSet::from([DEFAULT_DOMAIN_FILTER.to_string()])
}

/// The Perplexity parameters of `POST /query`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryParams<'a> {
    pub model: &'a str,
    pub temperature: f64,
    pub search_domain_filter: &'a BTreeSet<String>,
    pub system_prompt: &'a str,
}

/// The request body: `{model, messages: [system, user], temperature, search_domain_filter}`
/// (`stream: true` added only for a stream; the previous service never set it).
pub fn query_body(query: &str, p: &QueryParams<'_>, stream: bool) -> Result<String, WireError> {
    let q = query.trim();
    if q.is_empty() {
        return Err(WireError::invalid("query_text", "must not be empty"));
    }
    let filter: Vec<&str> = p.search_domain_filter.iter().map(String::as_str).collect();
    let mut body = json!({
        "model": p.model,
        "messages": [
            {"role": "system", "content": p.system_prompt},
            {"role": "user", "content": q},
        ],
        "temperature": p.temperature,
        "search_domain_filter": filter,
    });
    if stream {
        if let Some(o) = body.as_object_mut() {
            o.insert("stream".into(), serde_json::Value::Bool(true));
        }
    }
    Ok(to_json(&body))
}

/// An answer with its confidence annotations taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The text without `(confidence score: X.X)`, whitespace runs made one space.
    pub content: String,
    /// Citation number (as in `[n]`) → the first score the answer gave it.
    pub confidence_scores: SortedMap<String, f64>,
}

fn patterns() -> Option<&'static (Regex, Regex, Regex, Regex)> {
    static RE: OnceLock<Option<(Regex, Regex, Regex, Regex)>> = OnceLock::new();
    RE.get_or_init(|| {
        Some((
            Regex::new(
                r"(?i)confidence score:\s*([0-9.]+)(?:\s*\)\s*((?:\[\d+\]\s*)+)|\s+based on\s+(\[\d+\]))",
            )
            .ok()?,
            Regex::new(r"\[(\d+)\]").ok()?,
            Regex::new(r"(?i)\(\s*confidence score:\s*[0-9.]+\s*\)").ok()?,
            Regex::new(r"\s+").ok()?,
        ))
    })
    .as_ref()
}

/// Reads the confidence scores out of an answer and strips the annotations, as the previous
/// service did (module docs). A score that is not a finite number is skipped; a citation keeps
/// the first score given to it.
pub fn extract_confidence(content: &str) -> Scored {
    let Some((scores, refs, strip, space)) = patterns() else {
        return Scored {
            content: content.to_string(),
            confidence_scores: SortedMap::new(),
        };
    };
    let mut out = SortedMap::new();
    for c in scores.captures_iter(content) {
        let Some(score) = c
            .get(1)
            .and_then(|m| m.as_str().parse::<f64>().ok())
            .filter(|x| x.is_finite())
        else {
            continue;
        };
        let cited = c.get(2).or_else(|| c.get(3)).map_or("", |m| m.as_str());
        for r in refs.captures_iter(cited) {
            if let Some(n) = r.get(1) {
                out.entry(n.as_str().to_string()).or_insert(score);
            }
        }
    }
    let stripped = strip.replace_all(content, "");
    let content = space.replace_all(&stripped, " ").into_owned();
    Scored {
        content,
        confidence_scores: out,
    }
}
