// stats() and health(): every counter as the operations imply.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, MemoryCache, sleep } from "./package.mjs";

const FIELDS = [
  "backend", "version", "hits", "memoryHits", "sharedHits", "misses", "hitRatePercent", "totalRequests", "sets", "deletes",
  "invalidations", "evictions", "expirations", "errors", "avgLatencyMs", "p99LatencyMs", "keys",
  "maxEntries", "memoryUsedBytes", "cleanupTimerActive", "fallbackActive",
];

for (const [name, Class] of Object.entries({ MemoryCache, Cache })) {
  describe(`${name}: stats`, () => {
    test("a fresh cache: every field, plain camelCase, zeroed", async () => {
      const c = new Class({ maxEntries: 7, version: "v9", cleanupInterval: 0 });
      const s = await c.stats();
      assert.equal(Object.getPrototypeOf(s), Object.prototype, "a plain object");
      assert.deepEqual(Object.keys(s).filter((k) => !FIELDS.includes(k)), [], "no unknown fields");
      assert.deepEqual(FIELDS.filter((k) => !(k in s)), [], "missing fields");
      assert.equal(s.upstash, undefined);
      assert.deepEqual(
        { ...s, avgLatencyMs: 0, p99LatencyMs: 0 },
        {
          backend: "memory", version: "v9", hits: 0, memoryHits: 0, sharedHits: 0, misses: 0, hitRatePercent: 0, totalRequests: 0,
          sets: 0, deletes: 0, invalidations: 0, evictions: 0, expirations: 0, errors: 0,
          avgLatencyMs: 0, p99LatencyMs: 0, keys: 0, maxEntries: 7, memoryUsedBytes: 0,
          cleanupTimerActive: false, fallbackActive: false,
        },
      );
      c.shutdown();
    });

    test("counters follow the operations", async () => {
      const c = new Class({ maxEntries: 3, cleanupInterval: 0, ttl: 3600 });
      await c.set("a", 1);
      await c.set("b", 2);
      await c.store("ns", { i: 1 }, 3);
      let s = await c.stats();
      assert.deepEqual([s.sets, s.keys], [3, 3]);

      assert.equal(await c.get("a"), 1); // hit
      assert.equal(await c.get("x"), undefined); // miss
      assert.equal(await c.lookup("ns", { i: 1 }), 3); // hit
      assert.equal(await c.lookup("ns", { i: 2 }), undefined); // miss
      assert.equal(await c.get("y"), undefined); // miss
      await c.has("a"); // neither
      await c.has("zzz"); // neither
      s = await c.stats();
      assert.deepEqual([s.hits, s.misses, s.totalRequests], [2, 3, 5]);
      assert.equal(s.hitRatePercent, 40);

      // getOrSet: a miss and a set, then a hit.
      await c.getOrSet("ns", { i: 9 }, () => 9); // miss + set, evicts b (LRU: b, ns1, a)
      await c.getOrSet("ns", { i: 9 }, () => 10); // hit
      s = await c.stats();
      assert.deepEqual([s.hits, s.misses, s.sets, s.evictions, s.keys], [3, 4, 4, 1, 3]);
      assert.equal(await c.has("b"), false);
      assert.equal(s.hitRatePercent, 42.86, "3 of 7, rounded to two decimals");

      // deletes: explicit deletions that removed something.
      assert.equal(await c.delete("a"), true);
      assert.equal(await c.delete("a"), false);
      assert.equal(await c.delete("never"), false);
      s = await c.stats();
      assert.deepEqual([s.deletes, s.keys], [1, 2]);

      // invalidations: keys removed by pattern, namespace or version invalidation.
      await c.set("p1", 1);
      assert.equal(await c.deletePattern("p*"), 1);
      assert.equal(await c.invalidateNamespace("ns"), 2);
      await c.set("v0:x:1", 1);
      await c.set("v0:x:2", 1);
      assert.equal(await c.invalidateVersion("v0"), 2);
      assert.equal(await c.deletePattern("none*"), 0);
      s = await c.stats();
      assert.deepEqual([s.invalidations, s.deletes, s.keys], [5, 1, 0]);
      await c.store("ns", { i: 1 }, 1);
      assert.equal(await c.updateVersion("v2"), 1);
      s = await c.stats();
      assert.equal(s.invalidations, 6);
      assert.equal(s.version, "v2");

      // Latency: numbers, p99 >= avg >= 0.
      assert.ok(s.avgLatencyMs >= 0 && Number.isFinite(s.avgLatencyMs));
      assert.ok(s.p99LatencyMs >= 0 && Number.isFinite(s.p99LatencyMs));
      assert.equal(s.errors, 0);
      assert.equal(s.fallbackActive, false);
      c.shutdown();
    });

    test("expirations: expired entries found by access or sweep", async () => {
      const c = new Class({ cleanupInterval: 0, ttl: 0.03 });
      for (let i = 0; i < 5; i++) await c.set(`k${i}`, i);
      await c.set("keep", 1, { ttl: 60 });
      await sleep(60);
      assert.equal(await c.get("k0"), undefined);
      const s = await c.stats();
      assert.equal(s.expirations, 5);
      assert.equal(s.keys, 1);
      assert.equal(s.misses, 1, "a read of an expired entry is a miss");
      c.shutdown();
    });

    test("keys, memoryUsedBytes and clear", async () => {
      const c = new Class({ cleanupInterval: 0, maxBytes: 1000 });
      await c.set("ab", "xyz"); // 2 + 5
      await c.set("c", [1]); // 1 + 3
      let s = await c.stats();
      assert.deepEqual([s.keys, s.memoryUsedBytes], [2, 11]);
      await c.clear();
      s = await c.stats();
      assert.deepEqual([s.keys, s.memoryUsedBytes], [0, 0]);
      c.shutdown();
    });

    test("without maxBytes nothing is weighed: memoryUsedBytes stays 0, sizeOf is not called", async () => {
      let calls = 0;
      const c = new Class({ cleanupInterval: 0, sizeOf: () => ++calls });
      await c.set("ab", "xyz");
      await c.set("c", { big: "x".repeat(10_000) });
      const s = await c.stats();
      assert.deepEqual([s.keys, s.memoryUsedBytes, calls], [2, 0, 0]);
      assert.equal(await c.get("ab"), "xyz");
      c.shutdown();
    });

    test("cleanupTimerActive follows cleanupInterval", async () => {
      const on = new Class({ cleanupInterval: 30 });
      const off = new Class({ cleanupInterval: 0 });
      const dflt = new Class();
      assert.equal((await on.stats()).cleanupTimerActive, true);
      assert.equal((await off.stats()).cleanupTimerActive, false);
      assert.equal((await dflt.stats()).cleanupTimerActive, true, "default cleanupInterval is 60");
      on.shutdown();
      off.shutdown();
      dflt.shutdown();
    });
  });
}

describe("Cache: health", () => {
  test("healthy with the memory backend, unhealthy after shutdown", async () => {
    const c = new Cache({ cleanupInterval: 0 });
    const h = await c.health();
    assert.equal(h.status, "healthy");
    assert.equal(h.backend, "memory");
    assert.ok(typeof h.latencyMs === "number" && h.latencyMs >= 0 && h.latencyMs < 1000);
    assert.equal(h.error, undefined);
    c.shutdown();
    let after;
    assert.doesNotThrow(() => {
      after = c.health();
    });
    const h2 = await after;
    assert.equal(h2.status, "unhealthy");
    assert.equal(h2.backend, "memory");
    assert.equal(typeof h2.error, "string", "unhealthy says why");
  });
});
