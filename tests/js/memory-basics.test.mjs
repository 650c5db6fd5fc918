// What lru-cache users expect of MemoryCache beyond get/set: peek (no recency, no stats),
// remainingTtl, keys/values/entries (live entries, most recently used first), and dump/load
// (plain data with remaining TTLs; a bad dump is refused whole). Time is under the test's control
// through Date.now, moved across microtasks as the clock's reuse bound requires.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CacheError, MemoryCache, withClock } from "./package.mjs";


test("peek returns the value without refreshing recency or counting", async () => {
  const c = new MemoryCache({ maxEntries: 2, cleanupInterval: 0 });
  c.set("a", { n: 1 });
  c.set("b", { n: 2 });
  const before = c.stats();
  assert.deepEqual(c.peek("a"), { n: 1 });
  assert.equal(c.peek("missing"), undefined);
  const after = c.stats();
  assert.deepEqual([after.hits, after.misses], [before.hits, before.misses]);
  // "a" was only peeked: it is still the least recently used, and goes first.
  c.set("c", 3);
  assert.equal(c.has("a"), false);
  assert.equal(c.has("b"), true);
  assert.throws(() => c.peek(5), (e) => e instanceof CacheError && e.code === "INVALID_KEY");
  c.shutdown();
  assert.throws(() => c.peek("b"), (e) => e.code === "SHUT_DOWN");
});

test("remainingTtl: seconds left, undefined when absent or expired", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 60, cleanupInterval: 0 });
    c.set("k", 1);
    c.set("short", 2, { ttl: 2 });
    assert.equal(c.remainingTtl("k"), 60);
    assert.equal(c.remainingTtl("short"), 2);
    assert.equal(c.remainingTtl("missing"), undefined);
    await clock.move(1_500);
    assert.equal(c.remainingTtl("short"), 0.5);
    assert.equal(c.remainingTtl("k"), 58.5);
    await clock.move(500);
    assert.equal(c.remainingTtl("short"), undefined, "expired at its deadline");
    assert.equal(c.peek("short"), undefined);
    c.shutdown();
  });
});

test("keys, values, entries and iteration: live entries, most recently used first", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ cleanupInterval: 0 });
    c.set("a", 1);
    c.set("b", 2, { ttl: 1 });
    c.set("c", 3);
    c.get("a"); // order: a, c, b
    assert.deepEqual([...c.keys()], ["a", "c", "b"]);
    assert.deepEqual([...c.values()], [1, 3, 2]);
    assert.deepEqual([...c.entries()], [["a", 1], ["c", 3], ["b", 2]]);
    assert.deepEqual([...c], [["a", 1], ["c", 3], ["b", 2]]);
    // A snapshot: changing the cache while iterating changes nothing already taken.
    const it = c.keys();
    c.delete("c");
    assert.deepEqual([...it], ["a", "c", "b"]);
    await clock.move(1_000);
    assert.deepEqual([...c.keys()], ["a"], "expired and deleted entries are not listed");
    // Listing refreshes nothing: "a" stays where it was relative to a newer entry.
    c.set("d", 4);
    assert.deepEqual([...c.keys()], ["d", "a"]);
    c.shutdown();
    assert.throws(() => c.keys(), (e) => e.code === "SHUT_DOWN");
  });
});

test("dump and load round trip values, recency and remaining TTLs", async () => {
  await withClock(async (clock) => {
    const src = new MemoryCache({ ttl: 100, cleanupInterval: 0 });
    const obj = { deep: [1, { x: "y" }] };
    src.set("a", obj);
    src.set("b", "text", { ttl: 10 });
    src.set("c", 3);
    src.get("a"); // order: a, c, b
    await clock.move(4_000);
    const dump = src.dump();
    assert.deepEqual(dump, [
      { key: "a", value: obj, ttl: 96 },
      { key: "c", value: 3, ttl: 96 },
      { key: "b", value: "text", ttl: 6 },
    ]);
    // Plain data: it survives JSON.
    const copy = JSON.parse(JSON.stringify(dump));
    const dst = new MemoryCache({ maxEntries: 10, cleanupInterval: 0 });
    dst.load(copy);
    assert.deepEqual([...dst.keys()], ["a", "c", "b"]);
    assert.deepEqual(dst.peek("a"), obj);
    assert.equal(dst.remainingTtl("b"), 6);
    assert.equal(dst.stats().sets, 3);
    await clock.move(6_000);
    assert.equal(dst.get("b"), undefined, "the loaded TTL holds");
    assert.equal(dst.get("c"), 3);
    // An entry without a ttl takes the default TTL.
    dst.load([{ key: "plain", value: 1 }]);
    assert.equal(dst.remainingTtl("plain"), 3600);
    // One that never expires dumps as ttl: null, which JSON carries, and loads as such.
    dst.set("forever", 1, { ttl: Infinity });
    const again = JSON.parse(JSON.stringify(dst.dump()));
    assert.deepEqual(again.find((e) => e.key === "forever"), { key: "forever", value: 1, ttl: null });
    const back = new MemoryCache({ cleanupInterval: 0 });
    back.load(again);
    assert.equal(back.remainingTtl("forever"), Infinity);
    back.load([{ key: "inf", value: 2, ttl: Infinity }]);
    assert.equal(back.remainingTtl("inf"), Infinity);
    back.shutdown();
    src.shutdown();
    dst.shutdown();
  });
});

test("load refuses a bad dump whole, leaving the cache unchanged", () => {
  const c = new MemoryCache({ maxBytes: 100, cleanupInterval: 0 });
  c.set("keep", "me");
  const bad = [
    [5, "INVALID_OPTIONS", /not an array/],
    [[null], "INVALID_OPTIONS", /entry 0 is not an object/],
    [[{ key: "a", value: 1 }, { key: "b", value: 2, tll: 5 }], "INVALID_OPTIONS", /entry 1 has an unknown field "tll"/],
    [[{ key: "a", value: 1 }, { key: 7, value: 2 }], "INVALID_KEY", /key/],
    [[{ key: "a", value: 1 }, { key: "b", value: undefined }], "UNSERIALIZABLE", /undefined/],
    [[{ key: "a", value: 1 }, { key: "b", value: 2, ttl: 0 }], "INVALID_OPTIONS", /ttl/],
    [[{ key: "a", value: 1 }, { key: "b", value: "x".repeat(200) }], "VALUE_TOO_LARGE", /./],
    [[{ key: "a", value: 1 }, { key: "k".repeat(40_000), value: 2 }], "INVALID_KEY", /32/],
  ];
  for (const [entries, code, message] of bad) {
    assert.throws(
      () => c.load(entries),
      (e) => e instanceof CacheError && e.code === code && message.test(e.message),
      JSON.stringify(entries).slice(0, 80),
    );
    assert.deepEqual([...c.entries()], [["keep", "me"]]);
  }
  assert.equal(c.stats().sets, 1);
  c.shutdown();
});
