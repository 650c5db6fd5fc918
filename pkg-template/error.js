// The package's one error class for ES module entries (browser, workerd, ./web).
// Node's entries use error.cjs instead, so that ESM and CJS callers in Node share one class.
// The wasm side constructs it as `new CacheError(code, message)`.
export class CacheError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "CacheError";
    this.code = code;
  }
}

/**
 * Makes `free()` and `Symbol.dispose` of the wasm-bindgen class `Cache` end it as `shutdown()`
 * does: wasm-bindgen's own `free()` would release the object under the caller's feet, leaving
 * every method to throw a plain Error. What shutdown keeps goes when the object is collected.
 */
export function shutdownOnFree(Cache) {
  Cache.prototype.free = function free() {
    this.shutdown();
  };
  if (typeof Symbol.dispose === "symbol") Cache.prototype[Symbol.dispose] = Cache.prototype.free;
  return Cache;
}
