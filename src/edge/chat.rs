//! The front door: `POST /v1/chat/completions` (OpenAI-compatible, JSON or SSE) and the seed's
//! `POST /query`. Parse (400/413 with a message), identify (user, session, cookie), decide,
//! then drive one [`Exchange`] (core): perform each step it returns — draw a permit, call an
//! upstream, hold an answer back for the no-context check (docs/answer-aware.md), commit and
//! pipe a stream, answer or fail — report what happened, and record what it says to record.
//! A request Perplexity served may start a shadow call ([`super::shadow`]); a complete
//! single-question answer may come from or go to the response cache ([`super::answer`]).
//! Every answer carries `X-Request-Id`; upstream error text goes to the log (redacted), never
//! to the client.

use super::answer::{self as answers, CacheSpot};
use super::http::{HeaderWrite, Own, Reply};
use super::incoming::Incoming;
use super::isolate::{now_ms, random_bytes, secret, with};
use super::shadow;
use super::upstream::{self, Ask, Miss, Next, PerplexityQuery, Targets, UpstreamStream};
use super::{guard, http, ratelimit};
use crate::core::answer::NoContextDetector;
use crate::core::breaker::Admission;
use crate::core::classify::{self, QueryType};
use crate::core::decide::{Decision, QueryText, RouteRequest};
use crate::core::exchange::{
    AttemptResult, Commit, Exchange, ExchangePolicy, FailCode, Failed, Fallback, FallbackCause,
    Mode, NoAnswerBlame, Plan, Purpose, Record, RequestRecord, Served, Step, StreamEnd,
};
use crate::core::fleet::CallRecord;
use crate::core::guard::exposure::RoutingDetail;
use crate::core::guard::models;
use crate::core::identity::{self, AdminAuth, Identity};
use crate::core::keytag::KeyTag;
use crate::core::model::Upstream;
use crate::core::outcome::OutcomeKind;
use crate::core::quality::{DefaultScorer, ScoreInput, Scorer};
use crate::core::sorted_map::SortedMap;
use crate::core::window::{MetricKey, Sample};
use crate::core::wire::conversation::conversation;
use crate::core::wire::error::wire_error_response;
use crate::core::wire::openai::{self, ChatMessage, RoutingInfo};
use crate::core::wire::perplexity::DEFAULT_MODEL;
use crate::core::wire::perplexity_query::extract_confidence;
use crate::core::wire::seed::{self, SeedResponse};
use crate::core::wire::{StreamAccumulator, StreamItem, UpstreamAnswer};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, console_log, Context, Env, Response, Result};

/// Header an operator (with the admin token) may use to pick a cohort for one request.
pub const OVERRIDE_HEADER: &str = "x-route-override";

/// The header naming a request in the router's log (and in every error message it gives).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Per-request parameters copied out of the cached config.
pub(super) struct Params {
    /// The decision's upstream.
    pub(super) primary: Upstream,
    pub(super) policy: ExchangePolicy,
    pub(super) targets: Targets,
    /// `LIGHTRAG_ENABLE_QUALITY_METRICS`: score answers (and record quality) only when on.
    pub(super) score: bool,
    /// The no-context detector (`LIGHTRAG_NO_CONTEXT_PATTERNS`).
    pub(super) detector: NoContextDetector,
    /// Whom a no-context reply blames now (the no-context watch).
    pub(super) blame: NoAnswerBlame,
    /// The caller's keyed tag: what the breakers, the metric quotas and the no-context watch
    /// count (never the raw key).
    pub(super) key_tag: KeyTag,
    /// The query's class: declared by the caller, else the classifier's.
    pub(super) query_type: QueryType,
    /// `LIGHTRAG_RESPONSE_CACHE_SECONDS`.
    pub(super) cache_ttl: u64,
}

fn request_headers(req: &Incoming) -> Vec<(String, String)> {
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
    /// The seed `/query`'s `query_type`, when it names one of the router's classes.
    declared_type: Option<QueryType>,
    /// The seed `/query`'s `timeout_seconds`: shortens the budget, never lengthens it.
    timeout_seconds: Option<f64>,
    /// `POST /query`: the router builds the Perplexity request (the previous service's).
    seed: bool,
    /// Whether the caller sees the operator-only routing detail: read once per request, by
    /// `guard::Exit::of`, so the answer's headers and its way out agree.
    detail: RoutingDetail,
}

/// What the routing step settled for one request.
pub(super) struct Routed {
    pub(super) ident: Identity,
    pub(super) decision: Decision,
    /// What LightRAG's breaker said if the decision drew its permit.
    pub(super) admission: Admission,
    pub(super) params: Params,
    /// Whether this caller sees the operator-only routing detail (core::guard::exposure).
    pub(super) detail: RoutingDetail,
}

/// Identity, decision and per-request parameters.
async fn route(req: &Incoming, env: &Env, ctx: &Context, a: &Asker<'_>) -> Option<Routed> {
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
        query: QueryText::with_declared_type(a.query, a.declared_type),
        headers: &headers,
        override_cohort,
        override_authorized,
    };
    let detail = a.detail;
    let url_policy = guard::url_policy();
    let lightrag_key = secret(env, "LIGHTRAG_API_KEY");
    let perplexity_key = secret(env, "PERPLEXITY_API");
    super::isolate::before_routing(env, ctx, &rr).await;
    let now = now_ms();
    let (mut decision, admission, params) = with(|i| {
        let (d, admission) = i.decide(&rr, now);
        let blame = i.no_answer_blame();
        let key_tag = i.tag(&ident.key);
        let c = i.config();
        let mut policy = ExchangePolicy::from_config(c);
        if let Some(t) = a.timeout_seconds {
            policy.budget_ms = policy.budget_ms.min(((t * 1000.0).round() as u64).max(1));
        }
        let p = Params {
            primary: d.upstream,
            policy,
            targets: Targets {
                lightrag_base: c.lightrag_base_url.clone(),
                perplexity_base: c.perplexity_base_url.clone(),
                lightrag_key,
                perplexity_key,
                query_mode: c.query_mode,
                model: a.model.map(str::to_string),
                client: Some(req.inner().signal()),
                url_policy,
                perplexity_query: a.seed.then(|| PerplexityQuery {
                    model: c.perplexity_query_model.clone(),
                    temperature: c.perplexity_query_temperature,
                    search_domain_filter: c.perplexity_query_search_domain_filter.clone(),
                    system_prompt: c.perplexity_query_system_prompt.clone(),
                }),
            },
            score: c.quality_gate.settings().enabled,
            detector: NoContextDetector::new(c.no_context_patterns.iter().map(String::as_str)),
            blame,
            key_tag,
            query_type: a
                .declared_type
                .unwrap_or_else(|| classify::classify(a.query)),
            cache_ttl: c.response_cache_seconds,
        };
        (d, admission, p)
    })?;
    // The position is operator detail (core::guard::exposure), in headers and bodies alike.
    if !detail.shown() {
        decision.position_percent = None;
    }
    Some(Routed {
        ident,
        decision,
        admission,
        params,
        detail,
    })
}

/// Why a fallback served, as clients read it (`routing.fallback_reason`, `X-Route-Fallback`
/// for a no-context reply).
fn fallback_reason(f: &Fallback) -> &'static str {
    match f.cause {
        FallbackCause::NoAnswer => "no_context",
        FallbackCause::Failed(_) => "failed",
        FallbackCause::NotSent => "not_sent",
    }
}

fn routing_info(d: &Decision, served: Upstream, fallback: Option<&Fallback>) -> RoutingInfo {
    RoutingInfo {
        upstream: served,
        reason: d.reason.clone(),
        arm: d.arm,
        position: d.position_percent,
        fallback_used: fallback.is_some(),
        fallback_reason: fallback.map(|f| fallback_reason(f).to_string()),
        config_version: d.config_version,
        cache: None,
    }
}

/// The routing headers. The operator-only ones (`OPERATOR_HEADERS`) are written only for a
/// caller who may see them: `guard::finish` would delete them again for anyone else, four
/// crossings into JS and three wasted sets per answer (benches/profile_edge.mjs), so the
/// chat routes withhold them here and the way out skips its deletes for them
/// (`guard::Exit::withheld_at_source`).
fn set_route_headers(
    resp: &Response,
    r: &Routed,
    served: Upstream,
    fallback: Option<&Fallback>,
) -> Result<()> {
    write_route_headers(&mut resp.headers(), r, served, fallback)
}

/// [`set_route_headers`] on either kind of headers (an [`http::Own`] answer's list too).
fn write_route_headers(
    h: &mut impl HeaderWrite,
    r: &Routed,
    served: Upstream,
    fallback: Option<&Fallback>,
) -> Result<()> {
    let (d, ident) = (&r.decision, &r.ident);
    h.set("x-route-upstream", served.as_str())?;
    h.set("x-route-reason", &d.reason.to_string())?;
    if r.detail.shown() {
        h.set("x-route-cohort", d.upstream.as_str())?;
        h.set("x-route-arm", d.arm.as_str())?;
        if let Some(p) = d.position_percent {
            h.set("x-route-position", &format!("{p:.2}"))?;
        }
        h.set("x-route-config-version", &d.config_version.to_string())?;
    }
    // A no-context reply says so (`no_context`); a failure names the way it went.
    match fallback {
        Some(f) if f.cause == FallbackCause::NoAnswer => {
            h.set("x-route-fallback", fallback_reason(f))?
        }
        Some(f) => h.set(
            "x-route-fallback",
            &format!("{}->{}", f.from.as_str(), served.as_str()),
        )?,
        None => {}
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

/// [`with_request_id`] for either kind of [`Reply`].
fn reply_with_request_id(r: Result<Reply>, rid: &str) -> Result<Reply> {
    let mut reply = r?;
    reply.set(REQUEST_ID_HEADER, rid)?;
    Ok(reply)
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
pub(super) struct Answered<'a> {
    pub(super) query: &'a str,
    pub(super) answer: &'a UpstreamAnswer,
}

/// One exchange and what the edge needs to record its results: the [`Exchange`] (core) with
/// the decision it serves. When the client goes away before the end ([`ClientWatch`], or the
/// driver dropped with the response) it tells the exchange so, which hands back a probe permit
/// in flight.
pub(super) struct Driver {
    pub(super) ex: Exchange,
    pub(super) decision: Decision,
    pub(super) score: bool,
    pub(super) rid: String,
    /// The caller's keyed tag, for the breaker's distinct-key rule, the metric quota and the
    /// no-context watch.
    pub(super) key_tag: KeyTag,
    pub(super) query_type: QueryType,
    /// When the exchange started (a shadow call's whole time is measured from it).
    pub(super) started_ms: u64,
    /// The request's record, once the exchange produced it.
    pub(super) last_request: Option<RequestRecord>,
}

impl Driver {
    /// A driver for `ex`, started now, for a request routed with `p`.
    pub(super) fn new(ex: Exchange, decision: Decision, p: &Params, rid: &str) -> Driver {
        Driver {
            ex,
            decision,
            score: p.score,
            rid: rid.to_string(),
            key_tag: p.key_tag,
            query_type: p.query_type,
            started_ms: now_ms(),
            last_request: None,
        }
    }

    /// Performs the records the exchange produced since the last call. `answered` is the
    /// served answer when the exchange just ended with one; returns its quality score when
    /// scored. A shadow call's records go to the shadow series only: it never feeds a breaker
    /// (it holds no permit, and its outcome must not change any user's routing), the no-context
    /// watch or the arms.
    pub(super) fn book(&mut self, answered: Option<&Answered<'_>>) -> Option<f64> {
        let now = now_ms();
        let shadow = self.ex.plan().purpose == Purpose::Shadow;
        let mut quality = None;
        for r in self.ex.take_records() {
            match r {
                Record::Breaker { .. } | Record::Release { .. } if shadow => {}
                Record::Breaker { upstream, outcome } => {
                    let call = CallRecord {
                        upstream,
                        outcome,
                        key: self.key_tag,
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
                    self.last_request = Some(q);
                    quality = match (answered, q.first_byte_ms) {
                        (Some(a), Some(first_byte)) if self.score => {
                            Some(score(a.query, a.answer, first_byte, q.upstream))
                        }
                        _ => None,
                    };
                    let mut sample = Sample {
                        kind: q.kind,
                        latency_ms: q.latency_ms,
                        fallback: q.fallback,
                        quality,
                        no_context: q.no_answer.is_some(),
                        query_type: Some(self.query_type),
                        total_ms: None,
                    };
                    if shadow {
                        // The upstream's own first byte and its whole answer.
                        sample.latency_ms = q.first_byte_ms.unwrap_or(q.latency_ms);
                        sample.total_ms = Some(now.saturating_sub(self.started_ms));
                        with(|i| i.record_shadow(&sample, now));
                        continue;
                    }
                    let key = MetricKey::new(q.upstream, self.decision.arm);
                    let (tag, reason) = (self.key_tag, &self.decision.reason);
                    with(|i| {
                        if i.record_request(key, &sample, tag, now) {
                            i.record_reason(reason, &sample, now);
                        }
                        // The no-context watch sees LightRAG's replies that reached a verdict.
                        if q.no_answer == Some(Upstream::Lightrag) {
                            i.observe_reply(true, tag);
                        } else if q.upstream == Upstream::Lightrag
                            && !q.kind.is_failure()
                            && !q.kind.is_request_caused()
                        {
                            i.observe_reply(false, tag);
                        }
                    });
                }
            }
        }
        quality
    }

    /// Draws the permit a [`Step::Acquire`] asks for and reports it.
    pub(super) fn acquire(&mut self, u: Upstream) -> Step {
        let now = now_ms();
        let admission = with(|i| i.take_permit(u, now)).unwrap_or(Admission::Allowed);
        self.ex.on_permit(admission, now)
    }

    /// Reports a missed attempt, logging why, and records what the exchange says about it at
    /// once: the breaker learns of a failure when it happens, not when a fallback answer
    /// (which may take seconds) has finished.
    pub(super) fn missed(&mut self, u: Upstream, miss: Miss) -> (Step, Option<String>) {
        let now = now_ms();
        let (step, why) = match miss {
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
        };
        self.book(None);
        (step, why)
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
pub(super) type Shared = Rc<RefCell<Driver>>;

/// Tells an exchange when its client disconnects. Workers signal that on the incoming request's
/// `signal` (compatibility flag `enable_request_signal`), and it is the only notice: the
/// runtime then stops running the request's code — the response stream is not cancelled into
/// Rust, nothing is dropped — so the probe permit of a call in flight is handed back from the
/// listener. Removed when dropped (the exchange ended normally).
///
/// One listener serves the whole isolate ([`ON_ABORT`]), finding the exchange by the signal
/// that fired in [`WATCHED`]: a closure per request (made, handed to JS, released again, and
/// the handler cleared on the way out) was ~2 % of a request's samples in a workerd profile
/// (benches/profile_edge.mjs).
struct ClientWatch {
    id: u64,
}

/// One watched exchange: the watch's id, the request's signal, the exchange.
struct Watched {
    id: u64,
    signal: web_sys::AbortSignal,
    drv: Weak<RefCell<Driver>>,
}

thread_local! {
    /// The exchanges watched now.
    static WATCHED: RefCell<Vec<Watched>> = const { RefCell::new(Vec::new()) };
    static NEXT_WATCH: Cell<u64> = const { Cell::new(0) };
    /// The isolate's `onabort` handler for every watched signal.
    static ON_ABORT: Closure<dyn FnMut(JsValue)> = Closure::new(client_aborted);
}

#[wasm_bindgen(module = "/src/edge/upstream_io.js")]
extern "C" {
    /// Sets the signal's `onabort`: the upstream calls made under it are aborted, then the
    /// handler is called (`upstream_io.js` `watch`).
    #[wasm_bindgen(js_name = watch)]
    fn js_watch(signal: &web_sys::AbortSignal, handler: &js_sys::Function);
}

/// A watched signal fired: the exchanges it watches learn that their client left.
fn client_aborted(event: JsValue) {
    let signal = js_sys::Reflect::get(&event, &JsValue::from_str("target")).unwrap_or_default();
    let gone: Vec<Weak<RefCell<Driver>>> = WATCHED.with(|w| {
        w.try_borrow()
            .map(|w| {
                w.iter()
                    .filter(|x| AsRef::<JsValue>::as_ref(&x.signal) == &signal)
                    .map(|x| x.drv.clone())
                    .collect()
            })
            .unwrap_or_default()
    });
    for d in gone {
        if let Some(d) = d.upgrade() {
            if let Ok(mut d) = d.try_borrow_mut() {
                d.client_gone();
            }
        }
    }
}

impl ClientWatch {
    fn new(req: &Incoming, drv: &Shared) -> ClientWatch {
        let signal = req.inner().signal();
        let id = NEXT_WATCH.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
        ON_ABORT.with(|f| js_watch(&signal, f.as_ref().unchecked_ref()));
        WATCHED.with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                w.push(Watched {
                    id,
                    signal,
                    drv: Rc::downgrade(drv),
                });
            }
        });
        ClientWatch { id }
    }
}

impl Drop for ClientWatch {
    fn drop(&mut self) {
        // The signal keeps the shared handler; without an entry it finds nothing to tell.
        WATCHED.with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                w.retain(|x| x.id != self.id);
            }
        });
    }
}

/// How a complete exchange ended.
enum Ending {
    Served(Served, UpstreamAnswer),
    Failed(Failed),
}

/// Each upstream's answer (or stream) of one exchange, kept until the exchange says which is
/// served: an answer judged a no-context reply is served after all when its fallback fails.
struct PerUpstream<T>(Vec<(Upstream, T)>);

impl<T> PerUpstream<T> {
    fn new() -> Self {
        PerUpstream(Vec::new())
    }
    fn put(&mut self, u: Upstream, v: T) {
        self.0.retain(|(k, _)| *k != u);
        self.0.push((u, v));
    }
    fn get_mut(&mut self, u: Upstream) -> Option<&mut T> {
        self.0.iter_mut().find(|(k, _)| *k == u).map(|(_, v)| v)
    }
    fn take(&mut self, u: Upstream) -> Option<T> {
        let i = self.0.iter().position(|(k, _)| *k == u)?;
        Some(self.0.swap_remove(i).1)
    }
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
    let mut answers: PerUpstream<UpstreamAnswer> = PerUpstream::new();
    loop {
        step = match step {
            Step::Acquire { upstream } => drv.borrow_mut().acquire(upstream),
            Step::Call(c) => {
                let got = upstream::call(&p.targets, c.upstream, ask, &c).await;
                let mut d = drv.borrow_mut();
                match got {
                    Ok(done) => {
                        answers.put(c.upstream, done.answer);
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
            // The no-context check (docs/answer-aware.md): a complete answer is whole.
            Step::Inspect { upstream, .. } => {
                let v = answers::judge_complete(
                    &p.detector,
                    upstream,
                    answers.get_mut(upstream).map(|a| &*a),
                );
                drv.borrow_mut().ex.on_answer_head(v, now_ms())
            }
            Step::Respond(served) => {
                return match answers.take(served.upstream) {
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

fn failure_response(r: &Routed, f: &Failed, message: &str) -> Result<Response> {
    let resp = http::error(f.status, f.code.as_str(), message)?;
    let served = f
        .attempts
        .last()
        .map_or(r.decision.upstream, |a| a.upstream);
    set_route_headers(&resp, r, served, None)?;
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
    req: &Incoming,
    parse: impl Fn(&[u8]) -> std::result::Result<T, crate::core::wire::WireError>,
) -> std::result::Result<T, Result<Response>> {
    let body = super::body::read_incoming(req).await?;
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
        no_answer_blame: r.params.blame,
    };
    let (ex, step) = Exchange::start(&r.params.policy, plan, now_ms());
    let drv = Driver::new(ex, r.decision.clone(), &r.params, rid);
    (Rc::new(RefCell::new(drv)), step)
}

/// Starts a shadow call (docs/answer-aware.md#shadow-comparison) for a request Perplexity
/// served as decided, when the shadow gate admits it: in the background, after the response.
fn maybe_shadow(ctx: &Context, r: &Routed, ask: &Ask<'_>, served: &Served, rid: &str) {
    let admitted = with(|i| {
        i.admit_shadow(
            r.decision.upstream,
            served.upstream,
            served.fallback.is_some(),
            now_ms(),
        )
    });
    if !matches!(admitted, Some(Ok(()))) {
        return;
    }
    let job = shadow::ShadowJob::new(r, ask, rid);
    ctx.wait_until(shadow::run(job));
}

/// The cache spot of a request: the decision's upstream (its cohort), the question and how it
/// is asked. Only single-question requests (no earlier turns, no system prompt) are cached.
fn cache_spot(r: &Routed, u: Upstream, ask: &Ask<'_>) -> Option<CacheSpot> {
    if r.params.cache_ttl == 0 {
        return None;
    }
    let c = conversation(ask.messages);
    if !c.history.is_empty() || c.user_prompt.is_some() {
        return None;
    }
    let t = &r.params.targets;
    let mode = match u {
        Upstream::Lightrag => t.query_mode.as_str().to_string(),
        Upstream::Perplexity => match &t.perplexity_query {
            Some(q) => format!("query:{}", q.model),
            None => format!("chat:{}", t.model.as_deref().unwrap_or(DEFAULT_MODEL)),
        },
    };
    CacheSpot::new(u, &mode, ask.query, r.params.cache_ttl)
}

/// The Perplexity model for a request naming `requested` (core::guard::models): 400 naming the
/// allowed ones when it is not on `LIGHTRAG_ALLOWED_MODELS`.
fn allowed_model(requested: Option<&str>) -> std::result::Result<String, Result<Response>> {
    // Resolved against the isolate's list in place (a copy of the list per request cost more
    // than the lookup).
    let resolved = with(|i| models::resolve(&i.config().allowed_models, requested))
        .unwrap_or_else(|| models::resolve(&models::default_allowed(), requested));
    resolved.map_err(|e| http::error(400, "model_not_allowed", &e.to_string()))
}

/// `POST /v1/chat/completions`. A served complete answer is an [`Own`] response (its headers
/// go to the runtime in one call); everything else a `worker::Response`.
pub async fn chat_completions(
    req: Incoming,
    env: &Env,
    ctx: &Context,
    detail: RoutingDetail,
) -> Result<Reply> {
    let rid = request_id();
    reply_with_request_id(
        chat_completions_inner(req, env, ctx, &rid, detail).await,
        &rid,
    )
}

/// Whether the exchange's served answer may be cached: an answer (a success or a slow one),
/// never a no-context reply served after all.
fn cacheable(drv: &Shared) -> bool {
    drv.borrow().last_request.is_some_and(|q| {
        q.no_answer.is_none() && matches!(q.kind, OutcomeKind::Success | OutcomeKind::SlowCall)
    })
}

/// Marks a response as served from the cache.
fn mark_cached(resp: &Response) -> Result<()> {
    resp.headers().set("x-route-cache", "hit")
}

async fn chat_completions_inner(
    req: Incoming,
    env: &Env,
    ctx: &Context,
    rid: &str,
    detail: RoutingDetail,
) -> Result<Reply> {
    let start_ms = now_ms();
    let chat = match read_parsed(&req, openai::parse_chat_request).await {
        Ok(c) => c,
        Err(r) => return r.map(Reply::from),
    };
    let upstream_model = match allowed_model(chat.model.as_deref()) {
        Ok(m) => m,
        Err(r) => return r.map(Reply::from),
    };
    let (user, session) = (chat.user.as_deref(), chat.session_id.as_deref());
    if let Some(limited) = ratelimit::admit(&req, env, user, session).await {
        return limited.map(Reply::from);
    }
    let asker = Asker {
        user,
        session,
        query: &chat.query,
        model: Some(&upstream_model),
        declared_type: None,
        timeout_seconds: None,
        seed: false,
        detail,
    };
    let Some(routed) = route(&req, env, ctx, &asker).await else {
        return http::error(503, "not_ready", "router state unavailable").map(Reply::from);
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
        let c = StreamCall {
            env,
            ctx,
            model,
            start_ms,
            rid,
        };
        return stream_chat(&req, routed, &ask, c).await;
    }
    let d = &routed.decision;
    let spot = cache_spot(&routed, d.upstream, &ask);
    if let Some(spot) = &spot {
        if let Some(answer) = answers::lookup(spot).await {
            // A hit says nothing new about the upstream: no breaker, window or experiment.
            let mut routing = routing_info(d, d.upstream, None);
            routing.cache = Some("hit".into());
            let text = openai::chat_response(
                &completion_id(),
                start_ms / 1000,
                &model,
                &answer.content,
                &answer.citations,
                &routing,
            );
            let resp = http::raw_json(200, text)?;
            set_route_headers(&resp, &routed, d.upstream, None)?;
            mark_cached(&resp)?;
            return Ok(resp.into());
        }
    }
    let (drv, first) = start(&routed, Mode::Complete, rid);
    let _watch = ClientWatch::new(&req, &drv);
    let mut not_sent = None;
    let ending = complete(&drv, first, &routed.params, &ask, &mut not_sent).await;
    match ending {
        Ending::Served(s, answer) => {
            drv.borrow_mut().book(Some(&Answered {
                query: &chat.query,
                answer: &answer,
            }));
            if cacheable(&drv) {
                if let Some(spot) = cache_spot(&routed, s.upstream, &ask) {
                    answers::store(ctx, spot, &answer);
                }
            }
            maybe_shadow(ctx, &routed, &ask, &s, rid);
            let routing = routing_info(d, s.upstream, s.fallback.as_ref());
            let text = openai::chat_response(
                &completion_id(),
                start_ms / 1000,
                &model,
                &answer.content,
                &answer.citations,
                &routing,
            );
            let mut resp = Own::json(200, text);
            write_route_headers(&mut resp, &routed, s.upstream, s.fallback.as_ref())?;
            Ok(Reply::Own(resp))
        }
        Ending::Failed(f) => {
            drv.borrow_mut().book(None);
            let msg = failure_message(&f, not_sent.as_deref(), rid);
            failure_response(&routed, &f, &msg).map(Reply::from)
        }
    }
}

/// `POST /query` (the seed's shape).
pub async fn seed_query(
    req: Incoming,
    env: &Env,
    ctx: &Context,
    detail: RoutingDetail,
) -> Result<Response> {
    let rid = request_id();
    with_request_id(seed_query_inner(req, env, ctx, &rid, detail).await, &rid)
}

/// The seed response for an answer served by `u`: a Perplexity answer (asked with the previous
/// service's prompt) has its confidence annotations read out and stripped.
fn seed_content(u: Upstream, a: &UpstreamAnswer) -> (String, SortedMap<String, f64>) {
    match u {
        Upstream::Perplexity => {
            let s = extract_confidence(&a.content);
            (s.content, s.confidence_scores)
        }
        Upstream::Lightrag => (a.content.clone(), SortedMap::new()),
    }
}

async fn seed_query_inner(
    req: Incoming,
    env: &Env,
    ctx: &Context,
    rid: &str,
    detail: RoutingDetail,
) -> Result<Response> {
    let start_ms = now_ms();
    let q = match read_parsed(&req, seed::parse_query_request).await {
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
        declared_type: q.query_type.as_deref().and_then(QueryType::parse),
        timeout_seconds: q.timeout_seconds,
        seed: true,
        detail,
    };
    let Some(routed) = route(&req, env, ctx, &asker).await else {
        return http::error(503, "not_ready", "router state unavailable");
    };
    let messages = [ChatMessage::new("user", &q.query_text)];
    let ask = Ask {
        query: &q.query_text,
        messages: &messages,
    };
    let d = &routed.decision;
    let spot = cache_spot(&routed, d.upstream, &ask);
    if let Some(spot) = &spot {
        if let Some(answer) = answers::lookup(spot).await {
            let routing = routing_info(d, d.upstream, None);
            let (content, scores) = seed_content(d.upstream, &answer);
            let text = seed::query_response(&SeedResponse {
                content: &content,
                citations: &answer.citations,
                service_used: Some(d.upstream),
                routing: &routing,
                processing_time_ms: now_ms().saturating_sub(start_ms),
                quality_score: None,
                confidence_scores: &scores,
                cached: true,
                success: true,
                error: None,
            });
            let resp = http::raw_json(200, text)?;
            set_route_headers(&resp, &routed, d.upstream, None)?;
            mark_cached(&resp)?;
            return Ok(resp);
        }
    }
    let (drv, first) = start(&routed, Mode::Complete, rid);
    let _watch = ClientWatch::new(&req, &drv);
    let mut not_sent = None;
    let ending = complete(&drv, first, &routed.params, &ask, &mut not_sent).await;
    match ending {
        Ending::Served(s, answer) => {
            let (content, scores) = seed_content(s.upstream, &answer);
            let stripped = UpstreamAnswer {
                content,
                ..answer.clone()
            };
            let quality = drv.borrow_mut().book(Some(&Answered {
                query: &q.query_text,
                answer: &stripped,
            }));
            if cacheable(&drv) {
                if let Some(spot) = cache_spot(&routed, s.upstream, &ask) {
                    answers::store(ctx, spot, &answer);
                }
            }
            maybe_shadow(ctx, &routed, &ask, &s, rid);
            let routing = routing_info(d, s.upstream, s.fallback.as_ref());
            let text = seed::query_response(&SeedResponse {
                content: &stripped.content,
                citations: &answer.citations,
                service_used: Some(s.upstream),
                routing: &routing,
                processing_time_ms: now_ms().saturating_sub(start_ms),
                quality_score: quality,
                confidence_scores: &scores,
                cached: false,
                success: true,
                error: None,
            });
            let resp = http::raw_json(200, text)?;
            set_route_headers(&resp, &routed, s.upstream, s.fallback.as_ref())?;
            Ok(resp)
        }
        Ending::Failed(f) => {
            drv.borrow_mut().book(None);
            let routing = routing_info(d, d.upstream, None);
            let msg = failure_message(&f, not_sent.as_deref(), rid);
            let text = seed::query_response(&SeedResponse {
                content: "",
                citations: &[],
                service_used: None,
                routing: &routing,
                processing_time_ms: now_ms().saturating_sub(start_ms),
                quality_score: None,
                confidence_scores: &SortedMap::new(),
                cached: false,
                success: false,
                error: Some(&msg),
            });
            let resp = http::raw_json(f.status, text)?;
            set_route_headers(&resp, &routed, d.upstream, None)?;
            Ok(resp)
        }
    }
}

/// A committed stream being piped to the client (pumped by [`super::pump`]).
pub(super) struct Pipe {
    drv: Shared,
    /// Removed when the pipe ends (dropped with it).
    _watch: ClientWatch,
    rid: String,
    pub(super) s: UpstreamStream,
    pub(super) out: VecDeque<String>,
    acc: StreamAccumulator,
    /// The exchange's next wake-up ([`Step::Forward`]).
    pub(super) wake_at_ms: u64,
    pub(super) finished: bool,
    id: String,
    created: u64,
    model: String,
    query: String,
    routing: RoutingInfo,
    /// What waits until the first frames have gone out ([`Pipe::after_first`]).
    later: Option<Later>,
}

/// The work a committed stream leaves until its first frames have gone out: the bookings of
/// the attempts before the commit (a failed primary, say) and the isolate's background work
/// (`isolate::background`). Neither changes what the client gets, and before the `Response`
/// was returned they were on the way to the first text (in-worker timestamps,
/// docs/performance.md).
struct Later {
    env: Env,
    ctx: Context,
}

impl Pipe {
    /// Runs what waited for the first frames ([`Later`]), once. The bookings are the same ones
    /// made later: what the exchange recorded stays queued in it until booked, in order.
    pub(super) fn after_first(&mut self) {
        if let Some(l) = self.later.take() {
            self.drv.borrow_mut().book(None);
            super::isolate::background(&l.env, &l.ctx, None);
        }
    }

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
                    self.s.answered();
                    return Some(StreamEnd::Done);
                }
                StreamItem::Citations(_) | StreamItem::NotGenerated => {}
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
            // The exchange is over without this stream (the client left and was booked as
            // gone): nothing more goes out, and reading on would only meet the same broken
            // body again (a spin, once the invocation outlives the client: `pump::body`).
            Step::Wait if self.drv.borrow().ex.is_finished() => self.finished = true,
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

    /// Every frame ready now, as one chunk: the role chunk and the first text reach the client
    /// in one write (one packet), not two.
    pub(super) fn drain(&mut self) -> Vec<u8> {
        let bytes: String = self.out.drain(..).collect();
        bytes.into_bytes()
    }

    /// Handles what one read of the upstream gave.
    pub(super) fn handle(&mut self, next: Next) {
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
pub(super) async fn open(
    drv: &Shared,
    first: Step,
    p: &Params,
    ask: &Ask<'_>,
    not_sent: &mut Option<String>,
) -> std::result::Result<(Commit, UpstreamStream), Failed> {
    let mut step = first;
    let mut opened: PerUpstream<UpstreamStream> = PerUpstream::new();
    loop {
        step = match step {
            Step::Acquire { upstream } => drv.borrow_mut().acquire(upstream),
            Step::Call(c) => {
                let got = upstream::open_stream(&p.targets, c.upstream, ask, &c).await;
                let mut d = drv.borrow_mut();
                match got {
                    Ok(s) => {
                        opened.put(c.upstream, s);
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
            // The no-context check (docs/answer-aware.md): read on within the hold-back until
            // the detector decides. A stream judged a no-context reply is kept (it has ended:
            // LightRAG sends that reply as one line) in case its fallback fails.
            Step::Inspect { upstream, until_ms } => {
                let v = match opened.get_mut(upstream) {
                    Some(s) => answers::judge_stream(&p.detector, s, until_ms).await,
                    None => crate::core::exchange::Verdict::Answer,
                };
                drv.borrow_mut().ex.on_answer_head(v, now_ms())
            }
            Step::Commit(c) => {
                return match opened.take(c.served.upstream) {
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

/// What a streamed chat request brings besides its route and question.
struct StreamCall<'a> {
    env: &'a Env,
    ctx: &'a Context,
    /// The model named in the client's frames.
    model: String,
    start_ms: u64,
    rid: &'a str,
}

async fn stream_chat(
    req: &Incoming,
    routed: Routed,
    ask: &Ask<'_>,
    c: StreamCall<'_>,
) -> Result<Reply> {
    let StreamCall {
        env,
        ctx,
        model,
        start_ms,
        rid,
    } = c;
    let (drv, first) = start(&routed, Mode::Stream, rid);
    let watch = ClientWatch::new(req, &drv);
    let d = &routed.decision;
    let mut not_sent = None;
    let (commit, mut s) = match open(&drv, first, &routed.params, ask, &mut not_sent).await {
        Ok(x) => x,
        Err(f) => {
            drv.borrow_mut().book(None);
            let msg = failure_message(&f, not_sent.as_deref(), rid);
            return failure_response(&routed, &f, &msg).map(Reply::from);
        }
    };
    let served = commit.served;
    maybe_shadow(ctx, &routed, ask, &served, rid);
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
        routing: routing_info(d, served.upstream, served.fallback.as_ref()),
        later: Some(Later {
            env: env.clone(),
            // `worker::Context` and the `worker_sys` type under it are not `Clone`: the JS
            // object is copied as a `JsValue` and cast back.
            ctx: Context::new(
                AsRef::<JsValue>::as_ref(AsRef::<worker::worker_sys::Context>::as_ref(ctx))
                    .clone()
                    .unchecked_into(),
            ),
        }),
    };
    pipe.out
        .push_back(openai::chunk_start(&pipe.id, pipe.created, &pipe.model));
    pipe.handle(Next::Items(initial));
    let mut resp = Own::event_stream(super::pump::body(pipe, ctx));
    write_route_headers(
        &mut resp,
        &routed,
        served.upstream,
        served.fallback.as_ref(),
    )?;
    Ok(Reply::Own(resp))
}
