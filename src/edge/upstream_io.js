// The I/O of an upstream call, each step one call from Rust (src/edge/fetch.rs).
//
// Why in JS: driven from Rust, a call crossed into JS for every part of every step — each
// request header, the fetch, a `setTimeout` closure per deadline (two per call, one per chunk
// read of a stream), `Response.text()`, a promise callback and a microtask per await — and
// those crossings, closures and microtasks were the largest cost of a request left in a
// workerd CPU profile of the router (benches/profile_edge.mjs). Here a step is one promise;
// its deadline is a plain timer. Rust still decides everything: the deadlines, the headers,
// what each outcome means (core::exchange).
//
// Every outcome is an object `{kind, …}`; nothing here throws or rejects.

const TIMEOUT = Symbol("timeout");

/** `p`'s value, or TIMEOUT when epoch ms `atMs` comes first (at least 1 ms from now). */
function within(p, atMs) {
  let timer;
  const expiry = new Promise((resolve) => {
    timer = setTimeout(resolve, Math.max(1, atMs - Date.now()), TIMEOUT);
  });
  return Promise.race([p, expiry]).finally(() => clearTimeout(timer));
}

/** A thrown value as text (its message when it is an `Error`). */
const message = (e) => (e instanceof Error ? e.message : String(e));

/**
 * The signal of a call: its controller's, also aborted (with the client's reason) when the
 * client leaves. Not `AbortSignal.any` (a new signal with its followers per call: 2 % of a
 * request's samples in workerd), and not a listener per call either (an `addEventListener` on
 * the client's signal was ~14 µs of a streamed request's way to its upstream, in-worker
 * timestamps): a client signal the router watches (`watch`) keeps its calls' controllers, and
 * its one `onabort` handler aborts them. An unwatched one gets a listener.
 */
function signalOf(controller, client) {
  if (!controller) return client;
  if (client) {
    if (client.aborted) controller.abort(client.reason);
    else if (client[CALLS]) client[CALLS].push(controller);
    else client.addEventListener("abort", () => controller.abort(client.reason), { once: true });
  }
  return controller.signal;
}

/** Where a watched client signal keeps its calls' controllers, and its watcher. */
const CALLS = Symbol("calls");
const WATCHER = Symbol("watcher");

/** A watched client signal's `onabort`: its calls are aborted, then its watcher told. */
function clientAborted(event) {
  const signal = event.target;
  for (const c of signal[CALLS] ?? []) c.abort(signal.reason);
  signal[WATCHER]?.(event);
}

/**
 * Watches the client's `signal` (src/edge/chat.rs `ClientWatch`): when it aborts, the calls made
 * under it (`signalOf`) are aborted and `handler` is called with the event.
 */
export function watch(signal, handler) {
  signal[CALLS] ??= [];
  signal[WATCHER] = handler;
  signal.onabort = clientAborted;
}

/**
 * The runtime's `fetch` of a call: `body` POSTed to `url` with `headers` as a plain object —
 * the runtime reads it in one conversion, not a `Headers` filled by `set` (`respondWith` says
 * what that costs) — under the call's signal (`signalOf`). `headers` comes as one string
 * `name\0value\0name\0value…` (src/edge/fetch.rs `Post::header_arg` says why), or as a list
 * `[name, value, …]` when a name or value holds a NUL; each name once (the callers' lists).
 * `send`, `complete` and `open` all start here.
 */
function post(url, headers, body, controller, client) {
  const list = typeof headers === "string" ? headers.split("\0") : headers;
  const h = {};
  for (let i = 0; i + 1 < list.length; i += 2) h[list[i]] = list[i + 1];
  return fetch(url, { method: "POST", headers: h, body, signal: signalOf(controller, client) });
}

/**
 * POSTs `body` to `url` with `headers` (as `post` takes them), aborted by
 * `controller` or the client's signal `client` (either may be undefined), and waits for the
 * response headers until epoch ms `headAt`: `{kind: "head", response, at}` (at: when they
 * arrived), `{kind: "no_head"}`, or `{kind: "connect", error}`.
 */
export async function send(url, headers, body, controller, client, headAt) {
  try {
    const response = await within(post(url, headers, body, controller, client), headAt);
    if (response === TIMEOUT) return { kind: "no_head" };
    return { kind: "head", response, at: Date.now() };
  } catch (e) {
    return { kind: "connect", error: message(e) };
  }
}

/**
 * The whole body of `response` as text, until epoch ms `doneAt`: `{kind: "text", text}`,
 * `{kind: "timeout"}`, or `{kind: "broken", error}`.
 */
export async function text(response, doneAt) {
  try {
    const t = await within(response.text(), doneAt);
    return t === TIMEOUT ? { kind: "timeout" } : { kind: "text", text: t };
  } catch (e) {
    return { kind: "broken", error: message(e) };
  }
}

/**
 * One deadline timer for the steps of a complete call, moved from step to step (the headers
 * by one time, the body by another): a timer per step (a `setTimeout`, a `clearTimeout` and a
 * `finally` each) was ~2.5 % of a request's samples in workerd (benches/profile_edge.mjs).
 * `expired` resolves to TIMEOUT once the current deadline `at` has passed; the timer is re-armed
 * only when it fires before `at` or `at` moves earlier.
 */
function deadline(atMs) {
  const d = { at: atMs, timer: undefined, timerAt: 0, fire: undefined, expired: undefined };
  d.expired = new Promise((resolve) => (d.fire = resolve));
  arm(d, atMs);
  return d;
}

function arm(d, atMs) {
  d.timerAt = atMs;
  d.timer = setTimeout(() => {
    d.timer = undefined;
    if (d.at > Date.now()) arm(d, d.at);
    else d.fire(TIMEOUT);
  }, Math.max(1, atMs - Date.now()));
}

/** Moves `d` to epoch ms `atMs` (the same rule as `within`: at least 1 ms from now). */
function moveTo(d, atMs) {
  d.at = atMs;
  if (atMs < d.timerAt && d.timer !== undefined) {
    clearTimeout(d.timer);
    arm(d, atMs);
  }
}

/** `p`'s value, or TIMEOUT when `d`'s deadline comes first. */
const before = (p, d) => Promise.race([p, d.expired]);

/**
 * A complete call: `send`, then — for a 2xx — the body as text until `doneAt` (`{kind: "text",
 * text, at}`, or "timeout" / "broken" as `text` gives them); for any other status its body
 * for the log, read until `errorBodyAt` or 2 s after the headers, whichever is first, empty if
 * it cannot be read (`{kind: "status", status, text, at}`). "no_head" and "connect" as from
 * `send`. One deadline timer serves both steps (`deadline`).
 */
export async function complete(url, headers, body, controller, client, headAt, doneAt, errorBodyAt) {
  const d = deadline(headAt);
  try {
    let response;
    try {
      response = await before(post(url, headers, body, controller, client), d);
    } catch (e) {
      return { kind: "connect", error: message(e) };
    }
    if (response === TIMEOUT) return { kind: "no_head" };
    const at = Date.now();
    const status = response.status;
    const ok = status >= 200 && status <= 299;
    moveTo(d, ok ? doneAt : Math.min(errorBodyAt, at + 2000));
    let got;
    try {
      const t = await before(response.text(), d);
      got = t === TIMEOUT ? { kind: "timeout" } : { kind: "text", text: t };
    } catch (e) {
      got = { kind: "broken", error: message(e) };
    }
    if (!ok) return { kind: "status", status, text: got.kind === "text" ? got.text : "", at };
    return got.kind === "text" ? { kind: "text", text: got.text, at } : got;
  } finally {
    if (d.timer !== undefined) clearTimeout(d.timer);
  }
}

/**
 * A promise of TIMEOUT at epoch ms `atMs` (at least 1 ms from now), shared by `body`'s reads. A
 * body reader (`open` makes it) keeps the read in flight (if any) and one deadline timer for all
 * its reads: a stream's deadline moves on with every chunk, and a timer per read (a
 * `setTimeout` and a `clearTimeout` per chunk) was most of what reading a chunk cost; this one
 * is re-armed only when it fires early or the deadline moves earlier.
 */
function expiry(body, atMs) {
  body.deadline = atMs;
  if (body.expiry && body.timerAt <= atMs) return body.expiry;
  if (body.timer !== undefined) clearTimeout(body.timer);
  body.expiry ??= new Promise((resolve) => (body.fire = resolve));
  const arm = (at) => {
    body.timerAt = at;
    body.timer = setTimeout(() => {
      const left = body.deadline - Date.now();
      if (left > 0) return arm(body.deadline);
      body.timer = undefined;
      body.expiry = undefined;
      body.fire(TIMEOUT);
    }, Math.max(1, at - Date.now()));
  };
  arm(atMs);
  return body.expiry;
}

/** Stops `body`'s deadline timer (the stream is over, or dropped). */
export function close(body) {
  if (body.timer !== undefined) clearTimeout(body.timer);
  body.timer = undefined;
  body.expiry = undefined;
}

/**
 * `send` for a stream: for a 2xx with a body, its reader (a body reader for `read`) comes too, with
 * what its first read gave by `headAt`, so the first chunk is asked for as soon as the headers
 * arrive and comes to Rust with them, not after a second round. What Rust reads is `code`
 * (OPENED: the head's kind and the first read's in one number, instead of a string getter each),
 * `response`, `body`, and the first read's `value` (a chunk) or `error` (broken) on the same
 * object: `{code, response, at, body, value}`, or `{code, error}`. `unit` is what the first chunk should hold whole
 * ("event": an SSE event, up to its blank line; "line": an NDJSON line): a unit split over
 * several reads (the network cuts anywhere; loopback split a mock's first event in ~28 % of
 * streams) is read on here until it is whole or FIRST_UNIT_MAX long, the body ends or the
 * deadline passes, and comes as one chunk — a round through Rust per piece was ~45 µs each
 * (in-worker timestamps). Rust still reads on when the unit holds no text or is unfinished.
 */
export async function open(url, headers, body, controller, client, headAt, unit) {
  // One deadline timer for the headers and the first unit (both are due by `headAt`), then for
  // the body's later reads: `send`'s own timer (`within`: a timer, a race and a `finally`) was
  // a second one on the way to the first text.
  const r = { reader: undefined, pending: undefined, deadline: 0, timer: undefined, timerAt: 0, expiry: undefined, stash: undefined };
  let response;
  try {
    response = await Promise.race([post(url, headers, body, controller, client), expiry(r, headAt)]);
  } catch (e) {
    close(r);
    return { code: OPENED.connect, error: message(e) };
  }
  if (response === TIMEOUT) {
    close(r);
    return { code: OPENED.no_head };
  }
  const head = { code: OPENED.head, response, at: Date.now() };
  if (response.status >= 200 && response.status <= 299 && response.body) {
    r.reader = response.body.getReader();
    head.body = r;
    let first = await read(r, headAt);
    if (first.kind === "chunk" && !whole(first.value, unit)) {
      let bytes = first.value;
      for (;;) {
        const more = await read(r, headAt);
        if (more.kind !== "chunk") {
          // The end or a break is the next read's answer; a timeout leaves the read pending.
          if (more.kind !== "timeout") r.stash = more;
          break;
        }
        const joined = new Uint8Array(bytes.length + more.value.length);
        joined.set(bytes);
        joined.set(more.value, bytes.length);
        bytes = joined;
        if (whole(bytes, unit) || bytes.length >= FIRST_UNIT_MAX) break;
      }
      first = { kind: "chunk", value: bytes };
    }
    head.code += OPENED[first.kind] * 4;
    head.value = first.value;
    head.error = first.error;
  } else {
    close(r);
  }
  return head;
}

/**
 * `open`'s `code`: the head's kind (head 0, no_head 1, connect 2) plus 4 × the first read's (none
 * 0, chunk 1, end 2, timeout 3, broken 4). src/edge/fetch.rs `open` reads it.
 */
const OPENED = { head: 0, no_head: 1, connect: 2, chunk: 1, end: 2, timeout: 3, broken: 4 };

/**
 * How much of a first unit `open` gathers at most before handing it on unfinished: Rust's
 * decoders read on from there and bound a line that never ends (1 MiB, src/core/wire/ndjson.rs
 * and sse.rs); gathering here without a bound would hold such a line in memory until the
 * first-byte deadline.
 */
const FIRST_UNIT_MAX = 64 * 1024;

/** Whether `bytes` hold a whole `unit` (`open`): a blank line, or a line end. */
function whole(bytes, unit) {
  if (unit === "line") return bytes.includes(10);
  if (unit !== "event") return true;
  // SSE line ends are CRLF, CR or LF; an event ends at a line end right after another.
  let lineStart = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 10 || c === 13) {
      if (lineStart) return true;
      if (c === 13 && bytes[i + 1] === 10) i++;
      lineStart = true;
    } else {
      lineStart = false;
    }
  }
  return false;
}

/**
 * The next chunk of a body (from `open`), until epoch ms `atMs`: `{kind: "chunk", value}` (a
 * Uint8Array), `{kind: "end"}`, `{kind: "timeout"}` (the read stays pending: the next call races
 * it again), or `{kind: "broken", error}`.
 */
export async function read(body, atMs) {
  if (body.stash) {
    const kept = body.stash;
    body.stash = undefined;
    return kept;
  }
  try {
    body.pending ??= body.reader.read();
    const r = await Promise.race([body.pending, expiry(body, atMs)]);
    if (r === TIMEOUT) return { kind: "timeout" };
    body.pending = undefined;
    if (r.done) {
      close(body);
      return { kind: "end" };
    }
    return { kind: "chunk", value: r.value };
  } catch (e) {
    body.pending = undefined;
    close(body);
    return { kind: "broken", error: message(e) };
  }
}

/**
 * The router's own answer as the runtime's Response: `body` (text), `status`, `headers`.
 * `worker`'s conversion copies the body into a new Uint8Array first (an ArrayBuffer allocated
 * and filled by a second call: 7.7 % of a request's samples with the Response constructor).
 */
export function respond(body, status, headers) {
  return new Response(body, { status, headers });
}

/**
 * The router's own answer kept in Rust until now (src/edge/http.rs `Own`): `body` (text),
 * `status`, and every header in one string, `name\0value\0name\0value…`. One call instead of
 * a crossing per header (a new `Headers`, then each `set`). Names are unique (`Own` keeps
 * each once).
 */
export function respondWith(body, status, headers) {
  // A plain object, not a `Headers` filled by `append`: the runtime reads it in one
  // conversion (in workerd 7.6 against 10.5 µs per response with six headers).
  const h = {};
  const list = headers.split("\0");
  for (let i = 0; i + 1 < list.length; i += 2) h[list[i]] = list[i + 1];
  return new Response(body, { status, headers: h });
}

/**
 * A committed stream's body for the client (src/edge/pump.rs says why it is pumped here): the
 * readable side of a native `IdentityTransformStream`, which the runtime sends on without
 * entering JS per chunk. `first` (the frames ready at the commit) is written at once; then
 * whatever `pump` (Rust) has ready, else a read of the upstream's `body` (from `open`) until
 * the pump's wake-up time, handed to the pump. Each write waits for the client to take it. The
 * pump is freed when the stream ends, or when the client has gone (a write fails).
 * `{readable}`; the invocation's context `ctx` keeps it alive (`waitUntil`) until the pump and
 * the drain (`drain`) are over (that promise never rejects).
 */
export function pipe(first, body, pump, ctx) {
  const { readable, writable } = new IdentityTransformStream();
  const done = pumpInto(writable.getWriter(), first, body, pump);
  try {
    ctx.waitUntil(done);
  } catch {
    // No context to extend (never in workerd): the pump runs as long as the response does.
  }
  return { readable };
}

/** How long the rest of an answered stream's body is read after its end marker. */
const DRAIN_MS = 2000;

/**
 * Reads what is left of an upstream body after the answer is complete (a stream ends at its
 * end marker; the body's own end follows), for at most DRAIN_MS, then lets it go. Why: a body
 * dropped unread closes its connection, so every streamed answer opened a new one to the
 * upstream — a TCP connect (and over https a TLS handshake) on the way to the next stream's
 * first text; read to its end, the connection goes back to the runtime's pool
 * (benches/stream_phases.mjs: ~0.4 ms of the time to first text on loopback). A call the
 * router aborted (dropped before its answer was complete) fails its read at once.
 */
async function drain(body) {
  const until = Date.now() + DRAIN_MS;
  for (;;) {
    const r = await read(body, until);
    if (r.kind !== "chunk") break;
  }
  close(body);
}

async function pumpInto(w, first, body, pump) {
  let live = true;
  try {
    if (first.length) await w.write(first);
    for (;;) {
      const out = pump.frames();
      if (out) {
        await w.write(out);
        continue;
      }
      const at = pump.wake_at();
      if (at < 0) break;
      const r = await read(body, at);
      if (r.kind === "chunk") pump.chunk(r.value);
      else if (r.kind === "end") pump.end();
      else if (r.kind === "timeout") pump.timer();
      else pump.broken(r.error);
    }
    live = false;
    pump.free();
    // The client has every frame; its stream ends now, the upstream's body is read on.
    w.close().catch(() => {});
    await drain(body);
  } catch {
    // The client went away (the body was cancelled): the pump goes, and with it the call.
    if (live) pump.free();
  }
}
