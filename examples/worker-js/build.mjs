// Bundles src/index.js for workerd the way Wrangler does: esbuild with the export conditions
// workerd, worker, browser (so `import "cachette"` picks the package's `workerd` entry), and the
// package's `.wasm` import left to the runtime as a CompiledWasm module placed next to the
// bundle. Writes dist/index.js + dist/<name>.wasm and dist/modules.json (the Miniflare module
// list), and prints the sizes.
//
//   npm install && node build.mjs        (cachette comes from ../../pkg: run `./run build` first)
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, "dist");

/** Bundles; resolves to `{ modules, inputs, sizes }`. */
export async function build({ outdir = OUT, log = true } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const wasm = [];
  const compiledWasm = {
    name: "compiled-wasm",
    setup(b) {
      b.onResolve({ filter: /\.wasm$/ }, (args) => {
        const source = resolve(args.resolveDir, args.path);
        const name = basename(source);
        copyFileSync(source, join(outdir, name));
        wasm.push({ type: "CompiledWasm", path: join(outdir, name) });
        return { path: `./${name}`, external: true };
      });
    },
  };
  const result = await esbuild.build({
    absWorkingDir: HERE,
    entryPoints: ["src/index.js"],
    outfile: join(outdir, "index.js"),
    bundle: true,
    minify: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    plugins: [compiledWasm],
    metafile: true,
    logLevel: "warning",
  });
  const modules = [{ type: "ESModule", path: join(outdir, "index.js") }, ...wasm];
  writeFileSync(join(outdir, "modules.json"), JSON.stringify(modules, null, 2));
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(HERE, resolve(HERE, p)));
  const sizes = Object.fromEntries(
    modules.map(({ path }) => {
      const bytes = readFileSync(path);
      return [basename(path), { raw: bytes.length, gzip9: gzipSync(bytes, { level: 9 }).length }];
    }),
  );
  if (log) {
    for (const [name, s] of Object.entries(sizes)) {
      console.log(`${name}: ${s.raw} bytes, ${s.gzip9} gzip -9`);
    }
  }
  return { modules, inputs, sizes };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await build();
