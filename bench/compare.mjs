// Cachette vs the usual JS building blocks, side by side in one Node process.
//
//   npm run bench            (pkg/ must be built: ./run build; ./run bench does both)
//   BENCH_QUICK=1 npm run bench   two short rounds: checks the script, numbers meaningless
//
// Speed: each contender runs in rounds of a fixed number of operations, after a warm-up;
// contenders of one comparison alternate round by round (so drift hits all alike), and the
// median of the rounds is reported. Ratios are ours/theirs in operations per second: > 1 means
// Cachette is faster. The reference lru-cache is configured like the Cachette cache it is compared
// with (same bound, same TTL); get and set also show lru-cache without a TTL, for information.
// Memory per entry: bench/memory.mjs (child processes). Shipped sizes: bench/sizes.mjs.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { LRUCache } from "lru-cache";
import fastStableStringify from "fast-json-stable-stringify";
import SparkMD5 from "spark-md5";
import safeStableStringify from "safe-stable-stringify";
import md5 from "js-md5";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { MemoryCache, requestKey } = await import(join(ROOT, "pkg", "node.mjs"));
const { memoryPerEntry } = await import("./memory.mjs");
const { shippedSizes, sizeReport } = await import("./sizes.mjs");

const QUICK = process.env.BENCH_QUICK === "1"; // a smoke run of the script itself
const ROUNDS = QUICK ? 2 : 9;
const ROUND_MS = QUICK ? 20 : 200; // target duration of one round
const WARMUP_MS = QUICK ? 20 : 300;

let sink = 0; // keeps results alive so that no loop is optimised away
const consume = (v) => {
  if (v !== undefined) sink += 1;
};

/** Calls `run(n)` until WARMUP_MS pass, then picks n so that one round takes about ROUND_MS. */
function calibrate(run) {
  let n = 1000;
  const end = performance.now() + WARMUP_MS;
  let perOp = 0;
  while (performance.now() < end) {
    const t = performance.now();
    run(n);
    perOp = (performance.now() - t) / n;
    if (perOp * n < 10) n *= 2;
  }
  return Math.max(1000, Math.round(ROUND_MS / Math.max(perOp, 1e-6)));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** contenders: { label: run(n) }. Returns { label: { opsPerSec, spread } }. */
function race(contenders) {
  const entries = Object.entries(contenders);
  const sizes = Object.fromEntries(entries.map(([label, run]) => [label, calibrate(run)]));
  const samples = Object.fromEntries(entries.map(([label]) => [label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...entries].reverse() : entries;
    for (const [label, run] of order) {
      const n = sizes[label];
      const t = performance.now();
      run(n);
      const ms = performance.now() - t;
      samples[label].push((n / ms) * 1000);
    }
  }
  return Object.fromEntries(
    entries.map(([label]) => {
      const xs = samples[label];
      const m = median(xs);
      const spread = (Math.max(...xs) - Math.min(...xs)) / m;
      return [label, { opsPerSec: m, spread }];
    }),
  );
}

// ---- scenarios --------------------------------------------------------------------------------

const LEVELS = ["beginner", "intermediate", "advanced"];
const SUBJECTS = ["Python Programming", "Machine Learning", "Rust", "Databases", "Networking", "Statistics", "Linear Algebra", "Web Development"];

function scenarioLookup() {
  const N = 1000;
  const requests = Array.from({ length: N }, (_, i) => ({
    topic: `${SUBJECTS[i % SUBJECTS.length]} ${Math.floor(i / SUBJECTS.length)}`,
    level: LEVELS[i % 3],
    n: 5,
    tags: ["a", "b"],
  }));
  const mem = new MemoryCache({ version: "v1", maxEntries: 2 * N, ttl: 3600 });
  const lruSpark = new LRUCache({ max: 2 * N, ttl: 3600_000 });
  const lruJs = new LRUCache({ max: 2 * N, ttl: 3600_000 });
  for (const [i, data] of requests.entries()) {
    const value = { explanation: `text ${i}` };
    const key = mem.store("subtopics", data, value);
    const sparkKey = "v1:subtopics:" + SparkMD5.hash(fastStableStringify(data));
    const jsKey = "v1:subtopics:" + md5(safeStableStringify(data));
    const standalone = requestKey("v1", "subtopics", data);
    // For this data all three canonical forms agree (sorted keys, no spaces), so the keys do too.
    if (key !== sparkKey || key !== jsKey || key !== standalone) {
      throw new Error(`keys differ: ${key} ${sparkKey} ${jsKey} ${standalone}`);
    }
    lruSpark.set(sparkKey, value);
    lruJs.set(jsKey, value);
  }
  let i = 0;
  const result = race({
    "cachette  mem.lookup(ns, data)": (n) => {
      for (let k = 0; k < n; k++) consume(mem.lookup("subtopics", requests[i++ % N]));
    },
    "lru-cache + fast-json-stable-stringify + spark-md5": (n) => {
      for (let k = 0; k < n; k++) {
        consume(lruSpark.get("v1:subtopics:" + SparkMD5.hash(fastStableStringify(requests[i++ % N]))));
      }
    },
    "lru-cache + safe-stable-stringify + js-md5": (n) => {
      for (let k = 0; k < n; k++) {
        consume(lruJs.get("v1:subtopics:" + md5(safeStableStringify(requests[i++ % N]))));
      }
    },
  });
  if (mem.stats().misses !== 0) throw new Error("lookup bench missed");
  // The key alone, no cache access: the standalone function (d), and where the time of (a) goes.
  const keyOnly = race({
    "cachette  requestKey(version, ns, data)": (n) => {
      for (let k = 0; k < n; k++) consume(requestKey("v1", "subtopics", requests[i++ % N]));
    },
    "cachette  mem.key(ns, data)": (n) => {
      for (let k = 0; k < n; k++) consume(mem.key("subtopics", requests[i++ % N]));
    },
    "fast-json-stable-stringify + spark-md5": (n) => {
      for (let k = 0; k < n; k++) consume("v1:subtopics:" + SparkMD5.hash(fastStableStringify(requests[i++ % N])));
    },
  });
  mem.shutdown();
  return [result, keyOnly];
}

const LRU_GET = "lru-cache get {max, ttl}";
const LRU_GET_NO_TTL = "lru-cache get {max} (no TTL)";
const LRU_SET = "lru-cache set {max, ttl}";
const LRU_SET_NO_TTL = "lru-cache set {max} (no TTL)";

function scenarioGet(fresh) {
  const N = 10_000;
  const keys = Array.from({ length: N }, (_, i) => `item:${i}`);
  const mem = new MemoryCache({ maxEntries: N, ttl: 3600 });
  const lru = new LRUCache({ max: N, ttl: 3600_000 });
  const lruNoTtl = new LRUCache({ max: N });
  for (const [i, k] of keys.entries()) {
    const value = { i };
    mem.set(k, value);
    lru.set(k, value);
    lruNoTtl.set(k, value);
  }
  let i = 0;
  const result = race(
    fresh
      ? {
          "cachette  MemoryCache.get": (n) => {
            for (let k = 0; k < n; k++) consume(mem.get("item:" + (i++ % N)));
          },
          [LRU_GET]: (n) => {
            for (let k = 0; k < n; k++) consume(lru.get("item:" + (i++ % N)));
          },
          [LRU_GET_NO_TTL]: (n) => {
            for (let k = 0; k < n; k++) consume(lruNoTtl.get("item:" + (i++ % N)));
          },
        }
      : {
          "cachette  MemoryCache.get": (n) => {
            for (let k = 0; k < n; k++) consume(mem.get(keys[i++ % N]));
          },
          [LRU_GET]: (n) => {
            for (let k = 0; k < n; k++) consume(lru.get(keys[i++ % N]));
          },
          [LRU_GET_NO_TTL]: (n) => {
            for (let k = 0; k < n; k++) consume(lruNoTtl.get(keys[i++ % N]));
          },
        },
  );
  if (mem.stats().misses !== 0) throw new Error("get bench missed");
  if (lru.size !== N || lruNoTtl.size !== N) throw new Error("lru-cache get bench lost entries");
  mem.shutdown();
  return result;
}

function scenarioChurn() {
  const N = 100_000;
  const CAP = 10_000;
  const keys = Array.from({ length: N }, (_, i) => `churn:${i}`);
  const value = { payload: "x" };
  const mem = new MemoryCache({ maxEntries: CAP, ttl: 600 });
  const lru = new LRUCache({ max: CAP, ttl: 600_000 });
  const lruNoTtl = new LRUCache({ max: CAP });
  let a = 0;
  let b = 0;
  let c = 0;
  const result = race({
    "cachette  MemoryCache.set": (n) => {
      for (let k = 0; k < n; k++) mem.set(keys[a++ % N], value);
    },
    [LRU_SET]: (n) => {
      for (let k = 0; k < n; k++) lru.set(keys[b++ % N], value);
    },
    [LRU_SET_NO_TTL]: (n) => {
      for (let k = 0; k < n; k++) lruNoTtl.set(keys[c++ % N], value);
    },
  });
  const s = mem.stats();
  if (s.keys !== CAP || s.evictions === 0) throw new Error(`churn bench did not evict: ${JSON.stringify(s)}`);
  if (lru.size !== CAP || lruNoTtl.size !== CAP) throw new Error("lru-cache churn did not fill");
  mem.shutdown();
  return result;
}

// ---- report -----------------------------------------------------------------------------------

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const pad = (s, w) => String(s).padEnd(w);
const lpad = (s, w) => String(s).padStart(w);

const started = performance.now();
console.log(`Cachette JS bench: node ${process.version}, ${os.cpus()[0]?.model ?? "?"} x${os.cpus().length}, ` +
  `${ROUNDS} rounds of ~${ROUND_MS} ms per contender, median ops/s${QUICK ? " (BENCH_QUICK)" : ""}`);

const table = []; // { section, label, opsPerSec, spread }
const comparisons = []; // { short, vs, ratio, min }: min null = no target
function record(section, results) {
  for (const [label, r] of Object.entries(results)) table.push({ section, label, ...r });
}
function compare(short, results, ours, theirs, min) {
  comparisons.push({ short, vs: theirs, ratio: results[ours].opsPerSec / results[theirs].opsPerSec, min });
}

const SPARK = "lru-cache + fast-json-stable-stringify + spark-md5";
const JSMD5 = "lru-cache + safe-stable-stringify + js-md5";
const LOOKUP = "cachette  mem.lookup(ns, data)";
const [a, keyOnly] = scenarioLookup();
record("(a) request lookup, 1,000 request objects, hit", a);
compare("(a)", a, LOOKUP, SPARK, 3.0);
compare("(a)", a, LOOKUP, JSMD5, 2.0);
record("(d), (a-key) the request key alone, same 1,000 objects, no cache", keyOnly);
compare("(d)", keyOnly, "cachette  requestKey(version, ns, data)", "fast-json-stable-stringify + spark-md5", 2.0);
compare("(a-key)", keyOnly, "cachette  mem.key(ns, data)", "fast-json-stable-stringify + spark-md5", null);
for (const [short, title, results, min] of [
  ["(b-i)", "get hit, 10k entries, key built per call", scenarioGet(true), 1.0],
  ["(b-ii)", "get hit, 10k entries, key reused", scenarioGet(false), 1.2],
]) {
  record(`${short} ${title}`, results);
  compare(short, results, "cachette  MemoryCache.get", LRU_GET, min);
  compare(short, results, "cachette  MemoryCache.get", LRU_GET_NO_TTL, null);
}
const c = scenarioChurn();
record("(c) set, 100k distinct keys into 10k entries, TTL", c);
compare("(c)", c, "cachette  MemoryCache.set", LRU_SET, 1.2);
compare("(c)", c, "cachette  MemoryCache.set", LRU_SET_NO_TTL, null);

// Child processes and esbuild run after the races, so that they do not disturb them.
const mem = memoryPerEntry({ entries: 100_000, runs: QUICK ? 1 : 5 });
const sizes = await shippedSizes(join(ROOT, "pkg"));

const W = 54;
const verdict = (ok) => (ok ? "met" : "MISSED");
let section = "";
console.log("");
console.log(`${pad("contender", W)} ${lpad("ops/s", 13)}  ${lpad("spread", 7)}`);
for (const row of table) {
  if (row.section !== section) {
    section = row.section;
    console.log(section);
  }
  console.log(`  ${pad(row.label, W - 2)} ${lpad(fmt(row.opsPerSec), 13)}  ${lpad((row.spread * 100).toFixed(1) + "%", 7)}`);
}

console.log("");
console.log(`${pad("ratio (cachette / other, ops/s)", W + 10)} ${lpad("ratio", 7)}  ${lpad("target", 7)}  result`);
for (const cmp of comparisons) {
  const target = cmp.min === null ? "-" : ">=" + cmp.min.toFixed(1) + "x";
  const result = cmp.min === null ? "(no target)" : verdict(cmp.ratio >= cmp.min);
  console.log(
    `${pad(`${cmp.short} vs ${cmp.vs}`, W + 10)} ${lpad(cmp.ratio.toFixed(2) + "x", 7)}  ${lpad(target, 7)}  ${result}`,
  );
}

console.log("");
console.log(`${pad(`memory, full cache of ${fmt(mem.entries)} entries`, W)} ${lpad("heap+ext B", 13)}  ${lpad("B/entry", 7)}`);
console.log(`  (heapUsed + external after gc, own child process each, median of ${mem.runs})`);
const memRow = (label, bytes, perEntry) =>
  console.log(`  ${pad(label, W - 2)} ${lpad(fmt(bytes), 13)}  ${lpad(perEntry === undefined ? "" : perEntry.toFixed(1), 7)}`.trimEnd());
memRow("baseline: the same keys and values, no cache", mem.bytes.baseline);
memRow("cachette  MemoryCache {maxEntries, ttl}", mem.bytes.cachette, mem.perEntry.cachette);
memRow("lru-cache {max, ttl}", mem.bytes["lru-cache"], mem.perEntry["lru-cache"]);
console.log(
  `${pad("(mem) lru-cache / cachette, bytes per entry", W + 10)} ${lpad(mem.ratio.toFixed(2) + "x", 7)}  ${lpad(">1.0x", 7)}  ${verdict(mem.ratio > 1)}`,
);

console.log("");
for (const line of sizeReport(sizes, W)) console.log(line);
console.log("");
console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s; checksum ${sink})`);
