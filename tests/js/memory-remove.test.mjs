// MemoryCache's onRemove(key, value, cause): every cause on every path that removes an entry
// (delete, the pattern removals, clear, stores over a live key, LRU eviction, expiry met by a read,
// by a store, by sweeping, by the cleanup timer, and the end of a grace), called once per entry,
// after the operation is complete; a throwing or re-entrant onRemove; shutdown without notices.
// Time is under the test's control through Date.now, except for the cleanup timer's test, which
// waits in real time for a sweep (without asserting how long it took).
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryCache, sleep, withClock } from "./package.mjs";

const unhandled = [];
process.on("unhandledRejection", (reason) => unhandled.push(reason));
afterEach(async () => {
  await sleep(10);
  assert.deepEqual(unhandled.splice(0).map(String), [], "unhandled rejections");
});


/** A cache whose onRemove notices are collected in `cache.log` as `[key, value, cause]`. */
function logged(options = {}) {
  const log = [];
  const cache = new MemoryCache({ cleanupInterval: 0, ...options, onRemove: (k, v, cause) => log.push([k, v, cause]) });
  return { cache, log, take: () => log.splice(0) };
}

test("delete: 'deleted' with the value; nothing for a missing key", () => {
  const { cache: c, take } = logged();
  c.set("a", { n: 1 });
  assert.equal(c.delete("a"), true);
  assert.deepEqual(take(), [["a", { n: 1 }, "deleted"]]);
  assert.equal(c.delete("a"), false);
  assert.equal(c.delete("never"), false);
  assert.deepEqual(take(), []);
  c.shutdown();
});

test("deletePattern, invalidateNamespace, invalidateVersion, updateVersion: 'invalidated' for each entry", () => {
  const { cache: c, take } = logged({ version: "v1" });
  c.set("v1:x:1", "x1");
  c.set("v1:y:1", "y1");
  const k = c.store("subtopics", { t: 1 }, "s1");
  c.set("v0:old:1", "old");
  assert.equal(c.deletePattern("v1:x:*"), 1);
  assert.deepEqual(take(), [["v1:x:1", "x1", "invalidated"]]);
  assert.equal(c.invalidateNamespace("subtopics"), 1);
  assert.deepEqual(take(), [[k, "s1", "invalidated"]]);
  assert.equal(c.invalidateVersion("v0"), 1);
  assert.deepEqual(take(), [["v0:old:1", "old", "invalidated"]]);
  assert.equal(c.updateVersion("v2"), 1);
  assert.deepEqual(take(), [["v1:y:1", "y1", "invalidated"]]);
  assert.equal(c.deletePattern("*"), 0);
  assert.deepEqual(take(), []);
  c.shutdown();
});

test("clear: 'cleared' for every entry held", () => {
  const { cache: c, take } = logged();
  c.set("a", 1);
  c.set("b", 2);
  c.clear();
  assert.deepEqual(take().sort(), [["a", 1, "cleared"], ["b", 2, "cleared"]]);
  assert.equal(c.size, 0);
  c.clear();
  assert.deepEqual(take(), []);
  c.shutdown();
});

test("a store over a live key: 'replaced' with the old value, by set, store, load and getOrSet", async () => {
  const { cache: c, take } = logged();
  c.set("k", "old");
  c.set("k", "new");
  assert.deepEqual(take(), [["k", "old", "replaced"]]);
  const key = c.store("ns", { a: 1 }, 1);
  c.store("ns", { a: 1 }, 2);
  assert.deepEqual(take(), [[key, 1, "replaced"]]);
  c.load([{ key: "k", value: "loaded" }]);
  assert.deepEqual(take(), [["k", "new", "replaced"]]);
  // An async generation that resolves after a set of its key stores over it.
  let release;
  const pending = c.getOrSet("ns", { g: 1 }, async () => {
    await new Promise((r) => (release = r));
    return "generated";
  });
  await null;
  c.set(c.key("ns", { g: 1 }), "set meanwhile");
  release();
  assert.equal(await pending, "generated");
  assert.deepEqual(take(), [[c.key("ns", { g: 1 }), "set meanwhile", "replaced"]]);
  // A synchronous generator never stores over a live key (a hit does not call it): nothing.
  c.getOrSet("ns", { g: 1 }, () => "not called");
  assert.deepEqual(take(), []);
  c.shutdown();
});

test("LRU eviction: 'evicted', by set, store, getOrSet and load; a replacement is reported before its evictions", () => {
  const { cache: c, take } = logged({ maxEntries: 2, maxBytes: 100, sizeOf: (v) => v.length });
  c.set("a", "1");
  c.set("b", "2");
  c.set("c", "3");
  assert.deepEqual(take(), [["a", "1", "evicted"]]);
  const s = c.store("ns", { s: 1 }, "4");
  assert.deepEqual(take(), [["b", "2", "evicted"]]);
  const g = c.key("ns", { g: 1 });
  c.getOrSet("ns", { g: 1 }, () => "5");
  assert.deepEqual(take(), [["c", "3", "evicted"]]);
  c.load([{ key: "l", value: "6" }]);
  assert.deepEqual(take(), [[s, "4", "evicted"]]);
  // Replacing "l" with a heavy value evicts g by bytes: replaced first, then evicted.
  c.set("l", "x".repeat(90));
  assert.deepEqual(take(), [["l", "6", "replaced"], [g, "5", "evicted"]]);
  c.shutdown();
});

test("expiry: 'expired' when a read, a store, a sweep or a listing meets an expired entry, once each", async () => {
  await withClock(async (clock) => {
    const { cache: c, log, take } = logged({ ttl: 10 });
    c.set("read", 1);
    c.set("stored", 2);
    c.set("swept", 3);
    c.set("listed", 4);
    await clock.move(10_000);
    // Every operation also sweeps a few expired entries, so which one reports which is not fixed;
    // each is reported once, as expired, by the end of the operation that removed it.
    assert.equal(c.get("read"), undefined);
    assert.ok(log.some(([k, , cause]) => k === "read" && cause === "expired"), JSON.stringify(log));
    c.set("stored", "again");
    assert.ok(log.some(([k]) => k === "stored"), "an expired entry stored over is reported (as expired)");
    assert.equal(c.has("swept"), false);
    assert.deepEqual([...c.keys()], ["stored"]);
    assert.deepEqual(take().sort(), [
      ["listed", 4, "expired"],
      ["read", 1, "expired"],
      ["stored", 2, "expired"],
      ["swept", 3, "expired"],
    ]);
    c.set("a", 5, { ttl: 1 });
    c.set("b", 6, { ttl: 1 });
    await clock.move(1_000);
    assert.equal(c.size, 1);
    assert.deepEqual(take().sort(), [["a", 5, "expired"], ["b", 6, "expired"]]);
    c.shutdown();
  });
});

test("an entry kept for grace: 'replaced' when refreshed, 'expired' when its grace ends", async () => {
  await withClock(async (clock) => {
    const { cache: c, take } = logged({ ttl: 10, grace: 20, staleWhileRevalidate: true });
    c.getOrSet("ns", { r: 1 }, () => "first");
    c.set("left", "alone");
    await clock.move(15_000);
    assert.equal(c.getOrSet("ns", { r: 1 }, () => "second"), "first", "stale, served at once");
    assert.deepEqual(take(), []);
    await sleep(5); // the refresh
    assert.deepEqual(take(), [[c.key("ns", { r: 1 }), "first", "replaced"]]);
    assert.equal(c.get("left"), undefined, "stale: absent, and still held");
    assert.deepEqual(take(), []);
    await clock.move(15_000);
    assert.equal(c.size, 1);
    assert.deepEqual(take(), [["left", "alone", "expired"]]);
    c.shutdown();
  });
});

test("the cleanup timer's sweep: 'expired'", async () => {
  const { cache: c, log } = logged({ ttl: 0.02, cleanupInterval: 0.03 });
  c.set("t1", "one");
  c.set("t2", "two");
  for (let i = 0; i < 200 && log.length < 2; i++) await sleep(10);
  assert.deepEqual(log.sort(), [["t1", "one", "expired"], ["t2", "two", "expired"]]);
  assert.equal(c.stats().keys, 0);
  c.shutdown();
});

test("onRemove is called after the operation is complete: the cache is consistent inside it", () => {
  const seen = [];
  const c = new MemoryCache({
    maxEntries: 2,
    cleanupInterval: 0,
    onRemove: (key, value, cause) => {
      seen.push({ key, cause, has: c.has(key), size: c.size, newest: c.peek("c") });
    },
  });
  c.set("a", 1);
  c.set("b", 2);
  c.set("c", 3);
  assert.deepEqual(seen, [{ key: "a", cause: "evicted", has: false, size: 2, newest: 3 }]);
  c.shutdown();
});

test("a re-entrant onRemove: what it removes is reported in the same round", () => {
  const log = [];
  const c = new MemoryCache({
    maxEntries: 10,
    cleanupInterval: 0,
    onRemove: (key, value, cause) => {
      log.push([key, cause]);
      if (key === "a") c.delete("b");
    },
  });
  c.set("a", 1);
  c.set("b", 2);
  c.delete("a");
  assert.deepEqual(log, [["a", "deleted"], ["b", "deleted"]]);
  assert.equal(c.size, 0);
  c.shutdown();
});

test("a throwing onRemove: the operation completes, later notices are still made, errors are counted", async () => {
  let calls = 0;
  const c = new MemoryCache({
    maxEntries: 2,
    cleanupInterval: 0,
    onRemove: () => {
      calls++;
      throw new Error("listener bug");
    },
  });
  c.set("a", 1);
  c.set("b", 2);
  c.set("b", 3); // replaced: throws
  c.set("c", 4); // evicts a: throws
  assert.equal(calls, 2);
  assert.equal(c.get("b"), 3);
  assert.equal(c.get("c"), 4);
  assert.equal(c.has("a"), false);
  assert.equal(c.size, 2);
  c.clear(); // two notices, both throw, both made
  assert.equal(calls, 4);
  assert.equal(c.size, 0);
  c.set("d", 5);
  assert.equal(c.get("d"), 5);
  assert.equal(c.stats().errors, 4);
  // Through an async generation too: its caller gets the value.
  c.set("e", 6);
  c.set(c.key("ns", {}), "live");
  c.delete(c.key("ns", {}));
  assert.equal(await c.getOrSet("ns", {}, async () => "g"), "g");
  assert.equal(c.stats().errors, 6);
  c.shutdown();
});

test("not called when unset; each cache reports only its own removals; shutdown reports nothing", async () => {
  const { cache: withListener, take } = logged({ maxEntries: 1 });
  const without = new MemoryCache({ maxEntries: 1, cleanupInterval: 0 });
  for (const c of [withListener, without]) {
    c.set("a", 1);
    c.set("a", 2);
    c.set("b", 3);
    c.delete("b");
    c.set("x", 4);
    c.clear();
  }
  assert.deepEqual(take(), [
    ["a", 1, "replaced"],
    ["a", 2, "evicted"],
    ["b", 3, "deleted"],
    ["x", 4, "cleared"],
  ]);
  assert.equal(without.stats().errors, 0);
  withListener.set("kept", 1);
  withListener.shutdown();
  without.shutdown();
  assert.deepEqual(take(), []);
});
