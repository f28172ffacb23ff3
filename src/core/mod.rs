//! The pure core. Nothing here reads a clock, draws randomness, performs I/O or touches
//! `JsValue`/`worker`: every time-dependent function takes `now_ms: u64` (epoch ms) and every
//! random choice takes a roll in `[0, 1)` from its caller. That is what lets the same code run
//! natively under `cargo test`, in the Worker, and in the browser preview with identical results.

// The shared vocabulary: upstream, A/B arm, routing reason, breaker view.
pub mod model;

// Cohort hashing (docs/architecture.md#cohort-hashing).
pub mod cohort;
// Statistics shared by tests, SRM checks and the rollout controller.
pub mod experiment;
pub mod stats;

// Routing (docs/architecture.md#the-routing-decision, docs/architecture.md#configuration).
pub mod classify;
pub mod config;
pub mod decide;
pub mod rules;

// The preview page's questions (who moves, N users, a running router), answered by `decide`.
pub mod live;
pub mod movers;
pub mod population;
pub mod simulate;
pub mod text;

// Resilience (docs/architecture.md#circuit-breaker) and measurement.
// Answer-aware routing (docs/answer-aware.md): no-context detection, shadow calls, the cache key.
pub mod answer;
pub mod breaker;
pub mod exchange;
pub mod fallback;
pub mod gate;
pub mod outcome;
pub mod policy;
pub mod quality;
pub mod window;

// The self-driving rollout (docs/rollout.md): plan, gates, state machine, commands, status.
pub mod controller;
pub mod rollout;

// Upstream and front-door wire formats (docs/architecture.md#upstreams-and-the-front-door).
pub mod wire;

// Edge support, pure: KV state layout and controller, identity, the front-door guard, one
// isolate's state, operator reports.
pub mod backend;
pub mod digest;
pub mod fleet;
pub mod guard;
pub mod hub;
pub mod identity;
pub mod json;
pub mod keytag;
pub mod order;
pub mod overrides;
pub mod redact;
pub mod report;
pub mod sorted_map;
pub mod store;
