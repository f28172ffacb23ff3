//! Types shared by every wire format: the normalised answer, a citation, a stream item and the
//! error value.
//!
//! Why: LightRAG and Perplexity speak different formats (JSON vs OpenAI JSON, NDJSON vs SSE),
//! but the router scores, records and re-encodes answers without caring who wrote them. Both
//! upstream parsers therefore produce these types, and the front-door builders consume them.

use crate::core::model::Upstream;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One source of an answer. Perplexity gives URLs (and titles through `search_results`);
/// LightRAG gives file paths of the indexed documents, which become the title (and the URL
/// too when the path is itself an `http(s)` URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub url: Option<String>,
    pub title: Option<String>,
}

impl Citation {
    /// The single string a URL-only client (Perplexity-style `citations: [..]`) shows:
    /// the URL when there is one, else the title, else the empty string.
    pub fn label(&self) -> &str {
        self.url
            .as_deref()
            .or(self.title.as_deref())
            .unwrap_or_default()
    }
}

/// Appends `extra` to `into`, merging entries that share a URL (a later title fills a missing
/// one) so that `citations` and `search_results` describing the same page become one citation.
pub fn merge_citations(into: &mut Vec<Citation>, extra: Vec<Citation>) {
    for c in extra {
        let existing = match &c.url {
            Some(u) => into
                .iter_mut()
                .find(|e| e.url.as_deref() == Some(u.as_str())),
            None => into
                .iter_mut()
                .find(|e| e.url.is_none() && e.title == c.title),
        };
        match existing {
            Some(e) => {
                if e.title.is_none() {
                    e.title = c.title;
                }
            }
            None => into.push(c),
        }
    }
}

/// A complete (non-streamed) upstream answer, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamAnswer {
    pub content: String,
    pub citations: Vec<Citation>,
}

/// What one decoded stream unit (an NDJSON line or an SSE event) means to the router.
/// A unit can mean several things at once (a Perplexity chunk carries text *and* citations),
/// so parsers return `Vec<StreamItem>`; an empty vector means "nothing to act on" (a progress
/// line, a keep-alive, a role-only delta).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamItem {
    /// A piece of answer text, to be forwarded as-is.
    Delta(String),
    /// Sources known so far. Perplexity repeats its list in many chunks, sometimes with and
    /// sometimes without `search_results` titles, so consumers merge by URL
    /// ([`merge_citations`], as [`StreamAccumulator`] does) rather than append or replace.
    Citations(Vec<Citation>),
    /// The upstream said the answer is complete: a Perplexity chunk with a `finish_reason`
    /// (real Perplexity streams end there, without `[DONE]`) or a `[DONE]` line. LightRAG has
    /// no end marker: there the clean end of the body is the end.
    Done,
    /// The upstream reported an error inside the stream, or sent something unparsable.
    Error(String),
}

/// Folds stream items into an answer, for scoring and metrics once a stream has ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAccumulator {
    pub content: String,
    pub citations: Vec<Citation>,
    pub done: bool,
    pub error: Option<String>,
}

impl StreamAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply(&mut self, item: &StreamItem) {
        match item {
            StreamItem::Delta(t) => self.content.push_str(t),
            StreamItem::Citations(c) => merge_citations(&mut self.citations, c.clone()),
            StreamItem::Done => self.done = true,
            StreamItem::Error(e) => {
                if self.error.is_none() {
                    self.error = Some(e.clone());
                }
            }
        }
    }

    pub fn into_answer(self) -> UpstreamAnswer {
        UpstreamAnswer {
            content: self.content,
            citations: self.citations,
        }
    }
}

/// Why some bytes could not be read as the format they claimed to be. Every variant names the
/// field (or the document) that was wrong so the message can go straight into a 4xx body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not parsable at all (invalid JSON, not an object, not UTF-8). `what` names the document.
    Malformed { what: String, detail: String },
    /// A required field is absent (or `null`).
    MissingField { field: String },
    /// A field is present but has the wrong type or an unacceptable value.
    InvalidField { field: String, reason: String },
    /// A body or a stream line is longer than allowed.
    TooLarge { what: String, limit: usize },
    /// The upstream answered, but its answer is an error report.
    Upstream { upstream: Upstream, message: String },
}

impl WireError {
    pub(crate) fn malformed(what: &str, detail: impl fmt::Display) -> Self {
        WireError::Malformed {
            what: what.to_string(),
            detail: detail.to_string(),
        }
    }
    pub(crate) fn missing(field: &str) -> Self {
        WireError::MissingField {
            field: field.to_string(),
        }
    }
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        WireError::InvalidField {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// The HTTP status the router answers with when a *client* sent this (413 for size, else
    /// 400). Upstream errors map to 502: the client did nothing wrong.
    pub fn status(&self) -> u16 {
        match self {
            WireError::TooLarge { .. } => 413,
            WireError::Upstream { .. } => 502,
            _ => 400,
        }
    }

    /// A stable machine-readable code for [`crate::core::wire::error::error_body`].
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Malformed { .. } => "malformed_body",
            WireError::MissingField { .. } => "missing_field",
            WireError::InvalidField { .. } => "invalid_field",
            WireError::TooLarge { .. } => "too_large",
            WireError::Upstream { .. } => "upstream_error",
        }
    }

    /// The offending field, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            WireError::MissingField { field } | WireError::InvalidField { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Malformed { what, detail } => write!(f, "{what} is malformed: {detail}"),
            WireError::MissingField { field } => write!(f, "missing required field `{field}`"),
            WireError::InvalidField { field, reason } => {
                write!(f, "invalid field `{field}`: {reason}")
            }
            WireError::TooLarge { what, limit } => {
                write!(f, "{what} exceeds the limit of {limit} bytes")
            }
            WireError::Upstream { upstream, message } => {
                write!(f, "{upstream} reported an error: {message}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Parses bytes as a JSON object, naming `what` in the error.
pub(crate) fn parse_object(
    bytes: &[u8],
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, WireError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| WireError::malformed(what, format!("not valid UTF-8 ({e})")))?;
    if text.trim().is_empty() {
        return Err(WireError::malformed(
            what,
            "empty body, expected a JSON object",
        ));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(other) => Err(WireError::malformed(
            what,
            format!("expected a JSON object, found {}", json_type(&other)),
        )),
        Err(e) => Err(WireError::malformed(what, format!("invalid JSON ({e})"))),
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// An optional string field: absent or `null` → `None`; a string → `Some`; anything else is an
/// error naming the field.
pub(crate) fn opt_str(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, WireError> {
    match obj.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(WireError::invalid(
            field,
            format!("expected a string, found {}", json_type(other)),
        )),
    }
}

/// Serialises a `serde_json::Value` built by this module. `Value`'s `Display` cannot fail.
pub(crate) fn to_json(v: &serde_json::Value) -> String {
    v.to_string()
}
