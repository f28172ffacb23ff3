//! The cron controller (`core::controller`) on a virtual clock, with isolates and an operator
//! sharing one in-memory KV store: paging under the op budget, documents it will not overwrite,
//! a stage advancing on the traffic tagged with it, the fleet following the routing document,
//! a rollback that beats forced users in every isolate, an operator command written while a tick
//! runs, totals that only grow while isolates die, and breaker trips counted once.

use crate::fleet_support::{block_on, isolate, step, vars, SEC, T0};
use crate::memory_store::MemoryStore;
use cmo_edge_router::core::breaker::{BreakerSnapshot, BreakerState};
use cmo_edge_router::core::config::{self, Config};
use cmo_edge_router::core::controller::{
    controller_tick, read_projection, ControllerDoc, ControllerInput, RoutingDoc, SplitTag,
    TickReport, TickSkipped, Writer, CONTROLLER_KEY, ROUTING_KEY,
};
use cmo_edge_router::core::decide::RouteRequest;
use cmo_edge_router::core::fleet::IsolateState;
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::{Arm, Reason, Upstream};
use cmo_edge_router::core::outcome::OutcomeKind;
use cmo_edge_router::core::rollout::request::plan_from_value;
use cmo_edge_router::core::rollout::{
    CommandId, EventKind, GateName, Operation, PhaseName, Rollout, RolloutId,
};
use cmo_edge_router::core::sorted_map::SortedMap;
use cmo_edge_router::core::store::{
    ListPage, MetricsFlush, StateStore, StoreError, CONTROLLER_MAX_OPS, ROLLOUT_KEY,
};
use cmo_edge_router::core::window::{MetricKey, Sample, Window};
use serde_json::{json, Value};
use std::cell::Cell;

const MIN: u64 = 60_000;

fn cfg(extra: &[(&str, Value)]) -> Config {
    let mut v = vars(&[("LIGHTRAG_ROLLOUT_PERCENTAGE", json!("0"))]);
    v.insert("LIGHTRAG_ENABLE_AB_TESTING".into(), json!("true"));
    for (k, x) in extra {
        v.insert((*k).to_string(), x.clone());
    }
    let l = config::load(&v, None, 0);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    l.config
}

fn tick_with(store: &impl StateStore, c: &Config, now: u64, max_ops: u32) -> TickReport {
    block_on(controller_tick(
        store,
        &ControllerInput {
            now_ms: now,
            config: c,
            max_ops,
        },
    ))
}

fn tick(store: &impl StateStore, c: &Config, now: u64) -> TickReport {
    tick_with(store, c, now, CONTROLLER_MAX_OPS)
}

fn ok(latency_ms: u64) -> Sample {
    Sample {
        kind: OutcomeKind::Success,
        latency_ms,
        fallback: false,
        quality: None,
        no_context: false,
        query_type: None,
        total_ms: None,
    }
}

/// A flush of `n` successful LightRAG treatment requests at `at`.
fn flush(isolate: &str, n: u64, at: u64) -> String {
    let mut w = Window::default();
    for _ in 0..n {
        w.record(at, &ok(120));
    }
    let mut windows = SortedMap::new();
    windows.insert(
        MetricKey::new(Upstream::Lightrag, Arm::Treatment),
        w.clone(),
    );
    serde_json::to_string(&MetricsFlush {
        isolate: isolate.into(),
        flushed_ms: at,
        windows,
        split: None,
        reasons: SortedMap::from([("rollout_in".to_string(), w)]),
        shadow: None,
    })
    .unwrap()
}

fn controller_doc(store: &MemoryStore) -> ControllerDoc {
    serde_json::from_str(&store.value(CONTROLLER_KEY).unwrap()).unwrap()
}

fn stored(store: &MemoryStore) -> Rollout {
    Rollout::from_json(&store.value(ROLLOUT_KEY).unwrap()).unwrap()
}

/// What `POST /admin/rollout[/op]` does (src/edge/rollout.rs): project, check, queue the
/// command, route by the projection in the isolate that took the call, publish it.
fn operator(
    store: &MemoryStore,
    iso: &mut IsolateState,
    id: &str,
    op: Operation,
    now: u64,
) -> RoutingDoc {
    let (projection, _) = block_on(read_projection(store, now)).unwrap();
    let (cmd, projected) = projection
        .issue(op, CommandId::try_new(id).unwrap(), now)
        .unwrap();
    block_on(store.put(&cmd.key(), &cmd.to_json(), Some(3600))).unwrap();
    let routing = RoutingDoc::of(&projected.rollout, false, Writer::Operator, now);
    iso.adopt_routing(routing.clone(), now);
    block_on(store.put(ROUTING_KEY, &serde_json::to_string(&routing).unwrap(), None)).unwrap();
    routing
}

fn start(plan: Value) -> Operation {
    Operation::Start {
        rollout_id: RolloutId::try_new("r-1").unwrap(),
        plan: plan_from_value(&plan).unwrap(),
    }
}

/// `n` users' requests through `iso`, recorded the way the edge records them (each user in
/// the arm the decision assigned, served by the upstream it chose).
fn traffic(iso: &mut IsolateState, users: std::ops::Range<u64>, now: u64) -> (u64, u64) {
    let (mut t, mut c) = (0, 0);
    for u in users {
        let key = format!("user-{u}");
        let (d, _) = iso.decide(&RouteRequest::new(Some(&key), "what is glycolysis?"), now);
        match d.arm {
            Arm::Treatment => t += 1,
            Arm::Control => c += 1,
            Arm::None => {}
        }
        if iso.record_request(
            MetricKey::new(d.upstream, d.arm),
            &ok(300),
            KeyTag::from_raw(u),
            now,
        ) {
            iso.record_reason(&d.reason, &ok(300), now);
        }
    }
    (t, c)
}

fn flush_to(iso: &mut IsolateState, store: &MemoryStore, now: u64) {
    let w = iso.take_flush(now);
    block_on(store.put(&w.key, &w.value, w.ttl_seconds)).unwrap();
}

#[test]
fn aggregates_evaluates_the_gate_and_skips_corrupt_flushes() {
    let s = MemoryStore::new();
    s.insert("metrics/a", &flush("a", 40, T0 - SEC));
    s.insert("metrics/b", &flush("b", 20, T0 - SEC));
    s.insert("metrics/c", "not json");
    let rep = tick(&s, &cfg(&[]), T0);
    assert!(rep.completed);
    assert_eq!(rep.corrupt, 1);
    assert_eq!(
        rep.ops,
        2 + 1 + 2 + 1 + 3 + 2,
        "two documents, the command listing, two breakers, one metrics list, three flushes, \
         routing + controller writes (an idle rollout's state is unchanged: not written)"
    );
    assert_eq!(s.ops.borrow().total(), u64::from(rep.ops));
    let doc = controller_doc(&s);
    let agg = doc.aggregate.unwrap();
    assert_eq!(agg.isolates, 2);
    assert_eq!(
        agg.stats[&MetricKey::new(Upstream::Lightrag, Arm::Treatment)].count,
        60
    );
    assert!(doc.pass.is_none());
    assert!(
        s.value(ROLLOUT_KEY).is_none(),
        "nothing to store for an idle rollout"
    );
    let routing: RoutingDoc = serde_json::from_str(&s.value(ROUTING_KEY).unwrap()).unwrap();
    assert_eq!(routing.phase, PhaseName::Idle);
    assert_eq!(routing.route_percentage(), None);
    // The next tick rewrites neither the state nor the unchanged routing.
    let before = s.ops.borrow().writes;
    tick(&s, &cfg(&[]), T0 + MIN);
    assert_eq!(s.ops.borrow().writes - before, 1, "only controller/state");
}

#[test]
fn pages_across_ticks_within_the_op_budget() {
    let s = MemoryStore::new();
    for i in 0..2_500 {
        s.insert(&format!("metrics/i{i:05}"), &flush("x", 1, T0 - SEC));
    }
    let c = cfg(&[]);
    let mut ticks = 0;
    loop {
        let before = s.ops.borrow().total();
        let rep = tick(&s, &c, T0 + ticks * SEC);
        let used = s.ops.borrow().total() - before;
        assert_eq!(used, u64::from(rep.ops));
        assert!(used <= 1_000, "tick used {used} KV operations");
        ticks += 1;
        if rep.completed {
            break;
        }
        assert!(rep.resume_cursor.is_some());
        assert!(ticks < 10);
    }
    assert_eq!(ticks, 3);
    let agg = controller_doc(&s).aggregate.unwrap();
    assert_eq!(agg.isolates, 2_500);
    assert_eq!(agg.ticks, 3);
}

#[test]
fn an_unreadable_document_skips_the_tick_and_writes_nothing() {
    for key in [ROLLOUT_KEY, CONTROLLER_KEY] {
        // A failed read: an outage must not turn into defaults written over a rollback.
        let s = MemoryStore::new();
        let mut r = Rollout::new();
        r.apply(start(json!({"strategy": "linear"})), T0).unwrap();
        r.apply(Operation::Rollback { note: None }, T0 + SEC)
            .unwrap();
        s.insert(ROLLOUT_KEY, &r.to_json());
        s.insert(CONTROLLER_KEY, "{}");
        s.insert("metrics/a", &flush("a", 3, T0));
        s.fail_reads_of(key);
        let rep = tick(&s, &cfg(&[]), T0 + MIN);
        assert_eq!(rep.skipped, Some(TickSkipped::ReadFailed), "{key}");
        assert!(rep.warnings[0].contains(key));
        assert_eq!(s.ops.borrow().writes, 0, "nothing written");
        assert_eq!(s.ops.borrow().lists, 0, "no pass started");
        s.heal();
        let rep = tick(&s, &cfg(&[]), T0 + 2 * MIN);
        assert_eq!(rep.skipped, None);
        assert_eq!(
            stored(&s).phase_name(),
            PhaseName::RolledBack,
            "the rollback survived"
        );
        // A corrupt value: kept for an operator to inspect.
        let s = MemoryStore::new();
        s.insert(key, "][");
        let rep = tick(&s, &cfg(&[]), T0);
        assert_eq!(rep.skipped, Some(TickSkipped::Corrupt));
        assert_eq!(s.ops.borrow().writes, 0);
        assert_eq!(s.value(key).unwrap(), "][");
        assert_eq!(
            serde_json::to_value(&rep).unwrap()["skipped"],
            json!("corrupt")
        );
    }
}

fn two_stage_plan() -> Value {
    json!({"strategy": "steps", "stage_duration": 0, "min_requests": 20,
           "max_latency_ratio": null, "stages": [{"target_percentage": 50}, {"target_percentage": 100}]})
}

#[test]
fn a_stage_advances_on_its_own_traffic_and_the_fleet_follows() {
    let store = MemoryStore::new();
    let c = cfg(&[("LIGHTRAG_ENABLE_AB_TESTING", json!("true"))]);
    let v = vars(&[
        ("LIGHTRAG_ROLLOUT_PERCENTAGE", json!("0")),
        ("LIGHTRAG_ENABLE_AB_TESTING", json!("true")),
    ]);
    let (mut a, mut b) = (isolate("a", v.clone(), T0), isolate("b", v, T0));
    step(&mut a, &store, T0);
    step(&mut b, &store, T0);
    // t=0: the operator starts through A: A routes at 50 % at once, B still at 0 %.
    let routing = operator(&store, &mut a, "c-start", start(two_stage_plan()), T0);
    assert_eq!(routing.route_percentage().map(|p| p.percent()), Some(50.0));
    let (t, _) = traffic(&mut a, 0..200, T0 + SEC);
    assert!(
        (80..=120).contains(&t),
        "A routes half its users to LightRAG: {t}"
    );
    let (t, c0) = traffic(&mut b, 0..10, T0 + SEC);
    assert_eq!((t, c0), (0, 10), "B has not refreshed yet");
    // t=30s: B refreshes and reads the projection: 50 % too, tagged with stage 0.
    step(&mut b, &store, T0 + 30 * SEC);
    assert_eq!(
        b.routing().and_then(|r| r.split.clone()),
        Some(SplitTag::stage(&RolloutId::try_new("r-1").unwrap(), 0))
    );
    traffic(&mut b, 200..400, T0 + 31 * SEC);
    flush_to(&mut a, &store, T0 + 40 * SEC);
    flush_to(&mut b, &store, T0 + 40 * SEC);
    // t=1 min: the tick applies the start and evaluates stage 0 on the tagged traffic: every
    // gate passes, the stage's minimum duration is 0, so it advances to 100 %.
    let rep = tick(&store, &c, T0 + MIN);
    assert!(rep.completed);
    let events: Vec<EventKind> = rep.transitions.iter().map(|t| t.event).collect();
    assert_eq!(events, vec![EventKind::Started, EventKind::StageAdvanced]);
    let state = stored(&store);
    assert_eq!(state.current_percentage().percent(), 100.0);
    let eval = state.history().last().unwrap();
    assert_eq!(eval.from_percentage.percent(), 50.0);
    // The evidence was stage 0's experiment traffic only: B's ten untagged 0 % requests are
    // not in it.
    let observed = |name: GateName| {
        eval.gates
            .iter()
            .find(|g| g.name == name)
            .and_then(|g| g.observed)
            .unwrap()
    };
    assert_eq!(
        observed(GateName::MinSamplesTreatment) + observed(GateName::MinSamplesControl),
        400.0
    );
    // t=1.5 min: both isolates refresh and route everybody to LightRAG.
    step(&mut a, &store, T0 + 90 * SEC);
    step(&mut b, &store, T0 + 90 * SEC);
    for iso in [&mut a, &mut b] {
        let (t, c) = traffic(iso, 1_000..1_050, T0 + 91 * SEC);
        assert_eq!((t, c), (50, 0));
    }
}

/// A store that runs `during` once, the first time the tick lists `metrics/`: what an operator
/// writing a command while the tick is aggregating looks like.
type During<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;

struct Racing<'a> {
    inner: &'a MemoryStore,
    during: Cell<Option<During<'a>>>,
}

impl StateStore for Racing<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        self.inner.put(key, value, ttl).await
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        if prefix == "metrics/" {
            if let Some(f) = self.during.take() {
                f(self.inner);
            }
        }
        self.inner.list(prefix, cursor, limit).await
    }
}

#[test]
fn a_command_sent_during_a_tick_survives() {
    let store = MemoryStore::new();
    let c = cfg(&[]);
    let mut a = isolate("a", vars(&[]), T0);
    step(&mut a, &store, T0);
    operator(
        &store,
        &mut a,
        "c-start",
        start(json!({"strategy": "linear"})),
        T0,
    );
    tick(&store, &c, T0 + MIN);
    assert_eq!(stored(&store).phase_name(), PhaseName::Progressing);
    // t=2 min: a tick reads the state and the commands; while it aggregates, the operator
    // pauses (through another isolate); then the tick writes the state it computed.
    let mut b = isolate("b", vars(&[]), T0);
    step(&mut b, &store, T0 + 2 * MIN);
    let racing = Racing {
        inner: &store,
        during: Cell::new(Some(Box::new(|s: &MemoryStore| {
            let (p, _) = block_on(read_projection(s, T0 + 2 * MIN + 1)).unwrap();
            let (cmd, _) = p
                .issue(
                    Operation::Pause,
                    CommandId::try_new("c-pause").unwrap(),
                    T0 + 2 * MIN + 1,
                )
                .unwrap();
            block_on(s.put(&cmd.key(), &cmd.to_json(), Some(3600))).unwrap();
        }))),
    };
    let rep = tick(&racing, &c, T0 + 2 * MIN);
    assert!(
        rep.commands.iter().all(|r| r.id.as_str() != "c-pause"),
        "not seen by this tick"
    );
    assert_eq!(stored(&store).phase_name(), PhaseName::Progressing);
    // The tick's write did not touch the command: the next tick applies it, once.
    let rep = tick(&store, &c, T0 + 3 * MIN);
    assert_eq!(
        rep.transitions.iter().map(|t| t.event).collect::<Vec<_>>(),
        vec![EventKind::Paused]
    );
    for m in 4..20 {
        tick(&store, &c, T0 + m * MIN);
    }
    let state = stored(&store);
    assert_eq!(state.phase_name(), PhaseName::Paused);
    let pauses = state
        .history()
        .iter()
        .filter(|t| t.event == EventKind::Paused)
        .count();
    assert_eq!(pauses, 1);
    // Paused from when the operator sent it, not from when the tick noticed.
    assert_eq!(state.phase().paused_since(), Some(T0 + 2 * MIN + 1));
}

#[test]
fn a_rollback_reaches_every_isolate_and_beats_forced_users() {
    let store = MemoryStore::new();
    let c = cfg(&[]);
    let v = vars(&[
        ("LIGHTRAG_ROLLOUT_PERCENTAGE", json!("0")),
        ("LIGHTRAG_ALLOW_USERS", json!("vip")),
    ]);
    let (mut a, mut b) = (isolate("a", v.clone(), T0), isolate("b", v, T0));
    step(&mut a, &store, T0);
    step(&mut b, &store, T0);
    operator(
        &store,
        &mut a,
        "c-start",
        start(json!({"strategy": "linear"})),
        T0,
    );
    tick(&store, &c, T0 + MIN);
    step(&mut b, &store, T0 + MIN + 30 * SEC);
    let vip = |iso: &mut IsolateState, now| iso.decide(&RouteRequest::new(Some("vip"), "q"), now).0;
    assert_eq!(vip(&mut b, T0 + 2 * MIN).upstream, Upstream::Lightrag);
    // t=2 min: the operator rolls back through A: A sends everybody to Perplexity at once, the
    // allow-listed user included.
    let r = operator(
        &store,
        &mut a,
        "c-rb",
        Operation::Rollback {
            note: Some("bad answers".into()),
        },
        T0 + 2 * MIN,
    );
    assert!(r.rolled_back());
    let d = vip(&mut a, T0 + 2 * MIN);
    assert_eq!(
        (d.upstream, d.reason),
        (Upstream::Perplexity, Reason::Rollback)
    );
    // A tick that read the state before the rollback writes a routing document without it (a
    // lower revision): B, holding the operator's projection, is not sent back to LightRAG.
    let stale = RoutingDoc::of(&stored(&store), false, Writer::Controller, T0 + 2 * MIN);
    assert!(stale.revision < r.revision);
    step(&mut b, &store, T0 + 2 * MIN + 30 * SEC);
    store.insert(ROUTING_KEY, &serde_json::to_string(&stale).unwrap());
    step(&mut b, &store, T0 + 3 * MIN);
    let d = vip(&mut b, T0 + 3 * MIN);
    assert_eq!(
        (d.upstream, d.reason),
        (Upstream::Perplexity, Reason::Rollback)
    );
    // The next tick applies the rollback; from then on the controller's document says so.
    let rep = tick(&store, &c, T0 + 3 * MIN + SEC);
    assert_eq!(rep.transitions[0].event, EventKind::RolledBack);
    step(&mut b, &store, T0 + 4 * MIN);
    let held = b.routing().unwrap();
    assert_eq!((held.by, held.rolled_back()), (Writer::Controller, true));
    // A rolled-back rollout stays at 0 % whatever the metrics do (no flapping).
    for m in 5..30 {
        tick(&store, &c, T0 + m * MIN);
    }
    assert_eq!(stored(&store).phase_name(), PhaseName::RolledBack);
}

#[test]
fn evidence_from_another_stage_never_counts() {
    let store = MemoryStore::new();
    let c = cfg(&[]);
    let v = vars(&[("LIGHTRAG_ROLLOUT_PERCENTAGE", json!("0"))]);
    let mut a = isolate("a", v.clone(), T0);
    step(&mut a, &store, T0);
    let plan = json!({"strategy": "steps", "stage_duration": 0, "min_requests": 20,
                      "max_latency_ratio": null,
                      "stages": [{"target_percentage": 50, "auto_advance": false}, {"target_percentage": 60}, {"target_percentage": 100}]});
    operator(&store, &mut a, "c-start", start(plan), T0);
    traffic(&mut a, 0..300, T0 + SEC);
    flush_to(&mut a, &store, T0 + 2 * SEC);
    let rep = tick(&store, &c, T0 + MIN);
    assert_eq!(
        rep.transitions.last().unwrap().event,
        EventKind::AwaitingApproval
    );
    // The operator approves through another isolate B, which has not recorded anything; A has
    // not refreshed: its stage-0 windows are all there is in KV.
    let mut b = isolate("b", v, T0);
    step(&mut b, &store, T0 + MIN);
    operator(
        &store,
        &mut b,
        "c-approve",
        Operation::Approve,
        T0 + MIN + SEC,
    );
    flush_to(&mut a, &store, T0 + MIN + 2 * SEC);
    let rep = tick(&store, &c, T0 + 2 * MIN);
    let state = stored(&store);
    assert_eq!(state.run().unwrap().stage_index, 1);
    let eval = state.run().unwrap().last_evaluation.clone().unwrap();
    assert_eq!(eval.stage_index, 1);
    assert_eq!(
        (
            eval.evidence.treatment.requests,
            eval.evidence.control.requests
        ),
        (0, 0),
        "stage 0's traffic is not stage 1's evidence"
    );
    assert!(rep.decision.unwrap().contains("not enough data"));
}

#[test]
fn fleet_totals_only_grow_while_isolates_die() {
    let store = MemoryStore::new();
    let c = cfg(&[]);
    // Three isolates flush 10, 20 and 30 requests recorded at T0; then they die one by one
    // and their keys expire.
    for (i, n) in [("a", 10), ("b", 20), ("c", 30)] {
        store.insert(&format!("metrics/{i}"), &flush(i, n, T0));
    }
    let key = MetricKey::new(Upstream::Lightrag, Arm::Treatment);
    let (mut last, mut last_reason) = (0, 0);
    for m in 1..8u64 {
        if m == 4 {
            store.data.borrow_mut().remove("metrics/a");
        }
        if m == 5 {
            store.data.borrow_mut().remove("metrics/b");
        }
        tick(&store, &c, T0 + m * MIN);
        let doc = controller_doc(&store);
        let total = doc.totals.stats.get(&key).map_or(0, |s| s.count);
        assert!(total >= last, "the total went down at minute {m}");
        last = total;
        let by_reason = doc.reason_totals.get("rollout_in").map_or(0, |s| s.count);
        assert!(
            by_reason >= last_reason,
            "the reason total went down at minute {m}"
        );
        assert_eq!(by_reason, total, "by reason, the same requests");
        last_reason = by_reason;
    }
    assert_eq!(last, 60, "every request once, the dead isolates' included");
    assert_eq!(last_reason, 60);
    // The last hour keeps the dead isolates' committed minutes: their requests were made in
    // it (core::controller::ledger, the hour view); before, it held the living isolate only.
    let agg = controller_doc(&store).aggregate.unwrap();
    assert_eq!(
        agg.stats[&key].count, 60,
        "the last hour, the dead isolates' included"
    );
    assert_eq!(agg.settled[&key].count, 60, "all of it settled");
}

#[test]
fn breaker_trips_count_once_per_trip_of_the_fleet() {
    let store = MemoryStore::new();
    let c = cfg(&[]);
    let snap = |trips| BreakerSnapshot {
        state: BreakerState::Open,
        open_until_ms: Some(T0 + 10 * MIN),
        generation: 10 + trips,
        trips,
        updated_ms: T0,
        admin_epoch: 0,
    };
    store.insert(
        "breaker/lightrag",
        &serde_json::to_string(&snap(4)).unwrap(),
    );
    let mut a = isolate("a", vars(&[]), T0);
    step(&mut a, &store, T0);
    operator(
        &store,
        &mut a,
        "c-start",
        start(json!({"strategy": "linear", "max_breaker_trips": 0, "min_requests": 1})),
        T0,
    );
    tick(&store, &c, T0 + MIN);
    // One trip in the stage: every isolate that adopted it carries the same counter (5), so
    // it counts once.
    store.insert(
        "breaker/lightrag",
        &serde_json::to_string(&snap(5)).unwrap(),
    );
    tick(&store, &c, T0 + 2 * MIN);
    let eval = stored(&store)
        .run()
        .unwrap()
        .last_evaluation
        .clone()
        .unwrap();
    assert_eq!(eval.evidence.breaker_trips, 1);
    let doc = controller_doc(&store);
    assert_eq!(doc.breaker_trips[&Upstream::Lightrag], 5);
}

/// A flush carrying only shadow calls (docs/answer-aware.md#shadow-comparison), `n` at each
/// of `at`.
fn shadow_flush(isolate: &str, calls: &[(u64, u64)], flushed: u64) -> String {
    let mut w = Window::default();
    for &(at, n) in calls {
        for _ in 0..n {
            w.record(at, &ok(900));
        }
    }
    serde_json::to_string(&MetricsFlush {
        isolate: isolate.into(),
        flushed_ms: flushed,
        windows: SortedMap::new(),
        split: None,
        reasons: SortedMap::new(),
        shadow: Some(w),
    })
    .unwrap()
}

#[test]
fn a_stage_counts_the_shadow_calls_made_since_it_opened_once_each() {
    let store = MemoryStore::new();
    let c = cfg(&[]);
    let mut a = isolate(
        "a",
        vars(&[("LIGHTRAG_ROLLOUT_PERCENTAGE", json!("0"))]),
        T0,
    );
    step(&mut a, &store, T0);
    let plan = json!({"strategy": "steps", "stage_duration": 0, "min_requests": 1000,
                      "min_shadow_samples": 50, "stages": [{"target_percentage": 50}]});
    operator(&store, &mut a, "c-start", start(plan), T0);
    // The tick at T0 + 1 min applies the start and opens the stage's book.
    tick(&store, &c, T0 + MIN);
    // Shadow calls: 4 long before the stage, 3 in the minute it opened, 2 a few minutes later.
    store.insert(
        "metrics/a",
        &shadow_flush(
            "a",
            &[(T0 - 10 * MIN, 4), (T0 + MIN + 5 * SEC, 3)],
            T0 + MIN + 10 * SEC,
        ),
    );
    let shadow_gate = |store: &MemoryStore| {
        let state = stored(store);
        let eval = state.run().unwrap().last_evaluation.clone().unwrap();
        eval.gates
            .into_iter()
            .find(|g| g.name == GateName::ShadowSamples)
            .and_then(|g| g.observed)
            .unwrap()
    };
    // T0 + 5 min: the stage's minute has settled and is committed; the old calls are not
    // the stage's.
    tick(&store, &c, T0 + 5 * MIN);
    assert_eq!(shadow_gate(&store), 3.0);
    assert_eq!(controller_doc(&store).stage.unwrap().shadow.count, 3);
    // Another isolate's recent calls count at once (not yet committed); the committed ones are
    // not counted again.
    store.insert(
        "metrics/b",
        &shadow_flush("b", &[(T0 + 5 * MIN + SEC, 2)], T0 + 5 * MIN + 2 * SEC),
    );
    tick(&store, &c, T0 + 6 * MIN);
    assert_eq!(shadow_gate(&store), 5.0);
    tick(&store, &c, T0 + 9 * MIN);
    assert_eq!(shadow_gate(&store), 5.0, "each call once");
    let book = controller_doc(&store).stage.unwrap();
    assert_eq!((book.shadow.count, book.shadow_recent.count), (5, 0));
}
