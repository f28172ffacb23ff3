// `make bench`: runs every benchmark and writes one results table, as markdown and JSON
// (bench-results/latest.md, bench-results/latest.json), with the date, the machine (CPU,
// cores, load average at start and end), Node/rustc versions and the git commit.
//
// Why one runner: the router's running costs (CPU per decision, added latency, cold start,
// bundle size, KV operations) are only comparable across commits when they are measured the
// same way, on the same machine, in one go, with the noise shown (issue 13, items 4–5). Each
// section runs in its own Node process (the peers side-by-side in ONE process, as the
// comparison requires), sequentially, so sections do not load each other.
//
//   node benches/run.mjs            # needs `make build preview` (make bench does it)
//   BENCH_QUICK=1 node benches/run.mjs    # smoke run: few ids, few runs, seconds not minutes
//   BENCH_OUT=<dir>                  # where to write latest.{md,json} (default bench-results/)
//   BENCH_SKIP=criterion,kv          # sections to leave out (criterion, peers, edge, floor, cold, bundle, kv, page)
//   FLOOR_ROUNDS, FLOOR_N, FLOOR     # the floor section's rounds, requests per round, variants
//
// Exits non-zero if any section failed — in particular if our cohort disagrees with
// unleash-client's — after writing what it measured.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderMarkdown } from "./lib/table.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const QUICK = process.env.BENCH_QUICK === "1";
const OUT = path.resolve(ROOT, process.env.BENCH_OUT ?? "bench-results");
const SKIP = new Set((process.env.BENCH_SKIP ?? "").split(",").map((s) => s.trim()).filter(Boolean));
const SECTIONS = [
  ["criterion", "criterion.mjs"],
  ["peers", "peers.mjs"],
  ["edge", "edge_latency.mjs"],
  // The router against the translating Rust floors (benches/floor, `make build-floor`): its own
  // share, which no change to the router's edge glue can take below the floor's.
  ["floor", "rust_floor.mjs", { FLOOR: process.env.FLOOR ?? "lean-translate,lean-translate-pump", ROUNDS: process.env.FLOOR_ROUNDS ?? (QUICK ? "1" : "8"), N: process.env.FLOOR_N ?? (QUICK ? "20" : "300") }],
  ["cold", "cold_start.mjs"],
  ["bundle", "bundle_size.mjs"],
  ["kv", "kv_ops.mjs"],
  ["page", "page_simulate.mjs"],
];
for (const s of SKIP) {
  if (!SECTIONS.some(([name]) => name === s)) throw new Error(`BENCH_SKIP: unknown section '${s}' (known: ${SECTIONS.map(([n]) => n).join(", ")})`);
}

const tryRun = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
};

function cpuModel() {
  try {
    const m = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m);
    if (m) return m[1].trim();
  } catch {
    // not Linux: fall through to what Node knows
  }
  return os.cpus()[0]?.model ?? "unknown";
}

const load = () => os.loadavg().map((x) => Number(x.toFixed(2)));

const started = new Date();
const meta = {
  date: started.toISOString(),
  quick: QUICK,
  machine: {
    cpu: cpuModel(),
    cores: os.cpus().length,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadStart: load(),
    loadEnd: null,
  },
  versions: { node: process.version, rustc: tryRun("rustc", ["--version"]), cargo: tryRun("cargo", ["--version"]) },
  git: {
    commit: tryRun("git", ["rev-parse", "HEAD"]),
    branch: tryRun("git", ["rev-parse", "--abbrev-ref", "HEAD"]),
    dirty: (tryRun("git", ["status", "--porcelain", "--untracked-files=no"]) ?? "") !== "",
  },
};
console.error(`bench: ${meta.date} on ${meta.machine.cpu} (${meta.machine.cores} cores), load ${meta.machine.loadStart.join(" ")}${QUICK ? ", QUICK" : ""}`);

const tmp = mkdtempSync(path.join(os.tmpdir(), "cmo-bench-"));
const results = {};
const failures = [];
try {
  for (const [name, script, env = {}] of SECTIONS) {
    if (SKIP.has(name)) continue;
    const json = path.join(tmp, `${name}.json`);
    const t0 = Date.now();
    console.error(`\n==> bench ${name}`);
    const r = spawnSync(process.execPath, [path.join(ROOT, "benches", script), "--json", json], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", process.stderr, process.stderr],
    });
    const seconds = (Date.now() - t0) / 1000;
    if (r.status !== 0) {
      failures.push(`${name}: exit ${r.status ?? r.signal}`);
      results[name] = { error: `exit ${r.status ?? r.signal}`, seconds };
      console.error(`<== bench ${name} FAILED (${seconds.toFixed(0)} s)`);
      continue;
    }
    results[name] = { ...JSON.parse(readFileSync(json, "utf8")), seconds };
    console.error(`<== bench ${name} ok (${seconds.toFixed(0)} s)`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
meta.machine.loadEnd = load();
meta.seconds = (Date.now() - started.getTime()) / 1000;

const doc = { ...meta, failures, results };
mkdirSync(OUT, { recursive: true });
writeFileSync(path.join(OUT, "latest.json"), `${JSON.stringify(doc, null, 2)}\n`);
const md = renderMarkdown(doc);
writeFileSync(path.join(OUT, "latest.md"), md);
console.log(md);
console.error(`bench: wrote ${path.relative(ROOT, OUT) || "."}/latest.md and latest.json in ${meta.seconds.toFixed(0)} s`);
if (failures.length) {
  console.error(`\nbench: FAILED sections: ${failures.join("; ")}`);
  process.exit(1);
}
