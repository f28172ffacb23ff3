//! Rollout timelines on a virtual clock, in the style of linkerd2-proxy's failure-accrual
//! tests: every scenario says what the traffic looks like, what minute it is, and what the
//! controller must do. One tick per simulated minute (the cron's rhythm); evidence is
//! cumulative over the current stage (see `rollout_support`).

use super::rollout_support;

use cmo_edge_router::core::rollout::emergency::BreachKind;
use cmo_edge_router::core::rollout::event::{RollbackReason, Trigger};
use cmo_edge_router::core::rollout::machine::HoldReason;
use cmo_edge_router::core::rollout::status::status;
use cmo_edge_router::core::rollout::{
    EventKind, GateName, Operation, PhaseName, Routing, Switches, TickOutcome,
};
use rollout_support::{Sim, Traffic};
use serde_json::json;

fn is_transition(o: &TickOutcome) -> bool {
    o.transition().is_some()
}

#[test]
fn healthy_lightrag_goes_from_5_to_100_percent_linearly() {
    // Default linear plan: 5, 15, …, 95, 100, 60 min each, 100 requests per arm.
    // 200 experiment requests a minute: 10/min reach LightRAG at 5 %, so the 100-request
    // minimum is met after 10 minutes and time is what gates each stage.
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    assert_eq!(sim.percentage(), 5.0);
    let traffic = Traffic::healthy(200.0);

    // t = 0..59 min: holding (first for data, then for the minimum duration).
    for out in sim.run(59, &traffic) {
        assert!(matches!(out, TickOutcome::Hold(_)), "{out:?}");
    }
    assert_eq!(sim.percentage(), 5.0);
    let last = sim.log.last().unwrap().1.clone();
    assert!(matches!(
        last,
        TickOutcome::Hold(HoldReason::MinDuration {
            remaining_ms: 60_000
        })
    ));

    // Run to completion: one advance every 60 minutes, then complete after the 100 % stage.
    sim.run_until(1_000, &traffic, |o| matches!(o, TickOutcome::Complete(_)))
        .expect("completes");
    let expected: Vec<(u64, String, f64)> = [15.0, 25.0, 35.0, 45.0, 55.0, 65.0, 75.0, 85.0, 95.0]
        .iter()
        .enumerate()
        .map(|(i, p)| ((i as u64 + 1) * 60, "stage_advanced".to_string(), *p))
        .chain([
            (600, "stage_advanced".to_string(), 100.0),
            (660, "completed".to_string(), 100.0),
        ])
        .collect();
    assert_eq!(sim.transitions(), expected);

    // Completed stays at 100 % and ticks do nothing.
    assert_eq!(sim.phase(), PhaseName::Completed);
    assert_eq!(
        sim.rollout.routing(),
        Routing::Percentage(rollout_support::pct(100.0))
    );
    assert!(sim
        .run(120, &traffic)
        .iter()
        .all(|o| *o == TickOutcome::Inactive));
    // The history tells the same story: started, 10 advances, completed.
    let events: Vec<EventKind> = sim.rollout.history().iter().map(|t| t.event).collect();
    assert_eq!(events.first(), Some(&EventKind::Started));
    assert_eq!(events.last(), Some(&EventKind::Completed));
    assert_eq!(events.len(), 12);
}

#[test]
fn error_rate_jump_at_25_percent_rolls_back_within_the_failure_limit_and_stays_back() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    let healthy = Traffic::healthy(200.0);
    // t = 0..120 min: healthy, 5 % → 15 % → 25 %.
    sim.run(120, &healthy);
    assert_eq!(sim.percentage(), 25.0);
    let stage_start = sim.minute_now();

    // From 25 %: LightRAG errors on 8 % of requests — above max_error_rate (5 %), below the
    // emergency level (10 %), so it is the failure streak that must roll back.
    let bad = Traffic {
        treatment_error_rate: 0.08,
        ..healthy
    };
    // +1 min: 50 treatment requests < 100 → not enough data, hold (not a failure).
    let out = sim.minute(&bad);
    assert!(
        matches!(&out, TickOutcome::Hold(HoldReason::InsufficientData { gates }) if gates.contains(&GateName::ErrorRate)),
        "{out:?}"
    );
    // +2 min: 100 requests, 8 % errors → failing tick 1 of 3.
    assert_eq!(
        sim.minute(&bad),
        TickOutcome::Hold(HoldReason::GatesFailing {
            gates: vec![GateName::ErrorRate, GateName::SuccessRate],
            streak: 1,
            limit: 3
        })
    );
    // +3 min: failing tick 2 of 3.
    assert!(matches!(
        sim.minute(&bad),
        TickOutcome::Hold(HoldReason::GatesFailing { streak: 2, .. })
    ));
    // +4 min: third consecutive failing tick → rolled back to 0 %.
    let out = sim.minute(&bad);
    let t = out.transition().expect("rollback").clone();
    assert_eq!(sim.minute_now(), stage_start + 4);
    assert_eq!(t.event, EventKind::RolledBack);
    assert_eq!(t.trigger, Trigger::Controller);
    assert_eq!(t.from_percentage.percent(), 25.0);
    assert_eq!(t.to_percentage.percent(), 0.0);
    assert_eq!(
        t.rollback,
        Some(RollbackReason::FailureLimit {
            streak: 3,
            limit: 3
        })
    );
    // The payload carries the numbers: observed 8 % against 5 %.
    let err = t
        .gates
        .iter()
        .find(|g| g.name == GateName::ErrorRate)
        .unwrap();
    assert!((err.observed.unwrap() - 0.08).abs() < 0.005);
    assert_eq!(err.threshold, Some(0.05));
    assert!(t.reason.contains("error_rate"), "{}", t.reason);
    assert_eq!(sim.rollout.routing(), Routing::RolledBack);

    // LightRAG recovers; a day of healthy minutes changes nothing: no flapping.
    for out in sim.run(24 * 60, &healthy) {
        assert_eq!(out, TickOutcome::Inactive);
    }
    assert_eq!(sim.phase(), PhaseName::RolledBack);
    assert_eq!(sim.percentage(), 0.0);
    // Only an operator's new start moves it again.
    sim.start_json(json!({"strategy": "linear"}));
    assert_eq!(sim.phase(), PhaseName::Progressing);
    assert_eq!(sim.percentage(), 5.0);
}

#[test]
fn a_gate_that_recovers_before_the_limit_resets_the_streak() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "steps", "stages": [{"target_percentage": 50}]}));
    let healthy = Traffic::healthy(200.0);
    // Slow LightRAG: p95 3× control for two ticks (latency_ratio fails, limit 2.0).
    let slow = Traffic {
        treatment_p95_ms: 10_500,
        ..healthy
    };
    sim.run(1, &healthy); // 100 per arm after one minute
    assert!(matches!(
        sim.minute(&slow),
        TickOutcome::Hold(HoldReason::GatesFailing { streak: 1, .. })
    ));
    assert!(matches!(
        sim.minute(&slow),
        TickOutcome::Hold(HoldReason::GatesFailing { streak: 2, .. })
    ));
    // Back to normal: the streak resets, and two more slow ticks are not enough.
    assert!(matches!(
        sim.minute(&healthy),
        TickOutcome::Hold(HoldReason::MinDuration { .. })
    ));
    assert_eq!(sim.rollout.run().unwrap().failure_streak, 0);
    sim.run(2, &slow);
    assert_eq!(sim.phase(), PhaseName::Progressing);
}

#[test]
fn exponential_plan_doubles_then_holds_the_final_stage_to_stricter_gates() {
    // 1, 2, 4, 8, 16, 32, 64 for 60 min each, then 100 % for 120 min with half the error
    // budget (2.5 %) and twice the requests.
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "exponential"}));
    let traffic = Traffic::healthy(200.0);
    sim.run_until(2_000, &traffic, |o| matches!(o, TickOutcome::Complete(_)))
        .expect("completes");
    let t = sim.transitions();
    let pcts: Vec<f64> = t.iter().map(|(_, _, p)| *p).collect();
    assert_eq!(pcts, vec![2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 100.0, 100.0]);
    let minutes: Vec<u64> = t.iter().map(|(m, _, _)| *m).collect();
    assert_eq!(minutes, vec![60, 120, 180, 240, 300, 360, 420, 540]);

    // 3 % errors: fine before the final stage (≤ 5 %), too many in it (> 2.5 %).
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "exponential"}));
    let meh = Traffic {
        treatment_error_rate: 0.03,
        ..traffic
    };
    let (minute, out) = sim
        .run_until(2_000, &meh, |o| matches!(o, TickOutcome::Rollback(_)))
        .expect("the stricter final stage rolls back");
    let t = out.transition().unwrap();
    assert_eq!(t.from_percentage.percent(), 100.0);
    // Reached 100 % at minute 420; 200 treatment requests in 1 min; 3 failing ticks.
    assert_eq!(minute, 423);
}

#[test]
fn canary_waits_for_approval_and_proceeds_after_it() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "canary"}));
    assert_eq!(sim.percentage(), 1.0);
    let traffic = Traffic::healthy(200.0);
    // Approving before the canary is done is a 409-style error, and changes nothing.
    let e = sim.rollout.apply(Operation::Approve, sim.now).unwrap_err();
    assert_eq!(e.http_status(), 409);
    assert_eq!(e.phase, PhaseName::Progressing);
    assert!(e.message.contains("awaiting approval"), "{}", e.message);

    // t = 120 min: the canary's gates pass for its duration → awaiting approval.
    let (minute, out) = sim
        .run_until(500, &traffic, is_transition)
        .expect("a transition");
    assert_eq!(minute, 120);
    assert_eq!(out.transition().unwrap().event, EventKind::AwaitingApproval);
    assert_eq!(sim.phase(), PhaseName::AwaitingApproval);

    // Nobody approves for 3 hours: it waits at 1 %, saying why.
    for out in sim.run(180, &traffic) {
        assert_eq!(out, TickOutcome::Hold(HoldReason::AwaitingApproval));
    }
    assert_eq!(sim.percentage(), 1.0);
    let st = status(&sim.rollout, sim.now);
    let p = st.stage_progress.unwrap();
    assert!(p.ready_to_advance);
    assert_eq!(p.blocking_gates, vec!["approval".to_string()]);

    // t = 300 min: approved → 100 %, and completes after the final stage's 60 minutes.
    let t = sim.rollout.apply(Operation::Approve, sim.now).unwrap();
    assert_eq!(t.event, EventKind::StageAdvanced);
    assert_eq!(t.to_percentage.percent(), 100.0);
    assert!(matches!(t.trigger, Trigger::Operator { .. }));
    let (minute, out) = sim
        .run_until(500, &traffic, is_transition)
        .expect("completes");
    assert_eq!(out.transition().unwrap().event, EventKind::Completed);
    assert_eq!(minute, 360);
}

#[test]
fn canary_with_auto_approve_proceeds_on_its_own() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "canary", "auto_approve": true, "canary_percentage": 0.5}));
    assert_eq!(sim.percentage(), 0.5);
    // 0.5 % of 400/min = 2/min: the 100 requests arrive at minute 50, the duration at 120.
    sim.run_until(500, &Traffic::healthy(400.0), |o| {
        matches!(o, TickOutcome::Complete(_))
    })
    .unwrap();
    let t = sim.transitions();
    assert_eq!(t[0], (120, "stage_advanced".to_string(), 100.0));
    assert_eq!(t[1], (180, "completed".to_string(), 100.0));
}

#[test]
fn low_traffic_holds_instead_of_advancing() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    // 20 requests a minute: 1/min at 5 %, so the treatment arm needs 100 minutes for its 100.
    let thin = Traffic::healthy(20.0);
    let outs = sim.run(99, &thin);
    assert!(outs.iter().all(|o| !is_transition(o)));
    // At the stage's 60 minutes it holds for data, and says which.
    match &outs[59] {
        TickOutcome::Hold(HoldReason::InsufficientData { gates }) => {
            assert!(gates.contains(&GateName::MinSamplesTreatment));
            assert!(gates.contains(&GateName::ErrorRate));
            assert!(!gates.contains(&GateName::MinSamplesControl)); // 19/min → met long ago
        }
        other => panic!("{other:?}"),
    }
    let st = status(&sim.rollout, sim.now);
    let p = st.stage_progress.unwrap();
    assert_eq!(p.requests_progress.treatment.observed, 99);
    assert!(!p.ready_to_advance);
    assert!(p
        .blocking_gates
        .contains(&"min_samples_treatment".to_string()));
    assert_eq!(p.duration_progress, 1.0);
    // Minute 100: the 100th treatment request → advance.
    let out = sim.minute(&thin);
    assert_eq!(out.transition().unwrap().to_percentage.percent(), 15.0);

    // No traffic at all: it holds forever, never rolls back.
    let mut idle = Sim::new();
    idle.start_json(json!({"strategy": "linear"}));
    let none = Traffic::healthy(0.0);
    assert!(idle
        .run(24 * 60, &none)
        .iter()
        .all(|o| matches!(o, TickOutcome::Hold(HoldReason::InsufficientData { .. }))));
    assert_eq!(idle.percentage(), 5.0);
}

#[test]
fn skewed_split_trips_sample_ratio_mismatch_and_holds_without_rolling_back() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "steps", "stages": [{"target_percentage": 25}, {"target_percentage": 50}]}));
    // The treatment arm gets 80 % of its expected share (a logging or routing bug), while
    // LightRAG itself is perfectly healthy.
    let skewed = Traffic {
        treatment_skew: 0.8,
        ..Traffic::healthy(400.0)
    };
    let outs = sim.run(600, &skewed);
    assert!(
        outs.iter().all(|o| !is_transition(o)),
        "never advances, never rolls back"
    );
    match outs.last().unwrap() {
        TickOutcome::Hold(HoldReason::SampleRatioMismatch { p_value }) => {
            assert!(p_value.unwrap() < 0.001)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.percentage(), 25.0);
    assert_eq!(sim.rollout.run().unwrap().failure_streak, 0);
    // With the split fixed (a new stage's evidence), the same rollout advances.
    let mut fixed = Sim::new();
    fixed.start_json(json!({"strategy": "steps", "stages": [{"target_percentage": 25}, {"target_percentage": 50}]}));
    let (minute, _) = fixed
        .run_until(600, &Traffic::healthy(400.0), is_transition)
        .unwrap();
    assert_eq!(minute, 60);
}

#[test]
fn quality_metrics_off_never_rolls_back_for_lack_of_scores() {
    // The old system's bug: every unscored answer counted as quality 0.0, so every rollout
    // rolled back after 20 requests when quality metrics were off. Here: quality gates on in
    // the plan (min_quality 0.7), nothing scored, LIGHTRAG_ENABLE_QUALITY_METRICS=false.
    let mut sim = Sim::new();
    sim.switches = Switches {
        quality_metrics: false,
        ..Switches::ALL_ON
    };
    sim.start_json(json!({"strategy": "linear", "min_quality": 0.7}));
    sim.run_until(1_000, &Traffic::unscored(200.0), |o| {
        matches!(o, TickOutcome::Complete(_) | TickOutcome::Rollback(_))
    })
    .unwrap();
    assert_eq!(sim.phase(), PhaseName::Completed);
    let gates = &sim.rollout.history().last().unwrap().gates;
    assert!(
        gates.iter().all(|g| g.name != GateName::MinQuality),
        "skipped gates are left out"
    );

    // Quality metrics on but nothing scored: it holds for data, and still never rolls back.
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear", "min_quality": 0.7}));
    let outs = sim.run(24 * 60, &Traffic::unscored(200.0));
    assert!(outs.iter().all(|o| !is_transition(o)));
    assert!(matches!(
        outs.last().unwrap(),
        TickOutcome::Hold(HoldReason::InsufficientData { gates }) if gates.contains(&GateName::MinQuality)
    ));
}

#[test]
fn ab_testing_off_turns_comparisons_off_but_absolute_gates_still_run() {
    // Treatment quality 0.3 below control: quality_drop would fail with A/B testing on.
    let worse = Traffic {
        treatment_quality: Some(0.6),
        control_quality: Some(0.9),
        treatment_p95_ms: 20_000,
        ..Traffic::healthy(200.0)
    };
    let mut on = Sim::new();
    on.start_json(json!({"strategy": "linear"}));
    let (_, out) = on.run_until(1_000, &worse, is_transition).unwrap();
    assert_eq!(out.transition().unwrap().event, EventKind::RolledBack);

    let mut off = Sim::new();
    off.switches = Switches {
        ab_testing: false,
        ..Switches::ALL_ON
    };
    off.start_json(json!({"strategy": "linear"}));
    let (minute, out) = off.run_until(1_000, &worse, is_transition).unwrap();
    assert_eq!(
        (minute, out.transition().unwrap().event),
        (60, EventKind::StageAdvanced)
    );

    // …but a bad error rate still rolls back with A/B testing off.
    let mut off = Sim::new();
    off.switches = Switches {
        ab_testing: false,
        performance_comparison: false,
        quality_metrics: false,
    };
    off.start_json(json!({"strategy": "linear"}));
    let failing = Traffic {
        treatment_error_rate: 0.07,
        ..Traffic::healthy(200.0)
    };
    let (_, out) = off.run_until(1_000, &failing, is_transition).unwrap();
    assert_eq!(out.transition().unwrap().event, EventKind::RolledBack);
}

#[test]
fn emergency_breach_rolls_back_at_once() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    let healthy = Traffic::healthy(1_000.0);
    sim.run(60, &healthy); // → 15 %
    assert_eq!(sim.percentage(), 15.0);
    // LightRAG starts failing 40 % of requests: 150 treatment requests in the first minute
    // (≥ 50), 40 % > emergency_error_rate 10 % → rolled back on that very tick.
    let out = sim.minute(&Traffic {
        treatment_error_rate: 0.4,
        ..healthy
    });
    let t = out.transition().expect("immediate rollback");
    match &t.rollback {
        Some(RollbackReason::Emergency { breach }) => {
            assert_eq!(breach.kind, BreachKind::ErrorRate);
            assert!((breach.observed - 0.4).abs() < 0.01);
            assert_eq!(breach.threshold, 0.1);
            assert_eq!(breach.samples, 150);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.percentage(), 0.0);

    // Quality collapse: 20 scored answers with mean 0.3 < 0.5 → at once, too.
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    let out = sim.minute(&Traffic {
        treatment_quality: Some(0.3),
        ..Traffic::healthy(400.0)
    });
    assert!(matches!(
        out.transition().and_then(|t| t.rollback.clone()),
        Some(RollbackReason::Emergency { breach }) if breach.kind == BreachKind::Quality
    ));
}

#[test]
fn pause_stops_the_stage_clock_and_resume_continues_it() {
    // Choice: paused time does not count toward min_duration. A stage paused for two hours
    // after 30 minutes still needs 30 more minutes of active time after resume.
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    let healthy = Traffic::healthy(200.0);
    sim.run(30, &healthy);
    let t = sim.rollout.apply(Operation::Pause, sim.now).unwrap();
    assert_eq!(t.event, EventKind::Paused);
    // Paused for 120 minutes: holds, never advances, routing unchanged.
    for out in sim.run(120, &healthy) {
        assert_eq!(out, TickOutcome::Hold(HoldReason::Paused));
    }
    assert_eq!(sim.percentage(), 5.0);
    let st = status(&sim.rollout, sim.now);
    assert_eq!(st.stage_progress.as_ref().unwrap().elapsed, 30 * 60_000);
    assert!(!st.stage_progress.as_ref().unwrap().ready_to_advance);
    // Operations that make no sense while paused are refused.
    assert_eq!(
        sim.rollout
            .apply(Operation::Pause, sim.now)
            .unwrap_err()
            .http_status(),
        409
    );
    assert!(sim.rollout.apply(Operation::Advance, sim.now).is_err());
    // t = 150: resume; 30 active minutes remain.
    sim.rollout.apply(Operation::Resume, sim.now).unwrap();
    let (minute, out) = sim.run_until(200, &healthy, is_transition).unwrap();
    assert_eq!(minute, 180);
    assert_eq!(out.transition().unwrap().to_percentage.percent(), 15.0);
}

#[test]
fn a_paused_rollout_still_rolls_back_on_an_emergency() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "steps", "stages": [{"target_percentage": 50}]}));
    sim.rollout.apply(Operation::Pause, sim.now).unwrap();
    // Moderately bad (7 %): a pause stops the streak, so this only holds.
    let outs = sim.run(
        10,
        &Traffic {
            treatment_error_rate: 0.07,
            ..Traffic::healthy(200.0)
        },
    );
    assert!(outs
        .iter()
        .all(|o| *o == TickOutcome::Hold(HoldReason::Paused)));
    // Severe (30 %): rolled back although paused, as soon as the stage's cumulative error
    // rate crosses 10 % — the second minute: (10 × 7 + 2 × 30) / 12 = 10.8 %.
    let severe = Traffic {
        treatment_error_rate: 0.3,
        ..Traffic::healthy(200.0)
    };
    assert_eq!(sim.minute(&severe), TickOutcome::Hold(HoldReason::Paused));
    let out = sim.minute(&severe);
    assert_eq!(out.transition().unwrap().event, EventKind::RolledBack);
    assert_eq!(out.transition().unwrap().from_phase, PhaseName::Paused);
}

#[test]
fn advance_skips_the_wait_and_reports_the_gates() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "linear"}));
    sim.run(15, &Traffic::healthy(200.0));
    let t = sim.rollout.apply(Operation::Advance, sim.now).unwrap();
    assert_eq!(t.event, EventKind::StageAdvanced);
    assert_eq!(t.to_percentage.percent(), 15.0);
    // The gates at the time are in the record (error rate with its numbers).
    let e = t
        .gates
        .iter()
        .find(|g| g.name == GateName::ErrorRate)
        .unwrap();
    assert!(e.observed.is_some());
    // The new stage starts its own clock at the advance.
    assert_eq!(sim.rollout.run().unwrap().stage_started_at, sim.now);
}

#[test]
fn operator_rollback_beats_everything_and_needs_a_new_start() {
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "canary", "auto_approve": true}));
    sim.run_until(500, &Traffic::healthy(400.0), |o| {
        matches!(o, TickOutcome::Complete(_))
    })
    .unwrap();
    // Completed at 100 %: an operator may still roll it back.
    let t = sim
        .rollout
        .apply(
            Operation::Rollback {
                note: Some("answers cite retracted papers".into()),
            },
            sim.now,
        )
        .unwrap();
    assert_eq!(t.from_percentage.percent(), 100.0);
    assert_eq!(t.to_percentage.percent(), 0.0);
    assert!(t.reason.contains("retracted"));
    assert_eq!(sim.rollout.routing(), Routing::RolledBack);
    // Rolling back again is refused (409), not silently repeated.
    assert!(sim
        .rollout
        .apply(Operation::Rollback { note: None }, sim.now)
        .is_err());
    assert!(sim.rollout.apply(Operation::Resume, sim.now).is_err());
}

#[test]
fn extra_ticks_between_cron_runs_cannot_hurry_a_rollback() {
    // Admin actions may tick the controller too. Failing ticks closer than 30 s count once, so
    // an operator clicking around cannot turn one bad minute into a rollback.
    use cmo_edge_router::core::rollout::machine::TickInput;
    let mut sim = Sim::new();
    sim.start_json(json!({"strategy": "steps", "stages": [{"target_percentage": 50}]}));
    sim.run(
        1,
        &Traffic {
            treatment_error_rate: 0.07,
            ..Traffic::healthy(200.0)
        },
    );
    assert_eq!(sim.rollout.run().unwrap().failure_streak, 1);
    let ev = sim.evidence();
    for s in 1..=5 {
        let out = sim.rollout.tick(&TickInput {
            evidence: &ev,
            switches: &Switches::ALL_ON,
            now_ms: sim.now + s * 5_000,
        });
        assert!(matches!(
            out,
            TickOutcome::Hold(HoldReason::GatesFailing { streak: 1, .. })
        ));
    }
    // The next cron tick (a minute later) is the second failing tick, not the seventh.
    sim.run(
        1,
        &Traffic {
            treatment_error_rate: 0.07,
            ..Traffic::healthy(200.0)
        },
    );
    assert_eq!(sim.rollout.run().unwrap().failure_streak, 2);
    assert_eq!(sim.phase(), PhaseName::Progressing);
}
