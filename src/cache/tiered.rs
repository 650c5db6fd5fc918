//! [`TieredCache`]: the cache behind `Cache` (JavaScript) and the Rust Worker API. The memory
//! tier ([`MemoryTier`]) alone, or Upstash in front of it; every operation dispatches between the
//! two here, once.
//!
//! With Upstash:
//! - Reads and writes that cannot reach Upstash (transport failure, timeout, 5xx, a reply that
//!   is not the dialect, a refused token) go to memory when `fallback` is on: counted in
//!   `errors`, `fallbackActive` set until Upstash answers again. A command error (Upstash ran the
//!   command and it failed) is never hidden.
//! - Invalidations (`delete`, `deletePattern`, namespace and version invalidation) apply to
//!   memory first and then fail if Upstash could not apply them, so a caller never believes stale
//!   data was removed when it was not.
//! - Values travel as JSON text (`SET key text PX ttl`); the [`Codec`] turns values into text and
//!   back (`JSON.stringify`/`JSON.parse` in JavaScript).
//! - Memory keeps, within its bounds, the last value this cache wrote or read for a key, with
//!   its times ([`Held`]): it is served without asking Upstash while its near copy lasts
//!   (`localTtl`), and while Upstash is unreachable (`fallback`) as long as it is fresh; past its
//!   TTL it is a stale value that [`TieredCache::read`] offers for grace, stale-while-revalidate
//!   and stale-if-error.
//!
//! # Stale values
//! An entry stored under a [`CallPolicy`] with windows (`keep_ms() > 0`) stays in memory that
//! long past its TTL. [`TieredCache::get`] and the other plain reads never return it once it is
//! past its TTL; [`TieredCache::read`] does, saying how long past its TTL it is.
//!
//! Every operation is timed for the latency statistics.

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::rc::Rc;

use hashbrown::HashMap;

use super::generations::{self, scope, scope_name, scope_of, Op, SCRIPT};
use super::{MemoryTier, Removal};
use crate::clock::{secs_to_ms, Clock, NEVER_MS};
use crate::error::{Error, Result};
use crate::key::validate_key;
use crate::memory::RemovalCause;
use crate::options::{CallPolicy, Invalidation, Options};
use crate::stats::{Field, LockStats, StatsSnapshot};
use crate::upstash::{Client, Reply, Transport};

/// Turns values into JSON text and back.
pub trait Codec<V> {
    /// The JSON text of `value` (`UNSERIALIZABLE` when it has none).
    fn encode(&self, value: &V) -> Result<String>;
    /// The value of JSON `text`.
    fn decode(&self, text: &str) -> Result<V>;
}

/// A value in the memory tier with its times, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Held<V> {
    /// The value.
    pub value: V,
    /// When it was stored (read from Upstash: when it was stored there, as far as its remaining
    /// TTL and the reading call's TTL tell).
    pub stored_at: u64,
    /// When it stops being fresh ([`NEVER_MS`]: never).
    pub fresh_until: u64,
    /// Until when it is served without asking Upstash (the near copy; 0: not at all).
    pub near_until: u64,
    /// Generation mode: the namespace's counters when Upstash last confirmed the value; its
    /// near copy is served only while they are still the ones this cache last read.
    pub stamp: Option<Rc<str>>,
}

impl<V> Held<V> {
    /// `value` stored at `now`, fresh for `ttl_ms` (`None`: forever).
    pub fn new(value: V, now: u64, ttl_ms: Option<u64>) -> Self {
        Held {
            value,
            stored_at: now,
            fresh_until: ttl_ms.map_or(NEVER_MS, |t| now.saturating_add(t)),
            near_until: 0,
            stamp: None,
        }
    }

    /// Whether it is fresh at `now`.
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.fresh_until
    }

    /// What a read at `now` finds.
    pub fn found(&self, now: u64) -> Found<V>
    where
        V: Clone,
    {
        Found {
            value: self.value.clone(),
            age_ms: now.saturating_sub(self.stored_at),
            stale_ms: (!self.is_fresh(now)).then(|| now - self.fresh_until),
        }
    }
}

/// Why an entry left the memory tier, as `onRemove` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveCause {
    /// The least recently used entry when a bound was exceeded.
    Evicted,
    /// Its time (TTL, and any time kept past it) ran out.
    Expired,
    /// Deleted by key.
    Deleted,
    /// A new value was stored under its key.
    Replaced,
    /// Removed by a pattern, namespace or version invalidation.
    Invalidated,
    /// Removed by `clear`.
    Cleared,
}

impl RemoveCause {
    /// What a memory tier's removal `cause` is reported as; an explicit removal is `explicit`
    /// (what the operation that removed calls it).
    pub fn of(cause: RemovalCause, explicit: RemoveCause) -> RemoveCause {
        match cause {
            RemovalCause::Expired => RemoveCause::Expired,
            RemovalCause::Evicted => RemoveCause::Evicted,
            RemovalCause::Replaced => RemoveCause::Replaced,
            RemovalCause::Explicit => explicit,
        }
    }

    /// `"evicted"`, `"expired"`, `"deleted"`, `"replaced"`, `"invalidated"` or `"cleared"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoveCause::Evicted => "evicted",
            RemoveCause::Expired => "expired",
            RemoveCause::Deleted => "deleted",
            RemoveCause::Replaced => "replaced",
            RemoveCause::Invalidated => "invalidated",
            RemoveCause::Cleared => "cleared",
        }
    }
}

/// A value [`TieredCache::read`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<V> {
    /// The value.
    pub value: V,
    /// Milliseconds since it was stored.
    pub age_ms: u64,
    /// `None` when fresh; else how many milliseconds past its TTL it is.
    pub stale_ms: Option<u64>,
}

/// What [`TieredCache::read`] came to.
#[derive(Debug)]
pub struct Read<V> {
    /// The value found, fresh or stale.
    pub found: Option<Found<V>>,
    /// Upstash could not be used (and memory answered instead).
    pub shared_error: Option<Error>,
    /// Generation mode: the generation Upstash was at, which a value generated after this
    /// read is stored under (and not at all if it has moved on).
    pub since: Option<Since>,
}

/// The generation a read saw (`{v}.{n}|`), in generation mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since(String);

/// A shared-tier lock this cache holds on a key ([`TieredCache::claim`]); release it with
/// [`TieredCache::store_generated`] or [`TieredCache::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    key: String,
    token: String,
}

/// What [`TieredCache::claim`] came to.
#[derive(Debug)]
pub enum Claim<V> {
    /// Generate: holding the lock (`Some`), or without one (no lock asked for, Upstash could
    /// not be asked, or the wait for another instance ran out). `since` is the generation to
    /// store under when the claim read it.
    Generate {
        /// The lock held.
        lock: Option<Lock>,
        /// The generation the claim's read saw.
        since: Option<Since>,
    },
    /// Another instance stored a fresh value meanwhile.
    Found(Found<V>),
    /// A background refresh whose lock another instance holds: that instance refreshes.
    Busy,
}

/// What Upstash answered for a read.
struct Fetched {
    value: Option<Vec<u8>>,
    pttl: Option<i64>,
    since: Option<Since>,
    stamp: Option<Rc<str>>,
}

/// The removals of memory entries waiting to be reported: key, value, cause.
type Removals<V> = Rc<RefCell<Vec<(String, V, RemoveCause)>>>;

/// `health()` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// The cache serves normally.
    Healthy,
    /// Upstash is unreachable and memory is serving.
    Degraded,
    /// Nothing serves (Upstash unreachable without fallback, or the cache is shut down).
    Unhealthy,
}

impl HealthStatus {
    /// `"healthy"`, `"degraded"` or `"unhealthy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// What `health()` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// `"memory"` or `"upstash"`.
    pub backend: &'static str,
    /// Round-trip time of the probe, milliseconds.
    pub latency_ms: f64,
    /// Why it is not healthy (never containing the token).
    pub error: Option<String>,
}

impl HealthReport {
    /// The fields of the `health()` object, as `(name, value)` in order; `error` is
    /// [`Field::Absent`] when healthy.
    pub fn fields(&self) -> [(&'static str, Field<'_>); 4] {
        [
            ("status", Field::Text(self.status.as_str())),
            ("backend", Field::Text(self.backend)),
            ("latencyMs", Field::Number(self.latency_ms)),
            (
                "error",
                self.error.as_deref().map_or(Field::Absent, Field::Text),
            ),
        ]
    }
}

/// Whether an error means Upstash could not be used (as opposed to a command failing there).
fn unreachable(e: &Error) -> bool {
    matches!(
        e,
        Error::UpstashTransport(_)
            | Error::Timeout(_)
            | Error::UpstashProtocol(_)
            | Error::UpstashAuth(_)
    )
}

struct Shared<T> {
    client: Client<T>,
    fallback: bool,
    local_ttl_ms: u64,
    mode: Invalidation,
    check_ms: u64,
    /// Generation mode: the counters last read for each scope (`{version}:{namespace}`), and
    /// when.
    known: RefCell<HashMap<String, (Rc<str>, u64)>>,
    locks: Cell<LockStats>,
}

impl<T> Shared<T> {
    fn count_locks(&self, f: impl FnOnce(&mut LockStats)) {
        let mut l = self.locks.get();
        f(&mut l);
        self.locks.set(l);
    }

    /// Whether `key` goes through the script (generation mode, scoped key).
    fn scripted(&self, key: &str) -> bool {
        self.mode == Invalidation::Generation && scope(key).is_some()
    }

    /// Remembers the counters Upstash answered for `key`'s scope.
    fn note(&self, key: &str, stamp: &Rc<str>, now: u64) {
        if let Some(name) = scope_of(key) {
            let mut known = self.known.borrow_mut();
            if known.len() >= KNOWN_SCOPES {
                // Forgetting costs each scope one read when its near copies are next wanted.
                known.clear();
            }
            known.insert(name.to_owned(), (stamp.clone(), now));
        }
    }

    /// The generation this cache last saw for `key`'s scope (generation mode): what a value
    /// generated from now on is stored under, unless a read tells a later one.
    fn since(&self, key: &str) -> Option<Since> {
        if self.mode != Invalidation::Generation {
            return None;
        }
        let known = self.known.borrow();
        let (stamp, _) = known.get(scope_of(key)?)?;
        let end = stamp.find('|')? + 1;
        Some(Since(stamp[..end].to_owned()))
    }

    /// Whether memory's copy `held` of `key` may be served without asking Upstash at `now`.
    fn near<V>(&self, key: &str, held: &Held<V>, now: u64) -> bool {
        if !(now < held.near_until && held.is_fresh(now)) {
            return false;
        }
        if self.mode == Invalidation::Scan {
            return true;
        }
        let Some(name) = scope_of(key) else {
            return true;
        };
        let known = self.known.borrow();
        match (known.get(name), &held.stamp) {
            (Some((stamp, at)), Some(s)) => stamp == s && now < at.saturating_add(self.check_ms),
            _ => false,
        }
    }
}

/// How many scopes' counters a cache remembers before it starts again.
const KNOWN_SCOPES: usize = 4096;

/// The one reply of a one-command pipeline.
fn only(replies: Vec<Result<Reply>>) -> Result<Reply> {
    replies.into_iter().next().unwrap_or_else(|| {
        Err(Error::UpstashProtocol(
            "an empty pipeline answer".to_owned(),
        ))
    })
}

/// The script's answer, or a protocol error.
fn script_answer(reply: Reply) -> Result<generations::Answer> {
    generations::answer(reply)
        .ok_or_else(|| Error::UpstashProtocol("the generation script answered oddly".to_owned()))
}

/// The memory tier, with Upstash in front of it when configured.
///
/// `V` is the value type, `T` the HTTP [`Transport`] to Upstash (`FetchTransport` in
/// JavaScript runtimes, workers-rs's fetch in Rust Workers) and `C` the [`Codec`] between values
/// and text. A memory-only cache never touches its transport:
///
/// ```
/// use std::future::Future;
/// use std::rc::Rc;
/// use cachette::cache::{Codec, TieredCache};
/// use cachette::clock::ManualClock;
/// use cachette::options::Options;
/// use cachette::upstash::{HttpRequest, HttpResponse, LocalFuture, Transport, TransportError};
///
/// struct Text;
/// impl Codec<String> for Text {
///     fn encode(&self, v: &String) -> cachette::Result<String> { Ok(v.clone()) }
///     fn decode(&self, t: &str) -> cachette::Result<String> { Ok(t.to_owned()) }
/// }
/// struct NoNetwork;
/// impl Transport for NoNetwork {
///     fn send(&self, _: HttpRequest) -> LocalFuture<'_, Result<HttpResponse, TransportError>> {
///         Box::pin(async { Err(TransportError::Failed("no network".into())) })
///     }
///     fn sleep(&self, _: u32) -> LocalFuture<'_, ()> { Box::pin(async {}) }
///     fn random(&self) -> u64 { 4 }
/// }
/// // Memory answers at once: every future is ready when first polled.
/// fn now<F: Future>(f: F) -> F::Output {
///     let waker = std::task::Waker::noop();
///     match std::pin::pin!(f).poll(&mut std::task::Context::from_waker(waker)) {
///         std::task::Poll::Ready(v) => v,
///         std::task::Poll::Pending => unreachable!(),
///     }
/// }
///
/// let clock = Rc::new(ManualClock::new(0));
/// let options = Options { ttl: 60.0, ..Options::default() };
/// let cache = TieredCache::new(&options, NoNetwork, Text, clock.clone())?;
/// let key = cache.request_key("answers", r#"{"q":"why"}"#)?;
/// now(cache.set(&key, "because".to_owned(), 0, None))?;
/// assert_eq!(now(cache.get(&key))?.as_deref(), Some("because"));
/// clock.advance_ms(60_000);
/// assert_eq!(now(cache.get(&key))?, None, "past its TTL");
/// # Ok::<(), cachette::Error>(())
/// ```
pub struct TieredCache<V, T, C> {
    memory: RefCell<MemoryTier<Held<V>>>,
    shared: Option<Shared<T>>,
    codec: C,
    clock: Rc<dyn Clock>,
    fallback_active: Cell<bool>,
    defaults: CallPolicy,
    /// What the memory tier's explicit removals are reported as, for the operation running.
    explicit: Rc<Cell<RemoveCause>>,
    removals: Option<Removals<V>>,
}

impl<V, T, C> std::fmt::Debug for TieredCache<V, T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("backend", &self.backend())
            .field("fallback_active", &self.fallback_active.get())
            .finish_non_exhaustive()
    }
}

impl<V, T, C> TieredCache<V, T, C> {
    /// Whether there is a shared tier.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// `"upstash"` with a shared tier, else `"memory"`.
    pub fn backend(&self) -> &'static str {
        if self.shared.is_some() {
            "upstash"
        } else {
            "memory"
        }
    }
}

impl<V: Clone, T: Transport, C: Codec<V>> TieredCache<V, T, C> {
    /// A cache with `options` (validated); with `options.upstash`, Upstash is reached through
    /// `transport`. Values cross it as text through `codec` (which faces also use to give every
    /// tier the same values: [`TieredCache::encode`], [`TieredCache::decode`]).
    pub fn new(options: &Options, transport: T, codec: C, clock: Rc<dyn Clock>) -> Result<Self> {
        let memory = MemoryTier::with_options(options)?;
        let shared = match &options.upstash {
            Some(u) => Some(Shared {
                client: Client::new(u, transport)?,
                fallback: options.fallback,
                local_ttl_ms: secs_to_ms(options.local_ttl),
                mode: options.invalidation,
                check_ms: secs_to_ms(options.generation_check),
                known: RefCell::default(),
                locks: Cell::default(),
            }),
            None => None,
        };
        Ok(TieredCache {
            memory: RefCell::new(memory),
            shared,
            codec,
            clock,
            fallback_active: Cell::new(false),
            defaults: options.defaults(),
            explicit: Rc::new(Cell::new(RemoveCause::Deleted)),
            removals: None,
        })
    }

    /// Records every removal from the memory tier, for [`TieredCache::take_removals`] (what
    /// `onRemove` reports). Values are cloned only once this is on.
    pub fn record_removals(&mut self)
    where
        V: 'static,
    {
        let log: Removals<V> = Rc::default();
        let (sink, explicit) = (log.clone(), self.explicit.clone());
        self.memory
            .get_mut()
            .set_listener(Some(Box::new(move |key, held: &Held<V>, cause| {
                let cause = RemoveCause::of(cause, explicit.get());
                if let Ok(mut log) = sink.try_borrow_mut() {
                    log.push((key.to_owned(), held.value.clone(), cause));
                }
            })));
        self.removals = Some(log);
    }

    /// The removals recorded since the last call, oldest first (empty unless
    /// [`TieredCache::record_removals`] was called).
    pub fn take_removals(&self) -> Vec<(String, V, RemoveCause)> {
        self.removals
            .as_ref()
            .and_then(|r| r.try_borrow_mut().ok().map(|mut r| std::mem::take(&mut *r)))
            .unwrap_or_default()
    }

    /// The text of `value` through the codec.
    pub fn encode(&self, value: &V) -> Result<String> {
        self.codec.encode(value)
    }

    /// The value of `text` through the codec.
    pub fn decode(&self, text: &str) -> Result<V> {
        self.codec.decode(text)
    }

    /// The policy of a call without options of its own.
    pub fn defaults(&self) -> &CallPolicy {
        &self.defaults
    }

    /// The memory tier (for timers, and for tests). Never held across an await here.
    pub fn memory(&self) -> RefMut<'_, MemoryTier<Held<V>>> {
        self.memory.borrow_mut()
    }

    /// The Upstash client, when there is a shared tier.
    pub fn client(&self) -> Option<&Client<T>> {
        self.shared.as_ref().map(|s| &s.client)
    }

    /// Whether reads and writes are being served by memory for an unreachable Upstash.
    pub fn fallback_active(&self) -> bool {
        self.fallback_active.get()
    }

    /// The current version prefix.
    pub fn version(&self) -> String {
        self.memory.borrow().core().version().to_owned()
    }

    /// Whether values must be sized for the memory tier (a byte bound is set).
    pub fn needs_sizes(&self) -> bool {
        self.memory.borrow().core().needs_sizes()
    }

    /// What a value whose codec text is `text` weighs in memory: its length when a byte bound
    /// is set, else 0 (nothing is weighed).
    pub fn text_size(&self, text: &str) -> u64 {
        if self.needs_sizes() {
            text.len() as u64
        } else {
            0
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Fails with `SHUT_DOWN` once the cache is shut down.
    pub fn check_open(&self) -> Result<()> {
        self.memory.borrow().core().check_open()
    }

    /// Checks a key: its length, and in generation mode that it is not one of Cachette's own
    /// (`cachette:gen:`, `cachette:del:`, `cachette:lock:`), which a write would clobber.
    fn check_key(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let generation = self
            .shared
            .as_ref()
            .is_some_and(|s| s.mode == Invalidation::Generation);
        if generation && generations::is_internal(key) {
            return Err(Error::InvalidKey(
                "keys starting with cachette:gen:, cachette:del: or cachette:lock: are the \
                 cache's own in generation mode"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The request key of `namespace` and `data_json` under the current version.
    pub fn request_key(&self, namespace: &str, data_json: &str) -> Result<String> {
        let mut m = self.memory();
        m.core().check_open()?;
        m.request_key(namespace, data_json)
    }

    /// Runs `op`, recording its duration in the latency statistics.
    async fn timed<R>(&self, op: impl Future<Output = R>) -> R {
        let t0 = self.clock.precise_ms();
        let r = op.await;
        let ms = self.clock.precise_ms() - t0;
        self.memory().record_latency(ms);
        r
    }

    fn recovered(&self) {
        self.fallback_active.set(false);
    }

    /// Counts the failure; runs `in_memory` instead when fallback applies, else returns `e`.
    fn fail<R>(
        &self,
        shared: &Shared<T>,
        e: Error,
        in_memory: impl FnOnce(&mut MemoryTier<Held<V>>) -> Result<R>,
    ) -> Result<R> {
        self.count_error();
        if shared.fallback && unreachable(&e) {
            self.fallback_active.set(true);
            in_memory(&mut self.memory())
        } else {
            Err(e)
        }
    }

    /// Stores `value` in memory for `policy`: fresh for its TTL, kept `keep_ms()` longer.
    /// Counts nothing.
    fn hold(
        m: &mut MemoryTier<Held<V>>,
        key: &str,
        held: Held<V>,
        size: u64,
        keep_ms: u64,
        now: u64,
    ) -> Result<()> {
        let until = held.fresh_until.saturating_add(keep_ms);
        let ttl = (until != NEVER_MS).then(|| until.saturating_sub(now).max(1));
        m.insert(key, held, size, ttl, now)
    }

    /// Whether memory holds a fresh value for `key` (recency untouched, counting nothing; an
    /// entry past the time it is kept is removed).
    fn holds_fresh(m: &mut MemoryTier<Held<V>>, key: &str, now: u64) -> bool {
        m.contains(key, now) && m.peek(key, now).is_some_and(|h| h.is_fresh(now))
    }

    /// What memory holds for `key` (fresh or within the time kept past its TTL), recency
    /// refreshed, counting nothing.
    fn memory_found(m: &mut MemoryTier<Held<V>>, key: &str, now: u64) -> Option<Found<V>> {
        m.get(key, now).map(|h| h.found(now))
    }

    /// What memory holds for `key`, fresh or stale, counting nothing and leaving recency alone.
    pub fn peek(&self, key: &str) -> Option<Found<V>> {
        let now = self.now();
        let m = self.memory.borrow();
        m.peek(key, now).map(|h| h.found(now))
    }

    /// What memory holds for `key` (fresh, or within the time kept past its TTL) as the codec's
    /// text with its times in milliseconds: stored, fresh until, kept until ([`NEVER_MS`]:
    /// never). Counts nothing, leaves recency alone. For a persistent tier outside the cache.
    pub fn held_text(&self, key: &str) -> Option<(String, u64, u64, u64)> {
        let now = self.now();
        let m = self.memory.borrow();
        let h = m.peek(key, now)?;
        let kept = match m.ttl_ms(key, now)? {
            Some(left) => now.saturating_add(left),
            None => NEVER_MS,
        };
        let text = self.codec.encode(&h.value).ok()?;
        Some((text, h.stored_at, h.fresh_until, kept))
    }

    /// Holds the value of `text` (through the codec) in memory for `key` with the times
    /// [`TieredCache::held_text`] gave, counting nothing; false when it is past them, cannot
    /// be decoded or does not fit. With Upstash it is a near copy for `localTtl` (scan mode;
    /// in generation mode it has no counters to be checked against, so Upstash is asked), and
    /// the last good value after that.
    pub fn hold_text(
        &self,
        key: &str,
        text: &str,
        stored_at: u64,
        fresh_until: u64,
        kept_until: u64,
    ) -> bool {
        let now = self.now();
        if self.check_open().is_err() || self.check_key(key).is_err() || now >= kept_until {
            return false;
        }
        let Ok(value) = self.codec.decode(text) else {
            return false;
        };
        let size = self.text_size(text);
        let mut m = self.memory();
        let near = self.shared.as_ref().map_or(0, |s| s.local_ttl_ms);
        let held = Held {
            value,
            stored_at,
            fresh_until,
            near_until: if near > 0 {
                now.saturating_add(near).min(fresh_until)
            } else {
                0
            },
            stamp: None,
        };
        let ttl = (kept_until != NEVER_MS).then(|| kept_until - now);
        m.insert(key, held, size, ttl, now).is_ok()
    }

    /// Reads Upstash answered with a fresh value so far.
    pub fn shared_hits(&self) -> u64 {
        self.memory().counters_mut().shared_hits
    }

    /// Drops `key` from memory alone (another instance sharing a persistent tier replaced or
    /// removed it), counting nothing.
    pub fn forget(&self, key: &str) {
        let now = self.now();
        self.explicit.set(RemoveCause::Deleted);
        if let Ok(mut m) = self.memory.try_borrow_mut() {
            m.remove(key, now);
        }
    }

    /// Drops every key matching the Redis glob `pattern` from memory alone, counting nothing.
    pub fn forget_matching(&self, pattern: &str) -> Result<usize> {
        crate::glob::validate(pattern)?;
        let now = self.now();
        self.explicit.set(RemoveCause::Invalidated);
        Ok(self.memory().remove_matching(pattern, now))
    }

    /// The glob pattern a [`Removal`] of `arg` removes (under the current version).
    pub fn removal_pattern(&self, kind: Removal, arg: &str) -> Result<String> {
        self.memory.borrow().core().removal_pattern(kind, arg)
    }

    /// Counts a failure in `errors` (Upstash failing, a background refresh that failed, ...).
    pub fn count_error(&self) {
        self.memory().counters_mut().errors += 1;
    }

    /// Reads `key`: memory; with Upstash, the near copy, else Upstash, else (unreachable)
    /// memory. Only a fresh value is returned.
    pub async fn get(&self, key: &str) -> Result<Option<V>> {
        self.check_open()?;
        self.check_key(key)?;
        self.timed(async {
            let read = self.read_unchecked(key, &self.defaults, false).await?;
            let fresh = read.found.filter(|f| f.stale_ms.is_none());
            Ok(fresh.map(|f| f.value))
        })
        .await
    }

    /// Reads `key` for `getOrSet` under `policy`: the value fresh, or stale (memory keeps a
    /// value for `policy.keep_ms()` past its TTL), or nothing; a fresh value counts as a hit,
    /// anything else as a miss. With Upstash: the near copy; else Upstash (`GET` and `PTTL` in
    /// one request), whose answer memory keeps; else, Upstash unreachable, what memory holds
    /// (with `shared_error` set, even without `fallback`, so that a stale value can be served
    /// for the error). A command error fails the read.
    pub async fn read(&self, key: &str, policy: &CallPolicy) -> Result<Read<V>> {
        self.check_open()?;
        self.check_key(key)?;
        self.timed(self.read_unchecked(key, policy, true)).await
    }

    async fn read_unchecked(&self, key: &str, policy: &CallPolicy, stale: bool) -> Result<Read<V>> {
        let now = self.now();
        let answer = |found: Option<Found<V>>, shared_error, since| {
            let found = found.filter(|f| stale || f.stale_ms.is_none());
            self.memory()
                .count_read(found.as_ref().is_some_and(|f| f.stale_ms.is_none()));
            Ok(Read {
                found,
                shared_error,
                since,
            })
        };
        let Some(shared) = &self.shared else {
            let found = Self::memory_found(&mut self.memory(), key, now);
            return answer(found, None, None);
        };
        {
            let mut m = self.memory();
            if m.peek(key, now).is_some_and(|h| shared.near(key, h, now)) {
                let found = Self::memory_found(&mut m, key, now);
                drop(m);
                return answer(found, None, None);
            }
        }
        match self.fetch(shared, key, Vec::new()).await {
            Ok((_, fetched)) => {
                self.recovered();
                let since = fetched.since.clone();
                let found = self.absorb(shared, key, policy, fetched, now)?;
                if found.as_ref().is_some_and(|f| f.stale_ms.is_none()) {
                    self.memory().counters_mut().shared_hits += 1;
                }
                answer(found, None, since)
            }
            Err(e) => {
                self.count_error();
                if !unreachable(&e) {
                    return Err(e);
                }
                if shared.fallback {
                    self.fallback_active.set(true);
                } else if !stale {
                    return Err(e);
                }
                let mut found = Self::memory_found(&mut self.memory(), key, now);
                if !shared.fallback {
                    // Without fallback only a stale value may be offered (for stale-if-error).
                    found = found.filter(|f| f.stale_ms.is_some());
                }
                answer(found, Some(e), None)
            }
        }
    }

    /// The commands reading `key` from Upstash: `GET` and `PTTL`, or the script.
    fn read_commands(shared: &Shared<T>, key: &str) -> Vec<Vec<String>> {
        if shared.mode == Invalidation::Generation {
            if let Some(c) = generations::command(key, Op::Read) {
                return vec![c];
            }
        }
        vec![
            vec!["GET".to_owned(), key.to_owned()],
            vec!["PTTL".to_owned(), key.to_owned()],
        ]
    }

    /// Sends `before`, then the read of `key`, in one request: the answers to `before`, and
    /// what the read found.
    async fn fetch(
        &self,
        shared: &Shared<T>,
        key: &str,
        before: Vec<Vec<String>>,
    ) -> Result<(Vec<Result<Reply>>, Fetched)> {
        let n = before.len();
        let mut commands = before;
        commands.extend(Self::read_commands(shared, key));
        let total = commands.len();
        // Counters are trusted from when the request left: they were read after that.
        let sent = self.now();
        let mut replies = shared.client.pipeline_script(&SCRIPT, &commands).await?;
        if replies.len() != total {
            return Err(Error::UpstashProtocol(format!(
                "a pipeline of {total} commands answered with another count"
            )));
        }
        let mut read = replies.split_off(n).into_iter();
        let first = read.next().unwrap_or_else(|| {
            Err(Error::UpstashProtocol(
                "an empty pipeline answer".to_owned(),
            ))
        })?;
        let fetched = if total - n == 1 {
            let a = script_answer(first)?;
            shared.note(key, &a.stamp, sent);
            let (value, pttl) = a.value.map_or((None, None), |(v, p)| (Some(v), p));
            Fetched {
                value,
                pttl,
                since: Some(Since(a.generation)),
                stamp: Some(a.stamp),
            }
        } else {
            let pttl = read.next().and_then(|r| r.ok()).and_then(|r| r.as_int());
            let value = match first {
                Reply::Bytes(b) => Some(b),
                Reply::Nil => None,
                other => {
                    return Err(Error::UpstashProtocol(format!("GET answered {other:?}")));
                }
            };
            Fetched {
                value,
                pttl,
                since: None,
                stamp: None,
            }
        };
        Ok((replies, fetched))
    }

    /// What Upstash's answer `fetched` means for a read of `key` under `policy` at `now`: the
    /// value (which memory keeps as its last good one), or, when Upstash has none, a stale
    /// value memory holds (one it believed fresh goes: another instance removed it).
    fn absorb(
        &self,
        shared: &Shared<T>,
        key: &str,
        policy: &CallPolicy,
        fetched: Fetched,
        now: u64,
    ) -> Result<Option<Found<V>>> {
        let Some(bytes) = fetched.value else {
            let mut m = self.memory();
            return Ok(match m.peek(key, now) {
                Some(h) if h.is_fresh(now) => {
                    m.remove(key, now);
                    None
                }
                Some(_) => Self::memory_found(&mut m, key, now),
                None => None,
            });
        };
        let text = String::from_utf8_lossy(&bytes);
        let value = self.codec.decode(&text)?;
        // -1: no expiry; -2 (gone since the GET) or no answer: fresh for now.
        let left = match fetched.pttl {
            Some(-1) => None,
            Some(ms) if ms >= 0 => Some(ms as u64),
            _ => Some(1),
        };
        let age = match (policy.ttl_ms, left) {
            (Some(t), Some(l)) => t.saturating_sub(l),
            _ => 0,
        };
        let size = self.text_size(&text);
        let mut m = self.memory();
        let near = shared.local_ttl_ms.min(left.unwrap_or(u64::MAX));
        let held = Held {
            value: value.clone(),
            stored_at: now.saturating_sub(age),
            fresh_until: left.map_or(NEVER_MS, |l| now.saturating_add(l)),
            near_until: if near > 0 {
                now.saturating_add(near)
            } else {
                0
            },
            stamp: fetched.stamp,
        };
        // A copy that does not fit is simply not kept.
        let _ = Self::hold(&mut m, key, held, size, policy.keep_ms(), now);
        Ok(Some(Found {
            value,
            age_ms: age,
            stale_ms: None,
        }))
    }

    /// Before generating `key` under `policy` (after a read found nothing to serve): with a
    /// lock asked for (`policy.lock_ms`) and Upstash, takes the lock (`SET NX PX`, a token of
    /// this call), reading the key in the same request. While another instance holds it, reads
    /// again (with `EXISTS` of the lock) with a backoff from 20 ms to 200 ms until that
    /// instance's value arrives ([`Claim::Found`]), the lock is free without a value (its holder
    /// failed, or died and its lock expired: this call takes it), or the wait has lasted the
    /// call's `timeout` (else the lock's time): then it generates without the lock. A `background` refresh does not wait
    /// ([`Claim::Busy`]). Unreachable Upstash: generate without a lock.
    pub async fn claim(
        &self,
        key: &str,
        policy: &CallPolicy,
        background: bool,
    ) -> Result<Claim<V>> {
        let free = Claim::Generate {
            lock: None,
            since: None,
        };
        let Some(shared) = self.shared.as_ref().filter(|_| policy.lock_ms > 0) else {
            return Ok(free);
        };
        let t = shared.client.transport();
        let token = format!("{:016x}{:016x}", t.random(), t.random());
        let lock_key = generations::lock_key(key);
        let ms = policy.lock_ms.to_string();
        let set = vec!["SET", &lock_key, &token, "NX", "PX", &ms]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        let started = self.now();
        let limit = if policy.timeout_ms > 0 {
            policy.timeout_ms
        } else {
            policy.lock_ms
        };
        let exists = vec!["EXISTS".to_owned(), lock_key.clone()];
        let lock = Lock {
            key: key.to_owned(),
            token,
        };
        let (mut delay, mut take) = (20u64, true);
        loop {
            // Take the lock when it may be free; else only look whether it is still held.
            let first = if take { set.clone() } else { exists.clone() };
            let (replies, fetched) = match self.fetch(shared, key, vec![first]).await {
                Ok(r) => r,
                Err(e) => {
                    self.count_error();
                    if take && !unreachable(&e) {
                        // The SET may have taken the lock before the read failed.
                        self.release(lock).await;
                    }
                    return if unreachable(&e) { Ok(free) } else { Err(e) };
                }
            };
            self.recovered();
            let acquired =
                take && matches!(replies.first(), Some(Ok(Reply::Bytes(b))) if b == b"OK");
            if acquired {
                shared.count_locks(|l| l.acquired += 1);
            }
            let held = !take && matches!(replies.first(), Some(Ok(Reply::Int(1))));
            let since = fetched.since.clone();
            let now = self.now();
            if fetched.value.is_some() {
                let found = match self.absorb(shared, key, policy, fetched, now) {
                    Ok(found) => found,
                    Err(e) => {
                        if acquired {
                            self.release(lock).await;
                        }
                        return Err(e);
                    }
                };
                if let Some(f) = found {
                    if acquired {
                        self.release(lock).await;
                    }
                    shared.count_locks(|l| l.joins += 1);
                    return Ok(Claim::Found(f));
                }
            }
            if acquired {
                return Ok(Claim::Generate {
                    lock: Some(lock),
                    since,
                });
            }
            if background {
                return Ok(Claim::Busy);
            }
            if !take && !held {
                // Freed without a value (its holder failed or skipped): try to take it now.
                take = true;
                continue;
            }
            take = false;
            let spent = now.saturating_sub(started);
            if spent >= limit {
                shared.count_locks(|l| l.timeouts += 1);
                return Ok(Claim::Generate { lock: None, since });
            }
            shared.count_locks(|l| l.waits += 1);
            t.sleep(delay.min(limit - spent).max(1) as u32).await;
            delay = (delay * 2).min(200);
        }
    }

    /// The generation this cache last saw for `key`'s namespace (generation mode): a
    /// generation that starts now stores its value under it, or not at all if an invalidation
    /// comes first. `None` in scan mode, or before the namespace was read.
    pub fn since(&self, key: &str) -> Option<Since> {
        self.shared.as_ref()?.since(key)
    }

    /// Releases `lock` if this cache still holds it (a failure is counted in `errors`; the
    /// lock then ends with its TTL).
    pub async fn release(&self, lock: Lock) {
        let Some(shared) = &self.shared else {
            return;
        };
        let unlock = generations::unlock_command(&lock.key, &lock.token);
        match shared
            .client
            .pipeline_script(&SCRIPT, &[unlock])
            .await
            .and_then(only)
        {
            Ok(r) => {
                if r == Reply::Int(1) {
                    shared.count_locks(|l| l.released += 1);
                }
            }
            Err(_) => self.count_error(),
        }
    }

    /// Whether `key` holds a fresh value (not counted as a hit or miss).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        self.check_open()?;
        self.check_key(key)?;
        self.timed(async {
            let Some(shared) = &self.shared else {
                return Ok(Self::holds_fresh(&mut self.memory(), key, self.now()));
            };
            match self.exist(shared, &[key.to_owned()]).await {
                Ok(r) => {
                    self.recovered();
                    Ok(r.first().copied().unwrap_or(false))
                }
                Err(e) => {
                    let now = self.now();
                    self.fail(shared, e, |m| Ok(Self::holds_fresh(m, key, now)))
                }
            }
        })
        .await
    }

    /// Stores `value` (weighing `size` bytes in memory) for `ttl_secs` or the default TTL, kept
    /// past it for the default windows.
    pub async fn set(&self, key: &str, value: V, size: u64, ttl_secs: Option<f64>) -> Result<()> {
        self.check_open()?;
        self.check_key(key)?;
        let mut policy = self.defaults;
        if let Some(secs) = ttl_secs {
            let ms = super::ttl_ms(Some(secs), 0)?;
            policy.ttl_ms = (ms != NEVER_MS).then_some(ms);
        }
        self.store(key, value, size, &policy).await
    }

    /// Stores `value` (weighing `size` bytes in memory) under `policy`: its TTL, kept past it for
    /// `policy.keep_ms()`. With Upstash, `SET PX` (plain `SET` without expiry), memory keeping
    /// the value as its last good one.
    pub async fn store(&self, key: &str, value: V, size: u64, policy: &CallPolicy) -> Result<()> {
        self.store_text(key, value, None, size, policy).await
    }

    /// [`TieredCache::store`] given the value's text through the codec, if the caller has it
    /// (it is then not encoded again for Upstash).
    pub async fn store_text(
        &self,
        key: &str,
        value: V,
        text: Option<&str>,
        size: u64,
        policy: &CallPolicy,
    ) -> Result<()> {
        self.store_generated(key, value, text, size, policy, None, None)
            .await
    }

    /// [`TieredCache::store_text`] for a value generated after a read or claim that saw
    /// `since`: in generation mode it is stored only if no invalidation of its namespace or
    /// version happened meanwhile (else it is dropped, in memory too). `lock` is released in
    /// the same request.
    #[allow(clippy::too_many_arguments)]
    pub async fn store_generated(
        &self,
        key: &str,
        value: V,
        text: Option<&str>,
        size: u64,
        policy: &CallPolicy,
        since: Option<&Since>,
        lock: Option<&Lock>,
    ) -> Result<()> {
        self.check_open()?;
        self.check_key(key)?;
        let keep = policy.keep_ms();
        self.timed(async {
            let Some(shared) = &self.shared else {
                let now = self.now();
                let mut m = self.memory();
                Self::hold(
                    &mut m,
                    key,
                    Held::new(value, now, policy.ttl_ms),
                    size,
                    keep,
                    now,
                )?;
                m.counters_mut().sets += 1;
                return Ok(());
            };
            let encoded;
            let text = match text {
                Some(t) => t,
                None => {
                    encoded = self.codec.encode(&value)?;
                    &encoded
                }
            };
            let ttl = policy.ttl_ms.unwrap_or(NEVER_MS);
            match self.write(shared, key, text, policy, since, lock).await {
                Ok(None) => {
                    // Invalidated since the value was made: not stored anywhere.
                    self.recovered();
                    let now = self.now();
                    self.memory().remove(key, now);
                    Ok(())
                }
                Ok(Some(stamp)) => {
                    self.recovered();
                    let now = self.now();
                    let mut m = self.memory();
                    m.counters_mut().sets += 1;
                    let mut held = Held::new(value, now, policy.ttl_ms);
                    if shared.local_ttl_ms > 0 {
                        held.near_until = now.saturating_add(shared.local_ttl_ms.min(ttl));
                    }
                    held.stamp = stamp;
                    // The last good value; if it does not fit, no older copy may stay.
                    if Self::hold(&mut m, key, held, size, keep, now).is_err() {
                        m.remove(key, now);
                    }
                    Ok(())
                }
                Err(e) => {
                    let now = self.now();
                    self.fail(shared, e, |m| {
                        let held = Held::new(value, now, policy.ttl_ms);
                        Self::hold(m, key, held, size, keep, now)?;
                        m.counters_mut().sets += 1;
                        Ok(())
                    })
                }
            }
        })
        .await
    }

    /// Deletes `key` from both tiers; true when the serving tier removed a value.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.check_open()?;
        self.check_key(key)?;
        self.timed(async {
            let now = self.now();
            self.explicit.set(RemoveCause::Deleted);
            let in_memory = self.memory().remove(key, now).is_some();
            let Some(shared) = &self.shared else {
                self.memory().counters_mut().deletes += u64::from(in_memory);
                return Ok(in_memory);
            };
            let unlink = match generations::command(key, Op::Delete) {
                Some(c) if shared.scripted(key) => {
                    let now = self.now();
                    shared
                        .client
                        .pipeline_script(&SCRIPT, &[c])
                        .await
                        .and_then(only)
                        .and_then(script_answer)
                        .map(|a| {
                            shared.note(key, &a.stamp, now);
                            a.yes
                        })
                }
                _ => shared
                    .client
                    .command(&["UNLINK", key])
                    .await
                    .map(|r| r.as_int().unwrap_or(0) > 0),
            };
            match unlink {
                Ok(removed) => {
                    self.recovered();
                    self.memory().counters_mut().deletes += u64::from(removed);
                    Ok(removed)
                }
                Err(e) => {
                    let mut m = self.memory();
                    m.counters_mut().errors += 1;
                    m.counters_mut().deletes += u64::from(in_memory);
                    Err(e)
                }
            }
        })
        .await
    }

    /// Runs one [`Removal`] of `arg` on both tiers; returns how many keys the serving tier
    /// removed. A version switch stands even if Upstash cannot remove the old keys (they are
    /// never read again); the call then fails.
    pub async fn remove_by(&self, kind: Removal, arg: &str) -> Result<u64> {
        self.check_open()?;
        self.explicit.set(RemoveCause::Invalidated);
        self.timed(async {
            let now = self.now();
            let Some(shared) = &self.shared else {
                return Ok(self.memory().remove_by(kind, arg, now)? as u64);
            };
            let pattern = self.memory.borrow().core().removal_pattern(kind, arg)?;
            let old_version = self.version();
            let local = {
                let mut m = self.memory();
                if kind == Removal::SwitchVersion {
                    m.set_version(arg)?;
                }
                m.remove_matching(&pattern, now) as u64
            };
            if shared.mode == Invalidation::Generation {
                return self
                    .bump(shared, kind, arg, &pattern, &old_version, local)
                    .await;
            }
            match shared.client.delete_matching(&pattern).await {
                Ok(n) => {
                    self.recovered();
                    self.memory().counters_mut().invalidations += n;
                    Ok(n)
                }
                Err(e) => {
                    let mut m = self.memory();
                    m.counters_mut().errors += 1;
                    m.counters_mut().invalidations += local;
                    Err(e)
                }
            }
        })
        .await
    }

    /// Generation mode's [`TieredCache::remove_by`] after memory removed `local` entries: one
    /// `INCR` of the namespace's or version's counter (returning `local`: Upstash does not
    /// count the values it made dead); a pattern is removed by `SCAN` as in scan mode (returning
    /// how many keys went), Cachette's own keys left alone, the deletion counter of each
    /// namespace it removed keys of counted up in the same requests.
    async fn bump(
        &self,
        shared: &Shared<T>,
        kind: Removal,
        arg: &str,
        pattern: &str,
        old_version: &str,
        local: u64,
    ) -> Result<u64> {
        let (counter, forget) = match kind {
            Removal::Namespace => (
                generations::namespace_counter(old_version, arg),
                scope_name(old_version, arg),
            ),
            Removal::Version => (generations::version_counter(arg), format!("{arg}:")),
            Removal::SwitchVersion => (
                generations::version_counter(old_version),
                format!("{old_version}:"),
            ),
            Removal::Pattern => {
                let r = shared
                    .client
                    .delete_matching_with(pattern, &generations::is_internal, &mut |keys| {
                        let mut incr: Vec<Vec<String>> = Vec::new();
                        for (v, ns) in keys.iter().filter_map(|k| scope(k)) {
                            let counter = generations::deletion_counter(v, ns);
                            if !incr.iter().any(|c| c[1] == counter) {
                                incr.push(vec!["INCR".to_owned(), counter]);
                            }
                        }
                        incr
                    })
                    .await;
                return self.counted(r, local);
            }
        };
        let r = shared
            .client
            .pipeline_script(&SCRIPT, &[generations::invalidate_command(&counter)])
            .await
            .and_then(only);
        if r.is_ok() {
            let mut known = shared.known.borrow_mut();
            if kind == Removal::Namespace {
                known.remove(&forget);
            } else {
                known.retain(|scope, _| !scope.starts_with(&forget));
            }
        }
        self.counted(r.map(|_| local), local)
    }

    /// Counts an invalidation's outcome: `r`'s figure, or `local` and an error.
    fn counted(&self, r: Result<u64>, local: u64) -> Result<u64> {
        let mut m = self.memory();
        match r {
            Ok(n) => {
                drop(m);
                self.recovered();
                self.memory().counters_mut().invalidations += n;
                Ok(n)
            }
            Err(e) => {
                m.counters_mut().errors += 1;
                m.counters_mut().invalidations += local;
                Err(e)
            }
        }
    }

    /// Writes `text` under `key` for `policy`'s TTL (after `since`, releasing `lock`): the
    /// namespace's counters for the near copy (`Some(None)` outside generation mode), or `None`
    /// when an invalidation since `since` dropped the value.
    async fn write(
        &self,
        shared: &Shared<T>,
        key: &str,
        text: &str,
        policy: &CallPolicy,
        since: Option<&Since>,
        lock: Option<&Lock>,
    ) -> Result<Option<Option<Rc<str>>>> {
        let mut commands = Vec::with_capacity(2);
        let scripted = shared.scripted(key);
        if scripted {
            let op = Op::Write {
                since: since.map(|s| s.0.as_str()),
                text,
                px: policy.ttl_ms,
            };
            commands.extend(generations::command(key, op));
        } else {
            let mut c = vec!["SET".to_owned(), key.to_owned(), text.to_owned()];
            if let Some(ms) = policy.ttl_ms {
                c.extend(["PX".to_owned(), ms.max(1).to_string()]);
            }
            commands.push(c);
        }
        if let Some(l) = lock {
            commands.push(generations::unlock_command(&l.key, &l.token));
        }
        let sent = self.now();
        let mut replies = shared
            .client
            .pipeline_script(&SCRIPT, &commands)
            .await?
            .into_iter();
        let stored = replies.next().unwrap_or_else(|| {
            Err(Error::UpstashProtocol(
                "an empty pipeline answer".to_owned(),
            ))
        })?;
        if lock.is_some() {
            match replies.next() {
                Some(Ok(Reply::Int(1))) => shared.count_locks(|l| l.released += 1),
                Some(Ok(_)) => {}
                _ => self.count_error(),
            }
        }
        if !scripted {
            return Ok(Some(None));
        }
        let a = script_answer(stored)?;
        shared.note(key, &a.stamp, sent);
        Ok(a.yes.then_some(Some(a.stamp)))
    }

    /// Which of `keys` exist in Upstash (alive, in generation mode): one pipelined request per
    /// 1,000 keys.
    async fn exist(&self, shared: &Shared<T>, keys: &[String]) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(crate::upstash::BATCH) {
            let commands: Vec<Vec<String>> = chunk
                .iter()
                .map(|k| match generations::command(k, Op::Exists) {
                    Some(c) if shared.scripted(k) => c,
                    _ => vec!["EXISTS".to_owned(), k.to_owned()],
                })
                .collect();
            let now = self.now();
            let replies = shared.client.pipeline_script(&SCRIPT, &commands).await?;
            for (k, r) in chunk.iter().zip(replies) {
                let r = r?;
                out.push(if let Reply::Array(_) = r {
                    let a = script_answer(r)?;
                    shared.note(k, &a.stamp, now);
                    a.yes
                } else {
                    r.as_int().unwrap_or(0) > 0
                });
            }
        }
        Ok(out)
    }

    /// Which of `keys` hold fresh values (with Upstash, one pipelined request per 1,000 keys);
    /// not counted as reads.
    pub async fn present(&self, keys: &[String]) -> Result<Vec<bool>> {
        self.check_open()?;
        self.timed(async {
            let in_memory = |m: &mut MemoryTier<Held<V>>, now| -> Result<Vec<bool>> {
                Ok(keys.iter().map(|k| Self::holds_fresh(m, k, now)).collect())
            };
            let Some(shared) = &self.shared else {
                return in_memory(&mut self.memory(), self.now());
            };
            match self.exist(shared, keys).await {
                Ok(v) => {
                    self.recovered();
                    Ok(v)
                }
                Err(e) => {
                    let now = self.now();
                    self.fail(shared, e, |m| in_memory(m, now))
                }
            }
        })
        .await
    }

    /// Removes every entry of the memory tier (Upstash is left alone).
    pub fn clear(&self) -> Result<()> {
        self.explicit.set(RemoveCause::Cleared);
        self.memory().clear().map(drop)
    }

    /// Removes expired entries from memory (what a cleanup timer runs).
    pub fn sweep(&self, now: u64) -> usize {
        self.memory
            .try_borrow_mut()
            .map_or(0, |mut m| m.sweep_all(now))
    }

    /// Statistics: counters from memory; with Upstash, `keys` and the `upstash` figures from
    /// `DBSIZE` and `INFO` when it answers.
    pub async fn snapshot(&self, cleanup_timer_active: bool) -> StatsSnapshot {
        let backend = self.backend();
        let fallback = self.fallback_active();
        let Some(shared) = &self.shared else {
            let now = self.now();
            return self
                .memory()
                .snapshot(now, backend, cleanup_timer_active, false, None);
        };
        let info = shared.client.info().await;
        let now = self.now();
        let mut m = self.memory();
        match info {
            Ok((mut up, keys)) => {
                up.round_trips = shared.client.round_trips();
                up.traffic = shared.client.traffic();
                up.locks = shared.locks.get();
                let mut s = m.snapshot(now, backend, cleanup_timer_active, fallback, Some(up));
                s.keys = keys;
                s
            }
            Err(_) => m.snapshot(now, backend, cleanup_timer_active, fallback, None),
        }
    }

    /// `healthy` while the cache serves normally, `degraded` while memory serves for an
    /// unreachable Upstash, `unhealthy` when nothing serves (or after shutdown).
    pub async fn health(&self) -> HealthReport {
        let backend = self.backend();
        let t0 = self.clock.precise_ms();
        if let Err(e) = self.check_open() {
            return HealthReport {
                status: HealthStatus::Unhealthy,
                backend,
                latency_ms: 0.0,
                error: Some(e.to_string()),
            };
        }
        let Some(shared) = &self.shared else {
            return HealthReport {
                status: HealthStatus::Healthy,
                backend,
                latency_ms: self.clock.precise_ms() - t0,
                error: None,
            };
        };
        let r = shared.client.ping().await;
        let latency_ms = self.clock.precise_ms() - t0;
        match r {
            Ok(()) => {
                self.recovered();
                HealthReport {
                    status: HealthStatus::Healthy,
                    backend,
                    latency_ms,
                    error: None,
                }
            }
            Err(e) => {
                let status = if shared.fallback {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Unhealthy
                };
                if shared.fallback && unreachable(&e) {
                    self.fallback_active.set(true);
                }
                HealthReport {
                    status,
                    backend,
                    latency_ms,
                    error: Some(e.to_string()),
                }
            }
        }
    }

    /// Shuts down: later operations fail with `SHUT_DOWN`. True the first time.
    pub fn shutdown(&self) -> bool {
        self.memory().shutdown()
    }
}
