//! The cron controller (docs/rollout.md, docs/architecture.md#rollout-controller): once a
//! minute, and on `POST /admin/controller/tick`, it applies the operators' queued commands,
//! aggregates the isolates' metric flushes, evaluates the quality gate, runs the rollout's tick
//! on the current stage's evidence and writes what changed.
//!
//! Why here and not in `edge`: every rule of it — which KV operations a tick makes and in what
//! order, how a minute is counted exactly once, which traffic is a stage's evidence, when the
//! routing document is rewritten, what an operator's command projects to — is logic worth
//! testing natively on a virtual clock with an in-memory store; the Worker only supplies
//! `now_ms`, the config and the KV binding, and sends the webhooks the tick reports.
//!
//! One concern per file:
//! - [`routing`] — `rollout/routing`, the small document isolates route by, and the stage tag;
//! - [`ledger`] — committing settled minutes once: monotonic totals and a stage's evidence;
//! - [`doc`] — `controller/state`, the controller's bookkeeping;
//! - [`evidence`] — per-key statistics → the gates' evidence and the experiment's arms;
//! - [`operator`] — the admin API's projection of queued commands (409s, `GET /admin/rollout`);
//! - [`tick`] — one tick over a [`crate::core::store::StateStore`].

pub mod doc;
pub mod evidence;
pub mod ledger;
pub mod operator;
pub mod routing;
pub mod tick;

pub use doc::{Aggregate, ControllerDoc, PassProgress, StageBook, CONTROLLER_KEY};
pub use ledger::{settle_ms, Ledger};
pub use operator::{read_projection, view, PendingCommand, Projection, ReadError, RolloutView};
pub use routing::{RoutingDoc, RoutingMode, SplitTag, Writer, PROJECTION_HOLD_MS, ROUTING_KEY};
pub use tick::{controller_tick, ControllerInput, TickReport, TickSkipped};
