"use strict";
// The package's one error class in Node (node.cjs and node.mjs both use this definition).
// The wasm side constructs it as `new CacheError(code, message)`.
class CacheError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "CacheError";
    this.code = code;
  }
}
exports.CacheError = CacheError;

/**
 * Makes `free()` and `Symbol.dispose` of the wasm-bindgen class `Cache` end it as `shutdown()`
 * does: wasm-bindgen's own `free()` would release the object under the caller's feet, leaving
 * every method to throw a plain Error. What shutdown keeps goes when the object is collected.
 */
function shutdownOnFree(Cache) {
  Cache.prototype.free = function free() {
    this.shutdown();
  };
  if (typeof Symbol.dispose === "symbol") Cache.prototype[Symbol.dispose] = Cache.prototype.free;
  return Cache;
}
exports.shutdownOnFree = shutdownOnFree;
