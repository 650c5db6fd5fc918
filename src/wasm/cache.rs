//! `Cache`: the asynchronous cache. In this version it is the memory tier behind an async API;
//! every method returns a promise and never throws synchronously.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use super::error::{js, to_js, JsResult};
use super::state::{self, generator_failed, with, Shared};
use super::value::{cache_options, is_thenable, put, set_options, stats_object, Bag};
use crate::cache::{warm_plan, InFlight, WarmItem, WarmOutcome, WarmReport};
use crate::error::Error;
use crate::platform::{now_ms, precise_ms};

/// Every operation of `Cache` is timed.
const SAMPLE_EVERY: u32 = 1;

/// Default number of generators a warm run keeps going at once.
const WARM_CONCURRENCY: f64 = 4.0;

fn settle<T: Into<JsValue>>(r: JsResult<T>) -> Promise {
    match r {
        Ok(v) => Promise::resolve(&v.into()),
        Err(e) => Promise::reject(&e),
    }
}

/// Calls a generator and awaits its result when it is a promise; failures become
/// `GENERATOR_FAILED` with the original as `cause`.
async fn generate(generator: &Function, arg: Option<&JsValue>) -> JsResult<JsValue> {
    let r = match arg {
        Some(a) => generator.call1(&JsValue::UNDEFINED, a),
        None => generator.call0(&JsValue::UNDEFINED),
    };
    let v = r.map_err(|e| generator_failed(&e))?;
    if is_thenable(&v) {
        JsFuture::from(Promise::resolve(&v))
            .await
            .map_err(|e| generator_failed(&e))
    } else {
        Ok(v)
    }
}

/// An asynchronous cache: `await cache.get(key)`, single-flight `getOrSet`, warming, health.
#[wasm_bindgen]
pub struct Cache {
    state: Shared,
    in_flight: Rc<RefCell<InFlight<Promise>>>,
}

#[wasm_bindgen]
impl Cache {
    /// `new Cache(options?)`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "CacheOptions")] options: JsValue,
    ) -> JsResult<Cache> {
        let opts = cache_options(&options, "Cache options")?;
        Ok(Cache {
            state: state::create(opts, SAMPLE_EVERY)?,
            in_flight: Rc::default(),
        })
    }

    /// The value under `key`, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "Promise<unknown>")]
    pub fn get(&self, key: &str) -> Promise {
        settle(with(&self.state, |s| s.get(key)))
    }

    /// Stores `value` under `key`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn set(
        &self,
        key: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        settle(
            set_options(&options)
                .and_then(|ttl| state::set(&self.state, key, value, ttl))
                .map(|()| JsValue::UNDEFINED),
        )
    }

    /// Whether `key` holds a live entry.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn has(&self, key: &str) -> Promise {
        settle(with(&self.state, |s| js(s.core.contains(key, now_ms()))))
    }

    /// Deletes `key`; resolves true when a live entry was removed.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn delete(&self, key: &str) -> Promise {
        settle(with(&self.state, |s| js(s.core.delete(key, now_ms()))))
    }

    /// The request key `"{version}:{namespace}:{md5}"` of `data` (synchronous).
    pub fn key(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> JsResult<String> {
        state::request_key(&self.state, namespace, &data)
    }

    /// `get(key(namespace, data))`.
    #[wasm_bindgen(unchecked_return_type = "Promise<unknown>")]
    pub fn lookup(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> Promise {
        settle(state::lookup(&self.state, namespace, &data).map(|(_, hit)| hit))
    }

    /// `set(key(namespace, data), value, options)`; resolves to the key.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn store(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        settle(state::store(&self.state, namespace, &data, value, &options))
    }

    /// The cached value for `(namespace, data)`, or the awaited result of `generator()` stored
    /// under it. Concurrent calls for one key share one generator call; a failure reaches every
    /// waiter as `GENERATOR_FAILED` (original error as `cause`) and nothing is cached.
    #[wasm_bindgen(js_name = getOrSet, unchecked_return_type = "Promise<unknown>")]
    pub fn get_or_set(
        &self,
        namespace: &str,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => unknown")] generator: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        let prepared = set_options(&options)
            .and_then(|ttl| Ok((ttl, state::lookup(&self.state, namespace, &data)?)));
        let (ttl, (key, hit)) = match prepared {
            Ok(p) => p,
            Err(e) => return Promise::reject(&e),
        };
        if !hit.is_undefined() {
            return Promise::resolve(&hit);
        }
        if let Some(shared) = self.in_flight.borrow().get(&key) {
            return shared;
        }
        let (state, in_flight, k) = (self.state.clone(), self.in_flight.clone(), key.clone());
        let promise = future_to_promise(async move {
            let generated = generate(&generator, None).await;
            in_flight.borrow_mut().finish(&k);
            let value = generated?;
            state::set(&state, &k, value.clone(), ttl)?;
            Ok(value)
        });
        self.in_flight.borrow_mut().start(&key, promise.clone());
        promise
    }

    /// Deletes every key matching the Redis glob `pattern`; resolves to how many.
    #[wasm_bindgen(js_name = deletePattern, unchecked_return_type = "Promise<number>")]
    pub fn delete_pattern(&self, pattern: &str) -> Promise {
        settle(with(&self.state, |s| {
            js(s.core.delete_pattern(pattern, now_ms())).map(|n| n as u32)
        }))
    }

    /// Deletes every request key of `namespace` under the current version.
    #[wasm_bindgen(js_name = invalidateNamespace, unchecked_return_type = "Promise<number>")]
    pub fn invalidate_namespace(&self, namespace: &str) -> Promise {
        settle(with(&self.state, |s| {
            js(s.core.invalidate_namespace(namespace, now_ms())).map(|n| n as u32)
        }))
    }

    /// Deletes every key under `version`.
    #[wasm_bindgen(js_name = invalidateVersion, unchecked_return_type = "Promise<number>")]
    pub fn invalidate_version(&self, version: &str) -> Promise {
        settle(with(&self.state, |s| {
            js(s.core.invalidate_version(version, now_ms())).map(|n| n as u32)
        }))
    }

    /// Invalidates the current version and switches to `version`.
    #[wasm_bindgen(js_name = updateVersion, unchecked_return_type = "Promise<number>")]
    pub fn update_version(&self, version: &str) -> Promise {
        settle(with(&self.state, |s| {
            js(s.core.update_version(version, now_ms())).map(|n| n as u32)
        }))
    }

    /// Removes every entry.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn clear(&self) -> Promise {
        settle(with(&self.state, |s| {
            js(s.core.clear()).map(|_| JsValue::UNDEFINED)
        }))
    }

    /// The current version prefix.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> JsResult<String> {
        with(&self.state, |s| Ok(s.core.version().to_owned()))
    }

    /// Statistics as a plain object.
    #[wasm_bindgen(unchecked_return_type = "Promise<CacheStats>")]
    pub fn stats(&self) -> Promise {
        settle(with(&self.state, |s| Ok(stats_object(&s.snapshot()))))
    }

    /// `{ status, backend, latencyMs, error? }`: `"healthy"` while the cache serves,
    /// `"unhealthy"` after `shutdown()`.
    #[wasm_bindgen(unchecked_return_type = "Promise<HealthReport>")]
    pub fn health(&self) -> Promise {
        settle(Ok(self.health_report()))
    }

    /// Generates and stores every `(namespace, topic)` pair not already cached:
    /// `generators` maps a namespace to `topic => value | Promise<value>`; the request data is
    /// `{ topic }`. Resolves to `{ warmed, skipped, failed, errors }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<WarmResult>")]
    pub fn warm(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, (topic: string) => unknown>")]
        generators: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "WarmOptions")] options: JsValue,
    ) -> Promise {
        match self.start_warm(&generators, &options) {
            Ok(p) => p,
            Err(e) => Promise::reject(&e),
        }
    }

    /// Stops the cleanup timer and drops every entry; later calls reject with `SHUT_DOWN`.
    /// Calling it again does nothing.
    pub fn shutdown(&self) -> JsResult<()> {
        with(&self.state, |s| {
            s.shutdown();
            Ok(())
        })
    }
}

/// What every warm worker shares.
struct WarmRun {
    state: Shared,
    plan: Vec<WarmItem>,
    namespaces: Vec<String>,
    generators: Vec<Function>,
    topics: Vec<String>,
    next: Cell<usize>,
    report: RefCell<WarmReport>,
    errors: Array,
    on_progress: Option<Function>,
}

impl Cache {
    fn health_report(&self) -> Object {
        let t0 = precise_ms();
        let probe = self
            .state
            .try_borrow_mut()
            .map(|mut s| s.core.contains("", now_ms()));
        let latency = precise_ms() - t0;
        let report = Object::new();
        put(&report, "backend", "memory");
        put(&report, "latencyMs", latency);
        match probe {
            Ok(Ok(_)) => put(&report, "status", "healthy"),
            Ok(Err(e)) => {
                put(&report, "status", "unhealthy");
                put(&report, "error", e.to_string());
            }
            Err(_) => put(&report, "status", "healthy"),
        }
        report
    }

    fn start_warm(&self, generators: &JsValue, options: &JsValue) -> JsResult<Promise> {
        let bad = |m: &str| to_js(&Error::InvalidOptions(m.to_owned()));
        let gens = generators
            .dyn_ref::<Object>()
            .filter(|_| !generators.is_function() && !Array::is_array(generators))
            .ok_or_else(|| {
                bad("warm: generators must be an object mapping namespaces to functions")
            })?;
        let mut namespaces = Vec::new();
        let mut functions = Vec::new();
        for name in Object::keys(gens).iter() {
            let f = Reflect::get(gens, &name)?
                .dyn_into::<Function>()
                .map_err(|_| bad("warm: every generator must be a function"))?;
            namespaces.push(name.as_string().unwrap_or_default());
            functions.push(f);
        }
        let bag = Bag::new(
            options,
            "warm options",
            &["topics", "concurrency", "onProgress"],
        )?;
        let concurrency = bag
            .integer("concurrency", 1.0, 64.0)?
            .unwrap_or(WARM_CONCURRENCY) as usize;
        let on_progress = bag.function("onProgress")?;
        let topics = match bag.strings("topics")? {
            Some(t) => t,
            None => with(&self.state, |s| Ok(s.popular_topics.clone()))?,
        };
        let plan = with(&self.state, |s| {
            js(warm_plan(&mut s.core, &namespaces, &topics))
        })?;
        let workers = concurrency.min(plan.len());
        let run = Rc::new(WarmRun {
            state: self.state.clone(),
            plan,
            namespaces,
            generators: functions,
            topics,
            next: Cell::new(0),
            report: RefCell::default(),
            errors: Array::new(),
            on_progress,
        });
        let all = Array::new();
        for _ in 0..workers {
            all.push(&future_to_promise(warm_worker(run.clone())));
        }
        Ok(future_to_promise(async move {
            JsFuture::from(Promise::all(&all)).await?;
            let r = *run.report.borrow();
            let out = Object::new();
            put(&out, "warmed", r.warmed);
            put(&out, "skipped", r.skipped);
            put(&out, "failed", r.failed);
            put(&out, "errors", run.errors.clone());
            Ok(out.into())
        }))
    }
}

async fn warm_worker(run: Rc<WarmRun>) -> JsResult<JsValue> {
    loop {
        let i = run.next.get();
        let Some(item) = run.plan.get(i) else { break };
        run.next.set(i + 1);
        let topic = JsValue::from_str(&run.topics[item.topic]);
        let mut error = None;
        let present = with(&run.state, |s| js(s.core.contains(&item.key, now_ms())));
        let outcome = match present {
            Ok(true) => WarmOutcome::Skipped,
            Ok(false) => {
                let generated = generate(&run.generators[item.namespace], Some(&topic)).await;
                match generated.and_then(|v| state::set(&run.state, &item.key, v, None)) {
                    Ok(()) => WarmOutcome::Warmed,
                    Err(e) => {
                        error = Some(e);
                        WarmOutcome::Failed
                    }
                }
            }
            Err(e) => {
                error = Some(e);
                WarmOutcome::Failed
            }
        };
        let done = {
            let mut report = run.report.borrow_mut();
            report.add(outcome);
            report.done()
        };
        if let Some(e) = &error {
            let entry = Object::new();
            put(&entry, "namespace", run.namespaces[item.namespace].as_str());
            put(&entry, "topic", topic.clone());
            put(&entry, "error", e.clone());
            run.errors.push(&entry);
        }
        if let Some(cb) = &run.on_progress {
            let event = Object::new();
            put(&event, "done", done);
            put(&event, "total", run.plan.len() as u32);
            put(&event, "namespace", run.namespaces[item.namespace].as_str());
            put(&event, "topic", topic);
            put(&event, "outcome", outcome.as_str());
            if let Some(e) = error {
                put(&event, "error", e);
            }
            // A throwing progress callback must not stop the run.
            let _ = cb.call1(&JsValue::UNDEFINED, &event);
        }
    }
    Ok(JsValue::UNDEFINED)
}
