//! The runtime's `fetch(url, init)`, called directly.
//!
//! Why not `worker::Fetch`: it builds a `worker::Request` (reading the new request's method,
//! URL, headers and `cf` back out of JS), then a second `Request` to attach the abort signal,
//! and wraps the answer in a `worker::Response` (reading its headers, status, `websocket` and
//! `cf`); reading the body as text then builds yet another JS `Response` around the stream. A
//! workerd CPU profile of the router (benches/profile_edge.mjs) showed those wrappers among the
//! largest costs of a request. The upstream adapters need only the status, the body as text or
//! as a stream, and an abort signal — all on `web_sys::Response` as the runtime gives it.
//!
//! The same holds for the incoming request: `worker::Request::from` reads its `cf` object
//! (workerd builds it from the request's metadata on every read: ~5 % of the router's CPU in
//! that profile), and the router never looks at it: on the routes that make one,
//! `incoming.js` `hideCf` hides it first, with an own `cf` property set to `undefined` that
//! shadows the runtime's getter on this one object (the router neither reads `cf` nor forwards
//! the client's request anywhere; the chat routes never make a `worker::Request`).
//!
//! Each step of a call — send and wait for the headers, read the whole body, read the next
//! chunk of a stream — is one call into `upstream_io.js`, its deadline a timer there: driven
//! from Rust, every header, deadline (a `setTimeout` closure each) and await was its own
//! crossing, and they were the largest cost left in that profile.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(module = "/src/edge/upstream_io.js")]
extern "C" {
    /// What a step gave: `{kind, …}` (upstream_io.js says which fields each kind carries).
    pub type Outcome;
    #[wasm_bindgen(method, getter)]
    fn kind(this: &Outcome) -> String;
    #[wasm_bindgen(method, getter)]
    fn error(this: &Outcome) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn text(this: &Outcome) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Outcome) -> Option<u16>;
    #[wasm_bindgen(method, getter)]
    fn at(this: &Outcome) -> Option<f64>;
    #[wasm_bindgen(method, getter)]
    fn response(this: &Outcome) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn value(this: &Outcome) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn body(this: &Outcome) -> JsValue;
    /// `open`'s outcome as one number (upstream_io.js `OPENED`).
    #[wasm_bindgen(method, getter)]
    fn code(this: &Outcome) -> u32;

    #[wasm_bindgen(js_name = send)]
    fn js_send(
        url: &str,
        headers: &JsValue,
        body: &str,
        controller: Option<&web_sys::AbortController>,
        client: Option<&web_sys::AbortSignal>,
        head_at: f64,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = open)]
    fn js_open(
        url: &str,
        headers: &JsValue,
        body: &str,
        controller: Option<&web_sys::AbortController>,
        client: Option<&web_sys::AbortSignal>,
        head_at: f64,
        unit: &str,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = complete)]
    fn js_complete(
        url: &str,
        headers: &JsValue,
        body: &str,
        controller: Option<&web_sys::AbortController>,
        client: Option<&web_sys::AbortSignal>,
        head_at: f64,
        done_at: f64,
        error_body_at: f64,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = text)]
    fn js_text_until(response: &web_sys::Response, done_at: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = read)]
    fn js_read(body: &JsValue, at: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = close)]
    fn js_close(body: &JsValue);
    #[wasm_bindgen(js_name = respond)]
    fn js_respond(body: &str, status: u16, headers: &web_sys::Headers) -> web_sys::Response;
    #[wasm_bindgen(js_name = respondWith)]
    fn js_respond_with(body: &str, status: u16, headers: &str) -> web_sys::Response;
    #[wasm_bindgen(js_name = respondWith)]
    fn js_respond_stream_with(
        body: &web_sys::ReadableStream,
        status: u16,
        headers: &str,
    ) -> web_sys::Response;
}

/// A POST of `body` (text) to `url` with `headers`, aborted with `controller` or when `client`
/// (the incoming request's signal) aborts.
pub struct Post<'a> {
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a str,
    pub controller: Option<&'a web_sys::AbortController>,
    pub client: Option<&'a web_sys::AbortSignal>,
}

impl Post<'_> {
    /// The headers as `upstream_io.js` `post` takes them: `name\0value\0name\0value…`, one
    /// string. Why: a `Vec<String>` crosses as one JS string per name and value plus the array
    /// (wasm-bindgen's glue), ~10 µs of a call's set-up in in-worker timestamps, where the one
    /// string and its split in JS cost ~3. As a list when a name or value holds a NUL (which
    /// `fetch` refuses as it always did, instead of the split pairing them wrongly).
    fn header_arg(&self) -> JsValue {
        let nul = |s: &str| s.contains('\0');
        if self.headers.iter().any(|(k, v)| nul(k) || nul(v)) {
            return self
                .headers
                .iter()
                .flat_map(|(k, v)| [JsValue::from_str(k), JsValue::from_str(v)])
                .collect::<js_sys::Array>()
                .into();
        }
        let mut text = String::new();
        for (i, (k, v)) in self.headers.iter().enumerate() {
            if i > 0 {
                text.push('\0');
            }
            text.push_str(k);
            text.push('\0');
            text.push_str(v);
        }
        JsValue::from_str(&text)
    }
}

/// Deadlines of a call, epoch ms.
pub struct Deadlines {
    /// The response headers by then.
    pub head_by_ms: u64,
    /// A 2xx body complete by then.
    pub done_by_ms: u64,
    /// Another status's body (read for the log) by then, and at most 2 s after the headers.
    pub error_body_by_ms: u64,
}

/// How waiting for the response headers ended.
pub enum Head {
    /// They arrived.
    Arrived(web_sys::Response),
    /// Not by the deadline.
    Late,
    /// The runtime's error as text.
    Failed(String),
}

/// How a complete call ended.
pub enum Whole {
    /// A 2xx with its body; the headers arrived at `head_ms`.
    Text { text: String, head_ms: u64 },
    /// Another status, with what its body said (empty when unreadable in time).
    Status { status: u16, text: String },
    /// No headers by the deadline.
    NoHead,
    /// The connection failed.
    Connect(String),
    /// The body did not complete by the deadline.
    BodyTimeout,
    /// The body broke off.
    BodyBroken(String),
}

/// What one read of a streamed body gave.
pub enum Chunk {
    Bytes(Vec<u8>),
    End,
    /// Nothing by the deadline (the read stays in flight for the next call).
    Timeout,
    Broken(String),
}

async fn outcome(p: js_sys::Promise) -> Result<Outcome, String> {
    super::settle::Settle::new(p)
        .await
        .map(JsCast::unchecked_into::<Outcome>)
        .map_err(js_text)
}

fn ms(o: &Outcome) -> u64 {
    o.at().unwrap_or(0.0) as u64
}

/// Sends `p` and waits for the response headers until `head_by_ms`.
pub async fn send(p: &Post<'_>, head_by_ms: u64) -> Head {
    let o = match outcome(js_send(
        p.url,
        &p.header_arg(),
        p.body,
        p.controller,
        p.client,
        head_by_ms as f64,
    ))
    .await
    {
        Ok(o) => o,
        Err(e) => return Head::Failed(e),
    };
    head_of(&o)
}

/// A head outcome (`send`'s, by its `kind`).
fn head_of(o: &Outcome) -> Head {
    let kind = match o.kind().as_str() {
        "head" => 0,
        "no_head" => 1,
        _ => 2,
    };
    head(o, kind)
}

/// The head of outcome `o` whose kind is numbered as upstream_io.js `OPENED` numbers it: head
/// 0, no_head 1, connect (or anything else) 2.
fn head(o: &Outcome, kind: u32) -> Head {
    match kind {
        0 => match o.response().dyn_into::<web_sys::Response>() {
            Ok(response) => Head::Arrived(response),
            Err(_) => Head::Failed("fetch did not return a Response".to_string()),
        },
        1 => Head::Late,
        _ => Head::Failed(o.error().unwrap_or_default()),
    }
}

/// What the first chunk of a stream should hold whole (`upstream_io.js` `open` reads on until
/// it does, by the same deadline).
#[derive(Clone, Copy)]
pub enum Unit {
    /// An SSE event (up to its blank line).
    SseEvent,
    /// An NDJSON line.
    Line,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::SseEvent => "event",
            Unit::Line => "line",
        }
    }
}

/// [`send`] for a stream: a 2xx response's body reader comes with the headers, and with what
/// its first read gave by `head_by_ms` (asked for in the same JS turn the headers arrived in,
/// and awaited there: one round through Rust for the headers and the first chunk, not two —
/// the first chunk is on the way to the client's first byte).
pub async fn open(
    p: &Post<'_>,
    head_by_ms: u64,
    unit: Unit,
) -> (Head, Option<BodyReader>, Option<Chunk>) {
    let o = match outcome(js_open(
        p.url,
        &p.header_arg(),
        p.body,
        p.controller,
        p.client,
        head_by_ms as f64,
        unit.as_str(),
    ))
    .await
    {
        Ok(o) => o,
        Err(e) => return (Head::Failed(e), None, None),
    };
    // One number for both kinds (upstream_io.js `OPENED`): a string getter each was three
    // crossings with a string copied into Rust, on the way to the first text.
    let code = o.code();
    let head = head(&o, code & 3);
    let first = (code >> 2 != 0).then(|| chunk(&o, code >> 2));
    let body = o.body();
    // Lazily: a `BodyReader` of nothing would close nothing when dropped (a JS TypeError).
    let reader = (!body.is_undefined()).then(|| BodyReader(body));
    (head, reader, first)
}

/// Sends `p` and reads the whole answer within `d`.
pub async fn complete(p: &Post<'_>, d: &Deadlines) -> Whole {
    let o = match outcome(js_complete(
        p.url,
        &p.header_arg(),
        p.body,
        p.controller,
        p.client,
        d.head_by_ms as f64,
        d.done_by_ms as f64,
        d.error_body_by_ms as f64,
    ))
    .await
    {
        Ok(o) => o,
        Err(e) => return Whole::Connect(e),
    };
    match o.kind().as_str() {
        "text" => Whole::Text {
            text: o.text().unwrap_or_default(),
            head_ms: ms(&o),
        },
        "status" => Whole::Status {
            status: o.status().unwrap_or(0),
            text: o.text().unwrap_or_default(),
        },
        "no_head" => Whole::NoHead,
        "timeout" => Whole::BodyTimeout,
        "broken" => Whole::BodyBroken(o.error().unwrap_or_default()),
        _ => Whole::Connect(o.error().unwrap_or_default()),
    }
}

/// `resp`'s whole body as text, if it is read by epoch ms `at_ms` (an error body, for the log).
pub async fn text_by(resp: &web_sys::Response, at_ms: u64) -> Option<String> {
    let o = outcome(js_text_until(resp, at_ms as f64)).await.ok()?;
    (o.kind() == "text").then(|| o.text()).flatten()
}

/// A streamed body being read, one chunk at a time ([`BodyReader::read`]). Dropping it stops
/// its deadline timer.
pub struct BodyReader(JsValue);

impl Drop for BodyReader {
    fn drop(&mut self) {
        js_close(&self.0);
    }
}

impl BodyReader {
    /// The reader itself, for `upstream_io.js`'s `read` called from the JS side.
    pub fn js(&self) -> &JsValue {
        &self.0
    }

    /// The next chunk, until epoch ms `at_ms`.
    pub async fn read(&self, at_ms: u64) -> Chunk {
        let o = match outcome(js_read(&self.0, at_ms as f64)).await {
            Ok(o) => o,
            Err(e) => return Chunk::Broken(e),
        };
        chunk_of(&o)
    }
}

/// What a read gave (`upstream_io.js` `read`).
/// A read's outcome (`read`'s, by its `kind`).
fn chunk_of(o: &Outcome) -> Chunk {
    let kind = match o.kind().as_str() {
        "chunk" => 1,
        "end" => 2,
        "timeout" => 3,
        _ => 4,
    };
    chunk(o, kind)
}

/// The chunk of outcome `o` whose kind is numbered as upstream_io.js `OPENED` numbers a first
/// read's: chunk 1, end 2, timeout 3, broken (or anything else) 4.
fn chunk(o: &Outcome, kind: u32) -> Chunk {
    match kind {
        1 => Chunk::Bytes(o.value().unchecked_into::<js_sys::Uint8Array>().to_vec()),
        2 => Chunk::End,
        3 => Chunk::Timeout,
        _ => Chunk::Broken(o.error().unwrap_or_default()),
    }
}

/// `resp` as the runtime's Response. A text body goes over as a string
/// (`upstream_io.js` `respond`); streams, empty bodies and anything else as `worker` converts
/// them.
pub fn into_raw(resp: worker::Response) -> web_sys::Response {
    if let worker::ResponseBody::Body(bytes) = resp.body() {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return js_respond(text, resp.status_code(), &resp.headers().0);
        }
    }
    resp.into()
}

/// The router's own response kept in Rust (`http::Own`) as the runtime's Response: body,
/// status and every header in one call (`upstream_io.js` `respondWith`).
pub fn respond_own(o: &super::http::Own) -> web_sys::Response {
    match &o.stream {
        Some(stream) => js_respond_stream_with(stream, o.status, &o.header_text()),
        None => js_respond_with(&o.body, o.status, &o.header_text()),
    }
}

/// A JS exception as text (its message when it is an `Error`).
fn js_text(e: wasm_bindgen::JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}
