//! Upstream adapters: LightRAG (`/query`, `/query/stream` NDJSON, `X-API-Key`) and Perplexity
//! (`/chat/completions`, bearer key, SSE). Every call runs under an `AbortController` with a
//! time-to-first-byte and a total timeout carved from the request's one deadline
//! ([`crate::core::fallback`]); bodies are built and parsed by [`crate::core::wire`].
//!
//! Streams are opened in two steps so a fallback stays possible until the first byte reaches
//! the client: [`open_stream`] waits for the first piece of answer text (within the TTFB
//! budget); only then does the caller commit and pipe the rest through [`UpstreamStream`].

use crate::core::guard::deployment::UrlPolicy;
use crate::core::model::Upstream;
use crate::core::outcome::OutcomeKind;
use crate::core::wire::lightrag::QueryMode;
use crate::core::wire::ndjson::NdjsonDecoder;
use crate::core::wire::openai::ChatMessage;
use crate::core::wire::sse::SseDecoder;
use crate::core::wire::{lightrag, perplexity, StreamItem, UpstreamAnswer};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::pin::pin;
use std::time::Duration;
use worker::{
    AbortController, ByteStream, Delay, Fetch, Headers, Method, Request, RequestInit, Response,
};

/// Where and how to call the upstreams (secrets never leave this struct except as headers).
#[derive(Clone)]
pub struct Targets {
    pub lightrag_base: String,
    pub perplexity_base: String,
    pub lightrag_key: Option<String>,
    pub perplexity_key: Option<String>,
    pub query_mode: QueryMode,
    pub model: Option<String>,
    /// Which base URLs may receive a key (https only outside development).
    pub url_policy: UrlPolicy,
}

/// What to ask.
pub struct Ask<'a> {
    pub query: &'a str,
    pub messages: &'a [ChatMessage],
}

/// A failed attempt (before anything reached the client).
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: OutcomeKind,
    pub latency_ms: u64,
    pub detail: String,
}

fn now() -> u64 {
    super::isolate::now_ms()
}

async fn race<T>(fut: impl std::future::Future<Output = T>, ms: u64) -> Option<T> {
    let delay = Delay::from(Duration::from_millis(ms.max(1)));
    match select(pin!(fut), pin!(delay)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

fn build_request(
    t: &Targets,
    u: Upstream,
    ask: &Ask<'_>,
    stream: bool,
) -> Result<Request, Failure> {
    let client_err = |detail: String| Failure {
        kind: OutcomeKind::ClientError(400),
        latency_ms: 0,
        detail,
    };
    let base = match u {
        Upstream::Lightrag => &t.lightrag_base,
        Upstream::Perplexity => &t.perplexity_base,
    };
    // Refused locally (never counted against the upstream): no key goes over plain http.
    t.url_policy.check(u, base).map_err(client_err)?;
    let (url, body) = match u {
        Upstream::Lightrag => (
            format!(
                "{}{}",
                t.lightrag_base.trim_end_matches('/'),
                lightrag::query_path(stream)
            ),
            lightrag::query_body(ask.query, t.query_mode, stream)
                .map_err(|e| client_err(e.to_string()))?,
        ),
        Upstream::Perplexity => (
            format!(
                "{}{}",
                t.perplexity_base.trim_end_matches('/'),
                perplexity::PATH
            ),
            perplexity::chat_body(ask.messages, t.model.as_deref(), stream)
                .map_err(|e| client_err(e.to_string()))?,
        ),
    };
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| client_err(e.to_string()));
    set("content-type", "application/json")?;
    set(
        "accept",
        if stream {
            match u {
                Upstream::Lightrag => "application/x-ndjson",
                Upstream::Perplexity => "text/event-stream",
            }
        } else {
            "application/json"
        },
    )?;
    match u {
        Upstream::Lightrag => {
            if let Some(k) = &t.lightrag_key {
                set("x-api-key", k)?;
            }
        }
        Upstream::Perplexity => {
            if let Some(k) = &t.perplexity_key {
                set("authorization", &format!("Bearer {k}"))?;
            }
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    Request::new_with_init(&url, &init).map_err(|e| Failure {
        kind: OutcomeKind::NetworkError,
        latency_ms: 0,
        detail: format!("cannot build the {u} request: {e}"),
    })
}

/// Sends the request and waits for the response headers within `ttfb_ms`.
async fn send(
    req: Request,
    controller: &AbortController,
    ttfb_ms: u64,
    start: u64,
    u: Upstream,
) -> Result<Response, Failure> {
    let signal = controller.signal();
    let fetch = Fetch::Request(req);
    match race(fetch.send_with_signal(&signal), ttfb_ms).await {
        None => Err(Failure {
            kind: OutcomeKind::FirstByteTimeout,
            latency_ms: now().saturating_sub(start),
            detail: format!("{u} sent no response within {ttfb_ms} ms"),
        }),
        Some(Err(e)) => Err(Failure {
            kind: OutcomeKind::NetworkError,
            latency_ms: now().saturating_sub(start),
            detail: format!("{u} connection failed: {e}"),
        }),
        Some(Ok(resp)) => Ok(resp),
    }
}

async fn status_failure(mut resp: Response, start: u64, u: Upstream, ms: u64) -> Failure {
    let status = resp.status_code();
    let body = race(resp.text(), ms.min(2_000))
        .await
        .and_then(Result::ok)
        .unwrap_or_default();
    let snippet: String = body.chars().take(200).collect();
    Failure {
        kind: crate::core::outcome::classify_status(status),
        latency_ms: now().saturating_sub(start),
        detail: format!("{u} answered HTTP {status}: {snippet}"),
    }
}

/// A complete (non-streamed) call.
pub async fn call(
    t: &Targets,
    u: Upstream,
    ask: &Ask<'_>,
    ttfb_ms: u64,
    total_ms: u64,
) -> Result<(UpstreamAnswer, u64), Failure> {
    let start = now();
    let req = build_request(t, u, ask, false)?;
    let controller = AbortController::default();
    let mut resp = match send(req, &controller, ttfb_ms, start, u).await {
        Ok(r) => r,
        Err(f) => {
            controller.abort();
            return Err(f);
        }
    };
    let left = total_ms.saturating_sub(now().saturating_sub(start));
    if !(200..300).contains(&resp.status_code()) {
        return Err(status_failure(resp, start, u, left).await);
    }
    let text = match race(resp.text(), left).await {
        None => {
            controller.abort();
            return Err(Failure {
                kind: OutcomeKind::TotalTimeout,
                latency_ms: now().saturating_sub(start),
                detail: format!("{u} body did not complete within {total_ms} ms"),
            });
        }
        Some(Err(e)) => {
            return Err(Failure {
                kind: OutcomeKind::NetworkError,
                latency_ms: now().saturating_sub(start),
                detail: format!("{u} body read failed: {e}"),
            })
        }
        Some(Ok(t)) => t,
    };
    let latency = now().saturating_sub(start);
    let parsed = match u {
        Upstream::Lightrag => lightrag::parse_query_response(&text),
        Upstream::Perplexity => perplexity::parse_chat_response(&text),
    };
    parsed.map(|a| (a, latency)).map_err(|e| Failure {
        // A 2xx whose body is not an answer is the upstream misbehaving.
        kind: OutcomeKind::HttpServerError(502),
        latency_ms: latency,
        detail: format!("{u} answer unusable: {e}"),
    })
}

enum Decoder {
    Sse(SseDecoder),
    Ndjson(NdjsonDecoder),
}

impl Decoder {
    fn push(&mut self, u: Upstream, bytes: &[u8]) -> Vec<StreamItem> {
        match self {
            Decoder::Sse(d) => match d.push(bytes) {
                Ok(events) => events
                    .iter()
                    .flat_map(|e| perplexity::parse_stream_event(&e.data))
                    .collect(),
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
            Decoder::Sse(d) => match d.finish() {
                Ok(events) => events
                    .iter()
                    .flat_map(|e| perplexity::parse_stream_event(&e.data))
                    .collect(),
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

/// An upstream stream whose first answer text has arrived.
pub struct UpstreamStream {
    pub upstream: Upstream,
    body: ByteStream,
    decoder: Option<Decoder>,
    controller: Option<AbortController>,
    pub start_ms: u64,
    pub deadline_ms: u64,
    /// Items decoded so far and not yet consumed (starts with the first text).
    pub initial: Vec<StreamItem>,
}

/// What the next read of a committed stream gave.
pub enum Next {
    Items(Vec<StreamItem>),
    /// The body ended cleanly (remaining items included).
    End(Vec<StreamItem>),
    /// Cut: connection error or total timeout.
    Cut(OutcomeKind, String),
}

impl UpstreamStream {
    pub async fn next(&mut self) -> Next {
        let left = self.deadline_ms.saturating_sub(now());
        if left == 0 {
            self.abort();
            return Next::Cut(
                OutcomeKind::TotalTimeout,
                "stream exceeded its total budget".into(),
            );
        }
        let u = self.upstream;
        match race(self.body.next(), left).await {
            None => {
                self.abort();
                Next::Cut(
                    OutcomeKind::TotalTimeout,
                    "stream exceeded its total budget".into(),
                )
            }
            Some(None) => {
                let items = self.decoder.take().map(|d| d.finish(u)).unwrap_or_default();
                Next::End(items)
            }
            Some(Some(Err(e))) => {
                Next::Cut(OutcomeKind::NetworkError, format!("{u} stream broke: {e}"))
            }
            Some(Some(Ok(bytes))) => match self.decoder.as_mut() {
                Some(d) => Next::Items(d.push(u, &bytes)),
                None => Next::Items(Vec::new()),
            },
        }
    }

    pub fn abort(&mut self) {
        if let Some(c) = self.controller.take() {
            c.abort();
        }
    }
}

/// Opens a stream and waits (within `ttfb_ms`) for its first answer text. Anything that goes
/// wrong before that is a [`Failure`], so the caller may still fall back.
pub async fn open_stream(
    t: &Targets,
    u: Upstream,
    ask: &Ask<'_>,
    ttfb_ms: u64,
    total_ms: u64,
) -> Result<UpstreamStream, Failure> {
    let start = now();
    let req = build_request(t, u, ask, true)?;
    let controller = AbortController::default();
    let mut resp = match send(req, &controller, ttfb_ms, start, u).await {
        Ok(r) => r,
        Err(f) => {
            controller.abort();
            return Err(f);
        }
    };
    if !(200..300).contains(&resp.status_code()) {
        let left = total_ms.saturating_sub(now().saturating_sub(start));
        return Err(status_failure(resp, start, u, left).await);
    }
    let fail = |kind: OutcomeKind, detail: String| Failure {
        kind,
        latency_ms: now().saturating_sub(start),
        detail,
    };
    let body = resp
        .stream()
        .map_err(|e| fail(OutcomeKind::NetworkError, format!("{u} has no body: {e}")))?;
    let decoder = match u {
        Upstream::Lightrag => Decoder::Ndjson(NdjsonDecoder::new()),
        Upstream::Perplexity => Decoder::Sse(SseDecoder::new()),
    };
    let mut s = UpstreamStream {
        upstream: u,
        body,
        decoder: Some(decoder),
        controller: Some(controller),
        start_ms: start,
        deadline_ms: start.saturating_add(total_ms),
        initial: Vec::new(),
    };
    let first_deadline = start.saturating_add(ttfb_ms).min(s.deadline_ms);
    loop {
        let left = first_deadline.saturating_sub(now());
        if left == 0 {
            s.abort();
            return Err(fail(
                OutcomeKind::FirstByteTimeout,
                format!("{u} stream sent no answer text within {ttfb_ms} ms"),
            ));
        }
        let got = match race(s.body.next(), left).await {
            None => {
                s.abort();
                return Err(fail(
                    OutcomeKind::FirstByteTimeout,
                    format!("{u} stream sent no answer text within {ttfb_ms} ms"),
                ));
            }
            Some(None) => {
                let items = s.decoder.take().map(|d| d.finish(u)).unwrap_or_default();
                s.initial.extend(items);
                if let Some(err) = first_error(&s.initial) {
                    return Err(fail(OutcomeKind::HttpServerError(502), err));
                }
                // Ended before any text: an empty answer is a failed answer.
                if !has_text(&s.initial) {
                    return Err(fail(
                        OutcomeKind::HttpServerError(502),
                        format!("{u} stream ended without any answer text"),
                    ));
                }
                return Ok(s);
            }
            Some(Some(Err(e))) => {
                return Err(fail(
                    OutcomeKind::NetworkError,
                    format!("{u} stream broke: {e}"),
                ))
            }
            Some(Some(Ok(bytes))) => match s.decoder.as_mut() {
                Some(d) => d.push(u, &bytes),
                None => Vec::new(),
            },
        };
        s.initial.extend(got);
        if let Some(err) = first_error(&s.initial) {
            s.abort();
            return Err(fail(OutcomeKind::HttpServerError(502), err));
        }
        if has_text(&s.initial) {
            return Ok(s);
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
