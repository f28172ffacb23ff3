// Cold-start cost: time from starting workerd (a new Miniflare instance, i.e. a new workerd
// process) to the first answered request, router vs the bare pass-through worker. Why: every
// new isolate compiles and instantiates the bundle before it answers anyone, and the platform
// bills that start-up; the difference to a bare worker is what the router's bundle costs.
//
//   make build && node benches/cold_start.mjs [--runs 7] [--json out.json]
//
// Per run and side: `new Miniflare(...)` → `await ready` (workerd listening, script loaded) →
// first POST answered 200 (for the router: wasm instantiated, config parsed, the isolate's
// start-up KV read, the upstream call). Sides alternate which goes first; one discarded warm-up
// run of each absorbs Node's own first-use costs. Same mock upstream for both.
import { Miniflare } from "miniflare";
import { writeFileSync } from "node:fs";
import { startUpstreams } from "../tests/mock/upstreams.mjs";
import { bareOptions, once, routerOptions } from "./edge_latency.mjs";
import { summarize } from "./lib/stats.mjs";
import { arg, isMain, quick } from "./lib/cli.mjs";

async function coldStart(options, pathname) {
  const t0 = performance.now();
  const mf = new Miniflare(options);
  try {
    const url = await mf.ready;
    const ready = performance.now() - t0;
    await once(new URL(pathname, url).toString(), 0);
    return { ready, firstAnswer: performance.now() - t0 };
  } finally {
    await mf.dispose();
  }
}

export async function runColdStart({ runs, log = console.error }) {
  const up = await startUpstreams({ perplexityKey: "px" });
  const sides = {
    router: () => coldStart(routerOptions(up), "/v1/chat/completions"),
    bare: () => coldStart(bareOptions(up), "/chat/completions"),
  };
  try {
    await sides.router();
    await sides.bare();
    const res = { router: [], bare: [] };
    for (let r = 0; r < runs; r++) {
      const order = r % 2 === 0 ? ["router", "bare"] : ["bare", "router"];
      for (const k of order) res[k].push(await sides[k]());
      log(`cold start: run ${r + 1}/${runs}: router ${res.router.at(-1).firstAnswer.toFixed(0)} ms, bare ${res.bare.at(-1).firstAnswer.toFixed(0)} ms`);
    }
    const side = (k) => ({
      ready: summarize(res[k].map((x) => x.ready)),
      firstAnswer: summarize(res[k].map((x) => x.firstAnswer)),
      firstRequest: summarize(res[k].map((x) => x.firstAnswer - x.ready)),
    });
    return {
      runs,
      router: side("router"),
      bare: side("bare"),
      added: summarize(res.router.map((x, i) => x.firstAnswer - res.bare[i].firstAnswer)),
    };
  } finally {
    await up.close();
  }
}

if (isMain(import.meta.url)) {
  const r = await runColdStart({ runs: Number(arg("runs", quick ? 2 : 7)) });
  const out = arg("json", undefined);
  if (out) writeFileSync(out, JSON.stringify(r, null, 2));
  const f = (s) => `${s.median.toFixed(0)} ms (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
  console.log(`${r.runs} runs per side; start → ready → first answer`);
  console.log(`router : ready ${f(r.router.ready)}  first answer ${f(r.router.firstAnswer)}`);
  console.log(`bare   : ready ${f(r.bare.ready)}  first answer ${f(r.bare.firstAnswer)}`);
  console.log(`added  : ${f(r.added)}`);
}
