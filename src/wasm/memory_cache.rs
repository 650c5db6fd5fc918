//! `MemoryCache`: the synchronous, memory-only cache.

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::error::{js, JsResult};
use super::state::{self, generator_failed, with, Shared};
use super::value::{cache_options, is_thenable, set_options, stats_object};
use crate::error::Error;
use crate::platform::now_ms;

/// Latency is sampled on one operation in this many, to keep timer reads off the hot path.
const SAMPLE_EVERY: u32 = 16;

/// A synchronous in-memory cache holding any JS value: TTL, true LRU, entry and byte bounds.
#[wasm_bindgen]
pub struct MemoryCache {
    state: Shared,
}

#[wasm_bindgen]
impl MemoryCache {
    /// `new MemoryCache(options?)`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "MemoryCacheOptions")] options: JsValue,
    ) -> JsResult<MemoryCache> {
        let opts = cache_options(&options, "MemoryCache options")?;
        Ok(MemoryCache {
            state: state::create(opts, SAMPLE_EVERY)?,
        })
    }

    /// The value under `key`, or `undefined`. Refreshes recency.
    #[wasm_bindgen(unchecked_return_type = "unknown")]
    pub fn get(&self, key: &str) -> JsResult<JsValue> {
        with(&self.state, |s| s.get(key))
    }

    /// Stores `value` under `key` (`options.ttl` in seconds, else the default TTL).
    pub fn set(
        &self,
        key: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> JsResult<()> {
        let ttl = set_options(&options)?;
        state::set(&self.state, key, value, ttl)
    }

    /// Whether `key` holds a live entry (not counted as a hit or miss; recency untouched).
    pub fn has(&self, key: &str) -> JsResult<bool> {
        with(&self.state, |s| js(s.core.contains(key, now_ms())))
    }

    /// Deletes `key`; true when a live entry was removed.
    pub fn delete(&self, key: &str) -> JsResult<bool> {
        with(&self.state, |s| js(s.core.delete(key, now_ms())))
    }

    /// The request key `"{version}:{namespace}:{md5}"` of `data`.
    pub fn key(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> JsResult<String> {
        state::request_key(&self.state, namespace, &data)
    }

    /// `get(key(namespace, data))` in one call.
    #[wasm_bindgen(unchecked_return_type = "unknown")]
    pub fn lookup(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> JsResult<JsValue> {
        state::lookup(&self.state, namespace, &data).map(|(_, hit)| hit)
    }

    /// `set(key(namespace, data), value, options)` in one call; returns the key.
    pub fn store(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> JsResult<String> {
        state::store(&self.state, namespace, &data, value, &options)
    }

    /// The cached value for `(namespace, data)`, or the result of `generator()` stored under it.
    /// The generator must be synchronous (use `Cache` for async generators); if it throws, the
    /// error comes back as `GENERATOR_FAILED` with the original as `cause`, and nothing is cached.
    #[wasm_bindgen(js_name = getOrSet, unchecked_return_type = "unknown")]
    pub fn get_or_set(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => unknown")] generator: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> JsResult<JsValue> {
        let ttl = set_options(&options)?;
        let (key, hit) = state::lookup(&self.state, namespace, &data)?;
        if !hit.is_undefined() {
            return Ok(hit);
        }
        let value = generator
            .call0(&JsValue::UNDEFINED)
            .map_err(|e| generator_failed(&e))?;
        if is_thenable(&value) {
            return Err(super::error::to_js(&Error::GeneratorFailed(
                "MemoryCache.getOrSet needs a synchronous generator; it returned a promise (use Cache for async generators)"
                    .to_owned(),
            )));
        }
        state::set(&self.state, &key, value.clone(), ttl)?;
        Ok(value)
    }

    /// Deletes every key matching the Redis glob `pattern`; returns how many.
    #[wasm_bindgen(js_name = deletePattern)]
    pub fn delete_pattern(&self, pattern: &str) -> JsResult<u32> {
        with(&self.state, |s| {
            js(s.core.delete_pattern(pattern, now_ms())).map(|n| n as u32)
        })
    }

    /// Deletes every request key of `namespace` under the current version; returns how many.
    #[wasm_bindgen(js_name = invalidateNamespace)]
    pub fn invalidate_namespace(&self, namespace: &str) -> JsResult<u32> {
        with(&self.state, |s| {
            js(s.core.invalidate_namespace(namespace, now_ms())).map(|n| n as u32)
        })
    }

    /// Deletes every key under `version`; returns how many.
    #[wasm_bindgen(js_name = invalidateVersion)]
    pub fn invalidate_version(&self, version: &str) -> JsResult<u32> {
        with(&self.state, |s| {
            js(s.core.invalidate_version(version, now_ms())).map(|n| n as u32)
        })
    }

    /// Invalidates the current version and switches to `version`; returns how many keys went.
    #[wasm_bindgen(js_name = updateVersion)]
    pub fn update_version(&self, version: &str) -> JsResult<u32> {
        with(&self.state, |s| {
            js(s.core.update_version(version, now_ms())).map(|n| n as u32)
        })
    }

    /// Removes every entry.
    pub fn clear(&self) -> JsResult<()> {
        with(&self.state, |s| js(s.core.clear()).map(drop))
    }

    /// Live entries.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> JsResult<u32> {
        with(&self.state, |s| Ok(s.core.len(now_ms()) as u32))
    }

    /// The current version prefix.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> JsResult<String> {
        with(&self.state, |s| Ok(s.core.version().to_owned()))
    }

    /// Statistics as a plain object.
    #[wasm_bindgen(unchecked_return_type = "CacheStats")]
    pub fn stats(&self) -> JsResult<js_sys::Object> {
        with(&self.state, |s| Ok(stats_object(&s.snapshot())))
    }

    /// Stops the cleanup timer and drops every entry; later calls fail with `SHUT_DOWN`.
    /// Calling it again does nothing.
    pub fn shutdown(&self) -> JsResult<()> {
        with(&self.state, |s| {
            s.shutdown();
            Ok(())
        })
    }
}
