// getOrSetStream on both classes (and Cache over Upstash): a miss forwards the generator's chunks
// as they come while recording them; calls meanwhile join (the chunks so far, then the live ones);
// a hit replays the recording, chunk boundaries kept. Cancelling, failing sources, the size limit,
// replay pacing, bytes and JSON chunks through the codec.
import { describe, mock, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, CacheError, MemoryCache, sleep } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const bridge = bridgeForTests();

/** A source that yields `chunks`, `ms` apart; `log` records what happened to it. */
function timed(chunks, ms = 5, log = { pulled: 0, cancelled: false }) {
  return new ReadableStream({
    async pull(controller) {
      if (log.pulled === chunks.length) return controller.close();
      await sleep(ms);
      controller.enqueue(chunks[log.pulled++]);
    },
    cancel() {
      log.cancelled = true;
    },
  });
}

async function readAll(stream) {
  const out = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

const CLASSES = {
  MemoryCache: () => new MemoryCache({ cleanupInterval: 0 }),
  Cache: () => new Cache({ cleanupInterval: 0 }),
  "Cache over Upstash": () => new Cache({ cleanupInterval: 0, upstash: { url: bridge.up.url, token: bridge.up.token } }),
};

for (const [name, make] of Object.entries(CLASSES)) {
  describe(`${name}: getOrSetStream`, () => {
    test("miss forwards chunks as they arrive and records them; the next call replays them", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      const chunks = ["Hel", "lo, ", "wor", "ld", "!"];
      let calls = 0;
      const log = { pulled: 0, cancelled: false };
      const gen = () => (calls++, timed(chunks, 10, log));
      const handed = [];
      const first = await c.getOrSetStream("explain", { topic: "x" }, gen, { waitUntil: (p) => handed.push(p) });
      assert.equal(handed.length, 1, "the generation was handed to waitUntil");
      assert.equal(first.status, "miss");
      assert.equal(first.key, c.key("explain", { topic: "x" }));
      const reader = first.stream.getReader();
      const one = await reader.read();
      assert.deepEqual(one, { value: "Hel", done: false });
      assert.ok(log.pulled < chunks.length, `the first chunk arrives before the source has finished (${log.pulled} pulled)`);
      const rest = [];
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(r.value);
      assert.deepEqual(["Hel", ...rest], chunks);
      await handed[0]; // fulfils once the recording is stored
      assert.ok(await c.lookup("explain", { topic: "x" }), "stored by the time waitUntil's promise fulfils");
      const second = await c.getOrSetStream("explain", { topic: "x" }, gen);
      assert.equal(second.status, "hit");
      assert.deepEqual(await readAll(second.stream), chunks, "chunk boundaries kept");
      assert.equal(calls, 1);
      c.shutdown();
    });

    test("100 concurrent callers: one generation, identical chunk sequences", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      let calls = 0;
      const chunks = Array.from({ length: 8 }, (_, i) => `tok${i} `);
      const entries = await Promise.all(
        Array.from({ length: 100 }, () => c.getOrSetStream("explain", { topic: "many" }, () => (calls++, timed(chunks, 3)))),
      );
      assert.equal(calls, 1);
      assert.deepEqual(
        [...new Set(entries.map((e) => e.status))].sort(),
        ["joined", "miss"],
      );
      const all = await Promise.all(entries.map((e) => readAll(e.stream)));
      for (const got of all) assert.deepEqual(got, chunks);
      // One arriving late joins mid-stream: the chunks so far, then the live ones.
      c.shutdown();
    });

    test("a caller joining mid-stream gets the chunks so far, then the live ones", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      const chunks = ["a", "b", "c", "d", "e", "f"];
      const first = await c.getOrSetStream("explain", "mid", () => timed(chunks, 15));
      const reader = first.stream.getReader();
      await reader.read();
      await reader.read();
      const late = await c.getOrSetStream("explain", "mid", () => assert.fail("joined, not generated"));
      assert.equal(late.status, "joined");
      assert.deepEqual(await readAll(late.stream), chunks);
      reader.releaseLock();
      assert.deepEqual(await readAll(first.stream), chunks.slice(2));
      c.shutdown();
    });

    test("cancelling one reader of three leaves the others served; cancelling all cancels the source", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      const log = { pulled: 0, cancelled: false };
      let signal;
      const gen = (ctx) => ((signal = ctx.signal), timed(["1", "2", "3", "4"], 10, log));
      const [a, b, d] = await Promise.all([0, 1, 2].map(() => c.getOrSetStream("explain", "cancel", gen)));
      await a.stream.cancel("not interested");
      assert.deepEqual(await readAll(b.stream), ["1", "2", "3", "4"]);
      assert.deepEqual(await readAll(d.stream), ["1", "2", "3", "4"]);
      assert.equal(log.cancelled, false);
      assert.equal(signal.aborted, false);

      const log2 = { pulled: 0, cancelled: false };
      let signal2;
      const gen2 = (ctx) => ((signal2 = ctx.signal), timed(["1", "2", "3", "4"], 20, log2));
      const readers = await Promise.all([0, 1, 2].map(() => c.getOrSetStream("explain", "all", gen2)));
      for (const r of readers) await r.stream.cancel("bye");
      await sleep(30);
      assert.equal(log2.cancelled, true, "the source is cancelled once every reader has left");
      assert.equal(signal2.aborted, true);
      await sleep(100);
      assert.equal(await c.lookup("explain", "all"), undefined, "an abandoned stream is not cached");
      const again = await c.getOrSetStream("explain", "all", () => timed(["x"], 1));
      assert.equal(again.status, "miss", "the next call generates anew");
      assert.deepEqual(await readAll(again.stream), ["x"]);
      c.shutdown();
    });

    test("a source that fails mid-way: every reader errors, nothing is cached, the next call generates", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      const boom = new Error("model fell over");
      async function* failing() {
        yield "partial ";
        await sleep(10);
        throw boom;
      }
      const [a, b] = await Promise.all([0, 1].map(() => c.getOrSetStream("explain", "fail", failing)));
      for (const e of [a, b]) {
        const err = await readAll(e.stream).then(() => null, (x) => x);
        assert.ok(err instanceof CacheError, String(err));
        assert.equal(err.code, "GENERATOR_FAILED");
        assert.equal(err.cause, boom);
      }
      assert.equal(await c.lookup("explain", "fail"), undefined);
      const next = await c.getOrSetStream("explain", "fail", async function* () {
        yield "whole";
      });
      assert.equal(next.status, "miss");
      assert.deepEqual(await readAll(next.stream), ["whole"]);
      c.shutdown();
    });

    test("maxStreamBytes: a larger stream passes through whole and is not cached; skip() caches nothing", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      const big = ["x".repeat(60), "y".repeat(60)];
      const e = await c.getOrSetStream("explain", "big", () => timed(big, 1), { maxStreamBytes: 100 });
      assert.deepEqual(await readAll(e.stream), big);
      await sleep(10);
      assert.equal((await c.stats()).errors, 1, "a stream too large to keep is counted (once)");
      assert.equal((await c.getOrSetStream("explain", "big", () => timed(big, 1), { maxStreamBytes: 100 })).status, "miss");
      const skipped = await c.getOrSetStream("explain", "skip", (ctx) => (ctx.skip(), timed(["a"], 1)));
      assert.deepEqual(await readAll(skipped.stream), ["a"]);
      await sleep(10);
      assert.equal(await c.lookup("explain", "skip"), undefined);
      c.shutdown();
    });

    test("bytes and JSON chunks come back as they went in", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      const chunks = [new Uint8Array([0, 1, 2, 255]), { type: "text-delta", delta: "hi" }, "plain", 42];
      const gen = async function* () {
        yield* chunks;
      };
      assert.deepEqual(await readAll((await c.getOrSetStream("explain", "kinds", gen)).stream), chunks);
      await sleep(10);
      const hit = await c.getOrSetStream("explain", "kinds", gen);
      assert.equal(hit.status, "hit");
      const got = await readAll(hit.stream);
      assert.ok(got[0] instanceof Uint8Array);
      assert.deepEqual([...got[0]], [0, 1, 2, 255]);
      assert.deepEqual(got.slice(1), chunks.slice(1));
      c.shutdown();
    });

    test("shutdown ends the streams being generated: readers error with SHUT_DOWN, the source is cancelled", async () => {
      if (name.includes("Upstash")) await bridge.up.raw("FLUSHDB");
      const c = make();
      const log = { pulled: 0, cancelled: false };
      let signal;
      const e = await c.getOrSetStream("explain", "down", (ctx) => ((signal = ctx.signal), timed(["1", "2", "3", "4", "5"], 20, log)));
      const reader = e.stream.getReader();
      await reader.read();
      c.shutdown();
      const err = await (async () => {
        for (;;) {
          const r = await reader.read();
          if (r.done) return null;
        }
      })().catch((x) => x);
      assert.equal(err?.code, "SHUT_DOWN");
      assert.equal(signal.aborted, true);
      await sleep(30);
      assert.equal(log.cancelled, true);
    });

    test("bad arguments are refused before anything runs", async () => {
      const c = make();
      for (const bad of [{ ttl: 0 }, { tll: 5 }, { replay: { chunkDelay: "soon" } }, { maxStreamBytes: 0 }, { signal: {} }, []]) {
        const err = await c.getOrSetStream("ns", 1, () => assert.fail("ran"), bad).then(() => null, (e) => e);
        assert.equal(err?.code, "INVALID_OPTIONS", `${JSON.stringify(bad)}: ${err}`);
      }
      const notFn = await c.getOrSetStream("ns", 1, "nope").then(() => null, (e) => e);
      assert.equal(notFn?.code, "INVALID_OPTIONS");
      const done = new AbortController();
      done.abort(new Error("gone"));
      const aborted = await c.getOrSetStream("ns", 1, () => assert.fail("ran"), { signal: done.signal }).then(() => null, (e) => e);
      assert.equal(aborted.message, "gone");
      c.shutdown();
    });
  });
}

test("replay.chunkDelay paces a hit (mocked timers)", async () => {
  const c = new MemoryCache({ cleanupInterval: 0 });
  await readAll((await c.getOrSetStream("ns", "paced", async function* () { yield* ["a", "b", "c"]; })).stream);
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const hit = await c.getOrSetStream("ns", "paced", () => assert.fail("ran"), { replay: { chunkDelay: "1s" } });
    assert.equal(hit.status, "hit");
    const reader = hit.stream.getReader();
    assert.deepEqual(await reader.read(), { value: "a", done: false }, "the first chunk at once");
    let second = null;
    reader.read().then((r) => (second = r));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    assert.equal(second, null, "the next one waits for the delay");
    mock.timers.tick(999);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    assert.equal(second, null);
    mock.timers.tick(1);
    for (let i = 0; i < 10 && second === null; i++) await Promise.resolve();
    assert.deepEqual(second, { value: "b", done: false });
  } finally {
    mock.timers.reset();
    c.shutdown();
  }
});
