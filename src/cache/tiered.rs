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

use super::{MemoryTier, Removal};
use crate::clock::{secs_to_ms, Clock, NEVER_MS};
use crate::error::{Error, Result};
use crate::key::validate_key;
use crate::memory::RemovalCause;
use crate::options::{CallPolicy, Options};
use crate::stats::{Field, StatsSnapshot};
use crate::upstash::{Client, Transport};

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
}

impl<V> Held<V> {
    /// `value` stored at `now`, fresh for `ttl_ms` (`None`: forever).
    pub fn new(value: V, now: u64, ttl_ms: Option<u64>) -> Self {
        Held {
            value,
            stored_at: now,
            fresh_until: ttl_ms.map_or(NEVER_MS, |t| now.saturating_add(t)),
            near_until: 0,
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
}

/// The memory tier, with Upstash in front of it when configured.
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

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Fails with `SHUT_DOWN` once the cache is shut down.
    pub fn check_open(&self) -> Result<()> {
        self.memory.borrow().core().check_open()
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

    /// Counts a failure in `errors` (Upstash failing, a background refresh that failed, ...).
    pub fn count_error(&self) {
        self.memory().counters_mut().errors += 1;
    }

    /// Reads `key`: memory; with Upstash, the near copy, else Upstash, else (unreachable)
    /// memory. Only a fresh value is returned.
    pub async fn get(&self, key: &str) -> Result<Option<V>> {
        self.check_open()?;
        validate_key(key)?;
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
        validate_key(key)?;
        self.timed(self.read_unchecked(key, policy, true)).await
    }

    async fn read_unchecked(&self, key: &str, policy: &CallPolicy, stale: bool) -> Result<Read<V>> {
        let now = self.now();
        let answer = |found: Option<Found<V>>, shared_error| {
            let found = found.filter(|f| stale || f.stale_ms.is_none());
            self.memory()
                .count_read(found.as_ref().is_some_and(|f| f.stale_ms.is_none()));
            Ok(Read {
                found,
                shared_error,
            })
        };
        let Some(shared) = &self.shared else {
            let found = Self::memory_found(&mut self.memory(), key, now);
            return answer(found, None);
        };
        {
            let mut m = self.memory();
            if let Some(h) = m.peek(key, now) {
                if now < h.near_until && h.is_fresh(now) {
                    let found = Self::memory_found(&mut m, key, now);
                    drop(m);
                    return answer(found, None);
                }
            }
        }
        let commands = [vec!["GET", key], vec!["PTTL", key]];
        let reply = match shared.client.pipeline(&commands).await {
            Ok(mut replies) if replies.len() == 2 => {
                let pttl = replies.pop().and_then(|r| r.ok()).and_then(|r| r.as_int());
                replies.pop().map(|get| get.map(|r| (r, pttl)))
            }
            Ok(_) => Some(Err(Error::UpstashProtocol(
                "a pipeline of 2 commands answered with another count".to_owned(),
            ))),
            Err(e) => Some(Err(e)),
        };
        match reply {
            Some(Ok((crate::upstash::Reply::Bytes(bytes), pttl))) => {
                self.recovered();
                let text = String::from_utf8_lossy(&bytes);
                let value = self.codec.decode(&text)?;
                // -1: no expiry; -2 (gone since the GET) or no answer: fresh for now.
                let left = match pttl {
                    Some(-1) => None,
                    Some(ms) if ms >= 0 => Some(ms as u64),
                    _ => Some(1),
                };
                let ttl = policy.ttl_ms;
                let age = match (ttl, left) {
                    (Some(t), Some(l)) => t.saturating_sub(l),
                    _ => 0,
                };
                let mut m = self.memory();
                let size = if m.core().needs_sizes() {
                    text.len() as u64
                } else {
                    0
                };
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
                };
                // A copy that does not fit is simply not kept.
                let _ = Self::hold(&mut m, key, held, size, policy.keep_ms(), now);
                drop(m);
                answer(
                    Some(Found {
                        value,
                        age_ms: age,
                        stale_ms: None,
                    }),
                    None,
                )
            }
            Some(Ok((crate::upstash::Reply::Nil, _))) => {
                self.recovered();
                let mut m = self.memory();
                // A copy memory still believes fresh was removed in Upstash: it goes too.
                // One past its TTL is offered as stale.
                let found = match m.peek(key, now) {
                    Some(h) if h.is_fresh(now) => {
                        m.remove(key, now);
                        None
                    }
                    Some(_) => Self::memory_found(&mut m, key, now),
                    None => None,
                };
                drop(m);
                answer(found, None)
            }
            Some(Ok((other, _))) => Err(Error::UpstashProtocol(format!("GET answered {other:?}"))),
            Some(Err(e)) => {
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
                answer(found, Some(e))
            }
            None => Err(Error::UpstashProtocol(
                "an empty pipeline answer".to_owned(),
            )),
        }
    }

    /// Whether `key` holds a fresh value (not counted as a hit or miss).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        self.check_open()?;
        validate_key(key)?;
        self.timed(async {
            let Some(shared) = &self.shared else {
                return Ok(Self::holds_fresh(&mut self.memory(), key, self.now()));
            };
            match shared.client.command(&["EXISTS", key]).await {
                Ok(r) => {
                    self.recovered();
                    Ok(r.as_int().unwrap_or(0) > 0)
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
        validate_key(key)?;
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
        self.check_open()?;
        validate_key(key)?;
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
            match shared.client.set_px(key, text, ttl).await {
                Ok(()) => {
                    self.recovered();
                    let now = self.now();
                    let mut m = self.memory();
                    m.counters_mut().sets += 1;
                    let mut held = Held::new(value, now, policy.ttl_ms);
                    if shared.local_ttl_ms > 0 {
                        held.near_until = now.saturating_add(shared.local_ttl_ms.min(ttl));
                    }
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
        validate_key(key)?;
        self.timed(async {
            let now = self.now();
            self.explicit.set(RemoveCause::Deleted);
            let in_memory = self.memory().remove(key, now).is_some();
            let Some(shared) = &self.shared else {
                self.memory().counters_mut().deletes += u64::from(in_memory);
                return Ok(in_memory);
            };
            match shared.client.command(&["UNLINK", key]).await {
                Ok(r) => {
                    self.recovered();
                    let removed = r.as_int().unwrap_or(0) > 0;
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
            let local = {
                let mut m = self.memory();
                if kind == Removal::SwitchVersion {
                    m.set_version(arg)?;
                }
                m.remove_matching(&pattern, now) as u64
            };
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
            match shared.client.exists_each(keys).await {
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
