//! The admin API's side of "no lost operator command", pure: what the rollout will be once the
//! controller has applied the queued commands (the *projection*), whether a new operation is
//! allowed there (409 otherwise), and the command to queue.
//!
//! Why project instead of reading the stored state alone: an operator who pauses and resumes
//! before the next cron tick must be able to resume (the stored state still says
//! `progressing`), and `GET /admin/rollout` right after a `pause` should say `paused`. The
//! projection applies the listed commands exactly as the controller will
//! ([`Rollout::apply_commands`]: in issue order, duplicates skipped), so the answer the operator
//! gets is the state the controller will store, and the routing document the admin API writes
//! from it is the routing the controller will write.

use crate::core::rollout::status::RolloutStatus;
use crate::core::rollout::{Command, CommandId, CommandOutcome, OpError, Operation, Rollout};
use serde::Serialize;

/// The stored rollout with the queued commands applied.
#[derive(Debug, Clone)]
pub struct Projection {
    pub rollout: Rollout,
    /// Commands the stored state has not handled yet (ids), oldest first.
    pub pending: Vec<PendingCommand>,
}

/// A queued command the controller has not handled yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingCommand {
    pub id: CommandId,
    pub op: &'static str,
    pub issued_at: u64,
}

impl Projection {
    /// `stored` with `commands` (as listed from KV, handled ones included) applied at `now_ms`.
    pub fn new(stored: &Rollout, commands: &[Command], now_ms: u64) -> Projection {
        let mut pending: Vec<PendingCommand> = commands
            .iter()
            .filter(|c| !stored.commands().is_handled(&c.id))
            .map(|c| PendingCommand {
                id: c.id.clone(),
                op: c.op.kind().as_str(),
                issued_at: c.issued_at,
            })
            .collect();
        crate::core::order::sort_by(&mut pending, |a, b| {
            (a.issued_at, &a.id).cmp(&(b.issued_at, &b.id))
        });
        let mut rollout = stored.clone();
        rollout.apply_commands(commands, now_ms);
        Projection { rollout, pending }
    }

    /// Queues `op`: refused (409) when the projected phase does not allow it; else the command
    /// to write and the projection with it applied.
    pub fn issue(
        &self,
        op: Operation,
        id: CommandId,
        now_ms: u64,
    ) -> Result<(Command, Projection), OpError> {
        self.rollout.check(&op, now_ms)?;
        let cmd = Command {
            id,
            issued_at: now_ms,
            op,
        };
        let mut rollout = self.rollout.clone();
        let results = rollout.apply_commands(std::slice::from_ref(&cmd), now_ms);
        if let Some(CommandOutcome::Rejected { message }) = results.first().map(|r| &r.outcome) {
            // `check` passed, so only a clock behind the rollout's last change gets here.
            return Err(OpError {
                op: cmd.op.kind(),
                phase: self.rollout.phase_name(),
                message: message.clone(),
            });
        }
        let mut pending = self.pending.clone();
        pending.push(PendingCommand {
            id: cmd.id.clone(),
            op: cmd.op.kind().as_str(),
            issued_at: cmd.issued_at,
        });
        Ok((cmd, Projection { rollout, pending }))
    }
}

/// `GET /admin/rollout`: the projected status, and what is still queued.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    #[serde(flatten)]
    pub status: RolloutStatus,
    /// Commands queued but not yet applied by the controller (the status above includes them).
    pub pending_commands: Vec<PendingCommand>,
}

/// Why the rollout could not be read for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// KV failed (503).
    Store(String),
    /// `rollout/state` is corrupt or inconsistent (503: an operator must look at it; nothing is
    /// queued on top of a state nobody can read).
    Corrupt(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Store(m) => write!(f, "KV unavailable: {m}"),
            ReadError::Corrupt(m) => write!(
                f,
                "the stored rollout state cannot be read ({m}); the controller skips its ticks until an operator fixes or deletes `{}`",
                crate::core::store::ROLLOUT_KEY
            ),
        }
    }
}

/// Reads `rollout/state` and the queued commands and projects them at `now_ms` (1 read, 1 list,
/// 1 read per queued command). Unreadable queued commands are skipped and named in the
/// returned warnings, as the controller skips them.
pub async fn read_projection<S: crate::core::store::StateStore>(
    store: &S,
    now_ms: u64,
) -> Result<(Projection, Vec<String>), ReadError> {
    use crate::core::rollout::command::COMMAND_PREFIX;
    use crate::core::store::ROLLOUT_KEY;
    let stored = match store.get(ROLLOUT_KEY).await {
        Ok(Some(text)) => {
            Rollout::from_json(&text).map_err(|e| ReadError::Corrupt(e.to_string()))?
        }
        Ok(None) => Rollout::new(),
        Err(e) => return Err(ReadError::Store(e.to_string())),
    };
    let page = store
        .list(COMMAND_PREFIX, None, super::tick::MAX_COMMANDS)
        .await
        .map_err(|e| ReadError::Store(e.to_string()))?;
    let mut commands = Vec::new();
    let mut warnings = Vec::new();
    for key in &page.keys {
        match store.get(key).await {
            Ok(Some(text)) => match Command::from_json(&text) {
                Ok(c) => commands.push(c),
                Err(e) => warnings.push(format!("queued command `{key}` ignored: {e}")),
            },
            Ok(None) => {}
            Err(e) => return Err(ReadError::Store(e.to_string())),
        }
    }
    Ok((Projection::new(&stored, &commands, now_ms), warnings))
}

/// The `GET /admin/rollout` document of a projection at `now_ms`.
pub fn view(p: &Projection, now_ms: u64) -> RolloutView {
    RolloutView {
        status: crate::core::rollout::status::status(&p.rollout, now_ms),
        pending_commands: p.pending.clone(),
    }
}
