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
//!
//! Driving one isolate (what the Worker does, and what a multi-isolate simulation does with a
//! simulated KV):
//!
//! 1. [`IsolateState::new`] with an [`IsolateInit`] (id, vars, seed, tag secret, `now_ms`); then
//!    [`IsolateState::start_refresh`] and, with the result of
//!    [`crate::core::store::load_remote`], [`IsolateState::refresh_done`] (the first load;
//!    [`IsolateState::first_load_arrived`] says whether it is in).
//! 2. Per request: [`IsolateState::before_routing`] — when the state is older than the refresh
//!    interval, start the refresh it names and, if it says so, wait for it (bounded like the
//!    first load); [`IsolateState::tag`] the stickiness key, [`IsolateState::decide`] (draws a
//!    half-open permit when the request goes to LightRAG), [`IsolateState::take_permit`] before
//!    a fallback call, [`IsolateState::record_call`] for each upstream call (a
//!    [`CallRecord`] with the tag) and [`IsolateState::record_request`] once per request.
//! 3. After each request: [`IsolateState::background`] → a [`Background`] with the KV writes to
//!    make now (throttled to one per second per key) and, when due, a [`RefreshTicket`] to run
//!    and hand back with [`IsolateState::refresh_done`]. A ticket never handed back counts as
//!    failed after [`REFRESH_DEADLINE_MS`]. Then [`IsolateState::flush_later`]: sleep until
//!    its time (under `ctx.wait_until`, at most [`FLUSH_WAIT_LIMIT_MS`] after the request
//!    started) and write what [`IsolateState::flush_at`] returns, so an idle isolate's last
//!    counts do not wait for its next request.
//! 4. Operators: [`IsolateState::breaker_action`] (write its [`AdminAction::command`] now),
//!    [`IsolateState::take_flush`] (forced flush), [`IsolateState::note_tick`] after a
//!    controller tick. Status: [`IsolateState::report`], [`IsolateState::kv_health`].

pub mod isolate;
pub mod quota;
pub mod rng;
pub mod schedule;

pub use isolate::{
    AdminAction, Background, BeforeRouting, CallRecord, FleetReport, FleetView, IsolateInit,
    IsolateState, KvWrite, TickNote,
};
pub use quota::{KeyQuota, QuotaStatus};
pub use rng::Rng;
pub use schedule::{
    FlushLater, KvHealth, RefreshTicket, Stale, FLUSH_WAIT_LIMIT_MS, REFRESH_DEADLINE_MS,
};
