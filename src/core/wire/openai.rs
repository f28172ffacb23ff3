//! The router's front door: OpenAI-compatible `POST /v1/chat/completions`.
//!
//! Why OpenAI's format: the CMO chat app (and most LLM tooling) already talks to Perplexity
//! through an OpenAI client, so pointing it at the router is a base-URL change. Responses are
//! Perplexity-compatible too (`citations` as URL strings, `search_results` with titles) and add
//! one extension object, `routing`, saying which upstream served and why. Parsing is strict and
//! every error names the offending field (`messages[2].content`), so a client learns what to fix
//! from the 400 body.

use super::answer::{json_type, opt_str, parse_object, Citation, WireError};
use super::json_out::JsonOut;
use crate::core::model::{Arm, Reason, Upstream};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Roles accepted in `messages[].role`.
pub const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// One chat message, with its content flattened to text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A parsed chat-completions request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// The text of the last `user` message, trimmed: what is routed, classified and sent to
    /// LightRAG.
    pub query: String,
    /// OpenAI's `user` field: the stickiness key (docs/architecture.md#cohort-hashing). Empty strings count as absent.
    pub user: Option<String>,
    pub stream: bool,
    pub model: Option<String>,
    /// Non-standard but common: a conversation id, the stickiness fallback after `user`.
    pub session_id: Option<String>,
}

/// How and why a request was routed; serialised into responses as `routing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingInfo {
    /// The upstream that served the answer (after any fallback).
    pub upstream: Upstream,
    /// The routing reason (`rollout_in`, `rule:<name>`, `circuit_open`, ...).
    pub reason: Reason,
    /// The A/B arm the user was assigned to (`treatment`, `control`, `none`).
    pub arm: Arm,
    /// The user's hashed position in [0, 100), when one was computed.
    pub position: Option<f64>,
    pub fallback_used: bool,
    /// Why a fallback served (`no_context`, `failed`, `not_sent`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub config_version: u64,
    /// `hit` when the answer came from the response cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
}

/// Parses and validates a chat-completions request body.
pub fn parse_chat_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let obj = parse_object(body, "request body")?;
    let messages_v = match obj.get("messages") {
        None | Some(Value::Null) => return Err(WireError::missing("messages")),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(WireError::invalid(
                "messages",
                format!("expected an array of messages, found {}", json_type(other)),
            ))
        }
    };
    if messages_v.is_empty() {
        return Err(WireError::invalid(
            "messages",
            "must contain at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(messages_v.len());
    for (i, m) in messages_v.iter().enumerate() {
        messages.push(parse_message(i, m)?);
    }
    let query = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.trim().to_string())
        .ok_or_else(|| WireError::invalid("messages", "must contain a message with role `user`"))?;
    if query.is_empty() {
        return Err(WireError::invalid(
            "messages",
            "the last `user` message has empty content",
        ));
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(WireError::invalid(
                "stream",
                format!("expected a boolean, found {}", json_type(other)),
            ))
        }
    };
    let non_empty = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
    Ok(ChatRequest {
        messages,
        query,
        user: non_empty(opt_str(&obj, "user", "user")?),
        stream,
        model: non_empty(opt_str(&obj, "model", "model")?),
        session_id: non_empty(opt_str(&obj, "session_id", "session_id")?),
    })
}

fn parse_message(i: usize, m: &Value) -> Result<ChatMessage, WireError> {
    let field = |name: &str| format!("messages[{i}].{name}");
    let obj = match m {
        Value::Object(o) => o,
        other => {
            return Err(WireError::invalid(
                &format!("messages[{i}]"),
                format!("expected an object, found {}", json_type(other)),
            ))
        }
    };
    let role = match obj.get("role") {
        None | Some(Value::Null) => return Err(WireError::missing(&field("role"))),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(WireError::invalid(
                &field("role"),
                format!("expected a string, found {}", json_type(other)),
            ))
        }
    };
    if !ROLES.contains(&role.as_str()) {
        return Err(WireError::invalid(
            &field("role"),
            format!("`{role}` is not one of {}", ROLES.join(", ")),
        ));
    }
    let content = match obj.get("content") {
        // Assistant turns that only carried tool calls have null content.
        None | Some(Value::Null) if role != "user" && role != "system" => String::new(),
        None | Some(Value::Null) => return Err(WireError::missing(&field("content"))),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => text_of_parts(i, parts)?,
        Some(other) => {
            return Err(WireError::invalid(
                &field("content"),
                format!(
                    "expected a string or an array of text parts, found {}",
                    json_type(other)
                ),
            ))
        }
    };
    Ok(ChatMessage { role, content })
}

fn text_of_parts(i: usize, parts: &[Value]) -> Result<String, WireError> {
    let mut texts = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let field = format!("messages[{i}].content[{j}]");
        let obj = match p {
            Value::Object(o) => o,
            other => {
                return Err(WireError::invalid(
                    &field,
                    format!("expected a content part object, found {}", json_type(other)),
                ))
            }
        };
        match obj.get("type") {
            Some(Value::String(t)) if t == "text" => {}
            Some(Value::String(t)) => {
                return Err(WireError::invalid(
                    &format!("{field}.type"),
                    format!("content part type `{t}` is not supported; only `text` is"),
                ))
            }
            None | Some(Value::Null) => return Err(WireError::missing(&format!("{field}.type"))),
            Some(other) => {
                return Err(WireError::invalid(
                    &format!("{field}.type"),
                    format!("expected a string, found {}", json_type(other)),
                ))
            }
        }
        match obj.get("text") {
            Some(Value::String(t)) => texts.push(t.as_str()),
            None | Some(Value::Null) => return Err(WireError::missing(&format!("{field}.text"))),
            Some(other) => {
                return Err(WireError::invalid(
                    &format!("{field}.text"),
                    format!("expected a string, found {}", json_type(other)),
                ))
            }
        }
    }
    Ok(texts.join("\n"))
}

/// A complete `chat.completion` object. `citations` holds one string per source (URL, or the
/// document name for LightRAG sources without one), `search_results` the same sources with
/// titles, and `routing` the router's decision.
pub fn chat_response(
    id: &str,
    created_s: u64,
    model: &str,
    content: &str,
    citations: &[Citation],
    routing: &RoutingInfo,
) -> String {
    // Written directly (super::json_out says why), keys in the sorted order the `Value` path
    // wrote them.
    let mut o = JsonOut::with_capacity(content.len() + 256 + 96 * citations.len());
    o.raw(r#"{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"#)
        .str(content)
        .raw(r#","role":"assistant"}}],"citations":"#);
    write_labels(&mut o, citations);
    o.raw(r#","created":"#)
        .u64(created_s)
        .raw(r#","id":"#)
        .str(id)
        .raw(r#","model":"#)
        .str(model)
        .raw(r#","object":"chat.completion","routing":"#);
    write_routing(&mut o, routing);
    o.raw(r#","search_results":"#);
    write_search_results(&mut o, citations);
    o.raw("}");
    o.finish()
}

/// `citations` as the answer's `citations` array: one label per source.
fn write_labels(o: &mut JsonOut, citations: &[Citation]) {
    o.raw("[");
    for (i, c) in citations.iter().enumerate() {
        if i > 0 {
            o.raw(",");
        }
        o.str(c.label());
    }
    o.raw("]");
}

/// `citations` as the answer's `search_results` array: `{"title", "url"}` per source.
fn write_search_results(o: &mut JsonOut, citations: &[Citation]) {
    o.raw("[");
    for (i, c) in citations.iter().enumerate() {
        if i > 0 {
            o.raw(",");
        }
        o.raw(r#"{"title":"#)
            .opt_str(c.title.as_deref())
            .raw(r#","url":"#)
            .opt_str(c.url.as_deref())
            .raw("}");
    }
    o.raw("]");
}

/// `routing` as `serde_json::to_value(routing)` serialises it (keys sorted, `None`s skipped).
fn write_routing(o: &mut JsonOut, r: &RoutingInfo) {
    o.raw(r#"{"arm":"#).str(r.arm.as_str());
    if let Some(cache) = &r.cache {
        o.raw(r#","cache":"#).str(cache);
    }
    o.raw(r#","config_version":"#).u64(r.config_version);
    if let Some(why) = &r.fallback_reason {
        o.raw(r#","fallback_reason":"#).str(why);
    }
    o.raw(r#","fallback_used":"#)
        .bool(r.fallback_used)
        .raw(r#","position":"#)
        .opt_f64(r.position)
        .raw(r#","reason":"#);
    match &r.reason {
        Reason::Rule(_) => o.str(&r.reason.to_string()),
        other => o.str(other.as_str()),
    };
    o.raw(r#","upstream":"#).str(r.upstream.as_str()).raw("}");
}

/// The head of a `chat.completion.chunk` SSE frame up to its `delta` object: `data: ` and the
/// keys in the sorted order the `Value` path wrote them (`choices` first).
fn chunk_head(capacity: usize) -> JsonOut {
    let mut o = JsonOut::with_capacity(capacity + 160);
    o.raw(r#"data: {"choices":[{"delta":"#);
    o
}

/// The rest of a chunk frame after its `delta`: `finish_reason` (`null` while streaming), the
/// index, then `created`, `id`, `model`, `object`; `extra` writes members that sort between
/// `choices` and `created` (the final frame's `citations`) — its `routing` and
/// `search_results` sort after `object` and come through `tail`.
fn chunk_rest(
    o: &mut JsonOut,
    frame: &ChunkFrame<'_>,
    finish: Option<&str>,
    extra: impl FnOnce(&mut JsonOut),
    tail: impl FnOnce(&mut JsonOut),
) {
    o.raw(r#","finish_reason":"#)
        .opt_str(finish)
        .raw(r#","index":0}]"#);
    extra(o);
    o.raw(r#","created":"#)
        .u64(frame.created_s)
        .raw(r#","id":"#)
        .str(frame.id)
        .raw(r#","model":"#)
        .str(frame.model)
        .raw(r#","object":"chat.completion.chunk""#);
    tail(o);
    o.raw("}\n\n");
}

/// What every chunk frame of one stream repeats.
struct ChunkFrame<'a> {
    id: &'a str,
    created_s: u64,
    model: &'a str,
}

// The frames below are written directly (super::json_out says why): per streamed event the
// `Value` path built, sorted, wrote and dropped a tree of six objects (~4 % of a streamed
// request's samples in workerd, benches/profile_edge.mjs --stream). The bytes are the ones
// `sse_data(to_json(&json!(…)))` wrote (tests/native/wire_front_door.rs compares them): a
// serialised JSON text has no line breaks, so the frame is `data: ` + JSON + a blank line.

/// First SSE frame of a stream: announces the assistant role, as OpenAI does.
pub fn chunk_start(id: &str, created_s: u64, model: &str) -> String {
    let frame = ChunkFrame {
        id,
        created_s,
        model,
    };
    let mut o = chunk_head(id.len() + model.len());
    o.raw(r#"{"content":"","role":"assistant"}"#);
    chunk_rest(&mut o, &frame, None, |_| {}, |_| {});
    o.finish()
}

/// An SSE frame carrying a piece of answer text.
pub fn chunk_delta(id: &str, created_s: u64, model: &str, text: &str) -> String {
    let frame = ChunkFrame {
        id,
        created_s,
        model,
    };
    let mut o = chunk_head(id.len() + model.len() + text.len());
    o.raw(r#"{"content":"#).str(text).raw("}");
    chunk_rest(&mut o, &frame, None, |_| {}, |_| {});
    o.finish()
}

/// The last content frame: empty delta, `finish_reason`, the sources and the routing object.
/// Follow it with [`DONE`].
pub fn chunk_final(
    id: &str,
    created_s: u64,
    model: &str,
    finish_reason: &str,
    citations: &[Citation],
    routing: &RoutingInfo,
) -> String {
    let frame = ChunkFrame {
        id,
        created_s,
        model,
    };
    let mut o = chunk_head(id.len() + model.len() + 256 + 96 * citations.len());
    o.raw("{}");
    chunk_rest(
        &mut o,
        &frame,
        Some(finish_reason),
        |o| {
            o.raw(r#","citations":"#);
            write_labels(o, citations);
        },
        |o| {
            o.raw(r#","routing":"#);
            write_routing(o, routing);
            o.raw(r#","search_results":"#);
            write_search_results(o, citations);
        },
    );
    o.finish()
}

/// An explicit in-band error frame, for a stream that broke after its first byte reached the
/// client (a fallback is no longer possible, and ending silently would pass a truncated answer
/// off as complete). OpenAI SDKs raise on an `error` object inside the stream.
pub fn chunk_error(message: &str) -> String {
    let mut o = JsonOut::with_capacity(message.len() + 96);
    o.raw(r#"data: {"error":{"code":"stream_truncated","message":"#)
        .str(message)
        .raw(r#","type":"upstream_error"}}"#)
        .raw("\n\n");
    o.finish()
}

/// The terminal frame of every stream.
pub const DONE: &str = super::sse::DONE;
