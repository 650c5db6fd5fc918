// Cache over the upstash-bridge (a real redis-server behind it) with random faults injected
// between operations: delays past the timeout, 5xx, connection resets, malformed replies, 401.
// Every call must settle, with a value or a CacheError of a known code; no rejection may be left
// unhandled; an invalidation reported done must have left no matching key in Redis (checked with
// a raw client once faults are cleared); and once the faults stop, the cache serves from Upstash
// again. The run is seeded (CACHETTE_FAULT_SEED replays one) and its accounting is printed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cache, CacheError, sleep } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";
import { rng } from "./random.mjs";

const bridge = bridgeForTests();


const TIMEOUT_MS = 150;
const FAULTS = [
  () => ({ mode: "delay", ms: TIMEOUT_MS * 3 }),
  () => ({ mode: "status", status: 503 }),
  () => ({ mode: "status", status: 500 }),
  () => ({ mode: "reset" }),
  () => ({ mode: "malformed" }),
  () => ({ mode: "unauthorized" }),
];
/** What a call may fail with while Upstash misbehaves. */
const ALLOWED = new Set(["TIMEOUT", "UPSTASH_TRANSPORT", "UPSTASH_PROTOCOL", "UPSTASH_AUTH", "UPSTASH_COMMAND"]);
const ROUNDS = 250;

test("random faults between operations: every call settles, invalidations never lie, recovery", async () => {
  const seed = Number(process.env.CACHETTE_FAULT_SEED ?? Date.now() % 2 ** 31);
  const random = rng(seed);
  const pick = (xs) => xs[Math.floor(random() * xs.length)];
  await bridge.up.raw("FLUSHDB");
  const c = new Cache({
    cleanupInterval: 0,
    version: "v1",
    upstash: { url: bridge.up.url, token: bridge.up.token, timeoutMs: TIMEOUT_MS, retries: 1 },
  });
  const tally = { calls: 0, values: 0, faults: 0, invalidationsDone: 0, invalidationsChecked: 0 };
  const codes = {};
  const problems = [];

  /** Awaits one call; every outcome is counted, a hang or a foreign error is a problem. */
  async function settle(label, run) {
    tally.calls++;
    let p;
    try {
      p = run();
    } catch (e) {
      problems.push(`${label} threw synchronously: ${e}`);
      return { ok: false };
    }
    const outcome = await Promise.race([
      p.then(
        (value) => ({ ok: true, value }),
        (error) => ({ ok: false, error }),
      ),
      sleep(10 * TIMEOUT_MS + 2_000).then(() => ({ hung: true })),
    ]);
    if (outcome.hung) {
      problems.push(`${label} never settled`);
      return { ok: false };
    }
    if (outcome.ok) {
      tally.values++;
      return outcome;
    }
    const e = outcome.error;
    if (!(e instanceof CacheError)) problems.push(`${label} rejected with a non-CacheError: ${e}`);
    else if (!ALLOWED.has(e.code)) problems.push(`${label} rejected with ${e.code}: ${e.message}`);
    else codes[e.code] = (codes[e.code] ?? 0) + 1;
    if (String(e?.message).includes(bridge.up.token)) problems.push(`${label}: the token leaked`);
    return outcome;
  }

  const ns = () => `n${Math.floor(random() * 3)}`;
  const data = () => ({ q: Math.floor(random() * 20) });
  const key = () => `raw:${Math.floor(random() * 20)}`;
  const OPS = [
    ["set", () => c.set(key(), { at: random() }, { ttl: 60 })],
    ["get", () => c.get(key())],
    ["has", () => c.has(key())],
    ["delete", () => c.delete(key())],
    ["store", () => c.store(ns(), data(), { v: random() })],
    ["lookup", () => c.lookup(ns(), data())],
    ["getOrSet", () => c.getOrSet(ns(), data(), async () => ({ made: random() }))],
  ];

  for (let round = 0; round < ROUNDS; round++) {
    if (random() < 0.35) {
      const fault = { ...pick(FAULTS)(), count: 1 + Math.floor(random() * 3) };
      await bridge.up.faults(fault);
      tally.faults++;
    }
    if (random() < 0.15) {
      // An invalidation, alone (nothing else writes meanwhile): if it reports done, Redis must
      // hold no key it was to remove.
      const [label, pattern, run] =
        random() < 0.5
          ? (() => {
              const n = ns();
              return [`invalidateNamespace(${n})`, `v1:${n}:*`, () => c.invalidateNamespace(n)];
            })()
          : ["deletePattern(raw:1*)", "raw:1*", () => c.deletePattern("raw:1*")];
      const r = await settle(label, run);
      if (r.ok) {
        tally.invalidationsDone++;
        await bridge.up.faults({ mode: "none" });
        const left = (await bridge.up.raw("KEYS", pattern)).result;
        tally.invalidationsChecked++;
        if (left.length !== 0) problems.push(`${label} reported done, Redis still holds ${left}`);
      }
      continue;
    }
    // A small batch of concurrent operations.
    const batch = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(OPS));
    await Promise.all(batch.map(([label, run]) => settle(label, run)));
  }

  // The faults stop: the cache goes back to Upstash.
  await bridge.up.faults({ mode: "none" });
  await c.set("after:faults", { back: true }, { ttl: 60 });
  assert.equal((await bridge.up.raw("GET", "after:faults")).result, JSON.stringify({ back: true }));
  assert.deepEqual(await c.get("after:faults"), { back: true });
  const s = await c.stats();
  assert.equal(s.fallbackActive, false);
  assert.equal((await c.health()).status, "healthy");
  c.shutdown();
  await sleep(20);

  console.log(
    `faults (seed ${seed}): ${tally.calls} calls, ${tally.values} values, errors ${JSON.stringify(codes)}, ` +
      `${tally.faults} faults set, ${tally.invalidationsDone} invalidations done and checked in Redis, ` +
      `${bridge.unhandled.length} unhandled rejections`,
  );
  assert.deepEqual(problems, [], `seed ${seed}`);
  assert.deepEqual(bridge.unhandled.map(String), [], "unhandled rejections");
  assert.equal(tally.invalidationsChecked, tally.invalidationsDone);
  assert.ok(tally.calls > ROUNDS, "the run made its calls");
  assert.ok(Object.keys(codes).length > 0, "some fault reached a caller");
});
