//! `Cache.getOrSet` and `getOrSetEntry`: single-flight generations with a context, per-call
//! policies, stale values (grace, stale-while-revalidate, stale-if-error), timeouts and aborts.
//!
//! One generation runs per key at a time (a [`Flight`], registered in the cache's [`Flights`],
//! which `warm` shares). A caller either finds a fresh value (`"hit"`), is served a stale one
//! at once while one background refresh runs (`"stale"`), joins the generation under way
//! (`"joined"`) or starts one (`"miss"`); when the generation fails (or Upstash cannot be read)
//! and a stale value within the `staleIfError` window exists, that is served (`"stale-error"`).
//!
//! A generation's result is discarded (never stored) when it times out, when every caller
//! waiting for it has aborted, or when the cache shuts down; its context's `signal` aborts then.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

use super::args::generator_failed;
use super::cache::task;
use super::error::{js, to_js, JsResult};
use super::state::State;
use super::value::{duration_value, is_thenable, put, CallOptions};
use crate::cache::{Claim, Found, InFlight};
use crate::clock::NEVER_MS;
use crate::error::Error;
use crate::options::CallPolicy;

/// The generations under way, by key (shared by `getOrSet`, `getOrSetEntry` and `warm`).
pub(crate) type Flights = Rc<RefCell<InFlight<Rc<Flight>>>>;

/// What a generation shares with its context object.
struct Gen {
    key: String,
    controller: Option<AbortController>,
    stale: RefCell<JsValue>,
    skipped: Cell<bool>,
    /// The TTL `ctx.ttl()` set (`Some(None)`: never expires).
    ttl_ms: Cell<Option<Option<u64>>>,
    /// Timed out, left by every waiter, or shut down: its result is discarded.
    abandoned: Cell<bool>,
}

impl Gen {
    fn abandon(&self, reason: &JsValue) {
        self.abandoned.set(true);
        if let Some(c) = &self.controller {
            c.abort_with_reason(reason);
        }
    }
}

/// The `ctx` a `Cache` generator is called with: `{ key, signal, stale, skip(), ttl(d) }`.
#[wasm_bindgen(skip_typescript)]
pub struct GenerationContext {
    gen: Rc<Gen>,
}

#[wasm_bindgen]
impl GenerationContext {
    /// The request key being generated.
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> String {
        self.gen.key.clone()
    }

    /// Aborted when the generation times out, every caller waiting for it aborts, or the cache
    /// shuts down.
    #[wasm_bindgen(getter)]
    pub fn signal(&self) -> JsValue {
        self.gen
            .controller
            .as_ref()
            .map_or(JsValue::UNDEFINED, |c| c.signal().into())
    }

    /// The stale value being refreshed, if any.
    #[wasm_bindgen(getter)]
    pub fn stale(&self) -> JsValue {
        self.gen.stale.borrow().clone()
    }

    /// Hands the result to every waiter without caching it.
    pub fn skip(&self) {
        self.gen.skipped.set(true);
    }

    /// Sets this entry's TTL (a duration; `Infinity`: never expires).
    pub fn ttl(&self, duration: JsValue) -> JsResult<()> {
        let secs = duration_value(&duration).ok_or_else(|| {
            to_js(&Error::InvalidOptions(
                "ctx.ttl(d) takes a number of seconds or a string with a unit (\"30s\", \"5m\")"
                    .to_owned(),
            ))
        })?;
        let ms = js(crate::cache::ttl_ms(Some(secs), 0))?;
        self.gen.ttl_ms.set(Some((ms != NEVER_MS).then_some(ms)));
        Ok(())
    }
}

/// One generation under way.
pub(crate) struct Flight {
    /// Settles with the entry every waiter gets (`{ value, status, age }`, the value as the
    /// tiers return it) or the error.
    pub(crate) promise: Promise,
    gen: Rc<Gen>,
    waiters: Cell<u32>,
    background: bool,
    lead: bool,
}

/// What a generator is called with.
pub(crate) enum Arg {
    /// The generation context (`getOrSet`).
    Context,
    /// A topic (`warm`).
    Topic(JsValue),
}

/// A generation to start.
pub(crate) struct Job {
    pub(crate) generator: Function,
    pub(crate) arg: Arg,
    /// The stale value being refreshed (`ctx.stale`).
    pub(crate) stale: JsValue,
    pub(crate) policy: CallPolicy,
    /// A refresh nobody waits for (stale-while-revalidate): not abandoned by aborts, and a
    /// failure is counted in `errors`.
    pub(crate) background: bool,
    /// Reads the cache first, and generates only when that finds no fresh value (nor a stale
    /// one to serve): a flight registered before a read that has to wait (Upstash), so that
    /// every call meanwhile joins it.
    pub(crate) lead: bool,
    /// Handed a background refresh the read starts.
    pub(crate) wait_until: Option<Function>,
}

/// Starts the generation of `key` and registers it; the generator runs in a task.
pub(crate) fn start(state: &Rc<State>, flights: &Flights, key: &str, job: Job) -> Rc<Flight> {
    let Job {
        generator,
        arg,
        stale,
        policy,
        background,
        lead,
        wait_until,
    } = job;
    let gen = Rc::new(Gen {
        key: key.to_owned(),
        controller: AbortController::new().ok(),
        stale: RefCell::new(stale),
        skipped: Cell::new(false),
        ttl_ms: Cell::new(None),
        abandoned: Cell::new(false),
    });
    let arg = match arg {
        Arg::Context => JsValue::from(GenerationContext { gen: gen.clone() }),
        Arg::Topic(t) => t,
    };
    // The generation seen when the flight starts: its value is not stored if an invalidation
    // comes first (generation mode; a lead read refines it).
    let seen = state.cache.since(key);
    let (state, fl, g, k) = (state.clone(), flights.clone(), gen.clone(), key.to_owned());
    let promise = task(Box::pin(async move {
        let mut found = None;
        let mut lock = None;
        let r = async {
            let mut since = seen;
            let mut reachable = true;
            if lead {
                let read = state.cache.read(&k, &policy).await;
                state.report_removals();
                let read = js(read)?;
                found = read.found;
                since = read.since.or(since);
                reachable = read.shared_error.is_none();
                if let Some(entry) = serve(
                    &state,
                    &fl,
                    &k,
                    &found,
                    &policy,
                    &read.shared_error,
                    &generator,
                    wait_until.as_ref(),
                ) {
                    return Ok(entry);
                }
                if let Some(f) = &found {
                    g.stale.replace(f.value.clone());
                }
            }
            // One generation across instances: the shared-tier lock, when asked for (not while
            // Upstash cannot be reached).
            let claim = if reachable {
                js(state.cache.claim(&k, &policy, background).await)?
            } else {
                Claim::Generate {
                    lock: None,
                    since: None,
                }
            };
            match claim {
                Claim::Found(f) => return Ok(Entry::of(&f, "joined")),
                Claim::Busy => {
                    return Ok(Entry {
                        value: g.stale.borrow().clone(),
                        status: "stale".into(),
                        age_ms: 0.0,
                    })
                }
                Claim::Generate { lock: l, since: s } => {
                    lock = l;
                    since = s.or(since);
                }
            }
            if g.abandoned.get() {
                // Every waiter left while this call waited for another instance's lock.
                return Err(to_js(&Error::Timeout(
                    "the generation was abandoned".to_owned(),
                )));
            }
            let value = generate(&state, &generator, &arg, policy.timeout_ms, &g).await?;
            if g.abandoned.get() {
                return Err(to_js(&Error::Timeout(
                    "the generation was abandoned".to_owned(),
                )));
            }
            let (copy, text, size) = state.prepare(&value)?;
            if !g.skipped.get() {
                let p = policy.with_ttl(g.ttl_ms.get());
                let stored = state
                    .cache
                    .store_generated(
                        &k,
                        copy.clone(),
                        Some(&text),
                        size,
                        &p,
                        since.as_ref(),
                        lock.as_ref(),
                    )
                    .await;
                state.report_removals();
                js(stored)?;
                lock = None;
            }
            Ok(Entry {
                value: copy,
                status: "miss".into(),
                age_ms: 0.0,
            })
        }
        .await;
        if let Some(l) = lock {
            // Not released with a stored value: the generation failed, was skipped or abandoned.
            state.cache.release(l).await;
        }
        finish(&fl, &k, &g);
        let r = match r {
            Err(e) if lead => fallback(&state, &found, &policy, e),
            r => r,
        };
        if r.is_err() && background {
            state.cache.count_error();
        }
        r.map(|e| e.object())
    }));
    let flight = Rc::new(Flight {
        promise,
        gen,
        waiters: Cell::new(0),
        background,
        lead,
    });
    flights.borrow_mut().start(key, flight.clone());
    flight
}

/// Settles a background refresh quietly (nobody else awaits it), handing `waitUntil` a promise
/// of that which always fulfils.
fn hand_over(wait_until: Option<&Function>, flight: &Flight) {
    let p = flight.promise.clone();
    let settled = task(Box::pin(async move {
        let _ = JsFuture::from(p).await;
        Ok(JsValue::UNDEFINED)
    }));
    if let Some(f) = wait_until {
        let _ = f.call1(&JsValue::UNDEFINED, &settled);
    }
}

/// Forgets `key`'s generation if it is still `gen`'s.
fn finish(flights: &Flights, key: &str, gen: &Rc<Gen>) {
    let current = flights.borrow().get(key);
    if current.is_some_and(|f| Rc::ptr_eq(&f.gen, gen)) {
        flights.borrow_mut().finish(key);
    }
}

/// Calls a generator and awaits its result when it is a promise: failures become
/// `GENERATOR_FAILED` with the original as `cause`; the timeout `TIMEOUT`, shutdown
/// `SHUT_DOWN` (both abort the context's signal and discard a late result).
async fn generate(
    state: &State,
    generator: &Function,
    arg: &JsValue,
    timeout_ms: u64,
    gen: &Gen,
) -> JsResult<JsValue> {
    let v = generator
        .call1(&JsValue::UNDEFINED, arg)
        .map_err(|e| generator_failed(&e))?;
    if !is_thenable(&v) {
        return Ok(v);
    }
    match state.until_stopped(&v, timeout_ms).await {
        Ok(settled) => settled.map_err(|e| generator_failed(&e)),
        Err(e) => {
            let e = to_js(&e);
            gen.abandon(&e);
            Err(e)
        }
    }
}

/// `signal.aborted`.
fn is_aborted(signal: &JsValue) -> bool {
    Reflect::get(signal, &"aborted".into())
        .ok()
        .and_then(|a| a.as_bool())
        .unwrap_or(false)
}

/// `signal.reason`.
fn reason(signal: &JsValue) -> JsValue {
    Reflect::get(signal, &"reason".into()).unwrap_or(JsValue::UNDEFINED)
}

/// Calls `signal[method]("abort", listener)`.
fn listen(signal: &JsValue, method: &str, listener: &JsValue) {
    if let Ok(f) = Reflect::get(signal, &method.into()) {
        if let Some(f) = f.dyn_ref::<Function>() {
            let _ = f.call2(signal, &"abort".into(), listener);
        }
    }
}

/// Waits for `flight` as one of its callers. When `signal` aborts first, this caller rejects
/// with its reason; when that leaves the generation without callers, it is abandoned (its
/// signal aborts, its late result is discarded, and the next call starts a new one).
async fn wait(
    flights: &Flights,
    key: &str,
    flight: &Rc<Flight>,
    signal: Option<&JsValue>,
) -> JsResult<Entry> {
    flight.waiters.set(flight.waiters.get() + 1);
    let Some(signal) = signal else {
        return JsFuture::from(flight.promise.clone())
            .await
            .map(Entry::read);
    };
    let token = Object::new();
    let mut resolve = None;
    let aborted = Promise::new(&mut |res, _| resolve = Some(res));
    let Some(listener) = resolve.map(|r| JsValue::from(r.bind1(&JsValue::UNDEFINED, &token)))
    else {
        return JsFuture::from(flight.promise.clone())
            .await
            .map(Entry::read);
    };
    listen(signal, "addEventListener", &listener);
    let settled = JsFuture::from(Promise::race(&Array::of2(&flight.promise, &aborted))).await;
    listen(signal, "removeEventListener", &listener);
    flight.waiters.set(flight.waiters.get() - 1);
    match settled {
        Ok(v) if v == JsValue::from(&token) => {
            let why = reason(signal);
            if flight.waiters.get() == 0 && !flight.background {
                flight.gen.abandon(&why);
                finish(flights, key, &flight.gen);
            }
            Err(why)
        }
        settled => settled.map(Entry::read),
    }
}

/// What `getOrSetEntry` resolves to, before it becomes an object.
pub(crate) struct Entry {
    pub(crate) value: JsValue,
    status: JsValue,
    age_ms: f64,
}

impl Entry {
    fn of(found: &Found<JsValue>, status: &str) -> Entry {
        Entry {
            value: found.value.clone(),
            status: status.into(),
            age_ms: found.age_ms as f64,
        }
    }

    /// `{ value, status, age }` (`age` in milliseconds), how a flight settles.
    fn object(self) -> JsValue {
        let out = Object::new();
        put(&out, "value", self.value);
        put(&out, "status", self.status);
        put(&out, "age", self.age_ms);
        out.into()
    }

    /// What a flight settled with.
    fn read(v: JsValue) -> Entry {
        let get = |name: &str| Reflect::get(&v, &name.into()).unwrap_or(JsValue::UNDEFINED);
        Entry {
            value: get("value"),
            status: get("status"),
            age_ms: get("age").as_f64().unwrap_or(0.0),
        }
    }

    /// `{ value, status, key, age }`, `age` in seconds.
    pub(crate) fn finish(self, key: &str) -> JsValue {
        let out = Object::new();
        put(&out, "value", self.value);
        put(&out, "status", self.status);
        put(&out, "key", key);
        put(&out, "age", self.age_ms / 1000.0);
        out.into()
    }
}

/// A stale value within `window` milliseconds past its TTL.
fn within(stale: &Option<Found<JsValue>>, window: u64) -> Option<&Found<JsValue>> {
    stale
        .as_ref()
        .filter(|f| f.stale_ms.is_some_and(|ms| ms < window))
}

/// What a read lets a caller serve without waiting for a generation: a fresh value (`"hit"`),
/// a stale one within the `staleWhileRevalidate` window (`"stale"`, starting one background
/// refresh unless a generation is under way), or, when Upstash could not be read, a stale one
/// within the `staleIfError` window (`"stale-error"`).
#[allow(clippy::too_many_arguments)]
fn serve(
    state: &Rc<State>,
    flights: &Flights,
    key: &str,
    found: &Option<Found<JsValue>>,
    policy: &CallPolicy,
    shared_error: &Option<Error>,
    generator: &Function,
    wait_until: Option<&Function>,
) -> Option<Entry> {
    if let Some(f) = found.as_ref().filter(|f| f.stale_ms.is_none()) {
        return Some(Entry::of(f, "hit"));
    }
    if let Some(f) = within(found, policy.stale_while_revalidate_ms) {
        let running = flights.borrow().get(key);
        // None runs, or this is the read of a lead flight, which hands the key over to it.
        if running.is_none_or(|r| r.lead) {
            let job = Job {
                generator: generator.clone(),
                arg: Arg::Context,
                stale: f.value.clone(),
                policy: *policy,
                background: true,
                lead: false,
                wait_until: None,
            };
            let flight = start(state, flights, key, job);
            hand_over(wait_until, &flight);
        }
        return Some(Entry::of(f, "stale"));
    }
    if shared_error.is_some() {
        if let Some(f) = within(found, policy.stale_if_error_ms) {
            return Some(Entry::of(f, "stale-error"));
        }
    }
    None
}

/// A failed generation: a stale value within the `staleIfError` window is served instead
/// (unless the cache has shut down).
fn fallback(
    state: &State,
    found: &Option<Found<JsValue>>,
    policy: &CallPolicy,
    e: JsValue,
) -> JsResult<Entry> {
    match within(found, policy.stale_if_error_ms) {
        Some(f) if state.cache.check_open().is_ok() => Ok(Entry::of(f, "stale-error")),
        _ => Err(e),
    }
}

/// `getOrSetEntry`: see the module docs.
pub(crate) async fn get_or_set(
    state: Rc<State>,
    flights: Flights,
    key: String,
    generator: Function,
    call: CallOptions,
) -> JsResult<Entry> {
    let policy = call.policy;
    let signal = call.signal.as_ref();
    if let Some(s) = signal.filter(|s| is_aborted(s)) {
        return Err(reason(s));
    }
    let running = flights.borrow().get(&key);
    if let Some(flight) = running {
        // Joining: a stale value memory holds is served at once within the window, or when
        // the generation fails within the staleIfError one.
        let stale = state.cache.peek(&key).filter(|f| f.stale_ms.is_some());
        if let Some(f) = within(&stale, policy.stale_while_revalidate_ms) {
            return Ok(Entry::of(f, "stale"));
        }
        return match wait(&flights, &key, &flight, signal).await {
            Ok(mut entry) => {
                if entry.status == "miss" {
                    entry.status = "joined".into();
                }
                Ok(entry)
            }
            Err(e) if signal.is_some_and(is_aborted) => Err(e),
            Err(e) => fallback(&state, &stale, &policy, e),
        };
    }
    let mut stale = None;
    if !state.cache.is_shared() {
        // Memory answers at once: nothing can start a generation before this call does.
        let read = js(state.cache.read(&key, &policy).await)?;
        if let Some(entry) = serve(
            &state,
            &flights,
            &key,
            &read.found,
            &policy,
            &None,
            &generator,
            call.wait_until.as_ref(),
        ) {
            return Ok(entry);
        }
        stale = read.found;
    }
    let job = Job {
        generator,
        arg: Arg::Context,
        stale: stale
            .as_ref()
            .map_or(JsValue::UNDEFINED, |f| f.value.clone()),
        policy,
        background: false,
        lead: state.cache.is_shared(),
        wait_until: call.wait_until.clone(),
    };
    let flight = start(&state, &flights, &key, job);
    match wait(&flights, &key, &flight, signal).await {
        Err(e) if signal.is_some_and(is_aborted) => Err(e),
        Err(e) => fallback(&state, &stale, &policy, e),
        ok => ok,
    }
}
