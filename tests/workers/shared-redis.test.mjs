// Several Worker isolates on one Redis (upstash-bridge + redis-server): two isolates of each
// example Worker (two workers in one Miniflare, so no shared memory between them), and the Rust
// and JS Workers together, which make the same request keys and store the same JSON.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { WORKERS, bearer, freshTopic, secrets, startUpstash, startWorker, subtopicsPath } from "./helpers.mjs";

let up;
const w = {};
before(async () => {
  up = await startUpstash();
  for (const kind of ["rust", "js"]) {
    w[kind] = await startWorker(kind, { a: secrets(up), b: secrets(up) });
  }
});
after(async () => {
  for (const x of Object.values(w)) await x.dispose();
  up?.stop();
});

const xcache = async (kind, isolate, topic) => {
  const r = await w[kind].request(isolate, subtopicsPath(topic));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return [r.headers.get("x-cache"), r.body.generatedBy];
};

for (const kind of ["rust", "js"]) {
  test(`${kind}: an invalidation through one isolate is seen by the other`, async () => {
    const topic = freshTopic(`Shared ${kind}`);
    const gen = WORKERS[kind].generatedBy;
    assert.deepEqual(await xcache(kind, "a", topic), ["miss", gen]);
    assert.deepEqual(await xcache(kind, "b", topic), ["hit", gen], "b reads what a generated");
    const inv = await w[kind].request("b", "/api/cache/invalidate/subtopics", bearer());
    assert.equal(inv.status, 200, JSON.stringify(inv.body));
    assert.ok(inv.body.invalidated >= 1);
    assert.deepEqual(await xcache(kind, "a", topic), ["miss", gen], "a does not serve what b invalidated");
    assert.deepEqual(await xcache(kind, "b", topic), ["hit", gen]);
  });
}

test("the Rust and JS Workers share one cache: keys, values and invalidations", async () => {
  await up.raw("FLUSHDB");
  const t1 = freshTopic("Cross");
  assert.deepEqual(await xcache("rust", "a", t1), ["miss", WORKERS.rust.generatedBy]);
  assert.deepEqual(await xcache("js", "a", t1), ["hit", WORKERS.rust.generatedBy], "JS reads Rust's value");
  const t2 = freshTopic("Cross");
  assert.deepEqual(await xcache("js", "b", t2), ["miss", WORKERS.js.generatedBy]);
  assert.deepEqual(await xcache("rust", "b", t2), ["hit", WORKERS.js.generatedBy], "Rust reads JS's value");

  const inv = await w.js.request("a", "/api/cache/invalidate/subtopics", bearer());
  assert.equal(inv.body.invalidated, 2, JSON.stringify(inv.body));
  assert.deepEqual(await xcache("rust", "a", t1), ["miss", WORKERS.rust.generatedBy], "Rust sees JS's invalidation");
  const again = await w.rust.request("b", "/api/cache/invalidate/subtopics", bearer());
  assert.equal(again.body.invalidated, 1);
  assert.deepEqual(await xcache("js", "b", t1), ["miss", WORKERS.js.generatedBy], "JS sees Rust's invalidation");
});

test("both Workers give up on a slow Upstash after their timeout (5 s) and report degraded", async () => {
  // Two delayed requests: one health probe from each Worker (a probe is never retried).
  await up.faults({ mode: "delay", ms: 8000, count: 2 });
  try {
    const t0 = performance.now();
    const [rust, js] = await Promise.all([w.rust.request("a", "/api/health"), w.js.request("a", "/api/health")]);
    const elapsed = performance.now() - t0;
    for (const h of [rust, js]) {
      assert.equal(h.status, 200, JSON.stringify(h.body));
      assert.equal(h.body.status, "degraded");
      assert.match(h.body.error, /did not answer within 5000 ms/);
    }
    assert.ok(elapsed >= 4900 && elapsed < 7900, `answered after ${elapsed.toFixed(0)} ms`);
  } finally {
    await up.faults({ mode: "none" });
  }
  assert.equal((await w.rust.request("a", "/api/health")).body.status, "healthy");
});
