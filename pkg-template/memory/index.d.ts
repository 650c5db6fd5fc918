// Types of `cachette/memory`: MemoryCache and requestKey on the memory-only module, without
// `Cache` (and without the shared tier), for pages that must ship small.
export { MemoryCache, requestKey, CacheError, init } from "../index.js";
export type {
  CacheEntry,
  CacheErrorCode,
  CacheStats,
  CacheStatus,
  Duration,
  GetOrSetOptions,
  KeyFormat,
  GeneratorContext,
  MemoryCacheEntry,
  MemoryCacheOptions,
  RemovalCause,
  SetOptions,
  StreamEntry,
  StreamGenerator,
  StreamOptions,
  StreamSource,
} from "../index.js";
