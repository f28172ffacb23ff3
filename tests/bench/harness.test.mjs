// Smoke run of `make bench` (BENCH_QUICK=1, criterion left out: `cargo clippy --all-targets`
// already keeps the benches compiling): proves the harness runs end to end and writes its table,
// and that our cohort equals unleash-client's at every whole percentage. It checks no speed —
// speed targets are for benchmarks, never for tests. Needs build/ (make build) and www/pkg
// (make preview) and benches/floor/build (make build-floor), which the earlier `make test` layers
// leave behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkCohorts, loadOurs, makeIds, SALT } from "../../benches/peers.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const finiteSummary = (s, what) => {
  assert.ok(s && Number.isFinite(s.median) && Number.isFinite(s.min) && Number.isFinite(s.max), `${what}: ${JSON.stringify(s)}`);
  assert.ok(s.min <= s.median && s.median <= s.max, `${what}: min <= median <= max`);
};

test("BENCH_QUICK run writes the table for every section, and the cohort check passes", { timeout: 180_000 }, () => {
  const out = mkdtempSync(path.join(tmpdir(), "cmo-bench-smoke-"));
  try {
    const r = spawnSync(process.execPath, [path.join(ROOT, "benches", "run.mjs")], {
      cwd: ROOT,
      env: { ...process.env, BENCH_QUICK: "1", BENCH_OUT: out, BENCH_SKIP: "criterion" },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, `benches/run.mjs failed:\n${r.stderr.slice(-4000)}`);
    const doc = JSON.parse(readFileSync(path.join(out, "latest.json"), "utf8"));
    assert.deepEqual(doc.failures, []);
    assert.match(doc.git.commit ?? "", /^[0-9a-f]{40}$/);
    assert.equal(doc.machine.loadStart.length, 3);
    assert.equal(doc.machine.loadEnd.length, 3);
    assert.deepEqual(Object.keys(doc.results).sort(), ["bundle", "cold", "edge", "floor", "kv", "page", "peers"]);

    const p = doc.results.peers;
    assert.equal(p.cohortCheck.ok, true);
    assert.equal(p.cohortCheck.disagreements, 0);
    assert.equal(p.cohortCheck.percentages, 100);
    const names = p.rows.map((x) => x.name);
    for (const n of ["ours/route", "ours/routePrepared", "unleash-client", "growthbook", "flagd-core"]) assert.ok(names.includes(n), n);
    for (const x of p.rows) {
      finiteSummary(x.nsPerCall, x.name);
      // Same rollout everywhere: each implementation puts about a quarter of the ids in.
      assert.ok(Math.abs(x.inRolloutShare - 0.25) < 0.03, `${x.name}: ${x.inRolloutShare}`);
    }
    for (const k of ["p50", "p95"]) {
      finiteSummary(doc.results.edge.bare[k], `edge bare ${k}`);
      finiteSummary(doc.results.edge.router[k], `edge router ${k}`);
    }
    finiteSummary(doc.results.edge.rpsRatio, "edge rps ratio");
    // The floor section ran the two translating floors and gave the router's own share over each.
    assert.deepEqual(doc.results.floor.sides, ["bare", "lean-translate", "lean-translate-pump", "router"]);
    finiteSummary(doc.results.floor.own.p50.ms, "router's own share over lean-translate");
    finiteSummary(doc.results.floor.own.ttfb.ms, "router's own streamed share over lean-translate-pump");
    finiteSummary(doc.results.floor.summary["lean-translate"].added.p50, "lean-translate added p50");
    finiteSummary(doc.results.cold.router.firstAnswer, "cold router");
    finiteSummary(doc.results.cold.bare.firstAnswer, "cold bare");
    // Every part of the cold-start breakdown was measured (differences of sides: any sign).
    const parts = ["bindingsSetup", "wasmCompile", "instantiateAndStart", "kvFirstUse", "routerFirstRequestOwn", "firstKvLoadAndWait", "firstSlowKvLoadAndWait"];
    for (const k of parts) finiteSummary(doc.results.cold.breakdown[k], `cold breakdown ${k}`);
    for (const k of ["bare", "bindings", "wasm", "router", "router-nokv", "router-slowkv"]) finiteSummary(doc.results.cold.sides[k].firstRequest, `cold ${k} first request`);
    assert.ok(doc.results.bundle.worker.gzip > 0 && doc.results.bundle.preview.gzip > 0);
    // The isolate reads its state from KV once at start-up (docs/architecture.md#workers-kv-budget): the counters moved.
    assert.ok(doc.results.kv.default.cold.reads.median > 0, "start-up KV reads counted");

    const md = readFileSync(path.join(out, "latest.md"), "utf8");
    assert.match(md, /\| section \| measurement \| median \| spread \(min – max\) \| runs \| note \|/);
    assert.match(md, /cohort = unleash-client's at every whole % 1\.\.100/);
    assert.match(md, /\| cold start: where it goes \| wasm compile/);
    assert.match(md, /\| edge: the Rust floor \(workerd\) \| router's own share: router − `lean-translate`, p50 \|/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("the cohort check fails loudly when the cohorts differ (groupId ≠ salt)", async () => {
  const ours = await loadOurs();
  const ids = makeIds(200);
  await assert.rejects(checkCohorts({ ours, ids, salt: SALT, groupId: "some-other-group" }), /COHORT MISMATCH with unleash-client/);
  // And with the same ids and groupId = salt it passes: the failure above is the groupId.
  const ok = await checkCohorts({ ours, ids, salt: SALT, groupId: SALT });
  assert.equal(ok.comparisons, 200 * 100);
});
