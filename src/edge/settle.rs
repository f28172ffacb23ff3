//! Awaiting a JS promise from Rust without a closure pair per await.
//!
//! Why: `JsFuture::from` makes two wasm-bindgen closures per promise (resolve and reject: a
//! boxed Rust closure and a JS function object each, registered for finalisation), attaches
//! them with `then`, and unregisters and drops both when it settles. A chat request awaits a JS
//! promise twice on its way (the request body, the upstream call), and in a workerd CPU profile
//! (benches/profile_edge.mjs) making and dropping those closures was ~2 % of a request's
//! samples. [`Settle`] asks `settle.js` to report the settlement to one callback the isolate
//! made once ([`DONE`]), naming the await by a number; the value waits in [`SLOTS`] until the
//! task is polled. Waking the task is as before (wasm-bindgen-futures' queue).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(module = "/src/edge/settle.js")]
extern "C" {
    #[wasm_bindgen(js_name = settle)]
    fn js_settle(p: &js_sys::Promise, id: u32, done: &js_sys::Function);
}

/// One pending await: its task's waker once polled, its result once settled.
struct Slot {
    id: u32,
    waker: Option<Waker>,
    result: Option<Result<JsValue, JsValue>>,
}

thread_local! {
    /// The awaits in flight in this isolate (a handful at most: one per request at a time).
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
    static NEXT: Cell<u32> = const { Cell::new(0) };
    /// The isolate's one settlement callback.
    static DONE: Closure<dyn FnMut(u32, JsValue, bool)> = Closure::new(settled);
}

/// A promise settled: its slot keeps the result, its task is woken. A slot already gone (its
/// future dropped) is left alone.
fn settled(id: u32, value: JsValue, ok: bool) {
    let waker = SLOTS.with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        let slot = s.iter_mut().find(|x| x.id == id)?;
        slot.result = Some(if ok { Ok(value) } else { Err(value) });
        slot.waker.take()
    });
    if let Some(w) = waker {
        // The result is stored: the handler may be polled right here.
        super::entry::wake_now(w);
    }
}

/// A JS promise as a future: its value, or its rejection's reason.
pub struct Settle {
    id: u32,
}

impl Settle {
    pub fn new(p: js_sys::Promise) -> Settle {
        Settle::reported(|id, done| js_settle(&p, id, done))
    }

    /// A settlement JS reports itself: `start` gets the await's number and the isolate's
    /// callback, and hands both to the JS that will call it as `settle.js` does
    /// (`done(id, value, ok)`; at once, if it has the value already).
    pub fn reported(start: impl FnOnce(u32, &js_sys::Function)) -> Settle {
        let id = NEXT.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
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
                // Never: the slot lives as long as this future.
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
