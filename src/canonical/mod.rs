//! Canonical JSON: one text for all JSON texts of the same data.
//!
//! A request key (see [`crate::key`]) is `{version}:{namespace}:{md5}`, where `md5` is 32
//! lowercase hex digits of the MD5 of the *canonical JSON* of the request data. Two dialects of
//! canonical JSON are offered, so keys can be shared with other services:
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
//! re-laid from their own digits without float formatting.
//! [`request_key_into`](crate::key::request_key_into) additionally reuses caller-owned buffers, so
//! a warm call allocates nothing.
//!
//! # Why this parser is hand-written
//!
//! The project's rule is a maintained crate unless a measurement says otherwise. serde_json (read
//! into a `serde_json::Value`, written back) cannot produce either dialect, whatever it costs:
//!
//! - it refuses lone surrogates (`"\ud800"`, which `JSON.stringify` writes and Python reads);
//! - its map (`preserve_order` off) sorts names by UTF-8 bytes: `{"\ue000":1,"😀":2}` keeps
//!   that order, where JCS puts `"😀"` (UTF-16 unit 0xD83D) first;
//! - its numbers are neither model: `1.0` stays `1.0` and `-0` becomes `-0.0` (JCS: `1`, `0`),
//!   `18446744073709551615` keeps its digits (JCS: `18446744073709552000`), an integer beyond
//!   64 bits becomes a float (`1.2345678901234568e+29`, Python: its digits), `1e-7` is not
//!   Python's `1e-07`, and nothing writes Python's separators or `ensure_ascii` escapes;
//! - of duplicate names the last wins, as here, but a text whose overflowing number is replaced
//!   by a later duplicate (`{"a":1e400,"a":1.5}`, accepted by `JSON.parse` and `json.loads`) is
//!   refused whole.
//!
//! It is also the faster of the two (natively, criterion on a 2-core x86-64 Linux machine):
//! serde_json's read and sorted write take 96 ns, 349 ns and 4.25 µs on the `small`,
//! `bench_a` and `nested_1kb` cases of `benches/keys.rs`, where canonical JSON takes 57 ns,
//! 177 ns and 2.19 µs (JCS) and 59 ns, 198 ns and 2.29 µs (Python): serde_json takes 63% to
//! 97% longer. In the npm module, serde_json's reader alone adds 9.2 KB gzip to the full
//! entry's 105.6 KB (measured by reading the Upstash replies, which this parser reads through
//! `read`, into a `serde_json::Value` instead). Re-measure the speed with
//! `cargo bench --bench keys -- 'canonical_json|serde_json_sorted'`; the size with
//! `./run build && node bench/sizes.mjs`, once as it is and once with serde_json a dependency
//! of the module reading the replies in `crate::upstash`.

// The parts, by concept: `parse` reads JSON text into a flat list of nodes, `number` reads and
// prints numbers as each dialect does, `order` sorts member names, `write` writes the nodes,
// `read` walks the nodes for the rest of the crate (the Upstash client's replies).
mod number;
mod order;
mod parse;
mod read;
mod write;

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
#[cfg(feature = "serde")]
use parse::Bad;
use parse::{Node, Parser};
pub(crate) use read::{Document, Kind, Value};
pub(crate) use write::push_json_string;

/// The deepest nesting of arrays and objects accepted in request data.
pub const MAX_DEPTH: usize = 128;

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

/// The canonical JSON of `json_text` in `format`.
///
/// ```
/// use cachette::canonical::{canonical_json, KeyFormat};
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
    write::document(json_text, &scratch.nodes, &mut scratch.members, format, out)
        .map_err(|bad| bad.into_error(json_text))
}

/// The canonical JSON of a `serde_json::Value` in `format`.
///
/// This is [`canonical_json`] of the value's JSON text as `serde_json::to_string` writes it, so a
/// value canonicalizes as a peer reads what serde_json sends: in [`KeyFormat::Python`] an integer
/// is a Python int (its digits, at any size) and an `f64` a float (`1.0` stays `1.0`). Nesting
/// deeper than [`MAX_DEPTH`] is [`Error::Unserializable`]; a `Value` holds no non-finite number.
#[cfg(feature = "serde")]
pub fn canonical_json_value(value: &serde_json::Value, format: KeyFormat) -> Result<String> {
    // serde_json writes a value by recursion, as deep as the value goes: a value nested too deep
    // is refused before it is written, so it is an error rather than a stack overflow.
    if nested_deeper_than(value, MAX_DEPTH) {
        return Err(Bad::TooDeep.into_error(""));
    }
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Unserializable(format!("request data: {e}")))?;
    canonical_json(&text, format)
}

/// Whether `value` nests arrays and objects more than `limit` deep (looking no deeper).
#[cfg(feature = "serde")]
fn nested_deeper_than(value: &serde_json::Value, limit: usize) -> bool {
    use serde_json::Value;
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(|v| nested_deeper_than(v, limit - 1)),
        Value::Object(map) => limit == 0 || map.values().any(|v| nested_deeper_than(v, limit - 1)),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn jcs(text: &str) -> String {
        canonical_json(text, KeyFormat::Jcs).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    pub(super) fn py(text: &str) -> String {
        canonical_json(text, KeyFormat::Python).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    pub(super) fn is_unserializable(text: &str) -> bool {
        is_unserializable_in(text, KeyFormat::Jcs) && is_unserializable_in(text, KeyFormat::Python)
    }

    pub(super) fn is_unserializable_in(text: &str, format: KeyFormat) -> bool {
        matches!(canonical_json(text, format), Err(Error::Unserializable(_)))
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

    #[cfg(feature = "serde")]
    #[test]
    fn serde_value_depth_limit_and_numbers() {
        use serde_json::{json, Value};
        fn nested(depth: usize, object: bool) -> Value {
            let mut v = json!(1);
            for _ in 0..depth {
                v = if object {
                    Value::Object([("a".to_owned(), v)].into_iter().collect())
                } else {
                    Value::Array(vec![v])
                };
            }
            v
        }
        for object in [false, true] {
            for f in [KeyFormat::Jcs, KeyFormat::Python] {
                assert!(canonical_json_value(&nested(MAX_DEPTH, object), f).is_ok());
                // Far deeper than the limit: an error, not a stack overflow.
                for depth in [MAX_DEPTH + 1, 2_000] {
                    match canonical_json_value(&nested(depth, object), f) {
                        Err(Error::Unserializable(msg)) => {
                            assert_eq!(msg, "request data is nested deeper than 128 levels")
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
        // Integers are Python ints at any size; f64 values are floats.
        let value = json!([u64::MAX, i64::MIN, 1.0, -0.0, 1e16, 0.1]);
        assert_eq!(
            canonical_json_value(&value, KeyFormat::Python).unwrap_or_else(|e| panic!("{e}")),
            "[18446744073709551615, -9223372036854775808, 1.0, -0.0, 1e+16, 0.1]"
        );
        assert_eq!(
            canonical_json_value(&value, KeyFormat::Jcs).unwrap_or_else(|e| panic!("{e}")),
            "[18446744073709552000,-9223372036854776000,1,0,10000000000000000,0.1]"
        );
    }
}
