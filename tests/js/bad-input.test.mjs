// The bad-input sweep: every public method of MemoryCache, Cache and requestKey, each argument in
// turn replaced by each bad value of its kind from the catalogue (tests/js/bad-input.mjs), on a
// cache holding entries. Each call must fail with the catalogue's CacheError code (thrown by
// MemoryCache and by Cache.key, a rejection from every other Cache method, which never throws),
// and the cache must be unchanged afterwards: a full snapshot (every entry's presence and value,
// size, version and every counter) is compared before and after. Then every method after
// shutdown(), free() and Symbol.dispose must fail with SHUT_DOWN.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, CacheError, MemoryCache, requestKey } from "./package.mjs";
import {
  BAD,
  BAD_GENERATORS,
  BAD_KEY_FORMATS,
  BAD_OPTIONS,
  MAX_BYTES,
  METHODS,
  REQUEST_KEY,
  VALID,
  show,
} from "./bad-input.mjs";

const CLASSES = { MemoryCache, Cache };
const COUNTERS = [
  "keys", "hits", "misses", "sets", "deletes", "invalidations", "evictions", "expirations",
  "memoryUsedBytes",
];

let tried = 0;
let passed = 0;

/** Runs `fn` and checks it fails with `code` the way `mode` says ("throw" or "reject"). Returns a
 * problem description, or null. */
async function check(mode, fn, code) {
  tried++;
  let result;
  try {
    result = fn();
  } catch (e) {
    if (mode === "reject") return `threw synchronously (${e?.code ?? e})`;
    if (!(e instanceof CacheError)) return `threw a non-CacheError: ${e}`;
    if (e.code !== code) return `threw ${e.code} (${e.message}), expected ${code}`;
    passed++;
    return null;
  }
  if (mode === "throw") return `returned ${show(result)} instead of throwing ${code}`;
  if (!(result instanceof Promise)) return `returned a non-promise ${show(result)}`;
  try {
    const v = await result;
    return `resolved to ${show(v)} instead of rejecting with ${code}`;
  } catch (e) {
    if (!(e instanceof CacheError)) return `rejected with a non-CacheError: ${e}`;
    if (e.code !== code) return `rejected with ${e.code} (${e.message}), expected ${code}`;
    passed++;
    return null;
  }
}

/** A cache with a byte bound holding raw entries and request entries; returns its known keys. */
async function seeded(Class) {
  const c = new Class({ cleanupInterval: 0, maxBytes: MAX_BYTES, version: "v1" });
  const keys = [];
  for (let i = 0; i < 5; i++) {
    await c.set(`k${i}`, { i });
    keys.push(`k${i}`);
  }
  for (let i = 0; i < 3; i++) keys.push(await c.store("ns", { q: i }, `answer ${i}`));
  await c.get("k0");
  await c.get("absent");
  return { c, keys };
}

/** Everything a failed call must leave as it was. `has` neither counts nor refreshes recency. */
async function snapshot(c, keys) {
  const stats = await c.stats();
  const present = {};
  for (const k of keys) present[k] = await c.has(k);
  return {
    counters: Object.fromEntries(COUNTERS.map((n) => [n, stats[n]])),
    present,
    version: c.version,
    size: c instanceof MemoryCache ? c.size : stats.keys,
  };
}

/** The arguments of `method` with argument `at` replaced by `bad` (the others from `valid`). */
function args(method, at, bad, valid = VALID) {
  return method.kinds.map((kind, i) => (i === at ? bad : valid[kind]));
}

for (const [name, Class] of Object.entries(CLASSES)) {
  describe(`${name}: bad input`, () => {
    test("every method × every bad argument: the right code, the cache unchanged", async () => {
      const { c, keys } = await seeded(Class);
      const before = await snapshot(c, keys);
      const problems = [];
      // getOrSet must refuse every bad argument before its generator runs.
      let calls = 0;
      const valid = { ...VALID, generator: () => (calls++, "generated") };
      for (const method of METHODS.filter((m) => m.classes === undefined || m.classes.includes(name))) {
        const mode = method.async ? "reject" : Class === MemoryCache || method.sync ? "throw" : "reject";
        for (const [at, kind] of method.kinds.entries()) {
          for (const [label, bad, code] of BAD[kind]) {
            const problem = await check(mode, () => c[method.name](...args(method, at, bad, valid)), code);
            if (problem) problems.push(`${method.name}: ${kind} ${label}: ${problem}`);
          }
        }
      }
      assert.deepEqual(problems, []);
      assert.equal(calls, 0, "a generator ran for a call that was refused");
      assert.deepEqual(await snapshot(c, keys), before);
      // The entries are still there, with their values.
      for (let i = 0; i < 5; i++) assert.deepEqual(await c.get(`k${i}`), { i });
      for (let i = 0; i < 3; i++) assert.equal(await c.lookup("ns", { q: i }), `answer ${i}`);
      c.shutdown();
    });

    test("a generator that is not a function is refused before anything is looked up", async () => {
      const { c, keys } = await seeded(Class);
      const before = await snapshot(c, keys);
      const problems = [];
      const mode = Class === MemoryCache ? "throw" : "reject";
      for (const [label, bad, code] of BAD_GENERATORS) {
        // On a key that holds a value, too: the call is wrong whether or not it would hit.
        const problem = await check(mode, () => c.getOrSet("ns", { q: 0 }, bad), code);
        if (problem) problems.push(`getOrSet on a hit: generator ${label}: ${problem}`);
      }
      assert.deepEqual(problems, []);
      assert.deepEqual(await snapshot(c, keys), before);
      c.shutdown();
    });

    test("constructor: every bad option is INVALID_OPTIONS, thrown", async () => {
      const problems = [];
      for (const [label, options, code] of BAD_OPTIONS) {
        const problem = await check("throw", () => new Class(options), code);
        if (problem) problems.push(`new ${name}(${label}): ${problem}`);
      }
      assert.deepEqual(problems, []);
    });

    for (const [ending, end] of Object.entries({
      "shutdown()": (c) => c.shutdown(),
      "free()": (c) => c.free(),
      "Symbol.dispose": (c) => c[Symbol.dispose](),
    })) {
      test(`after ${ending} every method fails with SHUT_DOWN`, async () => {
        const { c } = await seeded(Class);
        end(c);
        const problems = [];
        for (const method of METHODS.filter((m) => m.classes === undefined || m.classes.includes(name))) {
          const mode = method.async ? "reject" : Class === MemoryCache || method.sync ? "throw" : "reject";
          const problem = await check(mode, () => c[method.name](...args(method, -1)), "SHUT_DOWN");
          if (problem) problems.push(`${method.name}: ${problem}`);
        }
        assert.deepEqual(problems, []);
        assert.equal((await c.stats()).keys, 0);
        assert.equal(c.version, "v1");
      });
    }
  });
}

describe("requestKey: bad input", () => {
  test("every argument × every bad value, and bad key formats: thrown with the right code", async () => {
    const problems = [];
    for (const [at, kind] of REQUEST_KEY.kinds.entries()) {
      for (const [label, bad, code] of BAD[kind]) {
        const problem = await check("throw", () => requestKey(...args(REQUEST_KEY, at, bad)), code);
        if (problem) problems.push(`requestKey: ${kind} ${label}: ${problem}`);
      }
    }
    for (const [label, format, code] of BAD_KEY_FORMATS) {
      const problem = await check("throw", () => requestKey("v1", "ns", {}, format), code);
      if (problem) problems.push(`requestKey: keyFormat ${label}: ${problem}`);
    }
    assert.deepEqual(problems, []);
    // And it still works; an absent format (undefined or null) is the default, JCS.
    assert.match(requestKey("v1", "ns", { a: 1 }), /^v1:ns:[0-9a-f]{32}$/);
    assert.equal(requestKey("v1", "ns", { a: 1 }, null), requestKey("v1", "ns", { a: 1 }, "jcs"));
  });
});

test("bad-input cases tried and passed", () => {
  console.log(`bad input: ${tried} cases tried, ${passed} passed`);
  assert.equal(passed, tried);
  assert.ok(tried > 500, `only ${tried} cases`);
});
