//! The router's front against hostile clients, the pure half (docs/architecture.md#the-front-door-guard).
//!
//! Why it exists: the router holds the paid Perplexity key and the LightRAG key, and every
//! chat request it forwards is spent on them. Without a front, anyone who can reach it has an
//! open proxy onto those keys, can choose ids that land in the LightRAG cohort and push
//! failures into its breaker, and can make the router buffer an unbounded body. The edge
//! enforces these rules in a fixed order (see `edge/mod.rs`): CORS preflight, client
//! authentication, media type, body size while reading, parsing, the model allow list, then the
//! per-key rate limit — all before a routing decision is taken, so a refused request never draws
//! a breaker permit or lands in an experiment arm. Each rule is decided here, without I/O, so it
//! is tested natively.
//!
//! - [`body`]: the byte budget a body is read against (413 as soon as it is crossed).
//! - [`client`]: the client / admin bearer token verdict.
//! - [`cors`]: the allowed origins and the preflight answer.
//! - [`deployment`]: `ROUTER_ENV`, which upstream URLs may receive keys, and set-up problems.
//! - [`exposure`]: which routing detail only operators see.
//! - [`media`]: `application/json` only (415), which also stops cross-site form posts.
//! - [`models`]: the Perplexity models clients may ask for.
//! - [`ratelimit`]: the opaque per-key rate-limit key and `Retry-After`.

pub mod body;
pub mod client;
pub mod cors;
pub mod deployment;
pub mod exposure;
pub mod media;
pub mod models;
pub mod ratelimit;
