//! One request through one isolate, the way the Worker serves it (`edge::chat` and
//! `edge::isolate`): the first KV load before routing, the decision with its probe permit, the
//! exchange (`core::exchange`) driven against the simulated upstreams with every record booked
//! into the isolate (breaker calls with the caller's key tag, released permits, the metric
//! sample), then the background work (throttled writes, a metrics flush, a refresh when due).

use super::hub::HubClient;
use super::truth::Truth;
use super::upstream::Upstreams;
use crate::fleet_support::block_on;
use cmo_edge_router::core::breaker::{Admission, BreakerState};
use cmo_edge_router::core::decide::{Decision, RouteRequest};
use cmo_edge_router::core::exchange::{
    Exchange, ExchangePolicy, Mode, Plan, Purpose, Record, Step, Verdict,
};
use cmo_edge_router::core::fallback::Attempt;
use cmo_edge_router::core::fleet::{Background, CallRecord, FlushLater, IsolateState, KvWrite};
use cmo_edge_router::core::hub::HubRequest;
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::{Reason, Upstream};
use cmo_edge_router::core::store::{load_remote, StateStore};
use cmo_edge_router::core::window::{MetricKey, Sample};

const QUERY: &str = "What is the role of glutathione in oxidative stress?";

/// What the report needs to know about requests, beyond the metric samples.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub requests: u64,
    /// LightRAG's outage, `[from, until)`.
    pub down: (u64, u64),
    /// LightRAG calls while it was down that were not half-open probes: users sent to a dead
    /// upstream (each then served by the fallback).
    pub wasted: u64,
    /// Half-open probes while it was down (the breaker's own measurements).
    pub probes: u64,
    /// The last wasted call.
    pub last_wasted_ms: Option<u64>,
    /// LightRAG calls answered after recovery, the first of them.
    pub first_success_after_ms: Option<u64>,
    /// The last request refused by an open breaker after recovery.
    pub last_circuit_open_after_ms: Option<u64>,
    /// Requests answered with an error (both upstreams failed).
    pub failed_requests: u64,
    /// How old the isolate's state was when a request was routed (ms since its last refresh).
    pub staleness_ms: Vec<u64>,
    /// Requests routed on state older than the refresh interval: the refresh they waited for
    /// did not come back within `STATE_FIRST_LOAD_WAIT_MS`.
    pub stale_routes: u64,
    /// Requests that waited for a refresh before routing, and the time they waited.
    pub waits: u64,
    pub waited_ms: u64,
    /// The first breaker trip after LightRAG failed.
    pub first_trip_ms: Option<u64>,
    /// Flushes made after their request, with no request to carry them.
    pub deferred_flushes: u64,
    /// Retries of refused writes (the stored record did not carry the transition).
    pub write_retries: u64,
    /// Reports to the fleet's breaker (the hub), and whether the first trip was the fleet's.
    pub fleet_reports: u64,
    pub fleet_trip: bool,
}

/// Isolates and their identity.
pub struct SimIsolate {
    pub state: IsolateState,
    pub location: usize,
}

/// Performs `bg` against `store`, as `edge::isolate::background` does: the writes (a failed
/// one reported with what the key holds, `IsolateState::write_failed`), then the refresh.
/// Returns when to retry failed writes ([`retry_writes`]), if the isolate wants it.
pub fn perform<S: StateStore>(
    store: &S,
    iso: &mut IsolateState,
    bg: Background,
    now: u64,
) -> Option<u64> {
    let retry = write_all(store, iso, &bg.writes, now);
    if let Some(ticket) = bg.refresh {
        let remote = block_on(load_remote(store));
        iso.refresh_done(ticket, remote, now);
    }
    retry
}

/// Makes `writes`; for each that fails, reads the key back when the isolate asks for it and
/// reports the failure. Returns the latest retry time the isolate named.
fn write_all<S: StateStore>(
    store: &S,
    iso: &mut IsolateState,
    writes: &[KvWrite],
    now: u64,
) -> Option<u64> {
    let mut retry = None;
    for w in writes {
        if block_on(store.put(&w.key, &w.value, w.ttl_seconds)).is_ok() {
            continue;
        }
        let stored = if IsolateState::read_back_after_failure(&w.key) {
            block_on(store.get(&w.key)).ok().flatten()
        } else {
            None
        };
        if let Some(at) = iso.write_failed(&w.key, stored.as_deref(), now) {
            retry = retry.max(Some(at));
        }
    }
    retry
}

/// How many times the Worker writes a refused record at most (`edge::isolate`).
pub const WRITE_ATTEMPTS: u8 = 3;

/// The retry of failed writes at `at` (the Worker sleeps until then under the same
/// `wait_until`); returns the next retry time, if that failed too.
pub fn retry_writes<S: StateStore>(store: &S, iso: &mut IsolateState, at: u64) -> Option<u64> {
    let writes = iso.due_writes(at);
    write_all(store, iso, &writes, at)
}

/// A refresh now, whatever the schedule, applied at once.
pub fn refresh_now<S: StateStore>(store: &S, iso: &mut IsolateState, now: u64) {
    let ticket = iso.start_refresh(now);
    let remote = block_on(load_remote(store));
    iso.refresh_done(ticket, remote, now);
}

/// What one request needs besides its isolate and store.
pub struct Ctx<'a> {
    /// How long a refresh takes from this isolate's location (its reads' round trips).
    pub refresh_latency_ms: u64,
    pub up: &'a mut Upstreams,
    pub truth: &'a mut Truth,
    pub obs: &'a mut Observed,
}

/// What a request leaves for later in its invocation (`edge::isolate::background` sleeps
/// until then under `ctx.waitUntil`): the flush it names ([`flush_later`]) and the retry of a
/// refused write ([`retry_writes`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct After {
    pub flush: Option<FlushLater>,
    pub retry_at: Option<u64>,
    /// When the response was sent.
    pub done_ms: u64,
}

/// Serves one request from `user` arriving at `at_ms`; returns what it leaves for later.
pub fn serve<S: StateStore>(
    store: &S,
    iso: &mut IsolateState,
    user: u32,
    at_ms: u64,
    ctx: &mut Ctx<'_>,
) -> After {
    let t = at_ms;
    ctx.obs.requests += 1;
    // edge::isolate::ensure: a cold isolate's first requests wait for its first load; a
    // request that finds the state older than the refresh interval starts a refresh and, when
    // that state could send it to LightRAG, waits for it at most STATE_FIRST_LOAD_WAIT_MS. A
    // refresh that comes back later is applied after routing.
    let key = format!("user-{user}");
    let mut late = None;
    if !iso.first_load_arrived() {
        refresh_now(store, iso, t);
    } else {
        let before = iso.before_routing(&RouteRequest::new(Some(&key), QUERY), t);
        if let Some(ticket) = before.start {
            let remote = block_on(load_remote(store));
            let back = t + ctx.refresh_latency_ms;
            let wait = iso.config().first_load_wait_ms;
            if before.wait_for.is_some() {
                ctx.obs.waits += 1;
                ctx.obs.waited_ms += ctx.refresh_latency_ms.min(wait);
            }
            if before.wait_for.is_some() && ctx.refresh_latency_ms <= wait {
                iso.refresh_done(ticket, remote, back);
            } else {
                if before.wait_for.is_some() {
                    iso.note_stale_route(t);
                    ctx.obs.stale_routes += 1;
                }
                late = Some((ticket, remote, back));
            }
        }
    }
    let age = iso
        .kv_health()
        .last_refresh_ms
        .map_or(0, |r| t.saturating_sub(r));
    ctx.obs.staleness_ms.push(age);
    let tag = iso.tag(&key);
    let (decision, admission) = iso.decide(&RouteRequest::new(Some(&key), QUERY), t);
    if let Some((ticket, remote, back)) = late {
        iso.refresh_done(ticket, remote, back);
    }
    let (down_from, down_until) = ctx.obs.down;
    if t >= down_until && decision.reason == Reason::CircuitOpen {
        ctx.obs.last_circuit_open_after_ms = Some(t);
    }
    let policy = ExchangePolicy::from_config(iso.config());
    let score = iso.config().quality_gate.settings().enabled;
    let plan = Plan {
        primary: decision.upstream,
        mode: Mode::Complete,
        purpose: Purpose::Serve,
        primary_admission: admission,
        no_answer_blame: iso.no_answer_blame(),
    };
    let (mut ex, mut step) = Exchange::start(&policy, plan, t);
    let mut now = t;
    let mut quality = None;
    loop {
        book(
            iso,
            &mut ex,
            &decision,
            tag,
            now,
            quality.filter(|_| score),
            ctx,
        );
        match step {
            Step::Call(c) => {
                let r = ctx.up.call(c.upstream, now);
                if c.upstream == Upstream::Lightrag {
                    let down = (down_from..down_until).contains(&now);
                    let probe = c.attempt == Attempt::Primary && admission == Admission::Probe;
                    if down && probe {
                        ctx.obs.probes += 1;
                    } else if down {
                        ctx.obs.wasted += 1;
                        ctx.obs.last_wasted_ms = Some(now);
                    } else if now >= down_until
                        && ctx.obs.first_success_after_ms.is_none()
                        && r.quality.is_some()
                    {
                        ctx.obs.first_success_after_ms = Some(now);
                    }
                }
                now += r.latency_ms;
                quality = r.quality;
                step = ex.on_result(r.result, now);
            }
            Step::Acquire { upstream } => {
                let a = iso.take_permit(upstream, now);
                step = ex.on_permit(a, now);
            }
            // The no-context check (core::answer): the simulated upstreams always answer with
            // context.
            Step::Inspect { .. } => {
                step = ex.on_answer_head(Verdict::Answer, now);
            }
            Step::Fail(_) => {
                ctx.obs.failed_requests += 1;
                break;
            }
            _ => break,
        }
    }
    book(
        iso,
        &mut ex,
        &decision,
        tag,
        now,
        quality.filter(|_| score),
        ctx,
    );
    let bg = iso.background(now);
    let retry_at = perform(store, iso, bg, now);
    After {
        flush: iso.flush_later(t, now),
        retry_at,
        done_ms: now,
    }
}

/// What `edge::isolate::background` does after a response on the state hub: the LightRAG
/// calls recorded since the last report go to the fleet's breaker (`core::breaker::fleet`),
/// and the record the hub answers with is adopted (the fleet's trip reaches this isolate at
/// once). The hub runs it on `hub`'s clock, the isolate adopts the answer at `now` (the report
/// is under `wait_until`; the isolate's next request comes later than its round trip).
pub fn report_fleet(hub: &HubClient<'_>, iso: &mut IsolateState, obs: &mut Observed, now: u64) {
    let Some(r) = iso.fleet_report() else {
        return;
    };
    obs.fleet_reports += 1;
    let upstream = r.upstream;
    let req = HubRequest::Report {
        upstream,
        calls: r.calls,
    };
    let record = hub.request(req).into_record(upstream).ok().flatten();
    let adopted = iso.fleet_reported(upstream, record.as_deref(), now);
    let open = iso
        .breaker(upstream)
        .is_some_and(|b| b.state(now) == BreakerState::Open);
    if adopted && open && now >= obs.down.0 && obs.first_trip_ms.is_none() {
        obs.first_trip_ms = Some(now);
        obs.fleet_trip = true;
    }
}

/// The deferred flush `later` at its time: the write `IsolateState::flush_at` still wants, if
/// any. Returns whether it wrote.
pub fn flush_later<S: StateStore>(store: &S, iso: &mut IsolateState, later: FlushLater) -> bool {
    let Some(w) = iso.flush_at(later, later.at_ms) else {
        return false;
    };
    let _ = block_on(store.put(&w.key, &w.value, w.ttl_seconds));
    true
}

/// What `edge::chat`'s `Driver::book` does with the exchange's records.
fn book(
    iso: &mut IsolateState,
    ex: &mut Exchange,
    d: &Decision,
    tag: KeyTag,
    now: u64,
    quality: Option<f64>,
    ctx: &mut Ctx<'_>,
) {
    for r in ex.take_records() {
        match r {
            Record::Breaker { upstream, outcome } => {
                let call = CallRecord {
                    upstream,
                    outcome,
                    key: tag,
                };
                let t = iso.record_call(&call, now);
                let opened = t.is_some_and(|t| t.to == BreakerState::Open);
                if opened && now >= ctx.obs.down.0 && ctx.obs.first_trip_ms.is_none() {
                    ctx.obs.first_trip_ms = Some(now);
                }
            }
            Record::Release { upstream } => iso.release_permit(upstream, now),
            Record::Request(q) => {
                let sample = Sample {
                    kind: q.kind,
                    latency_ms: q.latency_ms,
                    fallback: q.fallback,
                    quality: q.first_byte_ms.and(quality),
                    no_context: q.no_answer.is_some(),
                    query_type: None,
                    total_ms: None,
                };
                let key = MetricKey::new(q.upstream, d.arm);
                let split = iso.routing().and_then(|r| r.split.clone());
                if iso.record_request(key, &sample, tag, now) {
                    ctx.truth.record(now, key, &sample, split.as_ref());
                }
            }
        }
    }
}
