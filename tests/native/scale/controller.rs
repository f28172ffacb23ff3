//! The controller's minute, as one swappable function: [`controller_step`].
//!
//! Today's `main` has the cron's aggregation (`core::store::controller_tick`, reached through
//! `StateStore::run_tick`, so on the hub it is one request) but not yet the rollout in the cron
//! (the "rollout-edge" work wires `core::rollout` into the tick). Until then this step plays
//! that part the way the edge will: after a completed pass it reads the aggregate the tick
//! published, builds the stage evidence per arm from it (`ArmEvidence::from_stats`), ticks the
//! rollout machine (`core::rollout::Rollout::tick`, the real one) and, when the routed
//! percentage changes, writes it to `config/overrides` for the isolates to pick up. The
//! evidence is the aggregate's window (the last hour), so stages last 60 minutes: a stage's
//! decision falls at its end, when the window holds that stage alone.
//!
//! Every read and write goes through the same store handle as the tick (one invocation: KV
//! counts them against the same 1,000 operations), and the cron's own refresh afterwards
//! (`edge::admin::run_tick`) too.

use crate::fleet_support::block_on;
use cmo_edge_router::core::breaker::BreakerSnapshot;
use cmo_edge_router::core::cohort::Percent;
use cmo_edge_router::core::config::Config;
use cmo_edge_router::core::model::{Arm, Upstream};
use cmo_edge_router::core::rollout::{
    ArmEvidence, Operation, Plan, Rollout, RolloutId, Routing, StageEvidence, Switches, TickInput,
    TickOutcome,
};
use cmo_edge_router::core::store::{
    breaker_key, load_remote, parse_value, OverridesDoc, RolloutDoc, StateStore, TickReport,
    CONFIG_KEY, CONTROLLER_MAX_OPS, ROLLOUT_KEY,
};
use cmo_edge_router::core::window::{MetricKey, Stats};
use serde_json::{json, Map};
use std::collections::BTreeMap;

/// What the controller keeps between minutes (today: the rollout machine lives here; once the
/// rollout is in the cron, it lives in the store and this holds nothing the store does not).
pub struct ControllerState {
    pub rollout: Rollout,
    plan: Plan,
    started: bool,
    overrides_version: u64,
    /// Breaker trips seen when the current stage started (the gate counts trips per stage).
    trips_at_stage_start: u64,
    stage_index: Option<usize>,
}

impl ControllerState {
    pub fn new(plan: Plan) -> ControllerState {
        ControllerState {
            rollout: Rollout::new(),
            plan,
            started: false,
            overrides_version: 0,
            trips_at_stage_start: 0,
            stage_index: None,
        }
    }
}

/// A rollout tick the controller made, with what it saw (for the perfect-data comparison).
#[derive(Debug, Clone)]
pub struct Decided {
    /// The machine before the tick: tick a clone with perfect evidence to compare.
    pub before: Rollout,
    pub evidence: StageEvidence,
    pub outcome: String,
    /// The transition's reason, when the tick moved the rollout.
    pub detail: Option<String>,
}

/// What one minute of the controller did.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub tick: TickReport,
    /// The aggregate the tick published, when its pass completed (read without counting).
    pub decided: Option<Decided>,
}

/// A short name for a tick outcome, to compare two controllers' decisions.
pub fn label(o: &TickOutcome) -> String {
    match o {
        TickOutcome::Inactive => "inactive".into(),
        TickOutcome::Hold(h) => {
            let v = serde_json::to_value(h).unwrap_or_default();
            format!("hold:{}", v["kind"].as_str().unwrap_or("?"))
        }
        TickOutcome::Advance(_) => "advance".into(),
        TickOutcome::AwaitApproval(_) => "await_approval".into(),
        TickOutcome::Complete(_) => "complete".into(),
        TickOutcome::Rollback(_) => "rollback".into(),
    }
}

/// Per-arm evidence from per-key stats (intention to treat: every upstream of the arm).
pub fn evidence(stats: &BTreeMap<MetricKey, Stats>, trips: u64, pct: Percent) -> StageEvidence {
    let arm = |a: Arm| ArmEvidence::from_stats(&super::truth::arm(stats, a));
    StageEvidence {
        treatment: arm(Arm::Treatment),
        control: arm(Arm::Control),
        breaker_trips: trips,
        expected_treatment_percentage: pct,
        shadow_samples: None,
    }
}

/// The trips counter of a stored breaker snapshot.
pub fn trips_in(text: Option<String>) -> u64 {
    text.and_then(|t| parse_value::<BreakerSnapshot>("breaker", &t).ok())
        .map_or(0, |s| s.trips)
}

fn write_routing<S: StateStore>(store: &S, st: &mut ControllerState, now_ms: u64) {
    let mut overrides = Map::new();
    match st.rollout.routing() {
        Routing::RolledBack => {
            overrides.insert("LIGHTRAG_EMERGENCY_ROLLBACK".into(), json!("true"));
            overrides.insert("LIGHTRAG_ROLLOUT_PERCENTAGE".into(), json!("0"));
        }
        Routing::Percentage(p) => {
            overrides.insert(
                "LIGHTRAG_ROLLOUT_PERCENTAGE".into(),
                json!(p.percent().to_string()),
            );
        }
        Routing::Inactive => {}
    }
    st.overrides_version += 1;
    let doc = OverridesDoc {
        version: st.overrides_version,
        overrides,
        updated_ms: now_ms,
    };
    let text = serde_json::to_string(&doc).unwrap_or_default();
    let _ = block_on(store.put(CONFIG_KEY, &text, None));
}

/// One cron minute at `now_ms`: the aggregation tick, the rollout tick on a completed pass,
/// the routing write when it changed, and the cron isolate's refresh. `config` is the cron
/// isolate's configuration (its gate policy and switches).
pub fn controller_step<S: StateStore>(
    store: &S,
    st: &mut ControllerState,
    config: &Config,
    now_ms: u64,
) -> StepReport {
    if !st.started {
        st.started = true;
        let id = RolloutId::try_new("sim-1").unwrap_or_else(|e| panic!("{e}"));
        let plan = st.plan.clone();
        st.rollout
            .apply(
                Operation::Start {
                    rollout_id: id,
                    plan,
                },
                now_ms,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        write_routing(store, st, now_ms);
    }
    let tick = block_on(store.run_tick(now_ms, &config.quality_gate, CONTROLLER_MAX_OPS));
    let mut decided = None;
    if tick.completed {
        let doc = block_on(store.get(ROLLOUT_KEY))
            .ok()
            .flatten()
            .and_then(|t| parse_value::<RolloutDoc>(ROLLOUT_KEY, &t).ok());
        let trips = trips_in(
            block_on(store.get(&breaker_key(Upstream::Lightrag)))
                .ok()
                .flatten(),
        );
        if let Some(agg) = doc.and_then(|d| d.aggregate) {
            let stage = st.rollout.run().map(|r| r.stage_index);
            if stage != st.stage_index {
                st.stage_index = stage;
                st.trips_at_stage_start = trips;
            }
            let pct = st.rollout.current_percentage();
            let ev = evidence(
                &agg.stats,
                trips.saturating_sub(st.trips_at_stage_start),
                pct,
            );
            let before = st.rollout.clone();
            let routing = st.rollout.routing();
            let outcome = st.rollout.tick(&TickInput {
                evidence: &ev,
                switches: &Switches::from_config(config),
                now_ms,
            });
            if st.rollout.routing() != routing {
                write_routing(store, st, now_ms);
            }
            decided = Some(Decided {
                before,
                evidence: ev,
                outcome: label(&outcome),
                detail: outcome.transition().map(|t| t.reason.clone()),
            });
        }
    }
    // edge::admin::run_tick refreshes the cron isolate's view afterwards.
    let _ = block_on(load_remote(store));
    StepReport { tick, decided }
}
