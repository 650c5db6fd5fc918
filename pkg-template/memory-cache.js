// The package's MemoryCache: a synchronous in-memory cache holding any JS value, with TTL, true
// LRU, entry and byte bounds. The brain is the wasm class MemorySlots (src/wasm/memory_slots.rs,
// on the crate's policy core, cache::Core): LRU order, expiry and its index, bounds and eviction, sweeping,
// Redis-exact patterns, request keys, statistics. This class keeps only what would otherwise
// cross the wasm boundary on every call: the keys (a Map from key to slot number) and the
// values (an array by slot). A read is answered here without calling into wasm at all:
//
//   - the slot's expiry time is read from wasm memory (the first word of its slot) and
//     compared with the clock (see now()); a live entry's slot is appended to a read log in
//     wasm memory,
//     which wasm replays into its LRU list, in order, at the start of its next call;
//   - every slot a wasm call frees (evicted, expired, deleted, matched by a pattern, swept by
//     the cleanup timer) is listed in wasm memory; #drain() drops those keys and values right
//     after each call, before anything is installed in a slot the call returned, and wasm marks
//     the freed slots expired. So a value is never returned after wasm freed its slot.
//
// Generated content (getOrSet, getOrSetEntry) adds what this host must know itself:
//
//   - stale values: an entry stored with `keep` > 0 (the longest of its grace, staleWhileRevalidate
//     and staleIfError windows, read by MemorySlots.callOptions) is stored in wasm for ttl + keep,
//     and #fresh (slot -> the time it stops being fresh) holds it, for such entries only. Past
//     that time the entry is stale: every read but getOrSet's treats it as absent, while it still
//     counts in size and toward the bounds until it leaves (wasm expires it at ttl + keep). With
//     no entry kept, a read pays one check of #fresh.size;
//   - store times, for `age`: an entry stored with the cache's default TTL and keep (the usual
//     case) was stored at its expiry time minus that TTL, read from the slot; only once an entry
//     is stored with another TTL does #born (a Float64Array by slot) hold every entry's store
//     time, 8 bytes per slot from then on;
//   - onRemove(key, value, cause): #drain() collects what left with its cause, and #notify()
//     calls onRemove once the operation is complete (the cache consistent), never inside it;
//   - the generations under way (#flights), with their waiters, timeouts and aborts.
//
// Errors are made by MemorySlots' static helpers, so every code and message is the crate's
// (TIMEOUT, which has none, is made with the class they use: see timeoutError()).
// This file is the ES module; scripts/build-pkg.sh derives memory-cache.cjs (CommonJS, on the
// nodejs glue) from it by rewriting the import line and the export below.
import { MemorySlots, Removal } from "./web/cachette.js";

/** The longest key accepted, in bytes of UTF-8. */
const MAX_KEY_BYTES = 32 * 1024;
/** A key of at most this many UTF-16 units is at most MAX_KEY_BYTES of UTF-8. */
const SHORT_KEY = Math.floor(MAX_KEY_BYTES / 3);

// Word offsets in the shared block and the sizes this file relies on. Defined in Rust
// (src/wasm/memory_slots.rs); checked against MemorySlots.layout() when the module loads.
const TOUCH_LEN = 0;
const REMOVED_LEN = 1;
const REMOVED_PTR = 2;
const EXPIRY_PTR = 3;
const HEX = 4;
const TOUCHES = 12;
const TOUCH_CAPACITY = 1024;
const LOG_STRIDE = 2;
const ENTRY_WORDS = 3;
const LAYOUT = { TOUCH_LEN, REMOVED_LEN, REMOVED_PTR, EXPIRY_PTR, ENTRY_WORDS, HEX, TOUCHES, TOUCH_CAPACITY, LOG_STRIDE };
/** What MemorySlots' hot methods return on error (MemorySlots.takeError() has it). */
const FAILED = 0xffffffff;
/** MemorySlots drops a request-key input buffer longer than this after each use. */
const RETAINED_INPUT = 64 * 1024;
const NO_INPUT = new Uint8Array(0);

// Views over wasm memory, shared by every cache (one module instance). Growing the memory
// detaches them (their length drops to 0): views() re-creates them after each call, and a read
// through a detached view gives undefined, which the fast paths treat as "ask wasm".
let memory = null;
let U8 = new Uint8Array(0);
let U32 = new Uint32Array(0);
let F64 = new Float64Array(0);

/** Refuses to run on a wasm module whose shared block is laid out differently. */
function checkLayout() {
  const wasm = MemorySlots.layout();
  const wrong = [];
  const names = new Set();
  for (let i = 0; i < wasm.length; i += 2) {
    names.add(wasm[i]);
    if (LAYOUT[wasm[i]] !== wasm[i + 1]) wrong.push(`${wasm[i]}: wasm ${wasm[i + 1]}, js ${LAYOUT[wasm[i]]}`);
  }
  for (const name of Object.keys(LAYOUT)) if (!names.has(name)) wrong.push(`${name}: not in wasm`);
  if (wrong.length !== 0) {
    throw new Error(`cachette: memory-cache.js and the wasm module disagree on the shared block (${wrong.join("; ")})`);
  }
}

function views() {
  if (U32.length === 0) {
    if (memory === null) {
      checkLayout();
      memory = MemorySlots.memory();
    }
    U8 = new Uint8Array(memory.buffer);
    U32 = new Uint32Array(memory.buffer);
    F64 = new Float64Array(memory.buffer);
  }
}

// The clock. Date.now() costs about as much as a whole read, so a reading is reused: by at most
// CLOCK_REUSES further operations (of any MemoryCache), and only within the synchronous run
// that took it: a microtask forgets it, so the clock is read anew after every await, callback
// and timer, and before storing what a generator or sizeOf produced. Hence an entry
// can be returned after its expiry only by operations of the very run in which it expired, and
// by at most CLOCK_REUSES of them. README.md states this bound; tests/js/clock.test.mjs pins it.
// The operation that reads the clock is also the one timed for the latency statistics (one in
// CLOCK_REUSES + 1 within a run, and the first of every run).
const CLOCK_REUSES = 63;
let clockNow = 0;
let clockReuses = 0;
let clockQueued = false;
const queue =
  typeof queueMicrotask === "function" ? queueMicrotask : (f) => void Promise.resolve().then(f);

function forgetClock() {
  clockReuses = 0;
  clockQueued = false;
}

/** Reads the clock now (the next CLOCK_REUSES operations of this run reuse the reading). */
function readClock() {
  clockNow = Date.now();
  clockReuses = CLOCK_REUSES;
  if (!clockQueued) {
    clockQueued = true;
    queue(forgetClock);
  }
  return clockNow;
}

/** The time for an operation that is not timed: the reading of this run, or a new one. */
function now() {
  if (clockReuses !== 0) {
    clockReuses--;
    return clockNow;
  }
  return readClock();
}

const encoder = new TextEncoder();

const wellFormed =
  typeof String.prototype.isWellFormed === "function"
    ? (s) => s.isWellFormed()
    : (s) => !/\p{Surrogate}/u.test(s);

/** UTF-8 length of a well-formed string. */
function utf8Length(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c < 0xe000) ? 1 : 2;
  }
  return n;
}

const clock =
  typeof performance === "object" && performance !== null && typeof performance.now === "function"
    ? () => performance.now()
    : Date.now;

/** TTLs up to this many seconds (about 31 years) pass the plain case below; larger ones are
 * left to the wasm reader, which knows the exact bound. */
const PLAIN_TTL = 1e9;

/** The longest TTL wasm accepts (100 years, options.rs MAX_TTL_SECS): an entry kept past its TTL
 * is stored for at most this long in all. */
const MAX_TTL_SECS = 100 * 365.25 * 24 * 3600;

/** What plainTtl() returns for a bag the wasm reader must decide. */
const NOT_PLAIN = null;

/** The TTL of a plain per-call option bag: `null`, `{}`, `{ ttl: undefined }` (undefined: the
 * default) or `{ ttl }` with a number of seconds in (0, PLAIN_TTL]; NOT_PLAIN for anything else
 * (other options, durations with a unit, Infinity, bad values), which MemorySlots.callOptions
 * reads and checks. */
function plainTtl(options) {
  if (options === null) return undefined;
  if (typeof options === "object" && options instanceof Object && !Array.isArray(options)) {
    const names = Object.keys(options);
    if (names.length === 0 || (names.length === 1 && names[0] === "ttl")) {
      const ttl = options.ttl;
      if (ttl === undefined || (typeof ttl === "number" && ttl > 0 && ttl <= PLAIN_TTL)) return ttl;
    }
  }
  return NOT_PLAIN;
}

function isThenable(v) {
  if (v === null || typeof v !== "object") return false;
  try {
    return typeof v.then === "function";
  } catch {
    return false;
  }
}

function ignore() {}

/** `cache[COUNT_ERROR]()` counts a failure the cache absorbed in `stats().errors` (for the
 * stream module below, which works on both classes through their methods). */
const COUNT_ERROR = Symbol("cachette.countError");

/** `TIMEOUT` for a generation that ran past `ms` milliseconds. MemorySlots has no helper for this
 * code, so it is made here with the class wasm makes its errors with (the package's CacheError,
 * which the entry registered with wasm). */
function timeoutError(ms) {
  return cacheError("TIMEOUT", `the generator did not settle within its timeout of ${ms} ms`);
}

/** Hands an error thrown by onRemove to the runtime's error reporting, where it has one
 * (browsers, Workers, Deno: logged as an uncaught error, without unwinding the cache). */
const reportError = typeof globalThis.reportError === "function" ? (e) => globalThis.reportError(e) : ignore;

/** The TTL in seconds that wasm stores an entry with under a MemorySlots.callOptions() `policy`:
 * its TTL plus how long past it the entry is kept (`policy.ttl`, undefined for the default, when
 * it is not kept or never expires). */
function stored(policy) {
  if (policy.keep === 0 || policy.ttlMs === Infinity) return policy.ttl;
  return Math.min((policy.ttlMs + policy.keep) / 1000, MAX_TTL_SECS);
}

/** onRemove's cause for each wasm removal cause (memory::RemovalCause, as the removal log carries
 * it), from wasm, read at the first removal reported (the entries that need `init()` import this
 * module before the wasm is ready); Explicit is named by the operation that removed (see #drain). */
let CAUSES = null;

/**
 * What a generator is called with: `{ key, signal, stale, skip(), ttl(duration) }`.
 *
 * The policy it stores with is what #put takes: a TTL in seconds (undefined: the default), or a
 * MemorySlots.callOptions() record (`{ ttl, ttlMs, keep, ... }`).
 */
class GeneratorContext {
  /** The request key being generated. */
  key;
  /** Aborted when the generation is dropped: the cache shut down, it timed out, or every caller
   * waiting for it aborted. */
  signal;
  /** The stale value kept for the key (past its TTL, within its grace), if any. */
  stale;
  #skipped = false;
  #policy;
  #slots;
  #controller;

  constructor(key, policy, slots, stale) {
    this.key = key;
    this.stale = stale;
    this.#policy = policy;
    this.#slots = slots;
    this.#controller = new AbortController();
    this.signal = this.#controller.signal;
  }

  /** Hands the result to the caller (and every waiter) without caching it. */
  skip() {
    this.#skipped = true;
  }

  /** Sets this entry's TTL: seconds, a duration with a unit ("5m"), or Infinity
   * (`INVALID_OPTIONS` for a bad one). The call's grace still applies. */
  ttl(duration) {
    const o = this.#slots.callOptions({ ttl: duration }, false);
    const p = this.#policy;
    this.#policy = typeof p === "object" && p.keep !== 0 ? { ttl: o.ttl, ttlMs: o.ttlMs, keep: p.keep } : o.ttl;
  }

  /** Aborts `signal` with `reason` (for MemoryCache; not part of the context's API). */
  static abort(ctx, reason) {
    ctx.#controller.abort(reason);
  }

  /** Whether the generator called `skip()` (for MemoryCache). */
  static skipped(ctx) {
    return ctx.#skipped;
  }

  /** The policy to store the value with (for MemoryCache). */
  static policy(ctx) {
    return ctx.#policy;
  }
}

/** Whether `f` is an `async` function or an async generator function. */
function isAsyncFunction(f) {
  const tag = f[Symbol.toStringTag];
  return tag === "AsyncFunction" || tag === "AsyncGeneratorFunction";
}

/**
 * Request keys through a MemorySlots: the JSON text goes straight into wasm memory, the digest's
 * hex comes back through it, and no string crosses the boundary. Shared by MemoryCache#key and
 * requestKey.
 */
class KeyMaker {
  #slots;
  #h; // the shared block, in u32 words
  version;
  #namespace = null; // the namespace MemorySlots has for request keys
  #prefix = ""; // "{version}:{namespace}:"
  #input = NO_INPUT; // the request-key input buffer in wasm memory

  constructor(slots, h) {
    this.#slots = slots;
    this.#h = h;
    this.version = slots.version();
  }

  /** After the MemorySlots' version changed. */
  versionChanged() {
    this.version = this.#slots.version();
    this.#namespace = null;
  }

  /** Switches to `version` (throws INVALID_KEY, changing nothing, for a bad one). */
  useVersion(version) {
    if (typeof version !== "string" || !wellFormed(version)) {
      const e = MemorySlots.argError(version, "version");
      if (e !== undefined) throw e;
    }
    this.#slots.keyVersion(version);
    this.versionChanged();
  }

  /** The request key of `namespace` and `data`. */
  key(namespace, data) {
    if (typeof namespace !== "string" || !wellFormed(namespace)) {
      const e = MemorySlots.argError(namespace, "namespace");
      if (e !== undefined) throw e;
    }
    let json;
    try {
      json = JSON.stringify(data);
    } catch (e) {
      throw MemorySlots.jsonError(data, e, true);
    }
    if (json === undefined) throw MemorySlots.jsonError(data, undefined, false);
    const slots = this.#slots;
    if (namespace !== this.#namespace) {
      slots.keyNamespace(namespace);
      this.#namespace = namespace;
      this.#prefix = this.version + ":" + namespace + ":";
    }
    // The UTF-8 of the JSON goes straight into wasm memory (3 bytes per UTF-16 unit at most).
    // A view detached by memory growth has length 0, so it is made again.
    let input = this.#input;
    if (input.length < 3 * json.length) {
      const at = slots.keyInput(3 * json.length);
      views();
      input = this.#input = U8.subarray(at, at + Math.max(3 * json.length, 256));
    }
    const done = slots.keyDigest(encoder.encodeInto(json, input).written);
    if (input.length > RETAINED_INPUT) this.#input = NO_INPUT;
    if (done === FAILED) throw slots.takeError();
    views();
    const u = U8;
    const p = (this.#h + HEX) << 2;
    // prettier-ignore
    return this.#prefix + String.fromCharCode(
      u[p], u[p + 1], u[p + 2], u[p + 3], u[p + 4], u[p + 5], u[p + 6], u[p + 7],
      u[p + 8], u[p + 9], u[p + 10], u[p + 11], u[p + 12], u[p + 13], u[p + 14], u[p + 15],
      u[p + 16], u[p + 17], u[p + 18], u[p + 19], u[p + 20], u[p + 21], u[p + 22], u[p + 23],
      u[p + 24], u[p + 25], u[p + 26], u[p + 27], u[p + 28], u[p + 29], u[p + 30], u[p + 31],
    );
  }
}

/** One key maker per key format, made on first use. */
const keyMakers = { jcs: null, python: null };

/**
 * `requestKey(version, namespace, data, keyFormat = "jcs")`: `"{version}:{namespace}:{md5}"` of
 * the canonical JSON of `data`.
 */
export function requestKey(version, namespace, data, keyFormat) {
  // Absent (undefined or null) means the default, as for the keyFormat option.
  const format = keyFormat === undefined || keyFormat === null ? "jcs" : keyFormat;
  if (format !== "jcs" && format !== "python") throw MemorySlots.keyFormatError(format);
  let maker = keyMakers[format];
  if (maker === null) {
    const slots = new MemorySlots({ keyFormat: format, maxEntries: 1, cleanupInterval: 0 }, ignore);
    maker = keyMakers[format] = new KeyMaker(slots, slots.header() >>> 2);
  }
  if (version !== maker.version) maker.useVersion(version);
  return maker.key(namespace, data);
}

/**
 * A synchronous in-memory cache holding any JS value: TTL, true LRU, entry and byte bounds, and
 * for generated content stale values (grace), single-flight generation with timeouts and aborts,
 * and removal notices (onRemove).
 */
export class MemoryCache {
  #slots;
  #map = new Map();
  #keys = [];
  #values = [];
  #h = 0; // the shared block, in u32 words
  #exp = 0; // the slot array (expiry time first), in f64 words
  #misses = 0;
  #errors = 0; // failed background refreshes, throwing onRemove calls and streams too large to keep (added to stats().errors)

  /** Counts an absorbed failure in `stats().errors` (see COUNT_ERROR). */
  [COUNT_ERROR]() {
    this.#errors++;
  }
  #closed = false;
  #sized;
  #sizeOf;
  #maker;
  #flights = new Map(); // request key -> the generation under way (see #fly)
  // The policy of a call without options: MemorySlots.callOptions(undefined, true), read once.
  #defaults;
  #keep; // how long past its TTL an entry is kept by default, ms (0: not kept)
  #bornMs; // the default TTL plus the default keep, ms: an entry stored with it was stored then
  #fresh = new Map(); // slot -> when its entry stops being fresh (entries kept past their TTL only)
  #born = null; // store times by slot (a Float64Array), once an entry is stored with another TTL
  #onRemove;
  #gone = null; // what left and is not reported yet: key, value, cause, ... (null without onRemove)
  #notifying = false;
  // Whether a store or a removal must look at #fresh, #born or #gone (false on the hot paths of a
  // cache without grace, TTLs of its own and onRemove, so that they stay as short as without).
  #noted = false;

  /** `new MemoryCache(options?)`. */
  constructor(options) {
    const ref = typeof WeakRef === "function" ? new WeakRef(this) : { deref: () => this };
    const slots = new MemorySlots(options, MemoryCache.#drainer(ref));
    this.#slots = slots;
    // As many keys and values as wasm reserved slots, as lru-cache reserves its arrays.
    const reserved = slots.reserved();
    this.#keys = new Array(reserved);
    this.#values = new Array(reserved);
    this.#sized = slots.needsSizes();
    this.#sizeOf = slots.sizeOf();
    this.#onRemove = slots.onRemove();
    if (this.#onRemove !== undefined) {
      this.#gone = [];
      this.#noted = true;
    }
    const d = slots.callOptions(undefined, true);
    this.#defaults = d;
    this.#keep = d.keep;
    this.#bornMs = d.keep === 0 ? d.ttlMs : Math.min(d.ttlMs + d.keep, MAX_TTL_SECS * 1000);
    // With no default expiry, no store time can be read from an expiry time.
    if (d.ttlMs === Infinity) {
      this.#born = new Float64Array(reserved);
      this.#noted = true;
    }
    this.#h = slots.header() >>> 2;
    this.#maker = new KeyMaker(slots, this.#h);
    this.#drain();
  }

  // The timer's callback holds the cache weakly, so that a dropped cache is collected (its
  // MemorySlots is then freed by wasm-bindgen's finalizer, which stops the timer).
  static #drainer(ref) {
    return () => {
      const cache = ref.deref();
      if (cache !== undefined) {
        cache.#drain();
        cache.#notify();
      }
    };
  }

  /** Drops the keys and values of the slots the last wasm call freed, and collects them for
   * onRemove: a removal the operation itself asked for (wasm's Explicit) is `explicit`
   * ("deleted" by default, "invalidated" for the pattern removals). */
  #drain(explicit) {
    views();
    const h = this.#h;
    const n = U32[h + REMOVED_LEN];
    if (n !== 0) {
      const at = U32[h + REMOVED_PTR] >>> 2;
      if (this.#noted) {
        this.#drainNoted(at, n, explicit === undefined ? "deleted" : explicit);
      } else {
        const map = this.#map;
        const keys = this.#keys;
        const values = this.#values;
        for (let i = 0; i < n * LOG_STRIDE; i += LOG_STRIDE) {
          const s = U32[at + i];
          map.delete(keys[s]);
          keys[s] = undefined;
          values[s] = undefined;
        }
      }
      U32[h + REMOVED_LEN] = 0;
    }
    this.#exp = U32[h + EXPIRY_PTR] >>> 3;
  }

  /** #drain() of the `n` slots logged at `at` (in u32 words) for a cache that keeps #fresh or
   * reports to onRemove. */
  #drainNoted(at, n, explicit) {
    const map = this.#map;
    const keys = this.#keys;
    const values = this.#values;
    const fresh = this.#fresh;
    const gone = this.#gone;
    for (let i = 0; i < n * LOG_STRIDE; i += LOG_STRIDE) {
      const s = U32[at + i];
      if (gone !== null) {
        const cause = (CAUSES ??= MemorySlots.causes())[U32[at + i + 1]];
        gone.push(keys[s], values[s], cause === "deleted" ? explicit : cause);
      }
      map.delete(keys[s]);
      keys[s] = undefined;
      values[s] = undefined;
      if (fresh.size !== 0) fresh.delete(s);
    }
  }

  /**
   * Calls onRemove(key, value, cause) for what left, once the operation that removed it is
   * complete. What onRemove does to the cache meanwhile is reported in the same loop. An
   * exception it throws does not unwind the operation: it is counted in `stats().errors` and
   * handed to the runtime's `reportError` where there is one.
   */
  #notify() {
    const gone = this.#gone;
    if (gone === null || gone.length === 0 || this.#notifying) return;
    this.#notifying = true;
    const onRemove = this.#onRemove;
    try {
      for (let i = 0; i < gone.length; i += 3) {
        try {
          onRemove(gone[i], gone[i + 1], gone[i + 2]);
        } catch (e) {
          this.#errors++;
          reportError(e);
        }
      }
    } finally {
      gone.length = 0;
      this.#notifying = false;
    }
  }

  /** Runs `op(t, a, b, c, d)`, reading the clock first when the reading is used up (that
   * operation is timed for the latency statistics); then reports removals to onRemove (those of
   * an operation that throws are reported after the next one). */
  #run(op, a, b, c, d) {
    let r;
    if (clockReuses !== 0) {
      clockReuses--;
      r = op.call(this, clockNow, a, b, c, d);
    } else {
      const t = readClock();
      const t0 = clock();
      try {
        r = op.call(this, t, a, b, c, d);
      } finally {
        this.#slots.recordLatency(clock() - t0);
      }
    }
    if (this.#gone !== null) this.#notify();
    return r;
  }

  /** The checks a key that is not in the map must still pass (type, open, length). */
  #checkKey(key) {
    if (typeof key !== "string" || !wellFormed(key)) {
      const e = MemorySlots.argError(key, "key");
      if (e !== undefined) throw e;
    }
    if (this.#closed) throw MemorySlots.shutDownError();
    if (key.length > SHORT_KEY) {
      const e = MemorySlots.keyLengthError(utf8Length(key));
      if (e !== undefined) throw e;
    }
  }

  /** A read at time `t`. A hit found here is logged for wasm, which counts it; a stale entry
   * reads as a miss. */
  #read(t, key) {
    const slot = this.#map.get(key);
    if (slot !== undefined) {
      if (this.#fresh.size !== 0) {
        const until = this.#fresh.get(slot);
        if (until !== undefined && until <= t) {
          this.#misses++;
          return undefined;
        }
      }
      const at = F64[this.#exp + slot * ENTRY_WORDS];
      if (at === Infinity || at > t) {
        const h = this.#h;
        const n = U32[h + TOUCH_LEN];
        if (n < TOUCH_CAPACITY) {
          U32[h + TOUCHES + n] = slot;
          U32[h + TOUCH_LEN] = n + 1;
          return this.#values[slot];
        }
      }
      // The read log is full, the entry looks expired, or memory grew: wasm decides (and counts).
      const live = this.#slots.read(slot, t);
      this.#drain();
      if (live === FAILED) throw this.#slots.takeError();
      const value = live === 1 ? this.#values[slot] : undefined;
      if (this.#gone !== null) this.#notify();
      return value;
    } else {
      this.#checkKey(key);
    }
    this.#misses++;
    return undefined;
  }

  /** The request key of `namespace` and `data`. */
  #key(namespace, data) {
    return this.#maker.key(namespace, data);
  }

  /** The size `value` is charged (0 without maxBytes); may run sizeOf or toJSON. */
  #size(value) {
    if (value === undefined) throw MemorySlots.undefinedValueError();
    if (this.#closed) throw MemorySlots.shutDownError();
    if (!this.#sized) return 0;
    const sizeOf = this.#sizeOf;
    if (sizeOf !== undefined) {
      let n;
      try {
        n = sizeOf(value);
      } catch (e) {
        throw MemorySlots.sizeOfError(e, true);
      }
      if (typeof n !== "number" || !(n >= 0) || n === Infinity) {
        throw MemorySlots.sizeOfError(undefined, false);
      }
      return Math.ceil(n);
    }
    let json;
    try {
      json = JSON.stringify(value);
    } catch (e) {
      throw MemorySlots.jsonError(value, e, true);
    }
    if (json === undefined) throw MemorySlots.jsonError(value, undefined, false);
    return utf8Length(json);
  }

  /** The policy `set`, `store` and `load` store with (see #put): options are read (and refused,
   * INVALID_OPTIONS) before anything else happens. */
  #setPolicy(options) {
    if (this.#keep === 0) {
      if (options === undefined) return undefined;
      const ttl = plainTtl(options);
      if (ttl !== NOT_PLAIN) return ttl;
    } else if (options === undefined) {
      return this.#defaults;
    }
    return this.#slots.callOptions(options, false);
  }

  /**
   * Stores under a valid key at time `t`; the slot is looked up after any user code (sizeOf)
   * has run. `policy` is a TTL in seconds (undefined: the default) with the default keep of 0,
   * or a MemorySlots.callOptions() record: an entry with `keep` > 0 and a finite TTL is stored
   * in wasm for ttl + keep, and is fresh until t + ttl (#fresh).
   */
  #put(t, key, value, size, policy) {
    const ttl = typeof policy === "object" ? stored(policy) : policy;
    const prev = this.#map.get(key);
    // Without a byte bound the key's length is only checked against the 32 KiB limit, which a
    // key of at most SHORT_KEY UTF-16 units cannot pass.
    const keyLen = this.#sized || key.length > SHORT_KEY ? utf8Length(key) : 0;
    const gone = this.#gone;
    const mark = gone === null ? 0 : gone.length;
    const slot = this.#slots.insert(prev === undefined ? -1 : prev, keyLen, size, ttl, t);
    this.#drain();
    if (slot === FAILED) throw this.#slots.takeError();
    if (this.#keys[slot] !== key) {
      this.#map.set(key, slot);
      this.#keys[slot] = key;
    } else if (gone !== null) {
      // Replaced in place (the key's slot was not freed): reported before the evictions it caused.
      gone.splice(mark, 0, key, this.#values[slot], "replaced");
    }
    this.#values[slot] = value;
    if (ttl !== undefined || this.#noted) this.#note(slot, t, ttl, policy);
  }

  /** What #put records beside the value in `slot`, stored at `t` for `ttl` seconds in wasm:
   * when it stops being fresh (#fresh), and its store time (#born) unless it can be read from
   * its expiry time. */
  #note(slot, t, ttl, policy) {
    const fresh = this.#fresh;
    if (typeof policy === "object" && policy.keep !== 0 && policy.ttlMs !== Infinity) {
      fresh.set(slot, t + policy.ttlMs);
      this.#noted = true;
    } else if (fresh.size !== 0) {
      fresh.delete(slot);
    }
    const born = this.#born;
    if (born !== null && slot < born.length) born[slot] = t;
    else if (born !== null || (ttl !== undefined && policy !== this.#defaults)) this.#track(slot, t);
  }

  /** Records that `slot` was stored at `t` when #born is missing (made now, with the store times
   * of every entry held, all stored with the default TTL and keep) or too short (grown). */
  #track(slot, t) {
    const old = this.#born;
    const born = new Float64Array(Math.max(this.#keys.length, slot + 1, old === null ? 0 : 2 * old.length));
    if (old !== null) {
      born.set(old);
    } else {
      views();
      for (const s of this.#map.values()) born[s] = F64[this.#exp + s * ENTRY_WORDS] - this.#bornMs;
    }
    born[slot] = t;
    this.#born = born;
    this.#noted = true;
  }

  /** Seconds since the entry in `slot` was stored, at time `t`. */
  #age(slot, t) {
    const born = this.#born;
    let at;
    if (born !== null) {
      at = born[slot];
    } else {
      views();
      at = F64[this.#exp + slot * ENTRY_WORDS] - this.#bornMs;
    }
    return t > at ? (t - at) / 1000 : 0;
  }

  /** The slot of `key`'s stale entry at time `t` (kept past its TTL, not yet expired), or -1. */
  #staleSlot(t, key) {
    if (this.#fresh.size === 0) return -1;
    const slot = this.#map.get(key);
    if (slot === undefined) return -1;
    const until = this.#fresh.get(slot);
    if (until === undefined || until > t) return -1;
    views();
    return F64[this.#exp + slot * ENTRY_WORDS] > t ? slot : -1;
  }

  #set(t, key, value, options) {
    if (typeof key !== "string" || !wellFormed(key)) {
      const e = MemorySlots.argError(key, "key");
      if (e !== undefined) throw e;
    }
    const policy = this.#setPolicy(options);
    const size = this.#size(value);
    // Sizing may have run user code (sizeOf, toJSON): then the clock is read again.
    this.#put(this.#sized ? readClock() : t, key, value, size, policy);
  }

  /** The slot of `key`'s live, fresh entry at time `t`, or -1; recency untouched, nothing
   * counted (an expired entry found is removed). Afterwards F64 is a live view. */
  #live(t, key) {
    const slot = this.#map.get(key);
    if (slot === undefined) {
      this.#checkKey(key);
      return -1;
    }
    if (this.#fresh.size !== 0) {
      const until = this.#fresh.get(slot);
      if (until !== undefined && until <= t) return -1;
    }
    const at = F64[this.#exp + slot * ENTRY_WORDS];
    if (at === Infinity || at > t) return slot;
    const live = this.#slots.contains(slot, t);
    this.#drain();
    if (live === FAILED) throw this.#slots.takeError();
    return live === 1 ? slot : -1;
  }

  #has(t, key) {
    return this.#live(t, key) >= 0;
  }

  #peek(t, key) {
    const slot = this.#live(t, key);
    return slot < 0 ? undefined : this.#values[slot];
  }

  /** When the entry in a live, fresh `slot` stops being fresh (Infinity: never). */
  #freshUntil(slot) {
    const until = this.#fresh.size === 0 ? undefined : this.#fresh.get(slot);
    return until !== undefined ? until : F64[this.#exp + slot * ENTRY_WORDS];
  }

  #remainingTtl(t, key) {
    const slot = this.#live(t, key);
    if (slot < 0) return undefined;
    const at = this.#freshUntil(slot);
    return at === Infinity ? Infinity : (at - t) / 1000;
  }

  /** Live, fresh slots at time `t`, most recently used first. */
  #order(t) {
    if (this.#closed) throw MemorySlots.shutDownError();
    let slots = this.#slots.recency(t);
    this.#drain();
    const fresh = this.#fresh;
    if (fresh.size !== 0) {
      slots = slots.filter((s) => {
        const until = fresh.get(s);
        return until === undefined || until > t;
      });
    }
    return slots;
  }

  /** Checks a dump() before anything of it is stored; returns [key, value, size, policy] rows. */
  #loadable(entries) {
    if (!Array.isArray(entries)) throw MemorySlots.loadError("not an array");
    const rows = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e === null || typeof e !== "object") throw MemorySlots.loadError(`entry ${i} is not an object`);
      const names = Object.keys(e).filter((n) => n !== "key" && n !== "value" && n !== "ttl");
      if (names.length !== 0) throw MemorySlots.loadError(`entry ${i} has an unknown field "${names[0]}"`);
      this.#checkKey(e.key);
      const policy = this.#setPolicy(e.ttl === undefined ? undefined : { ttl: e.ttl === null ? Infinity : e.ttl });
      const size = this.#size(e.value);
      if (this.#slots.checkCharge(utf8Length(e.key), size) === FAILED) throw this.#slots.takeError();
      rows.push([e.key, e.value, size, policy]);
    }
    return rows;
  }

  #delete(t, key) {
    const slot = this.#map.get(key);
    if (slot === undefined) {
      this.#checkKey(key);
      return false;
    }
    const live = this.#slots.delete(slot, t);
    this.#drain("deleted");
    if (live === FAILED) throw this.#slots.takeError();
    return live === 1;
  }

  #lookup(t, namespace, data) {
    return this.#read(t, this.#key(namespace, data));
  }

  #store(t, namespace, data, value, options) {
    const policy = this.#setPolicy(options);
    const key = this.#key(namespace, data);
    const size = this.#size(value);
    this.#put(this.#sized ? readClock() : t, key, value, size, policy);
    return key;
  }

  #getOrSetValue(t, namespace, data, generator, options) {
    return this.#getOrSet(t, namespace, data, generator, options, false);
  }

  #getOrSetEntry(t, namespace, data, generator, options) {
    return this.#getOrSet(t, namespace, data, generator, options, true);
  }

  /**
   * getOrSet (`entry` false: the value) and getOrSetEntry (`entry`: `{ value, status, key, age }`).
   * A synchronous generator gets a synchronous answer, an async one a promise. Each call counts
   * one read: a hit for status "hit", a miss for every other status.
   */
  #getOrSet(t, namespace, data, generator, options, entry) {
    if (typeof generator !== "function") throw MemorySlots.generatorError(0, generator);
    // `o`: the call's windows, timeout, signal and waitUntil; `policy`: what a value is stored with.
    let o = this.#defaults;
    let policy = this.#keep === 0 ? undefined : o;
    if (options !== undefined) {
      const ttl = this.#keep === 0 ? plainTtl(options) : NOT_PLAIN;
      if (ttl !== NOT_PLAIN) policy = ttl;
      else policy = o = this.#slots.callOptions(options, true);
    }
    const key = this.#key(namespace, data);
    const async = isAsyncFunction(generator);
    const signal = o.signal;
    if (signal !== undefined && signal.aborted) {
      if (async) return Promise.reject(signal.reason);
      throw signal.reason;
    }
    const hit = this.#read(t, key);
    if (hit !== undefined) {
      const r = entry ? { value: hit, status: "hit", key, age: this.#age(this.#map.get(key), t) } : hit;
      return async ? Promise.resolve(r) : r;
    }
    const stale = this.#staleSlot(t, key);
    const flight = this.#flights.get(key);
    if (stale >= 0 && t < this.#fresh.get(stale) + o.staleWhileRevalidate) {
      // Served at once; one refresh runs (unless a generation is already under way).
      const value = this.#values[stale];
      const r = entry ? { value, status: "stale", key, age: this.#age(stale, t) } : value;
      if (flight === undefined) this.#revalidate(key, generator, policy, o, value);
      return async ? Promise.resolve(r) : r;
    }
    // An async generator joins the generation under way for the key, if any, before it is called.
    if (async && flight !== undefined) return this.#wait(flight, key, o, "joined", entry);
    const ctx = new GeneratorContext(key, policy, this.#slots, stale >= 0 ? this.#values[stale] : undefined);
    let value;
    try {
      value = generator(ctx);
    } catch (e) {
      return this.#staleOr(MemorySlots.generatorError(1, e), key, o.staleIfError, entry);
    }
    if (isThenable(value)) {
      const f = this.#fly(key, value, ctx, o.timeout, false);
      return this.#wait(f, key, o, f.ctx === ctx ? "miss" : "joined", entry);
    }
    const kept = this.#storeGenerated(key, value, ctx);
    return entry ? { value: kept, status: "miss", key, age: 0 } : kept;
  }

  /**
   * What a generation's failure `err` gives a caller whose staleIfError window is `window` (ms):
   * the key's stale value within the window ("stale-error"), if the generator failed or timed
   * out; else `err`, thrown.
   */
  #staleOr(err, key, window, entry) {
    if (window !== 0 && !this.#closed && (err?.code === "GENERATOR_FAILED" || err?.code === "TIMEOUT")) {
      const t = readClock();
      const slot = this.#staleSlot(t, key);
      if (slot >= 0 && t < this.#fresh.get(slot) + window) {
        const value = this.#values[slot];
        return entry ? { value, status: "stale-error", key, age: this.#age(slot, t) } : value;
      }
    }
    throw err;
  }

  /** Stores what a generator produced (unless it called `skip()`); returns it. */
  #storeGenerated(key, value, ctx) {
    if (GeneratorContext.skipped(ctx)) {
      if (value === undefined) throw MemorySlots.undefinedValueError();
      return value;
    }
    const size = this.#size(value);
    this.#put(readClock(), key, value, size, GeneratorContext.policy(ctx));
    return value;
  }

  /**
   * The generation under way for `key` (a plain function that returned a promise while another
   * ran joins that one): `{ promise, ctx, waiters, background, stop, abandon }`. `promise`
   * resolves to the stored value (or the skipped one) when `pending` does; it rejects with
   * GENERATOR_FAILED (the failure as `cause`), with the error of storing the value, with
   * TIMEOUT after `timeout` ms (0: none), with SHUT_DOWN when the cache shuts down, or when
   * every waiter aborted (`abandon`). Each of those ends it: it leaves #flights, `ctx.signal`
   * aborts (but on failure or success), and a result that comes later is dropped.
   */
  #fly(key, pending, ctx, timeout, background) {
    const existing = this.#flights.get(key);
    if (existing !== undefined) {
      Promise.resolve(pending).catch(ignore);
      return existing;
    }
    let resolve;
    let reject;
    const flight = {
      promise: new Promise((res, rej) => {
        resolve = res;
        reject = rej;
      }),
      ctx,
      waiters: 0, // callers waiting that may still abort; a generation no one waits for is dropped
      background, // a refresh of a stale value: kept however many callers wait
      timer: undefined,
      stop: null,
      abandon: null,
    };
    const end = () => {
      if (this.#flights.get(key) !== flight) return false;
      this.#flights.delete(key);
      if (flight.timer !== undefined) clearTimeout(flight.timer);
      return true;
    };
    const drop = (err) => {
      if (end()) {
        GeneratorContext.abort(ctx, err);
        reject(err);
      }
    };
    flight.stop = () => drop(MemorySlots.shutDownError());
    flight.abandon = drop;
    if (timeout > 0) flight.timer = setTimeout(() => drop(timeoutError(timeout)), timeout);
    this.#flights.set(key, flight);
    Promise.resolve(pending).then(
      (value) => {
        if (!end()) return; // dropped meanwhile: the late result is not stored
        try {
          if (this.#closed) throw MemorySlots.shutDownError();
          resolve(this.#storeGenerated(key, value, ctx));
        } catch (e) {
          reject(e);
        } finally {
          this.#notify();
        }
      },
      (e) => {
        if (end()) reject(MemorySlots.generatorError(1, e));
      },
    );
    return flight;
  }

  /**
   * One caller's share of `flight`: its value (or `{ value, status, key, age: 0 }`), or on
   * failure the stale value within the caller's staleIfError window; the caller's own signal
   * rejects it alone with the signal's reason (its listener is removed when the flight settles),
   * and the last waiter to abort drops the generation.
   */
  #wait(flight, key, o, status, entry) {
    flight.waiters++;
    const signal = o.signal;
    const window = o.staleIfError;
    if (signal === undefined && window === 0 && !entry) return flight.promise;
    return new Promise((resolve, reject) => {
      let onAbort;
      if (signal !== undefined) {
        onAbort = () => {
          reject(signal.reason);
          if (--flight.waiters === 0 && !flight.background) flight.abandon(signal.reason);
        };
        signal.addEventListener("abort", onAbort);
      }
      flight.promise.then(
        (value) => {
          if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
          resolve(entry ? { value, status, key, age: 0 } : value);
        },
        (e) => {
          if (onAbort !== undefined) {
            signal.removeEventListener("abort", onAbort);
            if (signal.aborted) return;
          }
          try {
            resolve(this.#staleOr(e, key, window, entry));
          } catch (err) {
            reject(err);
          }
        },
      );
    });
  }

  /**
   * Starts the background refresh of `key`, whose stale value a caller was just given: the
   * generator runs after the caller has its answer (sync and async generators alike), as a
   * generation other callers join. Its promise (settled when it ends, never rejected) goes to
   * `waitUntil`; a failure caches nothing and is counted in `stats().errors`.
   */
  #revalidate(key, generator, policy, o, stale) {
    const ctx = new GeneratorContext(key, policy, this.#slots, stale);
    const pending = Promise.resolve().then(() => (ctx.signal.aborted ? undefined : generator(ctx)));
    const flight = this.#fly(key, pending, ctx, o.timeout, true);
    const done = flight.promise.then(ignore, (e) => {
      if (e?.code !== "SHUT_DOWN") this.#errors++;
    });
    const waitUntil = o.waitUntil;
    if (waitUntil !== undefined) {
      try {
        waitUntil(done);
      } catch (e) {
        reportError(e);
      }
    }
  }

  /** Hands wasm every key held (joined, with UTF-16 lengths and slots) to match against. */
  #removeMatching(kind, arg) {
    const n = this.#map.size;
    const keys = new Array(n);
    const lens = new Uint32Array(n);
    const slots = new Uint32Array(n);
    let i = 0;
    for (const [key, slot] of this.#map) {
      keys[i] = key;
      lens[i] = key.length;
      slots[i] = slot;
      i++;
    }
    const removed = this.#slots.deleteMatching(kind, arg, keys.join(""), lens, slots, now());
    this.#drain("invalidated");
    if (kind === Removal.SwitchVersion) {
      this.#maker.versionChanged();
    }
    this.#notify();
    return removed;
  }

  /** Forgets every key and value (keeping the reserved arrays unless `release`). */
  #reset(release) {
    this.#map.clear();
    this.#fresh.clear();
    if (release) {
      this.#keys = [];
      this.#values = [];
      this.#born = null;
    } else {
      this.#keys.fill(undefined);
      this.#values.fill(undefined);
    }
  }

  /** The value under `key`, or `undefined`. Refreshes recency. */
  get(key) {
    if (clockReuses !== 0) {
      clockReuses--;
      return this.#read(clockNow, key);
    }
    // An entry that never expires is read without a clock reading (only a full read log, which
    // wasm then empties, uses the old one).
    const slot = this.#map.get(key);
    if (slot !== undefined && F64[this.#exp + slot * ENTRY_WORDS] === Infinity) return this.#read(clockNow, key);
    return this.#run(this.#read, key);
  }

  /** Stores `value` under `key` (`options`: `{ ttl, grace }`, else the cache's). */
  set(key, value, options) {
    this.#run(this.#set, key, value, options);
  }

  /** Whether `key` holds a live, fresh entry (not counted as a hit or miss; recency untouched). */
  has(key) {
    return this.#run(this.#has, key);
  }

  /** The value under `key`, or `undefined`, without refreshing recency or counting a hit or
   * miss. */
  peek(key) {
    return this.#run(this.#peek, key);
  }

  /** Seconds until `key`'s entry expires (`Infinity` if never), or `undefined` when absent
   * (or stale). */
  remainingTtl(key) {
    return this.#run(this.#remainingTtl, key);
  }

  /** An iterator over `pick(slot)` of the live, fresh slots now, most recently used first. */
  #listing(pick) {
    const out = Array.from(this.#order(now()), pick);
    this.#notify();
    return out.values();
  }

  /** The live keys, most recently used first (a snapshot). */
  keys() {
    return this.#listing((s) => this.#keys[s]);
  }

  /** The live values, most recently used first (a snapshot). */
  values() {
    return this.#listing((s) => this.#values[s]);
  }

  /** The live `[key, value]` pairs, most recently used first (a snapshot). */
  entries() {
    return this.#listing((s) => [this.#keys[s], this.#values[s]]);
  }

  /** Same as `entries()`. */
  [Symbol.iterator]() {
    return this.entries();
  }

  /**
   * The live entries as plain data, most recently used first: `{ key, value, ttl }` with `ttl`
   * the seconds left (`null` for an entry that never expires, which JSON carries). `load()`
   * restores them. Stale entries are left out, and the grace of the others is not kept.
   */
  dump() {
    const t = now();
    const out = Array.from(this.#order(t), (s) => {
      const at = this.#freshUntil(s);
      const e = { key: this.#keys[s], value: this.#values[s] };
      e.ttl = at === Infinity ? null : (at - t) / 1000;
      return e;
    });
    this.#notify();
    return out;
  }

  /**
   * Stores what `dump()` returned (each entry with its `ttl`: `null` or `Infinity` for no
   * expiry, absent for the default TTL; the cache's grace applies), so that the first entry ends up the most recently used. Everything is
   * checked before anything is stored: a bad entry is refused (`INVALID_OPTIONS`,
   * `INVALID_KEY`, `UNSERIALIZABLE`, `VALUE_TOO_LARGE`) with the cache unchanged. The bounds
   * apply as to `set`.
   */
  load(entries) {
    const rows = this.#loadable(entries);
    const t = readClock();
    try {
      for (let i = rows.length - 1; i >= 0; i--) {
        const [key, value, size, policy] = rows[i];
        this.#put(t, key, value, size, policy);
      }
    } finally {
      this.#notify();
    }
  }

  /** Deletes `key`; true when an entry was removed (a stale one kept for grace included). */
  delete(key) {
    return this.#run(this.#delete, key);
  }

  /** The request key `"{version}:{namespace}:{md5}"` of `data`. */
  key(namespace, data) {
    return this.#key(namespace, data);
  }

  /** `get(key(namespace, data))` in one call. */
  lookup(namespace, data) {
    return this.#run(this.#lookup, namespace, data);
  }

  /** `set(key(namespace, data), value, options)` in one call; returns the key. */
  store(namespace, data, value, options) {
    return this.#run(this.#store, namespace, data, value, options);
  }

  /**
   * The cached value for `(namespace, data)`, or the result of `generator(ctx)` stored under it
   * (`ctx`: `{ key, signal, stale, skip(), ttl(duration) }`). A synchronous generator's value is
   * returned as it is; with an `async` generator (or one that returns a promise) a promise is
   * returned, every async call for the key joins the generation under way, and the value is
   * stored when it resolves. A failure comes back as `GENERATOR_FAILED` with the original as
   * `cause`, and nothing is cached. `options`: `{ ttl, grace, staleWhileRevalidate,
   * staleIfError, timeout, signal, waitUntil }` (see getOrSetEntry for what they do).
   */
  getOrSet(namespace, data, generator, options) {
    return this.#run(this.#getOrSetValue, namespace, data, generator, options);
  }

  /**
   * getOrSet's answer as `{ value, status, key, age }`: status "hit" (a fresh entry), "miss" (this
   * call generated), "joined" (it waited for a generation under way), "stale" (a value past its
   * TTL served at once within `staleWhileRevalidate`, while one background refresh runs) or
   * "stale-error" (the generation failed or timed out, and a value past its TTL within
   * `staleIfError` stood in); `age` is the seconds since the value was stored (0 when it was
   * just generated). Synchronous for a synchronous generator, a promise for an async one.
   */
  getOrSetEntry(namespace, data, generator, options) {
    return this.#run(this.#getOrSetEntry, namespace, data, generator, options);
  }

  /** Deletes every key matching the Redis glob `pattern`; returns how many. */
  deletePattern(pattern) {
    return this.#removeMatching(Removal.Pattern, pattern);
  }

  /** Deletes every request key of `namespace` under the current version; returns how many. */
  invalidateNamespace(namespace) {
    return this.#removeMatching(Removal.Namespace, namespace);
  }

  /** Deletes every key under `version`; returns how many. */
  invalidateVersion(version) {
    return this.#removeMatching(Removal.Version, version);
  }

  /** Invalidates the current version and switches to `version`; returns how many keys went. */
  updateVersion(version) {
    return this.#removeMatching(Removal.SwitchVersion, version);
  }

  /** Removes every entry (each reported to onRemove as "cleared"). */
  clear() {
    this.#slots.clear();
    const gone = this.#gone;
    if (gone !== null) {
      for (const [key, slot] of this.#map) gone.push(key, this.#values[slot], "cleared");
    }
    this.#reset(false);
    this.#notify();
  }

  /** Entries held, stale ones kept for grace included (0 after `shutdown()`). */
  get size() {
    const n = this.#slots.len(now());
    this.#drain();
    this.#notify();
    return n;
  }

  /** The current version prefix. */
  get version() {
    return this.#maker.version;
  }

  /** Statistics as a plain object (still readable after `shutdown()`). */
  stats() {
    const s = this.#slots.stats(now(), this.#misses);
    this.#misses = 0;
    this.#drain();
    s.errors += this.#errors;
    this.#notify();
    return s;
  }

  /**
   * Stops the cleanup timer and drops every entry (without calling onRemove); later operations
   * fail with `SHUT_DOWN` (`stats()`, `size` and `version` stay readable). Every generation under
   * way ends: its signal aborts and its callers get `SHUT_DOWN`. Calling it again does nothing.
   */
  shutdown() {
    this.#slots.shutdown();
    this.#closed = true;
    this.#reset(true);
    if (this.#gone !== null) this.#gone.length = 0;
    for (const flight of this.#flights.values()) flight.stop();
  }

  /** Same as `shutdown()`: the entries and the timer go now (the rest when collected). */
  free() {
    this.shutdown();
  }
}

if (typeof Symbol.dispose === "symbol") {
  MemoryCache.prototype[Symbol.dispose] = MemoryCache.prototype.free;
}

// ---- streams ----------------------------------------------------------------------------------
//
// `getOrSetStream` on both classes (MemoryCache here, Cache through `withStreams(Cache)` in each
// entry), written once over the public methods they share: `key`, `get` and `set` (a plain value
// or a promise of one, awaited either way). A generation in flight is a StreamFlight: the source
// is read as fast as it produces, every chunk kept in order; each reader is a ReadableStream that
// replays the chunks so far and then follows the live ones. The recording is stored (one value,
// `{ "cachette/stream": 1, chunks, bytes }`) only when the source finishes cleanly.

const STREAM_TAG = "cachette/stream";
const STREAM_OPTIONS = ["ttl", "grace", "signal", "replay", "maxStreamBytes", "waitUntil"];
const MAX_STREAM_BYTES = 4 * 1024 * 1024;
/** The streams being generated, by cache and key. */
const streamFlights = new WeakMap();

/** A CacheError made with the class wasm makes its errors with (the package's CacheError, which
 * the entry registered with wasm), for codes MemorySlots has no helper for. */
function cacheError(code, message) {
  const CacheError = MemorySlots.shutDownError().constructor;
  if (CacheError !== Error) return new CacheError(code, message);
  const e = new Error(message);
  e.name = "CacheError";
  e.code = code;
  return e;
}

const badStreamOptions = (message) => cacheError("INVALID_OPTIONS", `getOrSetStream options: ${message}`);

/** Reads `getOrSetStream`'s options: `{ ttl, grace }` as `set` takes them, `signal`,
 * `replay: { chunkDelay }` (a duration, in milliseconds here) and `maxStreamBytes`. */
function streamOptions(options) {
  if (options === undefined || options === null) return { set: undefined, delayMs: 0, max: MAX_STREAM_BYTES, waitUntil: undefined };
  if (typeof options !== "object" || Array.isArray(options)) throw badStreamOptions("must be an object");
  for (const name of Object.keys(options)) {
    if (!STREAM_OPTIONS.includes(name)) {
      throw badStreamOptions(`unknown option "${name}"; known: ${STREAM_OPTIONS.join(", ")}`);
    }
  }
  const set = {};
  if (options.ttl !== undefined) set.ttl = options.ttl;
  if (options.grace !== undefined) set.grace = options.grace;
  MemorySlots.ttlOption(set); // checks ttl and grace as set() would, before anything runs
  const { signal, replay, maxStreamBytes, waitUntil } = options;
  if (waitUntil !== undefined && typeof waitUntil !== "function") throw badStreamOptions("waitUntil must be a function");
  if (signal !== undefined && !(typeof signal === "object" && signal !== null && typeof signal.aborted === "boolean" && typeof signal.addEventListener === "function")) {
    throw badStreamOptions("signal must be an AbortSignal");
  }
  let delayMs = 0;
  if (replay !== undefined) {
    if (replay === null || typeof replay !== "object" || Array.isArray(replay)) throw badStreamOptions("replay must be an object");
    const extra = Object.keys(replay).filter((n) => n !== "chunkDelay");
    if (extra.length) throw badStreamOptions(`replay has an unknown option "${extra[0]}"; known: chunkDelay`);
    const d = replay.chunkDelay;
    if (d !== undefined && d !== 0 && d !== "0ms" && d !== "0s") {
      const secs = MemorySlots.ttlOption({ ttl: d });
      if (secs === undefined || !Number.isFinite(secs)) throw badStreamOptions("replay.chunkDelay must be a finite duration");
      delayMs = secs * 1000;
    }
  }
  let max = MAX_STREAM_BYTES;
  if (maxStreamBytes !== undefined) {
    if (!Number.isInteger(maxStreamBytes) || maxStreamBytes < 1) throw badStreamOptions("maxStreamBytes must be a whole number of bytes >= 1");
    max = maxStreamBytes;
  }
  return { set: Object.keys(set).length ? set : undefined, signal, delayMs, max, waitUntil };
}

/** What a chunk weighs against maxStreamBytes (UTF-8 bytes of a string or of a value's JSON);
 * -1 for a value JSON cannot carry (the stream is then not cached). */
function chunkBytes(chunk) {
  if (typeof chunk === "string") return utf8Length(chunk);
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  try {
    const text = JSON.stringify(chunk);
    return text === undefined ? -1 : utf8Length(text);
  } catch {
    return -1;
  }
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

/** The value a finished recording is stored as (bytes as base64, their indices listed). */
function recording(chunks) {
  const bytes = [];
  const out = chunks.map((c, i) => {
    if (!(c instanceof Uint8Array)) return c;
    bytes.push(i);
    return toBase64(c);
  });
  return { [STREAM_TAG]: 1, chunks: out, bytes };
}

/** The chunks of a stored recording, or undefined for any other value. */
function recorded(value) {
  if (value === null || typeof value !== "object" || value[STREAM_TAG] !== 1 || !Array.isArray(value.chunks)) return undefined;
  const chunks = value.chunks.slice();
  for (const i of Array.isArray(value.bytes) ? value.bytes : []) {
    if (typeof chunks[i] === "string") chunks[i] = fromBase64(chunks[i]);
  }
  return chunks;
}

/** A reader's own copy of a chunk (bytes are copied, so that no reader changes another's). */
const own = (chunk) => (chunk instanceof Uint8Array ? chunk.slice() : chunk);

/** A source's chunks as `next()`, whether it is a ReadableStream or an async iterable. */
function openSource(source) {
  if (source !== null && typeof source === "object" && typeof source.getReader === "function") {
    const reader = source.getReader();
    return { next: () => reader.read(), cancel: (why) => reader.cancel(why).catch(ignore) };
  }
  const iterate = source?.[Symbol.asyncIterator] ?? source?.[Symbol.iterator];
  if (typeof iterate !== "function") {
    throw cacheError("GENERATOR_FAILED", "getOrSetStream: the generator must return a ReadableStream or an async iterable");
  }
  const it = iterate.call(source);
  return {
    next: async () => it.next(),
    cancel: async () => {
      try {
        await it.return?.();
      } catch {
        // A source that fails while being cancelled has nothing more to say.
      }
    },
  };
}

/** The generation of one key's stream, shared by every reader. */
class StreamFlight {
  chunks = [];
  bytes = 0;
  done = false;
  error = undefined;
  failed = false;
  /** Not to be stored: too large, skipped, a chunk JSON cannot carry, or abandoned. */
  keep = true;
  /** Grew past maxStreamBytes (counted once in stats().errors). */
  oversized = false;
  readers = 0;
  controller = new AbortController();
  source = null;
  /** Settles at the next change (a chunk, the end, a failure). Made by the side that makes the
   * changes, so that a reader in another request awaits the producer's promise: workerd cancels a
   * request left waiting on a promise only another request's code would settle. */
  changed;
  #changed;

  constructor() {
    this.#next();
  }

  #next() {
    this.changed = new Promise((resolve) => (this.#changed = resolve));
  }

  wake() {
    const settle = this.#changed;
    this.#next();
    settle();
  }

  /** Ends the generation now: every reader errors with `why`, the source is cancelled. */
  stop(why) {
    if (this.done || this.failed) return;
    this.keep = false;
    this.failed = true;
    this.error = why;
    this.controller.abort(why);
    this.source?.cancel(why);
    this.wake();
  }

  /** A reader leaves; the last one to leave before the end abandons the generation. */
  leave(reason, abandon) {
    this.readers -= 1;
    if (this.readers === 0 && !this.done && !this.failed) {
      this.keep = false;
      this.failed = true;
      this.error = reason;
      this.controller.abort(reason);
      this.source?.cancel(reason);
      abandon();
    }
  }
}

/** A ReadableStream replaying `flight`'s chunks so far, then following the live ones. */
function follow(flight, signal, abandon) {
  let i = 0;
  let left = false;
  flight.readers += 1;
  const stop = () => {
    left = true;
    signal?.removeEventListener("abort", onAbort);
  };
  const leave = (reason) => {
    if (left) return;
    stop();
    flight.leave(reason, abandon);
  };
  let streamController;
  const onAbort = () => {
    leave(signal.reason);
    try {
      streamController.error(signal.reason);
    } catch {
      // Already closed.
    }
  };
  return new ReadableStream(
    {
      start(controller) {
        streamController = controller;
        signal?.addEventListener("abort", onAbort, { once: true });
      },
      async pull(controller) {
        for (;;) {
          if (left) return;
          if (i < flight.chunks.length) {
            controller.enqueue(own(flight.chunks[i++]));
            return;
          }
          if (flight.failed || flight.done) {
            stop();
            flight.readers -= 1;
            if (flight.failed) controller.error(flight.error);
            else controller.close();
            return;
          }
          await flight.changed;
        }
      },
      cancel(reason) {
        leave(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** A ReadableStream of recorded `chunks`, `delayMs` apart (0: as fast as the reader takes). */
function replay(chunks, delayMs, signal) {
  let i = 0;
  return new ReadableStream(
    {
      start(controller) {
        signal?.addEventListener("abort", () => controller.error(signal.reason), { once: true });
      },
      async pull(controller) {
        if (i > 0 && delayMs > 0 && i < chunks.length) await new Promise((r) => setTimeout(r, delayMs));
        if (i < chunks.length) controller.enqueue(own(chunks[i++]));
        else controller.close();
      },
    },
    { highWaterMark: 0 },
  );
}

/** The context of a stream generator: `{ key, signal, stale, skip(), ttl(d) }`. */
function streamContext(key, flight, policy) {
  return {
    key,
    signal: flight.controller.signal,
    stale: undefined,
    skip() {
      flight.keep = false;
    },
    ttl(duration) {
      const secs = MemorySlots.ttlOption({ ttl: duration });
      policy.set = { ...policy.set, ttl: secs };
    },
  };
}

/** The lead call of a key: the cache's value, or a new generation (registered as `slot`). */
async function leadStream(cache, flights, slot, key, generator, o) {
  const release = () => {
    if (flights.get(key) === slot) flights.delete(key);
  };
  let held;
  try {
    held = await cache.get(key);
  } catch (e) {
    release();
    throw e;
  }
  const chunks = recorded(held);
  if (chunks !== undefined) {
    release();
    return { chunks };
  }
  const flight = new StreamFlight();
  const policy = { set: o.set };
  try {
    flight.source = openSource(await generator(streamContext(key, flight, policy)));
  } catch (e) {
    release();
    throw e?.code === "GENERATOR_FAILED" ? e : MemorySlots.generatorError(1, e);
  }
  const generation = (async () => {
    try {
      for (;;) {
        const { value, done } = await flight.source.next();
        if (flight.failed) return;
        if (done) break;
        const size = chunkBytes(value);
        if (size < 0) flight.keep = false;
        flight.bytes += Math.max(size, 0);
        if (flight.bytes > o.max && !flight.oversized) {
          flight.oversized = true;
          flight.keep = false;
          cache[COUNT_ERROR]();
        }
        flight.chunks.push(value);
        flight.wake();
      }
      flight.done = true;
      flight.wake();
      if (flight.keep) {
        try {
          await cache.set(key, recording(flight.chunks), policy.set);
        } catch {
          // A recording the cache refuses (too large for maxBytes, say) is simply not kept.
        }
      }
      // Released once stored: a call until then joins the finished flight rather than
      // generating again.
      release();
    } catch (e) {
      if (flight.failed) return;
      flight.failed = true;
      flight.keep = false;
      flight.error = MemorySlots.generatorError(1, e);
      flight.controller.abort(flight.error);
      flight.wake();
      release();
    }
  })();
  // In a Worker: the generation, and the write of its recording, outlive the request.
  o.waitUntil?.(generation);
  return { flight, abandon: release };
}

/**
 * `getOrSetStream(namespace, data, generator, options?)`: `{ stream, status, key }`. On a miss
 * the caller's stream forwards the generator's chunks as they come, recorded; a call while the
 * key is generating joins (the chunks so far, then the live ones); a hit replays the recording.
 */
async function getOrSetStream(namespace, data, generator, options) {
  const key = this.key(namespace, data);
  if (typeof generator !== "function") throw MemorySlots.generatorError(0, generator);
  const o = streamOptions(options);
  if (o.signal?.aborted) throw o.signal.reason;
  let flights = streamFlights.get(this);
  if (flights === undefined) streamFlights.set(this, (flights = new Map()));
  let slot = flights.get(key);
  let status = "joined";
  if (slot === undefined) {
    status = "miss";
    slot = {};
    slot.promise = leadStream(this, flights, slot, key, generator, o);
    flights.set(key, slot);
  }
  const found = await slot.promise;
  if (found.chunks !== undefined) return { stream: replay(found.chunks, o.delayMs, o.signal), status: "hit", key };
  if (found.flight.failed && found.flight.readers === 0 && status === "joined") {
    // Joined a generation every reader has left: start anew.
    return getOrSetStream.call(this, namespace, data, generator, options);
  }
  return { stream: follow(found.flight, o.signal, found.abandon), status, key };
}

/** Gives `Class` (Cache, MemoryCache) its `getOrSetStream`, and makes its `shutdown()` end the
 * streams being generated (their readers error with `SHUT_DOWN`, their sources are cancelled,
 * nothing is stored); returns `Class`. */
export function withStreams(Class) {
  Object.defineProperty(Class.prototype, "getOrSetStream", { value: getOrSetStream, writable: true, configurable: true });
  if (!(COUNT_ERROR in Class.prototype)) {
    // Cache counts through its wasm half.
    Object.defineProperty(Class.prototype, COUNT_ERROR, {
      value: function countError() {
        this.__countError();
      },
    });
  }
  const shutdown = Class.prototype.shutdown;
  Object.defineProperty(Class.prototype, "shutdown", {
    value: function shutdownWithStreams() {
      shutdown.call(this);
      const flights = streamFlights.get(this);
      if (flights === undefined) return;
      streamFlights.delete(this);
      const why = MemorySlots.shutDownError();
      for (const slot of flights.values()) {
        slot.promise.then((found) => found.flight?.stop(why), ignore);
      }
    },
    writable: true,
    configurable: true,
  });
  return Class;
}

withStreams(MemoryCache);
