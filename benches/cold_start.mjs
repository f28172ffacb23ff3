// Cold-start cost: time from starting workerd (a new Miniflare instance, i.e. a new workerd
// process) to the first answered request, router vs the bare pass-through worker, and where the
// difference goes. Why: every new isolate compiles and instantiates the bundle before it answers
// anyone, and the platform bills that start-up; the difference to a bare worker is what the
// router's bundle and its start-up work cost.
//
//   make build && node benches/cold_start.mjs [--runs 15] [--json out.json] [--baseline <build dir>] [--build <build dir>]
//
// Per run and side: `new Miniflare(...)` → `await ready` (workerd listening, every script
// loaded: the wasm compiled, index.js evaluated, which instantiates the wasm and runs
// `#[event(start)]`) → first POST answered 200 → a second POST answered 200 (the same work once
// the isolate is warm). The sides, each adding one part to the one before:
//
//   bare      a pass-through worker: forward the body to Perplexity, return the answer
//   bindings  the same worker with the router's bindings (its `[vars]`, the ROUTER_STATE KV
//             namespace); each request first reads the six keys the router's first KV load
//             reads (in parallel) — the KV namespace's own set-up and first use
//   wasm      `bindings` that also imports the router's wasm as a CompiledWasm module, never
//             instantiated — the wasm compile
//   router    the release router (build/)
//   router-nokv  the router without the KV binding: it routes on `[vars]` alone, so its first
//             request is the router's own first-request work without the KV load and its wait
//
// So: ready(bindings) − ready(bare) = the bindings' set-up; ready(wasm) − ready(bindings) =
// wasm compile; ready(router) − ready(wasm) = index.js + instantiation + start. First request
// (ready → first answer): router-nokv − bare = the router's own first-request work (config,
// state, first call of each code path, the decision, the upstream adapter); router − router-nokv
// = the first KV load and the wait for it (`STATE_FIRST_LOAD_WAIT_MS`, a safety rule:
// docs/architecture.md#workers-kv-budget). Each figure is a median over runs of per-run
// differences (the sides of one run are measured back to back, the order rotating per run).
// `--baseline <dir>` adds `router@base`, the router bundle in <dir> (e.g. a build of main), to
// compare two builds in one interleaved run (`--build <dir>`: the router bundle to measure,
// default build/). One discarded warm-up run of each side absorbs
// Node's own first-use costs. Same mock upstream for every side.
import { Miniflare } from "miniflare";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { wranglerVars } from "../tests/node/harness.mjs";
import { BARE, bareOptions, once, routerOptions } from "./edge_latency.mjs";
import { summarize } from "./lib/stats.mjs";
import { arg, isMain, quick } from "./lib/cli.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// The keys of the router's first KV load (core::store::refresh_keys).
const REFRESH_KEYS = ["config/overrides", "breaker/lightrag", "breaker/perplexity", "breaker/lightrag/admin", "breaker/perplexity/admin", "rollout/routing"];

// `bindings`: the bare worker, reading the router's start-up keys before it forwards.
const WITH_KV = BARE.replace(
  "async fetch(req, env) {",
  `async fetch(req, env) {
    await Promise.all(${JSON.stringify(REFRESH_KEYS)}.map((k) => env.ROUTER_STATE.get(k)));`,
);
// `wasm`: the same, importing the router's wasm (compiled by workerd at load, never instantiated).
const WITH_WASM = `import wasm from "./index_bg.wasm";\n${WITH_KV.replace('return new Response(await r.text()', 'if (!WebAssembly.Module.exports(wasm).length) throw new Error("no wasm");\n    return new Response(await r.text()')}`;

function bindingsOptions(up, wasmDir) {
  const base = routerOptions(up);
  const main = { type: "ESModule", path: path.join(wasmDir ?? ROOT, "main.mjs"), contents: wasmDir ? WITH_WASM : WITH_KV };
  const wasm = wasmDir ? [{ type: "CompiledWasm", path: path.join(wasmDir, "index_bg.wasm"), contents: readFileSync(path.join(wasmDir, "index_bg.wasm")) }] : [];
  const { scriptPath, modulesRoot, modulesRules, ...rest } = base;
  return { ...rest, modules: [main, ...wasm], modulesRoot: wasmDir ?? ROOT, bindings: { ...base.bindings, PERPLEXITY_API: "px" } };
}

// A KV namespace whose every operation takes KV_DELAY_MS longer (a wrapped binding around
// Miniflare's local KV, which answers in well under a millisecond once started): Workers KV is
// a network store, its reads are round trips (faster when the location has the key cached,
// slower when it does not: https://developers.cloudflare.com/kv/concepts/how-kv-works/).
const KV_DELAY_MS = 10;
const SLOW_KV = `
const later = (ms) => new Promise((ok) => setTimeout(ok, ms));
export default function (env) {
  const ms = Number(env.DELAY_MS);
  return {
    async get(k, o) { await later(ms); return env.INNER.get(k, o); },
    async getWithMetadata(k, o) { await later(ms); return env.INNER.getWithMetadata(k, o); },
    async put(k, v, o) { await later(ms); return env.INNER.put(k, v, o); },
    async list(o) { await later(ms); return env.INNER.list(o); },
    async delete(k) { await later(ms); return env.INNER.delete(k); },
  };
}`;

// The router's two modules given by content, as the other sides' are: with `scriptPath`,
// Miniflare parses index.js in Node to find its imports, a cost of the harness (~10 ms here)
// that the platform does not have.
function routerModules(dir) {
  return [
    { type: "ESModule", path: path.join(dir, "index.js"), contents: readFileSync(path.join(dir, "index.js"), "utf8") },
    { type: "CompiledWasm", path: path.join(dir, "index_bg.wasm"), contents: readFileSync(path.join(dir, "index_bg.wasm")) },
  ];
}

function routerAt(up, dir, { kv = true, kvDelayMs = 0 } = {}) {
  const { scriptPath, modulesRules, ...base } = routerOptions(up);
  const o = { ...base, modules: routerModules(dir), modulesRoot: dir, ...(kv ? {} : { kvNamespaces: [] }) };
  if (!kvDelayMs) return o;
  const { kvNamespaces, ...router } = o;
  return {
    workers: [
      { ...router, wrappedBindings: { ROUTER_STATE: { scriptName: "slow-kv", bindings: { DELAY_MS: kvDelayMs } } } },
      { name: "slow-kv", modules: true, script: SLOW_KV, kvNamespaces: { INNER: "ROUTER_STATE" } },
    ],
  };
}

async function coldStart(options, pathname) {
  const t0 = performance.now();
  const mf = new Miniflare(options);
  try {
    const url = new URL(pathname, await mf.ready).toString();
    const ready = performance.now() - t0;
    await once(url, 0);
    const firstAnswer = performance.now() - t0;
    const second = await once(url, 1);
    return { ready, firstAnswer, firstRequest: firstAnswer - ready, second };
  } finally {
    await mf.dispose();
  }
}

/** The sides of the run, in the order each adds to the one before. */
function makeSides(up, baseline, build) {
  const sides = {
    bare: () => coldStart(bareOptions(up), "/chat/completions"),
    bindings: () => coldStart(bindingsOptions(up, null), "/chat/completions"),
    wasm: () => coldStart(bindingsOptions(up, build), "/chat/completions"),
    router: () => coldStart(routerAt(up, build), "/v1/chat/completions"),
    "router-nokv": () => coldStart(routerAt(up, build, { kv: false }), "/v1/chat/completions"),
    "router-slowkv": () => coldStart(routerAt(up, build, { kvDelayMs: KV_DELAY_MS }), "/v1/chat/completions"),
  };
  if (baseline) {
    sides["router@base"] = () => coldStart(routerAt(up, path.resolve(baseline)), "/v1/chat/completions");
    sides["router-slowkv@base"] = () => coldStart(routerAt(up, path.resolve(baseline), { kvDelayMs: KV_DELAY_MS }), "/v1/chat/completions");
  }
  return sides;
}

/** Median-of-differences rows: what each part of the router's cold start costs. */
function breakdown(res) {
  const d = (a, b, field) => summarize(res[a].map((x, i) => x[field] - res[b][i][field]));
  return {
    bindingsSetup: d("bindings", "bare", "ready"),
    wasmCompile: d("wasm", "bindings", "ready"),
    instantiateAndStart: d("router", "wasm", "ready"),
    kvFirstUse: d("bindings", "bare", "firstRequest"),
    routerFirstRequestOwn: d("router-nokv", "bare", "firstRequest"),
    firstKvLoadAndWait: d("router", "router-nokv", "firstRequest"),
    firstSlowKvLoadAndWait: d("router-slowkv", "router-nokv", "firstRequest"),
    routerSecondRequest: summarize(res.router.map((x) => x.second)),
    bareSecondRequest: summarize(res.bare.map((x) => x.second)),
  };
}

export async function runColdStart({ runs, baseline, build = path.join(ROOT, "build"), log = console.error }) {
  const up = await startUpstreams({ perplexityKey: "px" });
  const sides = makeSides(up, baseline, path.resolve(build));
  const names = Object.keys(sides);
  try {
    for (const k of names) await sides[k]();
    const res = Object.fromEntries(names.map((k) => [k, []]));
    for (let r = 0; r < runs; r++) {
      const order = names.map((_, i) => names[(i + r) % names.length]);
      for (const k of order) res[k].push(await sides[k]());
      log(`cold start: run ${r + 1}/${runs}: ${names.map((k) => `${k} ${res[k].at(-1).ready.toFixed(0)}+${res[k].at(-1).firstRequest.toFixed(0)}`).join(", ")} ms (ready+first request)`);
    }
    const side = (k) => ({
      ready: summarize(res[k].map((x) => x.ready)),
      firstAnswer: summarize(res[k].map((x) => x.firstAnswer)),
      firstRequest: summarize(res[k].map((x) => x.firstRequest)),
      secondRequest: summarize(res[k].map((x) => x.second)),
    });
    const out = {
      runs,
      sides: Object.fromEntries(names.map((k) => [k, side(k)])),
      router: side("router"),
      bare: side("bare"),
      added: summarize(res.router.map((x, i) => x.firstAnswer - res.bare[i].firstAnswer)),
      breakdown: breakdown(res),
    };
    if (baseline) {
      out.baseline = path.resolve(baseline);
      out.routerVsBase = {
        ready: summarize(res.router.map((x, i) => x.ready - res["router@base"][i].ready)),
        firstRequest: summarize(res.router.map((x, i) => x.firstRequest - res["router@base"][i].firstRequest)),
        firstAnswer: summarize(res.router.map((x, i) => x.firstAnswer - res["router@base"][i].firstAnswer)),
        slowKvFirstRequest: summarize(res["router-slowkv"].map((x, i) => x.firstRequest - res["router-slowkv@base"][i].firstRequest)),
      };
    }
    return out;
  } finally {
    await up.close();
  }
}

if (isMain(import.meta.url)) {
  const r = await runColdStart({ runs: Number(arg("runs", quick ? 2 : 15)), baseline: arg("baseline", undefined), build: arg("build", undefined) });
  const out = arg("json", undefined);
  if (out) writeFileSync(out, JSON.stringify(r, null, 2));
  const f = (s) => `${s.median.toFixed(1)} ms (${s.min.toFixed(1)} – ${s.max.toFixed(1)})`;
  console.log(`${r.runs} runs per side; start → ready → first answer; median (min – max)`);
  for (const [k, s] of Object.entries(r.sides)) {
    console.log(`${k.padEnd(12)}: ready ${f(s.ready)}  first request ${f(s.firstRequest)}  first answer ${f(s.firstAnswer)}  second ${f(s.secondRequest)}`);
  }
  console.log(`added (router − bare, first answer): ${f(r.added)}`);
  const b = r.breakdown;
  console.log("breakdown (median of per-run differences):");
  console.log(`  bindings' set-up (ready: bindings − bare)           ${f(b.bindingsSetup)}`);
  console.log(`  wasm compile (ready: wasm − bindings)               ${f(b.wasmCompile)}`);
  console.log(`  index.js + instantiate + start (ready: router − wasm) ${f(b.instantiateAndStart)}`);
  console.log(`  KV first use (first request: bindings − bare)       ${f(b.kvFirstUse)}`);
  console.log(`  router's own first request (router-nokv − bare)     ${f(b.routerFirstRequestOwn)}`);
  console.log(`  first KV load + wait (router − router-nokv)         ${f(b.firstKvLoadAndWait)}`);
  console.log(`  same, KV ops +${KV_DELAY_MS} ms (router-slowkv − router-nokv)  ${f(b.firstSlowKvLoadAndWait)}`);
  if (r.routerVsBase) {
    console.log(`router − router@base (${r.baseline}): ready ${f(r.routerVsBase.ready)}  first request ${f(r.routerVsBase.firstRequest)}  first answer ${f(r.routerVsBase.firstAnswer)}`);
    console.log(`router-slowkv − router-slowkv@base: first request ${f(r.routerVsBase.slowKvFirstRequest)}`);
  }
}
