// Stampedes on Cache.getOrSet, on the memory tier and on the shared tier (the upstash-bridge in
// front of a real redis-server): 10,000 concurrent callers of one key make one generator call;
// 1,000 keys × 10 callers make one call per key; a generator that fails reaches every waiter as
// GENERATOR_FAILED and the next call runs it again; a generator still running at shutdown releases
// its waiters. No rejection is left unhandled. The counts are printed for the record.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { Cache, CacheError, sleep } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const bridge = bridgeForTests();
afterEach(async () => {
  await sleep(20);
  assert.deepEqual(bridge.unhandled.map(String), [], "unhandled rejections");
});

const TIERS = {
  memory: () => new Cache({ cleanupInterval: 0, maxEntries: 20_000 }),
  upstash: () =>
    new Cache({
      cleanupInterval: 0,
      maxEntries: 20_000,
      upstash: { url: bridge.up.url, token: bridge.up.token, timeoutMs: 5_000, retries: 1 },
    }),
};

const CALLERS = 10_000;
const KEYS = 1_000;
const PER_KEY = 10;

for (const [tier, make] of Object.entries(TIERS)) {
  describe(`stampede, ${tier} tier`, () => {
    test(`${CALLERS} concurrent callers of one key: one generator call`, async () => {
      if (tier === "upstash") await bridge.up.raw("FLUSHDB");
      const c = make();
      let calls = 0;
      const value = { answer: "generated once" };
      const results = await Promise.all(
        Array.from({ length: CALLERS }, () =>
          c.getOrSet("stampede", { one: true }, async () => {
            calls++;
            await sleep(30);
            return value;
          }),
        ),
      );
      assert.equal(calls, 1);
      assert.equal(results.length, CALLERS);
      // The memory tier hands back the very object; the shared tier a copy of what it stored.
      for (const r of results) assert.deepEqual(r, value);
      assert.equal((await c.stats()).sets, 1);
      console.log(`stampede ${tier}: ${CALLERS} callers of one key, ${calls} generator call`);
      c.shutdown();
    });

    test(`${KEYS} keys × ${PER_KEY} callers: one call per key`, async () => {
      if (tier === "upstash") await bridge.up.raw("FLUSHDB");
      const c = make();
      const calls = new Map();
      const pending = [];
      for (let round = 0; round < PER_KEY; round++) {
        for (let k = 0; k < KEYS; k++) {
          pending.push(
            c.getOrSet("stampede", { k }, async () => {
              calls.set(k, (calls.get(k) ?? 0) + 1);
              await sleep(10);
              return `value ${k}`;
            }),
          );
        }
      }
      const results = await Promise.all(pending);
      results.forEach((r, i) => assert.equal(r, `value ${i % KEYS}`));
      assert.equal(calls.size, KEYS);
      assert.ok([...calls.values()].every((n) => n === 1), "a key's generator ran more than once");
      if (tier === "upstash") assert.equal(await bridge.up.raw("DBSIZE").then((r) => r.result), KEYS);
      console.log(`stampede ${tier}: ${KEYS} keys × ${PER_KEY} callers, ${[...calls.values()].reduce((a, b) => a + b)} generator calls`);
      c.shutdown();
    });

    test(`a failing generator: all ${CALLERS} waiters get GENERATOR_FAILED, the next call retries`, async () => {
      if (tier === "upstash") await bridge.up.raw("FLUSHDB");
      const c = make();
      let calls = 0;
      const boom = new Error("the model is down");
      const settled = await Promise.allSettled(
        Array.from({ length: CALLERS }, () =>
          c.getOrSet("stampede", { fails: true }, async () => {
            calls++;
            await sleep(20);
            throw boom;
          }),
        ),
      );
      assert.equal(calls, 1);
      const codes = new Map();
      for (const s of settled) {
        assert.equal(s.status, "rejected");
        assert.ok(s.reason instanceof CacheError);
        assert.equal(s.reason.cause, boom);
        codes.set(s.reason.code, (codes.get(s.reason.code) ?? 0) + 1);
      }
      assert.deepEqual([...codes], [["GENERATOR_FAILED", CALLERS]]);
      assert.equal(await c.lookup("stampede", { fails: true }), undefined, "nothing cached");
      assert.equal(await c.getOrSet("stampede", { fails: true }, async () => (calls++, "recovered")), "recovered");
      assert.equal(calls, 2);
      console.log(`stampede ${tier}: ${CALLERS} waiters of a failing generator, ${codes.get("GENERATOR_FAILED")} GENERATOR_FAILED, retried after`);
      c.shutdown();
    });

    test("a generator that never settles: its waiters are released by shutdown, nothing left behind", async () => {
      if (tier === "upstash") await bridge.up.raw("FLUSHDB");
      const c = make();
      let calls = 0;
      const waiters = Array.from({ length: 1_000 }, () =>
        c.getOrSet("stampede", { hangs: true }, () => {
          calls++;
          return new Promise(() => {});
        }),
      );
      await sleep(20);
      c.shutdown();
      const settled = await Promise.race([
        Promise.allSettled(waiters),
        sleep(5_000).then(() => "still waiting"),
      ]);
      assert.notEqual(settled, "still waiting", "waiters were not released by shutdown");
      assert.equal(calls, 1);
      assert.ok(settled.every((s) => s.status === "rejected" && s.reason?.code === "SHUT_DOWN"));
      assert.equal((await c.stats()).keys, 0);
    });
  });
}
