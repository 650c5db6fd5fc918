// The shared tier at scale, on loopback: a real redis-server (behind the release bridge) holding
// OTHER keys of other namespaces, and what invalidating a namespace costs `Cache` there, in
// round trips (the HTTP requests the cache sent: `stats().upstash.roundTrips`) and wall time;
// plus read and write latency. One run, every figure side by side.
//
//   node bench/scale.mjs [OTHER_KEYS] [BIG_NAMESPACE]     (defaults 1,000,000 and 100,000)
//
// Needs pkg/ built and the bridge (CACHETTE_BRIDGE_BIN, else target/debug/upstash-bridge).
// `invalidateNamespace` is SCAN MATCH + UNLINK today: its cost follows the keyspace, not the
// namespace.
import { Cache } from "../pkg/node.mjs";
import { startUpstash } from "../tests/js/upstash-server.mjs";

const OTHER = Number(process.argv[2] ?? 1_000_000);
const BIG = Number(process.argv[3] ?? 100_000);
const BATCH = 5_000;

const up = await startUpstash();
const post = async (path, body) => {
  const r = await fetch(up.url + path, {
    method: "POST",
    headers: { authorization: `Bearer ${up.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
};

/** Writes `n` keys `prefix{i}` with a small JSON value, BATCH per MSET, a pipeline of 10 MSETs per request. */
async function load(prefix, n) {
  for (let i = 0; i < n; ) {
    const commands = [];
    for (let c = 0; c < 10 && i < n; c++) {
      const mset = ["MSET"];
      for (let j = 0; j < BATCH && i < n; j++, i++) mset.push(`${prefix}${i}`, '"x"');
      commands.push(mset);
    }
    await post("/pipeline", commands);
  }
}

const ms = (t0) => performance.now() - t0;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];

try {
  const t0 = performance.now();
  await load("other:ns", OTHER);
  console.log(`loaded ${OTHER.toLocaleString("en")} other keys in ${(ms(t0) / 1000).toFixed(1)} s`);
  const cache = new Cache({ cleanupInterval: 0, upstash: { url: up.url, token: up.token, timeout: "60s", retries: 0 } });
  const trips = async () => (await cache.stats()).upstash.roundTrips;

  for (const [ns, n] of [["small", 10], ["big", BIG]]) {
    await load(`v1:${ns}:`, n);
    const before = await trips();
    const t = performance.now();
    const removed = await cache.invalidateNamespace(ns);
    const wall = ms(t);
    // stats() itself is one request (INFO and DBSIZE).
    const used = (await trips()) - before - 1;
    rows.push([`invalidateNamespace, ${n.toLocaleString("en")}-key namespace`, `${removed.toLocaleString("en")} removed`, used, wall]);
  }

  const reads = [];
  const writes = [];
  for (let i = 0; i < 500; i++) {
    let t = performance.now();
    await cache.set(`v1:lat:${i}`, { i });
    writes.push(ms(t));
    t = performance.now();
    await cache.get(`v1:lat:${i}`);
    reads.push(ms(t));
  }
  const before = await trips();
  for (let i = 0; i < 100; i++) await cache.get(`v1:lat:${i}`);
  const perRead = ((await trips()) - before - 1) / 100;
  rows.push(["get (hit), median of 500", `${perRead} round trip(s) each`, null, median(reads)]);
  rows.push(["set, median of 500", "", null, median(writes)]);
  cache.shutdown();

  console.log(`\nCache over the bridge, redis-server holding ${OTHER.toLocaleString("en")} keys of other namespaces (invalidation: scan)`);
  console.log(`${"operation".padEnd(48)} ${"result".padEnd(26)} ${"round trips".padStart(11)} ${"wall ms".padStart(10)}`);
  for (const [what, result, rt, wall] of rows) {
    console.log(`${what.padEnd(48)} ${result.padEnd(26)} ${String(rt ?? "").padStart(11)} ${wall.toFixed(2).padStart(10)}`);
  }
} finally {
  up.stop();
}
