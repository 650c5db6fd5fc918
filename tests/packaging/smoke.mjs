// The smoke checks every runtime runs against the installed package: Node ESM, Node CJS,
// headless Chromium and workerd. Runtime-neutral (no Node APIs): the browser page and the
// Worker import this same file. `runSmoke(api)` never throws; it returns one result per check.

const sameJson = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// Each check is [name, check(api, memory), needs]: `needs: "Cache"` checks are left out for
// `cachette/memory`, which exports everything but `Cache`.
export const checks = [
  [
    "exports MemoryCache, requestKey, CacheError, init, and Cache except in cachette/memory",
    (api, memory) => {
      const { Cache, MemoryCache, requestKey, CacheError, init } = api;
      for (const [name, value] of Object.entries({ MemoryCache, requestKey, CacheError, init })) {
        if (typeof value !== "function") throw new Error(`${name} is ${typeof value}`);
      }
      if (memory ? Cache !== undefined : typeof Cache !== "function") {
        throw new Error(`Cache is ${typeof Cache}`);
      }
      if (!(CacheError.prototype instanceof Error)) throw new Error("CacheError is not an Error");
    },
  ],
  [
    "init() resolves (idempotent)",
    async ({ init }) => {
      await init();
      await init();
    },
  ],
  [
    "MemoryCache set/get round-trips a value",
    ({ MemoryCache }) => {
      const mem = new MemoryCache({ maxEntries: 10 });
      try {
        mem.set("k", { a: 1 });
        const got = mem.get("k");
        if (!sameJson(got, { a: 1 })) throw new Error(`get("k") = ${JSON.stringify(got)}`);
      } finally {
        mem.shutdown?.();
      }
    },
  ],
  [
    "requestKey jcs (default)",
    ({ requestKey }) => {
      const key = requestKey("v1", "subtopics", { topic: "Python Programming" });
      if (key !== "v1:subtopics:3260222b82f1023d3fd9501bd984cd80") throw new Error(`got ${key}`);
    },
  ],
  [
    "requestKey python",
    ({ requestKey }) => {
      const key = requestKey("v1", "subtopics", { topic: "Python Programming" }, "python");
      if (key !== "v1:subtopics:afc5c4f25dbfab7559ccff1975be8899") throw new Error(`got ${key}`);
    },
  ],
  [
    "invalid options throw CacheError INVALID_OPTIONS",
    ({ MemoryCache, CacheError }) => {
      let error;
      try {
        new MemoryCache({ maxEntries: 0 });
      } catch (e) {
        error = e;
      }
      if (error === undefined) throw new Error("new MemoryCache({ maxEntries: 0 }) did not throw");
      const seen = `${error?.name}: ${error?.message} (code ${error?.code})`;
      if (!(error instanceof CacheError)) throw new Error(`not a CacheError: ${seen}`);
      if (!(error instanceof Error)) throw new Error(`not an Error: ${seen}`);
      if (error.code !== "INVALID_OPTIONS") throw new Error(`wrong code: ${seen}`);
      if (error.name !== "CacheError") throw new Error(`wrong name: ${seen}`);
    },
  ],
  [
    "Cache get of a missing key resolves to undefined",
    async ({ Cache }) => {
      const cache = new Cache({});
      try {
        const got = await cache.get("missing");
        if (got !== undefined) throw new Error(`got ${JSON.stringify(got)}`);
      } finally {
        cache.shutdown?.();
      }
    },
    "Cache",
  ],
  [
    "MemoryCache generated content: statuses, ttl Infinity, an aborted caller, a timeout",
    async ({ MemoryCache }) => {
      const mem = new MemoryCache({ grace: "1m", cleanupInterval: 0 });
      try {
        const gate = deferred();
        const [a, b] = await Promise.all([
          mem.getOrSetEntry("ns", 1, () => gate.promise),
          mem.getOrSetEntry("ns", 1, async () => "never"),
          Promise.resolve().then(() => gate.resolve("v")),
        ]);
        expect([a.status, b.status, a.value], ["miss", "joined", "v"]);
        expect(mem.getOrSetEntry("ns", 1, () => "never").status, "hit");
        mem.set("forever", 1, { ttl: Infinity });
        expect(mem.remainingTtl("forever"), Infinity);
        await expectAbort(mem);
        await expectTimeout(mem);
      } finally {
        mem.shutdown();
      }
    },
  ],
  [
    "Cache generated content: statuses, skip, a Date through JSON, an aborted caller, a timeout",
    async ({ Cache }) => {
      const cache = new Cache({ cleanupInterval: 0 });
      try {
        const gate = deferred();
        const [a, b] = await Promise.all([
          cache.getOrSetEntry("ns", 1, () => gate.promise),
          cache.getOrSetEntry("ns", 1, () => "never"),
          Promise.resolve().then(() => gate.resolve(new Date(0))),
        ]);
        expect([a.status, b.status, a.value], ["miss", "joined", "1970-01-01T00:00:00.000Z"]);
        expect((await cache.getOrSetEntry("ns", 1, () => "never")).status, "hit");
        const skipped = await cache.getOrSetEntry("ns", 2, (ctx) => (ctx.skip(), "once"));
        expect([skipped.value, await cache.lookup("ns", 2)], ["once", undefined]);
        await expectAbort(cache);
        await expectTimeout(cache);
      } finally {
        cache.shutdown();
      }
    },
    "Cache",
  ],
];

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

function expect(got, want) {
  if (!sameJson(got, want)) throw new Error(`got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

/** One caller's abort rejects that caller alone, with the signal's reason. */
async function expectAbort(cache) {
  const gate = deferred();
  const leave = new AbortController();
  const left = cache.getOrSet("abort", 1, async () => gate.promise, { signal: leave.signal });
  const stays = cache.getOrSet("abort", 1, async () => "never");
  leave.abort(new Error("left"));
  const why = await left.then(() => "resolved", (e) => e.message);
  gate.resolve("served");
  expect([why, await stays], ["left", "served"]);
}

/** A generator past its timeout: TIMEOUT, its signal aborted, nothing cached. */
async function expectTimeout(cache) {
  let signal;
  const code = await cache
    .getOrSet("slow", 1, async (ctx) => ((signal = ctx.signal), new Promise(() => {})), { timeout: "20ms" })
    .then(() => "resolved", (e) => e.code);
  expect([code, signal.aborted], ["TIMEOUT", true]);
  expect(await cache.lookup("slow", 1), undefined);
}

/** Runs every check against `api` (`memory`: the `cachette/memory` entry). */
export async function runSmoke(api, memory = false) {
  const results = [];
  for (const [name, check, needs] of checks) {
    if (memory && needs === "Cache") continue;
    try {
      await check(api, memory);
      results.push({ name, ok: true });
    } catch (e) {
      results.push({ name, ok: false, error: String(e?.stack ?? e) });
    }
  }
  return results;
}
