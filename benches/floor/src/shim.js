// The `shim` floor (src/shim.rs): the bare worker's JavaScript, called from the wasm export.

/** Edge_latency.mjs `BARE`'s `fetch`, as it is. */
export async function bare(req, env) {
  const body = await req.text();
  const r = await fetch(env.PERPLEXITY_BASE_URL + "/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + env.PERPLEXITY_API },
    body,
  });
  if (body.includes('"stream":true')) {
    return new Response(r.body, { status: r.status, headers: { "content-type": "text/event-stream" } });
  }
  return new Response(await r.text(), { status: r.status, headers: { "content-type": "application/json" } });
}
