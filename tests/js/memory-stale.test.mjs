// MemoryCache and generated content: stale values kept for grace (staleWhileRevalidate with one
// background refresh handed to waitUntil, staleIfError), getOrSetEntry's statuses and ages, the
// per-caller signal, the generation's timeout, ctx.ttl() with durations and Infinity, durations
// as strings, and the refusal of bad per-call options. Time is under the test's control through
// Date.now (moved across a microtask, as the clock's reuse bound requires); real time is used
// only for timeouts of a few tens of milliseconds, and no duration is asserted.
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { CacheError, MemoryCache, expectCacheError, sleep, withClock } from "./package.mjs";

const unhandled = [];
process.on("unhandledRejection", (reason) => unhandled.push(reason));
afterEach(async () => {
  await sleep(20);
  assert.deepEqual(unhandled.splice(0).map(String), [], "unhandled rejections");
});


/** A promise with its resolve and reject. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets queued microtasks and a timer turn run (real time; the test's clock stands still). */
const settle = () => sleep(5);

/** An async generator that counts its calls and returns what `next()` says, when `gate` opens. */
function counted(next) {
  const g = {
    calls: 0,
    gate: null,
    ctx: null,
    fn: async (ctx) => {
      g.calls++;
      g.ctx = ctx;
      if (g.gate !== null) await g.gate.promise;
      return next(g.calls, ctx);
    },
  };
  return g;
}

const DATA = { topic: "stale" };

test("within staleWhileRevalidate every caller gets the stale value at once while exactly one refresh runs", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, staleWhileRevalidate: true, cleanupInterval: 0 });
    const g = counted((n) => `v${n}`);
    assert.deepEqual(await c.getOrSetEntry("ns", DATA, g.fn), { value: "v1", status: "miss", key: c.key("ns", DATA), age: 0 });
    await clock.move(11_000);
    g.gate = deferred();
    const first = await Promise.all(Array.from({ length: 20 }, () => c.getOrSetEntry("ns", DATA, g.fn)));
    for (const e of first) assert.deepEqual(e, { value: "v1", status: "stale", key: c.key("ns", DATA), age: 11 });
    await settle();
    assert.equal(g.calls, 2, "one refresh for twenty stale reads");
    assert.equal(g.ctx.stale, "v1", "the refresh sees the stale value");
    // While it runs, later callers are served the stale value too, and start nothing.
    assert.equal(await c.getOrSet("ns", DATA, g.fn), "v1");
    await settle();
    assert.equal(g.calls, 2);
    g.gate.resolve();
    await settle();
    assert.deepEqual(await c.getOrSetEntry("ns", DATA, g.fn), { value: "v2", status: "hit", key: c.key("ns", DATA), age: 0 });
    assert.equal(g.calls, 2);
    c.shutdown();
  });
});

test("a synchronous generator gets the stale value synchronously; its refresh runs afterwards", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, staleWhileRevalidate: "30s", cleanupInterval: 0 });
    let calls = 0;
    const gen = () => `s${++calls}`;
    assert.equal(c.getOrSet("ns", DATA, gen), "s1");
    await clock.move(15_000);
    const e = c.getOrSetEntry("ns", DATA, gen);
    assert.deepEqual(e, { value: "s1", status: "stale", key: c.key("ns", DATA), age: 15 });
    assert.equal(calls, 1, "not called before the caller has its answer");
    await settle();
    assert.equal(calls, 2);
    assert.equal(c.getOrSet("ns", DATA, gen), "s2");
    c.shutdown();
  });
});

test("the background refresh's promise goes to waitUntil (per call, else the cache's), settles when it is stored", async () => {
  await withClock(async (clock) => {
    const handed = [];
    const c = new MemoryCache({ ttl: 10, grace: 60, staleWhileRevalidate: true, cleanupInterval: 0, waitUntil: (p) => handed.push(["cache", p]) });
    const g = counted((n) => `v${n}`);
    await c.getOrSet("ns", DATA, g.fn);
    assert.equal(handed.length, 0, "a miss hands nothing");
    await clock.move(11_000);
    const own = [];
    g.gate = deferred();
    assert.equal(await c.getOrSet("ns", DATA, g.fn, { waitUntil: (p) => own.push(p) }), "v1");
    assert.equal(await c.getOrSet("ns", DATA, g.fn, { waitUntil: (p) => own.push(p) }), "v1");
    assert.equal(own.length, 1, "one refresh, one promise");
    assert.equal(handed.length, 0, "the per-call waitUntil wins");
    assert.ok(own[0] instanceof Promise);
    let done = false;
    own[0].then(() => (done = true));
    await settle();
    assert.equal(done, false, "pending while the generator is");
    g.gate.resolve();
    await own[0];
    assert.equal(c.lookup("ns", DATA), "v2", "stored when its promise settles");
    // The cache's own waitUntil takes the next one.
    await clock.move(11_000);
    g.gate = null;
    assert.equal(await c.getOrSet("ns", DATA, g.fn), "v2");
    assert.equal(handed.length, 1);
    await handed[0][1];
    assert.equal(c.lookup("ns", DATA), "v3");
    c.shutdown();
  });
});

test("a failed background refresh caches nothing, counts in errors, resolves its waitUntil promise, rejects nothing", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, staleWhileRevalidate: true, cleanupInterval: 0 });
    await c.getOrSet("ns", DATA, async () => "good");
    await clock.move(11_000);
    const handed = [];
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error("model down");
    };
    const sync = () => {
      calls++;
      throw new Error("sync failure");
    };
    assert.equal(c.stats().errors, 0);
    assert.equal(await c.getOrSet("ns", DATA, failing, { waitUntil: (p) => handed.push(p) }), "good");
    assert.equal(await handed[0], undefined, "resolves, never rejects");
    assert.equal(calls, 1);
    assert.equal(c.stats().errors, 1);
    // Nothing cached: the stale value stays, and the next stale read refreshes again.
    assert.equal(c.getOrSet("ns", DATA, sync, { waitUntil: (p) => handed.push(p) }), "good");
    await handed[1];
    assert.equal(calls, 2);
    assert.equal(c.stats().errors, 2);
    assert.equal(c.peek(c.key("ns", DATA)), undefined, "still stale");
    assert.equal(c.size, 1);
    c.shutdown();
  });
});

test("staleIfError: a failing or throwing generator yields the stale value within the window; beyond it the error propagates", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, staleIfError: true, cleanupInterval: 0 });
    await c.getOrSet("ns", DATA, async () => "kept");
    const boom = new Error("model down");
    await clock.move(12_000);
    let seen;
    const e1 = await c.getOrSetEntry("ns", DATA, async (ctx) => {
      seen = ctx.stale;
      throw boom;
    });
    assert.deepEqual(e1, { value: "kept", status: "stale-error", key: c.key("ns", DATA), age: 12 });
    assert.equal(seen, "kept", "the generator was given the stale value");
    const e2 = c.getOrSetEntry("ns", DATA, () => {
      throw boom;
    });
    assert.deepEqual(e2, { value: "kept", status: "stale-error", key: c.key("ns", DATA), age: 12 });
    assert.equal(await c.getOrSet("ns", DATA, async () => Promise.reject(boom)), "kept");
    // A window of its own, shorter than the grace: 25 s past the TTL is beyond 20 s.
    await clock.move(23_000);
    await assert.rejects(
      c.getOrSet("ns", DATA, async () => Promise.reject(boom), { staleIfError: "20s" }),
      (e) => e instanceof CacheError && e.code === "GENERATOR_FAILED" && e.cause === boom,
    );
    assert.equal(await c.getOrSet("ns", DATA, async () => Promise.reject(boom)), "kept", "within the grace");
    // Past the grace the entry is gone: the failure propagates.
    await clock.move(40_000);
    await assert.rejects(c.getOrSet("ns", DATA, async () => Promise.reject(boom)), (e) => e.code === "GENERATOR_FAILED");
    assert.throws(() => c.getOrSet("ns", DATA, () => { throw boom; }), (e) => e.code === "GENERATOR_FAILED" && e.cause === boom);
    assert.equal(c.size, 0);
    c.shutdown();
  });
});

test("staleIfError off, or no stale value: the failure reaches the caller; a joined caller's own window applies", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, cleanupInterval: 0 });
    await c.getOrSet("ns", DATA, async () => "kept");
    await clock.move(11_000);
    const gate = deferred();
    const gen = async () => {
      await gate.promise;
      throw new Error("late failure");
    };
    const plain = c.getOrSetEntry("ns", DATA, gen);
    const tolerant = c.getOrSetEntry("ns", DATA, gen, { staleIfError: true });
    gate.resolve();
    await assert.rejects(plain, (e) => e.code === "GENERATOR_FAILED");
    assert.deepEqual(await tolerant, { value: "kept", status: "stale-error", key: c.key("ns", DATA), age: 11 });
    c.shutdown();
  });
});

test("get, has, peek, lookup, remainingTtl, keys and dump treat a stale entry as absent; size counts it", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, cleanupInterval: 0 });
    c.set("k", "v");
    c.store("ns", DATA, "stored");
    c.set("other", "fresh", { ttl: 100 });
    assert.equal(c.remainingTtl("k"), 10, "the TTL, not the time kept");
    await clock.move(10_000);
    const before = c.stats();
    for (const key of ["k", c.key("ns", DATA)]) {
      assert.equal(c.get(key), undefined);
      assert.equal(c.has(key), false);
      assert.equal(c.peek(key), undefined);
      assert.equal(c.remainingTtl(key), undefined);
    }
    assert.equal(c.lookup("ns", DATA), undefined);
    assert.deepEqual([...c.keys()], ["other"]);
    assert.deepEqual([...c.values()], ["fresh"]);
    assert.deepEqual([...c], [["other", "fresh"]]);
    assert.deepEqual(c.dump(), [{ key: "other", value: "fresh", ttl: 90 }]);
    const after = c.stats();
    assert.equal(after.misses - before.misses, 3, "stale reads are misses");
    assert.equal(after.hits, before.hits);
    assert.equal(c.size, 3, "entries kept for grace count in size");
    assert.equal(after.keys, 3);
    // delete removes a stale entry like any other.
    assert.equal(c.delete("k"), true);
    assert.equal(c.size, 2);
    // Stored again, it is fresh again.
    c.store("ns", DATA, "again");
    assert.equal(c.lookup("ns", DATA), "again");
    // At the end of its grace it leaves.
    await clock.move(60_000);
    assert.equal(c.size, 2, "'again' (kept until 80 s) and 'other' (100 s)");
    await clock.move(10_000);
    assert.equal(c.size, 1);
    c.shutdown();
  });
});

test("a stale entry counts toward maxEntries: the least recently used entry goes first, stale or not", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ maxEntries: 2, ttl: 10, grace: 60, cleanupInterval: 0 });
    c.set("old", 1);
    await clock.move(20_000);
    c.set("new", 2);
    assert.equal(c.size, 2);
    c.set("newer", 3);
    assert.equal(c.size, 2);
    assert.equal(c.getOrSet("ns", { none: 1 }, () => 4), 4);
    assert.deepEqual([...c.keys()].sort(), [c.key("ns", { none: 1 }), "newer"].sort());
    c.shutdown();
  });
});

test("statuses hit, miss, joined, stale, stale-error with their ages (seconds since stored)", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 30, staleWhileRevalidate: 5, staleIfError: 30, cleanupInterval: 0 });
    const key = c.key("ns", DATA);
    const gate = deferred();
    const gen = async () => {
      await gate.promise;
      return "v";
    };
    const starter = c.getOrSetEntry("ns", DATA, gen);
    const joiner = c.getOrSetEntry("ns", DATA, async () => "never called");
    gate.resolve();
    assert.deepEqual(await starter, { value: "v", status: "miss", key, age: 0 });
    assert.deepEqual(await joiner, { value: "v", status: "joined", key, age: 0 });
    await clock.move(4_500);
    assert.deepEqual(await c.getOrSetEntry("ns", DATA, gen), { value: "v", status: "hit", key, age: 4.5 });
    assert.deepEqual(c.getOrSetEntry("ns", DATA, () => "sync"), { value: "v", status: "hit", key, age: 4.5 });
    // 12 s: stale, within staleWhileRevalidate (5 s past the TTL); the refresh fails.
    await clock.move(7_500);
    assert.deepEqual(await c.getOrSetEntry("ns", DATA, async () => Promise.reject(new Error("x"))), { value: "v", status: "stale", key, age: 12 });
    await settle();
    // 20 s: beyond staleWhileRevalidate: the generator runs; it fails: stale-error.
    await clock.move(8_000);
    assert.deepEqual(await c.getOrSetEntry("ns", DATA, async () => Promise.reject(new Error("x"))), { value: "v", status: "stale-error", key, age: 20 });
    // A new value: miss, age 0, then its age grows from its own store time.
    assert.deepEqual(c.getOrSetEntry("ns", DATA, () => "w"), { value: "w", status: "miss", key, age: 0 });
    await clock.move(2_250);
    assert.deepEqual(c.getOrSetEntry("ns", DATA, () => "x"), { value: "w", status: "hit", key, age: 2.25 });
    const s = c.stats();
    assert.equal(s.hits, 3, "hit statuses only");
    assert.equal(s.misses, 5, "miss, joined, stale, stale-error, miss");
    assert.equal(s.hits + s.misses, s.totalRequests);
    c.shutdown();
  });
});

test("age stays exact for every entry once an entry is stored with a TTL of its own, and with ttl Infinity", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 100, maxEntries: 4, cleanupInterval: 0 });
    c.store("ns", { a: 1 }, "default TTL");
    await clock.move(3_000);
    c.store("ns", { b: 1 }, "own TTL", { ttl: 50 });
    await clock.move(1_000);
    c.store("ns", { c: 1 }, "forever", { ttl: Infinity });
    await clock.move(500);
    const age = (data) => c.getOrSetEntry("ns", data, () => "x").age;
    assert.equal(age({ a: 1 }), 4.5);
    assert.equal(age({ b: 1 }), 1.5);
    assert.equal(age({ c: 1 }), 0.5);
    // A cache whose default TTL is Infinity.
    const forever = new MemoryCache({ ttl: Infinity, cleanupInterval: 0 });
    forever.set("k", 1);
    await clock.move(7_000);
    assert.equal(forever.getOrSetEntry("ns", DATA, () => 1).age, 0);
    await clock.move(1_000);
    assert.equal(forever.getOrSetEntry("ns", DATA, () => 2).age, 1);
    assert.equal(forever.remainingTtl("k"), Infinity);
    c.shutdown();
    forever.shutdown();
  });
});

test("abort of one waiter rejects it alone with its reason; the others are served and the value is stored", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const g = counted(() => "value");
  g.gate = deferred();
  const a = new AbortController();
  const b = new AbortController();
  const pa = c.getOrSet("ns", DATA, g.fn, { signal: a.signal });
  const pb = c.getOrSetEntry("ns", DATA, g.fn, { signal: b.signal });
  const pc = c.getOrSet("ns", DATA, g.fn);
  const reason = new Error("user went away");
  a.abort(reason);
  await assert.rejects(pa, (e) => e === reason);
  g.gate.resolve();
  assert.deepEqual(await pb, { value: "value", status: "joined", key: c.key("ns", DATA), age: 0 });
  assert.equal(await pc, "value");
  assert.equal(g.calls, 1);
  assert.equal(g.ctx.signal.aborted, false, "the generation went on");
  assert.equal(c.lookup("ns", DATA), "value");
  assert.equal(getEventListeners(a.signal, "abort").length, 0, "no listener left on the aborted signal");
  assert.equal(getEventListeners(b.signal, "abort").length, 0, "no listener left once settled");
  c.shutdown();
});

test("when every waiter aborts, ctx.signal aborts, the generation is dropped and its late result discarded", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const g = counted(() => "late");
  g.gate = deferred();
  const a = new AbortController();
  const b = new AbortController();
  const pa = c.getOrSetEntry("ns", DATA, g.fn, { signal: a.signal });
  const pb = c.getOrSet("ns", DATA, g.fn, { signal: b.signal });
  await settle();
  a.abort();
  await assert.rejects(pa, (e) => e === a.signal.reason);
  assert.equal(g.ctx.signal.aborted, false, "one waiter is left");
  b.abort("gone too");
  await assert.rejects(pb, (e) => e === "gone too");
  assert.equal(g.ctx.signal.aborted, true);
  const first = g.ctx;
  // A new call starts a new generation (the dropped one left).
  const again = counted(() => "fresh");
  assert.equal(await c.getOrSet("ns", DATA, again.fn), "fresh");
  assert.equal(again.calls, 1);
  g.gate.resolve();
  await settle();
  assert.equal(c.lookup("ns", DATA), "fresh", "the late result was not stored");
  assert.equal(c.stats().sets, 1);
  assert.equal(first.signal.reason, "gone too");
  c.shutdown();
});

test("a waiter without a signal keeps the generation alive when the others abort", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const g = counted(() => "kept");
  g.gate = deferred();
  const a = new AbortController();
  const pa = c.getOrSet("ns", DATA, g.fn, { signal: a.signal });
  const plain = c.getOrSet("ns", DATA, g.fn);
  a.abort();
  await assert.rejects(pa);
  assert.equal(g.ctx.signal.aborted, false);
  g.gate.resolve();
  assert.equal(await plain, "kept");
  assert.equal(c.lookup("ns", DATA), "kept");
  c.shutdown();
});

test("an already aborted signal rejects (or throws) at once with its reason; the generator is not called", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const reason = new Error("aborted before");
  const signal = AbortSignal.abort(reason);
  let calls = 0;
  const p = c.getOrSetEntry("ns", DATA, async () => ++calls, { signal });
  assert.ok(p instanceof Promise);
  await assert.rejects(p, (e) => e === reason);
  assert.throws(() => c.getOrSet("ns", DATA, () => ++calls, { signal }), (e) => e === reason);
  assert.equal(calls, 0);
  assert.equal(c.size, 0);
  c.shutdown();
});

test("timeout: every waiter gets TIMEOUT, ctx.signal aborts with it, the generation leaves, a late result is discarded", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const g = counted(() => "too late");
  g.gate = deferred();
  const waiters = [
    c.getOrSet("ns", DATA, g.fn, { timeout: 0.03 }),
    c.getOrSetEntry("ns", DATA, g.fn),
    c.getOrSet("ns", DATA, g.fn, { signal: new AbortController().signal }),
  ];
  const settled = await Promise.allSettled(waiters);
  for (const s of settled) {
    assert.equal(s.status, "rejected");
    expectCacheError(assert, s.reason, "TIMEOUT");
  }
  assert.equal(g.calls, 1);
  assert.equal(g.ctx.signal.aborted, true);
  assert.equal(g.ctx.signal.reason.code, "TIMEOUT");
  const again = counted(() => "on time");
  assert.equal(await c.getOrSet("ns", DATA, again.fn, { timeout: "30ms" }), "on time");
  assert.equal(again.calls, 1, "a new generation");
  g.gate.resolve();
  await settle();
  assert.equal(c.lookup("ns", DATA), "on time", "the late result is not stored");
  c.shutdown();
});

test("timeout from the constructor (a duration string), and a timeout with a stale value: stale-error", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, staleIfError: true, timeout: "30ms", cleanupInterval: 0 });
    const hang = async () => new Promise(() => {});
    await assert.rejects(c.getOrSet("ns", DATA, hang), (e) => e instanceof CacheError && e.code === "TIMEOUT");
    c.store("ns", DATA, "old");
    await clock.move(11_000);
    assert.deepEqual(await c.getOrSetEntry("ns", DATA, hang), { value: "old", status: "stale-error", key: c.key("ns", DATA), age: 11 });
    // A synchronous generator is not timed.
    assert.equal(c.getOrSet("ns", { sync: 1 }, () => "sync", { timeout: "1ms" }), "sync");
    c.shutdown();
  });
});

test("shutdown releases waiters with SHUT_DOWN whatever their timeout and signal; no TIMEOUT follows", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const g = counted(() => "never");
  g.gate = deferred();
  const p1 = c.getOrSet("ns", DATA, g.fn, { timeout: 0.03, signal: new AbortController().signal });
  const p2 = c.getOrSetEntry("ns", DATA, g.fn, { staleIfError: 60 });
  await settle();
  c.shutdown();
  for (const s of await Promise.allSettled([p1, p2])) assert.equal(s.reason?.code, "SHUT_DOWN");
  assert.equal(g.ctx.signal.reason.code, "SHUT_DOWN");
});

test("skip() hands the value to every waiter and caches nothing; status miss", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  const gate = deferred();
  const gen = async (ctx) => {
    ctx.skip();
    await gate.promise;
    return "partial";
  };
  const p1 = c.getOrSetEntry("ns", DATA, gen);
  const p2 = c.getOrSetEntry("ns", DATA, gen);
  gate.resolve();
  assert.equal((await p1).status, "miss");
  assert.deepEqual(await p2, { value: "partial", status: "joined", key: c.key("ns", DATA), age: 0 });
  assert.deepEqual(c.getOrSetEntry("ns", { s: 1 }, (ctx) => (ctx.skip(), "sync")), { value: "sync", status: "miss", key: c.key("ns", { s: 1 }), age: 0 });
  assert.equal(c.size, 0);
  assert.equal(c.stats().sets, 0);
  c.shutdown();
});

test("ctx.ttl() takes seconds, durations with a unit and Infinity; remainingTtl follows; the grace still applies", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 60, cleanupInterval: 0 });
    const remaining = (data) => c.remainingTtl(c.key("ns", data));
    c.getOrSet("ns", { s: 30 }, (ctx) => (ctx.ttl(30), "v"));
    c.getOrSet("ns", { s: "5m" }, (ctx) => (ctx.ttl("5m"), "v"));
    c.getOrSet("ns", { s: "500ms" }, (ctx) => (ctx.ttl("500ms"), "v"), { ttl: 90 });
    c.getOrSet("ns", { s: "inf" }, (ctx) => (ctx.ttl(Infinity), "v"));
    await c.getOrSet("ns", { a: "1h" }, async (ctx) => (ctx.ttl("1h"), "v"));
    assert.equal(remaining({ s: 30 }), 30);
    assert.equal(remaining({ s: "5m" }), 300);
    assert.equal(remaining({ s: "500ms" }), 0.5);
    assert.equal(remaining({ s: "inf" }), Infinity);
    assert.equal(remaining({ a: "1h" }), 3600);
    // With a grace: fresh for the TTL set, then stale, then gone.
    c.getOrSet("ns", { g: 1 }, (ctx) => (ctx.ttl("2m"), "graced"), { grace: "1m" });
    assert.equal(remaining({ g: 1 }), 120);
    await clock.move(130_000);
    assert.equal(c.lookup("ns", { g: 1 }), undefined);
    assert.equal(c.getOrSetEntry("ns", { g: 1 }, () => "next", { staleWhileRevalidate: "1m" }).status, "stale");
    await settle(); // the refresh, stored with that call's policy: the default TTL
    assert.equal(remaining({ g: 1 }), 60);
    assert.equal(remaining({ s: "inf" }), Infinity);
    c.shutdown();
  });
});

test("ttl Infinity through set, store, getOrSet and load: never expires, remainingTtl Infinity", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 1, cleanupInterval: 0 });
    c.set("a", 1, { ttl: Infinity });
    const k = c.store("ns", DATA, 2, { ttl: Infinity });
    c.getOrSet("ns", { g: 1 }, () => 3, { ttl: Infinity });
    c.load([{ key: "loaded", value: 4, ttl: Infinity }]);
    c.set("short", 5);
    await clock.move(10 * 365 * 24 * 3600 * 1000);
    assert.deepEqual([c.get("a"), c.get(k), c.lookup("ns", { g: 1 }), c.get("loaded"), c.get("short")], [1, 2, 3, 4, undefined]);
    for (const key of ["a", k, "loaded"]) assert.equal(c.remainingTtl(key), Infinity);
    assert.deepEqual(c.dump().map((e) => e.ttl), [null, null, null, null]);
    // Reading such an entry needs no clock reading; a read of another entry does.
    const ticking = Date.now;
    let readings = 0;
    Date.now = () => (readings++, ticking());
    try {
      await null; // the reading of this run is forgotten
      assert.equal(c.get("a"), 1);
      assert.equal(c.get("loaded"), 4);
      assert.equal(readings, 0);
      assert.equal(c.get("short"), undefined);
      assert.equal(readings, 1);
    } finally {
      Date.now = ticking;
    }
    c.shutdown();
  });
});

test("durations as strings, in the constructor and per call", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: "1m", grace: "30s", staleWhileRevalidate: "10s", cleanupInterval: "1h", timeout: "1s" });
    c.set("k", "v");
    assert.equal(c.remainingTtl("k"), 60);
    c.set("ms", "v", { ttl: "500ms" });
    assert.equal(c.remainingTtl("ms"), 0.5);
    c.store("ns", { d: 1 }, "v", { ttl: "2h", grace: "1d" });
    assert.equal(c.remainingTtl(c.key("ns", { d: 1 })), 7200);
    assert.equal(c.getOrSet("ns", DATA, () => "first"), "first");
    await clock.move(65_000);
    assert.equal(c.get("k"), undefined, "stale past 1m");
    assert.equal(c.size, 3, "kept: the grace of 30s ('ms' is gone)");
    assert.equal(c.getOrSetEntry("ns", DATA, () => "refresh").status, "stale", "within the 10s window");
    await settle();
    assert.equal(c.lookup("ns", DATA), "refresh", "stored at 65 s: fresh until 125 s, kept until 155 s");
    // 140 s: beyond staleWhileRevalidate (135 s), within the grace: generated, given the stale value.
    await clock.move(75_000);
    let stale;
    const e = c.getOrSetEntry("ns", DATA, (ctx) => ((stale = ctx.stale), "third"));
    assert.deepEqual([e.value, e.status, stale], ["third", "miss", "refresh"]);
    // Per call: a window of "1m" where the cache's is 10 s.
    c.set("k2", "old", { ttl: "1s", grace: "1m" });
    c.store("ns", { s: 2 }, "old", { ttl: "1s", grace: "1m" });
    await clock.move(30_000);
    assert.equal(c.getOrSetEntry("ns", { s: 2 }, () => "new", { staleWhileRevalidate: "1m" }).status, "stale");
    c.shutdown();
  });
});

test("ttl 0 is refused everywhere with a message naming Infinity", () => {
  const named = (e) => e instanceof CacheError && e.code === "INVALID_OPTIONS" && /Infinity/.test(e.message);
  assert.throws(() => new MemoryCache({ ttl: 0 }), named);
  const c = new MemoryCache({ cleanupInterval: 0 });
  let calls = 0;
  assert.throws(() => c.set("k", 1, { ttl: 0 }), named);
  assert.throws(() => c.store("ns", DATA, 1, { ttl: "0s" }), named);
  assert.throws(() => c.getOrSet("ns", DATA, () => ++calls, { ttl: 0 }), named);
  assert.throws(() => c.getOrSetEntry("ns", DATA, async () => ++calls, { ttl: 0 }), named);
  assert.throws(() => c.load([{ key: "k", value: 1, ttl: 0 }]), named);
  assert.throws(
    () => c.getOrSet("ns", DATA, (ctx) => (++calls, ctx.ttl(0), calls)),
    (e) => e.code === "GENERATOR_FAILED" && named(e.cause),
  );
  assert.equal(calls, 1, "only the generator that called ttl(0) ran");
  assert.equal(c.size, 0);
  c.shutdown();
});

test("bad per-call options are refused with INVALID_OPTIONS before anything runs, the cache unchanged", async () => {
  await withClock(async (clock) => {
    const c = new MemoryCache({ ttl: 10, grace: 60, cleanupInterval: 0 });
    c.set("k", "v");
    c.store("ns", DATA, "stale soon");
    c.set("fresh", "f", { ttl: 100 });
    await clock.move(11_000);
    const snapshot = () => [c.size, JSON.stringify(c.dump()), c.stats().sets];
    const before = snapshot();
    let calls = 0;
    const gen = () => ++calls;
    const agen = async () => ++calls;
    const bad = [
      ["timeout not a duration", { timeout: "soon" }],
      ["negative timeout", { timeout: -1 }],
      ["signal not an AbortSignal", { signal: {} }],
      ["waitUntil not a function", { waitUntil: 5 }],
      ["staleWhileRevalidate as a word", { staleWhileRevalidate: "x" }],
      ["staleIfError negative", { staleIfError: -5 }],
      ["grace negative", { grace: -1 }],
      ["grace without a unit", { grace: "5" }],
      ["ttl without a unit", { ttl: "60" }],
      ["an unknown option", { tiemout: 5 }],
      ["not an object", 5],
    ];
    for (const [label, options] of bad) {
      for (const [name, call] of [
        ["getOrSet", () => c.getOrSet("ns", DATA, gen, options)],
        ["getOrSetEntry", () => c.getOrSetEntry("ns", DATA, gen, options)],
        ["getOrSetEntry (async)", () => c.getOrSetEntry("ns", DATA, agen, options)],
      ]) {
        assert.throws(call, (e) => e instanceof CacheError && e.code === "INVALID_OPTIONS", `${name}: ${label}`);
      }
    }
    // getOrSet's options are not set's.
    for (const options of [{ timeout: 1 }, { staleWhileRevalidate: true }, { signal: new AbortController().signal }, { waitUntil: () => {} }]) {
      assert.throws(() => c.set("k", 1, options), (e) => e.code === "INVALID_OPTIONS" && e.message.includes("unknown option"));
      assert.throws(() => c.store("ns", DATA, 1, options), (e) => e.code === "INVALID_OPTIONS");
    }
    assert.throws(() => c.set("k", 1, { grace: "soon" }), (e) => e.code === "INVALID_OPTIONS" && e.message.includes("grace"));
    assert.equal(calls, 0, "no generator ran");
    assert.deepEqual(snapshot(), before, "the cache is unchanged");
    assert.equal(c.getOrSetEntry("ns", DATA, gen, { staleWhileRevalidate: "1m" }).value, "stale soon", "the stale value too");
    c.shutdown();
  });
});
