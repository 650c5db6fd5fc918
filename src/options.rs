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
///
/// ```
/// use cachette::options::{Invalidation, Lock, Options, UpstashOptions};
///
/// let options = Options {
///     ttl: 600.0,
///     grace: 3600.0,
///     upstash: Some(UpstashOptions::new("https://example.upstash.io", "token")),
///     invalidation: Invalidation::Generation,
///     lock: Lock::On,
///     ..Options::default()
/// };
/// options.validate()?;
/// let policy = options.defaults();
/// assert_eq!((policy.ttl_ms, policy.grace_ms, policy.lock_ms), (Some(600_000), 3_600_000, 10_000));
/// // Refused with INVALID_OPTIONS: a lock without the shared tier.
/// let alone = Options { lock: Lock::On, ..Options::default() };
/// assert_eq!(alone.validate().unwrap_err().code(), "INVALID_OPTIONS");
/// # Ok::<(), cachette::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Key prefix; non-empty, no `:`. Default `"v1"`.
    pub version: String,
    /// Default TTL in seconds (fractional allowed; `f64::INFINITY`: no expiry). Default 3600.
    pub ttl: f64,
    /// Seconds an entry is kept past its TTL as a stale value (see [`Stale`]). Default 0.
    pub grace: f64,
    /// Whether `getOrSet` serves a stale value at once while one refresh runs. Default off.
    pub stale_while_revalidate: Stale,
    /// Whether `getOrSet` serves a stale value when the generator or the shared tier fails.
    /// Default off.
    pub stale_if_error: Stale,
    /// Seconds a generator may run before its waiters get `TIMEOUT`; 0 (default): no limit.
    pub timeout: f64,
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
    /// How the shared tier invalidates namespaces and versions. Default [`Invalidation::Scan`].
    pub invalidation: Invalidation,
    /// Seconds an instance trusts the generation counters it last read before a near copy
    /// needs them read again (generation mode). Default 1.
    pub generation_check: f64,
    /// Whether a miss takes a lock in the shared tier before generating. Default off.
    pub lock: Lock,
}

/// How the shared tier invalidates namespaces and versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Invalidation {
    /// `SCAN MATCH` + `UNLINK`: keys are `{version}:{namespace}:{md5}` with plain values,
    /// shared with other clients; an invalidation costs about one round trip per 1,000 keys of
    /// the whole database.
    #[default]
    Scan,
    /// Counters per version and per namespace: an invalidation is one `INCR`; values carry
    /// the generation they were written under and older ones are dead until their TTL ends.
    Generation,
}

/// The cross-instance lock a miss takes before generating (`lock` option).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Lock {
    /// No lock: single-flight per instance only.
    #[default]
    Off,
    /// A lock that lasts the call's `timeout`, or [`DEFAULT_LOCK_SECS`] without one.
    On,
    /// A lock that lasts this many seconds.
    Secs(f64),
}

/// How long a lock lasts when neither `lock.ttl` nor a `timeout` says: 10 seconds.
pub const DEFAULT_LOCK_SECS: f64 = 10.0;

impl Lock {
    /// How long the lock lasts in milliseconds (0: no lock), given the call's timeout.
    pub fn ttl_ms(self, timeout_ms: u64) -> u64 {
        match self {
            Lock::Off => 0,
            Lock::On if timeout_ms > 0 => timeout_ms,
            Lock::On => crate::clock::secs_to_ms(DEFAULT_LOCK_SECS),
            Lock::Secs(s) => crate::clock::secs_to_ms(s).max(1),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            version: "v1".to_owned(),
            ttl: 3600.0,
            grace: 0.0,
            stale_while_revalidate: Stale::Off,
            stale_if_error: Stale::Off,
            timeout: 0.0,
            max_entries: 1000,
            max_bytes: None,
            cleanup_interval: 60.0,
            key_format: KeyFormat::Jcs,
            upstash: None,
            fallback: true,
            local_ttl: 0.0,
            popular_topics: Vec::new(),
            invalidation: Invalidation::Scan,
            generation_check: 1.0,
            lock: Lock::Off,
        }
    }
}

/// How long past its TTL a stale value may be served for one purpose (`staleWhileRevalidate`,
/// `staleIfError`): not at all, for the grace period, or for a window of its own (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Stale {
    /// Never.
    #[default]
    Off,
    /// Within the grace period.
    Grace,
    /// Within this many seconds past the TTL.
    Secs(f64),
}

impl Stale {
    /// The window in milliseconds, given the grace period in milliseconds.
    pub fn window_ms(self, grace_ms: u64) -> u64 {
        match self {
            Stale::Off => 0,
            Stale::Grace => grace_ms,
            Stale::Secs(s) => crate::clock::secs_to_ms(s),
        }
    }
}

/// The policy of one call (per-call options over the cache's defaults), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallPolicy {
    /// The entry's TTL; `None`: no expiry.
    pub ttl_ms: Option<u64>,
    /// How long past its TTL the entry is kept as a stale value.
    pub grace_ms: u64,
    /// How long past its TTL a stale value is served at once while one refresh runs.
    pub stale_while_revalidate_ms: u64,
    /// How long past its TTL a stale value is served when the refresh fails.
    pub stale_if_error_ms: u64,
    /// The generator's time limit; 0: none.
    pub timeout_ms: u64,
    /// How long the shared-tier lock a miss takes lasts; 0: no lock.
    pub lock_ms: u64,
}

impl CallPolicy {
    /// This policy with the TTL a generator set (`ctx.ttl(d)`: `Some(None)` never expires), if
    /// it set one.
    pub fn with_ttl(mut self, ttl_ms: Option<Option<u64>>) -> CallPolicy {
        if let Some(ttl) = ttl_ms {
            self.ttl_ms = ttl;
        }
        self
    }

    /// How long past its TTL an entry stored under this policy is kept: the longest of the
    /// three windows.
    pub fn keep_ms(&self) -> u64 {
        self.grace_ms
            .max(self.stale_while_revalidate_ms)
            .max(self.stale_if_error_ms)
    }
}

/// Parses a duration written with a unit: a non-negative decimal number followed by `ms`, `s`,
/// `m`, `h` or `d` (`"500ms"`, `"1.5s"`, `"5m"`, `"1h"`, `"1d"`); returns seconds.
///
/// ```
/// use cachette::options::parse_duration;
/// assert_eq!(parse_duration("500ms"), Some(0.5));
/// assert_eq!(parse_duration("5m"), Some(300.0));
/// assert_eq!(parse_duration("5"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<f64> {
    // Digit by digit: `str::parse::<f64>` would bring Rust's float parser (about 20 KB of
    // wasm) into the module for this alone.
    let bytes = text.as_bytes();
    let (mut n, mut place, mut digits, mut i) = (0.0, 0.0, 0, 0);
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => {
                let d = f64::from(b - b'0');
                if place == 0.0 {
                    n = n * 10.0 + d;
                } else {
                    place /= 10.0;
                    n += d * place;
                }
                digits += 1;
            }
            b'.' if place == 0.0 && digits > 0 => {
                place = 1.0;
                digits = 0;
            }
            _ => break,
        }
        i += 1;
    }
    let scale = match &bytes[i..] {
        b"ms" => 0.001,
        b"s" => 1.0,
        b"m" => 60.0,
        b"h" => 3600.0,
        b"d" => 86_400.0,
        _ => return None,
    };
    (digits > 0).then_some(n * scale)
}

/// Checks a TTL in seconds: positive, at most 100 years, or `Infinity` (no expiry).
pub fn check_ttl(name: &str, secs: f64) -> Result<()> {
    if secs == f64::INFINITY {
        return Ok(());
    }
    if secs.is_nan() || secs <= 0.0 {
        return Err(invalid(format!(
            "{name} must be a positive duration (seconds, or a string such as \"30s\"); \
             for entries that never expire use Infinity"
        )));
    }
    check_secs(name, secs, false)
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

/// Why `lock` is refused without a shared tier.
pub const LOCK_NEEDS_UPSTASH: &str =
    "lock needs the upstash tier (one instance is already single-flight)";

/// A checked TTL in seconds as milliseconds; `None` for `Infinity` (no expiry).
pub fn ttl_to_ms(secs: f64) -> Option<u64> {
    (secs != f64::INFINITY).then(|| crate::clock::secs_to_ms(secs))
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
    /// The policy of a call that gives no options of its own (the TTL in milliseconds).
    pub fn defaults(&self) -> CallPolicy {
        let grace_ms = crate::clock::secs_to_ms(self.grace);
        let timeout_ms = crate::clock::secs_to_ms(self.timeout);
        CallPolicy {
            ttl_ms: ttl_to_ms(self.ttl),
            grace_ms,
            stale_while_revalidate_ms: self.stale_while_revalidate.window_ms(grace_ms),
            stale_if_error_ms: self.stale_if_error.window_ms(grace_ms),
            timeout_ms,
            lock_ms: self.lock.ttl_ms(timeout_ms),
        }
    }

    /// Validates every field. See the module docs for what is refused.
    pub fn validate(&self) -> Result<()> {
        validate_segment("version", &self.version).map_err(|e| invalid(format!("version: {e}")))?;
        check_ttl("ttl", self.ttl)?;
        check_secs("grace", self.grace, true)?;
        check_secs("timeout", self.timeout, true)?;
        for (name, stale) in [
            ("staleWhileRevalidate", self.stale_while_revalidate),
            ("staleIfError", self.stale_if_error),
        ] {
            if let Stale::Secs(s) = stale {
                check_secs(name, s, true)?;
            }
        }
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
        check_secs("generationCheck", self.generation_check, true)?;
        if let Lock::Secs(s) = self.lock {
            check_secs("lock.ttl", s, false)?;
        }
        if self.upstash.is_none() {
            if self.lock != Lock::Off {
                return Err(invalid(LOCK_NEEDS_UPSTASH.to_owned()));
            }
            if self.invalidation == Invalidation::Generation {
                return Err(invalid(
                    "invalidation: \"generation\" needs the upstash tier (a memory tier \
                     invalidates at once)"
                        .to_owned(),
                ));
            }
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
            Box::new(|o| o.ttl = f64::NEG_INFINITY),
            Box::new(|o| o.grace = -1.0),
            Box::new(|o| o.timeout = f64::INFINITY),
            Box::new(|o| o.stale_if_error = Stale::Secs(f64::NAN)),
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
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("500ms"), Some(0.5));
        assert_eq!(parse_duration("30s"), Some(30.0));
        assert_eq!(parse_duration("1.5m"), Some(90.0));
        assert_eq!(parse_duration("1h"), Some(3600.0));
        assert_eq!(parse_duration("1d"), Some(86_400.0));
        assert_eq!(parse_duration("0s"), Some(0.0));
        for bad in [
            "", "s", "5", "5 s", " 5s", "5S", "5sec", "-5s", "1.s", ".5s", "5.5.5s", "1e3s", "5mss",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ttl_infinity_means_no_expiry_and_zero_names_it() {
        let o = Options {
            ttl: f64::INFINITY,
            ..Options::default()
        };
        assert_eq!(code(&o), None);
        assert_eq!(o.defaults().ttl_ms, None);
        let msg = check_ttl("ttl", 0.0).unwrap_err().to_string();
        assert!(msg.contains("Infinity"), "{msg}");
    }

    #[test]
    fn stale_windows_default_to_grace() {
        let o = Options {
            grace: 10.0,
            stale_while_revalidate: Stale::Grace,
            stale_if_error: Stale::Secs(60.0),
            timeout: 0.5,
            ..Options::default()
        };
        let p = o.defaults();
        assert_eq!(p.ttl_ms, Some(3_600_000));
        assert_eq!((p.grace_ms, p.stale_while_revalidate_ms), (10_000, 10_000));
        assert_eq!(
            (p.stale_if_error_ms, p.timeout_ms, p.keep_ms()),
            (60_000, 500, 60_000)
        );
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
