//! Request-key vectors made by Python's `json` module and the `canonicalize` npm package.
//!
//! Each line of `../shared/vectors/request-keys.jsonl` holds `data` (a JSON value, written by
//! `JSON.stringify`), its canonical JSON in both dialects (`python`, `jcs`) and their MD5s.
//!
//! Every vector is checked in both dialects from the `data` text exactly as it stands in the file
//! and from the `jcs` text. It is also checked from `data` parsed and written back by serde_json
//! (which prints numbers differently from JavaScript: `1e22`, `5.0`, ...), except where serde_json
//! itself reads a number to a different double: without its `float_roundtrip` feature serde_json
//! may be one unit in the last place off, and then the data it writes back is different data.

use cachette::canonical::{canonical_json, KeyFormat};
use cachette::key::request_key;
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/request-keys.jsonl"
);

struct Vector {
    n: usize,
    /// The `data` member's text exactly as it is in the file.
    data_text: String,
    line: Value,
}

impl Vector {
    fn field(&self, name: &str) -> &str {
        self.line[name]
            .as_str()
            .unwrap_or_else(|| panic!("vector {}: field {name} missing", self.n))
    }
}

fn vectors() -> Vec<Vector> {
    let text =
        std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("cannot read {VECTORS}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, raw)| {
            let line: Value =
                serde_json::from_str(raw).unwrap_or_else(|e| panic!("vector {n}: {e}"));
            // Every line starts with {"data": and the value runs to where a JSON value ends.
            let rest = raw
                .strip_prefix(r#"{"data":"#)
                .unwrap_or_else(|| panic!("vector {n}: does not start with data"));
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            let data: Value = stream
                .next()
                .unwrap_or_else(|| panic!("vector {n}: no data"))
                .unwrap_or_else(|e| panic!("vector {n}: {e}"));
            assert_eq!(data, line["data"], "vector {n}: data extracted wrongly");
            let data_text = rest[..stream.byte_offset()].to_owned();
            Vector { n, data_text, line }
        })
        .collect()
}

/// Checks `input` against vector `v` in both formats; pushes one message per failure.
fn check(v: &Vector, source: &str, input: &str, failures: &mut Vec<String>) {
    let n = v.n;
    for (format, want, md5) in [
        (KeyFormat::Python, v.field("python"), v.field("md5_python")),
        (KeyFormat::Jcs, v.field("jcs"), v.field("md5_jcs")),
    ] {
        match canonical_json(input, format) {
            Ok(got) if got == want => {}
            other => failures.push(format!(
                "vector {n} ({format}) from {source}: {input}\n   want {want}\n    got {other:?}"
            )),
        }
        let key = request_key("v1", "ns", input, format);
        if key.as_deref() != Ok(format!("v1:ns:{md5}").as_str()) {
            failures.push(format!(
                "vector {n} ({format}) key from {source}: {key:?}, want md5 {md5}"
            ));
        }
    }
}

#[test]
fn all_request_key_vectors_pass_in_both_formats() {
    let mut count = 0;
    let mut failures = Vec::new();
    for v in vectors() {
        check(&v, "data", &v.data_text, &mut failures);
        check(&v, "jcs", v.field("jcs"), &mut failures);
        count += 1;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(count, 400, "expected 400 vectors");
}

/// The number tokens of JSON text (outside strings).
fn number_tokens(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                tokens.push(&text[start..i]);
            }
            _ => i += 1,
        }
    }
    tokens
}

#[test]
fn vectors_pass_after_a_serde_json_round_trip() {
    let mut checked = 0;
    let mut skipped = 0;
    let mut failures = Vec::new();
    for v in vectors() {
        let serde_reads_exactly = number_tokens(&v.data_text).into_iter().all(|t| {
            let exact: f64 = t
                .parse()
                .unwrap_or_else(|e| panic!("vector {}: {t}: {e}", v.n));
            serde_json::from_str::<f64>(t).ok() == Some(exact)
        });
        if !serde_reads_exactly {
            skipped += 1;
            continue;
        }
        let text = serde_json::to_string(&v.line["data"]).expect("serialize data");
        check(&v, "serde_json", &text, &mut failures);
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked + skipped, 400);
    // The round trip must still cover most vectors, floats included.
    assert!(
        checked >= 300,
        "only {checked} vectors survive serde_json's float parsing"
    );
    eprintln!(
        "serde_json round trip: {checked} checked, {skipped} skipped (serde_json misreads a float)"
    );
}

const PYTHON_TEXT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/python-text.jsonl"
);

/// `../shared/vectors/python-text.jsonl`: JSON texts and what Python 3 prints for
/// `json.dumps(json.loads(text), sort_keys=True)` (`python`, `md5_python`), or `error` for a
/// text Python cannot print as JSON, which must be refused with `UNSERIALIZABLE`.
#[test]
fn python_text_vectors_are_what_python_prints() {
    let text = std::fs::read_to_string(PYTHON_TEXT)
        .unwrap_or_else(|e| panic!("cannot read {PYTHON_TEXT}: {e}"));
    let (mut printed, mut refused) = (0, 0);
    let mut failures = Vec::new();
    for (n, raw) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let line: Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("line {n}: {e}"));
        let input = line["text"].as_str().expect("text");
        let got = canonical_json(input, KeyFormat::Python);
        let key = request_key("v1", "ns", input, KeyFormat::Python);
        match (line["python"].as_str(), line["md5_python"].as_str()) {
            (Some(want), Some(md5)) => {
                printed += 1;
                if got.as_deref() != Ok(want) {
                    failures.push(format!(
                        "line {n}: {input}\n   want {want}\n    got {got:?}"
                    ));
                }
                if key.as_deref() != Ok(format!("v1:ns:{md5}").as_str()) {
                    failures.push(format!("line {n}: key {key:?}, want md5 {md5}"));
                }
            }
            _ => {
                assert!(
                    line["error"].is_string(),
                    "line {n}: neither python nor error"
                );
                refused += 1;
                for result in [got.map(|_| ()), key.map(|_| ())] {
                    if !matches!(result, Err(cachette::Error::Unserializable(_))) {
                        failures.push(format!(
                            "line {n}: {input}: want UNSERIALIZABLE, got {result:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!((printed, refused), (299, 1), "expected 300 rows");
}

/// `canonical_json_value` (a `serde_json::Value`) agrees with Python on every python-text row
/// that serde_json reads without loss: integers are Python ints, other numbers Python floats.
#[cfg(feature = "serde")]
#[test]
fn python_text_vectors_through_serde_values() {
    use cachette::canonical::canonical_json_value;
    let text = std::fs::read_to_string(PYTHON_TEXT).expect("python-text.jsonl");
    let (mut checked, mut skipped) = (0, 0);
    for (n, raw) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let line: Value = serde_json::from_str(raw).expect("line");
        let (Some(input), Some(want)) = (line["text"].as_str(), line["python"].as_str()) else {
            continue;
        };
        // serde_json (without arbitrary_precision) reads integers beyond u64/i64 as floats and
        // may misread a float by one unit in the last place: those rows are not the same data.
        let lossless = number_tokens(input).into_iter().all(|t| {
            let integer = !t.contains(['.', 'e', 'E']);
            let parsed: Value = serde_json::from_str(t).expect("number");
            if integer {
                parsed.is_i64() || parsed.is_u64()
            } else {
                parsed.as_f64() == t.parse::<f64>().ok()
            }
        });
        if !lossless {
            skipped += 1;
            continue;
        }
        let value: Value = serde_json::from_str(input).expect("valid JSON");
        assert_eq!(
            canonical_json_value(&value, KeyFormat::Python).as_deref(),
            Ok(want),
            "line {n}: {input}"
        );
        checked += 1;
    }
    eprintln!("python-text through serde_json::Value: {checked} checked, {skipped} skipped");
    assert!(checked >= 150, "only {checked} rows checked");
}
