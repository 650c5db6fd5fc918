// `persist` in headless Chromium: the browser entry (`cachette/web`) of the built package with
// its IndexedDB tier, pages of one origin sharing it (reloads, a second tab, BroadcastChannel,
// Web Locks), the byte bound, and a disk that fills up. Each test runs in a fresh browser
// context (its own IndexedDB) on a tiny static server over pkg/.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { after, before, test } from "node:test";
import { ROOT, launchChromium } from "./helpers.mjs";

const PKG = join(ROOT, "pkg");
const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".wasm": "application/wasm", ".json": "application/json" };
// The page: the package's no-bundler entry, a generator that counts its calls on the page.
const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">
import { init, Cache, CacheError } from "/pkg/web.js";
await init();
window.Cache = Cache;
window.CacheError = CacheError;
window.calls = 0;
window.unhandled = [];
addEventListener("unhandledrejection", (e) => window.unhandled.push(String(e.reason)));
window.generate = (value, ms = 0) => async () => {
  window.calls++;
  if (ms) await new Promise((r) => setTimeout(r, ms));
  return value;
};
document.body.dataset.ready = "true";
</script><body></body>`;

// The README's browser example, its import map pointed at pkg/ as node_modules/cachette.
const README_EXAMPLE = (() => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/^```html\n([\s\S]*?)^```$/gm)].map((m) => m[1]).filter((b) => b.includes("persist"));
  assert.equal(blocks.length, 1, "one html example of persist in README.md");
  return blocks[0].replaceAll("/node_modules/cachette/", "/pkg/");
})();

let server;
let origin;
let browser;

before(async () => {
  server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/" || path === "/readme.html") {
      res.writeHead(200, { "content-type": MIME[".html"] });
      return res.end(path === "/" ? PAGE : README_EXAMPLE);
    }
    const file = normalize(join(PKG, path.replace(/^\/pkg\//, "")));
    if (!path.startsWith("/pkg/") || !file.startsWith(PKG + sep)) {
      res.writeHead(404);
      return res.end();
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** A fresh context (its own IndexedDB); `open()` adds a page of its origin, ready. */
async function origin1() {
  const context = await browser.newContext();
  const problems = [];
  const open = async () => {
    const page = await context.newPage();
    page.on("pageerror", (e) => problems.push(`page error: ${e.stack ?? e}`));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
    });
    await page.goto(`${origin}/`);
    await page.waitForSelector("body[data-ready=true]", { state: "attached" });
    return page;
  };
  return { context, open, problems };
}

const reload = async (page) => {
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
};

test("an answer survives a reload: a hit from IndexedDB, no generator call", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  const first = await page.evaluate(async () => {
    const c = new Cache({ persist: true });
    const e = await c.getOrSetEntry("answers", { q: "reload" }, generate({ text: "paid for once" }));
    return [e.status, calls];
  });
  assert.deepEqual(first, ["miss", 1]);
  await reload(page);
  const second = await page.evaluate(async () => {
    const c = new Cache({ persist: true });
    const e = await c.getOrSetEntry("answers", { q: "reload" }, generate({ text: "again" }));
    const s = await c.stats();
    return { value: e.value, status: e.status, calls, persistentHits: s.persistentHits, memoryHits: s.memoryHits, entries: s.persistent.entries };
  });
  assert.deepEqual(second, { value: { text: "paid for once" }, status: "hit", calls: 0, persistentHits: 1, memoryHits: 0, entries: 1 });
  // The figures CacheStats types for this tier (tests/js/contracts.test.mjs leaves them to this
  // test: Node.js has no IndexedDB), each a number or a boolean as typed.
  const figures = await page.evaluate(async () => {
    const s = await new Cache({ persist: true }).stats();
    return [typeof s.persistentHits, Object.fromEntries(Object.entries(s.persistent).map(([k, v]) => [k, typeof v]))];
  });
  assert.deepEqual(figures, [
    "number",
    { name: "string", entries: "number", bytes: "number", maxBytes: "number", evictions: "number", writes: "number", queued: "number", degraded: "boolean" },
  ]);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a delete is never read back from the disk, even before its write reached it", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  const r = await page.evaluate(async () => {
    const c = new Cache({ persist: true });
    await c.set("v1:d:1", "kept");
    await new Promise((r) => setTimeout(r, 50)); // on disk
    const deleted = await c.delete("v1:d:1");
    const right = await c.get("v1:d:1"); // the delete is still queued
    await c.set("v1:d:2", "x");
    const r2 = await c.delete("v1:d:2");
    await c.shutdown();
    const d = new Cache({ persist: true });
    return [deleted, right, r2, await d.get("v1:d:1"), await d.get("v1:d:2"), (await d.stats()).persistent.entries];
  });
  assert.deepEqual(r, [true, undefined, true, undefined, undefined, 0]);
  assert.deepEqual(problems, []);
  await context.close();
});

test("expiry holds across a reload; grace serves the stale answer after one", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  await page.evaluate(async () => {
    const c = new Cache({ persist: true, ttl: "300ms" });
    await c.getOrSet("short", { q: 1 }, generate("expires"));
    const g = new Cache({ persist: true, ttl: "300ms", grace: "1h", staleWhileRevalidate: true });
    await g.getOrSet("graced", { q: 1 }, generate("stale but served"));
    await Promise.all([c.shutdown(), g.shutdown()]);
  });
  await reload(page);
  await page.waitForTimeout(400);
  // What this page stores lasts an hour, so that a slow machine does not expire it mid-test.
  const r = await page.evaluate(async () => {
    const c = new Cache({ persist: true, ttl: "1h", grace: "1h", staleWhileRevalidate: true });
    const expired = await c.getOrSetEntry("short", { q: 1 }, generate("generated again"));
    const refreshes = [];
    const stale = await c.getOrSetEntry("graced", { q: 1 }, generate("refreshed"), { waitUntil: (p) => refreshes.push(p) });
    await Promise.all(refreshes);
    const fresh = await c.getOrSetEntry("graced", { q: 1 }, generate("not called"));
    return { expired: [expired.value, expired.status], stale: [stale.value, stale.status], fresh: [fresh.value, fresh.status], calls };
  });
  assert.deepEqual(r, {
    expired: ["generated again", "miss"],
    stale: ["stale but served", "stale"],
    fresh: ["refreshed", "hit"],
    calls: 2,
  });
  assert.deepEqual(problems, []);
  await context.close();
});

test("two tabs: an invalidation or deletePattern in one reaches the other", async () => {
  const { context, open, problems } = await origin1();
  const [a, b] = [await open(), await open()];
  const setup = async () => {
    window.c = new Cache({ persist: true });
    await c.getOrSet("topics", { t: 1 }, generate("t1"));
    await c.getOrSet("topics", { t: 2 }, generate("t2"));
    await c.getOrSet("other", { t: 3 }, generate("t3"));
    // The writes are queued: wait until they are on disk.
    while ((await c.stats()).persistent.writes < 3) await new Promise((r) => setTimeout(r, 20));
  };
  /** Waits (at most 5 s) until this page's cache no longer has `key`. */
  const gone = (page, key) =>
    page.evaluate(async (key) => {
      for (let i = 0; i < 250; i++) {
        if ((await c.get(key)) === undefined) return true;
        await new Promise((r) => setTimeout(r, 20));
      }
      return false;
    }, key);
  await a.evaluate(setup);
  // b reads what a persisted (and holds it in its memory).
  assert.deepEqual(await b.evaluate(async () => {
    window.c = new Cache({ persist: true });
    return [await c.getOrSet("topics", { t: 1 }, generate("b1")), await c.getOrSet("other", { t: 3 }, generate("b3")), calls];
  }), ["t1", "t3", 0]);
  // a invalidates the namespace: b's memory copy goes too, and the disk's.
  assert.equal(await a.evaluate(() => c.invalidateNamespace("topics")), 2);
  assert.equal(await gone(b, await b.evaluate(() => c.key("topics", { t: 1 }))), true);
  assert.deepEqual(await b.evaluate(async () => [await c.getOrSetEntry("topics", { t: 1 }, generate("b1 again")).then((e) => e.status), calls]), ["miss", 1]);
  // b deletes by pattern: gone from a and from the disk, for both.
  assert.equal(await b.evaluate(() => c.deletePattern("v1:other:*")), 1);
  assert.equal(await gone(a, await a.evaluate(() => c.key("other", { t: 3 }))), true);
  assert.deepEqual(await a.evaluate(async () => (await c.stats()).persistent.entries), 1);
  assert.deepEqual(await b.evaluate(async () => (await c.stats()).persistent.entries), 1);
  assert.deepEqual(problems, []);
  await context.close();
});

test("two tabs ask for the same new key at once: one generator call in all", async () => {
  const { context, open, problems } = await origin1();
  const [a, b] = [await open(), await open()];
  const ask = () => {
    window.c = new Cache({ persist: true });
    window.go = new Promise((r) => (window.start = r)).then(() => c.getOrSetEntry("answers", { q: "both" }, generate("once", 1000)));
  };
  await a.evaluate(ask);
  await b.evaluate(ask);
  await Promise.all([a.evaluate(() => start()), b.evaluate(() => start())]);
  const [ea, eb] = await Promise.all([a.evaluate(async () => [(await go).value, (await go).status, calls]), b.evaluate(async () => [(await go).value, (await go).status, calls])]);
  assert.equal(ea[0], "once");
  assert.equal(eb[0], "once");
  assert.equal(ea[2] + eb[2], 1, "one generator call across the two tabs");
  assert.deepEqual([ea[1], eb[1]].sort(), ["joined", "miss"]);
  assert.deepEqual(problems, []);
  await context.close();
});

test("persist.maxBytes: least recently used entries go first, counted in stats()", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  const r = await page.evaluate(async () => {
    const c = new Cache({ persist: { name: "small", maxBytes: 6_000 } });
    const text = "x".repeat(1_000); // about 2 KB stored
    for (const k of [1, 2]) await c.set(`v1:lru:${k}`, text);
    // 1 is read by a cache opened after this one is shut down: its last access moves on disk.
    await c.shutdown();
    const d = new Cache({ persist: { name: "small", maxBytes: 6_000 } });
    await d.get("v1:lru:1");
    await d.set("v1:lru:3", text);
    await d.shutdown(); // writes what is queued
    const s = await d.stats();
    const e = new Cache({ persist: { name: "small", maxBytes: 6_000 } });
    return {
      evictions: s.persistent.evictions,
      entries: s.persistent.entries,
      within: s.persistent.bytes <= s.persistent.maxBytes,
      kept: [await e.has("v1:lru:1"), await e.has("v1:lru:2"), await e.has("v1:lru:3")],
    };
  });
  assert.deepEqual(r, { evictions: 1, entries: 2, within: true, kept: [true, false, true] });
  assert.deepEqual(problems, []);
  await context.close();
});

test("a full disk: degraded health, answers still served from memory, no unhandled rejection", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  const r = await page.evaluate(async () => {
    // Every write fails the way a full disk does.
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function () {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    };
    const c = new Cache({ persist: true });
    const first = await c.getOrSetEntry("answers", { q: 1 }, generate("kept in memory"));
    await new Promise((r) => setTimeout(r, 100));
    const h = await c.health();
    const again = await c.getOrSetEntry("answers", { q: 1 }, generate("not called"));
    const s = await c.stats();
    IDBObjectStore.prototype.put = put;
    return { first: first.status, again: [again.value, again.status], calls, health: [h.status, h.error], degraded: s.persistent.degraded, unhandled };
  });
  assert.equal(r.first, "miss");
  assert.deepEqual(r.again, ["kept in memory", "hit"]);
  assert.equal(r.calls, 1);
  assert.equal(r.health[0], "degraded");
  assert.match(r.health[1], /full|quota/i);
  assert.equal(r.degraded, true);
  assert.deepEqual(r.unhandled, []);
  assert.deepEqual(problems, []);
  await context.close();
});

test("persist options are checked", async () => {
  const { context, open } = await origin1();
  const page = await open();
  const codes = await page.evaluate(() =>
    [{ persist: "yes" }, { persist: { name: "" } }, { persist: { maxBytes: 0 } }, { persist: { nope: 1 } }].map((o) => {
      try {
        new Cache(o);
        return "accepted";
      } catch (e) {
        return e instanceof CacheError ? e.code : String(e);
      }
    }),
  );
  assert.deepEqual(codes, Array(4).fill("INVALID_OPTIONS"));
  await context.close();
});

test("a read from disk that an invalidation overtakes is not kept", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  await page.evaluate(async () => {
    const c = new Cache({ persist: true });
    for (let i = 0; i < 20; i++) await c.set(`v1:race:${i}`, i);
    await c.shutdown();
  });
  await reload(page);
  const left = await page.evaluate(async () => {
    const c = new Cache({ persist: true });
    // Every get reads the disk; the invalidation runs while those reads are under way.
    const during = await Promise.all([...Array.from({ length: 20 }, (_, i) => c.get(`v1:race:${i}`)), c.invalidateNamespace("race")]);
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => c.get(`v1:race:${i}`)));
    window.debug = JSON.stringify({ during, after, s: (await c.stats()).persistent });
    return after.filter((v) => v !== undefined).length;
  });
  assert.equal(left, 0, `no invalidated value came back from a read under way ${await page.evaluate(() => window.debug)}`);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a refresh in the background, and warm, go through the disk", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  // Only the first value is short-lived: what the refresh and warm store lasts an hour, so that
  // a slow reload does not expire it.
  await page.evaluate(async () => {
    const c = new Cache({ persist: true, ttl: "1h", grace: "1h", staleWhileRevalidate: true });
    await c.getOrSet("doc", { id: 1 }, generate("v1"), { ttl: "300ms" });
    await new Promise((r) => setTimeout(r, 350));
    const refreshes = [];
    const e = await c.getOrSetEntry("doc", { id: 1 }, generate("v2"), { waitUntil: (p) => refreshes.push(p) });
    if (e.status !== "stale") throw new Error(`expected stale, got ${e.status}`);
    await Promise.all(refreshes);
    await c.warm({ topics: generate("warmed") }, { topics: ["A", "B"] });
    await c.shutdown();
  });
  await reload(page);
  const r = await page.evaluate(async () => {
    const c = new Cache({ persist: true, ttl: "1h", grace: "1h", staleWhileRevalidate: true });
    const e = await c.getOrSetEntry("doc", { id: 1 }, generate("v3"));
    const w = await c.warm({ topics: generate("warmed again") }, { topics: ["A", "B"] });
    return { refreshed: [e.value, e.status], warmed: w.warmed, calls, fromDisk: await c.lookup("topics", { topic: "A" }) };
  });
  assert.deepEqual(r, { refreshed: ["v2", "hit"], warmed: 2, calls: 0, fromDisk: "warmed" });
  assert.deepEqual(problems, []);
  await context.close();
});

test("a database that cannot open: memory only, degraded, and nothing waits forever", async () => {
  const { context, open, problems } = await origin1();
  const page = await open();
  const r = await page.evaluate(async () => {
    const real = indexedDB.open;
    indexedDB.open = () => {
      throw new DOMException("The user denied storage.", "SecurityError");
    };
    const c = new Cache({ persist: true });
    const removed = await c.invalidateNamespace("x");
    await c.set("v1:a:1", "kept");
    const value = await c.get("v1:a:1");
    const h = await c.health();
    indexedDB.open = real;
    return { removed, value, health: h.status, error: h.error, degraded: (await c.stats()).persistent.degraded, unhandled };
  });
  assert.deepEqual(
    { ...r, error: /cannot be opened/.test(r.error) },
    { removed: 0, value: "kept", health: "degraded", error: true, degraded: true, unhandled: [] },
  );
  assert.deepEqual(problems, []);
  await context.close();
});

test("the README's browser example: a miss, then after a reload a hit", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  const shown = async () => {
    await page.waitForFunction(() => document.getElementById("out").textContent !== "…");
    return page.textContent("#out");
  };
  await page.goto(`${origin}/readme.html`);
  assert.equal(await shown(), "miss: A place that keeps answers close.");
  // Written behind: wait until the answer is on disk before reloading.
  await page.waitForFunction(
    () =>
      new Promise((resolve) => {
        const open = indexedDB.open("cachette:answers");
        open.onsuccess = () => {
          const count = open.result.transaction("entries").objectStore("entries").count();
          count.onsuccess = () => (open.result.close(), resolve(count.result === 1));
        };
        open.onerror = () => resolve(false);
      }),
  );
  await page.reload();
  assert.equal(await shown(), "hit: A place that keeps answers close.");
  assert.deepEqual(problems, []);
  await context.close();
});
