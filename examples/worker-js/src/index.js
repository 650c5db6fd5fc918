// The old topic service's endpoints as a JS module Worker on the npm package `cachette` (its
// `workerd` entry), with Upstash as the shared tier. The same endpoints, responses and request
// keys as the Rust Worker in ../worker, so the two can share one Redis. See examples/README.md.
//
//   GET  /api/subtopics?topic=…            generated content through getOrSetEntry; x-cache: its status
//   GET  /api/explain?topic=…              an explanation streamed as server-sent events through
//                                          getOrSetStream; x-cache: its status
//   GET  /api/cache/stats[?format=legacy]  statistics (camelCase, or the old service's names)
//   POST /api/cache/invalidate/:namespace  { "invalidated": n }, with Authorization: Bearer <ADMIN_TOKEN>
//   GET  /api/health                       { status, backend, latencyMs, error? }
//
// Secrets: UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN, ADMIN_TOKEN. Every failure answers
// JSON { "error": { "code", "message" } }; where the cache failed, `code` is its CacheError code.
import { Cache } from "cachette";

/** The namespace of generated subtopics (the request data is `{ topic }`). */
const NAMESPACE = "subtopics";
/** The namespace of streamed explanations (the request data is `{ topic }`). */
const EXPLAIN_NAMESPACE = "explain";
const MAX_TOPIC_CHARS = 200;
const INVALIDATE_PREFIX = "/api/cache/invalidate/";
const ROUTES = new Set(["/api/subtopics", "/api/explain", "/api/cache/stats", "/api/health"]);

// Upstash URL and token come from env, with the default timeout (5 s) and retries (3). Never a
// timer in a Worker: cleanupInterval 0 keeps expiry lazy + amortized.
const OPTIONS = { version: "v1", ttl: 3600, maxEntries: 1000, maxBytes: 8 * 2 ** 20, cleanupInterval: 0 };

/** One cache per isolate, made by the first request that needs it (nothing at global scope).
 *  @type {Cache | undefined} */
let cache;
/** @param {Env} env */
const getCache = (env) => (cache ??= Cache.fromEnv(env, OPTIONS));

/** A STAND-IN for the old service's LLM call: deterministic, and 50 ms slow so that a cache hit
 *  shows. Replace it with the real generator. */
async function standInGenerateSubtopics(topic) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  return {
    topic,
    subtopics: [
      `Introduction to ${topic}`,
      `Core concepts of ${topic}`,
      `${topic} in practice`,
      `Common pitfalls in ${topic}`,
      `Advanced ${topic}`,
    ],
    generatedBy: "js-worker stand-in",
  };
}

/** How far apart the stand-in explanation's tokens come, in milliseconds. */
const STAND_IN_TOKEN_MS = 10;

/** A STAND-IN for a streaming LLM call: the explanation of `topic` as deterministic tokens (words,
 *  each but the first with its leading space), STAND_IN_TOKEN_MS apart so that the stream shows.
 *  Replace it with the real model's stream (an async iterable or a ReadableStream of chunks).
 *  `pace(i)`, when given, is awaited before token `i` instead of the delay (see standInPace). */
async function* standInExplainTokens(topic, { signal, pace }) {
  const text =
    `${topic}, explained by a stand-in for a model. ` +
    `In short, ${topic} is a set of ideas, tools and habits. ` +
    `Start with its core concepts, practise them on small examples, then study its common pitfalls.`;
  const tokens = text.split(/(?= )/);
  for (let i = 0; i < tokens.length; i++) {
    await (pace ? pace(i) : new Promise((resolve) => setTimeout(resolve, STAND_IN_TOKEN_MS)));
    signal.throwIfAborted();
    yield tokens[i];
  }
}

/** The stand-in's pace when the optional service binding STAND_IN_PACE is bound: before token
 *  `i` it waits for `STAND_IN_PACE.fetch(…?topic=…&token=i)` to answer, and fails if the answer
 *  is not a 2xx. The tests bind it to hold a generation between tokens or make it fail midway;
 *  a deployment leaves it unbound (the stand-in sleeps). It is not in wrangler.toml, hence not in
 *  the generated `Env`.
 *  @param {Env & { STAND_IN_PACE?: Fetcher }} env
 *  @param {string} topic */
function standInPace(env, topic) {
  const pace = env.STAND_IN_PACE;
  if (pace === undefined) return undefined;
  return async (i) => {
    const r = await pace.fetch(`https://stand-in-pace/?topic=${encodeURIComponent(topic)}&token=${i}`);
    await r.body?.cancel();
    if (!r.ok) throw new Error(`the stand-in failed at token ${i} (STAND_IN_PACE answered ${r.status})`);
  };
}

const json = (body, status = 200, headers = {}) => Response.json(body, { status, headers });
const error = (status, code, message, headers) => json({ error: { code, message } }, status, headers);

/** The HTTP status for a cache failure: the caller's mistake, Upstash unreachable, Upstash
 *  misbehaving, or ours. */
function statusOf(e) {
  switch (e?.code) {
    case "INVALID_KEY":
    case "INVALID_PATTERN":
      return 400;
    case "UPSTASH_TRANSPORT":
    case "TIMEOUT":
      return 503;
    case "UPSTASH_AUTH":
    case "UPSTASH_PROTOCOL":
    case "UPSTASH_COMMAND":
      return 502;
    default:
      return 500;
  }
}

const cacheError = (e) => error(statusOf(e), e?.code ?? "INTERNAL", String(e?.message ?? e));
/** A cache that cannot be made (the Upstash secrets are missing) is a service that is not
 *  configured: 503 with the CacheError code (INVALID_OPTIONS). */
const configError = (e) => error(503, e?.code ?? "INVALID_OPTIONS", String(e?.message ?? e));

// `Env` (the secrets in wrangler.toml) is generated by `wrangler types` into
// worker-configuration.d.ts; `tsc -p .` checks this file against it (tsconfig.json).
export default {
  /**
   * @param {Request} request
   * @param {Env} env
   * @param {ExecutionContext} ctx
   * @returns {Promise<Response>}
   */
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const path = url.pathname;
    let allowed;
    if (path.startsWith(INVALIDATE_PREFIX)) allowed = "POST";
    else if (ROUTES.has(path)) allowed = "GET";
    else return error(404, "NOT_FOUND", `no route for ${path}`);
    if (request.method !== allowed) {
      return error(405, "METHOD_NOT_ALLOWED", `${path} takes ${allowed}`, { Allow: allowed });
    }
    switch (path) {
      case "/api/subtopics":
        return subtopics(url, env, ctx);
      case "/api/explain":
        return explain(url, env, ctx);
      case "/api/cache/stats":
        return stats(url, env);
      case "/api/health":
        return health(env);
      default:
        return invalidate(request, env, path.slice(INVALIDATE_PREFIX.length));
    }
  },
};

/** The `topic` parameter when it is valid (given, not blank, at most MAX_TOPIC_CHARS), else null. */
function topicOf(url) {
  const topic = url.searchParams.get("topic");
  return topic === null || topic.trim() === "" || [...topic].length > MAX_TOPIC_CHARS ? null : topic;
}

const badTopic = () => error(400, "BAD_REQUEST", `topic must be given, 1 to ${MAX_TOPIC_CHARS} characters`);

/** @param {URL} url @param {Env} env @param {ExecutionContext} ctx */
async function subtopics(url, env, ctx) {
  const topic = topicOf(url);
  if (topic === null) return badTopic();
  let c;
  try {
    c = getCache(env);
  } catch (e) {
    return configError(e);
  }
  try {
    // `status` says how the value came: hit, miss, joined (another request was generating it),
    // stale or stale-error; a background refresh outlives the response through waitUntil.
    const entry = await c.getOrSetEntry(NAMESPACE, { topic }, () => standInGenerateSubtopics(topic), {
      waitUntil: ctx.waitUntil.bind(ctx),
    });
    return json(entry.value, 200, { "x-cache": entry.status, age: String(Math.floor(entry.age)) });
  } catch (e) {
    return cacheError(e);
  }
}

/** @param {URL} url @param {Env} env @param {ExecutionContext} ctx */
async function explain(url, env, ctx) {
  const topic = topicOf(url);
  if (topic === null) return badTopic();
  let c;
  try {
    c = getCache(env);
  } catch (e) {
    return configError(e);
  }
  let result;
  try {
    // `status`: miss (this request runs the generator; its tokens are forwarded as they come
    // and recorded), joined (another request in this isolate is generating: the tokens so far,
    // then the live ones) or hit (the recording, replayed).
    // waitUntil: the generation runs in the request that started it; handed to waitUntil, it
    // (and the write of its recording) outlives that request, for the requests that joined it.
    result = await c.getOrSetStream(
      EXPLAIN_NAMESPACE,
      { topic },
      (gen) => standInExplainTokens(topic, { signal: gen.signal, pace: standInPace(env, topic) }),
      { waitUntil: ctx.waitUntil.bind(ctx) },
    );
  } catch (e) {
    return cacheError(e);
  }
  return new Response(serverSentEvents(result.stream), {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-cache": result.status },
  });
}

const encoder = new TextEncoder();

/** One server-sent event, named `event` if given, its data `value` as JSON (one line). */
const sseEvent = (value, event) =>
  encoder.encode(`${event === undefined ? "" : `event: ${event}\n`}data: ${JSON.stringify(value)}\n\n`);

/** How long a stream may stay silent before a comment line (`: keep-alive`) goes out. */
const HEARTBEAT_MS = 15_000;
const heartbeat = encoder.encode(": keep-alive\n\n");

/**
 * `chunks` as server-sent events: one unnamed event per chunk, then `end` with `{ "tokens": n }`;
 * a failure midway ends the stream with an `error` event `{ "error": { code, message } }`.
 * Pulled one chunk at a time, so each event goes out as its chunk arrives; a client that goes
 * away cancels `chunks` (the generation stops when every reader has gone).
 *
 * While it waits for a chunk, a timer sends a comment every HEARTBEAT_MS, so that proxies keep
 * a slow stream open.
 */
function serverSentEvents(chunks) {
  const reader = chunks.getReader();
  let count = 0;
  return new ReadableStream(
    {
      async pull(controller) {
        let timer;
        const beat = () => {
          controller.enqueue(heartbeat);
          timer = setTimeout(beat, HEARTBEAT_MS);
        };
        timer = setTimeout(beat, HEARTBEAT_MS);
        let next;
        try {
          next = await reader.read();
        } catch (e) {
          const failure = { code: e?.code ?? "INTERNAL", message: String(e?.message ?? e) };
          controller.enqueue(sseEvent({ error: failure }, "error"));
          controller.close();
          return;
        } finally {
          clearTimeout(timer);
        }
        if (next.done) {
          controller.enqueue(sseEvent({ tokens: count }, "end"));
          controller.close();
          return;
        }
        count += 1;
        controller.enqueue(sseEvent(next.value));
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** @param {URL} url @param {Env} env */
async function stats(url, env) {
  const format = url.searchParams.get("format");
  if (format !== null && format !== "legacy") {
    return error(400, "BAD_REQUEST", 'format must be "legacy" or absent');
  }
  let c;
  try {
    c = getCache(env);
  } catch (e) {
    return configError(e);
  }
  const s = await c.stats();
  return json(format === "legacy" ? legacyStats(s) : s);
}

/** Bytes as Redis's INFO prints them in `used_memory_human` ("1.05M"). */
function humanBytes(n) {
  /** @type {[string, bigint][]} */
  const units = [["T", 2n ** 40n], ["G", 2n ** 30n], ["M", 2n ** 20n], ["K", 2n ** 10n]];
  for (const [unit, size] of units) {
    const b = BigInt(n);
    if (b >= size) {
      const hundredths = (b * 100n + size / 2n) / size;
      return `${hundredths / 100n}.${String(hundredths % 100n).padStart(2, "0")}${unit}`;
    }
  }
  return `${n}B`;
}

/** `?format=legacy`: the statistics under the old service's field names. Every field of
 *  `stats()` has its counterpart (the table is in examples/README.md). */
function legacyStats(s) {
  const u = s.upstash;
  return {
    backend: s.backend === "upstash" ? "redis" : s.backend,
    version: s.version,
    hits: s.hits,
    misses: s.misses,
    total_requests: s.totalRequests,
    hit_rate_percent: s.hitRatePercent,
    sets: s.sets,
    deletes: s.deletes,
    invalidations: s.invalidations,
    evictions: s.evictions,
    expirations: s.expirations,
    errors: s.errors,
    avg_latency_ms: s.avgLatencyMs,
    p99_latency_ms: s.p99LatencyMs,
    total_keys: s.keys,
    max_size: s.maxEntries,
    memory_used_mb: Math.round((s.memoryUsedBytes / 2 ** 20) * 100) / 100,
    cleanup_running: s.cleanupTimerActive,
    fallback_active: s.fallbackActive,
    redis_stats: u
      ? {
          keyspace_hits: u.keyspaceHits,
          keyspace_misses: u.keyspaceMisses,
          evicted_keys: u.evictedKeys,
          used_memory: u.usedMemoryBytes,
          used_memory_human: humanBytes(u.usedMemoryBytes),
          round_trips: u.roundTrips,
        }
      : null,
  };
}

/** @param {Env} env */
async function health(env) {
  let c;
  try {
    c = getCache(env);
  } catch (e) {
    return json({ status: "unhealthy", error: { code: e?.code ?? "INVALID_OPTIONS", message: String(e?.message ?? e) } }, 503);
  }
  const h = await c.health();
  return json(h, h.status === "unhealthy" ? 503 : 200);
}

/** Whether `given` is `secret`, in time that does not depend on where they differ (both are
 *  hashed to 32 bytes first, so their lengths do not show either). */
async function sameSecret(given, secret) {
  const enc = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(given)),
    crypto.subtle.digest("SHA-256", enc.encode(secret)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header. */
function bearer(header) {
  const m = /^\s*bearer\s+(\S.*?)\s*$/i.exec(header ?? "");
  return m ? m[1] : null;
}

/** @param {Request} request @param {Env} env @param {string} rawNamespace */
async function invalidate(request, env, rawNamespace) {
  const admin = typeof env.ADMIN_TOKEN === "string" ? env.ADMIN_TOKEN : "";
  if (admin === "") {
    return error(503, "ADMIN_TOKEN_MISSING", "ADMIN_TOKEN is not set: invalidation is disabled");
  }
  const token = bearer(request.headers.get("Authorization"));
  if (token === null || !(await sameSecret(token, admin))) {
    return error(401, "UNAUTHORIZED", "invalidation needs Authorization: Bearer <ADMIN_TOKEN>", {
      "WWW-Authenticate": "Bearer",
    });
  }
  let namespace;
  try {
    namespace = decodeURIComponent(rawNamespace);
  } catch {
    return error(400, "INVALID_KEY", "namespace is not UTF-8 once percent-decoded");
  }
  let c;
  try {
    c = getCache(env);
  } catch (e) {
    return configError(e);
  }
  try {
    return json({ invalidated: await c.invalidateNamespace(namespace) });
  } catch (e) {
    return cacheError(e);
  }
}
