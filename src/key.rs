//! Request keys, and every check of a key or a key segment.
//!
//! A request key is `{version}:{namespace}:{md5}`, where `md5` is 32 lowercase hex digits of the
//! MD5 of the canonical JSON of the request data ([`crate::canonical`] describes both dialects).
//! Version and namespace are segments: non-empty, at most [`MAX_SEGMENT_LEN`] bytes and free of
//! `:` ([`validate_segment`]). A raw key, which the caller chooses, is any UTF-8 string of at most
//! [`MAX_KEY_BYTES`] bytes, the empty string included ([`validate_key`]).
//!
//! The canonical JSON functions and [`KeyFormat`] are re-exported here from
//! [`crate::canonical`], where they are defined.

use crate::error::{Error, Result};
use crate::md5::md5_hex_into;

#[cfg(feature = "serde")]
pub use crate::canonical::canonical_json_value;
pub use crate::canonical::{canonical_json, canonicalize_into, KeyFormat, MAX_DEPTH};

/// The longest version or namespace segment accepted, in bytes.
pub const MAX_SEGMENT_LEN: usize = 256;

/// The longest key accepted, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 32 * 1024;

/// Checks a raw key: at most [`MAX_KEY_BYTES`] bytes (the empty key is allowed, as in Redis).
pub fn validate_key(key: &str) -> Result<()> {
    validate_key_len(key.len())
}

/// Checks the UTF-8 length of a raw key held elsewhere (see [`validate_key`]).
pub fn validate_key_len(len: usize) -> Result<()> {
    if len > MAX_KEY_BYTES {
        return Err(Error::InvalidKey(format!(
            "key is {len} bytes long; the limit is {MAX_KEY_BYTES}"
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys() {
        assert!(validate_key("").is_ok());
        assert!(validate_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        match validate_key(&"k".repeat(MAX_KEY_BYTES + 1)) {
            Err(Error::InvalidKey(msg)) => {
                assert_eq!(msg, "key is 32769 bytes long; the limit is 32768")
            }
            other => panic!("{other:?}"),
        }
        // The limit counts bytes of UTF-8, not characters.
        assert!(validate_key(&"é".repeat(MAX_KEY_BYTES / 2)).is_ok());
        assert!(validate_key(&"é".repeat(MAX_KEY_BYTES / 2 + 1)).is_err());
        assert!(validate_key_len(MAX_KEY_BYTES).is_ok());
        assert!(validate_key_len(usize::MAX).is_err());
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
}
