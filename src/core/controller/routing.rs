//! `rollout/routing`: the small document every isolate routes by.
//!
//! Why a document of its own: the rollout's state (`rollout/state`) is ~21 KB after a completed
//! 11-stage rollout (plan, history, command log, last evaluation), and every isolate reads its
//! routing input at every refresh. What routing needs is a handful of fields: whether a rollout
//! drives the percentage, which percentage, whether it rolled back, which stage (so that the
//! isolate can tag the traffic it records with the stage it was routed at), and the quality
//! gate's verdict. The controller writes this document when one of those changes; the admin API
//! writes it too, right after it queues an operator's command, with the state that command
//! leads to (a *projection*), so the fleet follows an operator within `STATE_REFRESH_SECONDS`
//! instead of waiting for the next cron tick.
//!
//! Two writers and no compare-and-swap: a tick that read the state before an operator's command
//! may write a routing document that does not know it yet. So an isolate keeps an operator's
//! projection against a controller document with a lower revision for
//! [`PROJECTION_HOLD_MS`] (the controller applies the command within a tick or two and then
//! writes a revision at least as high: applying a command and ticking both bump the revision);
//! otherwise the document it reads wins.

use crate::core::cohort::Percent;
use crate::core::rollout::{PhaseName, Rollout, RolloutId, Routing};
use serde::{Deserialize, Serialize};
use std::fmt;

/// KV key of the routing document.
pub const ROUTING_KEY: &str = "rollout/routing";
/// How long an operator's projection beats a controller document with a lower revision.
pub const PROJECTION_HOLD_MS: u64 = 300_000;

/// Who wrote a routing document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writer {
    /// The cron controller, from the stored state.
    Controller,
    /// The admin API, from the stored state plus the operator's queued commands.
    Operator,
}

/// What the rollout does to routing (serde: snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    /// No rollout: `LIGHTRAG_ROLLOUT_PERCENTAGE` applies.
    Inactive,
    /// The rollout's percentage replaces the configured one.
    Percentage,
    /// Everybody to Perplexity, forced users included.
    RolledBack,
}

/// The stage traffic was routed at: `<rollout_id>/<stage_index>`. Isolates record the
/// experiment's traffic under it, and the controller counts only traffic tagged with the stage
/// it evaluates, so requests routed at the previous stage's split (by an isolate that had not
/// refreshed yet) never enter a stage's evidence or its sample-ratio check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SplitTag(String);

impl SplitTag {
    pub fn stage(rollout_id: &RolloutId, stage_index: usize) -> SplitTag {
        SplitTag(format!("{rollout_id}/{stage_index}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag of the stage `rollout` evaluates now: only running phases (progressing,
    /// awaiting approval, paused) have one.
    pub fn of(rollout: &Rollout) -> Option<SplitTag> {
        match rollout.phase_name() {
            PhaseName::Progressing | PhaseName::AwaitingApproval | PhaseName::Paused => rollout
                .run()
                .map(|r| SplitTag::stage(&r.rollout_id, r.stage_index)),
            _ => None,
        }
    }
}

impl fmt::Display for SplitTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The routing document.
///
/// Serde shape: `{"revision": 14, "updated_ms": 1700000000000, "by": "controller",
/// "phase": "progressing", "routing": "percentage", "percentage": 15.0, "rollout_id": "r-…",
/// "stage_index": 1, "split": "r-…/1", "quality_gate_closed": false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingDoc {
    /// The rollout state's revision this was computed from.
    pub revision: u64,
    pub updated_ms: u64,
    pub by: Writer,
    pub phase: PhaseName,
    pub routing: RoutingMode,
    #[serde(with = "crate::core::rollout::pct")]
    pub percentage: Percent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<RolloutId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_index: Option<usize>,
    /// The stage whose evidence is being collected, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitTag>,
    /// The quality gate's verdict (the controller's; a projection carries the writer's copy).
    #[serde(default)]
    pub quality_gate_closed: bool,
}

impl RoutingDoc {
    /// The routing `rollout` implies.
    pub fn of(rollout: &Rollout, quality_gate_closed: bool, by: Writer, now_ms: u64) -> RoutingDoc {
        let routing = match rollout.routing() {
            Routing::Inactive => RoutingMode::Inactive,
            Routing::Percentage(_) => RoutingMode::Percentage,
            Routing::RolledBack => RoutingMode::RolledBack,
        };
        let run = rollout.run();
        RoutingDoc {
            revision: rollout.revision(),
            updated_ms: now_ms,
            by,
            phase: rollout.phase_name(),
            routing,
            percentage: rollout.current_percentage(),
            rollout_id: run.map(|r| r.rollout_id.clone()),
            stage_index: run.map(|r| r.stage_index),
            split: SplitTag::of(rollout),
            quality_gate_closed,
        }
    }

    /// The percentage to route by, when a rollout drives it.
    pub fn route_percentage(&self) -> Option<Percent> {
        match self.routing {
            RoutingMode::Percentage => Some(self.percentage),
            RoutingMode::Inactive | RoutingMode::RolledBack => None,
        }
    }

    pub fn rolled_back(&self) -> bool {
        self.routing == RoutingMode::RolledBack
    }

    /// Whether the routing differs (ignoring who wrote it, when and at which revision).
    pub fn same_routing(&self, other: &RoutingDoc) -> bool {
        (
            self.phase,
            self.routing,
            self.percentage,
            &self.rollout_id,
            self.stage_index,
            &self.split,
            self.quality_gate_closed,
        ) == (
            other.phase,
            other.routing,
            other.percentage,
            &other.rollout_id,
            other.stage_index,
            &other.split,
            other.quality_gate_closed,
        )
    }

    /// Whether an isolate holding `held` adopts `self` (see the module docs): yes, unless
    /// `held` is an operator's projection younger than [`PROJECTION_HOLD_MS`] with a higher
    /// revision.
    pub fn supersedes(&self, held: Option<&RoutingDoc>, now_ms: u64) -> bool {
        match held {
            None => true,
            Some(h) => {
                self.revision >= h.revision
                    || !(h.by == Writer::Operator
                        && now_ms < h.updated_ms.saturating_add(PROJECTION_HOLD_MS))
            }
        }
    }

    /// Whether an isolate holding `held` drops it when the key is missing: a fresh operator
    /// projection is kept (the key may not have propagated yet), anything else goes.
    pub fn keep_when_absent(held: &RoutingDoc, now_ms: u64) -> bool {
        held.by == Writer::Operator && now_ms < held.updated_ms.saturating_add(PROJECTION_HOLD_MS)
    }
}
