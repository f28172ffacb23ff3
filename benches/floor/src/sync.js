// The JS side of the `sync` floor (src/sync.rs): the bare worker's steps in JS, Rust called
// twice, synchronously, with the texts that cross.

/**
 * The bare worker with Rust in it: `plan(bytes)` (the request body) gives the upstream body
 * prefixed by "s" (the client asked for a stream) or "n"; `answer(text)` the client's answer.
 */
export async function drive(req, env, plan, answer) {
  const planned = plan(new Uint8Array(await req.arrayBuffer()));
  const r = await fetch(env.PERPLEXITY_BASE_URL + "/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + env.PERPLEXITY_API },
    body: planned.slice(1),
  });
  if (planned[0] === "s") {
    return new Response(r.body, { status: r.status, headers: { "content-type": "text/event-stream" } });
  }
  return new Response(answer(await r.text()), { status: r.status, headers: { "content-type": "application/json" } });
}
