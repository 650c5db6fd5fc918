//! The parser: JSON text to a flat list of nodes, strings and numbers left in place.
//!
//! Every value becomes one [`Node`] in pre-order; a container's node records where its subtree
//! ends. Strings are kept as spans of the input with flags saying what writing them needs;
//! number literals are read by `Parser::number` (in `number.rs`).
//!
//! Hand-written rather than serde_json for exactness and speed, with the measurements and how to
//! repeat them in the module's header (`canonical/mod.rs`, "Why this parser is hand-written").

use std::fmt;

use super::{KeyFormat, MAX_DEPTH};
use crate::error::{Error, Result};

/// The string contains at least one backslash escape.
pub(super) const ESCAPED: u8 = 1;
/// The string contains a byte that Python's `ensure_ascii` escapes (DEL or non-ASCII).
pub(super) const NON_ASCII: u8 = 2;
/// The string contains a character at or above U+E000, whose UTF-8 and UTF-16 orders differ.
pub(super) const SUPPLEMENTARY: u8 = 4;

/// The contents of a string literal (between the quotes) in the input.
#[derive(Clone, Copy, Default)]
pub(super) struct Span {
    start: u32,
    end: u32,
    pub(super) flags: u8,
}

impl Span {
    pub(super) fn text(self, src: &str) -> &str {
        src.get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

#[derive(Clone, Copy)]
pub(super) enum Val {
    Null,
    True,
    False,
    /// An integer literal that prints as its own digits: `src[start..end]` (`-0` spans `0`).
    Int(u32, u32),
    /// A number printed from its shortest digits: `mant` (no trailing zeros) `× 10^(exp - k + 1)`
    /// with `k` the number of digits of `mant`.
    Dec {
        mant: u64,
        exp: i16,
        negative: bool,
    },
    /// Any other number (a float in Python's terms), signed zeros included.
    Num(f64),
    /// A number that overflows to ±Infinity, `src[start..end]`: an error if it is written.
    Overflow(u32, u32),
    Str(Span),
    Array,
    Object,
}

#[derive(Clone, Copy)]
pub(super) struct Node {
    pub(super) val: Val,
    /// The member name when this node is an object member's value.
    pub(super) name: Span,
    /// The index just past this node's subtree (its next sibling, if any).
    pub(super) next: u32,
}

fn invalid(msg: impl fmt::Display) -> Error {
    Error::Unserializable(format!("request data is not valid JSON: {msg}"))
}

/// Why parsing failed and where (byte offsets), kept small so that results stay in registers;
/// it becomes an [`Error`] once, off the hot path.
#[derive(Clone, Copy)]
pub(super) enum Bad {
    Unexpected(u32),
    Trailing(u32),
    TooDeep,
    Number(u32),
    UnicodeEscape(u32),
    Escape(u32),
    Control(u32),
    Unterminated,
    OutOfRange(u32, u32),
}

pub(super) type Parsed<T> = std::result::Result<T, Bad>;

impl Bad {
    #[cold]
    #[inline(never)]
    pub(super) fn into_error(self, src: &str) -> Error {
        match self {
            Bad::Unexpected(at) => match src.get(at as usize..).and_then(|s| s.chars().next()) {
                None => invalid("unexpected end of input"),
                Some(c) => invalid(format_args!("unexpected '{c}' at byte {at}")),
            },
            Bad::Trailing(at) => {
                invalid(format_args!("unexpected text after the value at byte {at}"))
            }
            Bad::TooDeep => Error::Unserializable(format!(
                "request data is nested deeper than {MAX_DEPTH} levels"
            )),
            Bad::Number(at) => invalid(format_args!("bad number at byte {at}")),
            Bad::UnicodeEscape(at) => invalid(format_args!(
                "bad \\u escape at byte {at} (four hex digits expected)"
            )),
            Bad::Escape(at) => invalid(format_args!("bad escape at byte {at}")),
            Bad::Control(at) => invalid(format_args!(
                "unescaped control character in a string at byte {at}"
            )),
            Bad::Unterminated => invalid("unterminated string"),
            Bad::OutOfRange(start, end) => Error::Unserializable(format!(
                "number {} in request data is out of range (it would be Infinity)",
                src.get(start as usize..end as usize).unwrap_or("")
            )),
        }
    }
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) b: &'a [u8],
    pub(super) i: usize,
    nodes: &'a mut Vec<Node>,
    pub(super) format: KeyFormat,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str, nodes: &'a mut Vec<Node>, format: KeyFormat) -> Self {
        Parser {
            src,
            b: src.as_bytes(),
            i: 0,
            nodes,
            format,
        }
    }

    pub(super) fn parse(mut self) -> Result<()> {
        let src = self.src;
        self.document().map_err(|bad| bad.into_error(src))
    }

    fn document(&mut self) -> Parsed<()> {
        self.skip_ws();
        self.value(Span::default(), 0)?;
        self.skip_ws();
        match self.b.get(self.i) {
            None => Ok(()),
            Some(_) => Err(Bad::Trailing(self.i as u32)),
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn unexpected(&self) -> Bad {
        Bad::Unexpected(self.i as u32)
    }

    fn expect(&mut self, byte: u8) -> Parsed<()> {
        if self.b.get(self.i) == Some(&byte) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn push(&mut self, val: Val, name: Span) -> usize {
        let idx = self.nodes.len();
        self.nodes.push(Node {
            val,
            name,
            next: idx as u32 + 1,
        });
        idx
    }

    fn finish(&mut self, idx: usize) {
        let next = self.nodes.len() as u32;
        if let Some(node) = self.nodes.get_mut(idx) {
            node.next = next;
        }
    }

    /// Parses one value (whitespace before it already skipped) inside `depth` containers.
    fn value(&mut self, name: Span, depth: usize) -> Parsed<()> {
        match self.b.get(self.i) {
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(Bad::TooDeep);
                }
                self.i += 1;
                let idx = self.push(Val::Object, name);
                self.skip_ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(self.unexpected());
                        }
                        let member = self.string()?;
                        self.skip_ws();
                        self.expect(b':')?;
                        self.skip_ws();
                        self.value(member, depth + 1)?;
                        self.skip_ws();
                        match self.b.get(self.i) {
                            Some(b',') => {
                                self.i += 1;
                                self.skip_ws();
                            }
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.unexpected()),
                        }
                    }
                }
                self.finish(idx);
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(Bad::TooDeep);
                }
                self.i += 1;
                let idx = self.push(Val::Array, name);
                self.skip_ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.value(Span::default(), depth + 1)?;
                        self.skip_ws();
                        match self.b.get(self.i) {
                            Some(b',') => {
                                self.i += 1;
                                self.skip_ws();
                            }
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.unexpected()),
                        }
                    }
                }
                self.finish(idx);
            }
            Some(b'"') => {
                let s = self.string()?;
                self.push(Val::Str(s), name);
            }
            Some(b'-' | b'0'..=b'9') => {
                let v = self.number()?;
                self.push(v, name);
            }
            Some(b't') => {
                self.literal(b"true")?;
                self.push(Val::True, name);
            }
            Some(b'f') => {
                self.literal(b"false")?;
                self.push(Val::False, name);
            }
            Some(b'n') => {
                self.literal(b"null")?;
                self.push(Val::Null, name);
            }
            _ => return Err(self.unexpected()),
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Parsed<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// Parses a string literal starting at the opening quote; returns its contents.
    #[inline(always)]
    fn string(&mut self) -> Parsed<Span> {
        let start = self.i + 1;
        let mut i = start;
        let mut flags = 0u8;
        loop {
            i = skip_plain(self.b, i);
            match self.b.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(Span {
                        start: start as u32,
                        end: i as u32,
                        flags,
                    });
                }
                Some(b'\\') => {
                    flags |= ESCAPED;
                    match self.b.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') if hex4(self.b, i + 2).is_some() => i += 6,
                        Some(b'u') => return Err(Bad::UnicodeEscape(i as u32)),
                        _ => return Err(Bad::Escape(i as u32)),
                    }
                }
                Some(0x00..=0x1f) => return Err(Bad::Control(i as u32)),
                Some(0xee..=0xff) => {
                    flags |= NON_ASCII | SUPPLEMENTARY;
                    i += 1;
                }
                Some(0x7f..=0xed) => {
                    flags |= NON_ASCII;
                    i += 1;
                }
                Some(_) => i += 1,
                None => return Err(Bad::Unterminated),
            }
        }
    }
}

/// The index of the first byte at or after `i` that is not plain printable ASCII (a quote, a
/// backslash, a control character, DEL or non-ASCII), eight bytes at a time; `b.len()` or
/// the start of the last incomplete word if there is none.
#[inline(always)]
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = b.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_le_bytes(bytes);
        // The usual "has a zero byte" test ((x - 1) & !x & 0x80) for each byte class. It may
        // flag a plain byte after a special one, never miss a special one.
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let special = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w)
            | w
            | w.wrapping_add(ONES);
        if special & HIGH != 0 {
            break;
        }
        i += 8;
    }
    i
}

/// The value of four hex digits at `b[i..i + 4]`.
#[inline]
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = b.get(i..i + 4)?;
    let mut v = 0u32;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u32::from(n);
    }
    Some(v)
}

/// Decodes the escape starting at the backslash `b[i]` of validated string contents.
///
/// Returns the code point (a lone surrogate is returned as itself, 0xD800..=0xDFFF) and the
/// index just past the escape. An escaped surrogate pair is decoded as one code point.
pub(super) fn decode_escape(b: &[u8], i: usize) -> (u32, usize) {
    let cp = match b.get(i + 1) {
        Some(b'b') => 0x08,
        Some(b'f') => 0x0c,
        Some(b'n') => 0x0a,
        Some(b'r') => 0x0d,
        Some(b't') => 0x09,
        Some(b'u') => {
            let Some(hi) = hex4(b, i + 2) else {
                return (u32::from('\u{fffd}'), i + 2);
            };
            if (0xd800..0xdc00).contains(&hi)
                && b.get(i + 6) == Some(&b'\\')
                && b.get(i + 7) == Some(&b'u')
            {
                if let Some(lo) = hex4(b, i + 8) {
                    if (0xdc00..0xe000).contains(&lo) {
                        return (0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00), i + 12);
                    }
                }
            }
            return (hi, i + 6);
        }
        // `\"`, `\\` and `\/` stand for themselves.
        Some(&c) => u32::from(c),
        None => return (u32::from('\\'), i + 1),
    };
    (cp, i + 2)
}

#[cfg(test)]
mod tests {
    use crate::canonical::tests::{is_unserializable, jcs, py};

    #[test]
    fn rejects_bad_input_as_unserializable() {
        let bad = [
            "",
            "   ",
            "nul",
            "tru",
            "{",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\":1}x",
            "1 2",
            "[] []",
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "1e99999999999999999999",
            "123456789012345678901234567890e300",
            "[1.7976931348623159e308]",
            "01",
            "-",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "0x10",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"\\",
            "\"a\tb\"",
            "\"\u{1}\"",
            "'single'",
            "\u{feff}1",
            "[\"a\"\u{a0}]",
        ];
        for text in bad {
            assert!(is_unserializable(text), "should reject {text:?}");
        }
    }

    #[test]
    fn nesting_limit_is_128() {
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(jcs(&ok), ok);
        let too_deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(is_unserializable(&too_deep));
        let objects = format!("{}1{}", "{\"a\":".repeat(129), "}".repeat(129));
        assert!(is_unserializable(&objects));
        let objects = format!("{}1{}", "{\"a\":".repeat(128), "}".repeat(128));
        assert_eq!(jcs(&objects), objects);
        // Deep but unbalanced input fails without running out of stack.
        assert!(is_unserializable(&"[".repeat(100_000)));
    }

    #[test]
    fn whitespace_and_literals() {
        let text = " \r\n\t{ \"b\" : [ true , false , null ] , \"a\" : { } , \"c\" : [ ] } \n";
        assert_eq!(jcs(text), r#"{"a":{},"b":[true,false,null],"c":[]}"#);
        assert_eq!(py(text), r#"{"a": {}, "b": [true, false, null], "c": []}"#);
    }
}
