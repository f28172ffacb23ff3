//! Perplexity's `POST /chat/completions`: OpenAI's chat format plus top-level `citations`
//! (URL strings) and `search_results` (`[{title, url, date}]`); with `stream: true`, SSE
//! `data: {chunk}` events whose `choices[0].delta.content` carries the text (citations and
//! search results may ride along in any chunk, usually repeated).
//!
//! How a real Perplexity stream ends (perplexityai/api-discussion#209, open since 2025-03, and
//! the captured chunks in #193): there is **no** `data: [DONE]`. Every chunk is
//! `"object": "chat.completion"` and carries a cumulative `message` beside the `delta`, plus
//! `citations`, `search_results` and `usage`; the last one has `finish_reason: "stop"` and then
//! the body simply ends. So a chunk with a non-null `finish_reason` means "complete", `[DONE]` is
//! accepted when a proxy adds it, and only a body that ends with neither was cut. We read the
//! `delta` only: the cumulative `message` would repeat the text.
//!
//! Why normalise messages: Perplexity rejects conversations whose turns do not alternate
//! (after optional system messages) or do not end with a user turn, which OpenAI accepts.
//! Clients of the router speak OpenAI, so [`chat_body`] reshapes the history instead of
//! letting Perplexity's 400 count against its breaker.

use super::answer::{json_type, merge_citations, Citation, StreamItem, UpstreamAnswer, WireError};
use super::json_out::JsonOut;
use super::openai::ChatMessage;
use crate::core::model::Upstream;
use serde_json::{Map, Value};

/// The model used when the client names none (or names one Perplexity does not serve).
pub const DEFAULT_MODEL: &str = "sonar";

/// The request path, relative to `PERPLEXITY_BASE_URL`.
pub const PATH: &str = "/chat/completions";

/// Reshapes an OpenAI history into one Perplexity accepts: system/developer messages merged
/// into one leading system message; tool/function turns dropped; leading assistant turns
/// dropped; consecutive turns of the same role merged; trailing assistant turns dropped so the
/// conversation ends with the user.
pub fn normalize_messages(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<ChatMessage> = Vec::new();
    for m in messages {
        match m.role.as_str() {
            "system" | "developer" if !m.content.trim().is_empty() => system.push(&m.content),
            "user" | "assistant" => {
                if m.content.trim().is_empty() {
                    continue;
                }
                if turns.is_empty() && m.role == "assistant" {
                    continue;
                }
                match turns.last_mut() {
                    Some(last) if last.role == m.role => {
                        last.content.push_str("\n\n");
                        last.content.push_str(&m.content);
                    }
                    _ => turns.push(m.clone()),
                }
            }
            _ => {}
        }
    }
    while turns.last().is_some_and(|m| m.role == "assistant") {
        turns.pop();
    }
    let mut out = Vec::with_capacity(turns.len() + 1);
    if !system.is_empty() {
        out.push(ChatMessage::new("system", &system.join("\n\n")));
    }
    out.extend(turns);
    out
}

/// The request body for a conversation. `model` defaults to [`DEFAULT_MODEL`].
/// Fails when no user turn with content remains after normalisation.
pub fn chat_body(
    messages: &[ChatMessage],
    model: Option<&str>,
    stream: bool,
) -> Result<String, WireError> {
    let msgs = normalize_messages(messages);
    if !msgs.iter().any(|m| m.role == "user") {
        return Err(WireError::invalid(
            "messages",
            "must contain a `user` message with non-empty content",
        ));
    }
    let model = model
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_MODEL);
    // Written directly (super::json_out says why), keys in the sorted order the `Value` path
    // wrote them.
    let mut o =
        JsonOut::with_capacity(64 + msgs.iter().map(|m| m.content.len() + 32).sum::<usize>());
    o.raw(r#"{"messages":["#);
    for (i, m) in msgs.iter().enumerate() {
        o.raw(if i == 0 {
            r#"{"content":"#
        } else {
            r#",{"content":"#
        })
        .str(&m.content)
        .raw(r#","role":"#)
        .str(&m.role)
        .raw("}");
    }
    o.raw(r#"],"model":"#)
        .str(model)
        .raw(r#","stream":"#)
        .bool(stream)
        .raw("}");
    Ok(o.finish())
}

/// The request body for a single question (the seed's `POST /query` shape).
pub fn chat_body_for_query(
    query: &str,
    model: Option<&str>,
    stream: bool,
) -> Result<String, WireError> {
    chat_body(&[ChatMessage::new("user", query)], model, stream)
}

fn upstream_error(message: impl Into<String>) -> WireError {
    WireError::Upstream {
        upstream: Upstream::Perplexity,
        message: message.into(),
    }
}

/// An `error` member as a message: `{"error": {"message": ...}}` or `{"error": "..."}`.
fn error_message(obj: &Map<String, Value>) -> Option<String> {
    match obj.get("error")? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(e) => Some(match e.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => Value::Object(e.clone()).to_string(),
        }),
        other => Some(other.to_string()),
    }
}

/// A source field as given, or `None` when absent or blank: a blank URL is no source, and
/// would reach clients as an empty `citations` entry.
fn non_blank(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty()).map(str::to_string)
}

/// Sources of a response or chunk: `citations` (URL strings) merged with `search_results`
/// (objects with `title` and `url`), in that order, one entry per URL.
pub fn parse_citations(obj: &Map<String, Value>) -> Result<Vec<Citation>, WireError> {
    let mut out = Vec::new();
    match obj.get("citations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            let mut list = Vec::with_capacity(a.len());
            for (i, c) in a.iter().enumerate() {
                match c {
                    Value::String(u) => list.push(Citation {
                        url: non_blank(Some(u)),
                        title: None,
                    }),
                    // Some OpenAI-compatible proxies send objects here.
                    Value::Object(o) => list.push(Citation {
                        url: non_blank(o.get("url").and_then(Value::as_str)),
                        title: non_blank(o.get("title").and_then(Value::as_str)),
                    }),
                    other => {
                        return Err(WireError::invalid(
                            &format!("citations[{i}]"),
                            format!("expected a URL string, found {}", json_type(other)),
                        ))
                    }
                }
            }
            merge_citations(&mut out, list);
        }
        Some(other) => {
            return Err(WireError::invalid(
                "citations",
                format!("expected an array, found {}", json_type(other)),
            ))
        }
    }
    match obj.get("search_results") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            let mut list = Vec::with_capacity(a.len());
            for (i, r) in a.iter().enumerate() {
                let o = r.as_object().ok_or_else(|| {
                    WireError::invalid(
                        &format!("search_results[{i}]"),
                        format!("expected an object, found {}", json_type(r)),
                    )
                })?;
                let s = |k: &str| non_blank(o.get(k).and_then(Value::as_str));
                list.push(Citation {
                    url: s("url"),
                    title: s("title"),
                });
            }
            merge_citations(&mut out, list);
        }
        Some(other) => {
            return Err(WireError::invalid(
                "search_results",
                format!("expected an array, found {}", json_type(other)),
            ))
        }
    }
    out.retain(|c| c.url.is_some() || c.title.is_some());
    Ok(out)
}

fn first_choice(obj: &Map<String, Value>) -> Result<&Map<String, Value>, WireError> {
    match obj.get("choices") {
        None | Some(Value::Null) => Err(WireError::missing("choices")),
        Some(Value::Array(a)) => match a.first() {
            Some(Value::Object(c)) => Ok(c),
            Some(other) => Err(WireError::invalid(
                "choices[0]",
                format!("expected an object, found {}", json_type(other)),
            )),
            None => Err(WireError::invalid("choices", "is empty")),
        },
        Some(other) => Err(WireError::invalid(
            "choices",
            format!("expected an array, found {}", json_type(other)),
        )),
    }
}

/// Parses a non-streamed 200 body: the usual shape through the fast reader
/// ([`super::perplexity_reply`]), anything else through [`parse_chat_response_general`] (the
/// same answer either way; the errors are the general reader's).
pub fn parse_chat_response(body: &str) -> Result<UpstreamAnswer, WireError> {
    if let Some(answer) = super::perplexity_reply::read(body) {
        return Ok(answer);
    }
    parse_chat_response_general(body)
}

/// [`parse_chat_response`] through a `serde_json::Value`, for every body.
pub fn parse_chat_response_general(body: &str) -> Result<UpstreamAnswer, WireError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| WireError::malformed("Perplexity response", format!("invalid JSON ({e})")))?;
    let obj = v.as_object().ok_or_else(|| {
        WireError::malformed(
            "Perplexity response",
            format!("expected a JSON object, found {}", json_type(&v)),
        )
    })?;
    if let Some(msg) = error_message(obj) {
        return Err(upstream_error(msg));
    }
    let choice = first_choice(obj)?;
    let message = match choice.get("message") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => return Err(WireError::missing("choices[0].message")),
        Some(other) => {
            return Err(WireError::invalid(
                "choices[0].message",
                format!("expected an object, found {}", json_type(other)),
            ))
        }
    };
    let content = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(WireError::missing("choices[0].message.content")),
        Some(other) => {
            return Err(WireError::invalid(
                "choices[0].message.content",
                format!("expected a string, found {}", json_type(other)),
            ))
        }
    };
    Ok(UpstreamAnswer {
        content,
        citations: parse_citations(obj)?,
        llm_generated: None,
    })
}

/// Interprets the `data` of one SSE event: `[DONE]` → [`StreamItem::Done`]; an `error` object
/// or unparsable JSON → [`StreamItem::Error`]; otherwise the delta text (if any), the citations
/// (if the chunk carries any) and, when `choices[0].finish_reason` is set, [`StreamItem::Done`]
/// (Perplexity's only end marker: it sends no `[DONE]`). A stream's events go through
/// [`super::perplexity_event::EventReader`] first, which reads the usual event in one pass and
/// hands everything else here.
pub fn parse_stream_event(data: &str) -> Vec<StreamItem> {
    let data = data.trim();
    if data == "[DONE]" {
        return vec![StreamItem::Done];
    }
    let v: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            return vec![StreamItem::Error(format!(
                "Perplexity stream event is not valid JSON ({e})"
            ))]
        }
    };
    let Some(obj) = v.as_object() else {
        return vec![StreamItem::Error(format!(
            "Perplexity stream event is {}, expected an object",
            json_type(&v)
        ))];
    };
    if let Some(msg) = error_message(obj) {
        return vec![StreamItem::Error(if msg.trim().is_empty() {
            "Perplexity stream reported an error without a message".to_string()
        } else {
            msg
        })];
    }
    let mut items = Vec::new();
    let choice = obj
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    let text = choice
        .and_then(|c| c.get("delta"))
        .and_then(|d| d.get("content"))
        .and_then(Value::as_str);
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        items.push(StreamItem::Delta(t.to_string()));
    }
    match parse_citations(obj) {
        Ok(c) if !c.is_empty() => items.push(StreamItem::Citations(c)),
        Ok(_) => {}
        Err(e) => {
            items.push(StreamItem::Error(e.to_string()));
            return items;
        }
    }
    let finished = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .is_some_and(|r| !r.is_empty());
    if finished {
        items.push(StreamItem::Done);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `make fuzz` (target `perplexity_reply`): a blank entry in `citations` was kept
    /// as a citation with an empty URL, and went out to clients as `"citations": [""]`.
    #[test]
    fn blank_citation_urls_are_not_sources() {
        let body = r#"{"choices": [{"message": {"content": "a"}}],
                      "citations": ["", " ", "https://a.example/", {"url": "", "title": ""}],
                      "search_results": [{"url": " ", "title": "T"}]}"#;
        let a = parse_chat_response(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.citations,
            vec![
                Citation {
                    url: Some("https://a.example/".into()),
                    title: None
                },
                Citation {
                    url: None,
                    title: Some("T".into())
                },
            ]
        );
    }

    /// Found by `make fuzz` (target `perplexity_stream`): `{"error": ""}` gave a blank error.
    #[test]
    fn an_error_event_without_a_message_still_says_what_failed() {
        match parse_stream_event(r#"{"error": ""}"#).as_slice() {
            [StreamItem::Error(m)] => assert!(m.contains("Perplexity"), "{m:?}"),
            other => panic!("{other:?}"),
        }
    }
}
