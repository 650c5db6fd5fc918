// The shared vectors through the JS API: request keys made by Python's json module and by the
// `canonicalize` npm package, and what a real redis-server 7 matched for each glob pattern.
// Every line is checked; a failure lists the lines exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryCache, requestKey, vectors } from "./package.mjs";

const keyVectors = vectors("request-keys.jsonl");
const globVectors = vectors("glob-redis.jsonl");

function show(x) {
  return JSON.stringify(x);
}

test("request-keys.jsonl: 400 vectors", () => {
  assert.equal(keyVectors.length, 400);
});

for (const format of ["python", "jcs"]) {
  test(`request-keys.jsonl: requestKey("v1", "ns", data, "${format}") === "v1:ns:" + md5_${format}`, () => {
    const wrong = [];
    for (const v of keyVectors) {
      const want = `v1:ns:${v[`md5_${format}`]}`;
      let got;
      try {
        got = requestKey("v1", "ns", v.data, format);
      } catch (e) {
        got = `threw ${e.code ?? e.name}: ${e.message}`;
      }
      if (got !== want) wrong.push(`line ${v.line}: data ${show(v.data)} canonical ${show(v[format])} want ${want} got ${got}`);
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${keyVectors.length} vectors differ`);
  });

  test(`request-keys.jsonl: MemoryCache({ keyFormat: "${format}" }).key agrees`, () => {
    const mem = new MemoryCache({ keyFormat: format, cleanupInterval: 0 });
    const wrong = [];
    for (const v of keyVectors) {
      let got;
      try {
        got = mem.key("ns", v.data);
      } catch (e) {
        got = `threw ${e.code ?? e.name}: ${e.message}`;
      }
      if (got !== `v1:ns:${v[`md5_${format}`]}`) wrong.push(`line ${v.line}: got ${got}`);
    }
    mem.shutdown();
    assert.deepEqual(wrong, []);
  });
}

test("request-keys.jsonl: the default keyFormat is jcs", () => {
  const wrong = keyVectors.filter((v) => requestKey("v1", "ns", v.data) !== `v1:ns:${v.md5_jcs}`);
  assert.deepEqual(wrong.map((v) => v.line), []);
});

test("glob-redis.jsonl: 500 vectors", () => {
  assert.equal(globVectors.length, 500);
});

test("glob-redis.jsonl: deletePattern deletes exactly what Redis KEYS matched", () => {
  const mem = new MemoryCache({ maxEntries: 1000, cleanupInterval: 0 });
  const wrong = [];
  for (const v of globVectors) {
    mem.clear();
    for (const k of v.keys) mem.set(k, true);
    assert.equal(mem.size, new Set(v.keys).size, `line ${v.line}: keys stored`);
    let n;
    try {
      n = mem.deletePattern(v.pattern);
    } catch (e) {
      wrong.push(`line ${v.line}: pattern ${show(v.pattern)} threw ${e.code ?? e.name} (${e.message}); Redis matched ${show(v.matches)}`);
      continue;
    }
    const gone = v.keys.filter((k) => !mem.has(k)).sort();
    const want = [...v.matches].sort();
    if (n !== v.matches.length || show(gone) !== show(want)) {
      wrong.push(`line ${v.line}: pattern ${show(v.pattern)} returned ${n}, deleted ${show(gone)}; Redis matched ${show(want)}`);
    }
  }
  mem.shutdown();
  assert.deepEqual(wrong, [], `${wrong.length} of ${globVectors.length} vectors differ`);
});
