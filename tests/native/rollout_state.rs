//! The stored document: round trips in every phase, restarts that keep the stage clock, and
//! corrupt input that is an error — never a default state.

use super::rollout_support;

use cmo_edge_router::core::rollout::status::status;
use cmo_edge_router::core::rollout::{Operation, PhaseName, Rollout, TickOutcome};
use proptest::prelude::*;
use rollout_support::{Sim, Traffic, MIN};
use serde_json::{json, Value};

fn round_trip(r: &Rollout) {
    let back = Rollout::from_json(&r.to_json()).unwrap();
    assert_eq!(&back, r);
    assert_eq!(back.to_json(), r.to_json());
}

/// A rollout in each phase, each with evaluations and history.
fn every_phase() -> Vec<Rollout> {
    let healthy = Traffic::healthy(200.0);
    let mut out = vec![Rollout::new()];
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "canary", "min_quality": 0.5}));
    sim.run(30, &healthy);
    out.push(sim.rollout.clone()); // progressing, mid-stage, evaluated
    sim.rollout.apply(Operation::Pause, sim.now).unwrap();
    sim.run(5, &healthy);
    out.push(sim.rollout.clone()); // paused → progressing
    sim.rollout.apply(Operation::Resume, sim.now).unwrap();
    sim.run(100, &healthy);
    assert_eq!(sim.phase(), PhaseName::AwaitingApproval);
    out.push(sim.rollout.clone()); // awaiting approval
    sim.rollout.apply(Operation::Pause, sim.now).unwrap();
    out.push(sim.rollout.clone()); // paused → awaiting approval
    sim.rollout.apply(Operation::Resume, sim.now).unwrap();
    sim.rollout.apply(Operation::Approve, sim.now).unwrap();
    sim.run(70, &healthy);
    assert_eq!(sim.phase(), PhaseName::Completed);
    out.push(sim.rollout.clone());
    sim.rollout
        .apply(
            Operation::Rollback {
                note: Some("n".into()),
            },
            sim.now,
        )
        .unwrap();
    out.push(sim.rollout.clone()); // rolled back by an operator
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    sim.run(
        20,
        &Traffic {
            treatment_error_rate: 0.07,
            ..healthy
        },
    );
    assert_eq!(sim.phase(), PhaseName::RolledBack);
    out.push(sim.rollout.clone()); // rolled back on the failure limit
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    sim.run(
        2,
        &Traffic {
            treatment_error_rate: 0.5,
            ..Traffic::healthy(2_000.0)
        },
    );
    out.push(sim.rollout.clone()); // rolled back on an emergency
    out
}

#[test]
fn the_document_round_trips_in_every_phase() {
    let all = every_phase();
    let phases: Vec<PhaseName> = all.iter().map(|r| r.phase_name()).collect();
    use PhaseName::*;
    assert_eq!(
        phases,
        vec![
            Idle,
            Progressing,
            Paused,
            AwaitingApproval,
            Paused,
            Completed,
            RolledBack,
            RolledBack,
            RolledBack
        ]
    );
    for r in &all {
        round_trip(r);
    }
}

#[test]
fn the_document_names_what_operators_look_for() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    sim.run(75, &Traffic::healthy(200.0));
    let v: Value = serde_json::from_str(&sim.rollout.to_json()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["rollout_id"], "r-test");
    assert_eq!(v["phase"], "progressing");
    assert_eq!(v["strategy"], "linear");
    assert_eq!(v["current_stage_index"], 1);
    assert_eq!(v["current_percentage"], 15.0);
    assert_eq!(v["started_at"], rollout_support::T0);
    assert_eq!(v["stage_started_at"], rollout_support::T0 + 60 * MIN);
    assert_eq!(v["failure_streak"], 0);
    let gates = v["last_evaluation"]["gates"].as_array().unwrap();
    let err = gates.iter().find(|g| g["name"] == "error_rate").unwrap();
    assert_eq!(err["status"], "pass");
    assert_eq!(err["threshold"], 0.05);
    assert!(err["observed"].as_f64().unwrap() > 0.0);
    assert_eq!(v["history"][0]["event"], "started");
    assert_eq!(v["history"][1]["event"], "stage_advanced");
    assert_eq!(v["plan"]["stages"].as_array().unwrap().len(), 11);
}

#[test]
fn a_restart_every_minute_changes_nothing() {
    // Two controllers on the same timeline; one reads its state back from JSON before every
    // tick (a fresh isolate each minute). They must make the same decisions at the same times.
    let traffic = |m: u64| {
        if (200..230).contains(&m) {
            Traffic {
                treatment_error_rate: 0.06,
                ..Traffic::healthy(200.0)
            }
        } else {
            Traffic::healthy(200.0)
        }
    };
    let mut steady = Sim::new();
    let mut restarted = Sim::new();
    for s in [&mut steady, &mut restarted] {
        s.start_json(json!({"strategy": "linear", "failure_limit": 5}));
    }
    for m in 0..700 {
        if m == 100 {
            // An operator pauses for 40 minutes; the clock must survive the restarts.
            steady.rollout.apply(Operation::Pause, steady.now).unwrap();
            restarted
                .rollout
                .apply(Operation::Pause, restarted.now)
                .unwrap();
        }
        if m == 140 {
            steady.rollout.apply(Operation::Resume, steady.now).unwrap();
            restarted
                .rollout
                .apply(Operation::Resume, restarted.now)
                .unwrap();
        }
        restarted.rollout = Rollout::from_json(&restarted.rollout.to_json()).unwrap();
        let a = steady.minute(&traffic(m));
        let b = restarted.minute(&traffic(m));
        assert_eq!(a, b, "minute {m}");
    }
    assert_eq!(steady.rollout, restarted.rollout);
    assert_eq!(steady.transitions(), restarted.transitions());
    // The 40-minute pause pushed the 15 % stage's end from minute 120 to 160; the errors at
    // minutes 200–230 were diluted in the 25 % stage (2.7 % over its hour) but rolled the
    // 35 % stage back after five failing ticks.
    let t = steady.transitions();
    assert_eq!(t[0], (60, "stage_advanced".to_string(), 15.0));
    assert_eq!(t[1], (160, "stage_advanced".to_string(), 25.0));
    assert_eq!(t[2], (220, "stage_advanced".to_string(), 35.0));
    assert_eq!(t[3], (226, "rolled_back".to_string(), 0.0));
}

#[test]
fn a_restart_mid_stage_resumes_the_stage_clock() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    sim.run(45, &Traffic::healthy(200.0));
    // The worker restarts: a new isolate reads the stored document.
    let doc = sim.rollout.to_json();
    sim.rollout = Rollout::from_json(&doc).unwrap();
    let st = status(&sim.rollout, sim.now);
    assert_eq!(st.stage_progress.unwrap().elapsed, 45 * MIN);
    let (minute, out) = sim
        .run_until(100, &Traffic::healthy(200.0), |o| o.transition().is_some())
        .unwrap();
    assert_eq!(minute, 60, "15 more minutes, not 60");
    assert!(matches!(out, TickOutcome::Advance(_)));
}

#[test]
fn corrupt_documents_are_errors_not_defaults() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    sim.run(70, &Traffic::healthy(200.0));
    let good: Value = serde_json::from_str(&sim.rollout.to_json()).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("not json", "{".into()),
        ("null", "null".into()),
        ("array", "[]".into()),
        ("newer version", edit(&|v| v["version"] = json!(2))),
        (
            "no version",
            edit(&|v| {
                v.as_object_mut().unwrap().remove("version");
            }),
        ),
        ("unknown phase", edit(&|v| v["phase"] = json!("exploding"))),
        (
            "no plan",
            edit(&|v| {
                v.as_object_mut().unwrap().remove("plan");
            }),
        ),
        (
            "stage out of range",
            edit(&|v| v["current_stage_index"] = json!(11)),
        ),
        (
            "percentage mismatch",
            edit(&|v| v["current_percentage"] = json!(95.0)),
        ),
        (
            "strategy mismatch",
            edit(&|v| v["strategy"] = json!("canary")),
        ),
        (
            "invalid plan",
            edit(&|v| v["plan"]["stages"][1]["target_percentage"] = json!(1.0)),
        ),
        ("empty plan", edit(&|v| v["plan"]["stages"] = json!([]))),
        (
            "bad rate in plan",
            edit(&|v| v["plan"]["stages"][0]["max_error_rate"] = json!(7)),
        ),
        ("bad id", edit(&|v| v["rollout_id"] = json!(""))),
        (
            "paused without paused_at",
            edit(&|v| v["phase"] = json!("paused")),
        ),
        (
            "awaiting without since",
            edit(&|v| v["phase"] = json!("awaiting_approval")),
        ),
        (
            "rolled back without reason",
            edit(&|v| {
                v["phase"] = json!("rolled_back");
                v["current_percentage"] = json!(0.0);
                v["rolled_back_at"] = json!(1);
            }),
        ),
        (
            "stage before start",
            edit(&|v| v["stage_started_at"] = json!(1)),
        ),
        ("negative time", edit(&|v| v["started_at"] = json!(-5))),
        (
            "percentage out of range",
            edit(&|v| v["current_percentage"] = json!(150)),
        ),
    ];
    for (what, doc) in cases {
        assert!(Rollout::from_json(&doc).is_err(), "{what} must be refused");
    }
    // The untouched document is fine.
    assert!(Rollout::from_json(&good.to_string()).is_ok());
    // Every truncation of a valid document is refused (a torn write).
    let text = good.to_string();
    for cut in 0..text.len() {
        if text.is_char_boundary(cut) {
            assert!(Rollout::from_json(&text[..cut]).is_err(), "prefix {cut}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random byte damage never panics; whatever parses re-serialises to something that parses
    /// to the same rollout.
    #[test]
    fn damaged_documents_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut sim = Sim::new();
        sim.start_json(json!({"strategy": "canary"}));
        sim.run(20, &Traffic::healthy(200.0));
        let mut bytes = sim.rollout.to_json().into_bytes();
        for (i, b) in edits {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        if let Ok(text) = String::from_utf8(bytes) {
            if let Ok(r) = Rollout::from_json(&text) {
                let again = Rollout::from_json(&r.to_json()).unwrap();
                prop_assert_eq!(again, r);
            }
        }
    }
}
