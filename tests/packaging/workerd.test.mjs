// Cloudflare workerd through Miniflare: a module Worker that imports "cachette" is bundled
// with esbuild the way Wrangler bundles (conditions workerd, worker, browser; the `.wasm`
// import left to the runtime as a CompiledWasm module), then run by Miniflare; its response
// is the JSON of the smoke checks.
import { copyFileSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";
import { assertSmoke, consumerProject, tempDir } from "./helpers.mjs";

const dir = consumerProject("workerd");
const out = tempDir("workerd-out");

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

// Like Wrangler: `import wasm from "./x.wasm"` stays an import, of a module the runtime
// provides compiled; the .wasm file is placed next to the bundle.
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

test("workerd: import from \"cachette\" in a module Worker (Miniflare)", { timeout: 60_000 }, async (t) => {
  const bundle = join(out, "worker.js");
  const result = await esbuild.build({
    absWorkingDir: dir,
    entryPoints: ["worker.js"],
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
    inputs.includes(join("node_modules", "cachette", "workerd.js")),
    `the bundle did not use the workerd entry: ${inputs.join(", ")}`,
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
});
