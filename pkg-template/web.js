// `cachette/web`: explicit initialisation, for pages and tools that cannot use top-level
// await. `await init()` before using any class; it is idempotent. `init(input)` accepts
// what wasm-bindgen's init does: a URL or path string, a Request or Response, the module's
// bytes, a compiled WebAssembly.Module, or a promise of one of these.
import initWasm, { __registerErrorClass } from "./web/cachette.js";
import { CacheError, shutdownOnFree } from "./error.js";

let ready;

export function init(input) {
  if (ready === undefined) {
    const arg =
      input === undefined
        ? { module_or_path: new URL("./web/cachette_bg.wasm", import.meta.url) }
        : isOptionsObject(input)
          ? input
          : { module_or_path: input };
    ready = initWasm(arg).then(() => {
      __registerErrorClass(CacheError);
    });
    // A failed attempt (say, a network error) may be retried.
    ready.catch(() => {
      ready = undefined;
    });
  }
  return ready;
}

// wasm-bindgen's own form, `{ module_or_path }`, is passed through unchanged.
function isOptionsObject(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    Object.getPrototypeOf(value) === Object.prototype &&
    "module_or_path" in value
  );
}

import { Cache as WasmCache } from "./web/cachette.js";
shutdownOnFree(WasmCache);
withStreams(WasmCache);
// `persist`: IndexedDB and tabs sharing one cache (browsers only; see persist.js).
const Cache = withPersistence(WasmCache);
export { Cache };
import { withStreams } from "./memory-cache.js";
import { withPersistence } from "./persist.js";
export { MemoryCache, requestKey } from "./memory-cache.js";
export { CacheError };
