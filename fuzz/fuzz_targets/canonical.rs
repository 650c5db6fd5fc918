//! Canonical JSON (`cachette::canonical`), both dialects, against serde_json.
//!
//! For any UTF-8 input, in JCS and in Python:
//! - cachette and serde_json agree on what is JSON, except where cachette is documented to differ
//!   (lone surrogate escapes and a 128th level of nesting, which it accepts; numbers that
//!   overflow to ±Infinity where they are written, which it refuses);
//! - the canonical text parses back with serde_json to the value serde_json reads from the input,
//!   numbers compared in the dialect's number model (JCS: doubles; Python: ints at any size
//!   stay the same ints, floats stay the same floats, the sign of zero included);
//! - canonicalizing the canonical text again gives it back unchanged;
//! - the Python text, canonicalized as JCS, gives the JCS text of the input.
//!
//! Invalid UTF-8 is skipped: the API takes `&str`.

#![no_main]

use cachette::canonical::{canonical_json, KeyFormat};
use cachette::Error;
use libfuzzer_sys::fuzz_target;
use serde_json::{Number, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let reference = serde_json::from_str::<Value>(text);
    let jcs = canonical_json(text, KeyFormat::Jcs);
    let python = canonical_json(text, KeyFormat::Python);
    check(text, &reference, KeyFormat::Jcs, &jcs);
    check(text, &reference, KeyFormat::Python, &python);
    // Python's text holds the same strings, and numbers that read as the same doubles.
    if let Ok(py) = &python {
        assert_eq!(
            canonical_json(py, KeyFormat::Jcs).ok(),
            jcs.as_ref().ok().cloned(),
            "JCS of the Python text {py:?} differs from JCS of {text:?}"
        );
    }
});

fn check(
    text: &str,
    reference: &serde_json::Result<Value>,
    format: KeyFormat,
    out: &cachette::Result<String>,
) {
    match (out, reference) {
        (Ok(out), Ok(value)) => {
            let back = serde_json::from_str::<Value>(out).unwrap_or_else(|e| {
                panic!("{format}: the canonical text {out:?} of {text:?} is not JSON: {e}")
            });
            assert!(
                same(value, &back, format),
                "{format}: {text:?} canonicalized to {out:?}, which reads as a different value"
            );
        }
        (Ok(out), Err(e)) => {
            assert!(
                documented_difference(e),
                "{format}: accepted {text:?} (as {out:?}), which is not JSON: {e}"
            );
            // The canonical text differs from JSON only in the same ways.
            if let Err(e) = serde_json::from_str::<Value>(out) {
                assert!(
                    documented_difference(&e),
                    "{format}: the canonical text {out:?} of {text:?} is not JSON: {e}"
                );
            }
        }
        (Err(err), Ok(value)) => {
            assert!(
                matches!(err, Error::Unserializable(_)),
                "{format}: {text:?} refused with the wrong error: {err:?}"
            );
            assert!(
                overflows(value, format),
                "{format}: refused {text:?}, which is JSON without an overflowing number: {err}"
            );
        }
        (Err(err), Err(_)) => assert!(
            matches!(err, Error::Unserializable(_)),
            "{format}: {text:?} refused with the wrong error: {err:?}"
        ),
    }
    if let Ok(out) = out {
        assert!(
            !overflows_in_text(out),
            "{format}: the canonical text {out:?} of {text:?} holds an infinite number"
        );
        match canonical_json(out, format) {
            Ok(again) => assert_eq!(
                &again, out,
                "{format}: canonicalizing {out:?} (from {text:?}) again changed it"
            ),
            Err(e) => panic!("{format}: the canonical text {out:?} of {text:?} is refused: {e}"),
        }
    }
}

/// Why serde_json may refuse a text that cachette accepts: a lone surrogate escape (`\ud800`),
/// which serde_json refuses in a string and cachette keeps; nesting 128 levels deep, one level
/// beyond serde_json's recursion limit and within cachette's.
fn documented_difference(e: &serde_json::Error) -> bool {
    let msg = e.to_string();
    msg.starts_with("lone leading surrogate in hex escape")
        || msg.starts_with("unexpected end of hex escape")
        || msg.starts_with("recursion limit exceeded")
}

/// Whether `value` holds a number that the dialect reads as ±Infinity (and so refuses to write):
/// any such number in JCS, where every number is a double; a float (a number with a fraction or
/// an exponent) in Python, where integers are exact at any size.
fn overflows(value: &Value, format: KeyFormat) -> bool {
    match value {
        Value::Number(n) => {
            let t = n.as_str();
            (format == KeyFormat::Jcs || !is_int(t)) && !as_f64(t).is_finite()
        }
        Value::Array(items) => items.iter().any(|v| overflows(v, format)),
        Value::Object(map) => map.values().any(|v| overflows(v, format)),
        _ => false,
    }
}

/// Whether a canonical text has a float that reads as ±Infinity (parsed by serde_json when it
/// can; a text serde_json refuses is scanned by the checks above).
fn overflows_in_text(out: &str) -> bool {
    serde_json::from_str::<Value>(out).is_ok_and(|v| overflows(&v, KeyFormat::Python))
}

/// `a` (read from the input) and `b` (read from the canonical text) hold the same data in
/// `format`'s data model. Objects are maps (duplicate names: the last wins, in serde_json as in
/// both dialects).
fn same(a: &Value, b: &Value, format: KeyFormat) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => same_number(x, y, format),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y, format))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same(v, w, format)))
        }
        _ => false,
    }
}

/// JCS reads every number as a double (`-0` and `0` are the same number to JavaScript's `===`);
/// Python reads a literal without fraction or exponent as an int, of any size, and any other as
/// a float, whose sign of zero `repr` keeps.
fn same_number(input: &Number, output: &Number, format: KeyFormat) -> bool {
    let (a, b) = (input.as_str(), output.as_str());
    match format {
        KeyFormat::Jcs => as_f64(a) == as_f64(b),
        KeyFormat::Python if is_int(a) => is_int(b) && int_value(a) == int_value(b),
        KeyFormat::Python => !is_int(b) && as_f64(a).to_bits() == as_f64(b).to_bits(),
    }
}

fn is_int(number: &str) -> bool {
    !number.contains(['.', 'e', 'E'])
}

/// A JSON number as the nearest double (±Infinity beyond the range), as Rust's parser reads it.
fn as_f64(number: &str) -> f64 {
    number
        .parse()
        .unwrap_or_else(|e| panic!("serde_json kept the number {number:?}, which is not one: {e}"))
}

/// An integer literal's value as (negative, digits); `-0` is `0`. JSON integers have no leading
/// zeros, so equal values have equal digits.
fn int_value(number: &str) -> (bool, &str) {
    let digits = number.trim_start_matches('-');
    (number.starts_with('-') && digits != "0", digits)
}
