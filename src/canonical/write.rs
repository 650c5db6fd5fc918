//! The writer: a parsed document in a dialect's layout, member names sorted, strings escaped as
//! the dialect escapes them.

use std::cmp::Ordering;

use super::number::{push_digits, push_number, u64_digits};
use super::order::{cmp_names, prefix, sort_members};
use super::parse::{
    decode_escape, Bad, Node, Parsed, Span, Val, ESCAPED, NON_ASCII, SUPPLEMENTARY,
};
use super::KeyFormat;

/// Writes the document `nodes` (parsed from `src`, root first) to `out` as `format` prints it;
/// `members` is a stack of sort space, left as it was found.
///
/// A number that overflows to ±Infinity is `Bad::OutOfRange` if it is written (a later
/// duplicate member name may have replaced it); `out` then holds a partial text.
pub(super) fn document(
    src: &str,
    nodes: &[Node],
    members: &mut Vec<(u64, u32)>,
    format: KeyFormat,
    out: &mut String,
) -> Parsed<()> {
    let mut writer = Writer {
        src,
        nodes,
        members,
        format,
        out,
        overflow: None,
    };
    writer.value(0);
    match writer.overflow {
        Some((start, end)) => Err(Bad::OutOfRange(start, end)),
        None => Ok(()),
    }
}

struct Writer<'a> {
    src: &'a str,
    nodes: &'a [Node],
    members: &'a mut Vec<(u64, u32)>,
    format: KeyFormat,
    out: &'a mut String,
    /// The first number written that overflows to ±Infinity, which JSON cannot carry.
    overflow: Option<(u32, u32)>,
}

impl Writer<'_> {
    fn value(&mut self, idx: usize) {
        let Some(&node) = self.nodes.get(idx) else {
            return;
        };
        match node.val {
            Val::Null => self.out.push_str("null"),
            Val::True => self.out.push_str("true"),
            Val::False => self.out.push_str("false"),
            Val::Int(start, end) => self
                .out
                .push_str(self.src.get(start as usize..end as usize).unwrap_or("0")),
            Val::Num(x) => push_number(x, self.format, self.out),
            Val::Overflow(start, end) => {
                self.overflow.get_or_insert((start, end));
            }
            Val::Dec {
                mant,
                exp,
                negative,
            } => {
                let mut buf = [0u8; 20];
                let digits = u64_digits(mant, &mut buf);
                push_digits(digits, i32::from(exp), negative, self.format, self.out);
            }
            Val::Str(span) => self.string(span),
            Val::Array => {
                self.out.push('[');
                let mut child = idx + 1;
                let end = node.next as usize;
                while child < end {
                    if child > idx + 1 {
                        self.item_separator();
                    }
                    self.value(child);
                    child = self.next_sibling(child);
                }
                self.out.push(']');
            }
            Val::Object => self.object(idx, node.next as usize),
        }
    }

    #[inline]
    fn next_sibling(&self, idx: usize) -> usize {
        self.nodes.get(idx).map_or(usize::MAX, |n| n.next as usize)
    }

    fn object(&mut self, idx: usize, end: usize) {
        let (src, nodes, format) = (self.src, self.nodes, self.format);
        // Names whose order is not plain byte order need the general comparison.
        let slow_flags = match format {
            KeyFormat::Jcs => ESCAPED | SUPPLEMENTARY,
            KeyFormat::Python => ESCAPED,
        };
        let base = self.members.len();
        let mut slow = false;
        let mut child = idx + 1;
        while let Some(node) = nodes.get(child).filter(|_| child < end) {
            slow |= node.name.flags & slow_flags != 0;
            let name = node.name.text(src).as_bytes();
            self.members.push((prefix(name), child as u32));
            child = node.next as usize;
        }
        let top = self.members.len();
        let name = |m: u32| nodes.get(m as usize).map_or(Span::default(), |n| n.name);
        let mut duplicates = false;
        if let Some(members) = self.members.get_mut(base..top) {
            // Ties (duplicate names) keep input order, so the last duplicate sorts last.
            if slow {
                sort_members(
                    members,
                    &mut |a, b| match cmp_names(src, name(a.1), name(b.1), format) {
                        Ordering::Equal => {
                            duplicates = true;
                            a.1.cmp(&b.1)
                        }
                        other => other,
                    },
                );
            } else {
                // Byte order: the big-endian prefixes decide unless they are equal.
                sort_members(members, &mut |a, b| {
                    a.0.cmp(&b.0).then_with(|| {
                        let (na, nb) = (name(a.1).text(src), name(b.1).text(src));
                        match na.as_bytes().cmp(nb.as_bytes()) {
                            Ordering::Equal => {
                                duplicates = true;
                                a.1.cmp(&b.1)
                            }
                            other => other,
                        }
                    })
                });
            }
        }
        self.out.push('{');
        let mut first = true;
        for j in base..top {
            let Some(&(_, m)) = self.members.get(j) else {
                break;
            };
            if duplicates && j + 1 < top {
                if let Some(&(_, later)) = self.members.get(j + 1) {
                    if cmp_names(src, name(m), name(later), format) == Ordering::Equal {
                        // A later member has the same name: the last one wins.
                        continue;
                    }
                }
            }
            if !first {
                self.item_separator();
            }
            first = false;
            self.string(name(m));
            self.out.push(':');
            if format == KeyFormat::Python {
                self.out.push(' ');
            }
            self.value(m as usize);
        }
        self.out.push('}');
        self.members.truncate(base);
    }

    #[inline]
    fn item_separator(&mut self) {
        self.out.push(',');
        if self.format == KeyFormat::Python {
            self.out.push(' ');
        }
    }

    fn string(&mut self, span: Span) {
        let raw = span.text(self.src);
        self.out.push('"');
        if span.flags & ESCAPED != 0 {
            push_escaped(raw, self.format, self.out);
        } else if self.format == KeyFormat::Jcs || span.flags & NON_ASCII == 0 {
            // Valid JSON string contents without escapes hold no quote, backslash or control
            // character, so they are already canonical (in Python only when all ASCII).
            self.out.push_str(raw);
        } else {
            push_plain(raw, self.format, self.out);
        }
        self.out.push('"');
    }
}

/// Appends `s` as a JSON string literal, escaped as `JSON.stringify` escapes it (the JCS
/// dialect's escaping).
pub(crate) fn push_json_string(s: &str, out: &mut String) {
    out.push('"');
    push_plain(s, KeyFormat::Jcs, out);
    out.push('"');
}

/// Writes validated string contents that contain escapes.
#[inline(never)]
fn push_escaped(raw: &str, format: KeyFormat, out: &mut String) {
    let b = raw.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < b.len() {
        if b.get(i) != Some(&b'\\') {
            i += 1;
            continue;
        }
        let text = raw.get(run..i).unwrap_or("");
        match format {
            KeyFormat::Jcs => out.push_str(text),
            KeyFormat::Python => push_plain(text, format, out),
        }
        let (cp, next) = decode_escape(b, i);
        push_code_point(cp, format, out);
        i = next;
        run = next;
    }
    let text = raw.get(run..).unwrap_or("");
    match format {
        KeyFormat::Jcs => out.push_str(text),
        KeyFormat::Python => push_plain(text, format, out),
    }
}

/// Writes the contents of an arbitrary (unescaped) string, escaping as `format` requires.
#[inline(never)]
fn push_plain(s: &str, format: KeyFormat, out: &mut String) {
    let b = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let special = match format {
            KeyFormat::Jcs => matches!(c, 0x00..=0x1f | b'"' | b'\\'),
            KeyFormat::Python => !matches!(c, 0x20..=0x7e) || c == b'"' || c == b'\\',
        };
        if !special {
            i += 1;
            continue;
        }
        out.push_str(s.get(run..i).unwrap_or(""));
        match s.get(i..).and_then(|rest| rest.chars().next()) {
            Some(ch) => {
                push_code_point(u32::from(ch), format, out);
                i += ch.len_utf8();
            }
            None => i += 1,
        }
        run = i;
    }
    out.push_str(s.get(run..).unwrap_or(""));
}

/// Writes one code point of a string's contents (a lone surrogate is 0xD800..=0xDFFF).
fn push_code_point(cp: u32, format: KeyFormat, out: &mut String) {
    match cp {
        0x22 => out.push_str("\\\""),
        0x5c => out.push_str("\\\\"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        0x0a => out.push_str("\\n"),
        0x0d => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x00..=0x1f | 0xd800..=0xdfff => push_u_escape(cp, out),
        0x7f.. if format == KeyFormat::Python => {
            if cp >= 0x10000 {
                let v = cp - 0x10000;
                push_u_escape(0xd800 | (v >> 10), out);
                push_u_escape(0xdc00 | (v & 0x3ff), out);
            } else {
                push_u_escape(cp, out);
            }
        }
        _ => out.push(char::from_u32(cp).unwrap_or('\u{fffd}')),
    }
}

/// Writes `\uXXXX` with lowercase hex digits.
fn push_u_escape(unit: u32, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[((unit >> shift) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use crate::canonical::tests::{is_unserializable, jcs, py};

    #[test]
    fn strings_escape_per_dialect() {
        let text = r#""q\" b\\ s\/ \b\f\n\r\t \u0000\u001F\u007f é 😀 \u2028 \uE000 \u00e9""#;
        assert_eq!(
            jcs(text),
            "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0000\\u001f\u{7f} é 😀 \u{2028} \u{e000} é\""
        );
        assert_eq!(
            py(text),
            r#""q\" b\\ s/ \b\f\n\r\t \u0000\u001f\u007f \u00e9 \ud83d\ude00 \u2028 \ue000 \u00e9""#
        );
        // Raw (unescaped) non-ASCII and DEL.
        assert_eq!(jcs("\"é\u{7f}😀\""), "\"é\u{7f}😀\"");
        assert_eq!(py("\"é\u{7f}😀\""), r#""\u00e9\u007f\ud83d\ude00""#);
    }

    #[test]
    fn lone_surrogates_round_trip_as_escapes() {
        assert_eq!(jcs(r#""\ud800""#), r#""\ud800""#);
        assert_eq!(py(r#""\uD800""#), r#""\ud800""#);
        assert_eq!(jcs(r#""a\udc00b\ud83dX""#), r#""a\udc00b\ud83dX""#);
        // A pair written as escapes is one character.
        assert_eq!(jcs(r#""\ud83d\ude00""#), "\"😀\"");
        assert_eq!(py(r#""\ud83d\ude00""#), r#""\ud83d\ude00""#);
        // Low before high is two lone surrogates.
        assert_eq!(jcs(r#""\ude00\ud83d""#), r#""\ude00\ud83d""#);
    }

    #[test]
    fn duplicate_names_last_wins() {
        assert_eq!(jcs(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        assert_eq!(
            py(r#"{"a":1,"\u0061":2,"b":0,"a":{"x":[1]}}"#),
            r#"{"a": {"x": [1]}, "b": 0}"#
        );
        assert_eq!(
            jcs(r#"{"a":[{"z":1,"z":2}],"a":[{"y":1,"y":2}]}"#),
            r#"{"a":[{"y":2}]}"#
        );
        // A number that overflows is refused only if it survives: JSON.parse and json.loads
        // both read it as Infinity, and a later duplicate replaces it.
        assert_eq!(jcs(r#"{"a":1e400,"a":1.5}"#), r#"{"a":1.5}"#);
        assert_eq!(py(r#"{"a":[1e400],"a":1.5}"#), r#"{"a": 1.5}"#);
        assert!(is_unserializable(r#"{"a":1.5,"a":-1e400}"#));
    }
}
