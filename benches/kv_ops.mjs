// Workers KV operations per 1,000 requests, read from the worker's own counters
// (`GET /admin/status` → `kv.ops`, which src/edge/kv.rs increments on every get/put/list).
// Why: KV bills per operation (writes at 10× reads) and allows one write per second per key,
// so the budget in docs/architecture.md#workers-kv-budget — zero reads on the hot path, writes on transitions and periodic
// flushes only — is a running cost worth tracking next to latency.
//
//   make build && node benches/kv_ops.mjs [--runs 5] [--requests 1000] [--json out.json]
//
// Each run starts a fresh worker (real workerd, 25 % rollout, both mock upstreams) and sends
// `--requests` chat requests from 16 clients ("cold": includes the isolate's start-up reads),
// then the same number again ("steady"), reading the counters after each phase. Two settings:
//   default: wrangler.toml's STATE_REFRESH_SECONDS / METRICS_FLUSH_SECONDS (30 s / 60 s)
//   paced:   refresh 1 s, flush 10 s (their minimums), steady phase paced at `--rate` req/s, so
//            the periodic refresh and flush show up: their cost follows time, not requests.
import { Miniflare } from "miniflare";
import { writeFileSync } from "node:fs";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { once, routerOptions } from "./edge_latency.mjs";
import { summarize } from "./lib/stats.mjs";
import { arg, isMain, quick } from "./lib/cli.mjs";

const TOKEN = "bench-admin-token";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ops(base) {
  const r = await fetch(new URL("/admin/status", base), { headers: { authorization: `Bearer ${TOKEN}` } });
  if (r.status !== 200) throw new Error(`GET /admin/status: HTTP ${r.status}`);
  const o = (await r.json())?.kv?.ops;
  if (!o || !["reads", "writes", "lists"].every((k) => Number.isFinite(o[k]))) {
    throw new Error(`GET /admin/status has no kv.ops counters: ${JSON.stringify(o)}`);
  }
  return { reads: o.reads, writes: o.writes, lists: o.lists };
}

/** `n` requests from `clients` clients; with `rate`, started no faster than `rate` per second. */
async function phase(url, n, { clients = 16, rate } = {}) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        if (rate) {
          const due = t0 + (i * 1000) / rate;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
        }
        await once(url, i);
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

const per1000 = (d, n) => ({ reads: (1000 * d.reads) / n, writes: (1000 * d.writes) / n, lists: (1000 * d.lists) / n });
const diff = (a, b) => ({ reads: b.reads - a.reads, writes: b.writes - a.writes, lists: b.lists - a.lists });

async function oneRun(up, { requests, bindings, rate }) {
  const mf = new Miniflare(routerOptions(up, { LIGHTRAG_ROLLOUT_PERCENTAGE: "25", ADMIN_TOKEN: TOKEN, ...bindings }));
  try {
    const base = await mf.ready;
    const url = new URL("/v1/chat/completions", base).toString();
    const coldSeconds = await phase(url, requests);
    const afterCold = await ops(base);
    const steadySeconds = await phase(url, requests, { rate });
    const afterSteady = await ops(base);
    return { cold: per1000(afterCold, requests), steady: per1000(diff(afterCold, afterSteady), requests), coldSeconds, steadySeconds };
  } finally {
    await mf.dispose();
  }
}

export async function runKvOps({ runs, requests, rate, log = console.error }) {
  const up = await startUpstreams({ perplexityKey: "px" });
  const settings = {
    default: { bindings: {} },
    paced: { bindings: { STATE_REFRESH_SECONDS: "1", METRICS_FLUSH_SECONDS: "10" }, rate },
  };
  try {
    const out = {};
    for (const [name, s] of Object.entries(settings)) {
      const rs = [];
      for (let r = 0; r < runs; r++) {
        rs.push(await oneRun(up, { requests, ...s }));
        const x = rs.at(-1);
        log(`kv ops (${name}): run ${r + 1}/${runs}: cold ${JSON.stringify(x.cold)}, steady ${JSON.stringify(x.steady)} per 1,000 requests (steady phase ${x.steadySeconds.toFixed(1)} s)`);
      }
      const pick = (p, k) => summarize(rs.map((x) => x[p][k]));
      out[name] = {
        refreshSeconds: s.bindings.STATE_REFRESH_SECONDS ?? "wrangler.toml",
        flushSeconds: s.bindings.METRICS_FLUSH_SECONDS ?? "wrangler.toml",
        steadyRate: s.rate ?? null,
        cold: { reads: pick("cold", "reads"), writes: pick("cold", "writes"), lists: pick("cold", "lists") },
        steady: { reads: pick("steady", "reads"), writes: pick("steady", "writes"), lists: pick("steady", "lists") },
        coldSeconds: summarize(rs.map((x) => x.coldSeconds)),
        steadySeconds: summarize(rs.map((x) => x.steadySeconds)),
      };
    }
    return { runs, requests, ...out };
  } finally {
    await up.close();
  }
}

if (isMain(import.meta.url)) {
  const r = await runKvOps({
    runs: Number(arg("runs", quick ? 1 : 5)),
    requests: Number(arg("requests", quick ? 200 : 1000)),
    rate: Number(arg("rate", quick ? 200 : 100)),
  });
  const out = arg("json", undefined);
  if (out) writeFileSync(out, JSON.stringify(r, null, 2));
  for (const k of ["default", "paced"]) {
    const f = (p) => `reads ${r[k][p].reads.median.toFixed(1)}, writes ${r[k][p].writes.median.toFixed(1)}, lists ${r[k][p].lists.median.toFixed(1)}`;
    console.log(`${k.padEnd(8)} cold: ${f("cold")}   steady: ${f("steady")}   (per 1,000 requests, ${r.runs} runs)`);
  }
}
