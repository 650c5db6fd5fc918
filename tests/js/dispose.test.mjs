// free() and Symbol.dispose end a cache exactly as shutdown() does, on both classes: every
// operation then fails with a CacheError SHUT_DOWN (thrown by MemoryCache, a rejection from
// Cache), while stats() and version, MemoryCache's size and Cache's health() stay readable.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, CacheError, MemoryCache } from "./package.mjs";

const ENDINGS = {
  "free()": (c) => c.free(),
  "Symbol.dispose": (c) => c[Symbol.dispose](),
  "shutdown()": (c) => c.shutdown(),
};

const isShutDown = (e) => e instanceof CacheError && e.code === "SHUT_DOWN";

for (const [ending, end] of Object.entries(ENDINGS)) {
  describe(`${ending} ends a cache as shutdown() does`, () => {
    test("MemoryCache: operations throw SHUT_DOWN; stats, size and version stay readable", () => {
      const c = new MemoryCache({ cleanupInterval: 1, version: "v3" });
      c.set("k", 1);
      assert.equal(end(c), undefined);
      for (const op of [
        () => c.get("k"),
        () => c.set("k", 2),
        () => c.has("k"),
        () => c.delete("k"),
        () => c.lookup("ns", {}),
        () => c.getOrSet("ns", {}, () => 1),
      ]) {
        assert.throws(op, isShutDown);
      }
      const s = c.stats();
      assert.equal(s.cleanupTimerActive, false);
      assert.equal(s.keys, 0);
      assert.equal(c.size, 0);
      assert.equal(c.version, "v3");
      // Ending it again changes nothing.
      for (const again of Object.values(ENDINGS)) assert.equal(again(c), undefined);
      assert.throws(() => c.get("k"), isShutDown);
    });

    test("Cache: operations reject with SHUT_DOWN (never throw); stats, health and version stay readable", async () => {
      const c = new Cache({ cleanupInterval: 1, version: "v3" });
      await c.set("k", 1);
      assert.equal(end(c), undefined);
      for (const [name, op] of Object.entries({
        get: () => c.get("k"),
        set: () => c.set("k", 2),
        has: () => c.has("k"),
        delete: () => c.delete("k"),
        lookup: () => c.lookup("ns", {}),
        getOrSet: () => c.getOrSet("ns", {}, () => 1),
        deletePattern: () => c.deletePattern("*"),
        clear: () => c.clear(),
      })) {
        let p;
        assert.doesNotThrow(() => {
          p = op();
        }, `${name} threw synchronously`);
        await assert.rejects(p, isShutDown, name);
      }
      const s = await c.stats();
      assert.equal(s.cleanupTimerActive, false);
      assert.equal(s.keys, 0);
      const h = await c.health();
      assert.equal(typeof h.status, "string");
      assert.equal(c.version, "v3");
      for (const again of Object.values(ENDINGS)) assert.equal(again(c), undefined);
      await assert.rejects(c.get("k"), isShutDown);
    });
  });
}
