// `make soak` (and `node tests/soak/run.mjs --short` for the version `make test` runs): runs the
// soak against the release build in workerd, prints its report table and checks, and exits 1
// when a check failed. SOAK_SEED=<n> repeats a run's request mix.
import { runSoak } from "./soak.mjs";

const name = process.argv.includes("--short") ? "short" : "full";
const t0 = Date.now();
const { checks, report } = await runSoak(name);
console.log(report);
const failed = checks.filter((c) => !c.ok);
console.log(`\nmake soak (${name}): ${checks.length - failed.length}/${checks.length} checks passed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exit(failed.length ? 1 : 0);
