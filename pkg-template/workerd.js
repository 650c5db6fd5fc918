// Cloudflare workerd (the `workerd` condition): Wrangler and other Workers bundlers turn a
// `.wasm` import into a compiled WebAssembly.Module, instantiated synchronously here.
import wasmModule from "./web/cachette_bg.wasm";
import { initSync, __registerErrorClass } from "./web/cachette.js";
import { CacheError, shutdownOnFree } from "./error.js";

initSync({ module: wasmModule });
__registerErrorClass(CacheError);

import { Cache } from "./web/cachette.js";
shutdownOnFree(Cache);
withStreams(Cache);
export { Cache };
import { withStreams } from "./memory-cache.js";
export { MemoryCache, requestKey } from "./memory-cache.js";
export { CacheError };

/** Already initialised: resolves at once (the same call works in every runtime). */
export function init() {
  return Promise.resolve();
}
