//! Small helpers: percent-decoding, query strings, constant-time comparison.

/// Decodes `%XX` escapes into bytes. A `%` not followed by two hex digits stays as it is; `+`
/// stays `+` (RFC 3986, not HTML forms: tokens and values may contain `+`).
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The `key=value` pairs of a query string, percent-decoded, in order. A piece without `=`
/// yields `(key, None)`; empty pieces are skipped.
pub fn query_pairs(query: &str) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once('=') {
            Some((k, v)) => (
                percent_decode(k.as_bytes()),
                Some(percent_decode(v.as_bytes())),
            ),
            None => (percent_decode(piece.as_bytes()), None),
        })
        .collect()
}

/// Compares secrets in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode(b"a%2Fb"), b"a/b");
        assert_eq!(percent_decode(b"%e2%82%ac"), "€".as_bytes());
        assert_eq!(percent_decode(b"%80"), [0x80]);
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%zz"), b"%zz");
        assert_eq!(percent_decode(b"a+b"), b"a+b");
    }

    #[test]
    fn splits_queries() {
        let pairs = query_pairs("EX=100&&_token=a%2Bb&WITHSCORES");
        assert_eq!(
            pairs,
            vec![
                (b"EX".to_vec(), Some(b"100".to_vec())),
                (b"_token".to_vec(), Some(b"a+b".to_vec())),
                (b"WITHSCORES".to_vec(), None),
            ]
        );
    }

    #[test]
    fn compares_secrets() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
