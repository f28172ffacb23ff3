//! Operator commands: applied in order, idempotently, and never lost to a concurrent tick.
//!
//! The race the design answers (KV has no compare-and-swap): a cron tick reads the state, an
//! operator pauses, the tick writes its state back. If the admin API wrote the state itself,
//! the tick's write would erase the pause. With commands under their own keys, the tick's
//! write cannot touch the command, and the next tick applies it.

use super::rollout_support;

use cmo_edge_router::core::rollout::command::{command_key, COMMAND_MAX_AGE_MS, COMMAND_PREFIX};
use cmo_edge_router::core::rollout::machine::TickInput;
use cmo_edge_router::core::rollout::request::plan_from_value;
use cmo_edge_router::core::rollout::{
    Command, CommandId, CommandOutcome, EventKind, Operation, PhaseName, Rollout, RolloutId,
    StageEvidence, Switches,
};
use rollout_support::{pct, MIN, T0};
use serde_json::json;

const STATE_KEY: &str = "rollout/state";

fn cmd(id: &str, issued_at: u64, op: Operation) -> Command {
    Command {
        id: CommandId::try_new(id).unwrap(),
        issued_at,
        op,
    }
}

fn start_op() -> Operation {
    Operation::Start {
        rollout_id: RolloutId::try_new("r-1").unwrap(),
        plan: plan_from_value(&json!({"strategy": "linear"})).unwrap(),
    }
}

fn outcomes(rs: &[cmo_edge_router::core::rollout::CommandResult]) -> Vec<CommandOutcome> {
    rs.iter().map(|r| r.outcome.clone()).collect()
}

#[test]
fn replaying_the_same_commands_is_a_no_op() {
    let cmds = vec![
        cmd("c-1", T0, start_op()),
        cmd("c-2", T0 + MIN, Operation::Pause),
    ];
    let mut r = Rollout::new();
    let first = r.apply_commands(&cmds, T0 + 2 * MIN);
    assert_eq!(
        outcomes(&first),
        vec![
            CommandOutcome::Applied {
                event: EventKind::Started
            },
            CommandOutcome::Applied {
                event: EventKind::Paused
            },
        ]
    );
    assert_eq!(r.phase_name(), PhaseName::Paused);
    let doc = r.to_json();
    let revision = r.revision();
    // The controller lists the same keys every minute until they expire.
    for minute in 3..60 {
        let again = r.apply_commands(&cmds, T0 + minute * MIN);
        assert!(again.iter().all(|x| x.outcome == CommandOutcome::Duplicate));
    }
    assert_eq!(r.revision(), revision);
    assert_eq!(r.to_json(), doc);
    // The same id twice in one listing is handled once.
    let mut r2 = Rollout::new();
    let twice = r2.apply_commands(&[cmds[0].clone(), cmds[0].clone()], T0);
    assert_eq!(twice[1].outcome, CommandOutcome::Duplicate);
}

#[test]
fn commands_apply_in_issue_order_whatever_the_listing_order() {
    let mut r = Rollout::new();
    let rs = r.apply_commands(
        &[
            cmd("c-b", T0 + 2 * MIN, Operation::Resume),
            cmd("c-a", T0 + MIN, Operation::Pause),
            cmd("c-0", T0, start_op()),
        ],
        T0 + 3 * MIN,
    );
    let ids: Vec<&str> = rs.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, vec!["c-0", "c-a", "c-b"]);
    assert!(rs
        .iter()
        .all(|x| matches!(x.outcome, CommandOutcome::Applied { .. })));
    assert_eq!(r.phase_name(), PhaseName::Progressing);
    // Paused for one minute, which the stage clock does not count.
    assert_eq!(r.run().unwrap().stage_paused_ms, MIN);
}

#[test]
fn a_late_command_is_superseded_except_a_rollback() {
    let mut r = Rollout::new();
    r.apply_commands(&[cmd("c-0", T0, start_op())], T0);
    // KV shows the operator's later resume before the earlier pause (eventual consistency).
    r.apply_commands(&[cmd("c-2", T0 + 20_000, Operation::Pause)], T0 + MIN);
    r.apply_commands(&[cmd("c-3", T0 + 30_000, Operation::Resume)], T0 + MIN);
    let late = r.apply_commands(&[cmd("c-1", T0 + 10_000, Operation::Pause)], T0 + 2 * MIN);
    assert_eq!(
        late[0].outcome,
        CommandOutcome::Superseded {
            by_issued_at: T0 + 30_000
        }
    );
    assert_eq!(r.phase_name(), PhaseName::Progressing, "the last word wins");
    // A late rollback is still a rollback.
    let late = r.apply_commands(
        &[cmd("c-r", T0 + 5_000, Operation::Rollback { note: None })],
        T0 + 2 * MIN,
    );
    assert_eq!(
        late[0].outcome,
        CommandOutcome::Applied {
            event: EventKind::RolledBack
        }
    );
    assert_eq!(r.current_percentage().percent(), 0.0);
    assert_eq!(r.phase_name(), PhaseName::RolledBack);
}

#[test]
fn expired_and_refused_commands_are_reported_not_applied() {
    let mut r = Rollout::new();
    r.apply_commands(&[cmd("c-0", T0, start_op())], T0);
    // An approve an hour and a minute old: expired.
    let now = T0 + COMMAND_MAX_AGE_MS + 2 * MIN;
    let rs = r.apply_commands(&[cmd("c-old", T0 + MIN, Operation::Advance)], now);
    assert_eq!(rs[0].outcome, CommandOutcome::Expired);
    assert_eq!(r.current_percentage(), pct(5.0));
    // An approve while progressing: refused with the 409 message, recorded for the status page.
    let rs = r.apply_commands(&[cmd("c-ap", now, Operation::Approve)], now);
    match &rs[0].outcome {
        CommandOutcome::Rejected { message } => assert!(message.contains("approve")),
        other => panic!("{other:?}"),
    }
    let recent = r.commands().recent();
    assert_eq!(recent.last().unwrap().id.as_str(), "c-ap");
    // Handled ids older than the maximum age are forgotten; their commands stay expired.
    let later = now + COMMAND_MAX_AGE_MS + MIN;
    let rs = r.apply_commands(&[cmd("c-0", T0, start_op())], later);
    assert_eq!(rs[0].outcome, CommandOutcome::Expired);
    assert_eq!(r.phase_name(), PhaseName::Progressing);
}

#[test]
fn commands_round_trip_through_their_kv_form() {
    let c = cmd("c-1", T0, start_op());
    let back = Command::from_json(&c.to_json()).unwrap();
    assert_eq!(back, c);
    let rb = cmd(
        "c-2",
        T0,
        Operation::Rollback {
            note: Some("bad answers".into()),
        },
    );
    assert_eq!(Command::from_json(&rb.to_json()).unwrap(), rb);
    // Keys sort by time.
    let k1 = command_key(999, &CommandId::try_new("z").unwrap());
    let k2 = command_key(1_000, &CommandId::try_new("a").unwrap());
    assert!(k1 < k2 && k1.starts_with(COMMAND_PREFIX));
    // Corrupt or incomplete commands are errors.
    for bad in [
        "",
        "{}",
        r#"{"id":"c","issued_at":1,"op":"explode"}"#,
        r#"{"id":"c","issued_at":1,"op":"start"}"#,
        r#"{"id":"","issued_at":1,"op":"pause"}"#,
        r#"{"id":"c","issued_at":-1,"op":"pause"}"#,
        r#"{"id":"c","issued_at":1,"op":"start","rollout_id":"r","plan":{"strategy":"steps","stages":[]}}"#,
    ] {
        assert!(Command::from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn check_answers_409_without_changing_anything() {
    let mut r = Rollout::new();
    r.apply(start_op(), T0).unwrap();
    let before = r.clone();
    assert_eq!(
        r.check(&Operation::Approve, T0).unwrap_err().http_status(),
        409
    );
    assert!(r.check(&Operation::Pause, T0).is_ok());
    assert_eq!(r, before);
}

/// A KV namespace as the controller sees it: a sorted map.
#[derive(Default)]
struct Kv(std::collections::BTreeMap<String, String>);

impl Kv {
    fn commands(&self) -> Vec<Command> {
        self.0
            .range(COMMAND_PREFIX.to_string()..)
            .take_while(|(k, _)| k.starts_with(COMMAND_PREFIX))
            .map(|(_, v)| Command::from_json(v).unwrap())
            .collect()
    }
    fn state(&self) -> Rollout {
        self.0
            .get(STATE_KEY)
            .map(|s| Rollout::from_json(s).unwrap())
            .unwrap_or_default()
    }
}

/// The controller's pass, split where the race happens: read (state + command listing) …
fn read(kv: &Kv) -> (Rollout, Vec<Command>) {
    (kv.state(), kv.commands())
}

/// … then apply commands, tick, write the state.
fn finish(kv: &mut Kv, mut state: Rollout, cmds: Vec<Command>, now: u64) {
    state.apply_commands(&cmds, now);
    let ev = StageEvidence::empty(state.current_percentage());
    state.tick(&TickInput {
        evidence: &ev,
        switches: &Switches::ALL_ON,
        now_ms: now,
    });
    kv.0.insert(STATE_KEY.into(), state.to_json());
}

fn admin_writes(kv: &mut Kv, c: Command) {
    kv.0.insert(c.key(), c.to_json());
}

#[test]
fn a_command_sent_during_a_tick_survives() {
    let mut kv = Kv::default();
    admin_writes(&mut kv, cmd("c-start", T0, start_op()));
    let (s, c) = read(&kv);
    finish(&mut kv, s, c, T0);
    assert_eq!(kv.state().phase_name(), PhaseName::Progressing);

    // t = 1 min: the tick reads state and commands …
    let (s, c) = read(&kv);
    // … the operator pauses while it runs …
    admin_writes(&mut kv, cmd("c-pause", T0 + MIN + 1, Operation::Pause));
    // … and the tick writes its state, which knows nothing of the pause.
    finish(&mut kv, s, c, T0 + MIN + 2);
    assert_eq!(kv.state().phase_name(), PhaseName::Progressing);
    // The pause is still there under its own key; the next tick applies it.
    let (s, c) = read(&kv);
    finish(&mut kv, s, c, T0 + 2 * MIN);
    let state = kv.state();
    assert_eq!(state.phase_name(), PhaseName::Paused);
    assert_eq!(
        state.commands().recent().last().unwrap().id.as_str(),
        "c-pause"
    );
    // And every later tick leaves it applied exactly once.
    for m in 3..30 {
        let (s, c) = read(&kv);
        finish(&mut kv, s, c, T0 + m * MIN);
    }
    let state = kv.state();
    assert_eq!(state.phase_name(), PhaseName::Paused);
    let paused = state
        .history()
        .iter()
        .filter(|t| t.event == EventKind::Paused)
        .count();
    assert_eq!(paused, 1);
}

#[test]
fn writing_the_state_directly_would_lose_the_command() {
    // The counter-example that rules out "the admin API writes the state": the same
    // interleaving, with the pause applied to the document instead of queued.
    let mut kv = Kv::default();
    admin_writes(&mut kv, cmd("c-start", T0, start_op()));
    let (s, c) = read(&kv);
    finish(&mut kv, s, c, T0);
    let (s, c) = read(&kv);
    let mut direct = kv.state();
    direct.apply(Operation::Pause, T0 + MIN + 1).unwrap();
    kv.0.insert(STATE_KEY.into(), direct.to_json());
    finish(&mut kv, s, c, T0 + MIN + 2);
    assert_eq!(
        kv.state().phase_name(),
        PhaseName::Progressing,
        "the pause is gone"
    );
}
