// Shared helpers for the workerd tests: mock upstreams wired into the worker's vars, JS cohort
// hashing (docs/architecture.md#cohort-hashing) to cross-check the worker, and small request helpers.
import { startWorker } from "./harness.mjs";
import { startUpstreams } from "../mock/upstreams.mjs";

export const ADMIN = "test-admin-token";

/** murmur3_x86_32(utf8(s), seed 0), as the `murmur3` crate computes it. */
export function murmur3(str, seed = 0) {
  const data = Buffer.from(str, "utf8");
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51, c2 = 0x1b873593;
  const n = data.length & ~3;
  for (let i = 0; i < n; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, c1); k = (k << 15) | (k >>> 17); k = Math.imul(k, c2);
    h ^= k; h = (h << 13) | (h >>> 19); h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (data.length & 3) {
    case 3: k ^= data[n + 2] << 16; // fallthrough
    case 2: k ^= data[n + 1] << 8; // fallthrough
    case 1: k ^= data[n]; k = Math.imul(k, c1); k = (k << 15) | (k >>> 17); k = Math.imul(k, c2); h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

/** Position in hundredths: (h % 100) * 100 + floor(h / 100) % 100. */
export function positionHundredths(salt, key) {
  const h = murmur3(`${salt}:${key}`);
  return (h % 100) * 100 + (Math.floor(h / 100) % 100);
}

/** Starts mock upstreams and a worker pointed at them. */
export async function startStack({ vars = {}, persist, options, withAdmin = true, lightragKey = "lr-key", perplexityKey = "px-key" } = {}) {
  const up = await startUpstreams({ lightragKey, perplexityKey });
  const bindings = {
    LIGHTRAG_INTEGRATION_ENABLED: "true",
    LIGHTRAG_ROLLOUT_PERCENTAGE: "25",
    LIGHTRAG_BASE_URL: up.lightragUrl,
    PERPLEXITY_BASE_URL: up.perplexityUrl,
    LIGHTRAG_API_KEY: lightragKey,
    PERPLEXITY_API: perplexityKey,
    ...(withAdmin ? { ADMIN_TOKEN: ADMIN } : {}),
    ...vars,
  };
  const w = await startWorker({ bindings, persist, options });
  return {
    up,
    w,
    bindings,
    async close() {
      await w.close();
      await up.close();
    },
  };
}

export function chatBody(text, extra = {}) {
  return JSON.stringify({ model: "sonar", messages: [{ role: "user", content: text }], ...extra });
}

export function post(w, path, body, headers = {}) {
  return w.fetch(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

export const auth = { authorization: `Bearer ${ADMIN}` };
/** Every body the router reads is `application/json` (415 otherwise). */
export const JSON_CT = { "content-type": "application/json" };

/** Parses an SSE body into data payloads. */
export function sseData(text) {
  return text
    .split(/\n\n/)
    .map((f) => f.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
    .filter((d) => d.length);
}

/** Finds a user id whose position is inside (or outside) the rollout. */
export function userIn(salt, pct, inside, prefix = "u") {
  for (let i = 0; i < 100000; i++) {
    const id = `${prefix}-${i}`;
    if ((positionHundredths(salt, id) < pct * 100) === inside) return id;
  }
  throw new Error("no user found");
}

/** The preview build (www/pkg, built by `make preview`, which `make test-worker` runs first) loaded in Node. */
export async function loadPreview() {
  const { existsSync, readFileSync } = await import("node:fs");
  const path = await import("node:path");
  const { ROOT } = await import("./harness.mjs");
  const js = path.join(ROOT, "www", "pkg", "cmo_edge_router.js");
  const wasm = path.join(ROOT, "www", "pkg", "cmo_edge_router_bg.wasm");
  if (!existsSync(js) || !existsSync(wasm)) throw new Error(`missing ${js}: run \`make preview\` first`);
  const m = await import(js);
  m.initSync({ module: readFileSync(wasm) });
  return m;
}

/** The config variables of a stack, without secrets (what the preview page would be given). */
export function configVars(bindings) {
  const secrets = new Set(["LIGHTRAG_API_KEY", "PERPLEXITY_API", "ADMIN_TOKEN"]);
  return Object.fromEntries(Object.entries(bindings).filter(([k]) => !secrets.has(k)));
}

/**
 * Polls `check` (sync or async) until it returns a truthy value, and returns that value; fails
 * with `what` after `timeoutMs` (generous: the machine may be loaded). Tests wait for
 * conditions, never for fixed times.
 */
export async function waitFor(what, check, { timeoutMs = 30_000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Replaces the override set (PUT /admin/config with the current ETag); returns the response. */
export async function putConfig(w, overrides) {
  const g = await w.fetch("/admin/config", { headers: auth });
  const etag = g.headers.get("etag");
  await g.text();
  return w.fetch("/admin/config", {
    method: "PUT",
    headers: { ...auth, "content-type": "application/json", "if-match": etag },
    body: JSON.stringify(overrides),
  });
}

/** GET /admin/status as JSON. */
export async function adminStatus(w) {
  return (await w.fetch("/admin/status", { headers: auth })).json();
}

/** The text of an OpenAI SSE body's content deltas, and whether it ended with [DONE]. */
export function sseContent(text) {
  const frames = sseData(text);
  const objs = frames.filter((f) => f !== "[DONE]").map((f) => JSON.parse(f));
  return {
    content: objs.map((o) => o.choices?.[0]?.delta?.content ?? "").join(""),
    done: frames.at(-1) === "[DONE]",
    errors: objs.filter((o) => o.error),
    last: objs.at(-1),
  };
}
