//! Values and option bags crossing from JavaScript: JSON text of request data, value sizes,
//! option parsing and validation, and the statistics and health objects.
//!
//! # Why the option reader ([`Bag`]) and the result writer ([`fields_object`]) are hand-written
//!
//! The project's rule is a maintained crate unless it costs more than 2 KB gzip in a shipped
//! module (or 10% on a hot path). serde derive with serde-wasm-bindgen was measured side by
//! side (the wip-serde branch, commit "Option bags read through serde derive ..."), as gzip -9
//! totals shipped to a page, `cachette/memory` and `cachette`:
//!
//! | how | memory-only | full |
//! |---|---|---|
//! | this file (hand-written reader and writer) | 54,283 B | 105,560 B |
//! | serde derive, read with `serde_wasm_bindgen::from_value` | 76,381 B (+22,098) | 130,559 B (+24,999) |
//! | serde derive, read with a small `Deserializer` over `JsValue` | 64,014 B (+9,731) | 117,422 B (+11,862) |
//! | results (stats, health, warm) alone through serde-wasm-bindgen's `Serializer` | 56,508 B (+2,225) | 108,975 B (+3,415) |
//!
//! Most of it is serde's derived visitors (inlined at this crate's `opt-level = 3`), serde's
//! error text (which formats floats and strings with Rust's `fmt`, bringing float-to-decimal
//! and Unicode tables into a module that otherwise prints numbers through JavaScript), and
//! serde-wasm-bindgen's field-name cache (a `HashMap` in a thread-local). serde-wasm-bindgen's
//! own `from_value` would also lose behaviour: it reads only the fields a struct declares, so it
//! cannot refuse an unknown name, reads `{ ttl: undefined }` as a value, takes arrays for objects
//! and BigInts for whole numbers, and its errors name no field. The serde reader was faster
//! (`MemorySlots.ttlOption({ ttl: 60 })` 328 against 635 ns/op, `Cache.set(k, v, { ttl: 60 })`
//! 938 against 1,202 ns/op, in Node 20), but the set path of `MemoryCache` reads `{ ttl }` in
//! JavaScript and never gets here, so that does not pay for the size.
//!
//! Re-measure: `./run build && node bench/sizes.mjs` on each variant.
//!
//! The schema of each bag is therefore written here (the name lists and the typed reads) and in
//! the TypeScript interfaces of `mod.rs`; tests/js/contracts.test.mjs checks that they agree:
//! the names each reader accepts (as it lists them when it refuses an unknown one) against each
//! interface's properties, and the kind of value each reader takes against each property's type.

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::{js, to_js, JsResult};
use crate::cache::ttl_ms;
#[cfg(feature = "shared")]
use crate::cache::HealthReport;
use crate::clock::secs_to_ms;
use crate::error::Error;
use crate::key::KeyFormat;
use crate::options::{
    check_secs, parse_duration, CallPolicy, Invalidation, Lock, Options, Stale, UpstashOptions,
    LOCK_NEEDS_UPSTASH,
};
use crate::stats::{Field, StatsSnapshot};

/// A number as JavaScript prints it (keeps Rust's float formatting out of the module).
fn num(n: f64) -> String {
    js_sys::Number::from(n)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default()
}

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

/// Reads the option bag `bag`, refusing unknown names and wrong types.
pub(crate) struct Bag<'a> {
    obj: Option<&'a Object>,
    what: &'static str,
}

impl<'a> Bag<'a> {
    /// `undefined` and `null` are an empty bag; anything else must be a plain object whose keys
    /// are all in `known`.
    pub(crate) fn new(v: &'a JsValue, what: &'static str, known: &[&str]) -> JsResult<Bag<'a>> {
        if v.is_undefined() || v.is_null() {
            return Ok(Bag { obj: None, what });
        }
        let obj = v
            .dyn_ref::<Object>()
            .filter(|_| !v.is_function() && !Array::is_array(v))
            .ok_or_else(|| bad_options(format!("{what} must be an object")))?;
        for k in Object::keys(obj).iter() {
            let k = k.as_string().unwrap_or_default();
            if !known.contains(&k.as_str()) {
                return Err(bad_options(format!(
                    "{what} has an unknown option \"{k}\"; known: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(Bag {
            obj: Some(obj),
            what,
        })
    }

    fn get(&self, name: &str) -> JsResult<Option<JsValue>> {
        let Some(obj) = self.obj else { return Ok(None) };
        let v = Reflect::get(obj, &JsValue::from_str(name))?;
        Ok((!v.is_undefined()).then_some(v))
    }

    /// The option `name` converted by `read`; `INVALID_OPTIONS` saying it "must be {kind}" when
    /// `read` refuses it.
    fn typed<T>(
        &self,
        name: &str,
        kind: &str,
        read: impl FnOnce(JsValue) -> Option<T>,
    ) -> JsResult<Option<T>> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) => read(v)
                .map(Some)
                .ok_or_else(|| bad_options(format!("{}.{name} must be {kind}", self.what))),
        }
    }

    pub(crate) fn number(&self, name: &str) -> JsResult<Option<f64>> {
        self.typed(name, "a number", |v| v.as_f64())
    }

    pub(crate) fn integer(&self, name: &str, min: f64, max: f64) -> JsResult<Option<f64>> {
        match self.number(name)? {
            Some(n) if n.fract() != 0.0 || n < min || n > max => Err(bad_options(format!(
                "{}.{name} must be a whole number from {} to {}, got {}",
                self.what,
                num(min),
                num(max),
                num(n)
            ))),
            other => Ok(other),
        }
    }

    pub(crate) fn string(&self, name: &str) -> JsResult<Option<String>> {
        self.typed(name, "a string", |v| v.as_string())
    }

    pub(crate) fn boolean(&self, name: &str) -> JsResult<Option<bool>> {
        self.typed(name, "a boolean", |v| v.as_bool())
    }

    pub(crate) fn function(&self, name: &str) -> JsResult<Option<Function>> {
        self.typed(name, "a function", |v| v.dyn_into::<Function>().ok())
    }

    pub(crate) fn strings(&self, name: &str) -> JsResult<Option<Vec<String>>> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) if Array::is_array(&v) => Array::from(&v)
                .iter()
                .map(|s| {
                    s.as_string().ok_or_else(|| {
                        bad_options(format!("{}.{name} must hold only strings", self.what))
                    })
                })
                .collect::<JsResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(bad_options(format!(
                "{}.{name} must be an array of strings",
                self.what
            ))),
        }
    }

    pub(crate) fn value(&self, name: &str) -> JsResult<Option<JsValue>> {
        self.get(name)
    }

    /// A duration in seconds: a number of seconds, or a string with a unit (`"500ms"`, `"30s"`,
    /// `"5m"`, `"1h"`, `"1d"`). The range is checked by the caller.
    pub(crate) fn duration(&self, name: &str) -> JsResult<Option<f64>> {
        self.typed(
            name,
            "a number of seconds or a string with a unit (\"500ms\", \"30s\", \"5m\", \"1h\", \"1d\")",
            |v| duration_value(&v),
        )
    }

    /// A stale window: `true` (the grace period), `false` (off) or a duration.
    pub(crate) fn stale(&self, name: &str) -> JsResult<Option<Stale>> {
        if let Some(b) = self.get(name)?.and_then(|v| v.as_bool()) {
            return Ok(Some(if b { Stale::Grace } else { Stale::Off }));
        }
        let secs = self.duration(name)?;
        if let Some(s) = secs {
            js(check_secs(name, s, true))?;
        }
        Ok(secs.map(Stale::Secs))
    }

    /// The shared-tier lock: `true`, `false` or `{ ttl }` (a duration).
    pub(crate) fn lock(&self, name: &str) -> JsResult<Option<Lock>> {
        let Some(v) = self.get(name)? else {
            return Ok(None);
        };
        if let Some(b) = v.as_bool() {
            return Ok(Some(if b { Lock::On } else { Lock::Off }));
        }
        let inner = Bag::new(&v, "lock", &["ttl"]).map_err(|_| {
            bad_options(format!(
                "{name} must be true, false or {{ ttl }} (a duration)"
            ))
        })?;
        Ok(Some(match inner.duration("ttl")? {
            Some(secs) => {
                js(check_secs("lock.ttl", secs, false))?;
                Lock::Secs(secs)
            }
            None => Lock::On,
        }))
    }

    /// An `AbortSignal` (anything with a boolean `aborted` and an `addEventListener` method).
    pub(crate) fn signal(&self, name: &str) -> JsResult<Option<JsValue>> {
        self.typed(name, "an AbortSignal", |v| {
            let aborted = Reflect::get(&v, &JsValue::from_str("aborted")).ok()?;
            let listen = Reflect::get(&v, &JsValue::from_str("addEventListener")).ok()?;
            (aborted.as_bool().is_some() && listen.is_function()).then_some(v)
        })
    }
}

/// A duration in seconds: a number, or a string with a unit (`"500ms"`, `"30s"`, `"5m"`, `"1h"`,
/// `"1d"`); `None` for anything else. The range is the caller's to check.
pub(crate) fn duration_value(v: &JsValue) -> Option<f64> {
    v.as_f64().or_else(|| parse_duration(&v.as_string()?))
}

/// The runtime's name for messages: `"Node.js"`, `"workerd"` or `"this runtime"`.
#[cfg(feature = "shared")]
fn runtime_name() -> &'static str {
    let global = js_sys::global();
    let get = |o: &JsValue, name: &str| Reflect::get(o, &JsValue::from_str(name)).ok();
    let node = get(&global, "process")
        .and_then(|p| get(&p, "versions"))
        .and_then(|v| get(&v, "node"))
        .is_some_and(|n| n.is_string());
    let agent = get(&global, "navigator")
        .and_then(|n| get(&n, "userAgent"))
        .and_then(|a| a.as_string())
        .unwrap_or_default();
    if node {
        "Node.js"
    } else if agent.starts_with("Cloudflare-Workers") {
        "workerd"
    } else {
        "this runtime"
    }
}

/// Cache options as read from JavaScript.
pub(crate) struct JsOptions {
    pub(crate) core: Options,
    pub(crate) size_of: Option<Function>,
    /// `onRemove(key, value, cause)`.
    pub(crate) on_remove: Option<Function>,
    /// The default `waitUntil` of background refreshes.
    pub(crate) wait_until: Option<Function>,
    /// `{ serialize, deserialize }` (`Cache` only).
    #[cfg_attr(not(feature = "shared"), allow(dead_code))]
    pub(crate) serializer: Option<(Function, Function)>,
}

const MEMORY_OPTIONS: &[&str] = &[
    "version",
    "ttl",
    "maxEntries",
    "maxBytes",
    "cleanupInterval",
    "keyFormat",
    "sizeOf",
    "grace",
    "staleWhileRevalidate",
    "staleIfError",
    "timeout",
    "waitUntil",
    "onRemove",
];

const CACHE_OPTIONS: &[&str] = &[
    "version",
    "ttl",
    "maxEntries",
    "maxBytes",
    "cleanupInterval",
    "keyFormat",
    "sizeOf",
    "grace",
    "staleWhileRevalidate",
    "staleIfError",
    "timeout",
    "waitUntil",
    "onRemove",
    "serializer",
    "upstash",
    "fallback",
    "localTtl",
    "popularTopics",
    "invalidation",
    "generationCheck",
    "lock",
    "persist",
];

/// Reads `options.upstash` (`{ url, token, timeout, timeoutMs, retries }`).
fn upstash_options(v: &JsValue) -> JsResult<UpstashOptions> {
    let bag = Bag::new(
        v,
        "upstash",
        &["url", "token", "timeout", "timeoutMs", "retries"],
    )?;
    let mut u = UpstashOptions::new(
        bag.string("url")?.unwrap_or_default(),
        bag.string("token")?.unwrap_or_default(),
    );
    if let Some(n) = bag.integer("timeoutMs", 1.0, 600_000.0)? {
        u.timeout_ms = n as u32;
    }
    if let Some(secs) = bag.duration("timeout")? {
        if bag.value("timeoutMs")?.is_some() {
            return Err(bad_options(
                "upstash: give timeout or timeoutMs (its alias in milliseconds), not both"
                    .to_owned(),
            ));
        }
        let ms = crate::clock::secs_to_ms(secs);
        if !(secs > 0.0 && ms <= 600_000) {
            return Err(bad_options(
                "upstash.timeout must be a duration from 1ms to 10m".to_owned(),
            ));
        }
        u.timeout_ms = ms as u32;
    }
    if let Some(n) = bag.integer("retries", 0.0, 10.0)? {
        u.retries = n as u32;
    }
    Ok(u)
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
    let known = if shared {
        CACHE_OPTIONS
    } else {
        MEMORY_OPTIONS
    };
    let bag = Bag::new(v, class, known)?;
    let mut o = Options::default();
    if let Some(version) = bag.string("version")? {
        o.version = version;
    }
    if let Some(ttl) = bag.duration("ttl")? {
        o.ttl = ttl;
    }
    if let Some(grace) = bag.duration("grace")? {
        o.grace = grace;
    }
    if let Some(s) = bag.stale("staleWhileRevalidate")? {
        o.stale_while_revalidate = s;
    }
    if let Some(s) = bag.stale("staleIfError")? {
        o.stale_if_error = s;
    }
    if let Some(t) = bag.duration("timeout")? {
        o.timeout = t;
    }
    if let Some(n) = bag.integer("maxEntries", 1.0, f64::from(u32::MAX / 2))? {
        o.max_entries = n as usize;
    }
    if let Some(n) = bag.integer("maxBytes", 1.0, 9_007_199_254_740_991.0)? {
        o.max_bytes = Some(n as u64);
    }
    if let Some(n) = bag.duration("cleanupInterval")? {
        o.cleanup_interval = n;
    }
    o.key_format = key_format(&bag.value("keyFormat")?.unwrap_or(JsValue::UNDEFINED))?;
    if let Some(f) = bag.boolean("fallback")? {
        o.fallback = f;
    }
    if let Some(n) = bag.duration("localTtl")? {
        o.local_ttl = n;
    }
    if let Some(topics) = bag.strings("popularTopics")? {
        o.popular_topics = topics;
    }
    if let Some(mode) = bag.string("invalidation")? {
        o.invalidation = match mode.as_str() {
            "scan" => Invalidation::Scan,
            "generation" => Invalidation::Generation,
            _ => {
                return Err(bad_options(
                    "invalidation must be \"scan\" or \"generation\"".to_owned(),
                ))
            }
        };
    }
    if let Some(secs) = bag.duration("generationCheck")? {
        o.generation_check = secs;
    }
    if let Some(lock) = bag.lock("lock")? {
        o.lock = lock;
    }
    // The browser entries take `persist` before the options reach here.
    #[cfg(feature = "shared")]
    if bag
        .value("persist")?
        .is_some_and(|v| v.as_bool() != Some(false))
    {
        return Err(bad_options(format!(
            "persist needs IndexedDB, which browsers have and {} has not",
            runtime_name()
        )));
    }
    if let Some(u) = bag.value("upstash")? {
        o.upstash = Some(upstash_options(&u)?);
    }
    let serializer = match bag.value("serializer")? {
        None => None,
        Some(v) => {
            let s = Bag::new(&v, "serializer", &["serialize", "deserialize"])?;
            match (s.function("serialize")?, s.function("deserialize")?) {
                (Some(ser), Some(de)) => Some((ser, de)),
                _ => {
                    return Err(bad_options(
                        "serializer needs both serialize(value) and deserialize(text)".to_owned(),
                    ))
                }
            }
        }
    };
    Ok(JsOptions {
        core: o,
        size_of: bag.function("sizeOf")?,
        on_remove: bag.function("onRemove")?,
        wait_until: bag.function("waitUntil")?,
        serializer,
    })
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
    let mut u = opts
        .core
        .upstash
        .take()
        .unwrap_or_else(|| UpstashOptions::new("", ""));
    u.url = url;
    u.token = token;
    opts.core.upstash = Some(u);
    js(opts.core.validate())?;
    Ok(opts)
}

/// The names of `set` and `store` options.
pub(crate) const SET_OPTIONS: &[&str] = &["ttl", "grace"];

/// The names of `getOrSet` and `getOrSetEntry` options.
pub(crate) const GET_OR_SET_OPTIONS: &[&str] = &[
    "ttl",
    "grace",
    "staleWhileRevalidate",
    "staleIfError",
    "timeout",
    "signal",
    "waitUntil",
    "lock",
];

/// Per-call options `{ ttl }` (a duration); `undefined` means the default TTL, `Infinity` no
/// expiry.
pub(crate) fn set_options(v: &JsValue) -> JsResult<Option<f64>> {
    // Every check of `call_options`, so that getOrSet refuses a bad TTL before its generator runs.
    Ok(call_options(v, SET_OPTIONS, &Options::default(), None)?.ttl)
}

/// Per-call options over a cache's defaults.
pub(crate) struct CallOptions {
    /// The TTL given (seconds; `None`: the default).
    pub(crate) ttl: Option<f64>,
    pub(crate) policy: CallPolicy,
    pub(crate) signal: Option<JsValue>,
    pub(crate) wait_until: Option<Function>,
}

/// Reads per-call options with the names `known` (`SET_OPTIONS` or `GET_OR_SET_OPTIONS`) over
/// `defaults`; `true` for a stale window means the call's grace period.
pub(crate) fn call_options(
    v: &JsValue,
    known: &[&str],
    defaults: &Options,
    wait_until: Option<&Function>,
) -> JsResult<CallOptions> {
    let bag = Bag::new(v, "options", known)?;
    let ttl = bag.duration("ttl")?;
    let mut policy = defaults.defaults();
    if let Some(secs) = ttl {
        let ms = js(ttl_ms(Some(secs), 0))?;
        policy.ttl_ms = (ms != crate::clock::NEVER_MS).then_some(ms);
    }
    if let Some(g) = bag.duration("grace")? {
        js(check_secs("grace", g, true))?;
        policy.grace_ms = secs_to_ms(g);
    }
    if let Some(t) = bag.duration("timeout")? {
        js(check_secs("timeout", t, true))?;
        policy.timeout_ms = secs_to_ms(t);
    }
    let lock = bag.lock("lock")?.unwrap_or(defaults.lock);
    if lock != Lock::Off && defaults.upstash.is_none() {
        return Err(bad_options(LOCK_NEEDS_UPSTASH.to_owned()));
    }
    policy.lock_ms = lock.ttl_ms(policy.timeout_ms);
    let swr = bag.stale("staleWhileRevalidate")?;
    let sie = bag.stale("staleIfError")?;
    policy.stale_while_revalidate_ms = swr
        .unwrap_or(defaults.stale_while_revalidate)
        .window_ms(policy.grace_ms);
    policy.stale_if_error_ms = sie
        .unwrap_or(defaults.stale_if_error)
        .window_ms(policy.grace_ms);
    Ok(CallOptions {
        ttl,
        policy,
        signal: bag.signal("signal")?,
        wait_until: bag.function("waitUntil")?.or_else(|| wait_until.cloned()),
    })
}

fn set(obj: &Object, name: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(name), &v.into());
}

/// The plain object of a report's fields (`stats()`, `health()`); absent fields are left out.
fn fields_object(fields: &[(&str, Field<'_>)]) -> Object {
    let o = Object::new();
    for &(name, field) in fields {
        match field {
            Field::Text(s) => set(&o, name, s),
            Field::Count(n) => set(&o, name, n as f64),
            Field::Number(n) => set(&o, name, n),
            Field::Flag(b) => set(&o, name, b),
            Field::Upstash(u) => set(&o, name, fields_object(&u.fields())),
            Field::Absent => {}
        }
    }
    o
}

/// The plain object `stats()` returns.
pub(crate) fn stats_object(s: &StatsSnapshot) -> Object {
    fields_object(&s.fields())
}

#[cfg(feature = "shared")]
/// The plain object `health()` returns for a cache whose backend is `backend`.
pub(crate) fn health_object(h: &HealthReport) -> Object {
    fields_object(&h.fields())
}

/// Sets `name` on a plain object (for result objects built here).
pub(crate) fn put(obj: &Object, name: &str, v: impl Into<JsValue>) {
    set(obj, name, v);
}
