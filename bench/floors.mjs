// The floors under the get and set comparisons of `npm run bench`: what a host keyed by a JS
// Map cannot go below, measured beside lru-cache in the same process.
//
//   node bench/floors.mjs        (pkg/ must be built: ./run build)
//
// - get: Map.get alone over 10k reused keys, then each step MemoryCache's read path adds.
// - set: the Map work of a bounded insert with eviction (get miss, delete, set, two arrays) with
//   no policy at all, and the wasm call that decides the eviction, alone.
// - request key: JSON.stringify alone (the part of requestKey() in JS), requestKey() of a number
//   (the fixed cost of the wasm call and the key string), the whole requestKey(), the wasm
//   keyDigest alone (canonical JSON + md5 + hex of a text already in wasm memory; natively,
//   `cargo bench --bench keys -- bench_a` measures the same), and the JS contenders and their
//   parts, over the 1,000 request objects of `npm run bench` (a).
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LRUCache } from "lru-cache";
import fastStableStringify from "fast-json-stable-stringify";
import SparkMD5 from "spark-md5";
import safeStableStringify from "safe-stable-stringify";
import md5 from "js-md5";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const glue = require(join(ROOT, "pkg", "node", "cachette.js"));

let sink = 0;
/** Median ns per operation of `f(n)` over 7 rounds. */
function ns(f, n = 1e6) {
  f(n / 10);
  const xs = [];
  for (let r = 0; r < 7; r++) {
    const t = performance.now();
    f(n);
    xs.push(((performance.now() - t) * 1e6) / n);
  }
  return xs.sort((a, b) => a - b)[3];
}
const row = (label, v) => console.log(`  ${label.padEnd(62)} ${v.toFixed(1).padStart(7)} ns`);

const N = 10_000;
const keys = Array.from({ length: N }, (_, i) => `item:${i}`);
const map = new Map(keys.map((k, i) => [k, i]));
const values = keys.map((_, i) => ({ i }));
const expiry = new Float64Array(N).fill(Date.now() + 3_600_000);
const log = new Uint32Array(2048);
const lru = new LRUCache({ max: N, ttl: 3_600_000 });
for (const [i, k] of keys.entries()) lru.set(k, values[i]);
let i = 0;
console.log("get hit, 10k entries, key reused");
row("Map.get alone", ns((n) => { for (let k = 0; k < n; k++) { const s = map.get(keys[i++ % N]); if (s !== undefined) sink += s; } }));
row("+ value load + expiry check", ns((n) => { for (let k = 0; k < n; k++) { const s = map.get(keys[i++ % N]); if (s !== undefined && expiry[s] > 5) sink += values[s].i; } }));
row("+ read-log append (MemoryCache's whole fast path)", ns((n) => { for (let k = 0; k < n; k++) { const s = map.get(keys[i++ % N]); if (s !== undefined && expiry[s] > 5) { const m = log[0]; if (m < 1024) { log[12 + m] = s; log[0] = m + 1; } else log[0] = 0; sink += values[s].i; } } }));
row("lru-cache {max, ttl} get", ns((n) => { for (let k = 0; k < n; k++) if (lru.get(keys[i++ % N]) !== undefined) sink++; }));

const M = 100_000;
const CAP = 10_000;
const churn = Array.from({ length: M }, (_, j) => `churn:${j}`);
console.log("set, 100k distinct keys into 10k entries");
{
  const m = new Map();
  const ks = new Array(CAP);
  const vs = new Array(CAP);
  let a = 0;
  let next = 0;
  row("Map work alone (get miss, delete, set, two arrays), no policy", ns((n) => {
    for (let k = 0; k < n; k++) {
      const key = churn[a++ % M];
      const s = m.get(key);
      if (s === undefined) {
        const slot = next;
        next = (next + 1) % CAP;
        const old = ks[slot];
        if (old !== undefined) m.delete(old);
        m.set(key, slot);
        ks[slot] = key;
        vs[slot] = 1;
      } else vs[s] = 1;
    }
  }, 2e6));
}
{
  const slots = new glue.MemorySlots({ maxEntries: CAP, ttl: 600, cleanupInterval: 0 }, () => {});
  const h = slots.header() >>> 2;
  const now = Date.now();
  for (let k = 0; k < 2 * CAP; k++) {
    slots.insert(-1, 10, 0, undefined, now);
    new Uint32Array(glue.MemorySlots.memory().buffer)[h + 1] = 0;
  }
  const U32 = new Uint32Array(glue.MemorySlots.memory().buffer);
  row("the wasm call that inserts and evicts, alone", ns((n) => {
    for (let k = 0; k < n; k++) {
      slots.insert(-1, 10, 0, undefined, now);
      U32[h + 1] = 0; // the host has dropped the evicted slot
    }
  }, 2e6));
}
{
  const l = new LRUCache({ max: CAP, ttl: 600_000 });
  let a = 0;
  row("lru-cache {max, ttl} set", ns((n) => { for (let k = 0; k < n; k++) l.set(churn[a++ % M], 1); }, 2e6));
}
{
  const { requestKey } = require(join(ROOT, "pkg", "node.cjs"));
  const SUBJECTS = ["Python Programming", "Linear Algebra", "Organic Chemistry", "World History", "Music Theory"];
  const LEVELS = ["beginner", "intermediate", "advanced"];
  const reqs = Array.from({ length: 1000 }, (_, j) => ({
    topic: `${SUBJECTS[j % SUBJECTS.length]} ${Math.floor(j / SUBJECTS.length)}`,
    level: LEVELS[j % 3],
    n: 5,
    tags: ["a", "b"],
  }));
  const texts = reqs.map((r) => fastStableStringify(r));
  let a = 0;
  const each = (f) => ns((n) => { for (let k = 0; k < n; k++) sink += f(reqs[a++ % 1000], a).length; }, 3e5);
  console.log(`request key, 1,000 request objects of ${texts[0].length} bytes of JSON`);
  row("JSON.stringify(data)", each((d) => JSON.stringify(d)));
  row("requestKey(v, ns, 5): the fixed cost of the wasm path", each(() => requestKey("v1", "subtopics", 5)));
  row("requestKey(v, ns, data)", each((d) => requestKey("v1", "subtopics", d)));
  // The wasm part alone: the JSON text already in wasm memory, canonicalised, hashed, hex written.
  const slots = new glue.MemorySlots({ keyFormat: "jcs", maxEntries: 1, cleanupInterval: 0 }, () => {});
  slots.keyNamespace("subtopics");
  const encoder = new TextEncoder();
  for (const [label, text] of [["a 1-byte text (one md5 block)", "5"], ["the 74-byte text of one request", JSON.stringify(reqs[0])]]) {
    const at = slots.keyInput(3 * text.length);
    const len = encoder.encodeInto(text, new Uint8Array(glue.MemorySlots.memory().buffer, at, 3 * text.length)).written;
    row(`wasm keyDigest of ${label}`, ns((n) => { for (let k = 0; k < n; k++) sink += slots.keyDigest(len); }, 3e5));
  }
  slots.free();
  row("fast-json-stable-stringify(data)", each((d) => fastStableStringify(d)));
  row("SparkMD5.hash of that text alone", ns((n) => { for (let k = 0; k < n; k++) sink += SparkMD5.hash(texts[a++ % 1000]).length; }, 3e5));
  row("SparkMD5.hash(fast-json-stable-stringify(data))", each((d) => SparkMD5.hash(fastStableStringify(d))));
  row("js-md5(safe-stable-stringify(data))", each((d) => md5(safeStableStringify(d))));
}
console.log(`(checksum ${sink})`);
