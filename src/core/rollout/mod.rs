//! The self-driving rollout (docs/architecture.md#rollout-controller): a staged plan, measured gates, automatic promotion and
//! rollback, operator commands — as a pure state machine.
//!
//! Why a pure machine: the system this replaces had a rollout manager whose canaries could not
//! be approved, which rolled every rollout back after 20 requests when quality metrics were
//! off, and whose state file was invalid JSON. Each of those is a decision bug, and decisions
//! are testable without a runtime. So everything here takes `now_ms` and the evidence as
//! arguments and returns what to do; the edge only reads KV, calls [`Rollout::tick`] once per
//! cron run, writes the document back and sends the webhook. Tests drive the machine on a
//! virtual clock (`tests/rollout_*.rs`) like quinn's connection tests.
//!
//! One concern per file, in the order a tick uses them:
//! - [`stage`] — one stage's target, minimum duration and gate thresholds, with their defaults;
//! - [`plan`] — the validated plan: stages + safety limits;
//! - [`strategy`] — linear, exponential, canary and steps, each building a plan;
//! - [`request`] — the admin request JSON → a plan, refusing bad input with the field's name;
//! - [`timeline`] — the plan's percentage over time, for the preview page's chart;
//! - [`evidence`] — what the controller measured this stage, per arm;
//! - [`gates`] — evidence + stage thresholds + switches → gate results;
//! - [`emergency`] — the breach that rolls back at once;
//! - [`machine`] — the rollout: phase, history, revision; the order of a tick's decisions;
//! - [`phase`] — the six phases, each carrying its data, and a started rollout's run;
//! - [`operation`] — start / approve / advance / pause / resume / rollback;
//! - [`tick`] — the controller's tick on a stage's evidence;
//! - [`event`] — transition records: the bounded history and the webhook payload (one type);
//! - [`command`] — operator commands with unique ids, applied idempotently and in order;
//! - [`state`] — the versioned JSON document that survives restarts;
//! - [`status`] — the `GET /admin/rollout` view.
//!
//! Architecture invariant: nothing here reads a clock, KV or the network; a corrupt stored
//! document is an error value, never a silent default.

pub mod command;
pub mod emergency;
pub mod error;
pub mod event;
pub mod evidence;
pub mod gates;
pub mod machine;
pub mod operation;
pub mod phase;
pub mod plan;
pub mod request;
pub mod stage;
pub mod state;
pub mod status;
pub mod strategy;
pub mod tick;
pub mod timeline;

mod decimal;
mod ids;
pub mod pct;

pub use command::{Command, CommandOutcome, CommandResult};
pub use error::{OpError, PlanError, StateError};
pub use event::{EventKind, Transition};
pub use evidence::{ArmEvidence, StageEvidence};
pub use gates::{GateName, GateResult, GateStatus, Switches};
pub use ids::{CommandId, RolloutId};
pub use machine::Rollout;
pub use operation::{OpKind, Operation};
pub use phase::{Phase, PhaseName, Routing, Run};
pub use plan::{Plan, Safety, Strategy};
pub use stage::{Stage, StageGates};
pub use tick::{HoldReason, TickInput, TickOutcome};
