// The cleanup timer: never keeps a process alive, actually sweeps expired entries without any
// access, and does not keep a dropped cache alive. Observed from outside: child processes,
// process.getActiveResourcesInfo(), and FinalizationRegistry on stored values (the timer's
// sweep is otherwise invisible, because stats() and size sweep by themselves).
import { execFile } from "node:child_process";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cache, MemoryCache, PROJECT } from "./package.mjs";

/** Runs `node [flags] --input-type=module -e code` in the consumer project. */
function runChild(code, { flags = [], timeoutMs = 10_000, env = {} } = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    execFile(
      process.execPath,
      [...flags, "--input-type=module", "-e", code],
      { cwd: PROJECT, timeout: timeoutMs, killSignal: "SIGKILL", env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        resolve({ error, stdout, stderr, ms: performance.now() - started });
      },
    );
  });
}

test("a process holding caches with timers exits by itself", async () => {
  const code = `
    import { MemoryCache, Cache } from "cachette";
    const mem = new MemoryCache({ cleanupInterval: 1, ttl: 3600 });
    mem.set("k", { v: 1 });
    const cache = new Cache({ cleanupInterval: 1, ttl: 3600 });
    await cache.set("k", { v: 2 });
    await cache.getOrSet("ns", { topic: "t" }, async () => "generated");
    console.log(JSON.stringify({ mem: mem.stats().cleanupTimerActive, cache: (await cache.stats()).cleanupTimerActive }));
  `;
  const r = await runChild(code, { timeoutMs: 5000 });
  assert.equal(r.error?.killed ?? false, false, `still running after 5 s: a cleanup timer keeps the process alive`);
  assert.equal(r.error, null, `child failed: ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), { mem: true, cache: true }, "both caches had a running timer");
  assert.ok(r.ms < 3000, `took ${Math.round(r.ms)} ms to exit`);
});

test("the timer is unref'd: no ref'd Timeout is added by a cache", () => {
  const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  const base = timeouts();
  // Control: a ref'd interval is visible to this probe.
  const probe = setInterval(() => {}, 1000);
  assert.equal(timeouts(), base + 1);
  clearInterval(probe);
  assert.equal(timeouts(), base);
  const mem = new MemoryCache({ cleanupInterval: 1 });
  const cache = new Cache({ cleanupInterval: 1 });
  assert.equal(timeouts(), base, "a cache's cleanup timer must not hold the event loop");
  mem.shutdown();
  cache.shutdown();
});

// In a child with --expose-gc: store objects with a short TTL, wait, collect garbage, and count
// how many stored objects were finalized before the cache is touched again. Only a removal of
// the entries (by the timer) can free them; a cache without a timer is the control.
const SWEEP_CHILD = `
  import { MemoryCache, Cache } from "cachette";
  const cleanupInterval = Number(process.env.CLEANUP_INTERVAL);
  const N = 20;
  const finalized = { mem: 0, cache: 0 };
  const registry = new FinalizationRegistry((tag) => { finalized[tag] += 1; });
  const mem = new MemoryCache({ cleanupInterval, ttl: 0.1 });
  const cache = new Cache({ cleanupInterval, ttl: 0.1 });
  const pending = [];
  (() => {
    for (let i = 0; i < N; i++) {
      const a = { i, pad: "x".repeat(64) };
      registry.register(a, "mem");
      mem.set("k" + i, a);
      // Cache holds what its codec reads back: the value to watch is the one it returns.
      const b = { i, pad: "y".repeat(64) };
      pending.push(cache.set("k" + i, b).then(() => cache.get("k" + i)).then((held) => registry.register(held, "cache")));
    }
  })();
  await Promise.all(pending);
  pending.length = 0;
  await new Promise((r) => setTimeout(r, 400));
  for (let j = 0; j < 30 && (finalized.mem < N || finalized.cache < N); j++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  const beforeAccess = { ...finalized };
  const memStats = mem.stats();
  const cacheStats = await cache.stats();
  console.log(JSON.stringify({
    beforeAccess,
    mem: { expirations: memStats.expirations, keys: memStats.keys, timer: memStats.cleanupTimerActive },
    cache: { expirations: cacheStats.expirations, keys: cacheStats.keys, timer: cacheStats.cleanupTimerActive },
  }));
`;

async function sweepChild(cleanupInterval) {
  const r = await runChild(SWEEP_CHILD, {
    flags: ["--expose-gc"],
    env: { CLEANUP_INTERVAL: String(cleanupInterval) },
  });
  assert.equal(r.error, null, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test("cleanupInterval 0.05: the timer removes expired entries with no access at all", async () => {
  const timer = await sweepChild(0.05);
  const control = await sweepChild(0);
  // Control first: without a timer, nothing is freed until the cache is touched, which shows
  // that the probe can tell the two apart.
  assert.deepEqual(control.beforeAccess, { mem: 0, cache: 0 }, "control: no timer, nothing freed before access");
  assert.equal(control.mem.timer, false);
  assert.deepEqual(
    timer.beforeAccess,
    { mem: 20, cache: 20 },
    "every expired value must have been dropped by the timer before any access",
  );
  assert.equal(timer.mem.timer, true);
  assert.equal(timer.cache.timer, true);
  // Expirations are counted either way (by the timer, or by the sweep that stats() does).
  for (const r of [timer, control]) {
    assert.deepEqual(r.mem, { ...r.mem, expirations: 20, keys: 0 });
    assert.deepEqual(r.cache, { ...r.cache, expirations: 20, keys: 0 });
  }
});

test("a cache dropped without shutdown is collected, timer and values included", async () => {
  const code = `
    import { MemoryCache, Cache } from "cachette";
    const finalized = { cache: 0, value: 0 };
    const registry = new FinalizationRegistry((tag) => { finalized[tag] += 1; });
    (() => {
      for (const Class of [MemoryCache, Cache]) {
        const c = new Class({ cleanupInterval: 0.05, ttl: 3600 });
        registry.register(c, "cache");
        const v = { big: "z".repeat(1024) };
        registry.register(v, "value");
        c.set("k", v);
      }
    })();
    for (let j = 0; j < 40 && (finalized.cache < 2 || finalized.value < 2); j++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(JSON.stringify(finalized));
  `;
  const r = await runChild(code, { flags: ["--expose-gc"] });
  assert.equal(r.error, null, `child failed: ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), { cache: 2, value: 2 });
});
