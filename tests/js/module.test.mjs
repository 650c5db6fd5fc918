// The installed package loads both ways in Node and gives working classes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, projectRequire } from "./package.mjs";

function exercise({ Cache, MemoryCache, requestKey, CacheError }) {
  assert.equal(typeof Cache, "function");
  assert.equal(typeof MemoryCache, "function");
  assert.equal(typeof requestKey, "function");
  assert.ok(CacheError.prototype instanceof Error, "CacheError does not extend Error");
  const mem = new MemoryCache({ cleanupInterval: 0 });
  const value = { answer: 42 };
  mem.set("k", value);
  assert.equal(mem.get("k"), value);
  assert.equal(mem.key("ns", { a: 1 }), requestKey("v1", "ns", { a: 1 }));
  mem.shutdown();
  const cache = new Cache({ cleanupInterval: 0 });
  const p = cache.set("k", value);
  assert.ok(p instanceof Promise);
  return p.then(async () => {
    assert.deepEqual(await cache.get("k"), value, "Cache holds the value through its codec (JSON)");
    cache.shutdown();
  });
}

test('ESM: import { Cache, MemoryCache, requestKey, CacheError } from "cachette"', async () => {
  assert.deepEqual(
    ["Cache", "CacheError", "MemoryCache", "requestKey"].filter((n) => !(n in api)),
    [],
  );
  await exercise(api);
});

test('CJS: require("cachette") resolves to node.cjs and gives the same working classes', async () => {
  assert.match(projectRequire.resolve("cachette"), /[\\/]node_modules[\\/]cachette[\\/]node\.cjs$/);
  const cjs = projectRequire("cachette");
  await exercise(cjs);
  // One wasm instance and one CacheError class, however the package is loaded.
  assert.equal(cjs.MemoryCache, api.MemoryCache);
  assert.equal(cjs.CacheError, api.CacheError);
});
