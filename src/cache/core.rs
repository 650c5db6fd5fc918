//! [`Core`]: the one owner of the memory tier's policy, addressed by slot number.
//!
//! A host keeps the keys and the values by slot number; everything else is decided here: the
//! version and request keys, the default TTL, expiry on access and amortized sweeping, entry
//! and byte bounds with LRU eviction (through [`SlotTier`]), Redis-exact pattern removals,
//! shutdown, counters and the statistics snapshot. There are two hosts:
//!
//! - the JavaScript `MemoryCache`, which keeps its keys in a `Map` and its values in an array,
//!   because copying a key into WebAssembly memory and a value out on every call costs more than
//!   the whole lookup (its wasm half is `src/wasm/memory_slots.rs`);
//! - [`super::MemoryTier`], a hash table from key to slot, for `Cache` and the Rust Worker API.
//!
//! Every slot a call frees on its own (evicted, expired, deleted, matched by a pattern, swept)
//! is appended to the removal log, [`Core::removed`], with its cause; the host drops those keys
//! and values after the call and before it installs anything in a slot the call returned, then
//! clears the log. [`Core::clear`] and [`Core::shutdown`] log nothing: the host empties itself.
//! Reads that the host answers by itself (the JavaScript fast path) are reported with
//! [`Core::touch`] and [`Core::add_reads`].

use crate::error::{Error, Result};
use crate::glob;
use crate::key::{self, validate_key_len, KeyFormat};
use crate::memory::{MemoryConfig, RemovalCause, RemovalCounts, SlotTier, SWEEP_PER_OP};
use crate::options::Options;
use crate::stats::{Counters, SnapshotContext, Stats, StatsSnapshot, UpstashStats};

use super::{namespace_pattern, ttl_ms, version_pattern, Removal};

/// One entry of the removal log: a slot the call freed, and why. `#[repr(C)]`: JavaScript reads
/// the log as pairs of 32-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Removed {
    /// The freed slot.
    pub slot: u32,
    /// Why it was freed.
    pub cause: RemovalCause,
}

/// The memory-tier policy addressed by slot number. Every method takes the current time in
/// milliseconds where time matters.
///
/// ```
/// use cachette::cache::Core;
/// use cachette::options::Options;
/// let mut core = Core::new(&Options { max_entries: 1, ..Options::default() })?;
/// let a = core.insert(None, 1, 0, None, 0)?; // key "a" is the host's business
/// let b = core.insert(None, 1, 0, None, 0)?; // evicts a
/// assert_eq!(core.removed()[0].slot, a);
/// core.clear_removed();
/// assert!(core.contains(b, 0));
/// # Ok::<(), cachette::Error>(())
/// ```
#[derive(Debug)]
pub struct Core {
    tier: SlotTier,
    version: String,
    key_format: KeyFormat,
    default_ttl_ms: u64,
    stats: Stats,
    shut_down: bool,
    scratch: String,
    removed: Vec<Removed>,
    debt: usize,
}

/// Appends a removed slot to the log (the removal sink of every call).
macro_rules! log {
    ($removed:expr) => {
        &mut |slot: u32, cause: RemovalCause| $removed.push(Removed { slot, cause })
    };
}

impl Core {
    /// A cache with the given options (validated here; the shared-tier ones are not used).
    pub fn new(options: &Options) -> Result<Self> {
        options.validate()?;
        Ok(Core {
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

    /// The default TTL in milliseconds.
    pub fn default_ttl_ms(&self) -> u64 {
        self.default_ttl_ms
    }

    /// A per-call TTL in seconds (or the default) in milliseconds; `INVALID_OPTIONS` when bad.
    pub fn ttl_ms(&self, ttl_secs: Option<f64>) -> Result<u64> {
        ttl_ms(ttl_secs, self.default_ttl_ms)
    }

    /// Whether values must be sized (a byte bound is set).
    pub fn needs_sizes(&self) -> bool {
        self.tier.config().max_bytes.is_some()
    }

    /// The algorithm underneath (expiry times, capacity, counts).
    pub fn tier(&self) -> &SlotTier {
        &self.tier
    }

    /// Slots freed since the log was last cleared, in order.
    pub fn removed(&self) -> &[Removed] {
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

    /// Whether [`Core::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    // ---- request keys and versions ----------------------------------------------------------

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

    /// The request key for `namespace` and `data_json`.
    pub fn request_key(&mut self, namespace: &str, data_json: &str) -> Result<String> {
        let mut out = String::with_capacity(self.version.len() + namespace.len() + 34);
        self.request_key_into(namespace, data_json, &mut out)?;
        Ok(out)
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
        crate::canonical::canonicalize_into(data_json, self.key_format, &mut self.scratch)?;
        Ok(crate::md5::md5(self.scratch.as_bytes()))
    }

    /// Switches the version without removing anything (the shared tier removes the old keys).
    pub fn set_version(&mut self, version: &str) -> Result<()> {
        self.check_open()?;
        key::validate_segment("version", version)?;
        self.version = version.to_owned();
        Ok(())
    }

    // ---- entries ----------------------------------------------------------------------------

    /// Stores an entry for a key of `key_len` bytes of UTF-8 whose value weighs `size` bytes,
    /// expiring `ttl` milliseconds after `now` (`None` or [`crate::clock::NEVER_MS`]: never), in `slot` if that slot holds the
    /// key's live entry, else in a new slot; returns the slot. The entry is charged
    /// `key_len + size` bytes when a byte bound is set, else nothing. Counts nothing. Evicts least
    /// recently used entries as the bounds require (logged). On error nothing changes:
    /// `SHUT_DOWN`, `INVALID_KEY` for a key over 32 KiB, `VALUE_TOO_LARGE`.
    pub fn store(
        &mut self,
        slot: Option<u32>,
        key_len: usize,
        size: u64,
        ttl: Option<u64>,
        now: u64,
    ) -> Result<u32> {
        self.check_open()?;
        let charged = self.charge(key_len, size)?;
        let ttl = ttl.filter(|&t| t != crate::clock::NEVER_MS);
        self.sweep_step(now);
        let slot = match slot {
            Some(s) if self.tier.is_live(s, now) => {
                self.tier.update(s, charged, ttl, now)?;
                s
            }
            other => {
                if let Some(s) = other {
                    // Present but expired: it leaves as expired, and the key gets a new entry.
                    self.remove_logged(s, RemovalCause::Expired);
                }
                self.tier.insert(charged, ttl, now)?
            }
        };
        self.tier.fit(log!(self.removed));
        Ok(slot)
    }

    /// What an entry for a key of `key_len` bytes of UTF-8 weighing `size` bytes is charged:
    /// `key_len + size` against a byte bound, else nothing. `INVALID_KEY` for a key over 32 KiB,
    /// `VALUE_TOO_LARGE` for an entry over the bound. Changes nothing.
    pub fn charge(&self, key_len: usize, size: u64) -> Result<u64> {
        validate_key_len(key_len)?;
        let charged = if self.needs_sizes() {
            (key_len as u64).saturating_add(size)
        } else {
            0
        };
        self.tier.check_charge(charged)?;
        Ok(charged)
    }

    /// [`Core::store`] for `ttl_secs` seconds (or the default TTL), counting a set:
    /// `INVALID_OPTIONS` for a bad TTL, besides the errors of `store`.
    pub fn insert(
        &mut self,
        slot: Option<u32>,
        key_len: usize,
        size: u64,
        ttl_secs: Option<f64>,
        now: u64,
    ) -> Result<u32> {
        self.check_open()?;
        let ttl = self.ttl_ms(ttl_secs)?;
        let slot = self.store(slot, key_len, size, Some(ttl), now)?;
        self.stats.counters.sets += 1;
        Ok(slot)
    }

    /// Makes `slot` the most recently used entry, for a read the host found live by itself,
    /// counted as a hit (false, and nothing counted, for a free slot). The sweeping such a read
    /// would have done is owed, and done by the next operation that sweeps.
    #[inline]
    pub fn touch(&mut self, slot: u32) -> bool {
        self.debt = self.debt.saturating_add(SWEEP_PER_OP);
        let live = self.tier.touch(slot);
        self.stats.counters.hits += u64::from(live);
        live
    }

    /// The bounded sweep of a normal operation, plus what host-answered reads owe (for an
    /// operation that finds no slot, such as a miss).
    #[inline]
    pub fn sweep_step(&mut self, now: u64) {
        let budget = SWEEP_PER_OP.saturating_add(std::mem::take(&mut self.debt));
        self.sweep(now, budget);
    }

    /// A read of `slot`: true and recency refreshed when it is live; an expired entry is removed
    /// (logged) instead. Sweeps a little first, like every read. Counts nothing.
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
        let removed = self.tier.remove(slot, cause);
        if removed {
            self.removed.push(Removed { slot, cause });
        }
        removed
    }

    /// Removes `slot` (logged): true when it was live; an expired entry leaves as expired.
    /// Counts nothing.
    pub fn remove(&mut self, slot: u32, now: u64) -> bool {
        if self.tier.is_live(slot, now) {
            self.remove_logged(slot, RemovalCause::Explicit)
        } else {
            self.remove_logged(slot, RemovalCause::Expired);
            false
        }
    }

    /// Deletes `slot`; true (and a delete counted) when it was live. Logged either way.
    pub fn delete(&mut self, slot: u32, now: u64) -> Result<bool> {
        self.check_open()?;
        let live = self.remove(slot, now);
        if live {
            self.stats.counters.deletes += 1;
        }
        Ok(live)
    }

    /// Removes every candidate `(slot, key bytes)` whose key matches the Redis glob `pattern`
    /// (validated by the caller); returns how many live ones went. Expired ones met on the way
    /// leave as expired and are not counted. Counts nothing.
    pub fn remove_matching<'a>(
        &mut self,
        pattern: &str,
        candidates: impl IntoIterator<Item = (u32, &'a [u8])>,
        now: u64,
    ) -> usize {
        let pattern = pattern.as_bytes();
        let mut n = 0;
        for (slot, key) in candidates {
            if glob::matches(pattern, key) {
                n += usize::from(self.remove(slot, now));
            }
        }
        n
    }

    /// The pattern a [`Removal`] of `arg` matches, under the current version; validates `arg`.
    pub fn removal_pattern(&self, kind: Removal, arg: &str) -> Result<String> {
        match kind {
            Removal::Pattern => {
                glob::validate(arg)?;
                Ok(arg.to_owned())
            }
            Removal::Namespace => namespace_pattern(&self.version, arg),
            Removal::Version => version_pattern(arg),
            Removal::SwitchVersion => {
                key::validate_segment("version", arg)?;
                version_pattern(&self.version)
            }
        }
    }

    /// Runs one [`Removal`] of `arg` over the candidates (every key the host holds, with its
    /// slot); returns how many live keys went, counted as invalidations. A version switch
    /// happens after the old version's keys went. An invalid `arg` changes nothing.
    pub fn remove_by<'a>(
        &mut self,
        kind: Removal,
        arg: &str,
        candidates: impl IntoIterator<Item = (u32, &'a [u8])>,
        now: u64,
    ) -> Result<usize> {
        self.check_open()?;
        let pattern = self.removal_pattern(kind, arg)?;
        let n = self.remove_matching(&pattern, candidates, now);
        self.stats.counters.invalidations += n as u64;
        if kind == Removal::SwitchVersion {
            self.version = arg.to_owned();
        }
        Ok(n)
    }

    /// Removes everything (not logged: the host empties itself); slot numbers start again
    /// from 0. Returns how many entries there were.
    pub fn clear(&mut self) -> Result<usize> {
        self.check_open()?;
        self.removed.clear();
        Ok(self.tier.clear(&mut |_, _| {}))
    }

    /// Removes expired entries, looking at no more than `budget` index items (logged).
    pub fn sweep(&mut self, now: u64, budget: usize) -> usize {
        self.tier.sweep(now, budget, log!(self.removed))
    }

    /// Removes every expired entry, wherever it sits in the expiry index (logged). Returns how
    /// many it removed.
    pub fn sweep_all(&mut self, now: u64) -> usize {
        self.tier.sweep_all(now, log!(self.removed))
    }

    /// Live entries (every expired one is swept first, logged).
    pub fn len(&mut self, now: u64) -> usize {
        self.sweep_all(now);
        self.tier.len()
    }

    /// Whether no live entry is held.
    pub fn is_empty(&mut self, now: u64) -> bool {
        self.len(now) == 0
    }

    // ---- statistics -------------------------------------------------------------------------

    /// Removals so far, by cause.
    pub fn removals(&self) -> RemovalCounts {
        self.tier.removals()
    }

    /// The operation counters (evictions and expirations are filled in by the snapshot).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.stats.counters
    }

    /// Counts one read: a hit when it found a live entry, else a miss.
    #[inline]
    pub fn count_read(&mut self, hit: bool) {
        if hit {
            self.stats.counters.hits += 1;
        } else {
            self.stats.counters.misses += 1;
        }
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

    /// Counts one failed shared-tier operation.
    pub fn record_error(&mut self) {
        self.stats.counters.errors += 1;
    }

    /// The statistics snapshot (expired entries are swept first, logged).
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

    /// Shuts the cache down: every later operation fails with `SHUT_DOWN`; the entries go (not
    /// logged) and the reserved slots are given back. Returns true the first time; later calls
    /// do nothing.
    pub fn shutdown(&mut self) -> bool {
        if self.shut_down {
            return false;
        }
        self.shut_down = true;
        self.removed.clear();
        self.tier.release();
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn core(max_entries: usize, max_bytes: Option<u64>) -> Core {
        Core::new(&Options {
            max_entries,
            max_bytes,
            ttl: 10.0,
            ..Options::default()
        })
        .unwrap()
    }

    fn drain(c: &mut Core) -> Vec<u32> {
        let r = c.removed().iter().map(|r| r.slot).collect();
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
        let s = c.snapshot(3, "memory", false, false, None);
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
        assert_eq!(
            c.snapshot(6, "memory", false, false, None)
                .counters
                .expirations,
            2
        );
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
        let s = c.snapshot(0, "memory", false, false, None);
        assert_eq!((s.counters.sets, s.keys, s.memory_used_bytes), (1, 1, 5));
        // Without a byte bound nothing is weighed, and no size is too large.
        let mut unbounded = core(10, None);
        unbounded.insert(None, 2, 3, None, 0).unwrap();
        unbounded.insert(None, 1, u64::MAX, None, 0).unwrap();
        let s = unbounded.snapshot(0, "memory", false, false, None);
        assert_eq!((s.keys, s.memory_used_bytes), (2, 0));
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
        assert_eq!(
            c.remove_by(Removal::Namespace, "ns", cands(), 0).unwrap(),
            2
        );
        assert_eq!(drain(&mut c), [slots[0], slots[1]]);
        let live = || {
            cands()
                .filter(|(s, _)| c.tier().is_occupied(*s))
                .collect::<Vec<_>>()
        };
        let rest = live();
        assert_eq!(
            c.remove_by(Removal::SwitchVersion, "v2", rest.clone(), 0)
                .unwrap(),
            1
        );
        assert_eq!(c.version(), "v2");
        let rest: Vec<_> = rest.into_iter().filter(|(s, _)| *s != slots[2]).collect();
        assert_eq!(
            c.remove_by(Removal::Pattern, "", rest.clone(), 0)
                .unwrap_err()
                .code(),
            "INVALID_PATTERN"
        );
        assert_eq!(c.remove_by(Removal::Pattern, "v2:*", rest, 0).unwrap(), 1);
        assert_eq!(
            c.snapshot(0, "memory", false, false, None)
                .counters
                .invalidations,
            4
        );
        assert_eq!(
            c.remove_by(Removal::SwitchVersion, "a:b", Vec::new(), 0)
                .unwrap_err()
                .code(),
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
        let s = c.snapshot(5, "memory", false, false, None);
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
        assert!(
            c.tier().reserved() >= 10,
            "slots for max_entries are reserved"
        );
        assert!(c.shutdown());
        assert_eq!(c.tier().reserved(), 0, "shutdown gives the slots back");
        assert!(!c.shutdown());
        assert_eq!(c.clear().unwrap_err().code(), "SHUT_DOWN");
        let s = c.snapshot(0, "memory", false, false, None);
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
