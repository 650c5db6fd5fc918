// Cache and generated content: statuses and ages (getOrSetEntry), grace with
// stale-while-revalidate and stale-if-error, the generator context (signal, stale, skip, ttl),
// per-call timeouts and aborts, durations, one codec in every tier, onRemove, and the last good
// value behind an unreachable Upstash. Memory-tier scenarios run on a clock the test moves
// (Date.now); Upstash ones against the bridge (a real redis-server behind it).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, CacheError, sleep, withClock } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const bridge = bridgeForTests();
/** A deferred: `{ promise, resolve, reject }`. */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

async function rejects(p, code) {
  const e = await p.then(
    () => assert.fail(`expected ${code}`),
    (e) => e,
  );
  if (code) {
    assert.ok(e instanceof CacheError, `a CacheError, got ${e}`);
    assert.equal(e.code, code, e.message);
  }
  return e;
}

const upstash = (extra = {}) => ({ url: bridge.up.url, token: bridge.up.token, ...extra });

describe("Cache: getOrSetEntry statuses", () => {
  test("miss, hit (with age), joined", async () => {
    await withClock(async (clock) => {
      const c = new Cache({ cleanupInterval: 0 });
      const gate = deferred();
      let calls = 0;
      const gen = async () => (calls++, gate.promise);
      const first = c.getOrSetEntry("ns", { q: 1 }, gen);
      const second = c.getOrSetEntry("ns", { q: 1 }, gen);
      gate.resolve({ answer: 42 });
      const [a, b] = await Promise.all([first, second]);
      assert.equal(calls, 1);
      assert.deepEqual(a, { value: { answer: 42 }, status: "miss", key: c.key("ns", { q: 1 }), age: 0 });
      assert.equal(b.status, "joined");
      assert.equal(b.value, a.value, "joined callers get the very same value");
      clock.t += 2_500;
      const hit = await c.getOrSetEntry("ns", { q: 1 }, gen);
      assert.deepEqual(hit, { value: { answer: 42 }, status: "hit", key: a.key, age: 2.5 });
      assert.equal(calls, 1);
      assert.deepEqual(await c.getOrSet("ns", { q: 1 }, gen), { answer: 42 }, "getOrSet gives the value");
      c.shutdown();
    });
  });

  test("grace with staleWhileRevalidate: the stale value at once, exactly one refresh, handed to waitUntil", async () => {
    await withClock(async (clock) => {
      const handed = [];
      const c = new Cache({ cleanupInterval: 0, ttl: "1m", grace: "10m", waitUntil: (p) => handed.push(p) });
      let calls = 0;
      const refresh = deferred();
      const gen = async (ctx) => {
        calls++;
        return calls === 1 ? "v1" : refresh.promise.then(() => `v2 (was ${ctx.stale})`);
      };
      assert.equal((await c.getOrSetEntry("ns", 1, gen)).status, "miss");
      clock.t += 61_000; // past the TTL, within grace
      assert.equal(await c.get(c.key("ns", 1)), undefined, "a plain read never returns a stale value");
      assert.equal(await c.has(c.key("ns", 1)), false);
      const stale = await Promise.all(
        Array.from({ length: 20 }, () => c.getOrSetEntry("ns", 1, gen, { staleWhileRevalidate: true })),
      );
      for (const e of stale) assert.deepEqual([e.value, e.status, e.age], ["v1", "stale", 61]);
      assert.equal(calls, 2, "exactly one refresh for twenty stale reads");
      assert.equal(handed.length, 1, "the refresh went to waitUntil");
      refresh.resolve();
      assert.equal(await handed[0], undefined, "waitUntil's promise fulfils");
      const after = await c.getOrSetEntry("ns", 1, gen);
      assert.deepEqual([after.value, after.status], ["v2 (was v1)", "hit"]);
      assert.equal(calls, 2);
      c.shutdown();
    });
  });

  test("without staleWhileRevalidate, grace gives the generator ctx.stale and the caller waits", async () => {
    await withClock(async (clock) => {
      const c = new Cache({ cleanupInterval: 0, ttl: 60, grace: 600 });
      await c.getOrSet("ns", 1, () => "old");
      clock.t += 120_000;
      const seen = [];
      const e = await c.getOrSetEntry("ns", 1, (ctx) => (seen.push(ctx.stale), "new"));
      assert.deepEqual([e.value, e.status, seen], ["new", "miss", ["old"]]);
      clock.t += 60_000 + 600_000; // past TTL and grace: gone
      const gone = await c.getOrSetEntry("ns", 1, (ctx) => (seen.push(ctx.stale), "newer"));
      assert.deepEqual([gone.status, seen.at(-1)], ["miss", undefined]);
      c.shutdown();
    });
  });

  test("staleIfError: a failing refresh serves the stale value within the window, else fails", async () => {
    await withClock(async (clock) => {
      const c = new Cache({ cleanupInterval: 0, ttl: 60, grace: "1h" });
      await c.getOrSet("ns", 1, () => "good");
      clock.t += 90_000;
      const boom = new Error("model down");
      const served = await c.getOrSetEntry("ns", 1, async () => { throw boom; }, { staleIfError: true });
      assert.deepEqual([served.value, served.status, served.age], ["good", "stale-error", 90]);
      const failed = await rejects(c.getOrSetEntry("ns", 1, async () => { throw boom; }), "GENERATOR_FAILED");
      assert.equal(failed.cause, boom, "without staleIfError the failure reaches the caller");
      const narrow = await rejects(
        c.getOrSetEntry("ns", 1, async () => { throw boom; }, { staleIfError: "10s" }),
        "GENERATOR_FAILED",
      );
      assert.equal(narrow.cause, boom, "30 s past the TTL is outside a 10 s window");
      c.shutdown();
    });
  });
});

describe("Cache: the generator context and per-call control", () => {
  test("skip() hands the value over without caching it; ttl() sets the entry's TTL", async () => {
    await withClock(async (clock) => {
      const c = new Cache({ cleanupInterval: 0, ttl: 60 });
      const e = await c.getOrSetEntry("ns", 1, (ctx) => (ctx.skip(), "truncated answer"));
      assert.deepEqual([e.value, e.status], ["truncated answer", "miss"]);
      assert.equal(await c.lookup("ns", 1), undefined, "skip() cached nothing");
      await c.getOrSet("ns", 2, (ctx) => (ctx.ttl("5m"), "long"));
      await c.getOrSet("ns", 3, (ctx) => (ctx.ttl(Infinity), "forever"));
      clock.t += 120_000;
      assert.equal(await c.lookup("ns", 2), "long", "ctx.ttl('5m') outlives the 60 s default");
      clock.t += 200_000;
      assert.equal(await c.lookup("ns", 2), undefined);
      clock.t += 100 * 365 * 86_400_000;
      assert.equal(await c.lookup("ns", 3), "forever");
      const bad = await rejects(c.getOrSet("ns", 4, (ctx) => ctx.ttl(0)), "GENERATOR_FAILED");
      assert.equal(bad.cause.code, "INVALID_OPTIONS");
      assert.match(bad.cause.message, /Infinity/);
      c.shutdown();
    });
  });

  test("timeout: waiters get TIMEOUT, the signal aborts, the late result is discarded", async () => {
    const c = new Cache({ cleanupInterval: 0 });
    let signal;
    const late = deferred();
    const gen = (ctx) => ((signal = ctx.signal), late.promise);
    const waiters = [c.getOrSet("ns", 1, gen, { timeout: "30ms" }), c.getOrSet("ns", 1, gen)];
    for (const w of waiters) await rejects(w, "TIMEOUT");
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason.code, "TIMEOUT");
    late.resolve("too late");
    await sleep(10);
    assert.equal(await c.lookup("ns", 1), undefined, "the late result is not cached");
    assert.equal(await c.getOrSet("ns", 1, () => "next"), "next", "the next call generates anew");
    c.shutdown();
  });

  test("signal: one caller's abort rejects only that caller; when all abort, the generation is abandoned", async () => {
    const c = new Cache({ cleanupInterval: 0 });
    let calls = 0;
    let ctxSignal;
    const gate = deferred();
    const gen = (ctx) => (calls++, (ctxSignal = ctx.signal), gate.promise);
    const a = new AbortController();
    const b = new AbortController();
    const pa = c.getOrSet("ns", 1, gen, { signal: a.signal });
    const pb = c.getOrSet("ns", 1, gen, { signal: b.signal });
    const pc = c.getOrSet("ns", 1, gen);
    a.abort(new Error("user left"));
    assert.equal((await pa.catch((e) => e)).message, "user left", "rejects with the signal's reason");
    gate.resolve("answer");
    assert.equal(await pb, "answer");
    assert.equal(await pc, "answer");
    assert.equal(ctxSignal.aborted, false, "others still waited");
    assert.equal(calls, 1);

    const gate2 = deferred();
    const x = new AbortController();
    const y = new AbortController();
    const gen2 = (ctx) => ((ctxSignal = ctx.signal), gate2.promise);
    const px = c.getOrSet("ns", 2, gen2, { signal: x.signal });
    const py = c.getOrSet("ns", 2, gen2, { signal: y.signal });
    x.abort();
    y.abort();
    await px.catch(() => {});
    await py.catch(() => {});
    assert.equal(ctxSignal.aborted, true, "every waiter left: the generator's signal aborts");
    gate2.resolve("late");
    await sleep(5);
    assert.equal(await c.lookup("ns", 2), undefined, "the abandoned result is not cached");

    const done = new AbortController();
    done.abort(new Error("already"));
    let ran = false;
    const e = await c.getOrSet("ns", 3, () => (ran = true), { signal: done.signal }).catch((e) => e);
    assert.equal(e.message, "already");
    assert.equal(ran, false, "an aborted signal runs nothing");
    c.shutdown();
  });

  test("durations with units; ttl: Infinity; ttl: 0 refused naming Infinity; bad options leave the cache unchanged", async () => {
    await withClock(async (clock) => {
      const c = new Cache({ cleanupInterval: "30s", ttl: "1h", grace: "5m", timeout: "2s" });
      await c.set("a", 1, { ttl: "500ms" });
      await c.set("b", 2, { ttl: Infinity });
      clock.t += 600;
      assert.equal(await c.get("a"), undefined);
      clock.t += 3_600_000 * 24 * 365 * 50;
      assert.equal(await c.get("b"), 2);
      for (const bad of [{ ttl: 0 }, { ttl: "0s" }]) {
        const e = await rejects(c.set("b", 3, bad), "INVALID_OPTIONS");
        assert.match(e.message, /Infinity/);
      }
      for (const bad of [{ ttl: "5 m" }, { grace: "1w" }, { timeout: -1 }, { staleIfError: "x" }, { signal: {} }, { waitUntil: 1 }]) {
        await rejects(c.getOrSet("ns", 1, () => "never", bad), "INVALID_OPTIONS");
      }
      assert.equal(await c.get("b"), 2);
      assert.equal(await c.lookup("ns", 1), undefined);
      assert.throws(() => new Cache({ ttl: 0 }), (e) => e.code === "INVALID_OPTIONS" && /Infinity/.test(e.message));
      assert.throws(() => new Cache({ grace: "soon" }), (e) => e.code === "INVALID_OPTIONS" && /grace/.test(e.message));
      c.shutdown();
    });
  });
});

describe("Cache: upstash.timeout", () => {
  test("upstash.timeout takes a duration; timeoutMs stays as its alias in milliseconds; not both", async () => {
    const c = new Cache({ cleanupInterval: 0, fallback: false, upstash: upstash({ timeout: "100ms", retries: 0 }) });
    try {
      await bridge.up.faults({ mode: "delay", ms: 1_000 });
      await rejects(c.get("k"), "TIMEOUT");
    } finally {
      await bridge.up.faults({ mode: "none" });
      c.shutdown();
    }
    new Cache({ upstash: upstash({ timeoutMs: 2_000 }) }).shutdown();
    assert.throws(
      () => new Cache({ upstash: upstash({ timeout: "2s", timeoutMs: 2_000 }) }),
      (e) => e.code === "INVALID_OPTIONS" && /timeoutMs/.test(e.message),
    );
    assert.throws(() => new Cache({ upstash: upstash({ timeout: "11m" }) }), (e) => e.code === "INVALID_OPTIONS");
  });
});

describe("Cache: one codec, onRemove", () => {
  test("a Date reads back as its ISO string from memory and from Upstash; a serializer is used by both", async () => {
    await bridge.up.raw("FLUSHDB");
    const when = new Date("2026-12-06T10:00:00Z");
    const memory = new Cache({ cleanupInterval: 0 });
    const shared = new Cache({ cleanupInterval: 0, upstash: upstash() });
    for (const c of [memory, shared]) {
      await c.set("d", { when });
      assert.deepEqual(await c.get("d"), { when: "2026-12-06T10:00:00.000Z" });
      assert.deepEqual(await c.getOrSet("ns", 1, () => when), "2026-12-06T10:00:00.000Z", "a miss too");
      c.shutdown();
    }
    const serializer = {
      serialize: (v) => `date:${v.toISOString()}`,
      deserialize: (t) => new Date(t.slice(5)),
    };
    const m2 = new Cache({ cleanupInterval: 0, serializer });
    const s2 = new Cache({ cleanupInterval: 0, serializer, upstash: upstash() });
    for (const c of [m2, s2]) {
      await c.set("d2", when);
      const back = await c.get("d2");
      assert.ok(back instanceof Date && back.getTime() === when.getTime());
      c.shutdown();
    }
    assert.equal((await bridge.up.raw("GET", "d2")).result, "date:2026-12-06T10:00:00.000Z", "Redis holds the serializer's text");
  });

  test("text another client wrote that is not JSON reads back as the string it is", async () => {
    await bridge.up.raw("FLUSHDB");
    await bridge.up.raw("SET", "plain", "hello world");
    const c = new Cache({ cleanupInterval: 0, upstash: upstash() });
    assert.equal(await c.get("plain"), "hello world");
    c.shutdown();
  });

  test("onRemove: evicted, expired, deleted, replaced, invalidated, cleared", async () => {
    await withClock(async (clock) => {
      const seen = [];
      const c = new Cache({ cleanupInterval: 0, maxEntries: 2, onRemove: (k, v, cause) => seen.push([k, v, cause]) });
      await c.set("a", 1);
      await c.set("a", 2);
      await c.set("b", 3);
      await c.set("c", 4); // evicts a
      await c.delete("b");
      await c.set("t", 5, { ttl: 1 });
      clock.t += 1_000;
      await c.get("t");
      await c.set("v1:ns:x", 6);
      await c.invalidateNamespace("ns");
      await c.set("z", 7);
      await c.clear();
      const cleared = seen.splice(5).sort();
      assert.deepEqual(seen, [
        ["a", 1, "replaced"],
        ["a", 2, "evicted"],
        ["b", 3, "deleted"],
        ["t", 5, "expired"],
        ["v1:ns:x", 6, "invalidated"],
      ]);
      assert.deepEqual(cleared, [["c", 4, "cleared"], ["z", 7, "cleared"]]);
      c.shutdown();
    });
    const thrower = new Cache({ cleanupInterval: 0, onRemove: () => { throw new Error("listener bug"); } });
    await thrower.set("k", 1);
    await thrower.set("k", 2);
    assert.equal(await thrower.get("k"), 2, "a throwing onRemove leaves the cache consistent");
    assert.equal((await thrower.stats()).errors, 1, "and is counted");
    thrower.shutdown();
  });
});

describe("Cache over Upstash: the last good value", () => {
  test("during an outage a value cached before it is served; past its TTL, within staleIfError, as stale-error", async () => {
    await bridge.up.raw("FLUSHDB");
    const c = new Cache({
      cleanupInterval: 0,
      upstash: upstash({ timeoutMs: 300, retries: 0 }),
      staleIfError: "1h",
    });
    let calls = 0;
    const gen = async () => (calls++, { paid: true });
    assert.equal((await c.getOrSetEntry("llm", "q", gen, { ttl: "300ms" })).status, "miss");
    await c.set("plain", "before", { ttl: 60 });
    try {
      await bridge.up.faults({ mode: "reset" });
      assert.equal(await c.get("plain"), "before", "a plain read of a value cached before the outage");
      const hit = await c.getOrSetEntry("llm", "q", gen, { ttl: "300ms" });
      assert.deepEqual([hit.status, calls], ["hit", 1], "still fresh: served without the generator");
      await sleep(400);
      const stale = await c.getOrSetEntry("llm", "q", gen, { ttl: "300ms" });
      assert.deepEqual([stale.status, stale.value, calls], ["stale-error", { paid: true }, 1], "past its TTL: stale-error, no paid call");
      assert.ok(stale.age >= 0.3);
      assert.equal((await c.health()).status, "degraded");
    } finally {
      await bridge.up.faults({ mode: "none" });
    }
    const back = await c.getOrSetEntry("llm", "q", gen, { ttl: 60 });
    assert.deepEqual([back.status, calls], ["miss", 2], "Upstash answers again: its key expired, one generation");
    c.shutdown();
  });

  test("ttl from ctx.ttl() and Infinity reach Redis (PTTL); age of an Upstash hit follows its remaining TTL", async () => {
    await bridge.up.raw("FLUSHDB");
    const c = new Cache({ cleanupInterval: 0, upstash: upstash() });
    await c.getOrSet("ns", 1, (ctx) => (ctx.ttl("2m"), "x"));
    const pttl = (await bridge.up.raw("PTTL", c.key("ns", 1))).result;
    assert.ok(pttl > 110_000 && pttl <= 120_000, `PTTL ${pttl}`);
    await c.set("forever", 1, { ttl: Infinity });
    assert.equal((await bridge.up.raw("PTTL", "forever")).result, -1);
    await bridge.up.raw("SET", c.key("ns", 2), '"old"', "PX", "50000");
    const e = await c.getOrSetEntry("ns", 2, () => "never", { ttl: 60 });
    assert.equal(e.status, "hit");
    assert.ok(e.age >= 9.9 && e.age <= 10.5, `age ${e.age}: 60 s TTL with 50 s left`);
    c.shutdown();
  });
});
