// The soak run (`./run soak`): long mixed workloads with TTL churn, from the built pkg/.
//
//   node scripts/soak.mjs [memoryOps] [cacheOps]     (defaults 1,000,000 and 100,000)
//
// 1. MemoryCache: `memoryOps` operations (60% get, 25% set with one of 40 TTLs from 1 ms to
//    4 s, 5% delete, 5% getOrSet (half with an async generator), 5% has, 0.05% deletePattern,
//    which hands wasm every key) over 200,000 keys into a cache bounded at 10,000 entries and
//    1 MB, with the cleanup timer on. Time runs for real (the loop settles the async
//    generations and yields to the event loop every 2,000 operations, so timers and expiry
//    happen).
// 2. Cache over the upstash-bridge (redis-server behind it; started here): `cacheOps`
//    operations (get, set with TTL, getOrSet, delete), 32 at a time.
//
// For each: ops/s, and wasm memory (`WebAssembly.Memory` byte length), JS heap used and
// external memory before, at the middle and after. Asserted: no error at all; wasm memory and
// heap at the end within bounds of the middle (a plateau once the bounds are reached); entries
// never above maxEntries, charged bytes never above maxBytes. Then a child process holding a
// cache with its timer on must exit by itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const { Cache, MemoryCache } = require(join(ROOT, "pkg", "node.cjs"));
const { MemorySlots } = require(join(ROOT, "pkg", "node", "cachette.js"));
const { startUpstash } = await import(join(ROOT, "tests", "js", "upstash-server.mjs"));
const { rng } = await import(join(ROOT, "tests", "js", "random.mjs"));

const MEMORY_OPS = Number(process.argv[2] ?? 1_000_000);
const CACHE_OPS = Number(process.argv[3] ?? 100_000);
const MAX_ENTRIES = 10_000;
const MAX_BYTES = 1_000_000;


const wasmMemory = () => MemorySlots.memory().buffer.byteLength;
function sample(label) {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { label, wasm: wasmMemory(), heapUsed: m.heapUsed, external: m.external };
}
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
function report(title, ops, ms, samples) {
  console.log(`${title}: ${ops.toLocaleString("en-US")} operations in ${(ms / 1000).toFixed(1)} s, ${Math.round((ops / ms) * 1000).toLocaleString("en-US")} ops/s`);
  for (const s of samples) console.log(`  ${s.label.padEnd(7)} wasm memory ${mb(s.wasm)}, JS heap ${mb(s.heapUsed)}, external ${mb(s.external)}`);
}
/** The end may not exceed the middle by more than `slack` (a plateau, not growth). */
function plateau(what, middle, end, slack) {
  assert.ok(end <= middle * (1 + slack) + 1e6, `${what} grew from ${mb(middle)} at the middle to ${mb(end)} at the end`);
}
const tick = () => new Promise((r) => setImmediate(r));

async function soakMemory() {
  const random = rng(1);
  const mem = new MemoryCache({ maxEntries: MAX_ENTRIES, maxBytes: MAX_BYTES, cleanupInterval: 1 });
  const ttls = Array.from({ length: 40 }, (_, i) => 0.001 + i * 0.1);
  const samples = [sample("before")];
  let errors = 0;
  let maxSeen = 0;
  let maxBytes = 0;
  const generations = [];
  const settleGenerations = async () => {
    for (const r of await Promise.allSettled(generations.splice(0))) {
      if (r.status === "rejected") {
        errors++;
        if (errors < 5) console.error(r.reason);
      }
    }
  };
  const t0 = performance.now();
  for (let i = 0; i < MEMORY_OPS; i++) {
    const k = `key:${Math.floor(random() * 200_000)}`;
    const r = random();
    try {
      if (r < 0.6) mem.get(k);
      else if (r < 0.85) mem.set(k, { i, text: "x".repeat(Math.floor(random() * 64)) }, { ttl: ttls[i % 40] });
      else if (r < 0.9) mem.delete(k);
      else if (r < 0.925) mem.getOrSet("soak", { k }, () => ({ made: i }));
      else if (r < 0.95) {
        generations.push(mem.getOrSet("soak", { k, async: true }, async () => ({ made: i })));
      }
      else if (r < 0.9995) mem.has(k);
      else mem.deletePattern(`key:${Math.floor(random() * 100)}*`);
    } catch (e) {
      errors++;
      if (errors < 5) console.error(e);
    }
    if (i % 2_000 === 0) {
      await settleGenerations();
      await tick();
      const s = mem.stats();
      maxSeen = Math.max(maxSeen, s.keys);
      maxBytes = Math.max(maxBytes, s.memoryUsedBytes);
    }
    if (i === MEMORY_OPS / 2) samples.push(sample("middle"));
  }
  await settleGenerations();
  const ms = performance.now() - t0;
  samples.push(sample("after"));
  const s = mem.stats();
  mem.shutdown();
  report("MemoryCache", MEMORY_OPS, ms, samples);
  console.log(`  entries at most ${maxSeen} (bound ${MAX_ENTRIES}), bytes at most ${maxBytes} (bound ${MAX_BYTES}); ${s.evictions} evictions, ${s.expirations} expirations, ${errors} errors`);
  assert.equal(errors, 0);
  assert.ok(maxSeen <= MAX_ENTRIES && maxBytes <= MAX_BYTES);
  assert.ok(s.expirations > 0 && s.evictions > 0, "the run churned");
  plateau("wasm memory", samples[1].wasm, samples[2].wasm, 0);
  plateau("the JS heap", samples[1].heapUsed, samples[2].heapUsed, 0.25);
}

async function soakCache() {
  const up = await startUpstash();
  try {
    await up.raw("FLUSHDB");
    const random = rng(2);
    const c = new Cache({ maxEntries: 5_000, cleanupInterval: 1, upstash: { url: up.url, token: up.token, timeoutMs: 5_000 } });
    const samples = [sample("before")];
    let errors = 0;
    let done = 0;
    const t0 = performance.now();
    const one = async (i) => {
      const k = `soak:${Math.floor(random() * 20_000)}`;
      const r = random();
      try {
        if (r < 0.5) await c.get(k);
        else if (r < 0.8) await c.set(k, { i }, { ttl: 1 + (i % 5) });
        else if (r < 0.95) await c.getOrSet("soak", { k }, async () => ({ made: i }));
        else await c.delete(k);
      } catch (e) {
        errors++;
        if (errors < 5) console.error(e);
      }
    };
    for (let i = 0; i < CACHE_OPS; i += 32) {
      await Promise.all(Array.from({ length: Math.min(32, CACHE_OPS - i) }, (_, j) => one(i + j)));
      done += Math.min(32, CACHE_OPS - i);
      if (i <= CACHE_OPS / 2 && i + 32 > CACHE_OPS / 2) samples.push(sample("middle"));
    }
    const ms = performance.now() - t0;
    samples.push(sample("after"));
    const s = await c.stats();
    c.shutdown();
    report("Cache over the bridge", done, ms, samples);
    console.log(`  ${s.sets} sets, ${s.hits} hits, ${s.misses} misses, fallback ${s.fallbackActive}, ${errors} errors`);
    assert.equal(errors, 0);
    assert.equal(s.errors, 0);
    plateau("wasm memory", samples[1].wasm, samples[2].wasm, 0);
    plateau("the JS heap", samples[1].heapUsed, samples[2].heapUsed, 0.25);
  } finally {
    up.stop();
  }
}

function exitsByItself() {
  const code = `
    const { MemoryCache, Cache } = require(${JSON.stringify(join(ROOT, "pkg", "node.cjs"))});
    const m = new MemoryCache({ cleanupInterval: 1 });
    const c = new Cache({ cleanupInterval: 1 });
    m.set("k", 1, { ttl: 60 });
    globalThis.keep = [m, c];`;
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ["-e", code], { timeout: 10_000 });
  assert.equal(r.status, 0, `the process did not exit by itself (${r.signal ?? r.status})`);
  console.log(`a process holding caches with the cleanup timer on exited by itself in ${Math.round(performance.now() - t0)} ms`);
}

await soakMemory();
await soakCache();
exitsByItself();
console.log("soak: passed");
