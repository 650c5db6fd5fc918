// Every reachable error code, for both classes: a CacheError (an Error) with the right code and a
// message worth reading; the cache unchanged afterwards; and Cache rejects, never throws.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, CacheError, MemoryCache, requestKey, rejectsCode, throwsCode } from "./package.mjs";

const CLASSES = { MemoryCache, Cache };
const LONG_KEY = "x".repeat(32 * 1024 + 1);
const LONG_UTF8_KEY = "é".repeat(16 * 1024 + 1); // 16385 chars, 32770 bytes of UTF-8

function make(Class, options = {}) {
  return new Class({ cleanupInterval: 0, ...options });
}

/** A data-method call: MemoryCache throws, Cache must reject (and never throw). */
function fails(Class, fn, code) {
  return Class === Cache ? rejectsCode(assert, fn, code) : throwsCode(assert, fn, code);
}

/** What must not change when an operation fails. */
async function snapshot(c, keys) {
  const s = await c.stats();
  const present = {};
  for (const k of keys) present[k] = await c.has(k);
  return {
    keys: s.keys,
    sets: s.sets,
    deletes: s.deletes,
    invalidations: s.invalidations,
    evictions: s.evictions,
    memoryUsedBytes: s.memoryUsedBytes,
    present,
  };
}

for (const [name, Class] of Object.entries(CLASSES)) {
  describe(`${name}: errors`, () => {
    test("INVALID_OPTIONS: constructor options", () => {
      const bad = [
        [{ foo: 1 }, /foo/],
        ...(Class === MemoryCache
          ? [[{ upstash: { url: "https://example.invalid", token: "t0ken" } }, /upstash/i]]
          : [
              [{ upstash: { url: "ftp://example.invalid", token: "t0ken" } }, /upstash\.url/],
              [{ upstash: { url: "https://example.invalid", token: "" } }, /upstash\.token/],
              [{ upstash: { url: "https://example.invalid", token: "t", retries: 99 } }, /retries/],
              [{ localTtl: 5 }, /localTtl/],
            ]),
        [{ ttl: -1 }, /ttl/],
        [{ ttl: 0 }, /ttl/],
        [{ ttl: Number.NaN }, /ttl/],
        [{ ttl: "60" }, /ttl/],
        [{ maxEntries: 0 }, /maxEntries/],
        [{ maxEntries: 1.5 }, /maxEntries/],
        [{ maxBytes: -1 }, /maxBytes/],
        [{ cleanupInterval: -1 }, /cleanupInterval/],
        [{ keyFormat: "xml" }, /keyFormat/],
        [{ version: "a:b" }, /version/],
        [{ version: "" }, /version/],
        [{ sizeOf: 5 }, /sizeOf/],
        [5, /object/],
      ];
      for (const [options, mention] of bad) {
        const e = throwsCode(assert, () => new Class(options), "INVALID_OPTIONS");
        assert.match(e.message, mention, `message for ${JSON.stringify(options)}`);
      }
      // The token is never echoed.
      const e = throwsCode(
        assert,
        () => new Class({ upstash: { url: "not a url", token: "s3cr3t-t0ken" } }),
        "INVALID_OPTIONS",
      );
      assert.doesNotMatch(e.message, /s3cr3t-t0ken/);
    });

    test("INVALID_OPTIONS: per-call options leave the cache unchanged", async () => {
      const c = make(Class);
      await c.set("k", "old");
      const before = await snapshot(c, ["k", "n"]);
      for (const options of [{ ttl: -1 }, { ttl: 0 }, { ttl: "60" }, { tll: 5 }]) {
        await fails(Class, () => c.set("k", "new", options), "INVALID_OPTIONS");
        await fails(Class, () => c.set("n", "new", options), "INVALID_OPTIONS");
        await fails(Class, () => c.store("ns", { a: 1 }, "new", options), "INVALID_OPTIONS");
      }
      assert.deepEqual(await snapshot(c, ["k", "n"]), before);
      assert.equal(await c.get("k"), "old");
      assert.equal(await c.lookup("ns", { a: 1 }), undefined);
      c.shutdown();
    });

    test("INVALID_KEY: raw keys over 32 KiB of UTF-8 (32 KiB itself is fine)", async () => {
      const c = make(Class);
      await c.set("x".repeat(32 * 1024), "edge");
      assert.equal(await c.get("x".repeat(32 * 1024)), "edge");
      const before = await snapshot(c, ["x".repeat(32 * 1024)]);
      for (const key of [LONG_KEY, LONG_UTF8_KEY]) {
        await fails(Class, () => c.set(key, 1), "INVALID_KEY");
        await fails(Class, () => c.get(key), "INVALID_KEY");
        await fails(Class, () => c.has(key), "INVALID_KEY");
        await fails(Class, () => c.delete(key), "INVALID_KEY");
      }
      assert.deepEqual(await snapshot(c, ["x".repeat(32 * 1024)]), before);
      c.shutdown();
    });

    test("INVALID_KEY: namespace or version empty or with ':'", async () => {
      const c = make(Class, { version: "v1" });
      const k = await c.store("ns", { a: 1 }, "v");
      const before = await snapshot(c, [k]);
      for (const ns of ["", "a:b", ":"]) {
        throwsCode(assert, () => c.key(ns, { a: 1 }), "INVALID_KEY");
        throwsCode(assert, () => requestKey("v1", ns, { a: 1 }), "INVALID_KEY");
        throwsCode(assert, () => requestKey(ns, "ns", { a: 1 }), "INVALID_KEY");
        await fails(Class, () => c.lookup(ns, { a: 1 }), "INVALID_KEY");
        await fails(Class, () => c.store(ns, { a: 1 }, 1), "INVALID_KEY");
        await fails(Class, () => c.getOrSet(ns, { a: 1 }, () => 1), "INVALID_KEY");
        await fails(Class, () => c.invalidateNamespace(ns), "INVALID_KEY");
        await fails(Class, () => c.invalidateVersion(ns), "INVALID_KEY");
        await fails(Class, () => c.updateVersion(ns), "INVALID_KEY");
      }
      assert.equal(c.version, "v1", "a refused updateVersion must not switch the version");
      assert.equal(c.key("ns", { a: 1 }), k);
      assert.deepEqual(await snapshot(c, [k]), before);
      c.shutdown();
    });

    test("non-string keys, namespaces and patterns are refused with a CacheError", async () => {
      const c = make(Class);
      await c.set("5", "five");
      const wrong = [];
      for (const bad of [5, null]) {
        for (const [what, fn] of [
          ["get", () => c.get(bad)],
          ["set", () => c.set(bad, 1)],
          ["has", () => c.has(bad)],
          ["delete", () => c.delete(bad)],
          ["deletePattern", () => c.deletePattern(bad)],
          ["lookup", () => c.lookup(bad, {})],
        ]) {
          const call = `${what}(${bad === undefined ? "undefined" : JSON.stringify(bad)})`;
          try {
            await fails(Class, fn, null); // any CacheError code
          } catch (e) {
            wrong.push(`${call}: ${e.message.split("\n")[0]}`);
          }
        }
      }
      assert.deepEqual(wrong, []);
      assert.equal(await c.get("5"), "five");
      c.shutdown();
    });

    test("INVALID_PATTERN: empty or over 32 KiB (malformed globs match as in Redis)", async () => {
      const c = make(Class);
      const keys = ["abc", "abc\\", "[abc", "a", "b", "c", ""];
      for (const k of keys) await c.set(k, k);
      const before = await snapshot(c, keys);
      for (const [pattern, mention] of [
        ["", /empty/],
        ["*".repeat(32 * 1024 + 1), /long|limit|bytes/],
        [42, /string/],
        ["a\uD800*", /surrogate/],
      ]) {
        const e = await fails(Class, () => c.deletePattern(pattern), "INVALID_PATTERN");
        assert.match(e.message, mention, `message for ${JSON.stringify(String(pattern).slice(0, 20))}`);
      }
      assert.deepEqual(await snapshot(c, keys), before);
      // Malformed globs are Redis's business: an unclosed class matches what it holds.
      assert.equal(await c.deletePattern("[abc"), 3);
      assert.equal(await c.deletePattern("abc\\"), 1);
      c.shutdown();
    });

    test("UNSERIALIZABLE: undefined is never a value", async () => {
      const c = make(Class);
      await c.set("k", "old");
      const before = await snapshot(c, ["k", "u"]);
      await fails(Class, () => c.set("k", undefined), "UNSERIALIZABLE");
      await fails(Class, () => c.set("u", undefined), "UNSERIALIZABLE");
      await fails(Class, () => c.store("ns", { a: 1 }, undefined), "UNSERIALIZABLE");
      assert.deepEqual(await snapshot(c, ["k", "u"]), before);
      assert.equal(await c.get("k"), "old");
      c.shutdown();
    });

    test("UNSERIALIZABLE: request data that JSON cannot carry", async () => {
      const c = make(Class);
      const cycle = {};
      cycle.self = cycle;
      for (const data of [undefined, 1n, { n: 1n }, cycle, () => 1, Symbol("s")]) {
        throwsCode(assert, () => c.key("ns", data), "UNSERIALIZABLE");
        throwsCode(assert, () => requestKey("v1", "ns", data), "UNSERIALIZABLE");
        await fails(Class, () => c.store("ns", data, 1), "UNSERIALIZABLE");
      }
      assert.equal((await c.stats()).keys, 0);
      c.shutdown();
    });

    test("UNSERIALIZABLE: with maxBytes (no sizeOf), values JSON cannot carry; old value kept", async () => {
      const c = make(Class, { maxBytes: 10_000 });
      const old = { old: true };
      await c.set("k", old);
      await c.set("other", 1);
      const cycle = { a: [] };
      cycle.a.push(cycle);
      const before = await snapshot(c, ["k", "other", "fresh"]);
      for (const value of [1n, { deep: [1n] }, cycle, () => 1, Symbol("s")]) {
        await fails(Class, () => c.set("k", value), "UNSERIALIZABLE");
        await fails(Class, () => c.set("fresh", value), "UNSERIALIZABLE");
        await fails(Class, () => c.store("ns", { a: 1 }, value), "UNSERIALIZABLE");
      }
      assert.deepEqual(await snapshot(c, ["k", "other", "fresh"]), before);
      assert.deepEqual(await c.get("k"), old);
      c.shutdown();
    });

    if (Class === Cache) {
      test("Cache: every value goes through its codec, maxBytes or not: UNSERIALIZABLE, old value kept", async () => {
        const c = make(Class);
        await c.set("k", { old: true });
        const cycle = { a: [] };
        cycle.a.push(cycle);
        const before = await snapshot(c, ["k", "fresh"]);
        for (const value of [1n, { deep: [1n] }, cycle, () => 1, Symbol("s")]) {
          await fails(Class, () => c.set("k", value), "UNSERIALIZABLE");
          await fails(Class, () => c.set("fresh", value), "UNSERIALIZABLE");
          await fails(Class, () => c.getOrSet("ns", { a: 1 }, () => value), "UNSERIALIZABLE");
        }
        assert.deepEqual(await snapshot(c, ["k", "fresh"]), before);
        assert.equal(await c.lookup("ns", { a: 1 }), undefined, "nothing generated was cached");
        c.shutdown();
      });
    }

    if (Class === MemoryCache) test("MemoryCache: without maxBytes any JS value is held as it is (BigInt, functions, cycles)", async () => {
      const c = make(Class);
      const fn = () => 1;
      const cycle = {};
      cycle.self = cycle;
      await c.set("big", 10n);
      await c.set("fn", fn);
      await c.set("cycle", cycle);
      assert.equal(await c.get("big"), 10n);
      assert.equal(await c.get("fn"), fn);
      assert.equal(await c.get("cycle"), cycle);
      c.shutdown();
    });

    test("VALUE_TOO_LARGE: key length + UTF-8 JSON length over maxBytes; nothing evicted", async () => {
      const c = make(Class, { maxBytes: 100 });
      // "k" (1 byte) + JSON of a 97-char string (99 bytes) = 100: fits exactly.
      await c.set("k", "x".repeat(97));
      assert.equal((await c.stats()).memoryUsedBytes, 100);
      await fails(Class, () => c.set("k", "x".repeat(98)), "VALUE_TOO_LARGE");
      assert.equal(await c.get("k"), "x".repeat(97), "the old value survives a refused set");
      await c.clear();
      await c.set("a", 1);
      await c.set("b", 2);
      const before = await snapshot(c, ["a", "b", "big", "utf8"]);
      const e = await fails(Class, () => c.set("big", "x".repeat(200)), "VALUE_TOO_LARGE");
      assert.match(e.message, /100/, "message names the bound");
      // 49 × "é" is 49 UTF-16 units but 98 bytes of UTF-8: JSON 100 + key 4 > 100.
      await fails(Class, () => c.set("utf8", "é".repeat(49)), "VALUE_TOO_LARGE");
      await fails(Class, () => c.store("ns", { a: 1 }, "x".repeat(200)), "VALUE_TOO_LARGE");
      await fails(Class, () => c.getOrSet("ns", { a: 1 }, () => "x".repeat(200)), "VALUE_TOO_LARGE");
      assert.deepEqual(await snapshot(c, ["a", "b", "big", "utf8"]), before);
      assert.equal((await c.stats()).evictions, 0);
      c.shutdown();
    });

    test("VALUE_TOO_LARGE with sizeOf: key length + sizeOf(value)", async () => {
      const c = make(Class, { maxBytes: 100, sizeOf: (v) => v.size });
      await c.set("k", { size: 99 });
      assert.equal((await c.stats()).memoryUsedBytes, 100);
      await fails(Class, () => c.set("k", { size: 100 }), "VALUE_TOO_LARGE");
      await fails(Class, () => c.set("kk", { size: 99 }), "VALUE_TOO_LARGE");
      assert.deepEqual(await c.get("k"), { size: 99 });
      assert.equal((await c.stats()).keys, 1);
      c.shutdown();
    });

    test("a throwing sizeOf is a CacheError and changes nothing", async () => {
      const boom = new Error("sizeOf boom");
      const c = make(Class, {
        maxBytes: 100,
        sizeOf: (v) => {
          if (v === "bad") throw boom;
          return 1;
        },
      });
      await c.set("k", "old");
      const before = await snapshot(c, ["k"]);
      let err;
      try {
        await c.set("k", "bad");
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof CacheError, `got ${err}`);
      assert.deepEqual(await snapshot(c, ["k"]), before);
      assert.equal(await c.get("k"), "old");
      c.shutdown();
    });

    test("GENERATOR_FAILED: original error as cause, nothing cached, next call runs again", async () => {
      const c = make(Class);
      const boom = new Error("boom");
      const before = await snapshot(c, [c.key("ns", { g: 1 })]);
      const e = await fails(Class, () => c.getOrSet("ns", { g: 1 }, () => { throw boom; }), "GENERATOR_FAILED");
      assert.equal(e.cause, boom);
      assert.match(e.message, /boom/);
      const s = await fails(Class, () => c.getOrSet("ns", { g: 1 }, () => { throw "a string"; }), "GENERATOR_FAILED");
      assert.equal(s.cause, "a string");
      assert.deepEqual(await snapshot(c, [c.key("ns", { g: 1 })]), before);
      assert.equal(await c.getOrSet("ns", { g: 1 }, () => "ok"), "ok");
      c.shutdown();
    });

    async function shutDownFailures(ops, syncOps) {
      const wrong = [];
      for (const [op, fn] of Object.entries(ops)) {
        try {
          await fails(Class, fn, "SHUT_DOWN");
        } catch (e) {
          wrong.push(`${op}: ${e.message.split("\n")[0]}`);
        }
      }
      for (const [op, fn] of Object.entries(syncOps)) {
        try {
          throwsCode(assert, fn, "SHUT_DOWN");
        } catch (e) {
          wrong.push(`${op}: ${e.message.split("\n")[0]}`);
        }
      }
      return wrong;
    }

    test("SHUT_DOWN: every data operation after shutdown (shutdown itself idempotent)", async () => {
      const c = make(Class, { cleanupInterval: 60 });
      await c.set("k", 1);
      assert.equal(c.shutdown(), undefined);
      assert.equal(c.shutdown(), undefined);
      const wrong = await shutDownFailures(
        {
          get: () => c.get("k"),
          set: () => c.set("k", 2),
          has: () => c.has("k"),
          delete: () => c.delete("k"),
          lookup: () => c.lookup("ns", {}),
          store: () => c.store("ns", {}, 1),
          getOrSet: () => c.getOrSet("ns", {}, () => 1),
          deletePattern: () => c.deletePattern("*"),
          invalidateNamespace: () => c.invalidateNamespace("ns"),
          invalidateVersion: () => c.invalidateVersion("v0"),
          updateVersion: () => c.updateVersion("v2"),
          clear: () => c.clear(),
        },
        {},
      );
      assert.deepEqual(wrong, [], "operations that did not fail with SHUT_DOWN after shutdown()");
    });

    test("SHUT_DOWN: key and warm fail too; stats, size and version stay readable", async () => {
      const c = make(Class, { cleanupInterval: 60, version: "v7" });
      await c.set("k", 1);
      c.shutdown();
      const wrong = await shutDownFailures(
        Class === Cache ? { warm: () => c.warm({ ns: (t) => t }, { topics: ["a"] }) } : {},
        { key: () => c.key("ns", {}) },
      );
      assert.deepEqual(wrong, [], "operations that did not fail with SHUT_DOWN after shutdown()");
      const stats = await c.stats();
      assert.equal(stats.keys, 0, "shutdown drops every entry");
      assert.equal(stats.sets, 1, "counters survive for a final report");
      assert.equal(c.version, "v7");
      if (Class === MemoryCache) assert.equal(c.size, 0);
      else assert.equal((await c.health()).status, "unhealthy");
    });
  });
}

describe("errors outside a cache", () => {
  test("requestKey: bad keyFormat is INVALID_OPTIONS", () => {
    const e = throwsCode(assert, () => requestKey("v1", "ns", {}, "xml"), "INVALID_OPTIONS");
    assert.match(e.message, /xml/);
  });

  test("Cache.warm: concurrency outside 1..64 rejects with INVALID_OPTIONS", async () => {
    const c = make(Cache);
    for (const concurrency of [0, 65, 1.5, -1]) {
      await rejectsCode(assert, () => c.warm({ ns: (t) => t }, { topics: ["a"], concurrency }), "INVALID_OPTIONS");
    }
    assert.equal((await c.stats()).keys, 0);
    c.shutdown();
  });

  test("CacheError is the package's class, constructible, an Error", () => {
    const e = new CacheError("TIMEOUT", "took too long", { cause: 1 });
    assert.ok(e instanceof Error);
    assert.equal(e.code, "TIMEOUT");
    assert.equal(e.name, "CacheError");
    assert.equal(e.cause, 1);
  });
});

describe("persist outside browsers", () => {
  test("Node.js refuses persist with INVALID_OPTIONS naming the runtime; persist: false is no persistence", () => {
    for (const persist of [true, { name: "x" }, { maxBytes: 1 }]) {
      const e = throwsCode(assert, () => new Cache({ persist }), "INVALID_OPTIONS");
      assert.match(e.message, /IndexedDB/);
      assert.match(e.message, /Node\.js/);
    }
    const c = new Cache({ persist: false, cleanupInterval: 0 });
    assert.equal(c.version, "v1");
    c.shutdown();
    // MemoryCache has no persistent tier at all.
    throwsCode(assert, () => new MemoryCache({ persist: true }), "INVALID_OPTIONS");
  });
});
