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
