// What each Worker costs: its modules (wasm raw and gzip -9, the JS beside it) and its cold
// start under workerd (Miniflare, one isolate), printed as test diagnostics (no time is
// asserted); and that the JS Worker's bundle really went through the package's `workerd` entry
// (re-bundled here with examples/worker-js/build.mjs into a temp directory).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { build } from "../../examples/worker-js/build.mjs";
import { tempDir } from "../packaging/helpers.mjs";
import { WORKERS, bundleSizes, secrets, startUpstash, startWorker } from "./helpers.mjs";

let up;
before(async () => {
  up = await startUpstash();
});
after(() => up?.stop());

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;

for (const kind of ["rust", "js"]) {
  test(`${kind}: bundle size`, (t) => {
    const sizes = bundleSizes(kind);
    for (const s of sizes) {
      t.diagnostic(`${kind}: ${s.file} (${s.type}): ${s.raw} B raw (${kb(s.raw)}), ${s.gzip9} B gzip -9 (${kb(s.gzip9)})`);
    }
    const total = sizes.reduce((a, s) => a + s.gzip9, 0);
    t.diagnostic(`${kind}: whole Worker ${total} B gzip -9 (${kb(total)})`);
    const wasm = sizes.filter((s) => s.type === "CompiledWasm");
    assert.equal(wasm.length, 1, "one wasm module");
    // The Workers free plan takes 3 MB compressed; this is far under it.
    assert.ok(total < 3 * 2 ** 20);
  });
}

test("js: the bundle imports cachette through its workerd entry, with no Node built-ins", async () => {
  const { inputs, modules } = await build({ outdir: tempDir("worker-js"), log: false });
  assert.ok(
    inputs.some((p) => /(^|\/)(pkg|cachette)\/workerd\.js$/.test(p)),
    `the bundle did not use the workerd entry: ${inputs.join(", ")}`,
  );
  const js = readFileSync(modules[0].path, "utf8");
  assert.doesNotMatch(js, /from\s*["']node:/);
  assert.deepEqual(modules.map((m) => m.type), ["ESModule", "CompiledWasm"]);
});

test("rust: the worker-build bundle imports only its wasm and cloudflare:workers", () => {
  const [js] = WORKERS.rust.modules();
  const imports = [...readFileSync(js.path, "utf8").matchAll(/\bfrom\s*["']([^"']+)["']/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(imports)].sort(), ["./index_bg.wasm", "cloudflare:workers"]);
});

const RUNS = 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const kind of ["rust", "js"]) {
  test(`${kind}: cold start to the first response (median of ${RUNS})`, async (t) => {
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const w = await startWorker(kind, { main: secrets(up) });
      try {
        assert.equal(w.first.status, 200, JSON.stringify(w.first.body));
        assert.equal(w.first.body.status, "healthy");
        const t0 = performance.now();
        await w.request("main", "/api/health");
        runs.push({ ...w.timing, warmMs: performance.now() - t0 });
      } finally {
        await w.dispose();
      }
    }
    const m = (k) => median(runs.map((r) => r[k])).toFixed(0);
    t.diagnostic(
      `${kind}: cold start ${m("coldStartMs")} ms = Miniflare ready ${m("readyMs")} ms + first /api/health ` +
        `${m("firstResponseMs")} ms (the isolate's first request: cache made, Upstash PING); warm /api/health ${m("warmMs")} ms`,
    );
  });
}
