// The npm package's Cache with the shared tier: against the upstash-bridge in front of a real
// redis-server, with faults injected while a load runs.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Cache, MemoryCache, expectCacheError, rejectsCode, sleep, vectors } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const bridge = bridgeForTests();
after(() => {
  assert.deepEqual(bridge.unhandled, [], "no unhandled rejection");
});

/** A Cache on the bridge: short timeout, one retry, no timer. */
const sharedCache = (extra = {}) =>
  new Cache({
    cleanupInterval: 0,
    ...extra,
    upstash: { url: bridge.up.url, token: bridge.up.token, timeoutMs: 300, retries: 1, ...extra.upstash },
  });

const shared = sharedCache;

function noToken(message) {
  assert.ok(!String(message).includes(bridge.up.token), `the token leaked into: ${message}`);
}

// Every test of this block runs in both invalidation modes.
for (const mode of ["scan", "generation"]) describe(`Cache over Upstash, invalidation: ${mode}`, () => {
  const shared = (extra = {}) => sharedCache({ invalidation: mode, ...extra });

  test("every method against the bridge", async () => {
    await bridge.up.raw("FLUSHDB");
    const c = shared({ version: "v1" });
    assert.equal(await c.get("missing"), undefined);
    await c.set("plain", { a: [1, "two", null], b: true }, { ttl: 60 });
    assert.deepEqual(await c.get("plain"), { a: [1, "two", null], b: true });
    assert.equal(await bridge.up.raw("GET", "plain").then((r) => r.result), '{"a":[1,"two",null],"b":true}', "stored as JSON text");
    const pttl = (await bridge.up.raw("PTTL", "plain")).result;
    assert.ok(pttl > 59_000 && pttl <= 60_000, `PX ttl ${pttl}`);
    assert.equal(await c.has("plain"), true);
    assert.equal(await c.delete("plain"), true);
    assert.equal(await c.has("plain"), false);
    const key = await c.store("subtopics", { topic: "Rust" }, ["ownership", "borrowing"]);
    assert.equal(key, c.key("subtopics", { topic: "Rust" }));
    assert.deepEqual(await c.lookup("subtopics", { topic: "Rust" }), ["ownership", "borrowing"]);
    let calls = 0;
    const gen = async () => (calls++, await sleep(20), "generated");
    const all = await Promise.all(Array.from({ length: 200 }, () => c.getOrSet("quiz", { topic: "Rust" }, gen)));
    assert.equal(calls, 1, "single-flight across 200 callers");
    assert.ok(all.every((v) => v === "generated"));
    assert.equal(await c.getOrSet("quiz", { topic: "Rust" }, gen), "generated");
    assert.equal(calls, 1, "second call is a hit in Upstash");
    await c.set("v1:a*:1", 1);
    await c.set("v1:ab:1", 1);
    assert.equal(await c.invalidateNamespace("a*"), 1, "namespace a* is escaped");
    assert.equal(await c.has("v1:ab:1"), true);
    assert.equal(await c.invalidateNamespace("subtopics"), 1);
    assert.equal(await c.updateVersion("v2"), 2, "quiz + ab went with v1");
    assert.equal(c.version, "v2");
    await c.set("p:1", 1);
    await c.set("p:2", 2);
    assert.equal(await c.deletePattern("p:*"), 2);
    const stats = await c.stats();
    assert.equal(stats.backend, "upstash");
    // Generation mode leaves dead values to their TTL (the Rust key, quiz, a*:1, ab:1) and keeps
    // its counters: v1's, and the generation and deletion counters of subtopics, quiz, a* and ab.
    assert.equal(stats.keys, mode === "scan" ? 0 : 13);
    assert.ok(stats.upstash.usedMemoryBytes > 0 && stats.upstash.keyspaceHits > 0, JSON.stringify(stats.upstash));
    assert.ok(stats.upstash.roundTrips > 10);
    assert.equal(stats.fallbackActive, false);
    assert.deepEqual(await c.health().then((h) => [h.status, h.backend]), ["healthy", "upstash"]);
    c.shutdown();
    await rejectsCode(assert, () => c.get("x"), "SHUT_DOWN");
  });

  test("two instances see one cache", async () => {
    const a = shared();
    const b = shared();
    await a.store("subtopics", { topic: "Go" }, "from a");
    assert.equal(await b.lookup("subtopics", { topic: "Go" }), "from a");
    assert.equal(await b.invalidateNamespace("subtopics"), 1);
    assert.equal(await a.lookup("subtopics", { topic: "Go" }), undefined);
  });

  test("warm checks presence in one request and skips what exists", async () => {
    await bridge.up.raw("FLUSHDB");
    const c = shared({ popularTopics: ["A", "B", "C"] });
    await c.store("subtopics", { topic: "B" }, "");
    if (mode === "generation") {
      const raw = await bridge.up.raw("GET", c.key("subtopics", { topic: "B" }));
      assert.match(raw.result, /^\d{16,}\.\d{16,}\|""$/, "the value carries its generation");
    }
    const before = (await c.stats()).upstash.roundTrips;
    const progress = [];
    const r = await c.warm({ subtopics: async (t) => `about ${t}` }, { onProgress: (p) => progress.push(p.outcome) });
    assert.deepEqual([r.warmed, r.skipped, r.failed], [2, 1, 0]);
    assert.equal(progress.length, 3);
    const trips = (await c.stats()).upstash.roundTrips - before;
    // 1 presence pipeline + 2 SETs + 1 INFO for the stats call itself.
    assert.equal(trips, 4);
    assert.equal(await c.lookup("subtopics", { topic: "A" }), "about A");
  });

  test("fromEnv reads the REST URL and token", async () => {
    // Connection settings other than the URL and token still come from the options.
    const c = Cache.fromEnv(
      { UPSTASH_REDIS_REST_URL: bridge.up.url, UPSTASH_REDIS_REST_TOKEN: bridge.up.token },
      { cleanupInterval: 0, upstash: { timeoutMs: 1000, retries: 0 } },
    );
    await c.set("env", 1);
    assert.equal(await c.get("env"), 1);
    assert.equal((await c.stats()).backend, "upstash");
    try {
      Cache.fromEnv({}, {});
      assert.fail("missing variables must throw");
    } catch (e) {
      expectCacheError(assert, e, "INVALID_OPTIONS");
      assert.match(e.message, /UPSTASH_REDIS_REST_URL/);
    }
  });

  test("deletePattern removes exactly what the memory tier does (glob vectors)", async () => {
    const c = shared();
    const lines = vectors("glob-redis.jsonl");
    for (const v of lines) {
      await bridge.up.raw("FLUSHDB");
      const mem = new MemoryCache({ maxEntries: 1000, cleanupInterval: 0 });
      await bridge.up.raw("MSET", ...v.keys.flatMap((k) => [k, "1"]));
      for (const k of v.keys) mem.set(k, 1);
      const want = mem.deletePattern(v.pattern);
      assert.equal(await c.deletePattern(v.pattern), want, `line ${v.line} pattern ${JSON.stringify(v.pattern)}`);
      for (const k of v.keys) assert.equal((await bridge.up.raw("EXISTS", k)).result === 1, mem.has(k), `line ${v.line} key ${k}`);
    }
    assert.equal(lines.length, 500);
  });
});

describe("faults while a load runs", () => {
  for (const [name, fault] of [
    ["delay past the timeout", { mode: "delay", ms: 1500 }],
    ["HTTP 503", { mode: "status", status: 503 }],
    ["connection reset", { mode: "reset" }],
    ["malformed JSON", { mode: "malformed" }],
    ["401", { mode: "unauthorized" }],
  ]) {
    test(name, async () => {
      await bridge.up.faults({ mode: "none" });
      const c = shared();
      await c.set("warm", "before");
      // A load: a steady stream of reads and writes.
      let running = true;
      const errors = [];
      const load = (async () => {
        for (let i = 0; running; i++) {
          await Promise.all([c.set(`load:${i % 20}`, i), c.get(`load:${(i + 7) % 20}`), c.get("warm")]).catch((e) => errors.push(e));
        }
      })();
      await sleep(50);
      await bridge.up.faults(fault);
      await sleep(400);
      // Reads and writes keep working from memory.
      await c.set("during", { ok: true });
      assert.deepEqual(await c.get("during"), { ok: true });
      const s = await c.stats();
      assert.equal(s.fallbackActive, true, "fallbackActive");
      assert.ok(s.errors > 0);
      const h = await c.health();
      assert.equal(h.status, "degraded");
      noToken(h.error);
      // An invalidation applies to memory and then rejects: it was not done in Upstash.
      const e = await rejectsCode(assert, () => c.deletePattern("during*"), codeFor(fault));
      noToken(e.message);
      assert.equal(await c.get("during"), undefined, "memory applied the invalidation");
      await bridge.up.faults({ mode: "none" });
      await sleep(100);
      running = false;
      await load;
      assert.deepEqual(errors.map(String), [], "no operation of the load failed");
      assert.equal((await c.health()).status, "healthy");
      assert.equal(await c.get("warm"), "before", "back on Upstash");
      assert.equal((await c.stats()).fallbackActive, false);
    });
  }
});

function codeFor(fault) {
  return { delay: "TIMEOUT", status: "UPSTASH_TRANSPORT", reset: "UPSTASH_TRANSPORT", malformed: "UPSTASH_PROTOCOL", unauthorized: "UPSTASH_AUTH" }[fault.mode];
}
