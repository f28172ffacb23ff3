// The command line every bench script shares when run on its own (`node benches/<x>.mjs
// --runs 3 --json out.json`): whether this file is the entry point, BENCH_QUICK, and `--name value`
// options with defaults. benches/run.mjs imports the scripts' run* functions instead.
import { fileURLToPath } from "node:url";

/** `isMain(import.meta.url)`: true when that module is the script node was asked to run. */
export function isMain(moduleUrl) {
  return process.argv[1] === fileURLToPath(moduleUrl);
}

/** True under BENCH_QUICK=1 (the smoke run `make test` makes). */
export const quick = process.env.BENCH_QUICK === "1";

/** The value after `--name` on the command line, or `dflt`. */
export function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}
