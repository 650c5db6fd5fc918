//! The glob matcher (`cachette::glob::matches`) against a plain recursive reading of Redis's
//! `stringmatchlen` (util.c), and `glob::escape` against string equality.
//!
//! Input: the first byte is the pattern's length (up to 127 bytes, or the rest of the input), then
//! the pattern, then the string (its first 128 bytes), so that the reference stays fast.

#![no_main]

use cachette::glob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (pattern, string) = rest.split_at(usize::from(n & 0x7f).min(rest.len()));
    let string = &string[..string.len().min(128)];
    assert_eq!(
        glob::matches(pattern, string),
        reference(pattern, string),
        "pattern {:?} string {:?}",
        pattern.escape_ascii().to_string(),
        string.escape_ascii().to_string()
    );
    // An escaped literal matches itself and nothing else.
    let literal = String::from_utf8_lossy(string);
    let escaped = glob::escape(&literal);
    assert!(
        glob::matches(escaped.as_bytes(), literal.as_bytes()),
        "{escaped:?} does not match {literal:?}"
    );
    assert_eq!(
        glob::matches(escaped.as_bytes(), pattern),
        pattern == literal.as_bytes(),
        "{escaped:?} against {:?}",
        pattern.escape_ascii().to_string()
    );
});

/// Whether Redis's `KEYS pattern` lists the key `string`.
fn reference(pattern: &[u8], string: &[u8]) -> bool {
    // `KEYS *` lists every key without matching.
    if pattern == b"*" {
        return true;
    }
    // stringmatchlen's loop never starts on an empty string: only the empty pattern matches it.
    if string.is_empty() {
        return pattern.is_empty();
    }
    Reference {
        memo: vec![None; (pattern.len() + 1) * (string.len() + 1)],
        width: string.len() + 1,
    }
    .matches(pattern, string)
}

/// One element of a pattern.
enum Element {
    /// `*`: any run of bytes.
    Star,
    /// `?`: any byte.
    Any,
    /// A byte matched exactly: a plain byte, `\x`, or a lone `\` at the end of the pattern.
    Byte(u8),
    /// `[...]` or `[^...]`: a set of bytes. Unterminated, it runs to the end of the pattern.
    Class { negate: bool, items: Vec<Item> },
}

enum Item {
    Byte(u8),
    /// `a-z` or `z-a`: bounds compared as C's signed `char`, in either order.
    Range(i8, i8),
}

/// The element at the start of `p` (not empty) and its length in bytes.
fn element(p: &[u8]) -> (Element, usize) {
    match p {
        [b'*', ..] => (Element::Star, 1),
        [b'?', ..] => (Element::Any, 1),
        [b'\\', c, ..] => (Element::Byte(*c), 2),
        [b'[', rest @ ..] => {
            let (negate, mut i) = match rest {
                [b'^', ..] => (true, 2),
                _ => (false, 1),
            };
            let mut items = Vec::new();
            loop {
                match &p[i..] {
                    // No `]`: the class ends with the pattern.
                    [] => return (Element::Class { negate, items }, p.len()),
                    [b'\\', c, ..] => {
                        items.push(Item::Byte(*c));
                        i += 2;
                    }
                    [b']', ..] => return (Element::Class { negate, items }, i + 1),
                    [lo, b'-', hi, ..] => {
                        items.push(Item::Range(*lo as i8, *hi as i8));
                        i += 3;
                    }
                    [c, ..] => {
                        items.push(Item::Byte(*c));
                        i += 1;
                    }
                }
            }
        }
        [c, ..] => (Element::Byte(*c), 1),
        [] => unreachable!("element of an empty pattern"),
    }
}

impl Element {
    /// Whether this single-byte element matches `c`.
    fn accepts(&self, c: u8) -> bool {
        match self {
            Element::Star | Element::Any => true,
            Element::Byte(b) => *b == c,
            Element::Class { negate, items } => {
                let hit = items.iter().any(|item| match *item {
                    Item::Byte(b) => b == c,
                    Item::Range(lo, hi) => (lo.min(hi)..=lo.max(hi)).contains(&(c as i8)),
                });
                hit != *negate
            }
        }
    }
}

/// The matcher proper, memoized on (pattern suffix, string suffix) so that many `*` stay cheap.
struct Reference {
    /// The result for each (pattern suffix length, string suffix length), row by row.
    memo: Vec<Option<bool>>,
    width: usize,
}

impl Reference {
    /// Whether `p` matches all of `s`, which is never empty.
    fn matches(&mut self, p: &[u8], s: &[u8]) -> bool {
        let key = p.len() * self.width + s.len();
        if let Some(known) = self.memo[key] {
            return known;
        }
        let result = self.compute(p, s);
        self.memo[key] = Some(result);
        result
    }

    fn compute(&mut self, p: &[u8], s: &[u8]) -> bool {
        if p.is_empty() {
            return false;
        }
        let (element, len) = element(p);
        let rest = &p[len..];
        if let Element::Star = element {
            // A run of `*` is one star; at the end of the pattern it takes the rest of the string.
            let rest = &rest[rest.iter().take_while(|&&b| b == b'*').count()..];
            // Otherwise it takes 0.. bytes, and the rest of the pattern at least one.
            return rest.is_empty() || (0..s.len()).any(|k| self.matches(rest, &s[k..]));
        }
        if !element.accepts(s[0]) {
            return false;
        }
        match &s[1..] {
            // The string is used up: only `*`s may be left of the pattern.
            [] => rest.iter().all(|&b| b == b'*'),
            s => self.matches(rest, s),
        }
    }
}
