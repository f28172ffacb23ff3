//! `core::fleet::IsolateState` on a virtual clock: several isolates sharing one in-memory KV
//! store, driven the way the Worker's shell drives them (`fleet_support::step`).

use crate::fleet_support::*;
use crate::memory_store::MemoryStore;
use cmo_edge_router::core::breaker::{BreakerAction, BreakerSnapshot, BreakerState};
use cmo_edge_router::core::fleet::{CallRecord, IsolateState};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use cmo_edge_router::core::store::StateStore;

/// One controller tick over `store` with `iso`'s config.
fn tick(
    iso: &IsolateState,
    store: &MemoryStore,
    now: u64,
) -> cmo_edge_router::core::controller::TickReport {
    block_on(cmo_edge_router::core::controller::controller_tick(
        store,
        &cmo_edge_router::core::controller::ControllerInput {
            now_ms: now,
            config: iso.config(),
            max_ops: cmo_edge_router::core::store::CONTROLLER_MAX_OPS,
        },
    ))
}

fn lightrag_state(iso: &IsolateState, now: u64) -> BreakerState {
    iso.breaker(Upstream::Lightrag).unwrap().state(now)
}

fn fail_from(iso: &mut IsolateState, user: u64, now: u64) {
    iso.record_call(
        &CallRecord {
            upstream: Upstream::Lightrag,
            outcome: Outcome::new(OutcomeKind::HttpServerError(500), 80),
            key: KeyTag::from_raw(user),
        },
        now,
    );
}

/// An operator's action through `iso`, as the admin API performs it (the command written now).
fn admin(iso: &mut IsolateState, store: &MemoryStore, action: BreakerAction, now: u64) {
    let done = iso.breaker_action(Upstream::Lightrag, action, now).unwrap();
    block_on(store.put(&done.command.key, &done.command.value, None)).unwrap();
}

fn stored_snapshot(store: &MemoryStore) -> BreakerSnapshot {
    serde_json::from_str(&store.value("breaker/lightrag").unwrap()).unwrap()
}

#[test]
fn an_admin_reset_through_one_isolate_closes_an_isolate_with_a_higher_generation() {
    let store = MemoryStore::new();
    let (mut a, mut b) = (isolate("a", vars(&[]), T0), isolate("b", vars(&[]), T0));
    // t=0: both start and load KV (empty).
    step(&mut a, &store, T0);
    step(&mut b, &store, T0);
    // t=0..: an operator flaps A's breaker (open, reset, open): A's generation is 3, open; the
    // throttle hands out the first snapshot at once and keeps the last one pending.
    admin(&mut a, &store, BreakerAction::Open, T0);
    step(&mut a, &store, T0);
    for (n, action) in [BreakerAction::Reset, BreakerAction::Open]
        .into_iter()
        .enumerate()
    {
        admin(&mut a, &store, action, T0 + 1 + n as u64);
    }
    step(&mut a, &store, T0 + 10);
    assert_eq!(
        a.breaker(Upstream::Lightrag).unwrap().snapshot().generation,
        3
    );
    // t=1s: three of B's users fail; B trips on its own (generation 1).
    for user in 1..=3 {
        fail_from(&mut b, user, T0 + SEC);
    }
    assert_eq!(lightrag_state(&b, T0 + SEC), BreakerState::Open);
    // t=2s: another operator resets the breaker through B (generation 2 < A's 3).
    admin(&mut b, &store, BreakerAction::Reset, T0 + 2 * SEC);
    step(&mut b, &store, T0 + 2 * SEC);
    // t=31s: A writes its open state that was pending behind the throttle (it has not seen the
    // reset yet), then its refresh reads B's command and closes, whatever its generation.
    step(&mut a, &store, T0 + 31 * SEC);
    assert_eq!(lightrag_state(&a, T0 + 31 * SEC), BreakerState::Closed);
    let stale = stored_snapshot(&store);
    assert_eq!((stale.state, stale.generation), (BreakerState::Open, 3));
    // t=62s: B reads that stale open state (generation 3 > its 2): it predates the command, so
    // B stays closed.
    step(&mut b, &store, T0 + 62 * SEC);
    assert_eq!(lightrag_state(&b, T0 + 62 * SEC), BreakerState::Closed);
    // t=63s: LightRAG fails again for three users on A: that trip reaches B.
    for user in 10..=12 {
        fail_from(&mut a, user, T0 + 63 * SEC);
    }
    step(&mut a, &store, T0 + 63 * SEC);
    step(&mut b, &store, T0 + 93 * SEC);
    assert_eq!(lightrag_state(&b, T0 + 93 * SEC), BreakerState::Open);
}

#[test]
fn a_refresh_lost_to_a_cancelled_wait_until_is_retried_after_its_deadline() {
    let store = MemoryStore::new();
    let mut iso = isolate("a", vars(&[]), T0);
    // t=0: the first load.
    step(&mut iso, &store, T0);
    // t=30s: a refresh is due and handed out, but the runtime cancels the `wait_until` that
    // ran it: its result never comes back.
    let lost = iso.background(T0 + 30 * SEC).refresh;
    assert!(lost.is_some());
    // t=35s: an operator rolls back (the routing document in KV).
    store.insert(
        "rollout/routing",
        r#"{"revision":3,"updated_ms":1800000035000,"by":"controller","phase":"rolled_back","routing":"rolled_back","percentage":0.0}"#,
    );
    // t=35s: within the deadline the lost refresh still counts as in flight: no second one.
    assert!(iso.background(T0 + 35 * SEC).refresh.is_none());
    // t=41s: past the deadline (10 s) it counts as failed: a new refresh is handed out, and it
    // sees the rollback.
    let bg = iso.background(T0 + 41 * SEC);
    assert!(bg.refresh.is_some(), "the isolate refreshes again");
    perform(&mut iso, &store, bg, T0 + 41 * SEC);
    assert!(iso.route_state(T0 + 41 * SEC).rollback_active);
    let health = iso.kv_health();
    assert_eq!(health.stalled_refreshes, 1);
    assert_eq!(health.last_refresh_ms, Some(T0 + 41 * SEC));
    // t=42s: the lost refresh finally completes, with what KV held before the rollback: it is
    // older than what was applied and is ignored.
    let old = cmo_edge_router::core::store::RemoteState::default();
    iso.refresh_done(lost.unwrap(), old, T0 + 42 * SEC);
    assert!(iso.route_state(T0 + 42 * SEC).rollback_active);
}

#[test]
fn a_cold_isolate_says_how_many_requests_it_routed_before_kv_arrived() {
    let store = MemoryStore::new();
    store.insert(
        "config/overrides",
        r#"{"version":2,"overrides":{"LIGHTRAG_ROLLOUT_PERCENTAGE":0}}"#,
    );
    let mut iso = isolate("a", vars(&[("STATE_FIRST_LOAD_WAIT_MS", "80".into())]), T0);
    // t=0: fresh, no KV yet; the driver waits for the first load at most 80 ms.
    assert!(!iso.first_load_arrived());
    assert_eq!(iso.config().first_load_wait_ms, 80);
    let ticket = iso.start_refresh(T0);
    // Two requests gave up waiting and were routed on the vars alone.
    iso.note_cold_route(T0 + 80);
    iso.note_cold_route(T0 + 85);
    // t=120ms: the load arrives.
    let remote = block_on(cmo_edge_router::core::store::load_remote(&store));
    iso.refresh_done(ticket, remote, T0 + 120);
    assert!(iso.first_load_arrived());
    assert_eq!(iso.config().version, 2);
    let health = iso.kv_health();
    assert_eq!(health.first_load_ms, Some(T0 + 120));
    assert_eq!(health.cold_routes, 2);
    let status = iso.report(T0 + 200, &Default::default(), &Default::default(), |r| {
        cmo_edge_router::core::report::status_document(r)
    });
    assert_eq!(status["kv"]["first_load"]["routed_before_kv"], 2);
    assert_eq!(status["kv"]["first_load"]["arrived_ms"], T0 + 120);
    assert_eq!(status["kv"]["first_load"]["wait_ms"], 80);
}

#[test]
fn a_failed_or_corrupt_read_keeps_the_rollout_state_the_isolate_had() {
    let store = MemoryStore::new();
    let mut iso = isolate("a", vars(&[]), T0);
    // t=0: KV says the quality gate is closed and a rollback is active.
    store.insert(
        "rollout/routing",
        r#"{"revision":3,"updated_ms":1800000000000,"by":"controller","phase":"rolled_back","routing":"rolled_back","percentage":0.0,"quality_gate_closed":true}"#,
    );
    step(&mut iso, &store, T0);
    let closed = |iso: &IsolateState, now| {
        let r = iso.route_state(now);
        (r.quality_gate_closed, r.rollback_active)
    };
    assert_eq!(closed(&iso, T0), (true, true));
    // t=30s: the read fails. The isolate keeps what it had (it does not reopen the gate).
    store.fail_reads_of("rollout/routing");
    step(&mut iso, &store, T0 + 30 * SEC);
    assert_eq!(closed(&iso, T0 + 30 * SEC), (true, true));
    assert!(iso.warnings()[0].contains("rollout/routing"));
    // t=60s: the value is corrupt: the same.
    store.heal();
    store.insert("rollout/routing", "{not json");
    step(&mut iso, &store, T0 + 60 * SEC);
    assert_eq!(closed(&iso, T0 + 60 * SEC), (true, true));
    // t=90s: the key is gone (an operator deleted it): that is a real "no rollout state".
    store.data.borrow_mut().remove("rollout/routing");
    step(&mut iso, &store, T0 + 90 * SEC);
    assert_eq!(closed(&iso, T0 + 90 * SEC), (false, false));
}

#[test]
fn a_skipped_controller_tick_is_reported_in_the_status() {
    let store = MemoryStore::new();
    let mut iso = isolate("a", vars(&[]), T0);
    step(&mut iso, &store, T0);
    store.fail_reads_of("rollout/state");
    let rep = tick(&iso, &store, T0 + SEC);
    iso.note_tick(&rep, T0 + SEC);
    let st = iso.report(
        T0 + 2 * SEC,
        &Default::default(),
        &Default::default(),
        cmo_edge_router::core::report::status_document,
    );
    let last = &st["rollout_status"]["controller_last_tick"];
    assert_eq!(last["skipped"], "read_failed");
    assert_eq!(last["at_ms"], T0 + SEC);
    assert!(last["warnings"][0]
        .as_str()
        .unwrap()
        .contains("rollout/state"));
}

fn lightrag_sample(quality: f64) -> cmo_edge_router::core::window::Sample {
    cmo_edge_router::core::window::Sample {
        quality: Some(quality),
        ..cmo_edge_router::core::window::Sample::new(OutcomeKind::Success, 900)
    }
}

/// Flushes `iso`'s windows to `store` and runs one controller tick; whether the gate closed.
fn flush_and_tick(iso: &mut IsolateState, store: &MemoryStore, now: u64) -> bool {
    let w = iso.take_flush(now);
    block_on(store.put(&w.key, &w.value, w.ttl_seconds)).unwrap();
    tick(iso, store, now).gate_closed
}

#[test]
fn one_client_cannot_close_the_quality_gate() {
    use cmo_edge_router::core::model::Arm;
    use cmo_edge_router::core::window::MetricKey;
    let store = MemoryStore::new();
    // Quality metrics on; the gate needs 50 scored LightRAG answers (the default).
    let mut iso = isolate(
        "a",
        vars(&[("LIGHTRAG_ENABLE_QUALITY_METRICS", "true".into())]),
        T0,
    );
    step(&mut iso, &store, T0);
    let metric = MetricKey::new(Upstream::Lightrag, Arm::Treatment);
    // t=0..500s: one attacker's id asks 500 questions LightRAG answers badly (quality 0.1).
    let attacker = KeyTag::from_raw(666);
    let counted = (0..500)
        .filter(|i| iso.record_request(metric, &lightrag_sample(0.1), attacker, T0 + i * SEC))
        .count();
    // Only its first 20 this hour count; the gate stays open (too few samples).
    assert_eq!(counted, 20);
    assert_eq!(iso.local_stats(T0 + 500 * SEC)[&metric].quality_count, 20);
    assert!(!flush_and_tick(&mut iso, &store, T0 + 500 * SEC));
    let st = iso.report(
        T0 + 500 * SEC,
        &Default::default(),
        &Default::default(),
        cmo_edge_router::core::report::status_document,
    );
    assert_eq!(st["key_limits"]["capped_samples"], 480);
    // Real users: 40 of them each get a bad answer: now the evidence is broad, and it closes.
    for user in 1..=40 {
        iso.record_request(
            metric,
            &lightrag_sample(0.1),
            KeyTag::from_raw(user),
            T0 + 501 * SEC,
        );
    }
    assert!(flush_and_tick(&mut iso, &store, T0 + 502 * SEC));
}

/// The `breaker/lightrag` writes `bg` hands out.
fn lightrag_writes(bg: &cmo_edge_router::core::fleet::Background) -> Vec<String> {
    bg.writes
        .iter()
        .filter(|w| w.key == "breaker/lightrag")
        .map(|w| w.value.clone())
        .collect()
}

#[test]
fn writes_of_one_key_are_handed_out_a_throttle_interval_apart_however_late_they_are_performed() {
    use cmo_edge_router::core::store::THROTTLE_INTERVAL_MS;
    // A transition recorded when no request ends soon after it (a stream's last chunk, a quiet
    // isolate) waits for the next background run. The throttle must count from when it hands
    // a write out, which is when the write is made, not from when the transition happened:
    // otherwise a transition 1.15 s after the first rides out in the same batch or right after
    // it, and KV sees two writes of one key well under a second apart (the soak saw 890 ms).
    let mut iso = isolate("a", vars(&[]), T0);
    let _ = iso.background(T0);
    // t=0: three users fail: open.
    for user in 1..=3 {
        fail_from(&mut iso, user, T0);
    }
    assert_eq!(lightrag_state(&iso, T0), BreakerState::Open);
    // t=1.15 s: an operator resets it (its snapshot goes through the throttle too).
    let mut handed_out: Vec<(u64, String)> = Vec::new();
    // The next requests end at 0.9 s, 1.15 s (just after the reset), then every 50 ms.
    let mut times = vec![T0 + 900, T0 + 1_150];
    times.extend((1..60).map(|i| T0 + 1_150 + 50 * i));
    for t in times {
        if t == T0 + 1_150 {
            iso.breaker_action(Upstream::Lightrag, BreakerAction::Reset, t)
                .unwrap();
        }
        for v in lightrag_writes(&iso.background(t)) {
            handed_out.push((t, v));
        }
    }
    let at: Vec<u64> = handed_out.iter().map(|(t, _)| *t).collect();
    assert_eq!(at.len(), 2, "the open state, then the reset: {at:?}");
    assert!(
        at[1] - at[0] >= THROTTLE_INTERVAL_MS,
        "handed out {} ms apart",
        at[1] - at[0]
    );
    let last: BreakerSnapshot = serde_json::from_str(&handed_out[1].1).unwrap();
    assert_eq!(
        last.state,
        BreakerState::Closed,
        "the latest state is written"
    );
}
