// MemoryCache's split between JavaScript (keys in a Map, values in an array, reads answered
// without calling into wasm) and wasm (MemorySlots: LRU order, expiry, eviction, sweeping,
// request keys): the places where the two halves must agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryCache, requestKey, sleep } from "./package.mjs";

test("LRU order stays exact across thousands of reads answered in JavaScript", () => {
  const c = new MemoryCache({ maxEntries: 3000, cleanupInterval: 0 });
  for (let i = 0; i < 3000; i++) c.set(`k${i}`, i);
  // 9,000 reads, newest key last: the read log in wasm memory fills and is replayed many times.
  for (let round = 0; round < 3; round++) {
    for (let i = 2999; i >= 0; i--) assert.equal(c.get(`k${i}`), i);
  }
  for (let i = 0; i < 10; i++) c.set(`n${i}`, i); // evicts the ten least recently read
  for (let i = 2990; i < 3000; i++) assert.equal(c.has(`k${i}`), false, `k${i}`);
  assert.equal(c.has("k2989"), true);
  const s = c.stats();
  assert.deepEqual([s.evictions, s.keys, s.hits], [10, 3000, 9000]);
  c.shutdown();
});

test("reads stay right while wasm memory grows under them", () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  c.set("a", "A");
  const grow = new MemoryCache({ maxEntries: 200_000, cleanupInterval: 0 });
  for (let i = 0; i < 200_000; i++) {
    grow.set(`g${i}`, i);
    if (i % 5000 === 0) assert.equal(c.get("a"), "A");
  }
  assert.equal(c.get("a"), "A");
  assert.equal(c.has("a"), true);
  assert.equal(grow.get("g0"), 0);
  grow.shutdown();
  c.shutdown();
});

test("request keys: large, non-ASCII and changing namespaces agree with requestKey", () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const big = { blob: "x".repeat(100_000), list: Array.from({ length: 2000 }, (_, i) => ({ i, s: `é${i}` })) };
  const small = { a: "😀", b: [1.5, null, true] };
  for (const [ns, data] of [["ns", big], ["ns", small], ["other", big], ["other", small], ["ns", big]]) {
    assert.equal(c.key(ns, data), requestKey("v1", ns, data));
  }
  const py = new MemoryCache({ version: "v9", keyFormat: "python", cleanupInterval: 0 });
  assert.equal(py.key("ns", small), requestKey("v9", "ns", small, "python"));
  assert.equal(py.updateVersion("v10"), 0);
  assert.equal(py.key("ns", small), requestKey("v10", "ns", small, "python"), "the new version prefixes keys");
  c.shutdown();
  py.shutdown();
});

test("user code may call back into the cache (sizeOf, toJSON, generator)", () => {
  const c = new MemoryCache({
    cleanupInterval: 0,
    maxBytes: 1000,
    sizeOf: (v) => {
      if (v === "reenter") {
        c.set("inner", "x");
        c.delete("outer");
      }
      return 1;
    },
  });
  c.set("outer", 1);
  c.set("outer", "reenter");
  assert.equal(c.get("outer"), "reenter");
  assert.equal(c.get("inner"), "x");
  const v = c.getOrSet("ns", { q: 1 }, () => {
    c.store("ns", { q: 1 }, "stored meanwhile");
    return "generated";
  });
  assert.equal(v, "generated");
  assert.equal(c.lookup("ns", { q: 1 }), "generated");
  const data = {
    toJSON() {
      c.set("side", 1);
      return { z: 1 };
    },
  };
  assert.equal(c.key("ns", data), requestKey("v1", "ns", { z: 1 }));
  assert.equal(c.get("side"), 1);
  c.shutdown();
});

test("an entry read at or after its expiry is gone, and counted once", async () => {
  const c = new MemoryCache({ ttl: 0.02, cleanupInterval: 0 });
  c.set("a", 1);
  c.set("b", 2);
  c.set("c", 3, { ttl: 60 });
  await sleep(40);
  assert.equal(c.get("a"), undefined);
  assert.equal(c.has("b"), false);
  assert.equal(c.get("c"), 3);
  const s = c.stats();
  assert.deepEqual([s.expirations, s.hits, s.misses, s.keys], [2, 1, 1, 1]);
  c.set("a", "again"); // the key's old slot is gone; a new entry takes a slot
  assert.equal(c.get("a"), "again");
  c.shutdown();
});

test("free() is shutdown(): entries and timer go, operations fail with SHUT_DOWN", () => {
  const c = new MemoryCache({ cleanupInterval: 1 });
  c.set("k", 1);
  c.free();
  assert.throws(() => c.get("k"), (e) => e.code === "SHUT_DOWN");
  assert.equal(c.stats().cleanupTimerActive, false);
  assert.equal(c.size, 0);
  if (typeof Symbol.dispose === "symbol") assert.equal(typeof c[Symbol.dispose], "function");
});
