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
