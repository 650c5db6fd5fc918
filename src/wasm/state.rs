//! The state behind `Cache`: the [`TieredCache`] holding JS values, the optional `sizeOf` and
//! the cleanup timer; and the argument checks shared by every class. (`MemoryCache` keeps its
//! keys and values in JavaScript and has its own wasm half, `memory_slots.rs`.)
//!
//! Re-entrancy: user code (generators, `sizeOf`, `toJSON`) may call back into the same cache; it
//! runs only outside the cache's borrows (serialization and sizing happen before a call reaches
//! the memory tier).

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use js_sys::{Function, JsString};
use wasm_bindgen::prelude::*;

use super::error::{js, make, to_js, JsResult};
use super::value::{check_value, data_json, value_size, JsOptions};
use crate::cache::{Codec, Removal, TieredCache};
use crate::error::{Error, Result};
use crate::platform::{cleanup_timer, FetchTransport, Interval, JsClock};

/// `JSON.stringify` / `JSON.parse` as the shared tier's codec.
pub(crate) struct JsonCodec;

impl Codec<JsValue> for JsonCodec {
    fn encode(&self, value: &JsValue) -> Result<String> {
        data_json(value).map_err(|e| Error::Unserializable(super::error::describe(&e)))
    }

    fn decode(&self, text: &str) -> Result<JsValue> {
        js_sys::JSON::parse(text).map_err(|_| {
            Error::Unserializable("the value stored in Upstash is not JSON".to_owned())
        })
    }
}

/// The cache `Cache` is a face on.
pub(crate) type Tiered = TieredCache<JsValue, FetchTransport, JsonCodec>;

pub(crate) struct State {
    pub(crate) cache: Rc<Tiered>,
    size_of: Option<Function>,
    timer: RefCell<Option<Interval>>,
    pub(crate) popular_topics: Vec<String>,
}

/// The error for a cache re-entered while one of its calls holds it.
pub(crate) fn busy() -> JsValue {
    make("INVALID_OPTIONS", "the cache was re-entered while busy")
}

/// Borrows a cache's state mutably, or fails with [`busy`] when it is re-entered.
pub(crate) fn exclusive<T>(cell: &RefCell<T>) -> JsResult<RefMut<'_, T>> {
    cell.try_borrow_mut().map_err(|_| busy())
}

/// Borrows a cache's state, or fails with [`busy`] when it is re-entered.
pub(crate) fn shared<T>(cell: &RefCell<T>) -> JsResult<Ref<'_, T>> {
    cell.try_borrow().map_err(|_| busy())
}

/// Builds the state and starts the cleanup timer where the runtime allows one.
pub(crate) fn create(opts: JsOptions) -> JsResult<Rc<State>> {
    let cache = Rc::new(js(TieredCache::new(
        &opts.core,
        FetchTransport,
        JsonCodec,
        Rc::new(JsClock),
    ))?);
    let timer = cleanup_timer(&cache, opts.core.cleanup_interval, |c: &Tiered, now| {
        c.sweep(now);
    });
    Ok(Rc::new(State {
        cache,
        size_of: opts.size_of,
        timer: RefCell::new(timer),
        popular_topics: opts.core.popular_topics,
    }))
}

impl State {
    pub(crate) fn timer_active(&self) -> bool {
        self.timer.borrow().is_some()
    }

    /// The size to charge `value`: `sizeOf(value)` or its JSON length when a byte bound is set,
    /// else 0 (nothing is serialized). Runs user code, so it is called before the cache is.
    pub(crate) fn size_for(&self, value: &JsValue) -> JsResult<u64> {
        check_value(value)?;
        js(self.cache.check_open())?;
        if self.cache.needs_sizes() {
            value_size(value, self.size_of.as_ref())
        } else {
            Ok(0)
        }
    }

    /// The request key of `namespace` and `data` (serialized before the cache is called).
    pub(crate) fn request_key(&self, namespace: &str, data: &JsValue) -> JsResult<String> {
        let text = data_json(data)?;
        js(self.cache.request_key(namespace, &text))
    }

    /// Stops the timer; later operations fail with `SHUT_DOWN`.
    pub(crate) fn shutdown(&self) {
        self.timer.borrow_mut().take();
        self.cache.shutdown();
    }
}

/// A string argument. Anything else, or a string with lone surrogates (which UTF-8, and so
/// Redis, cannot hold: they would silently turn into U+FFFD and collide), is refused with the
/// error `err` makes.
pub(crate) fn text(v: &JsValue, what: &str, err: fn(String) -> Error) -> JsResult<String> {
    let Some(s) = v.as_string() else {
        return Err(to_js(&err(format!("{what} must be a string"))));
    };
    if s.contains('\u{FFFD}') && !v.unchecked_ref::<JsString>().is_well_formed() {
        return Err(to_js(&err(format!(
            "{what} contains a lone surrogate, which has no UTF-8 form"
        ))));
    }
    Ok(s)
}

/// A key argument (`INVALID_KEY` otherwise).
pub(crate) fn key_arg(v: &JsValue) -> JsResult<String> {
    text(v, "key", Error::InvalidKey)
}

/// A namespace or version argument (`INVALID_KEY` otherwise).
pub(crate) fn segment_arg(v: &JsValue, what: &str) -> JsResult<String> {
    text(v, what, Error::InvalidKey)
}

/// A pattern argument (`INVALID_PATTERN` otherwise).
pub(crate) fn pattern_arg(v: &JsValue) -> JsResult<String> {
    text(v, "pattern", Error::InvalidPattern)
}

/// A generator argument.
pub(crate) fn function_arg(v: &JsValue, what: &str) -> JsResult<Function> {
    v.dyn_ref::<Function>()
        .cloned()
        .ok_or_else(|| to_js(&Error::InvalidOptions(format!("{what} must be a function"))))
}

/// Wraps a generator failure as `GENERATOR_FAILED`, keeping the original as `cause`.
pub(crate) fn generator_failed(thrown: &JsValue) -> JsValue {
    let msg = format!("generator failed: {}", super::error::describe(thrown));
    super::error::with_cause(&Error::GeneratorFailed(msg), thrown)
}

/// The argument of a [`Removal`]: a pattern (`INVALID_PATTERN` otherwise), a namespace or a
/// version (`INVALID_KEY` otherwise).
pub(crate) fn removal_arg(kind: Removal, v: &JsValue) -> JsResult<String> {
    match kind {
        Removal::Pattern => pattern_arg(v),
        Removal::Namespace => segment_arg(v, "namespace"),
        Removal::Version | Removal::SwitchVersion => segment_arg(v, "version"),
    }
}
