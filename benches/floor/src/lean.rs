//! `lean`: the bare worker through the router's tricks, to show how much of the idiomatic
//! floor (`pass`) they remove. As the router (src/edge/mod.rs `fetch_export`, entry.rs,
//! settle.rs, body.rs, fetch.rs): no `#[event(fetch)]` (whose `future_to_promise` spawns the
//! handler on wasm-bindgen-futures' queue) — the handler is polled at once in the export call,
//! and again directly when a promise it awaits settles, each settlement reported to one
//! callback made once per isolate (no closure pair per await); the body read by one JS call as
//! bytes; the upstream call one JS call with the headers as one string; the answer handed back
//! as one string with its headers as one string. The configuration is read once per isolate
//! (the router's `isolate` caches its secrets). No deadlines and no abort signals: the bare
//! worker has neither. With the `pump` feature a streamed answer goes through Rust chunk by
//! chunk ([`super::pump`]). With the `json` feature (the `lean-translate` build) the texts go
//! through [`super::translate`] on the way.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(module = "/src/lean.js")]
extern "C" {
    fn pending() -> js_sys::Promise;
    fn resolve(p: &js_sys::Promise, value: &JsValue);
    fn settle(p: &js_sys::Promise, id: u32, done: &js_sys::Function);
    #[wasm_bindgen(js_name = arrayBody)]
    fn array_body(request: &web_sys::Request, id: u32, done: &js_sys::Function);
    fn complete(url: &str, headers: &str, body: &str) -> js_sys::Promise;
    fn open(url: &str, headers: &str, body: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = respondWith)]
    fn respond_with(body: &str, status: u16, headers: &str) -> web_sys::Response;
    #[wasm_bindgen(js_name = respondWith)]
    fn respond_stream_with(body: &JsValue, status: u16, headers: &str) -> web_sys::Response;
    #[cfg(feature = "pump")]
    fn pipe(body: &JsValue, pump: super::pump::FloorPump, ctx: &JsValue) -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    /// `complete`'s and `open`'s value.
    type Outcome;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Outcome) -> u16;
    #[wasm_bindgen(method, getter)]
    fn text(this: &Outcome) -> String;
    #[wasm_bindgen(method, getter)]
    fn body(this: &Outcome) -> JsValue;
    #[wasm_bindgen(js_name = queueMicrotask)]
    fn queue_microtask(f: &js_sys::Function);
}

/// The upstream's URL and headers (`name\0value\0…`), read from the environment once.
struct Config {
    url: String,
    headers: String,
}

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

fn config(env: &worker::Env) -> worker::Result<Rc<Config>> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let base = env.var("PERPLEXITY_BASE_URL")?.to_string();
    let key = env.var("PERPLEXITY_API")?.to_string();
    let c = Rc::new(Config {
        url: format!("{base}/chat/completions"),
        headers: format!("content-type\0application/json\0authorization\0Bearer {key}"),
    });
    CONFIG.with(|x| *x.borrow_mut() = Some(c.clone()));
    Ok(c)
}

#[wasm_bindgen(js_name = fetch)]
pub fn fetch_export(raw: web_sys::Request, env: worker::Env, ctx: JsValue) -> JsValue {
    run(async move {
        match handle(raw, env, ctx).await {
            Ok(r) => r.into(),
            Err(e) => {
                respond_with(&format!("floor: {e:?}"), 500, "content-type\0text/plain").into()
            }
        }
    })
}

async fn handle(
    raw: web_sys::Request,
    env: worker::Env,
    ctx: JsValue,
) -> Result<web_sys::Response, JsValue> {
    let bytes = Settle::reported(|id, done| array_body(&raw, id, done)).await?;
    let bytes = bytes.unchecked_into::<js_sys::Uint8Array>().to_vec();
    let text = String::from_utf8(bytes).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let (body, stream) = super::translate::request(text).map_err(|e| JsValue::from_str(&e))?;
    let c = config(&env).map_err(|e| JsValue::from_str(&e.to_string()))?;
    if stream {
        let got: Outcome = Settle::new(open(&c.url, &c.headers, &body))
            .await?
            .unchecked_into();
        #[cfg(feature = "pump")]
        let body = pipe(&got.body(), super::pump::FloorPump::new(), &ctx);
        #[cfg(not(feature = "pump"))]
        let body = {
            let _ = &ctx;
            got.body()
        };
        return Ok(respond_stream_with(
            &body,
            got.status(),
            "content-type\0text/event-stream",
        ));
    }
    let got: Outcome = Settle::new(complete(&c.url, &c.headers, &body))
        .await?
        .unchecked_into();
    let text = super::translate::answer(got.text()).map_err(|e| JsValue::from_str(&e))?;
    Ok(respond_with(
        &text,
        got.status(),
        "content-type\0application/json",
    ))
}

// ---- the executor (src/edge/entry.rs, without its stale-handler sweep) ----------------------

type Handler = Pin<Box<dyn Future<Output = JsValue>>>;

struct Task {
    id: u32,
    waker: Waker,
    future: RefCell<Option<Handler>>,
    polling: Cell<bool>,
    again: Cell<bool>,
    promise: RefCell<Option<js_sys::Promise>>,
    early: RefCell<Option<JsValue>>,
}

thread_local! {
    static TASKS: RefCell<Vec<Rc<Task>>> = const { RefCell::new(Vec::new()) };
    static NEXT_TASK: Cell<u32> = const { Cell::new(0) };
    static WOKEN: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static QUEUED: Cell<bool> = const { Cell::new(false) };
    static RUN_WOKEN: Closure<dyn FnMut()> = Closure::new(run_woken);
}

/// Runs `handler`: its value at once when it finishes in its first poll, else a promise of it.
fn run(handler: impl Future<Output = JsValue> + 'static) -> JsValue {
    let id = NEXT_TASK.with(|n| n.replace(n.get().wrapping_add(1)));
    let task = Rc::new(Task {
        id,
        waker: Waker::from(Arc::new(Wakeup(id))),
        future: RefCell::new(Some(Box::pin(handler))),
        polling: Cell::new(false),
        again: Cell::new(false),
        promise: RefCell::new(None),
        early: RefCell::new(None),
    });
    TASKS.with(|t| t.borrow_mut().push(task.clone()));
    poll(&task);
    if let Some(v) = task.early.borrow_mut().take() {
        return v;
    }
    let p = pending();
    *task.promise.borrow_mut() = Some(p.clone());
    p.into()
}

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
            task.future.borrow_mut().take();
            TASKS.with(|t| t.borrow_mut().retain(|x| x.id != task.id));
            match task.promise.borrow().as_ref() {
                Some(p) => resolve(p, &v),
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

/// A waker that is a handler's own polls it now; any other is woken as usual.
fn wake_now(waker: Waker) {
    let found = TASKS.with(|t| {
        t.borrow()
            .iter()
            .find(|x| x.waker.will_wake(&waker))
            .cloned()
    });
    match found {
        Some(task) => poll(&task),
        None => waker.wake(),
    }
}

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

fn run_woken() {
    QUEUED.with(|q| q.set(false));
    let ids = WOKEN.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for id in ids {
        let t = TASKS.with(|t| t.borrow().iter().find(|x| x.id == id).cloned());
        if let Some(t) = t {
            poll(&t);
        }
    }
}

// ---- awaiting a promise through one shared callback (src/edge/settle.rs) -----------------

struct Slot {
    id: u32,
    waker: Option<Waker>,
    result: Option<Result<JsValue, JsValue>>,
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
    static NEXT_SLOT: Cell<u32> = const { Cell::new(0) };
    static DONE: Closure<dyn FnMut(u32, JsValue, bool)> = Closure::new(settled);
}

fn settled(id: u32, value: JsValue, ok: bool) {
    let waker = SLOTS.with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        let slot = s.iter_mut().find(|x| x.id == id)?;
        slot.result = Some(if ok { Ok(value) } else { Err(value) });
        slot.waker.take()
    });
    if let Some(w) = waker {
        wake_now(w);
    }
}

struct Settle {
    id: u32,
}

impl Settle {
    fn new(p: js_sys::Promise) -> Settle {
        Settle::reported(|id, done| settle(&p, id, done))
    }

    fn reported(start: impl FnOnce(u32, &js_sys::Function)) -> Settle {
        let id = NEXT_SLOT.with(|n| n.replace(n.get().wrapping_add(1)));
        SLOTS.with(|s| {
            s.borrow_mut().push(Slot {
                id,
                waker: None,
                result: None,
            })
        });
        DONE.with(|f| start(id, f.as_ref().unchecked_ref()));
        Settle { id }
    }
}

impl Future for Settle {
    type Output = Result<JsValue, JsValue>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            let Some(i) = s.iter().position(|x| x.id == self.id) else {
                return Poll::Ready(Err(JsValue::from_str("await lost")));
            };
            if let Some(r) = s[i].result.take() {
                s.swap_remove(i);
                return Poll::Ready(r);
            }
            match &mut s[i].waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        SLOTS.with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if let Some(i) = s.iter().position(|x| x.id == self.id) {
                    s.swap_remove(i);
                }
            }
        });
    }
}
