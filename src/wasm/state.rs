//! State shared by `MemoryCache` and `Cache`: the memory core holding JS values, the optional
//! `sizeOf`, the cleanup timer and latency sampling. Each operation is written here once; the two
//! classes are thin faces on it.
//!
//! Re-entrancy: user code (generators, `sizeOf`, `toJSON`) may call back into the same cache, so
//! the state is borrowed only for short stretches that run no user code.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::error::{js, to_js, JsResult};
use super::value::{check_value, data_json, value_size, JsOptions};
use crate::cache::MemoryCore;
use crate::clock::secs_to_ms;
use crate::error::Error;
use crate::platform::{now_ms, precise_ms, Interval};
use crate::stats::StatsSnapshot;

pub(crate) struct State {
    pub(crate) core: MemoryCore<JsValue>,
    size_of: Option<Function>,
    timer: Option<Interval>,
    ops: u32,
    sample_every: u32,
    pub(crate) popular_topics: Vec<String>,
}

pub(crate) type Shared = Rc<RefCell<State>>;

/// Builds the state and starts the cleanup timer where the runtime allows one.
pub(crate) fn create(opts: JsOptions, sample_every: u32) -> JsResult<Shared> {
    let core = js(MemoryCore::new(&opts.core))?;
    let shared = Rc::new(RefCell::new(State {
        core,
        size_of: opts.size_of,
        timer: None,
        ops: 0,
        sample_every: sample_every.max(1),
        popular_topics: opts.core.popular_topics.clone(),
    }));
    if opts.core.cleanup_interval > 0.0 {
        let weak: Weak<RefCell<State>> = Rc::downgrade(&shared);
        let period = secs_to_ms(opts.core.cleanup_interval) as f64;
        let timer = Interval::start(period, move || {
            if let Some(state) = weak.upgrade() {
                if let Ok(mut s) = state.try_borrow_mut() {
                    s.core.sweep(now_ms(), usize::MAX);
                }
            }
        });
        shared.borrow_mut().timer = timer;
    }
    Ok(shared)
}

/// Runs `f` on the state. The state is never borrowed while user code runs, so a failed borrow
/// means a bug; it is reported as an error rather than a panic.
pub(crate) fn with<T>(shared: &Shared, f: impl FnOnce(&mut State) -> JsResult<T>) -> JsResult<T> {
    let mut s = shared.try_borrow_mut().map_err(|_| {
        super::error::make("INVALID_OPTIONS", "the cache was re-entered while busy")
    })?;
    let t0 = s.begin();
    let r = f(&mut s);
    s.end(t0);
    r
}

impl State {
    fn begin(&mut self) -> Option<f64> {
        self.ops = self.ops.wrapping_add(1);
        (self.ops % self.sample_every == 0).then(precise_ms)
    }

    fn end(&mut self, t0: Option<f64>) {
        if let Some(t0) = t0 {
            self.core.record_latency(precise_ms() - t0);
        }
    }

    pub(crate) fn timer_active(&self) -> bool {
        self.timer.is_some()
    }

    pub(crate) fn get(&mut self, key: &str) -> JsResult<JsValue> {
        let found = js(self.core.get(key, now_ms()))?;
        Ok(found.cloned().unwrap_or(JsValue::UNDEFINED))
    }

    pub(crate) fn snapshot(&mut self) -> StatsSnapshot {
        let timer = self.timer_active();
        self.core.snapshot(now_ms(), "memory", timer, false, None)
    }

    pub(crate) fn shutdown(&mut self) {
        self.timer = None;
        self.core.shutdown();
    }
}

/// The size to charge `value`, computed before the state is borrowed (it may run user code).
/// Zero when no byte bound is set: then nothing is serialized.
pub(crate) fn size_for(shared: &Shared, value: &JsValue) -> JsResult<u64> {
    check_value(value)?;
    let (needs, size_of) = {
        let s = shared
            .try_borrow()
            .map_err(|_| to_js(&Error::InvalidOptions("busy".into())))?;
        if s.core.is_shut_down() {
            return Err(to_js(&Error::ShutDown));
        }
        (s.core.needs_sizes(), s.size_of.clone())
    };
    if needs {
        value_size(value, size_of.as_ref())
    } else {
        Ok(0)
    }
}

/// Stores `value` under `key`.
pub(crate) fn set(shared: &Shared, key: &str, value: JsValue, ttl: Option<f64>) -> JsResult<()> {
    let size = size_for(shared, &value)?;
    with(shared, |s| js(s.core.set(key, value, size, ttl, now_ms())))
}

/// The request key of `namespace` and `data` (serialized before the state is borrowed).
pub(crate) fn request_key(shared: &Shared, namespace: &str, data: &JsValue) -> JsResult<String> {
    let text = data_json(data)?;
    let mut s = shared
        .try_borrow_mut()
        .map_err(|_| to_js(&Error::InvalidOptions("busy".into())))?;
    js(s.core.request_key(namespace, &text))
}

/// The request key of `(namespace, data)` and its cached value (`undefined` on a miss).
pub(crate) fn lookup(
    shared: &Shared,
    namespace: &str,
    data: &JsValue,
) -> JsResult<(String, JsValue)> {
    let key = request_key(shared, namespace, data)?;
    let hit = with(shared, |s| s.get(&key))?;
    Ok((key, hit))
}

/// Stores `value` under the request key of `(namespace, data)`; returns the key.
pub(crate) fn store(
    shared: &Shared,
    namespace: &str,
    data: &JsValue,
    value: JsValue,
    options: &JsValue,
) -> JsResult<String> {
    let ttl = super::value::set_options(options)?;
    let key = request_key(shared, namespace, data)?;
    set(shared, &key, value, ttl)?;
    Ok(key)
}

/// Wraps a generator failure as `GENERATOR_FAILED`, keeping the original as `cause`.
pub(crate) fn generator_failed(thrown: &JsValue) -> JsValue {
    let msg = format!("generator failed: {}", super::error::describe(thrown));
    super::error::with_cause(&Error::GeneratorFailed(msg), thrown)
}
