//! The order of member names: code points in Python, UTF-16 code units in JCS, and the sort that
//! applies it.

use std::cmp::Ordering;

use super::parse::{decode_escape, Span, ESCAPED};
use super::KeyFormat;

/// The first eight bytes of a name as a big-endian number (zero-padded), which orders like the
/// bytes themselves: a name is never padded against a zero byte, as names without escapes hold
/// no control characters.
#[inline]
pub(super) fn prefix(name: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (dst, src) in bytes.iter_mut().zip(name) {
        *dst = *src;
    }
    u64::from_be_bytes(bytes)
}

/// Orders two member names (raw contents) as `format` sorts them.
pub(super) fn cmp_names(src: &str, a: Span, b: Span, format: KeyFormat) -> Ordering {
    let (ta, tb) = (a.text(src), b.text(src));
    if (a.flags | b.flags) & ESCAPED == 0 {
        return cmp_plain(ta, tb, format);
    }
    let ca = CodePoints { s: ta, i: 0 };
    let cb = CodePoints { s: tb, i: 0 };
    match format {
        // Python compares code points.
        KeyFormat::Python => ca.cmp(cb),
        // RFC 8785 compares UTF-16 code units.
        KeyFormat::Jcs => Utf16Units {
            inner: ca,
            pending: None,
        }
        .cmp(Utf16Units {
            inner: cb,
            pending: None,
        }),
    }
}

/// Orders two unescaped strings as `format` sorts them.
fn cmp_plain(a: &str, b: &str, format: KeyFormat) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    match format {
        // UTF-8 byte order is code point order.
        KeyFormat::Python => a.cmp(b),
        // UTF-8 byte order is UTF-16 order except between astral characters (lead byte F0..F4,
        // high surrogate in UTF-16) and U+E000..U+FFFF (lead byte EE or EF), which swap.
        KeyFormat::Jcs => match a.iter().zip(b).position(|(x, y)| x != y) {
            None => a.len().cmp(&b.len()),
            Some(i) => {
                let (x, y) = (
                    a.get(i).copied().unwrap_or(0),
                    b.get(i).copied().unwrap_or(0),
                );
                match (x, y) {
                    (0xf0..=0xff, 0xee..=0xef) => Ordering::Less,
                    (0xee..=0xef, 0xf0..=0xff) => Ordering::Greater,
                    _ => x.cmp(&y),
                }
            }
        },
    }
}

/// The code points of validated string contents, escapes decoded.
struct CodePoints<'a> {
    s: &'a str,
    i: usize,
}

impl Iterator for CodePoints<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        let c = self.s.get(self.i..)?.chars().next()?;
        if c == '\\' {
            let (cp, next) = decode_escape(self.s.as_bytes(), self.i);
            self.i = next;
            Some(cp)
        } else {
            self.i += c.len_utf8();
            Some(u32::from(c))
        }
    }
}

/// The UTF-16 code units of a code point sequence.
struct Utf16Units<I> {
    inner: I,
    pending: Option<u32>,
}

impl<I: Iterator<Item = u32>> Iterator for Utf16Units<I> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if let Some(low) = self.pending.take() {
            return Some(low);
        }
        let cp = self.inner.next()?;
        if cp >= 0x10000 {
            let v = cp - 0x10000;
            self.pending = Some(0xdc00 | (v & 0x3ff));
            Some(0xd800 | (v >> 10))
        } else {
            Some(cp)
        }
    }
}

/// One member of an object being sorted: the big-endian prefix of its name and its node.
pub(super) type Member = (u64, u32);

/// Sorts object members: insertion sort for the small objects request data is made of,
/// heapsort beyond (O(n log n), in place). One routine behind a `dyn` comparator keeps a single
/// copy of sorting code in the wasm module (the standard sorts instantiate about 9 KB per
/// comparator). The comparators are total (ties fall back to node order), so stability is moot.
pub(super) fn sort_members(v: &mut [Member], cmp: &mut dyn FnMut(&Member, &Member) -> Ordering) {
    const SMALL: usize = 16;
    if v.len() <= SMALL {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && cmp(&v[j - 1], &v[j]) == Ordering::Greater {
                v.swap(j - 1, j);
                j -= 1;
            }
        }
        return;
    }
    fn sift_down(
        v: &mut [Member],
        mut root: usize,
        end: usize,
        cmp: &mut dyn FnMut(&Member, &Member) -> Ordering,
    ) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && cmp(&v[child], &v[child + 1]) == Ordering::Less {
                child += 1;
            }
            if cmp(&v[root], &v[child]) != Ordering::Less {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for start in (0..n / 2).rev() {
        sift_down(v, start, n, cmp);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end, cmp);
    }
}

#[cfg(test)]
mod tests {
    use crate::canonical::tests::{jcs, py};

    #[test]
    fn name_order_per_dialect() {
        // UTF-16 order puts astral characters before U+E000..U+FFFF; code point order after.
        let text = "{\"😀\":1,\"\u{ffff}\":2,\"\u{e000}\":3,\"a\":4,\"\u{d7ff}\":5}";
        assert_eq!(
            jcs(text),
            "{\"a\":4,\"\u{d7ff}\":5,\"😀\":1,\"\u{e000}\":3,\"\u{ffff}\":2}"
        );
        assert_eq!(
            py(text),
            r#"{"a": 4, "\ud7ff": 5, "\ue000": 3, "\uffff": 2, "\ud83d\ude00": 1}"#
        );
        // The same with escaped names, and prefixes sorting first.
        let text = r#"{"\ud83d\ude00":1,"\uffff":2,"\ue000":3,"ab":4,"a":5,"":6}"#;
        assert_eq!(
            jcs(text),
            "{\"\":6,\"a\":5,\"ab\":4,\"😀\":1,\"\u{e000}\":3,\"\u{ffff}\":2}"
        );
        assert_eq!(
            py(text),
            r#"{"": 6, "a": 5, "ab": 4, "\ue000": 3, "\uffff": 2, "\ud83d\ude00": 1}"#
        );
        // A lone high surrogate followed by a character vs. the full pair.
        let text = r#"{"\ud83d\ude00":1,"\ud83dz":2}"#;
        assert_eq!(jcs(text), r#"{"\ud83dz":2,"😀":1}"#);
        assert_eq!(py(text), r#"{"\ud83dz": 2, "\ud83d\ude00": 1}"#);
    }
}
