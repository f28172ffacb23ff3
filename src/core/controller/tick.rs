//! One cron tick of the controller, over a [`StateStore`].
//!
//! Order (each step's KV operations in brackets; docs/rollout.md#documents):
//! 1. Read `controller/state` and `rollout/state` [2 reads]. A failed read or a value that
//!    does not parse skips the tick and writes nothing: without them the controller cannot
//!    know a rollback, the quality gate's verdict or the pass in progress, and writing
//!    defaults would undo them (only a missing key starts from defaults).
//! 2. List `rollout/commands/` and read each [1 list + 1 read per queued command]; a command
//!    that does not parse is skipped with a warning. Read `breaker/lightrag` and
//!    `breaker/perplexity` [2 reads] for the fleet's trip counters.
//! 3. Apply the commands ([`Rollout::apply_commands`]: issue order, duplicates skipped).
//! 4. Continue (or start) the pass over `metrics/` [1 list per page + 1 read per isolate], as
//!    far as the budget allows; a pass that does not fit resumes on the next tick.
//! 5. When the pass completes: commit the settled minutes to the fleet totals and the stage's
//!    ledger ([`super::ledger`]), evaluate the quality gate on the last hour, take the
//!    experiment's look, and run the rollout's tick on the stage's cumulative evidence.
//! 6. Write `rollout/state` when it changed, `rollout/routing` when the routing changed or a
//!    command was handled, and `controller/state` [≤ 3 writes].
//!
//! A command written while a tick runs is never overwritten: it lives under its own key, and
//! the next tick applies it (the tick's own write of `rollout/state` does not touch it).

use super::doc::{Aggregate, ControllerDoc, PassProgress, StageBook, CONTROLLER_KEY};
use super::evidence::{report, stage_evidence};
use super::ledger::{closed_ms, collect_slots, last_hour, settle_ms, sort_slots, Split};
use super::routing::{RoutingDoc, SplitTag, Writer, ROUTING_KEY};
use crate::core::breaker::BreakerSnapshot;
use crate::core::config::Config;
use crate::core::gate::evaluate;
use crate::core::model::Upstream;
use crate::core::rollout::command::COMMAND_PREFIX;
use crate::core::rollout::{
    Command, CommandResult, PhaseName, Rollout, Switches, TickInput, Transition,
};
use crate::core::sorted_map::SortedMap;
use crate::core::store::{
    breaker_key, parse_value, per_upstream, MetricsFlush, StateStore, METRICS_PREFIX, ROLLOUT_KEY,
};
use crate::core::window::Stats;
use serde::{Deserialize, Serialize};

/// Most queued commands read in one tick (they expire after an hour).
pub const MAX_COMMANDS: u32 = 100;

/// Operations every tick makes besides the metric pass and the queued commands: two document
/// reads, the command listing, two breaker reads, at most three writes.
pub const FIXED_OPS: u32 = 8;

/// Why a controller tick did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TickSkipped {
    /// `controller/state` or `rollout/state` could not be read.
    ReadFailed,
    /// `controller/state` or `rollout/state` did not parse (or, for the rollout, did not
    /// validate): kept as it is for an operator to inspect (the warning names it), never
    /// overwritten with defaults.
    Corrupt,
    /// The state backend did not answer the tick (the Durable Object hub, `core::hub`, runs
    /// the tick next to its storage and sends this report back).
    Unreachable,
}

/// What one tick reads besides KV.
#[derive(Debug, Clone, Copy)]
pub struct ControllerInput<'a> {
    pub now_ms: u64,
    /// This isolate's config: the switches, the quality gate's policy, the flush period.
    pub config: &'a Config,
    /// KV operations this tick may make.
    pub max_ops: u32,
}

/// What one controller tick did. (Deserialize too: the Durable Object hub, `core::hub`, sends
/// it back to the Worker that asked for the tick.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TickReport {
    /// Set when the tick did nothing (and wrote nothing).
    pub skipped: Option<TickSkipped>,
    pub ops: u32,
    pub keys_read: u64,
    pub corrupt: u64,
    /// The pass finished this tick (aggregate, gate, ledgers and the rollout's tick ran).
    pub completed: bool,
    /// The pass continues on the next tick from this cursor.
    pub resume_cursor: Option<String>,
    pub gate_closed: bool,
    /// The rollout after this tick.
    pub phase: Option<PhaseName>,
    pub percentage: Option<f64>,
    pub revision: u64,
    /// What became of each queued command.
    pub commands: Vec<CommandResult>,
    /// Transitions this tick caused (commands and the rollout's own tick): the webhook's
    /// payloads, in order.
    pub transitions: Vec<Transition>,
    /// The tick's one-line decision, when the rollout was evaluated.
    pub decision: Option<String>,
    pub warnings: Vec<String>,
}

/// Reads a document: `Ok(None)` when missing, `Err` (after noting why) when it cannot be used.
async fn read_doc<S: StateStore, T>(
    store: &S,
    key: &str,
    rep: &mut TickReport,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, ()> {
    rep.ops += 1;
    match store.get(key).await {
        Ok(Some(text)) => match parse(&text) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                rep.warnings.push(format!(
                    "KV value `{key}` is corrupt and was kept as it is: {e}"
                ));
                rep.skipped = Some(TickSkipped::Corrupt);
                Err(())
            }
        },
        Ok(None) => Ok(None),
        Err(e) => {
            rep.warnings.push(e.to_string());
            rep.skipped = Some(TickSkipped::ReadFailed);
            Err(())
        }
    }
}

async fn read_commands<S: StateStore>(store: &S, rep: &mut TickReport) -> Vec<Command> {
    rep.ops += 1;
    let page = match store.list(COMMAND_PREFIX, None, MAX_COMMANDS).await {
        Ok(p) => p,
        Err(e) => {
            rep.warnings.push(e.to_string());
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for key in &page.keys {
        rep.ops += 1;
        match store.get(key).await {
            Ok(Some(text)) => match Command::from_json(&text) {
                Ok(c) => out.push(c),
                Err(e) => rep
                    .warnings
                    .push(format!("queued command `{key}` ignored: {e}")),
            },
            Ok(None) => {} // expired between list and get
            Err(e) => rep.warnings.push(e.to_string()),
        }
    }
    out
}

async fn read_trips<S: StateStore>(store: &S, doc: &mut ControllerDoc, rep: &mut TickReport) {
    for u in Upstream::ALL {
        rep.ops += 1;
        let key = breaker_key(u);
        match store.get(&key).await {
            Ok(Some(text)) => match parse_value::<BreakerSnapshot>(&key, &text) {
                Ok(s) => {
                    let seen = doc.breaker_trips.entry(u).or_default();
                    *seen = (*seen).max(s.trips);
                }
                Err(e) => rep.warnings.push(e.to_string()),
            },
            Ok(None) => {}
            Err(e) => rep.warnings.push(e.to_string()),
        }
    }
}

/// Opens a new stage book when the rollout's current stage is not the one being collected.
fn align_stage(doc: &mut ControllerDoc, rollout: &Rollout, now_ms: u64) {
    let want = SplitTag::of(rollout);
    if doc.stage.as_ref().map(|b| &b.split) == want.as_ref() {
        return;
    }
    let trips = doc
        .breaker_trips
        .get(&Upstream::Lightrag)
        .copied()
        .unwrap_or(0);
    doc.stage =
        want.map(|split| StageBook::open(split, rollout.current_percentage(), trips, now_ms));
}

/// Reads isolate flushes into the pass as far as the budget allows; whether it completed.
async fn run_pass<S: StateStore>(
    store: &S,
    pass: &mut PassProgress,
    split: Split,
    stage_through: StageThrough,
    rep: &mut TickReport,
    max_ops: u32,
) -> bool {
    loop {
        // Reserve one op for the list itself and three for the final writes.
        let room = max_ops.saturating_sub(rep.ops + 4);
        if room == 0 {
            return false;
        }
        let page = match store
            .list(METRICS_PREFIX, pass.cursor.as_deref(), room.min(1000))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                rep.warnings.push(e.to_string());
                rep.ops += 1;
                return false;
            }
        };
        rep.ops += 1;
        for key in &page.keys {
            rep.ops += 1;
            rep.keys_read += 1;
            match store.get(key).await {
                Ok(Some(text)) => match parse_value::<MetricsFlush>(key, &text) {
                    Ok(flush) => fold_flush(pass, &flush, split, stage_through),
                    Err(w) => {
                        pass.corrupt = pass.corrupt.saturating_add(1);
                        rep.corrupt += 1;
                        rep.warnings.push(w.to_string());
                    }
                },
                Ok(None) => {} // expired between list and get
                Err(e) => rep.warnings.push(e.to_string()),
            }
        }
        pass.cursor = page.cursor.clone();
        if page.complete {
            return true;
        }
    }
}

/// The current stage's watermarks: its arms' ledger and its shadow count.
#[derive(Debug, Clone, Copy, Default)]
struct StageThrough {
    arms_ms: u64,
    shadow_ms: u64,
}

fn fold_flush(
    pass: &mut PassProgress,
    flush: &MetricsFlush,
    split: Split,
    stage_through: StageThrough,
) {
    pass.isolates = pass.isolates.saturating_add(1);
    let now = pass.started_ms;
    for (k, w) in &flush.windows {
        collect_slots(*k, w, split.through_ms, &mut pass.slots);
        let mut ignored = crate::core::sorted_map::SortedMap::new();
        sort_slots(*k, w, split, &mut pass.fresh, &mut ignored);
    }
    if let Some(w) = &flush.shadow {
        pass.shadow
            .get_or_insert_with(Stats::default)
            .merge(&w.total(now));
        if pass.split.is_some() {
            // The stage's shadow calls, by time (the series carries no stage tag).
            let shadow_split = Split {
                through_ms: stage_through.shadow_ms,
                closed_ms: split.closed_ms,
            };
            let (mut fresh, mut recent) = (SortedMap::new(), SortedMap::new());
            sort_slots((), w, shadow_split, &mut fresh, &mut recent);
            for s in fresh.values() {
                pass.stage_shadow_fresh.merge(s);
            }
            for s in recent.values() {
                pass.stage_shadow_recent.merge(s);
            }
        }
    }
    for (r, w) in &flush.reasons {
        let mut ignored = crate::core::sorted_map::SortedMap::new();
        sort_slots(r.clone(), w, split, &mut pass.reasons_fresh, &mut ignored);
    }
    if let (Some(want), Some(theirs)) = (&pass.split, &flush.split) {
        if want == &theirs.tag {
            let stage_split = Split {
                through_ms: stage_through.arms_ms,
                closed_ms: split.closed_ms,
            };
            for (k, w) in &theirs.windows {
                sort_slots(
                    *k,
                    w,
                    stage_split,
                    &mut pass.stage_fresh,
                    &mut pass.stage_recent,
                );
            }
        }
    }
}

/// One cron tick; see the module docs.
pub async fn controller_tick<S: StateStore>(store: &S, input: &ControllerInput<'_>) -> TickReport {
    let now = input.now_ms;
    let mut rep = TickReport::default();
    let Ok(doc) = read_doc(store, CONTROLLER_KEY, &mut rep, |t| {
        crate::core::json::from_text::<ControllerDoc>(t).map_err(|e| e.to_string())
    })
    .await
    else {
        return rep;
    };
    let mut doc = doc.unwrap_or_default();
    let Ok(rollout) = read_doc(store, ROLLOUT_KEY, &mut rep, |t| {
        Rollout::from_json(t).map_err(|e| e.to_string())
    })
    .await
    else {
        return rep;
    };
    let mut rollout = rollout.unwrap_or_default();
    let (revision_before, events_before) = (rollout.revision(), events(&rollout));

    let commands = read_commands(store, &mut rep).await;
    read_trips(store, &mut doc, &mut rep).await;
    rep.commands = rollout.apply_commands(&commands, now);
    align_stage(&mut doc, &rollout, now);

    // The pass: continue the one in progress or start one.
    let settle = settle_ms(input.config.metrics_flush_seconds);
    let mut pass = doc.pass.take().unwrap_or_else(|| PassProgress {
        started_ms: now,
        closed_ms: closed_ms(now, settle),
        split: doc.stage.as_ref().map(|b| b.split.clone()),
        ..PassProgress::default()
    });
    pass.ticks = pass.ticks.saturating_add(1);
    let split = Split {
        through_ms: doc.totals.through_ms,
        closed_ms: pass.closed_ms,
    };
    let stage_through = doc
        .stage
        .as_ref()
        .map_or(StageThrough::default(), |b| StageThrough {
            arms_ms: b.ledger.through_ms,
            shadow_ms: b.shadow_through_ms,
        });
    let completed = run_pass(
        store,
        &mut pass,
        split,
        stage_through,
        &mut rep,
        input.max_ops,
    )
    .await;

    if completed {
        complete_pass(&mut doc, pass, now, input.config);
        let switches = Switches::from_config(input.config);
        if let Some(book) = doc.stage.as_mut() {
            let stats = book.stats();
            let trips = doc
                .breaker_trips
                .get(&Upstream::Lightrag)
                .copied()
                .unwrap_or(0)
                .saturating_sub(book.trips_at_open);
            let evidence = stage_evidence(&stats, trips, book.percentage, book.shadow_calls());
            if switches.ab_testing {
                let look = report(&stats, book.percentage, Some(&book.memory), None);
                book.memory = look.memory;
            }
            book.looks = book.looks.saturating_add(1);
            let outcome = rollout.tick(&TickInput {
                evidence: &evidence,
                switches: &switches,
                now_ms: now,
            });
            rep.decision = rollout
                .run()
                .and_then(|r| r.last_evaluation.as_ref())
                .map(|e| e.decision.clone());
            let _ = outcome;
        }
        // A stage that ended this tick starts a fresh book (and a fresh sequence).
        align_stage(&mut doc, &rollout, now);
    } else {
        rep.resume_cursor = pass.cursor.clone();
        doc.pass = Some(pass);
    }
    rep.completed = completed;
    rep.gate_closed = doc.quality_gate_closed;
    doc.updated_ms = now;

    // Transitions since the read: the history's total count only grows.
    let new_events = events(&rollout).saturating_sub(events_before) as usize;
    let history = rollout.history();
    rep.transitions = history[history.len().saturating_sub(new_events)..].to_vec();

    // Writes.
    if rollout.revision() != revision_before {
        rep.ops += 1;
        if let Err(e) = store.put(ROLLOUT_KEY, &rollout.to_json(), None).await {
            rep.warnings.push(e.to_string());
        }
    }
    let routing = RoutingDoc::of(&rollout, doc.quality_gate_closed, Writer::Controller, now);
    let routing_changed = doc
        .routing_written
        .as_ref()
        .is_none_or(|w| !w.same_routing(&routing));
    if routing_changed || !rep.commands.is_empty() {
        rep.ops += 1;
        let text = serde_json::to_string(&routing).unwrap_or_default();
        match store.put(ROUTING_KEY, &text, None).await {
            Ok(()) => doc.routing_written = Some(routing),
            Err(e) => rep.warnings.push(e.to_string()),
        }
    }
    rep.ops += 1;
    let text = serde_json::to_string(&doc).unwrap_or_default();
    if let Err(e) = store.put(CONTROLLER_KEY, &text, None).await {
        rep.warnings.push(e.to_string());
    }
    rep.phase = Some(rollout.phase_name());
    rep.percentage = Some(rollout.current_percentage().percent());
    rep.revision = rollout.revision();
    rep
}

/// Transitions recorded so far (kept and dropped).
fn events(r: &Rollout) -> u64 {
    r.history_dropped().saturating_add(r.history().len() as u64)
}

/// Folds a completed pass into the document: fleet totals, the stage's ledger, the last-hour
/// aggregate and the quality gate.
fn complete_pass(doc: &mut ControllerDoc, pass: PassProgress, now: u64, config: &Config) {
    doc.totals.commit(&pass.fresh, pass.closed_ms);
    for (r, s) in &pass.reasons_fresh {
        doc.reason_totals.entry(r.clone()).or_default().merge(s);
    }
    if let Some(book) = doc.stage.as_mut() {
        // Only when the pass collected this very stage (a stage that changed mid-pass starts
        // from the next pass).
        if pass.split.as_ref() == Some(&book.split) {
            book.ledger.commit(&pass.stage_fresh, pass.closed_ms);
            book.recent = pass.stage_recent;
            book.shadow.merge(&pass.stage_shadow_fresh);
            book.shadow_recent = pass.stage_shadow_recent;
            book.shadow_through_ms = book.shadow_through_ms.max(pass.closed_ms);
        }
    }
    // The last hour at the pass's start: the committed minutes kept for it, plus the rest of
    // the flushes' slots (ledger.rs: summing the flushes alone loses those that expired).
    let hour = last_hour(&mut doc.hour, &pass.slots, pass.closed_ms, pass.started_ms);
    let per = per_upstream(&hour.current);
    let empty = Stats::default();
    let status = evaluate(
        per.get(&Upstream::Lightrag).unwrap_or(&empty),
        per.get(&Upstream::Perplexity).unwrap_or(&empty),
        &config.quality_gate,
        doc.quality_gate_closed,
    );
    doc.quality_gate_closed = status.closed;
    doc.gate = Some(status);
    doc.aggregate = Some(Aggregate {
        completed_ms: now,
        isolates: pass.isolates,
        corrupt: pass.corrupt,
        ticks: pass.ticks,
        stats: hour.current,
        settled: hour.settled,
        settled_until_ms: pass.closed_ms,
        shadow: pass.shadow,
    });
    doc.pass = None;
}
