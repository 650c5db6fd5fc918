//! The expiry index: entries with a TTL are linked, through two slot numbers in the entry itself,
//! into one list per TTL value. Entries of one TTL stored at nondecreasing times expire in the
//! order they were stored, so each list is kept in expiry order by appending, and the entries
//! due first are always at the heads: a sweep looks at list heads only, and costs in proportion
//! to what expired. Linking and unlinking are O(1), and the index needs no memory beyond the
//! links.
//!
//! At most [`MAX_LISTS`] lists exist. Once they are all in use, an entry with yet another TTL
//! joins the list of the nearest TTL; it may then sit behind entries that expire later, so it is
//! swept late (never returned late: liveness is always checked against its own expiry time).
//! The same holds when the host's clock steps backwards.

use super::{Entry, NIL};

/// The most TTL lists.
pub(super) const MAX_LISTS: usize = 16;

/// `Entry::list` of an entry without expiry.
pub(super) const NO_LIST: u16 = u16::MAX;

/// `Entry::list` of a free slot.
pub(super) const FREE: u16 = u16::MAX - 1;

#[derive(Debug, Clone, Copy)]
struct TtlList {
    ttl: u64,
    head: u32,
    tail: u32,
}

/// The TTL lists (their links live in the entries).
#[derive(Debug, Default)]
pub(super) struct ExpiryLists {
    lists: Vec<TtlList>,
    linked: usize,
}

impl ExpiryLists {
    /// Entries linked.
    pub(super) fn len(&self) -> usize {
        self.linked
    }

    /// The list entries with `ttl` join: the list of that TTL, an empty list taken over, a new
    /// one, or (all in use) the list of the nearest TTL.
    pub(super) fn list_for(&mut self, ttl: u64) -> u16 {
        if let Some(i) = self.lists.iter().position(|l| l.ttl == ttl) {
            return i as u16;
        }
        if let Some(i) = self.lists.iter().position(|l| l.head == NIL) {
            if let Some(l) = self.lists.get_mut(i) {
                l.ttl = ttl;
            }
            return i as u16;
        }
        if self.lists.len() < MAX_LISTS {
            self.lists.push(TtlList {
                ttl,
                head: NIL,
                tail: NIL,
            });
            return (self.lists.len() - 1) as u16;
        }
        let nearest = self
            .lists
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| l.ttl.abs_diff(ttl))
            .map_or(0, |(i, _)| i);
        nearest as u16
    }

    /// Appends `slot` (not linked yet) to list `list`.
    pub(super) fn append(&mut self, entries: &mut [Entry], slot: u32, list: u16) {
        let Some(l) = self.lists.get_mut(usize::from(list)) else {
            return;
        };
        let tail = l.tail;
        if let Some(e) = entries.get_mut(slot as usize) {
            e.list = list;
            e.eprev = tail;
            e.enext = NIL;
        }
        if tail == NIL {
            l.head = slot;
        } else if let Some(t) = entries.get_mut(tail as usize) {
            t.enext = slot;
        }
        l.tail = slot;
        self.linked += 1;
    }

    /// Unlinks `slot` from its list, if it is in one.
    pub(super) fn unlink(&mut self, entries: &mut [Entry], slot: u32) {
        let Some(&Entry {
            list, eprev, enext, ..
        }) = entries.get(slot as usize)
        else {
            return;
        };
        let Some(l) = self.lists.get_mut(usize::from(list)) else {
            return;
        };
        if eprev == NIL {
            l.head = enext;
        } else if let Some(p) = entries.get_mut(eprev as usize) {
            p.enext = enext;
        }
        if enext == NIL {
            l.tail = eprev;
        } else if let Some(n) = entries.get_mut(enext as usize) {
            n.eprev = eprev;
        }
        if let Some(e) = entries.get_mut(slot as usize) {
            e.list = NO_LIST;
            e.eprev = NIL;
            e.enext = NIL;
        }
        self.linked -= 1;
    }

    /// A list head that has expired at `now`, if any.
    #[inline]
    pub(super) fn due(&self, entries: &[Entry], now: f64) -> Option<u32> {
        self.lists
            .iter()
            .map(|l| l.head)
            .find(|&h| entries.get(h as usize).is_some_and(|e| e.expires_at <= now))
    }

    /// The earliest expiry time among list heads.
    pub(super) fn earliest(&self, entries: &[Entry]) -> Option<f64> {
        self.lists
            .iter()
            .filter_map(|l| entries.get(l.head as usize).map(|e| e.expires_at))
            .reduce(f64::min)
    }

    /// Forgets every list.
    pub(super) fn clear(&mut self) {
        self.lists.clear();
        self.linked = 0;
    }

    /// Asserts that the lists link exactly the entries that name them; for tests.
    pub(super) fn check(&self, entries: &[Entry]) {
        let mut seen = 0;
        for (i, l) in self.lists.iter().enumerate() {
            let mut prev = NIL;
            let mut slot = l.head;
            while slot != NIL {
                let e = entries.get(slot as usize).expect("a linked slot exists");
                assert_eq!(usize::from(e.list), i, "list of slot {slot}");
                assert_eq!(e.eprev, prev, "expiry back link of slot {slot}");
                assert!(
                    e.expires_at.is_finite(),
                    "slot {slot} never expires but is listed"
                );
                seen += 1;
                assert!(
                    seen <= self.linked,
                    "expiry list longer than counted (cycle?)"
                );
                prev = slot;
                slot = e.enext;
            }
            assert_eq!(prev, l.tail, "tail of list {i}");
        }
        assert_eq!(seen, self.linked, "entries linked");
    }
}
