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
// Errors are made by MemorySlots' static helpers, so every code and message is the crate's.
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
 * left to the wasm parser, which knows the exact bound. */
const PLAIN_TTL = 1e9;

/** `options.ttl` of a per-call option bag (undefined: the default), checked in full (type and
 * range) so that getOrSet refuses a bad one before its generator runs; the wasm parser decides
 * everything but the plain cases, and throws its INVALID_OPTIONS. */
function ttlOption(options) {
  if (options === null) return undefined;
  if (typeof options === "object" && options instanceof Object && !Array.isArray(options)) {
    const names = Object.keys(options);
    if (names.length === 0 || (names.length === 1 && names[0] === "ttl")) {
      const ttl = options.ttl;
      if (ttl === undefined || (typeof ttl === "number" && ttl > 0 && ttl <= PLAIN_TTL)) return ttl;
    }
  }
  return MemorySlots.ttlOption(options);
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

/** What a generator is called with: `{ key, signal, stale, skip(), ttl(seconds) }`. */
class GeneratorContext {
  /** The request key being generated. */
  key;
  /** Aborted when the cache shuts down while the generation runs. */
  signal;
  /** The expired value being refreshed, if any (none yet: see the README). */
  stale = undefined;
  #skipped = false;
  #ttl;
  #controller;

  constructor(key, ttl) {
    this.key = key;
    this.#ttl = ttl;
    this.#controller = new AbortController();
    this.signal = this.#controller.signal;
  }

  /** Aborts `signal` (the cache shut down while the generation ran). */
  abort() {
    this.#controller.abort(MemorySlots.shutDownError());
  }

  /** Hands the result to the caller (and every waiter) without caching it. */
  skip() {
    this.#skipped = true;
  }

  /** Sets this entry's TTL, in seconds (`INVALID_OPTIONS` for a bad one). */
  ttl(seconds) {
    this.#ttl = ttlOption({ ttl: seconds });
  }

  /** Whether the generator called `skip()` (for MemoryCache; not part of the context's API). */
  static skipped(ctx) {
    return ctx.#skipped;
  }

  /** The entry's TTL in seconds, or undefined for the default (for MemoryCache). */
  static ttlOf(ctx) {
    return ctx.#ttl;
  }
}

/** What a generation under way resolves to when the cache shuts down first. */
const STOPPED = {};

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

/** A synchronous in-memory cache holding any JS value: TTL, true LRU, entry and byte bounds. */
export class MemoryCache {
  #slots;
  #map = new Map();
  #keys = [];
  #values = [];
  #h = 0; // the shared block, in u32 words
  #exp = 0; // the slot array (expiry time first), in f64 words
  #misses = 0;
  #closed = false;
  #sized;
  #sizeOf;
  #maker;
  #flights = new Map(); // request key -> the generation under way: { promise, ctx, stop }

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
    this.#h = slots.header() >>> 2;
    this.#maker = new KeyMaker(slots, this.#h);
    this.#drain();
  }

  // The timer's callback holds the cache weakly, so that a dropped cache is collected (its
  // MemorySlots is then freed by wasm-bindgen's finalizer, which stops the timer).
  static #drainer(ref) {
    return () => ref.deref()?.#drain();
  }

  /** Drops the keys and values of the slots the last wasm call freed. */
  #drain() {
    views();
    const h = this.#h;
    const n = U32[h + REMOVED_LEN];
    if (n !== 0) {
      const at = U32[h + REMOVED_PTR] >>> 2;
      const map = this.#map;
      const keys = this.#keys;
      const values = this.#values;
      for (let i = 0; i < n * LOG_STRIDE; i += LOG_STRIDE) {
        const s = U32[at + i];
        map.delete(keys[s]);
        keys[s] = undefined;
        values[s] = undefined;
      }
      U32[h + REMOVED_LEN] = 0;
    }
    this.#exp = U32[h + EXPIRY_PTR] >>> 3;
  }

  /** Runs `op(t, a, b, c, d)`, reading the clock first when the reading is used up (that
   * operation is timed for the latency statistics). */
  #run(op, a, b, c, d) {
    if (clockReuses !== 0) {
      clockReuses--;
      return op.call(this, clockNow, a, b, c, d);
    }
    const t = readClock();
    const t0 = clock();
    try {
      return op.call(this, t, a, b, c, d);
    } finally {
      this.#slots.recordLatency(clock() - t0);
    }
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

  /** A read at time `t`. A hit found here is logged for wasm, which counts it. */
  #read(t, key) {
    const slot = this.#map.get(key);
    if (slot !== undefined) {
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
      return live === 1 ? this.#values[slot] : undefined;
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

  /** Stores under a valid key at time `t`; the slot is looked up after any user code (sizeOf)
   * has run. */
  #put(t, key, value, size, ttl) {
    const prev = this.#map.get(key);
    // Without a byte bound the key's length is only checked against the 32 KiB limit, which a
    // key of at most SHORT_KEY UTF-16 units cannot pass.
    const keyLen = this.#sized || key.length > SHORT_KEY ? utf8Length(key) : 0;
    const slot = this.#slots.insert(prev === undefined ? -1 : prev, keyLen, size, ttl, t);
    this.#drain();
    if (slot === FAILED) throw this.#slots.takeError();
    if (this.#keys[slot] !== key) {
      this.#map.set(key, slot);
      this.#keys[slot] = key;
    }
    this.#values[slot] = value;
  }

  #set(t, key, value, options) {
    if (typeof key !== "string" || !wellFormed(key)) {
      const e = MemorySlots.argError(key, "key");
      if (e !== undefined) throw e;
    }
    const ttl = options === undefined ? undefined : ttlOption(options);
    const size = this.#size(value);
    // Sizing may have run user code (sizeOf, toJSON): then the clock is read again.
    this.#put(this.#sized ? readClock() : t, key, value, size, ttl);
  }

  /** The slot of `key`'s live entry at time `t`, or -1; recency untouched, nothing counted (an
   * expired entry found is removed). Afterwards F64 is a live view. */
  #live(t, key) {
    const slot = this.#map.get(key);
    if (slot === undefined) {
      this.#checkKey(key);
      return -1;
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

  #remainingTtl(t, key) {
    const slot = this.#live(t, key);
    if (slot < 0) return undefined;
    const at = F64[this.#exp + slot * ENTRY_WORDS];
    return at === Infinity ? Infinity : (at - t) / 1000;
  }

  /** Live slots at time `t`, most recently used first. */
  #order(t) {
    if (this.#closed) throw MemorySlots.shutDownError();
    const slots = this.#slots.recency(t);
    this.#drain();
    return slots;
  }

  /** Checks a dump() before anything of it is stored; returns [key, value, size, ttl] rows. */
  #loadable(entries) {
    if (!Array.isArray(entries)) throw MemorySlots.loadError("not an array");
    const rows = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e === null || typeof e !== "object") throw MemorySlots.loadError(`entry ${i} is not an object`);
      const names = Object.keys(e).filter((n) => n !== "key" && n !== "value" && n !== "ttl");
      if (names.length !== 0) throw MemorySlots.loadError(`entry ${i} has an unknown field "${names[0]}"`);
      this.#checkKey(e.key);
      const ttl = e.ttl === undefined ? undefined : ttlOption({ ttl: e.ttl });
      const size = this.#size(e.value);
      if (this.#slots.checkCharge(utf8Length(e.key), size) === FAILED) throw this.#slots.takeError();
      rows.push([e.key, e.value, size, ttl]);
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
    this.#drain();
    if (live === FAILED) throw this.#slots.takeError();
    return live === 1;
  }

  #lookup(t, namespace, data) {
    return this.#read(t, this.#key(namespace, data));
  }

  #store(t, namespace, data, value, options) {
    const ttl = options === undefined ? undefined : ttlOption(options);
    const key = this.#key(namespace, data);
    const size = this.#size(value);
    this.#put(this.#sized ? readClock() : t, key, value, size, ttl);
    return key;
  }

  #getOrSet(t, namespace, data, generator, options) {
    if (typeof generator !== "function") throw MemorySlots.generatorError(0, generator);
    const ttl = options === undefined ? undefined : ttlOption(options);
    const key = this.#key(namespace, data);
    const async = isAsyncFunction(generator);
    const hit = this.#read(t, key);
    if (hit !== undefined) return async ? Promise.resolve(hit) : hit;
    // An async generator joins the generation under way for the key, if any, before it is called.
    const flight = async ? this.#flights.get(key) : undefined;
    if (flight !== undefined) return flight.promise;
    const ctx = new GeneratorContext(key, ttl);
    let value;
    try {
      value = generator(ctx);
    } catch (e) {
      throw MemorySlots.generatorError(1, e);
    }
    if (isThenable(value)) return this.#fly(key, value, ctx);
    return this.#keep(key, value, ctx);
  }

  /** Stores what a generator produced (unless it called `skip()`); returns it. */
  #keep(key, value, ctx) {
    if (GeneratorContext.skipped(ctx)) {
      if (value === undefined) throw MemorySlots.undefinedValueError();
      return value;
    }
    const size = this.#size(value);
    this.#put(readClock(), key, value, size, GeneratorContext.ttlOf(ctx));
    return value;
  }

  /**
   * The promise of a generation under way for `key`: it stores the generator's value when it
   * resolves, and is what every async getOrSet of the key gets until then. Shutdown settles it
   * with `SHUT_DOWN` (through its own `stop`) even if the generator's promise never settles.
   */
  #fly(key, pending, ctx) {
    const existing = this.#flights.get(key);
    if (existing !== undefined) {
      // A plain function returned a promise while another generation ran: join that one.
      Promise.resolve(pending).catch(ignore);
      return existing.promise;
    }
    let stop = ignore;
    const stopped = new Promise((resolve) => {
      stop = () => resolve(STOPPED);
    });
    const promise = Promise.race([Promise.resolve(pending), stopped]).then(
      (value) => {
        this.#flights.delete(key);
        if (value === STOPPED || this.#closed) throw MemorySlots.shutDownError();
        return this.#keep(key, value, ctx);
      },
      (e) => {
        this.#flights.delete(key);
        throw MemorySlots.generatorError(1, e);
      },
    );
    this.#flights.set(key, { promise, ctx, stop });
    return promise;
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
    this.#drain();
    if (kind === Removal.SwitchVersion) {
      this.#maker.versionChanged();
    }
    return removed;
  }

  /** Forgets every key and value (keeping the reserved arrays unless `release`). */
  #reset(release) {
    this.#map.clear();
    if (release) {
      this.#keys = [];
      this.#values = [];
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
    return this.#run(this.#read, key);
  }

  /** Stores `value` under `key` (`options.ttl` in seconds, else the default TTL). */
  set(key, value, options) {
    this.#run(this.#set, key, value, options);
  }

  /** Whether `key` holds a live entry (not counted as a hit or miss; recency untouched). */
  has(key) {
    return this.#run(this.#has, key);
  }

  /** The value under `key`, or `undefined`, without refreshing recency or counting a hit or
   * miss. */
  peek(key) {
    return this.#run(this.#peek, key);
  }

  /** Seconds until `key`'s entry expires (`Infinity` if never), or `undefined` when absent. */
  remainingTtl(key) {
    return this.#run(this.#remainingTtl, key);
  }

  /** An iterator over `pick(slot)` of the live slots now, most recently used first. */
  #listing(pick) {
    return Array.from(this.#order(now()), pick).values();
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
   * the seconds left (absent for an entry that never expires). `load()` restores them.
   */
  dump() {
    const t = now();
    return Array.from(this.#order(t), (s) => {
      const at = F64[this.#exp + s * ENTRY_WORDS];
      const e = { key: this.#keys[s], value: this.#values[s] };
      if (at !== Infinity) e.ttl = (at - t) / 1000;
      return e;
    });
  }

  /**
   * Stores what `dump()` returned (each entry with its `ttl`, else the default TTL), so that the
   * first entry ends up the most recently used. Everything is checked before anything is stored:
   * a bad entry is refused (`INVALID_OPTIONS`, `INVALID_KEY`, `UNSERIALIZABLE`,
   * `VALUE_TOO_LARGE`) with the cache unchanged. The bounds apply as to `set`.
   */
  load(entries) {
    const rows = this.#loadable(entries);
    const t = readClock();
    for (let i = rows.length - 1; i >= 0; i--) {
      const [key, value, size, ttl] = rows[i];
      this.#put(t, key, value, size, ttl);
    }
  }

  /** Deletes `key`; true when a live entry was removed. */
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
   * (`ctx`: `{ key, signal, stale, skip(), ttl(seconds) }`). A synchronous generator's value is
   * returned as it is; with an `async` generator (or one that returns a promise) a promise is
   * returned, every async call for the key joins the generation under way, and the value is
   * stored when it resolves. A failure comes back as `GENERATOR_FAILED` with the original as
   * `cause`, and nothing is cached.
   */
  getOrSet(namespace, data, generator, options) {
    return this.#run(this.#getOrSet, namespace, data, generator, options);
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

  /** Removes every entry. */
  clear() {
    this.#slots.clear();
    this.#reset(false);
  }

  /** Live entries (0 after `shutdown()`). */
  get size() {
    const n = this.#slots.len(now());
    this.#drain();
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
    return s;
  }

  /**
   * Stops the cleanup timer and drops every entry; later operations fail with `SHUT_DOWN`
   * (`stats()`, `size` and `version` stay readable). Calling it again does nothing.
   */
  shutdown() {
    this.#slots.shutdown();
    this.#closed = true;
    this.#reset(true);
    for (const { ctx, stop } of this.#flights.values()) {
      ctx.abort();
      stop();
    }
  }

  /** Same as `shutdown()`: the entries and the timer go now (the rest when collected). */
  free() {
    this.shutdown();
  }
}

if (typeof Symbol.dispose === "symbol") {
  MemoryCache.prototype[Symbol.dispose] = MemoryCache.prototype.free;
}
