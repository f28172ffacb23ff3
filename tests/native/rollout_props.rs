//! Properties of the rollout (proptest): no plan input can crash the parser or build a plan
//! that could loop or move backwards, and no sequence of ticks and operations can break the
//! machine's invariants.

use cmo_edge_router::core::cohort::Percent;
use cmo_edge_router::core::rollout::event::HISTORY_LIMIT;
use cmo_edge_router::core::rollout::machine::TickInput;
use cmo_edge_router::core::rollout::plan::{Plan, MAX_STAGES};
use cmo_edge_router::core::rollout::request::{parse_plan, plan_from_value};
use cmo_edge_router::core::rollout::stage::MAX_STAGE_MS;
use cmo_edge_router::core::rollout::status::status;
use cmo_edge_router::core::rollout::strategy::{
    CanarySpec, ExponentialSpec, LinearSpec, PlanSpec, StrategySpec,
};
use cmo_edge_router::core::rollout::{
    ArmEvidence, Operation, PhaseName, Rollout, RolloutId, Routing, StageEvidence, Switches,
    TickOutcome,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Everything a valid plan promises.
fn check_plan(p: &Plan) {
    assert!(!p.stages().is_empty() && p.stages().len() <= MAX_STAGES);
    let mut prev = Percent::ZERO;
    for (i, s) in p.stages().iter().enumerate() {
        assert!(s.target_percentage > prev, "stage {i} does not increase");
        assert!(s.target_percentage <= Percent::FULL);
        assert!(s.min_duration_ms <= MAX_STAGE_MS);
        s.validate("").unwrap();
        prev = s.target_percentage;
    }
    p.safety().validate().unwrap();
}

const KEYS: &[&str] = &[
    "start_percentage",
    "increment",
    "stage_duration",
    "stage_duration_minutes",
    "final_percentage",
    "multiplier",
    "canary_percentage",
    "canary_duration",
    "auto_approve",
    "final_duration",
    "min_requests",
    "min_scored",
    "max_error_rate",
    "min_success_rate",
    "min_quality",
    "max_quality_drop",
    "max_latency_ratio",
    "max_breaker_trips",
    "max_no_context_rate",
    "min_shadow_samples",
    "auto_advance",
    "failure_limit",
    "emergency_error_rate",
    "emergency_min_requests",
    "emergency_quality",
    "emergency_min_scored",
    "target_percentage",
    "min_duration",
    "bogus",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5.0f64..150.0).prop_map(|v| json!(v)),
        (0.0f64..1.0).prop_map(|v| json!(v)),
        (0u64..200).prop_map(|v| json!(v)),
        any::<i64>().prop_map(|v| json!(v)),
        any::<f64>().prop_map(|v| json!(v)), // NaN/∞ become null
        Just(json!(1e308)),
        Just(json!(0.001)),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => number(),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
        1 => "[a-z0-9]{0,6}".prop_map(Value::String),
        1 => Just(json!([])),
        1 => Just(json!({})),
    ]
}

/// A value of the right type and roughly the right range for `key`, so that a good share of
/// the generated requests are valid plans (junk comes from [`scalar`]).
fn plausible(key: &'static str) -> BoxedStrategy<Value> {
    match key {
        "start_percentage" | "final_percentage" | "canary_percentage" | "target_percentage" => {
            prop_oneof![
                (0.01f64..=100.0).prop_map(|v| json!(v)),
                (1u64..=100).prop_map(|v| json!(v))
            ]
            .boxed()
        }
        "increment" => (0.5f64..60.0).prop_map(|v| json!(v)).boxed(),
        "multiplier" => (1.05f64..6.0).prop_map(|v| json!(v)).boxed(),
        "stage_duration"
        | "stage_duration_minutes"
        | "canary_duration"
        | "final_duration"
        | "min_duration" => (0.0f64..300.0).prop_map(|v| json!(v)).boxed(),
        "max_error_rate"
        | "min_success_rate"
        | "min_quality"
        | "max_quality_drop"
        | "max_no_context_rate"
        | "emergency_error_rate"
        | "emergency_quality" => (0.0f64..=1.0).prop_map(|v| json!(v)).boxed(),
        "max_latency_ratio" => (0.5f64..5.0).prop_map(|v| json!(v)).boxed(),
        "auto_approve" | "auto_advance" => any::<bool>().prop_map(Value::Bool).boxed(),
        "failure_limit" => (1u64..10).prop_map(|v| json!(v)).boxed(),
        _ => (0u64..500).prop_map(|v| json!(v)).boxed(),
    }
}

const GATE_KEYS: &[&str] = &[
    "min_requests",
    "min_scored",
    "max_error_rate",
    "min_success_rate",
    "min_quality",
    "max_quality_drop",
    "max_latency_ratio",
    "max_breaker_trips",
    "max_no_context_rate",
    "min_shadow_samples",
];
const SAFETY_KEYS: &[&str] = &[
    "failure_limit",
    "emergency_error_rate",
    "emergency_min_requests",
    "emergency_quality",
    "emergency_min_scored",
];

/// 0–`n` fields drawn from `keys` (mostly plausible values), plus, now and then, one field
/// from anywhere with any value.
fn fields_from(keys: Vec<&'static str>, n: usize) -> BoxedStrategy<Map<String, Value>> {
    let entry = prop::sample::select(keys)
        .prop_flat_map(|k| (Just(k), prop_oneof![6 => plausible(k), 1 => scalar()]));
    let junk = prop::option::weighted(0.1, (prop::sample::select(KEYS), scalar()));
    (prop::collection::vec(entry, 0..=n), junk)
        .prop_map(|(kv, junk)| {
            kv.into_iter()
                .chain(junk)
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        })
        .boxed()
}

fn keys(own: &[&'static str]) -> Vec<&'static str> {
    own.iter()
        .chain(GATE_KEYS)
        .chain(SAFETY_KEYS)
        .copied()
        .collect()
}

fn request() -> impl Strategy<Value = Value> {
    let with = |name: &'static str, f: BoxedStrategy<Map<String, Value>>| {
        f.prop_map(move |mut m| {
            m.insert("strategy".into(), json!(name));
            Value::Object(m)
        })
    };
    let step = fields_from(
        [
            "target_percentage",
            "target_percentage",
            "min_duration",
            "auto_advance",
        ]
        .iter()
        .chain(GATE_KEYS)
        .copied()
        .collect(),
        4,
    );
    let steps = (
        fields_from(keys(&["stage_duration", "auto_advance"]), 4),
        prop::collection::vec(step, 0..8),
    )
        .prop_map(|(mut m, stages)| {
            m.insert("strategy".into(), json!("steps"));
            m.insert(
                "stages".into(),
                Value::Array(stages.into_iter().map(Value::Object).collect()),
            );
            Value::Object(m)
        });
    let exponential = (
        fields_from(
            keys(&[
                "start_percentage",
                "multiplier",
                "stage_duration",
                "final_percentage",
                "auto_advance",
            ]),
            5,
        ),
        prop::option::of(fields_from(
            GATE_KEYS.iter().chain(&["min_duration"]).copied().collect(),
            3,
        )),
    )
        .prop_map(|(mut m, fin)| {
            m.insert("strategy".into(), json!("exponential"));
            if let Some(f) = fin {
                m.insert("final_stage".into(), Value::Object(f));
            }
            Value::Object(m)
        });
    prop_oneof![
        with(
            "linear",
            fields_from(
                keys(&[
                    "start_percentage",
                    "increment",
                    "stage_duration",
                    "final_percentage",
                    "auto_advance"
                ]),
                5
            )
        ),
        exponential,
        with(
            "canary",
            fields_from(
                keys(&[
                    "canary_percentage",
                    "canary_duration",
                    "auto_approve",
                    "final_percentage",
                    "final_duration"
                ]),
                5
            )
        ),
        steps,
        // Anything at all.
        (
            prop_oneof![Just(json!("blue_green")), Just(json!(3)), Just(Value::Null)],
            fields_from(KEYS.to_vec(), 6)
        )
            .prop_map(|(s, mut m)| {
                m.insert("strategy".into(), s);
                Value::Object(m)
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn any_plan_request_is_a_valid_plan_or_names_a_field(v in request()) {
        match plan_from_value(&v) {
            Ok(p) => check_plan(&p),
            Err(e) => {
                prop_assert!(!e.field.is_empty());
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn any_text_body_is_handled(body in "\\PC{0,200}") {
        if let Ok(p) = parse_plan(&body) {
            check_plan(&p);
        }
    }

    #[test]
    fn typed_specs_never_panic(
        a in any::<f64>(), b in any::<f64>(), c in any::<f64>(), d in any::<f64>(),
        small in 0.0f64..120.0, flag in any::<bool>(),
    ) {
        let specs = [
            StrategySpec::Linear(LinearSpec { start_percentage: a, increment: b, stage_duration_minutes: c, final_percentage: d }),
            StrategySpec::Linear(LinearSpec { start_percentage: small, increment: small / 7.0, ..LinearSpec::default() }),
            StrategySpec::Exponential(ExponentialSpec { start_percentage: small.min(a.abs()), multiplier: b, final_percentage: d, ..ExponentialSpec::default() }),
            StrategySpec::Exponential(ExponentialSpec { start_percentage: small / 1e3, multiplier: 1.0 + small / 1e3, ..ExponentialSpec::default() }),
            StrategySpec::Canary(CanarySpec { canary_percentage: a, canary_duration_minutes: c, auto_approve: flag, final_percentage: small, final_duration_minutes: d }),
        ];
        for s in specs {
            if let Ok(p) = PlanSpec::new(s).build() {
                check_plan(&p);
            }
        }
    }
}

/// What the property test does to the rollout.
#[derive(Debug, Clone)]
enum Action {
    /// Advance the clock by `minutes` and tick with this evidence.
    Tick {
        minutes: u64,
        t: (u64, u64, u64, u8),
        c: (u64, u64),
        trips: u64,
        skew: bool,
    },
    Start(usize),
    Approve,
    Advance,
    Pause,
    Resume,
    Rollback,
    /// Read the state back from its JSON (an isolate restart).
    Restart,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        // Mostly healthy evidence (so rollouts live long enough to advance, pause, complete) …
        12 => (0u64..6, (0u64..400, 0u64..4, 0u64..400, 65u8..=100), (0u64..1_000, 0u64..10), prop::sample::select(vec![0u64, 0, 0, 1, 2]), prop::bool::weighted(0.05))
            .prop_map(|(minutes, t, c, trips, skew)| Action::Tick { minutes, t, c, trips, skew }),
        // … and sometimes anything.
        2 => (0u64..6, (0u64..400, 0u64..40, 0u64..400, 0u8..=100), (0u64..1_000, 0u64..40), 0u64..3, any::<bool>())
            .prop_map(|(minutes, t, c, trips, skew)| Action::Tick { minutes, t, c, trips, skew }),
        2 => (0usize..4).prop_map(Action::Start),
        1 => Just(Action::Approve),
        1 => Just(Action::Advance),
        1 => Just(Action::Pause),
        1 => Just(Action::Resume),
        1 => Just(Action::Rollback),
        1 => Just(Action::Restart),
    ]
}

fn plans() -> Vec<Plan> {
    [
        json!({"strategy": "steps", "stage_duration": 2, "min_requests": 20, "failure_limit": 2,
               "stages": [{"target_percentage": 0.5}, {"target_percentage": 10, "auto_advance": false}, {"target_percentage": 60}, {"target_percentage": 100}]}),
        json!({"strategy": "canary", "canary_duration": 3, "final_duration": 1, "min_requests": 10}),
        json!({"strategy": "linear", "increment": 30, "stage_duration": 1, "min_requests": 5, "min_quality": 0.3}),
        json!({"strategy": "exponential", "start_percentage": 10, "stage_duration": 0, "min_requests": 1, "failure_limit": 1}),
    ]
    .iter()
    .map(|v| plan_from_value(v).unwrap())
    .collect()
}

fn arm(requests: u64, errors: u64, scored: u64, quality: u8) -> ArmEvidence {
    let errors = errors.min(requests);
    ArmEvidence {
        requests,
        successes: requests - errors,
        errors,
        scored,
        quality_mean: (scored > 0).then(|| f64::from(quality) / 100.0),
        latency_p95_ms: (requests > 0).then_some(1_000 + errors * 10),
        no_context: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn machine_invariants_hold_under_any_sequence(
        actions in prop::collection::vec(action(), 1..120),
        switches in (any::<bool>(), any::<bool>(), any::<bool>()),
    ) {
        let plans = plans();
        let switches = Switches { ab_testing: switches.0, performance_comparison: switches.1, quality_metrics: switches.2 };
        let mut r = Rollout::new();
        let mut now = 1_700_000_000_000u64;
        let mut starts = 0u32;
        for a in actions {
            let before = r.clone();
            let mut ticked = None;
            match a {
                Action::Tick { minutes, t, c, trips, skew } => {
                    now += minutes * 60_000;
                    let pct = r.current_percentage();
                    let ev = StageEvidence {
                        treatment: arm(if skew { t.0 / 3 } else { t.0 }, t.1, t.2, t.3),
                        control: arm(c.0, c.1, c.0 / 2, 70),
                        breaker_trips: trips,
                        expected_treatment_percentage: pct,
                        shadow_samples: None,
                    };
                    ticked = Some(r.tick(&TickInput { evidence: &ev, switches: &switches, now_ms: now }));
                }
                Action::Start(i) => {
                    starts += 1;
                    let id = RolloutId::try_new(format!("r-{starts}")).unwrap();
                    let _ = r.apply(Operation::Start { rollout_id: id, plan: plans[i].clone() }, now);
                }
                Action::Approve => { let _ = r.apply(Operation::Approve, now); }
                Action::Advance => { let _ = r.apply(Operation::Advance, now); }
                Action::Pause => { let _ = r.apply(Operation::Pause, now); }
                Action::Resume => { let _ = r.apply(Operation::Resume, now); }
                Action::Rollback => { let _ = r.apply(Operation::Rollback { note: None }, now); }
                Action::Restart => {
                    let back = Rollout::from_json(&r.to_json()).unwrap();
                    prop_assert_eq!(&back, &r);
                    r = back;
                }
            }

            // The document always reads back as the same rollout.
            prop_assert_eq!(&Rollout::from_json(&r.to_json()).unwrap(), &r);
            // Revision never goes back; history stays bounded.
            prop_assert!(r.revision() >= before.revision());
            prop_assert!(r.history().len() <= HISTORY_LIMIT);
            // Percentage and routing agree with the phase.
            let pct = r.current_percentage();
            match r.phase_name() {
                PhaseName::Idle => prop_assert_eq!(r.routing(), Routing::Inactive),
                PhaseName::RolledBack => {
                    prop_assert_eq!(pct, Percent::ZERO);
                    prop_assert_eq!(r.routing(), Routing::RolledBack);
                }
                _ => {
                    let run = r.run().unwrap();
                    prop_assert!(run.stage_index < run.plan.len());
                    prop_assert_eq!(pct, run.stage().target_percentage);
                    prop_assert_eq!(r.routing(), Routing::Percentage(pct));
                }
            }
            let st = status(&r, now);
            prop_assert_eq!(st.phase, r.phase_name());

            if let Some(out) = ticked {
                let same_run = before.run().map(|x| (&x.rollout_id, x.started_at))
                    == r.run().map(|x| (&x.rollout_id, x.started_at));
                prop_assert!(same_run, "a tick never starts a rollout");
                match before.phase_name() {
                    // Finished or never started: a tick changes nothing but nothing.
                    PhaseName::Idle | PhaseName::Completed | PhaseName::RolledBack => {
                        prop_assert_eq!(&out, &TickOutcome::Inactive);
                        prop_assert_eq!(&r, &before);
                    }
                    // Paused: never advances; only an emergency rollback moves it.
                    PhaseName::Paused => match &out {
                        TickOutcome::Hold(_) => {
                            prop_assert_eq!(r.phase_name(), PhaseName::Paused);
                            prop_assert_eq!(r.run().unwrap().stage_index, before.run().unwrap().stage_index);
                        }
                        TickOutcome::Rollback(_) => prop_assert_eq!(r.phase_name(), PhaseName::RolledBack),
                        other => prop_assert!(false, "paused rollout did {other:?}"),
                    },
                    // Running: the percentage never decreases unless rolled back.
                    PhaseName::Progressing | PhaseName::AwaitingApproval => match &out {
                        TickOutcome::Rollback(t) => {
                            prop_assert_eq!(pct, Percent::ZERO);
                            prop_assert_eq!(t.to_percentage, Percent::ZERO);
                        }
                        TickOutcome::Advance(t) => {
                            prop_assert!(pct > before.current_percentage());
                            prop_assert_eq!(t.to_percentage, pct);
                        }
                        TickOutcome::Hold(_) | TickOutcome::AwaitApproval(_) | TickOutcome::Complete(_) => {
                            prop_assert_eq!(pct, before.current_percentage());
                        }
                        TickOutcome::Inactive => prop_assert!(false, "running rollout reported inactive"),
                    },
                }
            }
            // Operations other than start never raise the percentage of a rolled-back rollout
            // or restart a finished one.
            if before.phase_name() == PhaseName::RolledBack && r.phase_name() != PhaseName::RolledBack {
                prop_assert_eq!(r.phase_name(), PhaseName::Progressing);
                prop_assert!(r.history().last().unwrap().event == cmo_edge_router::core::rollout::EventKind::Started);
            }
        }
    }
}
