// Memory per entry of a full cache: Cachette's MemoryCache vs lru-cache { max, ttl }.
//
// Each measure runs in a child process of its own (node --expose-gc). Every child loads both
// libraries and builds the same keys (`item:${i}`) and values ({ i }), kept alive to the end;
// the "baseline" child stops there, the others also fill a cache of `entries` entries with
// exactly those keys and values. A child reports heapUsed + external of process.memoryUsage()
// after gc (external includes the wasm memory); bytes per entry = (child - baseline) / entries.
//
//   import { memoryPerEntry } from "./memory.mjs"   (compare.mjs)
//   node bench/memory.mjs                           (prints memoryPerEntry())
//   node --expose-gc bench/memory.mjs KIND ENTRIES  (one child: prints one JSON line)
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);
const ROOT = join(dirname(SELF), "..");
export const KINDS = ["baseline", "cachette", "lru-cache"];

async function settle() {
  for (let k = 0; k < 3; k++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r)); // finalizers, then collect again
  }
}

async function child(kind, entries) {
  const { MemoryCache } = await import(join(ROOT, "pkg", "node.mjs"));
  const { LRUCache } = await import("lru-cache");
  const keys = Array.from({ length: entries }, (_, i) => `item:${i}`);
  const values = keys.map((_, i) => ({ i }));
  let cache = null;
  if (kind === "cachette") {
    cache = new MemoryCache({ maxEntries: entries, ttl: 3600 });
    for (let i = 0; i < entries; i++) cache.set(keys[i], values[i]);
    const s = cache.stats();
    if (s.keys !== entries || s.evictions !== 0) throw new Error(`cachette not full: ${JSON.stringify(s)}`);
  } else if (kind === "lru-cache") {
    cache = new LRUCache({ max: entries, ttl: 3600_000 });
    for (let i = 0; i < entries; i++) cache.set(keys[i], values[i]);
    if (cache.size !== entries) throw new Error("lru-cache not full");
  } else if (kind !== "baseline") {
    throw new Error(`unknown kind ${kind}`);
  }
  await settle();
  const m = process.memoryUsage();
  // Everything measured stays reachable until after the measure.
  if (cache !== null && cache.get(keys[entries - 1]) !== values[entries - 1]) throw new Error("lost an entry");
  if (keys.length + values.length !== 2 * entries) throw new Error("unreachable");
  process.stdout.write(JSON.stringify({ kind, heapUsed: m.heapUsed, external: m.external }) + "\n");
  if (kind === "cachette") cache.shutdown();
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs `runs` rounds of the three children (kinds alternated within each round) and returns
 * { entries, runs, bytes: { kind: median heapUsed+external }, perEntry: { cachette, "lru-cache" },
 *   ratio: lru-cache per entry / cachette per entry }.
 */
export function memoryPerEntry({ entries = 100_000, runs = 3 } = {}) {
  const samples = Object.fromEntries(KINDS.map((k) => [k, []]));
  for (let round = 0; round < runs; round++) {
    const order = round % 2 ? [...KINDS].reverse() : KINDS;
    for (const kind of order) {
      const r = spawnSync(process.execPath, ["--expose-gc", SELF, kind, String(entries)], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`memory child ${kind} failed (${r.status}): ${r.stderr}`);
      const m = JSON.parse(r.stdout.trim().split("\n").pop());
      samples[kind].push(m.heapUsed + m.external);
    }
  }
  const bytes = Object.fromEntries(KINDS.map((k) => [k, median(samples[k])]));
  const perEntry = {
    cachette: (bytes.cachette - bytes.baseline) / entries,
    "lru-cache": (bytes["lru-cache"] - bytes.baseline) / entries,
  };
  return { entries, runs, bytes, perEntry, ratio: perEntry["lru-cache"] / perEntry.cachette };
}

if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  if (process.argv[2]) await child(process.argv[2], Number(process.argv[3] ?? 100_000));
  else console.log(memoryPerEntry());
}
