// Cache.warm: counts, progress reports, errors, concurrency, presence (not truthiness), and
// warming's own look-ups kept out of the hit/miss statistics.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cache, requestKey, sleep } from "./package.mjs";

const TOPICS = ["Python Programming", "Machine Learning", "Rust", "Databases", "Networking"];
const FAILING_TOPIC = "Rust";

function setup() {
  const calls = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const boom = new Error(`quiz generator failed for ${FAILING_TOPIC}`);
  const track = async (namespace, topic, fn) => {
    calls.push(`${namespace}/${topic}`);
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await sleep(5);
      return fn();
    } finally {
      inFlight -= 1;
    }
  };
  const generators = {
    subtopics: (topic) => track("subtopics", topic, () => ({ topic, subtopics: ["a", "b"] })),
    quiz: (topic) =>
      track("quiz", topic, () => {
        if (topic === FAILING_TOPIC) throw boom;
        return `quiz about ${topic}`;
      }),
  };
  return { calls, generators, boom, maxInFlight: () => maxInFlight };
}

test("warm: 2 namespaces x 5 topics, concurrency 2, one failure, cached '' and 0 skipped", async () => {
  const cache = new Cache({ cleanupInterval: 0, version: "v1.0" });
  // Already cached, with falsy values: presence counts, not truthiness.
  await cache.store("subtopics", { topic: "Machine Learning" }, "");
  await cache.store("quiz", { topic: "Databases" }, 0);
  await cache.get("nope"); // one real miss, to see warm leaves hits/misses alone
  const before = await cache.stats();
  const { calls, generators, boom, maxInFlight } = setup();
  const progress = [];
  const result = await cache.warm(generators, {
    topics: TOPICS,
    concurrency: 2,
    onProgress: (p) => progress.push({ ...p }),
  });
  const total = 2 * TOPICS.length;

  assert.equal(result.warmed, 7);
  assert.equal(result.skipped, 2);
  assert.equal(result.failed, 1);
  assert.equal(result.warmed + result.skipped + result.failed, total);
  assert.equal(calls.length, 8, "a generator runs for every pair not cached, and only those");
  assert.ok(!calls.includes("subtopics/Machine Learning") && !calls.includes("quiz/Databases"));
  assert.equal(maxInFlight(), 2, "concurrency 2: two generators at a time, never more");

  // errors: the failing pair, with its error.
  assert.equal(result.errors.length, 1);
  const [err] = result.errors;
  assert.equal(err.namespace, "quiz");
  assert.equal(err.topic, FAILING_TOPIC);
  assert.ok(err.error instanceof Error, "errors[].error is an Error");
  assert.ok(err.error === boom || err.error.cause === boom, `errors[].error carries the original: ${err.error}`);
  assert.match(err.error.message, /quiz generator failed/);

  // onProgress: total calls, done 1..total, every pair once, outcomes matching the result.
  assert.equal(progress.length, total);
  assert.deepEqual(progress.map((p) => p.done), Array.from({ length: total }, (_, i) => i + 1));
  assert.ok(progress.every((p) => p.total === total));
  const pairs = progress.map((p) => `${p.namespace}/${p.topic}`).sort();
  const expectedPairs = ["quiz", "subtopics"].flatMap((ns) => TOPICS.map((t) => `${ns}/${t}`)).sort();
  assert.deepEqual(pairs, expectedPairs);
  const outcome = (ns, t) => progress.find((p) => p.namespace === ns && p.topic === t).outcome;
  assert.equal(outcome("subtopics", "Machine Learning"), "skipped");
  assert.equal(outcome("quiz", "Databases"), "skipped");
  assert.equal(outcome("quiz", FAILING_TOPIC), "failed");
  assert.equal(outcome("subtopics", FAILING_TOPIC), "warmed");
  const counts = { warmed: 0, skipped: 0, failed: 0 };
  for (const p of progress) counts[p.outcome] += 1;
  assert.deepEqual(counts, { warmed: 7, skipped: 2, failed: 1 });

  // What was stored, under the request key of { topic }.
  assert.deepEqual(await cache.lookup("subtopics", { topic: "Rust" }), { topic: "Rust", subtopics: ["a", "b"] });
  assert.equal(await cache.get(requestKey("v1.0", "quiz", { topic: "Python Programming" })), "quiz about Python Programming");
  assert.equal(await cache.has(cache.key("quiz", { topic: FAILING_TOPIC })), false);
  assert.equal(await cache.lookup("subtopics", { topic: "Machine Learning" }), "", "a cached '' is not overwritten");
  assert.equal(await cache.lookup("quiz", { topic: "Databases" }), 0, "a cached 0 is not overwritten");

  // Statistics: warm's own look-ups are not user hits or misses.
  const after = await cache.stats();
  assert.equal(after.hits - before.hits, 4, "only the 4 lookups above count (warm adds none)");
  assert.equal(after.misses - before.misses, 0, "the failed pair was checked with has(), warm adds no misses");
  assert.equal(after.sets - before.sets, 7);
  assert.equal(after.keys, 9);
  cache.shutdown();
});

test("warm again: everything cached is skipped, only the failed pair runs again", async () => {
  const cache = new Cache({ cleanupInterval: 0 });
  const first = setup();
  await cache.store("quiz", { topic: "Databases" }, 0);
  await cache.warm(first.generators, { topics: TOPICS, concurrency: 2 });
  const stats1 = await cache.stats();

  const second = setup();
  const again = await cache.warm(second.generators, { topics: TOPICS, concurrency: 2 });
  assert.deepEqual(
    { warmed: again.warmed, skipped: again.skipped, failed: again.failed },
    { warmed: 0, skipped: 9, failed: 1 },
  );
  assert.deepEqual(second.calls, [`quiz/${FAILING_TOPIC}`]);
  const stats2 = await cache.stats();
  assert.equal(stats2.hits, stats1.hits);
  assert.equal(stats2.misses, stats1.misses);
  assert.equal(stats2.sets, stats1.sets);

  // With the generator fixed, the last pair is warmed.
  const fixed = await cache.warm({ quiz: (t) => `fixed ${t}` }, { topics: TOPICS });
  assert.deepEqual(
    { warmed: fixed.warmed, skipped: fixed.skipped, failed: fixed.failed, errors: fixed.errors },
    { warmed: 1, skipped: 4, failed: 0, errors: [] },
  );
  assert.equal(await cache.lookup("quiz", { topic: FAILING_TOPIC }), `fixed ${FAILING_TOPIC}`);
  cache.shutdown();
});

test("warm: synchronous generators, default topics from popularTopics", async () => {
  const cache = new Cache({ cleanupInterval: 0, popularTopics: ["a", "b", "c"] });
  const seen = [];
  const result = await cache.warm({
    ns: (t) => {
      seen.push(t);
      return t.toUpperCase();
    },
  });
  assert.equal(result.warmed, 3);
  assert.deepEqual(seen.sort(), ["a", "b", "c"]);
  assert.equal(await cache.lookup("ns", { topic: "b" }), "B");
  cache.shutdown();
});

test("warm: a generator returning undefined is a failure, not a stored undefined", async () => {
  const cache = new Cache({ cleanupInterval: 0 });
  const result = await cache.warm({ ns: () => undefined }, { topics: ["x"] });
  assert.equal(result.failed, 1);
  assert.equal(result.errors.length, 1);
  assert.equal(await cache.has(cache.key("ns", { topic: "x" })), false);
  cache.shutdown();
});

test("warm: concurrency 1 runs generators one at a time, in topic order per namespace", async () => {
  const cache = new Cache({ cleanupInterval: 0 });
  const { calls, generators, maxInFlight } = setup();
  const result = await cache.warm({ subtopics: generators.subtopics }, { topics: TOPICS, concurrency: 1 });
  assert.equal(result.warmed, 5);
  assert.equal(maxInFlight(), 1);
  assert.deepEqual(calls, TOPICS.map((t) => `subtopics/${t}`));
  cache.shutdown();
});

test("warm and getOrSet of the same key run one generator, whichever starts first", async () => {
  const cache = new Cache({ cleanupInterval: 0 });
  let calls = 0;
  const slow = async (topic) => {
    calls++;
    await sleep(30);
    return `about ${topic}`;
  };
  // getOrSet first: warm waits for it and counts the topic as skipped.
  const first = cache.getOrSet("subtopics", { topic: "Rust" }, () => slow("Rust"));
  await sleep(1);
  const report = await cache.warm({ subtopics: slow }, { topics: ["Rust", "Go"] });
  assert.equal(await first, "about Rust");
  assert.deepEqual([report.warmed, report.skipped, report.failed], [1, 1, 0]);
  assert.equal(calls, 2, "Rust once (by getOrSet), Go once (by warm)");
  // warm first: a getOrSet meanwhile joins warm's generation.
  const warming = cache.warm({ subtopics: slow }, { topics: ["Zig"] });
  await sleep(5);
  const joined = await cache.getOrSet("subtopics", { topic: "Zig" }, () => slow("Zig, again"));
  assert.equal(joined, "about Zig");
  assert.deepEqual((await warming).warmed, 1);
  assert.equal(calls, 3);
  // A failure of the generation both wait on reaches both.
  const boom = new Error("down");
  const failing = cache.getOrSet("quiz", { topic: "C" }, async () => {
    calls++;
    await sleep(20);
    throw boom;
  });
  await sleep(1);
  const failed = await cache.warm({ quiz: slow }, { topics: ["C"] });
  await assert.rejects(failing, (e) => e.code === "GENERATOR_FAILED" && e.cause === boom);
  assert.deepEqual([failed.failed, failed.errors[0].error.code], [1, "GENERATOR_FAILED"]);
  assert.equal(calls, 4);
  cache.shutdown();
});
