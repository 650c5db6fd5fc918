//! The memory tier: a hash table over a slab with an intrusive LRU list and an expiry index.
//!
//! # Structure
//! - Entries live in a slab (`Vec` of slots, freed slots chained into a free list). Each entry
//!   holds its key, value, charged size, expiry time and the `prev`/`next` slot indices of a
//!   doubly linked recency list: `get`, `insert` and `remove` are O(1).
//! - A `hashbrown::HashTable<u32>` maps a key to its slot, hashing the key stored in the slot, so
//!   each key is stored once.
//! - Entries with a TTL are also in a min-heap of `(expires_at, slot)`. Replaced or removed
//!   entries leave stale heap items behind; a popped item is acted on only when its slot still
//!   holds an entry with that very expiry time, and the heap is rebuilt when stale items
//!   outnumber live ones. A sweep therefore costs in proportion to what expired (plus the stale
//!   items it passes), never a scan of the whole cache.
//!
//! # Expiry
//! An entry is expired when `now >= expires_at`; an expired entry is never returned. Every
//! `get`, `contains` and `insert` first sweeps at most [`SWEEP_PER_OP`] heap items, so expired
//! entries leave even when no timer runs; [`MemoryTier::sweep`] with a larger budget is what a
//! timer calls.
//!
//! # Bounds
//! The tier holds at most `max_entries` entries and, when `max_bytes` is set, at most that many
//! charged bytes. An entry is charged `key.len() + size`, where `size` is what the caller says the
//! value weighs. Inserting past a bound evicts least recently used entries until both bounds hold.
//! A single entry heavier than `max_bytes` is refused with `VALUE_TOO_LARGE` and the tier is left
//! unchanged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use crate::error::{Error, Result};
use crate::glob;

/// The longest key accepted, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 32 * 1024;

/// Heap items a normal operation may sweep.
pub const SWEEP_PER_OP: usize = 4;

const NIL: u32 = u32::MAX;
const NEVER: u64 = u64::MAX;

/// Why an entry left the tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemovalCause {
    /// Its TTL ran out.
    Expired,
    /// It was deleted: by key, by pattern, by invalidation or by `clear`.
    Explicit,
    /// A new value was set for its key.
    Replaced,
    /// It was the least recently used entry when a bound was exceeded.
    Evicted,
}

/// How many entries left the tier, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovalCounts {
    /// See [`RemovalCause::Expired`].
    pub expired: u64,
    /// See [`RemovalCause::Explicit`].
    pub explicit: u64,
    /// See [`RemovalCause::Replaced`].
    pub replaced: u64,
    /// See [`RemovalCause::Evicted`].
    pub evicted: u64,
}

/// Bounds of a memory tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    /// The most entries held (at least 1).
    pub max_entries: usize,
    /// The most bytes charged, if bounded (at least 1).
    pub max_bytes: Option<u64>,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_entries: 1000,
            max_bytes: None,
        }
    }
}

/// A callback told of every removal.
pub type Listener<V> = Box<dyn FnMut(&str, &V, RemovalCause)>;

struct Entry<V> {
    key: Box<str>,
    value: V,
    charged: u64,
    expires_at: u64,
    prev: u32,
    next: u32,
}

enum Slot<V> {
    Full(Entry<V>),
    Free { next_free: u32 },
}

/// The memory tier, generic over the stored value.
///
/// ```
/// use cachette::memory::{MemoryConfig, MemoryTier};
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
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: Vec<Slot<V>>,
    free_head: u32,
    head: u32,
    tail: u32,
    len: usize,
    bytes: u64,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    with_ttl: usize,
    config: MemoryConfig,
    removals: RemovalCounts,
    listener: Option<Listener<V>>,
}

impl<V> fmt::Debug for MemoryTier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTier")
            .field("len", &self.len)
            .field("bytes", &self.bytes)
            .field("config", &self.config)
            .field("removals", &self.removals)
            .finish_non_exhaustive()
    }
}

/// Checks a raw key: at most [`MAX_KEY_BYTES`] bytes (the empty key is allowed, as in Redis).
pub fn validate_key(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey(format!(
            "key is {} bytes long; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

impl<V> MemoryTier<V> {
    /// An empty tier. Fails with `INVALID_OPTIONS` when a bound is zero.
    pub fn new(config: MemoryConfig) -> Result<Self> {
        if config.max_entries == 0 || config.max_entries >= NIL as usize {
            return Err(Error::InvalidOptions(format!(
                "maxEntries must be between 1 and {}, got {}",
                NIL - 1,
                config.max_entries
            )));
        }
        if config.max_bytes == Some(0) {
            return Err(Error::InvalidOptions(
                "maxBytes must be at least 1".to_owned(),
            ));
        }
        Ok(MemoryTier {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::new(),
            free_head: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
            bytes: 0,
            heap: BinaryHeap::new(),
            with_ttl: 0,
            config,
            removals: RemovalCounts::default(),
            listener: None,
        })
    }

    /// Sets the callback told of every removal, with its cause.
    pub fn set_listener(&mut self, listener: Option<Listener<V>>) {
        self.listener = listener;
    }

    /// Live and not-yet-swept entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tier holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes charged (keys plus declared value sizes).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The bounds.
    pub fn config(&self) -> MemoryConfig {
        self.config
    }

    /// Removals so far, by cause.
    pub fn removals(&self) -> RemovalCounts {
        self.removals
    }

    /// The earliest expiry time among entries with a TTL (possibly of an entry already removed).
    pub fn next_expiry(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn entry(&self, idx: u32) -> &Entry<V> {
        match &self.slots[idx as usize] {
            Slot::Full(e) => e,
            Slot::Free { .. } => unreachable!("slot {idx} is linked but free"),
        }
    }

    fn entry_mut(&mut self, idx: u32) -> &mut Entry<V> {
        match &mut self.slots[idx as usize] {
            Slot::Full(e) => e,
            Slot::Free { .. } => unreachable!("slot {idx} is linked but free"),
        }
    }

    fn find(&self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.table
            .find(
                hash,
                |&i| matches!(&slots[i as usize], Slot::Full(e) if &*e.key == key),
            )
            .copied()
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let e = self.entry(idx);
            (e.prev, e.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.entry_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entry_mut(next).prev = prev;
        }
    }

    fn push_front(&mut self, idx: u32) {
        let old = self.head;
        {
            let e = self.entry_mut(idx);
            e.prev = NIL;
            e.next = old;
        }
        if old == NIL {
            self.tail = idx;
        } else {
            self.entry_mut(old).prev = idx;
        }
        self.head = idx;
    }

    fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    /// Takes the entry at `idx` out of every structure and tells the listener.
    fn remove_at(&mut self, idx: u32, cause: RemovalCause) -> V {
        self.unlink(idx);
        let hash = self.hasher.hash_one(&*self.entry(idx).key);
        if let Ok(found) = self.table.find_entry(hash, |&i| i == idx) {
            found.remove();
        }
        let slot = std::mem::replace(
            &mut self.slots[idx as usize],
            Slot::Free {
                next_free: self.free_head,
            },
        );
        self.free_head = idx;
        let Slot::Full(entry) = slot else {
            unreachable!("removing a free slot")
        };
        self.len -= 1;
        self.bytes -= entry.charged;
        if entry.expires_at != NEVER {
            self.with_ttl -= 1;
        }
        self.count(cause);
        if let Some(listener) = self.listener.as_mut() {
            listener(&entry.key, &entry.value, cause);
        }
        entry.value
    }

    fn count(&mut self, cause: RemovalCause) {
        let c = &mut self.removals;
        match cause {
            RemovalCause::Expired => c.expired += 1,
            RemovalCause::Explicit => c.explicit += 1,
            RemovalCause::Replaced => c.replaced += 1,
            RemovalCause::Evicted => c.evicted += 1,
        }
    }

    /// Finds a live entry, removing it instead when it has expired.
    fn live(&mut self, key: &str, now: u64) -> Option<u32> {
        self.sweep(now, SWEEP_PER_OP);
        let idx = self.find(key)?;
        if self.entry(idx).expires_at <= now {
            self.remove_at(idx, RemovalCause::Expired);
            return None;
        }
        Some(idx)
    }

    /// The value for `key`, making it the most recently used.
    pub fn get(&mut self, key: &str, now: u64) -> Option<&V> {
        let idx = self.live(key, now)?;
        self.touch(idx);
        Some(&self.entry(idx).value)
    }

    /// The value for `key` without touching recency or removing anything.
    pub fn peek(&self, key: &str, now: u64) -> Option<&V> {
        let e = self.entry(self.find(key)?);
        (e.expires_at > now).then_some(&e.value)
    }

    /// Whether a live entry exists for `key` (recency is not touched).
    pub fn contains(&mut self, key: &str, now: u64) -> bool {
        self.live(key, now).is_some()
    }

    /// Milliseconds until `key` expires: `Some(None)` for no expiry, `None` when absent.
    pub fn ttl_ms(&self, key: &str, now: u64) -> Option<Option<u64>> {
        let e = self.entry(self.find(key)?);
        match e.expires_at {
            NEVER => Some(None),
            at if at > now => Some(Some(at - now)),
            _ => None,
        }
    }

    /// Stores `value` under `key`, charged `key.len() + size` bytes, expiring `ttl_ms`
    /// milliseconds after `now` (`None`: never). Evicts least recently used entries as the
    /// bounds require. On error nothing changes.
    pub fn insert(
        &mut self,
        key: &str,
        value: V,
        size: u64,
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<()> {
        validate_key(key)?;
        let charged = (key.len() as u64).saturating_add(size);
        if let Some(max) = self.config.max_bytes {
            if charged > max {
                return Err(Error::ValueTooLarge { size: charged, max });
            }
        }
        self.sweep(now, SWEEP_PER_OP);
        let expires_at = ttl_ms.map_or(NEVER, |t| now.saturating_add(t).min(NEVER - 1));
        let mut existing = self.find(key);
        if let Some(idx) = existing {
            if self.entry(idx).expires_at <= now {
                self.remove_at(idx, RemovalCause::Expired);
                existing = None;
            }
        }
        if let Some(idx) = existing {
            let (old, old_charged, old_expiry) = {
                let e = self.entry_mut(idx);
                let old = std::mem::replace(&mut e.value, value);
                let old_charged = std::mem::replace(&mut e.charged, charged);
                let old_expiry = std::mem::replace(&mut e.expires_at, expires_at);
                (old, old_charged, old_expiry)
            };
            self.bytes = self.bytes - old_charged + charged;
            match (old_expiry == NEVER, expires_at == NEVER) {
                (true, false) => self.with_ttl += 1,
                (false, true) => self.with_ttl -= 1,
                _ => {}
            }
            self.count(RemovalCause::Replaced);
            if let Some(listener) = self.listener.as_mut() {
                listener(key, &old, RemovalCause::Replaced);
            }
            drop(old);
            self.touch(idx);
            if expires_at != NEVER {
                self.heap.push(Reverse((expires_at, idx)));
            }
        } else {
            let entry = Entry {
                key: key.into(),
                value,
                charged,
                expires_at,
                prev: NIL,
                next: NIL,
            };
            let idx = if self.free_head != NIL {
                let idx = self.free_head;
                if let Slot::Free { next_free } = self.slots[idx as usize] {
                    self.free_head = next_free;
                }
                self.slots[idx as usize] = Slot::Full(entry);
                idx
            } else {
                self.slots.push(Slot::Full(entry));
                (self.slots.len() - 1) as u32
            };
            let hash = self.hasher.hash_one(key);
            let (hasher, slots) = (&self.hasher, &self.slots);
            self.table
                .insert_unique(hash, idx, |&i| match &slots[i as usize] {
                    Slot::Full(e) => hasher.hash_one(&*e.key),
                    Slot::Free { .. } => 0,
                });
            self.len += 1;
            self.bytes += charged;
            self.push_front(idx);
            if expires_at != NEVER {
                self.with_ttl += 1;
                self.heap.push(Reverse((expires_at, idx)));
            }
        }
        self.enforce_bounds();
        self.compact_heap();
        Ok(())
    }

    fn over_bounds(&self) -> bool {
        self.len > self.config.max_entries || self.config.max_bytes.is_some_and(|m| self.bytes > m)
    }

    fn enforce_bounds(&mut self) {
        // The newest entry sits at the head and fits alone, so this stops before reaching it.
        while self.over_bounds() && self.tail != self.head {
            let victim = self.tail;
            self.remove_at(victim, RemovalCause::Evicted);
        }
    }

    /// Rebuilds the expiry heap when stale items outnumber live ones.
    fn compact_heap(&mut self) {
        if self.heap.len() <= 2 * self.with_ttl + 64 {
            return;
        }
        let items: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Full(e) if e.expires_at != NEVER => Some(Reverse((e.expires_at, i as u32))),
                _ => None,
            })
            .collect();
        self.heap = BinaryHeap::from(items);
    }

    /// Removes `key`; returns its value if it was live.
    pub fn remove(&mut self, key: &str, now: u64) -> Option<V> {
        let idx = self.find(key)?;
        if self.entry(idx).expires_at <= now {
            self.remove_at(idx, RemovalCause::Expired);
            return None;
        }
        Some(self.remove_at(idx, RemovalCause::Explicit))
    }

    /// Removes expired entries, looking at no more than `budget` heap items. Returns how many
    /// entries it removed.
    pub fn sweep(&mut self, now: u64, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            match self.heap.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Some(Reverse((at, idx))) = self.heap.pop() else {
                break;
            };
            let current = matches!(
                self.slots.get(idx as usize),
                Some(Slot::Full(e)) if e.expires_at == at
            );
            if current {
                self.remove_at(idx, RemovalCause::Expired);
                removed += 1;
            }
        }
        removed
    }

    /// Removes every expired entry (cost proportional to what expired).
    pub fn sweep_all(&mut self, now: u64) -> usize {
        self.sweep(now, usize::MAX)
    }

    /// Removes every entry whose key matches the Redis glob `pattern`, exactly as
    /// `SCAN MATCH` + `UNLINK` would on Redis. Returns how many live entries it removed; expired
    /// ones met on the way leave as expired and are not counted. The caller validates the pattern
    /// (see [`glob::validate`]). Costs one pass over the tier.
    pub fn remove_matching(&mut self, pattern: &str, now: u64) -> usize {
        let pattern = pattern.as_bytes();
        let victims: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Full(e) if glob::matches(pattern, e.key.as_bytes()) => Some(i as u32),
                _ => None,
            })
            .collect();
        let mut removed = 0;
        for idx in victims {
            if self.entry(idx).expires_at <= now {
                self.remove_at(idx, RemovalCause::Expired);
            } else {
                self.remove_at(idx, RemovalCause::Explicit);
                removed += 1;
            }
        }
        removed
    }

    /// Removes everything; returns how many entries there were.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        while self.head != NIL {
            let idx = self.head;
            self.remove_at(idx, RemovalCause::Explicit);
        }
        self.heap.clear();
        self.slots.clear();
        self.free_head = NIL;
        n
    }

    /// Live keys, most recently used first.
    pub fn keys(&self, now: u64) -> Vec<&str> {
        let mut out = Vec::with_capacity(self.len);
        let mut idx = self.head;
        while idx != NIL {
            let e = self.entry(idx);
            if e.expires_at > now {
                out.push(&*e.key);
            }
            idx = e.next;
        }
        out
    }

    /// Items in the expiry index, stale ones included; for tests of its bound.
    #[doc(hidden)]
    pub fn expiry_index_len(&self) -> usize {
        self.heap.len()
    }

    /// Asserts every structural invariant; for tests (panics on a broken invariant).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut seen = 0usize;
        let mut bytes = 0u64;
        let mut with_ttl = 0usize;
        let mut prev = NIL;
        let mut idx = self.head;
        while idx != NIL {
            let e = self.entry(idx);
            assert_eq!(e.prev, prev, "back link of slot {idx}");
            assert_eq!(self.find(&e.key), Some(idx), "table entry of {:?}", e.key);
            if e.expires_at != NEVER {
                with_ttl += 1;
                assert!(
                    self.heap
                        .iter()
                        .any(|Reverse((at, i))| *at == e.expires_at && *i == idx),
                    "expiry of {:?} is not indexed",
                    e.key
                );
            }
            bytes += e.charged;
            seen += 1;
            assert!(seen <= self.len, "recency list longer than len (cycle?)");
            prev = idx;
            idx = e.next;
        }
        assert_eq!(prev, self.tail, "tail");
        assert_eq!(seen, self.len, "len");
        assert_eq!(self.table.len(), self.len, "table size");
        assert_eq!(bytes, self.bytes, "bytes");
        assert_eq!(with_ttl, self.with_ttl, "entries with TTL");
        let full = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Full(_)))
            .count();
        assert_eq!(full, self.len, "occupied slots");
        let mut free = 0;
        let mut f = self.free_head;
        while f != NIL {
            match &self.slots[f as usize] {
                Slot::Free { next_free } => f = *next_free,
                Slot::Full(_) => panic!("free list reaches an occupied slot"),
            }
            free += 1;
            assert!(free <= self.slots.len(), "free list cycle");
        }
        assert_eq!(
            free + full,
            self.slots.len(),
            "every slot is either used or free"
        );
        assert!(self.len <= self.config.max_entries, "entry bound");
        if let Some(m) = self.config.max_bytes {
            assert!(self.bytes <= m, "byte bound");
        }
    }
}
