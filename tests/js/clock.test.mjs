// MemoryCache reuses a clock reading (Date.now() costs about as much as a whole read): by at most
// 63 further operations, and never across a microtask (an await, a callback, a timer). These
// tests drive a long synchronous loop across an expiry, with Date.now() under the test's control,
// and pin that bound: README.md, "Expiry".
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryCache } from "./package.mjs";

const REUSES = 63;
const realNow = Date.now;

/** Runs `f` with Date.now() returning `clock.t`. */
async function withClock(f) {
  const clock = { t: realNow() };
  Date.now = () => clock.t;
  try {
    await f(clock);
  } finally {
    Date.now = realNow;
  }
}

test("within one synchronous run, an expired entry is served by at most 63 more operations", async () => {
  await withClock(async (clock) => {
    const mem = new MemoryCache({ cleanupInterval: 0 });
    await null; // a fresh run: the next operation reads the clock
    mem.set("k", "v", { ttl: 1 });
    // Reads before the expiry, then the clock jumps past it, all in one synchronous run.
    for (let i = 0; i < 10; i++) assert.equal(mem.get("k"), "v");
    clock.t += 1_000; // exactly the deadline: expired from now on
    let stale = 0;
    let first = -1;
    for (let i = 0; i < 1_000; i++) {
      if (mem.get("k") === "v") stale++;
      else if (first < 0) first = i;
    }
    assert.ok(stale <= REUSES, `served ${stale} times after expiry`);
    assert.equal(first, stale, "once seen expired, it stays gone");
    assert.equal(mem.get("k"), undefined);
    mem.shutdown();
  });
});

test("the reading never crosses a microtask: after an await, expiry is exact", async () => {
  await withClock(async (clock) => {
    const mem = new MemoryCache({ cleanupInterval: 0 });
    await null;
    mem.set("a", 1, { ttl: 1 });
    assert.equal(mem.get("a"), 1);
    clock.t += 1_000;
    await null;
    assert.equal(mem.get("a"), undefined, "expired at its deadline on the first read of a new run");
    // The same across caches, and for has() and lookup().
    const other = new MemoryCache({ cleanupInterval: 0 });
    await null;
    mem.set("b", 2, { ttl: 0.5 });
    other.store("ns", { q: 1 }, 3, { ttl: 0.5 });
    assert.equal(mem.has("b"), true);
    assert.equal(other.lookup("ns", { q: 1 }), 3);
    clock.t += 500;
    await Promise.resolve();
    assert.equal(mem.has("b"), false);
    assert.equal(other.lookup("ns", { q: 1 }), undefined);
    mem.shutdown();
    other.shutdown();
  });
});

test("what a generator produces is stored with a reading taken after it ran", async () => {
  await withClock(async (clock) => {
    const mem = new MemoryCache({ cleanupInterval: 0 });
    await null;
    assert.equal(mem.get("warm-up"), undefined); // this run's reading is taken here
    const v = mem.getOrSet("ns", { slow: true }, () => {
      clock.t += 5_000; // a generator that takes 5 s
      return "answer";
    }, { ttl: 10 });
    assert.equal(v, "answer");
    clock.t += 9_000; // 14 s after the run began, 9 s after the value was produced
    await null;
    assert.equal(mem.lookup("ns", { slow: true }), "answer", "the TTL runs from when the value was stored");
    clock.t += 1_000;
    await null;
    assert.equal(mem.lookup("ns", { slow: true }), undefined);
    mem.shutdown();
  });
});
