// The npm package's workerd entry under workerd (Miniflare): `persist` (IndexedDB, browsers only)
// is refused with INVALID_OPTIONS naming the runtime, and `persist: false` is no persistence.
// The Worker is a module beside a copy of pkg/, importing its `workerd.js` as a bundler would.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { Miniflare } from "miniflare";
import { ROOT } from "../packaging/helpers.mjs";

const dir = mkdtempSync(join(tmpdir(), "cachette-persist-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("workerd: persist is refused with INVALID_OPTIONS naming the runtime", async () => {
  cpSync(join(ROOT, "pkg"), dir, { recursive: true });
  writeFileSync(
    join(dir, "persist-worker.mjs"),
    `import { Cache, CacheError } from "./workerd.js";
export default {
  async fetch() {
    const out = {};
    try {
      new Cache({ persist: true });
      out.persist = "accepted";
    } catch (e) {
      out.persist = { error: e instanceof CacheError, code: e.code, message: e.message };
    }
    const c = new Cache({ persist: false, cleanupInterval: 0 });
    await c.set("k", 1);
    out.off = await c.get("k");
    c.shutdown();
    return Response.json(out);
  },
};
`,
  );
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "persist-worker.mjs"),
    modulesRoot: dir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2026-04-01",
  });
  try {
    const r = await (await mf.dispatchFetch("http://worker.test/")).json();
    assert.equal(r.persist.error, true);
    assert.equal(r.persist.code, "INVALID_OPTIONS");
    assert.match(r.persist.message, /IndexedDB/);
    assert.match(r.persist.message, /workerd/);
    assert.equal(r.off, 1);
  } finally {
    await mf.dispose();
  }
});
