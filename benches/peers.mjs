// Side-by-side: our full routing decision through wasm from JS against three feature-flag
// libraries from the npm registry evaluating the same rollout, in ONE Node process over the
// same ids — plus the check that our cohort is Unleash's at every whole percentage.
//
// Why: the router replaces a flag service for this one decision, so its per-call cost should be
// judged against what teams would otherwise run in-process (issue 13, items 3 and 4), and the
// cohort formula promises Unleash compatibility (docs/architecture.md#cohort-hashing), which only a real Unleash client
// can confirm.
//
//   make preview && node benches/peers.mjs [--ids 1000000] [--runs 5] [--json out.json]
//   BENCH_QUICK=1 node benches/peers.mjs     # 20,000 ids, 3 runs: a smoke run
//
// Each implementation answers "is this id in the 25 % rollout?" for every id; one run is one
// pass over all ids, runs are interleaved (rotating order) so machine noise hits every side
// alike, and the table gives the median ns/call over runs with min–max.
//   ours/route          Router.route(key, query): the full decision (config parsed once); the query
//                       string is copied into wasm only when a rule could read it
//   ours/routePrepared  Router.routePrepared(key): the same decision, query scanned once
//   ours/route+rules    Router.route with the preview bench's three conditional rules on
//   ours/bucket         bucket(salt, key): the cohort hash alone
//   unleash-client      Unleash.isEnabled with a flexibleRollout strategy, from bootstrap data
//                       (refreshInterval 0, metrics off, in-memory storage: no network)
//   growthbook          GrowthBookClient.isOn with a force rule at coverage 0.25 hashed on `id`
//                       (what GrowthBook's "percentage rollout" rule is), from an initSync payload
//   flagd-core          FlagdCore.resolveBooleanEvaluation with a `fractional` [on 25, off 75] targeting
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { GrowthBookClient } from "@growthbook/growthbook";
import { FlagdCore } from "@openfeature/flagd-core";
import { summarize } from "./lib/stats.mjs";
import { arg, isMain, quick } from "./lib/cli.mjs";

const require = createRequire(import.meta.url);
const { Unleash, InMemStorageProvider } = require("unleash-client");
// Unleash's own bucket function (1..100), used by its flexibleRollout strategy.
const { normalizedStrategyValue } = require("unleash-client/lib/strategy/util.js");

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SALT = "cmo_lightrag_2025";
export const ROLLOUT = 25;
const FLAG = "lightrag-routing";
// The routing bench's typical query (benches/routing.rs), 72 bytes.
const QUERY = "Which metabolites are altered in plasma of patients with type 2 diabetes?";
const RULES = JSON.stringify([
  { name: "news", when: { query_type: "temporal" }, action: "perplexity" },
  { name: "short", when: { max_length: 12 }, action: "perplexity" },
  { name: "pathways", when: { keywords_any: ["pathway", "mechanism"] }, action: "rollout" },
]);

/** Our preview build (`make preview`), instantiated synchronously. */
export async function loadOurs(pkg = path.join(ROOT, "www", "pkg")) {
  const mod = await import(path.join(pkg, "cmo_edge_router.js"));
  mod.initSync({ module: readFileSync(path.join(pkg, "cmo_edge_router_bg.wasm")) });
  return mod;
}

/** A Router for a whole-percentage rollout; throws if the config has problems. */
export function ourRouter(ours, { percentage, salt = SALT, rules = false }) {
  const config = {
    LIGHTRAG_INTEGRATION_ENABLED: "true",
    LIGHTRAG_ROLLOUT_PERCENTAGE: String(percentage),
    LIGHTRAG_USER_HASH_SALT: salt,
    LIGHTRAG_ENABLE_CONDITIONAL_ROUTING: rules ? "true" : "false",
    ...(rules ? { LIGHTRAG_ROUTING_RULES: RULES } : {}),
  };
  const r = new ours.Router(config, undefined);
  const problems = r.problems();
  if (problems.length) throw new Error(`bench config has problems: ${JSON.stringify(problems)}`);
  return r;
}

/** An Unleash client holding `toggles` from bootstrap data only: no fetch, no metrics, no files. */
export async function unleashFromBootstrap(toggles) {
  const u = new Unleash({
    appName: "cmo-edge-router-bench",
    url: "http://127.0.0.1:9/never-fetched", // required by the constructor; refreshInterval 0 never fetches
    refreshInterval: 0,
    disableMetrics: true,
    disableAutoStart: true,
    skipInstanceCountWarning: true,
    storageProvider: new InMemStorageProvider(),
    bootstrap: { data: toggles },
  });
  u.on("error", (e) => console.error(`unleash-client error: ${e?.message ?? e}`));
  // isEnabled answers the fallback (false) until the client has emitted "ready".
  const ready = once(u, "ready");
  await u.start();
  await ready;
  for (const t of toggles) {
    if (!u.getFeatureToggleDefinition(t.name)) throw new Error(`unleash-client did not load toggle ${t.name} from bootstrap`);
  }
  return u;
}

/** Unleash's gradual rollout as its server sends it (client features API). */
export const flexibleRollout = ({ name, percentage, groupId }) => ({
  name,
  enabled: true,
  strategies: [{ name: "flexibleRollout", parameters: { rollout: String(percentage), stickiness: "default", groupId } }],
});

/**
 * Deterministic ids in the shapes real user ids take (counter, uuid, e-mail, numeric), ASCII
 * only: unleash-client hashes with murmurhash3js, which takes each UTF-16 code unit masked to
 * one byte (`charCodeAt(i) & 0xff`), not UTF-8, so on non-ASCII ids it differs from the UTF-8
 * murmur3 of docs/architecture.md#cohort-hashing (it did for every non-ASCII id tried).
 */
export function makeIds(n) {
  let s = 0x9e3779b9;
  const next = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  const hex = (k) => next().toString(16).padStart(8, "0").slice(0, k);
  const ids = new Array(n);
  for (let i = 0; i < n; i++) {
    switch (i & 3) {
      case 0: ids[i] = `user-${i}`; break;
      case 1: ids[i] = `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(8)}${hex(4)}`; break;
      case 2: ids[i] = `researcher.${i}@example.org`; break;
      default: ids[i] = String(1_000_000_000 + next() % 1_000_000_000);
    }
  }
  return ids;
}

/**
 * The formula in docs/architecture.md#cohort-hashing, checked against the real unleash-client: for every id and every whole percentage
 * 1..100, our full decision (Router at that rollout, `groupId = salt`) puts the id in LightRAG
 * exactly when Unleash's flexibleRollout enables the toggle; and the whole part of our
 * position is Unleash's bucket − 1. Throws, naming the first disagreements, if they differ.
 */
export async function checkCohorts({ ours, ids, salt = SALT, groupId = SALT }) {
  const percentages = Array.from({ length: 100 }, (_, i) => i + 1);
  const u = await unleashFromBootstrap(percentages.map((p) => flexibleRollout({ name: `rollout-${p}`, percentage: p, groupId })));
  const bad = [];
  let comparisons = 0;
  try {
    for (const id of ids) {
      const whole = Math.floor(ours.bucket(salt, id));
      const unleashBucket = normalizedStrategyValue(id, groupId);
      if (whole !== unleashBucket - 1) bad.push(`id ${JSON.stringify(id)}: our position ${ours.bucket(salt, id)} but Unleash bucket ${unleashBucket}`);
    }
    for (const p of percentages) {
      const router = ourRouter(ours, { percentage: p, salt });
      try {
        for (const id of ids) {
          const mine = (router.routePrepared(id) & 1) === 1;
          const theirs = u.isEnabled(`rollout-${p}`, { userId: id });
          comparisons++;
          if (mine !== theirs) bad.push(`id ${JSON.stringify(id)} at ${p} %: ours ${mine ? "LightRAG" : "Perplexity"}, unleash-client ${theirs ? "enabled" : "disabled"}`);
        }
      } finally {
        router.free();
      }
    }
  } finally {
    u.destroy();
  }
  if (bad.length) {
    throw new Error(`COHORT MISMATCH with unleash-client (salt ${JSON.stringify(salt)}, groupId ${JSON.stringify(groupId)}): ${bad.length} disagreements, first: \n  ${bad.slice(0, 5).join("\n  ")}`);
  }
  return { ok: true, ids: ids.length, percentages: percentages.length, comparisons, disagreements: 0 };
}

/** The implementations under comparison, each `(id) => 0 | 1`, configured for the same rollout. */
export async function contenders(ours) {
  const route = ourRouter(ours, { percentage: ROLLOUT });
  const prepared = ourRouter(ours, { percentage: ROLLOUT });
  prepared.prepareQuery(QUERY);
  const ruled = ourRouter(ours, { percentage: ROLLOUT, rules: true });

  const unleash = await unleashFromBootstrap([flexibleRollout({ name: FLAG, percentage: ROLLOUT, groupId: SALT })]);

  const gb = new GrowthBookClient({}).initSync({
    payload: {
      features: {
        [FLAG]: { defaultValue: false, rules: [{ id: "fr_rollout", force: true, coverage: ROLLOUT / 100, hashAttribute: "id", seed: SALT }] },
      },
    },
  });

  const flagd = new FlagdCore();
  flagd.setConfigurations(
    JSON.stringify({
      flags: {
        [FLAG]: {
          state: "ENABLED",
          variants: { on: true, off: false },
          defaultVariant: "off",
          targeting: { fractional: [["on", ROLLOUT], ["off", 100 - ROLLOUT]] },
        },
      },
    }),
  );

  return {
    list: [
      { name: "ours/route", note: "Router.route(key, query), config loaded once", fn: (id) => route.route(id, QUERY) & 1 },
      { name: "ours/routePrepared", note: "Router.routePrepared(key), query scanned once", fn: (id) => prepared.routePrepared(id) & 1 },
      { name: "ours/route+rules", note: "Router.route with 3 conditional rules on", fn: (id) => ruled.route(id, QUERY) & 1 },
      { name: "ours/bucket", note: "bucket(salt, key): the hash alone", fn: (id) => (ours.bucket(SALT, id) < ROLLOUT ? 1 : 0) },
      { name: "unleash-client", note: "6.12.1 isEnabled, flexibleRollout from bootstrap", fn: (id) => (unleash.isEnabled(FLAG, { userId: id }) ? 1 : 0), peer: true },
      { name: "growthbook", note: "1.8.0 GrowthBookClient.isOn, rollout rule coverage 0.25", fn: (id) => (gb.isOn(FLAG, { attributes: { id } }) ? 1 : 0), peer: true },
      { name: "flagd-core", note: "4.0.1 resolveBooleanEvaluation, fractional 25/75", fn: (id) => (flagd.resolveBooleanEvaluation(FLAG, false, { targetingKey: id }).value ? 1 : 0), peer: true },
    ],
    close() {
      unleash.destroy();
      for (const r of [route, prepared, ruled]) r.free();
    },
  };
}

function pass(fn, ids) {
  let n = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ids.length; i++) n += fn(ids[i]);
  return { ns: Number(process.hrtime.bigint() - t0), inRollout: n };
}

export async function runPeers({ nIds, runs, cohortIds, log = console.error }) {
  const ours = await loadOurs();
  const ids = makeIds(nIds);
  log(`peers: ${nIds.toLocaleString("en")} ids, ${runs} interleaved runs per implementation`);

  const t0 = Date.now();
  const cohort = await checkCohorts({ ours, ids: ids.slice(0, cohortIds) });
  log(`peers: cohort check vs unleash-client: ${cohort.comparisons.toLocaleString("en")} comparisons (${cohort.ids} ids x 1..100 %), 0 disagreements (${Date.now() - t0} ms)`);

  const c = await contenders(ours);
  try {
    // Same ids, same rollout: our decision must equal unleash-client's for every id at 25 %.
    const ourRoute = c.list[0].fn;
    const unleash = c.list.find((x) => x.name === "unleash-client").fn;
    let disagree = 0;
    for (const id of ids) if (ourRoute(id) !== unleash(id)) disagree++;
    if (disagree) throw new Error(`COHORT MISMATCH at ${ROLLOUT} %: ours and unleash-client disagree on ${disagree} of ${ids.length} ids`);

    const warm = ids.slice(0, Math.min(ids.length, 100_000));
    for (const x of c.list) pass(x.fn, warm);
    const samples = new Map(c.list.map((x) => [x.name, { ns: [], share: 0 }]));
    for (let r = 0; r < runs; r++) {
      const order = c.list.map((_, i) => c.list[(i + r) % c.list.length]);
      for (const x of order) {
        const p = pass(x.fn, ids);
        const s = samples.get(x.name);
        s.ns.push(p.ns / ids.length);
        s.share = p.inRollout / ids.length;
      }
      log(`peers: run ${r + 1}/${runs} done`);
    }
    const rows = c.list.map((x) => ({ name: x.name, note: x.note, peer: !!x.peer, nsPerCall: summarize(samples.get(x.name).ns), inRolloutShare: samples.get(x.name).share }));
    const fastestPeer = rows.filter((r) => r.peer).reduce((a, b) => (a.nsPerCall.median <= b.nsPerCall.median ? a : b));
    for (const r of rows) r.speedupVsFastestPeer = fastestPeer.nsPerCall.median / r.nsPerCall.median;
    return {
      ids: nIds,
      runs,
      rollout: ROLLOUT,
      salt: SALT,
      query: QUERY,
      fastestPeer: fastestPeer.name,
      rows,
      cohortCheck: { ...cohort, agreeAt25PercentOnAllIds: ids.length },
    };
  } finally {
    c.close();
  }
}

if (isMain(import.meta.url)) {
  const result = await runPeers({
    nIds: Number(arg("ids", quick ? 20_000 : 1_000_000)),
    runs: Number(arg("runs", quick ? 3 : 5)),
    cohortIds: Number(arg("cohort-ids", quick ? 1_000 : 10_000)),
  });
  const out = arg("json", undefined);
  if (out) writeFileSync(out, JSON.stringify(result, null, 2));
  for (const r of result.rows) {
    const s = r.nsPerCall;
    console.log(`${r.name.padEnd(20)} median ${s.median.toFixed(1).padStart(8)} ns/call  (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)})  in rollout ${(100 * r.inRolloutShare).toFixed(2)} %  ${r.speedupVsFastestPeer.toFixed(2)}x fastest peer`);
  }
}
