//! The pure core. Nothing here reads a clock, draws randomness, performs I/O or touches
//! `JsValue`/`worker`: every time-dependent function takes `now_ms: u64` (epoch ms) and every
//! random choice takes a roll in `[0, 1)` from its caller. That is what lets the same code run
//! natively under `cargo test`, in the Worker, and in the browser preview with identical results.

// The two upstreams, named once.
pub mod upstream;

// Cohort hashing (DESIGN §2).
pub mod cohort;
// Statistics shared by tests, SRM checks and the rollout controller.
pub mod experiment;
pub mod stats;

// Routing (DESIGN §3, §8).
pub mod classify;
pub mod config;
pub mod decide;
pub mod rules;
pub mod simulate;

// Resilience (DESIGN §4) and measurement.
pub mod breaker;
pub mod fallback;
pub mod gate;
pub mod outcome;
pub mod quality;
pub mod window;

// The self-driving rollout (DESIGN §7): plan, gates, state machine, commands, status.
pub mod rollout;

// Upstream and front-door wire formats (DESIGN §6).
pub mod wire;

// Edge support, pure: KV state layout and controller, identity, operator reports.
pub mod identity;
pub mod policies;
pub mod report;
pub mod store;
