//! `translate`: `pass` plus the JSON work any router that translates between OpenAI's and
//! Perplexity's chat formats does on a request, whatever it decides: parse the client's body
//! (serde_json `Value`), write Perplexity's body from it, parse Perplexity's answer, write the
//! OpenAI answer. A streamed request is translated on the way in only; its answer is piped
//! through as `pass` pipes it (translating each event is the router's own streamed path).

use serde_json::{json, Value};
use worker::{event, Context, Env, Request, Response, ResponseBody, Result};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let client: Value = serde_json::from_str(&req.text().await?)?;
    let stream = client.get("stream").and_then(Value::as_bool) == Some(true);
    let outgoing = json!({
        "model": client.get("model").and_then(Value::as_str).unwrap_or("sonar"),
        "messages": client.get("messages").cloned().unwrap_or(Value::Null),
        "stream": stream,
    })
    .to_string();
    let mut upstream = super::upstream::post(&env, &outgoing).await?;
    let status = upstream.status_code();
    if stream {
        let body = match upstream.body() {
            ResponseBody::Stream(s) => ResponseBody::Stream(s.clone()),
            _ => ResponseBody::Empty,
        };
        return Ok(Response::builder()
            .with_status(status)
            .with_header("content-type", "text/event-stream")?
            .body(body));
    }
    let reply: Value = serde_json::from_str(&upstream.text().await?)?;
    let choice = reply.pointer("/choices/0");
    let answer = json!({
        "id": reply.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": reply.get("created").cloned().unwrap_or(Value::Null),
        "model": reply.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": choice.and_then(|c| c.pointer("/message/content")).cloned().unwrap_or(Value::Null),
            },
            "finish_reason": choice.and_then(|c| c.get("finish_reason")).cloned().unwrap_or(Value::Null),
        }],
        "usage": reply.get("usage").cloned().unwrap_or(Value::Null),
    });
    Ok(Response::builder()
        .with_status(status)
        .with_header("content-type", "application/json")?
        .fixed(answer.to_string().into_bytes()))
}
