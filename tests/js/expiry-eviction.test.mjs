// TTL with real time, per-call TTL, true LRU order, and the byte bound.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, MemoryCache, sleep } from "./package.mjs";

const CLASSES = { MemoryCache, Cache };

function make(Class, options = {}) {
  return new Class({ cleanupInterval: 0, ...options });
}

for (const [name, Class] of Object.entries(CLASSES)) {
  describe(`${name}: expiry and eviction`, () => {
    test("TTL: an entry is served before its TTL and never after", async () => {
      const c = make(Class, { ttl: 0.05 });
      await c.set("k", "v");
      await c.store("ns", { a: 1 }, "r");
      assert.equal(await c.get("k"), "v");
      assert.equal(await c.has("k"), true);
      await sleep(80);
      assert.equal(await c.has("k"), false);
      assert.equal(await c.get("k"), undefined);
      assert.equal(await c.lookup("ns", { a: 1 }), undefined);
      let calls = 0;
      assert.equal(await c.getOrSet("ns", { a: 1 }, () => ++calls), 1, "expired entry regenerated");
      assert.equal((await c.stats()).keys, 1);
      c.shutdown();
    });

    test("per-call ttl overrides the default, both ways", async () => {
      const c = make(Class, { ttl: 0.05 });
      await c.set("default", 1);
      await c.set("long", 2, { ttl: 10 });
      await c.store("ns", { long: true }, 3, { ttl: 10 });
      await c.getOrSet("ns", { long: "gen" }, () => 4, { ttl: 10 });
      const d = make(Class, { ttl: 3600 });
      await d.set("short", 1, { ttl: 0.05 });
      await d.store("ns", { short: true }, 2, { ttl: 0.05 });
      await d.getOrSet("ns", { short: "gen" }, () => 3, { ttl: 0.05 });
      await d.set("default", 4);
      await sleep(80);
      assert.equal(await c.get("default"), undefined);
      assert.equal(await c.get("long"), 2);
      assert.equal(await c.lookup("ns", { long: true }), 3);
      assert.equal(await c.lookup("ns", { long: "gen" }), 4);
      assert.equal(await d.get("short"), undefined);
      assert.equal(await d.lookup("ns", { short: true }), undefined);
      assert.equal(await d.lookup("ns", { short: "gen" }), undefined);
      assert.equal(await d.get("default"), 4);
      c.shutdown();
      d.shutdown();
    });

    test("re-setting a key restarts its TTL", async () => {
      // Margins of 50 ms and more, so that a slow timer on a busy machine cannot flip the result.
      const c = make(Class, { ttl: 0.3 });
      await c.set("k", 1);
      await sleep(200);
      await c.set("k", 2);
      await sleep(150);
      assert.equal(await c.get("k"), 2, "350 ms after the first set, 150 ms after the second");
      c.shutdown();
    });

    test("LRU: maxEntries 3, get refreshes recency, has does not", async () => {
      const c = make(Class, { maxEntries: 3 });
      await c.set("a", 1);
      await c.set("b", 2);
      await c.set("c", 3);
      assert.equal(await c.get("a"), 1); // order now b, c, a
      await c.set("d", 4); // evicts b
      assert.equal(await c.has("b"), false, "b was least recently used");
      assert.equal(await c.has("a"), true, "a was refreshed by get");
      assert.equal(await c.has("c"), true); // has must not refresh c: order still c, a, d
      await c.set("e", 5); // evicts c
      assert.equal(await c.has("c"), false, "has() must not refresh recency");
      assert.deepEqual(
        await Promise.all(["a", "d", "e"].map((k) => c.has(k))),
        [true, true, true],
      );
      let s = await c.stats();
      assert.equal(s.evictions, 2);
      assert.equal(s.keys, 3);
      // Overwriting a present key evicts nothing.
      await c.set("a", 10);
      s = await c.stats();
      assert.equal(s.evictions, 2);
      assert.equal(s.keys, 3);
      c.shutdown();
    });

    test("LRU: lookup and a getOrSet hit refresh recency too", async () => {
      const c = make(Class, { maxEntries: 3 });
      await c.store("ns", { i: 1 }, 1);
      await c.store("ns", { i: 2 }, 2);
      await c.store("ns", { i: 3 }, 3);
      assert.equal(await c.lookup("ns", { i: 1 }), 1);
      assert.equal(await c.getOrSet("ns", { i: 2 }, () => "regenerated"), 2);
      await c.store("ns", { i: 4 }, 4); // evicts i=3
      assert.equal(await c.has(c.key("ns", { i: 3 })), false);
      for (const i of [1, 2, 4]) assert.equal(await c.has(c.key("ns", { i })), true, `i=${i}`);
      c.shutdown();
    });

    test("LRU at scale: 1,000 entries into maxEntries 100 keeps exactly the last 100", async () => {
      const c = make(Class, { maxEntries: 100 });
      for (let i = 0; i < 1000; i++) await c.set(`k${i}`, i);
      const s = await c.stats();
      assert.equal(s.keys, 100);
      assert.equal(s.evictions, 900);
      assert.equal(await c.has("k899"), false);
      assert.equal(await c.has("k900"), true);
      assert.equal(await c.get("k999"), 999);
      c.shutdown();
    });

    test("byte bound with sizeOf: entries charged key length + sizeOf, LRU eviction", async () => {
      const c = make(Class, { maxBytes: 100, sizeOf: (v) => v.n });
      await c.set("a", { n: 30 }); // 31
      await c.set("b", { n: 30 }); // 62
      await c.set("c", { n: 30 }); // 93
      assert.equal((await c.stats()).memoryUsedBytes, 93);
      await c.get("a"); // order b, c, a
      await c.set("d", { n: 30 }); // 124 > 100: evict b -> 93
      assert.equal(await c.has("b"), false);
      assert.equal(await c.has("a"), true);
      let s = await c.stats();
      assert.equal(s.memoryUsedBytes, 93);
      assert.equal(s.evictions, 1);
      // One value that needs the whole bound evicts everything else.
      await c.set("big", { n: 97 }); // 3 + 97 = 100
      s = await c.stats();
      assert.equal(s.keys, 1);
      assert.equal(s.memoryUsedBytes, 100);
      assert.equal(s.evictions, 4);
      // Replacing a value re-charges it.
      await c.set("big", { n: 7 });
      assert.equal((await c.stats()).memoryUsedBytes, 10);
      await c.delete("big");
      assert.equal((await c.stats()).memoryUsedBytes, 0);
      c.shutdown();
    });

    test("byte bound without sizeOf: UTF-8 length of the JSON text", async () => {
      const c = make(Class, { maxBytes: 20 });
      await c.set("a", "éé"); // 1 + JSON "\"éé\"" (6 bytes) = 7
      assert.equal((await c.stats()).memoryUsedBytes, 7);
      await c.set("b", { x: 1 }); // 1 + {"x":1} (7) = 8 -> 15
      assert.equal((await c.stats()).memoryUsedBytes, 15);
      await c.set("c", [1, 2]); // 1 + 5 = 6 -> 21 > 20: evict a
      assert.equal(await c.has("a"), false);
      assert.equal((await c.stats()).memoryUsedBytes, 14);
      c.shutdown();
    });

    test("maxEntries and maxBytes together: whichever binds first", async () => {
      const c = make(Class, { maxEntries: 2, maxBytes: 1000, sizeOf: () => 1 });
      await c.set("a", 1);
      await c.set("b", 2);
      await c.set("c", 3);
      assert.equal(await c.has("a"), false);
      assert.equal((await c.stats()).keys, 2);
      c.shutdown();
    });
  });
}
