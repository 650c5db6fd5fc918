// The shared tier at scale, with several instances over one bridge (each `Cache` is an isolate
// with its own memory tier): one generation across instances (`lock`), near copies that end
// within their stated bound after an invalidation elsewhere, generation-counter invalidation.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, describe, test } from "node:test";
import { Cache, MemoryCache, PROJECT, rejectsCode, sleep, throwsCode } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const bridge = bridgeForTests();
after(() => {
  assert.deepEqual(bridge.unhandled, [], "no unhandled rejection");
});

const instance = (extra = {}) =>
  new Cache({
    cleanupInterval: 0,
    ...extra,
    upstash: { url: bridge.up.url, token: bridge.up.token, timeout: "2s", retries: 0, ...extra.upstash },
  });

const locks = async (c) => {
  const u = (await c.stats()).upstash;
  return { acquired: u.locksAcquired, released: u.locksReleased, waits: u.lockWaits, joins: u.lockJoins, timeouts: u.lockTimeouts };
};

for (const mode of ["scan", "generation"]) {
  describe(`lock, invalidation: ${mode}`, () => {
    test("two instances x 100 concurrent getOrSet of one key: one generator call", async () => {
      await bridge.up.raw("FLUSHDB");
      const [a, b] = [instance({ lock: true, invalidation: mode }), instance({ lock: true, invalidation: mode })];
      let calls = 0;
      const generate = async () => {
        calls++;
        await sleep(150);
        return { answer: 42 };
      };
      const asks = Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).getOrSetEntry("answers", { q: "life" }, generate));
      const entries = await Promise.all(asks);
      assert.equal(calls, 1, "one generation across both instances");
      assert.ok(entries.every((e) => e.value.answer === 42));
      const statuses = entries.map((e) => e.status);
      assert.equal(statuses.filter((s) => s === "miss").length, 1, "the caller that generated");
      assert.equal(statuses.filter((s) => s === "joined").length, 99, "every other caller, in either instance");
      const [la, lb] = [await locks(a), await locks(b)];
      assert.equal(la.acquired + lb.acquired, 1);
      assert.equal(la.released + lb.released, 1, "released with the stored value");
      assert.equal(la.joins + lb.joins, 1, "the waiting instance got the value");
      assert.ok(la.waits + lb.waits >= 1);
      assert.equal((await bridge.up.raw("EXISTS", `cachette:lock:${a.key("answers", { q: "life" })}`)).result, 0);
      // Next time it is a hit everywhere.
      assert.equal((await b.getOrSetEntry("answers", { q: "life" }, generate)).status, "hit");
      a.shutdown();
      b.shutdown();
    });

    test("a failing generation releases its lock and the waiter generates", async () => {
      await bridge.up.raw("FLUSHDB");
      const [a, b] = [instance({ lock: { ttl: "10s" }, invalidation: mode }), instance({ lock: { ttl: "10s" }, invalidation: mode })];
      let calls = 0;
      const first = a.getOrSet("n", { x: 1 }, async () => {
        calls++;
        await sleep(100);
        throw new Error("model down");
      });
      await sleep(30);
      const t0 = performance.now();
      const second = b.getOrSet("n", { x: 1 }, async () => (calls++, "from b"));
      await assert.rejects(first, (e) => e.code === "GENERATOR_FAILED");
      assert.equal(await second, "from b");
      assert.ok(performance.now() - t0 < 5_000, "did not wait for the lock's 10 s");
      assert.equal(calls, 2);
      a.shutdown();
      b.shutdown();
    });
  });
}

describe("lock", () => {
  test("a holder killed mid-generation: another instance takes over once the lock expires", async () => {
    await bridge.up.raw("FLUSHDB");
    // The holder is another process, killed with SIGKILL while its generator runs.
    const script = `
      import { Cache } from "cachette";
      const c = new Cache({ cleanupInterval: 0, lock: { ttl: "800ms" },
        upstash: { url: ${JSON.stringify(bridge.up.url)}, token: process.env.TOKEN } });
      c.getOrSet("slow", { id: 1 }, () => { console.log("generating"); return new Promise(() => {}); });
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: PROJECT,
      env: { ...process.env, TOKEN: bridge.up.token },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => String(d).includes("generating") && resolve());
      child.once("exit", (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    child.kill("SIGKILL");
    const b = instance({ lock: { ttl: "800ms" } });
    let calls = 0;
    const t0 = performance.now();
    const e = await b.getOrSetEntry("slow", { id: 1 }, async () => (calls++, "taken over"));
    const waited = performance.now() - t0;
    assert.deepEqual([e.value, e.status, calls], ["taken over", "miss", 1]);
    assert.ok(waited > 300 && waited < 3_000, `waited ${waited} ms for the dead holder's lock`);
    const l = await locks(b);
    assert.equal(l.acquired, 1);
    assert.ok(l.waits >= 1 && l.timeouts === 0, JSON.stringify(l));
    b.shutdown();
  });

  test("a waiter whose every caller aborted does not generate when the lock frees", async () => {
    await bridge.up.raw("FLUSHDB");
    const [a, b] = [instance({ lock: true }), instance({ lock: true })];
    const failing = a.getOrSet("w", { id: 1 }, async () => {
      await sleep(300);
      throw new Error("failed");
    });
    await sleep(30);
    let bCalls = 0;
    const ac = new AbortController();
    const waiting = b.getOrSet("w", { id: 1 }, async () => (bCalls++, "b"), { signal: ac.signal });
    await sleep(50);
    ac.abort(new Error("client left"));
    await assert.rejects(waiting, /client left/);
    await assert.rejects(failing, (e) => e.code === "GENERATOR_FAILED");
    await sleep(400);
    assert.equal(bCalls, 0, "the abandoned generation never ran");
    const l = await locks(b);
    assert.equal(l.acquired, l.released, "a lock it took is released");
    assert.equal(await b.getOrSet("w", { id: 1 }, async () => "later"), "later");
    a.shutdown();
    b.shutdown();
  });

  test("stale-while-revalidate: one background refresh across instances", async () => {
    await bridge.up.raw("FLUSHDB");
    const opts = { lock: true, ttl: "300ms", grace: "1h", staleWhileRevalidate: true };
    const [a, b] = [instance(opts), instance(opts)];
    let calls = 0;
    const generate = async () => (calls++, await sleep(200), `v${calls}`);
    assert.equal(await a.getOrSet("doc", { id: 1 }, generate), "v1");
    assert.equal(await b.getOrSet("doc", { id: 1 }, generate), "v1", "b keeps a's value as its last good one");
    await sleep(350);
    const entries = await Promise.all([a, b, a, b].map((c) => c.getOrSetEntry("doc", { id: 1 }, generate)));
    assert.deepEqual(
      entries.map((e) => [e.value, e.status]),
      Array(4).fill(["v1", "stale"]),
    );
    await sleep(400);
    assert.equal(calls, 2, "one refresh for both instances");
    assert.equal(await a.getOrSet("doc", { id: 1 }, generate), "v2");
    assert.equal(await b.getOrSet("doc", { id: 1 }, generate), "v2");
    a.shutdown();
    b.shutdown();
  });

  test("lock is refused without the shared tier", async () => {
    throwsCode(assert, () => new Cache({ lock: true }), "INVALID_OPTIONS");
    throwsCode(assert, () => new Cache({ lock: { ttl: 0 }, upstash: { url: bridge.up.url, token: "t" } }), "INVALID_OPTIONS");
    throwsCode(assert, () => new Cache({ lock: "yes", upstash: { url: bridge.up.url, token: "t" } }), "INVALID_OPTIONS");
    const m = new Cache({ cleanupInterval: 0 });
    let called = false;
    await rejectsCode(assert, () => m.getOrSet("n", {}, () => (called = true), { lock: true }), "INVALID_OPTIONS");
    const mc = new MemoryCache({ cleanupInterval: 0 });
    assert.throws(() => mc.getOrSet("n", {}, () => (called = true), { lock: true }), (e) => e.code === "INVALID_OPTIONS" && /upstash/.test(e.message));
    assert.equal(called, false);
    throwsCode(assert, () => new Cache({ invalidation: "sometimes", upstash: { url: bridge.up.url, token: "t" } }), "INVALID_OPTIONS");
    throwsCode(assert, () => new Cache({ invalidation: "generation" }), "INVALID_OPTIONS");
    throwsCode(assert, () => new Cache({ generationCheck: -1, upstash: { url: bridge.up.url, token: "t" } }), "INVALID_OPTIONS");
    m.shutdown();
    mc.shutdown();
  });
});

describe("near copies after an invalidation elsewhere", () => {
  test("scan mode: gone within localTtl", async () => {
    await bridge.up.raw("FLUSHDB");
    const a = instance({ localTtl: "300ms" });
    const b = instance();
    let calls = 0;
    const generate = async () => `v${++calls}`;
    assert.equal(await a.getOrSet("ns", { k: 1 }, generate), "v1");
    await b.invalidateNamespace("ns");
    const t0 = performance.now();
    // Served from the near copy until localTtl has passed, never after.
    // Each read is timed from when it starts: one started past the bound must not see "v1".
    for (let asked = t0; (await a.getOrSet("ns", { k: 1 }, generate)) === "v1"; asked = performance.now()) {
      assert.ok(asked - t0 < 300 + 10, `served past localTtl (asked ${(asked - t0).toFixed(0)} ms after)`);
      await sleep(20);
    }
    assert.equal(calls, 2);
    a.shutdown();
    b.shutdown();
  });

  test("generation mode: gone within generationCheck, for invalidations and deletes", async () => {
    await bridge.up.raw("FLUSHDB");
    const a = instance({ invalidation: "generation", localTtl: "1h", generationCheck: "250ms" });
    const b = instance({ invalidation: "generation" });
    let calls = 0;
    const generate = async () => `v${++calls}`;
    assert.equal(await a.getOrSet("ns", { k: 1 }, generate), "v1");
    await a.set("v1:other:x", "x");
    const trips = (await a.stats()).upstash.roundTrips;
    assert.equal(await a.getOrSet("ns", { k: 1 }, generate), "v1");
    assert.equal(await a.get("v1:other:x"), "x");
    assert.equal((await a.stats()).upstash.roundTrips - trips, 1, "near copies (the 1 is stats itself)");
    for (const [what, act, key, ask] of [
      ["invalidateNamespace", () => b.invalidateNamespace("ns"), null, () => a.getOrSet("ns", { k: 1 }, generate)],
      ["delete", () => b.delete("v1:other:x"), "v1:other:x", () => a.get("v1:other:x")],
    ]) {
      const before = await ask();
      assert.ok(before !== undefined, what);
      await act();
      const t0 = performance.now();
      for (let asked = t0; (await ask()) === before; asked = performance.now()) {
        assert.ok(asked - t0 < 250 + 10, `${what}: served past generationCheck (asked ${(asked - t0).toFixed(0)} ms after)`);
        await sleep(20);
      }
      if (key) assert.equal(await a.get(key), undefined);
    }
    assert.equal(calls, 2);
    a.shutdown();
    b.shutdown();
  });
});

describe("generation mode", () => {
  test("invalidations are one round trip; a value made before one is not stored after it", async () => {
    await bridge.up.raw("FLUSHDB");
    const a = instance({ invalidation: "generation" });
    const b = instance({ invalidation: "generation" });
    await a.store("ns", { k: 1 }, "one");
    await a.store("ns", { k: 2 }, "two");
    const v1 = BigInt((await bridge.up.raw("GET", "cachette:gen:v1")).result);
    const trips = async () => (await a.stats()).upstash.roundTrips;
    for (const [act, want] of [
      [() => a.invalidateNamespace("ns"), 2],
      [() => a.invalidateVersion("v1"), 0],
      [() => a.updateVersion("v2"), 0],
    ]) {
      const t = await trips();
      assert.equal(await act(), want, "what this instance's memory dropped");
      assert.equal((await trips()) - t - 1, 1, "one round trip");
    }
    assert.equal(await b.lookup("ns", { k: 1 }), undefined);
    assert.equal(BigInt((await bridge.up.raw("GET", "cachette:gen:v1")).result), v1 + 2n, "invalidateVersion and updateVersion");

    // A generation that an invalidation overtakes: its value is returned, not stored.
    let release;
    const slow = b.getOrSet("slow", { id: 1 }, () => new Promise((r) => (release = r)));
    await sleep(50);
    await b.invalidateNamespace("slow");
    release("made before");
    assert.equal(await slow, "made before");
    assert.equal(await b.lookup("slow", { id: 1 }), undefined, "not stored");
    assert.equal(await b.getOrSet("slow", { id: 1 }, () => "after"), "after");
    assert.equal(await b.lookup("slow", { id: 1 }), "after");
    a.shutdown();
    b.shutdown();
  });

  test("a background refresh and a warm overtaken by an invalidation store nothing", async () => {
    await bridge.up.raw("FLUSHDB");
    const a = instance({ invalidation: "generation", ttl: "300ms", grace: "1h", staleWhileRevalidate: true });
    const b = instance({ invalidation: "generation" });
    assert.equal(await a.getOrSet("doc", { id: 1 }, () => "v1"), "v1");
    await sleep(350);
    let release;
    const e = await a.getOrSetEntry("doc", { id: 1 }, () => new Promise((r) => (release = r)));
    assert.deepEqual([e.value, e.status], ["v1", "stale"]);
    await sleep(50);
    await b.invalidateNamespace("doc");
    release("made before the invalidation");
    await sleep(100);
    assert.equal(await b.lookup("doc", { id: 1 }), undefined, "the refresh was not stored");

    let warmRelease;
    const warming = a.warm({ doc: () => new Promise((r) => (warmRelease = r)) }, { topics: ["T"] });
    await sleep(50);
    await b.invalidateNamespace("doc");
    warmRelease("warmed before the invalidation");
    assert.equal((await warming).warmed, 1);
    assert.equal(await b.lookup("doc", { topic: "T" }), undefined, "the warm value was not stored");
    a.shutdown();
    b.shutdown();
  });
});
