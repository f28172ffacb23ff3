// The router in workerd with everything it says captured, for tests that must look at all of
// it: the soak (tests/soak) and the no-secrets-anywhere test (tests/node/secrets.test.mjs).
//
// Why not harness.mjs alone: those tests need two things it does not give.
// - The worker's log lines. Miniflare hands every console line over with workerd's timestamp
//   (`handleStructuredLogs`), instead of printing it: the soak reads breaker transitions and
//   fallback causes from them, the secrets test greps them.
// - Every KV operation as it happens, independent of the router's own counters. The
//   ROUTER_STATE binding is a *wrapped* binding: a small module (below) that forwards each call
//   to a real KV namespace (`INNER` of worker `kv-spy`) and logs it (`kvspy <op> <key> [value]`)
//   first, so a write per key per second, and every value ever written, can be checked from
//   outside the router.
import { Miniflare } from "miniflare";
import { HUB, bundleWorker, hubAsKv, hubOptions } from "./harness.mjs";
import { startUpstreams } from "../mock/upstreams.mjs";

/** The wrapper module: `env.INNER` is the real namespace; every call is logged, then forwarded. */
const KV_SPY = `
export default function (env) {
  const inner = env.INNER;
  const log = (op, key, value) =>
    console.log("kvspy " + op + " " + key + (value === undefined ? "" : " " + JSON.stringify(value)));
  return {
    get(key, opts) { log("get", key); return inner.get(key, opts); },
    getWithMetadata(key, opts) { log("get", key); return inner.getWithMetadata(key, opts); },
    put(key, value, opts) { log("put", key, typeof value === "string" ? value : String(value)); return inner.put(key, value, opts); },
    delete(key) { log("delete", key); return inner.delete(key); },
    list(opts) { log("list", (opts && opts.prefix) || ""); return inner.list(opts); },
  };
}`;

/**
 * The same spy for the state hub (`ROUTER_STATE_BACKEND=durable_object`): the router's
 * STATE_HUB binding is a wrapped namespace whose stubs log each hub request (`core::hub`'s
 * protocol) as the KV operations it makes, then forward it to the real object (`INNER`, owned
 * by the Worker `hub`). The class is named as workers-rs checks a Durable Object binding's
 * constructor (`DurableObjectNamespace`).
 */
const HUB_SPY = `
class DurableObjectNamespace {
  constructor(inner) { this.inner = inner; }
  idFromName(name) { return this.inner.idFromName(name); }
  getByName(name) { return this.get(this.inner.idFromName(name)); }
  get(id) {
    const stub = this.inner.get(id);
    return {
      async fetch(input, init) {
        const req = new Request(input, init);
        const body = await req.clone().text();
        try {
          const r = JSON.parse(body);
          const log = (op, key, value) =>
            console.log("kvspy " + op + " " + key + (value === undefined ? "" : " " + JSON.stringify(value)));
          if (r.op === "get") for (const k of r.keys) log("get", k);
          else if (r.op === "put") log("put", r.key, r.value);
          else if (r.op === "list") log("list", r.prefix || "");
        } catch {}
        return stub.fetch(req);
      },
    };
  }
}
export default function (env) { return new DurableObjectNamespace(env.INNER); }`;

const SPY_PREFIX = "kvspy ";

/**
 * Starts the release worker under Miniflare with its logs and KV operations captured.
 * `bindings` are added to wrangler.toml's [vars] (ROUTER_ENV=development unless given);
 * `ratelimits` configures the ROUTER_RATE_LIMIT binding (Miniflare emulates it).
 */
export async function startCapturedWorker({ bindings = {}, ratelimits } = {}) {
  const lines = [];
  const mf = new Miniflare({
    handleStructuredLogs: ({ timestamp, level, message }) => {
      lines.push({ timestamp, level, message });
    },
    workers: [
      {
        name: "router",
        ...bundleWorker(bindings),
        wrappedBindings: { ROUTER_STATE: { scriptName: "kv-spy" }, ...(HUB ? { STATE_HUB: { scriptName: "hub-spy" } } : {}) },
        ...(ratelimits ? { ratelimits } : {}),
      },
      { name: "kv-spy", modules: true, script: KV_SPY, kvNamespaces: ["INNER"] },
      ...(HUB
        ? [
            {
              name: "hub-spy",
              modules: true,
              script: HUB_SPY,
              durableObjects: { INNER: { className: "StateHub", scriptName: "hub", useSQLite: true } },
            },
            {
              name: "hub",
              ...bundleWorker(bindings),
              ...hubOptions(),
            },
          ]
        : []),
    ],
  });
  const url = await mf.ready;
  const base = "http://router.test";
  return {
    mf,
    url,
    /** Through Miniflare's dispatch (no socket). */
    fetch: (p, init) => mf.dispatchFetch(new URL(p, base).toString(), init),
    /** Every line the router logged: {timestamp, level, message} (KV spy lines left out). */
    workerLogs: () => lines.filter((l) => !l.message.startsWith(SPY_PREFIX)),
    /** Every KV operation in order: {timestamp, op, key, value?}. */
    kvEvents: () =>
      lines
        .filter((l) => l.message.startsWith(SPY_PREFIX))
        .map((l) => {
          const rest = l.message.slice(SPY_PREFIX.length);
          const [op, key] = rest.split(" ", 2);
          const tail = rest.slice(op.length + 1 + key.length + 1);
          return { timestamp: l.timestamp, op, key, ...(tail ? { value: JSON.parse(tail) } : {}) };
        }),
    /** Every key in the namespace now, with its value: [{name, value}]. */
    async dumpKv() {
      const ns = HUB ? hubAsKv(() => mf.getDurableObjectNamespace("STATE_HUB", "hub")) : await mf.getKVNamespace("INNER", "kv-spy");
      const out = [];
      let cursor;
      do {
        const page = await ns.list({ cursor });
        for (const k of page.keys) out.push({ name: k.name, value: await ns.get(k.name) });
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return out;
    },
    close: () => mf.dispose(),
  };
}

/** Mock upstreams (tests/mock) and a captured router pointed at them. */
export async function startCapturedStack({ vars = {}, lightragKey = "lr-key", perplexityKey = "px-key", ratelimits } = {}) {
  const up = await startUpstreams({ lightragKey, perplexityKey });
  const bindings = {
    LIGHTRAG_INTEGRATION_ENABLED: "true",
    LIGHTRAG_BASE_URL: up.lightragUrl,
    PERPLEXITY_BASE_URL: up.perplexityUrl,
    LIGHTRAG_API_KEY: lightragKey,
    PERPLEXITY_API: perplexityKey,
    ...vars,
  };
  let w;
  try {
    w = await startCapturedWorker({ bindings, ratelimits });
  } catch (e) {
    await up.close();
    throw e;
  }
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

/** A breaker transition the router logged (`breaker <u> <from> -> <to> (<cause>, generation <n>)`). */
export function parseTransition(line) {
  const m = /^breaker (\w+) (\w+) -> (\w+) \((\w+), generation (\d+)\)/.exec(line.message);
  return m ? { timestamp: line.timestamp, upstream: m[1], from: m[2], to: m[3], cause: m[4], generation: Number(m[5]) } : null;
}
