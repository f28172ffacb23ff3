// Runs the native criterion benches (benches/routing.rs, benches/resilience.rs) and reads back
// every sample criterion took, so the results table can quote the median and spread of the
// per-sample means like every other row (criterion takes 100 samples per benchmark, each a run
// of many iterations; BENCH_QUICK takes 10 short ones).
//
//   node benches/criterion.mjs [--json out.json]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { summarize } from "./lib/stats.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BENCHES = ["routing", "resilience"];

/** Every `<target>/criterion/**\/new/` directory written since `sinceMs`. */
function freshResults(dir, sinceMs) {
  const found = [];
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (!statSync(p).isDirectory()) continue;
      if (f === "new") {
        const s = path.join(p, "sample.json");
        if (existsSync(s) && statSync(s).mtimeMs >= sinceMs) found.push(p);
      } else if (f !== "report" && f !== "base" && f !== "change") walk(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

export function runCriterion({ quick, log = console.error }) {
  const args = ["bench", ...BENCHES.flatMap((b) => ["--bench", b]), "--", "--noplot"];
  args.push(...(quick ? ["--warm-up-time", "0.2", "--measurement-time", "0.5", "--sample-size", "10"] : ["--warm-up-time", "1", "--measurement-time", "3"]));
  const since = Date.now() - 1000;
  log(`criterion: cargo ${args.join(" ")}`);
  const r = spawnSync("cargo", args, { cwd: ROOT, stdio: ["ignore", process.stderr, process.stderr] });
  if (r.status !== 0) throw new Error(`cargo bench failed (exit ${r.status ?? r.signal})`);
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target");
  const rows = freshResults(path.join(target, "criterion"), since).map((d) => {
    const id = JSON.parse(readFileSync(path.join(d, "benchmark.json"), "utf8")).full_id;
    const { iters, times } = JSON.parse(readFileSync(path.join(d, "sample.json"), "utf8"));
    const { runs, ...s } = summarize(times.map((t, i) => t / iters[i]));
    return { id, nsPerIter: s };
  });
  if (rows.length === 0) throw new Error(`cargo bench wrote no criterion results under ${target}/criterion`);
  return { benches: BENCHES, samples: rows[0].nsPerIter.n, rows: rows.sort((a, b) => a.id.localeCompare(b.id)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = runCriterion({ quick: process.env.BENCH_QUICK === "1" });
  const i = process.argv.indexOf("--json");
  if (i > 0) writeFileSync(process.argv[i + 1], JSON.stringify(r, null, 2));
  for (const x of r.rows) console.log(`${x.id.padEnd(32)} median ${x.nsPerIter.median.toFixed(1)} ns (min ${x.nsPerIter.min.toFixed(1)}, max ${x.nsPerIter.max.toFixed(1)}, ${x.nsPerIter.n} samples)`);
}
