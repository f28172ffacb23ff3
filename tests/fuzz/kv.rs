//! KV-payload targets: every document another isolate, an older or newer build, or an operator
//! with `wrangler kv key put` may leave in Workers KV — breaker snapshots, the override set,
//! metrics flushes, the controller's `rollout/state`, the rollout machine's state document and
//! its operator commands — and the admin rollout plan request.
//!
//! What must hold: no panic (a panic kills the isolate on every refresh until the key changes);
//! a corrupt value is refused with a message naming the key, never half-adopted; an accepted
//! document serialises back to one that reads as the same thing; and the code that runs on what
//! was read (breaker merge and admission, the cron controller's pass, a rollout tick, the status
//! view) stays within its bounds.

use crate::gen::{any_json, close, edge_number, hostile_string, object, scalar, stored};
use crate::memory_store::MemoryStore;
use cmo_edge_router::core::breaker::{Breaker, BreakerSnapshot, BreakerState};
use cmo_edge_router::core::classify::QueryType;
use cmo_edge_router::core::config;
use cmo_edge_router::core::controller::{
    controller_tick, ControllerDoc, ControllerInput, CONTROLLER_KEY,
};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use cmo_edge_router::core::rollout::machine::TickInput;
use cmo_edge_router::core::rollout::request::{parse_plan, plan_from_value};
use cmo_edge_router::core::rollout::status::status;
use cmo_edge_router::core::rollout::{
    ArmEvidence, Command, Operation, Rollout, RolloutId, StageEvidence, Switches,
};
use cmo_edge_router::core::store::{self, MetricsFlush, CONFIG_KEY};
use cmo_edge_router::core::window::{MetricKey, Sample, Window};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

/// Drives a future whose I/O is the in-memory store (always ready) to completion.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Times near the present, near zero and near the end of `u64`.
fn time() -> BoxedStrategy<u64> {
    prop_oneof![
        4 => 1_700_000_000_000u64..1_800_000_000_000,
        1 => 0u64..1_000_000,
        1 => (u64::MAX - 1_000_000)..=u64::MAX,
        1 => any::<u64>(),
    ]
    .boxed()
}

fn big() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (0u64..100).prop_map(|v| json!(v)),
        2 => time().prop_map(|v| json!(v)),
        1 => prop::sample::select(vec![u64::MAX, u64::MAX - 1, 1 << 53, (1 << 53) + 1]).prop_map(|v| json!(v)),
        1 => edge_number(),
        1 => scalar(),
    ]
    .boxed()
}

// ---- breaker snapshots -------------------------------------------------------------------

fn snapshot_doc() -> BoxedStrategy<Value> {
    let state = prop_oneof![
        6 => prop::sample::select(vec!["closed", "open", "half_open"]).prop_map(|s| json!(s)),
        1 => prop::sample::select(vec!["OPEN", "halfopen", ""]).prop_map(|s| json!(s)),
    ]
    .boxed();
    object(vec![
        ("state", state),
        ("open_until_ms", big()),
        ("generation", big()),
        ("trips", big()),
        ("updated_ms", big()),
    ])
}

#[derive(Debug, Clone)]
enum BreakerStep {
    Record(bool, u64),
    Admit(f64),
    ForceOpen(u64),
    Reset,
    Wait(u64),
}

fn breaker_steps() -> BoxedStrategy<Vec<BreakerStep>> {
    prop::collection::vec(
        prop_oneof![
            6 => (any::<bool>(), 0u64..20_000).prop_map(|(f, l)| BreakerStep::Record(f, l)),
            3 => (0.0f64..1.0).prop_map(BreakerStep::Admit),
            1 => prop_oneof![0u64..600_000, Just(u64::MAX)].prop_map(BreakerStep::ForceOpen),
            1 => Just(BreakerStep::Reset),
            3 => prop_oneof![0u64..1_000_000, Just(u64::MAX)].prop_map(BreakerStep::Wait),
        ],
        0..12,
    )
    .boxed()
}

fn run_steps(b: &mut Breaker, steps: &[BreakerStep], now: &mut u64) {
    for s in steps {
        match s {
            BreakerStep::Record(failed, latency) => {
                let kind = if *failed {
                    OutcomeKind::HttpServerError(503)
                } else {
                    OutcomeKind::Success
                };
                // A handful of callers, so the distinct-key rules are exercised too.
                let key = KeyTag::from_raw(*latency % 5);
                b.record(&Outcome::new(kind, *latency), key, *now, 0.5);
            }
            BreakerStep::Admit(roll) => {
                b.admit(*now, *roll);
            }
            BreakerStep::ForceOpen(d) => {
                b.force_open(*now, *d);
            }
            BreakerStep::Reset => {
                b.reset(*now);
            }
            BreakerStep::Wait(d) => *now = now.saturating_add(*d),
        }
        let _ = b.state(*now);
        let _ = b.status(*now);
    }
}

/// A snapshot read from KV, merged into a breaker with some history, which then keeps running.
pub fn breaker_snapshot() {
    crate::harness::run(
        "kv_breaker_snapshot",
        (
            stored(snapshot_doc()),
            breaker_steps(),
            breaker_steps(),
            time(),
        ),
        |(text, before, after, start)| {
            let snap: BreakerSnapshot =
                match store::parse_value(&store::breaker_key(Upstream::Lightrag), &text) {
                    Ok(s) => s,
                    Err(e) => {
                        prop_assert!(
                            e.to_string().contains("breaker/lightrag"),
                            "warning names no key: {e}"
                        );
                        return Ok(());
                    }
                };
            let back: BreakerSnapshot =
                serde_json::from_str(&serde_json::to_string(&snap).map_err(fail)?).map_err(fail)?;
            prop_assert_eq!(back, snap);
            let mut b = Breaker::new(config::defaults().breaker);
            let mut now = start;
            run_steps(&mut b, &before, &mut now);
            let own = b.snapshot().generation;
            let adopted = b.merge_remote(&snap, now);
            prop_assert_eq!(adopted, snap.generation > own);
            if adopted {
                prop_assert_eq!(b.snapshot().generation, snap.generation);
                if snap.state == BreakerState::Closed {
                    prop_assert_eq!(b.state(now), BreakerState::Closed);
                }
            }
            let g = b.snapshot().generation;
            run_steps(&mut b, &after, &mut now);
            prop_assert!(b.snapshot().generation >= g, "generation went backwards");
            let written = serde_json::to_string(&b.snapshot()).map_err(fail)?;
            let read: BreakerSnapshot = serde_json::from_str(&written).map_err(fail)?;
            prop_assert_eq!(read, b.snapshot());
            Ok(())
        },
    );
}

// ---- the override set, metrics flushes and rollout/state: the refresh and the cron -------

fn sample(kind: u8, latency: u64, q: Option<f64>) -> Sample {
    let kind = match kind % 5 {
        0 => OutcomeKind::HttpServerError(500),
        1 => OutcomeKind::TruncatedStream,
        _ => OutcomeKind::Success,
    };
    Sample {
        kind,
        latency_ms: latency,
        fallback: latency.is_multiple_of(7),
        quality: q,
        no_context: latency.is_multiple_of(3),
        query_type: QueryType::ALL.get((latency % 6) as usize).copied(),
        total_ms: latency
            .is_multiple_of(2)
            .then_some(latency.saturating_mul(3)),
    }
}

/// Real flushes: windows filled by recording samples, serialised as an isolate writes them.
fn flush_doc() -> BoxedStrategy<Value> {
    let samples = prop::collection::vec(
        (
            any::<u8>(),
            0u64..120_000,
            prop::option::of(prop_oneof![0.0f64..=1.0, any::<f64>()]),
            0u64..7_200_000,
        ),
        0..20,
    );
    let geometry = prop_oneof![
        4 => Just((60_000u64, 60usize)),
        1 => (1u64..1_000_000, 1usize..1_441),
    ];
    (
        hostile_string(),
        time(),
        geometry,
        samples,
        prop::collection::vec(any::<prop::sample::Index>(), 1..4),
    )
        .prop_map(|(isolate, flushed, (bucket, len), samples, keys)| {
            let all: Vec<MetricKey> = MetricKey::all().collect();
            let mut windows = cmo_edge_router::core::sorted_map::SortedMap::new();
            for k in keys {
                let key = all[k.index(all.len())];
                let mut w = Window::try_new(bucket, len).unwrap_or_default();
                for (kind, lat, q, dt) in &samples {
                    w.record(flushed.saturating_sub(*dt), &sample(*kind, *lat, *q));
                }
                windows.insert(key, w);
            }
            // A shadow window too, on some flushes (the same samples).
            let shadow = (flushed % 2 == 0).then(|| {
                let mut w = Window::try_new(bucket, len).unwrap_or_default();
                for (kind, lat, q, dt) in &samples {
                    w.record(flushed.saturating_sub(*dt), &sample(*kind, *lat, *q));
                }
                w
            });
            serde_json::to_value(MetricsFlush {
                isolate,
                flushed_ms: flushed,
                windows,
                split: None,
                reasons: Default::default(),
                shadow,
            })
            .unwrap_or(Value::Null)
        })
        .boxed()
}

fn overrides_doc() -> BoxedStrategy<Value> {
    object(vec![
        ("version", big()),
        (
            "overrides",
            prop::collection::vec(
                (prop::sample::select(config::KNOWN_VARIABLES), scalar()),
                0..5,
            )
            .prop_map(|kv| {
                json!(kv
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<serde_json::Map<_, _>>())
            })
            .boxed(),
        ),
        ("updated_ms", big()),
    ])
}

/// One controller tick with the default config.
fn tick(s: &MemoryStore, now: u64, max_ops: u32) -> cmo_edge_router::core::controller::TickReport {
    let c = config::defaults();
    block_on(controller_tick(
        s,
        &ControllerInput {
            now_ms: now,
            config: &c,
            max_ops,
        },
    ))
}

/// `controller/state` as the controller writes it, after ticks over random flushes.
fn controller_doc_corpus() -> &'static [Value] {
    static CORPUS: OnceLock<Vec<Value>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out = vec![serde_json::to_value(ControllerDoc::default()).unwrap_or(Value::Null)];
        let s = MemoryStore::new();
        let mut now = 1_700_000_000_000u64;
        for i in 0..40u64 {
            let mut w = Window::default();
            for j in 0..(i * 7 % 50) {
                w.record(
                    now - j * 1_000,
                    &sample(
                        (i + j) as u8,
                        100 + j * 37,
                        Some(((i * j) % 100) as f64 / 100.0),
                    ),
                );
            }
            let mut windows = cmo_edge_router::core::sorted_map::SortedMap::new();
            windows.insert(
                MetricKey::all().nth((i % 4) as usize).unwrap_or_else(|| {
                    MetricKey::new(
                        Upstream::Lightrag,
                        cmo_edge_router::core::model::Arm::Treatment,
                    )
                }),
                w,
            );
            let shadow = (i % 3 == 0)
                .then(|| windows.values().next().cloned())
                .flatten();
            let f = MetricsFlush {
                isolate: format!("i{i}"),
                flushed_ms: now,
                windows,
                split: None,
                reasons: Default::default(),
                shadow,
            };
            s.insert(
                &store::metrics_key(&format!("i{i}")),
                &serde_json::to_string(&f).unwrap_or_default(),
            );
            tick(&s, now, 8 + (i % 5) as u32 * 4);
            if let Some(t) = s.value(CONTROLLER_KEY) {
                out.push(serde_json::from_str(&t).unwrap_or(Value::Null));
            }
            now += 60_000;
        }
        out
    })
}

/// A refresh (`load_remote`) and a controller tick over whatever KV holds.
pub fn store_documents() {
    let flushes = prop::collection::vec(stored(flush_doc()), 0..4);
    let rollout = stored(prop::sample::select(controller_doc_corpus()).boxed());
    crate::harness::run(
        "kv_store_documents",
        (
            stored(overrides_doc()),
            stored(snapshot_doc()),
            rollout,
            flushes,
            time(),
            3u32..40,
        ),
        |(overrides, breaker, rollout, flushes, now, max_ops)| {
            let s = MemoryStore::new();
            s.insert(CONFIG_KEY, &overrides);
            s.insert(&store::breaker_key(Upstream::Lightrag), &breaker);
            s.insert(CONTROLLER_KEY, &rollout);
            let mut corrupt = 0;
            for (i, f) in flushes.iter().enumerate() {
                s.insert(&store::metrics_key(&format!("iso{i}")), f);
                corrupt += u64::from(store::parse_value::<MetricsFlush>("m", f).is_err());
            }
            let remote = block_on(store::load_remote(&s));
            for w in &remote.warnings {
                prop_assert!(w.contains('`'), "warning names no key: {w}");
            }
            if let Some(doc) = &remote.overrides {
                let l = config::load(&serde_json::Map::new(), Some(&doc.overrides), doc.version);
                prop_assert_eq!(l.config.version, doc.version);
            }
            let rep = tick(&s, now, max_ops);
            prop_assert!(
                rep.ops <= max_ops.max(cmo_edge_router::core::controller::tick::FIXED_OPS),
                "controller used {} of {max_ops} ops",
                rep.ops
            );
            if rep.completed && rep.keys_read == flushes.len() as u64 {
                prop_assert_eq!(rep.corrupt, corrupt);
            }
            let written = s.value(CONTROLLER_KEY).unwrap_or_default();
            if rep.skipped.is_some() {
                // A controller/state that does not read is reported and never overwritten.
                prop_assert_eq!(&written, &rollout, "a skipped tick wrote controller/state");
                prop_assert!(!rep.warnings.is_empty(), "a skipped tick says why");
                return Ok(());
            }
            let doc: ControllerDoc = store::parse_value(CONTROLLER_KEY, &written).map_err(fail)?;
            let text = serde_json::to_string(&doc).map_err(fail)?;
            let again: ControllerDoc = serde_json::from_str(&text).map_err(fail)?;
            // Means computed from hostile counts can need 17 digits (serde_json's last-place
            // rounding applies); everything else must read back exactly. Compared as parsed
            // JSON text: the u128 sums of squares may exceed u64 (merged minutes of hostile
            // counts), which `serde_json::to_value` cannot hold.
            let (a, b): (Value, Value) = (
                serde_json::from_str(&serde_json::to_string(&again).map_err(fail)?)
                    .map_err(fail)?,
                serde_json::from_str(&text).map_err(fail)?,
            );
            prop_assert!(
                close(&a, &b),
                "controller/state does not round-trip:\n{a}\n{b}"
            );
            prop_assert_eq!(doc.updated_ms, now);
            Ok(())
        },
    );
}

// ---- the rollout machine: state document, commands, plan requests ------------------------

fn plans() -> Vec<Value> {
    vec![
        json!({"strategy": "steps", "stage_duration": 2, "min_requests": 20, "failure_limit": 2,
               "stages": [{"target_percentage": 0.5}, {"target_percentage": 10, "auto_advance": false}, {"target_percentage": 100}]}),
        json!({"strategy": "canary", "canary_duration": 3, "final_duration": 1, "min_requests": 10}),
        json!({"strategy": "linear", "increment": 30, "stage_duration": 1, "min_requests": 5, "min_quality": 0.3}),
        json!({"strategy": "exponential", "start_percentage": 10, "stage_duration": 0, "min_requests": 1, "failure_limit": 1,
               "final_stage": {"min_duration": 1, "min_requests": 2}}),
    ]
}

fn arm(requests: u64, errors: u64, quality: u64) -> ArmEvidence {
    let errors = errors.min(requests);
    ArmEvidence {
        requests,
        successes: requests - errors,
        errors,
        scored: requests / 2,
        quality_mean: Some(quality as f64 / 100.0),
        latency_p95_ms: Some(1_000 + errors * 10),
        no_context: None,
    }
}

/// Rollout states reached by driving the machine: every phase, with history and commands.
fn rollout_state_corpus() -> &'static [(Value, Vec<Value>)] {
    static CORPUS: OnceLock<Vec<(Value, Vec<Value>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let plans: Vec<_> = plans()
            .iter()
            .filter_map(|p| plan_from_value(p).ok())
            .collect();
        let mut out = Vec::new();
        let switches = Switches {
            ab_testing: true,
            performance_comparison: true,
            quality_metrics: true,
        };
        for (pi, plan) in plans.iter().enumerate() {
            for script in 0..6u64 {
                let mut r = Rollout::new();
                let mut now = 1_700_000_000_000u64;
                let mut commands = Vec::new();
                let id = RolloutId::try_new(format!("r-{pi}-{script}")).unwrap_or_else(|_| {
                    RolloutId::try_new("r-x").unwrap_or_else(|_| unreachable!())
                });
                let ops = [
                    Operation::Start {
                        rollout_id: id,
                        plan: plan.clone(),
                    },
                    Operation::Pause,
                    Operation::Resume,
                    Operation::Approve,
                    Operation::Advance,
                    Operation::Rollback {
                        note: Some("fuzz".into()),
                    },
                ];
                for (k, op) in ops.into_iter().enumerate() {
                    if k as u64 > script + 1 {
                        break;
                    }
                    if let Ok(cid) = cmo_edge_router::core::rollout::CommandId::try_new(format!(
                        "c-{pi}-{script}-{k}"
                    )) {
                        let c = Command {
                            id: cid,
                            issued_at: now,
                            op: op.clone(),
                        };
                        commands.push(serde_json::from_str(&c.to_json()).unwrap_or(Value::Null));
                        r.apply_commands(&[c], now);
                    }
                    for t in 0..(script * 2) {
                        now += 60_000;
                        let ev = StageEvidence {
                            treatment: arm(50 + t * 10, t % 3, 60 + t),
                            control: arm(500, 2, 70),
                            breaker_trips: 0,
                            expected_treatment_percentage: r.current_percentage(),
                            shadow_samples: None,
                        };
                        r.tick(&TickInput {
                            evidence: &ev,
                            switches: &switches,
                            now_ms: now,
                        });
                    }
                    out.push((
                        serde_json::from_str(&r.to_json()).unwrap_or(Value::Null),
                        commands.clone(),
                    ));
                }
            }
        }
        out
    })
}

fn evidence() -> BoxedStrategy<StageEvidence> {
    // Means come from window stats (finite; a hostile flush can push them to ~1e13, not past).
    let mean = prop_oneof![3 => 0.0f64..=1.0, 1 => -1e20f64..1e20];
    let arm = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        prop::option::of(mean),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(requests, successes, errors, scored, quality_mean, latency_p95_ms)| ArmEvidence {
                requests,
                successes,
                errors,
                scored,
                quality_mean,
                latency_p95_ms,
                no_context: None,
            },
        );
    let small = (0u64..2_000, 0u64..100, 0u64..=100).prop_map(|(r, e, q)| arm_small(r, e, q));
    let any_arm = prop_oneof![3 => small, 1 => arm].boxed();
    (
        any_arm.clone(),
        any_arm,
        any::<u64>(),
        0u16..=10_000,
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(treatment, control, breaker_trips, pct, shadow_samples)| StageEvidence {
                treatment,
                control,
                breaker_trips: breaker_trips % 4,
                expected_treatment_percentage:
                    cmo_edge_router::core::cohort::Percent::from_hundredths(pct)
                        .unwrap_or(cmo_edge_router::core::cohort::Percent::ZERO),
                shadow_samples,
            },
        )
        .boxed()
}

fn arm_small(r: u64, e: u64, q: u64) -> ArmEvidence {
    arm(r, e, q)
}

/// A state this build wrote reads back as exactly the same rollout. One that came from
/// elsewhere may hold 17-digit floats, which `serde_json` (without `float_roundtrip`) may read
/// one unit in the last place off: those must read back the same to within that.
fn same_rollout(back: &Rollout, r: &Rollout, exact: bool) -> Result<(), TestCaseError> {
    if exact {
        prop_assert_eq!(back, r, "state does not round-trip");
    } else {
        let (a, b) = (
            serde_json::to_value(back.to_json()).map_err(fail)?,
            serde_json::to_value(r.to_json()).map_err(fail)?,
        );
        let (a, b): (Value, Value) = (
            serde_json::from_str(a.as_str().unwrap_or_default()).map_err(fail)?,
            serde_json::from_str(b.as_str().unwrap_or_default()).map_err(fail)?,
        );
        prop_assert!(close(&a, &b), "state does not round-trip:\n{a}\n{b}");
    }
    Ok(())
}

/// The state document read back (after a restart, or hand-edited), then commands and a tick.
pub fn rollout_state() {
    let doc = prop::sample::select(rollout_state_corpus())
        .prop_map(|(v, _)| v.clone())
        .boxed();
    // As this build wrote it (must round-trip exactly), or edited / damaged by anyone else.
    let doc = prop_oneof![
        1 => doc.clone().prop_map(|v| (v.to_string(), true)),
        3 => stored(doc).prop_map(|t| (t, false)),
    ];
    let commands = prop::sample::select(rollout_state_corpus())
        .prop_flat_map(|(_, cmds)| {
            let cmds = cmds.clone();
            prop::collection::vec(
                stored(
                    prop::sample::select(if cmds.is_empty() {
                        vec![Value::Null]
                    } else {
                        cmds
                    })
                    .boxed(),
                ),
                0..3,
            )
        })
        .boxed();
    crate::harness::run(
        "kv_rollout_state",
        (
            doc,
            commands,
            evidence(),
            time(),
            any::<(bool, bool, bool)>(),
        ),
        |((text, pristine), commands, ev, now, sw)| {
            let mut r = match Rollout::from_json(&text) {
                Ok(r) => r,
                Err(e) => {
                    prop_assert!(!e.to_string().trim().is_empty());
                    return Ok(());
                }
            };
            let back = Rollout::from_json(&r.to_json())
                .map_err(|e| fail(format!("written state refused: {e}")))?;
            same_rollout(&back, &r, pristine)?;
            let cmds: Vec<Command> = commands
                .iter()
                .filter_map(|c| Command::from_json(c).ok())
                .collect();
            for c in &cmds {
                let again = Command::from_json(&c.to_json())
                    .map_err(|e| fail(format!("written command refused: {e}")))?;
                prop_assert_eq!(&again, c);
            }
            let before = r.revision();
            r.apply_commands(&cmds, now);
            let switches = Switches {
                ab_testing: sw.0,
                performance_comparison: sw.1,
                quality_metrics: sw.2,
            };
            r.tick(&TickInput {
                evidence: &ev,
                switches: &switches,
                now_ms: now,
            });
            prop_assert!(r.revision() >= before);
            let _ = status(&r, now);
            let again = Rollout::from_json(&r.to_json())
                .map_err(|e| fail(format!("state after a tick refused: {e}")))?;
            same_rollout(&again, &r, pristine)?;
            Ok(())
        },
    );
}

/// `POST /admin/rollout` bodies: a valid plan or an error naming the field.
pub fn rollout_plan_request() {
    let corpus = prop_oneof![
        prop::sample::select(plans()),
        object(vec![
            (
                "strategy",
                prop::sample::select(vec!["linear", "exponential", "canary", "steps", "blue"])
                    .prop_map(|s| json!(s))
                    .boxed()
            ),
            ("start_percentage", big()),
            ("increment", big()),
            ("multiplier", big()),
            ("stage_duration", big()),
            ("final_percentage", big()),
            ("canary_percentage", big()),
            ("min_requests", big()),
            ("max_error_rate", edge_number()),
            (
                "stages",
                prop::collection::vec(
                    object(vec![("target_percentage", big()), ("min_duration", big())]),
                    0..5
                )
                .prop_map(Value::Array)
                .boxed()
            ),
            ("final_stage", any_json()),
        ]),
    ]
    .boxed();
    crate::harness::run("rollout_plan_request", stored(corpus), |body| {
        match parse_plan(&body) {
            Ok(p) => {
                prop_assert!(!p.stages().is_empty());
                let back: cmo_edge_router::core::rollout::Plan =
                    serde_json::from_str(&serde_json::to_string(&p).map_err(fail)?)
                        .map_err(fail)?;
                prop_assert_eq!(back, p);
            }
            Err(e) => {
                prop_assert!(!e.field.is_empty(), "error names no field: {e:?}");
                prop_assert!(!e.message.trim().is_empty());
            }
        }
        Ok(())
    });
}
