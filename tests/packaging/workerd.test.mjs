// Cloudflare workerd through Miniflare: module Workers that import "cachette" and
// "cachette/memory" are bundled with esbuild the way Wrangler bundles (conditions workerd,
// worker, browser; the `.wasm` import left to the runtime as a CompiledWasm module), then run
// by Miniflare; each response is the JSON of the smoke checks.
import { copyFileSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";
import { assertSmoke, consumerProject, tempDir } from "./helpers.mjs";

const dir = consumerProject("workerd");

writeFileSync(
  join(dir, "worker.js"),
  `import { Cache, MemoryCache, requestKey, CacheError, init } from "cachette";
import { runSmoke } from "./smoke.mjs";

export default {
  async fetch() {
    return Response.json(await runSmoke({ Cache, MemoryCache, requestKey, CacheError, init }));
  },
};
`,
);

writeFileSync(
  join(dir, "memory-worker.js"),
  `import * as api from "cachette/memory";
import { runSmoke } from "./smoke.mjs";

export default {
  async fetch() {
    return Response.json(await runSmoke(api, true));
  },
};
`,
);

/** Bundles `entry` like Wrangler (`import wasm from "./x.wasm"` stays an import, of a module the
 * runtime provides compiled; the .wasm file is placed next to the bundle), runs it in workerd
 * and checks the smoke results; `entryFile` is the package file the bundle must have used. */
async function smokeInWorkerd(t, entry, entryFile) {
  const out = tempDir(`workerd-${entry.replace(/\W/g, "-")}`);
  const wasmModules = [];
  const compiledWasm = {
    name: "compiled-wasm",
    setup(build) {
      build.onResolve({ filter: /\.wasm$/ }, (args) => {
        const source = resolve(args.resolveDir, args.path);
        const name = basename(source);
        copyFileSync(source, join(out, name));
        wasmModules.push({ type: "CompiledWasm", path: join(out, name), source });
        return { path: `./${name}`, external: true };
      });
    },
  };
  const bundle = join(out, "worker.js");
  const result = await esbuild.build({
    absWorkingDir: dir,
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    plugins: [compiledWasm],
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(dir, resolve(dir, p)));
  assert.ok(
    inputs.includes(join("node_modules", "cachette", ...entryFile.split("/"))),
    `the bundle did not use ${entryFile}: ${inputs.join(", ")}`,
  );
  assert.equal(wasmModules.length, 1, "exactly one .wasm import");

  const mf = new Miniflare({
    modules: [{ type: "ESModule", path: bundle }, ...wasmModules.map(({ type, path }) => ({ type, path }))],
    modulesRoot: out,
    compatibilityDate: "2026-04-01",
    port: 0,
  });
  try {
    const res = await mf.dispatchFetch("http://localhost/");
    const text = await res.text();
    assert.equal(res.status, 200, text);
    await assertSmoke(t, JSON.parse(text));
  } finally {
    await mf.dispose();
  }
}

test("workerd: import from \"cachette\" in a module Worker (Miniflare)", { timeout: 60_000 }, (t) =>
  smokeInWorkerd(t, "worker.js", "workerd.js"),
);

test("workerd: import from \"cachette/memory\" in a module Worker (Miniflare)", { timeout: 60_000 }, (t) =>
  smokeInWorkerd(t, "memory-worker.js", "memory/workerd.js"),
);
