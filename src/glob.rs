//! Redis-compatible glob matching over bytes.
//!
//! [`matches()`] is a faithful port of Redis's `stringmatchlen` (as used by `KEYS` and
//! `SCAN ... MATCH`): `*`, `?`, `[...]`, `[^...]`, ranges (either order), `\` escapes, and the
//! lenient handling Redis gives to malformed patterns (an unterminated `[` class, a trailing `\`).
//! Redis compares bytes as C `char`, which is signed on the platforms it ships for, so range
//! bounds above `0x7f` compare as negative numbers; this port does the same. The memory tier uses
//! it so that it deletes exactly what `SCAN MATCH` would delete on Redis.
//!
//! [`validate`] refuses, with `INVALID_PATTERN`, only what no deletion should be driven by: the
//! empty pattern and patterns longer than [`MAX_PATTERN_BYTES`]. Malformed patterns (an
//! unterminated class, a trailing lone `\`) are accepted and match exactly as Redis matches
//! them, so that both tiers delete the same keys.
//! [`escape`] turns a literal string into a pattern that matches only itself.

use crate::error::{Error, Result};

/// The longest pattern accepted, in bytes (the same bound as keys).
pub const MAX_PATTERN_BYTES: usize = 32 * 1024;

/// Recursion bound, as in Redis: deeper nesting of `*` is treated as no match.
const MAX_NESTING: u32 = 1000;

/// Whether `string` matches `pattern`, exactly as Redis's `KEYS` and `SCAN MATCH` decide.
///
/// Like those commands, the lone pattern `*` matches every key, the empty key included (Redis
/// skips matching for it; `stringmatchlen` itself would refuse the empty key).
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    if pattern == b"*" {
        return true;
    }
    let mut skip_longer = false;
    match_impl(pattern, string, &mut skip_longer, 0)
}

/// Byte at `i`, or NUL past the end (Redis's strings are NUL-terminated and it reads the NUL).
#[inline]
fn at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

/// A byte compared as C's signed `char`.
#[inline]
fn signed(b: u8) -> i32 {
    i32::from(b as i8)
}

fn match_impl(mut p: &[u8], mut s: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_impl(&p[1..], s, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s = &s[1..];
            }
            b'[' => {
                // `i` walks the class; p[i] is the current class byte.
                let mut i = 1;
                let negate = at(p, i) == b'^';
                if negate {
                    i += 1;
                }
                let c = s[0];
                let mut hit = false;
                loop {
                    let rest = p.len().saturating_sub(i);
                    if at(p, i) == b'\\' && rest >= 2 {
                        i += 1;
                        if p[i] == c {
                            hit = true;
                        }
                    } else if at(p, i) == b']' {
                        break;
                    } else if rest == 0 {
                        // Unterminated class: step back so the advance below lands on the end.
                        i -= 1;
                        break;
                    } else if rest >= 3 && p[i + 1] == b'-' {
                        let (mut lo, mut hi) = (signed(p[i]), signed(p[i + 2]));
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        i += 2;
                        let c = signed(c);
                        if c >= lo && c <= hi {
                            hit = true;
                        }
                    } else if p[i] == c {
                        hit = true;
                    }
                    i += 1;
                }
                if negate {
                    hit = !hit;
                }
                if !hit {
                    return false;
                }
                s = &s[1..];
                p = &p[i..];
            }
            b'\\' => {
                if p.len() >= 2 {
                    p = &p[1..];
                }
                if p[0] != s[0] {
                    return false;
                }
                s = &s[1..];
            }
            b => {
                if b != s[0] {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

/// Checks a pattern before it drives a deletion. See the module docs for what is refused.
pub fn validate(pattern: &str) -> Result<()> {
    if pattern.is_empty() {
        return Err(Error::InvalidPattern(
            "invalid pattern: it is empty".to_owned(),
        ));
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(Error::InvalidPattern(format!(
            "invalid pattern: it is {} bytes long; the limit is {MAX_PATTERN_BYTES}",
            pattern.len()
        )));
    }
    Ok(())
}

/// Escapes every glob metacharacter (`*`, `?`, `[`, `]`, `\`) so that the result, used as a
/// pattern, matches exactly `literal`.
pub fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    escape_into(literal, &mut out);
    out
}

/// [`escape`], appending to `out`.
pub fn escape_into(literal: &str, out: &mut String) {
    for ch in literal.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn basics() {
        assert!(m("*", ""), "KEYS * and SCAN MATCH * match the empty key");
        assert!(
            !m("**", ""),
            "any other pattern goes through stringmatchlen"
        );
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"), "reversed ranges are accepted");
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
    }

    #[test]
    fn malformed_patterns_match_as_redis_does() {
        // An unterminated class still matches with the bytes it holds.
        assert!(m("[ab", "a"));
        // A trailing backslash matches a literal backslash.
        assert!(m("a\\", "a\\"));
        // A class with an escaped bracket.
        assert!(m("[\\]]", "]"));
    }

    #[test]
    fn high_bytes_compare_signed_in_ranges() {
        // 0xC3 (from "é") is -61 as a signed char, so [\xC3-a] spans -61..=97 and includes 'A'.
        assert!(matches(b"[\xC3-a]", b"A"));
        assert!(!matches(b"[\xC3-a]", b"b"));
    }

    #[test]
    fn nesting_limit_gives_no_match() {
        let p = "a*".repeat(1100);
        let s = "a".repeat(1100);
        assert!(!m(&p, &s));
        let p = "a*".repeat(900);
        assert!(m(&p, &s));
    }

    #[test]
    fn escape_makes_literals() {
        for lit in ["a*", "a?b", "[x]", "back\\slash", "plain", "é*😀"] {
            let pat = escape(lit);
            assert!(m(&pat, lit), "{pat} must match {lit}");
            validate(&pat).expect("escaped patterns are valid");
        }
        assert!(!m(&escape("a*"), "ab"));
        assert_eq!(escape("a*b"), "a\\*b");
    }

    #[test]
    fn validate_refuses_only_empty_and_oversized() {
        assert_eq!(validate("").map_err(|e| e.code()), Err("INVALID_PATTERN"));
        let long = "a".repeat(MAX_PATTERN_BYTES + 1);
        assert_eq!(
            validate(&long).map_err(|e| e.code()),
            Err("INVALID_PATTERN")
        );
        for good in [
            "*",
            "v1:subtopics:*",
            "[]a]",
            "h[^e]llo",
            "\\[",
            "[a-]",
            "[abc",
            "abc\\",
            "[^",
        ] {
            validate(good).expect(good);
        }
    }
}
