//! Differential test of `KeyFormat::Python` against Python itself.
//!
//! Generates random JSON texts (seeded, so a failure reproduces), with the number spellings that
//! separate ints from floats (`5`, `5.0`, `5e0`, `-0`, `-0.0`, `1E2`, integers of up to 40 digits,
//! underflow to zero, overflow to infinity), escapes, lone and paired surrogates, non-ASCII
//! names, duplicate names and whitespace; then asks `python3` (tests/python/canonical.py) for
//! `json.dumps(json.loads(text), sort_keys=True)` and its MD5, and requires the Rust API to give
//! the same canonical text and key for every one, or `UNSERIALIZABLE` where Python cannot write
//! JSON. `CACHETTE_PY_DIFF_COUNT` (default 12,000) and `CACHETTE_PY_DIFF_SEED` vary the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use cachette::canonical::{canonical_json, KeyFormat};
use cachette::key::request_key;
use serde_json::Value;

/// xorshift64*: small, fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn digits(rng: &mut Rng, n: usize, out: &mut String) {
    for i in 0..n {
        let lo = if i == 0 { b'1' } else { b'0' };
        out.push((lo + rng.below(u64::from(b'9' - lo + 1)) as u8) as char);
    }
}

/// A JSON number token, in one of the spellings that matter.
fn number(rng: &mut Rng, out: &mut String) {
    const FIXED: &[&str] = &[
        "0",
        "-0",
        "0.0",
        "-0.0",
        "0e0",
        "-0E-0",
        "5",
        "5.0",
        "5e0",
        "0.5e1",
        "1e2",
        "1E2",
        "1e+2",
        "100",
        "100.0",
        "1e16",
        "1e+16",
        "10000000000000000",
        "10000000000000002",
        "1.0000000000000002e16",
        "9007199254740991",
        "9007199254740992",
        "9007199254740993",
        "-9007199254740993",
        "1e21",
        "1e22",
        "1e-7",
        "0.0000001",
        "1e-4",
        "0.0001",
        "1e-5",
        "5e-324",
        "-5e-324",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
        "1e-400",
        "-1e-400",
        "1e400",
        "-1e400",
        "1.5e309",
        "0.1",
        "0.30000000000000004",
        "123.456E+7",
        "1234567890123456.8",
        "1573851163016575.25",
        "-0.000",
        "1.0",
        "-1.0",
        "2.50",
    ];
    if rng.chance(25) {
        out.push_str(rng.pick(FIXED));
        return;
    }
    if rng.chance(50) {
        out.push('-');
    }
    match rng.below(6) {
        // An integer literal of 1..=40 digits (a Python int at any size).
        0 | 1 => {
            let n = 1 + {
                let wide = rng.chance(70);
                rng.below(if wide { 16 } else { 40 })
            } as usize;
            if n == 1 && rng.chance(20) {
                out.push('0');
            } else {
                digits(rng, n, out);
            }
        }
        // A fraction, sometimes integral-valued (`7.0`, `12.000`).
        2 | 3 => {
            if rng.chance(30) {
                out.push('0');
            } else {
                let n = 1 + rng.below(17) as usize;
                digits(rng, n, out);
            }
            out.push('.');
            if rng.chance(25) {
                for _ in 0..1 + rng.below(3) {
                    out.push('0');
                }
            } else {
                let n = 1 + rng.below(18) as usize;
                for _ in 0..n {
                    out.push((b'0' + rng.below(10) as u8) as char);
                }
            }
        }
        // An exponent, with or without a fraction.
        _ => {
            let n = 1 + rng.below(17) as usize;
            digits(rng, n, out);
            if rng.chance(40) {
                out.push('.');
                let n = 1 + rng.below(6) as usize;
                for _ in 0..n {
                    out.push((b'0' + rng.below(10) as u8) as char);
                }
            }
            out.push(rng.pick(&['e', 'E']));
            let sign = rng.pick(&["", "+", "-"]);
            out.push_str(sign);
            let e = {
                let wide = rng.chance(90);
                rng.below(if wide { 40 } else { 330 })
            };
            out.push_str(&e.to_string());
        }
    }
}

/// The contents of a JSON string literal (without the quotes).
fn string(rng: &mut Rng, out: &mut String) {
    const PIECES: &[&str] = &[
        "a",
        "b",
        "Z",
        "0",
        " ",
        "_",
        "*",
        "?",
        "[",
        ":",
        "é",
        "ß",
        "中",
        "語",
        "한",
        "😀",
        "𝄞",
        "\u{7f}",
        "\u{2028}",
        "\u{e000}",
        "\u{feff}",
        "\u{ffff}",
        "\\n",
        "\\t",
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\r",
        "\\u0000",
        "\\u001f",
        "\\u00e9",
        "\\u0041",
        "\\ud800",
        "\\udfff",
        "\\ud83d\\ude00",
        "\\uD834\\uDD1E",
        "\\ud800x",
        "\\udc00\\ud800",
    ];
    let n = {
        let wide = rng.chance(20);
        rng.below(if wide { 12 } else { 5 })
    };
    for _ in 0..n {
        out.push_str(rng.pick(PIECES));
    }
}

fn ws(rng: &mut Rng, out: &mut String) {
    if rng.chance(15) {
        out.push_str(rng.pick(&[" ", "  ", "\n", "\t", "\r\n "]));
    }
}

fn value(rng: &mut Rng, depth: u32, out: &mut String) {
    let kind = if depth >= 4 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match kind {
        0 | 1 => number(rng, out),
        2 => {
            out.push('"');
            string(rng, out);
            out.push('"');
        }
        3 => out.push_str(rng.pick(&["null", "true", "false"])),
        4 => number(rng, out),
        5 => {
            out.push('[');
            ws(rng, out);
            let n = rng.below(5);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                    ws(rng, out);
                }
                value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            ws(rng, out);
            let n = rng.below(6);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                    ws(rng, out);
                }
                out.push('"');
                if rng.chance(20) {
                    out.push_str(rng.pick(&["a", "b", "\\u0061"])); // duplicates
                } else {
                    string(rng, out);
                }
                out.push('"');
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push('}');
        }
    }
}

/// Python's answer for each text: `Ok((canonical, md5))`, or `Err(message)`.
fn python(texts: &[String]) -> Vec<Result<(String, String), String>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/canonical.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (the differential oracle) must be installed");
    let mut input = String::new();
    for t in texts {
        input.push_str(&serde_json::to_string(t).unwrap());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "python3 failed");
    let answers: Vec<_> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            match (v["python"].as_str(), v["md5"].as_str()) {
                (Some(p), Some(m)) => Ok((p.to_owned(), m.to_owned())),
                _ => Err(v["error"].as_str().unwrap_or("?").to_owned()),
            }
        })
        .collect();
    assert_eq!(answers.len(), texts.len(), "python3 answered every text");
    answers
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn python_keys_match_python_on_random_json_texts() {
    let count = env_number("CACHETTE_PY_DIFF_COUNT", 12_000) as usize;
    let seed = env_number("CACHETTE_PY_DIFF_SEED", 0x5eed_cace_77e5_0001);
    let mut rng = Rng(seed | 1);
    let texts: Vec<String> = (0..count)
        .map(|_| {
            let mut t = String::new();
            ws(&mut rng, &mut t);
            value(&mut rng, 0, &mut t);
            ws(&mut rng, &mut t);
            t
        })
        .collect();
    let answers = python(&texts);
    let (mut agreed, mut refused, mut mismatches) = (0, 0, Vec::new());
    for (text, answer) in texts.iter().zip(&answers) {
        let got = canonical_json(text, KeyFormat::Python);
        let key = request_key("v", "ns", text, KeyFormat::Python);
        match answer {
            Ok((want, md5)) => {
                if got.as_deref() == Ok(want.as_str())
                    && key.as_deref() == Ok(format!("v:ns:{md5}").as_str())
                {
                    agreed += 1;
                } else {
                    mismatches.push(format!("{text}\n   python {want}\n   ours   {got:?}"));
                }
            }
            Err(why) => {
                if matches!(got, Err(cachette::Error::Unserializable(_))) && key.is_err() {
                    refused += 1;
                } else {
                    mismatches.push(format!(
                        "{text}\n   python refused ({why})\n   ours {got:?}"
                    ));
                }
            }
        }
    }
    eprintln!(
        "python differential (seed {seed:#x}): {count} texts, {agreed} identical, {refused} refused by both, {} mismatches",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {count} texts differ from Python:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator must exercise both outcomes.
    assert!(
        refused > 0 && agreed > count * 9 / 10,
        "{agreed} agreed, {refused} refused"
    );
}
