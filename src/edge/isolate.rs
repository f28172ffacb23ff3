//! The isolate's cached state: config, breakers, metric windows, the controller's rollout
//! document and the KV schedule. Requests read it from memory (zero KV reads in steady state);
//! KV is read once when the isolate starts and then refreshed in the background
//! (`ctx.wait_until`) at most every `STATE_REFRESH_SECONDS`; writes (breaker transitions,
//! metric flushes) also run in the background, throttled by the pure rules in
//! [`crate::core::store`].
//!
//! Workers run one request at a time per thread, so the state lives in a `thread_local`
//! `RefCell`; no borrow is ever held across an `.await`. The state's fields are private: the
//! rest of the edge asks it questions and reports what happened through the methods below.

use super::kv::{self, Kv};
use crate::core::answer::cache::CacheCounts;
use crate::core::answer::shadow::{ShadowAsk, ShadowGate, ShadowSettings, ShadowSkip};
use crate::core::answer::watch::{NoContextWatch, WatchSettings};
use crate::core::breaker::{
    Admission, Breaker, BreakerAction, BreakerState, BreakerStatus, Transition,
};
use crate::core::config::{self, Config, Loaded, Problem, SECRET_VARIABLES};
use crate::core::decide::{self, Decision, RouteRequest, RouteState};
use crate::core::exchange::NoAnswerBlame;
use crate::core::model::{BreakerView, Upstream};
use crate::core::outcome::Outcome;
use crate::core::report::{AnswerInputs, ReportInputs};
use crate::core::store::{
    self, breaker_key, metrics_key, metrics_ttl_seconds, MetricsFlush, OverridesDoc, RemoteState,
    RolloutDoc, Schedule, StateStore, WriteThrottle, MIN_WRITE_INTERVAL_MS,
};
use crate::core::window::{MetricKey, Sample, Stats, Window};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use wasm_bindgen::JsCast;
use worker::{console_error, console_log, Context, Env};

pub struct Isolate {
    id: String,
    vars: Map<String, Value>,
    overrides: OverridesDoc,
    loaded: Loaded,
    breakers: BTreeMap<Upstream, Breaker>,
    windows: BTreeMap<MetricKey, Window>,
    sched: Schedule,
    throttle: WriteThrottle,
    rollout: Option<RolloutDoc>,
    warnings: Vec<String>,
    /// LightRAG's recent replies: when no-context replies count as breaker failures.
    watch: NoContextWatch<u64>,
    shadow_gate: ShadowGate,
    /// The shadow calls' series (docs/answer-aware.md#shadow-comparison).
    shadow_window: Window,
    cache: BTreeMap<Upstream, CacheCounts>,
}

/// The no-context watch's settings from the config: its own two variables and the breaker's
/// window (docs/answer-aware.md#no-context-and-the-breaker).
fn watch_settings(c: &Config) -> WatchSettings {
    let b = c.breaker.settings();
    WatchSettings {
        rate: c.no_context_breaker_rate,
        min_keys: c.no_context_breaker_min_keys,
        window: b.window_size,
        minimum: b.minimum_calls,
    }
}

thread_local! {
    static ISO: RefCell<Option<Isolate>> = const { RefCell::new(None) };
    /// Writes allowed now, collected during a request and run in the background.
    static PENDING: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
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

/// The configuration among the Worker's bindings: every known variable and every other
/// `LIGHTRAG_*` name (so the loader reports a typo in `wrangler.toml` instead of never seeing
/// it), secrets excepted. A `[vars]` entry that is a TOML table arrives as a JS object and is
/// read as JSON.
fn read_vars(env: &Env) -> Map<String, Value> {
    let mut m = Map::new();
    let obj: &js_sys::Object = env.unchecked_ref();
    for name in js_sys::Object::keys(obj)
        .iter()
        .filter_map(|k| k.as_string())
    {
        let wanted = config::KNOWN_VARIABLES.contains(&name.as_str())
            || (name.starts_with("LIGHTRAG_") && !SECRET_VARIABLES.contains(&name.as_str()));
        if !wanted {
            continue;
        }
        let Ok(v) = js_sys::Reflect::get(obj, &name.as_str().into()) else {
            continue;
        };
        let value = match v.as_string() {
            Some(s) => Value::String(s),
            // A JSON var: through JSON text, with the serde_json already in the bundle.
            None => match js_sys::JSON::stringify(&v)
                .ok()
                .and_then(|t| t.as_string())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                Some(j) => j,
                None => continue, // not a var (no binding of ours has these names)
            },
        };
        m.insert(name, value);
    }
    m
}

impl Isolate {
    fn new(env: &Env, now: u64) -> Isolate {
        let vars = read_vars(env);
        let loaded = config::load(&vars, None, 0);
        let mut breakers = BTreeMap::new();
        for u in Upstream::ALL {
            breakers.insert(u, Breaker::new(loaded.config.breaker));
        }
        let watch = NoContextWatch::new(watch_settings(&loaded.config));
        Isolate {
            id: crate::core::identity::new_id(&random_bytes()),
            vars,
            overrides: OverridesDoc::default(),
            loaded,
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
            watch,
            shadow_gate: ShadowGate::new(),
            shadow_window: Window::default(),
            cache: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    pub fn problems(&self) -> &[Problem] {
        &self.loaded.problems
    }

    /// The wrangler vars overrides are layered on (for the admin API's checks).
    pub fn vars(&self) -> &Map<String, Value> {
        &self.vars
    }

    /// The `GET /admin/config` document of what this isolate runs on, and its version.
    pub fn config_document(&self) -> (String, u64) {
        let doc = crate::core::overrides::ConfigDocument::new(&self.overrides, &self.loaded);
        (
            serde_json::to_string(&doc).unwrap_or_default(),
            self.overrides.version,
        )
    }

    /// Runs on a new override set; rebuilds the breakers when their policy changed (carrying
    /// their shared state over through a snapshot).
    pub fn set_overrides(&mut self, doc: OverridesDoc, now: u64) {
        let loaded = config::load(&self.vars, Some(&doc.overrides), doc.version);
        self.use_config(doc, loaded, now);
    }

    /// [`Isolate::set_overrides`] with the config already loaded (the admin API just did).
    pub fn use_config(&mut self, doc: OverridesDoc, loaded: Loaded, now: u64) {
        let policy_changed = loaded.config.breaker != self.loaded.config.breaker;
        self.overrides = doc;
        self.loaded = loaded;
        self.watch.set_settings(watch_settings(&self.loaded.config));
        if policy_changed {
            for b in self.breakers.values_mut() {
                let snap = b.snapshot();
                let mut nb = Breaker::new(self.loaded.config.breaker);
                nb.merge_remote(&snap, now);
                *b = nb;
            }
        }
    }

    /// Adopts what a refresh read.
    fn apply_remote(&mut self, r: RemoteState, now: u64) {
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

    /// The routing decision for one request, taken once, and what LightRAG's breaker said if
    /// it was asked. While LightRAG's breaker is half-open the decision is taken as if this
    /// request held a probe permit, and the permit is drawn only when the request really goes
    /// to LightRAG (otherwise permits would leak to requests that never call it and the breaker
    /// would recover slowly at low rollout percentages); a refused permit turns it into the
    /// breaker step's `circuit_open` answer. The admission tells the exchange whether its first
    /// call holds a probe permit to hand back if it ends without a verdict.
    pub fn decide(&mut self, req: &RouteRequest<'_>, now: u64) -> (Decision, Admission) {
        let mut state = self.route_state(now);
        state.quality_probe_roll = roll();
        let half_open = state.lightrag_breaker == BreakerView::HalfOpenReject;
        if half_open {
            state.lightrag_breaker = BreakerView::HalfOpenProbe;
        }
        let d = decide::decide(&self.loaded.config, &state, req);
        if half_open && d.upstream == Upstream::Lightrag {
            return match self.take_permit(Upstream::Lightrag, now) {
                Admission::Rejected => (d.probe_refused(), Admission::Allowed),
                a => (d, a),
            };
        }
        (d, Admission::Allowed)
    }

    /// The live state for a decision, drawing no probe permit: a half-open breaker reads as
    /// refusing (OFREP evaluations, which call nothing).
    pub fn route_state(&self, now: u64) -> RouteState {
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

    /// Whether `u`'s breaker admits a request now. Takes a half-open probe permit when it
    /// admits one as a probe, so call it only for a request that will be sent.
    pub fn take_permit(&mut self, u: Upstream, now: u64) -> Admission {
        self.breakers
            .get_mut(&u)
            .map_or(Admission::Allowed, |b| b.admit(now, roll()))
    }

    /// Hands an unused probe permit back to `u`'s breaker ([`Breaker::release`]).
    pub fn release_permit(&mut self, u: Upstream, now: u64) {
        if let Some(b) = self.breakers.get_mut(&u) {
            b.release(now);
        }
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

    /// An operator's action on `u`'s breaker; its status afterwards.
    pub fn breaker_action(
        &mut self,
        u: Upstream,
        action: BreakerAction,
        now: u64,
    ) -> Option<BreakerStatus> {
        let t = self.breakers.get_mut(&u)?.apply(action, now);
        self.note_transition(u, &t, now);
        self.breakers.get(&u).map(|b| b.status(now))
    }

    fn note_transition(&mut self, u: Upstream, t: &Transition, now: u64) {
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

    /// A keyed tag of a stickiness key, for counting distinct callers: murmur3 under this
    /// isolate's random id, kept in memory only (the distinct-key breaker's SipHash tag
    /// replaces it where that lands).
    pub fn key_tag(&self, key: &str) -> u64 {
        u64::from(crate::core::cohort::hash(&self.id, key))
    }

    /// Whom a no-context reply blames now: LightRAG while the watch is escalated.
    pub fn no_answer_blame(&self) -> NoAnswerBlame {
        if self.watch.escalated() {
            NoAnswerBlame::Upstream
        } else {
            NoAnswerBlame::Nobody
        }
    }

    /// One LightRAG reply that reached a verdict, for the no-context watch.
    pub fn observe_reply(&mut self, no_context: bool, tag: u64) {
        self.watch.observe(no_context, tag);
    }

    /// Whether to start a shadow call for a served request (counts it against the cap).
    pub fn admit_shadow(
        &mut self,
        decided: Upstream,
        served: Upstream,
        fallback: bool,
        now: u64,
    ) -> Result<(), ShadowSkip> {
        let state = self.route_state(now);
        let c = &self.loaded.config;
        let settings = ShadowSettings {
            share: c.shadow_percentage,
            max_per_minute: c.shadow_max_per_minute,
        };
        let ask = ShadowAsk {
            decided,
            served,
            fallback,
            lightrag_breaker_closed: state.lightrag_breaker == BreakerView::Closed,
            rollback_active: state.rollback_active || c.emergency_rollback,
            roll: roll(),
        };
        self.shadow_gate.admit(&settings, &ask, now)
    }

    /// Records one shadow call's result in the shadow series.
    pub fn record_shadow(&mut self, sample: &Sample, now: u64) {
        self.shadow_window.record(now, sample);
    }

    /// Counts what the response cache did for `u`.
    pub fn count_cache(&mut self, u: Upstream, f: impl FnOnce(&mut CacheCounts)) {
        f(self.cache.entry(u).or_default());
    }

    /// This isolate's last-hour stats per metric key.
    fn local_stats(&self, now: u64) -> BTreeMap<MetricKey, Stats> {
        self.windows
            .iter()
            .map(|(k, w)| (*k, w.total(now)))
            .collect()
    }

    fn breaker_statuses(&self, now: u64) -> Vec<(Upstream, BreakerStatus)> {
        self.breakers
            .iter()
            .map(|(u, b)| (*u, b.status(now)))
            .collect()
    }

    /// The status document and `/metrics` text are built from these.
    pub fn report<T>(&self, now: u64, f: impl FnOnce(&ReportInputs<'_>) -> T) -> T {
        let local = self.local_stats(now);
        let breakers = self.breaker_statuses(now);
        let ops = kv::ops();
        let answer = AnswerInputs {
            watch: Some(self.watch.status()),
            shadow_counts: self.shadow_gate.counts(now),
            shadow: self.shadow_window.total(now),
            cache: self.cache.clone(),
        };
        f(&ReportInputs {
            now_ms: now,
            isolate: &self.id,
            config: self.config(),
            problems: self.problems(),
            breakers: &breakers,
            local: &local,
            rollout: self.rollout.as_ref(),
            kv_warnings: &self.warnings,
            kv_ops: &ops,
            last_refresh_ms: self.sched.last_refresh_ms,
            last_flush_ms: self.sched.last_flush_ms,
            answer: &answer,
        })
    }

    /// This isolate's metrics key and document, marking the flush as done now.
    fn take_flush(&mut self, now: u64) -> (String, String, u64) {
        self.sched.last_flush_ms = now;
        for w in self.windows.values_mut() {
            w.prune(now);
        }
        self.shadow_window.prune(now);
        let doc = MetricsFlush {
            isolate: self.id.clone(),
            flushed_ms: now,
            windows: self.windows.clone(),
            shadow: (!self.shadow_window.is_empty()).then(|| self.shadow_window.clone()),
        };
        (
            metrics_key(&self.id),
            serde_json::to_string(&doc).unwrap_or_default(),
            metrics_ttl_seconds(self.config().metrics_flush_seconds),
        )
    }

    /// The background work due now: whether to refresh, a metrics flush, throttled writes.
    fn due(&mut self, now: u64) -> Due {
        let (refresh_s, flush_s) = (
            self.config().state_refresh_seconds,
            self.config().metrics_flush_seconds,
        );
        let refresh = self.sched.refresh_due(now, refresh_s);
        if refresh {
            self.sched.refresh_in_flight = true;
        }
        let flush = (self.sched.flush_due(now, flush_s)
            && !(self.windows.is_empty() && self.shadow_window.is_empty()))
        .then(|| self.take_flush(now));
        for w in self.throttle.due(now) {
            PENDING.with(|p| p.borrow_mut().push(w));
        }
        Due { refresh, flush }
    }
}

struct Due {
    refresh: bool,
    /// Key, document, TTL.
    flush: Option<(String, String, u64)>,
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
            refresh(&store).await;
        } else {
            with(|i| {
                i.warnings = vec![format!("KV binding `{}` is missing", super::KV_BINDING)];
                i.sched.last_refresh_ms = Some(now);
            });
        }
    }
}

/// Reads the shared state from KV and adopts it.
pub async fn refresh(store: &Kv) {
    let remote = store::load_remote(store).await;
    with(|i| i.apply_remote(remote, now_ms()));
}

/// After a request: schedules the background work that is due (refresh, throttled writes,
/// metric flush), each at most as often as the KV budget allows.
pub fn background(env: &Env, ctx: &Context) {
    let now = now_ms();
    let Some(store) = Kv::open(env) else {
        return;
    };
    let Some(due) = with(|i| i.due(now)) else {
        return;
    };
    let writes: Vec<(String, String)> = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if !due.refresh && due.flush.is_none() && writes.is_empty() {
        return;
    }
    ctx.wait_until(async move {
        for (k, v) in writes {
            if let Err(e) = store.put(&k, &v, None).await {
                console_error!("{}", e);
            }
        }
        if let Some((k, v, ttl)) = due.flush {
            if let Err(e) = store.put(&k, &v, Some(ttl)).await {
                console_error!("{}", e);
            }
        }
        if due.refresh {
            refresh(&store).await;
        }
    });
}

/// Forces a metrics flush now (admin), ignoring the interval. Returns the key written.
pub async fn flush_now(env: &Env) -> Result<String, FlushError> {
    let store = Kv::open(env).ok_or(FlushError::NoBinding)?;
    let (k, v, ttl) = with(|i| i.take_flush(now_ms())).ok_or(FlushError::NotReady)?;
    store
        .put(&k, &v, Some(ttl))
        .await
        .map_err(|e| FlushError::Store(e.to_string()))?;
    Ok(k)
}

/// Why a forced flush did not happen.
pub enum FlushError {
    NoBinding,
    NotReady,
    Store(String),
}

impl std::fmt::Display for FlushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushError::NoBinding => f.write_str("KV binding missing"),
            FlushError::NotReady => f.write_str("isolate not initialised"),
            FlushError::Store(e) => f.write_str(e),
        }
    }
}
