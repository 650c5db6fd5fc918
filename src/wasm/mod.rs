//! The `#[wasm_bindgen]` surface: one file per JavaScript class, error mapping, option parsing
//! and the TypeScript interfaces of the option bags and results.
#![allow(unsafe_code)] // the wasm_bindgen macros expand to unsafe glue
#![allow(unreachable_pub)] // #[wasm_bindgen] items are exported by the macro, not by Rust paths

mod args;
// `Cache` (with the shared tier) is left out of the memory-only module (`cachette/memory`).
#[cfg(feature = "shared")]
mod cache;
mod error;
#[cfg(feature = "shared")]
mod generation;
mod memory_slots;
#[cfg(feature = "shared")]
mod state;
mod value;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Canonical JSON dialect of request keys: RFC 8785, or Python's json.dumps(sort_keys=True). */
export type KeyFormat = "jcs" | "python";

/**
 * A duration: a number of seconds (fractional allowed), or a string with a unit:
 * `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"`.
 */
export type Duration = number | `${number}${"ms" | "s" | "m" | "h" | "d"}`;

/** Why an entry left a memory tier (what `onRemove` is told). */
export type RemovalCause = "evicted" | "expired" | "deleted" | "replaced" | "invalidated" | "cleared";

/** Options of `MemoryCache`. */
export interface MemoryCacheOptions {
  /** Key prefix; non-empty, no ":". Default "v1". */
  version?: string;
  /** Default TTL. `Infinity`: entries never expire. Default 3600 (one hour). */
  ttl?: Duration;
  /** How long past its TTL an entry is kept as a stale value for `getOrSet`. Default 0. */
  grace?: Duration;
  /** `getOrSet` serves a stale value at once while one refresh runs: within the grace period (`true`) or a window of its own. Default false. */
  staleWhileRevalidate?: boolean | Duration;
  /** `getOrSet` serves a stale value when the refresh (or the shared tier) fails: within the grace period (`true`) or a window of its own. Default false. */
  staleIfError?: boolean | Duration;
  /** How long a generator may run before its waiters get `TIMEOUT`; 0 (default): no limit. */
  timeout?: Duration;
  /** Handed each background refresh's promise (in a Worker: `ctx.waitUntil.bind(ctx)`). */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** Called after an entry leaves, with its key, its value and why. */
  onRemove?: (key: string, value: unknown, cause: RemovalCause) => void;
  /** Entry bound. Default 1000. */
  maxEntries?: number;
  /** Optional byte bound: each entry is charged its key length plus `sizeOf(value)` (or the UTF-8 length of its JSON). */
  maxBytes?: number;
  /** Time between timer sweeps of expired entries; 0 turns the timer off. Default 60 s. */
  cleanupInterval?: Duration;
  /** Canonical JSON dialect of request keys. Default "jcs". */
  keyFormat?: KeyFormat;
  /** Size of a value in bytes, for `maxBytes`. */
  sizeOf?: (value: unknown) => number;
}

/** Options of the shared Upstash tier. */
export interface UpstashOptions {
  url: string;
  token: string;
  /** Timeout of each request. Default 5 s. */
  timeout?: Duration;
  /** `timeout` in milliseconds (an alias; give one or the other). */
  timeoutMs?: number;
  retries?: number;
}

/** Options of `Cache`. */
export interface CacheOptions extends MemoryCacheOptions {
  /** The shared tier. */
  upstash?: UpstashOptions;
  /** Serve from memory while Upstash is unreachable. Default true. */
  fallback?: boolean;
  /** How long a near copy of a shared value is served from memory; 0 (default) turns it off. */
  localTtl?: Duration;
  /** How values become text and back, in every tier. Default: JSON. */
  serializer?: { serialize: (value: unknown) => string; deserialize: (text: string) => unknown };
  /** Topics `warm` uses when it is given none. */
  popularTopics?: string[];
  /**
   * How namespaces and versions are invalidated in Upstash: `"scan"` (default; `SCAN` + `UNLINK`,
   * plain values shared with other clients) or `"generation"` (one `INCR` per invalidation;
   * values carry their generation and dead ones leave with their TTL). See the README.
   */
  invalidation?: "scan" | "generation";
  /** Generation mode: how long a near copy trusts the counters last read. Default `"1s"`. */
  generationCheck?: Duration;
  /**
   * One generation across instances: a miss takes a lock in Upstash before generating, and
   * other instances wait for its value (`status: "joined"`). `true`: the lock lasts `timeout`,
   * else 10 s; `{ ttl }` says how long. Default off; also per call.
   */
  lock?: boolean | { ttl?: Duration };
  /**
   * Browsers only: keep entries in IndexedDB across reloads and share them with the origin's
   * other tabs (`true`: database "cachette", at most 50 MiB). Refused where IndexedDB does not
   * exist (Node.js, workerd).
   */
  persist?: boolean | { name?: string; maxBytes?: number };
}

/** Options of `set` and `store`. */
export interface SetOptions {
  /** TTL (`Infinity`: never expires); default: the cache's `ttl`. */
  ttl?: Duration;
  /** How long past its TTL the entry is kept as a stale value; default: the cache's `grace`. */
  grace?: Duration;
}

/** Options of `getOrSet` and `getOrSetEntry`; each defaults to the cache's option. */
export interface GetOrSetOptions extends SetOptions {
  /** Serve a stale value at once while one refresh runs (`true`: within `grace`). */
  staleWhileRevalidate?: boolean | Duration;
  /** Serve a stale value when the refresh fails (`true`: within `grace`). */
  staleIfError?: boolean | Duration;
  /** The generator's time limit: its waiters get `TIMEOUT`, and a late result is discarded. */
  timeout?: Duration;
  /** This caller's abort: only this caller rejects (with the signal's reason); the generator's own signal aborts when every waiter has. */
  signal?: AbortSignal;
  /** Handed the background refresh's promise (in a Worker: `ctx.waitUntil.bind(ctx)`). */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** The shared-tier lock for this call (`Cache` with `upstash` only); default: the cache's `lock`. */
  lock?: boolean | { ttl?: Duration };
}

/** What a generator of `getOrSet` and `getOrSetEntry` is called with. */
export interface GeneratorContext {
  /** The request key being generated. */
  readonly key: string;
  /** Aborted when the generation times out, every caller waiting for it aborts, or the cache shuts down. */
  readonly signal: AbortSignal;
  /** The stale value being refreshed, if any. */
  readonly stale: unknown;
  /** Hands the result to every waiter without caching it. */
  skip(): void;
  /** Sets this entry's TTL (`Infinity`: never expires). */
  ttl(duration: Duration): void;
}

/** How `getOrSetEntry` came by its value. */
export type CacheStatus = "hit" | "miss" | "joined" | "stale" | "stale-error";

/** What `getOrSetEntry` resolves to. */
export interface CacheEntry<T = unknown> {
  value: T;
  status: CacheStatus;
  /** The request key. */
  key: string;
  /** Seconds since the value was generated (or stored). */
  age: number;
}

/** What `stats()` returns. */
export interface CacheStats {
  backend: "memory" | "upstash";
  version: string;
  hits: number;
  /** Of `hits`, those memory answered (for a `persist` cache: without IndexedDB). */
  memoryHits: number;
  /** Of `hits`, those Upstash answered. */
  sharedHits: number;
  /** Of `hits`, those IndexedDB answered (`persist` only). */
  persistentHits?: number;
  misses: number;
  hitRatePercent: number;
  totalRequests: number;
  sets: number;
  deletes: number;
  invalidations: number;
  evictions: number;
  expirations: number;
  errors: number;
  avgLatencyMs: number;
  p99LatencyMs: number;
  keys: number;
  maxEntries: number;
  memoryUsedBytes: number;
  cleanupTimerActive: boolean;
  fallbackActive: boolean;
  /** The persistent tier (`persist` only). */
  persistent?: {
    /** The database's name (`persist.name`). */
    name: string;
    entries: number;
    bytes: number;
    maxBytes: number;
    /** Entries removed by least recent use to keep within `maxBytes` (or after a full disk). */
    evictions: number;
    writes: number;
    /** Writes waiting for the disk. */
    queued: number;
    /** IndexedDB failed (full, blocked or missing): the cache serves from memory only. */
    degraded: boolean;
  };
  /** Shared-tier figures (from Upstash INFO), and the HTTP requests this cache has sent. */
  upstash?: {
    keyspaceHits: number;
    keyspaceMisses: number;
    evictedKeys: number;
    usedMemoryBytes: number;
    roundTrips: number;
    /** Redis commands sent (a pipeline of n counts n). */
    commands: number;
    bytesSent: number;
    bytesReceived: number;
    /** Locks taken before generating (`lock`). */
    locksAcquired: number;
    locksReleased: number;
    /** Reads made while another instance held the lock. */
    lockWaits: number;
    /** Waits that ended with the value another instance stored. */
    lockJoins: number;
    /** Waits that ran out and generated without the lock. */
    lockTimeouts: number;
  };
}

/** What `health()` returns. */
export interface HealthReport {
  status: "healthy" | "degraded" | "unhealthy";
  backend: "memory" | "upstash";
  latencyMs: number;
  error?: string;
}

/** One progress report of `warm`. */
export interface WarmProgress {
  done: number;
  total: number;
  namespace: string;
  topic: string;
  outcome: "warmed" | "skipped" | "failed";
  error?: Error;
}

/** Options of `warm`. */
export interface WarmOptions {
  /** Topics to warm; default: the cache's `popularTopics`. */
  topics?: string[];
  /** Generators running at once, 1 to 64. Default 4. */
  concurrency?: number;
  onProgress?: (progress: WarmProgress) => void;
}

/** What `warm` resolves to. */
export interface WarmResult {
  warmed: number;
  skipped: number;
  failed: number;
  errors: { namespace: string; topic: string; error: Error }[];
}
"#;
