//! One error type with stable codes.
//!
//! Every failure in Cachette is an [`Error`]. Its [`Error::code`] is stable and is what crosses into
//! JavaScript as `CacheError.code`; the message is for people and may change. No message ever
//! contains an Upstash token.

use std::fmt;

/// Every failure Cachette reports.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An option is missing, out of range or of the wrong type.
    InvalidOptions(String),
    /// A key, version or namespace is not acceptable (too long, empty segment, `:` in a segment).
    InvalidKey(String),
    /// A glob pattern is not acceptable.
    InvalidPattern(String),
    /// A value (or request data) cannot be turned into JSON.
    Unserializable(String),
    /// A value is larger than the memory tier's byte bound.
    ValueTooLarge {
        /// The size of the refused value, in bytes.
        size: u64,
        /// The largest size the tier accepts.
        max: u64,
    },
    /// Upstash refused the token (HTTP 401).
    UpstashAuth(String),
    /// Upstash ran the command and it failed (WRONGTYPE, NOPERM, syntax, ...).
    UpstashCommand(String),
    /// Upstash could not be reached (network failure, reset, 5xx).
    UpstashTransport(String),
    /// Upstash answered with something that is not the REST dialect.
    UpstashProtocol(String),
    /// An operation did not finish in time.
    Timeout(String),
    /// The cache was shut down.
    ShutDown,
    /// A generator passed to `getOrSet` or `warm` failed.
    GeneratorFailed(String),
}

impl Error {
    /// The stable code: the same text as `CacheError.code` in JavaScript.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidOptions(_) => "INVALID_OPTIONS",
            Error::InvalidKey(_) => "INVALID_KEY",
            Error::InvalidPattern(_) => "INVALID_PATTERN",
            Error::Unserializable(_) => "UNSERIALIZABLE",
            Error::ValueTooLarge { .. } => "VALUE_TOO_LARGE",
            Error::UpstashAuth(_) => "UPSTASH_AUTH",
            Error::UpstashCommand(_) => "UPSTASH_COMMAND",
            Error::UpstashTransport(_) => "UPSTASH_TRANSPORT",
            Error::UpstashProtocol(_) => "UPSTASH_PROTOCOL",
            Error::Timeout(_) => "TIMEOUT",
            Error::ShutDown => "SHUT_DOWN",
            Error::GeneratorFailed(_) => "GENERATOR_FAILED",
        }
    }

    /// Every code, in declaration order.
    pub const CODES: [&'static str; 12] = [
        "INVALID_OPTIONS",
        "INVALID_KEY",
        "INVALID_PATTERN",
        "UNSERIALIZABLE",
        "VALUE_TOO_LARGE",
        "UPSTASH_AUTH",
        "UPSTASH_COMMAND",
        "UPSTASH_TRANSPORT",
        "UPSTASH_PROTOCOL",
        "TIMEOUT",
        "SHUT_DOWN",
        "GENERATOR_FAILED",
    ];
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidOptions(m)
            | Error::InvalidKey(m)
            | Error::InvalidPattern(m)
            | Error::Unserializable(m)
            | Error::UpstashAuth(m)
            | Error::UpstashCommand(m)
            | Error::UpstashTransport(m)
            | Error::UpstashProtocol(m)
            | Error::Timeout(m)
            | Error::GeneratorFailed(m) => f.write_str(m),
            Error::ValueTooLarge { size, max } => {
                write!(
                    f,
                    "value of {size} bytes exceeds the memory tier bound of {max} bytes"
                )
            }
            Error::ShutDown => f.write_str("the cache has been shut down"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let all = [
            Error::InvalidOptions(String::new()),
            Error::InvalidKey(String::new()),
            Error::InvalidPattern(String::new()),
            Error::Unserializable(String::new()),
            Error::ValueTooLarge { size: 2, max: 1 },
            Error::UpstashAuth(String::new()),
            Error::UpstashCommand(String::new()),
            Error::UpstashTransport(String::new()),
            Error::UpstashProtocol(String::new()),
            Error::Timeout(String::new()),
            Error::ShutDown,
            Error::GeneratorFailed(String::new()),
        ];
        let codes: Vec<_> = all.iter().map(Error::code).collect();
        assert_eq!(codes, Error::CODES);
    }

    #[test]
    fn value_too_large_message_names_both_sizes() {
        let e = Error::ValueTooLarge { size: 10, max: 4 };
        assert_eq!(
            e.to_string(),
            "value of 10 bytes exceeds the memory tier bound of 4 bytes"
        );
    }
}
