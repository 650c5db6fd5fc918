// Browsers and bundlers (the `browser` and `default` conditions): initialises itself with
// top-level await. Bundlers that understand `new URL(..., import.meta.url)` emit the .wasm
// as an asset; without a bundler, serve the package's files as they are.
import initWasm, { __registerErrorClass } from "./web/cachette.js";
import { CacheError, shutdownOnFree } from "./error.js";

await initWasm({ module_or_path: new URL("./web/cachette_bg.wasm", import.meta.url) });
__registerErrorClass(CacheError);

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

/** Already initialised: resolves at once (the same call works in every runtime). */
export function init() {
  return Promise.resolve();
}
