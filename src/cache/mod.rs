//! The cache logic above the tiers: versions, namespaces, invalidation, statistics,
//! single-flight bookkeeping and warm planning.
//!
//! [`MemoryCore`] is the memory-tier cache that the JavaScript class `Cache` is a thin face on.
//! It is generic over the stored value, takes time as an argument and never touches a JS
//! runtime, so everything here is tested natively. [`SharedCache`] adds the shared tier
//! (Upstash) in front of it, with the memory tier as fallback and near cache. [`SlotCore`] is
//! the same memory-tier cache addressed by slot number, for a host that keeps keys and values
//! itself (the JavaScript `MemoryCache`, which thereby never copies a key into WebAssembly).

mod shared;
mod slots;

pub use shared::{Codec, HealthReport, HealthStatus, SharedCache};
pub use slots::SlotCore;

use hashbrown::HashMap;

use crate::error::{Error, Result};
use crate::glob;
use crate::key::{self, KeyFormat};
use crate::memory::{validate_key, MemoryConfig, MemoryTier};
use crate::options::{check_secs, Options};
use crate::stats::{SnapshotContext, Stats, StatsSnapshot, UpstashStats};

/// The pattern matching every request key of `namespace` under `version`, with glob
/// metacharacters of both escaped (so namespace `a*` never matches namespace `ab`).
pub fn namespace_pattern(version: &str, namespace: &str) -> Result<String> {
    key::validate_segment("version", version)?;
    key::validate_segment("namespace", namespace)?;
    let mut p = String::with_capacity(version.len() + namespace.len() + 4);
    glob::escape_into(version, &mut p);
    p.push(':');
    glob::escape_into(namespace, &mut p);
    p.push_str(":*");
    Ok(p)
}

/// The pattern matching every key under `version`, escaped.
pub fn version_pattern(version: &str) -> Result<String> {
    key::validate_segment("version", version)?;
    let mut p = String::with_capacity(version.len() + 2);
    glob::escape_into(version, &mut p);
    p.push_str(":*");
    Ok(p)
}

/// The four ways of removing keys by pattern, each taking one string argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// `deletePattern(pattern)`: a Redis glob.
    Pattern,
    /// `invalidateNamespace(namespace)`: every request key of a namespace, current version.
    Namespace,
    /// `invalidateVersion(version)`: every key under a version.
    Version,
    /// `updateVersion(version)`: switch to a new version, removing the old one's keys.
    SwitchVersion,
}

/// Converts an optional per-call TTL in seconds (or the default) to milliseconds.
pub fn ttl_ms(ttl_secs: Option<f64>, default_ms: u64) -> Result<u64> {
    match ttl_secs {
        None => Ok(default_ms),
        Some(secs) => {
            check_secs("ttl", secs, false)?;
            Ok(crate::clock::secs_to_ms(secs))
        }
    }
}

/// The memory-tier cache: a [`MemoryTier`] plus version, key format, default TTL and
/// statistics. Every method takes the current time in milliseconds.
#[derive(Debug)]
pub struct MemoryCore<V> {
    tier: MemoryTier<V>,
    version: String,
    key_format: KeyFormat,
    default_ttl_ms: u64,
    stats: Stats,
    shut_down: bool,
    scratch: String,
}

impl<V> MemoryCore<V> {
    /// A cache with the given options (validated here).
    pub fn new(options: &Options) -> Result<Self> {
        options.validate()?;
        Ok(MemoryCore {
            tier: MemoryTier::new(MemoryConfig {
                max_entries: options.max_entries,
                max_bytes: options.max_bytes,
            })?,
            version: options.version.clone(),
            key_format: options.key_format,
            default_ttl_ms: crate::clock::secs_to_ms(options.ttl),
            stats: Stats::default(),
            shut_down: false,
            scratch: String::new(),
        })
    }

    /// The current version prefix.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The canonical JSON dialect of request keys.
    pub fn key_format(&self) -> KeyFormat {
        self.key_format
    }

    /// Whether values must be sized (a byte bound is set).
    pub fn needs_sizes(&self) -> bool {
        self.tier.config().max_bytes.is_some()
    }

    /// The tier underneath.
    pub fn tier(&self) -> &MemoryTier<V> {
        &self.tier
    }

    /// Counters and latency.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    fn open(&self) -> Result<()> {
        if self.shut_down {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    /// Writes the request key for `namespace` and `data_json` into `out` (cleared first).
    pub fn request_key_into(
        &mut self,
        namespace: &str,
        data_json: &str,
        out: &mut String,
    ) -> Result<()> {
        out.clear();
        key::request_key_into(
            &self.version,
            namespace,
            data_json,
            self.key_format,
            &mut self.scratch,
            out,
        )
    }

    /// The request key for `namespace` and `data_json`.
    pub fn request_key(&mut self, namespace: &str, data_json: &str) -> Result<String> {
        let mut out = String::with_capacity(self.version.len() + namespace.len() + 34);
        self.request_key_into(namespace, data_json, &mut out)?;
        Ok(out)
    }

    /// Reads `key`, counting a hit or a miss.
    pub fn get(&mut self, key: &str, now: u64) -> Result<Option<&V>> {
        self.open()?;
        validate_key(key)?;
        let found = self.tier.get(key, now);
        if found.is_some() {
            self.stats.counters.hits += 1;
        } else {
            self.stats.counters.misses += 1;
        }
        Ok(found)
    }

    /// Whether `key` holds a live entry; not counted as a hit or miss, recency untouched.
    pub fn contains(&mut self, key: &str, now: u64) -> Result<bool> {
        self.open()?;
        validate_key(key)?;
        Ok(self.tier.contains(key, now))
    }

    /// Stores `value` (weighing `size` bytes) under `key` for `ttl_secs` seconds, or the default
    /// TTL. On error nothing changes.
    pub fn set(
        &mut self,
        key: &str,
        value: V,
        size: u64,
        ttl_secs: Option<f64>,
        now: u64,
    ) -> Result<()> {
        self.open()?;
        let ttl = ttl_ms(ttl_secs, self.default_ttl_ms)?;
        self.tier.insert(key, value, size, Some(ttl), now)?;
        self.stats.counters.sets += 1;
        Ok(())
    }

    /// Deletes `key`; true when a live entry was removed.
    pub fn delete(&mut self, key: &str, now: u64) -> Result<bool> {
        self.open()?;
        validate_key(key)?;
        let removed = self.tier.remove(key, now).is_some();
        if removed {
            self.stats.counters.deletes += 1;
        }
        Ok(removed)
    }

    /// Deletes every key matching the Redis glob `pattern`; returns how many.
    pub fn delete_pattern(&mut self, pattern: &str, now: u64) -> Result<usize> {
        self.open()?;
        glob::validate(pattern)?;
        Ok(self.remove_matching(pattern, now))
    }

    fn remove_matching(&mut self, pattern: &str, now: u64) -> usize {
        let n = self.tier.remove_matching(pattern, now);
        self.stats.counters.invalidations += n as u64;
        n
    }

    /// Deletes every request key of `namespace` under the current version.
    pub fn invalidate_namespace(&mut self, namespace: &str, now: u64) -> Result<usize> {
        self.open()?;
        let pattern = namespace_pattern(&self.version, namespace)?;
        Ok(self.remove_matching(&pattern, now))
    }

    /// Deletes every key under `version`.
    pub fn invalidate_version(&mut self, version: &str, now: u64) -> Result<usize> {
        self.open()?;
        let pattern = version_pattern(version)?;
        Ok(self.remove_matching(&pattern, now))
    }

    /// Invalidates the current version and switches to `new_version`; returns how many keys
    /// were removed. An invalid `new_version` changes nothing.
    pub fn update_version(&mut self, new_version: &str, now: u64) -> Result<usize> {
        self.open()?;
        key::validate_segment("version", new_version)?;
        let pattern = version_pattern(&self.version)?;
        let n = self.remove_matching(&pattern, now);
        self.version = new_version.to_owned();
        Ok(n)
    }

    /// Fails with `SHUT_DOWN` once the cache is shut down.
    pub fn check_open(&self) -> Result<()> {
        self.open()
    }

    /// The default TTL in milliseconds.
    pub fn default_ttl_ms(&self) -> u64 {
        self.default_ttl_ms
    }

    /// Switches the version without removing anything (the shared tier removes the old keys).
    pub fn set_version(&mut self, version: &str) -> Result<()> {
        self.open()?;
        key::validate_segment("version", version)?;
        self.version = version.to_owned();
        Ok(())
    }

    /// Reads `key` without counting a hit or miss (recency is refreshed).
    pub fn get_quiet(&mut self, key: &str, now: u64) -> Option<&V> {
        self.tier.get(key, now)
    }

    /// Stores without counting a set.
    pub fn put_quiet(
        &mut self,
        key: &str,
        value: V,
        size: u64,
        ttl_ms: u64,
        now: u64,
    ) -> Result<()> {
        self.tier.insert(key, value, size, Some(ttl_ms), now)
    }

    /// Removes `key` without counting a delete; true when a live entry went.
    pub fn remove_quiet(&mut self, key: &str, now: u64) -> bool {
        self.tier.remove(key, now).is_some()
    }

    /// Removes every key matching `pattern` without counting invalidations.
    pub fn remove_matching_quiet(&mut self, pattern: &str, now: u64) -> usize {
        self.tier.remove_matching(pattern, now)
    }

    /// Runs one [`Removal`] with its argument; returns how many keys went.
    pub fn remove_by(&mut self, kind: Removal, arg: &str, now: u64) -> Result<usize> {
        match kind {
            Removal::Pattern => self.delete_pattern(arg, now),
            Removal::Namespace => self.invalidate_namespace(arg, now),
            Removal::Version => self.invalidate_version(arg, now),
            Removal::SwitchVersion => self.update_version(arg, now),
        }
    }

    /// Removes everything; returns how many entries there were.
    pub fn clear(&mut self) -> Result<usize> {
        self.open()?;
        Ok(self.tier.clear())
    }

    /// Removes expired entries, looking at no more than `budget` index items.
    pub fn sweep(&mut self, now: u64, budget: usize) -> usize {
        self.tier.sweep(now, budget)
    }

    /// Live entries (expired ones are swept first, at a cost proportional to their number).
    pub fn len(&mut self, now: u64) -> usize {
        self.tier.sweep_all(now);
        self.tier.len()
    }

    /// Whether no live entry is held.
    pub fn is_empty(&mut self, now: u64) -> bool {
        self.len(now) == 0
    }

    /// Records the duration of one operation.
    pub fn record_latency(&mut self, ms: f64) {
        self.stats.latency.record(ms);
    }

    /// Counts one failed shared-tier operation.
    pub fn record_error(&mut self) {
        self.stats.counters.errors += 1;
    }

    /// The statistics snapshot.
    pub fn snapshot(
        &mut self,
        now: u64,
        backend: &'static str,
        cleanup_timer_active: bool,
        fallback_active: bool,
        upstash: Option<UpstashStats>,
    ) -> StatsSnapshot {
        let keys = self.len(now) as u64;
        let removals = self.tier.removals();
        self.stats.counters.evictions = removals.evicted;
        self.stats.counters.expirations = removals.expired;
        self.stats.snapshot(SnapshotContext {
            backend,
            version: self.version.clone(),
            keys,
            max_entries: self.tier.config().max_entries as u64,
            memory_used_bytes: self.tier.bytes(),
            cleanup_timer_active,
            fallback_active,
            upstash,
        })
    }

    /// Shuts the cache down: every later operation fails with `SHUT_DOWN`. Returns true the first
    /// time; later calls do nothing.
    pub fn shutdown(&mut self) -> bool {
        if self.shut_down {
            return false;
        }
        self.shut_down = true;
        self.tier.clear();
        true
    }

    /// Whether [`MemoryCore::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }
}

/// In-flight generator calls by key, for single-flight `getOrSet`: the first caller registers a
/// shared handle (a promise in JavaScript), later callers for the same key get a clone of it.
#[derive(Debug)]
pub struct InFlight<P> {
    calls: HashMap<String, P>,
}

impl<P> Default for InFlight<P> {
    fn default() -> Self {
        InFlight {
            calls: HashMap::new(),
        }
    }
}

impl<P: Clone> InFlight<P> {
    /// The handle of a call under way for `key`.
    pub fn get(&self, key: &str) -> Option<P> {
        self.calls.get(key).cloned()
    }

    /// Registers the call for `key`.
    pub fn start(&mut self, key: &str, handle: P) {
        self.calls.insert(key.to_owned(), handle);
    }

    /// Forgets the call for `key` once it has settled.
    pub fn finish(&mut self, key: &str) {
        self.calls.remove(key);
    }

    /// Calls under way.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is under way.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// What one warm item came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmOutcome {
    /// Generated and stored.
    Warmed,
    /// Already cached (present, whatever its value).
    Skipped,
    /// The generator failed or its value could not be stored.
    Failed,
}

impl WarmOutcome {
    /// `"warmed"`, `"skipped"` or `"failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarmOutcome::Warmed => "warmed",
            WarmOutcome::Skipped => "skipped",
            WarmOutcome::Failed => "failed",
        }
    }
}

/// Totals of a warm run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmReport {
    /// Items generated and stored.
    pub warmed: u32,
    /// Items already cached.
    pub skipped: u32,
    /// Items that failed.
    pub failed: u32,
}

impl WarmReport {
    /// Adds one outcome.
    pub fn add(&mut self, outcome: WarmOutcome) {
        match outcome {
            WarmOutcome::Warmed => self.warmed += 1,
            WarmOutcome::Skipped => self.skipped += 1,
            WarmOutcome::Failed => self.failed += 1,
        }
    }

    /// Items counted so far.
    pub fn done(&self) -> u32 {
        self.warmed + self.skipped + self.failed
    }
}

/// One unit of warming work: a namespace, a topic, and the request key of `{"topic": topic}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmItem {
    /// Index of the namespace in the caller's list.
    pub namespace: usize,
    /// Index of the topic in the caller's list.
    pub topic: usize,
    /// The request key.
    pub key: String,
}

/// The JSON text of warm data for `topic`: `{"topic": topic}`.
pub fn topic_json(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len() + 12);
    out.push_str("{\"topic\":");
    out.push('"');
    for ch in topic.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("\"}");
    out
}

/// Every (namespace, topic) pair with its request key, namespace-major.
pub fn warm_plan<V>(
    core: &mut MemoryCore<V>,
    namespaces: &[String],
    topics: &[String],
) -> Result<Vec<WarmItem>> {
    let mut items = Vec::with_capacity(namespaces.len() * topics.len());
    for (n, ns) in namespaces.iter().enumerate() {
        for (t, topic) in topics.iter().enumerate() {
            let key = core.request_key(ns, &topic_json(topic))?;
            items.push(WarmItem {
                namespace: n,
                topic: t,
                key,
            });
        }
    }
    Ok(items)
}
