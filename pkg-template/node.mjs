// Node, ES modules (`import ... from "cachette"`). Loads the CommonJS entry so that
// Node has exactly one wasm instance and one CacheError class, whichever way it is loaded.
import cachette from "./node.cjs";

export const { Cache, MemoryCache, requestKey, CacheError, init } = cachette;
