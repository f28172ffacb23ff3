// Smoke run of benches/rust_floor.mjs (the Rust/wasm floor, docs/performance.md "Eighth round:
// the Rust floor"): every floor variant of benches/floor (built by `make build-floor`, which
// `make test` runs before this layer) and the router in build/ answer a chat request with the
// mock's text, non-streamed and streamed (the bench checks that before it measures, and fails
// when a side does not), and one short round gives every side finite figures. It checks no
// speed. Why in `make test`: the floor crate pins the same workers-rs and wasm-bindgen as the
// router, and a pin moved in one but not the other fails here rather than at the next
// measurement.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VARIANTS = ["shim", "pass", "lean", "sync", "translate", "lean-translate", "sync-translate", "bare-pump", "bare-transform", "lean-pump", "lean-translate-pump"];
// The wasm builds among them (`bare-pump` and `bare-transform` are JS in the bench itself).
const BUILT = VARIANTS.filter((v) => !v.startsWith("bare-"));

test("rust_floor: every floor variant and the router answer, and one round gives finite figures", { timeout: 180_000 }, () => {
  for (const v of BUILT) {
    assert.ok(existsSync(path.join(ROOT, "benches", "floor", "build", v, "index.js")), `benches/floor/build/${v} missing: run make build-floor`);
  }
  const out = mkdtempSync(path.join(tmpdir(), "cmo-floor-smoke-"));
  try {
    const json = path.join(out, "floor.json");
    const r = spawnSync(process.execPath, [path.join(ROOT, "benches", "rust_floor.mjs")], {
      cwd: ROOT,
      env: { ...process.env, ROUNDS: "1", N: "20", JSON: json },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, `benches/rust_floor.mjs failed:\n${r.stderr.slice(-4000)}`);
    const doc = JSON.parse(readFileSync(json, "utf8"));
    assert.deepEqual(doc.sides, ["bare", ...VARIANTS, "router"]);
    for (const k of doc.sides) {
      for (const series of ["p50", "ttfb"]) {
        assert.equal(doc[series][k].length, 1, `${k} ${series}`);
        assert.ok(doc[series][k][0] > 0 && Number.isFinite(doc[series][k][0]), `${k} ${series}: ${doc[series][k]}`);
      }
    }
    // The table has a row per side.
    for (const k of doc.sides) assert.match(r.stdout, new RegExp(`^\\| ${k} \\|`, "m"));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
