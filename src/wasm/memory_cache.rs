//! `MemoryCache`: the synchronous, memory-only cache.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::error::{js, to_js, JsResult};
use super::state::{
    self, function_arg, generator_failed, key_arg, pattern_arg, segment_arg, with, State,
};
use super::value::{cache_options, is_thenable, set_options};
use crate::error::Error;
use crate::platform::now_ms;

/// Latency is sampled on one operation in this many, to keep timer reads off the hot path.
const SAMPLE_EVERY: u32 = 16;

thread_local! {
    /// Marks a promise's rejection as handled.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}

/// A synchronous in-memory cache holding any JS value: TTL, true LRU, entry and byte bounds.
#[wasm_bindgen]
pub struct MemoryCache {
    state: Rc<State>,
}

#[wasm_bindgen]
impl MemoryCache {
    /// `new MemoryCache(options?)`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "MemoryCacheOptions")] options: JsValue,
    ) -> JsResult<MemoryCache> {
        let opts = cache_options(&options, "MemoryCache options", false)?;
        Ok(MemoryCache {
            state: state::create(opts, SAMPLE_EVERY)?,
        })
    }

    /// The value under `key`, or `undefined`. Refreshes recency.
    #[wasm_bindgen(unchecked_return_type = "unknown")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> JsResult<JsValue> {
        self.state.get(&key_arg(&key)?)
    }

    /// Stores `value` under `key` (`options.ttl` in seconds, else the default TTL).
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> JsResult<()> {
        let key = key_arg(&key)?;
        let ttl = set_options(&options)?;
        self.state.set(&key, value, ttl)
    }

    /// Whether `key` holds a live entry (not counted as a hit or miss; recency untouched).
    pub fn has(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> JsResult<bool> {
        let key = key_arg(&key)?;
        with(&self.state, |c| js(c.contains(&key, now_ms())))
    }

    /// Deletes `key`; true when a live entry was removed.
    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> JsResult<bool> {
        let key = key_arg(&key)?;
        with(&self.state, |c| js(c.delete(&key, now_ms())))
    }

    /// The request key `"{version}:{namespace}:{md5}"` of `data`.
    pub fn key(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> JsResult<String> {
        self.state
            .request_key(&segment_arg(&namespace, "namespace")?, &data)
    }

    /// `get(key(namespace, data))` in one call.
    #[wasm_bindgen(unchecked_return_type = "unknown")]
    pub fn lookup(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> JsResult<JsValue> {
        let key = self
            .state
            .request_key(&segment_arg(&namespace, "namespace")?, &data)?;
        self.state.get(&key)
    }

    /// `set(key(namespace, data), value, options)` in one call; returns the key.
    pub fn store(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> JsResult<String> {
        let ttl = set_options(&options)?;
        let key = self
            .state
            .request_key(&segment_arg(&namespace, "namespace")?, &data)?;
        self.state.set(&key, value, ttl)?;
        Ok(key)
    }

    /// The cached value for `(namespace, data)`, or the result of `generator()` stored under it.
    /// The generator must be synchronous (use `Cache` for async generators); if it throws, the
    /// error comes back as `GENERATOR_FAILED` with the original as `cause`, and nothing is cached.
    #[wasm_bindgen(js_name = getOrSet, unchecked_return_type = "unknown")]
    pub fn get_or_set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => unknown")] generator: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> JsResult<JsValue> {
        let generator = function_arg(&generator, "generator")?;
        let ttl = set_options(&options)?;
        let key = self
            .state
            .request_key(&segment_arg(&namespace, "namespace")?, &data)?;
        let hit = self.state.get(&key)?;
        if !hit.is_undefined() {
            return Ok(hit);
        }
        let value = generator
            .call0(&JsValue::UNDEFINED)
            .map_err(|e| generator_failed(&e))?;
        if is_thenable(&value) {
            // The promise is not ours to await; keep its rejection from going unhandled.
            IGNORE.with(|ignore| {
                let _ = Promise::resolve(&value).catch(ignore);
            });
            return Err(to_js(&Error::GeneratorFailed(
                "MemoryCache.getOrSet needs a synchronous generator; it returned a promise (use Cache for async generators)"
                    .to_owned(),
            )));
        }
        self.state.set(&key, value.clone(), ttl)?;
        Ok(value)
    }

    /// Deletes every key matching the Redis glob `pattern`; returns how many.
    #[wasm_bindgen(js_name = deletePattern)]
    pub fn delete_pattern(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] pattern: JsValue,
    ) -> JsResult<u32> {
        let pattern = pattern_arg(&pattern)?;
        with(&self.state, |c| {
            js(c.delete_pattern(&pattern, now_ms())).map(|n| n as u32)
        })
    }

    /// Deletes every request key of `namespace` under the current version; returns how many.
    #[wasm_bindgen(js_name = invalidateNamespace)]
    pub fn invalidate_namespace(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
    ) -> JsResult<u32> {
        let namespace = segment_arg(&namespace, "namespace")?;
        with(&self.state, |c| {
            js(c.invalidate_namespace(&namespace, now_ms())).map(|n| n as u32)
        })
    }

    /// Deletes every key under `version`; returns how many.
    #[wasm_bindgen(js_name = invalidateVersion)]
    pub fn invalidate_version(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] version: JsValue,
    ) -> JsResult<u32> {
        let version = segment_arg(&version, "version")?;
        with(&self.state, |c| {
            js(c.invalidate_version(&version, now_ms())).map(|n| n as u32)
        })
    }

    /// Invalidates the current version and switches to `version`; returns how many keys went.
    #[wasm_bindgen(js_name = updateVersion)]
    pub fn update_version(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] version: JsValue,
    ) -> JsResult<u32> {
        let version = segment_arg(&version, "version")?;
        with(&self.state, |c| {
            js(c.update_version(&version, now_ms())).map(|n| n as u32)
        })
    }

    /// Removes every entry.
    pub fn clear(&self) -> JsResult<()> {
        with(&self.state, |c| js(c.clear()).map(drop))
    }

    /// Live entries (0 after `shutdown()`).
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> JsResult<u32> {
        with(&self.state, |c| Ok(c.len(now_ms()) as u32))
    }

    /// The current version prefix.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> JsResult<String> {
        self.state.version()
    }

    /// Statistics as a plain object (still readable after `shutdown()`).
    #[wasm_bindgen(unchecked_return_type = "CacheStats")]
    pub fn stats(&self) -> JsResult<js_sys::Object> {
        self.state.stats()
    }

    /// Stops the cleanup timer and drops every entry; later operations fail with `SHUT_DOWN`
    /// (`stats()`, `size` and `version` stay readable). Calling it again does nothing.
    pub fn shutdown(&self) -> JsResult<()> {
        self.state.shutdown()
    }
}
