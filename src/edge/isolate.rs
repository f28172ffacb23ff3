//! The Worker's shell around [`IsolateState`] (`core::fleet`): the state lives in a
//! `thread_local`, this module reads the clock (`Date.now()`), draws the seed, and performs the
//! KV I/O the state asks for under `ctx.wait_until`. Every decision — what to write, when to
//! refresh, what a refresh changes — is the core's.
//!
//! Workers run one request at a time per thread, so a `RefCell` suffices; no borrow is ever
//! held across an `.await`.

use super::kv;
use super::store::Store;
use crate::core::config::{self, SECRET_VARIABLES};
use crate::core::decide::RouteRequest;
use crate::core::fleet::{
    FleetReport, FlushLater, IsolateInit, IsolateState, KvWrite, RefreshTicket, REFRESH_DEADLINE_MS,
};
use crate::core::keytag::TagSecret;
use crate::core::store::{self, StateStore};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;
use wasm_bindgen::JsCast;
use worker::{console_error, Context, Delay, Env};

thread_local! {
    static ISO: RefCell<Option<IsolateState>> = const { RefCell::new(None) };
}

/// Runs `f` on the isolate state, if it is initialised.
pub fn with<R>(f: impl FnOnce(&mut IsolateState) -> R) -> Option<R> {
    ISO.with(|cell| cell.borrow_mut().as_mut().map(f))
}

/// Epoch ms: `Date.now()`, a static call (`worker::Date::now()` allocates a JS `Date` object per
/// call, and a request reads the clock a dozen times).
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// How many 16-byte draws one `crypto.getRandomValues` call fills.
const RANDOM_POOL_DRAWS: usize = 16;

thread_local! {
    /// Random bytes drawn ahead: a request takes two or three 16-byte draws (request id,
    /// completion id, an issued cookie), and each `crypto.getRandomValues` is a crossing into
    /// JS and a copy (two per request in a workerd profile, benches/profile_edge.mjs). Filled
    /// 256 bytes at a time; every byte is handed out once.
    static RANDOM_POOL: RefCell<([u8; 16 * RANDOM_POOL_DRAWS], usize)> =
        const { RefCell::new(([0; 16 * RANDOM_POOL_DRAWS], 16 * RANDOM_POOL_DRAWS)) };
}

/// 16 bytes from the platform's CSPRNG (through [`RANDOM_POOL`]).
pub fn random_bytes() -> [u8; 16] {
    RANDOM_POOL.with(|cell| {
        let mut pool = cell.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + 16 > bytes.len() {
            if getrandom::fill(bytes).is_err() {
                // Never fatal: fall back to Math.random (only used for ids, seeds and cookie
                // values).
                for x in bytes.iter_mut() {
                    *x = (js_sys::Math::random() * 256.0) as u8;
                }
            }
            *used = 0;
        }
        let mut b = [0u8; 16];
        b.copy_from_slice(&bytes[*used..*used + 16]);
        *used += 16;
        b
    })
}

thread_local! {
    /// Secrets already read in this isolate. An isolate's bindings never change (a new secret
    /// or var is a new deployment, with new isolates), and a chat request asks for the admin
    /// token up to four times: each read is a lookup and a string copy out of JS.
    static SECRETS: RefCell<Vec<(&'static str, Option<String>)>> = const { RefCell::new(Vec::new()) };
}

/// A secret binding (`wrangler secret put`), or a plain var of that name (local dev, tests).
pub fn secret(env: &Env, name: &'static str) -> Option<String> {
    if let Some(known) = SECRETS.with(|s| {
        s.borrow()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }) {
        return known;
    }
    let value = env
        .secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty());
    SECRETS.with(|s| s.borrow_mut().push((name, value.clone())));
    value
}

/// The configuration among the Worker's bindings: every known variable and every other
/// `LIGHTRAG_*` name (so the loader reports a typo in `wrangler.toml` instead of never seeing
/// it), secrets excepted. A `[vars]` entry that is a TOML table arrives as a JS object and is
/// read as JSON.
pub(super) fn read_vars(env: &Env) -> Map<String, Value> {
    let mut m = Map::new();
    let obj: &js_sys::Object = env.unchecked_ref();
    for name in js_sys::Object::keys(obj)
        .iter()
        .filter_map(|k| k.as_string())
    {
        let wanted = config::KNOWN_VARIABLES.contains(&name.as_str())
            || (name.starts_with("LIGHTRAG_") && !SECRET_VARIABLES.contains(&name.as_str()));
        if !wanted {
            continue;
        }
        let Ok(v) = js_sys::Reflect::get(obj, &name.as_str().into()) else {
            continue;
        };
        let value = match v.as_string() {
            Some(s) => Value::String(s),
            // A JSON var: through JSON text, with the serde_json already in the bundle.
            None => match js_sys::JSON::stringify(&v)
                .ok()
                .and_then(|t| t.as_string())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                Some(j) => j,
                None => continue, // not a var (no binding of ours has these names)
            },
        };
        m.insert(name, value);
    }
    m
}

fn new_state(env: &Env, now: u64) -> IsolateState {
    let seed = random_bytes();
    let mut s = [0u8; 8];
    s.copy_from_slice(&seed[..8]);
    IsolateState::new(IsolateInit {
        id: crate::core::identity::new_id(&random_bytes()),
        vars: read_vars(env),
        seed: u64::from_le_bytes(s),
        // The deployment's tag secret, so a user's tag is the same in every isolate (the state
        // hub's fleet breaker counts distinct users across them; core::keytag).
        tag_secret: secret(env, "ADMIN_TOKEN")
            .map_or_else(|| TagSecret::new(random_bytes()), |t| TagSecret::derive(&t)),
        setup: super::guard::setup_facts(env),
        fleet_reports: matches!(Store::open(env), Some(Store::Hub(_))),
        now_ms: now,
    })
}

/// How often a request waiting for the first KV load looks again. Each waiter polls with its
/// own timer: Workers forbid one request's I/O (a KV read resolving) from resuming another
/// request's task, so the load cannot wake its waiters directly.
const FIRST_LOAD_POLL_MS: u64 = 5;

/// Waits until the first KV load has arrived or `wait_ms` have passed; whether it arrived.
async fn wait_first_load(wait_ms: u64) -> bool {
    wait_for(|i| i.first_load_arrived(), wait_ms).await
}

/// Waits until `ready` holds on the isolate state (or there is none) or `wait_ms` have passed;
/// whether it held.
async fn wait_for(ready: impl Fn(&IsolateState) -> bool, wait_ms: u64) -> bool {
    let deadline = now_ms().saturating_add(wait_ms);
    loop {
        if with(|i| ready(i)).unwrap_or(true) {
            return true;
        }
        let now = now_ms();
        if now >= deadline {
            return false;
        }
        let step = FIRST_LOAD_POLL_MS.min(deadline - now);
        Delay::from(Duration::from_millis(step)).await;
    }
}

/// Creates the isolate state if this is the isolate's first request, and starts its first
/// KV load. Returns the load to run, if one was started here.
fn init(env: &Env) -> Option<impl Future<Output = ()>> {
    let now = now_ms();
    if ISO.with(|c| c.borrow().is_some()) {
        return None;
    }
    let iso = new_state(env, now);
    ISO.with(|c| *c.borrow_mut() = Some(iso));
    let Some(store) = Store::open(env) else {
        with(|i| i.kv_missing(super::KV_BINDING, now));
        return None;
    };
    let ticket = with(|i| i.start_refresh(now))?;
    Some(async move { refresh(&store, ticket).await })
}

/// Makes sure the isolate state exists before a request is routed. A cold isolate's first
/// requests wait for its first KV load, at most `STATE_FIRST_LOAD_WAIT_MS`; a request that
/// gives up routes on the vars alone and is counted in the status (`routed_before_kv`). The
/// load itself runs under `wait_until`, so it completes even if no request waits for it.
pub async fn ensure(env: &Env, ctx: &Context) {
    if let Some(load) = init(env) {
        ctx.wait_until(load);
    }
    if with(|i| i.first_load_arrived()).unwrap_or(true) {
        return;
    }
    let wait_ms = with(|i| i.config().first_load_wait_ms).unwrap_or(0);
    if !wait_first_load(wait_ms).await {
        with(|i| i.note_cold_route(now_ms()));
    }
}

/// Before routing `rr`: when the isolate's state is older than `STATE_REFRESH_SECONDS` (it had
/// no request for a while), starts the refresh under `wait_until` and, when that old state
/// could send `rr` to LightRAG, waits for it at most `STATE_FIRST_LOAD_WAIT_MS`; a request that
/// gave up is counted (`kv.refresh.stale_routes`). Why: `core::fleet::schedule`.
pub async fn before_routing(env: &Env, ctx: &Context, rr: &RouteRequest<'_>) {
    let Some(store) = Store::open(env) else {
        return; // no KV: the vars are all there is, never stale
    };
    let Some(b) = with(|i| i.before_routing(rr, now_ms())) else {
        return;
    };
    if let Some(ticket) = b.start {
        ctx.wait_until(async move { refresh(&store, ticket).await });
    }
    let Some(ticket) = b.wait_for else {
        return;
    };
    let wait_ms = with(|i| i.config().first_load_wait_ms).unwrap_or(0);
    if !wait_for(|i| i.refresh_applied(ticket), wait_ms).await {
        with(|i| i.note_stale_route(now_ms()));
    }
}

/// Makes sure the isolate state exists and its first KV load has arrived (the admin API and
/// the cron controller, which must see the stored state, not the vars), waiting at most the
/// refresh deadline.
pub async fn ensure_loaded(env: &Env) {
    let started = init(env);
    if let Some(load) = started {
        load.await;
        return;
    }
    wait_first_load(REFRESH_DEADLINE_MS).await;
}

/// Reads the shared state from KV and hands it to the isolate state.
pub async fn refresh(store: &Store, ticket: RefreshTicket) {
    let remote = store::load_remote(store).await;
    for w in &remote.warnings {
        console_error!("{}", w);
    }
    with(|i| i.refresh_done(ticket, remote, now_ms()));
}

/// A refresh now, whatever the schedule (after a controller tick).
pub async fn refresh_now(store: &Store) {
    if let Some(ticket) = with(|i| i.start_refresh(now_ms())) {
        refresh(store, ticket).await;
    }
}

/// After a request that started at `started_ms`: runs the background work that is due
/// (throttled writes, a metrics flush, a refresh) under `wait_until`, each at most as often as
/// the KV budget allows. The writes start together, at the time the throttle handed them out
/// (one waiting for another would shift it later and bring it closer to the key's next
/// write), then the refresh reads.
///
/// Then, when `defer_from_ms` (the request's start) is given, the flush the request names for
/// later (`IsolateState::flush_later`): an invocation stays alive under `wait_until` until
/// then — the flush's due time, at most 25 s after the request started, within the 30 s
/// Workers allow after a response; this request's, or the one whose timer covers it
/// ([`FlushTimer`]) — and writes the metrics if they are still unflushed, so an
/// idle isolate's last counts reach KV within a flush period instead of at its next request
/// (`core::fleet::schedule` says why).
///
/// Not for a streamed response (`None`): a `wait_until` still pending delays the runtime's
/// cancellation of the request's tasks when the client disconnects, and the stream's pump then
/// kept running against the closed client (workerd test `exchange`, "a client that disconnects
/// mid-stream …", hung at 80 % CPU). A streamed answer's counts go with the isolate's next
/// flush, as before.
pub fn background(env: &Env, ctx: &Context, defer_from_ms: Option<u64>) {
    let now = now_ms();
    let Some(store) = Store::open(env) else {
        return;
    };
    let Some(due) = with(|i| i.background(now)) else {
        return;
    };
    let later =
        defer_from_ms.and_then(|started_ms| with(|i| i.flush_later(started_ms, now)).flatten());
    if let Some(later) = later {
        if FLUSH_TIMER.with(|t| t.borrow_mut().name(later, now)) {
            if let Some(store) = Store::open(env) {
                ctx.wait_until(flush_timer(store, later.at_ms));
            }
        }
    }
    let report = with(IsolateState::fleet_report).flatten();
    if due.is_empty() && report.is_none() {
        return;
    }
    ctx.wait_until(async move {
        let writes = async {
            write_all(&store, due.writes).await;
            if let Some(ticket) = due.refresh {
                refresh(&store, ticket).await;
            }
        };
        futures_util::future::join(writes, report_calls(&store, report)).await;
    });
}

/// How much earlier than a request's own time its deferred flush may run, on a timer another
/// request armed. At most one timer is armed per this interval instead of one per request.
const FLUSH_TIMER_SLACK_MS: u64 = 5_000;

/// The deferred-flush timer of this isolate: when the armed one fires, and the newest flush a
/// request named. Why one timer: every non-streamed request used to keep its invocation alive
/// on its own timer (`wait_until` + `setTimeout`, ~4 % of a request's CPU in a workerd
/// profile, benches/profile_edge.mjs), though only the last request's timer ever flushes (the
/// others find a newer request or the flush already made). A request whose time is at most
/// [`FLUSH_TIMER_SLACK_MS`] after the armed timer's relies on that timer, which then asks the
/// core with the newest request's [`FlushLater`]: so the isolate's last counts still reach KV
/// by the last request's time (up to the slack earlier), and a flush is still made only when
/// due or when no request came since (`IsolateState::flush_at`).
#[derive(Default)]
struct FlushTimer {
    /// When the armed timer fires (`None`: no timer pending).
    armed_at_ms: Option<u64>,
    /// The newest flush a request named.
    newest: Option<FlushLater>,
}

impl FlushTimer {
    /// Records the flush a request named at `now`; whether the caller must arm a timer for it.
    fn name(&mut self, later: FlushLater, now: u64) -> bool {
        self.newest = Some(later);
        let covered = self.armed_at_ms.is_some_and(|armed| {
            // A timer that should have fired a second ago is presumed lost (its invocation
            // cancelled): arm again.
            now <= armed.saturating_add(1_000)
                && later.at_ms <= armed.saturating_add(FLUSH_TIMER_SLACK_MS)
        });
        if !covered {
            self.armed_at_ms = Some(later.at_ms);
        }
        !covered
    }

    /// The armed timer for `at_ms` fired: the flush to ask for, if this is still the armed one.
    fn fired(&mut self, at_ms: u64) -> Option<FlushLater> {
        if self.armed_at_ms != Some(at_ms) {
            return None;
        }
        self.armed_at_ms = None;
        self.newest
    }
}

thread_local! {
    static FLUSH_TIMER: RefCell<FlushTimer> = RefCell::new(FlushTimer::default());
}

/// Waits until `at_ms` (under the arming request's `wait_until`), then makes the deferred
/// flush the newest request named, if it is still wanted.
async fn flush_timer(store: Store, at_ms: u64) {
    let wait = at_ms.saturating_sub(now_ms());
    Delay::from(Duration::from_millis(wait)).await;
    let Some(newest) = FLUSH_TIMER.with(|t| t.borrow_mut().fired(at_ms)) else {
        return;
    };
    if let Some(w) = with(|i| i.flush_at(newest, now_ms().max(at_ms))).flatten() {
        write_all(&store, vec![w]).await;
    }
}

/// The LightRAG calls recorded since the last report, to the state hub's fleet breaker
/// (`core::breaker::fleet`); calls recorded while one is on its way go in the next, sent as
/// soon as it is answered, so none waits for another request.
async fn report_calls(store: &Store, mut next: Option<FleetReport>) {
    while let Some(report) = next {
        let upstream = report.upstream;
        let record = store.report(report).await.unwrap_or_else(|e| {
            console_error!("{e}");
            None
        });
        with(|i| i.fleet_reported(upstream, record.as_deref(), now_ms()));
        next = with(IsolateState::fleet_report).flatten();
    }
}

/// How many times a refused write is attempted at most (the first included).
const WRITE_ATTEMPTS: u8 = 3;

/// Makes `writes` together. A failed one (KV's 429 when another isolate wrote the key within
/// the second) is reported to the isolate state with what the key holds now
/// (`IsolateState::write_failed`), which decides whether a retry is wanted: not when the
/// stored breaker record already carries this transition or a newer one. The retry waits for
/// the throttle interval and writes what is due then, at most [`WRITE_ATTEMPTS`] times.
async fn write_all(store: &Store, mut writes: Vec<KvWrite>) {
    for _ in 0..WRITE_ATTEMPTS {
        let results = futures_util::future::join_all(writes.iter().map(|w| put(store, w))).await;
        let mut retry_at = None;
        for (w, r) in writes.iter().zip(results) {
            if r.is_ok() {
                continue;
            }
            let stored = if IsolateState::read_back_after_failure(&w.key) {
                store.get(&w.key).await.ok().flatten()
            } else {
                None
            };
            let at = with(|i| i.write_failed(&w.key, stored.as_deref(), now_ms())).flatten();
            retry_at = retry_at.max(at);
        }
        let Some(at) = retry_at else {
            return;
        };
        Delay::from(Duration::from_millis(at.saturating_sub(now_ms()))).await;
        writes = with(|i| i.due_writes(now_ms().max(at))).unwrap_or_default();
        if writes.is_empty() {
            return;
        }
    }
}

async fn put(store: &Store, w: &KvWrite) -> Result<(), ()> {
    store
        .put(&w.key, &w.value, w.ttl_seconds)
        .await
        .map_err(|e| {
            console_error!("{}", e);
        })
}

/// This isolate's KV operation counters (status, `/metrics`).
pub fn kv_ops() -> crate::core::store::OpCounts {
    kv::ops()
}

/// Forces a metrics flush now (admin), ignoring the interval. Returns the key written.
pub async fn flush_now(env: &Env) -> Result<String, FlushError> {
    let store = Store::open(env).ok_or(FlushError::NoBinding)?;
    let w = with(|i| i.take_flush(now_ms())).ok_or(FlushError::NotReady)?;
    store
        .put(&w.key, &w.value, w.ttl_seconds)
        .await
        .map_err(|e| FlushError::Store(e.to_string()))?;
    Ok(w.key)
}
/// Why a forced flush did not happen.
pub enum FlushError {
    NoBinding,
    NotReady,
    Store(String),
}

impl std::fmt::Display for FlushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushError::NoBinding => f.write_str("KV binding missing"),
            FlushError::NotReady => f.write_str("isolate not initialised"),
            FlushError::Store(e) => f.write_str(e),
        }
    }
}
