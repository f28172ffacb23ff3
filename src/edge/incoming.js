// The incoming request's front-door facts and its body (whole, or counted chunk by chunk when
// its length is not declared), each in one call from Rust (src/edge/incoming.rs,
// src/edge/body.rs say why).

/** The headers `front` reads, in src/edge/incoming.rs `FRONT_HEADERS`' order. */
const FRONT_HEADERS = ["authorization", "content-type", "content-length", "origin", "cookie", "x-route-override", "cf-connecting-ip"];

/**
 * `method\0url\0` then each of FRONT_HEADERS as `+value` or `-` when absent, `\0`-joined (no
 * header value holds a NUL).
 */
export function front(request) {
  const h = request.headers;
  let s = request.method + "\0" + request.url;
  for (const name of FRONT_HEADERS) {
    const v = h.get(name);
    s += v === null ? "\0-" : "\0+" + v;
  }
  return s;
}

/**
 * The whole body of `request` (its length declared) as a Uint8Array, reported as settle.js
 * reports a promise: `done(id, bytes, true)`, or `done(id, error, false)` (at once when
 * `arrayBuffer()` throws). One call from Rust, where `arrayBuffer()`, its settle hook and the
 * `Uint8Array` around the buffer were a crossing each.
 */
export function arrayBody(request, id, done) {
  let p;
  try {
    p = request.arrayBuffer();
  } catch (e) {
    done(id, e, false);
    return;
  }
  p.then(
    (b) => done(id, new Uint8Array(b), true),
    (e) => done(id, e, false),
  );
}

/**
 * Hides the request's `cf` getter behind an own `cf: undefined` (src/edge/fetch.rs says why);
 * if the runtime refuses, the getter stays: correct, only slower. Called before
 * `worker::Request::from` reads it, on the routes that make one: the chat routes never read
 * `cf`, so theirs is left alone.
 */
export function hideCf(request) {
  try {
    Object.defineProperty(request, "cf", { value: undefined });
  } catch {
    // the getter stays
  }
}

/** A thrown value as text (its message when it is an `Error`). */
const message = (e) => (e instanceof Error ? e.message : String(e));

/**
 * The body of `request`, sent without a declared length, at most `limit` bytes: a Uint8Array;
 * a number (the bytes read when they crossed `limit`; the rest is not read); or a string (why
 * it could not be read). Read as a stream, each chunk counted as it arrives. Never rejects.
 */
export async function body(request, limit) {
  try {
    if (!request.body) return new Uint8Array(0);
    const reader = request.body.getReader();
    const chunks = [];
    let read = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      read += r.value.length;
      if (read > limit) {
        reader.cancel().catch(() => {});
        return read;
      }
      chunks.push(r.value);
    }
    if (chunks.length === 1) return chunks[0];
    const all = new Uint8Array(read);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  } catch (e) {
    return message(e);
  }
}
