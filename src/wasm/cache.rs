//! `Cache`: the asynchronous cache. Memory alone, or Upstash in front with memory as fallback
//! and near cache. Every method returns a promise and never throws synchronously.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use super::args::{function_arg, generator_failed, key_arg, removal_arg, segment_arg};
use super::error::{js, to_js, JsResult};
use super::state::{self, State};
use super::value::{
    cache_options, cache_options_from_env, health_object, is_thenable, put, set_options,
    stats_object, Bag,
};
use crate::cache::{warm_plan, InFlight, Removal, WarmItem, WarmOutcome, WarmReport};
use crate::error::Error;

/// Default number of generators a warm run keeps going at once.
const WARM_CONCURRENCY: f64 = 4.0;

/// Calls a generator and awaits its result when it is a promise; failures become
/// `GENERATOR_FAILED` with the original as `cause`. Shutdown ends the wait with `SHUT_DOWN`.
async fn generate(state: &State, generator: &Function, arg: Option<&JsValue>) -> JsResult<JsValue> {
    let r = match arg {
        Some(a) => generator.call1(&JsValue::UNDEFINED, a),
        None => generator.call0(&JsValue::UNDEFINED),
    };
    let v = r.map_err(|e| generator_failed(&e))?;
    if is_thenable(&v) {
        js(state.until_stopped(&v).await)?.map_err(|e| generator_failed(&e))
    } else {
        Ok(v)
    }
}

/// A future resolving to a JS value, boxed so that the promise glue exists once in the module
/// rather than once per method (it is about 1.5 KB per instance).
type Op = Pin<Box<dyn Future<Output = JsResult<JsValue>>>>;

/// Runs `op` as far as it goes now: an operation that completes at once (every one on the memory
/// tier) gives a settled promise without a task; one that waits (a request to Upstash, an async
/// generator) goes on as a spawned task.
fn promise(op: impl Future<Output = JsResult<JsValue>> + 'static) -> Promise {
    let mut op: Op = Box::pin(op);
    match poll_now(&mut op) {
        Poll::Ready(Ok(v)) => Promise::resolve(&v),
        Poll::Ready(Err(e)) => Promise::reject(&e),
        Poll::Pending => future_to_promise(op),
    }
}

/// Polls `op` once, here and now: an operation on the memory tier is ready at once.
fn poll_now<T>(op: &mut Pin<Box<dyn Future<Output = T>>>) -> Poll<T> {
    op.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// An asynchronous cache: `await cache.get(key)`, single-flight `getOrSet`, warming, health.
#[wasm_bindgen]
pub struct Cache {
    state: Rc<State>,
    in_flight: Rc<RefCell<InFlight<Promise>>>,
}

impl Cache {
    /// Stores `value` under `key` (sized first: that may run user code).
    async fn store_value(
        state: Rc<State>,
        key: String,
        value: JsValue,
        ttl: Option<f64>,
    ) -> JsResult<()> {
        let size = state.size_for(&value)?;
        js(state.cache.set(&key, value, size, ttl).await)
    }
}

#[wasm_bindgen]
impl Cache {
    /// `new Cache(options?)`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "CacheOptions")] options: JsValue,
    ) -> JsResult<Cache> {
        let opts = cache_options(&options, "Cache options", true)?;
        Ok(Cache {
            state: state::create(opts)?,
            in_flight: Rc::default(),
        })
    }

    /// A cache whose shared tier is read from `env.UPSTASH_REDIS_REST_URL` and
    /// `env.UPSTASH_REDIS_REST_TOKEN` (a Workers `env`, or `process.env` when `env` is omitted).
    #[wasm_bindgen(js_name = fromEnv)]
    pub fn from_env(
        #[wasm_bindgen(unchecked_optional_param_type = "object")] env: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CacheOptions")] options: JsValue,
    ) -> JsResult<Cache> {
        let opts = cache_options_from_env(&env, &options)?;
        Ok(Cache {
            state: state::create(opts)?,
            in_flight: Rc::default(),
        })
    }

    /// The value under `key`, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "Promise<unknown>")]
    pub fn get(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let key = match key_arg(&key) {
            Ok(k) => k,
            Err(e) => return Promise::reject(&e),
        };
        let cache = self.state.cache.clone();
        promise(async move { Ok(js(cache.get(&key).await)?.unwrap_or(JsValue::UNDEFINED)) })
    }

    /// Stores `value` under `key`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        let args = key_arg(&key).and_then(|k| Ok((k, set_options(&options)?)));
        let (key, ttl) = match args {
            Ok(a) => a,
            Err(e) => return Promise::reject(&e),
        };
        let state = self.state.clone();
        promise(async move {
            Cache::store_value(state, key, value, ttl).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Whether `key` holds a value.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn has(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let key = match key_arg(&key) {
            Ok(k) => k,
            Err(e) => return Promise::reject(&e),
        };
        let cache = self.state.cache.clone();
        promise(async move { Ok(js(cache.contains(&key).await)?.into()) })
    }

    /// Deletes `key`; resolves true when a value was removed.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn delete(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let key = match key_arg(&key) {
            Ok(k) => k,
            Err(e) => return Promise::reject(&e),
        };
        let cache = self.state.cache.clone();
        promise(async move { Ok(js(cache.delete(&key).await)?.into()) })
    }

    /// The request key `"{version}:{namespace}:{md5}"` of `data` (synchronous).
    pub fn key(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> JsResult<String> {
        self.state
            .request_key(&segment_arg(&namespace, "namespace")?, &data)
    }

    /// `get(key(namespace, data))`.
    #[wasm_bindgen(unchecked_return_type = "Promise<unknown>")]
    pub fn lookup(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> Promise {
        match self.key(namespace, data) {
            Ok(key) => self.get(JsValue::from_str(&key)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// `set(key(namespace, data), value, options)`; resolves to the key.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn store(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        let args = set_options(&options).and_then(|ttl| Ok((self.key(namespace, data)?, ttl)));
        let (key, ttl) = match args {
            Ok(a) => a,
            Err(e) => return Promise::reject(&e),
        };
        let state = self.state.clone();
        promise(async move {
            Cache::store_value(state, key.clone(), value, ttl).await?;
            Ok(key.into())
        })
    }

    /// The cached value for `(namespace, data)`, or the awaited result of `generator()` stored
    /// under it. Concurrent calls for one key share one generator call; a failure reaches every
    /// waiter as `GENERATOR_FAILED` (original error as `cause`) and nothing is cached.
    #[wasm_bindgen(js_name = getOrSet, unchecked_return_type = "Promise<unknown>")]
    pub fn get_or_set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => unknown")] generator: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        let args = function_arg(&generator, "generator")
            .and_then(|g| Ok((g, set_options(&options)?, self.key(namespace, data)?)));
        let (generator, ttl, key) = match args {
            Ok(a) => a,
            Err(e) => return Promise::reject(&e),
        };
        if let Some(joined) = self.in_flight.borrow().get(&key) {
            return joined;
        }
        // The look-up runs at once: a hit the memory tier answers settles without a task.
        let (cache, k) = (self.state.cache.clone(), key.clone());
        let mut lookup: Pin<Box<dyn Future<Output = crate::Result<Option<JsValue>>>>> =
            Box::pin(async move { cache.get(&k).await });
        match poll_now(&mut lookup) {
            Poll::Ready(Ok(Some(hit))) => return Promise::resolve(&hit),
            Poll::Ready(Err(e)) => return Promise::reject(&to_js(&e)),
            Poll::Ready(Ok(None)) => lookup = Box::pin(async { Ok(None) }),
            Poll::Pending => {}
        }
        // A miss generates in a task (after the current synchronous run), so that every call for
        // the key until it settles joins this one, whatever the generator does.
        let (state, in_flight, k) = (self.state.clone(), self.in_flight.clone(), key.clone());
        let promise = future_to_promise(async move {
            let r = async {
                if let Some(hit) = js(lookup.await)? {
                    return Ok(hit);
                }
                let value = generate(&state, &generator, None).await?;
                Cache::store_value(state.clone(), k.clone(), value.clone(), ttl).await?;
                Ok(value)
            }
            .await;
            in_flight.borrow_mut().finish(&k);
            r
        });
        self.in_flight.borrow_mut().start(&key, promise.clone());
        promise
    }

    /// Deletes every key matching the Redis glob `pattern`; resolves to how many.
    #[wasm_bindgen(js_name = deletePattern, unchecked_return_type = "Promise<number>")]
    pub fn delete_pattern(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] pattern: JsValue,
    ) -> Promise {
        self.remove(Removal::Pattern, &pattern)
    }

    /// Deletes every request key of `namespace` under the current version.
    #[wasm_bindgen(js_name = invalidateNamespace, unchecked_return_type = "Promise<number>")]
    pub fn invalidate_namespace(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
    ) -> Promise {
        self.remove(Removal::Namespace, &namespace)
    }

    /// Deletes every key under `version`.
    #[wasm_bindgen(js_name = invalidateVersion, unchecked_return_type = "Promise<number>")]
    pub fn invalidate_version(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] version: JsValue,
    ) -> Promise {
        self.remove(Removal::Version, &version)
    }

    /// Switches to `version` and removes the old version's keys; resolves to how many went.
    #[wasm_bindgen(js_name = updateVersion, unchecked_return_type = "Promise<number>")]
    pub fn update_version(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] version: JsValue,
    ) -> Promise {
        self.remove(Removal::SwitchVersion, &version)
    }

    /// Removes every entry of the memory tier (the shared tier is left alone: use
    /// `invalidateVersion` or `deletePattern` there).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn clear(&self) -> Promise {
        let cache = self.state.cache.clone();
        promise(async move { js(cache.clear()).map(|()| JsValue::UNDEFINED) })
    }

    /// The current version prefix.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> String {
        self.state.cache.version()
    }

    /// Statistics as a plain object (still readable after `shutdown()`).
    #[wasm_bindgen(unchecked_return_type = "Promise<CacheStats>")]
    pub fn stats(&self) -> Promise {
        let (cache, timer) = (self.state.cache.clone(), self.state.timer_active());
        promise(async move { Ok(stats_object(&cache.snapshot(timer).await).into()) })
    }

    /// `{ status, backend, latencyMs, error? }`: `"healthy"` while the cache serves normally,
    /// `"degraded"` while memory serves for an unreachable Upstash, `"unhealthy"` when nothing
    /// serves (or after `shutdown()`).
    #[wasm_bindgen(unchecked_return_type = "Promise<HealthReport>")]
    pub fn health(&self) -> Promise {
        let cache = self.state.cache.clone();
        promise(async move { Ok(health_object(&cache.health().await).into()) })
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

    /// Stops the cleanup timer and drops the memory tier; later operations reject with
    /// `SHUT_DOWN` (`stats()`, `health()` and `version` stay readable). Calling it again does
    /// nothing.
    pub fn shutdown(&self) {
        self.state.shutdown();
    }
}

impl Cache {
    /// Runs one [`Removal`]; resolves to how many keys went.
    fn remove(&self, kind: Removal, arg: &JsValue) -> Promise {
        let arg = match removal_arg(kind, arg) {
            Ok(a) => a,
            Err(e) => return Promise::reject(&e),
        };
        let cache = self.state.cache.clone();
        promise(async move { Ok((js(cache.remove_by(kind, &arg).await)? as f64).into()) })
    }
}

/// What every warm worker shares.
struct WarmRun {
    state: Rc<State>,
    /// The cache's generations under way, shared with `getOrSet`: one generator per key.
    in_flight: Rc<RefCell<InFlight<Promise>>>,
    plan: Vec<WarmItem>,
    present: Vec<bool>,
    namespaces: Vec<String>,
    generators: Vec<Function>,
    topics: Vec<String>,
    next: Cell<usize>,
    report: RefCell<WarmReport>,
    errors: Array,
    on_progress: Option<Function>,
}

impl Cache {
    fn start_warm(&self, generators: &JsValue, options: &JsValue) -> JsResult<Promise> {
        js(self.state.cache.check_open())?;
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
            let f = function_arg(&Reflect::get(gens, &name)?, "every warm generator")?;
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
            None => self.state.popular_topics.clone(),
        };
        let cache = &self.state.cache;
        let plan = js(warm_plan(&namespaces, &topics, |ns, json| {
            cache.request_key(ns, json)
        }))?;
        let state = self.state.clone();
        let in_flight = self.in_flight.clone();
        // Generators and progress callbacks run in tasks, never inside the `warm()` call.
        Ok(future_to_promise(async move {
            let keys: Vec<String> = plan.iter().map(|i| i.key.clone()).collect();
            // Presence, not truthiness: a cached "" or 0 is skipped. Not counted as hits.
            let present = js(state.cache.present(&keys).await)?;
            let workers = concurrency.min(plan.len());
            let run = Rc::new(WarmRun {
                state,
                in_flight,
                plan,
                present,
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
        let joined = run.in_flight.borrow().get(&item.key);
        let outcome = if run.present.get(i).copied().unwrap_or(false) {
            WarmOutcome::Skipped
        } else if let Some(flight) = joined {
            // A getOrSet (or another warm) is generating this key: wait for it, generate nothing.
            match JsFuture::from(flight).await {
                Ok(_) => WarmOutcome::Skipped,
                Err(e) => {
                    error = Some(e);
                    WarmOutcome::Failed
                }
            }
        } else {
            // Registered as the key's generation, so that a getOrSet meanwhile joins it.
            let (state, in_flight, key) =
                (run.state.clone(), run.in_flight.clone(), item.key.clone());
            let generator = run.generators[item.namespace].clone();
            let arg = topic.clone();
            let flight = future_to_promise(async move {
                let r = async {
                    let value = generate(&state, &generator, Some(&arg)).await?;
                    Cache::store_value(state.clone(), key.clone(), value.clone(), None).await?;
                    Ok(value)
                }
                .await;
                in_flight.borrow_mut().finish(&key);
                r
            });
            run.in_flight.borrow_mut().start(&item.key, flight.clone());
            match JsFuture::from(flight).await {
                Ok(_) => WarmOutcome::Warmed,
                Err(e) => {
                    error = Some(e);
                    WarmOutcome::Failed
                }
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
            // A throwing progress callback must not stop the run; its error is ignored.
            let _ = cb.call1(&JsValue::UNDEFINED, &event);
        }
    }
    Ok(JsValue::UNDEFINED)
}
