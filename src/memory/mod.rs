//! The memory tier's algorithm: a slab of entries addressed by slot number, with a true LRU list,
//! an expiry index, entry and byte bounds, and removal counts by cause. It never sees a key nor a
//! value: a host keeps those by slot number (the JavaScript `MemoryCache` in a `Map` and an
//! array, [`crate::cache::MemoryTier`] in a hash table), and the policy above it (versions,
//! request keys, default TTL, statistics, expiry on access, the removal log) is
//! [`crate::cache::Core`].
//!
//! # Structure
//! - Entries live in a slab (a `Vec` of 24-byte slots, freed slots chained into a free list).
//!   Each holds its expiry time and the `prev`/`next` slot numbers of a doubly linked recency
//!   list: `insert`, `touch` and `remove` are O(1). Charged sizes live beside the slab, in an
//!   array made at the first entry charged more than 0 bytes.
//! - Entries with a TTL are also in the expiry index (`memory/expiry.rs`): one list per TTL
//!   value, linked through the entries, in expiry order; a sweep looks at list heads only and
//!   costs in proportion to what expired, never a scan of the whole tier.
//!
//! # Expiry
//! An entry is expired when `now >= expires_at`; [`SlotTier::is_live`] says so, and the policy
//! never returns an expired entry. [`SlotTier::sweep`] removes expired entries, looking at no more
//! than a given number of index items.
//!
//! # Bounds
//! The tier holds at most `max_entries` entries and, when `max_bytes` is set, at most that many
//! charged bytes. Inserting never evicts: [`SlotTier::fit`] evicts least recently used entries
//! until both bounds hold. A single entry heavier than `max_bytes` is refused with
//! `VALUE_TOO_LARGE` and the tier is left unchanged.

mod expiry;

use std::fmt;

use crate::error::{Error, Result};
use expiry::{ExpiryLists, FIRST_MARK};

/// Expired entries a normal operation may sweep.
pub const SWEEP_PER_OP: usize = 4;

const NIL: u32 = u32::MAX;

/// The most entries a tier holds: slot numbers stay below the expiry lists' end marks.
pub const MAX_ENTRIES: usize = FIRST_MARK as usize - 1;

/// `Entry::expires_at` of a free slot (below any time, so it reads as expired).
const FREE: f64 = f64::NEG_INFINITY;

/// Why an entry left the tier. The discriminants are part of the removal log that JavaScript
/// reads (see [`crate::cache::Removed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum RemovalCause {
    /// Its TTL ran out.
    Expired = 0,
    /// It was deleted: by key, by pattern, by invalidation or by `clear`.
    Explicit = 1,
    /// A new value was set for its key.
    Replaced = 2,
    /// It was the least recently used entry when a bound was exceeded.
    Evicted = 3,
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

fn check_config(config: MemoryConfig) -> Result<()> {
    if config.max_entries == 0 || config.max_entries > MAX_ENTRIES {
        return Err(Error::InvalidOptions(format!(
            "maxEntries must be between 1 and {MAX_ENTRIES}, got {}",
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

/// One slot: 24 bytes, `#[repr(C)]`, because JavaScript reads `expires_at` (the first 8 bytes)
/// straight from the slot array (see [`SlotTier::entries_address`]).
#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    /// Milliseconds; `+Infinity` for no expiry, `-Infinity` ([`FREE`]) for a free slot.
    expires_at: f64,
    /// Recency links.
    prev: u32,
    /// The next less recently used slot; for a free slot, the next free slot.
    next: u32,
    /// Expiry list links ([`NIL`] for an entry without expiry; see `memory/expiry.rs`).
    eprev: u32,
    enext: u32,
}

/// Bytes per slot in the slot array.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// Slots reserved up front at most (more are added as needed, never past `max_entries + 1`).
const RESERVED_SLOTS: usize = 1 << 20;

/// The memory tier's algorithm: a slab of entries addressed by slot number, with true LRU order,
/// TTL with an expiry index, entry and byte bounds, and removal counts by cause.
///
/// Slot numbers are small integers (below [`SlotTier::capacity`]) and are reused once freed.
/// Every method that can remove entries takes an `on_remove(slot, cause)` sink, called after the
/// slot is freed; [`RemovalCause::Replaced`] is never reported there (the host replaced the value
/// itself). Inserting and updating never evict: call [`SlotTier::fit`] afterwards, so that a host
/// can report the replacement before the evictions it causes.
///
/// The slots for `max_entries` (up to 1,048,576) are reserved when the tier is made, 24 bytes
/// each, as lru-cache reserves its arrays: the tier never holds more than it may need. Charged
/// sizes take 4 bytes more per slot once an entry is charged more than 0 bytes.
///
/// ```
/// use cachette::memory::{MemoryConfig, SlotTier};
/// let mut tier = SlotTier::new(MemoryConfig { max_entries: 2, max_bytes: None }).unwrap();
/// let mut gone = Vec::new();
/// let a = tier.insert(1, None, 0).unwrap();
/// let b = tier.insert(1, Some(1_000), 0).unwrap();
/// tier.touch(a); // a is now the most recent
/// let c = tier.insert(1, None, 0).unwrap();
/// tier.fit(&mut |slot, _cause| gone.push(slot));
/// assert_eq!(gone, [b]); // the least recently used went
/// assert!(tier.is_live(c, 0) && tier.is_live(a, 0));
/// ```
pub struct SlotTier {
    slots: Vec<Entry>,
    /// Charged bytes by slot; empty while every entry is charged 0.
    charges: Vec<u32>,
    free_head: u32,
    head: u32,
    tail: u32,
    len: usize,
    bytes: u64,
    expiry: ExpiryLists,
    config: MemoryConfig,
    removals: RemovalCounts,
}

impl fmt::Debug for SlotTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotTier")
            .field("len", &self.len)
            .field("bytes", &self.bytes)
            .field("config", &self.config)
            .field("removals", &self.removals)
            .finish_non_exhaustive()
    }
}

/// `expires_at` for a TTL of `ttl_ms` from `now` (`None`: never).
#[inline]
fn expiry_time(ttl_ms: Option<u64>, now: u64) -> f64 {
    match ttl_ms {
        None => f64::INFINITY,
        // Milliseconds below 2^53 are exact doubles; later ones round, which is beyond any date.
        Some(t) => now.saturating_add(t) as f64,
    }
}

impl SlotTier {
    /// An empty tier. Fails with `INVALID_OPTIONS` when a bound is zero.
    pub fn new(config: MemoryConfig) -> Result<Self> {
        check_config(config)?;
        Ok(SlotTier {
            slots: Vec::with_capacity((config.max_entries + 1).min(RESERVED_SLOTS)),
            charges: Vec::new(),
            free_head: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
            bytes: 0,
            expiry: ExpiryLists::default(),
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

    /// Slots reserved (made so far or room for them), so that a host can reserve as many.
    pub fn reserved(&self) -> usize {
        self.slots.capacity()
    }

    /// The address of the slot array ([`ENTRY_BYTES`] per slot, `expires_at` first, as an `f64`
    /// of milliseconds: `+Infinity` for no expiry, `0` for a free slot). It changes only when
    /// the array grows, which happens only in [`SlotTier::insert`].
    pub fn entries_address(&self) -> usize {
        self.slots.as_ptr() as usize
    }

    /// The earliest expiry time among entries with a TTL at the head of their expiry list.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiry.earliest(&self.slots).map(|t| t as u64)
    }

    #[inline]
    fn full(&self, slot: u32) -> Option<&Entry> {
        self.slots
            .get(slot as usize)
            .filter(|e| e.expires_at != FREE)
    }

    #[inline]
    fn full_mut(&mut self, slot: u32) -> Option<&mut Entry> {
        self.slots
            .get_mut(slot as usize)
            .filter(|e| e.expires_at != FREE)
    }

    /// Bytes charged to `slot`.
    #[inline]
    fn charge(&self, slot: u32) -> u32 {
        self.charges.get(slot as usize).copied().unwrap_or(0)
    }

    /// Charges `slot` `charged` bytes, making the charges array at the first charge above 0.
    #[inline]
    fn set_charge(&mut self, slot: u32, charged: u32) {
        if self.charges.is_empty() && charged == 0 {
            return;
        }
        let i = slot as usize;
        if i >= self.charges.len() {
            // As many as the slots reserved, so that it grows when they do, never past them.
            let want = self.slots.capacity().max(i + 1);
            self.charges.reserve_exact(want - self.charges.len());
            self.charges.resize(self.slots.len().max(i + 1), 0);
        }
        if let Some(c) = self.charges.get_mut(i) {
            *c = charged;
        }
    }

    /// Whether `slot` holds an entry, expired or not.
    #[inline]
    pub fn is_occupied(&self, slot: u32) -> bool {
        self.full(slot).is_some()
    }

    /// When the entry in `slot` expires (`u64::MAX`: never); `None` for a free slot.
    #[inline]
    pub fn expires_at(&self, slot: u32) -> Option<u64> {
        self.full(slot).map(|e| {
            if e.expires_at.is_finite() {
                e.expires_at as u64
            } else {
                u64::MAX
            }
        })
    }

    /// Whether `slot` holds an entry that has not expired at `now`.
    #[inline]
    pub fn is_live(&self, slot: u32, now: u64) -> bool {
        self.full(slot).is_some_and(|e| e.expires_at > now as f64)
    }

    /// Refuses, with `VALUE_TOO_LARGE`, an entry that alone would exceed the byte bound (an entry
    /// is charged at most `u32::MAX` bytes, bound or not).
    #[inline]
    pub fn check_charge(&self, charged: u64) -> Result<()> {
        let max = self
            .config
            .max_bytes
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX));
        if charged > max {
            return Err(Error::ValueTooLarge { size: charged, max });
        }
        Ok(())
    }

    #[inline]
    fn set_next(&mut self, slot: u32, next: u32) {
        if let Some(e) = self.full_mut(slot) {
            e.next = next;
        }
    }

    #[inline]
    fn set_prev(&mut self, slot: u32, prev: u32) {
        if let Some(e) = self.full_mut(slot) {
            e.prev = prev;
        }
    }

    #[inline]
    fn unlink(&mut self, slot: u32) {
        let Some(&Entry { prev, next, .. }) = self.full(slot) else {
            return;
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.set_next(prev, next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.set_prev(next, prev);
        }
    }

    #[inline]
    fn push_front(&mut self, slot: u32) {
        let old = self.head;
        if let Some(e) = self.full_mut(slot) {
            e.prev = NIL;
            e.next = old;
        }
        if old == NIL {
            self.tail = slot;
        } else {
            self.set_prev(old, slot);
        }
        self.head = slot;
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

    /// Links `slot` into the expiry list of `ttl_ms` (nothing for no TTL).
    #[inline]
    fn index(&mut self, slot: u32, ttl_ms: Option<u64>) {
        if let Some(ttl) = ttl_ms {
            let list = self.expiry.list_for(ttl);
            self.expiry.append(&mut self.slots, slot, list);
        }
    }

    /// Stores a new entry charged `charged` bytes, expiring `ttl_ms` milliseconds after `now`
    /// (`None`: never), as the most recently used; returns its slot. Evicts nothing (see
    /// [`SlotTier::fit`]). Fails with `VALUE_TOO_LARGE` (and changes nothing) when the entry
    /// alone exceeds the byte bound.
    pub fn insert(&mut self, charged: u64, ttl_ms: Option<u64>, now: u64) -> Result<u32> {
        self.check_charge(charged)?;
        let entry = Entry {
            expires_at: expiry_time(ttl_ms, now),
            prev: NIL,
            next: NIL,
            eprev: NIL,
            enext: NIL,
        };
        let slot = match self.slots.get_mut(self.free_head as usize) {
            Some(free) => {
                let slot = self.free_head;
                self.free_head = free.next;
                *free = entry;
                slot
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // Grow by doubling, never past what the entry bound can use.
                    let room = (self.config.max_entries + 1).saturating_sub(self.slots.len());
                    self.slots
                        .reserve_exact(self.slots.len().clamp(1, room.max(1)));
                }
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.set_charge(slot, charged as u32);
        self.len += 1;
        self.bytes += charged;
        self.push_front(slot);
        self.index(slot, ttl_ms);
        Ok(slot)
    }

    /// Re-charges the entry in `slot` (whose value the host has just replaced), restarts its TTL
    /// and makes it the most recently used; counts a [`RemovalCause::Replaced`]. Evicts nothing
    /// (see [`SlotTier::fit`]). Fails with `VALUE_TOO_LARGE` when the entry alone would exceed the
    /// byte bound, and changes nothing for that or for a free slot (`Ok(false)`).
    pub fn update(
        &mut self,
        slot: u32,
        charged: u64,
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<bool> {
        self.check_charge(charged)?;
        let Some(e) = self.full_mut(slot) else {
            return Ok(false);
        };
        e.expires_at = expiry_time(ttl_ms, now);
        let old_charged = self.charge(slot);
        self.set_charge(slot, charged as u32);
        self.bytes = self.bytes - u64::from(old_charged) + charged;
        self.expiry.unlink(&mut self.slots, slot);
        self.index(slot, ttl_ms);
        self.count(RemovalCause::Replaced);
        self.touch(slot);
        Ok(true)
    }

    /// Evicts least recently used entries until both bounds hold (never the most recent one,
    /// which fits alone).
    pub fn fit(&mut self, on_remove: &mut impl FnMut(u32, RemovalCause)) {
        while self.over_bounds() && self.tail != self.head {
            let victim = self.tail;
            self.remove_reporting(victim, RemovalCause::Evicted, on_remove);
        }
    }

    #[inline]
    fn over_bounds(&self) -> bool {
        self.len > self.config.max_entries || self.config.max_bytes.is_some_and(|m| self.bytes > m)
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

    /// Takes the entry in `slot` out of every structure, counting `cause`; false for a free
    /// slot. Expired entries should be removed as [`RemovalCause::Expired`] (see
    /// [`SlotTier::is_live`]).
    pub fn remove(&mut self, slot: u32, cause: RemovalCause) -> bool {
        if self.full(slot).is_none() {
            return false;
        }
        self.unlink(slot);
        self.expiry.unlink(&mut self.slots, slot);
        let free_head = self.free_head;
        if let Some(e) = self.slots.get_mut(slot as usize) {
            e.expires_at = FREE;
            e.next = free_head;
        }
        self.free_head = slot;
        self.len -= 1;
        self.bytes -= u64::from(self.charge(slot));
        self.set_charge(slot, 0);
        self.count(cause);
        true
    }

    fn remove_reporting(
        &mut self,
        slot: u32,
        cause: RemovalCause,
        on_remove: &mut impl FnMut(u32, RemovalCause),
    ) {
        if self.remove(slot, cause) {
            on_remove(slot, cause);
        }
    }

    /// Removes expired entries at the heads of the expiry lists, no more than `budget`. Returns
    /// how many it removed.
    pub fn sweep(
        &mut self,
        now: u64,
        budget: usize,
        on_remove: &mut impl FnMut(u32, RemovalCause),
    ) -> usize {
        let now = now as f64;
        let mut removed = 0;
        while removed < budget {
            let Some(slot) = self.expiry.due(&self.slots, now) else {
                break;
            };
            self.remove_reporting(slot, RemovalCause::Expired, on_remove);
            removed += 1;
        }
        removed
    }

    /// Removes every expired entry, wherever it sits in the expiry index (the heads, then whole
    /// any list that holds entries out of expiry order). Returns how many it removed.
    pub fn sweep_all(&mut self, now: u64, on_remove: &mut impl FnMut(u32, RemovalCause)) -> usize {
        let mut removed = self.sweep(now, usize::MAX, on_remove);
        let now_f = now as f64;
        for slot in self.expiry.out_of_order(&self.slots) {
            if self.full(slot).is_some_and(|e| e.expires_at <= now_f) {
                self.remove_reporting(slot, RemovalCause::Expired, on_remove);
                removed += 1;
            }
        }
        removed
    }

    /// Removes everything (each entry reported as [`RemovalCause::Explicit`]); slot numbers
    /// start again from 0. Returns how many entries there were.
    pub fn clear(&mut self, on_remove: &mut impl FnMut(u32, RemovalCause)) -> usize {
        let n = self.len;
        while self.head != NIL {
            let slot = self.head;
            self.remove_reporting(slot, RemovalCause::Explicit, on_remove);
        }
        self.expiry.clear();
        self.slots.clear();
        self.charges.clear();
        self.free_head = NIL;
        n
    }

    /// Removes everything without reporting it and gives the reserved slots back; the tier
    /// stays usable (it reserves again as it grows).
    pub fn release(&mut self) {
        self.clear(&mut |_, _| {});
        self.slots = Vec::new();
        self.charges = Vec::new();
    }

    /// Occupied slots, expired ones included, in slot order.
    pub fn occupied(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, e)| e.expires_at != FREE)
            .map(|(i, _)| i as u32)
    }

    /// Live slots, most recently used first.
    pub fn recency(&self, now: u64) -> impl Iterator<Item = u32> + '_ {
        let now = now as f64;
        let mut slot = self.head;
        std::iter::from_fn(move || {
            while let Some(e) = self.full(slot) {
                let here = slot;
                slot = e.next;
                if e.expires_at > now {
                    return Some(here);
                }
            }
            None
        })
    }

    /// Entries in the expiry index; for tests of its bound.
    #[doc(hidden)]
    pub fn expiry_index_len(&self) -> usize {
        self.expiry.len()
    }

    /// Asserts every structural invariant; for tests (panics on a broken invariant).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut seen = 0usize;
        let mut bytes = 0u64;
        let mut with_ttl = 0usize;
        let mut prev = NIL;
        let mut slot = self.head;
        while slot != NIL {
            let e = self.full(slot).expect("a linked slot is occupied");
            assert_eq!(e.prev, prev, "back link of slot {slot}");
            if e.expires_at.is_finite() {
                with_ttl += 1;
                assert_ne!(e.eprev, NIL, "slot {slot} expires but is not indexed");
            } else {
                assert_eq!(e.eprev, NIL, "slot {slot} never expires but is indexed");
            }
            bytes += u64::from(self.charge(slot));
            seen += 1;
            assert!(seen <= self.len, "recency list longer than len (cycle?)");
            prev = slot;
            slot = e.next;
        }
        assert_eq!(prev, self.tail, "tail");
        assert_eq!(seen, self.len, "len");
        assert_eq!(bytes, self.bytes, "bytes");
        assert_eq!(with_ttl, self.expiry.len(), "entries with TTL");
        self.expiry.check(&self.slots);
        let full = self.occupied().count();
        assert_eq!(full, self.len, "occupied slots");
        let mut free = 0;
        let mut f = self.free_head;
        while f != NIL {
            let e = self.slots.get(f as usize).expect("a free slot exists");
            assert_eq!(e.expires_at, FREE, "free list reaches an occupied slot");
            assert_eq!(self.charge(f), 0, "a free slot is charged nothing");
            f = e.next;
            free += 1;
            assert!(free <= self.slots.len(), "free list cycle");
        }
        assert_eq!(free + full, self.slots.len(), "every slot is used or free");
        assert!(self.len <= self.config.max_entries, "entry bound");
        assert!(
            self.slots.capacity() <= self.config.max_entries + 1,
            "slots reserved past the bound"
        );
        assert!(
            self.charges.capacity() <= self.config.max_entries + 1,
            "charges reserved past the bound"
        );
        if let Some(m) = self.config.max_bytes {
            assert!(self.bytes <= m, "byte bound");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    type Gone = Vec<(u32, RemovalCause)>;

    fn slots(max_entries: usize, max_bytes: Option<u64>) -> SlotTier {
        SlotTier::new(MemoryConfig {
            max_entries,
            max_bytes,
        })
        .unwrap()
    }

    fn sink(gone: &mut Gone) -> impl FnMut(u32, RemovalCause) + '_ {
        |slot, cause| gone.push((slot, cause))
    }

    #[test]
    fn slots_are_reused_and_lru_order_follows_touches() {
        let mut t = slots(3, None);
        let mut gone = Gone::new();
        let a = t.insert(1, None, 0).unwrap();
        let b = t.insert(1, None, 0).unwrap();
        let c = t.insert(1, None, 0).unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        assert!(t.touch(a));
        let d = t.insert(1, None, 0).unwrap();
        t.fit(&mut sink(&mut gone));
        assert_eq!(gone, [(b, RemovalCause::Evicted)]);
        assert_eq!(
            d, 3,
            "the slab grows by one before the eviction frees a slot"
        );
        let e = t.insert(1, None, 0).unwrap();
        t.fit(&mut sink(&mut gone));
        assert_eq!(e, b, "the freed slot is reused");
        assert_eq!(gone[1], (c, RemovalCause::Evicted));
        let order: Vec<u32> = t.recency(0).collect();
        assert_eq!(order, [e, d, a]);
        assert!(!t.touch(c), "a free slot is not touched");
        t.check_invariants();
    }

    #[test]
    fn update_recharges_restarts_ttl_and_counts_a_replacement() {
        let mut t = slots(10, Some(10));
        let mut gone = Gone::new();
        let a = t.insert(4, Some(5), 0).unwrap();
        let b = t.insert(4, None, 0).unwrap();
        assert!(t.update(a, 8, None, 3).unwrap());
        assert_eq!(t.expires_at(a), Some(u64::MAX));
        assert_eq!(t.bytes(), 12);
        t.fit(&mut sink(&mut gone));
        assert_eq!(gone, [(b, RemovalCause::Evicted)]);
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
        let a = t.insert(0, Some(5), 0).unwrap();
        let b = t.insert(0, Some(5), 0).unwrap();
        t.update(a, 0, Some(100), 1).unwrap(); // a's first index item is now stale
        assert!(!t.is_live(b, 5) && t.is_live(a, 5));
        assert_eq!(t.sweep(5, usize::MAX, &mut sink(&mut gone)), 1);
        assert_eq!(gone, [(b, RemovalCause::Expired)]);
        assert!(t.remove(a, RemovalCause::Explicit));
        assert!(!t.remove(a, RemovalCause::Explicit));
        let r = t.removals();
        assert_eq!((r.expired, r.explicit, r.replaced), (1, 1, 1));
        t.check_invariants();
    }

    #[test]
    fn clear_reports_everything_and_restarts_slot_numbers() {
        let mut t = slots(10, None);
        let mut gone = Gone::new();
        for _ in 0..3 {
            t.insert(1, None, 0).unwrap();
        }
        assert_eq!(t.clear(&mut sink(&mut gone)), 3);
        assert_eq!(gone.len(), 3);
        assert!(gone.iter().all(|g| g.1 == RemovalCause::Explicit));
        assert_eq!((t.len(), t.bytes(), t.capacity()), (0, 0, 0));
        assert_eq!(t.insert(1, None, 0).unwrap(), 0);
        t.check_invariants();
    }

    #[test]
    fn an_entry_is_charged_at_most_u32_max_bytes() {
        let mut t = slots(10, None);
        let e = t.insert(u64::from(u32::MAX) + 1, None, 0).unwrap_err();
        assert_eq!(e.code(), "VALUE_TOO_LARGE");
        assert!(t.is_empty());
        t.insert(u64::from(u32::MAX), None, 0).unwrap();
        assert_eq!(t.bytes(), u64::from(u32::MAX));
        t.check_invariants();
    }

    #[test]
    fn expiry_lists_unlink_at_either_end_and_in_the_middle() {
        let mut t = slots(20, None);
        let mut gone = Gone::new();
        // Two TTLs interleaved: two lists, each ending in its own marks.
        let short: Vec<u32> = (0..4).map(|_| t.insert(0, Some(10), 0).unwrap()).collect();
        let long: Vec<u32> = (0..4).map(|_| t.insert(0, Some(20), 0).unwrap()).collect();
        t.check_invariants();
        // Middle, head and tail of the short list, then the only entry left in it.
        for &s in &[short[1], short[0], short[3], short[2]] {
            assert!(t.remove(s, RemovalCause::Explicit));
            t.check_invariants();
        }
        assert_eq!(t.expiry_index_len(), 4);
        // The emptied list is taken over by a new TTL; the long list is untouched.
        let later = t.insert(0, Some(5), 8).unwrap();
        t.check_invariants();
        assert_eq!(t.sweep(13, usize::MAX, &mut sink(&mut gone)), 1);
        assert_eq!(gone, [(later, RemovalCause::Expired)]);
        assert_eq!(t.sweep(20, usize::MAX, &mut sink(&mut gone)), 4);
        assert_eq!(&gone[1..].iter().map(|g| g.0).collect::<Vec<_>>(), &long);
        t.check_invariants();
    }

    #[test]
    fn a_full_sweep_finds_expired_entries_behind_live_ones() {
        let mut t = slots(100, None);
        let mut gone = Gone::new();
        // Sixteen lists of long TTLs, then a short TTL that must share one of them: it sits
        // behind an entry that expires much later.
        for i in 0..16u64 {
            t.insert(0, Some(1_000 + 10 * i), 0).unwrap();
        }
        let short = t.insert(0, Some(10), 0).unwrap();
        assert_eq!(
            t.sweep(20, usize::MAX, &mut sink(&mut gone)),
            0,
            "the heads are live"
        );
        assert!(!t.is_live(short, 20), "never returned late");
        assert_eq!(t.sweep_all(20, &mut sink(&mut gone)), 1);
        assert_eq!(gone, [(short, RemovalCause::Expired)]);
        assert_eq!(t.len(), 16);
        t.check_invariants();

        // The clock stepping back: an entry stored "earlier" joins behind a later one.
        let mut t = slots(100, None);
        let mut gone = Gone::new();
        let later = t.insert(0, Some(1_000), 100).unwrap();
        let earlier = t.insert(0, Some(1_000), 0).unwrap();
        assert_eq!(t.sweep(1_050, usize::MAX, &mut sink(&mut gone)), 0);
        assert_eq!(t.sweep_all(1_050, &mut sink(&mut gone)), 1);
        assert_eq!(gone, [(earlier, RemovalCause::Expired)]);
        assert!(t.is_live(later, 1_050));
        // Once the list has emptied, it is in order again.
        assert_eq!(t.sweep_all(1_100, &mut sink(&mut gone)), 1);
        assert!(t.is_empty());
        t.check_invariants();
    }

    #[test]
    fn charges_are_kept_beside_the_slots_from_the_first_charge_above_zero() {
        let mut t = slots(4, Some(100));
        let mut gone = Gone::new();
        let a = t.insert(0, None, 0).unwrap();
        let b = t.insert(30, None, 0).unwrap();
        let c = t.insert(0, None, 0).unwrap();
        assert_eq!(t.bytes(), 30);
        assert!(t.update(a, 50, None, 0).unwrap());
        assert!(t.update(c, 20, None, 0).unwrap());
        assert_eq!(t.bytes(), 100);
        t.check_invariants();
        // Over the byte bound: the least recently used (b) goes, and with it its 30 bytes.
        assert!(t.update(a, 80, None, 0).unwrap());
        t.fit(&mut sink(&mut gone));
        assert_eq!(gone, [(b, RemovalCause::Evicted)]);
        assert_eq!(t.bytes(), 100);
        // The freed slot is reused with nothing charged.
        assert_eq!(t.insert(0, None, 0).unwrap(), b);
        assert_eq!(t.bytes(), 100);
        t.check_invariants();
    }

    #[test]
    fn past_sixteen_ttls_entries_share_lists_and_still_expire_on_time() {
        let mut t = slots(100, None);
        let mut gone = Gone::new();
        // 40 distinct TTLs, shortest last: they cannot all have a list of their own.
        let slots: Vec<(u32, u64)> = (0..40u64)
            .rev()
            .map(|i| (t.insert(1, Some(10 + i), 0).unwrap(), 10 + i))
            .collect();
        t.check_invariants();
        for now in 0..60 {
            for &(slot, ttl) in &slots {
                let present = t.is_occupied(slot);
                assert_eq!(
                    present && t.is_live(slot, now),
                    present && now < ttl,
                    "slot {slot} at {now}"
                );
                assert!(
                    !t.is_live(slot, now) || now < ttl,
                    "never live after its TTL"
                );
            }
            t.sweep(now, usize::MAX, &mut sink(&mut gone));
            t.check_invariants();
        }
        // Every entry was swept by the time the longest TTL had passed.
        assert_eq!(gone.len(), 40);
        assert!(t.is_empty());
    }
}
