// Release bundle size of the worker: raw and gzip (level 9) of every file wrangler uploads
// (build/index.js, build/index_bg.wasm, build/worker/*). Target: <= 250 KB gzip in total.
//
//   make build && node benches/bundle_size.mjs
import { readdirSync, readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BUILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "build");
const files = [];
const walk = (d) => {
  for (const f of readdirSync(d)) {
    const p = path.join(d, f);
    if (statSync(p).isDirectory()) {
      if (f !== ".tmp") walk(p);
    } else if (/\.(m?js|wasm)$/.test(f)) files.push(p);
  }
};
walk(BUILD);
let raw = 0;
let gz = 0;
for (const f of files.sort()) {
  const b = readFileSync(f);
  const g = gzipSync(b, { level: 9 }).length;
  raw += b.length;
  gz += g;
  console.log(`${path.relative(BUILD, f).padEnd(24)} ${(b.length / 1024).toFixed(1).padStart(8)} KiB  gzip ${(g / 1024).toFixed(1).padStart(7)} KiB`);
}
console.log(`${"total".padEnd(24)} ${(raw / 1024).toFixed(1).padStart(8)} KiB  gzip ${(gz / 1024).toFixed(1).padStart(7)} KiB  (target: <= 250 KB gzip)`);
