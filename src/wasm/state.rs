//! The state behind `Cache`: the memory core holding JS values, the optional `sizeOf`, the
//! cleanup timer, latency sampling and the shared tier. (`MemoryCache` keeps its keys and values
//! in JavaScript and has its own wasm half, `memory_slots.rs`; the argument checks below serve
//! both.)
//!
//! Re-entrancy: user code (generators, `sizeOf`, `toJSON`) may call back into the same cache, so
//! the memory core is borrowed only for short stretches that run no user code.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, JsString};
use wasm_bindgen::prelude::*;

use super::error::{js, make, to_js, JsResult};
use super::value::{check_value, data_json, value_size, JsOptions};
use crate::cache::{Codec, MemoryCore, SharedCache};
use crate::clock::secs_to_ms;
use crate::error::{Error, Result};
use crate::platform::{now_ms, precise_ms, FetchTransport, Interval, JsClock};
use crate::upstash::Client;

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

pub(crate) type Shared = SharedCache<JsValue, FetchTransport, JsonCodec>;

pub(crate) struct State {
    core: Rc<RefCell<MemoryCore<JsValue>>>,
    size_of: Option<Function>,
    timer: RefCell<Option<Interval>>,
    ops: Cell<u32>,
    sample_every: u32,
    pub(crate) popular_topics: Vec<String>,
    pub(crate) shared: Option<Rc<Shared>>,
}

/// Builds the state and starts the cleanup timer where the runtime allows one.
pub(crate) fn create(opts: JsOptions, sample_every: u32) -> JsResult<Rc<State>> {
    let core = Rc::new(RefCell::new(js(MemoryCore::new(&opts.core))?));
    let shared = match &opts.core.upstash {
        Some(u) => {
            let client = js(Client::new(u, FetchTransport))?;
            Some(Rc::new(SharedCache::new(
                core.clone(),
                client,
                JsonCodec,
                Rc::new(JsClock),
                opts.core.fallback,
                secs_to_ms(opts.core.local_ttl),
            )))
        }
        None => None,
    };
    let mut timer = None;
    if opts.core.cleanup_interval > 0.0 {
        let weak: Weak<RefCell<MemoryCore<JsValue>>> = Rc::downgrade(&core);
        let period = secs_to_ms(opts.core.cleanup_interval) as f64;
        timer = Interval::start(period, move || {
            if let Some(core) = weak.upgrade() {
                if let Ok(mut c) = core.try_borrow_mut() {
                    c.sweep(now_ms(), usize::MAX);
                }
            }
        });
    }
    Ok(Rc::new(State {
        core,
        size_of: opts.size_of,
        timer: RefCell::new(timer),
        ops: Cell::new(0),
        sample_every: sample_every.max(1),
        popular_topics: opts.core.popular_topics,
        shared,
    }))
}

fn busy() -> JsValue {
    make("INVALID_OPTIONS", "the cache was re-entered while busy")
}

/// Runs `f` on the memory core, timing one operation in `sample_every`. The core is never
/// borrowed while user code runs, so a failed borrow means a bug; it is reported as an error
/// rather than a panic.
pub(crate) fn with<T>(
    state: &State,
    f: impl FnOnce(&mut MemoryCore<JsValue>) -> JsResult<T>,
) -> JsResult<T> {
    let mut core = state.core.try_borrow_mut().map_err(|_| busy())?;
    let n = state.ops.get().wrapping_add(1);
    state.ops.set(n);
    if n % state.sample_every != 0 {
        return f(&mut core);
    }
    let t0 = precise_ms();
    let r = f(&mut core);
    core.record_latency(precise_ms() - t0);
    r
}

impl State {
    pub(crate) fn timer_active(&self) -> bool {
        self.timer.borrow().is_some()
    }

    pub(crate) fn record_latency(&self, ms: f64) {
        if let Ok(mut c) = self.core.try_borrow_mut() {
            c.record_latency(ms);
        }
    }

    pub(crate) fn check_open(&self) -> JsResult<()> {
        let core = self.core.try_borrow().map_err(|_| busy())?;
        js(core.check_open())
    }

    pub(crate) fn version(&self) -> JsResult<String> {
        Ok(self
            .core
            .try_borrow()
            .map_err(|_| busy())?
            .version()
            .to_owned())
    }

    pub(crate) fn get(&self, key: &str) -> JsResult<JsValue> {
        with(self, |c| {
            Ok(js(c.get(key, now_ms()))?
                .cloned()
                .unwrap_or(JsValue::UNDEFINED))
        })
    }

    pub(crate) fn stats(&self) -> JsResult<js_sys::Object> {
        let timer = self.timer_active();
        with(self, |c| {
            Ok(super::value::stats_object(&c.snapshot(
                now_ms(),
                "memory",
                timer,
                false,
                None,
            )))
        })
    }

    pub(crate) fn shutdown(&self) -> JsResult<()> {
        self.timer.borrow_mut().take();
        with(self, |c| {
            c.shutdown();
            Ok(())
        })
    }

    /// The size to charge `value`, computed before the core is borrowed (it may run user code).
    /// Zero when no byte bound is set: then nothing is serialized.
    pub(crate) fn size_for(&self, value: &JsValue) -> JsResult<u64> {
        check_value(value)?;
        let needs = {
            let c = self.core.try_borrow().map_err(|_| busy())?;
            js(c.check_open())?;
            c.needs_sizes()
        };
        if needs {
            value_size(value, self.size_of.as_ref())
        } else {
            Ok(0)
        }
    }

    /// Stores `value` under `key` in memory.
    pub(crate) fn set(&self, key: &str, value: JsValue, ttl: Option<f64>) -> JsResult<()> {
        let size = self.size_for(&value)?;
        with(self, |c| js(c.set(key, value, size, ttl, now_ms())))
    }

    /// The request key of `namespace` and `data` (serialized before the core is borrowed).
    pub(crate) fn request_key(&self, namespace: &str, data: &JsValue) -> JsResult<String> {
        let text = data_json(data)?;
        let mut c = self.core.try_borrow_mut().map_err(|_| busy())?;
        js(c.check_open())?;
        js(c.request_key(namespace, &text))
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
