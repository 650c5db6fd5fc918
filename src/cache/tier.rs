//! [`MemoryTier`]: the Rust host of [`Core`], holding keys and values for `Cache` (JavaScript)
//! and the Rust Worker API.
//!
//! It owns exactly what a host owns: a hash table from key to slot (hashing the key stored in
//! the slot, so each key is stored once) and the key and value of each slot. Every decision (TTL,
//! expiry on access, LRU order and eviction, bounds, pattern matching, versions, counters) is the
//! core's; after each call this host drops the keys and values of the slots the core freed.

use std::fmt;

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use super::{Core, Removal, Removed};
use crate::error::Result;
use crate::memory::{MemoryConfig, RemovalCause, RemovalCounts};
use crate::options::Options;
use crate::stats::{Counters, StatsSnapshot, UpstashStats};

/// A callback told of every removal: the key, the value and why it left.
pub type Listener<V> = Box<dyn FnMut(&str, &V, RemovalCause)>;

struct Entry<V> {
    key: Box<str>,
    value: V,
}

/// The memory tier with keys: a [`Core`] plus a hash table from key to slot and the values.
///
/// The methods named after the tier (`insert`, `get`, `peek`, `contains`, `remove`,
/// `remove_matching`) count nothing and take a TTL in milliseconds (`None`: never expires); the
/// cache-level ones (`set`, `remove_by`, `snapshot`, ...) resolve the default TTL and count.
///
/// ```
/// use cachette::cache::MemoryTier;
/// use cachette::memory::MemoryConfig;
/// let mut tier = MemoryTier::new(MemoryConfig { max_entries: 2, max_bytes: None }).unwrap();
/// let now = 0;
/// tier.insert("a", 1, 0, None, now).unwrap();
/// tier.insert("b", 2, 0, Some(1_000), now).unwrap();
/// assert_eq!(tier.get("a", now), Some(&1)); // "a" is now the most recent
/// tier.insert("c", 3, 0, None, now).unwrap(); // evicts "b", the least recently used
/// assert!(!tier.contains("b", now));
/// assert_eq!(tier.len(), 2);
/// ```
pub struct MemoryTier<V> {
    core: Core,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    entries: Vec<Option<Entry<V>>>,
    listener: Option<Listener<V>>,
}

impl<V> fmt::Debug for MemoryTier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTier")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl<V> MemoryTier<V> {
    /// A tier with these bounds and the default options otherwise. `INVALID_OPTIONS` when a
    /// bound is zero.
    pub fn new(config: MemoryConfig) -> Result<Self> {
        Self::with_options(&Options {
            max_entries: config.max_entries,
            max_bytes: config.max_bytes,
            ..Options::default()
        })
    }

    /// A tier with the given cache options (validated).
    pub fn with_options(options: &Options) -> Result<Self> {
        Ok(MemoryTier {
            core: Core::new(options)?,
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            entries: Vec::new(),
            listener: None,
        })
    }

    /// The policy core (version, counters, bounds).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Sets the callback told of every removal, with its cause.
    pub fn set_listener(&mut self, listener: Option<Listener<V>>) {
        self.listener = listener;
    }

    fn find(&self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let entries = &self.entries;
        self.table
            .find(
                hash,
                |&s| matches!(entries.get(s as usize), Some(Some(e)) if &*e.key == key),
            )
            .copied()
    }

    fn entry(&self, slot: u32) -> Option<&Entry<V>> {
        self.entries.get(slot as usize).and_then(Option::as_ref)
    }

    /// Takes the key and value out of `slot` and forgets its table item; tells the listener.
    fn forget(&mut self, slot: u32, cause: RemovalCause) -> Option<V> {
        let entry = self.entries.get_mut(slot as usize).and_then(Option::take)?;
        let hash = self.hasher.hash_one(&*entry.key);
        if let Ok(found) = self.table.find_entry(hash, |&s| s == slot) {
            found.remove();
        }
        if let Some(listener) = self.listener.as_mut() {
            listener(&entry.key, &entry.value, cause);
        }
        Some(entry.value)
    }

    /// Drops the keys and values of the slots the last core call freed.
    fn drain(&mut self) {
        for i in 0..self.core.removed().len() {
            if let Some(&Removed { slot, cause }) = self.core.removed().get(i) {
                self.forget(slot, cause);
            }
        }
        self.core.clear_removed();
    }

    /// Installs `key` and `value` in the fresh `slot` the core returned.
    fn install(&mut self, slot: u32, key: &str, value: V) {
        let i = slot as usize;
        if i >= self.entries.len() {
            self.entries.resize_with(i + 1, || None);
        }
        if let Some(e) = self.entries.get_mut(i) {
            *e = Some(Entry {
                key: key.into(),
                value,
            });
        }
        let hash = self.hasher.hash_one(key);
        let (hasher, entries) = (&self.hasher, &self.entries);
        self.table.insert_unique(hash, slot, |&s| {
            entries
                .get(s as usize)
                .and_then(Option::as_ref)
                .map_or(0, |e| hasher.hash_one(&*e.key))
        });
    }

    /// Stores `value` under `key`, charged `key.len() + size` bytes, expiring `ttl_ms`
    /// milliseconds after `now` (`None`: never). Counts nothing. Evicts least recently used
    /// entries as the bounds require. On error nothing changes.
    pub fn insert(
        &mut self,
        key: &str,
        value: V,
        size: u64,
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<()> {
        let existing = self.find(key);
        let stored = self.core.store(existing, key.len(), size, ttl_ms, now);
        self.put(existing, stored, key, value)
    }

    /// Stores `value` under `key` for `ttl_secs` seconds (or the default TTL), counting a set.
    pub fn set(
        &mut self,
        key: &str,
        value: V,
        size: u64,
        ttl_secs: Option<f64>,
        now: u64,
    ) -> Result<()> {
        let existing = self.find(key);
        let stored = self.core.insert(existing, key.len(), size, ttl_secs, now);
        self.put(existing, stored, key, value)
    }

    fn put(
        &mut self,
        existing: Option<u32>,
        stored: Result<u32>,
        key: &str,
        value: V,
    ) -> Result<()> {
        let slot = match stored {
            Ok(slot) => slot,
            Err(e) => {
                self.drain();
                return Err(e);
            }
        };
        // The key's own slot comes back either updated in place, or freed (expired) and reused.
        let in_place =
            existing == Some(slot) && !self.core.removed().iter().any(|r| r.slot == slot);
        if in_place {
            // Replaced in place: reported before the evictions it caused.
            if let Some(e) = self.entries.get_mut(slot as usize).and_then(Option::as_mut) {
                let old = std::mem::replace(&mut e.value, value);
                if let Some(listener) = self.listener.as_mut() {
                    listener(key, &old, RemovalCause::Replaced);
                }
            }
            self.drain();
        } else {
            self.drain();
            self.install(slot, key, value);
        }
        Ok(())
    }

    /// The value for `key`, making it the most recently used; an expired entry is removed.
    /// Counts nothing.
    pub fn get(&mut self, key: &str, now: u64) -> Option<&V> {
        let live = match self.find(key) {
            Some(slot) => self.core.read(slot, now).then_some(slot),
            None => {
                self.core.sweep_step(now);
                None
            }
        };
        self.drain();
        self.entry(live?).map(|e| &e.value)
    }

    /// The value for `key` without touching recency or removing anything.
    pub fn peek(&self, key: &str, now: u64) -> Option<&V> {
        let slot = self.find(key)?;
        if !self.core.tier().is_live(slot, now) {
            return None;
        }
        self.entry(slot).map(|e| &e.value)
    }

    /// Whether a live entry exists for `key` (recency untouched; an expired one is removed).
    pub fn contains(&mut self, key: &str, now: u64) -> bool {
        let live = match self.find(key) {
            Some(slot) => self.core.contains(slot, now),
            None => {
                self.core.sweep_step(now);
                false
            }
        };
        self.drain();
        live
    }

    /// Milliseconds until `key` expires: `Some(None)` for no expiry, `None` when absent.
    pub fn ttl_ms(&self, key: &str, now: u64) -> Option<Option<u64>> {
        match self.core.tier().expires_at(self.find(key)?)? {
            u64::MAX => Some(None),
            at if at > now => Some(Some(at - now)),
            _ => None,
        }
    }

    /// Removes `key`; returns its value if it was live. Counts nothing.
    pub fn remove(&mut self, key: &str, now: u64) -> Option<V> {
        let slot = self.find(key)?;
        let live = self.core.remove(slot, now);
        let cause = if live {
            RemovalCause::Explicit
        } else {
            RemovalCause::Expired
        };
        let value = self.forget(slot, cause);
        self.drain();
        value.filter(|_| live)
    }

    /// Removes every entry whose key matches the Redis glob `pattern` (validated by the
    /// caller), exactly as `SCAN MATCH` + `UNLINK` would on Redis. Returns how many live entries
    /// went; expired ones met on the way leave as expired and are not counted. Counts nothing.
    pub fn remove_matching(&mut self, pattern: &str, now: u64) -> usize {
        let candidates = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as u32, e.key.as_bytes())));
        let n = self.core.remove_matching(pattern, candidates, now);
        self.drain();
        n
    }

    /// Runs one [`Removal`] of `arg` (see [`Core::remove_by`]), counted as invalidations.
    pub fn remove_by(&mut self, kind: Removal, arg: &str, now: u64) -> Result<usize> {
        let candidates = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as u32, e.key.as_bytes())));
        let n = self.core.remove_by(kind, arg, candidates, now);
        self.drain();
        n
    }

    /// Removes expired entries, looking at no more than `budget` index items. Returns how many
    /// entries it removed.
    pub fn sweep(&mut self, now: u64, budget: usize) -> usize {
        let n = self.core.sweep(now, budget);
        self.drain();
        n
    }

    /// Removes every expired entry, those behind a live one in a TTL list included (see
    /// [`SlotTier::sweep_all`](crate::memory::SlotTier::sweep_all)).
    pub fn sweep_all(&mut self, now: u64) -> usize {
        let n = self.core.sweep_all(now);
        self.drain();
        n
    }

    /// Removes everything (each entry reported as [`RemovalCause::Explicit`]); returns how many
    /// entries there were. `SHUT_DOWN` once shut down.
    pub fn clear(&mut self) -> Result<usize> {
        let n = self.core.clear()?;
        let entries = std::mem::take(&mut self.entries);
        if let Some(listener) = self.listener.as_mut() {
            for e in entries.iter().flatten() {
                listener(&e.key, &e.value, RemovalCause::Explicit);
            }
        }
        self.table.clear();
        Ok(n)
    }

    /// Live keys, most recently used first.
    pub fn keys(&self, now: u64) -> Vec<&str> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(
            self.core
                .tier()
                .recency(now)
                .filter_map(|s| self.entry(s).map(|e| &*e.key)),
        );
        out
    }

    /// Live and not-yet-swept entries.
    pub fn len(&self) -> usize {
        self.core.tier().len()
    }

    /// Whether the tier holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live entries (expired ones are swept first).
    pub fn live_len(&mut self, now: u64) -> usize {
        let n = self.core.len(now);
        self.drain();
        n
    }

    /// Bytes charged (keys plus declared value sizes).
    pub fn bytes(&self) -> u64 {
        self.core.tier().bytes()
    }

    /// Removals so far, by cause.
    pub fn removals(&self) -> RemovalCounts {
        self.core.removals()
    }

    /// The earliest expiry time among entries with a TTL (possibly of an entry already removed).
    pub fn next_expiry(&self) -> Option<u64> {
        self.core.tier().next_expiry()
    }

    // ---- cache-level: the core's version, request keys and counters ------------------------

    /// The request key for `namespace` and `data_json` under the current version.
    pub fn request_key(&mut self, namespace: &str, data_json: &str) -> Result<String> {
        self.core.request_key(namespace, data_json)
    }

    /// Switches the version without removing anything.
    pub fn set_version(&mut self, version: &str) -> Result<()> {
        self.core.set_version(version)
    }

    /// Counts one read: a hit when it found a live entry, else a miss.
    pub fn count_read(&mut self, hit: bool) {
        self.core.count_read(hit);
    }

    /// The operation counters.
    pub fn counters_mut(&mut self) -> &mut Counters {
        self.core.counters_mut()
    }

    /// Records the duration of one operation.
    pub fn record_latency(&mut self, ms: f64) {
        self.core.record_latency(ms);
    }

    /// The statistics snapshot (expired entries are swept first).
    pub fn snapshot(
        &mut self,
        now: u64,
        backend: &'static str,
        cleanup_timer_active: bool,
        fallback_active: bool,
        upstash: Option<UpstashStats>,
    ) -> StatsSnapshot {
        let s = self
            .core
            .snapshot(now, backend, cleanup_timer_active, fallback_active, upstash);
        self.drain();
        s
    }

    /// Shuts down: every later operation fails with `SHUT_DOWN`; the entries go (unreported).
    /// True the first time.
    pub fn shutdown(&mut self) -> bool {
        let first = self.core.shutdown();
        self.entries = Vec::new();
        self.table = HashTable::new();
        first
    }

    /// Entries in the expiry index; for tests of its bound.
    #[doc(hidden)]
    pub fn expiry_index_len(&self) -> usize {
        self.core.tier().expiry_index_len()
    }

    /// Asserts every structural invariant; for tests (panics on a broken invariant).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let tier = self.core.tier();
        tier.check_invariants();
        for slot in tier.occupied() {
            let e = self
                .entry(slot)
                .expect("an occupied slot has a key and value");
            assert_eq!(self.find(&e.key), Some(slot), "table item of {:?}", e.key);
        }
        let held = self.entries.iter().flatten().count();
        assert_eq!(
            held,
            tier.len(),
            "keys and values held for occupied slots only"
        );
        assert_eq!(self.table.len(), tier.len(), "table size");
    }
}
