//! The JSON work any router that translates between OpenAI's and Perplexity's chat formats
//! does on a request, whatever it decides: parse the client's body (serde_json `Value`), write
//! Perplexity's from it, parse Perplexity's answer, write the OpenAI answer. With the `json`
//! feature `pass` and `lean` do it (the `translate` and `lean-translate` builds); without it both
//! functions hand the text on as it is, as the bare worker does. A streamed request is
//! translated on the way in only: its answer is piped through untouched (translating each event
//! is the router's own streamed path, not a floor).

/// The body to POST upstream, and whether the client asked for a stream.
#[cfg(feature = "json")]
pub fn request(client: String) -> Result<(String, bool), String> {
    use serde_json::{json, Value};
    let client: Value = serde_json::from_str(&client).map_err(|e| e.to_string())?;
    let stream = client.get("stream").and_then(Value::as_bool) == Some(true);
    let outgoing = json!({
        "model": client.get("model").and_then(Value::as_str).unwrap_or("sonar"),
        "messages": client.get("messages").cloned().unwrap_or(Value::Null),
        "stream": stream,
    });
    Ok((outgoing.to_string(), stream))
}

/// The body to POST upstream, and whether the client asked for a stream (the bare worker's
/// test).
#[cfg(not(feature = "json"))]
pub fn request(client: String) -> Result<(String, bool), String> {
    let stream = client.contains("\"stream\":true");
    Ok((client, stream))
}

/// The client's answer from Perplexity's (non-streamed).
#[cfg(feature = "json")]
pub fn answer(upstream: String) -> Result<String, String> {
    use serde_json::{json, Value};
    let reply: Value = serde_json::from_str(&upstream).map_err(|e| e.to_string())?;
    let field = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
    let choice = reply.pointer("/choices/0");
    Ok(json!({
        "id": field(reply.get("id")),
        "object": "chat.completion",
        "created": field(reply.get("created")),
        "model": field(reply.get("model")),
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": field(choice.and_then(|c| c.pointer("/message/content"))),
            },
            "finish_reason": field(choice.and_then(|c| c.get("finish_reason"))),
        }],
        "usage": field(reply.get("usage")),
    })
    .to_string())
}

/// The client's answer from Perplexity's (non-streamed): as it came.
#[cfg(not(feature = "json"))]
pub fn answer(upstream: String) -> Result<String, String> {
    Ok(upstream)
}
