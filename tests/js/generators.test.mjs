// MemoryCache.getOrSet generators: the context they are called with (key, signal, skip(),
// ttl()), async generators (a promise, one generation per key however many wait, the value
// stored when it resolves), failures and shutdown.
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { CacheError, MemoryCache, sleep } from "./package.mjs";

const unhandled = [];
process.on("unhandledRejection", (reason) => unhandled.push(reason));
afterEach(async () => {
  await sleep(20);
  assert.deepEqual(unhandled.splice(0).map(String), [], "unhandled rejections");
});

const make = () => new MemoryCache({ cleanupInterval: 0, ttl: 600 });

test("the context: key, an unaborted signal, no stale value; zero-argument generators still work", () => {
  const c = make();
  let seen;
  assert.equal(c.getOrSet("ns", { q: 1 }, (ctx) => ((seen = ctx), "v")), "v");
  assert.equal(seen.key, c.key("ns", { q: 1 }));
  assert.ok(seen.signal instanceof AbortSignal);
  assert.equal(seen.signal.aborted, false);
  assert.equal(seen.stale, undefined);
  assert.equal(c.getOrSet("ns", { q: 2 }, () => "no args"), "no args");
  assert.equal(c.getOrSet("ns", { q: 2 }, () => "again"), "no args", "cached");
  c.shutdown();
});

test("skip() hands the value back without caching it, sync and async", async () => {
  const c = make();
  assert.equal(c.getOrSet("ns", { q: "s" }, (ctx) => (ctx.skip(), "partial")), "partial");
  assert.equal(c.lookup("ns", { q: "s" }), undefined);
  assert.equal(await c.getOrSet("ns", { q: "a" }, async (ctx) => (ctx.skip(), "partial")), "partial");
  assert.equal(c.lookup("ns", { q: "a" }), undefined);
  assert.equal(c.stats().sets, 0);
  assert.equal(c.getOrSet("ns", { q: "s" }, () => "full"), "full", "the next call generates again");
  c.shutdown();
});

test("ttl(seconds) sets the entry's TTL, over the per-call option; a bad one fails the generator", async () => {
  const c = make();
  c.getOrSet("ns", { q: 1 }, (ctx) => (ctx.ttl(30), "v"), { ttl: 90 });
  assert.equal(c.remainingTtl(c.key("ns", { q: 1 })), 30);
  await c.getOrSet("ns", { q: 2 }, async (ctx) => (ctx.ttl(45), "v"));
  // Stored when the promise resolved; read after an await, with a clock a little later.
  const left = c.remainingTtl(c.key("ns", { q: 2 }));
  assert.ok(left > 44.9 && left <= 45, `${left}`);
  c.getOrSet("ns", { q: 3 }, () => "v", { ttl: 90 });
  assert.equal(c.remainingTtl(c.key("ns", { q: 3 })), 90);
  assert.throws(
    () => c.getOrSet("ns", { q: 4 }, (ctx) => (ctx.ttl(0), "v")),
    (e) => e instanceof CacheError && e.code === "GENERATOR_FAILED" && e.cause?.code === "INVALID_OPTIONS",
  );
  assert.equal(c.lookup("ns", { q: 4 }), undefined);
  c.shutdown();
});

test("async: 1,000 concurrent callers of one key make one generator call and share its value", async () => {
  const c = make();
  let calls = 0;
  const value = { generated: true };
  const gen = async () => {
    calls++;
    await sleep(20);
    return value;
  };
  const pending = Array.from({ length: 1_000 }, () => c.getOrSet("ns", { one: 1 }, gen));
  assert.ok(pending.every((p) => p instanceof Promise));
  assert.equal(c.lookup("ns", { one: 1 }), undefined, "nothing stored before it resolves");
  const results = await Promise.all(pending);
  assert.equal(calls, 1);
  assert.ok(results.every((r) => r === value));
  assert.equal(c.lookup("ns", { one: 1 }), value);
  assert.equal(c.stats().sets, 1);
  // A hit with an async generator is a promise of the cached value, without a call.
  const hit = c.getOrSet("ns", { one: 1 }, gen);
  assert.ok(hit instanceof Promise);
  assert.equal(await hit, value);
  assert.equal(calls, 1);
  c.shutdown();
});

test("async: a rejection reaches every waiter as GENERATOR_FAILED with the cause; the next call retries", async () => {
  const c = make();
  let calls = 0;
  const boom = new Error("the model is down");
  const settled = await Promise.allSettled(
    Array.from({ length: 100 }, () =>
      c.getOrSet("ns", { f: 1 }, async () => {
        calls++;
        await sleep(5);
        throw boom;
      }),
    ),
  );
  assert.equal(calls, 1);
  assert.ok(settled.every((s) => s.status === "rejected" && s.reason.code === "GENERATOR_FAILED" && s.reason.cause === boom));
  assert.equal(await c.getOrSet("ns", { f: 1 }, async () => (calls++, "ok")), "ok");
  assert.equal(calls, 2);
  // An async value that cannot be stored rejects with its own code.
  await assert.rejects(c.getOrSet("ns", { f: 2 }, async () => undefined), (e) => e.code === "UNSERIALIZABLE");
  c.shutdown();
});

test("shutdown aborts a running generation's signal and releases its waiters with SHUT_DOWN", async () => {
  const c = make();
  let signal;
  const waiters = Array.from({ length: 10 }, () =>
    c.getOrSet("ns", { hang: 1 }, async (ctx) => {
      signal = ctx.signal;
      return new Promise(() => {});
    }),
  );
  await sleep(5);
  assert.equal(signal.aborted, false);
  c.shutdown();
  const settled = await Promise.allSettled(waiters);
  assert.ok(settled.every((s) => s.status === "rejected" && s.reason.code === "SHUT_DOWN"));
  assert.equal(signal.aborted, true);
  assert.equal(signal.reason.code, "SHUT_DOWN");
});
