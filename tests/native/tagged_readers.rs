//! The types read by hand instead of serde's internally tagged / flattened derives
//! (`core::json::deserialize_with`: the derives cost a third deserializer each in the wasm).
//! Each is checked against a mirror type carrying the derive it replaced, over captured
//! documents and damaged ones: the same value or the same error text, and the same JSON back.

use cmo_edge_router::core::breaker::FleetCall;
use cmo_edge_router::core::cohort::Percent;
use cmo_edge_router::core::hub::HubRequest;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::rollout::emergency::Breach;
use cmo_edge_router::core::rollout::event::{RollbackReason, Trigger};
use cmo_edge_router::core::rollout::pct;
use cmo_edge_router::core::rollout::{
    CommandId, CommandOutcome, CommandResult, EventKind, OpKind, Stage, StageGates,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The derives the hand-written readers replaced (same names: serde's messages name the type).
mod derived {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "by", rename_all = "snake_case")]
    pub enum Trigger {
        Controller,
        Operator {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            command_id: Option<CommandId>,
        },
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub enum RollbackReason {
        Operator {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            note: Option<String>,
        },
        FailureLimit {
            streak: u32,
            limit: u32,
        },
        Emergency {
            breach: Breach,
        },
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "status", rename_all = "snake_case")]
    pub enum CommandOutcome {
        Applied { event: EventKind },
        Duplicate,
        Superseded { by_issued_at: u64 },
        Expired,
        Rejected { message: String },
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct CommandResult {
        id: CommandId,
        op: OpKind,
        issued_at: u64,
        handled_at: u64,
        #[serde(flatten)]
        outcome: CommandOutcome,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "op", rename_all = "snake_case")]
    pub enum HubRequest {
        Get {
            keys: Vec<String>,
        },
        Put {
            key: String,
            value: String,
            #[serde(default)]
            ttl_seconds: Option<u64>,
        },
        List {
            prefix: String,
            #[serde(default)]
            cursor: Option<String>,
            limit: u32,
        },
        Tick,
        Report {
            upstream: Upstream,
            calls: Vec<FleetCall>,
        },
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Stage {
        #[serde(with = "pct")]
        pub target_percentage: Percent,
        pub min_duration_ms: u64,
        pub auto_advance: bool,
        #[serde(flatten)]
        pub gates: StageGates,
    }
}

/// `ours` and the derived `mirror` read `doc` alike: both succeed and write the same JSON
/// (equal to `doc` when `exact`), or both fail with the same text. An array is refused.
fn same<T, M>(doc: &Value, exact: bool)
where
    T: DeserializeOwned + Serialize,
    M: DeserializeOwned + Serialize,
{
    let ours = T::deserialize(doc);
    if doc.is_array() {
        // serde's derive also took an internally tagged enum as a sequence (tag first, then
        // the fields in order), a form no document of ours has; the readers refuse it.
        assert!(ours.is_err(), "{doc}");
        return;
    }
    let mirror = M::deserialize(doc);
    match (ours, mirror) {
        (Ok(a), Ok(b)) => {
            let a = serde_json::to_value(&a).unwrap();
            assert_eq!(a, serde_json::to_value(&b).unwrap(), "{doc}");
            if exact {
                assert_eq!(&a, doc, "written back differently");
            }
            // Through the text path as the stored documents are read.
            let again: T = cmo_edge_router::core::json::from_text(&a.to_string()).unwrap();
            assert_eq!(serde_json::to_value(&again).unwrap(), a);
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{doc}"),
        (a, b) => panic!(
            "{doc}: ours {:?}, derive {:?}",
            a.map(|_| ()).map_err(|e| e.to_string()),
            b.map(|_| ()).map_err(|e| e.to_string())
        ),
    }
}

/// Damaged copies of an object document: each member removed, set to null, to a string, to a
/// number; and the whole document as a non-object.
fn damaged(doc: &Value) -> Vec<Value> {
    let mut out = vec![
        json!(null),
        json!("x"),
        json!(3),
        json!(-3),
        json!(1.5),
        json!(true),
        json!([doc.clone()]),
        json!({}),
    ];
    if let Value::Object(m) = doc {
        for k in m.keys() {
            for v in [None, Some(json!(null)), Some(json!("zz")), Some(json!(-7))] {
                let mut d = m.clone();
                match v {
                    None => {
                        d.remove(k);
                    }
                    Some(v) => {
                        d.insert(k.clone(), v);
                    }
                }
                out.push(Value::Object(d));
            }
        }
        let mut extra = m.clone();
        extra.insert("unknown_member".into(), json!(1));
        out.push(Value::Object(extra));
    }
    out
}

fn check<T, M>(captured: &[Value])
where
    T: DeserializeOwned + Serialize,
    M: DeserializeOwned + Serialize,
{
    for doc in captured {
        same::<T, M>(doc, true);
        for d in damaged(doc) {
            same::<T, M>(&d, false);
        }
    }
}

#[test]
fn trigger_reads_as_the_derive_did() {
    check::<Trigger, derived::Trigger>(&[
        json!({"by": "controller"}),
        json!({"by": "operator"}),
        json!({"by": "operator", "command_id": "cmd-1"}),
    ]);
    same::<Trigger, derived::Trigger>(&json!({"by": "robot"}), false);
}

#[test]
fn rollback_reason_reads_as_the_derive_did() {
    check::<RollbackReason, derived::RollbackReason>(&[
        json!({"kind": "operator"}),
        json!({"kind": "operator", "note": "bad answers"}),
        json!({"kind": "failure_limit", "streak": 3, "limit": 3}),
        json!({"kind": "emergency", "breach": {"kind": "error_rate", "observed": 0.2, "threshold": 0.1, "samples": 60}}),
        json!({"kind": "emergency", "breach": {"kind": "quality", "observed": 0.4, "threshold": 0.6, "samples": 31}}),
    ]);
}

#[test]
fn command_outcome_and_result_read_as_the_derive_did() {
    let outcomes = [
        json!({"status": "applied", "event": "paused"}),
        json!({"status": "duplicate"}),
        json!({"status": "superseded", "by_issued_at": 1700000000123u64}),
        json!({"status": "expired"}),
        json!({"status": "rejected", "message": "cannot approve while progressing"}),
    ];
    check::<CommandOutcome, derived::CommandOutcome>(&outcomes);
    let results: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let mut r = json!({"id": "c-7", "op": "pause", "issued_at": 1700000000000u64, "handled_at": 1700000060000u64});
            for (k, v) in o.as_object().unwrap() {
                r[k] = v.clone();
            }
            r
        })
        .collect();
    check::<CommandResult, derived::CommandResult>(&results);
}

#[test]
fn stage_reads_as_the_derive_did() {
    let full = serde_json::to_value(derived::Stage {
        target_percentage: Percent::from_percent(25.0).unwrap(),
        min_duration_ms: 3_600_000,
        auto_advance: true,
        gates: StageGates::default(),
    })
    .unwrap();
    check::<Stage, derived::Stage>(&[full]);
    // Gates left out take their defaults; written back in full.
    for doc in [
        json!({"target_percentage": 5, "min_duration_ms": 0, "auto_advance": false}),
        json!({"target_percentage": 100.0, "min_duration_ms": 60000, "auto_advance": true, "min_requests": 7, "max_error_rate": 0.5, "min_quality": 0.7, "min_shadow_samples": 10}),
    ] {
        same::<Stage, derived::Stage>(&doc, false);
        for d in damaged(&doc) {
            same::<Stage, derived::Stage>(&d, false);
        }
    }
    same::<Stage, derived::Stage>(
        &json!({"target_percentage": 250, "min_duration_ms": 0, "auto_advance": false}),
        false,
    );
}

#[test]
fn hub_request_reads_as_the_derive_did() {
    check::<HubRequest, derived::HubRequest>(&[
        json!({"op": "get", "keys": ["config/overrides", "rollout/state"]}),
        json!({"op": "get", "keys": []}),
        json!({"op": "put", "key": "metrics/abc", "value": "{}", "ttl_seconds": 3600}),
        json!({"op": "put", "key": "k", "value": "v", "ttl_seconds": null}),
        json!({"op": "list", "prefix": "metrics/", "cursor": null, "limit": 1000}),
        json!({"op": "list", "prefix": "", "cursor": "c2", "limit": 1}),
        json!({"op": "tick"}),
        json!({"op": "report", "upstream": "lightrag", "calls": [
            {"at_ms": 1700000000000u64, "kind": "success", "tag": 17},
            {"at_ms": 1700000000500u64, "kind": {"http_server_error": 503}, "tag": 4}
        ]}),
        json!({"op": "report", "upstream": "perplexity", "calls": []}),
    ]);
    same::<HubRequest, derived::HubRequest>(&json!({"op": "delete"}), false);
}
