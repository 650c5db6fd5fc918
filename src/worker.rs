//! Cloudflare Workers in Rust (feature `worker`, wasm32 only): [`Cache`], the JavaScript
//! `Cache` for workers-rs, with serde values.
//!
//! ```ignore
//! use cachette::options::Options;
//! use cachette::worker::{Cache, GetOrSetOptions};
//! use worker::*;
//!
//! thread_local! {
//!     // One cache per isolate, made on the first request (no I/O or timers at global scope).
//!     static CACHE: std::cell::OnceCell<Cache> = const { std::cell::OnceCell::new() };
//! }
//!
//! #[event(fetch)]
//! async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
//!     let cache = match CACHE.with(|c| c.get().cloned()) {
//!         Some(c) => c,
//!         None => {
//!             let c = Cache::from_env(&env, &Options::default()).map_err(|e| e.to_string())?;
//!             CACHE.with(|slot| slot.get_or_init(|| c).clone())
//!         }
//!     };
//!     let topic = "Rust".to_owned();
//!     let options = GetOrSetOptions::new()
//!         .ttl("1h")
//!         .grace("1d")
//!         .stale_while_revalidate(true)
//!         .wait_until(&ctx);
//!     let data = serde_json::json!({ "topic": topic });
//!     let entry = cache
//!         .get_or_set_entry("subtopics", &data, &options, move |_ctx| async move {
//!             Ok::<_, Error>(vec![format!("{topic} basics")])
//!         })
//!         .await
//!         .map_err(|e| e.to_string())?;
//!     let mut response = Response::from_json(&entry.value)?;
//!     response.headers_mut().set("x-cache", entry.status.as_str())?;
//!     Ok(response)
//! }
//! ```
//!
//! - Values are anything serde can turn into JSON and back: `set(key, &value, ttl)` stores the
//!   JSON text, `get::<T>(key)` reads it back into `T`. The JSON text in Upstash is the same as
//!   the npm package writes, and request keys are the same, so a Rust Worker and a JS Worker
//!   share one cache.
//! - With Upstash (`options.upstash`, or [`Cache::from_env`]), Upstash holds the data and the
//!   memory tier is the fallback while it is unreachable (see [`TieredCache`]);
//!   without it, the cache is the memory tier behind an async API.
//! - [`Cache::get_or_set_entry`] is the generated-content call, with the semantics of the
//!   JavaScript `getOrSetEntry`: statuses ([`CacheStatus`]: hit, miss, joined, stale,
//!   stale-error), a generator context ([`GenerationContext`]: key, stale value, skip, TTL,
//!   abort signal), per-call options ([`GetOrSetOptions`]: TTL, grace, stale-while-revalidate,
//!   stale-if-error, timeout, `waitUntil`). It is single-flight within the isolate: concurrent
//!   calls for one key (from concurrent requests too) run the generator once, in a task of its
//!   own. Cancelling a call is dropping its future: the other callers are still served, and
//!   once every caller is gone the generation is abandoned (its signal aborts, its result is
//!   not stored).
//! - [`Cache::get_or_set_stream`] is the streamed call, with the semantics of the JavaScript
//!   `getOrSetStream`: a generator comes to a `Stream` of [`Chunk`]s (text, bytes, JSON); a miss
//!   forwards them as they come while recording, a call meanwhile joins (the chunks so far, then
//!   the live ones), a hit replays the recording. The recording is stored in the JavaScript
//!   format (`{ "cachette/stream": 1, chunks, bytes }`) only when the source ends cleanly.
//! - [`Cache::get_or_set`] and [`Cache::get_or_set_with_ttl`] take a generator without a
//!   context that may borrow from the caller; it runs inside the calling future (see there).
//! - No cleanup timer is started (Workers refuse timers at global scope, and a timer started by
//!   a request belongs to that request): `cleanup_interval` is not used, and expiry is lazy plus
//!   amortized, at a cost proportional to what expired. A generator's `timeout` is a timer of
//!   the request running it, cleared when the generator settles.
//! - Durations are seconds (`ttl: Some(0.5)`, `f64::INFINITY` for no expiry); `None` means
//!   the cache's default TTL. [`GetOrSetOptions`] also takes strings with a unit (`"5m"`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::{self, Display};
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use ::worker::AbortSignal;
use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::cache::{
    ttl_ms, Claim, Codec, Found, HealthReport, HealthStatus, InFlight, Lock as HeldLock, Removal,
    TieredCache,
};
use crate::clock::{secs_to_ms, NEVER_MS};
use crate::error::{Error, Result};
use crate::options::{
    check_secs, parse_duration, CallPolicy, Lock, Options, Stale, LOCK_NEEDS_UPSTASH,
};
use crate::platform::worker::{
    hand_to, sleep, spawn, upstash_from_env, Abort, Signal, WorkerTransport,
};
use crate::platform::JsClock;
use crate::stats::StatsSnapshot;

/// The JSON text of a value: what both tiers hold.
type Text = Rc<str>;

/// The shared tier's codec: values are already JSON text; what comes back from Upstash is
/// checked to be JSON (with serde_json, without building a value).
struct JsonText;

impl Codec<Text> for JsonText {
    fn encode(&self, value: &Text) -> Result<String> {
        Ok(value.to_string())
    }

    fn decode(&self, text: &str) -> Result<Text> {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|_| {
            Error::Unserializable("the value stored in Upstash is not JSON".to_owned())
        })?;
        Ok(Rc::from(text))
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Text> {
    serde_json::to_string(value)
        .map(Rc::from)
        .map_err(|e| Error::Unserializable(format!("the value cannot be serialized: {e}")))
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::Unserializable(format!(
            "the cached JSON does not deserialize into the requested type: {e}"
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// What callers give and get
// ---------------------------------------------------------------------------------------------

/// A duration in seconds, as [`GetOrSetOptions`] and [`GenerationContext::ttl`] take it: a
/// number of seconds (fractional allowed; `f64::INFINITY` for a TTL that never expires), a
/// [`Duration`], or a string with a unit (`"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"`, read by
/// [`parse_duration`]). Anything else is refused with [`Error::InvalidOptions`] by the call
/// that uses it.
pub trait Seconds {
    /// The seconds (NaN for a string that is not a duration).
    fn seconds(self) -> f64;
}

impl Seconds for f64 {
    fn seconds(self) -> f64 {
        self
    }
}

impl Seconds for i32 {
    fn seconds(self) -> f64 {
        f64::from(self)
    }
}

impl Seconds for u32 {
    fn seconds(self) -> f64 {
        f64::from(self)
    }
}

impl Seconds for Duration {
    fn seconds(self) -> f64 {
        self.as_secs_f64()
    }
}

impl Seconds for &str {
    fn seconds(self) -> f64 {
        parse_duration(self).unwrap_or(f64::NAN)
    }
}

/// A stale window, as [`GetOrSetOptions::stale_while_revalidate`] and
/// [`GetOrSetOptions::stale_if_error`] take it: a [`Stale`], `true` (the grace period) or
/// `false` (off), or a duration ([`Seconds`]).
pub trait StaleWindow {
    /// The window.
    fn window(self) -> Stale;
}

impl StaleWindow for Stale {
    fn window(self) -> Stale {
        self
    }
}

impl StaleWindow for bool {
    fn window(self) -> Stale {
        if self {
            Stale::Grace
        } else {
            Stale::Off
        }
    }
}

impl<S: Seconds> StaleWindow for S {
    fn window(self) -> Stale {
        Stale::Secs(self.seconds())
    }
}

/// Hands a task to the runtime so that it outlives the call that started it.
type WaitUntil = Rc<dyn Fn(Pin<Box<dyn Future<Output = ()>>>)>;

/// Per-call options of [`Cache::get_or_set_entry`]; what is not set is the cache's default
/// ([`Options`]). Durations are checked by the call, as the JavaScript `getOrSet` checks them:
/// [`Error::InvalidOptions`] for a TTL that is not positive (or `f64::INFINITY`), a negative or
/// non-finite grace, window or timeout, or a string that is not a duration.
///
/// ```ignore
/// let options = GetOrSetOptions::new()
///     .ttl("1h")
///     .grace("1d")
///     .stale_while_revalidate(true) // within the grace period
///     .stale_if_error("6h")
///     .timeout(20.0)
///     .wait_until(&ctx);
/// ```
#[derive(Clone, Default)]
pub struct GetOrSetOptions {
    ttl: Option<f64>,
    grace: Option<f64>,
    stale_while_revalidate: Option<Stale>,
    stale_if_error: Option<Stale>,
    timeout: Option<f64>,
    wait_until: Option<WaitUntil>,
    lock: Option<Lock>,
}

impl fmt::Debug for GetOrSetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetOrSetOptions")
            .field("ttl", &self.ttl)
            .field("grace", &self.grace)
            .field("stale_while_revalidate", &self.stale_while_revalidate)
            .field("stale_if_error", &self.stale_if_error)
            .field("timeout", &self.timeout)
            .field("wait_until", &self.wait_until.is_some())
            .field("lock", &self.lock)
            .finish()
    }
}

impl GetOrSetOptions {
    /// The cache's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The generated entry's TTL (`f64::INFINITY`: never expires).
    pub fn ttl(mut self, ttl: impl Seconds) -> Self {
        self.ttl = Some(ttl.seconds());
        self
    }

    /// How long past its TTL the entry is kept in memory as a stale value.
    pub fn grace(mut self, grace: impl Seconds) -> Self {
        self.grace = Some(grace.seconds());
        self
    }

    /// How long past its TTL a stale value is served at once while one refresh runs in the
    /// background (`true`: the grace period).
    pub fn stale_while_revalidate(mut self, window: impl StaleWindow) -> Self {
        self.stale_while_revalidate = Some(window.window());
        self
    }

    /// How long past its TTL a stale value is served when the generator fails or Upstash cannot
    /// be read (`true`: the grace period).
    pub fn stale_if_error(mut self, window: impl StaleWindow) -> Self {
        self.stale_if_error = Some(window.window());
        self
    }

    /// How long the generator may run (0: no limit); then every caller waiting for it gets
    /// [`Error::Timeout`], its signal aborts and its late result is dropped.
    pub fn timeout(mut self, timeout: impl Seconds) -> Self {
        self.timeout = Some(timeout.seconds());
        self
    }

    /// One generation across instances (a cache with Upstash only): a miss takes a lock in
    /// Upstash before generating, and other instances wait for its value
    /// ([`CacheStatus::Joined`]). [`Lock::On`] lasts the call's timeout, else 10 s. Default:
    /// the cache's [`Options::lock`].
    pub fn lock(mut self, lock: Lock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Hands work that outlives the call to the Worker's `ctx.waitUntil`: a stale-while-
    /// revalidate refresh, and a generation this call starts (so that it can finish for the
    /// other callers waiting for it if this call's future is dropped).
    pub fn wait_until(self, ctx: &::worker::Context) -> Self {
        self.wait_until_with(hand_to(ctx))
    }

    /// As [`GetOrSetOptions::wait_until`], through a function of your own (for instance a
    /// Durable Object's `state.wait_until`).
    pub fn wait_until_with(
        mut self,
        hand: impl Fn(Pin<Box<dyn Future<Output = ()>>>) + 'static,
    ) -> Self {
        self.wait_until = Some(Rc::new(hand));
        self
    }

    /// The call's policy over the cache's `defaults`, whose stale windows were given as
    /// `windows` (a window of [`Stale::Grace`] follows the call's grace period). Built as the
    /// JavaScript `getOrSet` builds it (`call_options` in `src/wasm/value.rs`).
    fn policy(
        &self,
        defaults: &CallPolicy,
        windows: (Stale, Stale),
        lock: Lock,
        shared: bool,
    ) -> Result<CallPolicy> {
        let mut policy = *defaults;
        if let Some(secs) = self.ttl {
            let ms = ttl_ms(Some(secs), 0)?;
            policy.ttl_ms = (ms != NEVER_MS).then_some(ms);
        }
        if let Some(g) = self.grace {
            check_secs("grace", g, true)?;
            policy.grace_ms = secs_to_ms(g);
        }
        if let Some(t) = self.timeout {
            check_secs("timeout", t, true)?;
            policy.timeout_ms = secs_to_ms(t);
        }
        for (name, window) in [
            ("staleWhileRevalidate", self.stale_while_revalidate),
            ("staleIfError", self.stale_if_error),
        ] {
            if let Some(Stale::Secs(s)) = window {
                check_secs(name, s, true)?;
            }
        }
        policy.stale_while_revalidate_ms = self
            .stale_while_revalidate
            .unwrap_or(windows.0)
            .window_ms(policy.grace_ms);
        policy.stale_if_error_ms = self
            .stale_if_error
            .unwrap_or(windows.1)
            .window_ms(policy.grace_ms);
        let lock = self.lock.unwrap_or(lock);
        if let Lock::Secs(s) = lock {
            check_secs("lock.ttl", s, false)?;
        }
        if lock != Lock::Off && !shared {
            return Err(Error::InvalidOptions(LOCK_NEEDS_UPSTASH.to_owned()));
        }
        policy.lock_ms = lock.ttl_ms(policy.timeout_ms);
        Ok(policy)
    }
}

/// How [`Cache::get_or_set_entry`] came by its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// A fresh cached value.
    Hit,
    /// Generated by this call.
    Miss,
    /// Generated by another call, which this one joined (single-flight).
    Joined,
    /// A stale value, served at once while one refresh runs (stale-while-revalidate).
    Stale,
    /// A stale value, served because the generator failed or Upstash could not be read
    /// (stale-if-error).
    StaleError,
}

impl CacheStatus {
    /// `"hit"`, `"miss"`, `"joined"`, `"stale"` or `"stale-error"`, as the JavaScript
    /// `getOrSetEntry` names them.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Joined => "joined",
            CacheStatus::Stale => "stale",
            CacheStatus::StaleError => "stale-error",
        }
    }
}

impl Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Cache::get_or_set_entry`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry<T> {
    /// The value.
    pub value: T,
    /// How it was come by.
    pub status: CacheStatus,
    /// Its request key.
    pub key: String,
    /// Seconds since it was stored (0 for a value generated for this call).
    pub age: f64,
}

/// What a generator of [`Cache::get_or_set_entry`] is called with: the key being generated,
/// the stale value being refreshed, and ways to skip caching, to set the entry's TTL and to
/// learn that the result is no longer wanted.
pub struct GenerationContext<T> {
    gen: Rc<Gen>,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for GenerationContext<T> {
    fn clone(&self) -> Self {
        GenerationContext {
            gen: self.gen.clone(),
            value: PhantomData,
        }
    }
}

impl<T> fmt::Debug for GenerationContext<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationContext")
            .field("key", &self.gen.key)
            .field("skipped", &self.gen.skipped.get())
            .finish_non_exhaustive()
    }
}

impl<T> GenerationContext<T> {
    /// The request key being generated.
    pub fn key(&self) -> &str {
        &self.gen.key
    }

    /// Hands the result to every caller waiting for it without caching it.
    pub fn skip(&self) {
        self.gen.skipped.set(true);
    }

    /// Sets the entry's TTL (`f64::INFINITY`: never expires). A TTL that is not a positive
    /// duration of at most 100 years is refused with [`Error::InvalidOptions`] and not applied.
    pub fn ttl(&self, ttl: impl Seconds) -> Result<()> {
        let ms = ttl_ms(Some(ttl.seconds()), 0)?;
        self.gen.ttl_ms.set(Some((ms != NEVER_MS).then_some(ms)));
        Ok(())
    }

    /// Aborted when the result is no longer wanted: the timeout passed, every caller waiting
    /// for it was dropped, or the cache was shut down. Hand it to `Fetch::send_with_signal`;
    /// its reason is a JS `Error` with the cachette error `code`.
    pub fn signal(&self) -> AbortSignal {
        self.gen.abort.signal()
    }
}

impl<T: DeserializeOwned> GenerationContext<T> {
    /// The stale value being refreshed, if memory holds one (past its TTL, within the time it
    /// is kept).
    pub fn stale(&self) -> Option<T> {
        let text = self.gen.stale.borrow().clone()?;
        decode(&text).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Generations
// ---------------------------------------------------------------------------------------------

/// A generator with its value type erased: called with the generation's state, it comes to the
/// value's JSON text.
type Job<'a> = Box<dyn FnOnce(Rc<Gen>) -> Pin<Box<dyn Future<Output = Result<Text>> + 'a>> + 'a>;

/// How a generation runs.
enum Generator<'a> {
    /// In a task of its own: callers wait for it and may leave (a dropped call's future), and a
    /// stale-while-revalidate refresh can run after the call that started it has returned.
    Detached(Job<'static>),
    /// Inside the future of the call that started it, for a generator that borrows from that
    /// call: dropping the call drops the generation, and callers that joined it start another.
    Inline(Job<'a>),
}

impl<'a> Generator<'a> {
    fn call(self, gen: Rc<Gen>) -> Pin<Box<dyn Future<Output = Result<Text>> + 'a>> {
        match self {
            Generator::Detached(job) => job(gen),
            Generator::Inline(job) => job(gen),
        }
    }
}

/// What a generation shares with its context.
struct Gen {
    key: String,
    abort: Abort,
    /// The stale value being refreshed (its JSON text).
    stale: RefCell<Option<Text>>,
    skipped: Cell<bool>,
    /// The TTL `ctx.ttl()` set (`Some(None)`: never expires).
    ttl_ms: Cell<Option<Option<u64>>>,
    /// Why the generation was abandoned (timed out, left by every caller, shut down): its
    /// result is dropped.
    abandoned: RefCell<Option<Error>>,
    /// The task running the generator, woken when the generation is abandoned.
    waker: RefCell<Option<Waker>>,
}

impl Gen {
    fn new(key: &str, stale: Option<Text>) -> Result<Gen> {
        Ok(Gen {
            key: key.to_owned(),
            abort: Abort::new()?,
            stale: RefCell::new(stale),
            skipped: Cell::new(false),
            ttl_ms: Cell::new(None),
            abandoned: RefCell::new(None),
            waker: RefCell::new(None),
        })
    }

    /// Abandons the generation (once): its signal aborts with `why`, its generator is dropped.
    fn abandon(&self, why: Error) {
        if self.abandoned.borrow().is_some() {
            return;
        }
        *self.abandoned.borrow_mut() = Some(why.clone());
        let waker = self.waker.borrow_mut().take();
        // Abort listeners run at once, and may call back into this generation.
        self.abort.abort(&why);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn abandoned(&self) -> Option<Error> {
        self.abandoned.borrow().clone()
    }
}

/// What a generation settled with, before the value is decoded for a caller.
#[derive(Debug, Clone)]
struct Settled {
    text: Text,
    status: CacheStatus,
    age_ms: u64,
}

impl Settled {
    fn of(found: &Found<Text>, status: CacheStatus) -> Settled {
        Settled {
            text: found.value.clone(),
            status,
            age_ms: found.age_ms,
        }
    }
}

/// One generation under way: its outcome once settled, and the signal its callers (from this
/// request or others) wait for.
struct Flight {
    gen: Rc<Gen>,
    outcome: RefCell<Option<Result<Settled>>>,
    done: Signal,
    /// Callers waiting for it (an inline generation's own caller is not counted).
    waiters: Cell<u32>,
    /// A refresh nobody waits for (stale-while-revalidate): never abandoned by callers leaving,
    /// and a failure is counted in `errors`.
    background: bool,
    /// Reads the cache first and generates only when that finds nothing to serve: registered
    /// before a read that has to wait (Upstash), so that every call meanwhile joins it.
    lead: bool,
    /// Runs inside its caller's future ([`Generator::Inline`]).
    inline: bool,
    /// An inline generation whose call was dropped: the callers that joined it start again.
    cancelled: Cell<bool>,
}

impl Flight {
    fn settle(&self, outcome: Result<Settled>) {
        if self.outcome.borrow().is_none() {
            *self.outcome.borrow_mut() = Some(outcome);
            self.done.notify();
        }
    }

    async fn outcome(&self) -> Result<Settled> {
        if self.outcome.borrow().is_none() {
            self.done.wait().await;
        }
        self.outcome.borrow().clone().unwrap_or_else(|| {
            Err(Error::GeneratorFailed(
                "the generation of this value never settled".to_owned(),
            ))
        })
    }
}

/// A caller waiting for a flight; when it is dropped before the flight settles and it was the
/// last one, a detached generation is abandoned.
struct Waiting<'f> {
    inner: &'f Inner,
    key: &'f str,
    flight: &'f Rc<Flight>,
    waiting: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let f = self.flight;
        f.waiters.set(f.waiters.get().saturating_sub(1));
        let unsettled = f.outcome.borrow().is_none();
        if self.waiting && unsettled && f.waiters.get() == 0 && !f.background && !f.inline {
            f.gen.abandon(Error::Timeout(
                "the generation was abandoned: every call waiting for it was dropped".to_owned(),
            ));
            self.inner.finish(self.key, &f.gen);
        }
    }
}

/// The call running an inline generation; if it is dropped half-way, the flight settles as
/// cancelled and the callers that joined it start again.
struct Driving<'f> {
    inner: &'f Inner,
    key: &'f str,
    flight: &'f Rc<Flight>,
    done: bool,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        if !self.done {
            let e = Error::GeneratorFailed("the call generating this value was dropped".to_owned());
            self.flight.cancelled.set(true);
            self.flight.gen.abandon(e.clone());
            self.inner.finish(self.key, &self.flight.gen);
            self.flight.settle(Err(e));
        }
    }
}

/// A shared-tier lock a generation holds: released when the generation ends, and, if its
/// future is dropped first (an inline `get_or_set` whose caller went away), in a task of its own.
struct Unlock {
    inner: Rc<Inner>,
    lock: Option<HeldLock>,
}

impl Drop for Unlock {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let inner = self.inner.clone();
            spawn(async move { inner.cache.release(lock).await });
        }
    }
}

/// A generator running, registered so that [`Cache::shutdown`] can abandon it.
struct Running<'f> {
    inner: &'f Inner,
    gen: &'f Rc<Gen>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.inner.running.try_borrow_mut() {
            running.retain(|g| !Rc::ptr_eq(g, self.gen));
        }
    }
}

/// A stale value within `window` milliseconds past its TTL.
fn within(found: &Option<Found<Text>>, window: u64) -> Option<&Found<Text>> {
    found
        .as_ref()
        .filter(|f| f.stale_ms.is_some_and(|ms| ms < window))
}

/// Hands a flight to `wait_until`: the task ends when the flight settles.
fn hand_over(wait_until: Option<&WaitUntil>, flight: &Rc<Flight>) {
    if let Some(hand) = wait_until {
        let flight = flight.clone();
        hand(Box::pin(async move {
            let _ = flight.outcome().await;
        }));
    }
}

type Tiered = TieredCache<Text, WorkerTransport, JsonText>;

struct Inner {
    cache: Tiered,
    flights: RefCell<InFlight<Rc<Flight>>>,
    /// The cache's stale-while-revalidate and stale-if-error windows as given.
    windows: (Stale, Stale),
    /// The cache's `lock`.
    lock: Lock,
    /// The generators running.
    running: RefCell<Vec<Rc<Gen>>>,
    /// The streams being read or generated ([`Cache::get_or_set_stream`]), by key.
    streams: RefCell<HashMap<String, Rc<StreamFlight>>>,
}

impl Inner {
    /// Forgets `key`'s flight if it is still `gen`'s.
    fn finish(&self, key: &str, gen: &Rc<Gen>) {
        let Ok(mut flights) = self.flights.try_borrow_mut() else {
            return;
        };
        if flights.get(key).is_some_and(|f| Rc::ptr_eq(&f.gen, gen)) {
            flights.finish(key);
        }
    }

    /// Registers a flight for `key`.
    fn begin(
        &self,
        key: &str,
        stale: Option<Text>,
        background: bool,
        lead: bool,
        inline: bool,
    ) -> Result<Rc<Flight>> {
        let flight = Rc::new(Flight {
            gen: Rc::new(Gen::new(key, stale)?),
            outcome: RefCell::new(None),
            done: Signal::default(),
            waiters: Cell::new(0),
            background,
            lead,
            inline,
            cancelled: Cell::new(false),
        });
        self.flights.borrow_mut().start(key, flight.clone());
        Ok(flight)
    }

    /// Starts a detached generation of `key` in a task of its own.
    fn detach(
        self: &Rc<Self>,
        key: &str,
        job: Job<'static>,
        stale: Option<Text>,
        policy: CallPolicy,
        background: bool,
        wait_until: Option<&WaitUntil>,
    ) -> Result<Rc<Flight>> {
        let lead = !background && self.cache.is_shared();
        let flight = self.begin(key, stale, background, lead, false)?;
        spawn(self.clone().generation(
            flight.clone(),
            key.to_owned(),
            Generator::Detached(job),
            policy,
            wait_until.cloned(),
        ));
        hand_over(wait_until, &flight);
        Ok(flight)
    }

    /// Waits for `flight` as one of its callers.
    async fn wait(&self, key: &str, flight: &Rc<Flight>) -> Result<Settled> {
        flight.waiters.set(flight.waiters.get() + 1);
        let mut waiting = Waiting {
            inner: self,
            key,
            flight,
            waiting: true,
        };
        let outcome = flight.outcome().await;
        waiting.waiting = false;
        outcome
    }

    /// A generation: with `flight.lead`, the cache is read first and what it lets a caller
    /// serve settles the flight; else the generator runs (until its timeout, unless
    /// abandoned) and its value is stored (unless skipped). Settles `flight`.
    async fn generation(
        self: Rc<Self>,
        flight: Rc<Flight>,
        key: String,
        generator: Generator<'_>,
        policy: CallPolicy,
        wait_until: Option<WaitUntil>,
    ) {
        let gen = flight.gen.clone();
        let mut generator = Some(generator);
        let mut found = None;
        let mut unlock = Unlock {
            inner: self.clone(),
            lock: None,
        };
        // The generation seen as it starts: its value is not stored if an invalidation comes
        // first (generation mode; a lead read refines it).
        let seen = self.cache.since(&key);
        let r = async {
            if let Some(e) = gen.abandoned() {
                return Err(e);
            }
            let mut since = seen;
            let mut reachable = true;
            if flight.lead {
                let read = self.cache.read(&key, &policy).await?;
                found = read.found;
                since = read.since.or(since);
                reachable = read.shared_error.is_none();
                if let Some(s) = self.serve(
                    &key,
                    &found,
                    &policy,
                    read.shared_error.as_ref(),
                    &mut generator,
                    wait_until.as_ref(),
                )? {
                    return Ok(s);
                }
                if let Some(f) = &found {
                    *gen.stale.borrow_mut() = Some(f.value.clone());
                }
            }
            // One generation across instances: the shared-tier lock, when asked for (not while
            // Upstash cannot be reached).
            let claim = if reachable {
                self.cache.claim(&key, &policy, flight.background).await?
            } else {
                Claim::Generate {
                    lock: None,
                    since: None,
                }
            };
            match claim {
                Claim::Found(f) => {
                    return Ok(Settled {
                        text: f.value,
                        status: CacheStatus::Joined,
                        age_ms: f.age_ms,
                    })
                }
                Claim::Busy => {
                    let text = gen.stale.borrow().clone().ok_or_else(|| {
                        Error::GeneratorFailed("a refresh without a stale value".to_owned())
                    })?;
                    return Ok(Settled {
                        text,
                        status: CacheStatus::Stale,
                        age_ms: 0,
                    });
                }
                Claim::Generate { lock: l, since: s } => {
                    unlock.lock = l;
                    since = s.or(since);
                }
            }
            if let Some(e) = gen.abandoned() {
                // Every caller left while this call waited for another instance's lock.
                return Err(e);
            }
            let generator = generator.take().ok_or_else(|| {
                Error::GeneratorFailed("the generator was handed to a refresh".to_owned())
            })?;
            let text = self.generate(&gen, generator, policy.timeout_ms).await?;
            if !gen.skipped.get() {
                let p = policy.with_ttl(gen.ttl_ms.get());
                let size = self.cache.text_size(&text);
                self.cache
                    .store_generated(
                        &key,
                        text.clone(),
                        Some(&text),
                        size,
                        &p,
                        since.as_ref(),
                        unlock.lock.as_ref(),
                    )
                    .await?;
                unlock.lock = None;
            }
            Ok(Settled {
                text,
                status: CacheStatus::Miss,
                age_ms: 0,
            })
        }
        .await;
        if let Some(l) = unlock.lock.take() {
            // Not released with a stored value: the generation failed, was skipped or abandoned.
            self.cache.release(l).await;
        }
        self.finish(&key, &gen);
        let r = match r {
            Err(e) if flight.lead => self.fallback(&found, &policy, e),
            r => r,
        };
        if r.is_err() && flight.background {
            self.cache.count_error();
        }
        flight.settle(r);
    }

    /// Runs the generator until it settles, its timeout passes (then [`Error::Timeout`] and
    /// its signal aborts) or the generation is abandoned. The generator's future is dropped
    /// then: a late result never arrives.
    async fn generate(
        &self,
        gen: &Rc<Gen>,
        generator: Generator<'_>,
        timeout_ms: u64,
    ) -> Result<Text> {
        self.cache.check_open()?;
        self.running.borrow_mut().push(gen.clone());
        let _running = Running { inner: self, gen };
        let mut generating = generator.call(gen.clone());
        let mut deadline = pin!(async {
            if timeout_ms > 0 {
                sleep(timeout_ms).await;
            } else {
                std::future::pending::<()>().await;
            }
        });
        poll_fn(|cx| {
            if let Some(e) = gen.abandoned() {
                return Poll::Ready(Err(e));
            }
            if let Poll::Ready(r) = generating.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            if deadline.as_mut().poll(cx).is_ready() {
                let e = Error::Timeout(format!(
                    "the generator did not settle within {timeout_ms} ms"
                ));
                gen.abandon(e.clone());
                return Poll::Ready(Err(e));
            }
            *gen.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// What a read lets a caller serve without waiting for a generation: a fresh value
    /// (`Hit`), a stale one within the stale-while-revalidate window (`Stale`, starting one
    /// background refresh unless a generation is under way), or, when Upstash could not be
    /// read, a stale one within the stale-if-error window (`StaleError`). An inline generator
    /// cannot refresh in the background: its caller generates instead.
    fn serve(
        self: &Rc<Self>,
        key: &str,
        found: &Option<Found<Text>>,
        policy: &CallPolicy,
        shared_error: Option<&Error>,
        generator: &mut Option<Generator<'_>>,
        wait_until: Option<&WaitUntil>,
    ) -> Result<Option<Settled>> {
        if let Some(f) = found.as_ref().filter(|f| f.stale_ms.is_none()) {
            return Ok(Some(Settled::of(f, CacheStatus::Hit)));
        }
        if let Some(f) = within(found, policy.stale_while_revalidate_ms) {
            let running = self.flights.borrow().get(key);
            // None runs, or this is the read of a lead flight, which hands the key over to it.
            if running.is_none_or(|r| r.lead) {
                if let Some(Generator::Detached(job)) =
                    generator.take_if(|g| matches!(g, Generator::Detached(_)))
                {
                    let stale = Some(f.value.clone());
                    self.detach(key, job, stale, *policy, true, wait_until)?;
                    return Ok(Some(Settled::of(f, CacheStatus::Stale)));
                }
            } else {
                return Ok(Some(Settled::of(f, CacheStatus::Stale)));
            }
        }
        if shared_error.is_some() {
            if let Some(f) = within(found, policy.stale_if_error_ms) {
                return Ok(Some(Settled::of(f, CacheStatus::StaleError)));
            }
        }
        Ok(None)
    }

    /// A failed generation: a stale value within the stale-if-error window is served instead
    /// (unless the cache has shut down).
    fn fallback(
        &self,
        stale: &Option<Found<Text>>,
        policy: &CallPolicy,
        e: Error,
    ) -> Result<Settled> {
        match within(stale, policy.stale_if_error_ms) {
            Some(f) if self.cache.check_open().is_ok() => {
                Ok(Settled::of(f, CacheStatus::StaleError))
            }
            _ => Err(e),
        }
    }

    /// `get_or_set_entry` for `key` under `policy`: see [`Cache::get_or_set_entry`].
    async fn entry(
        self: &Rc<Self>,
        key: &str,
        policy: CallPolicy,
        wait_until: Option<&WaitUntil>,
        generator: Generator<'_>,
    ) -> Result<Settled> {
        self.cache.check_open()?;
        loop {
            let running = self.flights.borrow().get(key);
            let Some(flight) = running else { break };
            // Joining: a stale value memory holds is served at once within the window, or when
            // the generation fails within the stale-if-error one.
            let stale = self.cache.peek(key).filter(|f| f.stale_ms.is_some());
            if let Some(f) = within(&stale, policy.stale_while_revalidate_ms) {
                return Ok(Settled::of(f, CacheStatus::Stale));
            }
            return match self.wait(key, &flight).await {
                Ok(mut s) => {
                    if s.status == CacheStatus::Miss {
                        s.status = CacheStatus::Joined;
                    }
                    Ok(s)
                }
                // The inline generation joined was dropped with its call: start again.
                Err(_) if flight.cancelled.get() => continue,
                Err(e) => self.fallback(&stale, &policy, e),
            };
        }
        let mut generator = Some(generator);
        let mut stale = None;
        if !self.cache.is_shared() {
            // Memory answers at once: nothing can start a generation before this call does.
            let read = self.cache.read(key, &policy).await?;
            if let Some(s) =
                self.serve(key, &read.found, &policy, None, &mut generator, wait_until)?
            {
                return Ok(s);
            }
            stale = read.found;
        }
        let stale_text = stale.as_ref().map(|f| f.value.clone());
        let outcome = match generator {
            Some(Generator::Detached(job)) => {
                let flight = self.detach(key, job, stale_text, policy, false, wait_until)?;
                self.wait(key, &flight).await
            }
            Some(inline) => {
                let lead = self.cache.is_shared();
                let flight = self.begin(key, stale_text, false, lead, true)?;
                let mut driving = Driving {
                    inner: self,
                    key,
                    flight: &flight,
                    done: false,
                };
                self.clone()
                    .generation(flight.clone(), key.to_owned(), inline, policy, None)
                    .await;
                driving.done = true;
                flight.outcome().await
            }
            None => unreachable_generator(),
        };
        match outcome {
            Err(e) => self.fallback(&stale, &policy, e),
            ok => ok,
        }
    }
}

/// The generator is taken only by `serve`, which then answers: never reached.
fn unreachable_generator() -> Result<Settled> {
    Err(Error::GeneratorFailed(
        "the generator was handed to a refresh".to_owned(),
    ))
}

// ---------------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------------

/// The two-tier cache for Rust Workers. Cloning is cheap and clones share one cache; keep one
/// per isolate (a `thread_local`), made on the first request (the module docs show that).
///
/// ```ignore
/// use cachette::options::{Invalidation, Lock, Options};
/// use cachette::worker::{Cache, CacheStatus, GetOrSetOptions};
///
/// // Upstash from the Worker's secrets; one generation across isolates; O(1) invalidation.
/// let options = Options { invalidation: Invalidation::Generation, lock: Lock::On, ..Options::default() };
/// let cache = Cache::from_env(&env, &options)?;
/// let entry = cache
///     .get_or_set_entry("answers", &serde_json::json!({ "q": "why" }), &GetOrSetOptions::new(), |_ctx| async {
///         Ok::<_, String>("because".to_owned())
///     })
///     .await?;
/// assert!(matches!(entry.status, CacheStatus::Miss | CacheStatus::Joined | CacheStatus::Hit));
/// cache.invalidate_namespace("answers").await?; // one round trip in generation mode
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache with `options` (validated: [`Error::InvalidOptions`] for what `Options::validate`
    /// refuses). With `options.upstash`, Upstash is reached through `worker::Fetch`.
    pub fn new(options: &Options) -> Result<Cache> {
        let cache = TieredCache::new(options, WorkerTransport, JsonText, Rc::new(JsClock))?;
        Ok(Cache {
            inner: Rc::new(Inner {
                cache,
                flights: RefCell::default(),
                windows: (options.stale_while_revalidate, options.stale_if_error),
                lock: options.lock,
                running: RefCell::default(),
                streams: RefCell::default(),
            }),
        })
    }

    /// A cache whose shared tier is read from `UPSTASH_REDIS_REST_URL` and
    /// `UPSTASH_REDIS_REST_TOKEN` in the Worker's `env` (secrets or vars); the timeout and
    /// retries of `options.upstash`, when given, are kept. [`Error::InvalidOptions`] when either
    /// is missing.
    pub fn from_env(env: &::worker::Env, options: &Options) -> Result<Cache> {
        let mut options = options.clone();
        let mut upstash = upstash_from_env(env)?;
        if let Some(given) = &options.upstash {
            upstash.timeout_ms = given.timeout_ms;
            upstash.retries = given.retries;
        }
        options.upstash = Some(upstash);
        Cache::new(&options)
    }

    /// The current version prefix.
    pub fn version(&self) -> String {
        self.inner.cache.version()
    }

    /// The request key `"{version}:{namespace}:{md5}"` of `data` (its canonical JSON, as
    /// `requestKey` makes it in JavaScript).
    pub fn key<D: Serialize + ?Sized>(&self, namespace: &str, data: &D) -> Result<String> {
        let json = serde_json::to_string(data)
            .map_err(|e| Error::Unserializable(format!("request data: {e}")))?;
        self.inner.cache.request_key(namespace, &json)
    }

    async fn set_text(&self, key: &str, text: Text, ttl: Option<f64>) -> Result<()> {
        let size = self.inner.cache.text_size(&text);
        self.inner.cache.set(key, text, size, ttl).await
    }

    /// The value under `key` as a `T`, or `None`. [`Error::Unserializable`] when the cached JSON
    /// is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.inner.cache.get(key).await? {
            Some(text) => decode(&text).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` (as JSON) under `key` for `ttl` seconds (`f64::INFINITY`: no expiry), or
    /// the default TTL.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<f64>,
    ) -> Result<()> {
        let text = encode(value)?;
        self.set_text(key, text, ttl).await
    }

    /// Whether `key` holds a value (not counted as a hit or miss).
    pub async fn has(&self, key: &str) -> Result<bool> {
        self.inner.cache.contains(key).await
    }

    /// Deletes `key`; true when a value was removed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.cache.delete(key).await
    }

    /// `get(key(namespace, data))`.
    pub async fn lookup<D, T>(&self, namespace: &str, data: &D) -> Result<Option<T>>
    where
        D: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.get(&self.key(namespace, data)?).await
    }

    /// `set(key(namespace, data), value, ttl)`; returns the key.
    pub async fn store<D, T>(
        &self,
        namespace: &str,
        data: &D,
        value: &T,
        ttl: Option<f64>,
    ) -> Result<String>
    where
        D: Serialize + ?Sized,
        T: Serialize + ?Sized,
    {
        let key = self.key(namespace, data)?;
        self.set(&key, value, ttl).await?;
        Ok(key)
    }

    /// The cached value for `(namespace, data)`, or the one `generate(ctx)` comes to, stored
    /// under it; with how it was come by ([`CacheStatus`]), its key and its age.
    ///
    /// - A fresh value is a `Hit`. Concurrent calls for one key within the isolate (from
    ///   concurrent requests too) run one generation: the call that starts it gets `Miss`, the
    ///   others `Joined`; a failure reaches every one as [`Error::GeneratorFailed`] (or the
    ///   timeout's [`Error::Timeout`]) and nothing is cached.
    /// - The generation runs in a task of its own (hence `'static` generators). Dropping a
    ///   call's future is how a caller gives up: the others are still served; when every call
    ///   waiting for it has been dropped, the generation is abandoned (`ctx.signal()` aborts,
    ///   its result is not stored) and the next call starts a new one.
    /// - A value past its TTL stays in memory for the longest of `grace` and the two stale
    ///   windows. Within `stale_while_revalidate` it is served at once (`Stale`) while one
    ///   refresh runs in the background (handed to `wait_until`); when Upstash cannot be read,
    ///   or the generator fails, within `stale_if_error` it is served as `StaleError`. The
    ///   generator sees it as `ctx.stale()`.
    /// - `ctx.skip()` hands the result over without caching it; `ctx.ttl(d)` sets the entry's
    ///   TTL; `timeout` bounds the generator.
    ///
    /// [`Error::InvalidOptions`] for options that are out of range (before anything runs).
    pub async fn get_or_set_entry<D, T, E, F, Fut>(
        &self,
        namespace: &str,
        data: &D,
        options: &GetOrSetOptions,
        generate: F,
    ) -> Result<CacheEntry<T>>
    where
        D: Serialize + ?Sized,
        T: Serialize + DeserializeOwned + 'static,
        E: Display + 'static,
        F: FnOnce(GenerationContext<T>) -> Fut + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + 'static,
    {
        let job: Job<'static> = Box::new(move |gen| {
            Box::pin(async move {
                let ctx = GenerationContext {
                    gen,
                    value: PhantomData,
                };
                encode(&generate(ctx).await.map_err(generator_failed)?)
            })
        });
        self.entry(namespace, data, options, Generator::Detached(job))
            .await
    }

    /// The cached value for `(namespace, data)`, or the result of `generate()` stored under it
    /// with the default TTL. See [`Cache::get_or_set_with_ttl`].
    pub async fn get_or_set<D, T, E, F, Fut>(
        &self,
        namespace: &str,
        data: &D,
        generate: F,
    ) -> Result<T>
    where
        D: Serialize + ?Sized,
        T: Serialize + DeserializeOwned,
        E: Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        self.get_or_set_with_ttl(namespace, data, None, generate)
            .await
    }

    /// The cached value for `(namespace, data)`, or the result of `generate()` stored under it
    /// for `ttl` seconds (`None`: the default TTL; `f64::INFINITY`: no expiry), with the
    /// cache's default grace and stale windows. Concurrent calls for one key within the
    /// isolate run `generate` once and all get its value; an `Err` from it reaches every
    /// caller as [`Error::GeneratorFailed`] and nothing is cached.
    ///
    /// `generate` may borrow from the caller, so it runs inside this call's future: a stale
    /// value is refreshed while the caller waits (never in the background), and dropping this
    /// call drops the generation (the calls that joined it then generate again themselves).
    /// [`Cache::get_or_set_entry`] has none of these limits.
    pub async fn get_or_set_with_ttl<D, T, E, F, Fut>(
        &self,
        namespace: &str,
        data: &D,
        ttl: Option<f64>,
        generate: F,
    ) -> Result<T>
    where
        D: Serialize + ?Sized,
        T: Serialize + DeserializeOwned,
        E: Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let options = GetOrSetOptions {
            ttl,
            ..GetOrSetOptions::default()
        };
        let job: Job<'_> = Box::new(move |_| {
            Box::pin(async move { encode(&generate().await.map_err(generator_failed)?) })
        });
        let entry: CacheEntry<T> = self
            .entry(namespace, data, &options, Generator::Inline(job))
            .await?;
        Ok(entry.value)
    }

    async fn entry<D, T>(
        &self,
        namespace: &str,
        data: &D,
        options: &GetOrSetOptions,
        generator: Generator<'_>,
    ) -> Result<CacheEntry<T>>
    where
        D: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let policy = options.policy(
            self.inner.cache.defaults(),
            self.inner.windows,
            self.inner.lock,
            self.inner.cache.is_shared(),
        )?;
        let key = self.key(namespace, data)?;
        let settled = self
            .inner
            .entry(&key, policy, options.wait_until.as_ref(), generator)
            .await?;
        Ok(CacheEntry {
            value: decode(&settled.text)?,
            status: settled.status,
            key,
            age: settled.age_ms as f64 / 1000.0,
        })
    }

    /// Deletes every key matching the Redis glob `pattern`; returns how many.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        self.inner.cache.remove_by(Removal::Pattern, pattern).await
    }

    /// Deletes every request key of `namespace` under the current version; returns how many.
    /// [`Error::InvalidKey`] for an empty namespace or one containing `:`.
    pub async fn invalidate_namespace(&self, namespace: &str) -> Result<u64> {
        self.inner
            .cache
            .remove_by(Removal::Namespace, namespace)
            .await
    }

    /// Deletes every key under `version`; returns how many.
    pub async fn invalidate_version(&self, version: &str) -> Result<u64> {
        self.inner.cache.remove_by(Removal::Version, version).await
    }

    /// Switches to `version` and removes the old version's keys; returns how many went.
    pub async fn update_version(&self, version: &str) -> Result<u64> {
        self.inner
            .cache
            .remove_by(Removal::SwitchVersion, version)
            .await
    }

    /// Removes every entry of the memory tier (Upstash is left alone: use
    /// [`Cache::invalidate_version`] or [`Cache::delete_pattern`] there).
    pub fn clear(&self) -> Result<()> {
        self.inner.cache.clear()
    }

    /// Statistics (serialize it for the JSON the JavaScript `stats()` returns).
    pub async fn stats(&self) -> Stats {
        Stats(self.inner.cache.snapshot(false).await)
    }

    /// Pings Upstash: `healthy` when it answers, `degraded` while memory serves in its place,
    /// `unhealthy` when nothing serves (or after [`Cache::shutdown`]).
    pub async fn health(&self) -> Health {
        Health {
            report: self.inner.cache.health().await,
        }
    }

    /// Shuts the cache down: later operations fail with [`Error::ShutDown`], and generators
    /// running are abandoned (their signals abort; their callers get `SHUT_DOWN`).
    pub fn shutdown(&self) {
        self.inner.cache.shutdown();
        let running = std::mem::take(&mut *self.inner.running.borrow_mut());
        for gen in running {
            gen.abandon(Error::ShutDown);
        }
        let streams = std::mem::take(&mut *self.inner.streams.borrow_mut());
        for flight in streams.into_values() {
            flight.gen.abandon(Error::ShutDown);
            if matches!(*flight.phase.borrow(), Phase::Streaming) {
                flight.finish(Err(Error::ShutDown));
            }
        }
    }
}

/// A generator's failure, as every caller waiting for it gets it.
fn generator_failed(e: impl Display) -> Error {
    Error::GeneratorFailed(format!("generator failed: {e}"))
}

/// What [`Cache::stats`] returns: the snapshot, serialized with the JavaScript `stats()` field
/// names (`hitRatePercent`, `avgLatencyMs`, `upstash: { keyspaceHits, ... }`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats(pub StatsSnapshot);

impl std::ops::Deref for Stats {
    type Target = StatsSnapshot;

    fn deref(&self) -> &StatsSnapshot {
        &self.0
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_fields(serializer, "Stats", &self.0.fields())
    }
}

/// A report's fields ([`crate::stats::Field`]) as a serde struct: absent fields are skipped.
fn serialize_fields<S: Serializer>(
    serializer: S,
    name: &'static str,
    fields: &[(&'static str, crate::stats::Field<'_>)],
) -> std::result::Result<S::Ok, S::Error> {
    use crate::stats::Field;
    let mut o = serializer.serialize_struct(name, fields.len())?;
    for &(key, field) in fields {
        match field {
            Field::Text(s) => o.serialize_field(key, s)?,
            Field::Count(n) => o.serialize_field(key, &n)?,
            Field::Number(n) => o.serialize_field(key, &n)?,
            Field::Flag(b) => o.serialize_field(key, &b)?,
            Field::Upstash(u) => o.serialize_field(key, &UpstashFigures(u))?,
            Field::Absent => o.skip_field(key)?,
        }
    }
    o.end()
}

/// `stats.upstash`, serialized from [`crate::stats::UpstashStats::fields`].
struct UpstashFigures<'a>(&'a crate::stats::UpstashStats);

impl Serialize for UpstashFigures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_fields(serializer, "UpstashStats", &self.0.fields())
    }
}

/// What [`Cache::health`] returns; serializes as `{ status, backend, latencyMs, error? }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Status, backend, latency of the probe, and why it is not healthy.
    pub report: HealthReport,
}

impl Health {
    /// The status.
    pub fn status(&self) -> HealthStatus {
        self.report.status
    }

    /// `"upstash"` or `"memory"`.
    pub fn backend(&self) -> &'static str {
        self.report.backend
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_fields(serializer, "Health", &self.report.fields())
    }
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------
//
// `get_or_set_stream`, as the JavaScript `getOrSetStream` (pkg-template/memory-cache.js, "streams"):
// one generation per key in the isolate, a task of its own that reads the source as fast as it
// produces and keeps every chunk in order; each reader replays the chunks so far and then follows
// the live ones. The recording is stored, as `{ "cachette/stream": 1, chunks, bytes }` (the
// JavaScript format: byte chunks as base64, their indices in `bytes`), only when the source ends
// cleanly.

/// The tag of a stored recording.
const STREAM_TAG: &str = "cachette/stream";
/// The default `max_stream_bytes`: 4 MiB.
const MAX_STREAM_BYTES: u64 = 4 * 1024 * 1024;
/// How long a reader waiting for a chunk sleeps at most before it looks again. The wait is a JS
/// promise resolved by the generation's task, which may belong to another request; the pending
/// timer is what workerd sees, so that it does not cancel the waiting request as hung.
const READER_TICK_MS: u64 = 1_000;

/// One chunk of a stream: what the JavaScript `getOrSetStream` carries (a string, a
/// `Uint8Array`, or any other JSON value), so that a recording is the same in both languages.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// Text (a JavaScript string).
    Text(String),
    /// Bytes (a JavaScript `Uint8Array`; stored as base64).
    Bytes(Vec<u8>),
    /// Any other JSON value. A JSON string is recorded as text: it replays as [`Chunk::Text`].
    Json(serde_json::Value),
}

impl Chunk {
    /// What the chunk weighs against `max_stream_bytes`: the UTF-8 bytes of text, the bytes, or
    /// the bytes of a value's JSON (as in JavaScript).
    pub fn size(&self) -> u64 {
        match self {
            Chunk::Text(s) => s.len() as u64,
            Chunk::Bytes(b) => b.len() as u64,
            Chunk::Json(v) => serde_json::to_string(v).map_or(0, |t| t.len() as u64),
        }
    }

    /// The text of a [`Chunk::Text`] (or of a JSON string).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Chunk::Text(s) => Some(s),
            Chunk::Json(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The chunk as the JSON value a recording holds (bytes as base64).
    fn recorded(&self) -> serde_json::Value {
        use base64::Engine;
        match self {
            Chunk::Text(s) => serde_json::Value::String(s.clone()),
            Chunk::Bytes(b) => {
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            Chunk::Json(v) => v.clone(),
        }
    }
}

impl From<String> for Chunk {
    fn from(s: String) -> Chunk {
        Chunk::Text(s)
    }
}

impl From<&str> for Chunk {
    fn from(s: &str) -> Chunk {
        Chunk::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(b: Vec<u8>) -> Chunk {
        Chunk::Bytes(b)
    }
}

impl From<serde_json::Value> for Chunk {
    fn from(v: serde_json::Value) -> Chunk {
        Chunk::Json(v)
    }
}

/// The JSON text of a finished recording of `chunks`, keys in the JavaScript order.
fn recording(chunks: &[Chunk]) -> Result<Text> {
    let values: Vec<serde_json::Value> = chunks.iter().map(Chunk::recorded).collect();
    let bytes: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| matches!(c, Chunk::Bytes(_)).then_some(i))
        .collect();
    let chunks = serde_json::to_string(&values)
        .map_err(|e| Error::Unserializable(format!("the recording cannot be serialized: {e}")))?;
    let bytes = serde_json::to_string(&bytes)
        .map_err(|e| Error::Unserializable(format!("the recording cannot be serialized: {e}")))?;
    Ok(Rc::from(format!(
        "{{\"{STREAM_TAG}\":1,\"chunks\":{chunks},\"bytes\":{bytes}}}"
    )))
}

/// The chunks of a stored recording, or `None` for any other value (or bytes that are not
/// base64).
fn recorded(text: &str) -> Option<Vec<Chunk>> {
    use base64::Engine;
    let serde_json::Value::Object(mut o) = serde_json::from_str(text).ok()? else {
        return None;
    };
    if o.get(STREAM_TAG).and_then(serde_json::Value::as_u64) != Some(1) {
        return None;
    }
    let serde_json::Value::Array(values) = o.remove("chunks")? else {
        return None;
    };
    let mut chunks: Vec<Chunk> = values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Chunk::Text(s),
            v => Chunk::Json(v),
        })
        .collect();
    if let Some(serde_json::Value::Array(bytes)) = o.get("bytes") {
        for i in bytes.iter().filter_map(serde_json::Value::as_u64) {
            let Some(chunk) = usize::try_from(i).ok().and_then(|i| chunks.get_mut(i)) else {
                continue;
            };
            if let Chunk::Text(s) = chunk {
                let b = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
                *chunk = Chunk::Bytes(b);
            }
        }
    }
    Some(chunks)
}

/// A stream of chunks, as [`StreamEntry`] holds it: a failure of the source ends it with
/// [`Error::GeneratorFailed`] (or why the generation stopped: [`Error::ShutDown`]).
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk>>>>;

/// What [`Cache::get_or_set_stream`] returns.
pub struct StreamEntry {
    /// The chunks: forwarded as the source produces them (`Miss`), the chunks so far and then
    /// the live ones (`Joined`), or the recording replayed (`Hit`). Dropping it detaches this
    /// reader; when every reader is gone before the end, the generation is abandoned.
    pub stream: ChunkStream,
    /// `Hit`, `Miss` or `Joined`.
    pub status: CacheStatus,
    /// The request key.
    pub key: String,
}

impl fmt::Debug for StreamEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamEntry")
            .field("status", &self.status)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Per-call options of [`Cache::get_or_set_stream`]: the recording's TTL and grace (checked as
/// [`GetOrSetOptions`] checks them), the largest recording kept, and `waitUntil`.
#[derive(Clone, Default)]
pub struct StreamOptions {
    call: GetOrSetOptions,
    max_stream_bytes: Option<u64>,
}

impl fmt::Debug for StreamOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamOptions")
            .field("ttl", &self.call.ttl)
            .field("grace", &self.call.grace)
            .field("max_stream_bytes", &self.max_stream_bytes)
            .field("wait_until", &self.call.wait_until.is_some())
            .finish()
    }
}

impl StreamOptions {
    /// The cache's defaults, and recordings of at most 4 MiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// The recording's TTL (`f64::INFINITY`: never expires).
    pub fn ttl(mut self, ttl: impl Seconds) -> Self {
        self.call = self.call.ttl(ttl);
        self
    }

    /// How long past its TTL the recording is kept in memory.
    pub fn grace(mut self, grace: impl Seconds) -> Self {
        self.call = self.call.grace(grace);
        self
    }

    /// The largest recording stored, in bytes (UTF-8 bytes of text chunks, bytes of byte
    /// chunks, JSON bytes of the others; default 4 MiB): a larger stream is still forwarded to
    /// every reader, and not cached. [`Error::InvalidOptions`] for 0.
    pub fn max_stream_bytes(mut self, bytes: u64) -> Self {
        self.max_stream_bytes = Some(bytes);
        self
    }

    /// Hands the task this call starts (the read of the cache, then the generation on a miss;
    /// a call that joins starts none) to the Worker's `ctx.waitUntil`, so that it runs to its
    /// end for the other readers (and is stored) when this request goes away.
    pub fn wait_until(mut self, ctx: &::worker::Context) -> Self {
        self.call = self.call.wait_until(ctx);
        self
    }

    /// As [`StreamOptions::wait_until`], through a function of your own.
    pub fn wait_until_with(
        mut self,
        hand: impl Fn(Pin<Box<dyn Future<Output = ()>>>) + 'static,
    ) -> Self {
        self.call = self.call.wait_until_with(hand);
        self
    }

    fn max(&self) -> Result<u64> {
        match self.max_stream_bytes {
            Some(0) => Err(Error::InvalidOptions(
                "getOrSetStream options: maxStreamBytes must be a whole number of bytes >= 1"
                    .to_owned(),
            )),
            Some(n) => Ok(n),
            None => Ok(MAX_STREAM_BYTES),
        }
    }
}

/// A generator of [`Cache::get_or_set_stream`] with its types erased: called with the
/// generation's state, it comes to the source.
type StreamJob = Box<dyn FnOnce(Rc<Gen>) -> Pin<Box<dyn Future<Output = Result<ChunkStream>>>>>;

/// A generator's source, its items as chunks and its errors as [`Error::GeneratorFailed`].
struct Source<S>(Pin<Box<S>>);

impl<S, C, E> Stream for Source<S>
where
    S: Stream<Item = std::result::Result<C, E>>,
    C: Into<Chunk>,
    E: Display,
{
    type Item = Result<Chunk>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Chunk>>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(Into::into).map_err(generator_failed)))
    }
}

/// Where a key's stream stands.
enum Phase {
    /// The lead task reads the cache (and then calls the generator).
    Reading,
    /// The cache held a recording.
    Hit(Rc<Vec<Chunk>>),
    /// The generator's source is being read.
    Streaming,
    /// The read or the generator failed before there was a source.
    Failed(Error),
}

/// The stream of one key, shared by every caller and reader of it.
struct StreamFlight {
    gen: Rc<Gen>,
    phase: RefCell<Phase>,
    chunks: RefCell<Vec<Chunk>>,
    bytes: Cell<u64>,
    /// Not to be stored: larger than `max_stream_bytes`.
    too_large: Cell<bool>,
    /// `Some(Ok)`: the source ended cleanly; `Some(Err)`: it failed or was abandoned.
    end: RefCell<Option<Result<()>>>,
    /// Resolved (and replaced) at every change: readers of any request wait for it.
    tick: RefCell<Rc<Signal>>,
    /// Callers waiting for the phase, and readers not finished.
    holders: Cell<u32>,
    /// The lead task has ended (the recording, if any, stored).
    task_done: Cell<bool>,
}

impl StreamFlight {
    fn new(key: &str) -> Result<StreamFlight> {
        Ok(StreamFlight {
            gen: Rc::new(Gen::new(key, None)?),
            phase: RefCell::new(Phase::Reading),
            chunks: RefCell::default(),
            bytes: Cell::new(0),
            too_large: Cell::new(false),
            end: RefCell::new(None),
            tick: RefCell::new(Rc::new(Signal::default())),
            holders: Cell::new(0),
            task_done: Cell::new(false),
        })
    }

    /// Wakes every reader (of any request).
    fn wake(&self) {
        let old = std::mem::replace(&mut *self.tick.borrow_mut(), Rc::new(Signal::default()));
        old.notify();
    }

    /// Resolves at the next change, or after [`READER_TICK_MS`].
    fn changed(&self) -> impl Future<Output = ()> + 'static {
        let tick = self.tick.borrow().clone();
        async move {
            let mut signal = pin!(tick.wait());
            let mut timer = pin!(sleep(READER_TICK_MS));
            poll_fn(|cx| {
                if signal.as_mut().poll(cx).is_ready() || timer.as_mut().poll(cx).is_ready() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
    }

    fn ended(&self) -> bool {
        self.end.borrow().is_some()
            || matches!(*self.phase.borrow(), Phase::Hit(_) | Phase::Failed(_))
    }

    /// Ends the stream (once) with `end`, and wakes every reader.
    fn finish(&self, end: Result<()>) {
        if self.end.borrow().is_none() {
            *self.end.borrow_mut() = Some(end);
        }
        self.wake();
    }
}

/// A caller or reader holding a stream flight; the last one to let go before the end abandons
/// the generation (its signal aborts, its source is dropped, nothing is stored).
struct Holding {
    inner: Rc<Inner>,
    key: String,
    flight: Rc<StreamFlight>,
}

impl Holding {
    fn new(inner: &Rc<Inner>, key: &str, flight: &Rc<StreamFlight>) -> Holding {
        flight.holders.set(flight.holders.get() + 1);
        Holding {
            inner: inner.clone(),
            key: key.to_owned(),
            flight: flight.clone(),
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let f = &self.flight;
        f.holders.set(f.holders.get().saturating_sub(1));
        if f.holders.get() == 0 && !f.ended() {
            let why = Error::Timeout(
                "the stream was abandoned: every reader of it was dropped".to_owned(),
            );
            self.inner.finish_stream(&self.key, f);
            f.gen.abandon(why.clone());
            f.finish(Err(why));
        }
    }
}

/// A reader of a stream being generated: the chunks so far, then the live ones.
struct Follow {
    holding: Option<Holding>,
    next: usize,
    waiting: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl Stream for Follow {
    type Item = Result<Chunk>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Chunk>>> {
        loop {
            let Some(holding) = &self.holding else {
                return Poll::Ready(None);
            };
            let flight = holding.flight.clone();
            let chunk = flight.chunks.borrow().get(self.next).cloned();
            if let Some(chunk) = chunk {
                self.next += 1;
                self.waiting = None;
                return Poll::Ready(Some(Ok(chunk)));
            }
            let end = flight.end.borrow().clone();
            if let Some(end) = end {
                // Finished: letting go now abandons nothing.
                self.holding = None;
                self.waiting = None;
                return Poll::Ready(end.err().map(Err));
            }
            let waiting = self
                .waiting
                .get_or_insert_with(|| Box::pin(flight.changed()));
            match waiting.as_mut().poll(cx) {
                Poll::Ready(()) => self.waiting = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A recording replayed.
struct Replay {
    chunks: Rc<Vec<Chunk>>,
    next: usize,
}

impl Stream for Replay {
    type Item = Result<Chunk>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Chunk>>> {
        let chunk = self.chunks.get(self.next).cloned();
        self.next += 1;
        Poll::Ready(chunk.map(Ok))
    }
}

impl Inner {
    /// Forgets `key`'s stream if it is still `flight`.
    fn finish_stream(&self, key: &str, flight: &Rc<StreamFlight>) {
        let Ok(mut streams) = self.streams.try_borrow_mut() else {
            return;
        };
        if streams.get(key).is_some_and(|f| Rc::ptr_eq(f, flight)) {
            streams.remove(key);
        }
    }

    /// The lead task of a key's stream: reads the cache; on a recording, the flight is a hit;
    /// else calls the generator and reads its source to the end (or until abandoned), then
    /// stores the recording when it ended cleanly, was not skipped and is not too large.
    async fn lead_stream(
        self: Rc<Self>,
        flight: Rc<StreamFlight>,
        key: String,
        job: StreamJob,
        policy: CallPolicy,
        max: u64,
    ) {
        let gen = flight.gen.clone();
        let source = async {
            let held = self.cache.get(&key).await?;
            if let Some(chunks) = held.as_deref().and_then(recorded) {
                return Ok(Err(chunks));
            }
            self.cache.check_open()?;
            if let Some(e) = gen.abandoned() {
                return Err(e);
            }
            self.running.borrow_mut().push(gen.clone());
            let mut calling = job(gen.clone());
            poll_fn(|cx| {
                if let Some(e) = gen.abandoned() {
                    return Poll::Ready(Err(e));
                }
                if let Poll::Ready(r) = calling.as_mut().poll(cx) {
                    return Poll::Ready(r.map(Ok));
                }
                *gen.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await
        }
        .await;
        let mut source = match source {
            Ok(Ok(source)) => source,
            Ok(Err(chunks)) => {
                *flight.phase.borrow_mut() = Phase::Hit(Rc::new(chunks));
                self.finish_stream(&key, &flight);
                flight.wake();
                return;
            }
            Err(e) => {
                *flight.phase.borrow_mut() = Phase::Failed(e);
                self.finish_stream(&key, &flight);
                self.forget_running(&gen);
                flight.wake();
                return;
            }
        };
        *flight.phase.borrow_mut() = Phase::Streaming;
        flight.wake();
        let end = loop {
            let next = poll_fn(|cx| {
                if let Some(e) = gen.abandoned() {
                    return Poll::Ready(Some(Err(e)));
                }
                if let Poll::Ready(item) = source.as_mut().poll_next(cx) {
                    return Poll::Ready(item);
                }
                *gen.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            match next {
                Some(Ok(chunk)) => {
                    flight
                        .bytes
                        .set(flight.bytes.get().saturating_add(chunk.size()));
                    if flight.bytes.get() > max && !flight.too_large.get() {
                        // Not kept, and counted once in stats().errors, as in JavaScript.
                        flight.too_large.set(true);
                        self.cache.count_error();
                    }
                    flight.chunks.borrow_mut().push(chunk);
                    flight.wake();
                }
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            }
        };
        // The source is dropped before anything else: a failed or abandoned one stops here.
        drop(source);
        self.forget_running(&gen);
        match end {
            Ok(()) => {
                flight.finish(Ok(()));
                // Until the recording is stored, a call for the key joins this finished
                // generation (its chunks, then the end) rather than generating again, as in
                // JavaScript.
                if gen.skipped.get() || flight.too_large.get() || gen.abandoned().is_some() {
                    self.finish_stream(&key, &flight);
                } else {
                    let stored = async {
                        let text = recording(&flight.chunks.borrow())?;
                        let p = policy.with_ttl(gen.ttl_ms.get());
                        let size = self.cache.text_size(&text);
                        self.cache
                            .store_text(&key, text.clone(), Some(&text), size, &p)
                            .await
                    };
                    // A recording the cache refuses (too large for max_bytes, Upstash down) is
                    // simply not kept: every reader has had its chunks.
                    if stored.await.is_err() {
                        self.cache.count_error();
                    }
                }
                self.finish_stream(&key, &flight);
            }
            Err(e) => {
                self.finish_stream(&key, &flight);
                // Tell the generator's own work (a fetch on ctx.signal()) to stop.
                gen.abandon(e.clone());
                flight.finish(Err(e));
            }
        }
    }

    fn forget_running(&self, gen: &Rc<Gen>) {
        if let Ok(mut running) = self.running.try_borrow_mut() {
            running.retain(|g| !Rc::ptr_eq(g, gen));
        }
    }
}

impl Cache {
    /// The recorded stream for `(namespace, data)`, or the one `generate(ctx)` comes to,
    /// forwarded as it is produced and recorded: the JavaScript `getOrSetStream`.
    ///
    /// - `Miss`: this call started the generation; its stream forwards each chunk as the source
    ///   produces it. The generation runs in a task of its own (hence `'static` generators),
    ///   handed to `wait_until` when given.
    /// - `Joined`: a generation of this key is under way in the isolate (from any request), or
    ///   has ended cleanly and its recording is being stored: the chunks so far, then the live
    ///   ones.
    /// - `Hit`: the recording, replayed.
    /// - The recording (`{ "cachette/stream": 1, chunks, bytes }`, the JavaScript format, so that
    ///   Rust and JavaScript Workers share recordings over Upstash) is stored only when the
    ///   source ends cleanly: not when it fails, is abandoned, is skipped (`ctx.skip()`) or
    ///   comes to more than `max_stream_bytes`. `ctx.ttl(d)` sets its TTL.
    /// - Dropping a stream detaches its reader; once every reader (and every caller still
    ///   waiting) is gone before the end, the generation is abandoned: `ctx.signal()` aborts,
    ///   the source is dropped, nothing is stored.
    /// - A failing source (an `Err` item, or an `Err` from `generate`) ends every reader with
    ///   [`Error::GeneratorFailed`] after the chunks so far.
    ///
    /// [`Error::InvalidOptions`] for options out of range, before anything runs.
    ///
    /// ```ignore
    /// // `tokens(topic)`: any `Stream<Item = Result<String, E>>` (a model's tokens, say).
    /// let options = StreamOptions::new().ttl("1h").wait_until(&ctx);
    /// let entry = cache
    ///     .get_or_set_stream("explain", &json!({ "topic": topic }), &options, move |ctx| async move {
    ///         Ok::<_, MyError>(tokens(topic, ctx.signal()))
    ///     })
    ///     .await?;
    /// // entry.status: Miss, Joined or Hit; entry.stream: `Stream<Item = Result<Chunk>>`.
    /// ```
    pub async fn get_or_set_stream<D, C, E, F, Fut, S>(
        &self,
        namespace: &str,
        data: &D,
        options: &StreamOptions,
        generate: F,
    ) -> Result<StreamEntry>
    where
        D: Serialize + ?Sized,
        C: Into<Chunk> + 'static,
        E: Display + 'static,
        F: FnOnce(GenerationContext<Chunk>) -> Fut + 'static,
        Fut: Future<Output = std::result::Result<S, E>> + 'static,
        S: Stream<Item = std::result::Result<C, E>> + 'static,
    {
        let policy = options.call.policy(
            self.inner.cache.defaults(),
            self.inner.windows,
            self.inner.lock,
            self.inner.cache.is_shared(),
        )?;
        let max = options.max()?;
        let key = self.key(namespace, data)?;
        self.inner.cache.check_open()?;
        let running = self.inner.streams.borrow().get(&key).cloned();
        let (flight, status) = match running {
            Some(f) => (f, CacheStatus::Joined),
            None => {
                let flight = Rc::new(StreamFlight::new(&key)?);
                self.inner
                    .streams
                    .borrow_mut()
                    .insert(key.clone(), flight.clone());
                let job: StreamJob = Box::new(move |gen| {
                    Box::pin(async move {
                        let ctx = GenerationContext {
                            gen,
                            value: PhantomData,
                        };
                        let source = generate(ctx).await.map_err(generator_failed)?;
                        Ok(Box::pin(Source(Box::pin(source))) as ChunkStream)
                    })
                });
                let task =
                    self.inner
                        .clone()
                        .lead_stream(flight.clone(), key.clone(), job, policy, max);
                let f = flight.clone();
                spawn(async move {
                    task.await;
                    f.task_done.set(true);
                    f.wake();
                });
                if let Some(hand) = &options.call.wait_until {
                    // Until the task is done: the recording is stored after the readers' end.
                    let f = flight.clone();
                    hand(Box::pin(async move {
                        while !f.task_done.get() {
                            f.changed().await;
                        }
                    }));
                }
                (flight, CacheStatus::Miss)
            }
        };
        let holding = Holding::new(&self.inner, &key, &flight);
        loop {
            if !matches!(*flight.phase.borrow(), Phase::Reading) {
                break;
            }
            flight.changed().await;
        }
        let phase = match &*flight.phase.borrow() {
            Phase::Reading | Phase::Streaming => None,
            Phase::Hit(chunks) => Some(Ok(chunks.clone())),
            Phase::Failed(e) => Some(Err(e.clone())),
        };
        match phase {
            Some(Ok(chunks)) => Ok(StreamEntry {
                stream: Box::pin(Replay { chunks, next: 0 }),
                status: CacheStatus::Hit,
                key,
            }),
            Some(Err(e)) => Err(e),
            None => Ok(StreamEntry {
                stream: Box::pin(Follow {
                    holding: Some(holding),
                    next: 0,
                    waiting: None,
                }),
                status,
                key,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use crate::stats::{Counters, Field, UpstashStats};

    /// The names of the fields that have a value, sorted.
    fn present(fields: &[(&'static str, Field<'_>)]) -> Vec<String> {
        let mut names: Vec<String> = fields
            .iter()
            .filter(|(_, f)| *f != Field::Absent)
            .map(|(n, _)| (*n).to_owned())
            .collect();
        names.sort();
        names
    }

    /// The keys of the JSON object `v` serializes to, sorted.
    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        keys.sort();
        keys
    }

    fn snapshot(upstash: Option<UpstashStats>) -> StatsSnapshot {
        StatsSnapshot {
            backend: "upstash",
            version: "v1".to_owned(),
            counters: Counters::default(),
            hit_rate_percent: 0.0,
            total_requests: 0,
            avg_latency_ms: 0.0,
            p99_latency_ms: 0.0,
            keys: 0,
            max_entries: 1,
            memory_used_bytes: 0,
            cleanup_timer_active: false,
            fallback_active: false,
            upstash,
        }
    }

    #[wasm_bindgen_test]
    fn stats_serialize_with_the_field_list() {
        for upstash in [None, Some(UpstashStats::default())] {
            let s = snapshot(upstash);
            let json = serde_json::to_value(Stats(s.clone())).expect("serializes");
            assert_eq!(keys(&json), present(&s.fields()));
            match upstash {
                Some(u) => assert_eq!(keys(&json["upstash"]), present(&u.fields())),
                None => assert!(json.get("upstash").is_none()),
            }
        }
    }

    #[wasm_bindgen_test]
    fn health_serializes_with_the_field_list() {
        for error in [None, Some("down".to_owned())] {
            let h = Health {
                report: HealthReport {
                    status: HealthStatus::Degraded,
                    backend: "upstash",
                    latency_ms: 1.5,
                    error,
                },
            };
            let json = serde_json::to_value(&h).expect("serializes");
            assert_eq!(keys(&json), present(&h.report.fields()));
        }
    }

    #[wasm_bindgen_test]
    fn statuses_are_named_as_in_javascript() {
        let all = [
            CacheStatus::Hit,
            CacheStatus::Miss,
            CacheStatus::Joined,
            CacheStatus::Stale,
            CacheStatus::StaleError,
        ];
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["hit", "miss", "joined", "stale", "stale-error"]);
    }

    fn defaults(o: &Options) -> (CallPolicy, (Stale, Stale)) {
        (o.defaults(), (o.stale_while_revalidate, o.stale_if_error))
    }

    #[wasm_bindgen_test]
    fn call_policies_are_built_over_the_defaults() {
        let o = Options {
            ttl: 60.0,
            grace: 600.0,
            stale_while_revalidate: Stale::Grace,
            timeout: 2.0,
            ..Options::default()
        };
        let (d, w) = defaults(&o);
        let none = GetOrSetOptions::new()
            .policy(&d, w, Lock::Off, false)
            .expect("valid");
        assert_eq!(none, d);
        // A window of the grace period follows the call's grace.
        let p = GetOrSetOptions::new()
            .ttl("5m")
            .grace(Duration::from_secs(30))
            .stale_if_error(true)
            .timeout(0)
            .policy(&d, w, Lock::Off, false)
            .expect("valid");
        assert_eq!(p.ttl_ms, Some(300_000));
        assert_eq!((p.grace_ms, p.stale_while_revalidate_ms), (30_000, 30_000));
        assert_eq!((p.stale_if_error_ms, p.timeout_ms), (30_000, 0));
        let p = GetOrSetOptions::new()
            .ttl(f64::INFINITY)
            .stale_while_revalidate(false)
            .stale_if_error("1h")
            .policy(&d, w, Lock::Off, false)
            .expect("valid");
        assert_eq!(p.ttl_ms, None);
        assert_eq!(
            (p.stale_while_revalidate_ms, p.stale_if_error_ms),
            (0, 3_600_000)
        );
        assert_eq!(p.keep_ms(), 3_600_000);
    }

    #[wasm_bindgen_test]
    fn bad_call_options_are_invalid_options() {
        let (d, w) = defaults(&Options::default());
        let bad = [
            GetOrSetOptions::new().ttl(0),
            GetOrSetOptions::new().ttl("0s"),
            GetOrSetOptions::new().ttl("5 m"),
            GetOrSetOptions::new().ttl(f64::NAN),
            GetOrSetOptions::new().grace("1w"),
            GetOrSetOptions::new().grace(-1),
            GetOrSetOptions::new().timeout(f64::INFINITY),
            GetOrSetOptions::new().stale_if_error("x"),
            GetOrSetOptions::new().stale_while_revalidate(-1.0),
        ];
        for o in bad {
            let e = o.policy(&d, w, Lock::Off, false).expect_err("refused");
            assert_eq!(e.code(), "INVALID_OPTIONS", "{o:?}: {e}");
        }
        let zero = GetOrSetOptions::new()
            .ttl(0)
            .policy(&d, w, Lock::Off, false)
            .expect_err("refused");
        assert!(zero.to_string().contains("Infinity"), "{zero}");
    }

    fn memory() -> Cache {
        Cache::new(&Options {
            cleanup_interval: 0.0,
            ..Options::default()
        })
        .expect("a cache")
    }

    /// Resolves after `ms` milliseconds, through the global `setTimeout` (`worker::Delay`
    /// expects workerd's numeric timer ids, which Node.js does not give).
    async fn nap(ms: u32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let global = js_sys::global();
            let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            if let Some(f) = set_timeout {
                let _ = f.call2(&global, &resolve, &ms.into());
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    /// Polls `f` once, so that it starts.
    async fn poll_once<F: Future>(f: F) {
        let mut f = pin!(f);
        poll_fn(|cx| {
            let _ = f.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
    }

    #[wasm_bindgen_test]
    fn recordings_are_in_the_javascript_format() {
        let chunks = vec![
            Chunk::from("Hello"),
            Chunk::Bytes(vec![0, 1, 2, 255]),
            Chunk::Json(serde_json::json!({ "n": 1 })),
            Chunk::from(" world"),
        ];
        let text = recording(&chunks).expect("serializes");
        assert_eq!(
            &*text,
            r#"{"cachette/stream":1,"chunks":["Hello","AAEC/w==",{"n":1}," world"],"bytes":[1]}"#
        );
        assert_eq!(recorded(&text), Some(chunks));
        // What the JS package writes (keys in any order) reads back; other values do not.
        let js = r#"{"bytes":[],"chunks":["a",2],"cachette/stream":1}"#;
        let expected = vec![Chunk::from("a"), Chunk::Json(serde_json::json!(2))];
        assert_eq!(recorded(js), Some(expected));
        for other in [
            r#"{"chunks":["a"]}"#,
            r#"["a"]"#,
            r#"{"cachette/stream":2,"chunks":[]}"#,
        ] {
            assert_eq!(recorded(other), None, "{other}");
        }
        assert_eq!(Chunk::from("é").size(), 2);
    }

    #[wasm_bindgen_test]
    async fn shutdown_abandons_running_generators() {
        let c = memory();
        let signal = Rc::new(RefCell::new(None));
        let s = signal.clone();
        let gen = move |ctx: GenerationContext<u32>| async move {
            *s.borrow_mut() = Some(ctx.signal());
            nap(50).await;
            Ok::<_, String>(1)
        };
        let o = GetOrSetOptions::new();
        let mut call = Box::pin(c.get_or_set_entry("ns", &1, &o, gen));
        poll_once(call.as_mut()).await;
        nap(5).await;
        c.shutdown();
        let e = call.await.expect_err("shut down");
        assert_eq!(e.code(), "SHUT_DOWN");
        let aborted = signal.borrow().as_ref().map(AbortSignal::aborted);
        assert_eq!(aborted, Some(true));
    }
}
