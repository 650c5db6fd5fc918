// The official @upstash/redis client (pinned in package.json) against upstash-bridge, with its
// defaults: auto-pipelining on, `Upstash-Encoding: base64`, read-your-writes sync tokens.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { Redis } from "@upstash/redis";

import { setFault, upstashEnv } from "./env.mjs";

let env;
let redis;
const prefix = `official-client:${randomUUID()}:`;
const k = (name) => prefix + name;

function client(options = {}) {
  return new Redis({
    url: env.url,
    token: env.token,
    enableTelemetry: false,
    enableAutoPipelining: true,
    ...options,
  });
}

before(async () => {
  env = await upstashEnv();
  redis = client();
});

after(async () => {
  if (redis) {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, { match: `${prefix}*`, count: 1000 });
      if (keys.length > 0) await redis.del(...keys);
      cursor = String(next);
    } while (cursor !== "0");
  }
  await setFault(env, { mode: "none" }).catch(() => {});
  env?.stop();
});

describe("@upstash/redis against upstash-bridge", () => {
  test("set/get, with JSON auto-deserialization and TTLs", async () => {
    assert.equal(await redis.set(k("s"), "hello"), "OK");
    assert.equal(await redis.get(k("s")), "hello");
    const obj = { a: 1, b: [true, null, "x"], nested: { emoji: "😀" } };
    assert.equal(await redis.set(k("obj"), obj, { ex: 60 }), "OK");
    assert.deepEqual(await redis.get(k("obj")), obj);
    const ttl = await redis.ttl(k("obj"));
    assert.ok(ttl > 55 && ttl <= 60, `ttl ${ttl}`);
    await redis.set(k("num"), 42);
    assert.equal(await redis.get(k("num")), 42);
    assert.equal(await redis.get(k("missing")), null);
    // A stored "OK" comes back base64-encoded ("T0s=") and decodes to "OK".
    await redis.set(k("ok"), "OK");
    assert.equal(await redis.get(k("ok")), "OK");
    assert.equal(await redis.incr(k("ctr")), 1);
    assert.equal(await redis.incrbyfloat(k("f"), 1.5), 1.5);
    await redis.zadd(k("z"), { score: 1.5, member: "m" });
    assert.equal(await redis.zscore(k("z"), "m"), 1.5);
    await redis.hset(k("h"), { f1: "v1", f2: 2 });
    assert.deepEqual(await redis.hgetall(k("h")), { f1: "v1", f2: 2 });
    assert.equal(await redis.hgetall(k("nohash")), null);
    assert.equal(await redis.ping(), "PONG");
  });

  test("auto-pipelining batches concurrent commands into /pipeline", async () => {
    const before = redis.pipelineCounter;
    const results = await Promise.all([
      redis.set(k("ap:a"), "1"),
      redis.incr(k("ap:c")),
      redis.get(k("s")),
      redis.mget(k("s"), k("missing")),
    ]);
    assert.deepEqual(results, ["OK", 1, "hello", ["hello", null]]);
    assert.ok(redis.pipelineCounter > before, "auto-pipelining sent pipelines");
    // A failing slot rejects only its own caller.
    await redis.set(k("ap:str"), "x");
    const settled = await Promise.allSettled([redis.lpush(k("ap:str"), "y"), redis.get(k("ap:str"))]);
    assert.equal(settled[0].status, "rejected");
    assert.match(String(settled[0].reason), /WRONGTYPE/);
    assert.deepEqual(settled[1], { status: "fulfilled", value: "x" });
  });

  test("pipeline with a WRONGTYPE slot", async () => {
    const p = redis.pipeline();
    p.set(k("p"), "1");
    p.lpush(k("p"), "x");
    p.get(k("p"));
    await assert.rejects(p.exec(), (err) => {
      assert.equal(err.name, "UpstashError");
      assert.match(err.message, /Command 2 \[ lpush \] failed: WRONGTYPE/);
      return true;
    });
    const q = redis.pipeline();
    q.set(k("p"), "1");
    q.lpush(k("p"), "x");
    q.get(k("p"));
    const res = await q.exec({ keepErrors: true });
    assert.equal(res.length, 3);
    assert.deepEqual(res[0], { result: "OK", error: undefined });
    assert.match(res[1].error, /^WRONGTYPE/);
    assert.equal(res[2].result, 1);
  });

  test("multi/exec", async () => {
    const tx = redis.multi();
    tx.set(k("t"), "1");
    tx.incr(k("t"));
    tx.get(k("t"));
    assert.deepEqual(await tx.exec(), ["OK", 2, 2]);
    // A queue-time error discards the whole transaction (EXECABORT).
    const bad = redis.multi();
    bad.set(k("t2"), "1");
    bad.hset(k("t3"), {});
    await assert.rejects(bad.exec(), /EXECABORT|ERR/);
    assert.equal(await redis.exists(k("t2")), 0);
  });

  test("scan with match", async () => {
    const names = Array.from({ length: 25 }, (_, i) => k(`scan:${i}`));
    await Promise.all(names.map((name, i) => redis.set(name, `v${i}`)));
    await redis.set(k("other"), "x");
    const seen = new Set();
    let cursor = "0";
    let pages = 0;
    do {
      const [next, keys] = await redis.scan(cursor, { match: `${prefix}scan:*`, count: 5 });
      assert.equal(typeof next, "string");
      keys.forEach((key) => seen.add(key));
      cursor = next;
      pages += 1;
    } while (cursor !== "0" && pages < 1000);
    assert.deepEqual([...seen].sort(), [...names].sort());
  });

  test("eval, evalsha and scripts", async () => {
    const res = await redis.eval("return {KEYS[1], ARGV[1], 7, false}", [k("e")], ["x"]);
    assert.deepEqual(res, [k("e"), "x", 7, null]);
    // createScript tries EVALSHA, gets NOSCRIPT, falls back to EVAL.
    const script = redis.createScript(`return ARGV[1] .. "-${randomUUID()}"`);
    const out = await script.exec([], ["hi"]);
    assert.match(out, /^hi-/);
    assert.equal(await script.exec([], ["again"]), out.replace(/^hi/, "again"));
    await assert.rejects(redis.evalsha("0".repeat(40), [], []), /NOSCRIPT/);
  });

  test("binary-unsafe values come back as lossy UTF-8", async () => {
    const res = await fetch(`${env.url}/set/${encodeURIComponent(k("bin"))}`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.token}` },
      body: new Uint8Array([0x80]),
    });
    assert.deepEqual(await res.json(), { result: "OK" });
    assert.equal(await redis.get(k("bin")), "\ufffd");
  });

  test("sync token is carried", async () => {
    await redis.set(k("rw"), "1");
    assert.match(redis.readYourWritesSyncToken, /^\d+$/);
  });

  test("a wrong token is a 401 error", async () => {
    const wrong = client({ token: "not-the-token", retry: false });
    await assert.rejects(wrong.get(k("s")), (err) => {
      assert.equal(err.name, "UpstashError");
      assert.match(err.message, /WRONGPASS/);
      assert.ok(!err.message.includes(env.token));
      return true;
    });
    const direct = await fetch(env.url, {
      method: "POST",
      headers: { authorization: "Bearer not-the-token" },
      body: '["PING"]',
    });
    assert.equal(direct.status, 401);
  });

  test("the read-only token refuses writes", async (t) => {
    if (!env.readOnlyToken) {
      t.skip("UPSTASH_REDIS_REST_READONLY_TOKEN is not set");
      return;
    }
    const ro = client({ token: env.readOnlyToken });
    assert.equal(await ro.get(k("s")), "hello");
    await assert.rejects(ro.set(k("s"), "changed"), /NOPERM/);
    assert.equal(await redis.get(k("s")), "hello");
  });

  test("transport faults: retried after a reset, surfaced for 5xx and malformed bodies", async () => {
    const retrying = client({ retry: { retries: 2, backoff: () => 10 } });
    await setFault(env, { mode: "reset", count: 1 });
    assert.equal(await retrying.get(k("s")), "hello");
    await setFault(env, { mode: "status", status: 503, count: 1 });
    await assert.rejects(retrying.get(k("s")), /upstash-bridge injected fault: HTTP 503/);
    await setFault(env, { mode: "malformed", count: 1 });
    await assert.rejects(retrying.get(k("s")), (err) => err.name === "UpstashJSONParseError");
    assert.equal(await retrying.get(k("s")), "hello");
  });
});
