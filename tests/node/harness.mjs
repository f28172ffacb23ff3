// Test harness: runs the *release* worker bundle (build/index.js + wasm) in the real workerd
// runtime through Miniflare 4, with a real KV namespace, vars from wrangler.toml's [vars] and
// per-test overrides. Upstreams are the mock servers in tests/mock (real HTTP on loopback).
import { Miniflare } from "miniflare";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// ROUTER_BUILD points the tests at another bundle (e.g. an older build, to check that a new
// test fails on the code before its fix).
export const BUILD = process.env.ROUTER_BUILD ? path.resolve(process.env.ROUTER_BUILD) : path.join(ROOT, "build", "index.js");

/** The [vars] table of wrangler.toml (top level only), parsed without a TOML dependency. */
export function wranglerVars() {
  const text = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const vars = {};
  let inVars = false;
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t.startsWith("[")) { inVars = t === "[vars]"; continue; }
    if (!inVars || !t || t.startsWith("#")) continue;
    const m = t.match(/^([A-Z0-9_]+)\s*=\s*"(.*)"\s*$/);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

/** wrangler.toml's top-level `compatibility_flags`, so the tests run with the deployed flags. */
export function compatibilityFlags() {
  const text = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const m = text.match(/^compatibility_flags\s*=\s*\[([^\]]*)\]/m);
  return m ? [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]) : [];
}

/**
 * The state backend the tests run the worker on: `ROUTER_STATE_BACKEND=durable_object` (set by
 * `make test-worker-hub`) starts it with `STATE_BACKEND=durable_object` and the state hub bound
 * (`STATE_HUB`, class `StateHub` from the same bundle, SQLite-backed as wrangler.toml's
 * migration declares it); anything else, Workers KV.
 */
export const STATE_BACKEND = process.env.ROUTER_STATE_BACKEND === "durable_object" ? "durable_object" : "kv";
export const HUB = STATE_BACKEND === "durable_object";
export const HUB_OBJECT_NAME = "router-state";

/** Miniflare options binding the state hub (class in `scriptName`, or this worker's own). */
export function hubOptions(scriptName) {
  return {
    durableObjects: { STATE_HUB: { className: "StateHub", useSQLite: true, ...(scriptName ? { scriptName } : {}) } },
  };
}

/**
 * The hub seen as a KV namespace (`get`, `put`, `list`), so a test that reads or plants state
 * runs on either backend: each call is one hub request (`core::hub`'s protocol) to the object,
 * which the router reads too. `namespace` is a Durable Object namespace (Miniflare's
 * `getDurableObjectNamespace`).
 */
export function hubAsKv(namespace) {
  const call = async (req) => {
    const ns = await namespace();
    const stub = ns.get(ns.idFromName(HUB_OBJECT_NAME));
    const r = await stub.fetch("https://state-hub.internal/", { method: "POST", body: JSON.stringify(req) });
    const a = await r.json();
    // core::hub::HubResponse, externally tagged: {"values": {...}}, "done", {"page": {...}}, {"failed": {...}}.
    if (a.failed) throw new Error(`state hub: ${a.failed.message}`);
    return a === "done" ? {} : Object.values(a)[0];
  };
  return {
    async get(key) {
      const a = await call({ op: "get", keys: [key] });
      if (a.values[0].error) throw new Error(a.values[0].error);
      return a.values[0].value ?? null;
    },
    async put(key, value, opts = {}) {
      await call({ op: "put", key, value, ttl_seconds: opts.expirationTtl ?? null });
    },
    /** The protocol has no delete: a value that expires at once reads as absent, as deleted. */
    async delete(key) {
      await call({ op: "put", key, value: "", ttl_seconds: 0 });
    },
    async list({ prefix = "", cursor, limit = 1000 } = {}) {
      const a = await call({ op: "list", prefix, cursor: cursor ?? null, limit });
      return { keys: a.keys.map((name) => ({ name })), list_complete: a.complete, cursor: a.cursor ?? undefined };
    },
  };
}

/**
 * Miniflare options for one Worker running the release bundle, as `make dev` runs it:
 * `ROUTER_ENV=development` over wrangler.toml's [vars] (unless `bindings` set it), on the state
 * hub under `make test-worker-hub`, `bindings` last.
 */
export function bundleWorker(bindings = {}) {
  return {
    modules: true,
    scriptPath: BUILD,
    modulesRoot: path.dirname(BUILD),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2026-04-01",
    compatibilityFlags: compatibilityFlags(),
    bindings: { ROUTER_ENV: "development", ...wranglerVars(), ...(HUB ? { STATE_BACKEND: "durable_object" } : {}), ...bindings },
    cf: false,
  };
}

/**
 * Starts the worker. `bindings` override [vars] (and carry secrets such as ADMIN_TOKEN);
 * `persist` (a directory) keeps KV across restarts. Tests run as `make dev` does,
 * `ROUTER_ENV=development` (loopback http upstreams, client token optional), unless a test
 * sets ROUTER_ENV itself: unset, the router runs as production.
 */
export async function startWorker({ bindings = {}, persist, kvNamespaces = ["ROUTER_STATE"], options = {} } = {}) {
  if (!existsSync(BUILD)) throw new Error(`missing ${BUILD}: run \`make build\` first`);
  const mf = new Miniflare({
    ...bundleWorker(bindings),
    kvNamespaces,
    kvPersist: persist ?? false,
    ...(HUB ? { ...hubOptions(), durableObjectsPersist: persist ?? false } : {}),
    ...options,
  });
  const url = await mf.ready;
  const base = "http://router.test";
  return {
    mf,
    url,
    fetch: (p, init) => mf.dispatchFetch(new URL(p, base).toString(), init),
    /** The shared state as a KV namespace: KV itself, or the hub through `hubAsKv`. */
    kv: async () => (HUB ? hubAsKv(() => mf.getDurableObjectNamespace("STATE_HUB")) : mf.getKVNamespace("ROUTER_STATE")),
    close: () => mf.dispose(),
  };
}

/**
 * Routers sharing one state store, each in its own workerd process, one per entry of `each`
 * (its bindings over [vars]). On KV: one Miniflare instance per router on one persisted KV
 * directory (`persist`). On the hub (issue 14 item 4): one Miniflare instance per router
 * (`router-0`, `router-1`, …) plus one for a Worker `hub` that owns the one `StateHub` object
 * every router binds (`scriptName`, wrangler's `script_name`), joined by Miniflare's dev
 * registry (`unsafeDevRegistryPath`, the directory through which `wrangler dev` processes find
 * each other's Workers and objects): a router's hub requests cross from its workerd process
 * to the owner's, as a binding with `script_name` reaches an object that lives elsewhere. Not
 * one persisted directory per router: a Durable Object lives in exactly one place, and
 * processes on one directory would each run their own copy over the same SQLite file.
 */
export async function startRouters(each, { persist } = {}) {
  if (!HUB) {
    const out = [];
    for (const bindings of each) out.push(await startWorker({ bindings, persist }));
    return out;
  }
  const registry = mkdtempSync(path.join(tmpdir(), "dev-registry-"));
  const bundle = (bindings) => ({ ...bundleWorker(bindings), kvNamespaces: ["ROUTER_STATE"], unsafeDevRegistryPath: registry });
  // The object's own config (its tick's) is the first router's.
  const owner = new Miniflare({ name: "hub", ...bundle(each[0]), ...hubOptions(), durableObjectsPersist: persist ?? false });
  await owner.ready;
  const routers = [];
  for (const [i, b] of each.entries()) {
    const mf = new Miniflare({ name: `router-${i}`, ...bundle(b), ...hubOptions("hub") });
    routers.push({ mf, url: await mf.ready });
  }
  const base = "http://router.test";
  let open = each.length;
  return routers.map(({ mf, url }) => ({
    mf,
    url,
    fetch: (p, init) => mf.dispatchFetch(new URL(p, base).toString(), init),
    kv: async () => hubAsKv(() => owner.getDurableObjectNamespace("STATE_HUB")),
    // The hub's process stops when every router is closed.
    close: async () => {
      await mf.dispose();
      open -= 1;
      if (open === 0) {
        await owner.dispose();
        rmSync(registry, { recursive: true, force: true });
      }
    },
  }));
}

/** Two routers sharing one state store ([`startRouters`]). */
export function startPair({ bindings = {}, persist } = {}) {
  return startRouters([bindings, bindings], { persist });
}
