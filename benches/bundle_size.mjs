// Bundle sizes, raw and gzip (level 9): the release worker (every file wrangler uploads:
// build/index.js, build/index_bg.wasm, build/worker/*; target ≤ 250 KB gzip) and the browser
// preview (www/pkg: the wasm and its JS glue; target ≤ 80 KB gzip). Why: cold starts load and
// compile the bundle, and the platform caps its size. Sizes are deterministic for a given
// build, so one measurement suffices (no repeated runs).
//
//   make build preview && node benches/bundle_size.mjs [--json out.json]
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function measure(dir, keep) {
  if (!existsSync(dir)) throw new Error(`missing ${path.relative(ROOT, dir)}: build it first (make build / make preview)`);
  const files = [];
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) {
        if (f !== ".tmp") walk(p);
      } else if (keep(f)) files.push(p);
    }
  };
  walk(dir);
  if (files.length === 0) throw new Error(`no bundle files in ${path.relative(ROOT, dir)}`);
  const rows = files.sort().map((f) => {
    const b = readFileSync(f);
    return { file: path.relative(ROOT, f), raw: b.length, gzip: gzipSync(b, { level: 9 }).length };
  });
  return { files: rows, raw: rows.reduce((a, r) => a + r.raw, 0), gzip: rows.reduce((a, r) => a + r.gzip, 0) };
}

export function bundleSizes() {
  return {
    worker: measure(path.join(ROOT, "build"), (f) => /\.(m?js|wasm)$/.test(f)),
    preview: measure(path.join(ROOT, "www", "pkg"), (f) => /^cmo_edge_router(_bg)?\.(js|wasm)$/.test(f)),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = bundleSizes();
  const i = process.argv.indexOf("--json");
  if (i > 0) writeFileSync(process.argv[i + 1], JSON.stringify(r, null, 2));
  const kib = (n) => `${(n / 1024).toFixed(1).padStart(8)} KiB`;
  for (const [name, target] of [["worker", "<= 250 KB gzip"], ["preview", "<= 80 KB gzip"]]) {
    for (const f of r[name].files) console.log(`${f.file.padEnd(36)} ${kib(f.raw)}  gzip ${kib(f.gzip)}`);
    console.log(`${(name + " total").padEnd(36)} ${kib(r[name].raw)}  gzip ${kib(r[name].gzip)}  (target: ${target})\n`);
  }
}
