//! One isolate's state, driven by its caller with `now_ms`: the config it runs on, its
//! breakers, its metric windows, the controller's rollout document and its KV schedule.
//!
//! The caller (the Worker's `edge::isolate`, or a simulation) does the I/O this machine asks
//! for: [`IsolateState::background`] hands out the KV writes allowed now and, when a refresh is
//! due, a [`RefreshTicket`]; the caller reads KV ([`crate::core::store::load_remote`]) and
//! gives the result back with [`IsolateState::refresh_done`]. Nothing here awaits, reads a
//! clock or draws randomness from outside: rolls come from the seeded [`Rng`].

use super::quota::KeyQuota;
use super::rng::Rng;
use super::schedule::{FlushLater, KvHealth, RefreshTicket, Schedule, Stale};
use crate::core::answer::cache::CacheCounts;
use crate::core::answer::shadow::{ShadowAsk, ShadowGate, ShadowSettings, ShadowSkip};
use crate::core::answer::watch::{NoContextWatch, WatchSettings};
use crate::core::breaker::{
    Admission, Breaker, BreakerAction, BreakerSnapshot, BreakerState, BreakerStatus, FleetCall,
    Transition,
};
use crate::core::config::{self, Config, Loaded, Problem};
use crate::core::controller::{ControllerDoc, RoutingDoc, SplitTag, TickReport, TickSkipped};
use crate::core::decide::{self, Decision, RouteRequest, RouteState};
use crate::core::exchange::NoAnswerBlame;
use crate::core::guard::deployment::{config_problems, setup_problems, SetupFacts};
use crate::core::keytag::{KeyTag, TagSecret};
use crate::core::model::{Arm, Reason};
use crate::core::model::{BreakerView, Upstream};
use crate::core::outcome::Outcome;
use crate::core::overrides::ConfigDocument;
use crate::core::report::{AnswerInputs, ReportInputs, RolloutSummary};
use crate::core::sorted_map::SortedMap;
use crate::core::store::{
    breaker_admin_key, breaker_key, breaker_upstream, metrics_key, metrics_ttl_seconds,
    parse_value, Fetched, MetricsFlush, OpCounts, OverridesDoc, RemoteState, SplitFlush,
    WriteThrottle, THROTTLE_INTERVAL_MS,
};
use crate::core::window::{MetricKey, Sample, Stats, Window};
use serde::Serialize;
use serde_json::{Map, Value};

/// What an isolate starts from.
#[derive(Debug, Clone)]
pub struct IsolateInit {
    /// This isolate's id (its metrics key is `metrics/<id>`): random, never a user id.
    pub id: String,
    /// The wrangler vars (secrets excluded).
    pub vars: Map<String, Value>,
    /// Seed of the rolls (probe admission, jitter).
    pub seed: u64,
    /// Secret of this isolate's [`KeyTag`]s (random, never leaves the isolate).
    pub tag_secret: TagSecret,
    /// Which secrets and bindings this deployment has (fixed for the isolate's life).
    pub setup: SetupFacts,
    /// Whether to report LightRAG calls to the fleet's breaker ([`IsolateState::fleet_report`]):
    /// on the state hub, which has one (`core::breaker::fleet`); KV has none.
    pub fleet_reports: bool,
    pub now_ms: u64,
}

/// Calls to report to the fleet's breaker (`core::breaker::fleet`), in the order recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetReport {
    pub upstream: Upstream,
    pub calls: Vec<FleetCall>,
}

/// The calls recorded since the last report, and whether one is on its way.
#[derive(Debug, Clone, Default)]
struct FleetOutbox {
    enabled: bool,
    calls: Vec<FleetCall>,
    in_flight: bool,
}

/// One KV write the isolate wants made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvWrite {
    pub key: String,
    pub value: String,
    pub ttl_seconds: Option<u64>,
}

/// The background work due now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Background {
    /// Writes to make now (throttled breaker transitions, a metrics flush).
    pub writes: Vec<KvWrite>,
    /// Set when a refresh is due; it is marked in flight from now on.
    pub refresh: Option<RefreshTicket>,
}

impl Background {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.refresh.is_none()
    }
}

/// One upstream call's result, as recorded in its breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallRecord {
    pub upstream: Upstream,
    pub outcome: Outcome,
    /// The caller's keyed tag ([`IsolateState::tag`]), never the raw key.
    pub key: KeyTag,
}

/// What to do before routing a request ([`IsolateState::before_routing`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BeforeRouting {
    /// A refresh to run now: the state is older than the refresh interval.
    pub start: Option<RefreshTicket>,
    /// The refresh to wait for (bounded) before routing: the stale state could send this
    /// request to LightRAG.
    pub wait_for: Option<RefreshTicket>,
}

/// The last controller tick this isolate ran, for the status API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TickNote {
    pub at_ms: u64,
    pub skipped: Option<TickSkipped>,
    pub completed: bool,
    pub ops: u32,
    pub warnings: Vec<String>,
}

/// What the caller read of the controller's documents for a report (the admin API reads them
/// from KV; requests never do).
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetView<'a> {
    pub controller: Option<&'a ControllerDoc>,
    /// The rollout as `GET /admin/rollout` shows it.
    pub rollout: Option<&'a RolloutSummary>,
}

/// What an operator's breaker action did here, and the command to store for the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminAction {
    pub transition: Transition,
    pub status: BreakerStatus,
    /// `breaker/<upstream>/admin`: write it now.
    pub command: KvWrite,
}

/// One isolate's cached state. Fields are private: ask it questions and report what happened
/// through its methods.
#[derive(Debug, Clone)]
pub struct IsolateState {
    id: String,
    vars: Map<String, Value>,
    overrides: OverridesDoc,
    loaded: Loaded,
    breakers: SortedMap<Upstream, Breaker>,
    windows: SortedMap<MetricKey, Window>,
    /// The same requests by reason (`MetricsFlush::reasons`).
    reasons: SortedMap<String, Window>,
    sched: Schedule,
    throttle: WriteThrottle,
    /// The routing document this isolate routes by (`rollout/routing`).
    routing: Option<RoutingDoc>,
    /// The experiment's traffic at the routing document's stage (see [`SplitFlush`]).
    split: Option<SplitFlush>,
    warnings: Vec<String>,
    rng: Rng,
    tag_secret: TagSecret,
    last_tick: Option<TickNote>,
    quota: KeyQuota,
    setup: SetupFacts,
    /// Answer-aware routing (docs/answer-aware.md): LightRAG's recent replies (when no-context
    /// replies count as breaker failures), the shadow gate, the shadow series, the cache's counts.
    watch: NoContextWatch<KeyTag>,
    shadow_gate: ShadowGate,
    shadow_window: Window,
    cache: SortedMap<Upstream, CacheCounts>,
    /// Counts recorded since the last flush ([`IsolateState::flush_at`] flushes only then).
    unflushed: bool,
    fleet: FleetOutbox,
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

impl IsolateState {
    /// A fresh isolate on its vars alone (no KV read yet).
    pub fn new(init: IsolateInit) -> IsolateState {
        let loaded = config::load(&init.vars, None, 0);
        let breakers = Upstream::ALL
            .into_iter()
            .map(|u| (u, Breaker::new(loaded.config.breaker)))
            .collect();
        let watch = NoContextWatch::new(watch_settings(&loaded.config));
        IsolateState {
            id: init.id,
            vars: init.vars,
            overrides: OverridesDoc::default(),
            loaded,
            breakers,
            windows: SortedMap::new(),
            reasons: SortedMap::new(),
            sched: Schedule::new(init.now_ms),
            throttle: WriteThrottle::new(THROTTLE_INTERVAL_MS),
            routing: None,
            split: None,
            warnings: Vec::new(),
            rng: Rng::new(init.seed),
            tag_secret: init.tag_secret,
            setup: init.setup,
            last_tick: None,
            quota: KeyQuota::default(),
            watch,
            shadow_gate: ShadowGate::new(),
            shadow_window: Window::default(),
            cache: SortedMap::new(),
            unflushed: false,
            fleet: FleetOutbox {
                enabled: init.fleet_reports,
                ..FleetOutbox::default()
            },
        }
    }

    pub fn id(&self) -> &str {
        &self.id
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

    /// The routing document this isolate routes by.
    pub fn routing(&self) -> Option<&RoutingDoc> {
        self.routing.as_ref()
    }

    /// Routes by `doc` from now on, unless what it holds supersedes it (an operator's fresh
    /// projection beats an older controller document, `RoutingDoc::supersedes`). Returns
    /// whether it was adopted. The admin API calls this with its projection, so the isolate
    /// that took the command routes by it at once.
    pub fn adopt_routing(&mut self, doc: RoutingDoc, now_ms: u64) -> bool {
        if !doc.supersedes(self.routing.as_ref(), now_ms) {
            return false;
        }
        self.set_split(doc.split.clone());
        self.routing = Some(doc);
        true
    }

    /// Starts recording under `tag` (dropping windows of another stage).
    fn set_split(&mut self, tag: Option<SplitTag>) {
        if self.split.as_ref().map(|s| &s.tag) == tag.as_ref() {
            return;
        }
        self.split = tag.map(|tag| SplitFlush {
            tag,
            windows: SortedMap::new(),
        });
    }

    /// The keyed tag of a stickiness key: what the breakers and the metric quotas count, so
    /// the raw key never outlives the request.
    pub fn tag(&self, key: &str) -> KeyTag {
        self.tag_secret.tag(key)
    }

    /// A roll in [0, 1) from this isolate's generator.
    pub fn roll(&mut self) -> f64 {
        self.rng.roll()
    }

    /// The `GET /admin/config` document of what this isolate runs on, and its version.
    pub fn config_document(&self) -> (String, u64) {
        let doc = ConfigDocument::new(&self.overrides, &self.loaded);
        (
            serde_json::to_string(&doc).unwrap_or_default(),
            self.overrides.version,
        )
    }

    /// Runs on a new override set; rebuilds the breakers when their policy changed (carrying
    /// their shared state over through a snapshot).
    pub fn set_overrides(&mut self, doc: OverridesDoc, now_ms: u64) {
        let loaded = config::load(&self.vars, Some(&doc.overrides), doc.version);
        self.use_config(doc, loaded, now_ms);
    }

    /// [`IsolateState::set_overrides`] with the config already loaded (the admin API just did).
    pub fn use_config(&mut self, doc: OverridesDoc, loaded: Loaded, now_ms: u64) {
        let policy_changed = loaded.config.breaker != self.loaded.config.breaker;
        self.overrides = doc;
        self.loaded = loaded;
        self.watch.set_settings(watch_settings(&self.loaded.config));
        if policy_changed {
            for b in self.breakers.values_mut() {
                let snap = b.snapshot();
                let mut nb = Breaker::new(self.loaded.config.breaker);
                nb.merge_remote(&snap, now_ms);
                *b = nb;
            }
        }
    }

    /// The routing decision for one request, taken once, and what LightRAG's breaker said if
    /// it was asked. While LightRAG's breaker is half-open the decision is taken as if this
    /// request held a probe permit, and the permit is drawn only when the request really goes
    /// to LightRAG (otherwise permits would leak to requests that never call it and the breaker
    /// would recover slowly at low rollout percentages); a refused permit turns it into the
    /// breaker step's `circuit_open` answer. The admission tells the exchange whether its first
    /// call holds a probe permit to hand back if it ends without a verdict.
    pub fn decide(&mut self, req: &RouteRequest<'_>, now_ms: u64) -> (Decision, Admission) {
        let mut state = self.route_state(now_ms);
        state.quality_probe_roll = self.rng.roll();
        let half_open = state.lightrag_breaker == BreakerView::HalfOpenReject;
        if half_open {
            state.lightrag_breaker = BreakerView::HalfOpenProbe;
        }
        let d = decide::decide(&self.loaded.config, &state, req);
        if half_open && d.upstream == Upstream::Lightrag {
            return match self.take_permit(Upstream::Lightrag, now_ms) {
                Admission::Rejected => (d.probe_refused(), Admission::Allowed),
                a => (d, a),
            };
        }
        (d, Admission::Allowed)
    }

    /// The live state for a decision, drawing no probe permit: a half-open breaker reads as
    /// refusing (OFREP evaluations, which call nothing).
    pub fn route_state(&self, now_ms: u64) -> RouteState {
        let view = match self
            .breakers
            .get(&Upstream::Lightrag)
            .map(|b| b.state(now_ms))
        {
            Some(BreakerState::Open) => BreakerView::Open,
            Some(BreakerState::HalfOpen) => BreakerView::HalfOpenReject,
            _ => BreakerView::Closed,
        };
        let routing = self.routing.as_ref();
        RouteState {
            rollback_active: routing.is_some_and(RoutingDoc::rolled_back),
            lightrag_breaker: view,
            quality_gate_closed: routing.is_some_and(|r| r.quality_gate_closed),
            quality_probe_roll: 1.0,
            rollout_percentage: routing.and_then(RoutingDoc::route_percentage),
        }
    }

    /// Whether `u`'s breaker admits a request now. Takes a half-open probe permit when it
    /// admits one as a probe, so call it only for a request that will be sent.
    pub fn take_permit(&mut self, u: Upstream, now_ms: u64) -> Admission {
        let roll = self.rng.roll();
        self.breakers
            .get_mut(&u)
            .map_or(Admission::Allowed, |b| b.admit(now_ms, roll))
    }

    /// Hands an unused probe permit back to `u`'s breaker ([`Breaker::release`]).
    pub fn release_permit(&mut self, u: Upstream, now_ms: u64) {
        if let Some(b) = self.breakers.get_mut(&u) {
            b.release(now_ms);
        }
    }

    /// `u`'s breaker (status, tests, simulations).
    pub fn breaker(&self, u: Upstream) -> Option<&Breaker> {
        self.breakers.get(&u)
    }

    /// Records one upstream call in its breaker; a transition is offered to the KV throttle
    /// and returned (for the caller's log).
    /// A LightRAG call made while its breaker was closed is also kept for the fleet's breaker
    /// ([`IsolateState::fleet_report`]).
    pub fn record_call(&mut self, call: &CallRecord, now_ms: u64) -> Option<Transition> {
        let roll = self.rng.roll();
        let b = self.breakers.get_mut(&call.upstream)?;
        if self.fleet.enabled
            && call.upstream == Upstream::Lightrag
            && b.state(now_ms) == BreakerState::Closed
        {
            let cap = self.loaded.config.breaker.settings().window_size as usize;
            if self.fleet.calls.len() >= cap {
                self.fleet.calls.remove(0);
            }
            self.fleet.calls.push(FleetCall {
                at_ms: now_ms,
                kind: call.outcome.kind,
                tag: call.key.value(),
            });
        }
        let t = b.record(&call.outcome, call.key, now_ms, roll)?;
        self.note_transition(call.upstream);
        Some(t)
    }

    /// The LightRAG calls recorded since the last report, to send to the fleet's breaker now
    /// (`core::breaker::fleet` says why every call goes, successes too), unless a report is
    /// still on its way; marked in flight until [`IsolateState::fleet_reported`]. At most the
    /// breaker's window of calls is kept: older ones could not count anyway.
    pub fn fleet_report(&mut self) -> Option<FleetReport> {
        if self.fleet.in_flight || self.fleet.calls.is_empty() {
            return None;
        }
        self.fleet.in_flight = true;
        Some(FleetReport {
            upstream: Upstream::Lightrag,
            calls: std::mem::take(&mut self.fleet.calls),
        })
    }

    /// The hub's answer to a report: the stored `breaker/<upstream>` record, adopted when newer
    /// (the fleet's trip reaches the reporting isolate at once). A failed report is not resent:
    /// its calls are lost to the fleet's breaker, never to this isolate's. Returns whether a
    /// record was adopted.
    pub fn fleet_reported(
        &mut self,
        upstream: Upstream,
        record: Option<&str>,
        now_ms: u64,
    ) -> bool {
        self.fleet.in_flight = false;
        let key = breaker_key(upstream);
        let Some(snap) = record.and_then(|t| parse_value::<BreakerSnapshot>(&key, t).ok()) else {
            return false;
        };
        let adopted = self
            .breakers
            .get_mut(&upstream)
            .is_some_and(|b| b.merge_remote(&snap, now_ms));
        if adopted {
            self.throttle.cancel(&key);
        }
        adopted
    }

    /// An operator's action on `u`'s breaker, applied here at once. The caller writes
    /// [`AdminAction::command`] to KV now (not through the throttle: a command held back
    /// could land after a newer one another operator issued elsewhere and undo it); the
    /// snapshot goes through the throttle as usual.
    pub fn breaker_action(
        &mut self,
        u: Upstream,
        action: BreakerAction,
        now_ms: u64,
    ) -> Option<AdminAction> {
        let (cmd, transition) = self.breakers.get_mut(&u)?.apply(action, now_ms);
        self.note_transition(u);
        let status = self.breakers.get(&u)?.status(now_ms);
        Some(AdminAction {
            transition,
            status,
            command: KvWrite {
                key: breaker_admin_key(u),
                value: serde_json::to_string(&cmd).unwrap_or_default(),
                ttl_seconds: None,
            },
        })
    }

    /// Hands `u`'s snapshot to the KV throttle: kept pending (replaced by any later transition)
    /// until [`IsolateState::background`] hands it out, at most once per
    /// [`THROTTLE_INTERVAL_MS`] counted from the last write it handed out.
    fn note_transition(&mut self, u: Upstream) {
        if let Some(b) = self.breakers.get(&u) {
            let text = serde_json::to_string(&b.snapshot()).unwrap_or_default();
            self.throttle.hold(&breaker_key(u), text);
        }
    }

    /// Records one finished request in the metric windows, unless its caller (`key`, a keyed
    /// tag) has already added `LIGHTRAG_METRICS_MAX_SAMPLES_PER_KEY` samples this hour (see
    /// [`super::quota`]). Returns whether it was counted.
    pub fn record_request(
        &mut self,
        metric: MetricKey,
        sample: &Sample,
        key: KeyTag,
        now_ms: u64,
    ) -> bool {
        let limit = self.loaded.config.metrics_max_samples_per_key;
        if !self.quota.admit(key, limit, now_ms) {
            return false;
        }
        self.windows
            .entry(metric)
            .or_default()
            .record(now_ms, sample);
        self.unflushed = true;
        if metric.arm != Arm::None {
            if let Some(split) = self.split.as_mut() {
                split
                    .windows
                    .entry(metric)
                    .or_default()
                    .record(now_ms, sample);
            }
        }
        true
    }

    /// Records a request [`Self::record_request`] counted under the reason of its decision
    /// (rule names folded into `rule`).
    pub fn record_reason(&mut self, reason: &Reason, sample: &Sample, now_ms: u64) {
        self.reasons
            .entry(reason.as_str().to_string())
            .or_default()
            .record(now_ms, sample);
    }

    /// Whom a no-context reply blames now: LightRAG while the no-context watch is escalated.
    pub fn no_answer_blame(&self) -> NoAnswerBlame {
        if self.watch.escalated() {
            NoAnswerBlame::Upstream
        } else {
            NoAnswerBlame::Nobody
        }
    }

    /// One LightRAG reply that reached a verdict, from the caller `key`, for the watch.
    pub fn observe_reply(&mut self, no_context: bool, key: KeyTag) {
        self.watch.observe(no_context, key);
    }

    /// Whether to start a shadow call for a request served by `served` (the decision's
    /// upstream `decided`); counts it against this minute's cap, or why it was skipped.
    pub fn admit_shadow(
        &mut self,
        decided: Upstream,
        served: Upstream,
        fallback: bool,
        now_ms: u64,
    ) -> Result<(), ShadowSkip> {
        let state = self.route_state(now_ms);
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
            roll: self.rng.roll(),
        };
        self.shadow_gate.admit(&settings, &ask, now_ms)
    }

    /// Records one shadow call's result in the shadow series (never the arms').
    pub fn record_shadow(&mut self, sample: &Sample, now_ms: u64) {
        self.shadow_window.record(now_ms, sample);
        self.unflushed = true;
    }

    /// Counts what the response cache did for `u`.
    pub fn count_cache(&mut self, u: Upstream, f: impl FnOnce(&mut CacheCounts)) {
        f(self.cache.entry(u).or_default());
    }

    /// This isolate's last-hour stats per metric key.
    pub fn local_stats(&self, now_ms: u64) -> SortedMap<MetricKey, Stats> {
        self.windows
            .iter()
            .map(|(k, w)| (*k, w.total(now_ms)))
            .collect()
    }

    fn breaker_statuses(&self, now_ms: u64) -> Vec<(Upstream, BreakerStatus)> {
        self.breakers
            .iter()
            .map(|(u, b)| (*u, b.status(now_ms)))
            .collect()
    }

    /// The status document and `/metrics` text are built from these; `kv_ops` are the
    /// driver's KV counters, `fleet` what the caller read of the controller's documents.
    pub fn report<T>(
        &self,
        now_ms: u64,
        kv_ops: &OpCounts,
        fleet: &FleetView<'_>,
        f: impl FnOnce(&ReportInputs<'_>) -> T,
    ) -> T {
        let local = self.local_stats(now_ms);
        let breakers = self.breaker_statuses(now_ms);
        // The config's own problems, then what the deployment itself shows (http upstreams,
        // the public salt, a missing client token or rate limiter).
        let mut problems = self.problems().to_vec();
        problems.extend(config_problems(self.config()));
        problems.extend(setup_problems(self.config().deployment, &self.setup));
        let answer = AnswerInputs {
            watch: Some(self.watch.status()),
            shadow_counts: self.shadow_gate.counts(now_ms),
            shadow: self.shadow_window.total(now_ms),
            cache: self.cache.clone(),
        };
        f(&ReportInputs {
            now_ms,
            isolate: &self.id,
            config: self.config(),
            problems: &problems,
            breakers: &breakers,
            local: &local,
            routing: self.routing.as_ref(),
            controller: fleet.controller,
            rollout: fleet.rollout,
            kv_warnings: &self.warnings,
            kv_ops,
            last_refresh_ms: self.sched.health().last_refresh_ms,
            last_flush_ms: self.sched.last_flush_ms(),
            health: &self.sched.health(),
            last_tick: self.last_tick.as_ref(),
            quota: &self.quota.status(),
            first_load_wait_ms: self.config().first_load_wait_ms,
            answer: &answer,
        })
    }

    /// This isolate's metrics write, marking the flush as done now (the admin API's forced
    /// flush, and the scheduled one).
    pub fn take_flush(&mut self, now_ms: u64) -> KvWrite {
        self.sched.flushed(now_ms);
        self.unflushed = false;
        for w in self.windows.values_mut().chain(self.reasons.values_mut()) {
            w.prune(now_ms);
        }
        if let Some(split) = self.split.as_mut() {
            for w in split.windows.values_mut() {
                w.prune(now_ms);
            }
        }
        self.shadow_window.prune(now_ms);
        let doc = MetricsFlush {
            isolate: self.id.clone(),
            flushed_ms: now_ms,
            windows: self.windows.clone(),
            split: self.split.clone().filter(|s| !s.windows.is_empty()),
            reasons: self.reasons.clone(),
            shadow: (!self.shadow_window.is_empty()).then(|| self.shadow_window.clone()),
        };
        KvWrite {
            key: metrics_key(&self.id),
            value: serde_json::to_string(&doc).unwrap_or_default(),
            ttl_seconds: Some(metrics_ttl_seconds(self.config().metrics_flush_seconds)),
        }
    }

    /// The throttled writes due now (breaker transitions), marked as handed out.
    pub fn due_writes(&mut self, now_ms: u64) -> Vec<KvWrite> {
        self.throttle
            .due(now_ms)
            .into_iter()
            .map(|(key, value)| KvWrite {
                key,
                value,
                ttl_seconds: None,
            })
            .collect()
    }

    /// Whether the caller should read `key` back after its write failed, for
    /// [`IsolateState::write_failed`] (a breaker record).
    pub fn read_back_after_failure(key: &str) -> bool {
        breaker_upstream(key).is_some()
    }

    /// A write this isolate handed out failed — KV refuses a second write to a key within a
    /// second, and the throttle cannot see other isolates' writes to `breaker/<upstream>` (the
    /// fleet simulation saw two isolates' transitions 429 at 10 and 100 isolates), or the write
    /// failed otherwise. Returns when to ask [`IsolateState::due_writes`] for the retry, if one
    /// is wanted.
    ///
    /// For a breaker record, `stored` is what the caller read back: when it already carries
    /// this isolate's transition or a newer one (`(admin_epoch, generation)`, the replica
    /// order) nothing is retried — a newer one is adopted, as a refresh would — so a refusal
    /// never turns into a blind overwrite of a newer record. Otherwise (older, missing, not
    /// readable) the isolate's current record is held again behind the throttle, a full
    /// interval after the refused attempt. A failed metrics flush leaves the counts unflushed
    /// for the next one.
    pub fn write_failed(&mut self, key: &str, stored: Option<&str>, now_ms: u64) -> Option<u64> {
        if key == metrics_key(&self.id) {
            self.unflushed = true;
            return None;
        }
        let u = breaker_upstream(key)?;
        let ours = self.breakers.get(&u)?.snapshot();
        let theirs = stored.and_then(|t| parse_value::<BreakerSnapshot>(key, t).ok());
        if let Some(theirs) = theirs {
            if (theirs.admin_epoch, theirs.generation) >= (ours.admin_epoch, ours.generation) {
                let adopted = self
                    .breakers
                    .get_mut(&u)
                    .is_some_and(|b| b.merge_remote(&theirs, now_ms));
                if adopted {
                    self.throttle.cancel(key);
                }
                return None;
            }
        }
        if !self.throttle.is_pending(key) {
            self.note_transition(u);
        }
        Some(self.throttle.ready_at(key).max(now_ms))
    }

    /// The background work due now: throttled writes, a metrics flush, whether to refresh.
    pub fn background(&mut self, now_ms: u64) -> Background {
        let (refresh_s, flush_s) = (
            self.config().state_refresh_seconds,
            self.config().metrics_flush_seconds,
        );
        let mut writes = self.due_writes(now_ms);
        if self.sched.flush_due(now_ms, flush_s)
            && !(self.windows.is_empty() && self.shadow_window.is_empty())
        {
            writes.push(self.take_flush(now_ms));
        }
        let refresh = self.sched.refresh_if_due(now_ms, refresh_s);
        Background { writes, refresh }
    }

    /// After a request that started at `started_ms` (its response sent at `now_ms`): when to
    /// come back for the counts it leaves unflushed, so they reach the store without waiting
    /// for the next request ([`super::schedule`] says why). The caller sleeps until
    /// [`FlushLater::at_ms`] — the Worker under `ctx.waitUntil` — then calls
    /// [`IsolateState::flush_at`]. Call it once per request.
    pub fn flush_later(&mut self, started_ms: u64, now_ms: u64) -> Option<FlushLater> {
        let flush_s = self.config().metrics_flush_seconds;
        self.sched.flush_later(started_ms, now_ms, flush_s)
    }

    /// The flush `later` named, if it is still wanted at `now_ms`: counts are unflushed and
    /// either the flush is due or no request came since (see [`Schedule::flush_now`]).
    pub fn flush_at(&mut self, later: FlushLater, now_ms: u64) -> Option<KvWrite> {
        let flush_s = self.config().metrics_flush_seconds;
        (self.unflushed && self.sched.flush_now(later, now_ms, flush_s))
            .then(|| self.take_flush(now_ms))
    }

    /// A refresh the caller must run now whatever the schedule (the isolate's first load, and
    /// after a controller tick).
    pub fn start_refresh(&mut self, now_ms: u64) -> RefreshTicket {
        self.sched.start_refresh(now_ms)
    }

    /// Adopts what a refresh read, unless a newer refresh was applied since (a late result
    /// is older than what the isolate holds). Returns whether it was applied.
    pub fn refresh_done(&mut self, ticket: RefreshTicket, r: RemoteState, now_ms: u64) -> bool {
        if !self.sched.finish_refresh(ticket, now_ms) {
            return false;
        }
        self.warnings = r.warnings;
        if let Some(doc) = r.overrides {
            if doc.version != self.overrides.version || doc.overrides != self.overrides.overrides {
                self.set_overrides(doc, now_ms);
            }
        }
        // Commands first: a snapshot written before a command is then older than what we hold.
        // Whatever is adopted supersedes a local write still pending behind the throttle.
        for (u, cmd) in r.admin {
            if let Some(b) = self.breakers.get_mut(&u) {
                if b.adopt_admin(&cmd, now_ms).is_some() {
                    self.throttle.cancel(&breaker_key(u));
                }
            }
        }
        for (u, snap) in r.breakers {
            if let Some(b) = self.breakers.get_mut(&u) {
                if b.merge_remote(&snap, now_ms) {
                    self.throttle.cancel(&breaker_key(u));
                }
            }
        }
        // A failed read or a corrupt value keeps what we had (a closed gate stays closed, a
        // rollback stays rolled back); only a missing key means there is no routing document.
        match r.routing {
            Fetched::Found(doc) => {
                self.adopt_routing(doc, now_ms);
            }
            Fetched::Absent => {
                let keep = self
                    .routing
                    .as_ref()
                    .is_some_and(|h| RoutingDoc::keep_when_absent(h, now_ms));
                if !keep {
                    self.routing = None;
                    self.set_split(None);
                }
            }
            Fetched::Unreadable => {}
        }
        true
    }

    /// A controller tick ran in this isolate (the cron, or the admin API): kept for the status.
    pub fn note_tick(&mut self, report: &TickReport, now_ms: u64) {
        self.last_tick = Some(TickNote {
            at_ms: now_ms,
            skipped: report.skipped,
            completed: report.completed,
            ops: report.ops,
            warnings: report.warnings.clone(),
        });
    }

    /// Whether the first KV load has arrived (until then the isolate runs on its vars).
    pub fn first_load_arrived(&self) -> bool {
        self.sched.first_load_arrived()
    }

    /// Before routing `req`: when this isolate's state is older than `STATE_REFRESH_SECONDS`
    /// (it had no request for a while), the refresh to start and the one to wait for. The
    /// caller starts [`BeforeRouting::start`] (under `wait_until`) and, when
    /// [`BeforeRouting::wait_for`] is set, waits for it at most `STATE_FIRST_LOAD_WAIT_MS`
    /// ([`IsolateState::refresh_applied`]), counting a request that gave up
    /// ([`IsolateState::note_stale_route`]). See [`super::schedule`] for why.
    ///
    /// It waits only when the stale state could send `req` to LightRAG: every safety step — a
    /// rollback, an open breaker, a closed quality gate — moves requests away from LightRAG,
    /// so old state can only be wrong in the unsafe direction when it routes there. A request
    /// it sends to Perplexity is routed at once (the refresh still runs), which spares the
    /// wait to most requests of a fleet early in a rollout and to every request while
    /// LightRAG is off.
    pub fn before_routing(&mut self, req: &RouteRequest<'_>, now_ms: u64) -> BeforeRouting {
        let refresh_s = self.config().state_refresh_seconds;
        let Some(stale) = self.sched.stale(now_ms, refresh_s) else {
            return BeforeRouting::default();
        };
        // The most permissive reading of the current state: any probe admitted.
        let mut state = self.route_state(now_ms);
        state.quality_probe_roll = 0.0;
        if state.lightrag_breaker == BreakerView::HalfOpenReject {
            state.lightrag_breaker = BreakerView::HalfOpenProbe;
        }
        let risky = decide::decide(&self.loaded.config, &state, req).upstream == Upstream::Lightrag;
        BeforeRouting {
            start: match stale {
                Stale::Start(t) => Some(t),
                Stale::InFlight(_) => None,
            },
            wait_for: risky.then_some(stale.ticket()),
        }
    }

    /// Whether `ticket`'s refresh (or a newer one) has been applied.
    pub fn refresh_applied(&self, ticket: RefreshTicket) -> bool {
        self.sched.applied(ticket)
    }

    /// A request was routed on state older than the refresh interval: the refresh it waited
    /// for did not arrive within `STATE_FIRST_LOAD_WAIT_MS`.
    pub fn note_stale_route(&mut self, _now_ms: u64) {
        self.sched.note_stale_route();
    }

    /// A request gave up waiting for the first load and was routed on the vars alone.
    pub fn note_cold_route(&mut self, _now_ms: u64) {
        self.sched.note_cold_route();
    }

    /// Refresh timing and first-load facts for the status API.
    pub fn kv_health(&self) -> KvHealth {
        self.sched.health()
    }

    /// No KV binding: run on the vars and say so in the status.
    pub fn kv_missing(&mut self, binding: &str, now_ms: u64) {
        self.warnings = vec![format!("KV binding `{binding}` is missing")];
        self.sched.no_store(now_ms);
    }

    /// The warnings of the last refresh (corrupt values, failed reads).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
