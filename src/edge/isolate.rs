//! The isolate's cached state: config, breakers, metric windows, the controller's rollout
//! document and the KV schedule. Requests read it from memory (zero KV reads in steady state);
//! KV is read once when the isolate starts and then refreshed in the background
//! (`ctx.wait_until`) at most every `STATE_REFRESH_SECONDS`; writes (breaker transitions,
//! metric flushes) also run in the background, throttled by the pure rules in
//! [`crate::core::store`].
//!
//! Workers run one request at a time per thread, so the state lives in a `thread_local`
//! `RefCell`; no borrow is ever held across an `.await`.

use super::kv::{self, Kv};
use crate::core::breaker::{Breaker, BreakerState, BreakerStatus, Transition};
use crate::core::config::{self, Config, Loaded, Problem};
use crate::core::decide::{self, BreakerView, Decision, RouteRequest, RouteState};
use crate::core::model::Upstream;
use crate::core::outcome::Outcome;
use crate::core::policies;
use crate::core::store::{
    self, breaker_key, metrics_key, metrics_ttl_seconds, MetricsFlush, OverridesDoc, RemoteState,
    RolloutDoc, Schedule, StateStore, WriteThrottle, MIN_WRITE_INTERVAL_MS,
};
use crate::core::window::{Arm, MetricKey, Sample, Stats, Window};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use worker::{console_error, console_log, Context, Env};

pub struct Isolate {
    pub id: String,
    vars: Map<String, Value>,
    pub overrides: OverridesDoc,
    pub loaded: Loaded,
    pub policy_warning: Option<String>,
    pub breakers: BTreeMap<Upstream, Breaker>,
    pub windows: BTreeMap<MetricKey, Window>,
    pub sched: Schedule,
    pub throttle: WriteThrottle,
    pub rollout: Option<RolloutDoc>,
    pub warnings: Vec<String>,
}

thread_local! {
    static ISO: RefCell<Option<Isolate>> = const { RefCell::new(None) };
}

/// Runs `f` on the isolate state, if it is initialised.
pub fn with<R>(f: impl FnOnce(&mut Isolate) -> R) -> Option<R> {
    ISO.with(|cell| cell.borrow_mut().as_mut().map(f))
}

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// A roll in [0, 1).
pub fn roll() -> f64 {
    js_sys::Math::random()
}

pub fn random_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Never fatal: fall back to Math.random (only used for ids and cookie values).
        for x in &mut b {
            *x = (roll() * 256.0) as u8;
        }
    }
    b
}

/// A secret binding (`wrangler secret put`), or a plain var of that name (local dev, tests).
pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
}

fn read_vars(env: &Env) -> Map<String, Value> {
    let mut m = Map::new();
    for name in config::KNOWN_VARIABLES {
        if let Ok(v) = env.var(name) {
            m.insert((*name).to_string(), Value::String(v.to_string()));
        }
    }
    m
}

impl Isolate {
    fn new(env: &Env, now: u64) -> Isolate {
        let vars = read_vars(env);
        let loaded = config::load(&vars, None, 0);
        let (policy, policy_warning) = policies::breaker_policy(&loaded.config);
        let mut breakers = BTreeMap::new();
        for u in Upstream::ALL {
            breakers.insert(u, Breaker::new(policy.clone()));
        }
        Isolate {
            id: crate::core::identity::new_id(&random_bytes()),
            vars,
            overrides: OverridesDoc::default(),
            loaded,
            policy_warning,
            breakers,
            windows: BTreeMap::new(),
            sched: Schedule {
                last_refresh_ms: None,
                refresh_in_flight: false,
                last_flush_ms: now,
            },
            throttle: WriteThrottle::new(MIN_WRITE_INTERVAL_MS),
            rollout: None,
            warnings: Vec::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    pub fn problems(&self) -> &[Problem] {
        &self.loaded.problems
    }

    /// What the config would be with these overrides (for admin validation).
    pub fn validate(&self, overrides: &Map<String, Value>, version: u64) -> Loaded {
        config::load(&self.vars, Some(overrides), version)
    }

    /// Rebuilds the config from vars + overrides; rebuilds breakers when their policy changed
    /// (carrying their shared state over).
    pub fn set_overrides(&mut self, doc: OverridesDoc, now: u64) {
        let loaded = config::load(&self.vars, Some(&doc.overrides), doc.version);
        let old = policies::breaker_settings(&self.loaded.config);
        let new = policies::breaker_settings(&loaded.config);
        self.overrides = doc;
        self.loaded = loaded;
        if old != new {
            let (policy, warning) = policies::breaker_policy(&self.loaded.config);
            self.policy_warning = warning;
            for b in self.breakers.values_mut() {
                let snap = b.snapshot();
                let mut nb = Breaker::new(policy.clone());
                nb.merge_remote(&snap, now);
                *b = nb;
            }
        }
    }

    /// Adopts what a refresh read.
    pub fn apply_remote(&mut self, r: RemoteState, now: u64) {
        for w in &r.warnings {
            console_error!("{}", w);
        }
        self.warnings = r.warnings;
        if let Some(doc) = r.overrides {
            if doc.version != self.overrides.version || doc.overrides != self.overrides.overrides {
                self.set_overrides(doc, now);
            }
        }
        for (u, snap) in r.breakers {
            if let Some(b) = self.breakers.get_mut(&u) {
                b.merge_remote(&snap, now);
            }
        }
        self.rollout = r.rollout;
        self.sched.last_refresh_ms = Some(now);
        self.sched.refresh_in_flight = false;
    }

    /// The routing decision for one request. A half-open probe permit is drawn only when the
    /// request would actually go to LightRAG (otherwise permits would leak to requests that
    /// never call it and the breaker would recover slowly at low rollout percentages).
    pub fn decide(&mut self, rr: &RouteRequest, now: u64) -> Decision {
        let mut state = self.route_state_readonly(now);
        state.quality_probe_roll = roll();
        let half_open = state.lightrag_breaker == BreakerView::HalfOpenReject;
        if half_open {
            state.lightrag_breaker = BreakerView::HalfOpenProbe;
        }
        let d = decide::decide(&self.loaded.config, &state, rr);
        if !half_open || d.upstream != Upstream::Lightrag {
            return d;
        }
        let admitted = self
            .breakers
            .get_mut(&Upstream::Lightrag)
            .is_none_or(|b| b.admit(now, roll()).is_admitted());
        if admitted {
            return d;
        }
        state.lightrag_breaker = BreakerView::HalfOpenReject;
        decide::decide(&self.loaded.config, &state, rr)
    }

    /// The same state without drawing a probe permit (OFREP, preview-style questions).
    pub fn route_state_readonly(&self, now: u64) -> RouteState {
        let view = match self.breakers.get(&Upstream::Lightrag).map(|b| b.state(now)) {
            Some(BreakerState::Open) => BreakerView::Open,
            Some(BreakerState::HalfOpen) => BreakerView::HalfOpenReject,
            _ => BreakerView::Closed,
        };
        let rollout = self.rollout.as_ref();
        RouteState {
            rollback_active: rollout.is_some_and(|r| r.rollback_active),
            lightrag_breaker: view,
            quality_gate_closed: rollout.is_some_and(|r| r.quality_gate_closed),
            quality_probe_roll: 1.0,
        }
    }

    /// Whether `u`'s breaker admits a request now (for fallback planning).
    pub fn admits(&mut self, u: Upstream, now: u64) -> bool {
        self.breakers
            .get_mut(&u)
            .is_none_or(|b| b.admit(now, roll()).is_admitted())
    }

    /// Records one upstream call in its breaker; a transition is offered to the KV throttle.
    pub fn record_call(&mut self, u: Upstream, outcome: &Outcome, now: u64) {
        let t = self
            .breakers
            .get_mut(&u)
            .and_then(|b| b.record(outcome, now, roll()));
        if let Some(t) = t {
            self.note_transition(u, &t, now);
        }
    }

    pub fn note_transition(&mut self, u: Upstream, t: &Transition, now: u64) {
        console_log!(
            "breaker {} {} -> {} ({:?}, generation {})",
            u.as_str(),
            t.from.as_str(),
            t.to.as_str(),
            t.cause,
            t.generation
        );
        if let Some(b) = self.breakers.get(&u) {
            let text = serde_json::to_string(&b.snapshot()).unwrap_or_default();
            // Offered: the write happens now if allowed, else stays pending (replaced by any
            // later transition) until a second has passed.
            if let Some(w) = self.throttle.offer(&breaker_key(u), text, now) {
                PENDING.with(|p| p.borrow_mut().push(w));
            }
        }
    }

    /// Records one finished request in the metric windows.
    pub fn record_request(&mut self, key: MetricKey, sample: &Sample, now: u64) {
        self.windows.entry(key).or_default().record(now, sample);
    }

    pub fn local_stats(&self, now: u64) -> BTreeMap<MetricKey, Stats> {
        self.windows
            .iter()
            .map(|(k, w)| (*k, w.total(now)))
            .collect()
    }

    pub fn breaker_statuses(&self, now: u64) -> Vec<(Upstream, BreakerStatus)> {
        self.breakers
            .iter()
            .map(|(u, b)| (*u, b.status(now)))
            .collect()
    }

    fn flush_doc(&mut self, now: u64) -> String {
        for w in self.windows.values_mut() {
            w.prune(now);
        }
        let doc = MetricsFlush {
            isolate: self.id.clone(),
            flushed_ms: now,
            windows: self.windows.clone(),
        };
        serde_json::to_string(&doc).unwrap_or_default()
    }
}

thread_local! {
    /// Writes allowed now, collected during a request and run in the background.
    static PENDING: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Maps the decision's arm onto the metrics arm.
pub fn metric_arm(a: decide::Arm) -> Arm {
    match a {
        decide::Arm::Treatment => Arm::Treatment,
        decide::Arm::Control => Arm::Control,
        decide::Arm::None => Arm::None,
    }
}

/// Makes sure the isolate state exists. The first request of an isolate reads KV (4 reads);
/// after that, requests never wait for KV.
pub async fn ensure(env: &Env) {
    let now = now_ms();
    let fresh = ISO.with(|c| c.borrow().is_none());
    if fresh {
        let iso = Isolate::new(env, now);
        ISO.with(|c| *c.borrow_mut() = Some(iso));
        if let Some(store) = Kv::open(env) {
            let remote = store::load_remote(&store).await;
            with(|i| i.apply_remote(remote, now_ms()));
        } else {
            with(|i| {
                i.warnings = vec![format!("KV binding `{}` is missing", super::KV_BINDING)];
                i.sched.last_refresh_ms = Some(now);
            });
        }
    }
}

/// After a request: schedules the background work that is due (refresh, throttled writes,
/// metric flush), each at most as often as the KV budget allows.
pub fn background(env: &Env, ctx: &Context) {
    let now = now_ms();
    let Some(store) = Kv::open(env) else {
        return;
    };
    let (refresh, flush, ttl) = with(|i| {
        let (refresh_s, flush_s) = (
            i.config().state_refresh_seconds,
            i.config().metrics_flush_seconds,
        );
        let refresh = i.sched.refresh_due(now, refresh_s);
        if refresh {
            i.sched.refresh_in_flight = true;
        }
        let flush_due = i.sched.flush_due(now, flush_s) && !i.windows.is_empty();
        let flush = if flush_due {
            i.sched.last_flush_ms = now;
            Some((metrics_key(&i.id), i.flush_doc(now)))
        } else {
            None
        };
        for w in i.throttle.due(now) {
            PENDING.with(|p| p.borrow_mut().push(w));
        }
        (refresh, flush, metrics_ttl_seconds(flush_s))
    })
    .unwrap_or((false, None, 60));
    let writes: Vec<(String, String)> = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if !refresh && flush.is_none() && writes.is_empty() {
        return;
    }
    ctx.wait_until(async move {
        for (k, v) in writes {
            if let Err(e) = store.put(&k, &v, None).await {
                console_error!("KV write of `{}` failed: {}", k, e);
            }
        }
        if let Some((k, v)) = flush {
            if let Err(e) = store.put(&k, &v, Some(ttl)).await {
                console_error!("KV metrics flush `{}` failed: {}", k, e);
            }
        }
        if refresh {
            let remote = store::load_remote(&store).await;
            with(|i| i.apply_remote(remote, now_ms()));
        }
    });
}

/// Forces a metrics flush now (admin), ignoring the interval.
pub async fn flush_now(env: &Env) -> Result<String, String> {
    let store = Kv::open(env).ok_or("KV binding missing")?;
    let now = now_ms();
    let (k, v, ttl) = with(|i| {
        i.sched.last_flush_ms = now;
        (
            metrics_key(&i.id),
            i.flush_doc(now),
            metrics_ttl_seconds(i.config().metrics_flush_seconds),
        )
    })
    .ok_or("isolate not initialised")?;
    store.put(&k, &v, Some(ttl)).await?;
    Ok(k)
}

/// KV counters, for reports.
pub fn kv_ops() -> crate::core::store::OpCounts {
    kv::ops()
}
