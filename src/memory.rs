//! The memory tier: a hash table over a slab with an intrusive LRU list and an expiry index.
//!
//! # Structure
//! - [`SlotTier`] is the algorithm, addressed by slot number: entries live in a slab (`Vec` of
//!   slots, freed slots chained into a free list). Each entry holds its value, charged size,
//!   expiry time and the `prev`/`next` slot indices of a doubly linked recency list: `get`,
//!   `insert` and `remove` are O(1). It never sees a key; it reports every removal (slot, value,
//!   cause) to the caller, so a host that keeps the keys itself (the JavaScript `MemoryCache`)
//!   can use it directly.
//! - [`MemoryTier`] is the keyed tier on top: a `hashbrown::HashTable<u32>` maps a key to its
//!   slot, hashing the key stored in the slot, so each key is stored once.
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

/// Checks a raw key: at most [`MAX_KEY_BYTES`] bytes (the empty key is allowed, as in Redis).
pub fn validate_key(key: &str) -> Result<()> {
    validate_key_len(key.len())
}

/// Checks the UTF-8 length of a raw key held elsewhere (see [`validate_key`]).
pub fn validate_key_len(len: usize) -> Result<()> {
    if len > MAX_KEY_BYTES {
        return Err(Error::InvalidKey(format!(
            "key is {len} bytes long; the limit is {MAX_KEY_BYTES}"
        )));
    }
    Ok(())
}

fn check_config(config: MemoryConfig) -> Result<()> {
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
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The slot tier: the algorithm, addressed by slot number
// ---------------------------------------------------------------------------------------------

struct Entry<V> {
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

/// The memory tier's algorithm without keys: a slab of entries addressed by slot number, with
/// true LRU order, TTL with an expiry index, entry and byte bounds, and removal counts by cause.
///
/// Slot numbers are small integers (below [`SlotTier::capacity`]) and are reused once freed.
/// Every method that can remove entries takes an `on_remove(slot, value, cause)` sink, called
/// after the slot is freed; [`RemovalCause::Replaced`] is never reported there (the caller
/// replaced the value itself). Inserting and updating never evict: call [`SlotTier::fit`]
/// afterwards, so that a caller can report the replacement before the evictions it causes.
///
/// ```
/// use cachette::memory::{MemoryConfig, SlotTier};
/// let mut tier = SlotTier::new(MemoryConfig { max_entries: 2, max_bytes: None }).unwrap();
/// let mut gone = Vec::new();
/// let a = tier.insert('a', 1, None, 0).unwrap();
/// let b = tier.insert('b', 1, Some(1_000), 0).unwrap();
/// tier.touch(a); // "a" is now the most recent
/// let c = tier.insert('c', 1, None, 0).unwrap();
/// tier.fit(&mut |slot, value, _cause| gone.push((slot, value)));
/// assert_eq!(gone, [(b, 'b')]); // the least recently used went
/// assert!(tier.is_live(c, 0) && tier.is_live(a, 0));
/// ```
pub struct SlotTier<V> {
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
}

impl<V> fmt::Debug for SlotTier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotTier")
            .field("len", &self.len)
            .field("bytes", &self.bytes)
            .field("config", &self.config)
            .field("removals", &self.removals)
            .finish_non_exhaustive()
    }
}

impl<V> SlotTier<V> {
    /// An empty tier. Fails with `INVALID_OPTIONS` when a bound is zero.
    pub fn new(config: MemoryConfig) -> Result<Self> {
        check_config(config)?;
        Ok(SlotTier {
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
        })
    }

    /// Live and not-yet-swept entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tier holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes charged.
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

    /// Every slot number in use is below this.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The earliest expiry time among entries with a TTL (possibly of an entry already removed).
    pub fn next_expiry(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    #[inline]
    fn full(&self, slot: u32) -> Option<&Entry<V>> {
        match self.slots.get(slot as usize) {
            Some(Slot::Full(e)) => Some(e),
            _ => None,
        }
    }

    #[inline]
    fn entry(&self, idx: u32) -> &Entry<V> {
        match &self.slots[idx as usize] {
            Slot::Full(e) => e,
            Slot::Free { .. } => unreachable!("slot {idx} is linked but free"),
        }
    }

    #[inline]
    fn entry_mut(&mut self, idx: u32) -> &mut Entry<V> {
        match &mut self.slots[idx as usize] {
            Slot::Full(e) => e,
            Slot::Free { .. } => unreachable!("slot {idx} is linked but free"),
        }
    }

    /// The value in `slot`, expired or not; `None` for a free slot.
    #[inline]
    pub fn value(&self, slot: u32) -> Option<&V> {
        self.full(slot).map(|e| &e.value)
    }

    /// The value in `slot`, mutably; `None` for a free slot.
    pub fn value_mut(&mut self, slot: u32) -> Option<&mut V> {
        match self.slots.get_mut(slot as usize) {
            Some(Slot::Full(e)) => Some(&mut e.value),
            _ => None,
        }
    }

    /// When the entry in `slot` expires (`u64::MAX`: never); `None` for a free slot.
    #[inline]
    pub fn expires_at(&self, slot: u32) -> Option<u64> {
        self.full(slot).map(|e| e.expires_at)
    }

    /// Whether `slot` holds an entry that has not expired at `now`.
    #[inline]
    pub fn is_live(&self, slot: u32, now: u64) -> bool {
        self.full(slot).is_some_and(|e| e.expires_at > now)
    }

    /// Refuses, with `VALUE_TOO_LARGE`, an entry that alone would exceed the byte bound.
    #[inline]
    pub fn check_charge(&self, charged: u64) -> Result<()> {
        match self.config.max_bytes {
            Some(max) if charged > max => Err(Error::ValueTooLarge { size: charged, max }),
            _ => Ok(()),
        }
    }

    #[inline]
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

    #[inline]
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

    /// Makes the entry in `slot` the most recently used; false (and nothing done) for a free
    /// slot. Expiry is not looked at.
    #[inline]
    pub fn touch(&mut self, slot: u32) -> bool {
        if self.full(slot).is_none() {
            return false;
        }
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
        true
    }

    #[inline]
    fn expiry(ttl_ms: Option<u64>, now: u64) -> u64 {
        ttl_ms.map_or(NEVER, |t| now.saturating_add(t).min(NEVER - 1))
    }

    /// Stores `value` in a free slot as the most recently used entry, charged `charged` bytes and
    /// expiring `ttl_ms` milliseconds after `now` (`None`: never); returns its slot. Evicts
    /// nothing (see [`SlotTier::fit`]). Fails with `VALUE_TOO_LARGE` (and changes nothing) when
    /// the entry alone exceeds the byte bound.
    pub fn insert(&mut self, value: V, charged: u64, ttl_ms: Option<u64>, now: u64) -> Result<u32> {
        self.check_charge(charged)?;
        let expires_at = Self::expiry(ttl_ms, now);
        let entry = Entry {
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
        self.len += 1;
        self.bytes += charged;
        self.push_front(idx);
        if expires_at != NEVER {
            self.with_ttl += 1;
            self.heap.push(Reverse((expires_at, idx)));
        }
        Ok(idx)
    }

    /// Re-charges the entry in `slot` (whose value the caller has just replaced), restarts its
    /// TTL and makes it the most recently used; counts a [`RemovalCause::Replaced`]. Evicts
    /// nothing (see [`SlotTier::fit`]). Fails with `VALUE_TOO_LARGE` when the entry alone would
    /// exceed the byte bound, and changes nothing for that or for a free slot (`Ok(false)`).
    pub fn update(
        &mut self,
        slot: u32,
        charged: u64,
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<bool> {
        self.check_charge(charged)?;
        if self.full(slot).is_none() {
            return Ok(false);
        }
        let expires_at = Self::expiry(ttl_ms, now);
        let (old_charged, old_expiry) = {
            let e = self.entry_mut(slot);
            let old_charged = std::mem::replace(&mut e.charged, charged);
            let old_expiry = std::mem::replace(&mut e.expires_at, expires_at);
            (old_charged, old_expiry)
        };
        self.bytes = self.bytes - old_charged + charged;
        match (old_expiry == NEVER, expires_at == NEVER) {
            (true, false) => self.with_ttl += 1,
            (false, true) => self.with_ttl -= 1,
            _ => {}
        }
        self.count(RemovalCause::Replaced);
        self.touch(slot);
        if expires_at != NEVER {
            self.heap.push(Reverse((expires_at, slot)));
        }
        Ok(true)
    }

    /// Evicts least recently used entries until both bounds hold (never the most recent one,
    /// which fits alone), and keeps the expiry index compact.
    pub fn fit(&mut self, on_remove: &mut impl FnMut(u32, V, RemovalCause)) {
        while self.over_bounds() && self.tail != self.head {
            let victim = self.tail;
            self.remove_reporting(victim, RemovalCause::Evicted, on_remove);
        }
        self.compact_heap();
    }

    #[inline]
    fn over_bounds(&self) -> bool {
        self.len > self.config.max_entries || self.config.max_bytes.is_some_and(|m| self.bytes > m)
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

    #[inline]
    fn count(&mut self, cause: RemovalCause) {
        let c = &mut self.removals;
        match cause {
            RemovalCause::Expired => c.expired += 1,
            RemovalCause::Explicit => c.explicit += 1,
            RemovalCause::Replaced => c.replaced += 1,
            RemovalCause::Evicted => c.evicted += 1,
        }
    }

    /// Takes the entry in `slot` out of every structure, counting `cause`, and returns its value;
    /// `None` for a free slot. Expired entries should be removed as [`RemovalCause::Expired`]
    /// (see [`SlotTier::is_live`]).
    pub fn remove(&mut self, slot: u32, cause: RemovalCause) -> Option<V> {
        self.full(slot)?;
        self.unlink(slot);
        let old = std::mem::replace(
            &mut self.slots[slot as usize],
            Slot::Free {
                next_free: self.free_head,
            },
        );
        self.free_head = slot;
        let Slot::Full(entry) = old else {
            unreachable!("removing a free slot")
        };
        self.len -= 1;
        self.bytes -= entry.charged;
        if entry.expires_at != NEVER {
            self.with_ttl -= 1;
        }
        self.count(cause);
        Some(entry.value)
    }

    fn remove_reporting(
        &mut self,
        slot: u32,
        cause: RemovalCause,
        on_remove: &mut impl FnMut(u32, V, RemovalCause),
    ) {
        if let Some(value) = self.remove(slot, cause) {
            on_remove(slot, value, cause);
        }
    }

    /// Removes expired entries, looking at no more than `budget` index items. Returns how many
    /// entries it removed.
    pub fn sweep(
        &mut self,
        now: u64,
        budget: usize,
        on_remove: &mut impl FnMut(u32, V, RemovalCause),
    ) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            match self.heap.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Some(Reverse((at, idx))) = self.heap.pop() else {
                break;
            };
            if self.full(idx).is_some_and(|e| e.expires_at == at) {
                self.remove_reporting(idx, RemovalCause::Expired, on_remove);
                removed += 1;
            }
        }
        removed
    }

    /// Removes everything (each entry reported as [`RemovalCause::Explicit`]); slot numbers
    /// start again from 0. Returns how many entries there were.
    pub fn clear(&mut self, on_remove: &mut impl FnMut(u32, V, RemovalCause)) -> usize {
        let n = self.len;
        while self.head != NIL {
            let idx = self.head;
            self.remove_reporting(idx, RemovalCause::Explicit, on_remove);
        }
        self.heap.clear();
        self.slots.clear();
        self.free_head = NIL;
        n
    }

    /// Occupied slots and their values, expired ones included, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &V)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Full(e) => Some((i as u32, &e.value)),
            Slot::Free { .. } => None,
        })
    }

    /// Live entries (slot, value), most recently used first.
    pub fn recency(&self, now: u64) -> impl Iterator<Item = (u32, &V)> + '_ {
        let mut idx = self.head;
        std::iter::from_fn(move || {
            while idx != NIL {
                let here = idx;
                let e = self.entry(here);
                idx = e.next;
                if e.expires_at > now {
                    return Some((here, &e.value));
                }
            }
            None
        })
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
            if e.expires_at != NEVER {
                with_ttl += 1;
                assert!(
                    self.heap
                        .iter()
                        .any(|Reverse((at, i))| *at == e.expires_at && *i == idx),
                    "expiry of slot {idx} is not indexed"
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

// ---------------------------------------------------------------------------------------------
// The keyed tier
// ---------------------------------------------------------------------------------------------

struct Keyed<V> {
    key: Box<str>,
    value: V,
}

/// The memory tier, generic over the stored value: a [`SlotTier`] plus a hash table from key to
/// slot.
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
    slots: SlotTier<Keyed<V>>,
    listener: Option<Listener<V>>,
}

impl<V> fmt::Debug for MemoryTier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTier")
            .field("len", &self.slots.len)
            .field("bytes", &self.slots.bytes)
            .field("config", &self.slots.config)
            .field("removals", &self.slots.removals)
            .finish_non_exhaustive()
    }
}

/// Drops a removed entry's table item and tells the listener.
fn forget<V>(
    table: &mut HashTable<u32>,
    hasher: &DefaultHashBuilder,
    listener: &mut Option<Listener<V>>,
    slot: u32,
    entry: &Keyed<V>,
    cause: RemovalCause,
) {
    let hash = hasher.hash_one(&*entry.key);
    if let Ok(found) = table.find_entry(hash, |&i| i == slot) {
        found.remove();
    }
    if let Some(listener) = listener.as_mut() {
        listener(&entry.key, &entry.value, cause);
    }
}

/// The removal sink of a keyed tier: `$tier.slots.<method>(.., sink!($tier))`.
macro_rules! sink {
    ($t:expr) => {
        &mut |slot, entry: Keyed<V>, cause| {
            forget(
                &mut $t.table,
                &$t.hasher,
                &mut $t.listener,
                slot,
                &entry,
                cause,
            )
        }
    };
}

impl<V> MemoryTier<V> {
    /// An empty tier. Fails with `INVALID_OPTIONS` when a bound is zero.
    pub fn new(config: MemoryConfig) -> Result<Self> {
        Ok(MemoryTier {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            slots: SlotTier::new(config)?,
            listener: None,
        })
    }

    /// Sets the callback told of every removal, with its cause.
    pub fn set_listener(&mut self, listener: Option<Listener<V>>) {
        self.listener = listener;
    }

    /// Live and not-yet-swept entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the tier holds nothing.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes charged (keys plus declared value sizes).
    pub fn bytes(&self) -> u64 {
        self.slots.bytes()
    }

    /// The bounds.
    pub fn config(&self) -> MemoryConfig {
        self.slots.config()
    }

    /// Removals so far, by cause.
    pub fn removals(&self) -> RemovalCounts {
        self.slots.removals()
    }

    /// The earliest expiry time among entries with a TTL (possibly of an entry already removed).
    pub fn next_expiry(&self) -> Option<u64> {
        self.slots.next_expiry()
    }

    fn find(&self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.table
            .find(hash, |&i| slots.value(i).is_some_and(|e| &*e.key == key))
            .copied()
    }

    fn remove_at(&mut self, idx: u32, cause: RemovalCause) -> Option<V> {
        let entry = self.slots.remove(idx, cause)?;
        forget(
            &mut self.table,
            &self.hasher,
            &mut self.listener,
            idx,
            &entry,
            cause,
        );
        Some(entry.value)
    }

    /// Finds a live entry, removing it instead when it has expired.
    fn live(&mut self, key: &str, now: u64) -> Option<u32> {
        self.sweep(now, SWEEP_PER_OP);
        let idx = self.find(key)?;
        if !self.slots.is_live(idx, now) {
            self.remove_at(idx, RemovalCause::Expired);
            return None;
        }
        Some(idx)
    }

    /// The value for `key`, making it the most recently used.
    pub fn get(&mut self, key: &str, now: u64) -> Option<&V> {
        let idx = self.live(key, now)?;
        self.slots.touch(idx);
        self.slots.value(idx).map(|e| &e.value)
    }

    /// The value for `key` without touching recency or removing anything.
    pub fn peek(&self, key: &str, now: u64) -> Option<&V> {
        let idx = self.find(key)?;
        if !self.slots.is_live(idx, now) {
            return None;
        }
        self.slots.value(idx).map(|e| &e.value)
    }

    /// Whether a live entry exists for `key` (recency is not touched).
    pub fn contains(&mut self, key: &str, now: u64) -> bool {
        self.live(key, now).is_some()
    }

    /// Milliseconds until `key` expires: `Some(None)` for no expiry, `None` when absent.
    pub fn ttl_ms(&self, key: &str, now: u64) -> Option<Option<u64>> {
        match self.slots.expires_at(self.find(key)?)? {
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
        self.slots.check_charge(charged)?;
        self.sweep(now, SWEEP_PER_OP);
        let mut existing = self.find(key);
        if let Some(idx) = existing {
            if !self.slots.is_live(idx, now) {
                self.remove_at(idx, RemovalCause::Expired);
                existing = None;
            }
        }
        if let Some(idx) = existing {
            self.slots.update(idx, charged, ttl_ms, now)?;
            if let Some(e) = self.slots.value_mut(idx) {
                let old = std::mem::replace(&mut e.value, value);
                if let Some(listener) = self.listener.as_mut() {
                    listener(key, &old, RemovalCause::Replaced);
                }
            }
        } else {
            let entry = Keyed {
                key: key.into(),
                value,
            };
            let idx = self.slots.insert(entry, charged, ttl_ms, now)?;
            let hash = self.hasher.hash_one(key);
            let (hasher, slots) = (&self.hasher, &self.slots);
            self.table.insert_unique(hash, idx, |&i| {
                slots.value(i).map_or(0, |e| hasher.hash_one(&*e.key))
            });
        }
        self.slots.fit(sink!(self));
        Ok(())
    }

    /// Removes `key`; returns its value if it was live.
    pub fn remove(&mut self, key: &str, now: u64) -> Option<V> {
        let idx = self.find(key)?;
        if !self.slots.is_live(idx, now) {
            self.remove_at(idx, RemovalCause::Expired);
            return None;
        }
        self.remove_at(idx, RemovalCause::Explicit)
    }

    /// Removes expired entries, looking at no more than `budget` heap items. Returns how many
    /// entries it removed.
    pub fn sweep(&mut self, now: u64, budget: usize) -> usize {
        self.slots.sweep(now, budget, sink!(self))
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
            .filter(|(_, e)| glob::matches(pattern, e.key.as_bytes()))
            .map(|(i, _)| i)
            .collect();
        let mut removed = 0;
        for idx in victims {
            if self.slots.is_live(idx, now) {
                self.remove_at(idx, RemovalCause::Explicit);
                removed += 1;
            } else {
                self.remove_at(idx, RemovalCause::Expired);
            }
        }
        removed
    }

    /// Removes everything; returns how many entries there were.
    pub fn clear(&mut self) -> usize {
        let listener = &mut self.listener;
        let n = self.slots.clear(&mut |_, entry: Keyed<V>, cause| {
            if let Some(listener) = listener.as_mut() {
                listener(&entry.key, &entry.value, cause);
            }
        });
        self.table.clear();
        n
    }

    /// Live keys, most recently used first.
    pub fn keys(&self, now: u64) -> Vec<&str> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.slots.recency(now).map(|(_, e)| &*e.key));
        out
    }

    /// Items in the expiry index, stale ones included; for tests of its bound.
    #[doc(hidden)]
    pub fn expiry_index_len(&self) -> usize {
        self.slots.expiry_index_len()
    }

    /// Asserts every structural invariant; for tests (panics on a broken invariant).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        self.slots.check_invariants();
        for (idx, e) in self.slots.iter() {
            assert_eq!(self.find(&e.key), Some(idx), "table entry of {:?}", e.key);
        }
        assert_eq!(self.table.len(), self.len(), "table size");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    type Gone = Vec<(u32, u32, RemovalCause)>;

    fn slots(max_entries: usize, max_bytes: Option<u64>) -> SlotTier<u32> {
        SlotTier::new(MemoryConfig {
            max_entries,
            max_bytes,
        })
        .unwrap()
    }

    fn sink(gone: &mut Gone) -> impl FnMut(u32, u32, RemovalCause) + '_ {
        |slot, value, cause| gone.push((slot, value, cause))
    }

    #[test]
    fn slots_are_reused_and_lru_order_follows_touches() {
        let mut t = slots(3, None);
        let mut gone = Gone::new();
        let a = t.insert(10, 1, None, 0).unwrap();
        let b = t.insert(11, 1, None, 0).unwrap();
        let c = t.insert(12, 1, None, 0).unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        assert!(t.touch(a));
        let d = t.insert(13, 1, None, 0).unwrap();
        t.fit(&mut sink(&mut gone));
        assert_eq!(gone, [(b, 11, RemovalCause::Evicted)]);
        assert_eq!(
            d, 3,
            "the slab grows by one before the eviction frees a slot"
        );
        let e = t.insert(14, 1, None, 0).unwrap();
        t.fit(&mut sink(&mut gone));
        assert_eq!(e, b, "the freed slot is reused");
        assert_eq!(gone[1], (c, 12, RemovalCause::Evicted));
        let order: Vec<u32> = t.recency(0).map(|(s, _)| s).collect();
        assert_eq!(order, [e, d, a]);
        assert!(!t.touch(c), "a free slot is not touched");
        t.check_invariants();
    }

    #[test]
    fn update_recharges_restarts_ttl_and_counts_a_replacement() {
        let mut t = slots(10, Some(10));
        let mut gone = Gone::new();
        let a = t.insert(1, 4, Some(5), 0).unwrap();
        let b = t.insert(2, 4, None, 0).unwrap();
        assert!(t.update(a, 8, None, 3).unwrap());
        *t.value_mut(a).unwrap() = 3;
        assert_eq!(t.expires_at(a), Some(u64::MAX));
        assert_eq!(t.bytes(), 12);
        t.fit(&mut sink(&mut gone));
        assert_eq!(gone, [(b, 2, RemovalCause::Evicted)]);
        assert_eq!(t.removals().replaced, 1);
        assert_eq!(
            t.update(a, 11, None, 3).unwrap_err().code(),
            "VALUE_TOO_LARGE"
        );
        assert!(!t.update(b, 1, None, 3).unwrap(), "b's slot is free");
        assert_eq!(t.bytes(), 8);
        t.check_invariants();
    }

    #[test]
    fn sweep_reports_expired_slots_and_ignores_stale_index_items() {
        let mut t = slots(10, None);
        let mut gone = Gone::new();
        let a = t.insert(1, 0, Some(5), 0).unwrap();
        let b = t.insert(2, 0, Some(5), 0).unwrap();
        t.update(a, 0, Some(100), 1).unwrap(); // a's first index item is now stale
        assert!(!t.is_live(b, 5) && t.is_live(a, 5));
        assert_eq!(t.sweep(5, usize::MAX, &mut sink(&mut gone)), 1);
        assert_eq!(gone, [(b, 2, RemovalCause::Expired)]);
        assert_eq!(t.remove(a, RemovalCause::Explicit), Some(1));
        assert_eq!(t.remove(a, RemovalCause::Explicit), None);
        let r = t.removals();
        assert_eq!((r.expired, r.explicit, r.replaced), (1, 1, 1));
        t.check_invariants();
    }

    #[test]
    fn clear_reports_everything_and_restarts_slot_numbers() {
        let mut t = slots(10, None);
        let mut gone = Gone::new();
        for v in 0..3 {
            t.insert(v, 1, None, 0).unwrap();
        }
        assert_eq!(t.clear(&mut sink(&mut gone)), 3);
        assert_eq!(gone.len(), 3);
        assert!(gone.iter().all(|g| g.2 == RemovalCause::Explicit));
        assert_eq!((t.len(), t.bytes(), t.capacity()), (0, 0, 0));
        assert_eq!(t.insert(9, 1, None, 0).unwrap(), 0);
        t.check_invariants();
    }

    #[test]
    fn keyed_tier_reports_replacement_before_the_evictions_it_causes() {
        let mut t: MemoryTier<u32> = MemoryTier::new(MemoryConfig {
            max_entries: 10,
            max_bytes: Some(10),
        })
        .unwrap();
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = log.clone();
        t.set_listener(Some(Box::new(move |k: &str, v: &u32, c| {
            sink.borrow_mut().push((k.to_owned(), *v, c));
        })));
        t.insert("a", 1, 3, None, 0).unwrap();
        t.insert("b", 2, 3, None, 0).unwrap();
        t.insert("b", 3, 8, None, 0).unwrap();
        assert_eq!(
            *log.borrow(),
            [
                ("b".to_owned(), 2, RemovalCause::Replaced),
                ("a".to_owned(), 1, RemovalCause::Evicted)
            ]
        );
        t.check_invariants();
    }
}
