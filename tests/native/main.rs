//! The native test suite: one crate (one link) with a module per part of the core it tests.
//! The wasm suites are `tests/wasm_node.rs` and `tests/wasm_browser.rs`; the golden spec files
//! in `tests/spec/` are judged by the same driver (`tests/support/spec.rs`) in both.
#![cfg(not(target_arch = "wasm32"))]
// Test code: a failed unwrap is a failed test, which is what we want (clippy.toml only exempts
// `#[test]` functions, not their helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/memory_store.rs"]
mod memory_store;
#[path = "../support/spec.rs"]
mod spec_driver;

mod backend;
mod before_routing;
mod breaker;
mod breaker_keys;
mod breaker_replay;
mod breaker_replication;
mod cohort_props;
mod cohort_vectors;
mod controller;
mod decide_props;
mod exchange;
mod fallback;
mod fleet;
mod fleet_breaker;
mod fleet_support;
mod guard;
mod hub_wire;
mod identity;
mod keytag;
mod quality;
mod redact;
mod report;
// The fleet at scale (issue 14): N isolates on simulated KV or the Durable Object hub.
mod scale;
mod spec;
mod store;
mod tagged_readers;
mod window;
mod wire_event_props;
mod wire_front_door;
mod wire_streams;
mod wire_upstreams;

// The self-driving rollout (core::rollout): timelines on a virtual clock, commands, state, status.
mod rollout_commands;
mod rollout_props;
mod rollout_state;
mod rollout_status;
mod rollout_support;
mod rollout_timelines;

// A/B statistics (core::experiment): reference values, reports, A/A and power simulations.
mod experiment_aa;
mod experiment_report;
mod experiment_stats;

// Answer-aware routing (core::answer, docs/answer-aware.md): the no-context detector, the watch,
// shadow gate and cache key; the exchange's no-answer paths; conversations for LightRAG; the
// previous service's /query; the no-context counts in metrics and the experiment report.
mod answer_detect;
mod answer_exchange;
mod answer_gates;
mod answer_metrics;
mod answer_wire;
