//! Values and option bags crossing from JavaScript: JSON text of request data, value sizes,
//! the option bags (their serde structs, read by bag.rs) and validation, and the statistics
//! and health objects (serialized by serde-wasm-bindgen).

use js_sys::{Function, Object, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bag::{self, plain_object, BagError, Names};
use super::error::{js, to_js, JsResult};
#[cfg(feature = "shared")]
use crate::cache::HealthReport;
use crate::error::Error;
use crate::key::KeyFormat;
use crate::options::{Options, UpstashOptions};
use crate::stats::StatsSnapshot;

fn bad_options(msg: String) -> JsValue {
    to_js(&Error::InvalidOptions(msg))
}

#[cfg(feature = "shared")]
/// `JSON.stringify(data)`, refusing what JSON cannot carry with `UNSERIALIZABLE`.
pub(crate) fn data_json(data: &JsValue) -> JsResult<String> {
    match js_sys::JSON::stringify(data) {
        Ok(text) => text.as_string().ok_or_else(|| json_failure(data, None)),
        Err(thrown) => Err(json_failure(data, Some(&thrown))),
    }
}

/// The `UNSERIALIZABLE` error for `data`, which `JSON.stringify` threw on (`thrown`) or turned
/// into `undefined` (`None`).
pub(crate) fn json_failure(data: &JsValue, thrown: Option<&JsValue>) -> JsValue {
    to_js(&Error::Unserializable(match thrown {
        None => format!(
            "a value of type {} cannot be represented as JSON",
            data.js_typeof().as_string().unwrap_or_default()
        ),
        Some(thrown) => format!(
            "value cannot be represented as JSON: {}",
            super::error::describe(thrown)
        ),
    }))
}

#[cfg(feature = "shared")]
/// The size a value is charged: `sizeOf(value)` when given, else the UTF-8 length of its JSON.
pub(crate) fn value_size(value: &JsValue, size_of: Option<&Function>) -> JsResult<u64> {
    match size_of {
        Some(f) => {
            let n = f
                .call1(&JsValue::UNDEFINED, value)
                .map_err(|e| size_of_failure(Some(&e)))?;
            match n.as_f64() {
                Some(n) if n.is_finite() && n >= 0.0 => Ok(n.ceil() as u64),
                _ => Err(size_of_failure(None)),
            }
        }
        None => Ok(data_json(value)?.len() as u64),
    }
}

/// The `INVALID_OPTIONS` error for a `sizeOf` that threw (`thrown`) or returned no size.
pub(crate) fn size_of_failure(thrown: Option<&JsValue>) -> JsValue {
    match thrown {
        Some(e) => to_js(&Error::InvalidOptions(format!(
            "sizeOf threw: {}",
            super::error::describe(e)
        ))),
        None => bad_options("sizeOf must return a finite number >= 0".to_owned()),
    }
}

/// Refuses `undefined` as a value: `get` answers `undefined` for a miss.
pub(crate) fn check_value(value: &JsValue) -> JsResult<()> {
    if value.is_undefined() {
        return Err(to_js(&Error::Unserializable(
            "undefined cannot be cached: get returns undefined for a miss".to_owned(),
        )));
    }
    Ok(())
}

#[cfg(feature = "shared")]
/// Whether `v` is a thenable (has a callable `then`).
pub(crate) fn is_thenable(v: &JsValue) -> bool {
    v.is_object() && Reflect::get(v, &JsValue::from_str("then")).is_ok_and(|t| t.is_function())
}

/// Parses a key format name; `undefined` means the default.
pub(crate) fn key_format(v: &JsValue) -> JsResult<KeyFormat> {
    if v.is_undefined() || v.is_null() {
        return Ok(KeyFormat::default());
    }
    let name = v
        .as_string()
        .ok_or_else(|| bad_options("keyFormat must be \"jcs\" or \"python\"".to_owned()))?;
    js(name.parse())
}

/// Cache options as read from JavaScript.
pub(crate) struct JsOptions {
    pub(crate) core: Options,
    pub(crate) size_of: Option<Function>,
}

/// The names of a cache's option bag that are JavaScript's alone (read here, not by serde:
/// [`Options`] is the same struct in the Rust Worker API, which has no JS functions).
const JS_ONLY: &[&str] = &["sizeOf"];

/// The fields of [`Options`] that `MemoryCache` does not have (the shared tier's).
const SHARED_TIER: &[&str] = &["upstash", "fallback", "localTtl", "popularTopics"];

/// Per-call options (`set`, `store`, `getOrSet`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetOptions {
    /// TTL in seconds; `None`: the cache's default.
    ttl: Option<f64>,
}

#[cfg(feature = "shared")]
/// Options of `Cache.warm`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WarmOptions {
    /// Topics to warm; `None`: the cache's `popularTopics`.
    pub(crate) topics: Option<Vec<String>>,
    /// Generators running at once, 1 to 64; `None`: 4.
    pub(crate) concurrency: Option<u32>,
}

#[cfg(feature = "shared")]
/// The names of the warm options that are JavaScript functions (read here, not by serde).
const WARM_JS_ONLY: &[&str] = &["onProgress"];

/// `INVALID_OPTIONS` for the bag `what`.
fn bag_error(what: &str) -> impl Fn(BagError) -> JsValue + '_ {
    move |e| bad_options(e.message(what))
}

/// The function under `name` in the bag `v` (already read, so a plain object or nothing):
/// `None` when absent or `undefined`.
fn function_field(v: &JsValue, what: &str, name: &str) -> JsResult<Option<Function>> {
    let Some(obj) = plain_object(v) else {
        return Ok(None);
    };
    let f = Reflect::get(obj, &JsValue::from_str(name))?;
    if f.is_undefined() {
        return Ok(None);
    }
    f.dyn_into::<Function>()
        .map(Some)
        .map_err(|_| bad_options(format!("{what}.{name} must be a function")))
}

/// Parses and validates the options of `new MemoryCache(...)` (`shared: false`) or
/// `new Cache(...)` (`shared: true`).
pub(crate) fn cache_options(v: &JsValue, class: &'static str, shared: bool) -> JsResult<JsOptions> {
    let opts = parse_cache_options(v, class, shared)?;
    js(opts.core.validate())?;
    Ok(opts)
}

/// Reads the option bag without the cross-field validation (`fromEnv` fills in the Upstash URL
/// and token first).
fn parse_cache_options(v: &JsValue, class: &'static str, shared: bool) -> JsResult<JsOptions> {
    let names = Names {
        extra: JS_ONLY,
        refused: if shared { &[] } else { SHARED_TIER },
    };
    let core = bag::read::<Options>(v, names).map_err(bag_error(class))?;
    let size_of = function_field(v, class, "sizeOf")?;
    Ok(JsOptions { core, size_of })
}

#[cfg(feature = "shared")]
/// `Cache.fromEnv(env, options)`: `options` with `upstash.url` and `upstash.token` taken from
/// `env` (or `process.env`).
pub(crate) fn cache_options_from_env(env: &JsValue, options: &JsValue) -> JsResult<JsOptions> {
    let env = if env.is_undefined() || env.is_null() {
        let process = Reflect::get(&js_sys::global(), &JsValue::from_str("process"))?;
        if process.is_object() {
            Reflect::get(&process, &JsValue::from_str("env"))?
        } else {
            JsValue::UNDEFINED
        }
    } else {
        env.clone()
    };
    let read = |name: &str| -> Option<String> {
        if !env.is_object() {
            return None;
        }
        Reflect::get(&env, &JsValue::from_str(name))
            .ok()?
            .as_string()
            .filter(|s| !s.trim().is_empty())
    };
    let (Some(url), Some(token)) = (
        read("UPSTASH_REDIS_REST_URL"),
        read("UPSTASH_REDIS_REST_TOKEN"),
    ) else {
        return Err(bad_options(
            "Cache.fromEnv needs UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN in env"
                .to_owned(),
        ));
    };
    let mut opts = parse_cache_options(options, "Cache options", true)?;
    let mut u = opts.core.upstash.take().unwrap_or_default();
    u.url = url;
    u.token = token;
    opts.core.upstash = Some(u);
    js(opts.core.validate())?;
    Ok(opts)
}

/// Per-call options `{ ttl }` (seconds); `undefined` means the default TTL.
pub(crate) fn set_options(v: &JsValue) -> JsResult<Option<f64>> {
    let ttl = bag::read::<SetOptions>(v, Names::default())
        .map_err(bag_error("options"))?
        .ttl;
    // The range is checked here too, so that getOrSet refuses a bad TTL before the generator runs.
    if let Some(secs) = ttl {
        js(crate::options::check_secs("ttl", secs, false))?;
    }
    Ok(ttl)
}

#[cfg(feature = "shared")]
/// The options of `warm`, with `concurrency` in range and `onProgress` a function.
pub(crate) fn warm_options(v: &JsValue) -> JsResult<(WarmOptions, Option<Function>)> {
    const WHAT: &str = "warm options";
    let names = Names {
        extra: WARM_JS_ONLY,
        refused: &[],
    };
    let o = bag::read::<WarmOptions>(v, names).map_err(bag_error(WHAT))?;
    if let Some(n) = o.concurrency.filter(|n| !(1..=64).contains(n)) {
        return Err(bad_options(format!(
            "{WHAT}.concurrency must be a whole number from 1 to 64, got {n}"
        )));
    }
    let on_progress = function_field(v, WHAT, "onProgress")?;
    Ok((o, on_progress))
}

/// The option names each bag accepts, by the name of its TypeScript interface (for the test
/// that compares them with the interfaces' properties); `None` for an unknown bag.
pub(crate) fn option_names(bag: &str) -> Option<Vec<String>> {
    let own = |names: &[&str]| names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>();
    let cache = || {
        own(bag::field_names::<Options>())
            .into_iter()
            .chain(own(JS_ONLY))
    };
    Some(match bag {
        "MemoryCacheOptions" => cache()
            .filter(|n| !SHARED_TIER.contains(&n.as_str()))
            .collect(),
        "CacheOptions" => cache().collect(),
        "UpstashOptions" => own(bag::field_names::<UpstashOptions>()),
        "SetOptions" => own(bag::field_names::<SetOptions>()),
        #[cfg(feature = "shared")]
        "WarmOptions" => own(bag::field_names::<WarmOptions>())
            .into_iter()
            .chain(own(WARM_JS_ONLY))
            .collect(),
        _ => return None,
    })
}

/// A result object (`stats()`, `health()`, `warm` results) for JavaScript: `None` fields left
/// out, counts as numbers.
pub(crate) fn to_object<T: Serialize + ?Sized>(v: &T) -> JsResult<Object> {
    v.serialize(&serde_wasm_bindgen::Serializer::new())
        .map(JsCast::unchecked_into)
        .map_err(|e| {
            to_js(&Error::Unserializable(format!(
                "result: {}",
                super::error::describe(&e.into())
            )))
        })
}

/// The plain object `stats()` returns.
pub(crate) fn stats_object(s: &StatsSnapshot) -> JsResult<Object> {
    to_object(s)
}

#[cfg(feature = "shared")]
/// The plain object `health()` returns for a cache whose backend is `backend`.
pub(crate) fn health_object(h: &HealthReport) -> JsResult<Object> {
    to_object(h)
}
