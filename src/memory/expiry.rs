//! The expiry index: entries with a TTL are linked, through two slot numbers in the entry itself,
//! into one list per TTL value. Entries of one TTL stored at nondecreasing times expire in the
//! order they were stored, so each list is kept in expiry order by appending, and the entries
//! due first are always at the heads: a sweep looks at list heads only, and costs in proportion
//! to what expired. Linking and unlinking are O(1), and the index needs no memory beyond the
//! links.
//!
//! The first entry of list `i` has, instead of a previous slot, the end mark of list `i`
//! ([`end_mark`]), and so does the last instead of a next slot: an entry finds its own list
//! through its ends, with no list number stored in it. An entry without expiry has [`NIL`] in
//! both links.
//!
//! At most [`MAX_LISTS`] lists exist. Once they are all in use, an entry with yet another TTL
//! joins the list of the nearest TTL; it may then sit behind entries that expire later, so it is
//! swept late (never returned late: liveness is always checked against its own expiry time).
//! The same holds when the host's clock steps backwards. A list that has taken an entry
//! expiring before its tail is marked out of order until it empties, and a full sweep
//! ([`ExpiryLists::out_of_order`]) walks such lists whole.

use super::{Entry, NIL};

/// The most TTL lists.
pub(super) const MAX_LISTS: usize = 16;

/// The end marks take the link values from here to [`NIL`] (excluded): slot numbers stay below.
pub(super) const FIRST_MARK: u32 = NIL - MAX_LISTS as u32;

/// The link value that marks an end of list `list`.
#[inline]
pub(super) fn end_mark(list: usize) -> u32 {
    FIRST_MARK + list as u32
}

/// The list whose end `link` marks, if it is an end mark.
#[inline]
fn marked_list(link: u32) -> Option<usize> {
    (FIRST_MARK..NIL)
        .contains(&link)
        .then(|| (link - FIRST_MARK) as usize)
}

#[derive(Debug, Clone, Copy)]
struct TtlList {
    ttl: u64,
    head: u32,
    tail: u32,
    /// An entry was appended behind one that expires later (and the list has not emptied since).
    out_of_order: bool,
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
    pub(super) fn list_for(&mut self, ttl: u64) -> usize {
        if let Some(i) = self.lists.iter().position(|l| l.ttl == ttl) {
            return i;
        }
        if let Some(i) = self.lists.iter().position(|l| l.head == NIL) {
            if let Some(l) = self.lists.get_mut(i) {
                l.ttl = ttl;
                l.out_of_order = false;
            }
            return i;
        }
        if self.lists.len() < MAX_LISTS {
            self.lists.push(TtlList {
                ttl,
                head: NIL,
                tail: NIL,
                out_of_order: false,
            });
            return self.lists.len() - 1;
        }
        self.lists
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| l.ttl.abs_diff(ttl))
            .map_or(0, |(i, _)| i)
    }

    /// Appends `slot` (not linked yet) to list `list`.
    pub(super) fn append(&mut self, entries: &mut [Entry], slot: u32, list: usize) {
        let Some(l) = self.lists.get_mut(list) else {
            return;
        };
        let mark = end_mark(list);
        let tail = l.tail;
        let expiry = |s: u32| entries.get(s as usize).map_or(0.0, |e| e.expires_at);
        if tail != NIL && expiry(tail) > expiry(slot) {
            l.out_of_order = true;
        }
        if let Some(e) = entries.get_mut(slot as usize) {
            e.eprev = if tail == NIL { mark } else { tail };
            e.enext = mark;
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
        let Some(&Entry { eprev, enext, .. }) = entries.get(slot as usize) else {
            return;
        };
        if eprev == NIL {
            return;
        }
        match marked_list(eprev) {
            Some(list) => {
                if let Some(l) = self.lists.get_mut(list) {
                    l.head = if marked_list(enext).is_some() {
                        l.out_of_order = false;
                        NIL
                    } else {
                        enext
                    };
                }
            }
            None => {
                if let Some(p) = entries.get_mut(eprev as usize) {
                    p.enext = enext;
                }
            }
        }
        match marked_list(enext) {
            Some(list) => {
                if let Some(l) = self.lists.get_mut(list) {
                    l.tail = if marked_list(eprev).is_some() {
                        NIL
                    } else {
                        eprev
                    };
                }
            }
            None => {
                if let Some(n) = entries.get_mut(enext as usize) {
                    n.eprev = eprev;
                }
            }
        }
        if let Some(e) = entries.get_mut(slot as usize) {
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

    /// The entries of the lists marked out of order, where expired entries may sit behind live
    /// ones: what a full sweep must look at beyond the heads.
    pub(super) fn out_of_order(&self, entries: &[Entry]) -> Vec<u32> {
        let mut slots = Vec::new();
        for (i, l) in self.lists.iter().enumerate() {
            if !l.out_of_order {
                continue;
            }
            let mut slot = l.head;
            while slot != NIL && slot != end_mark(i) {
                slots.push(slot);
                slot = entries.get(slot as usize).map_or(NIL, |e| e.enext);
            }
        }
        slots
    }

    /// Forgets every list.
    pub(super) fn clear(&mut self) {
        self.lists.clear();
        self.linked = 0;
    }

    /// Asserts that the lists link exactly the entries that have links, each list ending in its
    /// own marks; for tests.
    pub(super) fn check(&self, entries: &[Entry]) {
        let mut seen = 0;
        for (i, l) in self.lists.iter().enumerate() {
            let mark = end_mark(i);
            assert_eq!(l.head == NIL, l.tail == NIL, "ends of list {i}");
            let mut prev = mark;
            let mut slot = l.head;
            while slot != NIL && slot != mark {
                let e = entries.get(slot as usize).expect("a linked slot exists");
                assert_eq!(e.eprev, prev, "expiry back link of slot {slot}");
                assert!(
                    e.expires_at.is_finite() && e.expires_at >= 0.0,
                    "slot {slot} is free or never expires but is listed"
                );
                seen += 1;
                assert!(
                    seen <= self.linked,
                    "expiry list longer than counted (cycle?)"
                );
                prev = slot;
                slot = e.enext;
            }
            if l.head != NIL {
                assert_eq!(slot, mark, "list {i} ends in its own mark");
                assert_eq!(prev, l.tail, "tail of list {i}");
            }
        }
        assert_eq!(seen, self.linked, "entries linked");
        let with_links = entries.iter().filter(|e| e.eprev != NIL).count();
        assert_eq!(with_links, self.linked, "entries with expiry links");
    }
}
