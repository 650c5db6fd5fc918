//! The `#[wasm_bindgen]` surface: one file per JavaScript class, error mapping, option parsing
//! and the TypeScript interfaces of the option bags and results.
#![allow(unsafe_code)] // the wasm_bindgen macros expand to unsafe glue
#![allow(unreachable_pub)] // #[wasm_bindgen] items are exported by the macro, not by Rust paths

mod args;
// `Cache` (with the shared tier) is left out of the memory-only module (`cachette/memory`).
#[cfg(feature = "shared")]
mod cache;
mod error;
mod memory_slots;
#[cfg(feature = "shared")]
mod state;
mod value;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Canonical JSON dialect of request keys: RFC 8785, or Python's json.dumps(sort_keys=True). */
export type KeyFormat = "jcs" | "python";

/** Options of `MemoryCache`. Durations are seconds and may be fractional. */
export interface MemoryCacheOptions {
  /** Key prefix; non-empty, no ":". Default "v1". */
  version?: string;
  /** Default TTL in seconds. Default 3600. */
  ttl?: number;
  /** Entry bound. Default 1000. */
  maxEntries?: number;
  /** Optional byte bound: each entry is charged its key length plus `sizeOf(value)` (or the UTF-8 length of its JSON). */
  maxBytes?: number;
  /** Seconds between timer sweeps of expired entries; 0 turns the timer off. Default 60. */
  cleanupInterval?: number;
  /** Canonical JSON dialect of request keys. Default "jcs". */
  keyFormat?: KeyFormat;
  /** Size of a value in bytes, for `maxBytes`. */
  sizeOf?: (value: unknown) => number;
}

/** Options of the shared Upstash tier. */
export interface UpstashOptions {
  url: string;
  token: string;
  timeoutMs?: number;
  retries?: number;
}

/** Options of `Cache`. */
export interface CacheOptions extends MemoryCacheOptions {
  /** The shared tier. */
  upstash?: UpstashOptions;
  /** Serve from memory while Upstash is unreachable. Default true. */
  fallback?: boolean;
  /** Seconds a near copy of a shared value stays in memory; 0 (default) turns it off. */
  localTtl?: number;
  /** Topics `warm` uses when it is given none. */
  popularTopics?: string[];
}

/** Per-call options. */
export interface SetOptions {
  /** TTL in seconds (fractional allowed); default: the cache's `ttl`. */
  ttl?: number;
}

/** What `stats()` returns. */
export interface CacheStats {
  backend: "memory" | "upstash";
  version: string;
  hits: number;
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
  /** Shared-tier figures (from Upstash INFO), and the HTTP requests this cache has sent. */
  upstash?: {
    keyspaceHits: number;
    keyspaceMisses: number;
    evictedKeys: number;
    usedMemoryBytes: number;
    roundTrips: number;
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
