//! The front door: `POST /v1/chat/completions` (OpenAI-compatible, JSON or SSE) and the seed's
//! `POST /query`. Parse (400/413 with a message), identify (user, session, cookie), decide,
//! call the chosen upstream with one deadline and fall back per policy before the first byte,
//! record the outcome, and answer in the format the client asked for.

use super::isolate::{now_ms, random_bytes, secret, with};
use super::upstream::{self, Ask, Failure, Next, Targets, UpstreamStream};
use super::{guard, http, ratelimit};
use crate::core::decide::{Decision, RouteRequest};
use crate::core::fallback::{Attempt, Deadline, FallbackCase, FallbackDecision, FallbackPolicy};
use crate::core::guard::models;
use crate::core::identity::{self, AdminAuth, Identity};
use crate::core::model::Upstream;
use crate::core::outcome::{Outcome, OutcomeKind};
use crate::core::quality::{DefaultScorer, ScoreInput, Scorer};
use crate::core::window::{MetricKey, Sample};
use crate::core::wire::error::wire_error_response;
use crate::core::wire::openai::{self, ChatMessage, RoutingInfo};
use crate::core::wire::seed::{self, SeedResponse};
use crate::core::wire::{StreamAccumulator, StreamItem, UpstreamAnswer};
use std::collections::VecDeque;
use worker::{Env, Request, Response, Result};

/// Header an operator (with the admin token) may use to pick a cohort for one request.
pub const OVERRIDE_HEADER: &str = "x-route-override";

/// Per-request parameters copied out of the cached config.
struct Params {
    timeout_s: f64,
    fallback: FallbackPolicy,
    targets: Targets,
    /// `LIGHTRAG_ENABLE_QUALITY_METRICS`: score answers (and record quality) only when on.
    score: bool,
    /// An answer this slow is a slow call, for the breaker and the metrics alike.
    slow_call_ms: u64,
}

fn request_headers(req: &Request) -> Vec<(String, String)> {
    req.headers()
        .entries()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k != "authorization" && k != "cookie"
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// Identity, decision and per-request parameters.
fn route(
    req: &Request,
    env: &Env,
    user: Option<&str>,
    session: Option<&str>,
    query: &str,
    model: Option<&str>,
) -> Option<(Identity, Decision, Params)> {
    let cookie = req.headers().get("cookie").ok().flatten();
    let ident = identity::identify(user, session, cookie.as_deref(), random_bytes);
    let override_cohort = req
        .headers()
        .get(OVERRIDE_HEADER)
        .ok()
        .flatten()
        .and_then(|v| Upstream::parse(&v));
    let override_authorized = override_cohort.is_some() && {
        let auth = req.headers().get("authorization").ok().flatten();
        identity::check_admin(secret(env, "ADMIN_TOKEN").as_deref(), auth.as_deref())
            == AdminAuth::Ok
    };
    // Headers only matter to conditional rules: skip copying them otherwise.
    let rules_on = with(|i| i.config().enable_conditional_routing).unwrap_or(false);
    let headers = if rules_on {
        request_headers(req)
    } else {
        Vec::new()
    };
    let rr = RouteRequest {
        key: Some(&ident.key),
        query: query.into(),
        headers: &headers,
        override_cohort,
        override_authorized,
    };
    let detail = guard::routing_detail(req, env);
    let url_policy = guard::url_policy();
    let lightrag_key = secret(env, "LIGHTRAG_API_KEY");
    let perplexity_key = secret(env, "PERPLEXITY_API");
    let now = now_ms();
    let (mut d, p) = with(|i| {
        let d = i.decide(&rr, now);
        let c = i.config();
        let p = Params {
            timeout_s: c.integration_timeout_seconds,
            fallback: c.fallback,
            targets: Targets {
                lightrag_base: c.lightrag_base_url.clone(),
                perplexity_base: c.perplexity_base_url.clone(),
                lightrag_key,
                perplexity_key,
                query_mode: c.query_mode,
                model: model.map(str::to_string),
                url_policy,
            },
            score: c.quality_gate.settings().enabled,
            slow_call_ms: c.breaker.settings().slow_call_ms,
        };
        (d, p)
    })?;
    // The position is operator detail (core::guard::exposure), in headers and bodies alike.
    if !detail.shown() {
        d.position_percent = None;
    }
    Some((ident, d, p))
}

fn routing_info(d: &Decision, served: Upstream, fallback: bool) -> RoutingInfo {
    RoutingInfo {
        upstream: served,
        reason: d.reason.clone(),
        arm: d.arm,
        position: d.position_percent,
        fallback_used: fallback,
        config_version: d.config_version,
    }
}

fn set_route_headers(
    resp: &Response,
    d: &Decision,
    ident: &Identity,
    served: Upstream,
    fallback_from: Option<Upstream>,
) -> Result<()> {
    let h = resp.headers();
    h.set("x-route-upstream", served.as_str())?;
    h.set("x-route-reason", &d.reason.to_string())?;
    h.set("x-route-cohort", d.upstream.as_str())?;
    h.set("x-route-arm", d.arm.as_str())?;
    if let Some(p) = d.position_percent {
        h.set("x-route-position", &format!("{p:.2}"))?;
    }
    h.set("x-route-config-version", &d.config_version.to_string())?;
    if let Some(from) = fallback_from {
        h.set(
            "x-route-fallback",
            &format!("{}->{}", from.as_str(), served.as_str()),
        )?;
    }
    if let Some(c) = ident.set_cookie() {
        h.set("set-cookie", &c)?;
    }
    Ok(())
}

fn score(query: &str, a: &UpstreamAnswer, latency_ms: u64, u: Upstream) -> f64 {
    DefaultScorer::default()
        .score(&ScoreInput {
            query,
            answer: &a.content,
            sources: a.citations.len(),
            latency_ms,
            upstream: u,
        })
        .total
}

fn record_call(u: Upstream, kind: OutcomeKind, latency_ms: u64) {
    let now = now_ms();
    with(|i| i.record_call(u, &Outcome::new(kind, latency_ms), now));
}

/// Records a call that produced an answer and returns its kind: a success, or a slow call
/// (classified here once, so the breaker and the request's metrics agree).
fn record_answer(u: Upstream, latency_ms: u64, slow_call_ms: u64) -> OutcomeKind {
    let kind = Outcome::answered(latency_ms, slow_call_ms).kind;
    record_call(u, kind, latency_ms);
    kind
}

fn record_request(
    d: &Decision,
    served: Upstream,
    kind: OutcomeKind,
    start: u64,
    fallback: bool,
    quality: Option<f64>,
) {
    let now = now_ms();
    let key = MetricKey::new(served, d.arm);
    let sample = Sample {
        kind,
        latency_ms: now.saturating_sub(start),
        fallback,
        quality,
    };
    with(|i| i.record_request(key, &sample, now));
}

/// Whether a failure came from the router refusing to build the request (e.g. a query too
/// short for LightRAG): not the upstream's fault, never counted against it.
fn local_refusal(f: &Failure) -> bool {
    f.latency_ms == 0 && matches!(f.kind, OutcomeKind::ClientError(_))
}

/// Whether to try the other upstream after `f`.
fn fallback_target(
    primary: Upstream,
    f: &Failure,
    p: &Params,
    deadline: &Deadline,
) -> Option<Upstream> {
    let now = now_ms();
    if local_refusal(f) {
        return Some(primary.other());
    }
    let other_admits = with(|i| i.take_permit(primary.other(), now)).unwrap_or(true);
    match p.fallback.plan(&FallbackCase {
        primary,
        kind: f.kind,
        first_byte_sent: false,
        other_admits,
        remaining_ms: deadline.remaining(now),
    }) {
        FallbackDecision::Fallback { to, .. } => Some(to),
        FallbackDecision::NoFallback { .. } => None,
    }
}

struct Served {
    upstream: Upstream,
    answer: UpstreamAnswer,
    latency_ms: u64,
    /// Success or slow call.
    kind: OutcomeKind,
    fallback_from: Option<Upstream>,
}

/// Both attempts (or the only one) failed.
struct Failed {
    primary: Upstream,
    failures: Vec<(Upstream, Failure)>,
}

impl Failed {
    fn status(&self) -> u16 {
        let timeout = self.failures.last().is_some_and(|(_, f)| {
            matches!(
                f.kind,
                OutcomeKind::FirstByteTimeout | OutcomeKind::TotalTimeout
            )
        });
        if timeout {
            504
        } else {
            502
        }
    }
    fn message(&self) -> String {
        let parts: Vec<String> = self
            .failures
            .iter()
            .map(|(u, f)| format!("{u}: {} ({})", f.kind, f.detail))
            .collect();
        format!("no upstream could answer: {}", parts.join("; "))
    }
    fn kind(&self) -> OutcomeKind {
        self.failures
            .last()
            .map(|(_, f)| f.kind)
            .unwrap_or(OutcomeKind::NetworkError)
    }
}

async fn complete(
    d: &Decision,
    p: &Params,
    ask: &Ask<'_>,
    start: u64,
) -> std::result::Result<Served, Failed> {
    let deadline = Deadline::from_timeout_seconds(start, p.timeout_s);
    let primary = d.upstream;
    let t = p.fallback.timeouts(&deadline, now_ms(), Attempt::Primary);
    let first = upstream::call(&p.targets, primary, ask, t.ttfb_ms, t.total_ms).await;
    let f = match first {
        Ok((answer, latency_ms)) => {
            let kind = record_answer(primary, latency_ms, p.slow_call_ms);
            return Ok(Served {
                upstream: primary,
                answer,
                latency_ms,
                kind,
                fallback_from: None,
            });
        }
        Err(f) => f,
    };
    if !local_refusal(&f) {
        record_call(primary, f.kind, f.latency_ms);
    }
    let mut failed = Failed {
        primary,
        failures: vec![(primary, f.clone())],
    };
    let Some(to) = fallback_target(primary, &f, p, &deadline) else {
        return Err(failed);
    };
    let t = p.fallback.timeouts(&deadline, now_ms(), Attempt::Fallback);
    match upstream::call(&p.targets, to, ask, t.ttfb_ms, t.total_ms).await {
        Ok((answer, latency_ms)) => {
            let kind = record_answer(to, latency_ms, p.slow_call_ms);
            Ok(Served {
                upstream: to,
                answer,
                latency_ms,
                kind,
                fallback_from: Some(primary),
            })
        }
        Err(f2) => {
            if !local_refusal(&f2) {
                record_call(to, f2.kind, f2.latency_ms);
            }
            failed.failures.push((to, f2));
            Err(failed)
        }
    }
}

fn failure_response(
    d: &Decision,
    ident: &Identity,
    failed: &Failed,
    start: u64,
) -> Result<Response> {
    record_request(d, failed.primary, failed.kind(), start, false, None);
    let status = failed.status();
    let code = if status == 504 {
        "upstream_timeout"
    } else {
        "upstream_failed"
    };
    let resp = http::error(status, code, &failed.message())?;
    let served = failed
        .failures
        .last()
        .map(|(u, _)| *u)
        .unwrap_or(failed.primary);
    set_route_headers(&resp, d, ident, served, None)?;
    Ok(resp)
}

fn completion_id() -> String {
    format!("chatcmpl-{}", identity::new_id(&random_bytes()))
}

/// Reads the body (413 over the limit) and parses it with `parse` (400 JSON naming what was
/// wrong): the shared front half of both front doors.
async fn read_parsed<T>(
    req: &mut Request,
    parse: impl Fn(&[u8]) -> std::result::Result<T, crate::core::wire::WireError>,
) -> std::result::Result<T, Result<Response>> {
    let body = super::body::read(req).await?;
    parse(&body).map_err(|e| {
        let (status, text) = wire_error_response(&e);
        http::raw_json(status, text)
    })
}

/// The Perplexity model for a request naming `requested` (core::guard::models): 400 naming the
/// allowed ones when it is not on `LIGHTRAG_ALLOWED_MODELS`.
fn allowed_model(requested: Option<&str>) -> std::result::Result<String, Result<Response>> {
    let allowed =
        with(|i| i.config().allowed_models.clone()).unwrap_or_else(models::default_allowed);
    models::resolve(&allowed, requested)
        .map_err(|e| http::error(400, "model_not_allowed", &e.to_string()))
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(mut req: Request, env: &Env) -> Result<Response> {
    let start = now_ms();
    let chat = match read_parsed(&mut req, openai::parse_chat_request).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let upstream_model = match allowed_model(chat.model.as_deref()) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (user, session) = (chat.user.as_deref(), chat.session_id.as_deref());
    if let Some(limited) = ratelimit::admit(&req, env, user, session).await {
        return limited;
    }
    let Some((ident, d, p)) = route(&req, env, user, session, &chat.query, Some(&upstream_model))
    else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let ask = Ask {
        query: &chat.query,
        messages: &chat.messages,
    };
    let model = chat
        .model
        .clone()
        .unwrap_or_else(|| "cmo-router".to_string());
    if chat.stream {
        return stream_chat(d, ident, p, &ask, model, start).await;
    }
    match complete(&d, &p, &ask, start).await {
        Ok(s) => {
            let q = p
                .score
                .then(|| score(&chat.query, &s.answer, s.latency_ms, s.upstream));
            record_request(&d, s.upstream, s.kind, start, s.fallback_from.is_some(), q);
            let routing = routing_info(&d, s.upstream, s.fallback_from.is_some());
            let text = openai::chat_response(
                &completion_id(),
                start / 1000,
                &model,
                &s.answer.content,
                &s.answer.citations,
                &routing,
            );
            let resp = http::raw_json(200, text)?;
            set_route_headers(&resp, &d, &ident, s.upstream, s.fallback_from)?;
            Ok(resp)
        }
        Err(failed) => failure_response(&d, &ident, &failed, start),
    }
}

/// `POST /query` (the seed's shape).
pub async fn seed_query(mut req: Request, env: &Env) -> Result<Response> {
    let start = now_ms();
    let q = match read_parsed(&mut req, seed::parse_query_request).await {
        Ok(q) => q,
        Err(r) => return r,
    };
    let upstream_model = match allowed_model(None) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (user, session) = (q.user_id.as_deref(), q.session_id.as_deref());
    if let Some(limited) = ratelimit::admit(&req, env, user, session).await {
        return limited;
    }
    let Some((ident, d, p)) = route(
        &req,
        env,
        user,
        session,
        &q.query_text,
        Some(&upstream_model),
    ) else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let messages = [ChatMessage::new("user", &q.query_text)];
    let ask = Ask {
        query: &q.query_text,
        messages: &messages,
    };
    match complete(&d, &p, &ask, start).await {
        Ok(s) => {
            let quality = p
                .score
                .then(|| score(&q.query_text, &s.answer, s.latency_ms, s.upstream));
            record_request(
                &d,
                s.upstream,
                s.kind,
                start,
                s.fallback_from.is_some(),
                quality,
            );
            let routing = routing_info(&d, s.upstream, s.fallback_from.is_some());
            let text = seed::query_response(&SeedResponse {
                content: &s.answer.content,
                citations: &s.answer.citations,
                service_used: Some(s.upstream),
                routing: &routing,
                processing_time_ms: now_ms().saturating_sub(start),
                quality_score: quality,
                success: true,
                error: None,
            });
            let resp = http::raw_json(200, text)?;
            set_route_headers(&resp, &d, &ident, s.upstream, s.fallback_from)?;
            Ok(resp)
        }
        Err(failed) => {
            record_request(&d, failed.primary, failed.kind(), start, false, None);
            let routing = routing_info(&d, failed.primary, false);
            let msg = failed.message();
            let text = seed::query_response(&SeedResponse {
                content: "",
                citations: &[],
                service_used: None,
                routing: &routing,
                processing_time_ms: now_ms().saturating_sub(start),
                quality_score: None,
                success: false,
                error: Some(&msg),
            });
            let resp = http::raw_json(failed.status(), text)?;
            set_route_headers(&resp, &d, &ident, failed.primary, None)?;
            Ok(resp)
        }
    }
}

async fn open_with_fallback(
    d: &Decision,
    p: &Params,
    ask: &Ask<'_>,
    start: u64,
) -> std::result::Result<(UpstreamStream, Option<Upstream>), Failed> {
    let deadline = Deadline::from_timeout_seconds(start, p.timeout_s);
    let primary = d.upstream;
    let t = p.fallback.timeouts(&deadline, now_ms(), Attempt::Primary);
    let f = match upstream::open_stream(&p.targets, primary, ask, t.ttfb_ms, t.total_ms).await {
        Ok(s) => return Ok((s, None)),
        Err(f) => f,
    };
    if !local_refusal(&f) {
        record_call(primary, f.kind, f.latency_ms);
    }
    let mut failed = Failed {
        primary,
        failures: vec![(primary, f.clone())],
    };
    let Some(to) = fallback_target(primary, &f, p, &deadline) else {
        return Err(failed);
    };
    let t = p.fallback.timeouts(&deadline, now_ms(), Attempt::Fallback);
    match upstream::open_stream(&p.targets, to, ask, t.ttfb_ms, t.total_ms).await {
        Ok(s) => Ok((s, Some(primary))),
        Err(f2) => {
            if !local_refusal(&f2) {
                record_call(to, f2.kind, f2.latency_ms);
            }
            failed.failures.push((to, f2));
            Err(failed)
        }
    }
}

/// State of one piped stream.
struct Pipe {
    s: UpstreamStream,
    out: VecDeque<String>,
    acc: StreamAccumulator,
    finished: bool,
    id: String,
    created: u64,
    model: String,
    decision: Decision,
    query: String,
    start: u64,
    fallback: bool,
    score: bool,
    slow_call_ms: u64,
}

impl Pipe {
    /// Translates items into client frames; returns `Some(error)` when the upstream reported
    /// an error inside the stream, `Some("")`-free `true` when it said it is done.
    fn feed(&mut self, items: Vec<StreamItem>) -> (bool, Option<String>) {
        let mut done = false;
        for item in items {
            match &item {
                StreamItem::Delta(t) => {
                    self.out
                        .push_back(openai::chunk_delta(&self.id, self.created, &self.model, t))
                }
                StreamItem::Error(e) => {
                    self.acc.apply(&item);
                    return (done, Some(e.clone()));
                }
                StreamItem::Done => done = true,
                StreamItem::Citations(_) => {}
            }
            self.acc.apply(&item);
        }
        (done, None)
    }

    fn finish_ok(&mut self) {
        let u = self.s.upstream;
        let latency = now_ms().saturating_sub(self.s.start_ms);
        let answer = std::mem::take(&mut self.acc).into_answer();
        let routing = routing_info(&self.decision, u, self.fallback);
        self.out.push_back(openai::chunk_final(
            &self.id,
            self.created,
            &self.model,
            "stop",
            &answer.citations,
            &routing,
        ));
        self.out.push_back(openai::DONE.to_string());
        self.finished = true;
        let kind = record_answer(u, latency, self.slow_call_ms);
        let q = self.score.then(|| score(&self.query, &answer, latency, u));
        record_request(&self.decision, u, kind, self.start, self.fallback, q);
    }

    fn finish_cut(&mut self, kind: OutcomeKind, message: &str) {
        let u = self.s.upstream;
        self.s.abort();
        let latency = now_ms().saturating_sub(self.s.start_ms);
        self.out.push_back(openai::chunk_error(&format!(
            "the {u} stream was cut after it started ({kind}: {message}); the answer is incomplete"
        )));
        self.out.push_back(openai::DONE.to_string());
        self.finished = true;
        record_call(u, OutcomeKind::TruncatedStream, latency);
        record_request(
            &self.decision,
            u,
            OutcomeKind::TruncatedStream,
            self.start,
            self.fallback,
            None,
        );
    }

    fn handle(&mut self, items: Vec<StreamItem>, end: bool) {
        let (done, err) = self.feed(items);
        if let Some(e) = err {
            self.finish_cut(OutcomeKind::TruncatedStream, &e);
        } else if done {
            self.finish_ok();
        } else if end {
            match self.s.upstream {
                // LightRAG has no end marker: a clean end is the end.
                Upstream::Lightrag => self.finish_ok(),
                // Perplexity's last chunk carries `finish_reason` (it sends no `[DONE]`, see
                // core::wire::perplexity); a body that ends before it was cut.
                Upstream::Perplexity => self.finish_cut(
                    OutcomeKind::TruncatedStream,
                    "ended before a chunk with finish_reason",
                ),
            }
        }
    }
}

async fn stream_chat(
    d: Decision,
    ident: Identity,
    p: Params,
    ask: &Ask<'_>,
    model: String,
    start: u64,
) -> Result<Response> {
    let (mut s, fallback_from) = match open_with_fallback(&d, &p, ask, start).await {
        Ok(x) => x,
        Err(failed) => return failure_response(&d, &ident, &failed, start),
    };
    let served = s.upstream;
    let initial = std::mem::take(&mut s.initial);
    let mut pipe = Pipe {
        s,
        out: VecDeque::new(),
        acc: StreamAccumulator::new(),
        finished: false,
        id: completion_id(),
        created: start / 1000,
        model,
        decision: d.clone(),
        query: ask.query.to_string(),
        start,
        fallback: fallback_from.is_some(),
        score: p.score,
        slow_call_ms: p.slow_call_ms,
    };
    pipe.out
        .push_back(openai::chunk_start(&pipe.id, pipe.created, &pipe.model));
    pipe.handle(initial, false);
    let stream = futures_util::stream::unfold(pipe, |mut pipe| async move {
        loop {
            if let Some(frame) = pipe.out.pop_front() {
                return Some((Ok::<Vec<u8>, worker::Error>(frame.into_bytes()), pipe));
            }
            if pipe.finished {
                return None;
            }
            match pipe.s.next().await {
                Next::Items(items) => pipe.handle(items, false),
                Next::End(items) => pipe.handle(items, true),
                Next::Cut(kind, msg) => pipe.finish_cut(kind, &msg),
            }
        }
    });
    let resp = Response::from_stream(stream)?;
    let h = resp.headers();
    h.set("content-type", "text/event-stream; charset=utf-8")?;
    h.set("cache-control", "no-cache")?;
    set_route_headers(&resp, &d, &ident, served, fallback_from)?;
    Ok(resp)
}
