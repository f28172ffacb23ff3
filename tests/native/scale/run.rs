//! One scenario from start to end: a fleet of isolates on one backend, a day of traffic, the
//! controller every minute, LightRAG failing and recovering, and everything the report needs.

use super::backend::{with_store, Backend, BackendKind};
use super::controller::{controller_step, outcome_label, start_rollout, tick_label};
use super::fleet::{self, Ctx, Observed, SimIsolate};
use super::traffic::{place_isolates, Traffic};
use super::truth::{arm, Truth};
use super::upstream::Upstreams;
use cmo_edge_router::core::breaker::BreakerSnapshot;
use cmo_edge_router::core::config::{self, Config};
use cmo_edge_router::core::controller::evidence::stage_evidence;
use cmo_edge_router::core::controller::{ControllerDoc, CONTROLLER_KEY};
use cmo_edge_router::core::fleet::Rng;
use cmo_edge_router::core::fleet::{FlushLater, IsolateInit, IsolateState};
use cmo_edge_router::core::guard::deployment::SetupFacts;
use cmo_edge_router::core::keytag::TagSecret;
use cmo_edge_router::core::model::{Arm, Upstream};
use cmo_edge_router::core::rollout::request::plan_from_value;
use cmo_edge_router::core::rollout::{Rollout, Switches, TickInput};
use cmo_edge_router::core::store::{breaker_key, parse_value, ROLLOUT_KEY};
use cmo_edge_router::core::window::Stats;
use serde_json::{json, Map, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// 2027-01-04 00:00 UTC, a Monday.
pub const START_MS: u64 = 1_798_934_400_000;
pub const MINUTE: u64 = 60_000;
pub const HOUR: u64 = 3_600_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub isolates: usize,
    pub backend: BackendKind,
    pub hours: u64,
    pub monthly_requests: f64,
    pub users: u32,
    pub seed: u64,
    /// LightRAG is down in `[start + from, start + until)`.
    pub lightrag_down_ms: (u64, u64),
    /// The rollout plan (`POST /admin/rollout` body).
    pub plan: Value,
    /// Extra wrangler vars.
    pub vars: Vec<(String, Value)>,
}

impl Scenario {
    /// The production settings the scenario runs with (wrangler.toml's `[env.production.vars]`
    /// for everything the fleet does), plus the scenario's own.
    pub fn vars(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, v) in [
            ("LIGHTRAG_INTEGRATION_ENABLED", "true"),
            ("LIGHTRAG_ROLLOUT_PERCENTAGE", "0"),
            ("LIGHTRAG_FALLBACK_TO_PERPLEXITY", "true"),
            ("LIGHTRAG_ENABLE_QUALITY_METRICS", "true"),
            ("LIGHTRAG_ENABLE_PERFORMANCE_COMPARISON", "true"),
            ("LIGHTRAG_ENABLE_AB_TESTING", "true"),
            ("LIGHTRAG_ENABLE_CIRCUIT_BREAKER", "true"),
            ("STATE_REFRESH_SECONDS", "30"),
            ("METRICS_FLUSH_SECONDS", "60"),
            ("ROUTER_ENV", "development"),
        ] {
            m.insert(k.into(), json!(v));
        }
        for (k, v) in &self.vars {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

/// One completed aggregation pass held against the truth.
#[derive(Debug, Clone)]
pub struct Pass {
    pub ticks: u64,
    /// Per arm (treatment, control): (aggregate, truth).
    pub arms: Vec<(Arm, Stats, Stats)>,
    /// The same for the settled hour (`Aggregate::settled`, the hour before its
    /// `settled_until_ms`).
    pub settled: Vec<(Arm, Stats, Stats)>,
}

/// Everything measured in one run.
pub struct Outcome {
    pub scenario: Scenario,
    pub obs: Observed,
    pub backend: Backend,
    pub passes: Vec<Pass>,
    /// (time, controller's decision, perfect-data controller's decision).
    pub decisions: Vec<(u64, String, String)>,
    /// (time, the controller's transition and its reason).
    pub transitions: Vec<(u64, String)>,
    /// At the end: the controller's fleet totals (`controller/state` `totals`, every settled
    /// minute committed once) against the truth of the same minutes, per arm.
    pub ledger: Vec<(Arm, Stats, Stats)>,
    /// The rollout's phase and percentage at the end (`rollout/state`).
    pub final_phase: String,
    /// The most operations one controller minute made (KV: one invocation).
    pub max_tick_ops: u32,
    pub sim_ms: u64,
    /// The size of `controller/state` at the end (bytes).
    pub controller_doc_bytes: usize,
    pub lightrag_down: (u64, u64),
    pub refresh_ms: u64,
}

pub fn run(s: &Scenario) -> Outcome {
    let end = START_MS + s.hours * HOUR;
    let down = (
        START_MS + s.lightrag_down_ms.0,
        START_MS + s.lightrag_down_ms.1,
    );
    let vars = s.vars();
    let config: Config = config::load(&vars, None, 0).config;
    let refresh_ms = config.state_refresh_seconds * 1000;
    let backend = Backend::new(s.backend, START_MS, s.seed ^ 0x5eed, &config);
    let mut traffic = Traffic::new(s.seed, s.users, s.monthly_requests, START_MS);
    let (by_location, home) = place_isolates(s.isolates);
    let mut isolates: Vec<Option<SimIsolate>> = (0..s.isolates).map(|_| None).collect();
    let mut pick = Rng::new(s.seed ^ 0x150_1a7e);
    let mut up = Upstreams {
        rng: Rng::new(s.seed ^ 0x00b5_7ea3),
        lightrag_down: down,
    };
    let mut truth = Truth::default();
    let mut obs = Observed {
        down,
        ..Observed::default()
    };
    let plan = plan_from_value(&s.plan).unwrap_or_else(|e| panic!("plan: {e:?}"));
    // An operator starts the rollout through the admin API (an invocation of its own, in the
    // first location); the cron's next tick applies the queued command.
    with_store!(&backend, 0, START_MS, |store| start_rollout(
        store, &plan, START_MS
    ))
    .unwrap_or_else(|e| panic!("start: {e}"));
    let switches = Switches::from_config(&config);
    let mut passes = Vec::new();
    let mut decisions = Vec::new();
    let mut transitions = Vec::new();
    let mut max_tick_ops = 0;
    // The cron's first tick a minute after the start (KV: one write per second per key, and
    // both write `rollout/routing`).
    let mut next_tick = START_MS + MINUTE;
    let mut next = traffic.next();
    // What requests left for later in their invocations, by time: the flushes they named
    // (`IsolateState::flush_later`) and the retries of refused writes.
    let mut deferred: BinaryHeap<Reverse<(u64, usize, Later)>> = BinaryHeap::new();
    while next_tick < end || next.at_ms < end {
        if let Some(&Reverse((at, i, later))) = deferred.peek() {
            if at < next_tick && at < next.at_ms {
                deferred.pop();
                if let Some(slot) = isolates[i].as_mut() {
                    with_store!(&backend, slot.location, at, |store| match later {
                        Later::Flush(f) => {
                            let wrote = fleet::flush_later(store, &mut slot.state, f);
                            obs.deferred_flushes += u64::from(wrote);
                        }
                        Later::Retry(attempt) => {
                            obs.write_retries += 1;
                            let again = fleet::retry_writes(store, &mut slot.state, at);
                            if let Some(t) = again.filter(|_| attempt < fleet::WRITE_ATTEMPTS) {
                                deferred.push(Reverse((t, i, Later::Retry(attempt + 1))));
                            }
                        }
                    });
                }
                continue;
            }
        }
        if next_tick <= next.at_ms {
            let now = next_tick;
            next_tick += MINUTE;
            if now >= end {
                continue;
            }
            let before_rollout = backend
                .peek(ROLLOUT_KEY, now)
                .and_then(|t| Rollout::from_json(&t).ok());
            let before_doc = controller_doc(&backend, now);
            // The cron runs in an isolate of its own, in the first location.
            let (rep, ops) = with_store!(&backend, 0, now, |store| {
                let rep = controller_step(store, &config, now);
                (rep, store_ops(store))
            });
            max_tick_ops = max_tick_ops.max(ops);
            if rep.completed {
                if let Some(agg) = controller_doc(&backend, now).and_then(|d| d.aggregate) {
                    // The aggregate totals each flush's window when its pass started.
                    let real = truth.window(now - agg.ticks.saturating_sub(1) * MINUTE);
                    let settled = truth.window(agg.settled_until_ms.saturating_sub(1));
                    let arms = [Arm::Treatment, Arm::Control];
                    passes.push(Pass {
                        ticks: agg.ticks,
                        arms: arms
                            .into_iter()
                            .map(|a| (a, arm(&agg.stats, a), arm(&real, a)))
                            .collect(),
                        settled: arms
                            .into_iter()
                            .map(|a| (a, arm(&agg.settled, a), arm(&settled, a)))
                            .collect(),
                    });
                }
            }
            for t in &rep.transitions {
                transitions.push((now, format!("{}: {}", t.event.as_str(), t.reason)));
            }
            // The same tick with perfect data: every sample counted in the stage (by the split
            // its isolate routed under, no settling) and the breaker record as last written, on
            // the rollout as stored before the tick (ticks that applied a command are left out:
            // their rollout is not that one).
            let book = before_doc.and_then(|d| d.stage);
            if let (Some(real), Some(book), Some(mut perfect), true) = (
                tick_label(&rep),
                book,
                before_rollout,
                rep.commands.is_empty(),
            ) {
                let trips = backend
                    .peek(&breaker_key(Upstream::Lightrag), now)
                    .and_then(|t| parse_value::<BreakerSnapshot>("breaker", &t).ok())
                    .map_or(0, |b| b.trips);
                let ev = stage_evidence(
                    &truth.stage(&book.split),
                    trips.saturating_sub(book.trips_at_open),
                    book.percentage,
                    book.shadow_calls(),
                );
                let o = perfect.tick(&TickInput {
                    evidence: &ev,
                    switches: &switches,
                    now_ms: now,
                });
                decisions.push((now, real, outcome_label(&o)));
            }
            continue;
        }
        let a = next;
        next = traffic.next();
        let ids = &by_location[a.location];
        let i = ids[(pick.next_u64() % ids.len() as u64) as usize];
        let slot = isolates[i].get_or_insert_with(|| SimIsolate {
            state: IsolateState::new(IsolateInit {
                id: format!("iso-{i:04}"),
                vars: vars.clone(),
                seed: s.seed ^ (i as u64).wrapping_mul(0x9e37_79b9),
                // One secret for the fleet, as the Worker derives it from `ADMIN_TOKEN`
                // (`TagSecret::derive`): a user has the same tag in every isolate.
                tag_secret: TagSecret::derive(&format!("admin-token-{}", s.seed)),
                setup: SetupFacts {
                    client_token: true,
                    rate_limiter: true,
                },
                fleet_reports: s.backend == BackendKind::Hub,
                now_ms: a.at_ms,
            }),
            location: home[i],
        });
        let refresh_latency_ms = match s.backend {
            BackendKind::Kv => super::kv::REFRESH_LATENCY_MS,
            BackendKind::Hub => super::hub::RTT_MS[slot.location],
        };
        let mut ctx = Ctx {
            refresh_latency_ms,
            up: &mut up,
            truth: &mut truth,
            obs: &mut obs,
        };
        let later = with_store!(&backend, slot.location, a.at_ms, |store| {
            fleet::serve(store, &mut slot.state, a.user, a.at_ms, &mut ctx)
        });
        if let Backend::Hub(h) = &backend {
            // The hub's clock as for the rest of the request's I/O (`with_store!` above: the
            // object's billed time is accounted in arrival order).
            let hub = h.client(a.at_ms);
            fleet::report_fleet(&hub, &mut slot.state, &mut obs, later.done_ms);
        }
        if let Some(f) = later.flush {
            deferred.push(Reverse((f.at_ms, i, Later::Flush(f))));
        }
        if let Some(t) = later.retry_at {
            deferred.push(Reverse((t, i, Later::Retry(2))));
        }
    }
    let doc = controller_doc(&backend, end).unwrap_or_default();
    let controller_doc_bytes = backend.peek(CONTROLLER_KEY, end).map_or(0, |t| t.len());
    let real = truth.between(0, doc.totals.through_ms);
    let ledger = [Arm::Treatment, Arm::Control]
        .into_iter()
        .map(|a| (a, arm(&doc.totals.stats, a), arm(&real, a)))
        .collect();
    let final_phase = backend
        .peek(ROLLOUT_KEY, end)
        .and_then(|t| Rollout::from_json(&t).ok())
        .map_or("none".into(), |r| {
            format!(
                "{} at {} %",
                r.phase_name().as_str(),
                r.current_percentage().percent()
            )
        });
    Outcome {
        scenario: s.clone(),
        ledger,
        final_phase,
        obs,
        backend,
        passes,
        decisions,
        transitions,
        max_tick_ops,
        sim_ms: end - START_MS,
        controller_doc_bytes,
        lightrag_down: down,
        refresh_ms,
    }
}

/// Work a request left for later in its invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Later {
    Flush(FlushLater),
    /// The retry of refused writes, and which attempt it is.
    Retry(u8),
}

/// `controller/state` as stored now (read without counting).
fn controller_doc(backend: &Backend, now_ms: u64) -> Option<ControllerDoc> {
    backend
        .peek(CONTROLLER_KEY, now_ms)
        .and_then(|t| parse_value::<ControllerDoc>(CONTROLLER_KEY, &t).ok())
}

/// Operations an invocation's store handle made (KV); the hub counts requests instead.
pub trait Ops {
    fn ops(&self) -> u32;
}

impl Ops for super::kv::KvView<'_> {
    fn ops(&self) -> u32 {
        super::kv::KvView::ops(self)
    }
}

impl Ops for super::hub::HubClient<'_> {
    fn ops(&self) -> u32 {
        0
    }
}

fn store_ops<O: Ops>(s: &O) -> u32 {
    s.ops()
}
