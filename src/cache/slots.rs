//! [`SlotCore`]: the memory-tier cache for a host that keeps keys and values itself.
//!
//! The JavaScript `MemoryCache` holds its keys in a `Map` and its values in an array, because
//! copying a key into WebAssembly memory and a value out through the externref table on every
//! call costs more than the whole lookup. What stays here is the cache's brain: LRU order, TTL
//! and the expiry index, entry and byte bounds, eviction, sweeping, Redis-exact pattern
//! matching, version and request keys, statistics and removal causes. Entries are addressed by
//! slot number (a [`SlotTier`]); every slot this core frees on its own (evicted, expired,
//! deleted, matched by a pattern) is appended to [`SlotCore::removed`], which the host drains
//! after each call to drop its key and value. [`SlotCore::clear`] and [`SlotCore::shutdown`]
//! log nothing: the host empties itself.
//!
//! Reads and misses are counted by the host (a hit needs no call here) and handed over with
//! [`SlotCore::add_reads`].

use crate::error::{Error, Result};
use crate::glob;
use crate::key::{self, KeyFormat};
use crate::memory::{validate_key_len, MemoryConfig, RemovalCause, SlotTier, SWEEP_PER_OP};
use crate::options::Options;
use crate::stats::{SnapshotContext, Stats, StatsSnapshot};

use super::{namespace_pattern, ttl_ms, version_pattern};

/// The memory-tier cache addressed by slot number. Every method takes the current time in
/// milliseconds where time matters.
///
/// ```
/// use cachette::cache::SlotCore;
/// use cachette::options::Options;
/// let mut core = SlotCore::new(&Options { max_entries: 1, ..Options::default() })?;
/// let a = core.insert(None, 1, 0, None, 0)?; // key "a" is the host's business
/// let b = core.insert(None, 1, 0, None, 0)?; // evicts a
/// assert_eq!(core.removed(), [a]);
/// core.clear_removed();
/// assert!(core.contains(b, 0));
/// # Ok::<(), cachette::Error>(())
/// ```
#[derive(Debug)]
pub struct SlotCore {
    tier: SlotTier<()>,
    version: String,
    key_format: KeyFormat,
    default_ttl_ms: u64,
    stats: Stats,
    shut_down: bool,
    scratch: String,
    removed: Vec<u32>,
    debt: usize,
}

/// Appends a removed slot to the log (the removal sink of every call).
macro_rules! log {
    ($removed:expr) => {
        &mut |slot: u32, (): (), _: RemovalCause| $removed.push(slot)
    };
}

impl SlotCore {
    /// A cache with the given options (validated here; the shared-tier ones are ignored).
    pub fn new(options: &Options) -> Result<Self> {
        options.validate()?;
        Ok(SlotCore {
            tier: SlotTier::new(MemoryConfig {
                max_entries: options.max_entries,
                max_bytes: options.max_bytes,
            })?,
            version: options.version.clone(),
            key_format: options.key_format,
            default_ttl_ms: crate::clock::secs_to_ms(options.ttl),
            stats: Stats::default(),
            shut_down: false,
            scratch: String::new(),
            removed: Vec::new(),
            debt: 0,
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

    /// The tier underneath (expiry times, capacity, counts).
    pub fn tier(&self) -> &SlotTier<()> {
        &self.tier
    }

    /// Slots freed since the log was last cleared, in order.
    pub fn removed(&self) -> &[u32] {
        &self.removed
    }

    /// Empties the removal log (the host has dropped those slots' keys and values).
    pub fn clear_removed(&mut self) {
        self.removed.clear();
    }

    /// Fails with `SHUT_DOWN` once the cache is shut down.
    pub fn check_open(&self) -> Result<()> {
        if self.shut_down {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    /// Whether [`SlotCore::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// Appends the request key for `namespace` and `data_json` to `out` (`SHUT_DOWN` once shut
    /// down; see [`key::request_key_into`] for the rest).
    pub fn request_key_into(
        &mut self,
        namespace: &str,
        data_json: &str,
        out: &mut String,
    ) -> Result<()> {
        self.check_open()?;
        key::request_key_into(
            &self.version,
            namespace,
            data_json,
            self.key_format,
            &mut self.scratch,
            out,
        )
    }

    /// The MD5 digest of the canonical JSON of `data_json`, checking `namespace` as the request
    /// key `"{version}:{namespace}:{hex of the digest}"` needs (`SHUT_DOWN` once shut down; see
    /// [`key::request_key_into`] for the rest). The host, which knows both segments, writes the
    /// key itself.
    pub fn request_digest(&mut self, namespace: &str, data_json: &str) -> Result<[u8; 16]> {
        self.check_open()?;
        key::validate_segment("version", &self.version)?;
        key::validate_segment("namespace", namespace)?;
        self.scratch.clear();
        key::canonicalize_into(data_json, self.key_format, &mut self.scratch)?;
        Ok(crate::md5::md5(self.scratch.as_bytes()))
    }

    /// Stores an entry for a key of `key_len` bytes of UTF-8 whose value weighs `size` bytes,
    /// for `ttl_secs` seconds (or the default TTL), in `slot` if that slot holds the key's live
    /// entry, else in a new slot; returns the slot. Counts a set. Evicts least recently used
    /// entries as the bounds require (logged). On error nothing changes: `SHUT_DOWN`,
    /// `INVALID_OPTIONS` for a bad TTL, `INVALID_KEY` for a key over 32 KiB, `VALUE_TOO_LARGE`.
    pub fn insert(
        &mut self,
        slot: Option<u32>,
        key_len: usize,
        size: u64,
        ttl_secs: Option<f64>,
        now: u64,
    ) -> Result<u32> {
        self.check_open()?;
        let ttl = ttl_ms(ttl_secs, self.default_ttl_ms)?;
        validate_key_len(key_len)?;
        let charged = (key_len as u64).saturating_add(size);
        self.tier.check_charge(charged)?;
        self.sweep_step(now);
        let slot = match slot {
            Some(s) if self.tier.is_live(s, now) => {
                self.tier.update(s, charged, Some(ttl), now)?;
                s
            }
            other => {
                if let Some(s) = other {
                    // Present but expired: it leaves as expired, and the key gets a new entry.
                    if self.tier.remove(s, RemovalCause::Expired).is_some() {
                        self.removed.push(s);
                    }
                }
                self.tier.insert((), charged, Some(ttl), now)?
            }
        };
        self.tier.fit(log!(self.removed));
        self.stats.counters.sets += 1;
        Ok(slot)
    }

    /// Makes `slot` the most recently used entry, for a read the host found live by itself
    /// (false for a free slot). The sweeping such a read would have done is owed, and done by
    /// the next operation that sweeps.
    pub fn touch(&mut self, slot: u32) -> bool {
        self.debt = self.debt.saturating_add(SWEEP_PER_OP);
        self.tier.touch(slot)
    }

    /// The bounded sweep of a normal operation, plus what host-answered reads owe.
    #[inline]
    fn sweep_step(&mut self, now: u64) {
        let budget = SWEEP_PER_OP.saturating_add(std::mem::take(&mut self.debt));
        self.sweep(now, budget);
    }

    /// A read of `slot`: true and recency refreshed when it is live; an expired entry is removed
    /// (logged) instead. Sweeps a little first, like every read.
    pub fn read(&mut self, slot: u32, now: u64) -> bool {
        if self.contains(slot, now) {
            self.tier.touch(slot);
            true
        } else {
            false
        }
    }

    /// Whether `slot` is live (recency untouched); an expired entry is removed (logged).
    pub fn contains(&mut self, slot: u32, now: u64) -> bool {
        self.sweep_step(now);
        if self.tier.is_live(slot, now) {
            return true;
        }
        self.remove_logged(slot, RemovalCause::Expired);
        false
    }

    #[inline]
    fn remove_logged(&mut self, slot: u32, cause: RemovalCause) -> bool {
        let removed = self.tier.remove(slot, cause).is_some();
        if removed {
            self.removed.push(slot);
        }
        removed
    }

    /// Deletes `slot`; true (and a delete counted) when it was live. Logged either way.
    pub fn delete(&mut self, slot: u32, now: u64) -> Result<bool> {
        self.check_open()?;
        if self.tier.is_live(slot, now) {
            self.remove_logged(slot, RemovalCause::Explicit);
            self.stats.counters.deletes += 1;
            Ok(true)
        } else {
            self.remove_logged(slot, RemovalCause::Expired);
            Ok(false)
        }
    }

    /// Removes every candidate `(slot, key bytes)` whose key matches the Redis glob `pattern`
    /// (validated by the caller); returns how many live ones went (counted as invalidations).
    /// Expired ones met on the way leave as expired and are not counted.
    fn remove_matching<'a>(
        &mut self,
        pattern: &str,
        candidates: impl IntoIterator<Item = (u32, &'a [u8])>,
        now: u64,
    ) -> usize {
        let pattern = pattern.as_bytes();
        let mut n = 0;
        for (slot, key) in candidates {
            if !glob::matches(pattern, key) {
                continue;
            }
            if self.tier.is_live(slot, now) {
                n += usize::from(self.remove_logged(slot, RemovalCause::Explicit));
            } else {
                self.remove_logged(slot, RemovalCause::Expired);
            }
        }
        self.stats.counters.invalidations += n as u64;
        n
    }

    /// Deletes every candidate whose key matches the Redis glob `pattern`; returns how many.
    /// The candidates are every key the host holds, with its slot.
    pub fn delete_pattern<'a>(
        &mut self,
        pattern: &str,
        candidates: impl IntoIterator<Item = (u32, &'a [u8])>,
        now: u64,
    ) -> Result<usize> {
        self.check_open()?;
        glob::validate(pattern)?;
        Ok(self.remove_matching(pattern, candidates, now))
    }

    /// Deletes every request key of `namespace` under the current version.
    pub fn invalidate_namespace<'a>(
        &mut self,
        namespace: &str,
        candidates: impl IntoIterator<Item = (u32, &'a [u8])>,
        now: u64,
    ) -> Result<usize> {
        self.check_open()?;
        let pattern = namespace_pattern(&self.version, namespace)?;
        Ok(self.remove_matching(&pattern, candidates, now))
    }

    /// Deletes every key under `version`.
    pub fn invalidate_version<'a>(
        &mut self,
        version: &str,
        candidates: impl IntoIterator<Item = (u32, &'a [u8])>,
        now: u64,
    ) -> Result<usize> {
        self.check_open()?;
        let pattern = version_pattern(version)?;
        Ok(self.remove_matching(&pattern, candidates, now))
    }

    /// Invalidates the current version and switches to `new_version`; returns how many keys
    /// went. An invalid `new_version` changes nothing.
    pub fn update_version<'a>(
        &mut self,
        new_version: &str,
        candidates: impl IntoIterator<Item = (u32, &'a [u8])>,
        now: u64,
    ) -> Result<usize> {
        self.check_open()?;
        key::validate_segment("version", new_version)?;
        let pattern = version_pattern(&self.version)?;
        let n = self.remove_matching(&pattern, candidates, now);
        self.version = new_version.to_owned();
        Ok(n)
    }

    /// Removes everything (not logged: the host empties itself); slot numbers start again
    /// from 0. Returns how many entries there were.
    pub fn clear(&mut self) -> Result<usize> {
        self.check_open()?;
        self.removed.clear();
        Ok(self.tier.clear(&mut |_, (), _| {}))
    }

    /// Removes expired entries, looking at no more than `budget` index items (logged).
    pub fn sweep(&mut self, now: u64, budget: usize) -> usize {
        self.tier.sweep(now, budget, log!(self.removed))
    }

    /// Live entries (expired ones are swept first, logged).
    pub fn len(&mut self, now: u64) -> usize {
        self.sweep(now, usize::MAX);
        self.tier.len()
    }

    /// Whether no live entry is held.
    pub fn is_empty(&mut self, now: u64) -> bool {
        self.len(now) == 0
    }

    /// Counts reads the host answered: `hits` live entries found, `misses` not.
    pub fn add_reads(&mut self, hits: u64, misses: u64) {
        self.stats.counters.hits += hits;
        self.stats.counters.misses += misses;
    }

    /// Records the duration of one operation.
    pub fn record_latency(&mut self, ms: f64) {
        self.stats.latency.record(ms);
    }

    /// The statistics snapshot (`backend` is `"memory"`).
    pub fn snapshot(&mut self, now: u64, cleanup_timer_active: bool) -> StatsSnapshot {
        let keys = self.len(now) as u64;
        let removals = self.tier.removals();
        self.stats.counters.evictions = removals.evicted;
        self.stats.counters.expirations = removals.expired;
        self.stats.snapshot(SnapshotContext {
            backend: "memory",
            version: self.version.clone(),
            keys,
            max_entries: self.tier.config().max_entries as u64,
            memory_used_bytes: self.tier.bytes(),
            cleanup_timer_active,
            fallback_active: false,
            upstash: None,
        })
    }

    /// Shuts the cache down: every later operation fails with `SHUT_DOWN`; the entries go (not
    /// logged). Returns true the first time; later calls do nothing.
    pub fn shutdown(&mut self) -> bool {
        if self.shut_down {
            return false;
        }
        self.shut_down = true;
        self.removed.clear();
        self.tier.clear(&mut |_, (), _| {});
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn core(max_entries: usize, max_bytes: Option<u64>) -> SlotCore {
        SlotCore::new(&Options {
            max_entries,
            max_bytes,
            ttl: 10.0,
            ..Options::default()
        })
        .unwrap()
    }

    fn drain(c: &mut SlotCore) -> Vec<u32> {
        let r = c.removed().to_vec();
        c.clear_removed();
        r
    }

    #[test]
    fn insert_replaces_in_place_and_evicts_in_lru_order() {
        let mut c = core(2, None);
        let a = c.insert(None, 1, 0, None, 0).unwrap();
        let b = c.insert(None, 1, 0, None, 0).unwrap();
        assert_eq!(
            c.insert(Some(a), 1, 0, Some(60.0), 1).unwrap(),
            a,
            "replaced in place"
        );
        assert!(drain(&mut c).is_empty());
        assert!(c.read(b, 2)); // order now a, b (b most recent)
        let d = c.insert(None, 1, 0, None, 3).unwrap();
        assert_eq!(drain(&mut c), [a]);
        assert_eq!(d, 2, "the slab grows before the eviction frees a slot");
        let s = c.snapshot(3, false);
        assert_eq!((s.counters.sets, s.counters.evictions, s.keys), (4, 1, 2));
        c.tier().check_invariants();
    }

    #[test]
    fn expired_entries_are_never_live_and_are_logged() {
        let mut c = core(10, None);
        let a = c.insert(None, 1, 0, Some(0.005), 0).unwrap();
        let b = c.insert(None, 1, 0, Some(0.006), 0).unwrap();
        assert!(c.contains(a, 4));
        assert!(!c.read(a, 5), "expired at its deadline");
        assert_eq!(drain(&mut c), [a]);
        // Setting an expired key again: the old entry leaves as expired, a new one is made.
        let b2 = c.insert(Some(b), 1, 0, None, 6).unwrap();
        assert_eq!(drain(&mut c), [b]);
        assert!(c.contains(b2, 6));
        assert_eq!(c.snapshot(6, false).counters.expirations, 2);
        c.tier().check_invariants();
    }

    #[test]
    fn refused_inserts_change_nothing() {
        let mut c = core(10, Some(10));
        let a = c.insert(None, 2, 3, None, 0).unwrap();
        for (slot, key_len, size, ttl, code) in [
            (Some(a), 2, 9, None, "VALUE_TOO_LARGE"),
            (None, 40_000, 0, None, "INVALID_KEY"),
            (None, 1, 0, Some(-1.0), "INVALID_OPTIONS"),
        ] {
            let e = c.insert(slot, key_len, size, ttl, 0).unwrap_err();
            assert_eq!(e.code(), code);
        }
        let s = c.snapshot(0, false);
        assert_eq!((s.counters.sets, s.keys, s.memory_used_bytes), (1, 1, 5));
        c.shutdown();
        assert_eq!(
            c.insert(None, 1, 0, None, 0).unwrap_err().code(),
            "SHUT_DOWN"
        );
    }

    #[test]
    fn patterns_match_the_candidates_the_host_names() {
        let mut c = core(10, None);
        let keys = ["v1:ns:a", "v1:ns:b", "v1:other:c", "v2:ns:d"];
        let slots: Vec<u32> = keys
            .iter()
            .map(|_| c.insert(None, 7, 0, None, 0).unwrap())
            .collect();
        let cands = || slots.iter().copied().zip(keys.iter().map(|k| k.as_bytes()));
        assert_eq!(c.invalidate_namespace("ns", cands(), 0).unwrap(), 2);
        assert_eq!(drain(&mut c), [slots[0], slots[1]]);
        let live = || {
            cands()
                .filter(|(s, _)| c.tier().value(*s).is_some())
                .collect::<Vec<_>>()
        };
        let rest = live();
        assert_eq!(c.update_version("v2", rest.clone(), 0).unwrap(), 1);
        assert_eq!(c.version(), "v2");
        let rest: Vec<_> = rest.into_iter().filter(|(s, _)| *s != slots[2]).collect();
        assert_eq!(
            c.delete_pattern("", rest.clone(), 0).unwrap_err().code(),
            "INVALID_PATTERN"
        );
        assert_eq!(c.delete_pattern("v2:*", rest, 0).unwrap(), 1);
        assert_eq!(c.snapshot(0, false).counters.invalidations, 4);
        assert_eq!(
            c.update_version("a:b", Vec::new(), 0).unwrap_err().code(),
            "INVALID_KEY"
        );
        assert_eq!(c.version(), "v2");
    }

    #[test]
    fn reads_answered_by_the_host_owe_their_sweep() {
        let mut c = core(100, None);
        let keep = c.insert(None, 1, 0, None, 0).unwrap();
        for _ in 0..20 {
            c.insert(None, 1, 0, Some(0.001), 0).unwrap();
        }
        // Four logged reads owe 16 sweep steps; the next sweeping operation pays them.
        for _ in 0..4 {
            assert!(c.touch(keep));
        }
        assert!(c.contains(keep, 5));
        assert_eq!(c.removed().len(), 4 + 16);
        assert_eq!(c.tier().len(), 1);
    }

    #[test]
    fn request_digest_is_the_request_keys_hex() {
        let mut c = core(10, None);
        let json = r#"{"b":[1.0,"é"],"a":null}"#;
        let mut key = String::new();
        c.request_key_into("ns", json, &mut key).unwrap();
        let digest = c.request_digest("ns", json).unwrap();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key, format!("v1:ns:{hex}"));
        assert_eq!(
            c.request_digest("a:b", json).unwrap_err().code(),
            "INVALID_KEY"
        );
        assert_eq!(
            c.request_digest("ns", "{").unwrap_err().code(),
            "UNSERIALIZABLE"
        );
    }

    #[test]
    fn delete_counts_live_entries_only() {
        let mut c = core(10, None);
        let a = c.insert(None, 1, 0, None, 0).unwrap();
        let b = c.insert(None, 1, 0, Some(0.001), 0).unwrap();
        assert!(c.delete(a, 5).unwrap());
        assert!(!c.delete(b, 5).unwrap());
        assert!(!c.delete(a, 5).unwrap());
        assert_eq!(drain(&mut c), [a, b]);
        let s = c.snapshot(5, false);
        assert_eq!((s.counters.deletes, s.counters.expirations), (1, 1));
    }

    #[test]
    fn clear_and_shutdown_log_nothing_and_keep_counters() {
        let mut c = core(10, None);
        for _ in 0..3 {
            c.insert(None, 1, 0, None, 0).unwrap();
        }
        c.add_reads(2, 1);
        assert_eq!(c.clear().unwrap(), 3);
        assert!(c.removed().is_empty());
        assert_eq!(
            c.insert(None, 1, 0, None, 0).unwrap(),
            0,
            "slot numbers restart"
        );
        assert!(c.shutdown());
        assert!(!c.shutdown());
        assert_eq!(c.clear().unwrap_err().code(), "SHUT_DOWN");
        let s = c.snapshot(0, false);
        assert_eq!(
            (s.keys, s.counters.sets, s.counters.hits, s.counters.misses),
            (0, 4, 2, 1)
        );
        let mut out = String::new();
        assert_eq!(
            c.request_key_into("ns", "{}", &mut out).unwrap_err().code(),
            "SHUT_DOWN"
        );
    }
}
