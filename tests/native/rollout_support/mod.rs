//! A deterministic traffic simulator on a virtual clock for the rollout timelines.
//!
//! Each simulated minute, `per_minute` experiment requests arrive and split between the arms
//! exactly as the rollout's percentage says (times `treatment_skew`, to fake a broken split);
//! errors, scores and latencies follow the [`Traffic`] in force. The evidence is cumulative
//! over the current stage, as the edge aggregates it, and restarts when the stage changes.
//! Then the clock moves one minute and the controller ticks once — the cron's rhythm.
//! No randomness: the same timeline gives the same transitions every run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use cmo_edge_router::core::cohort::Percent;
use cmo_edge_router::core::rollout::machine::TickInput;
use cmo_edge_router::core::rollout::plan::Plan;
use cmo_edge_router::core::rollout::request::plan_from_value;
use cmo_edge_router::core::rollout::{
    ArmEvidence, Operation, PhaseName, Rollout, RolloutId, StageEvidence, Switches, TickOutcome,
};

pub const T0: u64 = 1_700_000_000_000;
pub const MIN: u64 = 60_000;

/// What the two arms look like during one minute.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    pub per_minute: f64,
    pub treatment_error_rate: f64,
    pub control_error_rate: f64,
    /// Mean score of treatment answers; `None` = nothing scored.
    pub treatment_quality: Option<f64>,
    pub control_quality: Option<f64>,
    pub treatment_p95_ms: u64,
    pub control_p95_ms: u64,
    /// Multiplies the treatment arm's share (1.0 = the split the rollout expects).
    pub treatment_skew: f64,
    pub breaker_trips_per_minute: f64,
}

impl Traffic {
    /// LightRAG as good as Perplexity: 1 % errors, quality 0.80 vs 0.78, similar latency.
    pub fn healthy(per_minute: f64) -> Traffic {
        Traffic {
            per_minute,
            treatment_error_rate: 0.01,
            control_error_rate: 0.01,
            treatment_quality: Some(0.80),
            control_quality: Some(0.78),
            treatment_p95_ms: 4_000,
            control_p95_ms: 3_500,
            treatment_skew: 1.0,
            breaker_trips_per_minute: 0.0,
        }
    }

    /// The same, with nothing scored (quality metrics off at the edge).
    pub fn unscored(per_minute: f64) -> Traffic {
        Traffic {
            treatment_quality: None,
            control_quality: None,
            ..Traffic::healthy(per_minute)
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Acc {
    requests: f64,
    errors: f64,
    scored: f64,
    quality_sum: f64,
    p95: u64,
}

impl Acc {
    fn add(&mut self, requests: f64, error_rate: f64, quality: Option<f64>, p95: u64) {
        self.requests += requests;
        self.errors += requests * error_rate;
        if let Some(q) = quality {
            self.scored += requests;
            self.quality_sum += requests * q;
        }
        if requests > 0.0 {
            self.p95 = p95;
        }
    }

    fn evidence(&self) -> ArmEvidence {
        let requests = self.requests.floor() as u64;
        let errors = (self.errors.round() as u64).min(requests);
        let scored = self.scored.floor() as u64;
        ArmEvidence {
            requests,
            successes: requests - errors,
            errors,
            scored,
            quality_mean: (scored > 0).then(|| self.quality_sum / self.scored),
            latency_p95_ms: (requests > 0).then_some(self.p95),
            no_context: None,
        }
    }
}

/// A rollout plus the world around it.
pub struct Sim {
    pub rollout: Rollout,
    pub now: u64,
    pub switches: Switches,
    stage_key: Option<(usize, u64)>,
    treatment: Acc,
    control: Acc,
    trips: f64,
    /// Every tick's outcome, with the minute it happened (minutes since T0).
    pub log: Vec<(u64, TickOutcome)>,
}

impl Sim {
    pub fn new() -> Sim {
        Sim::resume(Rollout::new(), T0)
    }

    /// A simulator around an existing rollout (e.g. one read back from its JSON).
    pub fn resume(rollout: Rollout, now: u64) -> Sim {
        Sim {
            rollout,
            now,
            switches: Switches::ALL_ON,
            stage_key: None,
            treatment: Acc::default(),
            control: Acc::default(),
            trips: 0.0,
            log: Vec::new(),
        }
    }

    pub fn minute_now(&self) -> u64 {
        (self.now - T0) / MIN
    }

    pub fn start(&mut self, plan: Plan) {
        self.rollout
            .apply(
                Operation::Start {
                    rollout_id: RolloutId::try_new("r-test").unwrap(),
                    plan,
                },
                self.now,
            )
            .unwrap();
    }

    pub fn start_json(&mut self, v: serde_json::Value) {
        self.start(plan_from_value(&v).unwrap());
    }

    pub fn percentage(&self) -> f64 {
        self.rollout.current_percentage().percent()
    }

    pub fn phase(&self) -> PhaseName {
        self.rollout.phase_name()
    }

    pub fn stage_index(&self) -> Option<usize> {
        self.rollout.run().map(|r| r.stage_index)
    }

    /// The evidence the edge would hand the controller now.
    pub fn evidence(&self) -> StageEvidence {
        StageEvidence {
            treatment: self.treatment.evidence(),
            control: self.control.evidence(),
            breaker_trips: self.trips.floor() as u64,
            expected_treatment_percentage: self.rollout.current_percentage(),
            shadow_samples: None,
        }
    }

    /// One minute of traffic at the current percentage, then one tick.
    pub fn minute(&mut self, traffic: &Traffic) -> TickOutcome {
        let key = self
            .rollout
            .run()
            .map(|r| (r.stage_index, r.stage_started_at));
        if key != self.stage_key {
            self.stage_key = key;
            self.treatment = Acc::default();
            self.control = Acc::default();
            self.trips = 0.0;
        }
        let share = self.rollout.current_percentage().percent() / 100.0;
        let t_share = (share * traffic.treatment_skew).clamp(0.0, 1.0);
        self.treatment.add(
            traffic.per_minute * t_share,
            traffic.treatment_error_rate,
            traffic.treatment_quality,
            traffic.treatment_p95_ms,
        );
        self.control.add(
            traffic.per_minute * (1.0 - t_share),
            traffic.control_error_rate,
            traffic.control_quality,
            traffic.control_p95_ms,
        );
        self.trips += traffic.breaker_trips_per_minute;
        self.now += MIN;
        let evidence = self.evidence();
        let out = self.rollout.tick(&TickInput {
            evidence: &evidence,
            switches: &self.switches,
            now_ms: self.now,
        });
        self.log.push((self.minute_now(), out.clone()));
        out
    }

    /// Runs `minutes` minutes of `traffic`; returns the outcomes.
    pub fn run(&mut self, minutes: u64, traffic: &Traffic) -> Vec<TickOutcome> {
        (0..minutes).map(|_| self.minute(traffic)).collect()
    }

    /// Runs until `stop` says so (at most `max` minutes); returns the minute and outcome.
    pub fn run_until(
        &mut self,
        max: u64,
        traffic: &Traffic,
        stop: impl Fn(&TickOutcome) -> bool,
    ) -> Option<(u64, TickOutcome)> {
        for _ in 0..max {
            let out = self.minute(traffic);
            if stop(&out) {
                return Some((self.minute_now(), out));
            }
        }
        None
    }

    /// (minute, new percentage) of every transition so far.
    pub fn transitions(&self) -> Vec<(u64, String, f64)> {
        self.log
            .iter()
            .filter_map(|(m, o)| {
                o.transition()
                    .map(|t| (*m, t.event.as_str().to_string(), t.to_percentage.percent()))
            })
            .collect()
    }
}

pub fn pct(p: f64) -> Percent {
    Percent::from_percent(p).unwrap()
}
