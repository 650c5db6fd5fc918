// The shared tier at scale, on loopback: a real redis-server (behind the release bridge) holding
// OTHER keys of other namespaces, and what invalidating a namespace costs `Cache` there, in
// round trips (the HTTP requests the cache sent: `stats().upstash.roundTrips`) and wall time;
// plus read and write latency. One run, every figure side by side.
//
//   node bench/scale.mjs [OTHER_KEYS] [BIG_NAMESPACE]     (defaults 1,000,000 and 100,000)
//
// Needs pkg/ built and the bridge (CACHETTE_BRIDGE_BIN, else target/debug/upstash-bridge).
// Both invalidation modes side by side: "scan" (SCAN MATCH + UNLINK, whose cost follows the
// keyspace, not the namespace) and "generation" (one INCR).
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

/** Writes `n` keys `prefix{i}` with `value`, BATCH per MSET, a pipeline of 10 MSETs per request. */
async function load(prefix, n, value = '"x"') {
  for (let i = 0; i < n; ) {
    const commands = [];
    for (let c = 0; c < 10 && i < n; c++) {
      const mset = ["MSET"];
      for (let j = 0; j < BATCH && i < n; j++, i++) mset.push(`${prefix}${i}`, value);
      commands.push(mset);
    }
    await post("/pipeline", commands);
  }
}

const ms = (t0) => performance.now() - t0;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const MODES = ["scan", "generation"];
// rows[i] = [what, ...one [result, round trips, wall ms] per mode]
const rows = [];

try {
  const t0 = performance.now();
  await load("other:ns", OTHER);
  console.log(`loaded ${OTHER.toLocaleString("en")} other keys in ${(ms(t0) / 1000).toFixed(1)} s`);
  const results = {};
  for (const mode of MODES) {
    const cache = new Cache({ cleanupInterval: 0, invalidation: mode, upstash: { url: up.url, token: up.token, timeout: "60s", retries: 0 } });
    const trips = async () => (await cache.stats()).upstash.roundTrips;
    const out = (results[mode] = []);
    for (const [ns, n] of [[`small-${mode}`, 10], [`big-${mode}`, BIG]]) {
      // Values as each mode writes them: generation mode prefixes the generation, here "0.0|".
      if (mode === "generation") await post("", ["MSET", "cachette:gen:v1", "0", `cachette:gen:v1:${ns}`, "0"]);
      await load(`v1:${ns}:`, n, mode === "scan" ? '"x"' : '0.0|"x"');
      if (mode === "generation" && !(await cache.has(`v1:${ns}:0`))) throw new Error("generation-mode values not readable");
      const before = await trips();
      const t = performance.now();
      const removed = await cache.invalidateNamespace(ns);
      const wall = ms(t);
      // stats() itself is one request (INFO and DBSIZE).
      const used = (await trips()) - before - 1;
      if (await cache.has(`v1:${ns}:0`)) throw new Error(`${mode}: ${ns} still readable after invalidateNamespace`);
      const result = mode === "scan" ? `${removed.toLocaleString("en")} removed` : "all dead (left to TTL)";
      out.push([result, used, wall]);
    }
    const reads = [];
    const writes = [];
    for (let i = 0; i < 500; i++) {
      let t = performance.now();
      await cache.set(`v1:lat:${mode}-${i}`, { i });
      writes.push(ms(t));
      t = performance.now();
      await cache.get(`v1:lat:${mode}-${i}`);
      reads.push(ms(t));
    }
    const before = await trips();
    for (let i = 0; i < 100; i++) await cache.get(`v1:lat:${mode}-${i}`);
    const perRead = ((await trips()) - before - 1) / 100;
    out.push([`${perRead} round trip(s) each`, null, median(reads)]);
    out.push(["1 round trip each", null, median(writes)]);
    cache.shutdown();
  }
  const what = [
    "invalidateNamespace, 10-key namespace",
    `invalidateNamespace, ${BIG.toLocaleString("en")}-key namespace`,
    "get (hit), median of 500",
    "set, median of 500",
  ];
  console.log(`\nCache over the bridge, redis-server holding ${OTHER.toLocaleString("en")} keys of other namespaces`);
  const cell = (r) => `${String(r[1] ?? "").padStart(6)} ${r[2].toFixed(2).padStart(9)}`;
  console.log(`${"operation".padEnd(44)} ${"scan: trips".padStart(11)} ${"ms".padStart(5)}   ${"generation: trips".padStart(17)} ${"ms".padStart(5)}   result (scan / generation)`);
  what.forEach((w, i) => {
    const [s, g] = [results.scan[i], results.generation[i]];
    console.log(`${w.padEnd(44)} ${cell(s).padStart(17)}   ${cell(g).padStart(23)}   ${s[0]} / ${g[0]}`);
  });
} finally {
  up.stop();
}
