// The Rust API for Workers (`cachette::worker::Cache`, crate feature `worker`) inside workerd:
// tests/workers/api-worker runs its checks (memory tier, then Upstash through worker::Fetch with
// faults injected into the bridge) and answers one result per check; each becomes a subtest.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { WORKERS, secrets, startUpstash, startWorker } from "./helpers.mjs";

let up;
before(async () => {
  up = await startUpstash();
});
after(() => up?.stop());

test(WORKERS.api.label, { timeout: 60_000 }, async (t) => {
  const w = await startWorker("api", { main: secrets(up) }, "/");
  try {
    assert.equal(w.first.status, 200, JSON.stringify(w.first.body));
    const results = w.first.body;
    assert.ok(Array.isArray(results) && results.length >= 15, JSON.stringify(results));
    for (const r of results) {
      await t.test(r.name, () => assert.ok(r.ok, r.error));
    }
  } finally {
    await w.dispose();
  }
});
