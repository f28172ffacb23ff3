//! The front door: `POST /v1/chat/completions` (OpenAI-compatible, JSON or SSE) and the seed's
//! `POST /query`. Parse (400/413 with a message), identify (user, session, cookie), decide,
//! then drive one [`Exchange`] (core): perform each step it returns — draw a permit, call an
//! upstream, commit and pipe a stream, answer or fail — report what happened, and record what
//! it says to record. Every answer carries `X-Request-Id`; upstream error text goes to the log
//! (redacted), never to the client.

use super::isolate::{now_ms, random_bytes, secret, with};
use super::upstream::{self, Ask, Miss, Next, Targets, UpstreamStream};
use super::{guard, http, ratelimit};
use crate::core::breaker::Admission;
use crate::core::decide::{Decision, RouteRequest};
use crate::core::exchange::{
    AttemptResult, Commit, Exchange, ExchangePolicy, FailCode, Failed, Mode, Plan, Purpose, Record,
    Served, Step, StreamEnd, Verdict,
};
use crate::core::fleet::CallRecord;
use crate::core::guard::models;
use crate::core::identity::{self, AdminAuth, Identity};
use crate::core::keytag::KeyTag;
use crate::core::model::Upstream;
use crate::core::quality::{DefaultScorer, ScoreInput, Scorer};
use crate::core::window::{MetricKey, Sample};
use crate::core::wire::error::wire_error_response;
use crate::core::wire::openai::{self, ChatMessage, RoutingInfo};
use crate::core::wire::seed::{self, SeedResponse};
use crate::core::wire::{StreamAccumulator, StreamItem, UpstreamAnswer};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use worker::{console_error, console_log, Context, Env, Request, Response, Result};

/// Header an operator (with the admin token) may use to pick a cohort for one request.
pub const OVERRIDE_HEADER: &str = "x-route-override";

/// The header naming a request in the router's log (and in every error message it gives).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Per-request parameters copied out of the cached config.
struct Params {
    /// The decision's upstream.
    primary: Upstream,
    policy: ExchangePolicy,
    targets: Targets,
    /// `LIGHTRAG_ENABLE_QUALITY_METRICS`: score answers (and record quality) only when on.
    score: bool,
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

/// Who asks what, as the front door read it.
struct Asker<'a> {
    user: Option<&'a str>,
    session: Option<&'a str>,
    query: &'a str,
    model: Option<&'a str>,
}

/// What the routing step settled for one request.
struct Routed {
    ident: Identity,
    /// The caller's keyed tag: what the breakers and the metric quotas count (never the raw
    /// key).
    key: KeyTag,
    decision: Decision,
    /// What LightRAG's breaker said if the decision drew its permit.
    admission: Admission,
    params: Params,
}

/// Identity, decision and per-request parameters.
async fn route(req: &Request, env: &Env, ctx: &Context, a: &Asker<'_>) -> Option<Routed> {
    let cookie = req.headers().get("cookie").ok().flatten();
    let ident = identity::identify(a.user, a.session, cookie.as_deref(), random_bytes);
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
        query: a.query.into(),
        headers: &headers,
        override_cohort,
        override_authorized,
    };
    let detail = guard::routing_detail(req, env);
    let url_policy = guard::url_policy();
    let lightrag_key = secret(env, "LIGHTRAG_API_KEY");
    let perplexity_key = secret(env, "PERPLEXITY_API");
    super::isolate::before_routing(env, ctx, &rr).await;
    let now = now_ms();
    let (mut decision, admission, key, params) = with(|i| {
        let (d, admission) = i.decide(&rr, now);
        let key = i.tag(&ident.key);
        let c = i.config();
        let p = Params {
            primary: d.upstream,
            policy: ExchangePolicy::from_config(c),
            targets: Targets {
                lightrag_base: c.lightrag_base_url.clone(),
                perplexity_base: c.perplexity_base_url.clone(),
                lightrag_key,
                perplexity_key,
                query_mode: c.query_mode,
                model: a.model.map(str::to_string),
                client: Some(req.inner().signal()),
                url_policy,
            },
            score: c.quality_gate.settings().enabled,
        };
        (d, admission, key, p)
    })?;
    // The position is operator detail (core::guard::exposure), in headers and bodies alike.
    if !detail.shown() {
        decision.position_percent = None;
    }
    Some(Routed {
        ident,
        key,
        decision,
        admission,
        params,
    })
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

/// Adds `X-Request-Id` to a handler's answer, whatever it was.
fn with_request_id(r: Result<Response>, rid: &str) -> Result<Response> {
    let resp = r?;
    resp.headers().set(REQUEST_ID_HEADER, rid)?;
    Ok(resp)
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

/// What an answer is scored on, when the exchange served one.
struct Answered<'a> {
    query: &'a str,
    answer: &'a UpstreamAnswer,
}

/// One exchange and what the edge needs to record its results: the [`Exchange`] (core) with
/// the decision it serves. When the client goes away before the end ([`ClientWatch`], or the
/// driver dropped with the response) it tells the exchange so, which hands back a probe permit
/// in flight.
struct Driver {
    ex: Exchange,
    decision: Decision,
    /// The caller's keyed tag, for the breaker's distinct-key rule and the metric quota.
    key: KeyTag,
    score: bool,
    rid: String,
}

impl Driver {
    /// Performs the records the exchange produced since the last call. `answered` is the
    /// served answer when the exchange just ended with one; returns its quality score when
    /// scored.
    fn book(&mut self, answered: Option<&Answered<'_>>) -> Option<f64> {
        let now = now_ms();
        let mut quality = None;
        for r in self.ex.take_records() {
            match r {
                Record::Breaker { upstream, outcome } => {
                    let call = CallRecord {
                        upstream,
                        outcome,
                        key: self.key,
                    };
                    if let Some(t) = with(|i| i.record_call(&call, now)).flatten() {
                        console_log!(
                            "breaker {} {} -> {} ({:?}, generation {})",
                            upstream.as_str(),
                            t.from.as_str(),
                            t.to.as_str(),
                            t.cause,
                            t.generation
                        );
                    }
                }
                Record::Release { upstream } => {
                    with(|i| i.release_permit(upstream, now));
                }
                Record::Request(q) => {
                    quality = match (answered, q.first_byte_ms) {
                        (Some(a), Some(first_byte)) if self.score => {
                            Some(score(a.query, a.answer, first_byte, q.upstream))
                        }
                        _ => None,
                    };
                    let sample = Sample {
                        kind: q.kind,
                        latency_ms: q.latency_ms,
                        fallback: q.fallback,
                        quality,
                    };
                    let key = MetricKey::new(q.upstream, self.decision.arm);
                    let (caller, now) = (self.key, now);
                    with(|i| i.record_request(key, &sample, caller, now));
                }
            }
        }
        quality
    }

    /// Draws the permit a [`Step::Acquire`] asks for and reports it.
    fn acquire(&mut self, u: Upstream) -> Step {
        let now = now_ms();
        let admission = with(|i| i.take_permit(u, now)).unwrap_or(Admission::Allowed);
        self.ex.on_permit(admission, now)
    }

    /// Reports a missed attempt, logging why.
    fn missed(&mut self, u: Upstream, miss: Miss) -> (Step, Option<String>) {
        let now = now_ms();
        match miss {
            Miss::NotSent(why) => {
                console_log!("request {}: not sent to {u}: {why}", self.rid);
                (self.ex.on_result(AttemptResult::NotSent, now), Some(why))
            }
            Miss::Failed(fault, detail) => {
                console_error!(
                    "request {}: {u} failed ({}): {detail}",
                    self.rid,
                    fault.kind()
                );
                (self.ex.on_result(AttemptResult::Failed(fault), now), None)
            }
        }
    }

    /// The client left: the exchange hands back a probe permit in flight; nothing is judged.
    fn client_gone(&mut self) {
        if !self.ex.is_finished() {
            console_log!("request {}: the client left before the end", self.rid);
            self.ex.on_client_gone(now_ms());
            self.book(None);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.client_gone();
    }
}

/// A [`Driver`] shared with the [`ClientWatch`] that may end it. Never borrowed across an
/// `.await`.
type Shared = Rc<RefCell<Driver>>;

/// Tells an exchange when its client disconnects. Workers signal that on the incoming request's
/// `signal` (compatibility flag `enable_request_signal`), and it is the only notice: the
/// runtime then stops running the request's code — the response stream is not cancelled into
/// Rust, nothing is dropped — so the probe permit of a call in flight is handed back from the
/// listener. Removed when dropped (the exchange ended normally).
struct ClientWatch {
    signal: web_sys::AbortSignal,
    _on_abort: Closure<dyn FnMut()>,
}

impl ClientWatch {
    fn new(req: &Request, drv: &Shared) -> ClientWatch {
        let signal = req.inner().signal();
        let weak = Rc::downgrade(drv);
        let on_abort = Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = weak.upgrade() {
                if let Ok(mut d) = d.try_borrow_mut() {
                    d.client_gone();
                }
            }
        });
        signal.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
        ClientWatch {
            signal,
            _on_abort: on_abort,
        }
    }
}

impl Drop for ClientWatch {
    fn drop(&mut self) {
        self.signal.set_onabort(None);
    }
}

/// How a complete exchange ended.
enum Ending {
    Served(Served, UpstreamAnswer),
    Failed(Failed),
}

/// Drives a complete (non-streamed) exchange to its end. `not_sent` keeps the router's own
/// reason when it refused to send the request somewhere (safe to show the client).
async fn complete(
    drv: &Shared,
    first: Step,
    p: &Params,
    ask: &Ask<'_>,
    not_sent: &mut Option<String>,
) -> Ending {
    let mut step = first;
    let mut answer = None;
    loop {
        step = match step {
            Step::Acquire { upstream } => drv.borrow_mut().acquire(upstream),
            Step::Call(c) => {
                let got = upstream::call(&p.targets, c.upstream, ask, &c).await;
                let mut d = drv.borrow_mut();
                match got {
                    Ok(done) => {
                        answer = Some(done.answer);
                        let head_ms = done.head_ms;
                        d.ex.on_result(AttemptResult::Answered { head_ms }, now_ms())
                    }
                    Err(miss) => {
                        let (next, why) = d.missed(c.upstream, miss);
                        if why.is_some() {
                            *not_sent = why;
                        }
                        next
                    }
                }
            }
            // The answer check (answer-aware routing) judges `answer` here; until it exists
            // every answer answers.
            Step::Inspect { .. } => {
                let now = now_ms();
                drv.borrow_mut().ex.on_answer_head(Verdict::Answer, now)
            }
            Step::Respond(served) => {
                return match answer.take() {
                    Some(a) => Ending::Served(served, a),
                    None => Ending::Failed(internal_failure(served.upstream)),
                }
            }
            Step::Fail(f) => return Ending::Failed(f),
            // Stream steps cannot occur for a complete exchange; Abort / Done: the client left.
            _ => return Ending::Failed(internal_failure(p.primary)),
        };
    }
}

/// A failure the exchange did not produce (a step out of place): 502, never a panic.
fn internal_failure(u: Upstream) -> Failed {
    Failed {
        status: 502,
        code: FailCode::UpstreamFailed,
        attempts: vec![crate::core::exchange::Attempted {
            upstream: u,
            kind: crate::core::outcome::OutcomeKind::NetworkError,
        }],
        no_fallback: None,
    }
}

/// What the client is told when nothing could be served: the router's own classification
/// (and its own reason for a request it would not send), never an upstream's text.
fn failure_message(f: &Failed, not_sent: Option<&str>, rid: &str) -> String {
    let kinds: Vec<String> = f
        .attempts
        .iter()
        .map(|a| format!("{}: {}", a.upstream, a.kind))
        .collect();
    let kinds = kinds.join("; ");
    match (f.code, not_sent) {
        (FailCode::RequestRejected, Some(why)) => format!("{why} (request id {rid})"),
        (FailCode::RequestRejected | FailCode::RequestTooLarge, _) => {
            format!("the upstream refused this request as sent ({kinds}); request id {rid}")
        }
        _ => format!("no upstream could answer ({kinds}); request id {rid}"),
    }
}

fn failure_response(d: &Decision, ident: &Identity, f: &Failed, message: &str) -> Result<Response> {
    let resp = http::error(f.status, f.code.as_str(), message)?;
    let served = f.attempts.last().map_or(d.upstream, |a| a.upstream);
    set_route_headers(&resp, d, ident, served, None)?;
    Ok(resp)
}

fn completion_id() -> String {
    format!("chatcmpl-{}", identity::new_id(&random_bytes()))
}

fn request_id() -> String {
    identity::new_id(&random_bytes())
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

/// Starts the exchange for a routed request.
fn start(r: &Routed, mode: Mode, rid: &str) -> (Shared, Step) {
    let plan = Plan {
        primary: r.decision.upstream,
        mode,
        purpose: Purpose::Serve,
        primary_admission: r.admission,
    };
    let (ex, step) = Exchange::start(&r.params.policy, plan, now_ms());
    let drv = Driver {
        ex,
        decision: r.decision.clone(),
        key: r.key,
        score: r.params.score,
        rid: rid.to_string(),
    };
    (Rc::new(RefCell::new(drv)), step)
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
pub async fn chat_completions(req: Request, env: &Env, ctx: &Context) -> Result<Response> {
    let rid = request_id();
    with_request_id(chat_completions_inner(req, env, ctx, &rid).await, &rid)
}

async fn chat_completions_inner(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rid: &str,
) -> Result<Response> {
    let start_ms = now_ms();
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
    let asker = Asker {
        user,
        session,
        query: &chat.query,
        model: Some(&upstream_model),
    };
    let Some(routed) = route(&req, env, ctx, &asker).await else {
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
        return stream_chat(&req, routed, &ask, model, start_ms, rid).await;
    }
    let (drv, first) = start(&routed, Mode::Complete, rid);
    let _watch = ClientWatch::new(&req, &drv);
    let mut not_sent = None;
    let ending = complete(&drv, first, &routed.params, &ask, &mut not_sent).await;
    let d = &routed.decision;
    match ending {
        Ending::Served(s, answer) => {
            drv.borrow_mut().book(Some(&Answered {
                query: &chat.query,
                answer: &answer,
            }));
            let fallback = s.fallback.is_some();
            let routing = routing_info(d, s.upstream, fallback);
            let text = openai::chat_response(
                &completion_id(),
                start_ms / 1000,
                &model,
                &answer.content,
                &answer.citations,
                &routing,
            );
            let resp = http::raw_json(200, text)?;
            set_route_headers(
                &resp,
                d,
                &routed.ident,
                s.upstream,
                s.fallback.map(|f| f.from),
            )?;
            Ok(resp)
        }
        Ending::Failed(f) => {
            drv.borrow_mut().book(None);
            let msg = failure_message(&f, not_sent.as_deref(), rid);
            failure_response(d, &routed.ident, &f, &msg)
        }
    }
}

/// `POST /query` (the seed's shape).
pub async fn seed_query(req: Request, env: &Env, ctx: &Context) -> Result<Response> {
    let rid = request_id();
    with_request_id(seed_query_inner(req, env, ctx, &rid).await, &rid)
}

async fn seed_query_inner(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rid: &str,
) -> Result<Response> {
    let start_ms = now_ms();
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
    let asker = Asker {
        user,
        session,
        query: &q.query_text,
        model: Some(&upstream_model),
    };
    let Some(routed) = route(&req, env, ctx, &asker).await else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let messages = [ChatMessage::new("user", &q.query_text)];
    let ask = Ask {
        query: &q.query_text,
        messages: &messages,
    };
    let (drv, first) = start(&routed, Mode::Complete, rid);
    let _watch = ClientWatch::new(&req, &drv);
    let mut not_sent = None;
    let ending = complete(&drv, first, &routed.params, &ask, &mut not_sent).await;
    let d = &routed.decision;
    match ending {
        Ending::Served(s, answer) => {
            let quality = drv.borrow_mut().book(Some(&Answered {
                query: &q.query_text,
                answer: &answer,
            }));
            let fallback = s.fallback.is_some();
            let routing = routing_info(d, s.upstream, fallback);
            let text = seed::query_response(&SeedResponse {
                content: &answer.content,
                citations: &answer.citations,
                service_used: Some(s.upstream),
                routing: &routing,
                processing_time_ms: now_ms().saturating_sub(start_ms),
                quality_score: quality,
                success: true,
                error: None,
            });
            let resp = http::raw_json(200, text)?;
            set_route_headers(
                &resp,
                d,
                &routed.ident,
                s.upstream,
                s.fallback.map(|f| f.from),
            )?;
            Ok(resp)
        }
        Ending::Failed(f) => {
            drv.borrow_mut().book(None);
            let routing = routing_info(d, d.upstream, false);
            let msg = failure_message(&f, not_sent.as_deref(), rid);
            let text = seed::query_response(&SeedResponse {
                content: "",
                citations: &[],
                service_used: None,
                routing: &routing,
                processing_time_ms: now_ms().saturating_sub(start_ms),
                quality_score: None,
                success: false,
                error: Some(&msg),
            });
            let resp = http::raw_json(f.status, text)?;
            set_route_headers(&resp, d, &routed.ident, d.upstream, None)?;
            Ok(resp)
        }
    }
}

/// A committed stream being piped to the client.
struct Pipe {
    drv: Shared,
    /// Removed when the pipe ends (dropped with it).
    _watch: ClientWatch,
    rid: String,
    s: UpstreamStream,
    out: VecDeque<String>,
    acc: StreamAccumulator,
    /// The exchange's next wake-up ([`Step::Forward`]).
    wake_at_ms: u64,
    finished: bool,
    id: String,
    created: u64,
    model: String,
    query: String,
    routing: RoutingInfo,
}

impl Pipe {
    /// Forwards decoded items as client frames; returns how the stream ended, if these items
    /// say it did (an end marker, or an error the upstream reported).
    fn feed(&mut self, items: Vec<StreamItem>) -> Option<StreamEnd> {
        for item in items {
            match &item {
                StreamItem::Delta(t) => {
                    self.out
                        .push_back(openai::chunk_delta(&self.id, self.created, &self.model, t))
                }
                StreamItem::Error(e) => {
                    console_error!(
                        "request {}: {} reported an error mid-stream: {}",
                        self.rid,
                        self.s.upstream,
                        self.s.redact(e)
                    );
                    return Some(StreamEnd::Reported);
                }
                StreamItem::Done => {
                    self.acc.apply(&item);
                    return Some(StreamEnd::Done);
                }
                StreamItem::Citations(_) => {}
            }
            self.acc.apply(&item);
        }
        None
    }

    /// Performs what the exchange said after an event.
    fn apply(&mut self, step: Step) {
        match step {
            Step::Forward { wake_at_ms } => self.wake_at_ms = wake_at_ms,
            Step::Finish => self.finish_ok(),
            Step::Cut(cut) => {
                self.out.push_back(openai::chunk_error(&format!(
                    "the {} stream was cut after it started ({}); the answer is incomplete; \
                     request id {}",
                    cut.upstream,
                    cut.cause.as_str(),
                    self.rid
                )));
                self.out.push_back(openai::DONE.to_string());
                self.finished = true;
                self.drv.borrow_mut().book(None);
            }
            Step::Wait => {}
            // Nothing else follows a commit (Abort / Done: the client left); end the stream.
            _ => {
                self.finished = true;
                self.drv.borrow_mut().book(None);
            }
        }
    }

    fn finish_ok(&mut self) {
        let answer = std::mem::take(&mut self.acc).into_answer();
        self.out.push_back(openai::chunk_final(
            &self.id,
            self.created,
            &self.model,
            "stop",
            &answer.citations,
            &self.routing,
        ));
        self.out.push_back(openai::DONE.to_string());
        self.finished = true;
        let query = std::mem::take(&mut self.query);
        self.drv.borrow_mut().book(Some(&Answered {
            query: &query,
            answer: &answer,
        }));
    }

    /// Handles what one read of the upstream gave.
    fn handle(&mut self, next: Next) {
        let now = now_ms();
        let step = match next {
            Next::Items(items) => match self.feed(items) {
                Some(end) => self.drv.borrow_mut().ex.on_stream_end(end, now),
                None => self.drv.borrow_mut().ex.on_chunk(now),
            },
            Next::End(items) => {
                let end = self.feed(items).unwrap_or(StreamEnd::BodyEnded);
                self.drv.borrow_mut().ex.on_stream_end(end, now)
            }
            Next::Broken(detail) => {
                console_error!("request {}: {detail}", self.rid);
                self.drv
                    .borrow_mut()
                    .ex
                    .on_stream_end(StreamEnd::Broken, now)
            }
            Next::Timer => self.drv.borrow_mut().ex.on_timer(now),
        };
        self.apply(step);
    }
}

/// The pre-commit half of a stream: drive the exchange until it commits to a stream (or fails).
async fn open(
    drv: &Shared,
    first: Step,
    p: &Params,
    ask: &Ask<'_>,
    not_sent: &mut Option<String>,
) -> std::result::Result<(Commit, UpstreamStream), Failed> {
    let mut step = first;
    let mut opened: Option<UpstreamStream> = None;
    loop {
        step = match step {
            Step::Acquire { upstream } => drv.borrow_mut().acquire(upstream),
            Step::Call(c) => {
                let got = upstream::open_stream(&p.targets, c.upstream, ask, &c).await;
                let mut d = drv.borrow_mut();
                match got {
                    Ok(s) => {
                        opened = Some(s);
                        d.ex.on_first_byte(now_ms())
                    }
                    Err(miss) => {
                        let (next, why) = d.missed(c.upstream, miss);
                        if why.is_some() {
                            *not_sent = why;
                        }
                        next
                    }
                }
            }
            // The answer check (answer-aware routing) reads on from `opened` here, within
            // the hold-back; until it exists every answer answers.
            Step::Inspect { .. } => {
                let now = now_ms();
                drv.borrow_mut().ex.on_answer_head(Verdict::Answer, now)
            }
            Step::Commit(c) => {
                return match opened.take() {
                    Some(s) => Ok((c, s)),
                    None => Err(internal_failure(c.served.upstream)),
                }
            }
            Step::Fail(f) => return Err(f),
            // Abort / Done: the client left; nothing else precedes a commit.
            _ => return Err(internal_failure(p.primary)),
        };
    }
}

async fn stream_chat(
    req: &Request,
    routed: Routed,
    ask: &Ask<'_>,
    model: String,
    start_ms: u64,
    rid: &str,
) -> Result<Response> {
    let (drv, first) = start(&routed, Mode::Stream, rid);
    let watch = ClientWatch::new(req, &drv);
    let d = &routed.decision;
    let mut not_sent = None;
    let (commit, mut s) = match open(&drv, first, &routed.params, ask, &mut not_sent).await {
        Ok(x) => x,
        Err(f) => {
            drv.borrow_mut().book(None);
            let msg = failure_message(&f, not_sent.as_deref(), rid);
            return failure_response(d, &routed.ident, &f, &msg);
        }
    };
    let served = commit.served;
    let initial = std::mem::take(&mut s.initial);
    let mut pipe = Pipe {
        drv,
        _watch: watch,
        rid: rid.to_string(),
        s,
        out: VecDeque::new(),
        acc: StreamAccumulator::new(),
        wake_at_ms: commit.wake_at_ms,
        finished: false,
        id: completion_id(),
        created: start_ms / 1000,
        model,
        query: ask.query.to_string(),
        routing: routing_info(d, served.upstream, served.fallback.is_some()),
    };
    // What the attempts before the commit recorded (a failed primary, say).
    pipe.drv.borrow_mut().book(None);
    pipe.out
        .push_back(openai::chunk_start(&pipe.id, pipe.created, &pipe.model));
    pipe.handle(Next::Items(initial));
    let stream = futures_util::stream::unfold(pipe, |mut pipe| async move {
        loop {
            if let Some(frame) = pipe.out.pop_front() {
                return Some((Ok::<Vec<u8>, worker::Error>(frame.into_bytes()), pipe));
            }
            if pipe.finished {
                return None;
            }
            let next = pipe.s.next(pipe.wake_at_ms).await;
            pipe.handle(next);
        }
    });
    let resp = Response::from_stream(stream)?;
    let h = resp.headers();
    h.set("content-type", "text/event-stream; charset=utf-8")?;
    h.set("cache-control", "no-cache")?;
    set_route_headers(
        &resp,
        d,
        &routed.ident,
        served.upstream,
        served.fallback.map(|f| f.from),
    )?;
    Ok(resp)
}
