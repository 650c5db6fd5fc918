//! The state behind `Cache`: the [`TieredCache`] holding JS values, the optional `sizeOf` and
//! the cleanup timer. (`MemoryCache` keeps its keys and values in JavaScript and has its own
//! wasm half, `memory_slots.rs`.)
//!
//! Re-entrancy: user code (generators, `sizeOf`, `toJSON`) may call back into the same cache; it
//! runs only outside the cache's borrows (serialization and sizing happen before a call reaches
//! the memory tier).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::error::{js, JsResult};
use super::value::{check_value, data_json, value_size, JsOptions};
use crate::cache::{Codec, TieredCache};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::platform::{cleanup_timer, Deadline, FetchTransport, Interval, JsClock};

/// How `Cache` turns values into text and back: `JSON.stringify` / `JSON.parse`, or the
/// `serializer` option's functions. Text that is not JSON (written by another client) decodes to
/// the string it is.
pub(crate) struct JsCodec {
    serializer: Option<(Function, Function)>,
}

impl Codec<JsValue> for JsCodec {
    fn encode(&self, value: &JsValue) -> Result<String> {
        let unserializable = |e: &JsValue| Error::Unserializable(super::error::describe(e));
        match &self.serializer {
            None => data_json(value).map_err(|e| unserializable(&e)),
            Some((serialize, _)) => {
                let text = serialize
                    .call1(&JsValue::UNDEFINED, value)
                    .map_err(|e| unserializable(&e))?;
                text.as_string().ok_or_else(|| {
                    Error::Unserializable("serializer.serialize must return a string".to_owned())
                })
            }
        }
    }

    fn decode(&self, text: &str) -> Result<JsValue> {
        match &self.serializer {
            None => Ok(js_sys::JSON::parse(text).unwrap_or_else(|_| JsValue::from_str(text))),
            Some((_, deserialize)) => deserialize
                .call1(&JsValue::UNDEFINED, &JsValue::from_str(text))
                .map_err(|e| Error::Unserializable(super::error::describe(&e))),
        }
    }
}

/// The cache `Cache` is a face on.
pub(crate) type Tiered = TieredCache<JsValue, FetchTransport, JsCodec>;

pub(crate) struct State {
    pub(crate) cache: Rc<Tiered>,
    size_of: Option<Function>,
    timer: RefCell<Option<Interval>>,
    pub(crate) popular_topics: Vec<String>,
    stops: Stops,
    /// The constructor's options: the defaults of per-call options.
    pub(crate) defaults: Options,
    pub(crate) wait_until: Option<Function>,
    on_remove: Option<Function>,
}

/// The waits on generators' promises, each raced against a promise of its own that shutdown
/// resolves to `token`, so that shutdown releases whoever waits on a generator that never
/// settles. Each wait's stop is forgotten when the wait ends: nothing accumulates on a
/// long-lived promise. (Stops resolve rather than reject: nothing is left unhandled.) A `Vec`
/// rather than a hash map: few generations run at once, and a map costs the module 3 KB gzip.
#[derive(Default)]
struct Stops {
    pending: RefCell<Vec<(u64, Function)>>,
    next: Cell<u64>,
    token: Object,
}

/// Builds the state and starts the cleanup timer where the runtime allows one.
pub(crate) fn create(opts: JsOptions) -> JsResult<Rc<State>> {
    let mut cache = js(TieredCache::new(
        &opts.core,
        FetchTransport,
        JsCodec {
            serializer: opts.serializer,
        },
        Rc::new(JsClock),
    ))?;
    if opts.on_remove.is_some() {
        cache.record_removals();
    }
    let cache = Rc::new(cache);
    let on_remove = opts.on_remove.clone();
    let timer = cleanup_timer(
        &cache,
        opts.core.cleanup_interval,
        move |c: &Tiered, now| {
            c.sweep(now);
            report_removals(c, on_remove.as_ref());
        },
    );
    let mut defaults = opts.core;
    let popular_topics = std::mem::take(&mut defaults.popular_topics);
    Ok(Rc::new(State {
        cache,
        size_of: opts.size_of,
        timer: RefCell::new(timer),
        popular_topics,
        stops: Stops::default(),
        defaults,
        wait_until: opts.wait_until,
        on_remove: opts.on_remove,
    }))
}

/// Calls `onRemove(key, value, cause)` for each removal recorded since the last report; what
/// it throws is counted in `errors` (the cache is consistent by then, and a removal cannot be
/// undone).
fn report_removals(cache: &Tiered, on_remove: Option<&Function>) {
    let Some(f) = on_remove else { return };
    for (key, value, cause) in cache.take_removals() {
        let args = Array::of3(&key.into(), &value, &cause.as_str().into());
        if let Err(thrown) = f.apply(&JsValue::UNDEFINED, &args) {
            // Counted, and reported where the runtime can (`reportError`); the operation goes on.
            cache.count_error();
            let report = js_sys::Reflect::get(&js_sys::global(), &"reportError".into());
            if let Some(report) = report.ok().and_then(|r| r.dyn_into::<Function>().ok()) {
                let _ = report.call1(&JsValue::UNDEFINED, &thrown);
            }
        }
    }
}

impl State {
    pub(crate) fn timer_active(&self) -> bool {
        self.timer.borrow().is_some()
    }

    /// Reports the removals recorded since the last report to `onRemove`.
    pub(crate) fn report_removals(&self) {
        report_removals(&self.cache, self.on_remove.as_ref());
    }

    /// What a value is stored as: its text through the codec, the value that text reads back
    /// as (what every tier then returns), and the size to charge (`sizeOf` of that value, or
    /// the text's length, when a byte bound is set; else 0). Runs user code, so it is called
    /// before the cache is.
    pub(crate) fn prepare(&self, value: &JsValue) -> JsResult<(JsValue, String, u64)> {
        check_value(value)?;
        js(self.cache.check_open())?;
        let text = js(self.cache.encode(value))?;
        let copy = js(self.cache.decode(&text))?;
        let size = match (&self.size_of, self.cache.needs_sizes()) {
            (_, false) => 0,
            (Some(f), true) => value_size(&copy, Some(f))?,
            (None, true) => text.len() as u64,
        };
        Ok((copy, text, size))
    }

    /// The request key of `namespace` and `data` (serialized before the cache is called).
    pub(crate) fn request_key(&self, namespace: &str, data: &JsValue) -> JsResult<String> {
        let text = data_json(data)?;
        js(self.cache.request_key(namespace, &text))
    }

    /// Stops the timer; later operations fail with `SHUT_DOWN`, and so do the waits on
    /// generators still running.
    pub(crate) fn shutdown(&self) {
        self.timer.borrow_mut().take();
        self.cache.shutdown();
        let stops: Vec<Function> = self
            .stops
            .pending
            .borrow_mut()
            .drain(..)
            .map(|(_, f)| f)
            .collect();
        for stop in stops {
            let _ = stop.call1(&JsValue::UNDEFINED, &self.stops.token);
        }
    }

    /// What `pending` (a generator's promise) comes to, unless the cache shuts down first (or
    /// has): then `SHUT_DOWN`; or unless `timeout_ms` (0: none) passes first: then `TIMEOUT`.
    /// Whatever `pending` comes to afterwards is ignored.
    pub(crate) async fn until_stopped(
        &self,
        pending: &JsValue,
        timeout_ms: u64,
    ) -> Result<JsResult<JsValue>> {
        self.cache.check_open()?;
        let mut resolve = None;
        let stop = Promise::new(&mut |res, _rej| resolve = Some(res));
        let id = self.stops.next.get();
        self.stops.next.set(id.wrapping_add(1));
        if let Some(resolve) = resolve {
            self.stops.pending.borrow_mut().push((id, resolve));
        }
        let racers = Array::of2(&Promise::resolve(pending), &stop);
        let late = Object::new();
        let deadline = (timeout_ms > 0)
            .then(|| Deadline::start(timeout_ms as f64, &late))
            .flatten();
        if let Some(d) = &deadline {
            racers.push(&d.promise);
        }
        let settled = JsFuture::from(Promise::race(&racers)).await;
        drop(deadline);
        let mut pending = self.stops.pending.borrow_mut();
        if let Some(i) = pending.iter().position(|(p, _)| *p == id) {
            pending.swap_remove(i);
        }
        drop(pending);
        match settled {
            Ok(v) if v == JsValue::from(&self.stops.token) => Err(Error::ShutDown),
            Ok(v) if v == JsValue::from(&late) => Err(Error::Timeout(format!(
                "the generator did not settle within {timeout_ms} ms"
            ))),
            settled => Ok(settled),
        }
    }
}
