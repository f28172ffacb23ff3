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
//!
//! Why a flush may come after the request ([`Schedule::flush_later`]): an isolate flushes when
//! a request ends after `METRICS_FLUSH_SECONDS`, so the counts of a request that came sooner
//! wait for the *next* request — minutes, at an idle isolate — and reach KV after the
//! controller has committed their minute (`core::controller::ledger`): the fleet simulation
//! (issue 14) measured the controller's totals 4 % short at 100 isolates and 14 % at 1,000. So
//! every request also names a later flush: when the flush falls due, or, if that is beyond what
//! the invocation may wait, as late as it may wait ([`FLUSH_WAIT_LIMIT_MS`] after the request
//! started). The Worker sleeps until then under `ctx.waitUntil` and asks again
//! ([`Schedule::flush_now`]): it flushes when counts are still unflushed and either the flush
//! is due or no later request has named a flush of its own since (the last request before a
//! silence flushes early, once; a busy isolate keeps its cadence).

use crate::core::store::THROTTLE_INTERVAL_MS;
use serde::Serialize;

/// A refresh in flight longer than this counts as failed (10 s: KV reads take milliseconds;
/// well under the 30 s a `wait_until` may run after the response).
pub const REFRESH_DEADLINE_MS: u64 = 10_000;

/// How long after its request started a deferred flush may run. `ctx.waitUntil` keeps an
/// invocation alive until its promise settles or 30 s have passed, whichever is first
/// (<https://developers.cloudflare.com/workers/platform/limits/#duration>,
/// <https://developers.cloudflare.com/workers/runtime-apis/context/#waituntil>); counted from
/// the request's start, not its response (the stricter reading), with 5 s left for the write.
pub const FLUSH_WAIT_LIMIT_MS: u64 = 25_000;

/// A flush to ask for again at [`FlushLater::at_ms`] ([`Schedule::flush_later`]). Ordered
/// by time (a driver's queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlushLater {
    pub at_ms: u64,
    /// Which request named it (a later one supersedes it unless the flush is due).
    seq: u64,
}

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
    /// Requests that named a later flush so far (the newest one's [`FlushLater::seq`]).
    flush_requests: u64,
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

    /// After a request that started at `started_ms` and ended at `now_ms`: when to look again
    /// for counts it left unflushed (a streamed answer is recorded after the response, so the
    /// caller cannot know yet). The flush's due time if the invocation may wait that long,
    /// else the last moment it may; `None` when that moment has passed.
    pub fn flush_later(
        &mut self,
        started_ms: u64,
        now_ms: u64,
        flush_seconds: u64,
    ) -> Option<FlushLater> {
        self.flush_requests = self.flush_requests.saturating_add(1);
        let due = self
            .last_flush_ms
            .saturating_add(flush_seconds.saturating_mul(1000));
        let limit = started_ms.saturating_add(FLUSH_WAIT_LIMIT_MS);
        let at = if due > now_ms { due.min(limit) } else { limit };
        (at > now_ms).then_some(FlushLater {
            at_ms: at,
            seq: self.flush_requests,
        })
    }

    /// Whether `later`'s flush should be made at `now_ms` (given unflushed counts): the flush
    /// is due, or no request has named a later flush since `later`'s (this is the last
    /// chance before the isolate goes quiet) — and never within a second of the last flush
    /// (KV's one write per second per key).
    pub fn flush_now(&self, later: FlushLater, now_ms: u64, flush_seconds: u64) -> bool {
        let gap_ok = now_ms >= self.last_flush_ms.saturating_add(THROTTLE_INTERVAL_MS);
        gap_ok && (self.flush_due(now_ms, flush_seconds) || later.seq == self.flush_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000_000;

    #[test]
    fn a_flush_later_waits_for_the_due_time_within_the_limit() {
        let mut s = Schedule::new(T);
        // A request from T+40 s to T+41 s: the flush is due at T+60 s, 20 s away.
        let l = s.flush_later(T + 40_000, T + 41_000, 60);
        assert_eq!(l.map(|l| l.at_ms), Some(T + 60_000));
        let l = l.unwrap_or_else(|| panic!("none"));
        assert!(s.flush_now(l, T + 60_000, 60));
    }

    #[test]
    fn beyond_the_limit_it_flushes_early_only_when_no_request_came_since() {
        let mut s = Schedule::new(T);
        // Due at T+60 s, but the invocation may wait only until T+5 s + 25 s.
        let first = s.flush_later(T + 5_000, T + 6_000, 60);
        assert_eq!(first.map(|l| l.at_ms), Some(T + 30_000));
        let first = first.unwrap_or_else(|| panic!("none"));
        assert!(
            s.flush_now(first, T + 30_000, 60),
            "the last request: early"
        );
        // A second request named its own flush: the first one's early flush is skipped.
        let second = s.flush_later(T + 20_000, T + 21_000, 60);
        assert!(!s.flush_now(first, T + 30_000, 60));
        let second = second.unwrap_or_else(|| panic!("none"));
        assert_eq!(second.at_ms, T + 45_000);
        assert!(s.flush_now(second, T + 45_000, 60));
        // Due, a newer request or not.
        let _ = s.flush_later(T + 50_000, T + 51_000, 60);
        assert!(s.flush_now(first, T + 60_000, 60));
    }

    #[test]
    fn never_within_a_second_of_the_last_flush_and_none_past_the_limit() {
        let mut s = Schedule::new(T);
        s.flushed(T + 29_500);
        let l = s.flush_later(T + 5_000, T + 6_000, 60);
        let l = l.unwrap_or_else(|| panic!("none"));
        assert!(!s.flush_now(l, T + 30_000, 60));
        // The request ran past the limit: nothing to wait for.
        assert_eq!(s.flush_later(T, T + 26_000, 60), None);
        // A due flush at the response (a streamed answer is recorded later): wait to the limit.
        let mut s = Schedule::new(T);
        let l = s.flush_later(T + 70_000, T + 71_000, 60);
        assert_eq!(l.map(|l| l.at_ms), Some(T + 95_000));
    }
}
