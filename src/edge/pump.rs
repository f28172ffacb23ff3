//! A committed stream's body, pumped from JS (`upstream_io.js` `pipe`) and translated here.
//!
//! Why: as a Rust `Stream` adapted by wasm_streams, every chunk the runtime pulled went through
//! `future_to_promise`, a task polled by wasm-bindgen-futures, a `JsFuture` per upstream read
//! and its waker's microtask; and the first frames (the role chunk and the first text, ready at
//! the commit) waited for the runtime's first pull after the Response was returned. Now the
//! ReadableStream is made in JS with those frames already enqueued, and each later pull reads
//! the upstream there and hands the read to [`StreamPump`]: one synchronous call that decodes,
//! translates and books it. Rust still decides everything ([`super::chat::Pipe`]): the frames,
//! the deadlines (the next read's wake-up), the end, the bookings.

use super::chat::Pipe;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(module = "/src/edge/upstream_io.js")]
extern "C" {
    /// `{readable}` (upstream_io.js `pipe`).
    type Piped;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &Piped) -> web_sys::ReadableStream;

    #[wasm_bindgen(js_name = pipe)]
    fn js_pipe(first: Vec<u8>, body: &JsValue, pump: StreamPump, ctx: &JsValue) -> Piped;
}

/// The body of a committed stream for the client: the frames `pipe` has ready now go out at
/// once, the rest as the pump reads them. The invocation is kept alive (`waitUntil`) until the
/// pump is over and the upstream's body has been read to its end (upstream_io.js `drain` says
/// why), which may be after the client's stream has ended.
pub fn body(mut pipe: Pipe, ctx: &worker::Context) -> web_sys::ReadableStream {
    let first = pipe.drain();
    let reader = pipe.s.body_js().clone();
    // `pipe` hands its `done` to the context's `waitUntil` itself: `worker::Context::wait_until`
    // takes a Rust future (a task, a promise and a microtask per wake around one JS promise).
    let js_ctx: &worker::worker_sys::Context = ctx.as_ref();
    js_pipe(first, &reader, StreamPump { pipe }, js_ctx).readable()
}

/// The Rust half of a pumped stream, owned by the JS stream (freed when it ends or is
/// cancelled: the pipe, its exchange and its upstream call are dropped with it).
#[wasm_bindgen]
pub struct StreamPump {
    pipe: Pipe,
}

#[wasm_bindgen]
impl StreamPump {
    /// The frames ready to go out, as one chunk; nothing when a read is needed first (or the
    /// stream is over: [`StreamPump::wake_at`] says which). A break or an end already seen is
    /// handled here, without a read.
    pub fn frames(&mut self) -> Option<Vec<u8>> {
        // `pipe` asks only once the first frames have been taken.
        self.pipe.after_first();
        loop {
            if !self.pipe.out.is_empty() {
                return Some(self.pipe.drain());
            }
            if self.pipe.finished {
                return None;
            }
            let next = self.pipe.s.without_read()?;
            self.pipe.handle(next);
        }
    }

    /// Until when (epoch ms) the next read of the upstream may wait; -1 when the stream is
    /// over.
    pub fn wake_at(&self) -> f64 {
        if self.pipe.finished {
            -1.0
        } else {
            self.pipe.wake_at_ms as f64
        }
    }

    /// The read gave `bytes`.
    pub fn chunk(&mut self, bytes: &[u8]) {
        let next = self.pipe.s.after_bytes(bytes);
        self.pipe.handle(next);
    }

    /// The body ended.
    pub fn end(&mut self) {
        let next = self.pipe.s.after_read(super::fetch::Chunk::End);
        self.pipe.handle(next);
    }

    /// Nothing came by the wake-up time.
    pub fn timer(&mut self) {
        let next = self.pipe.s.after_read(super::fetch::Chunk::Timeout);
        self.pipe.handle(next);
    }

    /// The body broke off (`error`: the runtime's words).
    pub fn broken(&mut self, error: String) {
        let next = self.pipe.s.after_read(super::fetch::Chunk::Broken(error));
        self.pipe.handle(next);
    }
}
