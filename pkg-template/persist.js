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
    this.entries = 0;
    this.bytes = 0;
    this.sizes = new Map();
    this.stats = { hits: 0, writes: 0, evictions: 0, loads: 0 };
    this.closed = false;
    this.db = this.#open();
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`cachette:${name}`) : null;
    if (this.channel) this.channel.onmessage = (e) => this.#receive(e.data);
    this.onPageHide = () => void this.flush();
    globalThis.addEventListener?.("pagehide", this.onPageHide);
  }

  async #open() {
    try {
      const request = indexedDB.open(`cachette:${this.name}`, 1);
      request.onupgradeneeded = () => {
        const store = request.result.createObjectStore(STORE, { keyPath: "key" });
        store.createIndex("lastAccess", "lastAccess");
      };
      const db = await new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
        request.onblocked = () => reject(new Error("the database is blocked by another version open in another tab"));
      });
      db.onversionchange = () => {
        db.close();
        this.#degrade("another tab opened a newer version of the database");
      };
      // The totals the byte bound is kept by.
      const tx = db.transaction(STORE, "readonly");
      const store = tx.objectStore(STORE);
      const [keys, records] = await Promise.all([promised(store.getAllKeys()), promised(store.getAll())]);
      this.sizes = new Map(records.map((r) => [r.key, r.size]));
      this.entries = keys.length;
      this.bytes = records.reduce((n, r) => n + r.size, 0);
      return db;
    } catch (e) {
      this.#degrade(`IndexedDB cannot be opened: ${e?.message ?? e}`);
      return null;
    }
  }

  #degrade(reason) {
    if (this.degraded) return;
    this.degraded = reason;
    this.queue = [];
  }

  /** Memory-tier reads of the wasm side. */
  #held(key) {
    return this.cache.__persistEntry(key);
  }

  /**
   * Brings `key` from IndexedDB into memory when memory has nothing for it; resolves to
   * "fresh", "stale" (within the time kept past its TTL) or null.
   */
  async load(key) {
    if (this.degraded || this.#held(key) !== undefined) return null;
    // The disk first catches up with this tab (a delete still queued must not be read back).
    if (this.queue.length) await this.flush();
    await this.#flushed();
    const db = await this.db;
    if (!db) return null;
    let record;
    try {
      record = await promised(db.transaction(STORE, "readonly").objectStore(STORE).get(key));
    } catch {
      return null;
    }
    const now = Date.now();
    if (!record || now >= record.keepUntil) return null;
    if (this.#held(key) !== undefined) return null;
    if (!this.cache.__persistHold(key, record.text, record.storedAt, record.freshUntil, record.keepUntil)) return null;
    this.stats.loads++;
    this.#enqueue({ op: "touch", key, at: now });
    return now < record.freshUntil ? "fresh" : "stale";
  }

  /** Persists what memory holds for `key` now (after a write). */
  put(key) {
    if (this.degraded) return;
    const e = this.#held(key);
    if (e === undefined) return;
    const size = e.text.length * 2 + key.length * 2 + 64;
    this.#enqueue({
      op: "put",
      record: { key, text: e.text, storedAt: e.storedAt, freshUntil: e.freshUntil, keepUntil: e.keepUntil, size, lastAccess: Date.now() },
    });
  }

  remove(key) {
    if (!this.degraded) this.#enqueue({ op: "delete", key });
  }

  /** Removes every key matching the Redis glob `pattern`; resolves to how many went. */
  removeMatching(pattern) {
    if (this.degraded) return Promise.resolve(0);
    return new Promise((resolve) => this.#enqueue({ op: "pattern", pattern, done: resolve }));
  }

  clear() {
    if (!this.degraded) this.#enqueue({ op: "clear" });
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

  /** Writes the queue to IndexedDB in one transaction, in order. */
  flush() {
    if (this.flushing) return this.flushing.then(() => (this.queue.length ? this.flush() : undefined));
    if (this.queue.length === 0 || this.degraded) return Promise.resolve();
    const batch = this.queue;
    this.queue = [];
    this.flushing = this.#write(batch).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  async #write(batch) {
    const db = await this.db;
    if (!db) return;
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await this.#transaction(db, batch);
        this.#announce(outcome.messages);
        for (const op of batch) op.done?.(outcome.removed.get(op) ?? 0);
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
        for (const op of batch) op.done?.(0);
        return;
      }
    }
  }

  #transaction(db, batch) {
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, "readwrite");
      const store = tx.objectStore(STORE);
      const sizes = new Map(this.sizes);
      let bytes = this.bytes;
      const removed = new Map();
      const messages = [];
      const forget = (key) => {
        if (sizes.has(key)) {
          bytes -= sizes.get(key);
          sizes.delete(key);
        }
      };
      tx.oncomplete = () => {
        this.sizes = sizes;
        this.bytes = bytes;
        this.entries = sizes.size;
        resolve({ removed, messages });
      };
      tx.onabort = () => reject(tx.error ?? new Error("the IndexedDB transaction was aborted"));
      tx.onerror = (e) => e.preventDefault();
      const run = async () => {
        for (const op of batch) {
          if (op.op === "put") {
            forget(op.record.key);
            store.put(op.record);
            sizes.set(op.record.key, op.record.size);
            bytes += op.record.size;
            this.stats.writes++;
            messages.push({ type: "put", key: op.record.key, size: op.record.size });
          } else if (op.op === "touch") {
            const r = await promised(store.get(op.key));
            if (r) store.put({ ...r, lastAccess: op.at });
          } else if (op.op === "delete") {
            forget(op.key);
            store.delete(op.key);
            messages.push({ type: "delete", key: op.key });
          } else if (op.op === "clear") {
            sizes.clear();
            bytes = 0;
            store.clear();
            messages.push({ type: "clear" });
          } else if (op.op === "pattern") {
            const keys = [...sizes.keys()];
            const hit = keys.length ? this.cache.__persistMatches(op.pattern, keys) : [];
            let n = 0;
            keys.forEach((k, i) => {
              if (hit[i]) {
                forget(k);
                store.delete(k);
                n++;
              }
            });
            removed.set(op, n);
            messages.push({ type: "pattern", pattern: op.pattern });
          }
        }
        // The byte bound: least recently used first.
        if (bytes > this.maxBytes) {
          let cursor = await promised(store.index("lastAccess").openCursor());
          while (cursor && bytes > this.maxBytes) {
            const k = cursor.primaryKey;
            if (sizes.has(k)) {
              forget(k);
              cursor.delete();
              this.stats.evictions++;
              messages.push({ type: "delete", key: k });
            }
            cursor.continue();
            cursor = await new Promise((res, rej) => {
              cursor.request.onsuccess = () => res(cursor.request.result);
              cursor.request.onerror = () => rej(cursor.request.error);
            });
          }
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

  /** Frees at least `need` bytes by least recent use (after a quota failure). */
  async #evict(db, need) {
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    let freed = 0;
    const done = new Promise((resolve) => {
      tx.oncomplete = resolve;
      tx.onabort = resolve;
    });
    const request = store.index("lastAccess").openCursor();
    request.onsuccess = () => {
      const cursor = request.result;
      if (!cursor || freed >= need) return;
      const size = this.sizes.get(cursor.primaryKey) ?? 0;
      freed += size;
      this.bytes -= size;
      this.sizes.delete(cursor.primaryKey);
      this.stats.evictions++;
      cursor.delete();
      cursor.continue();
    };
    await done;
    this.entries = this.sizes.size;
  }

  #announce(messages) {
    if (!this.channel || messages.length === 0) return;
    try {
      this.channel.postMessage({ from: "cachette", messages });
    } catch {}
  }

  /**
   * Another tab wrote or removed: drop what this tab's memory holds for it (the next read
   * finds the disk's), and keep the disk's totals this tab counts by.
   */
  #receive(data) {
    if (data?.from !== "cachette" || !Array.isArray(data.messages)) return;
    const drop = (key) => {
      if (this.sizes.has(key)) {
        this.bytes -= this.sizes.get(key);
        this.sizes.delete(key);
      }
    };
    for (const m of data.messages) {
      try {
        if (m.type === "put" || m.type === "delete") {
          this.cache.__persistForgetKey(m.key);
          drop(m.key);
          if (m.type === "put" && Number.isSafeInteger(m.size)) {
            this.sizes.set(m.key, m.size);
            this.bytes += m.size;
          }
        } else if (m.type === "pattern") {
          this.cache.__persistForgetPattern(m.pattern);
          const keys = [...this.sizes.keys()];
          const hit = keys.length ? this.cache.__persistMatches(m.pattern, keys) : [];
          keys.forEach((k, i) => hit[i] && drop(k));
        } else if (m.type === "clear") {
          this.cache.__persistForgetPattern("*");
          this.sizes.clear();
          this.bytes = 0;
        }
      } catch {}
    }
    this.entries = this.sizes.size;
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
    this.closed = true;
    globalThis.removeEventListener?.("pagehide", this.onPageHide);
    await this.flush();
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

    constructor(options) {
      const persist = options !== null && typeof options === "object" ? persistOptions(options.persist) : null;
      if (persist === null) {
        super(options !== null && typeof options === "object" && "persist" in options ? withoutPersist(options) : options);
        return;
      }
      super(withoutPersist(options));
      this.#p = new Persistence(this, persist);
    }

    /** Brings `key` from IndexedDB into memory if memory lacks it (see `Persistence.load`). */
    async #ready(key) {
      return this.#p ? this.#p.load(key) : null;
    }

    /** A read: a fresh value IndexedDB gave counts as a persistent hit. */
    async #read(key, read) {
      const loaded = await this.#ready(key);
      const value = await read();
      if (loaded === "fresh" && value !== undefined) this.#p.stats.hits++;
      return value;
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
      if (typeof key === "string") await this.#ready(key);
      const r = await super.delete(key);
      this.#p?.remove(key);
      return r;
    }

    async getOrSet(namespace, data, generator, options) {
      return (await this.getOrSetEntry(namespace, data, generator, options)).value;
    }

    async getOrSetEntry(namespace, data, generator, options) {
      const p = this.#p;
      if (!p) return super.getOrSetEntry(namespace, data, generator, options);
      const key = this.key(namespace, data);
      const loaded = await p.load(key);
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
      if (loaded === "fresh" && entry.status === "hit") p.stats.hits++;
      return entry;
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
      const n = await run();
      const persisted = await p.removeMatching(pattern);
      return Math.max(n, persisted);
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

    clear() {
      const r = super.clear();
      this.#p?.clear();
      return r;
    }

    async warm(generators, options = {}) {
      const p = this.#p;
      if (!p || options === null || typeof options !== "object") return super.warm(generators, options);
      const onProgress = options.onProgress;
      return super.warm(generators, {
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
