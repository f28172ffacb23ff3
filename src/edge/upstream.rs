//! Upstream adapters: LightRAG (`/query`, `/query/stream` NDJSON, `X-API-Key`) and Perplexity
//! (`/chat/completions`, bearer key, SSE). This module only performs I/O: it makes the call a
//! [`Call`] step describes, races it against the step's deadlines, and reports the facts
//! ([`Fault`], first byte, chunks) for [`crate::core::exchange`] to judge. Bodies are built and
//! parsed by [`crate::core::wire`].
//!
//! Every fetch runs under an `AbortController` that is aborted when its owner is dropped, so a
//! call abandoned for any reason — a timeout, a cut, a client that went away and took the
//! response stream with it — never keeps the upstream working for nobody.
//!
//! Streams are opened in two steps so a fallback stays possible until the first byte reaches
//! the client: [`open_stream`] waits for the first piece of answer text (by the call's
//! `first_byte_by_ms`); only then does the caller commit and pipe the rest through
//! [`UpstreamStream::next`].

use super::fetch::{self, BodyReader, Chunk, Deadlines, Head, Post, Whole};
use crate::core::exchange::{Call, Fault};
use crate::core::guard::deployment::UrlPolicy;
use crate::core::model::Upstream;
use crate::core::redact::{redact, DEFAULT_MAX_CHARS};
use crate::core::wire::conversation::conversation;
use crate::core::wire::lightrag::QueryMode;
use crate::core::wire::ndjson::NdjsonDecoder;
use crate::core::wire::openai::ChatMessage;
use crate::core::wire::perplexity_event::EventReader;
use crate::core::wire::perplexity_query::{self, QueryParams};
use crate::core::wire::sse::SseDecoder;
use crate::core::wire::{lightrag, perplexity, StreamItem, UpstreamAnswer};
use std::collections::BTreeSet;

/// Where and how to call the upstreams (secrets never leave this struct except as headers).
#[derive(Clone)]
pub struct Targets {
    pub lightrag_base: String,
    pub perplexity_base: String,
    pub lightrag_key: Option<String>,
    pub perplexity_key: Option<String>,
    pub query_mode: QueryMode,
    pub model: Option<String>,
    /// The incoming request's signal, aborted when the client disconnects
    /// (`enable_request_signal`): every subrequest is aborted with it.
    pub client: Option<web_sys::AbortSignal>,
    /// Which base URLs may receive a key (https only outside development).
    pub url_policy: UrlPolicy,
    /// `POST /query`: the router builds the Perplexity request itself, with the previous
    /// service's parameters ([`perplexity_query`]); `None` for the chat pass-through.
    pub perplexity_query: Option<PerplexityQuery>,
}

/// `POST /query`'s Perplexity parameters (`PERPLEXITY_QUERY_*`), owned.
#[derive(Clone)]
pub struct PerplexityQuery {
    pub model: String,
    pub temperature: f64,
    pub search_domain_filter: BTreeSet<String>,
    pub system_prompt: String,
}

impl Targets {
    /// Upstream text made safe to log: our keys and anything like a credential or a path out.
    pub fn redact(&self, text: &str) -> String {
        let keys: Vec<&str> = [&self.lightrag_key, &self.perplexity_key]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        redact(text, &keys, DEFAULT_MAX_CHARS)
    }
}

/// What to ask.
pub struct Ask<'a> {
    pub query: &'a str,
    pub messages: &'a [ChatMessage],
}

/// Why an attempt gave no answer.
pub enum Miss {
    /// The router would not send it; the reason is the router's own words, safe to show.
    NotSent(String),
    /// It failed: the fact for the exchange, and a redacted detail for the log.
    Failed(Fault, String),
}

/// A complete answer and when its response headers arrived.
pub struct Complete {
    pub answer: UpstreamAnswer,
    pub head_ms: u64,
}

fn now() -> u64 {
    super::isolate::now_ms()
}

/// An `AbortController` aborted when dropped, and the client's signal: the fetch under it is
/// aborted by either (the two are combined on the JS side, `upstream_io.js`).
struct AbortOnDrop {
    controller: Option<web_sys::AbortController>,
    client: Option<web_sys::AbortSignal>,
}

impl AbortOnDrop {
    fn new(client: Option<&web_sys::AbortSignal>) -> AbortOnDrop {
        AbortOnDrop {
            controller: web_sys::AbortController::new().ok(),
            client: client.cloned(),
        }
    }
}

impl AbortOnDrop {
    /// The call is over (its body read to the end): nothing is left to abort, and aborting a
    /// finished fetch is not free (workerd builds the abort reason, an exception; the largest
    /// self time in a profile of the router, benches/profile_edge.mjs).
    fn finished(&mut self) {
        self.controller = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.controller.take() {
            c.abort();
        }
    }
}

/// An upstream request, built and ready to send.
struct Outgoing {
    url: String,
    body: String,
    accept: &'static str,
    /// The key header, if a key is configured: (`x-api-key`, key) or (`authorization`, `Bearer …`).
    key: Option<(&'static str, String)>,
}

fn build_request(t: &Targets, u: Upstream, ask: &Ask<'_>, stream: bool) -> Result<Outgoing, Miss> {
    let not_sent =
        |detail: String| Miss::NotSent(format!("{u} cannot take this request: {detail}"));
    let base = match u {
        Upstream::Lightrag => &t.lightrag_base,
        Upstream::Perplexity => &t.perplexity_base,
    };
    // No key goes over plain http outside development.
    // A deployment problem, not the request's: it fails like a connection that cannot be
    // made (the breaker takes LightRAG out of the path; the status document names the URL).
    t.url_policy
        .check(u, base)
        .map_err(|why| Miss::Failed(Fault::Connect, format!("{u} refused locally: {why}")))?;
    let (url, body) = match u {
        // The whole conversation: earlier turns as `conversation_history`, system messages as
        // `user_prompt`, trimmed to the server's limits (core::wire::conversation).
        Upstream::Lightrag => (
            format!(
                "{}{}",
                t.lightrag_base.trim_end_matches('/'),
                lightrag::query_path(stream)
            ),
            lightrag::conversation_body(&conversation(ask.messages), t.query_mode, stream)
                .map_err(|e| not_sent(e.to_string()))?,
        ),
        Upstream::Perplexity => (
            format!(
                "{}{}",
                t.perplexity_base.trim_end_matches('/'),
                perplexity::PATH
            ),
            match &t.perplexity_query {
                Some(q) => perplexity_query::query_body(
                    ask.query,
                    &QueryParams {
                        model: &q.model,
                        temperature: q.temperature,
                        search_domain_filter: &q.search_domain_filter,
                        system_prompt: &q.system_prompt,
                    },
                    stream,
                ),
                None => perplexity::chat_body(ask.messages, t.model.as_deref(), stream),
            }
            .map_err(|e| not_sent(e.to_string()))?,
        ),
    };
    let accept = match (stream, u) {
        (false, _) => "application/json",
        (true, Upstream::Lightrag) => "application/x-ndjson",
        (true, Upstream::Perplexity) => "text/event-stream",
    };
    let key = match u {
        Upstream::Lightrag => t.lightrag_key.as_ref().map(|k| ("x-api-key", k.clone())),
        Upstream::Perplexity => t
            .perplexity_key
            .as_ref()
            .map(|k| ("authorization", format!("Bearer {k}"))),
    };
    Ok(Outgoing {
        url,
        body,
        accept,
        key,
    })
}

impl Outgoing {
    /// The request as [`fetch`] sends it, under `abort`'s signal. `headers` is where the
    /// header list lives meanwhile.
    fn post<'a>(
        &'a self,
        abort: &'a AbortOnDrop,
        headers: &'a mut Vec<(&'static str, &'a str)>,
    ) -> Post<'a> {
        headers.extend([
            ("content-type", "application/json"),
            ("accept", self.accept),
        ]);
        if let Some((name, value)) = &self.key {
            headers.push((name, value));
        }
        Post {
            url: &self.url,
            headers,
            body: &self.body,
            controller: abort.controller.as_ref(),
            client: abort.client.as_ref(),
        }
    }
}

fn no_response(u: Upstream) -> Miss {
    Miss::Failed(Fault::NoFirstByte, format!("{u} sent no response in time"))
}

fn connect_failed(u: Upstream, e: &str) -> Miss {
    Miss::Failed(Fault::Connect, format!("{u} connection failed: {e}"))
}

/// A non-2xx response: its status (or a context-length error its body reports) and a redacted
/// excerpt of the body for the log.
fn status_miss(t: &Targets, u: Upstream, status: u16, body: &str) -> Miss {
    Miss::Failed(
        Fault::from_error_response(status, body),
        format!("{u} answered HTTP {status}: {}", t.redact(body)),
    )
}

/// [`status_miss`] for a response whose body is still to be read: for at most 2 s.
async fn status_failure(t: &Targets, resp: &web_sys::Response, u: Upstream, by_ms: u64) -> Miss {
    let body = fetch::text_by(resp, by_ms.min(now().saturating_add(2_000)))
        .await
        .unwrap_or_default();
    status_miss(t, u, resp.status(), &body)
}

/// A complete (non-streamed) call.
pub async fn call(t: &Targets, u: Upstream, ask: &Ask<'_>, c: &Call) -> Result<Complete, Miss> {
    let req = build_request(t, u, ask, false)?;
    let mut abort = AbortOnDrop::new(t.client.as_ref());
    let mut headers = Vec::new();
    let deadlines = Deadlines {
        head_by_ms: c.first_byte_by_ms,
        done_by_ms: c.complete_by_ms,
        error_body_by_ms: c.complete_by_ms,
    };
    let (text, head_ms) = match fetch::complete(&req.post(&abort, &mut headers), &deadlines).await {
        Whole::Text { text, head_ms } => (text, head_ms),
        Whole::Status { status, text } => return Err(status_miss(t, u, status, &text)),
        Whole::NoHead => return Err(no_response(u)),
        Whole::Connect(e) => return Err(connect_failed(u, &e)),
        Whole::BodyTimeout => {
            return Err(Miss::Failed(
                Fault::BodyTimeout,
                format!("{u} body did not complete in time"),
            ))
        }
        Whole::BodyBroken(e) => {
            return Err(Miss::Failed(
                Fault::BodyBroken,
                format!("{u} body read failed: {e}"),
            ))
        }
    };
    abort.finished();
    let parsed = match u {
        Upstream::Lightrag => lightrag::parse_query_response(&text),
        Upstream::Perplexity => perplexity::parse_chat_response(&text),
    };
    parsed
        .map(|answer| Complete { answer, head_ms })
        .map_err(|e| {
            let msg = e.to_string();
            Miss::Failed(
                Fault::from_reported_error(&msg),
                format!("{u} answer unusable: {}", t.redact(&msg)),
            )
        })
}

enum Decoder {
    /// Perplexity's events, read by an [`EventReader`] (it remembers the sources it gave).
    Sse(SseDecoder, EventReader),
    Ndjson(NdjsonDecoder),
}

impl Decoder {
    fn push(&mut self, u: Upstream, bytes: &[u8]) -> Vec<StreamItem> {
        match self {
            Decoder::Sse(d, r) => match d.push(bytes) {
                Ok(events) => events.iter().flat_map(|e| r.read(&e.data)).collect(),
                Err(e) => vec![StreamItem::Error(format!("{u} stream: {e}"))],
            },
            Decoder::Ndjson(d) => match d.push(bytes) {
                Ok(lines) => lines
                    .iter()
                    .flat_map(|l| lightrag::parse_stream_line(l))
                    .collect(),
                Err(e) => vec![StreamItem::Error(format!("{u} stream: {e}"))],
            },
        }
    }

    fn finish(self, u: Upstream) -> Vec<StreamItem> {
        match self {
            Decoder::Sse(d, mut r) => match d.finish() {
                Ok(events) => events.iter().flat_map(|e| r.read(&e.data)).collect(),
                Err(e) => vec![StreamItem::Error(format!("{u} stream: {e}"))],
            },
            Decoder::Ndjson(d) => match d.finish() {
                Ok(Some(l)) => lightrag::parse_stream_line(&l),
                Ok(None) => Vec::new(),
                Err(e) => vec![StreamItem::Error(format!("{u} stream: {e}"))],
            },
        }
    }
}

/// An upstream stream whose first answer text has arrived. Dropping it aborts the fetch.
pub struct UpstreamStream {
    pub upstream: Upstream,
    body: BodyReader,
    decoder: Option<Decoder>,
    /// The body already ended while the first text was awaited.
    ended: bool,
    /// The body broke off while the answer was held back: reported by the next read.
    broken: Option<String>,
    abort: AbortOnDrop,
    /// Our keys, to redact from what the upstream writes into the stream.
    keys: Vec<String>,
    /// Items decoded so far and not yet consumed (starts with the first text).
    pub initial: Vec<StreamItem>,
}

/// What the next read of a committed stream gave.
pub enum Next {
    /// Bytes arrived (decoded into zero or more items).
    Items(Vec<StreamItem>),
    /// The body ended cleanly (remaining items included).
    End(Vec<StreamItem>),
    /// The body broke off; a redacted detail for the log.
    Broken(String),
    /// Nothing before the wake-up time.
    Timer,
}

impl UpstreamStream {
    /// Upstream text from this stream made safe to log.
    pub fn redact(&self, text: &str) -> String {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        redact(text, &keys, DEFAULT_MAX_CHARS)
    }

    /// The upstream sent its end marker: the answer is complete and the call is not aborted
    /// when the stream is dropped. Aborting a finished call made workerd build the abort
    /// reason (an exception, with the stack trace the glue asks for) and error the body: 14 %
    /// of the samples of a workerd profile of streamed requests (`profile_edge.mjs --stream`),
    /// on every streamed answer, whose pipe ends at the marker without reading the body's end.
    pub fn answered(&mut self) {
        self.abort.finished();
    }

    /// Whether the body has ended (nothing more will arrive).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Keeps a break seen while the answer was held back, for the next read to report.
    pub fn defer_break(&mut self, detail: String) {
        self.broken = Some(detail);
    }

    /// Reads until the next chunk, the end, or epoch ms `wake_at_ms`.
    pub async fn next(&mut self, wake_at_ms: u64) -> Next {
        if let Some(n) = self.without_read() {
            return n;
        }
        let got = self.body.read(wake_at_ms).await;
        self.after_read(got)
    }

    /// What the next read gives without reading: a break kept while the answer was held back,
    /// or the end of a body that already ended.
    pub fn without_read(&mut self) -> Option<Next> {
        let u = self.upstream;
        if let Some(d) = self.broken.take() {
            return Some(Next::Broken(d));
        }
        if self.ended {
            return Some(Next::End(
                self.decoder.take().map(|d| d.finish(u)).unwrap_or_default(),
            ));
        }
        None
    }

    /// The body's reader as `upstream_io.js` reads it (its `read`), for a pump on the JS side
    /// that hands each read back through [`UpstreamStream::after_read`].
    pub fn body_js(&self) -> &wasm_bindgen::JsValue {
        self.body.js()
    }

    /// What a read of the body gave, decoded.
    pub fn after_read(&mut self, got: Chunk) -> Next {
        let u = self.upstream;
        match got {
            Chunk::Timeout => Next::Timer,
            Chunk::End => {
                self.ended = true;
                self.abort.finished();
                Next::End(self.decoder.take().map(|d| d.finish(u)).unwrap_or_default())
            }
            Chunk::Broken(e) => Next::Broken(format!("{u} stream broke: {e}")),
            Chunk::Bytes(bytes) => self.after_bytes(&bytes),
        }
    }

    /// A chunk of the body, decoded.
    pub fn after_bytes(&mut self, bytes: &[u8]) -> Next {
        let u = self.upstream;
        match self.decoder.as_mut() {
            Some(d) => Next::Items(d.push(u, bytes)),
            None => Next::Items(Vec::new()),
        }
    }
}

/// Opens a stream and waits (until the call's `first_byte_by_ms`) for its first answer text.
/// Anything that goes wrong before that is a [`Miss`], so the exchange may still fall back.
pub async fn open_stream(
    t: &Targets,
    u: Upstream,
    ask: &Ask<'_>,
    c: &Call,
) -> Result<UpstreamStream, Miss> {
    let req = build_request(t, u, ask, true)?;
    let abort = AbortOnDrop::new(t.client.as_ref());
    let mut headers = Vec::new();
    let unit = match u {
        Upstream::Lightrag => fetch::Unit::Line,
        Upstream::Perplexity => fetch::Unit::SseEvent,
    };
    let (head, body, mut first) =
        fetch::open(&req.post(&abort, &mut headers), c.first_byte_by_ms, unit).await;
    let resp = match head {
        Head::Arrived(response) => response,
        Head::Late => return Err(no_response(u)),
        Head::Failed(e) => return Err(connect_failed(u, &e)),
    };
    if !(200..300).contains(&resp.status()) {
        return Err(status_failure(t, &resp, u, c.first_byte_by_ms).await);
    }
    let body = body.ok_or_else(|| Miss::Failed(Fault::Connect, format!("{u} has no body")))?;
    let decoder = match u {
        Upstream::Lightrag => Decoder::Ndjson(NdjsonDecoder::new()),
        Upstream::Perplexity => Decoder::Sse(SseDecoder::new(), EventReader::new()),
    };
    let mut s = UpstreamStream {
        upstream: u,
        body,
        decoder: Some(decoder),
        ended: false,
        broken: None,
        abort,
        keys: [&t.lightrag_key, &t.perplexity_key]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        initial: Vec::new(),
    };
    let no_text = || {
        Miss::Failed(
            Fault::NoFirstByte,
            format!("{u} stream sent no answer text in time"),
        )
    };
    loop {
        // The first read came with the headers (`fetch::open`).
        let read = match first.take() {
            Some(chunk) => chunk,
            None => s.body.read(c.first_byte_by_ms).await,
        };
        let got = match read {
            Chunk::Timeout => return Err(no_text()),
            Chunk::End => {
                s.ended = true;
                s.abort.finished();
                s.decoder.take().map(|d| d.finish(u)).unwrap_or_default()
            }
            Chunk::Broken(e) => {
                return Err(Miss::Failed(
                    Fault::BodyBroken,
                    format!("{u} stream broke: {e}"),
                ))
            }
            Chunk::Bytes(bytes) => match s.decoder.as_mut() {
                Some(d) => d.push(u, &bytes),
                None => Vec::new(),
            },
        };
        s.initial.extend(got);
        if let Some(err) = first_error(&s.initial) {
            return Err(Miss::Failed(
                Fault::from_reported_error(&err),
                format!("{u} stream reported an error: {}", t.redact(&err)),
            ));
        }
        if has_text(&s.initial) {
            return Ok(s);
        }
        if s.ended {
            // Ended before any text: an empty answer is a failed answer.
            return Err(Miss::Failed(
                Fault::Unusable,
                format!("{u} stream ended without any answer text"),
            ));
        }
        if now() >= c.first_byte_by_ms {
            return Err(no_text());
        }
    }
}

fn has_text(items: &[StreamItem]) -> bool {
    items.iter().any(|i| matches!(i, StreamItem::Delta(_)))
}

fn first_error(items: &[StreamItem]) -> Option<String> {
    items.iter().find_map(|i| match i {
        StreamItem::Error(e) => Some(e.clone()),
        _ => None,
    })
}
