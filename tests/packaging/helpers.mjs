// Shared by the packaging tests: the `npm pack` tarball of pkg/, throwaway consumer projects
// that `npm install` it, and a way to turn smoke results into node:test assertions.
//
// `./run test_packaging` packs once and passes CACHETTE_TARBALL and CACHETTE_TMP; a test file
// run on its own (`node --test tests/packaging/node.test.mjs`) packs pkg/ itself.
import { execFileSync, execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import assert from "node:assert/strict";
import { after } from "node:test";
import { chromium } from "playwright-core";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, "..", "..");
export const PKG = join(ROOT, "pkg");

const execFileAsync = promisify(execFile);
const keep = process.env.CACHETTE_KEEP_TMP === "1";

/** A fresh temp directory, removed when the test file ends (unless CACHETTE_KEEP_TMP=1). */
export function tempDir(label) {
  const base = process.env.CACHETTE_TMP || tmpdir();
  const dir = mkdtempSync(join(base, `cachette-${label}-`));
  if (!keep) after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let packed;
/** The path of the package tarball (`npm pack` of pkg/). */
export function tarball() {
  if (process.env.CACHETTE_TARBALL) return process.env.CACHETTE_TARBALL;
  if (!packed) {
    const dest = tempDir("tarball");
    const out = execFileSync(
      "npm",
      ["pack", "--json", "--ignore-scripts", "--pack-destination", dest],
      { cwd: PKG, encoding: "utf8" },
    );
    packed = join(dest, JSON.parse(out)[0].filename);
  }
  return packed;
}

/**
 * A throwaway consumer project with the tarball installed (`node_modules/cachette`) and
 * smoke.mjs copied in. `extra` is merged into its package.json.
 */
export function consumerProject(label, extra = {}) {
  const dir = tempDir(label);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: `consumer-${label}`, version: "1.0.0", private: true, ...extra }, null, 2),
  );
  execFileSync(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", tarball()],
    { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
  );
  cpSync(join(HERE, "smoke.mjs"), join(dir, "smoke.mjs"));
  return dir;
}

/** The installed package's package.json. */
export function installedManifest(dir) {
  return JSON.parse(readFileSync(join(dir, "node_modules", "cachette", "package.json"), "utf8"));
}

/** Runs `node file` in `dir`; resolves to its stdout parsed as JSON. */
export async function runNodeJson(dir, file) {
  try {
    const { stdout } = await execFileAsync(process.execPath, [file], { cwd: dir, timeout: 30_000 });
    return JSON.parse(stdout);
  } catch (e) {
    throw new Error(`node ${file} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
}

/** One subtest per smoke check, so a report names exactly what failed. */
export async function assertSmoke(t, results) {
  assert.ok(Array.isArray(results) && results.length > 0, `no smoke results: ${JSON.stringify(results)}`);
  for (const r of results) {
    await t.test(r.name, () => assert.ok(r.ok, r.error));
  }
}

/**
 * Debian's Chromium, headless, through playwright-core (which never downloads a browser here);
 * without the background-networking flags Chromium keeps dialling hosts this machine cannot reach.
 */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    timeout: 30_000,
  });
}
