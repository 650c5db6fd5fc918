//! Cache options and their validation.
//!
//! [`Options::validate`] refuses, with `INVALID_OPTIONS`, anything a cache cannot honour: an empty
//! version or one containing `:`, a TTL that is not a positive finite number of seconds, a
//! `maxEntries` of zero, a `maxBytes` of zero, a negative or non-finite `cleanupInterval` or
//! `localTtl`, an Upstash URL that is not `http(s)://`, an empty token, a zero timeout.
//! Validation never panics and never names the token.

use std::fmt;

use crate::error::{Error, Result};
use crate::key::{validate_segment, KeyFormat};

/// The longest TTL accepted: 100 years, in seconds.
pub const MAX_TTL_SECS: f64 = 100.0 * 365.25 * 24.0 * 3600.0;

/// Options for a cache. Field names match the JavaScript option bag (camelCase there).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Key prefix; non-empty, no `:`. Default `"v1"`.
    pub version: String,
    /// Default TTL in seconds (fractional allowed). Default 3600.
    pub ttl: f64,
    /// Entry bound of the memory tier. Default 1000.
    pub max_entries: usize,
    /// Optional byte bound of the memory tier.
    pub max_bytes: Option<u64>,
    /// Seconds between timer-driven sweeps; 0 turns the timer off. Default 60.
    pub cleanup_interval: f64,
    /// Canonical JSON dialect of request keys. Default [`KeyFormat::Jcs`].
    pub key_format: KeyFormat,
    /// The shared tier, if any.
    pub upstash: Option<UpstashOptions>,
    /// Serve from memory while the shared tier is unreachable. Default true.
    pub fallback: bool,
    /// Seconds a near copy of a shared-tier value stays in memory; 0 (default) turns it off.
    pub local_ttl: f64,
    /// Topics that `warm` uses when it is given none.
    pub popular_topics: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            version: "v1".to_owned(),
            ttl: 3600.0,
            max_entries: 1000,
            max_bytes: None,
            cleanup_interval: 60.0,
            key_format: KeyFormat::Jcs,
            upstash: None,
            fallback: true,
            local_ttl: 0.0,
            popular_topics: Vec::new(),
        }
    }
}

/// Connection settings of the shared tier.
#[derive(Clone, PartialEq)]
pub struct UpstashOptions {
    /// REST endpoint, `https://...` (or `http://` for a local server).
    pub url: String,
    /// Bearer token. Never printed: `Debug` shows `<redacted>`.
    pub token: String,
    /// Timeout of each request, milliseconds. Default 5000.
    pub timeout_ms: u32,
    /// Retries after a transport failure. Default 3.
    pub retries: u32,
}

impl UpstashOptions {
    /// Settings with the default timeout and retries.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        UpstashOptions {
            url: url.into(),
            token: token.into(),
            timeout_ms: 5000,
            retries: 3,
        }
    }
}

impl fmt::Debug for UpstashOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstashOptions")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .field("retries", &self.retries)
            .finish()
    }
}

fn invalid(msg: String) -> Error {
    Error::InvalidOptions(msg)
}

/// Checks a duration in seconds: finite, within [`MAX_TTL_SECS`], and positive unless
/// `zero_ok`.
pub fn check_secs(name: &str, secs: f64, zero_ok: bool) -> Result<()> {
    if !secs.is_finite() || secs < 0.0 || (!zero_ok && secs == 0.0) {
        let want = if zero_ok {
            "a finite number of seconds >= 0"
        } else {
            "a positive finite number of seconds"
        };
        return Err(invalid(format!("{name} must be {want}")));
    }
    if secs > MAX_TTL_SECS {
        return Err(invalid(format!("{name} must be at most 100 years")));
    }
    Ok(())
}

impl Options {
    /// Validates every field. See the module docs for what is refused.
    pub fn validate(&self) -> Result<()> {
        validate_segment("version", &self.version).map_err(|e| invalid(format!("version: {e}")))?;
        check_secs("ttl", self.ttl, false)?;
        check_secs("cleanupInterval", self.cleanup_interval, true)?;
        check_secs("localTtl", self.local_ttl, true)?;
        if self.max_entries == 0 {
            return Err(invalid("maxEntries must be at least 1".to_owned()));
        }
        if self.max_entries > u32::MAX as usize / 2 {
            return Err(invalid(format!(
                "maxEntries must be at most {}",
                u32::MAX / 2
            )));
        }
        if self.max_bytes == Some(0) {
            return Err(invalid("maxBytes must be at least 1".to_owned()));
        }
        if self.local_ttl > 0.0 && self.upstash.is_none() {
            return Err(invalid("localTtl needs the upstash tier".to_owned()));
        }
        if let Some(u) = &self.upstash {
            u.validate()?;
        }
        Ok(())
    }
}

impl UpstashOptions {
    /// Validates the connection settings (never naming the token).
    pub fn validate(&self) -> Result<()> {
        let url = self.url.trim();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| invalid("upstash.url must start with https:// or http://".to_owned()))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(invalid("upstash.url has no host".to_owned()));
        }
        if self.token.trim().is_empty() {
            return Err(invalid("upstash.token is empty".to_owned()));
        }
        if self
            .token
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(invalid(
                "upstash.token contains whitespace or control characters".to_owned(),
            ));
        }
        if self.timeout_ms == 0 {
            return Err(invalid("upstash.timeoutMs must be at least 1".to_owned()));
        }
        if self.retries > 10 {
            return Err(invalid(format!(
                "upstash.retries must be at most 10, got {}",
                self.retries
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(o: &Options) -> Option<&'static str> {
        o.validate().err().map(|e| e.code())
    }

    #[test]
    fn defaults_are_valid() {
        let o = Options::default();
        assert_eq!(code(&o), None);
        assert_eq!(o.version, "v1");
        assert_eq!(o.max_entries, 1000);
    }

    #[test]
    fn bad_fields_are_refused() {
        type Edit = Box<dyn Fn(&mut Options)>;
        let cases: Vec<Edit> = vec![
            Box::new(|o| o.version = String::new()),
            Box::new(|o| o.version = "v1:x".into()),
            Box::new(|o| o.ttl = 0.0),
            Box::new(|o| o.ttl = -1.0),
            Box::new(|o| o.ttl = f64::NAN),
            Box::new(|o| o.ttl = f64::INFINITY),
            Box::new(|o| o.ttl = 1e12),
            Box::new(|o| o.max_entries = 0),
            Box::new(|o| o.max_bytes = Some(0)),
            Box::new(|o| o.cleanup_interval = -1.0),
            Box::new(|o| o.local_ttl = 5.0),
            Box::new(|o| o.upstash = Some(UpstashOptions::new("ftp://x", "t"))),
            Box::new(|o| o.upstash = Some(UpstashOptions::new("https://", "t"))),
            Box::new(|o| o.upstash = Some(UpstashOptions::new("https://x", " "))),
            Box::new(|o| {
                let mut u = UpstashOptions::new("https://x", "t");
                u.timeout_ms = 0;
                o.upstash = Some(u);
            }),
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut o = Options::default();
            f(&mut o);
            assert_eq!(code(&o), Some("INVALID_OPTIONS"), "case {i}: {o:?}");
        }
    }

    #[test]
    fn fractional_durations_and_zero_interval_are_fine() {
        let o = Options {
            ttl: 0.05,
            cleanup_interval: 0.0,
            upstash: Some(UpstashOptions::new("http://127.0.0.1:8080", "secret")),
            local_ttl: 0.5,
            ..Options::default()
        };
        assert_eq!(code(&o), None);
    }

    #[test]
    fn token_is_never_printed() {
        let mut u = UpstashOptions::new("https://x", "hunter2-token");
        assert!(!format!("{u:?}").contains("hunter2"));
        u.url = "nope".into();
        let msg = u.validate().unwrap_err().to_string();
        assert!(!msg.contains("hunter2"));
        u.url = "https://x".into();
        u.token = "bad token".into();
        assert!(!u.validate().unwrap_err().to_string().contains("bad token"));
    }
}
