//! The `GET /admin/rollout` view and the webhook payloads, read as JSON the way an operator's
//! tools read them.

use super::rollout_support;

use cmo_edge_router::core::rollout::status::status;
use cmo_edge_router::core::rollout::timeline::timeline;
use cmo_edge_router::core::rollout::{EventKind, Operation, Rollout, Switches};
use rollout_support::{Sim, Traffic, MIN, T0};
use serde_json::{json, Value};

fn view(r: &Rollout, now: u64) -> Value {
    serde_json::to_value(status(r, now)).unwrap()
}

#[test]
fn idle_status_says_no_rollout() {
    let v = view(&Rollout::new(), T0);
    assert_eq!(v["phase"], "idle");
    assert_eq!(v["routing"], "inactive");
    assert_eq!(v["current_percentage"], 0.0);
    assert!(v["rollout_id"].is_null());
    assert!(v["stage_progress"].is_null());
    assert_eq!(v["history"], json!([]));
}

#[test]
fn mid_stage_status_shows_progress_and_what_blocks() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear", "min_requests": 200}));
    // 20 minutes at 5 % of 200/min: 200 treatment requests, 3,800 control.
    sim.run(20, &Traffic::healthy(200.0));
    let v = view(&sim.rollout, sim.now + 30_000); // half a minute after the last tick
    assert_eq!(v["rollout_id"], "r-test");
    assert_eq!(v["phase"], "progressing");
    assert_eq!(v["strategy"], "linear");
    assert_eq!(v["current_stage_index"], 0);
    assert_eq!(v["stage_count"], 11);
    assert_eq!(v["current_percentage"], 5.0);
    assert_eq!(v["next_percentage"], 15.0);
    assert_eq!(v["started_at"], T0);
    assert_eq!(v["stage_started_at"], T0);
    assert_eq!(v["current_stage"]["target_percentage"], 5.0);
    assert_eq!(v["current_stage"]["min_duration_ms"], 3_600_000);
    assert_eq!(v["current_stage"]["min_requests"], 200);
    let p = &v["stage_progress"];
    assert_eq!(p["elapsed"], 20 * MIN + 30_000);
    assert_eq!(p["min_duration"], 60 * MIN);
    assert!((p["duration_progress"].as_f64().unwrap() - 20.5 / 60.0).abs() < 1e-9);
    assert_eq!(p["requests_progress"]["treatment"]["observed"], 200);
    assert_eq!(p["requests_progress"]["treatment"]["required"], 200);
    assert_eq!(p["requests_progress"]["treatment"]["progress"], 1.0);
    assert_eq!(p["requests_progress"]["control"]["observed"], 3_800);
    assert_eq!(p["ready_to_advance"], false);
    assert_eq!(p["blocking_gates"], json!(["min_duration"]));
    // The last evaluation, with its numbers and its decision.
    let e = &v["last_evaluation"];
    assert_eq!(e["at"], T0 + 20 * MIN);
    let err = e["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "error_rate")
        .unwrap();
    assert_eq!(err["status"], "pass");
    assert_eq!(err["observed"], 0.01);
    assert_eq!(err["threshold"], 0.05);
    assert!(e["decision"].as_str().unwrap().contains("min left"));
    assert_eq!(v["failure_streak"], 0);
    assert_eq!(v["failure_limit"], 3);
    assert_eq!(v["history"][0]["event"], "started");
}

#[test]
fn ab_testing_off_leaves_the_control_arm_out_of_the_progress() {
    let mut sim = Sim::new();
    sim.switches = Switches {
        ab_testing: false,
        ..Switches::ALL_ON
    };
    sim.start_json(json!({"strategy": "linear"}));
    sim.run(5, &Traffic::healthy(200.0));
    let v = view(&sim.rollout, sim.now);
    assert!(v["stage_progress"]["requests_progress"]["control"].is_null());
    let blocking = v["stage_progress"]["blocking_gates"].as_array().unwrap();
    assert!(blocking.contains(&json!("min_samples_treatment")));
    assert!(!blocking.contains(&json!("min_samples_control")));
}

#[test]
fn every_transition_has_a_webhook_payload_with_reason_and_numbers() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "canary", "canary_duration": 30, "min_requests": 50}));
    let healthy = Traffic::healthy(400.0);
    sim.run(10, &healthy);
    sim.rollout.apply(Operation::Pause, sim.now).unwrap();
    sim.run(5, &healthy);
    sim.rollout.apply(Operation::Resume, sim.now).unwrap();
    sim.run(30, &healthy); // → awaiting approval
    sim.rollout.apply(Operation::Approve, sim.now).unwrap(); // → 100 %
    sim.run(60, &healthy); // → completed
    sim.rollout
        .apply(
            Operation::Rollback {
                note: Some("audit".into()),
            },
            sim.now,
        )
        .unwrap();
    let events: Vec<EventKind> = sim.rollout.history().iter().map(|t| t.event).collect();
    use EventKind::*;
    assert_eq!(
        events,
        vec![
            Started,
            Paused,
            Resumed,
            AwaitingApproval,
            StageAdvanced,
            Completed,
            RolledBack
        ]
    );
    let payloads: Vec<Value> = sim
        .rollout
        .history()
        .iter()
        .map(|t| t.webhook_payload())
        .collect();
    for p in &payloads {
        for field in [
            "event",
            "rollout_id",
            "at",
            "from_phase",
            "to_phase",
            "stage_index",
            "from_percentage",
            "to_percentage",
            "trigger",
            "reason",
        ] {
            assert!(!p[field].is_null(), "{field} in {p}");
        }
    }
    assert_eq!(payloads[0]["trigger"], json!({"by": "operator"}));
    assert_eq!(payloads[3]["event"], "awaiting_approval");
    assert_eq!(payloads[3]["trigger"], json!({"by": "controller"}));
    let gates = payloads[3]["gates"].as_array().unwrap();
    assert!(gates
        .iter()
        .any(|g| g["name"] == "error_rate" && g["status"] == "pass"));
    assert_eq!(payloads[4]["from_percentage"], 1.0);
    assert_eq!(payloads[4]["to_percentage"], 100.0);
    assert_eq!(payloads[5]["event"], "completed");
    let rb = &payloads[6];
    assert_eq!(rb["event"], "rolled_back");
    assert_eq!(rb["rollback"], json!({"kind": "operator", "note": "audit"}));
    assert_eq!(rb["to_percentage"], 0.0);
    assert!(rb["reason"].as_str().unwrap().contains("audit"));
}

#[test]
fn the_preview_timeline_matches_what_a_healthy_run_does() {
    // The plan-only timeline and a simulated healthy rollout (enough traffic that time, not
    // data, gates every stage) agree on when each stage starts.
    for plan in [
        json!({"strategy": "linear", "increment": 25}),
        json!({"strategy": "exponential", "start_percentage": 5}),
        json!({"strategy": "canary", "auto_approve": true}),
        json!({"strategy": "steps", "stages": [{"target_percentage": 2, "min_duration": 30}, {"target_percentage": 40, "min_duration": 90}, {"target_percentage": 100, "min_duration": 10}]}),
    ] {
        let p = cmo_edge_router::core::rollout::request::plan_from_value(&plan).unwrap();
        let tl = timeline(&p);
        let mut sim = Sim::new();
        sim.start(p);
        sim.run_until(10_000, &Traffic::healthy(20_000.0), |o| {
            matches!(o, cmo_edge_router::core::rollout::TickOutcome::Complete(_))
        })
        .unwrap();
        let starts: Vec<u64> = tl
            .steps
            .iter()
            .skip(1)
            .map(|s| s.starts_at_ms / MIN)
            .collect();
        let advanced: Vec<u64> = sim
            .transitions()
            .iter()
            .filter(|(_, e, _)| e == "stage_advanced")
            .map(|(m, _, _)| *m)
            .collect();
        assert_eq!(starts, advanced, "{plan}");
        assert_eq!(
            sim.transitions().last().unwrap().0,
            tl.completes_at_ms / MIN
        );
    }
}
