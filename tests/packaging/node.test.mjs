// Node.js, from the installed tarball: `import` (the node.import condition, node.mjs) and
// `require` (node.require, node.cjs), each in a child process of its own.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertSmoke, consumerProject, runNodeJson } from "./helpers.mjs";

const dir = consumerProject("node");

test("Node ESM: import { ... } from \"cachette\"", async (t) => {
  writeFileSync(
    join(dir, "esm.mjs"),
    `import { Cache, MemoryCache, requestKey, CacheError, init } from "cachette";
import { runSmoke } from "./smoke.mjs";
const results = await runSmoke({ Cache, MemoryCache, requestKey, CacheError, init });
console.log(JSON.stringify(results));
`,
  );
  await assertSmoke(t, await runNodeJson(dir, "esm.mjs"));
});

test("Node CJS: require(\"cachette\")", async (t) => {
  writeFileSync(
    join(dir, "cjs.cjs"),
    `const api = require("cachette");
const { version } = require("cachette/package.json");
import("./smoke.mjs").then(async ({ runSmoke }) => {
  const results = await runSmoke(api);
  // One wasm instance and one CacheError class in Node, however the package is loaded.
  const esm = await import("cachette");
  results.push({
    name: "require and import share one module instance",
    ok: esm.CacheError === api.CacheError && esm.MemoryCache === api.MemoryCache,
    error: "import(\\"cachette\\") and require(\\"cachette\\") gave different classes",
  });
  results.push({
    name: "require(\\"cachette/package.json\\") works",
    ok: typeof version === "string" && version.length > 0,
    error: "no version",
  });
  console.log(JSON.stringify(results));
});
`,
  );
  await assertSmoke(t, await runNodeJson(dir, "cjs.cjs"));
});

test("Node: cachette/web resolves to the self-initialising Node build", async () => {
  writeFileSync(
    join(dir, "web.mjs"),
    `import { init, MemoryCache } from "cachette/web";
import * as main from "cachette";
await init();
console.log(JSON.stringify({ same: MemoryCache === main.MemoryCache }));
`,
  );
  assert.deepEqual(await runNodeJson(dir, "web.mjs"), { same: true });
});

test("Node ESM and CJS: cachette/memory, the memory-only module", async (t) => {
  writeFileSync(
    join(dir, "memory.mjs"),
    `import * as api from "cachette/memory";
import * as main from "cachette";
import { runSmoke } from "./smoke.mjs";
const results = await runSmoke(api, true);
results.push({
  name: "cachette/memory has its own module, and CacheError is the package's one class",
  ok: api.MemoryCache !== main.MemoryCache && api.CacheError === main.CacheError,
  error: "cachette/memory shares the main MemoryCache, or has another CacheError class",
});
console.log(JSON.stringify(results));
`,
  );
  await assertSmoke(t, await runNodeJson(dir, "memory.mjs"));
  writeFileSync(
    join(dir, "memory.cjs"),
    `const api = require("cachette/memory");
import("./smoke.mjs").then(async ({ runSmoke }) => {
  const results = await runSmoke(api, true);
  const esm = await import("cachette/memory");
  results.push({
    name: "require and import of cachette/memory share one module instance",
    ok: esm.MemoryCache === api.MemoryCache && Object.keys(api).sort().join() === "CacheError,MemoryCache,init,requestKey",
    error: "different classes, or exports " + Object.keys(api).join(),
  });
  console.log(JSON.stringify(results));
});
`,
  );
  await assertSmoke(t, await runNodeJson(dir, "memory.cjs"));
});

// cachette/ai imports nothing (no wasm of its own): it drives whichever cache it is handed. The
// AI SDK is not installed here; a model stand-in with `doGenerate` is enough for the middleware.
test("Node ESM and CJS: cachette/ai over the package's caches", async () => {
  writeFileSync(
    join(dir, "ai.mjs"),
    `import { cacheMiddleware } from "cachette/ai";
import { Cache, MemoryCache } from "cachette";
import * as memory from "cachette/memory";
import { createRequire } from "node:module";
const model = {
  provider: "stand-in",
  modelId: "m1",
  calls: 0,
  async doGenerate() {
    this.calls++;
    return { content: [{ type: "text", text: "hi" }], finishReason: { unified: "stop", raw: "stop" }, usage: {}, warnings: [], response: { timestamp: new Date(0) } };
  },
};
const params = { prompt: [{ role: "user", content: [{ type: "text", text: "q" }] }] };
const out = { calls: [] };
for (const cache of [new MemoryCache(), new Cache(), new memory.MemoryCache()]) {
  const { wrapGenerate, specificationVersion } = cacheMiddleware(cache, { namespace: "llm", ttl: "1h" });
  const before = model.calls;
  for (let i = 0; i < 2; i++) {
    const r = await wrapGenerate({ doGenerate: () => model.doGenerate(params), params, model });
    if (!(r.response.timestamp instanceof Date) || r.content[0].text !== "hi" || specificationVersion !== "v4") throw new Error(JSON.stringify(r));
  }
  out.calls.push(model.calls - before);
  cache.shutdown();
}
// CommonJS: require("cachette/ai") is ai.cjs, the twin generated from ai.js (in every Node, with
// or without require(esm)), over a cache that require("cachette") made.
const require = createRequire(import.meta.url);
const cjs = require("cachette/ai");
const cjsCache = new (require("cachette").MemoryCache)();
const cjsBefore = model.calls;
const { wrapGenerate } = cjs.cacheMiddleware(cjsCache, { namespace: "llm", ttl: "1h" });
for (let i = 0; i < 2; i++) {
  const r = await wrapGenerate({ doGenerate: () => model.doGenerate(params), params, model });
  if (!(r.response.timestamp instanceof Date) || r.content[0].text !== "hi") throw new Error(JSON.stringify(r));
}
cjsCache.shutdown();
out.cjs = require.resolve("cachette/ai").endsWith("/ai.cjs") && model.calls - cjsBefore === 1;
console.log(JSON.stringify(out));
`,
  );
  assert.deepEqual(await runNodeJson(dir, "ai.mjs"), { calls: [1, 1, 1], cjs: true });
});
