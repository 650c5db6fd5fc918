// The Rust API for Workers (`cachette::worker::Cache`, crate feature `worker`) inside workerd:
// tests/workers/api-worker runs its checks and answers one result per check; each becomes a
// subtest. `GET /`: the basic API (memory tier, then Upstash through worker::Fetch with faults
// injected into the bridge). `GET /generation`: get_or_set_entry (statuses, dropped callers,
// timeouts, the generator context, grace with stale-while-revalidate and stale-if-error, an
// Upstash outage), with short real TTLs (time cannot be faked in workerd). `GET /stream`:
// get_or_set_stream (miss, joined, hit, the JS recording format, dropped readers and abandoned
// generations, failing sources, ctx.skip(), max_stream_bytes, options, wait_until, shutdown).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { WORKERS, secrets, startUpstash, startWorker } from "./helpers.mjs";

let up;
let w;
before(async () => {
  up = await startUpstash();
  w = await startWorker("api", { main: secrets(up) }, "/");
});
after(async () => {
  await w?.dispose();
  up?.stop();
});

/** Each check `path` answered, as a subtest. */
async function subtests(t, results, min) {
  assert.ok(Array.isArray(results) && results.length >= min, JSON.stringify(results));
  for (const r of results) {
    await t.test(r.name, () => assert.ok(r.ok, r.error));
  }
}

test(WORKERS.api.label, { timeout: 60_000 }, async (t) => {
  assert.equal(w.first.status, 200, JSON.stringify(w.first.body));
  await subtests(t, w.first.body, 15);
});

test(`${WORKERS.api.label}: get_or_set_entry`, { timeout: 60_000 }, async (t) => {
  const r = await w.request("main", "/generation");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await subtests(t, r.body, 11);
});

test(`${WORKERS.api.label}: get_or_set_stream`, { timeout: 60_000 }, async (t) => {
  const r = await w.request("main", "/stream");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await subtests(t, r.body, 9);
});

test(`${WORKERS.api.label}: lock, one generation across isolates`, { timeout: 60_000 }, async () => {
  // Two isolates; each request makes a cache of its own (an instance, like another isolate's).
  const two = await startWorker("api", { a: secrets(up), b: secrets(up) }, "/lock?id=warm-up&call=0");
  try {
    assert.equal(two.first.status, 200, JSON.stringify(two.first.body));
    for (const mode of ["scan", "generation"]) {
      const id = `${mode}-${process.pid}`;
      const rs = await Promise.all(
        Array.from({ length: 16 }, (_, i) => two.request(i % 2 ? "a" : "b", `/lock?id=${id}&mode=${mode}&call=${i + 1}`)),
      );
      for (const r of rs) assert.equal(r.status, 200, JSON.stringify(r.body));
      const values = new Set(rs.map((r) => r.body.value));
      assert.equal(values.size, 1, `one generation: ${[...values]}`);
      const statuses = rs.map((r) => r.body.status).sort();
      assert.deepEqual(statuses, [...Array(15).fill("Joined"), "Miss"], mode);
      assert.equal(rs.reduce((n, r) => n + r.body.locksAcquired, 0), 1);
      assert.ok(rs.reduce((n, r) => n + r.body.lockJoins, 0) >= 1);
    }
  } finally {
    await two.dispose();
  }
});
