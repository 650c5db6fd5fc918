"use strict";
// Node, CommonJS (`require("cachette")`). The wasm-bindgen `nodejs` glue reads and
// instantiates node/cachette_bg.wasm synchronously when it is first required.
const wasm = require("./node/cachette.js");
const { CacheError, shutdownOnFree } = require("./error.cjs");

wasm.__registerErrorClass(CacheError);

exports.Cache = require("./memory-cache.cjs").withStreams(shutdownOnFree(wasm.Cache));
const memoryCache = require("./memory-cache.cjs");
exports.MemoryCache = memoryCache.MemoryCache;
exports.requestKey = memoryCache.requestKey;
exports.CacheError = CacheError;
/** Already initialised: resolves at once (the same call works in every runtime). */
exports.init = function init() {
  return Promise.resolve();
};
