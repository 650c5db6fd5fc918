//! Request keys and canonical JSON.
//!
//! A request key is `{version}:{namespace}:{md5}`, where `md5` is 32 lowercase hex digits of the
//! MD5 of the *canonical JSON* of the request data. Two dialects of canonical JSON are offered, so
//! keys can be shared with other services:
//!
//! - [`KeyFormat::Jcs`] (the default) is RFC 8785, the JSON Canonicalization Scheme, as the
//!   `canonicalize` npm package writes it: members sorted by the UTF-16 code units of their
//!   names, strings escaped as `JSON.stringify` escapes them, numbers as ECMAScript's
//!   `Number.prototype.toString`, no whitespace.
//! - [`KeyFormat::Python`] is byte-identical to Python 3's `json.dumps(data, sort_keys=True)`:
//!   `", "` and `": "` separators, `ensure_ascii` escaping, keys sorted by code point, and
//!   floats as `repr(float)`.
//!
//! Numbers follow each peer's own number model:
//!
//! - **JCS** reads every number as a double (JavaScript has one number type) and prints it as
//!   ECMAScript's `Number.prototype.toString` does: `5.0` → `5`, `-0` → `0`, `1e2` → `100`,
//!   `10000000000000002` stays `10000000000000002`, `1e400` is refused.
//! - **Python** prints exactly what Python 3 prints for `json.dumps(json.loads(text),
//!   sort_keys=True)`: a number written without fraction or exponent is a Python int and prints
//!   as its digits at any size (`-0` → `0`); any other number is a float and prints as
//!   `repr(float)` (`5.0`, `100.0`, `-0.0`, `1e-07`, `1e+16`, `1.0000000000000002e+16`). A float
//!   that overflows to infinity (`1e400`) is refused, where Python would print the non-JSON
//!   `Infinity`. From JavaScript the text is `JSON.stringify(data)`, so a JS value's Python key is
//!   the key a Python service computes for the JSON that JavaScript sends.
//!
//! # Input
//!
//! Input is JSON text (RFC 8259), typically what JavaScript's `JSON.stringify` produced; any
//! insignificant whitespace is accepted. Rejected with [`Error::Unserializable`]: anything that
//! is not exactly one JSON value (trailing text included), numbers that overflow to ±Infinity
//! (such as `1e400`, and in JCS also an integer of more than 309 digits; numbers that underflow
//! become a zero of their sign), nesting deeper than
//! [`MAX_DEPTH`] levels, raw control characters in strings and malformed escapes.
//!
//! # Choices that both peers agree on
//!
//! - **Duplicate member names**: the last occurrence wins, as in `JSON.parse` and Python's
//!   `json.loads`. Names are compared after unescaping, so `"a"` and `"\u0061"` are duplicates.
//! - **Lone surrogates**: `"\ud800"` (which `JSON.stringify` writes for a string holding a lone
//!   surrogate) is accepted and kept as that UTF-16 code unit; both dialects write it back as a
//!   lowercase `\udxxx` escape, which is what `JSON.stringify` and Python's `json.dumps` both do.
//!   An escaped high surrogate followed directly by an escaped low surrogate is one character,
//!   as both peers read it. When sorting, JCS compares UTF-16 code units and Python compares code
//!   points (a lone surrogate is then its own code point), exactly as the peers do. (RFC 8785
//!   itself expects well-formed I-JSON; accepting lone surrogates follows what the JavaScript
//!   side actually produces.)
//!
//! Floats print with the shortest digits that read back as the same double (ECMAScript's and
//! Python's `repr` rule, including ties going to the even digit). Number formatting follows
//! ECMAScript exactly: fixed notation for 1e-6 ≤ |x| < 1e21 (so `1e-7` prints as `1e-7`, and
//! `0.000001` stays fixed); Python's `repr` uses scientific notation below 1e-4 and from 1e16
//! (`1e-05`, `1e+16`).
//!
//! # Performance
//!
//! Parsing builds a flat list of nodes (no allocation per value) in a per-thread buffer that is
//! reused from call to call; object members are sorted as (8-byte prefix, node) pairs and
//! written straight from the input. Strings without escapes are scanned eight bytes at a time
//! and copied verbatim where the dialect allows; numbers with up to 15 significant digits are
//! re-laid from their own digits without float formatting. [`request_key_into`] additionally
//! reuses caller-owned buffers, so a warm call allocates nothing.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::md5::md5_hex_into;

/// The deepest nesting of arrays and objects accepted in request data.
pub const MAX_DEPTH: usize = 128;

/// The longest version or namespace segment accepted, in bytes.
pub const MAX_SEGMENT_LEN: usize = 256;

/// `Number.MAX_SAFE_INTEGER`, 2^53 − 1.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Node buffers larger than this many nodes (32 bytes each) are not kept between calls.
const MAX_RETAINED_NODES: usize = 1 << 12;

/// Canonical JSON dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyFormat {
    /// RFC 8785 (JSON Canonicalization Scheme), as the `canonicalize` npm package writes it.
    #[default]
    Jcs,
    /// Python 3's `json.dumps(data, sort_keys=True)`, byte for byte.
    Python,
}

impl KeyFormat {
    /// The option value naming this format: `"jcs"` or `"python"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFormat::Jcs => "jcs",
            KeyFormat::Python => "python",
        }
    }
}

impl FromStr for KeyFormat {
    type Err = Error;

    /// Parses `"jcs"` or `"python"` (exactly); anything else is [`Error::InvalidOptions`].
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jcs" => Ok(KeyFormat::Jcs),
            "python" => Ok(KeyFormat::Python),
            other => Err(Error::InvalidOptions(format!(
                "keyFormat must be \"jcs\" or \"python\", got \"{other}\""
            ))),
        }
    }
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a version or namespace segment of a request key.
///
/// `what` names the segment in the error (`"version"` or `"namespace"`). A segment must be
/// non-empty, at most [`MAX_SEGMENT_LEN`] bytes long and free of `:`; otherwise the result is
/// [`Error::InvalidKey`].
pub fn validate_segment(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        Err(Error::InvalidKey(format!("{what} must not be empty")))
    } else if s.len() > MAX_SEGMENT_LEN {
        Err(Error::InvalidKey(format!(
            "{what} is {} bytes long; at most {MAX_SEGMENT_LEN} bytes are allowed",
            s.len()
        )))
    } else if s.contains(':') {
        Err(Error::InvalidKey(format!(
            "{what} must not contain ':', got \"{s}\""
        )))
    } else {
        Ok(())
    }
}

/// The request key `{version}:{namespace}:{md5 of canonical JSON of data_json}`.
///
/// ```
/// use cachette::key::{request_key, KeyFormat};
/// let key = request_key("v1", "topics", r#"{"topic":"Python Programming"}"#, KeyFormat::Python)?;
/// assert_eq!(key, "v1:topics:afc5c4f25dbfab7559ccff1975be8899");
/// # Ok::<(), cachette::Error>(())
/// ```
///
/// Errors: [`Error::InvalidKey`] for a bad segment (see [`validate_segment`]),
/// [`Error::Unserializable`] for data that is not acceptable JSON text.
pub fn request_key(
    version: &str,
    namespace: &str,
    data_json: &str,
    format: KeyFormat,
) -> Result<String> {
    let mut scratch = String::with_capacity(data_json.len() + 16);
    let mut out = String::with_capacity(version.len() + namespace.len() + 34);
    request_key_into(
        version,
        namespace,
        data_json,
        format,
        &mut scratch,
        &mut out,
    )?;
    Ok(out)
}

/// [`request_key`] writing into caller-owned buffers, for hot paths.
///
/// The key is **appended** to `out`; `scratch` is cleared and receives the canonical JSON (its
/// contents afterwards are unspecified). With warm buffers this allocates nothing. On error
/// `out` is left as it was.
pub fn request_key_into(
    version: &str,
    namespace: &str,
    data_json: &str,
    format: KeyFormat,
    scratch: &mut String,
    out: &mut String,
) -> Result<()> {
    validate_segment("version", version)?;
    validate_segment("namespace", namespace)?;
    scratch.clear();
    canonicalize_into(data_json, format, scratch)?;
    out.reserve(version.len() + namespace.len() + 34);
    out.push_str(version);
    out.push(':');
    out.push_str(namespace);
    out.push(':');
    md5_hex_into(scratch.as_bytes(), out);
    Ok(())
}

/// The canonical JSON of `json_text` in `format`.
///
/// ```
/// use cachette::key::{canonical_json, KeyFormat};
/// let text = r#"{"b":[1.0,"é"],"a":null}"#;
/// assert_eq!(canonical_json(text, KeyFormat::Jcs)?, r#"{"a":null,"b":[1,"é"]}"#);
/// assert_eq!(canonical_json(text, KeyFormat::Python)?, r#"{"a": null, "b": [1.0, "\u00e9"]}"#);
/// # Ok::<(), cachette::Error>(())
/// ```
pub fn canonical_json(json_text: &str, format: KeyFormat) -> Result<String> {
    let mut out = String::with_capacity(json_text.len() + 16);
    canonicalize_into(json_text, format, &mut out)?;
    Ok(out)
}

/// Appends the canonical JSON of `json_text` in `format` to `out`.
///
/// On error ([`Error::Unserializable`]) `out` is left as it was.
pub fn canonicalize_into(json_text: &str, format: KeyFormat, out: &mut String) -> Result<()> {
    if u32::try_from(json_text.len()).is_err() {
        return Err(Error::Unserializable(
            "request data is too large to canonicalize".to_owned(),
        ));
    }
    let start = out.len();
    // This thread's buffers, or fresh ones if they are unavailable (re-entered or torn down).
    let mut result = None;
    let _ = SCRATCH.try_with(|cell| {
        if let Ok(mut scratch) = cell.try_borrow_mut() {
            result = Some(canonicalize_with(&mut scratch, json_text, format, out));
            if scratch.nodes.capacity() > MAX_RETAINED_NODES {
                *scratch = Scratch::default();
            }
        }
    });
    let result = match result {
        Some(result) => result,
        None => canonicalize_with(&mut Scratch::default(), json_text, format, out),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn canonicalize_with(
    scratch: &mut Scratch,
    json_text: &str,
    format: KeyFormat,
    out: &mut String,
) -> Result<()> {
    scratch.nodes.clear();
    scratch.members.clear();
    Parser::new(json_text, &mut scratch.nodes, format).parse()?;
    out.reserve(json_text.len());
    let mut writer = Writer {
        src: json_text,
        nodes: &scratch.nodes,
        members: &mut scratch.members,
        format,
        out,
        overflow: None,
    };
    writer.value(0);
    match writer.overflow {
        Some((start, end)) => Err(Bad::OutOfRange(start, end).into_error(json_text)),
        None => Ok(()),
    }
}

/// The canonical JSON of a `serde_json::Value` in `format`.
///
/// Gives the same text as [`canonical_json`] of the value's JSON text. Non-finite numbers (which
/// a `Value` cannot normally hold) and nesting deeper than [`MAX_DEPTH`] are
/// [`Error::Unserializable`].
#[cfg(feature = "serde")]
pub fn canonical_json_value(value: &serde_json::Value, format: KeyFormat) -> Result<String> {
    let mut out = String::new();
    write_serde_value(value, format, 0, &mut out)?;
    Ok(out)
}

#[cfg(feature = "serde")]
fn write_serde_value(
    value: &serde_json::Value,
    format: KeyFormat,
    depth: usize,
    out: &mut String,
) -> Result<()> {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // An integer is a Python int: its digits, at any size. JCS reads every number as a double.
        Value::Number(n) if format == KeyFormat::Python && (n.is_i64() || n.is_u64()) => {
            out.push_str(&n.to_string());
        }
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() => push_number(x, format, out),
            _ => {
                return Err(Error::Unserializable(format!(
                    "number {n} cannot be represented as a finite double"
                )))
            }
        },
        Value::String(s) => {
            out.push('"');
            push_plain(s, format, out);
            out.push('"');
        }
        Value::Array(items) => {
            check_depth(depth)?;
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(item_separator(format));
                }
                write_serde_value(item, format, depth + 1, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            check_depth(depth)?;
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| cmp_plain(a.0, b.0, format));
            out.push('{');
            for (n, (name, item)) in members.into_iter().enumerate() {
                if n > 0 {
                    out.push_str(item_separator(format));
                }
                out.push('"');
                push_plain(name, format, out);
                out.push('"');
                out.push_str(name_separator(format));
                write_serde_value(item, format, depth + 1, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// `Err` when a container at `depth` enclosing containers would exceed [`MAX_DEPTH`].
#[cfg(feature = "serde")]
fn check_depth(depth: usize) -> Result<()> {
    if depth >= MAX_DEPTH {
        Err(Error::Unserializable(format!(
            "request data is nested deeper than {MAX_DEPTH} levels"
        )))
    } else {
        Ok(())
    }
}

#[cfg(feature = "serde")]
fn item_separator(format: KeyFormat) -> &'static str {
    match format {
        KeyFormat::Jcs => ",",
        KeyFormat::Python => ", ",
    }
}

#[cfg(feature = "serde")]
fn name_separator(format: KeyFormat) -> &'static str {
    match format {
        KeyFormat::Jcs => ":",
        KeyFormat::Python => ": ",
    }
}

// ---------------------------------------------------------------------------------------------
// Scratch buffers
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Scratch {
    /// The parsed document, in pre-order.
    nodes: Vec<Node>,
    /// A stack of object members (sort prefix, node index) being sorted and written.
    members: Vec<(u64, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// The string contains at least one backslash escape.
const ESCAPED: u8 = 1;
/// The string contains a byte that Python's `ensure_ascii` escapes (DEL or non-ASCII).
const NON_ASCII: u8 = 2;
/// The string contains a character at or above U+E000, whose UTF-8 and UTF-16 orders differ.
const SUPPLEMENTARY: u8 = 4;

/// The contents of a string literal (between the quotes) in the input.
#[derive(Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
    flags: u8,
}

impl Span {
    fn text(self, src: &str) -> &str {
        src.get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

#[derive(Clone, Copy)]
enum Val {
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
struct Node {
    val: Val,
    /// The member name when this node is an object member's value.
    name: Span,
    /// The index just past this node's subtree (its next sibling, if any).
    next: u32,
}

fn invalid(msg: impl fmt::Display) -> Error {
    Error::Unserializable(format!("request data is not valid JSON: {msg}"))
}

/// Why parsing failed and where (byte offsets), kept small so that results stay in registers;
/// it becomes an [`Error`] once, off the hot path.
#[derive(Clone, Copy)]
enum Bad {
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

type Parsed<T> = std::result::Result<T, Bad>;

impl Bad {
    #[cold]
    #[inline(never)]
    fn into_error(self, src: &str) -> Error {
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

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    nodes: &'a mut Vec<Node>,
    format: KeyFormat,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, nodes: &'a mut Vec<Node>, format: KeyFormat) -> Self {
        Parser {
            src,
            b: src.as_bytes(),
            i: 0,
            nodes,
            format,
        }
    }

    fn parse(mut self) -> Result<()> {
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

    fn number(&mut self) -> Parsed<Val> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        // The significant digits (without leading zeros) while they fit in a u64:
        // the value is `mant × 10^(scale + exponent)` when `sig <= 19`.
        let mut mant: u64 = 0;
        let mut sig = 0usize;
        let mut scale: i32 = 0;
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(&d @ b'0'..=b'9') = b.get(i) {
                    sig += 1;
                    if sig <= 19 {
                        mant = mant * 10 + u64::from(d - b'0');
                    }
                    i += 1;
                }
            }
            _ => return Err(Bad::Number(start as u32)),
        }
        let int_digits = i - int_start;
        let mut plain = true;
        if b.get(i) == Some(&b'.') {
            plain = false;
            i += 1;
            if !matches!(b.get(i), Some(b'0'..=b'9')) {
                return Err(Bad::Number(start as u32));
            }
            while let Some(&d @ b'0'..=b'9') = b.get(i) {
                if sig == 0 && d == b'0' {
                    scale = scale.saturating_sub(1);
                } else {
                    sig += 1;
                    if sig <= 19 {
                        mant = mant * 10 + u64::from(d - b'0');
                        scale -= 1;
                    }
                }
                i += 1;
            }
        }
        let mut exponent: i32 = 0;
        if let Some(b'e' | b'E') = b.get(i) {
            plain = false;
            i += 1;
            let exp_negative = b.get(i) == Some(&b'-');
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !matches!(b.get(i), Some(b'0'..=b'9')) {
                return Err(Bad::Number(start as u32));
            }
            while let Some(&d @ b'0'..=b'9') = b.get(i) {
                exponent = (exponent * 10 + i32::from(d - b'0')).min(100_000);
                i += 1;
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        self.i = i;
        // An integer literal prints as its own digits (`-0` as `0`): in JCS while it is exactly
        // a double's shortest form (at most 15 digits), in Python at any size (a Python int).
        if plain && (int_digits <= 15 || self.format == KeyFormat::Python) {
            let from = if negative && int_digits == 1 && b.get(int_start) == Some(&b'0') {
                int_start
            } else {
                start
            };
            return Ok(Val::Int(from as u32, i as u32));
        }

        let text = self.src.get(start..i).unwrap_or("");
        let power = scale.saturating_add(exponent);
        let exact = if sig <= 15 && (-22..=22).contains(&power) {
            // Both the digits and the power of ten are exact doubles, so one correctly rounded
            // operation gives the correctly rounded value (Clinger's fast path).
            let m = mant as f64;
            let p = POW10
                .get(power.unsigned_abs() as usize)
                .copied()
                .unwrap_or(1.0);
            Some(if power >= 0 { m * p } else { m / p })
        } else {
            None
        };
        let magnitude = match exact {
            Some(x) => x,
            None => match parse_f64(text) {
                Some(x) => x.abs(),
                None => return Err(Bad::Number(start as u32)),
            },
        };
        if !magnitude.is_finite() {
            // Refused only if it is written: a later duplicate name may still replace it, as in
            // `JSON.parse` and `json.loads`.
            return Ok(Val::Overflow(start as u32, i as u32));
        }
        let x = if negative { -magnitude } else { magnitude };
        if magnitude == 0.0 {
            return Ok(Val::Num(x));
        }
        if sig <= 15 && magnitude >= f64::MIN_POSITIVE {
            // At most 15 significant digits of a normal double are its unique shortest
            // round-trip form (DBL_DIG = 15), so they print as they are.
            // (A normal double keeps `power` within a few hundred.)
            let mut power = power;
            while mant != 0 && mant % 10 == 0 {
                mant /= 10;
                power += 1;
            }
            let digits = count_digits(mant) as i32;
            return Ok(Val::Dec {
                mant,
                exp: (power + digits - 1) as i16,
                negative,
            });
        }
        Ok(Val::Num(x))
    }
}

/// Exact powers of ten as doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn count_digits(mut n: u64) -> usize {
    let mut k = 1;
    while n >= 10 {
        n /= 10;
        k += 1;
    }
    k
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
fn decode_escape(b: &[u8], i: usize) -> (u32, usize) {
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

// ---------------------------------------------------------------------------------------------
// Ordering of member names
// ---------------------------------------------------------------------------------------------

/// The first eight bytes of a name as a big-endian number (zero-padded), which orders like the
/// bytes themselves: a name is never padded against a zero byte, as names without escapes hold
/// no control characters.
#[inline]
fn prefix(name: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (dst, src) in bytes.iter_mut().zip(name) {
        *dst = *src;
    }
    u64::from_be_bytes(bytes)
}

/// Orders two member names (raw contents) as `format` sorts them.
fn cmp_names(src: &str, a: Span, b: Span, format: KeyFormat) -> Ordering {
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

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// One member of an object being sorted: the big-endian prefix of its name and its node.
type Member = (u64, u32);

/// Sorts object members: insertion sort for the small objects request data is made of,
/// heapsort beyond (O(n log n), in place). One routine behind a `dyn` comparator keeps a single
/// copy of sorting code in the wasm module (the standard sorts instantiate about 9 KB per
/// comparator). The comparators are total (ties fall back to node order), so stability is moot.
fn sort_members(v: &mut [Member], cmp: &mut dyn FnMut(&Member, &Member) -> Ordering) {
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

/// A small stack buffer for formatting.
#[cfg(not(target_arch = "wasm32"))]
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

#[cfg(not(target_arch = "wasm32"))]
impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes a finite double as `format` prints it: ECMAScript's `Number::toString` in JCS (both
/// zeros print as `0`, integral values as integers), Python's `repr(float)` in Python (`0.0`,
/// `-0.0`, `5.0`, `1e+16`).
#[inline(never)]
fn push_number(x: f64, format: KeyFormat, out: &mut String) {
    if x == 0.0 {
        out.push_str(match format {
            KeyFormat::Jcs => "0",
            KeyFormat::Python if x.is_sign_negative() => "-0.0",
            KeyFormat::Python => "0.0",
        });
        return;
    }
    if x.abs() <= MAX_SAFE_INTEGER && x.trunc() == x {
        push_int(x as i64, out);
        if format == KeyFormat::Python {
            // Below 2^53 < 1e16, where repr still writes fixed notation.
            out.push_str(".0");
        }
        return;
    }

    let mut digits = [0u8; 24];
    let (k, exp) = shortest_digits(x.abs(), &mut digits);
    let digits = digits.get(..k).unwrap_or(&[]);
    push_digits(digits, exp, x < 0.0, format, out);
}

/// The shortest round-trip decimal digits of `x` (positive, finite) as `(count, exponent)`:
/// `x = d1.d2...dk × 10^exponent`, ties broken to even as ECMAScript and Python do.
///
/// Natively this is Rust's shortest float formatting. On wasm32 it is the JavaScript engine's
/// `Number.prototype.toString` (the very algorithm RFC 8785 names), which keeps Rust's float
/// formatting and its tables out of the module.
#[cfg(not(target_arch = "wasm32"))]
fn shortest_digits(x: f64, digits: &mut [u8; 24]) -> (usize, i32) {
    // Rust's `{:e}` prints shortest digits as `d[.ddd]e[-]x`.
    let mut buf = StackBuf {
        buf: [0; 40],
        len: 0,
    };
    if fmt::Write::write_fmt(&mut buf, format_args!("{x:e}")).is_err() {
        return (0, 0); // Cannot happen: the longest output is 24 bytes.
    }
    let (k, exp) = decompose(buf.buf.get(..buf.len).unwrap_or(&[]), digits);
    if let Some(shortest) = digits.get_mut(..k) {
        break_tie_to_even(shortest, exp, x);
    }
    (k, exp)
}

#[cfg(target_arch = "wasm32")]
fn shortest_digits(x: f64, digits: &mut [u8; 24]) -> (usize, i32) {
    let text = crate::platform::number_to_string(x);
    decompose(text.as_bytes(), digits)
}

/// Parses a JSON number (already checked against the grammar).
#[cfg(not(target_arch = "wasm32"))]
fn parse_f64(text: &str) -> Option<f64> {
    text.parse().ok()
}

#[cfg(target_arch = "wasm32")]
fn parse_f64(text: &str) -> Option<f64> {
    Some(crate::platform::parse_float(text))
}

/// Splits a decimal text (`123.45`, `1.5e-7`, `1e+21`, `0.000001`) into its significant digits
/// (no leading or trailing zeros) and the power of ten of the first one.
fn decompose(text: &[u8], digits: &mut [u8; 24]) -> (usize, i32) {
    let mut k = 0;
    let mut point: Option<i32> = None; // digits seen (counting leading zeros) before the '.'
    let mut seen: i32 = 0;
    let mut lead: i32 = 0; // leading zeros
    let mut exp: i32 = 0;
    let mut exp_negative = false;
    let mut in_exp = false;
    for &c in text {
        match c {
            b'e' | b'E' => in_exp = true,
            b'-' if in_exp => exp_negative = true,
            b'0'..=b'9' if in_exp => {
                exp = exp.saturating_mul(10).saturating_add(i32::from(c - b'0'))
            }
            b'.' => point = Some(seen),
            b'0' if k == 0 => {
                seen += 1;
                lead += 1;
            }
            b'0'..=b'9' => {
                seen += 1;
                if let Some(d) = digits.get_mut(k) {
                    *d = c;
                    k += 1;
                }
            }
            _ => {}
        }
    }
    while k > 1 && digits.get(k - 1) == Some(&b'0') {
        k -= 1;
    }
    if exp_negative {
        exp = -exp;
    }
    let int_len = point.unwrap_or(seen);
    (k, exp + int_len - lead - 1)
}

/// Writes the non-integral or unsafe number `±d1.d2...dk × 10^exp` as `format` prints floats.
fn push_digits(digits: &[u8], exp: i32, negative: bool, format: KeyFormat, out: &mut String) {
    if negative {
        out.push('-');
    }
    match format {
        KeyFormat::Jcs => layout_ecmascript(digits, exp, out),
        KeyFormat::Python => layout_python_repr(digits, exp, out),
    }
}

/// The decimal digits of `n`, written at the end of `buf`.
fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

/// Makes shortest digits agree with ECMAScript and Python when two shortest candidates are
/// exactly equally close to `x`.
///
/// Both peers then pick the one with an even last digit; Rust's shortest formatting picks the
/// larger one (`1573851163016575.25` prints as `...575.3` in Rust but `...575.2` in both peers).
/// `digits` are `d1.d2...dk × 10^exp`; `x` is positive and finite.
#[cfg(not(target_arch = "wasm32"))]
#[inline(never)]
fn break_tie_to_even(digits: &mut [u8], exp: i32, x: f64) {
    let Some(&last) = digits.last() else {
        return;
    };
    // Shortest digits of a double are at most 17.
    if (last - b'0') % 2 == 0 || digits.len() > 17 {
        return;
    }
    let mut value: u64 = 0;
    for &d in digits.iter() {
        value = value * 10 + u64::from(d - b'0');
    }
    // The exponent of a digit one place after the last one.
    let q = exp - digits.len() as i32;
    for (mid, step) in [(value * 10 - 5, -1i8), (value * 10 + 5, 1)] {
        if last == b'9' && step > 0 {
            continue;
        }
        if is_exactly(x, mid, q) {
            // Use the even neighbour if it also reads back as `x` (it always should).
            let neighbour = if step < 0 { value - 1 } else { value + 1 };
            let mut buf = StackBuf {
                buf: [0; 40],
                len: 0,
            };
            let ok = fmt::Write::write_fmt(&mut buf, format_args!("{neighbour}e{}", q + 1)).is_ok()
                && std::str::from_utf8(buf.buf.get(..buf.len).unwrap_or(&[]))
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    == Some(x);
            if ok {
                if let Some(d) = digits.last_mut() {
                    *d = if step < 0 { last - 1 } else { last + 1 };
                }
            }
            return;
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Whether the double `x` (positive, finite) is exactly `t × 10^q`, where `t` ends in 5.
fn is_exactly(x: f64, t: u64, q: i32) -> bool {
    // x = m × 2^e2 with m odd.
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut e2) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if m == 0 {
        return false;
    }
    let tz = m.trailing_zeros();
    m >>= tz;
    e2 += tz as i32;
    // t is odd, so t × 5^q × 2^q = m × 2^e2 needs q == e2 and then the odd parts to agree.
    if e2 != q || q.unsigned_abs() > 27 {
        return false;
    }
    let pow5 = 5u128.pow(q.unsigned_abs());
    if q >= 0 {
        u128::from(t) * pow5 == u128::from(m)
    } else {
        u128::from(m) * pow5 == u128::from(t)
    }
}

/// Writes an integer.
fn push_int(n: i64, out: &mut String) {
    if n < 0 {
        out.push('-');
    }
    let mut buf = [0u8; 20];
    push_ascii(u64_digits(n.unsigned_abs(), &mut buf), out);
}

fn push_ascii(bytes: &[u8], out: &mut String) {
    out.push_str(std::str::from_utf8(bytes).unwrap_or(""));
}

fn push_zeros(n: i32, out: &mut String) {
    for _ in 0..n {
        out.push('0');
    }
}

/// Splits `digits` after `n` digits (clamped).
fn split(digits: &[u8], n: i32) -> (&[u8], &[u8]) {
    digits.split_at((n.max(0) as usize).min(digits.len()))
}

/// Writes `d[.ddd]` for scientific notation.
fn push_mantissa(digits: &[u8], out: &mut String) {
    let (lead, rest) = split(digits, 1);
    push_ascii(lead, out);
    if !rest.is_empty() {
        out.push('.');
        push_ascii(rest, out);
    }
}

/// ECMAScript `Number::toString` for the positive number `0.d1d2...dk × 10^(exp + 1)`.
fn layout_ecmascript(digits: &[u8], exp: i32, out: &mut String) {
    let k = digits.len() as i32;
    let n = exp + 1;
    if k <= n && n <= 21 {
        push_ascii(digits, out);
        push_zeros(n - k, out);
    } else if 0 < n && n <= 21 {
        let (int, frac) = split(digits, n);
        push_ascii(int, out);
        out.push('.');
        push_ascii(frac, out);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        push_zeros(-n, out);
        push_ascii(digits, out);
    } else {
        push_mantissa(digits, out);
        out.push_str(if exp < 0 { "e-" } else { "e+" });
        push_int(i64::from(exp.unsigned_abs()), out);
    }
}

/// Python's `repr(float)` for the positive number `d1.d2...dk × 10^exp`.
fn layout_python_repr(digits: &[u8], exp: i32, out: &mut String) {
    let k = digits.len() as i32;
    if (-4..16).contains(&exp) {
        let n = exp + 1;
        if n <= 0 {
            out.push_str("0.");
            push_zeros(-n, out);
            push_ascii(digits, out);
        } else if n < k {
            let (int, frac) = split(digits, n);
            push_ascii(int, out);
            out.push('.');
            push_ascii(frac, out);
        } else {
            push_ascii(digits, out);
            push_zeros(n - k, out);
            out.push_str(".0");
        }
    } else {
        push_mantissa(digits, out);
        out.push_str(if exp < 0 { "e-" } else { "e+" });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        push_int(i64::from(e), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jcs(text: &str) -> String {
        canonical_json(text, KeyFormat::Jcs).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn py(text: &str) -> String {
        canonical_json(text, KeyFormat::Python).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn num(x: f64, format: KeyFormat) -> String {
        let mut s = String::new();
        push_number(x, format, &mut s);
        s
    }

    fn is_unserializable(text: &str) -> bool {
        is_unserializable_in(text, KeyFormat::Jcs) && is_unserializable_in(text, KeyFormat::Python)
    }

    fn is_unserializable_in(text: &str, format: KeyFormat) -> bool {
        matches!(canonical_json(text, format), Err(Error::Unserializable(_)))
    }

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
    fn failed_canonicalization_leaves_output_unchanged() {
        let mut out = String::from("prefix");
        assert!(canonicalize_into("{\"b\":1,\"a\":[1,2,", KeyFormat::Jcs, &mut out).is_err());
        assert_eq!(out, "prefix");
        canonicalize_into("{\"b\":1,\"a\":2}", KeyFormat::Jcs, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, "prefix{\"a\":2,\"b\":1}");
    }

    #[test]
    fn whitespace_and_literals() {
        let text = " \r\n\t{ \"b\" : [ true , false , null ] , \"a\" : { } , \"c\" : [ ] } \n";
        assert_eq!(jcs(text), r#"{"a":{},"b":[true,false,null],"c":[]}"#);
        assert_eq!(py(text), r#"{"a": {}, "b": [true, false, null], "c": []}"#);
    }

    #[test]
    fn segments() {
        assert!(validate_segment("version", "v1").is_ok());
        assert!(validate_segment("namespace", &"n".repeat(256)).is_ok());
        for (what, bad) in [("version", ""), ("namespace", "a:b"), ("namespace", ":")] {
            match validate_segment(what, bad) {
                Err(Error::InvalidKey(msg)) => assert!(msg.contains(what), "{msg}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        match validate_segment("version", &"v".repeat(257)) {
            Err(Error::InvalidKey(msg)) => assert!(msg.contains("version"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // 256 bytes of multi-byte characters are fine; 258 are not.
        assert!(validate_segment("version", &"é".repeat(128)).is_ok());
        assert!(validate_segment("version", &"é".repeat(129)).is_err());
        assert!(matches!(
            request_key("", "ns", "1", KeyFormat::Jcs),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            request_key("v1", "a:b", "1", KeyFormat::Jcs),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            request_key("v1", "ns", "{", KeyFormat::Jcs),
            Err(Error::Unserializable(_))
        ));
    }

    #[test]
    fn key_format_parse() {
        assert_eq!("jcs".parse::<KeyFormat>(), Ok(KeyFormat::Jcs));
        assert_eq!("python".parse::<KeyFormat>(), Ok(KeyFormat::Python));
        assert_eq!(KeyFormat::default(), KeyFormat::Jcs);
        for f in [KeyFormat::Jcs, KeyFormat::Python] {
            assert_eq!(f.as_str().parse::<KeyFormat>(), Ok(f));
            assert_eq!(f.to_string(), f.as_str());
        }
        for bad in ["", "JCS", "Python", "json", " jcs"] {
            match bad.parse::<KeyFormat>() {
                Err(Error::InvalidOptions(msg)) => {
                    assert!(
                        msg.starts_with("keyFormat must be \"jcs\" or \"python\", got "),
                        "{msg}"
                    )
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    // The tie cases are written with all their exact digits on purpose.
    #[allow(clippy::excessive_precision)]
    fn float_formatting_edge_cases() {
        use KeyFormat::{Jcs, Python};
        let cases: [(f64, &str, &str); 24] = [
            (5e-324, "5e-324", "5e-324"),
            (-5e-324, "-5e-324", "-5e-324"),
            (1e21, "1e+21", "1e+21"),
            (1e20, "100000000000000000000", "1e+20"),
            (1e-7, "1e-7", "1e-07"),
            (1.5e-7, "1.5e-7", "1.5e-07"),
            (1e-6, "0.000001", "1e-06"),
            (1e-5, "0.00001", "1e-05"),
            (1e-4, "0.0001", "0.0001"),
            (0.1, "0.1", "0.1"),
            (-0.1, "-0.1", "-0.1"),
            (1e16, "10000000000000000", "1e+16"),
            (1e22, "1e+22", "1e+22"),
            (
                123456789012345680000.0,
                "123456789012345680000",
                "1.2345678901234568e+20",
            ),
            (-0.0, "0", "-0.0"),
            (0.0, "0", "0.0"),
            (5.0, "5", "5.0"),
            (9007199254740991.0, "9007199254740991", "9007199254740991.0"),
            (
                -9007199254740991.0,
                "-9007199254740991",
                "-9007199254740991.0",
            ),
            (9007199254740992.0, "9007199254740992", "9007199254740992.0"),
            (9007199254740994.0, "9007199254740994", "9007199254740994.0"),
            (
                -9007199254740994.0,
                "-9007199254740994",
                "-9007199254740994.0",
            ),
            (
                1.7976931348623157e308,
                "1.7976931348623157e+308",
                "1.7976931348623157e+308",
            ),
            (
                1234567890123456.8,
                "1234567890123456.8",
                "1234567890123456.8",
            ),
        ];
        for (x, want_jcs, want_py) in cases {
            assert_eq!(num(x, Jcs), want_jcs, "jcs {x:e}");
            assert_eq!(num(x, Python), want_py, "python {x:e}");
        }
        // Exact ties between two shortest candidates go to the even digit, as in both peers.
        for (x, want) in [
            (1573851163016575.25, "1573851163016575.2"),
            (-1531068647988225.25, "-1531068647988225.2"),
            (154657077191424.625, "154657077191424.62"),
            (80755495526721.125, "80755495526721.12"),
            (1573851163016575.75, "1573851163016575.8"),
        ] {
            assert_eq!(num(x, Jcs), want, "jcs {x:e}");
            assert_eq!(num(x, Python), want, "python {x:e}");
        }
        // Extreme spellings.
        assert_eq!(
            jcs("[1e-99999999999999999999, 0.000000000000000000000000000001, 100e-2, 0.00150e3]"),
            "[0,1e-30,1,1.5]"
        );
        assert_eq!(
            py("[12345678901234567890123456789.0e-20, 1.50000000000000000000000000001]"),
            "[123456789.01234567, 1.5]"
        );
        // The same numbers through the parser, written in various ways.
        assert_eq!(
            jcs("[5.0, 5e0, 0.5e1, -0, -0.0, 0e10, 1E2, 1e-400]"),
            "[5,5,5,0,0,0,100,0]"
        );
        // Python: a literal without fraction or exponent is an int (its digits, at any size);
        // every other number is a float (repr).
        assert_eq!(
            py("[5.0, 5, -0, -0.0, 0.0, 0e10, -1e-400, 1e2, 2.5, 1e+22, 10000000000000002]"),
            "[5.0, 5, 0, -0.0, 0.0, 0.0, -0.0, 100.0, 2.5, 1e+22, 10000000000000002]"
        );
        assert_eq!(
            py("[123456789012345678901234567890, -9007199254740993, 1e16, 1.0000000000000002e16]"),
            "[123456789012345678901234567890, -9007199254740993, 1e+16, 1.0000000000000002e+16]"
        );
        let huge = format!("1{}", "0".repeat(400));
        assert_eq!(py(&huge), huge);
        assert!(is_unserializable_in(&huge, Jcs));
        assert!(is_unserializable_in("1e400", Python));
        assert!(is_unserializable_in("-1.5e309", Python));
        assert_eq!(
            jcs("[9007199254740993, 123456789012345678901234567890]"),
            "[9007199254740992,1.2345678901234568e+29]"
        );
        assert_eq!(
            py("[999999999999999, -999999999999999, 1234567890123456]"),
            "[999999999999999, -999999999999999, 1234567890123456]"
        );
    }

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

    #[test]
    fn request_key_shape_and_reuse() {
        let key = request_key(
            "v1",
            "ns",
            r#"{"topic":"Python Programming"}"#,
            KeyFormat::Jcs,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key, "v1:ns:3260222b82f1023d3fd9501bd984cd80");
        let mut scratch = String::from("junk");
        let mut out = String::new();
        for _ in 0..3 {
            out.clear();
            request_key_into(
                "v1",
                "ns",
                r#"{ "topic" : "Python Programming" }"#,
                KeyFormat::Python,
                &mut scratch,
                &mut out,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out, "v1:ns:afc5c4f25dbfab7559ccff1975be8899");
        }
        let before = out.clone();
        assert!(request_key_into("v1", "ns", "[", KeyFormat::Jcs, &mut scratch, &mut out).is_err());
        assert_eq!(out, before);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_value_matches_text() {
        let texts = [
            r#"{"b":[1.0,2.5,-0.0,1e21,1e-7,10000000000000002],"a":{"😀":"\u0000é\"","\uffff":null}}"#,
            r#"[true,false,null,"\u007f\u2028",{"":{}}]"#,
            "1e+22",
            "\"plain\"",
        ];
        for text in texts {
            let value: serde_json::Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
            for f in [KeyFormat::Jcs, KeyFormat::Python] {
                let from_value = canonical_json_value(&value, f).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    from_value,
                    canonical_json(text, f).unwrap_or_else(|e| panic!("{e}")),
                    "{text} {f}"
                );
            }
        }
    }
}
