//! Fuzz targets for every parser that reads outside input, on stable Rust (see
//! [`harness`] for why proptest and not cargo-fuzz).
//!
//! `cargo test` runs each target on [`harness::DEFAULT_CASES`] inputs (part of `make test`);
//! `make fuzz` runs each on 1,000,000 (`FUZZ_CASES`) in an optimised build with overflow checks
//! on, two targets at a time, and prints one line per target: inputs, time, failures.
//!
//! | target | input | entry point |
//! |---|---|---|
//! | `config_load` | wrangler vars + runtime overrides | `core::config::load` |
//! | `admin_config_body` | `PUT /admin/config` body → KV document | `load`, `store::OverridesDoc` |
//! | `routing_rules` | `LIGHTRAG_ROUTING_RULES` lists, regexes | `core::rules::parse`, `first_match` |
//! | `chat_request` | `POST /v1/chat/completions` body | `wire::openai::parse_chat_request`, `wire::conversation` |
//! | `seed_query` | `POST /query` body | `wire::seed::parse_query_request`, `wire::perplexity_query::query_body` |
//! | `ofrep_request` | OFREP body, `If-None-Match` | `wire::ofrep::parse_eval_request` |
//! | `lightrag_reply` | LightRAG `/query` JSON | `wire::lightrag::parse_query_response`, the no-context detector, `extract_confidence` (every parsed answer) |
//! | `lightrag_stream` | LightRAG NDJSON stream | `NdjsonDecoder` + `parse_stream_line` |
//! | `perplexity_reply` | Perplexity chat JSON | `wire::perplexity::parse_chat_response` |
//! | `perplexity_stream` | Perplexity SSE stream | `SseDecoder` + `parse_stream_event` |
//! | `sse_decoder` | arbitrary bytes, any split | `wire::sse::SseDecoder` vs a plain model |
//! | `ndjson_decoder` | arbitrary bytes, any split | `wire::ndjson::NdjsonDecoder` vs a plain model |
//! | `kv_breaker_snapshot` | `breaker/<upstream>` | `BreakerSnapshot`, `Breaker::merge_remote` |
//! | `kv_store_documents` | `config/overrides`, `metrics/*`, `controller/state` | `store::load_remote`, `controller::controller_tick` |
//! | `kv_rollout_state` | rollout state document + commands | `Rollout::from_json`, `Command::from_json`, `tick` |
//! | `rollout_plan_request` | `POST /admin/rollout` body | `rollout::request::parse_plan` |
//! | `identity_cookie` | user / session / `Cookie` | `core::identity::identify`, `cookie_value` |
//! | `admin_token` | `Authorization` vs `ADMIN_TOKEN` | `core::identity::check_admin` |
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the native suite, which also uses its failure injection.
#[allow(dead_code)]
#[path = "../support/memory_store.rs"]
mod memory_store;

mod config;
mod decoders;
mod found;
mod front_door;
mod gen;
mod harness;
mod identity;
mod kv;
mod upstreams;

#[test]
fn config_load() {
    config::load_vars_and_overrides();
}
#[test]
fn admin_config_body() {
    config::admin_config_body();
}
#[test]
fn routing_rules() {
    config::routing_rules();
}
#[test]
fn chat_request() {
    front_door::chat_request();
}
#[test]
fn seed_query() {
    front_door::seed_query();
}
#[test]
fn ofrep_request() {
    front_door::ofrep_request();
}
#[test]
fn lightrag_reply() {
    upstreams::lightrag_reply_json();
}
#[test]
fn lightrag_stream() {
    upstreams::lightrag_stream();
}
#[test]
fn perplexity_reply() {
    upstreams::perplexity_reply_json();
}
#[test]
fn perplexity_stream() {
    upstreams::perplexity_stream();
}
#[test]
fn sse_decoder() {
    decoders::sse_decoder();
}
#[test]
fn ndjson_decoder() {
    decoders::ndjson_decoder();
}
#[test]
fn kv_breaker_snapshot() {
    kv::breaker_snapshot();
}
#[test]
fn kv_store_documents() {
    kv::store_documents();
}
#[test]
fn kv_rollout_state() {
    kv::rollout_state();
}
#[test]
fn rollout_plan_request() {
    kv::rollout_plan_request();
}
#[test]
fn identity_cookie() {
    identity::identity_and_cookie();
}
#[test]
fn admin_token() {
    identity::admin_token();
}
