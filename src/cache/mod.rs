//! The cache above the algorithm, in layers that each own one concern:
//!
//! - [`Core`]: the one owner of policy, addressed by slot number (versions, request keys, TTL
//!   defaults, expiry on access, pattern removals, shutdown, counters and the snapshot, the
//!   removal log), over [`crate::memory::SlotTier`], the algorithm.
//! - Hosts keep only key→slot and the values: the JavaScript `MemoryCache`, and
//!   [`MemoryTier`] for everything written in Rust.
//! - [`TieredCache`]: the memory tier alone, or Upstash in front of it; the one place where an
//!   operation is dispatched between the two. `Cache` (JavaScript) and the Rust Worker API are
//!   thin faces on it.
//!
//! Also here: the patterns built from versions and namespaces, single-flight bookkeeping and
//! warm planning. Nothing here touches a JS runtime, so all of it is tested natively.

mod core;
pub mod generations;
mod tier;
mod tiered;

pub use self::core::{Core, Removed};
pub use tier::{Listener, MemoryTier};
pub use tiered::{
    Claim, Codec, Found, HealthReport, HealthStatus, Held, Lock, Read, RemoveCause, Since,
    TieredCache,
};

use hashbrown::HashMap;

use crate::error::Result;
use crate::glob;
use crate::key;
use crate::options::check_ttl;

/// The pattern matching every request key of `namespace` under `version`, with glob
/// metacharacters of both escaped (so namespace `a*` never matches namespace `ab`).
pub fn namespace_pattern(version: &str, namespace: &str) -> Result<String> {
    key::validate_segment("version", version)?;
    key::validate_segment("namespace", namespace)?;
    let mut p = String::with_capacity(version.len() + namespace.len() + 4);
    glob::escape_into(version, &mut p);
    p.push(':');
    glob::escape_into(namespace, &mut p);
    p.push_str(":*");
    Ok(p)
}

/// The pattern matching every key under `version`, escaped.
pub fn version_pattern(version: &str) -> Result<String> {
    key::validate_segment("version", version)?;
    let mut p = String::with_capacity(version.len() + 2);
    glob::escape_into(version, &mut p);
    p.push_str(":*");
    Ok(p)
}

/// The four ways of removing keys by pattern, each taking one string argument. The
/// discriminants cross into JavaScript (the `Removal` object of the wasm glue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Removal {
    /// `deletePattern(pattern)`: a Redis glob.
    Pattern = 0,
    /// `invalidateNamespace(namespace)`: every request key of a namespace, current version.
    Namespace = 1,
    /// `invalidateVersion(version)`: every key under a version.
    Version = 2,
    /// `updateVersion(version)`: switch to a new version, removing the old one's keys.
    SwitchVersion = 3,
}

/// Converts an optional per-call TTL in seconds (or the default) to milliseconds;
/// `Infinity` is [`crate::clock::NEVER_MS`].
pub fn ttl_ms(ttl_secs: Option<f64>, default_ms: u64) -> Result<u64> {
    match ttl_secs {
        None => Ok(default_ms),
        Some(secs) => {
            check_ttl("ttl", secs)?;
            Ok(crate::clock::secs_to_ms(secs))
        }
    }
}

/// In-flight generator calls by key, for single-flight `getOrSet`: the first caller registers a
/// shared handle (a promise in JavaScript), later callers for the same key get a clone of it.
#[derive(Debug)]
pub struct InFlight<P> {
    calls: HashMap<String, P>,
}

impl<P> Default for InFlight<P> {
    fn default() -> Self {
        InFlight {
            calls: HashMap::new(),
        }
    }
}

impl<P: Clone> InFlight<P> {
    /// The handle of a call under way for `key`.
    pub fn get(&self, key: &str) -> Option<P> {
        self.calls.get(key).cloned()
    }

    /// Registers the call for `key`.
    pub fn start(&mut self, key: &str, handle: P) {
        self.calls.insert(key.to_owned(), handle);
    }

    /// Forgets the call for `key` once it has settled.
    pub fn finish(&mut self, key: &str) {
        self.calls.remove(key);
    }

    /// Calls under way.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is under way.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// What one warm item came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmOutcome {
    /// Generated and stored.
    Warmed,
    /// Already cached (present, whatever its value).
    Skipped,
    /// The generator failed or its value could not be stored.
    Failed,
}

impl WarmOutcome {
    /// `"warmed"`, `"skipped"` or `"failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarmOutcome::Warmed => "warmed",
            WarmOutcome::Skipped => "skipped",
            WarmOutcome::Failed => "failed",
        }
    }
}

/// Totals of a warm run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmReport {
    /// Items generated and stored.
    pub warmed: u32,
    /// Items already cached.
    pub skipped: u32,
    /// Items that failed.
    pub failed: u32,
}

impl WarmReport {
    /// Adds one outcome.
    pub fn add(&mut self, outcome: WarmOutcome) {
        match outcome {
            WarmOutcome::Warmed => self.warmed += 1,
            WarmOutcome::Skipped => self.skipped += 1,
            WarmOutcome::Failed => self.failed += 1,
        }
    }

    /// Items counted so far.
    pub fn done(&self) -> u32 {
        self.warmed + self.skipped + self.failed
    }
}

/// One unit of warming work: a namespace, a topic, and the request key of `{"topic": topic}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmItem {
    /// Index of the namespace in the caller's list.
    pub namespace: usize,
    /// Index of the topic in the caller's list.
    pub topic: usize,
    /// The request key.
    pub key: String,
}

/// The JSON text of warm data for `topic`: `{"topic": topic}`.
pub fn topic_json(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len() + 12);
    out.push_str("{\"topic\":");
    out.push('"');
    for ch in topic.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("\"}");
    out
}

/// Every (namespace, topic) pair with its request key (made by `key_of(namespace, data_json)`),
/// namespace-major.
pub fn warm_plan(
    namespaces: &[String],
    topics: &[String],
    mut key_of: impl FnMut(&str, &str) -> Result<String>,
) -> Result<Vec<WarmItem>> {
    let mut items = Vec::with_capacity(namespaces.len() * topics.len());
    for (n, ns) in namespaces.iter().enumerate() {
        for (t, topic) in topics.iter().enumerate() {
            let key = key_of(ns, &topic_json(topic))?;
            items.push(WarmItem {
                namespace: n,
                topic: t,
                key,
            });
        }
    }
    Ok(items)
}
