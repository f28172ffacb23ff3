//! The state hub: one Durable Object that holds the router's shared state, in place of Workers
//! KV when the fleet outgrows per-isolate keys (docs/architecture.md#state-backends).
//!
//! Why: the fleet simulation (`make simulate`, issue 14) shows that with Workers KV every
//! isolate pays for its own refreshes and metric flushes. At 10 M requests a month spread over
//! 100 or 1,000 isolates most requests find their isolate's state older than the refresh
//! interval, so nearly every request costs six KV reads and a write — tens of dollars a month —
//! and the controller must read one key per isolate every minute under the 1,000-operations
//! limit. A Durable Object answers a refresh in one request, a write in one request (no
//! one-write-per-second-per-key limit, no 60 s propagation: it is strongly consistent), and
//! runs the controller's tick next to the data, where no per-invocation limit applies.
//! Durable Object requests cost $0.15 per million after the first million, against KV's $0.50
//! per million reads and $5 per million writes.
//!
//! Shape: the hub is a strongly consistent key-value store with expiry holding exactly the keys
//! of the KV layout (`core::store`), so every rule about what is stored, parsed, adopted and
//! aggregated stays where it is. The Worker talks to it with [`HubRequest`] / [`HubResponse`]
//! (JSON over the Durable Object's `fetch`); [`serve`] answers a request over any
//! [`StateStore`] — the Durable Object's storage in the Worker, a map in the simulation — so
//! both run this same code. Durable Object storage has no expiry of its own, so values are
//! stored as [`Stored`] with theirs.
//!
//! Status: [`serve`] runs in the Worker's Durable Object class `StateHub` (`src/edge/hub.rs`,
//! selected by `STATE_BACKEND = "durable_object"`, `core::backend`; tested in workerd by
//! `make test-worker-hub`) and in the fleet simulation (`tests/native/scale`), side by side
//! with KV.

use crate::core::breaker::{BreakerSnapshot, FleetCall, FleetWatch};
use crate::core::config::Config;
use crate::core::controller::{controller_tick, ControllerInput, TickReport, TickSkipped};
use crate::core::model::Upstream;
use crate::core::sorted_map::SortedMap;
use crate::core::store::{breaker_key, parse_value, ListPage, StateStore, StoreError, StoreOp};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// A controller tick inside the hub reads its own storage, where no per-invocation operation
/// limit applies: one pass covers every isolate's flush.
pub const HUB_MAX_OPS: u32 = 1_000_000;

/// One request to the hub.
///
/// Serde shape: `{"op":"get","keys":["config/overrides",…]}`,
/// `{"op":"put","key":"metrics/abc","value":"…","ttl_seconds":3600}`,
/// `{"op":"list","prefix":"metrics/","cursor":null,"limit":1000}`,
/// `{"op":"tick"}`,
/// `{"op":"report","upstream":"lightrag","calls":[{"at_ms":…,"kind":"success","tag":…},…]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// One controller tick (`core::controller::controller_tick`) over the hub's storage, with
    /// the hub's own config ([`Hub::config`]).
    Tick,
    /// Calls an isolate recorded while its breaker for `upstream` was closed, for the fleet's
    /// breaker ([`FleetWatch`]); answered with the stored record after them.
    Report {
        upstream: Upstream,
        calls: Vec<FleetCall>,
    },
}

// Read by hand: the derive of an internally tagged enum buffers through serde's `Content`
// (`core::json::deserialize_with` says why); the last such derive the Worker linked.
impl<'de> Deserialize<'de> for HubRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::core::json;
        json::deserialize_with(d, |v| {
            #[derive(Deserialize)]
            struct Get {
                keys: Vec<String>,
            }
            #[derive(Deserialize)]
            struct Put {
                key: String,
                value: String,
                #[serde(default)]
                ttl_seconds: Option<u64>,
            }
            #[derive(Deserialize)]
            struct List {
                prefix: String,
                #[serde(default)]
                cursor: Option<String>,
                limit: u32,
            }
            #[derive(Deserialize)]
            struct Report {
                upstream: Upstream,
                calls: Vec<FleetCall>,
            }
            let m = json::members(v, "internally tagged enum HubRequest")?;
            Ok(match json::tag(m, "op")? {
                "get" => HubRequest::Get {
                    keys: Get::deserialize(v)?.keys,
                },
                "put" => {
                    let p = Put::deserialize(v)?;
                    HubRequest::Put {
                        key: p.key,
                        value: p.value,
                        ttl_seconds: p.ttl_seconds,
                    }
                }
                "list" => {
                    let l = List::deserialize(v)?;
                    HubRequest::List {
                        prefix: l.prefix,
                        cursor: l.cursor,
                        limit: l.limit,
                    }
                }
                "tick" => HubRequest::Tick,
                "report" => {
                    let r = Report::deserialize(v)?;
                    HubRequest::Report {
                        upstream: r.upstream,
                        calls: r.calls,
                    }
                }
                other => {
                    return Err(json::unknown_variant(
                        other,
                        &["get", "put", "list", "tick", "report"],
                    ))
                }
            })
        })
    }
}

/// One key's value as the hub read it: `{"value": "…"}`, `{"value": null}` (absent), or
/// `{"error": "…"}` (the read failed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HubValue {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The hub's answer.
///
/// Serde shape: externally tagged — `{"values":{"values":[…]}}`, `"done"`,
/// `{"page":{"keys":[…],"cursor":null,"complete":true}}`, `{"ticked":{"report":{…}}}`,
/// `{"reported":{"record":"{…}"}}`, `{"failed":{"message":"…"}}`. Not internally tagged like [`HubRequest`]: the Worker
/// deserializes this one, and an internally tagged enum buffers its content first, which
/// compiles a second deserializer for every type inside (the tick report's): ~40 KB of wasm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HubResponse {
    Values {
        values: Vec<HubValue>,
    },
    Done,
    Page {
        keys: Vec<String>,
        #[serde(default)]
        cursor: Option<String>,
        complete: bool,
    },
    Ticked {
        report: TickReport,
    },
    /// The answer to [`HubRequest::Report`]: `breaker/<upstream>` as stored after it (the
    /// fleet's trip, when the report tripped it), for the isolate to adopt now.
    Reported {
        #[serde(default)]
        record: Option<String>,
    },
    Failed {
        message: String,
    },
}

/// What the hub keeps in memory between requests (not in storage): the fleet's breakers.
/// An evicted object starts with empty ones ([`FleetWatch`] says why that is safe).
#[derive(Debug, Default)]
pub struct HubMemory {
    fleet: RefCell<SortedMap<Upstream, FleetWatch>>,
}

/// What the hub answers with besides its storage.
#[derive(Debug, Clone, Copy)]
pub struct Hub<'a> {
    pub now_ms: u64,
    /// A roll in [0, 1) for the jitter of a fleet trip's open time.
    pub roll: f64,
    pub memory: &'a HubMemory,
    /// The config the controller's tick runs with (switches, quality gate, flush period). The
    /// Durable Object loads it from the same environment variables as the Worker
    /// (`core::config::load`), so the tick it runs is the one the Worker's cron would run.
    pub config: &'a Config,
}

/// Answers one request over `store`.
pub async fn serve<S: StateStore>(store: &S, req: HubRequest, hub: &Hub<'_>) -> HubResponse {
    match req {
        HubRequest::Get { keys } => HubResponse::Values {
            values: store
                .get_many(&keys)
                .await
                .into_iter()
                .map(|r| match r {
                    Ok(value) => HubValue { value, error: None },
                    Err(e) => HubValue {
                        value: None,
                        error: Some(e.to_string()),
                    },
                })
                .collect(),
        },
        HubRequest::Put {
            key,
            value,
            ttl_seconds,
        } => match store.put(&key, &value, ttl_seconds).await {
            Ok(()) => HubResponse::Done,
            Err(e) => HubResponse::Failed {
                message: e.to_string(),
            },
        },
        HubRequest::List {
            prefix,
            cursor,
            limit,
        } => match store.list(&prefix, cursor.as_deref(), limit).await {
            Ok(p) => HubResponse::Page {
                keys: p.keys,
                cursor: p.cursor,
                complete: p.complete,
            },
            Err(e) => HubResponse::Failed {
                message: e.to_string(),
            },
        },
        HubRequest::Tick => {
            let input = ControllerInput {
                now_ms: hub.now_ms,
                config: hub.config,
                max_ops: HUB_MAX_OPS,
            };
            HubResponse::Ticked {
                report: controller_tick(store, &input).await,
            }
        }
        HubRequest::Report { upstream, calls } => report(store, upstream, &calls, hub).await,
    }
}

/// Feeds a report to the fleet's breaker for `upstream`; writes its record when it trips.
async fn report<S: StateStore>(
    store: &S,
    upstream: Upstream,
    calls: &[FleetCall],
    hub: &Hub<'_>,
) -> HubResponse {
    let key = breaker_key(upstream);
    let stored = match store.get(&key).await {
        Ok(v) => v,
        Err(e) => {
            return HubResponse::Failed {
                message: e.to_string(),
            }
        }
    };
    let snap = stored
        .as_deref()
        .and_then(|t| parse_value::<BreakerSnapshot>(&key, t).ok());
    let policy = hub.config.breaker;
    let tripped = hub
        .memory
        .fleet
        .borrow_mut()
        .entry(upstream)
        .or_insert_with(|| FleetWatch::new(policy))
        .report(snap.as_ref(), calls, policy, hub.now_ms, hub.roll);
    let Some(snap) = tripped else {
        return HubResponse::Reported { record: stored };
    };
    let text = serde_json::to_string(&snap).unwrap_or_default();
    match store.put(&key, &text, None).await {
        Ok(()) => HubResponse::Reported { record: Some(text) },
        Err(e) => HubResponse::Failed {
            message: e.to_string(),
        },
    }
}

fn unexpected(op: StoreOp, key: &str, r: HubResponse) -> StoreError {
    let message = match r {
        HubResponse::Failed { message } => message,
        other => format!("unexpected hub answer {other:?}"),
    };
    StoreError::failed(op, key, message)
}

impl HubResponse {
    /// The answer to [`HubRequest::Get`] of `keys` as [`StateStore::get_many`] results.
    pub fn into_values(self, keys: &[String]) -> Vec<Result<Option<String>, StoreError>> {
        match self {
            HubResponse::Values { values } if values.len() == keys.len() => values
                .into_iter()
                .zip(keys)
                .map(|(v, k)| match v.error {
                    Some(e) => Err(StoreError::failed(StoreOp::Read, k, e)),
                    None => Ok(v.value),
                })
                .collect(),
            other => {
                let message = match other {
                    HubResponse::Failed { message } => message,
                    o => format!("unexpected hub answer {o:?}"),
                };
                keys.iter()
                    .map(|k| Err(StoreError::failed(StoreOp::Read, k, &message)))
                    .collect()
            }
        }
    }

    /// The answer to [`HubRequest::Put`] of `key`.
    pub fn into_done(self, key: &str) -> Result<(), StoreError> {
        match self {
            HubResponse::Done => Ok(()),
            other => Err(unexpected(StoreOp::Write, key, other)),
        }
    }

    /// The answer to [`HubRequest::List`] of `prefix`.
    pub fn into_page(self, prefix: &str) -> Result<ListPage, StoreError> {
        match self {
            HubResponse::Page {
                keys,
                cursor,
                complete,
            } => Ok(ListPage {
                keys,
                cursor,
                complete,
            }),
            other => Err(unexpected(StoreOp::List, prefix, other)),
        }
    }

    /// The answer to [`HubRequest::Report`]: the stored record, if any.
    pub fn into_record(self, upstream: Upstream) -> Result<Option<String>, StoreError> {
        match self {
            HubResponse::Reported { record } => Ok(record),
            other => Err(unexpected(StoreOp::Write, &breaker_key(upstream), other)),
        }
    }

    /// The answer to [`HubRequest::Tick`]: its report, or a skipped tick naming what failed.
    pub fn into_tick(self) -> TickReport {
        match self {
            HubResponse::Ticked { report } => report,
            other => TickReport {
                skipped: Some(TickSkipped::Unreachable),
                warnings: vec![unexpected(StoreOp::Read, "hub", other).to_string()],
                ..TickReport::default()
            },
        }
    }
}

/// A value in the hub's storage with its expiry (epoch ms; `None`: never).
///
/// Serde shape: `{"value":"…","expires_ms":1800000180000}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

impl Stored {
    /// `value` written at `now_ms`, expiring `ttl_seconds` later when given.
    pub fn new(value: &str, ttl_seconds: Option<u64>, now_ms: u64) -> Stored {
        Stored {
            value: value.to_string(),
            expires_ms: ttl_seconds.map(|s| now_ms.saturating_add(s.saturating_mul(1000))),
        }
    }

    /// Whether it has not expired at `now_ms`.
    pub fn live(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|e| now_ms < e)
    }
}
