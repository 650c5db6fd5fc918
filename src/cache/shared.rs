//! The two-tier cache: Upstash holds the data; the memory tier is the fallback while Upstash is
//! unreachable and, with `localTtl`, a short-lived near copy of hot keys.
//!
//! - Reads and writes that cannot reach Upstash (transport failure, timeout, 5xx, a reply that
//!   is not the dialect, a refused token) go to memory when `fallback` is on: counted in
//!   `errors`, `fallbackActive` set until Upstash answers again. A command error (Upstash ran the
//!   command and it failed) is never hidden.
//! - Invalidations (`delete`, `deletePattern`, namespace and version invalidation) apply to
//!   memory first and then fail if Upstash could not apply them, so a caller never believes stale
//!   data was removed when it was not.
//! - Values travel as JSON text (`SET key text PX ttl`); the [`Codec`] turns values into text and
//!   back (`JSON.stringify`/`JSON.parse` in JavaScript).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{namespace_pattern, ttl_ms, version_pattern, MemoryCore, Removal};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::glob;
use crate::key;
use crate::memory::validate_key;
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
    /// Upstash answers.
    Healthy,
    /// Upstash is unreachable and memory is serving.
    Degraded,
    /// Upstash is unreachable and nothing serves in its place (or the cache is shut down).
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
    /// Round-trip time of the probe, milliseconds.
    pub latency_ms: f64,
    /// Why it is not healthy (never containing the token).
    pub error: Option<String>,
}

impl HealthReport {
    /// The fields of the `health()` object of a cache whose backend is `backend` (`"memory"`
    /// or `"upstash"`), as `(name, value)` in order; `error` is [`Field::Absent`] when healthy.
    pub fn fields(&self, backend: &'static str) -> [(&'static str, Field<'_>); 4] {
        [
            ("status", Field::Text(self.status.as_str())),
            ("backend", Field::Text(backend)),
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

/// The cache with Upstash in front and memory behind.
pub struct SharedCache<V, T, C> {
    memory: Rc<RefCell<MemoryCore<V>>>,
    client: Client<T>,
    codec: C,
    clock: Rc<dyn Clock>,
    fallback: bool,
    local_ttl_ms: u64,
    fallback_active: Cell<bool>,
}

impl<V, T, C> std::fmt::Debug for SharedCache<V, T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("fallback", &self.fallback)
            .field("local_ttl_ms", &self.local_ttl_ms)
            .field("fallback_active", &self.fallback_active.get())
            .finish_non_exhaustive()
    }
}

impl<V: Clone, T: Transport, C: Codec<V>> SharedCache<V, T, C> {
    /// A two-tier cache over `memory` (which keeps counting the statistics).
    pub fn new(
        memory: Rc<RefCell<MemoryCore<V>>>,
        client: Client<T>,
        codec: C,
        clock: Rc<dyn Clock>,
        fallback: bool,
        local_ttl_ms: u64,
    ) -> Self {
        SharedCache {
            memory,
            client,
            codec,
            clock,
            fallback,
            local_ttl_ms,
            fallback_active: Cell::new(false),
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &Client<T> {
        &self.client
    }

    /// Whether reads and writes are being served by memory.
    pub fn fallback_active(&self) -> bool {
        self.fallback_active.get()
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn mem(&self) -> std::cell::RefMut<'_, MemoryCore<V>> {
        self.memory.borrow_mut()
    }

    fn open(&self) -> Result<()> {
        self.memory.borrow().check_open()
    }

    fn recovered(&self) {
        self.fallback_active.set(false);
    }

    /// Counts the failure; runs `in_memory` instead when fallback applies, else returns `e`.
    fn fail<R>(
        &self,
        e: Error,
        in_memory: impl FnOnce(&mut MemoryCore<V>) -> Result<R>,
    ) -> Result<R> {
        self.mem().record_error();
        if self.fallback && unreachable(&e) {
            self.fallback_active.set(true);
            in_memory(&mut self.mem())
        } else {
            Err(e)
        }
    }

    fn count(&self, f: impl FnOnce(&mut crate::stats::Counters)) {
        f(&mut self.mem().stats_mut().counters);
    }

    /// Reads `key`: the near copy, else Upstash, else (unreachable) memory.
    pub async fn get(&self, key: &str) -> Result<Option<V>> {
        self.open()?;
        validate_key(key)?;
        let now = self.now();
        if self.local_ttl_ms > 0 {
            let near = self.mem().get_quiet(key, now).cloned();
            if near.is_some() {
                self.count(|c| c.hits += 1);
                return Ok(near);
            }
        }
        match self.client.get(key).await {
            Ok(Some(bytes)) => {
                self.recovered();
                let text = String::from_utf8_lossy(&bytes);
                let value = self.codec.decode(&text)?;
                self.count(|c| c.hits += 1);
                if self.local_ttl_ms > 0 {
                    let mut m = self.mem();
                    let size = if m.needs_sizes() {
                        text.len() as u64
                    } else {
                        0
                    };
                    // A near copy that does not fit is simply not kept.
                    let _ = m.put_quiet(key, value.clone(), size, self.local_ttl_ms, now);
                }
                Ok(Some(value))
            }
            Ok(None) => {
                self.recovered();
                self.count(|c| c.misses += 1);
                Ok(None)
            }
            Err(e) => self.fail(e, |m| m.get(key, now).map(|v| v.cloned())),
        }
    }

    /// Whether `key` holds a value (not counted as a hit or miss).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        self.open()?;
        validate_key(key)?;
        match self.client.command(&["EXISTS", key]).await {
            Ok(r) => {
                self.recovered();
                Ok(r.as_int().unwrap_or(0) > 0)
            }
            Err(e) => {
                let now = self.now();
                self.fail(e, |m| m.contains(key, now))
            }
        }
    }

    /// Stores `value` (weighing `size` bytes in memory) for `ttl_secs` or the default TTL.
    pub async fn set(&self, key: &str, value: V, size: u64, ttl_secs: Option<f64>) -> Result<()> {
        self.open()?;
        validate_key(key)?;
        let ttl = ttl_ms(ttl_secs, self.memory.borrow().default_ttl_ms())?;
        let text = self.codec.encode(&value)?;
        match self.client.set_px(key, &text, ttl).await {
            Ok(()) => {
                self.recovered();
                self.count(|c| c.sets += 1);
                let now = self.now();
                let mut m = self.mem();
                if self.local_ttl_ms > 0 {
                    let _ = m.put_quiet(key, value, size, self.local_ttl_ms.min(ttl), now);
                } else {
                    // No stale fallback copy may outlive a newer value in Upstash.
                    m.remove_quiet(key, now);
                }
                Ok(())
            }
            Err(e) => {
                let now = self.now();
                self.fail(e, |m| {
                    m.set(key, value, size, Some(ttl as f64 / 1000.0), now)
                })
            }
        }
    }

    /// Deletes `key` from both tiers; true when Upstash removed it.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.open()?;
        validate_key(key)?;
        let now = self.now();
        let in_memory = self.mem().remove_quiet(key, now);
        match self.client.command(&["UNLINK", key]).await {
            Ok(r) => {
                self.recovered();
                let removed = r.as_int().unwrap_or(0) > 0;
                if removed {
                    self.count(|c| c.deletes += 1);
                }
                Ok(removed)
            }
            Err(e) => {
                self.mem().record_error();
                if in_memory {
                    self.count(|c| c.deletes += 1);
                }
                Err(e)
            }
        }
    }

    /// Deletes every key matching `pattern` from both tiers; returns how many Upstash removed.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        self.open()?;
        glob::validate(pattern)?;
        self.invalidate(pattern).await
    }

    async fn invalidate(&self, pattern: &str) -> Result<u64> {
        let now = self.now();
        let local = self.mem().remove_matching_quiet(pattern, now) as u64;
        match self.client.delete_matching(pattern).await {
            Ok(n) => {
                self.recovered();
                self.count(|c| c.invalidations += n);
                Ok(n)
            }
            Err(e) => {
                self.mem().record_error();
                self.count(|c| c.invalidations += local);
                Err(e)
            }
        }
    }

    /// Deletes every request key of `namespace` under the current version.
    pub async fn invalidate_namespace(&self, namespace: &str) -> Result<u64> {
        self.open()?;
        let pattern = namespace_pattern(self.memory.borrow().version(), namespace)?;
        self.invalidate(&pattern).await
    }

    /// Deletes every key under `version`.
    pub async fn invalidate_version(&self, version: &str) -> Result<u64> {
        self.open()?;
        self.invalidate(&version_pattern(version)?).await
    }

    /// Switches to `new_version` at once, then removes the old version's keys. If Upstash
    /// cannot remove them the call fails, but the switch stands: old keys are never read again.
    pub async fn update_version(&self, new_version: &str) -> Result<u64> {
        self.open()?;
        key::validate_segment("version", new_version)?;
        let old = self.memory.borrow().version().to_owned();
        let pattern = version_pattern(&old)?;
        self.mem().set_version(new_version)?;
        self.invalidate(&pattern).await
    }

    /// Runs one [`Removal`] with its argument; returns how many keys Upstash removed.
    pub async fn remove_by(&self, kind: Removal, arg: &str) -> Result<u64> {
        match kind {
            Removal::Pattern => self.delete_pattern(arg).await,
            Removal::Namespace => self.invalidate_namespace(arg).await,
            Removal::Version => self.invalidate_version(arg).await,
            Removal::SwitchVersion => self.update_version(arg).await,
        }
    }

    /// Which of `keys` hold values (one pipelined request per 1,000 keys); not counted.
    pub async fn present(&self, keys: &[String]) -> Result<Vec<bool>> {
        self.open()?;
        match self.client.exists_each(keys).await {
            Ok(v) => {
                self.recovered();
                Ok(v)
            }
            Err(e) => {
                let now = self.now();
                self.fail(e, |m| keys.iter().map(|k| m.contains(k, now)).collect())
            }
        }
    }

    /// Statistics: counters from memory, `keys` and the `upstash` figures from `DBSIZE` and
    /// `INFO` when Upstash answers.
    pub async fn snapshot(&self, cleanup_timer_active: bool) -> StatsSnapshot {
        let info = self.client.info().await;
        let now = self.now();
        let fallback = self.fallback_active();
        let mut m = self.mem();
        match info {
            Ok((mut up, keys)) => {
                up.round_trips = self.client.round_trips();
                let mut s = m.snapshot(now, "upstash", cleanup_timer_active, fallback, Some(up));
                s.keys = keys;
                s
            }
            Err(_) => m.snapshot(now, "upstash", cleanup_timer_active, fallback, None),
        }
    }

    /// Pings Upstash: healthy when it answers, degraded when memory serves in its place.
    pub async fn health(&self) -> HealthReport {
        if let Err(e) = self.open() {
            return HealthReport {
                status: HealthStatus::Unhealthy,
                latency_ms: 0.0,
                error: Some(e.to_string()),
            };
        }
        let t0 = self.clock.precise_ms();
        let r = self.client.ping().await;
        let latency_ms = self.clock.precise_ms() - t0;
        match r {
            Ok(()) => {
                self.recovered();
                HealthReport {
                    status: HealthStatus::Healthy,
                    latency_ms,
                    error: None,
                }
            }
            Err(e) => {
                let status = if self.fallback {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Unhealthy
                };
                if self.fallback && unreachable(&e) {
                    self.fallback_active.set(true);
                }
                HealthReport {
                    status,
                    latency_ms,
                    error: Some(e.to_string()),
                }
            }
        }
    }
}
