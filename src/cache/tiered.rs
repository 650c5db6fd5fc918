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
//!
//! Every operation is timed for the latency statistics.

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::rc::Rc;

use super::{MemoryTier, Removal};
use crate::clock::{secs_to_ms, Clock};
use crate::error::{Error, Result};
use crate::key::validate_key;
use crate::options::Options;
use crate::stats::{Field, StatsSnapshot};
use crate::upstash::{Client, Transport};

/// Turns values into JSON text and back.
pub trait Codec<V> {
    /// The JSON text of `value` (`UNSERIALIZABLE` when it has none).
    fn encode(&self, value: &V) -> Result<String>;
    /// The value of JSON `text`.
    fn decode(&self, text: &str) -> Result<V>;
}

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

struct Shared<T, C> {
    client: Client<T>,
    codec: C,
    fallback: bool,
    local_ttl_ms: u64,
}

/// The memory tier, with Upstash in front of it when configured.
pub struct TieredCache<V, T, C> {
    memory: RefCell<MemoryTier<V>>,
    shared: Option<Shared<T, C>>,
    clock: Rc<dyn Clock>,
    fallback_active: Cell<bool>,
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
    /// `transport` and values cross it through `codec`.
    pub fn new(options: &Options, transport: T, codec: C, clock: Rc<dyn Clock>) -> Result<Self> {
        let memory = MemoryTier::with_options(options)?;
        let shared = match &options.upstash {
            Some(u) => Some(Shared {
                client: Client::new(u, transport)?,
                codec,
                fallback: options.fallback,
                local_ttl_ms: secs_to_ms(options.local_ttl),
            }),
            None => None,
        };
        Ok(TieredCache {
            memory: RefCell::new(memory),
            shared,
            clock,
            fallback_active: Cell::new(false),
        })
    }

    /// The memory tier (for timers, and for tests). Never held across an await here.
    pub fn memory(&self) -> RefMut<'_, MemoryTier<V>> {
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
        shared: &Shared<T, C>,
        e: Error,
        in_memory: impl FnOnce(&mut MemoryTier<V>) -> Result<R>,
    ) -> Result<R> {
        self.memory().counters_mut().errors += 1;
        if shared.fallback && unreachable(&e) {
            self.fallback_active.set(true);
            in_memory(&mut self.memory())
        } else {
            Err(e)
        }
    }

    /// Reads `key` from memory, counting a hit or a miss.
    fn memory_get(m: &mut MemoryTier<V>, key: &str, now: u64) -> Result<Option<V>> {
        let found = m.get(key, now).cloned();
        m.count_read(found.is_some());
        Ok(found)
    }

    /// Reads `key`: memory; with Upstash, the near copy, else Upstash, else (unreachable)
    /// memory.
    pub async fn get(&self, key: &str) -> Result<Option<V>> {
        self.check_open()?;
        validate_key(key)?;
        self.timed(self.get_unchecked(key)).await
    }

    async fn get_unchecked(&self, key: &str) -> Result<Option<V>> {
        let now = self.now();
        let Some(shared) = &self.shared else {
            return Self::memory_get(&mut self.memory(), key, now);
        };
        if shared.local_ttl_ms > 0 {
            let mut m = self.memory();
            if let Some(near) = m.get(key, now).cloned() {
                m.count_read(true);
                return Ok(Some(near));
            }
        }
        match shared.client.get(key).await {
            Ok(Some(bytes)) => {
                self.recovered();
                let text = String::from_utf8_lossy(&bytes);
                let value = shared.codec.decode(&text)?;
                let mut m = self.memory();
                m.count_read(true);
                if shared.local_ttl_ms > 0 {
                    let size = if m.core().needs_sizes() {
                        text.len() as u64
                    } else {
                        0
                    };
                    // A near copy that does not fit is simply not kept.
                    let _ = m.insert(key, value.clone(), size, Some(shared.local_ttl_ms), now);
                }
                Ok(Some(value))
            }
            Ok(None) => {
                self.recovered();
                self.memory().count_read(false);
                Ok(None)
            }
            Err(e) => self.fail(shared, e, |m| Self::memory_get(m, key, now)),
        }
    }

    /// Whether `key` holds a value (not counted as a hit or miss).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        self.check_open()?;
        validate_key(key)?;
        self.timed(async {
            let Some(shared) = &self.shared else {
                return Ok(self.memory().contains(key, self.now()));
            };
            match shared.client.command(&["EXISTS", key]).await {
                Ok(r) => {
                    self.recovered();
                    Ok(r.as_int().unwrap_or(0) > 0)
                }
                Err(e) => {
                    let now = self.now();
                    self.fail(shared, e, |m| Ok(m.contains(key, now)))
                }
            }
        })
        .await
    }

    /// Stores `value` (weighing `size` bytes in memory) for `ttl_secs` or the default TTL.
    pub async fn set(&self, key: &str, value: V, size: u64, ttl_secs: Option<f64>) -> Result<()> {
        self.check_open()?;
        validate_key(key)?;
        let ttl = self.memory.borrow().core().ttl_ms(ttl_secs)?;
        self.timed(async {
            let Some(shared) = &self.shared else {
                let now = self.now();
                return self.memory().set(key, value, size, ttl_secs, now);
            };
            let text = shared.codec.encode(&value)?;
            match shared.client.set_px(key, &text, ttl).await {
                Ok(()) => {
                    self.recovered();
                    let now = self.now();
                    let mut m = self.memory();
                    m.counters_mut().sets += 1;
                    if shared.local_ttl_ms > 0 {
                        let near = shared.local_ttl_ms.min(ttl);
                        let _ = m.insert(key, value, size, Some(near), now);
                    } else {
                        // No stale fallback copy may outlive a newer value in Upstash.
                        m.remove(key, now);
                    }
                    Ok(())
                }
                Err(e) => {
                    let now = self.now();
                    self.fail(shared, e, |m| {
                        m.insert(key, value, size, Some(ttl), now)?;
                        m.counters_mut().sets += 1;
                        Ok(())
                    })
                }
            }
        })
        .await
    }

    /// Deletes `key` from both tiers; true when the serving tier removed a live value.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.check_open()?;
        validate_key(key)?;
        self.timed(async {
            let now = self.now();
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

    /// Which of `keys` hold values (with Upstash, one pipelined request per 1,000 keys); not
    /// counted as reads.
    pub async fn present(&self, keys: &[String]) -> Result<Vec<bool>> {
        self.check_open()?;
        self.timed(async {
            let in_memory = |m: &mut MemoryTier<V>, now| -> Result<Vec<bool>> {
                Ok(keys.iter().map(|k| m.contains(k, now)).collect())
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
