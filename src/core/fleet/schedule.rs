//! When an isolate refreshes and flushes, and what its driver should know about KV's health:
//! pure timing, so the hot path only compares numbers.
//!
//! Why refreshes carry tickets and a deadline: the Worker runs a refresh under
//! `ctx.wait_until`, which the runtime may cancel (the isolate is evicted, the invocation's
//! time runs out). A refresh whose result never comes back must not keep the isolate from
//! refreshing again — it would then never see a rollback — so one in flight for longer than
//! [`REFRESH_DEADLINE_MS`] counts as failed (`stalled_refreshes` in the status) and the next
//! one is handed out. Each refresh has an increasing ticket; a result that arrives after a newer
//! one was applied is older than what the isolate holds and is ignored.
//!
//! Why the first load is tracked: a cold isolate has only the wrangler vars until its first KV
//! read returns. The driver waits for it, bounded by `STATE_FIRST_LOAD_WAIT_MS`; a request that
//! gave up waiting is counted (`routed_before_kv`), so the status says when an isolate routed
//! on the vars alone.
//!
//! Why a request may refresh before it is routed ([`Schedule::stale`]): the background refresh
//! runs after a request, so an isolate that had no request for ten minutes holds ten-minute-old
//! state when the next one comes, and would route it — to a LightRAG whose breaker every other
//! isolate opened long ago. The fleet simulation (issue 14) showed it: with 1,000 isolates at 10 M
//! requests a month, 82 % of requests were routed on state older than the refresh interval and
//! the fleet took 20 minutes to stop sending users to a failed LightRAG. So a request that finds
//! the state older than `STATE_REFRESH_SECONDS` starts the refresh (or joins the one in flight)
//! and, when that old state could send it to LightRAG, waits for it like the first load, at
//! most `STATE_FIRST_LOAD_WAIT_MS` (`IsolateState::before_routing`); one that gave up is
//! counted (`kv.refresh.stale_routes`). A busy isolate is unaffected but for the one request
//! per interval that finds the refresh due, which now reads before it routes instead of after.

use serde::Serialize;

/// A refresh in flight longer than this counts as failed (10 s: KV reads take milliseconds;
/// well under the 30 s a `wait_until` may run after the response).
pub const REFRESH_DEADLINE_MS: u64 = 10_000;

/// One refresh handed to the driver: read KV, then give the result back with this ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RefreshTicket {
    id: u64,
    started_ms: u64,
}

impl RefreshTicket {
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }
}

/// What the status API says about this isolate's KV reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KvHealth {
    /// When the last refresh result was applied.
    pub last_refresh_ms: Option<u64>,
    /// Start of the refresh in flight, if any.
    pub refresh_in_flight_since_ms: Option<u64>,
    /// Refreshes that passed their deadline without a result.
    pub stalled_refreshes: u64,
    /// When the first KV load arrived (`None`: still on the vars alone).
    pub first_load_ms: Option<u64>,
    /// Requests routed on the vars alone because the first load did not arrive in time.
    pub cold_routes: u64,
    /// Requests routed on state older than the refresh interval because the refresh they
    /// waited for did not arrive in time.
    pub stale_routes: u64,
}

/// The state is older than the refresh interval: the refresh a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Run this refresh now (it is marked in flight), then wait for it.
    Start(RefreshTicket),
    /// A refresh is already in flight: wait for it.
    InFlight(RefreshTicket),
}

impl Stale {
    pub fn ticket(self) -> RefreshTicket {
        match self {
            Stale::Start(t) | Stale::InFlight(t) => t,
        }
    }
}

/// The refresh and flush timing of one isolate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    health: KvHealth,
    in_flight: Option<RefreshTicket>,
    next_ticket: u64,
    /// The newest ticket whose result was applied (0: none).
    applied_ticket: u64,
    last_flush_ms: u64,
}

impl Schedule {
    pub fn new(now_ms: u64) -> Schedule {
        Schedule {
            last_flush_ms: now_ms,
            next_ticket: 1,
            ..Schedule::default()
        }
    }

    pub fn health(&self) -> KvHealth {
        KvHealth {
            refresh_in_flight_since_ms: self.in_flight.map(|t| t.started_ms),
            ..self.health
        }
    }

    pub fn last_flush_ms(&self) -> u64 {
        self.last_flush_ms
    }

    /// A refresh now, whatever the timing (the first load, after a controller tick).
    pub fn start_refresh(&mut self, now_ms: u64) -> RefreshTicket {
        let t = RefreshTicket {
            id: self.next_ticket,
            started_ms: now_ms,
        };
        self.next_ticket = self.next_ticket.saturating_add(1);
        self.in_flight = Some(t);
        t
    }

    /// A refresh if one is due: none in flight (or the one in flight is past its deadline)
    /// and the interval since the last one has passed.
    pub fn refresh_if_due(&mut self, now_ms: u64, refresh_seconds: u64) -> Option<RefreshTicket> {
        if let Some(t) = self.in_flight {
            if now_ms < t.started_ms.saturating_add(REFRESH_DEADLINE_MS) {
                return None;
            }
            self.health.stalled_refreshes = self.health.stalled_refreshes.saturating_add(1);
            self.in_flight = None;
        }
        let due = self
            .health
            .last_refresh_ms
            .is_none_or(|t| now_ms >= t.saturating_add(refresh_seconds.saturating_mul(1000)));
        due.then(|| self.start_refresh(now_ms))
    }

    /// Whether the state is older than the refresh interval at `now_ms` (or was never
    /// loaded), and so which refresh a request should wait for before it is routed.
    pub fn stale(&mut self, now_ms: u64, refresh_seconds: u64) -> Option<Stale> {
        let fresh = self
            .health
            .last_refresh_ms
            .is_some_and(|t| now_ms < t.saturating_add(refresh_seconds.saturating_mul(1000)));
        if fresh {
            return None;
        }
        if let Some(t) = self.in_flight {
            if now_ms < t.started_ms.saturating_add(REFRESH_DEADLINE_MS) {
                return Some(Stale::InFlight(t));
            }
        }
        self.refresh_if_due(now_ms, refresh_seconds)
            .map(Stale::Start)
    }

    /// Whether `ticket`'s result, or a newer one, has been applied.
    pub fn applied(&self, ticket: RefreshTicket) -> bool {
        self.applied_ticket >= ticket.id
    }

    /// A request was routed on stale state: its refresh did not arrive in time.
    pub fn note_stale_route(&mut self) {
        self.health.stale_routes = self.health.stale_routes.saturating_add(1);
    }

    /// A refresh result arrived. Returns whether to apply it: not when a newer one already
    /// was.
    pub fn finish_refresh(&mut self, ticket: RefreshTicket, now_ms: u64) -> bool {
        if self.in_flight == Some(ticket) {
            self.in_flight = None;
        }
        if ticket.id <= self.applied_ticket {
            return false;
        }
        self.applied_ticket = ticket.id;
        self.health.last_refresh_ms = Some(now_ms);
        self.health.first_load_ms.get_or_insert(now_ms);
        true
    }

    /// There is no KV to load from: the vars are all there is.
    pub fn no_store(&mut self, now_ms: u64) {
        self.in_flight = None;
        self.health.last_refresh_ms = Some(now_ms);
        self.health.first_load_ms.get_or_insert(now_ms);
    }

    pub fn first_load_arrived(&self) -> bool {
        self.health.first_load_ms.is_some()
    }

    /// A request was routed before the first load arrived.
    pub fn note_cold_route(&mut self) {
        self.health.cold_routes = self.health.cold_routes.saturating_add(1);
    }

    pub fn flush_due(&self, now_ms: u64, flush_seconds: u64) -> bool {
        now_ms
            >= self
                .last_flush_ms
                .saturating_add(flush_seconds.saturating_mul(1000))
    }

    pub fn flushed(&mut self, now_ms: u64) {
        self.last_flush_ms = now_ms;
    }
}
