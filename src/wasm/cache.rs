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

use super::args::{function_arg, key_arg, removal_arg, segment_arg};
use super::error::{js, to_js, JsResult};
use super::generation::{self, Arg, Flights, Job};
use super::state::{self, State};
use super::value::{
    cache_options, cache_options_from_env, call_options, health_object, put, stats_object, Bag,
    GET_OR_SET_OPTIONS, SET_OPTIONS,
};
use crate::cache::{warm_plan, Removal, WarmItem, WarmOutcome, WarmReport};
use crate::clock::NEVER_MS;
use crate::error::Error;

/// Default number of generators a warm run keeps going at once.
const WARM_CONCURRENCY: f64 = 4.0;

/// A future resolving to a JS value, boxed so that the promise glue exists once in the module
/// rather than once per method (it is about 1.5 KB per instance).
pub(crate) type Op = Pin<Box<dyn Future<Output = JsResult<JsValue>>>>;

/// Runs `op` as a task; its promise settles with what it comes to. Every task of the module goes
/// through here, so that the glue of `future_to_promise` exists once (about 6 KB a copy).
pub(crate) fn task(op: Op) -> Promise {
    future_to_promise(op)
}

/// Runs `op` as far as it goes now: an operation that completes at once (every one on the memory
/// tier) gives a settled promise without a task; one that waits (a request to Upstash, an async
/// generator) goes on as a spawned task.
fn promise(op: impl Future<Output = JsResult<JsValue>> + 'static) -> Promise {
    let mut op: Op = Box::pin(op);
    match poll_now(&mut op) {
        Poll::Ready(Ok(v)) => Promise::resolve(&v),
        Poll::Ready(Err(e)) => Promise::reject(&e),
        Poll::Pending => task(op),
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
    in_flight: Flights,
}

impl Cache {
    /// Stores `value` under `key` with per-call `options` (`set`/`store`); the value is put
    /// through the codec first (that may run user code).
    fn store_value(&self, key: String, value: JsValue, options: &JsValue) -> JsResult<Op> {
        let call = call_options(options, SET_OPTIONS, &self.state.defaults, None)?;
        let state = self.state.clone();
        Ok(Box::pin(async move {
            let (copy, text, size) = state.prepare(&value)?;
            js(state
                .cache
                .store_text(&key, copy, Some(&text), size, &call.policy)
                .await)?;
            Ok(key.into())
        }))
    }

    /// [`promise`], reporting the removals the operation made to `onRemove` when it ends.
    /// (Boxed before: one instance of this wrapper, not one per operation.)
    fn run(&self, op: Op) -> Promise {
        let state = self.state.clone();
        promise(async move {
            let r = op.await;
            state.report_removals();
            r
        })
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
        self.run(Box::pin(async move {
            Ok(js(cache.get(&key).await)?.unwrap_or(JsValue::UNDEFINED))
        }))
    }

    /// Stores `value` under `key`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        match key_arg(&key).and_then(|k| self.store_value(k, value, &options)) {
            Ok(op) => self.run(Box::pin(
                async move { op.await.map(|_| JsValue::UNDEFINED) },
            )),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Whether `key` holds a value.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn has(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let key = match key_arg(&key) {
            Ok(k) => k,
            Err(e) => return Promise::reject(&e),
        };
        let cache = self.state.cache.clone();
        self.run(Box::pin(async move {
            Ok(js(cache.contains(&key).await)?.into())
        }))
    }

    /// Deletes `key`; resolves true when a value was removed.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn delete(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let key = match key_arg(&key) {
            Ok(k) => k,
            Err(e) => return Promise::reject(&e),
        };
        let cache = self.state.cache.clone();
        self.run(Box::pin(
            async move { Ok(js(cache.delete(&key).await)?.into()) },
        ))
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
        match self
            .key(namespace, data)
            .and_then(|k| self.store_value(k, value, &options))
        {
            Ok(op) => self.run(op),
            Err(e) => Promise::reject(&e),
        }
    }

    /// The cached value for `(namespace, data)`, or the awaited result of `generator(ctx)`
    /// stored under it (`ctx`: `{ key, signal, stale, skip(), ttl(d) }`). Concurrent calls for
    /// one key share one generator call; a failure reaches every waiter as `GENERATOR_FAILED`
    /// (original error as `cause`) and nothing is cached. `options`: `ttl`, `grace`,
    /// `staleWhileRevalidate`, `staleIfError`, `timeout`, `signal`, `waitUntil`.
    #[wasm_bindgen(js_name = getOrSet, unchecked_return_type = "Promise<unknown>")]
    pub fn get_or_set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(ctx: GeneratorContext) => unknown")]
        generator: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "GetOrSetOptions")] options: JsValue,
    ) -> Promise {
        self.entry(namespace, data, generator, options, false)
    }

    /// `getOrSet`, resolving to `{ value, status, key, age }`: `status` is `"hit"`, `"miss"`,
    /// `"joined"`, `"stale"` or `"stale-error"`, `age` the seconds since the value was stored.
    #[wasm_bindgen(js_name = getOrSetEntry, unchecked_return_type = "Promise<CacheEntry>")]
    pub fn get_or_set_entry(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(ctx: GeneratorContext) => unknown")]
        generator: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "GetOrSetOptions")] options: JsValue,
    ) -> Promise {
        self.entry(namespace, data, generator, options, true)
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
        self.run(Box::pin(async move {
            js(cache.clear()).map(|()| JsValue::UNDEFINED)
        }))
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

    /// Counts a failure the cache absorbed in `stats().errors` (for the package's JavaScript:
    /// a stream too large to keep).
    #[wasm_bindgen(js_name = __countError, skip_typescript)]
    pub fn count_error(&self) {
        self.state.cache.count_error();
    }

    // The hooks of the browser entries' persistent tier (`pkg-template/persist.js`).

    /// What memory holds for `key`: `{ text, storedAt, freshUntil, keepUntil }` (the codec's
    /// text, epoch milliseconds; `Infinity`: never), or `undefined`.
    #[wasm_bindgen(js_name = __persistEntry, skip_typescript)]
    pub fn persist_entry(&self, key: &str) -> JsValue {
        let Some((text, stored, fresh, kept)) = self.state.cache.held_text(key) else {
            return JsValue::UNDEFINED;
        };
        let time = |ms: u64| {
            if ms == NEVER_MS {
                f64::INFINITY
            } else {
                ms as f64
            }
        };
        let o = Object::new();
        put(&o, "text", text);
        put(&o, "storedAt", stored as f64);
        put(&o, "freshUntil", time(fresh));
        put(&o, "keepUntil", time(kept));
        o.into()
    }

    /// Holds a persisted value in memory with its times (as `__persistEntry` gave them).
    #[wasm_bindgen(js_name = __persistHold, skip_typescript)]
    pub fn persist_hold(
        &self,
        key: &str,
        text: &str,
        stored_at: f64,
        fresh_until: f64,
        keep_until: f64,
    ) -> bool {
        let ms = |t: f64| {
            if t.is_finite() && t >= 0.0 {
                t as u64
            } else {
                NEVER_MS
            }
        };
        let held =
            self.state
                .cache
                .hold_text(key, text, ms(stored_at), ms(fresh_until), ms(keep_until));
        self.state.report_removals();
        held
    }

    /// Reads Upstash answered with a fresh value so far (`stats().sharedHits`, synchronously).
    #[wasm_bindgen(js_name = __persistSharedHits, skip_typescript)]
    pub fn persist_shared_hits(&self) -> f64 {
        self.state.cache.shared_hits() as f64
    }

    /// Drops `key` from memory alone (another tab replaced or removed it).
    #[wasm_bindgen(js_name = __persistForgetKey, skip_typescript)]
    pub fn persist_forget_key(&self, key: &str) {
        self.state.cache.forget(key);
        self.state.report_removals();
    }

    /// Drops the keys matching a Redis glob from memory alone.
    #[wasm_bindgen(js_name = __persistForgetPattern, skip_typescript)]
    pub fn persist_forget_pattern(&self, pattern: &str) -> JsResult<u32> {
        let n = js(self.state.cache.forget_matching(pattern))?;
        self.state.report_removals();
        Ok(n as u32)
    }

    /// The glob pattern a removal (`0` pattern, `1` namespace, `2` version, `3` version
    /// switch) of `arg` removes; throws for a bad `arg`, as the removal would.
    #[wasm_bindgen(js_name = __persistPattern, skip_typescript)]
    pub fn persist_pattern(&self, kind: u32, arg: JsValue) -> JsResult<String> {
        let kind = match kind {
            0 => Removal::Pattern,
            1 => Removal::Namespace,
            2 => Removal::Version,
            _ => Removal::SwitchVersion,
        };
        let arg = removal_arg(kind, &arg)?;
        js(self.state.cache.removal_pattern(kind, &arg))
    }

    /// Which of `keys` the Redis glob `pattern` matches (the matcher of every tier).
    #[wasm_bindgen(js_name = __persistMatches, skip_typescript)]
    pub fn persist_matches(&self, pattern: &str, keys: Vec<String>) -> Vec<u8> {
        keys.iter()
            .map(|k| u8::from(crate::glob::matches(pattern.as_bytes(), k.as_bytes())))
            .collect()
    }

    /// Stops the cleanup timer and drops the memory tier; later operations reject with
    /// `SHUT_DOWN` (`stats()`, `health()` and `version` stay readable). Calling it again does
    /// nothing.
    pub fn shutdown(&self) {
        self.state.shutdown();
    }
}

impl Cache {
    /// `getOrSet` (`whole`: false, the value) and `getOrSetEntry` (`whole`: true, the entry).
    /// A hit the memory tier answers settles without a task; a generation runs in a task, so
    /// that every call for the key until it settles joins it, whatever the generator does.
    fn entry(
        &self,
        namespace: JsValue,
        data: JsValue,
        generator: JsValue,
        options: JsValue,
        whole: bool,
    ) -> Promise {
        let args = function_arg(&generator, "generator").and_then(|g| {
            let call = call_options(
                &options,
                GET_OR_SET_OPTIONS,
                &self.state.defaults,
                self.state.wait_until.as_ref(),
            )?;
            Ok((g, call, self.key(namespace, data)?))
        });
        let (generator, call, key) = match args {
            Ok(a) => a,
            Err(e) => return Promise::reject(&e),
        };
        let (state, flights) = (self.state.clone(), self.in_flight.clone());
        self.run(Box::pin(async move {
            let entry =
                generation::get_or_set(state, flights, key.clone(), generator, call).await?;
            Ok(if whole {
                entry.finish(&key)
            } else {
                entry.value
            })
        }))
    }

    /// Runs one [`Removal`]; resolves to how many keys went.
    fn remove(&self, kind: Removal, arg: &JsValue) -> Promise {
        let arg = match removal_arg(kind, arg) {
            Ok(a) => a,
            Err(e) => return Promise::reject(&e),
        };
        let cache = self.state.cache.clone();
        self.run(Box::pin(async move {
            Ok((js(cache.remove_by(kind, &arg).await)? as f64).into())
        }))
    }
}

/// What every warm worker shares.
struct WarmRun {
    state: Rc<State>,
    /// The cache's generations under way, shared with `getOrSet`: one generator per key.
    in_flight: Flights,
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
        Ok(task(Box::pin(async move {
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
                all.push(&task(Box::pin(warm_worker(run.clone()))));
            }
            JsFuture::from(Promise::all(&all)).await?;
            let r = *run.report.borrow();
            let out = Object::new();
            put(&out, "warmed", r.warmed);
            put(&out, "skipped", r.skipped);
            put(&out, "failed", r.failed);
            put(&out, "errors", run.errors.clone());
            Ok(out.into())
        })))
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
            match JsFuture::from(flight.promise.clone()).await {
                Ok(_) => WarmOutcome::Skipped,
                Err(e) => {
                    error = Some(e);
                    WarmOutcome::Failed
                }
            }
        } else {
            // Registered as the key's generation, so that a getOrSet meanwhile joins it.
            let job = Job {
                generator: run.generators[item.namespace].clone(),
                arg: Arg::Topic(topic.clone()),
                stale: JsValue::UNDEFINED,
                policy: *run.state.cache.defaults(),
                background: false,
                lead: false,
                wait_until: None,
            };
            let flight = generation::start(&run.state, &run.in_flight, &item.key, job);
            match JsFuture::from(flight.promise.clone()).await {
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
