// cachette/ai: an AI SDK (`ai` 7.x) language-model middleware that caches what a model makes.
//
//   wrapLanguageModel({ model, middleware: cacheMiddleware(cache, { namespace: "llm", ttl: "1h" }) })
//
// Written over the cache's public methods only (`key`, `getOrSet`, `getOrSetStream`), so it
// works with a `Cache` or a `MemoryCache` from "cachette" or "cachette/memory" and loads no
// WebAssembly of its own; it imports nothing, "ai" included (the middleware is a plain object).
//
// Keys: `cache.key(namespace, { provider, modelId, type, params })`, `type` "generate" or
// "stream" (the two are stored in different forms), `params` the call options as JSON without
// `abortSignal` and `headers` (transport, not content: the SDK adds its own user-agent to some
// calls, and per-request ids would defeat the cache). Bytes (file parts) count as base64, a URL
// as its text; a call whose options JSON cannot carry (a BigInt, a cycle) is passed through
// uncached.
//
// Values: a result or each stream part is stored as `{ v, d?, b? }`, `v` its JSON form and `d`
// and `b` the paths of the `Date`s and `Uint8Array`s in it, so that they come back as such
// through any codec; every caller gets its own copy. A stream is recorded as its `doStream`
// result without the stream (request, response), then its parts.
//
// What is cached: a `doGenerate` that resolved, or a stream that ended cleanly with a `finish`
// part and no `error` part; in both, not when the finish reason is "error" or "interrupted",
// nor when `options.shouldCache(result)` returns false. Model failures reach the caller as they
// were thrown (not wrapped in the cache's GENERATOR_FAILED).

const OPTIONS = ["namespace", "ttl", "grace", "shouldCache"];

/**
 * An AI SDK language-model middleware caching `doGenerate` results (through `cache.getOrSet`)
 * and `doStream` streams (through `cache.getOrSetStream`); see the header above.
 */
export function cacheMiddleware(cache, options) {
  if (cache === null || typeof cache !== "object" || !["key", "getOrSet", "getOrSetStream"].every((m) => typeof cache[m] === "function")) {
    throw new TypeError('cacheMiddleware: cache must be a Cache or a MemoryCache from "cachette"');
  }
  const o = readOptions(cache, options);
  cache.key(o.namespace, null); // the cache refuses a bad namespace now, not at the first call

  /** The options of one cache call: the middleware's ttl and grace, the caller's signal. */
  const callOptions = (signal) => (signal === undefined ? o.set : { ...o.set, signal });

  /** Whether a finished result may be stored (`summary` is what shouldCache is shown). */
  const keep = (finishReason, summary) => {
    const reason = finishReason?.unified;
    if (reason === "error" || reason === "interrupted") return false;
    return o.shouldCache === undefined || o.shouldCache(summary) !== false;
  };

  return {
    specificationVersion: "v4",

    async wrapGenerate({ doGenerate, params, model }) {
      const data = keyData(model, params, "generate");
      if (data === undefined) return doGenerate();
      try {
        const stored = await cache.getOrSet(
          o.namespace,
          data,
          async (ctx) => {
            // The generation's own signal: it aborts when every caller waiting for it has.
            const result = await model.doGenerate({ ...params, abortSignal: ctx.signal });
            const packed = pack(result);
            if (packed.raw !== undefined || !keep(result?.finishReason, result)) ctx.skip();
            return packed;
          },
          callOptions(params.abortSignal),
        );
        return unpack(stored);
      } catch (e) {
        throw unwrap(e);
      }
    },

    async wrapStream({ doStream, params, model }) {
      const data = keyData(model, params, "stream");
      if (data === undefined) return doStream();
      let reader, head;
      try {
        const entry = await cache.getOrSetStream(
          o.namespace,
          data,
          (ctx) => record(model, params, ctx, o.shouldCache !== undefined, keep),
          callOptions(params.abortSignal),
        );
        reader = entry.stream.getReader();
        head = await reader.read();
      } catch (e) {
        throw unwrap(e);
      }
      const rest = head.done ? {} : unpack(head.value);
      const stream = new ReadableStream(
        {
          async pull(controller) {
            try {
              const { value, done } = await reader.read();
              if (done) controller.close();
              else controller.enqueue(unpack(value));
            } catch (e) {
              controller.error(unwrap(e));
            }
          },
          cancel(reason) {
            return reader.cancel(reason);
          },
        },
        { highWaterMark: 0 },
      );
      return { ...rest, stream };
    },
  };
}

/** `options` checked and with defaults: `{ namespace, set: { ttl?, grace? }, shouldCache? }`. */
function readOptions(cache, options) {
  if (options === undefined || options === null) return { namespace: "ai", set: {} };
  if (typeof options !== "object" || Array.isArray(options)) throw optionsError(cache, "options must be an object");
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) throw optionsError(cache, `unknown option "${name}"; known: ${OPTIONS.join(", ")}`);
  }
  const { namespace = "ai", ttl, grace, shouldCache } = options;
  if (typeof namespace !== "string") throw optionsError(cache, "namespace must be a string");
  if (shouldCache !== undefined && typeof shouldCache !== "function") throw optionsError(cache, "shouldCache must be a function");
  // ttl and grace are checked by the cache itself, as for every call that takes them.
  const set = {};
  if (ttl !== undefined) set.ttl = ttl;
  if (grace !== undefined) set.grace = grace;
  return { namespace, set, shouldCache };
}

/** INVALID_OPTIONS as a CacheError of the cache's own class (found by asking it for a bad key). */
function optionsError(cache, message) {
  let CacheError;
  try {
    cache.key("", null);
  } catch (e) {
    if (e?.name === "CacheError" && typeof e.constructor === "function") CacheError = e.constructor;
  }
  message = `cacheMiddleware options: ${message}`;
  return CacheError ? new CacheError("INVALID_OPTIONS", message) : new TypeError(message);
}

/** The model's failure as it was thrown, rather than the cache's GENERATOR_FAILED around it. */
const unwrap = (e) => (e?.code === "GENERATOR_FAILED" && e.cause !== undefined ? e.cause : e);

/**
 * The data of a call's request key: `{ provider, modelId, type, params }`, plain JSON, or
 * undefined when the call options cannot be carried by JSON.
 */
function keyData(model, params, type) {
  const { abortSignal, headers, ...rest } = params ?? {};
  try {
    const json = JSON.stringify({ provider: model.provider, modelId: model.modelId, type, params: rest }, (_, v) =>
      v instanceof Uint8Array ? toBase64(v) : v instanceof ArrayBuffer ? toBase64(new Uint8Array(v)) : v,
    );
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/**
 * `{ v, d?, b? }`: `value` as JSON data, with the paths of its Dates (`d`, stored as ISO text)
 * and Uint8Arrays (`b`, stored as base64). `{ raw: value }` (not to be stored) when JSON cannot
 * carry it: a cycle, a BigInt, a function, an invalid Date, an object of a class other than
 * those (one with `toJSON`, such as URL, is stored as what that returns).
 */
function pack(value) {
  const d = [];
  const b = [];
  const above = new Set();
  const walk = (x, path) => {
    if (x === null || typeof x === "string" || typeof x === "boolean") return x;
    if (typeof x === "number") return Number.isFinite(x) ? x : null;
    if (typeof x !== "object") throw new TypeError("not JSON");
    if (x instanceof Date) {
      d.push(path);
      return x.toISOString(); // RangeError for an invalid Date
    }
    if (x instanceof Uint8Array) {
      b.push(path);
      return toBase64(x);
    }
    if (above.has(x)) throw new TypeError("cycle");
    const proto = Object.getPrototypeOf(x);
    if (!Array.isArray(x) && proto !== Object.prototype && proto !== null) {
      if (typeof x.toJSON === "function") return walk(x.toJSON(), path);
      throw new TypeError("not JSON");
    }
    above.add(x);
    let out;
    if (Array.isArray(x)) {
      out = x.map((item, i) => (item === undefined || typeof item === "function" ? null : walk(item, [...path, i])));
    } else {
      out = {};
      for (const [k, item] of Object.entries(x)) {
        if (item !== undefined) out[k] = walk(item, [...path, k]);
      }
    }
    above.delete(x);
    return out;
  };
  try {
    const v = walk(value, []);
    const packed = { v };
    if (d.length) packed.d = d;
    if (b.length) packed.b = b;
    return packed;
  } catch {
    return { raw: value };
  }
}

/** A fresh copy of what `pack` made, its Dates and Uint8Arrays restored. */
function unpack(packed) {
  if (packed === null || typeof packed !== "object") return packed;
  if ("raw" in packed) return packed.raw;
  let value = structuredClone(packed.v);
  const restore = (paths, make) => {
    for (const path of Array.isArray(paths) ? paths : []) {
      if (path.length === 0) {
        value = make(value);
        continue;
      }
      let at = value;
      for (const k of path.slice(0, -1)) at = at?.[k];
      const last = path[path.length - 1];
      if (at !== null && typeof at === "object" && typeof at[last] === "string") at[last] = make(at[last]);
    }
  };
  restore(packed.d, (s) => new Date(s));
  restore(packed.b, fromBase64);
  return value;
}

/**
 * The source `getOrSetStream` records: the packed `doStream` result without its stream (the
 * first chunk), then each part packed. Skips storing on an `error` part, on a part JSON cannot
 * carry, and, when the source ends, without a `finish` part or when `keep` refuses.
 */
async function record(model, params, ctx, wantParts, keep) {
  const { stream, ...rest } = await model.doStream({ ...params, abortSignal: ctx.signal });
  const head = pack(rest);
  if (head.raw !== undefined) ctx.skip();
  let finish;
  const parts = wantParts ? [] : undefined;
  return stream.pipeThrough(
    new TransformStream({
      start(controller) {
        controller.enqueue(head);
      },
      transform(part, controller) {
        parts?.push(part);
        if (part?.type === "error") ctx.skip();
        else if (part?.type === "finish") finish = part;
        const packed = pack(part);
        if (packed.raw !== undefined) ctx.skip();
        controller.enqueue(packed);
      },
      flush() {
        if (finish === undefined) return ctx.skip();
        const { finishReason, usage, providerMetadata } = finish;
        if (!keep(finishReason, { finishReason, usage, providerMetadata, parts })) ctx.skip();
      },
    }),
  );
}

function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
