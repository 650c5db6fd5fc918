// What a page ships: the package bundled the way a page would bundle it, then gzipped.
//
//   node bench/sizes.mjs [pkgDir]     prints the sizes and exits 1 above a budget
//   import { shippedSizes, BUDGETS } from "./bench/sizes.mjs"   (for a packaging test)
//
// Each entry is a tiny page module that imports from the package and re-exports what it
// imports (so nothing it names is tree-shaken away). esbuild bundles it: platform browser,
// format esm, minified. Shipped = gzip -9 of the JS bundle + gzip -9 of every .wasm file the
// bundle loads. A .wasm is loaded when the bundle keeps a `new URL("x.wasm", import.meta.url)`
// of one of the package files it was built from (esbuild leaves those URLs as they are; a page's
// bundler or server ships the file beside the bundle), or when it is imported (emitted as an
// asset by the "file" loader).
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, constants as zlib } from "node:zlib";
import * as esbuild from "esbuild";

/** Budgets on the gzip -9 total, in bytes: the targets (not met yet; see README.md). */
export const BUDGETS = { memory: 40 * 1024, full: 80 * 1024 };

/**
 * Ceilings on the gzip -9 total, in bytes: what ships now plus about 2%. The packaging test
 * fails above them, so that no change grows what a page ships unnoticed; they come down as the
 * sizes do, and go once the budgets are met.
 */
export const CEILINGS = { memory: 63_900, full: 151_000 };

const gzipLength = (bytes) => gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }).length;

const WASM_URL = /new\s+URL\(\s*(["'`])([^"'`]+\.wasm)\1\s*,\s*import\.meta\.url\s*\)/g;

/**
 * The page entries this package has. `full`: Cache, MemoryCache and requestKey from browser.js.
 * `memory`: MemoryCache and requestKey from the package's `./memory` export, else from its
 * memory.js; null when the package has neither.
 */
function entries(pkgDir) {
  const manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const exportsMap = manifest.exports && typeof manifest.exports === "object" ? manifest.exports : {};
  let memory = null;
  if ("./memory" in exportsMap) memory = `${manifest.name}/memory`;
  else if (existsSync(join(pkgDir, "memory.js"))) memory = "./memory.js";
  return {
    full: { specifier: "./browser.js", names: ["Cache", "MemoryCache", "requestKey"] },
    memory: memory && { specifier: memory, names: ["MemoryCache", "requestKey"] },
    name: manifest.name,
  };
}

/**
 * Bundles one entry. Returns { bytes, rawBytes, files: [{ file, raw, gzip }] } where bytes is
 * the gzip -9 total and files lists the JS bundle first, then each .wasm it loads.
 */
async function bundle(pkgDir, nodePath, { specifier, names }) {
  const result = await esbuild.build({
    stdin: {
      contents: `export { ${names.join(", ")} } from ${JSON.stringify(specifier)};\n`,
      resolveDir: pkgDir,
      sourcefile: "page.js",
      loader: "js",
    },
    absWorkingDir: pkgDir,
    nodePaths: [nodePath],
    bundle: true,
    platform: "browser",
    format: "esm",
    minify: true,
    target: "es2022",
    loader: { ".wasm": "file" },
    outdir: join(pkgDir, "__bundle__"), // never written (write: false)
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const js = result.outputFiles.filter((f) => f.path.endsWith(".js"));
  if (js.length !== 1) throw new Error(`expected one JS bundle, got ${js.map((f) => f.path).join(", ")}`);
  const code = js[0].text;
  const files = [{ file: `JS bundle of ${specifier}`, bytes: js[0].contents }];

  const wasm = new Map(); // path -> bytes
  for (const f of result.outputFiles) if (f.path.endsWith(".wasm")) wasm.set(f.path, f.contents);
  for (const input of Object.keys(result.metafile.inputs)) {
    if (!/\.[cm]?js$/.test(input)) continue;
    const path = resolve(pkgDir, input);
    if (!existsSync(path)) continue; // the page entry itself (stdin)
    const source = readFileSync(path, "utf8");
    for (const [, quote, url] of source.matchAll(WASM_URL)) {
      // Counted only if the bundle still holds the URL (the code that loads it survived).
      if (!code.includes(quote + url + quote) && !code.includes(JSON.stringify(url))) continue;
      const file = resolve(dirname(path), url);
      if (!existsSync(file)) throw new Error(`${input} loads ${url}, which the package does not have`);
      wasm.set(file, readFileSync(file));
    }
  }
  for (const [path, bytes] of wasm) files.push({ file: relative(pkgDir, path), bytes });

  const rows = files.map(({ file, bytes }) => ({ file, raw: bytes.length, gzip: gzipLength(bytes) }));
  return {
    bytes: rows.reduce((s, r) => s + r.gzip, 0),
    rawBytes: rows.reduce((s, r) => s + r.raw, 0),
    files: rows,
  };
}

/**
 * Shipped sizes of the built package in pkgDir: { full, memory } with memory null when the
 * package has no memory-only entry. Each is { bytes (gzip -9 total), rawBytes, files }.
 */
export async function shippedSizes(pkgDir) {
  pkgDir = resolve(pkgDir);
  const { full, memory, name } = entries(pkgDir);
  // Bare `cachette/...` specifiers resolve through the package's own exports map.
  const nodePath = mkdtempSync(join(tmpdir(), "cachette-sizes-"));
  try {
    symlinkSync(pkgDir, join(nodePath, name), "dir");
    return {
      full: await bundle(pkgDir, nodePath, full),
      memory: memory && (await bundle(pkgDir, nodePath, memory)),
    };
  } finally {
    rmSync(nodePath, { recursive: true, force: true });
  }
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");

/** The report lines for shippedSizes' result; verdicts against BUDGETS. */
export function sizeReport(sizes, width = 54) {
  const lines = [`${"shipped to a page (esbuild, browser, esm, minified)".padEnd(width)} ${"raw B".padStart(9)} ${"gzip -9 B".padStart(10)}  budget    result`];
  const kb = (b) => `<=${b / 1024} KB`;
  for (const [key, title] of [["memory", "memory entry (MemoryCache, requestKey)"], ["full", "full entry (Cache, MemoryCache, requestKey)"]]) {
    const s = sizes[key];
    lines.push(title);
    if (s === null) {
      lines.push(`  ${"n/a (entry not built)".padEnd(width - 2)} ${"".padStart(9)} ${"".padStart(10)}  ${kb(BUDGETS[key]).padEnd(8)}  n/a`);
      continue;
    }
    for (const f of s.files) lines.push(`  ${f.file.padEnd(width - 2)} ${fmt(f.raw).padStart(9)} ${fmt(f.gzip).padStart(10)}`);
    const verdict = s.bytes <= BUDGETS[key] ? "met" : "MISSED";
    lines.push(`  ${"total".padEnd(width - 2)} ${fmt(s.rawBytes).padStart(9)} ${fmt(s.bytes).padStart(10)}  ${kb(BUDGETS[key]).padEnd(8)}  ${verdict}`);
  }
  return lines;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const pkgDir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", "pkg");
  const sizes = await shippedSizes(pkgDir);
  for (const line of sizeReport(sizes)) console.log(line);
  const over = ["memory", "full"].filter((k) => sizes[k] && sizes[k].bytes > BUDGETS[k]);
  process.exitCode = over.length ? 1 : 0;
}
