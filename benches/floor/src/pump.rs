//! The `pump` feature: `lean`'s streamed answer through Rust, chunk by chunk, as the router's
//! (src/edge/pump.rs, upstream_io.js `pipe`) — the floor of a router that reads the stream
//! instead of handing it on. Without `json` each chunk crosses into wasm and back unchanged;
//! with it each whole SSE event is translated (its JSON parsed, an OpenAI
//! `chat.completion.chunk` frame written with the event's `delta`), a partial event kept for the
//! next chunk.

use wasm_bindgen::prelude::wasm_bindgen;

/// One stream's state: the bytes of an event not complete yet.
#[wasm_bindgen]
pub struct FloorPump {
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pending: Vec<u8>,
}

impl FloorPump {
    pub fn new() -> FloorPump {
        FloorPump {
            pending: Vec::new(),
        }
    }
}

#[wasm_bindgen]
impl FloorPump {
    /// What to write for `bytes`, the upstream's next chunk.
    #[cfg(not(feature = "json"))]
    pub fn chunk(&mut self, bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }

    /// What to write for `bytes`, the upstream's next chunk: a frame per whole event in it.
    #[cfg(feature = "json")]
    pub fn chunk(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + sep).collect();
            if let Some(frame) = translate(&event[..end]) {
                out.extend_from_slice(frame.as_bytes());
            }
        }
        out
    }
}

/// Where the first event in `b` ends, and its separator's length (a blank line: CRLF CRLF or
/// LF LF).
#[cfg(feature = "json")]
fn event_end(b: &[u8]) -> Option<(usize, usize)> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(c)) => Some(if a.0 <= c.0 { a } else { c }),
        (a, c) => a.or(c),
    }
}

/// The OpenAI chunk frame for one Perplexity event (its `data:` lines' JSON), or none.
#[cfg(feature = "json")]
fn translate(event: &[u8]) -> Option<String> {
    use serde_json::{json, Value};
    let text = std::str::from_utf8(event).ok()?;
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    let v: Value = serde_json::from_str(&data).ok()?;
    let field = |x: Option<&Value>| x.cloned().unwrap_or(Value::Null);
    let choice = v.pointer("/choices/0");
    let frame = json!({
        "id": field(v.get("id")),
        "object": "chat.completion.chunk",
        "created": field(v.get("created")),
        "model": field(v.get("model")),
        "choices": [{
            "index": 0,
            "delta": { "content": field(choice.and_then(|c| c.pointer("/delta/content"))) },
            "finish_reason": field(choice.and_then(|c| c.get("finish_reason"))),
        }],
    });
    Some(format!("data: {frame}\n\n"))
}
