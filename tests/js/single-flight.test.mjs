// Cache.getOrSet single-flight: one generator call per key however many callers wait on it;
// a failure reaches every waiter, nothing is cached, and nothing is left unhandled.
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, CacheError, MemoryCache, sleep } from "./package.mjs";

const unhandled = [];
const onUnhandled = (reason) => unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);

beforeEach(() => {
  unhandled.length = 0;
});
afterEach(async () => {
  // Give a stray rejection time to be reported (it is reported after the microtask queue drains).
  await sleep(20);
  assert.deepEqual(unhandled.map(String), [], "unhandled rejections");
});

const N = 1000;

test(`${N} concurrent getOrSet calls for one key run the generator once`, async () => {
  const c = new Cache({ cleanupInterval: 0 });
  let calls = 0;
  const value = { generated: true };
  const gen = async () => {
    calls += 1;
    await sleep(20);
    return value;
  };
  const results = await Promise.all(Array.from({ length: N }, () => c.getOrSet("ns", { topic: "x" }, gen)));
  assert.equal(calls, 1);
  assert.equal(results.length, N);
  assert.ok(results.every((r) => r === results[0]), "every caller gets the very same value");
  assert.deepEqual(results[0], value, "what the tiers return: the generated value through JSON");
  assert.notEqual(results[0], value, "a copy: changing the generator's object changes nothing cached");
  assert.deepEqual(await c.lookup("ns", { topic: "x" }), value);
  const s = await c.stats();
  assert.equal(s.sets, 1, "stored once");
  assert.equal(s.keys, 1);
  // Later: a plain hit.
  assert.deepEqual(await c.getOrSet("ns", { topic: "x" }, gen), value);
  assert.equal(calls, 1);
  c.shutdown();
});

test("a synchronous generator is single-flight too", async () => {
  const c = new Cache({ cleanupInterval: 0 });
  let calls = 0;
  const results = await Promise.all(
    Array.from({ length: 100 }, () => c.getOrSet("ns", { topic: "sync" }, () => ++calls)),
  );
  assert.equal(calls, 1);
  assert.ok(results.every((r) => r === 1));
  c.shutdown();
});

test("different keys do not share a flight", async () => {
  const c = new Cache({ cleanupInterval: 0 });
  const calls = new Map();
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => {
      const topic = `t${i % 4}`;
      return c.getOrSet("ns", { topic }, async () => {
        calls.set(topic, (calls.get(topic) ?? 0) + 1);
        await sleep(5);
        return topic;
      });
    }),
  );
  assert.deepEqual([...calls.entries()].sort(), [["t0", 1], ["t1", 1], ["t2", 1], ["t3", 1]]);
  results.forEach((r, i) => assert.equal(r, `t${i % 4}`));
  c.shutdown();
});

test(`a rejecting generator: all ${N} waiters get GENERATOR_FAILED, nothing cached, retried later`, async () => {
  const c = new Cache({ cleanupInterval: 0 });
  const boom = new Error("generator exploded");
  let calls = 0;
  const failing = async () => {
    calls += 1;
    await sleep(20);
    throw boom;
  };
  const settled = await Promise.allSettled(
    Array.from({ length: N }, () => c.getOrSet("ns", { topic: "bad" }, failing)),
  );
  assert.equal(calls, 1);
  const wrong = settled.filter(
    (s) =>
      !(
        s.status === "rejected" &&
        s.reason instanceof CacheError &&
        s.reason instanceof Error &&
        s.reason.code === "GENERATOR_FAILED" &&
        s.reason.cause === boom
      ),
  );
  assert.equal(wrong.length, 0, `${wrong.length} waiters did not get GENERATOR_FAILED with the cause: ${String(wrong[0]?.reason ?? wrong[0]?.value)}`);
  assert.match(settled[0].reason.message, /generator exploded/);
  assert.equal(await c.has(c.key("ns", { topic: "bad" })), false);
  let s = await c.stats();
  assert.equal(s.keys, 0);
  assert.equal(s.sets, 0);
  // The failure is not cached: the next call runs the generator again.
  assert.equal(await c.getOrSet("ns", { topic: "bad" }, async () => (calls += 1, "recovered")), "recovered");
  assert.equal(calls, 2);
  assert.equal(await c.lookup("ns", { topic: "bad" }), "recovered");
  s = await c.stats();
  assert.equal(s.sets, 1);
  c.shutdown();
});

test("a generator that throws synchronously rejects every waiter (no synchronous throw)", async () => {
  const c = new Cache({ cleanupInterval: 0 });
  const boom = new TypeError("sync boom");
  let calls = 0;
  const promises = [];
  for (let i = 0; i < 50; i++) {
    assert.doesNotThrow(() => {
      promises.push(
        c.getOrSet("ns", { topic: "sync-bad" }, () => {
          calls += 1;
          throw boom;
        }),
      );
    });
  }
  const settled = await Promise.allSettled(promises);
  assert.equal(calls, 1);
  assert.ok(settled.every((s) => s.status === "rejected" && s.reason.code === "GENERATOR_FAILED" && s.reason.cause === boom));
  assert.equal((await c.stats()).keys, 0);
  c.shutdown();
});

test("a value that cannot be stored (too large) reaches every waiter as that error", async () => {
  const c = new Cache({ cleanupInterval: 0, maxBytes: 50 });
  let calls = 0;
  const settled = await Promise.allSettled(
    Array.from({ length: 100 }, () =>
      c.getOrSet("ns", { topic: "big" }, async () => {
        calls += 1;
        await sleep(5);
        return "x".repeat(100);
      }),
    ),
  );
  assert.equal(calls, 1);
  assert.ok(settled.every((s) => s.status === "rejected" && s.reason instanceof CacheError && s.reason.code === "VALUE_TOO_LARGE"));
  assert.equal((await c.stats()).keys, 0);
  c.shutdown();
});

test("a waiter that joins late, and one that arrives after the flight, both behave", async () => {
  const c = new Cache({ cleanupInterval: 0 });
  let calls = 0;
  const gen = async () => {
    calls += 1;
    await sleep(30);
    return calls;
  };
  const first = c.getOrSet("ns", { topic: "late" }, gen);
  await sleep(10);
  const second = c.getOrSet("ns", { topic: "late" }, gen); // joins the running flight
  assert.deepEqual(await Promise.all([first, second]), [1, 1]);
  assert.equal(await c.getOrSet("ns", { topic: "late" }, gen), 1); // a hit now
  assert.equal(calls, 1);
  c.shutdown();
});

test("a flight still running at shutdown settles, and leaves nothing unhandled", async () => {
  const c = new Cache({ cleanupInterval: 0 });
  const p = c.getOrSet("ns", { topic: "shutdown" }, async () => {
    await sleep(20);
    return 1;
  });
  c.shutdown();
  const r = await Promise.allSettled([p]);
  assert.equal(r.length, 1);
  if (r[0].status === "rejected") assert.equal(r[0].reason.code, "SHUT_DOWN");
});

test("MemoryCache.getOrSet: a rejected generator promise reaches the caller as GENERATOR_FAILED, nothing unhandled", async () => {
  const m = new MemoryCache({ cleanupInterval: 0 });
  const boom = new Error("the model is down");
  await assert.rejects(
    m.getOrSet("ns", { topic: "promise" }, () => Promise.reject(boom)),
    (e) => e instanceof CacheError && e.code === "GENERATOR_FAILED" && e.cause === boom,
  );
  assert.equal(m.size, 0);
  m.shutdown();
});
