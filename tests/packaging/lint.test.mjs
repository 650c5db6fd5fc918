// The package as resolvers read it, checked by the two linters the ecosystem uses, pinned in the
// root package.json: publint (`publint --strict pkg`: the manifest, the exports map, the format
// of every file it names) and Are the Types Wrong (`attw --pack pkg`, profile strict: every
// entry of the exports map under node10, node16 from CommonJS, node16 from ESM and bundler
// resolution). Any error, warning or suggestion of either fails; each prints its report.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import assert from "node:assert/strict";
import { PKG, ROOT } from "./helpers.mjs";

const run = promisify(execFile);
const bin = (name) => {
  const path = join(ROOT, "node_modules", ".bin", name);
  assert.ok(existsSync(path), `${name} is not installed (npm ci)`);
  return path;
};

/** Runs a linter; resolves to { code, out } (its exit code and its output, colours off). */
async function lint(name, args) {
  const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };
  try {
    const { stdout, stderr } = await run(bin(name), args, { cwd: ROOT, env, timeout: 120_000 });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    if (typeof e.code !== "number") throw e;
    return { code: e.code, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

const ENTRIES = [".", "./web", "./memory", "./ai"];
const MODES = ["node10", "node16-cjs", "node16-esm", "bundler"];

test("publint --strict pkg: no error, warning or suggestion", async () => {
  const { code, out } = await lint("publint", ["--strict", PKG]);
  console.log(out.trim());
  assert.equal(code, 0, `publint failed:\n${out}`);
  // --strict fails on warnings; suggestions only print, so their absence is asserted here.
  assert.match(out, /All good!/, `publint has something to say:\n${out}`);
});

test("attw --pack pkg: every entry, every resolution mode, no problem", async () => {
  const table = await lint("attw", ["--pack", PKG, "--profile", "strict", "--format", "ascii"]);
  console.log(table.out.trim());
  assert.equal(table.code, 0, `attw found problems:\n${table.out}`);

  const json = await lint("attw", ["--pack", PKG, "--profile", "strict", "--format", "json"]);
  assert.equal(json.code, 0, `attw found problems:\n${json.out}`);
  const { analysis, problems } = JSON.parse(json.out);
  assert.deepEqual(Object.values(problems ?? {}).flat(), [], "attw's problems");
  assert.deepEqual(analysis.problems, [], "attw's problems");
  for (const entry of ENTRIES) {
    const checked = analysis.entrypoints[entry];
    assert.ok(checked, `attw did not check ${entry}`);
    for (const mode of MODES) {
      const r = checked.resolutions[mode];
      const types = r?.resolution?.fileName ?? "";
      assert.ok(r?.resolution?.isTypeScript && /\.d\.c?ts$/.test(types), `${entry} (${mode}): no types (${types})`);
      // CommonJS consumers get the .d.cts twins, everyone else the ES module declarations.
      const want = mode === "node16-cjs" ? /\.d\.cts$/ : /\.d\.ts$/;
      assert.match(types, want, `${entry} (${mode}) resolves its types to ${types}`);
    }
  }
});
