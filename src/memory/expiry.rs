//! The expiry index: a min-heap of `(expires_at, slot)` with lazy deletion.
//!
//! Replaced or removed entries leave stale items behind; the owner acts on a popped item only
//! when its slot still holds an entry with that very expiry time, and [`ExpiryIndex::compact`]
//! rebuilds the heap from the live entries when stale items outnumber them. A sweep therefore
//! costs in proportion to what expired (plus the stale items it passes), never a scan of the
//! whole cache.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Expiry times by slot, earliest first; stale items included until popped or compacted.
#[derive(Debug, Default)]
pub(super) struct ExpiryIndex {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl ExpiryIndex {
    /// Indexes `slot` as expiring at `at`.
    #[inline]
    pub(super) fn push(&mut self, at: u64, slot: u32) {
        self.heap.push(Reverse((at, slot)));
    }

    /// The earliest indexed expiry time (possibly of an entry already gone).
    #[inline]
    pub(super) fn earliest(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the earliest item if it is due at `now`.
    #[inline]
    pub(super) fn pop_due(&mut self, now: u64) -> Option<(u64, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(item)| item),
            _ => None,
        }
    }

    /// Items held, stale ones included.
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether stale items outnumber the `live` indexed entries enough to rebuild.
    #[inline]
    pub(super) fn needs_compaction(&self, live: usize) -> bool {
        self.heap.len() > 2 * live + 64
    }

    /// Replaces the items by exactly `live` (the entries that have an expiry).
    pub(super) fn rebuild(&mut self, live: impl Iterator<Item = (u64, u32)>) {
        let items: Vec<_> = live.map(Reverse).collect();
        self.heap = BinaryHeap::from(items);
    }

    /// Forgets everything.
    pub(super) fn clear(&mut self) {
        self.heap.clear();
    }

    /// Whether `(at, slot)` is indexed; for invariant checks.
    pub(super) fn contains(&self, at: u64, slot: u32) -> bool {
        self.heap.iter().any(|Reverse(item)| *item == (at, slot))
    }
}
