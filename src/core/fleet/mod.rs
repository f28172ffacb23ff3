//! The fleet: what one isolate knows and does, as a pure state machine, so that the Worker is a
//! thin shell around it and many isolates can be simulated with the real code (issue 14).
//!
//! Why here and not in `edge`: every rule about an isolate's state — deciding with probe
//! permits, recording outcomes, when to refresh and flush, which writes the KV budget allows,
//! how remote breaker state is adopted — is a decision worth testing on a virtual clock, and
//! none of it needs a runtime. [`IsolateState`] takes `now_ms` and draws its rolls from a seeded
//! generator; it returns the KV writes it wants and tells its driver when to refresh. The
//! Worker's `edge::isolate` keeps it in a `thread_local`, reads `Date.now()`, and performs the
//! KV I/O under `ctx.wait_until`.

pub mod isolate;
pub mod quota;
pub mod rng;
pub mod schedule;

pub use isolate::{
    AdminAction, Background, CallRecord, IsolateInit, IsolateState, KvWrite, TickNote,
};
pub use quota::{KeyQuota, QuotaStatus};
pub use rng::Rng;
pub use schedule::{KvHealth, RefreshTicket, REFRESH_DEADLINE_MS};
