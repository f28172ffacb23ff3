// The JS side of the `lean` floor (src/lean.rs) beyond the router's own entry.js, settle.js and
// incoming.js (which it uses as they are): the upstream call and the answer, one call from Rust
// each, as the router's upstream_io.js makes them, without the router's deadlines and abort
// signals (the bare worker has neither).

/** `name\0value\0…` as a plain headers object (upstream_io.js `post`). */
function headersOf(text) {
  const list = text.split("\0");
  const h = {};
  for (let i = 0; i + 1 < list.length; i += 2) h[list[i]] = list[i + 1];
  return h;
}

const post = (url, headers, body) => fetch(url, { method: "POST", headers: headersOf(headers), body });

/** A complete call: `{status, text}`, or a rejection (upstream_io.js `complete`, no deadlines). */
export async function complete(url, headers, body) {
  const r = await post(url, headers, body);
  return { status: r.status, text: await r.text() };
}

/** A streamed call: `{status, body}` at the response's headers, its body unread. */
export async function open(url, headers, body) {
  const r = await post(url, headers, body);
  return { status: r.status, body: r.body };
}

/** The answer: `body` (text or a stream), `status`, headers as `name\0value\0…`. */
export function respondWith(body, status, headers) {
  return new Response(body, { status, headers: headersOf(headers) });
}

/**
 * The `pump` feature's streamed answer (src/pump.rs): the upstream's `body` read here, each
 * chunk handed to Rust (`pump.chunk`), what it returns written into a native
 * `IdentityTransformStream` whose readable side is the client's body (the router's
 * upstream_io.js `pipe`, without its deadlines and drain). The context keeps the pump alive.
 */
export function pipe(body, pump, ctx) {
  const { readable, writable } = new IdentityTransformStream();
  const done = pumpInto(writable.getWriter(), body.getReader(), pump);
  try {
    ctx.waitUntil(done);
  } catch {
    // no context to extend
  }
  return readable;
}

async function pumpInto(w, reader, pump) {
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      const out = pump.chunk(r.value);
      if (out.length) await w.write(out);
    }
    await w.close();
  } catch {
    // the client went away
  } finally {
    pump.free();
  }
}
