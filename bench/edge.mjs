// The edge in one process: ISOLATES `Cache` instances (each an isolate with its own memory tier)
// over one upstash-bridge and a real redis-server, serving a Zipf(1.0) stream of REQUESTS
// requests over PROMPTS prompts with a 50 ms stand-in generator, CONCURRENCY requests in flight.
// Each configuration starts from an empty Redis. Printed side by side: generator calls, Redis
// commands, round trips and bytes per request, hit ratio and p99 latency; then what 10,000
// isolates serving 1,000,000 requests a minute would send to Redis, from the same figures.
//
//   node bench/edge.mjs [REQUESTS] [ISOLATES] [PROMPTS]     (defaults 20,000, 200, 10,000)
//
// Needs pkg/ built and the bridge (CACHETTE_BRIDGE_BIN, else target/debug/upstash-bridge).
//
// Why 200 isolates and 20,000 requests stand for 10,000 isolates at 1,000,000 requests a minute:
// both give each isolate 100 requests, and with localTtl: 60 s every near copy an isolate makes
// in that minute lasts the whole run, as it would last the whole minute. The Zipf stream and the
// cold start are the same; so the per-request figures carry over.
import { Cache } from "../pkg/node.mjs";
import { startUpstash } from "../tests/js/upstash-server.mjs";

const REQUESTS = Number(process.argv[2] ?? 20_000);
const ISOLATES = Number(process.argv[3] ?? 200);
const PROMPTS = Number(process.argv[4] ?? 10_000);
const CONCURRENCY = 200;
const GENERATE_MS = 50;
const ANSWER = "x".repeat(400);

// Every combination of lock, localTtl and the invalidation mode.
const CONFIGS = [];
for (const invalidation of ["scan", "generation"]) {
  for (const localTtl of [0, 60]) {
    for (const lock of [false, true]) {
      const name = [invalidation, lock && "lock", localTtl && "localTtl 60s"].filter(Boolean).join(" + ");
      CONFIGS.push([name, { invalidation, lock, localTtl }]);
    }
  }
}

/** A seeded PRNG (mulberry32), so that every configuration sees the same stream. */
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The stream: REQUESTS (isolate, prompt) pairs, prompts Zipf(1.0)-distributed. */
function stream() {
  const cdf = new Float64Array(PROMPTS);
  let sum = 0;
  for (let i = 0; i < PROMPTS; i++) cdf[i] = sum += 1 / (i + 1);
  const rand = prng(42);
  const out = [];
  for (let r = 0; r < REQUESTS; r++) {
    const u = rand() * sum;
    let lo = 0;
    let hi = PROMPTS - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    out.push([Math.floor(rand() * ISOLATES), lo]);
  }
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TRAFFIC = ["roundTrips", "commands", "bytesSent", "bytesReceived", "locksAcquired", "lockWaits"];

/** What an instance sent, less its own stats() calls (measured by a second call). */
async function traffic(cache) {
  const s1 = (await cache.stats()).upstash;
  const s2 = (await cache.stats()).upstash;
  return Object.fromEntries(TRAFFIC.map((k) => [k, s1[k] - (s2[k] - s1[k])]));
}

async function run(up, name, extra, requests) {
  await up.raw("FLUSHDB");
  const isolates = Array.from(
    { length: ISOLATES },
    () => new Cache({ cleanupInterval: 0, maxEntries: 2_000, ...extra, upstash: { url: up.url, token: up.token, timeout: "10s", retries: 0 } }),
  );
  let calls = 0;
  const generate = async () => {
    calls++;
    await sleep(GENERATE_MS);
    return { answer: ANSWER };
  };
  const latencies = new Float64Array(requests.length);
  const statuses = {};
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < requests.length) {
        const i = next++;
        const [isolate, prompt] = requests[i];
        const t = performance.now();
        const e = await isolates[isolate].getOrSetEntry("answers", { prompt }, generate);
        latencies[i] = performance.now() - t;
        statuses[e.status] = (statuses[e.status] ?? 0) + 1;
      }
    }),
  );
  const wall = performance.now() - t0;
  const sum = Object.fromEntries(TRAFFIC.map((k) => [k, 0]));
  for (const c of isolates) {
    const t = await traffic(c);
    for (const k of TRAFFIC) sum[k] += t[k];
    c.shutdown();
  }
  latencies.sort();
  const n = requests.length;
  return {
    name,
    calls,
    hit: (statuses.hit ?? 0) / n,
    statuses,
    p50: latencies[Math.floor(n * 0.5)],
    p99: latencies[Math.floor(n * 0.99)],
    cmds: sum.commands / n,
    trips: sum.roundTrips / n,
    bytes: (sum.bytesSent + sum.bytesReceived) / n,
    locks: sum.locksAcquired,
    waits: sum.lockWaits,
    wall,
  };
}

const up = await startUpstash();
try {
  const requests = stream();
  const distinct = new Set(requests.map(([, p]) => p)).size;
  console.log(
    `${ISOLATES} Cache instances over one bridge, ${REQUESTS.toLocaleString("en")} requests (Zipf 1.0 over ${PROMPTS.toLocaleString("en")} prompts, ${distinct.toLocaleString("en")} distinct), ${CONCURRENCY} in flight, ${GENERATE_MS} ms generator`,
  );
  const rows = [];
  for (const [name, extra] of CONFIGS) rows.push(await run(up, name, extra, requests));

  const pad = (s, n) => String(s).padStart(n);
  console.log(
    `\n${"configuration".padEnd(34)}${pad("generator calls", 16)}${pad("hit ratio", 10)}${pad("cmds/req", 10)}${pad("trips/req", 10)}${pad("bytes/req", 10)}${pad("p50 ms", 8)}${pad("p99 ms", 8)}${pad("locks", 7)}${pad("waits", 7)}`,
  );
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(34)}${pad(r.calls.toLocaleString("en"), 16)}${pad((r.hit * 100).toFixed(1) + "%", 10)}${pad(r.cmds.toFixed(3), 10)}${pad(r.trips.toFixed(3), 10)}${pad(Math.round(r.bytes), 10)}${pad(r.p50.toFixed(1), 8)}${pad(r.p99.toFixed(1), 8)}${pad(r.locks, 7)}${pad(r.waits, 7)}`,
    );
  }
  const perSecond = 1_000_000 / 60;
  console.log(`\nOn paper: 10,000 isolates, 1,000,000 requests/minute (${Math.round(perSecond).toLocaleString("en")} requests/s), from the per-request figures above`);
  console.log(`${"configuration".padEnd(34)}${pad("commands/s", 12)}${pad("requests/s", 12)}${pad("MB/s", 8)}`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(34)}${pad(Math.round(r.cmds * perSecond).toLocaleString("en"), 12)}${pad(Math.round(r.trips * perSecond).toLocaleString("en"), 12)}${pad(((r.bytes * perSecond) / 1e6).toFixed(2), 8)}`,
    );
  }
} finally {
  up.stop();
}
