//! Numbers: what a number literal is in each dialect's number model, and how each dialect prints
//! it (shortest round-trip digits, ties to even, ECMAScript's and Python's layouts).

#[cfg(not(target_arch = "wasm32"))]
use std::fmt;

use super::parse::{Bad, Parsed, Parser, Val};
use super::KeyFormat;

/// `Number.MAX_SAFE_INTEGER`, 2^53 − 1.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl Parser<'_> {
    /// Reads the number literal at the current position as the dialect's number model reads it:
    /// `Val::Int` for a literal that prints as its own digits, `Val::Dec` for at most 15
    /// significant digits of a normal double, `Val::Num` for any other finite number and
    /// `Val::Overflow` for one that overflows to ±Infinity.
    pub(super) fn number(&mut self) -> Parsed<Val> {
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
        // 64 bits: leading zeros (at most the input's length, below 2^32) and an exponent
        // (saturating far beyond any finite double's) never overflow their sum `power`.
        let mut scale: i64 = 0;
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
        let mut exponent: i64 = 0;
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
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(d - b'0'));
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
            let digits = count_digits(mant) as i64;
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
pub(super) fn push_number(x: f64, format: KeyFormat, out: &mut String) {
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
pub(super) fn push_digits(
    digits: &[u8],
    exp: i32,
    negative: bool,
    format: KeyFormat,
    out: &mut String,
) {
    if negative {
        out.push('-');
    }
    match format {
        KeyFormat::Jcs => layout_ecmascript(digits, exp, out),
        KeyFormat::Python => layout_python_repr(digits, exp, out),
    }
}

/// The decimal digits of `n`, written at the end of `buf`.
pub(super) fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
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
    use crate::canonical::tests::{is_unserializable_in, jcs, py};

    fn num(x: f64, format: KeyFormat) -> String {
        let mut s = String::new();
        push_number(x, format, &mut s);
        s
    }

    #[test]
    fn exponents_offset_by_many_leading_zeros() {
        // The exponent used to stop counting at 100000, so leading zeros beyond that were not
        // made up for: this read as 0.1 (caught by fuzz/fuzz_targets/canonical.rs's oracle).
        let zeros = "0".repeat(100_000);
        let text = format!("[0.{zeros}1e100005, -0.{zeros}15e100020, 0.{zeros}1e-100005]");
        assert_eq!(jcs(&text), "[10000,-15000000000000000000,0]");
        assert_eq!(py(&text), "[10000.0, -1.5e+19, 0.0]");
        assert!(is_unserializable_in(
            &format!("0.{zeros}1e100400"),
            KeyFormat::Python
        ));
        assert_eq!(
            jcs("[1e-99999999999999999999999, -0e99999999999999999999]"),
            "[0,0]"
        );
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
}
