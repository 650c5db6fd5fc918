// The endpoints of both example Workers (Rust: examples/worker; JS: examples/worker-js) under
// workerd (Miniflare), against upstash-bridge + redis-server: the same suite for each.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ADMIN_TOKEN, WORKERS, bearer, freshTopic, secrets, startUpstash, startWorker, subtopicsPath } from "./helpers.mjs";

const STATS_FIELDS = [
  "backend", "version", "hits", "memoryHits", "sharedHits", "misses", "hitRatePercent", "totalRequests", "sets", "deletes",
  "invalidations", "evictions", "expirations", "errors", "avgLatencyMs", "p99LatencyMs", "keys",
  "maxEntries", "memoryUsedBytes", "cleanupTimerActive", "fallbackActive", "upstash",
].sort();
const UPSTASH_FIELDS = [
  "keyspaceHits", "keyspaceMisses", "evictedKeys", "usedMemoryBytes", "roundTrips", "commands", "bytesSent",
  "bytesReceived", "locksAcquired", "locksReleased", "lockWaits", "lockJoins", "lockTimeouts",
].sort();
const LEGACY_FIELDS = [
  "backend", "version", "hits", "misses", "total_requests", "hit_rate_percent", "sets", "deletes",
  "invalidations", "evictions", "expirations", "errors", "avg_latency_ms", "p99_latency_ms",
  "total_keys", "max_size", "memory_used_mb", "cleanup_running", "fallback_active", "redis_stats",
].sort();
const LEGACY_REDIS_FIELDS = ["keyspace_hits", "keyspace_misses", "evicted_keys", "used_memory", "used_memory_human", "round_trips"].sort();

let up;
before(async () => {
  up = await startUpstash();
});
after(() => up?.stop());

const keys = (o) => Object.keys(o).sort();

for (const kind of ["rust", "js"]) {
  describe(WORKERS[kind].label, () => {
    let w;
    const get = (path, init) => w.request("main", path, init);
    before(async () => {
      await up.raw("FLUSHDB");
      w = await startWorker(kind, {
        main: secrets(up),
        unconfigured: { ADMIN_TOKEN },
        noAdmin: { UPSTASH_REDIS_REST_URL: up.url, UPSTASH_REDIS_REST_TOKEN: up.token },
      });
    });
    after(() => w?.dispose());

    test("health, in the first response", () => {
      assert.equal(w.first.status, 200, JSON.stringify(w.first.body));
      assert.equal(w.first.body.status, "healthy");
      assert.equal(w.first.body.backend, "upstash");
      assert.equal(typeof w.first.body.latencyMs, "number");
      assert.equal(w.first.body.error, undefined);
    });

    test("subtopics: a miss, then a hit with the same body", async () => {
      const topic = freshTopic("Rust ownership");
      const miss = await get(subtopicsPath(topic));
      assert.equal(miss.status, 200, JSON.stringify(miss.body));
      assert.equal(miss.headers.get("x-cache"), "miss");
      assert.equal(miss.body.topic, topic);
      assert.equal(miss.body.subtopics.length, 5);
      assert.equal(miss.body.generatedBy, WORKERS[kind].generatedBy);
      const hit = await get(subtopicsPath(topic));
      assert.equal(hit.headers.get("x-cache"), "hit");
      assert.deepEqual(hit.body, miss.body);
      const stored = await up.raw("KEYS", "v1:subtopics:*");
      assert.ok(stored.result.length >= 1, "the value lives in Redis under a readable key");
    });

    test("subtopics: concurrent requests for one topic run the generator once", async () => {
      const topic = freshTopic("Concurrency");
      const all = await Promise.all(Array.from({ length: 6 }, () => get(subtopicsPath(topic))));
      assert.deepEqual(all.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
      assert.equal(all.filter((r) => r.headers.get("x-cache") === "miss").length, 1, "exactly one generation");
      for (const r of all) assert.deepEqual(r.body, all[0].body);
    });

    test("bad requests, unknown routes, wrong methods", async () => {
      for (const path of ["/api/subtopics", "/api/subtopics?topic=", `/api/subtopics?topic=${"x".repeat(201)}`]) {
        const r = await get(path);
        assert.equal(r.status, 400, path);
        assert.equal(r.body.error.code, "BAD_REQUEST");
      }
      const fmt = await get("/api/cache/stats?format=xml");
      assert.equal(fmt.status, 400);
      const nf = await get("/api/nothing");
      assert.equal(nf.status, 404);
      assert.equal(nf.body.error.code, "NOT_FOUND");
      const post = await get("/api/subtopics?topic=x", { method: "POST" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET");
      const getInv = await get("/api/cache/invalidate/subtopics");
      assert.equal(getInv.status, 405);
      assert.equal(getInv.headers.get("allow"), "POST");
    });

    test("invalidation: only with the admin token", async () => {
      const topic = freshTopic("Invalidation");
      assert.equal((await get(subtopicsPath(topic))).headers.get("x-cache"), "miss");
      const refused = [
        { method: "POST" },
        bearer("wrong-token"),
        bearer(ADMIN_TOKEN.slice(0, -1)),
        bearer(`${ADMIN_TOKEN}x`),
        { method: "POST", headers: { Authorization: `Basic ${ADMIN_TOKEN}` } },
        { method: "POST", headers: { Authorization: ADMIN_TOKEN } },
      ];
      for (const init of refused) {
        const r = await get("/api/cache/invalidate/subtopics", init);
        assert.equal(r.status, 401, JSON.stringify(init.headers));
        assert.equal(r.body.error.code, "UNAUTHORIZED");
        assert.equal(r.headers.get("www-authenticate"), "Bearer");
      }
      // Authentication comes before validation: an anonymous caller learns nothing.
      assert.equal((await get("/api/cache/invalidate/a:b", { method: "POST" })).status, 401);
      assert.equal((await get(subtopicsPath(topic))).headers.get("x-cache"), "hit", "nothing was invalidated");

      // Namespaces are glob-escaped: `subtopic*` is not a pattern over `subtopics`.
      const star = await get("/api/cache/invalidate/subtopic*", bearer());
      assert.deepEqual([star.status, star.body], [200, { invalidated: 0 }]);
      const ok = await get("/api/cache/invalidate/subtopics", { method: "POST", headers: { Authorization: `bearer ${ADMIN_TOKEN}` } });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.ok(Number.isInteger(ok.body.invalidated) && ok.body.invalidated >= 1, JSON.stringify(ok.body));
      assert.deepEqual(keys(ok.body), ["invalidated"]);
      assert.equal((await get(subtopicsPath(topic))).headers.get("x-cache"), "miss", "regenerated after invalidation");
    });

    test("invalidation: an invalid namespace is a 400 with the CacheError code", async () => {
      for (const ns of ["a:b", "a%3Ab", "", "%E0%A4%A"]) {
        const r = await get(`/api/cache/invalidate/${ns}`, bearer());
        assert.equal(r.status, 400, `${ns}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, "INVALID_KEY", ns);
        assert.equal(typeof r.body.error.message, "string");
      }
    });

    test("invalidation is disabled while ADMIN_TOKEN is unset", async () => {
      const r = await w.request("noAdmin", "/api/cache/invalidate/subtopics", bearer());
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, "ADMIN_TOKEN_MISSING");
      const r2 = await w.request("noAdmin", "/api/cache/invalidate/subtopics", bearer(""));
      assert.equal(r2.status, 503);
    });

    test("stats: camelCase, and ?format=legacy in the old field names", async () => {
      const s = (await get("/api/cache/stats")).body;
      assert.deepEqual(keys(s), STATS_FIELDS);
      assert.deepEqual(keys(s.upstash), UPSTASH_FIELDS);
      assert.equal(s.backend, "upstash");
      assert.equal(s.version, "v1");
      assert.ok(s.hits >= 2 && s.misses >= 3 && s.sets >= 3, JSON.stringify(s));
      assert.equal(s.totalRequests, s.hits + s.misses);
      assert.equal(s.cleanupTimerActive, false, "no timer in a Worker");
      assert.equal(s.fallbackActive, false);
      assert.ok(s.upstash.usedMemoryBytes > 0);

      const l = (await get("/api/cache/stats?format=legacy")).body;
      assert.deepEqual(keys(l), LEGACY_FIELDS);
      assert.deepEqual(keys(l.redis_stats), LEGACY_REDIS_FIELDS);
      assert.equal(l.backend, "redis");
      assert.equal(l.version, s.version);
      for (const [old, now] of [["hits", "hits"], ["misses", "misses"], ["total_requests", "totalRequests"],
        ["hit_rate_percent", "hitRatePercent"], ["sets", "sets"], ["invalidations", "invalidations"],
        ["max_size", "maxEntries"], ["cleanup_running", "cleanupTimerActive"], ["fallback_active", "fallbackActive"]]) {
        assert.equal(l[old], s[now], `${old} = ${now}`);
      }
      assert.equal(l.memory_used_mb, Math.round((s.memoryUsedBytes / 2 ** 20) * 100) / 100);
      assert.equal(typeof l.avg_latency_ms, "number");
      assert.equal(typeof l.p99_latency_ms, "number");
      assert.ok(Number.isInteger(l.total_keys) && l.total_keys >= 1);
      assert.ok(l.redis_stats.used_memory > 0);
      assert.match(l.redis_stats.used_memory_human, /^(\d+B|\d+\.\d\d[KMGT])$/);
      assert.ok(l.redis_stats.round_trips > s.upstash.roundTrips, "round trips keep counting");
    });

    test("secrets missing: a JSON 503 with the CacheError code, and the isolate keeps serving", async () => {
      for (let round = 0; round < 2; round++) {
        for (const [path, init] of [[subtopicsPath("x")], ["/api/cache/stats"], ["/api/cache/invalidate/subtopics", bearer()]]) {
          const r = await w.request("unconfigured", path, init);
          assert.equal(r.status, 503, `${path}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body.error.code, "INVALID_OPTIONS", path);
          assert.match(r.body.error.message, /UPSTASH_REDIS_REST_URL/);
        }
        const h = await w.request("unconfigured", "/api/health");
        assert.equal(h.status, 503);
        assert.equal(h.body.status, "unhealthy");
        assert.equal(h.body.error.code, "INVALID_OPTIONS");
      }
      assert.equal((await get("/api/health")).body.status, "healthy", "the configured isolate is unaffected");
    });

    test("Upstash down: health degraded, subtopics still served from memory", async () => {
      await up.faults({ mode: "reset" });
      try {
        const h = await get("/api/health");
        assert.equal(h.status, 200, JSON.stringify(h.body));
        assert.equal(h.body.status, "degraded");
        assert.match(h.body.error, /unreachable/i);
        assert.ok(!h.body.error.includes(up.token), "no token in the error");

        const topic = freshTopic("Offline");
        const miss = await get(subtopicsPath(topic));
        assert.equal(miss.status, 200, JSON.stringify(miss.body));
        assert.equal(miss.headers.get("x-cache"), "miss");
        const hit = await get(subtopicsPath(topic));
        assert.equal(hit.status, 200);
        assert.equal(hit.headers.get("x-cache"), "hit", "served by the memory tier");
        assert.deepEqual(hit.body, miss.body);

        const s = (await get("/api/cache/stats")).body;
        assert.equal(s.fallbackActive, true);
        assert.ok(s.errors >= 3, `errors ${s.errors}`);
        assert.equal(s.upstash, undefined);
        const l = (await get("/api/cache/stats?format=legacy")).body;
        assert.equal(l.fallback_active, true);
        assert.equal(l.redis_stats, null);

        // An invalidation that cannot reach Upstash says so.
        const inv = await get("/api/cache/invalidate/subtopics", bearer());
        assert.equal(inv.status, 503, JSON.stringify(inv.body));
        assert.equal(inv.body.error.code, "UPSTASH_TRANSPORT");
      } finally {
        await up.faults({ mode: "none" });
      }
      const back = await get("/api/health");
      assert.equal(back.body.status, "healthy");
      assert.equal((await get("/api/cache/stats")).body.fallbackActive, false);
    });
  });
}
