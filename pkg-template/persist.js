// The persistent tier of `Cache` in browsers (`persist: true` or `persist: { name, maxBytes }`):
// IndexedDB behind the memory tier, write-behind, bounded by bytes with least-recently-used
// eviction; tabs of one origin share it through a BroadcastChannel (keys and patterns, never
// values) and generate each missing key once through the Web Locks API.
//
// It lives in the JS layer, loaded only by the browser entries (`cachette`'s `browser` and
// `cachette/web`): IndexedDB, BroadcastChannel and navigator.locks are event- and
// promise-based browser APIs that JavaScript drives directly, while the wasm module stays one
// build for every runtime (Node.js and workerd have none of them). The wasm side gives the
// hooks this needs (`__persist*` methods of `Cache`): the codec's text and times of what
// memory holds, holding a persisted value in memory with its times, memory-only removals for
// other tabs' messages, and the removal patterns and glob matcher the other tiers use.
import { CacheError } from "./error.js";

const DEFAULT_NAME = "cachette";
const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
const STORE = "entries";
/** Writes waiting for the disk before `set` waits for them too. */
const QUEUE_LIMIT = 1000;
/** The removal kinds of the wasm glue's `Removal` object. */
const PATTERN = 0;
const NAMESPACE = 1;
const VERSION = 2;
const SWITCH_VERSION = 3;

const invalid = (message) => new CacheError("INVALID_OPTIONS", message);

/** `persist` read and checked: `{ name, maxBytes }`, or null when off. */
export function persistOptions(persist) {
  if (persist === undefined || persist === false) return null;
  if (persist === true) return { name: DEFAULT_NAME, maxBytes: DEFAULT_MAX_BYTES };
  if (persist === null || typeof persist !== "object" || Array.isArray(persist)) {
    throw invalid("persist must be true, false or { name, maxBytes }");
  }
  for (const k of Object.keys(persist)) {
    if (k !== "name" && k !== "maxBytes") throw invalid(`persist has no option ${JSON.stringify(k)} (it takes name and maxBytes)`);
  }
  const name = persist.name ?? DEFAULT_NAME;
  if (typeof name !== "string" || name.length === 0 || name.length > 200) {
    throw invalid("persist.name must be a non-empty string of at most 200 characters");
  }
  const maxBytes = persist.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw invalid("persist.maxBytes must be a positive integer");
  if (typeof indexedDB === "undefined") {
    throw invalid("persist needs IndexedDB, which this runtime does not have");
  }
  return { name, maxBytes };
}

const promised = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

const isQuota = (e) => e?.name === "QuotaExceededError" || /quota/i.test(String(e?.message ?? ""));

/** One cache's IndexedDB database, its write-behind queue and its channel to other tabs. */
export class Persistence {
  constructor(cache, { name, maxBytes }) {
    this.cache = cache;
    this.name = name;
    this.maxBytes = maxBytes;
    this.queue = [];
    this.flushing = null;
    this.scheduled = false;
    this.degraded = null;
    this.bytes = 0;
    /** Key → stored size of what the disk holds, as this tab knows it. */
    this.sizes = new Map();
    /** Counted up by every removal (here or in another tab): a disk read that a removal overtook is not used. */
    this.removals = 0;
    this.stats = { hits: 0, writes: 0, evictions: 0, loads: 0 };
    this.closed = false;
    this.db = this.#open();
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`cachette:${name}`) : null;
    if (this.channel) this.channel.onmessage = (e) => this.#receive(e.data);
    this.onPageHide = () => void this.flush();
    globalThis.addEventListener?.("pagehide", this.onPageHide);
  }

  async #open() {
    let db = null;
    try {
      const request = indexedDB.open(`cachette:${this.name}`, 1);
      request.onupgradeneeded = () => {
        const store = request.result.createObjectStore(STORE, { keyPath: "key" });
        store.createIndex("lastAccess", "lastAccess");
      };
      db = await new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
        request.onblocked = () => reject(new Error("the database is blocked by another version open in another tab"));
      });
      db.onversionchange = () => {
        db.close();
        this.#degrade("another tab opened a newer version of the database");
      };
      // The sizes the byte bound is kept by.
      const records = await promised(db.transaction(STORE, "readonly").objectStore(STORE).getAll());
      this.sizes = new Map(records.map((r) => [r.key, r.size]));
      this.bytes = records.reduce((n, r) => n + r.size, 0);
      return db;
    } catch (e) {
      db?.close();
      this.#degrade(`IndexedDB cannot be opened: ${e?.message ?? e}`);
      return null;
    }
  }

  /** Memory only from now on; every write waiting for the disk is dropped (and settled). */
  #degrade(reason) {
    if (this.degraded) return;
    this.degraded = reason;
    const dropped = this.queue;
    this.queue = [];
    for (const op of dropped) op.done?.(0);
  }

  get entries() {
    return this.sizes.size;
  }

  /** Memory-tier reads of the wasm side. */
  #held(key) {
    return this.cache.__persistEntry(key);
  }

  /**
   * Brings `key` from IndexedDB into memory when memory has nothing for it; resolves to
   * "fresh", "stale" (within the time kept past its TTL) or null. A removal made meanwhile (in
   * this tab or another) makes the read void.
   */
  async load(key) {
    let record;
    for (let attempt = 0; ; attempt++) {
      if (this.degraded || this.closed || this.#held(key) !== undefined) return null;
      const removals = this.removals;
      // The disk first catches up with this tab (a delete still queued must not be read back).
      if (this.queue.length) await this.flush();
      await this.#flushed();
      const db = await this.db;
      if (!db || this.degraded) return null;
      try {
        record = await promised(db.transaction(STORE, "readonly").objectStore(STORE).get(key));
      } catch {
        return null;
      }
      if (this.removals === removals) break;
      // Removed or replaced meanwhile, here or in another tab: read again.
      if (attempt === 3) return null;
    }
    const now = Date.now();
    if (!record || now >= record.keepUntil) return null;
    if (this.#held(key) !== undefined) return null;
    if (!this.cache.__persistHold(key, record.text, record.storedAt, record.freshUntil, record.keepUntil)) return null;
    this.stats.loads++;
    this.#enqueue({ op: "touch", key, at: now });
    return now < record.freshUntil ? "fresh" : "stale";
  }

  /** Persists what memory holds for `key` now (after a write); nothing held: the disk's goes too. */
  put(key) {
    if (this.degraded || this.closed) return;
    const e = this.#held(key);
    if (e === undefined) return this.remove(key);
    const size = e.text.length * 2 + key.length * 2 + 64;
    this.#enqueue({
      op: "put",
      record: { key, text: e.text, storedAt: e.storedAt, freshUntil: e.freshUntil, keepUntil: e.keepUntil, size, lastAccess: Date.now() },
    });
  }

  remove(key) {
    this.removals++;
    if (!this.degraded && !this.closed) this.#enqueue({ op: "delete", key });
  }

  /** Removes every key matching the Redis glob `pattern`; resolves to how many went. */
  removeMatching(pattern) {
    this.removals++;
    if (this.degraded || this.closed) return Promise.resolve(0);
    return new Promise((resolve) => this.#enqueue({ op: "pattern", pattern, done: resolve }));
  }

  clear() {
    this.removals++;
    if (!this.degraded && !this.closed) this.#enqueue({ op: "clear" });
  }

  #enqueue(op) {
    this.queue.push(op);
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => {
        this.scheduled = false;
        void this.flush();
      }, 0);
    }
  }

  /** Waits for writes queued so far; `set` waits here only when the queue is full. */
  async backpressure() {
    if (this.queue.length >= QUEUE_LIMIT) await this.flush();
  }

  async #flushed() {
    while (this.flushing) await this.flushing;
  }

  /** Writes the queue to IndexedDB in one transaction, in order; never rejects. */
  flush() {
    if (this.flushing) return this.flushing.then(() => (this.queue.length ? this.flush() : undefined));
    if (this.queue.length === 0 || this.degraded) return Promise.resolve();
    const batch = this.queue;
    this.queue = [];
    this.flushing = this.#write(batch)
      .catch((e) => this.#degrade(`IndexedDB failed: ${e?.message ?? e}; answers are kept in memory only`))
      .finally(() => {
        for (const op of batch) op.done?.(0); // those not settled with their count
        this.flushing = null;
      });
    return this.flushing;
  }

  async #write(batch) {
    const db = await this.db;
    if (!db || this.degraded) return;
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await this.#transaction(db, batch);
        this.#settle(outcome);
        for (const op of batch) {
          const done = op.done;
          op.done = undefined;
          done?.(outcome.removed.get(op) ?? 0);
        }
        return;
      } catch (e) {
        if (isQuota(e) && attempt === 0) {
          // A full disk: make room by least recent use, then try once more.
          await this.#evict(db, Math.max(this.bytes / 2, 1));
          continue;
        }
        this.#degrade(
          isQuota(e)
            ? `IndexedDB is full (${e.name}): answers are kept in memory only`
            : `IndexedDB failed: ${e?.message ?? e}; answers are kept in memory only`,
        );
        return;
      }
    }
  }

  /** Applies a committed transaction's changes to what this tab knows of the disk. */
  #settle({ changes, writes, evictions, messages }) {
    for (const [key, size] of changes) {
      if (key === null) {
        this.sizes.clear();
      } else if (size === null) {
        this.sizes.delete(key);
      } else {
        this.sizes.set(key, size);
      }
    }
    this.bytes = 0;
    for (const size of this.sizes.values()) this.bytes += size;
    this.stats.writes += writes;
    this.stats.evictions += evictions;
    this.#announce(messages);
  }

  /**
   * One readwrite transaction of `batch`: resolves with what changed (`[key, size | null]`, a
   * `null` key for a clear), to be applied once committed. Pattern removals match the keys the
   * store holds, whoever wrote them.
   */
  #transaction(db, batch) {
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, "readwrite");
      const store = tx.objectStore(STORE);
      // What the disk holds as this transaction goes, for the byte bound.
      const sizes = new Map(this.sizes);
      let bytes = this.bytes;
      const changes = [];
      const removed = new Map();
      const messages = [];
      let writes = 0;
      let evictions = 0;
      const gone = (key) => {
        if (sizes.has(key)) {
          bytes -= sizes.get(key);
          sizes.delete(key);
        }
        changes.push([key, null]);
      };
      tx.oncomplete = () => resolve({ changes, removed, messages, writes, evictions });
      tx.onabort = () => reject(tx.error ?? new Error("the IndexedDB transaction was aborted"));
      const run = async () => {
        for (const op of batch) {
          if (op.op === "put") {
            const { key, size } = op.record;
            if (sizes.has(key)) bytes -= sizes.get(key);
            store.put(op.record);
            sizes.set(key, size);
            bytes += size;
            changes.push([key, size]);
            writes++;
            messages.push({ type: "put", key, size });
          } else if (op.op === "touch") {
            const r = await promised(store.get(op.key));
            if (r) store.put({ ...r, lastAccess: op.at });
          } else if (op.op === "delete") {
            store.delete(op.key);
            gone(op.key);
            messages.push({ type: "delete", key: op.key });
          } else if (op.op === "clear") {
            store.clear();
            sizes.clear();
            bytes = 0;
            changes.push([null, null]);
            messages.push({ type: "clear" });
          } else if (op.op === "pattern") {
            const keys = await promised(store.getAllKeys());
            const hit = keys.length ? this.cache.__persistMatches(op.pattern, keys) : [];
            let n = 0;
            keys.forEach((k, i) => {
              if (hit[i]) {
                store.delete(k);
                gone(k);
                n++;
              }
            });
            removed.set(op, n);
            messages.push({ type: "pattern", pattern: op.pattern });
          }
        }
        // The byte bound: least recently used first.
        if (bytes > this.maxBytes) {
          const request = store.index("lastAccess").openCursor();
          await new Promise((done, fail) => {
            request.onerror = () => fail(request.error);
            request.onsuccess = () => {
              const cursor = request.result;
              if (!cursor || bytes <= this.maxBytes) return done();
              const k = cursor.primaryKey;
              cursor.delete();
              gone(k);
              evictions++;
              messages.push({ type: "evict", key: k });
              cursor.continue();
            };
          });
        }
      };
      run().catch((e) => {
        try {
          tx.abort();
        } catch {}
        reject(e);
      });
    });
  }

  /** Frees at least `need` bytes by least recent use (after a quota failure); never rejects. */
  async #evict(db, need) {
    try {
      const tx = db.transaction(STORE, "readwrite");
      const request = tx.objectStore(STORE).index("lastAccess").openCursor();
      const changes = [];
      const messages = [];
      let freed = 0;
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor || freed >= need) return;
        freed += this.sizes.get(cursor.primaryKey) ?? 0;
        changes.push([cursor.primaryKey, null]);
        messages.push({ type: "evict", key: cursor.primaryKey });
        cursor.delete();
        cursor.continue();
      };
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onabort = () => reject(tx.error);
      });
      this.#settle({ changes, writes: 0, evictions: changes.length, messages });
    } catch {}
  }

  #announce(messages) {
    if (!this.channel || messages.length === 0) return;
    try {
      this.channel.postMessage({ from: "cachette", messages });
    } catch {}
  }

  /**
   * Another tab wrote or removed: drop what this tab's memory holds for it (the next read
   * finds the disk's), drop this tab's queued writes it removed (they are older), and keep
   * the disk's sizes in step. An eviction only changes the disk.
   */
  #receive(data) {
    if (data?.from !== "cachette" || !Array.isArray(data.messages)) return;
    const unqueue = (removed) => {
      this.queue = this.queue.filter((op) => op.op !== "put" || !removed(op.record.key));
    };
    for (const m of data.messages) {
      try {
        if (m.type === "put") {
          this.removals++;
          this.cache.__persistForgetKey(m.key);
          if (Number.isSafeInteger(m.size)) this.sizes.set(m.key, m.size);
        } else if (m.type === "delete" || m.type === "evict") {
          this.sizes.delete(m.key);
          if (m.type === "delete") {
            this.removals++;
            this.cache.__persistForgetKey(m.key);
            unqueue((k) => k === m.key);
          }
        } else if (m.type === "pattern") {
          this.removals++;
          this.cache.__persistForgetPattern(m.pattern);
          const matches = (keys) => (keys.length ? this.cache.__persistMatches(m.pattern, keys) : []);
          const known = [...this.sizes.keys()];
          matches(known).forEach((hit, i) => hit && this.sizes.delete(known[i]));
          const queued = this.queue.filter((op) => op.op === "put").map((op) => op.record.key);
          const hits = matches(queued);
          const drop = new Set(queued.filter((_, i) => hits[i]));
          unqueue((k) => drop.has(k));
        } else if (m.type === "clear") {
          this.removals++;
          this.cache.__persistForgetPattern("*");
          this.sizes.clear();
          unqueue(() => true);
        }
      } catch {}
    }
    this.bytes = 0;
    for (const size of this.sizes.values()) this.bytes += size;
  }

  /** What stats() reports of this tier. */
  figures() {
    return {
      name: this.name,
      entries: this.entries,
      bytes: this.bytes,
      maxBytes: this.maxBytes,
      evictions: this.stats.evictions,
      writes: this.stats.writes,
      queued: this.queue.length,
      degraded: this.degraded !== null,
    };
  }

  async close() {
    if (this.closed) return;
    globalThis.removeEventListener?.("pagehide", this.onPageHide);
    await this.flush();
    this.closed = true;
    this.channel?.close();
    (await this.db)?.close();
  }
}

/** The name of the Web Lock of `key` in database `name`. */
const lockName = (name, key) => `cachette:${name}:${key}`;

/**
 * `Cache` with `persist`: the wasm class `Base` extended so that IndexedDB sits between memory
 * and the shared tier, and tabs share the cache.
 */
export function withPersistence(Base) {
  class Cache extends Base {
    #p = null;
    #waitUntil = undefined;

    constructor(options) {
      const persist = options !== null && typeof options === "object" ? persistOptions(options.persist) : null;
      if (persist === null) {
        super(options !== null && typeof options === "object" && "persist" in options ? withoutPersist(options) : options);
        return;
      }
      super(withoutPersist(options));
      this.#waitUntil = options.waitUntil;
      this.#p = new Persistence(this, persist);
    }

    /** Brings `key` from IndexedDB into memory if memory lacks it (see `Persistence.load`). */
    async #ready(key) {
      return this.#p ? this.#p.load(key) : null;
    }

    /**
     * A read: a fresh value IndexedDB gave counts as a persistent hit (unless Upstash answered
     * the read after all: with `upstash`, a persisted value is trusted for `localTtl` only).
     */
    async #read(key, read) {
      const loaded = await this.#ready(key);
      const shared = this.__persistSharedHits();
      const value = await read();
      this.#count(loaded, value !== undefined, shared);
      return value;
    }

    #count(loaded, hit, shared) {
      if (loaded === "fresh" && hit && this.__persistSharedHits() === shared) this.#p.stats.hits++;
    }

    async get(key) {
      if (typeof key !== "string") return super.get(key);
      return this.#read(key, () => super.get(key));
    }

    async has(key) {
      if (typeof key === "string") await this.#ready(key);
      return super.has(key);
    }

    async lookup(namespace, data) {
      const key = this.key(namespace, data);
      return this.#read(key, () => super.lookup(namespace, data));
    }

    async set(key, value, options) {
      const r = await super.set(key, value, options);
      if (this.#p) {
        this.#p.put(key);
        await this.#p.backpressure();
      }
      return r;
    }

    async store(namespace, data, value, options) {
      const key = await super.store(namespace, data, value, options);
      if (this.#p) {
        this.#p.put(key);
        await this.#p.backpressure();
      }
      return key;
    }

    async delete(key) {
      if (typeof key === "string") {
        await this.#ready(key);
        // Queued before memory lets go of it, so that no read brings it back from the disk.
        this.#p?.remove(key);
      }
      return super.delete(key);
    }

    async getOrSet(namespace, data, generator, options) {
      return (await this.getOrSetEntry(namespace, data, generator, options)).value;
    }

    async getOrSetEntry(namespace, data, generator, options) {
      const p = this.#p;
      if (!p) return super.getOrSetEntry(namespace, data, generator, options);
      const key = this.key(namespace, data);
      const loaded = await p.load(key);
      const shared = this.__persistSharedHits();
      options = this.#refreshPersisted(key, options);
      const locks = globalThis.navigator?.locks;
      let entry;
      if (loaded === "fresh" || !locks || p.degraded) {
        entry = await super.getOrSetEntry(namespace, data, generator, options);
      } else {
        // One generation across tabs: the tab holding the key's lock generates; the others
        // wait for it, then read what it persisted.
        const name = lockName(p.name, key);
        entry = await locks.request(name, { ifAvailable: true }, async (lock) => {
          if (lock) return this.#generate(namespace, data, generator, options, key);
          return locks.request(name, async () => {
            const after = await p.load(key);
            const e = await this.#generate(namespace, data, generator, options, key);
            return after === "fresh" && e.status === "hit" ? { ...e, status: "joined" } : e;
          });
        });
      }
      this.#count(loaded, entry.status === "hit", shared);
      return entry;
    }

    /**
     * `options` with a `waitUntil` that persists the key once a background refresh (a stale
     * value served while one refresh runs) has stored its value; the caller's own `waitUntil`
     * (or the cache's) still gets the refresh.
     */
    #refreshPersisted(key, options) {
      if (options !== undefined && (options === null || typeof options !== "object")) return options;
      const theirs = options?.waitUntil ?? this.#waitUntil;
      if (theirs !== undefined && typeof theirs !== "function") return options;
      return {
        ...options,
        waitUntil: (refresh) => {
          refresh.then(() => this.#p?.put(key));
          theirs?.(refresh);
        },
      };
    }

    async #generate(namespace, data, generator, options, key) {
      const e = await super.getOrSetEntry(namespace, data, generator, options);
      if (e.status === "miss") {
        this.#p.put(key);
        // Persisted before the lock is released, so that a tab waiting for it reads it.
        await this.#p.flush();
      }
      return e;
    }

    async #removeAll(kind, arg, run) {
      const p = this.#p;
      if (!p) return run();
      const pattern = this.__persistPattern(kind, arg);
      // Queued before memory lets go, so that no read brings a removed value back from disk.
      const persisted = p.removeMatching(pattern);
      const n = await run();
      return Math.max(n, await persisted);
    }

    deletePattern(pattern) {
      return this.#removeAll(PATTERN, pattern, () => super.deletePattern(pattern));
    }

    invalidateNamespace(namespace) {
      return this.#removeAll(NAMESPACE, namespace, () => super.invalidateNamespace(namespace));
    }

    invalidateVersion(version) {
      return this.#removeAll(VERSION, version, () => super.invalidateVersion(version));
    }

    updateVersion(version) {
      return this.#removeAll(SWITCH_VERSION, version, () => super.updateVersion(version));
    }

    async clear() {
      this.#p?.clear();
      await super.clear();
    }

    async warm(generators, options = {}) {
      const p = this.#p;
      const onProgress = options?.onProgress;
      const plain = generators === null || typeof generators !== "object" || Array.isArray(generators);
      if (!p || plain || options === null || typeof options !== "object" || (onProgress !== undefined && typeof onProgress !== "function")) {
        return super.warm(generators, options);
      }
      // A topic IndexedDB holds fresh is read from there rather than generated again.
      const fromDisk = {};
      for (const [namespace, generate] of Object.entries(generators)) {
        fromDisk[namespace] =
          typeof generate !== "function"
            ? generate
            : async (topic) => {
                const key = this.key(namespace, { topic });
                if ((await p.load(key)) === "fresh") {
                  const value = await super.get(key);
                  if (value !== undefined) return value;
                }
                return generate(topic);
              };
      }
      return super.warm(fromDisk, {
        ...options,
        onProgress: (progress) => {
          if (progress.outcome === "warmed") {
            try {
              p.put(this.key(progress.namespace, { topic: progress.topic }));
            } catch {}
          }
          return onProgress?.(progress);
        },
      });
    }

    async stats() {
      const s = await super.stats();
      const p = this.#p;
      if (!p) return s;
      s.persistentHits = p.stats.hits;
      s.memoryHits = Math.max(0, s.memoryHits - p.stats.hits);
      s.persistent = p.figures();
      return s;
    }

    async health() {
      const h = await super.health();
      const p = this.#p;
      if (p && (await p.db, p.degraded) && h.status === "healthy") {
        return { ...h, status: "degraded", error: p.degraded };
      }
      return h;
    }

    shutdown() {
      const p = this.#p;
      const r = super.shutdown();
      return p ? p.close().then(() => r) : r;
    }
  }
  return Cache;
}

function withoutPersist(options) {
  const { persist, ...rest } = options;
  return rest;
}
