//! The LightRAG server's query API (`lightrag/api/routers/query_routes.py`):
//! `POST /query` `{"query", "mode", ...}` → `{"response", "references": [{reference_id,
//! file_path}]}`, and `POST /query/stream`, whose NDJSON body is a `{"references": [...]}` line
//! first, then `{"response": "<chunk>"}` lines, with `{"error": "..."}` when generation fails
//! (and optional `progress` / `response_time` lines, which the router ignores).
//!
//! Why validate here: LightRAG answers 422 to a RAG query shorter than 3 "English-equivalent"
//! characters (CJK characters count 2). Checking before the subrequest saves a round trip and
//! keeps that 422 from counting as an upstream failure in the breaker.

use super::answer::{json_type, to_json, Citation, StreamItem, UpstreamAnswer, WireError};
use super::conversation::Conversation;
use crate::core::model::Upstream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The query modes LightRAG accepts (`QueryParam.mode`), sent as `"mode"`
/// (`LIGHTRAG_QUERY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryMode {
    Local,
    Global,
    Hybrid,
    Naive,
    Mix,
    Bypass,
}

impl QueryMode {
    pub const ALL: [QueryMode; 6] = [
        QueryMode::Local,
        QueryMode::Global,
        QueryMode::Hybrid,
        QueryMode::Naive,
        QueryMode::Mix,
        QueryMode::Bypass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueryMode::Local => "local",
            QueryMode::Global => "global",
            QueryMode::Hybrid => "hybrid",
            QueryMode::Naive => "naive",
            QueryMode::Mix => "mix",
            QueryMode::Bypass => "bypass",
        }
    }

    /// Parses a mode name, case-insensitively and ignoring surrounding spaces.
    pub fn parse(s: &str) -> Option<QueryMode> {
        let s = s.trim();
        QueryMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}
/// Minimum English-equivalent length of a RAG query (not enforced for `bypass`).
pub const MIN_QUERY_CHARS: usize = 3;

/// Length as LightRAG measures it: each CJK character counts 2, every other character 1.
pub fn english_equivalent_len(s: &str) -> usize {
    s.chars().map(|c| if is_cjk(c) { 2 } else { 1 }).sum()
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF     // Hangul Jamo
        | 0x2E80..=0x9FFF   // CJK radicals, punctuation, kana, unified ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0xFF00..=0xFFEF   // half/full-width forms
        | 0x20000..=0x3FFFF // CJK extensions B+
    )
}

/// Checks a query the way LightRAG will: non-blank, and (except in `bypass` mode) at least
/// [`MIN_QUERY_CHARS`] English-equivalent characters after trimming.
pub fn validate_query(query: &str, mode: QueryMode) -> Result<(), WireError> {
    let q = query.trim();
    if q.is_empty() {
        return Err(WireError::invalid("query", "must not be empty"));
    }
    if mode != QueryMode::Bypass && english_equivalent_len(q) < MIN_QUERY_CHARS {
        return Err(WireError::invalid(
            "query",
            format!(
                "must be at least {MIN_QUERY_CHARS} characters long for LightRAG (CJK characters count 2)"
            ),
        ));
    }
    Ok(())
}

/// The JSON body for `POST /query` (`stream = false`) or `POST /query/stream` (`stream = true`).
/// References are requested explicitly so answers always carry their sources.
pub fn query_body(query: &str, mode: QueryMode, stream: bool) -> Result<String, WireError> {
    conversation_body(
        &Conversation {
            query: query.trim().to_string(),
            ..Conversation::default()
        },
        mode,
        stream,
    )
}

/// As [`query_body`], for a whole conversation ([`super::conversation::conversation`]): adds
/// `conversation_history` and `user_prompt` when there are any.
pub fn conversation_body(
    c: &Conversation,
    mode: QueryMode,
    stream: bool,
) -> Result<String, WireError> {
    validate_query(&c.query, mode)?;
    let mut body = json!({
        "query": c.query.trim(),
        "mode": mode,
        "stream": stream,
        "include_references": true,
    });
    if let Value::Object(o) = &mut body {
        if !c.history.is_empty() {
            o.insert(
                "conversation_history".into(),
                Value::Array(
                    c.history
                        .iter()
                        .map(|m| json!({"role": m.role, "content": m.content}))
                        .collect(),
                ),
            );
        }
        if let Some(p) = &c.user_prompt {
            o.insert("user_prompt".into(), Value::String(p.clone()));
        }
    }
    Ok(to_json(&body))
}

/// The path to post a query to.
pub fn query_path(stream: bool) -> &'static str {
    if stream {
        "/query/stream"
    } else {
        "/query"
    }
}

fn upstream_error(message: impl Into<String>) -> WireError {
    WireError::Upstream {
        upstream: Upstream::Lightrag,
        message: message.into(),
    }
}

/// Turns LightRAG `references` into citations. `field` names the array in errors.
pub fn parse_references(v: &Value, field: &str) -> Result<Vec<Citation>, WireError> {
    let arr = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => {
            return Err(WireError::invalid(
                field,
                format!("expected an array, found {}", json_type(other)),
            ))
        }
    };
    let mut out: Vec<Citation> = Vec::with_capacity(arr.len());
    for (i, r) in arr.iter().enumerate() {
        let path = match r.get("file_path") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::String(_)) | None | Some(Value::Null) => continue,
            Some(other) => {
                return Err(WireError::invalid(
                    &format!("{field}[{i}].file_path"),
                    format!("expected a string, found {}", json_type(other)),
                ))
            }
        };
        let url =
            (path.starts_with("http://") || path.starts_with("https://")).then(|| path.clone());
        let c = Citation {
            url,
            title: Some(path),
        };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Parses a `POST /query` 200 body. An error report in the body (`{"detail": ...}` as FastAPI
/// sends, or `{"error": ...}`) becomes [`WireError::Upstream`].
pub fn parse_query_response(body: &str) -> Result<UpstreamAnswer, WireError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| WireError::malformed("LightRAG response", format!("invalid JSON ({e})")))?;
    let obj = match &v {
        Value::Object(o) => o,
        other => {
            return Err(WireError::malformed(
                "LightRAG response",
                format!("expected a JSON object, found {}", json_type(other)),
            ))
        }
    };
    let content = match obj.get("response") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => {
            if let Some(msg) = error_message(obj.get("error").or(obj.get("detail"))) {
                return Err(upstream_error(msg));
            }
            return Err(WireError::missing("response"));
        }
        Some(other) => {
            return Err(WireError::invalid(
                "response",
                format!("expected a string, found {}", json_type(other)),
            ))
        }
    };
    let citations = parse_references(obj.get("references").unwrap_or(&Value::Null), "references")?;
    Ok(UpstreamAnswer {
        content,
        citations,
        llm_generated: obj.get("llm_generated").and_then(Value::as_bool),
    })
}

fn error_message(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Interprets one NDJSON line of `POST /query/stream`. Unparsable lines and error lines become
/// [`StreamItem::Error`]; `progress` / `response_time` lines yield nothing.
pub fn parse_stream_line(line: &str) -> Vec<StreamItem> {
    match serde_json::from_str::<Value>(line) {
        Ok(v) => parse_stream_value(&v),
        Err(e) => vec![StreamItem::Error(format!(
            "LightRAG stream line is not valid JSON ({e})"
        ))],
    }
}

/// As [`parse_stream_line`], for an already-parsed line.
pub fn parse_stream_value(v: &Value) -> Vec<StreamItem> {
    let obj = match v {
        Value::Object(o) => o,
        other => {
            return vec![StreamItem::Error(format!(
                "LightRAG stream line is {}, expected an object",
                json_type(other)
            ))]
        }
    };
    let mut items = Vec::new();
    if let Some(msg) = error_message(obj.get("error")) {
        // LightRAG sends `str(e)`, which is empty for many exceptions (`TimeoutError()`).
        items.push(StreamItem::Error(if msg.trim().is_empty() {
            "LightRAG stream reported an error without a message".to_string()
        } else {
            msg
        }));
        return items;
    }
    // A complete result on the stream (no-context, LLM down, LLM-cache hit) is one line with
    // `llm_generated`; streamed chunks carry none. Reported before the text it qualifies.
    if obj.get("llm_generated") == Some(&Value::Bool(false)) {
        items.push(StreamItem::NotGenerated);
    }
    if let Some(r) = obj.get("references") {
        match parse_references(r, "references") {
            Ok(c) => items.push(StreamItem::Citations(c)),
            Err(e) => items.push(StreamItem::Error(e.to_string())),
        }
    }
    match obj.get("response") {
        Some(Value::String(s)) if !s.is_empty() => items.push(StreamItem::Delta(s.clone())),
        Some(Value::String(_)) | Some(Value::Null) | None => {}
        Some(other) => items.push(StreamItem::Error(format!(
            "LightRAG stream field `response` is {}, expected a string",
            json_type(other)
        ))),
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `make fuzz` (target `lightrag_stream`): `{"error": ""}` became an error item
    /// with an empty message, which reached logs and clients as a blank error.
    #[test]
    fn an_error_line_without_a_message_still_says_what_failed() {
        for line in [r#"{"error": ""}"#, r#"{"error": "  "}"#] {
            match parse_stream_line(line).as_slice() {
                [StreamItem::Error(m)] => assert!(m.contains("LightRAG"), "{m:?}"),
                other => panic!("{line} gave {other:?}"),
            }
        }
        assert_eq!(
            parse_stream_line(r#"{"error": "Connection error."}"#),
            vec![StreamItem::Error("Connection error.".into())]
        );
    }
}
