// Every API method of MemoryCache (sync) and Cache (async), through the installed package.
// One set of behaviour tests runs against both classes (`await` of a plain value is that value);
// then each class's own calling convention is checked.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, MemoryCache, requestKey } from "./package.mjs";

const CLASSES = { MemoryCache, Cache };
const DATA = { topic: "Python Programming", level: "beginner", n: 5, tags: ["a", "b"] };

function make(Class, options = {}) {
  return new Class({ cleanupInterval: 0, ...options });
}

/**
 * `MemoryCache` holds the very object stored; `Cache` holds what its codec reads back (JSON by
 * default, in every tier): an equal copy, never the object itself.
 */
function assertHeld(Class, got, stored, message) {
  if (Class === MemoryCache) {
    assert.equal(got, stored, message);
  } else {
    assert.deepEqual(got, JSON.parse(JSON.stringify(stored)), message);
    if (stored !== null && typeof stored === "object") assert.notEqual(got, stored, `${message}: a copy`);
  }
}

for (const [name, Class] of Object.entries(CLASSES)) {
  describe(`${name}: API`, () => {
    test("set/get/has/delete, the value held back, falsy values are hits", async () => {
      const c = make(Class);
      const obj = { nested: { list: [1, 2, 3] } };
      assert.equal(await c.set("obj", obj), undefined);
      assertHeld(Class, await c.get("obj"), obj, "get returns the value held");
      assert.equal(await c.get("obj"), await c.get("obj"), "every get returns one object");
      assert.equal(await c.has("obj"), true);
      for (const [k, v] of [["zero", 0], ["empty", ""], ["false", false], ["null", null]]) {
        await c.set(k, v);
        assert.equal(await c.get(k), v, `value ${JSON.stringify(v)}`);
        assert.equal(await c.has(k), true, `has for value ${JSON.stringify(v)}`);
      }
      assert.equal(await c.get("missing"), undefined);
      assert.equal(await c.has("missing"), false);
      // The empty string is a key like any other (as in Redis).
      await c.set("", "empty key");
      assert.equal(await c.get(""), "empty key");
      // Overwrite.
      await c.set("obj", "second");
      assert.equal(await c.get("obj"), "second");
      assert.equal(await c.delete("obj"), true);
      assert.equal(await c.delete("obj"), false, "second delete of the same key");
      assert.equal(await c.get("obj"), undefined);
      assert.equal(await c.has("obj"), false);
      assert.equal(await c.delete("never"), false);
      assert.equal((await c.stats()).keys, 5);
      c.shutdown();
    });

    test("keys are opaque strings: unicode, glob characters, near-identical keys", async () => {
      const c = make(Class);
      const keys = ["a*", "a?", "a[b]", "a\\b", "é", "😀", "a", "A", "a ", " a", "v1:ns:x"];
      keys.forEach((k, i) => c.set(k, i));
      await Promise.resolve();
      for (const [i, k] of keys.entries()) assert.equal(await c.get(k), i, `key ${JSON.stringify(k)}`);
      assert.equal((await c.stats()).keys, keys.length);
      c.shutdown();
    });

    test("distinct JS strings are distinct keys, lone surrogates included (or refused)", async () => {
      // "\uD800", "\uDBFF" and "\uFFFD" are three different strings; a cache must not hand one's
      // value back for another. Refusing keys that are not well-formed UTF-16 (INVALID_KEY)
      // would be fine too.
      const c = make(Class);
      const keys = ["a\uD800", "a\uDBFF", "a\uFFFD", "a\uDC00b"];
      const stored = [];
      for (const [i, k] of keys.entries()) {
        try {
          await c.set(k, i);
          stored.push([k, i]);
        } catch (e) {
          assert.equal(e.code, "INVALID_KEY", `set(${JSON.stringify(k)}) failed with ${e}`);
        }
      }
      const wrong = [];
      for (const [k, i] of stored) {
        const v = await c.get(k);
        if (v !== i) wrong.push(`get(${JSON.stringify(k)}) gave the value of ${JSON.stringify(keys[v])}`);
      }
      assert.deepEqual(wrong, [], "each key must give back its own value");
      c.shutdown();
    });

    test("key/lookup/store agree with requestKey (jcs by default, python on request)", async () => {
      const c = make(Class);
      const k = c.key("subtopics", DATA);
      assert.equal(k, requestKey("v1", "subtopics", DATA));
      assert.equal(k, requestKey("v1", "subtopics", DATA, "jcs"));
      assert.match(k, /^v1:subtopics:[0-9a-f]{32}$/);
      // Canonical: property order does not matter; values do.
      assert.equal(c.key("subtopics", { n: 5, tags: ["a", "b"], level: "beginner", topic: "Python Programming" }), k);
      assert.notEqual(c.key("subtopics", { ...DATA, n: 6 }), k);
      assert.notEqual(c.key("other", DATA), k);
      const value = { explanation: "..." };
      assert.equal(await c.store("subtopics", DATA, value), k, "store returns the key");
      assertHeld(Class, await c.lookup("subtopics", DATA), value, "lookup");
      assertHeld(Class, await c.get(k), value, "get");
      assert.equal(await c.lookup("subtopics", { ...DATA, n: 6 }), undefined);
      c.shutdown();

      const py = make(Class, { version: "v2.0", keyFormat: "python" });
      const pk = py.key("subtopics", DATA);
      assert.equal(pk, requestKey("v2.0", "subtopics", DATA, "python"));
      assert.notEqual(pk.slice(-32), k.slice(-32), "python and jcs text differ for this data");
      assert.equal(await py.store("subtopics", DATA, 1, { ttl: 60 }), pk);
      assert.equal(await py.get(pk), 1);
      py.shutdown();
    });

    test("getOrSet: miss runs the generator and stores, hit does not run it", async () => {
      const c = make(Class);
      let calls = 0;
      const value = { generated: true };
      const gen = () => {
        calls += 1;
        return value;
      };
      assertHeld(Class, await c.getOrSet("subtopics", DATA, gen), value, "a miss");
      assert.equal(calls, 1);
      assertHeld(Class, await c.get(c.key("subtopics", DATA)), value, "stored under key(namespace, data)");
      assertHeld(Class, await c.getOrSet("subtopics", DATA, gen), value, "a hit");
      assert.equal(calls, 1, "a hit must not run the generator");
      // A cached falsy value is a hit too.
      await c.store("subtopics", { topic: "zero" }, 0);
      assert.equal(await c.getOrSet("subtopics", { topic: "zero" }, gen), 0);
      assert.equal(calls, 1);
      // Per-call options are accepted.
      assert.equal(await c.getOrSet("subtopics", { topic: "ttl" }, () => "t", { ttl: 60 }), "t");
      c.shutdown();
    });

    test("clear removes everything and the cache stays usable", async () => {
      const c = make(Class);
      for (let i = 0; i < 10; i++) await c.set(`k${i}`, i);
      assert.equal((await c.stats()).keys, 10);
      assert.equal(await c.clear(), undefined);
      assert.equal((await c.stats()).keys, 0);
      assert.equal(await c.get("k1"), undefined);
      await c.set("k1", "again");
      assert.equal(await c.get("k1"), "again");
      c.shutdown();
    });

    test("version and updateVersion: old version's keys gone, key() uses the new one", async () => {
      const c = make(Class, { version: "v1.0" });
      assert.equal(c.version, "v1.0");
      const k1 = await c.store("subtopics", DATA, "old");
      await c.store("quiz", DATA, "old quiz");
      await c.set("unrelated", "stays");
      await c.set("v1.0x:subtopics:abc", "prefix look-alike stays");
      await c.set("v2.0:subtopics:pre", "already in v2.0");
      assert.equal(await c.updateVersion("v2.0"), 2, "resolves to how many keys went");
      assert.equal(c.version, "v2.0");
      assert.equal((await c.stats()).version, "v2.0");
      assert.equal(await c.get(k1), undefined);
      assert.equal(await c.lookup("subtopics", DATA), undefined);
      const k2 = c.key("subtopics", DATA);
      assert.equal(k2, requestKey("v2.0", "subtopics", DATA));
      assert.equal(k2.slice(-32), k1.slice(-32));
      assert.equal(await c.store("subtopics", DATA, "new"), k2);
      assert.equal(await c.get("unrelated"), "stays");
      assert.equal(await c.get("v1.0x:subtopics:abc"), "prefix look-alike stays");
      assert.equal(await c.get("v2.0:subtopics:pre"), "already in v2.0");
      c.shutdown();
    });

    test("invalidateNamespace: only the namespace, only the current version, glob escaped", async () => {
      const c = make(Class);
      const star = await c.store("a*", { i: 1 }, "a*");
      const ab = await c.store("ab", { i: 1 }, "ab");
      const ab2 = await c.store("ab", { i: 2 }, "ab2");
      const q = await c.store("a?", { i: 1 }, "a?");
      const cls = await c.store("a[b]", { i: 1 }, "a[b]");
      await c.set("v0:a*:x", "other version");
      await c.set("v1:a*", "no trailing colon");
      assert.equal(await c.invalidateNamespace("a*"), 1);
      assert.equal(await c.has(star), false);
      for (const k of [ab, ab2, q, cls, "v0:a*:x", "v1:a*"]) assert.equal(await c.has(k), true, k);
      assert.equal(await c.invalidateNamespace("a?"), 1);
      assert.equal(await c.invalidateNamespace("a[b]"), 1);
      assert.equal(await c.has(ab), true, "a[b] must not match ab");
      assert.equal(await c.invalidateNamespace("ab"), 2);
      assert.equal(await c.invalidateNamespace("ab"), 0);
      assert.equal((await c.stats()).keys, 2);
      c.shutdown();
    });

    test("invalidateVersion: that version only, glob escaped, current version untouched", async () => {
      const c = make(Class, { version: "v1" });
      await c.set("v0:ns:1", 1);
      await c.set("v0:other:2", 2);
      await c.set("v00:ns:3", 3);
      await c.set("v0", 4);
      const cur = await c.store("ns", DATA, 5);
      await c.set("v*:ns:1", 6);
      assert.equal(await c.invalidateVersion("v0"), 2);
      assert.equal(await c.has("v0:ns:1"), false);
      assert.equal(await c.has("v0:other:2"), false);
      assert.equal(await c.has("v00:ns:3"), true);
      assert.equal(await c.has("v0"), true);
      assert.equal(await c.invalidateVersion("v*"), 1, "v* is a literal version name");
      assert.equal(await c.has(cur), true);
      assert.equal(await c.has("v00:ns:3"), true);
      assert.equal(c.version, "v1");
      assert.equal(await c.invalidateVersion("v1"), 1);
      assert.equal(await c.has(cur), false);
      c.shutdown();
    });

    test("deletePattern: Redis glob, returns how many", async () => {
      const c = make(Class);
      for (const k of ["v1:subtopics:a", "v1:subtopics:b", "v1:subtopicsX:c", "v2:subtopics:d", "hello", "hallo", "hxllo"]) {
        await c.set(k, k);
      }
      assert.equal(await c.deletePattern("v1:subtopics:*"), 2);
      assert.equal(await c.has("v1:subtopicsX:c"), true);
      assert.equal(await c.deletePattern("h[ae]llo"), 2);
      assert.equal(await c.has("hxllo"), true);
      assert.equal(await c.deletePattern("nothing*"), 0);
      assert.equal(await c.deletePattern("*"), 3);
      assert.equal((await c.stats()).keys, 0);
      c.shutdown();
    });

    test("shutdown is idempotent", async () => {
      const c = make(Class, { cleanupInterval: 60 });
      await c.set("k", 1);
      assert.equal(c.shutdown(), undefined);
      assert.equal(c.shutdown(), undefined);
    });
  });
}

describe("MemoryCache: synchronous calling convention", () => {
  test("methods return plain values, size counts live entries", () => {
    const m = make(MemoryCache);
    assert.equal(m.size, 0);
    const obj = {};
    m.set("a", obj);
    assert.equal(m.get("a"), obj);
    assert.equal(m.has("a"), true);
    assert.equal(m.lookup("ns", {}), undefined);
    assert.equal(typeof m.store("ns", {}, 1), "string");
    assert.equal(m.getOrSet("ns", { x: 1 }, () => 2), 2);
    assert.equal(m.size, 3);
    assert.equal(m.deletePattern("v1:*"), 2);
    assert.equal(m.size, 1);
    assert.equal(m.delete("a"), true);
    assert.equal(m.size, 0);
    assert.equal(m.invalidateNamespace("ns"), 0);
    assert.equal(m.invalidateVersion("v0"), 0);
    assert.equal(m.updateVersion("v2"), 0);
    assert.equal(m.clear(), undefined);
    assert.equal(typeof m.stats().hits, "number");
    m.shutdown();
  });

  test("getOrSet with a generator that returns a promise returns a promise and stores on resolve", async () => {
    const m = make(MemoryCache);
    const p = m.getOrSet("ns", { p: 1 }, () => Promise.resolve(1));
    assert.ok(p instanceof Promise);
    assert.equal(m.has(m.key("ns", { p: 1 })), false, "nothing stored before it resolves");
    assert.equal(await p, 1);
    assert.equal(m.get(m.key("ns", { p: 1 })), 1);
    m.shutdown();
  });
});

describe("Cache: asynchronous calling convention", () => {
  test("every data method returns a promise; key and version are synchronous", async () => {
    const c = make(Cache);
    const calls = {
      set: () => c.set("k", 1),
      get: () => c.get("k"),
      has: () => c.has("k"),
      lookup: () => c.lookup("ns", {}),
      store: () => c.store("ns", {}, 1),
      getOrSet: () => c.getOrSet("ns", { g: 1 }, () => 1),
      deletePattern: () => c.deletePattern("x*"),
      invalidateNamespace: () => c.invalidateNamespace("ns"),
      invalidateVersion: () => c.invalidateVersion("v0"),
      updateVersion: () => c.updateVersion("v2"),
      delete: () => c.delete("k"),
      clear: () => c.clear(),
      stats: () => c.stats(),
      health: () => c.health(),
      warm: () => c.warm({ ns: (t) => t }, { topics: ["a"] }),
    };
    for (const [method, call] of Object.entries(calls)) {
      const r = call();
      assert.ok(r instanceof Promise, `${method} did not return a promise`);
      await r;
    }
    assert.equal(typeof c.key("ns", {}), "string");
    assert.equal(c.version, "v2");
    c.shutdown();
  });

  test("getOrSet awaits an async generator and stores the resolved value", async () => {
    const c = make(Cache);
    const v = await c.getOrSet("ns", { a: 1 }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      return { resolved: true };
    });
    assert.deepEqual(v, { resolved: true });
    assert.equal(await c.lookup("ns", { a: 1 }), v);
    c.shutdown();
  });
});
