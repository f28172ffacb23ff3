//! Operator commands: the pure half of "no lost operator command".
//!
//! Why commands and not direct writes: Workers KV has no compare-and-swap. If the admin API
//! wrote the state document itself, a cron tick that read the document a moment earlier would
//! write its own version back and silently undo an approve, a pause — or a rollback. Instead
//! the admin API writes each command under its own key ([`command_key`], which sorts by time)
//! with an expiry of [`COMMAND_MAX_AGE_MS`], and the controller, before it evaluates, lists
//! them and applies them with [`Rollout::apply_commands`]. A tick can then never overwrite a
//! command: at worst it misses one written after its listing, which the next tick applies.
//!
//! Rules, so that applying is idempotent and in order whatever KV's listing shows:
//! - Commands are applied in `(issued_at, id)` order.
//! - An id already handled is a no-op ([`CommandOutcome::Duplicate`]), so listing the same
//!   keys every minute until they expire changes nothing.
//! - A command older than [`COMMAND_MAX_AGE_MS`] is refused as expired, never applied: an
//!   approve that surfaces an hour late must not promote a rollout nobody is watching.
//! - A command issued *before* the newest one already applied is superseded (KV's eventual
//!   consistency can show a later command first): the operator's last word wins. Except
//!   `rollback`, which always applies when the phase allows it — a late rollback is still a
//!   rollback.
//! - Handled ids are remembered for [`COMMAND_MAX_AGE_MS`] (and at most [`HANDLED_LIMIT`]),
//!   after which their commands would be expired anyway.
//!
//! - A command takes effect at its `issued_at` (clamped between the rollout's last change and
//!   `now`), so the stage clock and the transition times say when the operator acted, not when
//!   the next cron tick noticed.
//!
//! The isolate that takes the admin call may also apply the command to its own cached copy at
//! once (so its routing changes immediately); the controller's copy is the one that is stored.

use crate::core::json;
use crate::core::rollout::error::StateError;
use crate::core::rollout::event::EventKind;
use crate::core::rollout::ids::{CommandId, RolloutId};
use crate::core::rollout::machine::Rollout;
use crate::core::rollout::operation::{OpKind, Operation};
use crate::core::rollout::plan::Plan;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// KV prefix of command keys.
pub const COMMAND_PREFIX: &str = "rollout/commands/";
/// A command older than this is expired (and its key should expire with it).
pub const COMMAND_MAX_AGE_MS: u64 = 3_600_000;
/// Most handled ids remembered.
pub const HANDLED_LIMIT: usize = 500;
/// Command results kept for the status page.
pub const RECENT_LIMIT: usize = 20;

/// `rollout/commands/<issued_at, 16 digits>-<id>`: lexicographic order is time order.
pub fn command_key(issued_at: u64, id: &CommandId) -> String {
    format!("{COMMAND_PREFIX}{issued_at:016}-{id}")
}

/// One operator command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub id: CommandId,
    /// Epoch ms at which the admin API accepted it.
    pub issued_at: u64,
    pub op: Operation,
}

/// Serde shape of a command in KV: `{"id": "c-…", "issued_at": 1700000000000, "op": "start",
/// "rollout_id": "r-…", "plan": Plan}`; `rollout_id` and `plan` only for `start`, `note` only
/// for `rollback`.
#[derive(Serialize, Deserialize)]
struct CommandWire {
    id: CommandId,
    issued_at: u64,
    op: OpKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout_id: Option<RolloutId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan: Option<Plan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl Command {
    pub fn key(&self) -> String {
        command_key(self.issued_at, &self.id)
    }

    pub fn to_json(&self) -> String {
        let (rollout_id, plan, note) = match &self.op {
            Operation::Start { rollout_id, plan } => {
                (Some(rollout_id.clone()), Some(plan.clone()), None)
            }
            Operation::Rollback { note } => (None, None, note.clone()),
            _ => (None, None, None),
        };
        let w = CommandWire {
            id: self.id.clone(),
            issued_at: self.issued_at,
            op: self.op.kind(),
            rollout_id,
            plan,
            note,
        };
        serde_json::to_string(&w).unwrap_or_default()
    }

    /// Parses a stored command; a corrupt one is an error (the edge logs it and skips it).
    pub fn from_json(s: &str) -> Result<Command, StateError> {
        let w: CommandWire = crate::core::json::from_text(s)
            .map_err(|e| StateError::new(format!("rollout command: {e}")))?;
        let op = match w.op {
            OpKind::Start => match (w.rollout_id, w.plan) {
                (Some(rollout_id), Some(plan)) => Operation::Start { rollout_id, plan },
                _ => {
                    return Err(StateError::new(
                        "rollout command: start needs rollout_id and plan",
                    ))
                }
            },
            OpKind::Approve => Operation::Approve,
            OpKind::Advance => Operation::Advance,
            OpKind::Pause => Operation::Pause,
            OpKind::Resume => Operation::Resume,
            OpKind::Rollback => Operation::Rollback { note: w.note },
        };
        Ok(Command {
            id: w.id,
            issued_at: w.issued_at,
            op,
        })
    }
}

/// What became of a command (serde: `{"status": "applied", "event": "paused"}`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandOutcome {
    /// Applied; the transition it caused is in the history.
    Applied { event: EventKind },
    /// Already handled earlier: nothing done.
    Duplicate,
    /// Issued before a command already applied, and not a rollback.
    Superseded { by_issued_at: u64 },
    /// Older than [`COMMAND_MAX_AGE_MS`].
    Expired,
    /// The phase did not allow it (the 409 message).
    Rejected { message: String },
}

impl CommandOutcome {
    /// The outcome from its object (the tag `status`); also the flattened part of a
    /// [`CommandResult`]. By hand, not derived: `json::deserialize_with` says why.
    fn from_value(v: &Value) -> Result<Self, serde_json::Error> {
        let m = json::members(v, "internally tagged enum CommandOutcome")?;
        match json::tag(m, "status")? {
            "applied" => {
                #[derive(Deserialize)]
                struct Applied {
                    event: EventKind,
                }
                Ok(CommandOutcome::Applied {
                    event: Applied::deserialize(v)?.event,
                })
            }
            "duplicate" => Ok(CommandOutcome::Duplicate),
            "superseded" => {
                #[derive(Deserialize)]
                struct Superseded {
                    by_issued_at: u64,
                }
                Ok(CommandOutcome::Superseded {
                    by_issued_at: Superseded::deserialize(v)?.by_issued_at,
                })
            }
            "expired" => Ok(CommandOutcome::Expired),
            "rejected" => {
                #[derive(Deserialize)]
                struct Rejected {
                    message: String,
                }
                Ok(CommandOutcome::Rejected {
                    message: Rejected::deserialize(v)?.message,
                })
            }
            other => Err(json::unknown_variant(
                other,
                &["applied", "duplicate", "superseded", "expired", "rejected"],
            )),
        }
    }
}

impl<'de> Deserialize<'de> for CommandOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_with(d, CommandOutcome::from_value)
    }
}

/// A command's id, operation and outcome, for the status page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandResult {
    pub id: CommandId,
    pub op: OpKind,
    pub issued_at: u64,
    /// Epoch ms at which the controller handled it.
    pub handled_at: u64,
    #[serde(flatten)]
    pub outcome: CommandOutcome,
}

// By hand: a derive with `flatten` buffers through serde's `Content` (`json::deserialize_with`).
impl<'de> Deserialize<'de> for CommandResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_with(d, |v| {
            #[derive(Deserialize)]
            struct Head {
                id: CommandId,
                op: OpKind,
                issued_at: u64,
                handled_at: u64,
            }
            json::members(v, "struct CommandResult")?;
            let h = Head::deserialize(v)?;
            Ok(CommandResult {
                id: h.id,
                op: h.op,
                issued_at: h.issued_at,
                handled_at: h.handled_at,
                outcome: CommandOutcome::from_value(v)?,
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Handled {
    id: CommandId,
    issued_at: u64,
}

/// The commands a rollout has handled: what makes applying them idempotent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandLog {
    /// Handled ids, oldest first.
    handled: Vec<Handled>,
    /// `issued_at` of the newest applied command.
    latest_applied: Option<u64>,
    /// Commands issued at or before this were forgotten (expired from the log).
    floor: u64,
    /// The last [`RECENT_LIMIT`] results, oldest first.
    recent: Vec<CommandResult>,
}

impl CommandLog {
    pub fn is_handled(&self, id: &CommandId) -> bool {
        self.handled.iter().any(|h| &h.id == id)
    }

    pub fn latest_applied(&self) -> Option<u64> {
        self.latest_applied
    }

    /// The last results, oldest first.
    pub fn recent(&self) -> &[CommandResult] {
        &self.recent
    }

    /// Forgets ids whose commands are expired anyway, and keeps at most [`HANDLED_LIMIT`].
    fn prune(&mut self, now: u64) {
        let mut floor = self.floor;
        self.handled.retain(|h| {
            let keep = h.issued_at.saturating_add(COMMAND_MAX_AGE_MS) >= now;
            if !keep {
                floor = floor.max(h.issued_at);
            }
            keep
        });
        if self.handled.len() > HANDLED_LIMIT {
            crate::core::order::sort_by(&mut self.handled, |a, b| a.issued_at.cmp(&b.issued_at));
            let excess = self.handled.len() - HANDLED_LIMIT;
            for h in self.handled.drain(..excess) {
                floor = floor.max(h.issued_at);
            }
        }
        self.floor = floor;
    }

    fn handle(&mut self, c: &Command, result: CommandResult) {
        self.handled.push(Handled {
            id: c.id.clone(),
            issued_at: c.issued_at,
        });
        self.recent.push(result);
        if self.recent.len() > RECENT_LIMIT {
            let excess = self.recent.len() - RECENT_LIMIT;
            self.recent.drain(..excess);
        }
    }
}

impl Rollout {
    /// Applies the listed commands in `(issued_at, id)` order; see the module docs. Returns one
    /// result per command (duplicates included, so the caller can log what it skipped).
    pub fn apply_commands(&mut self, commands: &[Command], now_ms: u64) -> Vec<CommandResult> {
        let mut sorted: Vec<&Command> = commands.iter().collect();
        crate::core::order::sort_by(&mut sorted, |a, b| {
            (a.issued_at, &a.id).cmp(&(b.issued_at, &b.id))
        });
        self.commands.prune(now_ms);
        sorted
            .into_iter()
            .map(|c| self.apply_one(c, now_ms))
            .collect()
    }

    fn apply_one(&mut self, c: &Command, now: u64) -> CommandResult {
        let result = |outcome| CommandResult {
            id: c.id.clone(),
            op: c.op.kind(),
            issued_at: c.issued_at,
            handled_at: now,
            outcome,
        };
        if self.commands.is_handled(&c.id) {
            return result(CommandOutcome::Duplicate);
        }
        if c.issued_at <= self.commands.floor && self.commands.floor > 0 {
            // Already forgotten: certainly expired, and possibly seen before. Report, but do
            // not record it again.
            return result(CommandOutcome::Expired);
        }
        let outcome = if c.issued_at.saturating_add(COMMAND_MAX_AGE_MS) < now {
            CommandOutcome::Expired
        } else {
            match self.commands.latest_applied {
                Some(latest) if c.issued_at < latest && c.op.kind() != OpKind::Rollback => {
                    CommandOutcome::Superseded {
                        by_issued_at: latest,
                    }
                }
                _ => match self.apply_command(c.op.clone(), self.effective_time(c, now), &c.id) {
                    Ok(t) => {
                        self.commands.latest_applied = Some(
                            self.commands
                                .latest_applied
                                .map_or(c.issued_at, |l| l.max(c.issued_at)),
                        );
                        CommandOutcome::Applied { event: t.event }
                    }
                    Err(e) => CommandOutcome::Rejected { message: e.message },
                },
            }
        };
        let r = result(outcome);
        self.commands.handle(c, r.clone());
        let at = self.effective_time(c, now);
        self.bump(at);
        r
    }

    /// When a command takes effect: when it was issued — so a pause seen a minute late still
    /// stops the stage clock from its issue — but never before the rollout's last change (time
    /// does not run backwards in the machine) nor after `now`.
    fn effective_time(&self, c: &Command, now: u64) -> u64 {
        c.issued_at.min(now).max(self.updated_at)
    }

    /// Whether `op` would be accepted now, without changing anything (for the admin API's
    /// immediate 409 before it queues a command).
    pub fn check(&self, op: &Operation, now_ms: u64) -> Result<(), crate::core::rollout::OpError> {
        self.clone().apply(op.clone(), now_ms).map(|_| ())
    }
}
