//! The Worker's `fetch` export, driving the handler's future itself.
//!
//! Why not `#[event(fetch)]`: its export is an `async fn` under wasm-bindgen, which wraps the
//! handler in `future_to_promise` — a `Promise` built around a wasm closure, the future spawned
//! on wasm-bindgen-futures' queue and first polled in a later microtask — and every wake after
//! an await queues another microtask (`queueMicrotask`, a call into the runtime) before the
//! handler is polled again. In a workerd CPU profile of the router (benches/profile_edge.mjs)
//! that machinery was ~12 % of a chat request's samples. Here the handler is polled at once, in
//! the export call; a promise the router awaits through [`super::settle`] (the request body,
//! the upstream calls) polls it again directly when it settles ([`wake_now`]). Every other
//! wake (timers, `worker`'s futures) is deferred to a microtask as before: those wakers may
//! still have work to do after waking (worker's `Delay` marks itself fired only after its
//! wake), so polling inside them would see a future not ready yet.
//!
//! The promise the runtime gets is made in JS (`entry.js`) only when the handler does not
//! finish in its first poll. A handler whose awaited promise never settles (a request the
//! runtime abandoned) is dropped by a later request once it is [`STALE_MS`] old, far past any
//! request's deadline (`future_to_promise` left such a task to the garbage collector, through
//! the closures it had attached to that promise).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(module = "/src/edge/entry.js")]
extern "C" {
    #[wasm_bindgen(js_name = pending)]
    fn js_pending() -> js_sys::Promise;
    #[wasm_bindgen(js_name = settle)]
    fn js_settle(p: &js_sys::Promise, value: &JsValue);
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = queueMicrotask)]
    fn queue_microtask(f: &js_sys::Function);
}

type Handler = Pin<Box<dyn Future<Output = JsValue>>>;

/// One handler invocation being driven.
struct Task {
    id: u32,
    started_ms: u64,
    waker: Waker,
    future: RefCell<Option<Handler>>,
    /// Being polled now: a wake meanwhile sets [`Task::again`] instead of polling.
    polling: Cell<bool>,
    again: Cell<bool>,
    /// The promise the runtime was given, once the first poll was pending.
    promise: RefCell<Option<js_sys::Promise>>,
    /// The value, when the handler finished before there was a promise.
    early: RefCell<Option<JsValue>>,
}

/// How old an unfinished handler is when a new request drops it (see the module docs).
const STALE_MS: u64 = 15 * 60 * 1000;

thread_local! {
    /// The handlers not finished yet, by number.
    static TASKS: RefCell<Vec<(u32, Rc<Task>)>> = const { RefCell::new(Vec::new()) };
    static NEXT: Cell<u32> = const { Cell::new(0) };
    /// Handlers woken since the last microtask ran, and whether one is queued.
    static WOKEN: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static QUEUED: Cell<bool> = const { Cell::new(false) };
    static RUN_WOKEN: Closure<dyn FnMut()> = Closure::new(run_woken);
}

/// Runs `handler`: its value at once when it finishes in its first poll, else a promise of it.
pub fn run(handler: impl Future<Output = JsValue> + 'static) -> JsValue {
    let id = NEXT.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    let now = super::isolate::now_ms();
    let task = Rc::new(Task {
        id,
        started_ms: now,
        waker: Waker::from(Arc::new(Wakeup(id))),
        future: RefCell::new(Some(Box::pin(handler))),
        polling: Cell::new(false),
        again: Cell::new(false),
        promise: RefCell::new(None),
        early: RefCell::new(None),
    });
    // Dropped after the registry's borrow ends (a handler's drop may call into JS).
    let stale = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        // In start order: the oldest first.
        let mut old = Vec::new();
        while t
            .first()
            .is_some_and(|(_, x)| now.saturating_sub(x.started_ms) > STALE_MS)
        {
            old.push(t.remove(0).1);
        }
        t.push((id, task.clone()));
        old
    });
    for old in stale {
        let f = old.future.borrow_mut().take();
        drop(f);
    }
    poll(&task);
    if let Some(v) = task.early.borrow_mut().take() {
        return v;
    }
    // No JS ran since the poll: nothing can have settled meanwhile.
    let p = js_pending();
    *task.promise.borrow_mut() = Some(p.clone());
    p.into()
}

/// Polls `task` until it is pending with no wake outstanding, or done.
fn poll(task: &Rc<Task>) {
    if task.polling.replace(true) {
        task.again.set(true);
        return;
    }
    loop {
        task.again.set(false);
        let mut cx = Context::from_waker(&task.waker);
        let out = match task.future.borrow_mut().as_mut() {
            Some(f) => f.as_mut().poll(&mut cx),
            None => Poll::Pending,
        };
        if let Poll::Ready(v) = out {
            // What the handler held goes before the value leaves.
            task.future.borrow_mut().take();
            TASKS.with(|t| t.borrow_mut().retain(|(id, _)| *id != task.id));
            match task.promise.borrow().as_ref() {
                Some(p) => js_settle(p, &v),
                None => *task.early.borrow_mut() = Some(v),
            }
            break;
        }
        if !task.again.get() {
            break;
        }
    }
    task.polling.set(false);
}

fn task(id: u32) -> Option<Rc<Task>> {
    TASKS.with(|t| {
        t.borrow()
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, x)| x.clone())
    })
}

/// Wakes `waker` for a promise that has just settled, its result already stored: a handler's
/// own waker polls it now, any other is woken as usual.
pub fn wake_now(waker: Waker) {
    let found = TASKS.with(|t| {
        t.borrow()
            .iter()
            .find(|(_, x)| x.waker.will_wake(&waker))
            .map(|(_, x)| x.clone())
    });
    match found {
        Some(task) => poll(&task),
        None => waker.wake(),
    }
}

/// A handler's waker: its number (a waker must be `Send`; the task is not). A wake polls the
/// handler in a microtask.
struct Wakeup(u32);

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        WOKEN.with(|w| w.borrow_mut().push(self.0));
        if !QUEUED.with(|q| q.replace(true)) {
            RUN_WOKEN.with(|f| queue_microtask(f.as_ref().unchecked_ref()));
        }
    }
}

/// The microtask: polls every handler woken since it was queued.
fn run_woken() {
    QUEUED.with(|q| q.set(false));
    let ids = WOKEN.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for id in ids {
        if let Some(t) = task(id) {
            poll(&t);
        }
    }
}
