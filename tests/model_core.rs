//! The policy core against a plain reference model, by proptest.
//!
//! The system under test is the cache without a shared tier (`TieredCache` over `MemoryTier` and
//! `Core`), driven by random operation sequences: writes with and without a TTL, reads, `has`,
//! deletes, request keys, pattern deletions, namespace and version invalidations, version
//! switches, `clear`, sweeps, statistics, clock jumps forwards and backwards, and shutdown near
//! the end. The model is a `Vec` of entries in recency order with the rules of the README
//! (expiry at `stored_at + ttl`, true LRU, entry and byte bounds, `VALUE_TOO_LARGE`, `SHUT_DOWN`)
//! and its own Redis glob matcher. Expired entries stay in the cache until something removes
//! them, and they count against the bounds, so the model also keeps the documented expiry index
//! (one list per TTL value, at most 16 lists, a few expired list heads swept per operation) to
//! know exactly which expired entries are still held.
//!
//! After every step the test compares the operation's result, the entry count, the bytes
//! charged, the removal counts by cause, the live keys in recency order, each entry's value and
//! remaining TTL, the earliest expiry, the counters, the version and the shutdown state, and
//! runs the structure's invariant checker. A failing sequence is shrunk to a minimal one.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default).
// proptest is a native dev dependency only.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use cachette::cache::{Held, Removal, TieredCache};
use cachette::clock::{Clock, ManualClock};
use cachette::key::MAX_KEY_BYTES;
use cachette::memory::{RemovalCause, RemovalCounts, SWEEP_PER_OP};
use cachette::options::Options;
use cachette::stats::Counters;
use cachette::KeyFormat;
use support::{block_on, BlockingTransport, Text};

// ---- operations ---------------------------------------------------------------------------------

/// A key: a short string, or one over the 32 KiB limit (kept short in the debug output).
#[derive(Debug, Clone)]
enum Key {
    Raw(String),
    Huge,
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Raw(k) => k.clone(),
            Key::Huge => "k".repeat(MAX_KEY_BYTES + 1),
        }
    }
}

/// The TTL argument of a write: the default, milliseconds (passed as seconds), `Infinity` (no
/// expiry), or a refused number of seconds.
#[derive(Debug, Clone, Copy)]
enum Ttl {
    Default,
    Ms(u64),
    Never,
    Bad(f64),
}

impl Ttl {
    fn secs(self) -> Option<f64> {
        match self {
            Ttl::Default => None,
            Ttl::Ms(ms) => Some(ms as f64 / 1000.0),
            Ttl::Never => Some(f64::INFINITY),
            Ttl::Bad(secs) => Some(secs),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: Key,
        size: u64,
        ttl: Ttl,
    },
    Get {
        key: Key,
    },
    Has {
        key: Key,
    },
    Delete {
        key: Key,
    },
    /// A write through the memory tier's own API: a TTL in milliseconds (`None`: never expires),
    /// nothing counted.
    Insert {
        key: Key,
        size: u64,
        ttl_ms: Option<u64>,
    },
    /// A write under the request key of `ns` and `{"topic": topic}`.
    RequestSet {
        ns: &'static str,
        topic: &'static str,
        size: u64,
        ttl: Ttl,
    },
    /// A read of the request key of `ns` and `{"topic": topic}`.
    RequestGet {
        ns: &'static str,
        topic: &'static str,
    },
    DeletePattern {
        pattern: String,
    },
    InvalidateNamespace {
        ns: &'static str,
    },
    InvalidateVersion {
        version: &'static str,
    },
    UpdateVersion {
        version: &'static str,
    },
    Clear,
    Advance {
        ms: u64,
    },
    /// The clock steps backwards (saturating at 0).
    Rewind {
        ms: u64,
    },
    /// A sweep looking at `budget` index items at most; `None`: the full sweep of a cleanup timer.
    Sweep {
        budget: Option<usize>,
    },
    Stats,
    Shutdown,
}

/// The cache's options.
#[derive(Debug, Clone, Copy)]
struct Setup {
    max_entries: usize,
    max_bytes: Option<u64>,
    default_ttl_ms: u64,
}

/// What an operation answered. Errors are compared by code.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Done,
    Value(Option<String>),
    Bool(bool),
    Count(u64),
    Stats {
        counters: Counters,
        keys: u64,
        bytes: u64,
        version: String,
        max_entries: u64,
    },
}

type Answer = Result<Reply, &'static str>;

const FIRST_VERSION: &str = "v1";
const START_MS: u64 = 1_000_000;
/// The longest TTL accepted: 100 years.
const MAX_TTL_MS: u64 = 3_155_760_000_000;

/// Keys that patterns, namespaces and versions below are likely to match.
const KEYS: &[&str] = &[
    "", "a", "b", "ab", "a*", "[a]", "\\", "é", "v1:ns:a", "v1:ns:b", "v1:a*:b", "v1:ab:c",
    "v2:ns:a", "v*:ns:a", "v10:ns:a",
];
/// Keys read and written most.
const HOT_KEYS: &[&str] = &["a", "b", "ab", "v1:ns:a"];
const KEY_CHARS: &[char] = &['a', 'b', '*', ':', 'é'];
const PATTERNS: &[&str] = &[
    "*", "v1:*", "v1:ns:*", "v?:*", "[a-b]*", "[b-a]", "*\\", "[^a]*", "[", "a[", "\\*", "[a-é]",
    "*a*", "v[12]:*",
];
const PATTERN_CHARS: &[char] = &[
    'a', 'b', 'v', '1', ':', '*', '?', '[', ']', '^', '-', '\\', 'é',
];
const NAMESPACES: &[&str] = &["ns", "a*", "ab", "[x]", "n\\"];
const VERSIONS: &[&str] = &["v1", "v2", "v*", "v10"];
/// Refused as a namespace or a version.
const BAD_SEGMENTS: &[&str] = &["", "b:c"];
const TOPICS: &[&str] = &["a", "b", "Python Programming"];

fn topic_json(topic: &str) -> String {
    format!("{{\"topic\":\"{topic}\"}}")
}

// ---- strategies ---------------------------------------------------------------------------------

fn string_of(
    chars: &'static [char],
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(chars), len).prop_map(|cs| cs.into_iter().collect())
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        50 => prop::sample::select(HOT_KEYS).prop_map(|k| Key::Raw(k.to_owned())),
        25 => prop::sample::select(KEYS).prop_map(|k| Key::Raw(k.to_owned())),
        5 => string_of(KEY_CHARS, 1..=2).prop_map(Key::Raw),
        1 => Just(Key::Huge),
    ]
}

/// A namespace or version from `valid`, sometimes a refused one.
fn segment(valid: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => prop::sample::select(valid),
        1 => prop::sample::select(BAD_SEGMENTS),
    ]
}

fn ttl() -> impl Strategy<Value = Ttl> {
    prop_oneof![
        6 => Just(Ttl::Default),
        4 => prop::sample::select(&[1u64, 2, 5, 10, 50, 100, 1_000, 60_000][..]).prop_map(Ttl::Ms),
        1 => (1u64..=40).prop_map(Ttl::Ms),
        1 => Just(Ttl::Ms(MAX_TTL_MS)),
        1 => Just(Ttl::Never),
        1 => prop::sample::select(&[0.0, -1.0, f64::NAN, f64::NEG_INFINITY, 3_155_760_001.0][..])
            .prop_map(Ttl::Bad),
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(PATTERNS).prop_map(str::to_owned),
        2 => string_of(PATTERN_CHARS, 0..=6),
    ]
}

/// A value's size; now and then one that no byte bound admits.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![30 => 0u64..=12, 1 => Just(u64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    let ns = || segment(NAMESPACES);
    let topic = || prop::sample::select(TOPICS);
    let version = || segment(VERSIONS);
    prop_oneof![
        16 => (key(), size(), ttl()).prop_map(|(key, size, ttl)| Op::Set { key, size, ttl }),
        2 => (key(), size(), prop::option::of(prop::sample::select(&[1u64, 10, 100][..])))
            .prop_map(|(key, size, ttl_ms)| Op::Insert { key, size, ttl_ms }),
        8 => key().prop_map(|key| Op::Get { key }),
        3 => key().prop_map(|key| Op::Has { key }),
        2 => key().prop_map(|key| Op::Delete { key }),
        4 => (ns(), topic(), size(), ttl())
            .prop_map(|(ns, topic, size, ttl)| Op::RequestSet { ns, topic, size, ttl }),
        3 => (ns(), topic()).prop_map(|(ns, topic)| Op::RequestGet { ns, topic }),
        2 => pattern().prop_map(|pattern| Op::DeletePattern { pattern }),
        2 => ns().prop_map(|ns| Op::InvalidateNamespace { ns }),
        1 => version().prop_map(|version| Op::InvalidateVersion { version }),
        1 => version().prop_map(|version| Op::UpdateVersion { version }),
        1 => Just(Op::Clear),
        4 => (0u64..=20).prop_map(|ms| Op::Advance { ms }),
        1 => prop::sample::select(&[50u64, 100, 1_000, 3_600_000, 10_000_000][..])
            .prop_map(|ms| Op::Advance { ms }),
        3 => prop::sample::select(&[1u64, 2, 5, 20, 100, 1_000][..])
            .prop_map(|ms| Op::Rewind { ms }),
        2 => prop::option::of(0usize..=6).prop_map(|budget| Op::Sweep { budget }),
        1 => Just(Op::Stats),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1usize..=8,
        prop::option::weighted(0.4, prop_oneof![8u64..=30, 40u64..=120]),
        prop::sample::select(&[5u64, 100, 60_000, 3_600_000][..]),
    )
        .prop_map(|(max_entries, max_bytes, default_ttl_ms)| Setup {
            max_entries,
            max_bytes,
            default_ttl_ms,
        })
}

/// Up to 64 operations; in about a third of the sequences a shutdown, followed by at most three
/// more operations.
fn scenario() -> impl Strategy<Value = (Setup, Vec<Op>)> {
    (
        setup(),
        prop::collection::vec(op(), 1..=64),
        prop::option::weighted(0.3, 0usize..4),
    )
        .prop_map(|(setup, mut ops, shutdown)| {
            if let Some(after) = shutdown {
                let at = ops.len().saturating_sub(after);
                ops.insert(at, Op::Shutdown);
            }
            (setup, ops)
        })
}

/// Room for more than 16 entries, and writes with many distinct TTLs while the clock moves
/// little: entries past the 16th TTL list join the list of the nearest TTL, behind entries that
/// may expire later.
fn many_ttls() -> impl Strategy<Value = (Setup, Vec<Op>)> {
    let setup = (17usize..=32, prop::sample::select(&[20u64, 3_600_000][..])).prop_map(
        |(max_entries, default_ttl_ms)| Setup {
            max_entries,
            max_bytes: None,
            default_ttl_ms,
        },
    );
    let key = || string_of(KEY_CHARS, 2..=3).prop_map(Key::Raw);
    let ttl = prop_oneof![
        1 => Just(Ttl::Default),
        2 => (1u64..=60).prop_map(Ttl::Ms),
        6 => (1_000u64..=1_060).prop_map(Ttl::Ms),
    ];
    let op = prop_oneof![
        24 => (key(), ttl).prop_map(|(key, ttl)| Op::Set { key, size: 0, ttl }),
        6 => key().prop_map(|key| Op::Get { key }),
        2 => key().prop_map(|key| Op::Has { key }),
        6 => (0u64..=30).prop_map(|ms| Op::Advance { ms }),
        1 => (40u64..=1_100).prop_map(|ms| Op::Advance { ms }),
        3 => (1u64..=30).prop_map(|ms| Op::Rewind { ms }),
        2 => prop::option::of(0usize..=6).prop_map(|budget| Op::Sweep { budget }),
        2 => pattern().prop_map(|pattern| Op::DeletePattern { pattern }),
        1 => Just(Op::Stats),
    ];
    (setup, prop::collection::vec(op, 1..=96))
}

// ---- the reference glob matcher -----------------------------------------------------------------

/// Whether `s` matches the Redis glob `p`, as `SCAN MATCH` decides: Redis skips matching for the
/// lone pattern `*`, and otherwise runs `stringmatchlen` (util.c), transliterated below without
/// its early exit for failed `*` matches (which changes speed, not results) and without its
/// nesting bound (the patterns here are short).
fn redis_match(p: &[u8], s: &[u8]) -> bool {
    if p == b"*" {
        return true;
    }
    if p.is_empty() || s.is_empty() {
        return p.is_empty() && s.is_empty();
    }
    match_from(p, s)
}

/// The body of `stringmatchlen`'s loop, with `p` and `s` both non-empty.
fn match_from(p: &[u8], s: &[u8]) -> bool {
    let c = s[0];
    match p[0] {
        b'*' => {
            // A run of stars is one star.
            let stars = p.iter().take_while(|&&b| b == b'*').count();
            let rest = &p[stars..];
            if rest.is_empty() {
                return true;
            }
            (0..s.len()).any(|skip| match_from(rest, &s[skip..]))
        }
        b'?' => advance(&p[1..], &s[1..]),
        b'[' => {
            let (hit, class_len) = class(&p[1..], c);
            if !hit {
                return false;
            }
            advance(&p[1 + class_len..], &s[1..])
        }
        b'\\' if p.len() >= 2 => p[1] == c && advance(&p[2..], &s[1..]),
        b => b == c && advance(&p[1..], &s[1..]),
    }
}

/// After one byte of each is consumed: an exhausted string matches what is left of the pattern
/// only when that is stars.
fn advance(p: &[u8], s: &[u8]) -> bool {
    if s.is_empty() {
        return p.iter().all(|&b| b == b'*');
    }
    !p.is_empty() && match_from(p, s)
}

/// A character class (`body` follows the `[`) tested against `c`: whether it matched, and how
/// many bytes of `body` it spans, its `]` included. An unterminated class spans the rest of the
/// pattern. Range bounds compare as C's signed `char`, either order.
fn class(body: &[u8], c: u8) -> (bool, usize) {
    let signed = |b: u8| i32::from(b as i8);
    let negate = body.first() == Some(&b'^');
    let mut i = usize::from(negate);
    let mut hit = false;
    loop {
        let left = body.len() - i;
        if left == 0 {
            break;
        }
        let b = body[i];
        if b == b'\\' && left >= 2 {
            hit |= body[i + 1] == c;
            i += 2;
        } else if b == b']' {
            i += 1;
            break;
        } else if left >= 3 && body[i + 1] == b'-' {
            let (a, z) = (signed(b), signed(body[i + 2]));
            let (lo, hi) = if a <= z { (a, z) } else { (z, a) };
            hit |= (lo..=hi).contains(&signed(c));
            i += 3;
        } else {
            hit |= b == c;
            i += 1;
        }
    }
    (hit != negate, i)
}

/// `literal` as a pattern matching only itself.
fn escape(literal: &str) -> String {
    let mut out = String::new();
    for ch in literal.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

// ---- the reference model ------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: String,
    charge: u64,
    /// [`NEVER`] for an entry without a TTL.
    expires_at: u64,
}

const NEVER: u64 = u64::MAX;

/// One list of the expiry index: the keys of entries with this TTL, in the order they were
/// indexed.
#[derive(Debug, Clone)]
struct TtlList {
    ttl: u64,
    keys: Vec<String>,
}

/// The most TTL lists (README, "Expiry": past 16 distinct TTLs an entry joins the list of the
/// nearest one).
const MAX_LISTS: usize = 16;

#[derive(Debug)]
struct Model {
    setup: Setup,
    now: u64,
    version: String,
    /// Most recently used first; expired entries stay until something removes them.
    entries: Vec<Entry>,
    lists: Vec<TtlList>,
    removals: RemovalCounts,
    /// Hits, misses, sets, deletes and invalidations (the rest come from `removals`).
    counters: Counters,
    shut_down: bool,
    /// What the sequence exercised, for the summary.
    tally: Tally,
}

/// What sequences exercised: errors by code, entries that joined the list of another TTL, and
/// expired entries still held that a clock step backwards made live again.
#[derive(Debug, Default)]
struct Tally {
    errors: std::collections::BTreeMap<&'static str, u64>,
    shared_lists: u64,
    revived: u64,
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.contains(':')
}

impl Model {
    fn new(setup: Setup) -> Self {
        Model {
            setup,
            now: START_MS,
            version: FIRST_VERSION.to_owned(),
            entries: Vec::new(),
            lists: Vec::new(),
            removals: RemovalCounts::default(),
            counters: Counters::default(),
            shut_down: false,
            tally: Tally::default(),
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.key == key)
    }

    fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.charge).sum()
    }

    fn is_live(&self, e: &Entry) -> bool {
        e.expires_at > self.now
    }

    fn live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| self.is_live(e))
    }

    fn count(&mut self, cause: RemovalCause) {
        let r = &mut self.removals;
        match cause {
            RemovalCause::Expired => r.expired += 1,
            RemovalCause::Explicit => r.explicit += 1,
            RemovalCause::Replaced => r.replaced += 1,
            RemovalCause::Evicted => r.evicted += 1,
        }
    }

    fn unindex(&mut self, key: &str) {
        for list in &mut self.lists {
            if let Some(i) = list.keys.iter().position(|k| k == key) {
                list.keys.remove(i);
                return;
            }
        }
    }

    /// The list of `ttl`; else the first empty list, taken over; else a new list; else (all 16
    /// in use) the first list of the nearest TTL.
    fn list_for(&mut self, ttl: u64) -> usize {
        if let Some(i) = self.lists.iter().position(|l| l.ttl == ttl) {
            return i;
        }
        if let Some(i) = self.lists.iter().position(|l| l.keys.is_empty()) {
            self.lists[i].ttl = ttl;
            return i;
        }
        if self.lists.len() < MAX_LISTS {
            self.lists.push(TtlList {
                ttl,
                keys: Vec::new(),
            });
            return self.lists.len() - 1;
        }
        self.tally.shared_lists += 1;
        let nearest = self
            .lists
            .iter()
            .map(|l| l.ttl.abs_diff(ttl))
            .min()
            .unwrap();
        self.lists
            .iter()
            .position(|l| l.ttl.abs_diff(ttl) == nearest)
            .unwrap()
    }

    fn index(&mut self, key: &str, ttl: u64) {
        let i = self.list_for(ttl);
        self.lists[i].keys.push(key.to_owned());
    }

    fn remove_at(&mut self, i: usize, cause: RemovalCause) {
        let e = self.entries.remove(i);
        self.unindex(&e.key);
        self.count(cause);
    }

    /// Removes expired list heads, scanning the lists in order, `budget` at most: the sweep of
    /// a normal operation. Entries behind a live head are left (swept late, never returned).
    fn sweep(&mut self, budget: usize) -> usize {
        let mut n = 0;
        while n < budget {
            let due = self.lists.iter().find_map(|l| {
                let head = l.keys.first()?;
                let e = self.entries.iter().find(|e| &e.key == head).unwrap();
                (e.expires_at <= self.now).then(|| head.clone())
            });
            let Some(key) = due else { break };
            let i = self.position(&key).unwrap();
            self.remove_at(i, RemovalCause::Expired);
            n += 1;
        }
        n
    }

    /// Removes every expired entry, wherever it sits in the index.
    fn sweep_all(&mut self) -> usize {
        let mut n = 0;
        while let Some(i) = self.entries.iter().position(|e| e.expires_at <= self.now) {
            self.remove_at(i, RemovalCause::Expired);
            n += 1;
        }
        n
    }

    /// Evicts the least recently used entry while a bound is exceeded (never the last one).
    fn fit(&mut self) {
        let over = |m: &Model| {
            m.entries.len() > m.setup.max_entries
                || m.setup.max_bytes.is_some_and(|b| m.bytes() > b)
        };
        while over(self) && self.entries.len() >= 2 {
            self.remove_at(self.entries.len() - 1, RemovalCause::Evicted);
        }
    }

    fn open(&self) -> Result<(), &'static str> {
        if self.shut_down {
            Err("SHUT_DOWN")
        } else {
            Ok(())
        }
    }

    fn check_key(key: &str) -> Result<(), &'static str> {
        if key.len() > MAX_KEY_BYTES {
            Err("INVALID_KEY")
        } else {
            Ok(())
        }
    }

    /// A write through the cache: the TTL resolved, a set counted.
    fn set(&mut self, key: &str, value: &str, size: u64, ttl: Ttl) -> Answer {
        self.open()?;
        Self::check_key(key)?;
        let ttl = match ttl {
            Ttl::Default => Some(self.setup.default_ttl_ms),
            Ttl::Ms(ms) => Some(ms),
            Ttl::Never => None,
            Ttl::Bad(_) => return Err("INVALID_OPTIONS"),
        };
        self.store(key, value, size, ttl)?;
        self.counters.sets += 1;
        Ok(Reply::Done)
    }

    /// Stores an entry expiring `ttl` milliseconds from now (`None`: never), counting nothing.
    fn store(&mut self, key: &str, value: &str, size: u64, ttl: Option<u64>) -> Answer {
        self.open()?;
        Self::check_key(key)?;
        let charge = match self.setup.max_bytes {
            Some(max) => {
                let charge = (key.len() as u64).saturating_add(size);
                if charge > max {
                    return Err("VALUE_TOO_LARGE");
                }
                charge
            }
            None => 0,
        };
        self.sweep(SWEEP_PER_OP);
        let expires_at = ttl.map_or(NEVER, |ttl| self.now + ttl);
        match self.position(key) {
            Some(i) if self.is_live(&self.entries[i]) => {
                let mut e = self.entries.remove(i);
                e.value = value.to_owned();
                e.charge = charge;
                e.expires_at = expires_at;
                self.entries.insert(0, e);
                self.unindex(key);
                self.count(RemovalCause::Replaced);
            }
            found => {
                if let Some(i) = found {
                    self.remove_at(i, RemovalCause::Expired);
                }
                self.entries.insert(
                    0,
                    Entry {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        charge,
                        expires_at,
                    },
                );
            }
        }
        if let Some(ttl) = ttl {
            self.index(key, ttl);
        }
        self.fit();
        Ok(Reply::Done)
    }

    /// Finds the live entry of `key` after the sweep of a normal operation; an expired one is
    /// removed.
    fn find_live(&mut self, key: &str) -> Option<usize> {
        self.sweep(SWEEP_PER_OP);
        let i = self.position(key)?;
        if self.is_live(&self.entries[i]) {
            Some(i)
        } else {
            self.remove_at(i, RemovalCause::Expired);
            None
        }
    }

    fn get(&mut self, key: &str) -> Answer {
        self.open()?;
        Self::check_key(key)?;
        let value = self.find_live(key).map(|i| {
            let e = self.entries.remove(i);
            let value = e.value.clone();
            self.entries.insert(0, e);
            value
        });
        if value.is_some() {
            self.counters.hits += 1;
        } else {
            self.counters.misses += 1;
        }
        Ok(Reply::Value(value))
    }

    fn has(&mut self, key: &str) -> Answer {
        self.open()?;
        Self::check_key(key)?;
        Ok(Reply::Bool(self.find_live(key).is_some()))
    }

    fn delete(&mut self, key: &str) -> Answer {
        self.open()?;
        Self::check_key(key)?;
        let Some(i) = self.position(key) else {
            return Ok(Reply::Bool(false));
        };
        let live = self.is_live(&self.entries[i]);
        if live {
            self.remove_at(i, RemovalCause::Explicit);
            self.counters.deletes += 1;
        } else {
            self.remove_at(i, RemovalCause::Expired);
        }
        Ok(Reply::Bool(live))
    }

    fn request_key(&self, ns: &str, topic: &str) -> Result<String, &'static str> {
        self.open()?;
        if !valid_segment(ns) {
            return Err("INVALID_KEY");
        }
        // The digest part depends on the data alone.
        let sample = cachette::request_key("v", "n", &topic_json(topic), KeyFormat::Jcs).unwrap();
        let digest = sample.strip_prefix("v:n:").unwrap();
        Ok(format!("{}:{ns}:{digest}", self.version))
    }

    fn remove_by(&mut self, kind: Removal, arg: &str) -> Answer {
        self.open()?;
        let pattern = match kind {
            Removal::Pattern if arg.is_empty() || arg.len() > 32 * 1024 => {
                return Err("INVALID_PATTERN")
            }
            Removal::Pattern => arg.to_owned(),
            _ if !valid_segment(arg) => return Err("INVALID_KEY"),
            Removal::Namespace => format!("{}:{}:*", escape(&self.version), escape(arg)),
            Removal::Version => format!("{}:*", escape(arg)),
            Removal::SwitchVersion => format!("{}:*", escape(&self.version)),
        };
        let mut n = 0;
        while let Some(i) = self
            .entries
            .iter()
            .position(|e| redis_match(pattern.as_bytes(), e.key.as_bytes()))
        {
            if self.is_live(&self.entries[i]) {
                self.remove_at(i, RemovalCause::Explicit);
                n += 1;
            } else {
                self.remove_at(i, RemovalCause::Expired);
            }
        }
        self.counters.invalidations += n;
        if kind == Removal::SwitchVersion {
            self.version = arg.to_owned();
        }
        Ok(Reply::Count(n))
    }

    /// Removes every entry, counted as explicit removals; the index starts again.
    fn empty(&mut self) -> usize {
        let n = self.entries.len();
        self.removals.explicit += n as u64;
        self.entries.clear();
        self.lists.clear();
        n
    }

    fn stats(&mut self) -> Reply {
        self.sweep_all();
        Reply::Stats {
            counters: Counters {
                evictions: self.removals.evicted,
                expirations: self.removals.expired,
                ..self.counters
            },
            keys: self.entries.len() as u64,
            bytes: self.bytes(),
            version: self.version.clone(),
            max_entries: self.setup.max_entries as u64,
        }
    }

    fn apply(&mut self, op: &Op, value: &str) -> Answer {
        match op {
            Op::Set { key, size, ttl } => self.set(&key.text(), value, *size, *ttl),
            Op::Get { key } => self.get(&key.text()),
            Op::Has { key } => self.has(&key.text()),
            Op::Delete { key } => self.delete(&key.text()),
            Op::Insert { key, size, ttl_ms } => self.store(&key.text(), value, *size, *ttl_ms),
            Op::RequestSet {
                ns,
                topic,
                size,
                ttl,
            } => {
                let key = self.request_key(ns, topic)?;
                self.set(&key, value, *size, *ttl)
            }
            Op::RequestGet { ns, topic } => {
                let key = self.request_key(ns, topic)?;
                self.get(&key)
            }
            Op::DeletePattern { pattern } => self.remove_by(Removal::Pattern, pattern),
            Op::InvalidateNamespace { ns } => self.remove_by(Removal::Namespace, ns),
            Op::InvalidateVersion { version } => self.remove_by(Removal::Version, version),
            Op::UpdateVersion { version } => self.remove_by(Removal::SwitchVersion, version),
            Op::Clear => {
                self.open()?;
                Ok(Reply::Count(self.empty() as u64))
            }
            Op::Advance { ms } => {
                self.now += ms;
                Ok(Reply::Done)
            }
            Op::Rewind { ms } => {
                let expired = self.entries.len() - self.live().count();
                self.now = self.now.saturating_sub(*ms);
                let still = self.entries.len() - self.live().count();
                self.tally.revived += (expired - still) as u64;
                Ok(Reply::Done)
            }
            Op::Sweep { budget: None } => Ok(Reply::Count(self.sweep_all() as u64)),
            Op::Sweep {
                budget: Some(budget),
            } => Ok(Reply::Count(self.sweep(*budget) as u64)),
            Op::Stats => Ok(self.stats()),
            Op::Shutdown => {
                let first = !self.shut_down;
                if first {
                    self.empty();
                    self.shut_down = true;
                }
                Ok(Reply::Bool(first))
            }
        }
    }
}

// ---- the system under test ----------------------------------------------------------------------

struct Real {
    cache: TieredCache<String, BlockingTransport, Text>,
    clock: ManualClock,
}

impl Real {
    fn new(setup: Setup) -> Self {
        let clock = ManualClock::new(START_MS);
        let options = Options {
            version: FIRST_VERSION.to_owned(),
            ttl: setup.default_ttl_ms as f64 / 1000.0,
            max_entries: setup.max_entries,
            max_bytes: setup.max_bytes,
            ..Options::default()
        };
        let cache =
            TieredCache::new(&options, BlockingTransport, Text, Rc::new(clock.clone())).unwrap();
        Real { cache, clock }
    }

    fn set(&self, key: &str, value: &str, size: u64, ttl: Ttl) -> Answer {
        block_on(self.cache.set(key, value.to_owned(), size, ttl.secs()))
            .map(|()| Reply::Done)
            .map_err(|e| e.code())
    }

    fn get(&self, key: &str) -> Answer {
        block_on(self.cache.get(key))
            .map(Reply::Value)
            .map_err(|e| e.code())
    }

    fn remove_by(&self, kind: Removal, arg: &str) -> Answer {
        block_on(self.cache.remove_by(kind, arg))
            .map(Reply::Count)
            .map_err(|e| e.code())
    }

    fn apply(&self, op: &Op, value: &str) -> Answer {
        let request_key = |ns: &str, topic: &str| {
            self.cache
                .request_key(ns, &topic_json(topic))
                .map_err(|e| e.code())
        };
        match op {
            Op::Set { key, size, ttl } => self.set(&key.text(), value, *size, *ttl),
            Op::Get { key } => self.get(&key.text()),
            Op::Has { key } => block_on(self.cache.contains(&key.text()))
                .map(Reply::Bool)
                .map_err(|e| e.code()),
            Op::Delete { key } => block_on(self.cache.delete(&key.text()))
                .map(Reply::Bool)
                .map_err(|e| e.code()),
            Op::Insert { key, size, ttl_ms } => self
                .cache
                .memory()
                .insert(
                    &key.text(),
                    Held::new(value.to_owned(), self.clock.now_ms(), *ttl_ms),
                    *size,
                    *ttl_ms,
                    self.clock.now_ms(),
                )
                .map(|()| Reply::Done)
                .map_err(|e| e.code()),
            Op::RequestSet {
                ns,
                topic,
                size,
                ttl,
            } => self.set(&request_key(ns, topic)?, value, *size, *ttl),
            Op::RequestGet { ns, topic } => self.get(&request_key(ns, topic)?),
            Op::DeletePattern { pattern } => self.remove_by(Removal::Pattern, pattern),
            Op::InvalidateNamespace { ns } => self.remove_by(Removal::Namespace, ns),
            Op::InvalidateVersion { version } => self.remove_by(Removal::Version, version),
            Op::UpdateVersion { version } => self.remove_by(Removal::SwitchVersion, version),
            Op::Clear => self
                .cache
                .memory()
                .clear()
                .map(|n| Reply::Count(n as u64))
                .map_err(|e| e.code()),
            Op::Advance { ms } => {
                self.clock.advance_ms(*ms);
                Ok(Reply::Done)
            }
            Op::Rewind { ms } => {
                self.clock.set_ms(self.clock.now_ms().saturating_sub(*ms));
                Ok(Reply::Done)
            }
            Op::Sweep { budget: None } => {
                Ok(Reply::Count(self.cache.sweep(self.clock.now_ms()) as u64))
            }
            Op::Sweep {
                budget: Some(budget),
            } => Ok(Reply::Count(
                self.cache.memory().sweep(self.clock.now_ms(), *budget) as u64,
            )),
            Op::Stats => {
                let s = block_on(self.cache.snapshot(false));
                Ok(Reply::Stats {
                    counters: s.counters,
                    keys: s.keys,
                    bytes: s.memory_used_bytes,
                    version: s.version,
                    max_entries: s.max_entries,
                })
            }
            Op::Shutdown => Ok(Reply::Bool(self.cache.shutdown())),
        }
    }
}

/// Compares everything observable without side effects, then checks the structure's invariants.
fn compare_state(model: &Model, real: &Real) -> Result<(), String> {
    let now = model.now;
    if real.clock.now_ms() != now {
        return Err(format!("clock {} != model {now}", real.clock.now_ms()));
    }
    if real.cache.version() != model.version {
        return Err(format!("version {:?}", real.cache.version()));
    }
    if real.cache.check_open().is_err() != model.shut_down {
        return Err("shutdown state".to_owned());
    }
    let mut m = real.cache.memory();
    let same = |what: &str, got: String, want: String| {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what}: cache {got}, model {want}"))
        }
    };
    same(
        "entries held",
        m.len().to_string(),
        model.entries.len().to_string(),
    )?;
    same("bytes", m.bytes().to_string(), model.bytes().to_string())?;
    same(
        "removals",
        format!("{:?}", m.removals()),
        format!("{:?}", model.removals),
    )?;
    let live: Vec<&str> = model.live().map(|e| e.key.as_str()).collect();
    same(
        "live keys by recency",
        format!("{:?}", m.keys(now)),
        format!("{live:?}"),
    )?;
    for e in &model.entries {
        let (value, ttl) = if e.expires_at == NEVER {
            (Some(&e.value), Some(None))
        } else if model.is_live(e) {
            (Some(&e.value), Some(Some(e.expires_at - now)))
        } else {
            (None, None)
        };
        same(
            &format!("peek {:?}", e.key),
            format!("{:?}", m.peek(&e.key, now).map(|h| &h.value)),
            format!("{value:?}"),
        )?;
        same(
            &format!("ttl of {:?}", e.key),
            format!("{:?}", m.ttl_ms(&e.key, now)),
            format!("{ttl:?}"),
        )?;
    }
    let earliest = model
        .lists
        .iter()
        .filter_map(|l| l.keys.first())
        .map(|k| {
            model
                .entries
                .iter()
                .find(|e| &e.key == k)
                .unwrap()
                .expires_at
        })
        .min();
    same(
        "next expiry",
        format!("{:?}", m.next_expiry()),
        format!("{earliest:?}"),
    )?;
    let c = *m.counters_mut();
    let mc = model.counters;
    same(
        "counters (hits, misses, sets, deletes, invalidations, errors)",
        format!(
            "{:?}",
            (
                c.hits,
                c.misses,
                c.sets,
                c.deletes,
                c.invalidations,
                c.errors
            )
        ),
        format!(
            "{:?}",
            (
                mc.hits,
                mc.misses,
                mc.sets,
                mc.deletes,
                mc.invalidations,
                mc.errors
            )
        ),
    )?;
    m.check_invariants();
    Ok(())
}

/// Runs `ops` on a fresh cache and on the model, comparing after every step; returns the model.
fn run(setup: Setup, ops: &[Op]) -> Result<Model, TestCaseError> {
    let mut model = Model::new(setup);
    let real = Real::new(setup);
    for (step, op) in ops.iter().enumerate() {
        let value = format!("value {step}");
        let want = model.apply(op, &value);
        if let Err(code) = want {
            *model.tally.errors.entry(code).or_default() += 1;
        }
        let got = real.apply(op, &value);
        if got != want {
            return Err(TestCaseError::fail(format!(
                "step {step}, {op:?}: cache answered {got:?}, model {want:?}"
            )));
        }
        compare_state(&model, &real)
            .map_err(|e| TestCaseError::fail(format!("after step {step}, {op:?}: {e}")))?;
    }
    Ok(model)
}

/// Sums over the cases run, printed at the end.
#[derive(Debug, Default)]
struct Totals {
    cases: u64,
    ops: u64,
    removals: RemovalCounts,
    counters: Counters,
    tally: Tally,
}

impl Totals {
    fn add(&mut self, ops: usize, model: &Model) {
        let (r, c) = (&model.removals, &model.counters);
        self.cases += 1;
        self.ops += ops as u64;
        self.removals.expired += r.expired;
        self.removals.explicit += r.explicit;
        self.removals.replaced += r.replaced;
        self.removals.evicted += r.evicted;
        self.counters.hits += c.hits;
        self.counters.misses += c.misses;
        self.counters.deletes += c.deletes;
        self.counters.invalidations += c.invalidations;
        for (code, n) in &model.tally.errors {
            *self.tally.errors.entry(code).or_default() += n;
        }
        self.tally.shared_lists += model.tally.shared_lists;
        self.tally.revived += model.tally.revived;
    }
}

/// Why `ops` fails against the model (a mismatch, or a panic of the invariant checker); `None`
/// when it passes.
fn failure(setup: Setup, ops: &[Op]) -> Option<String> {
    match std::panic::catch_unwind(|| run(setup, ops)) {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(panic) => Some(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned()),
        ),
    }
}

/// Drops single operations from a failing sequence for as long as it still fails. Proptest
/// deletes operations in one pass before it simplifies the rest, which can leave operations
/// that later simplifications made unnecessary.
fn minimize(setup: Setup, mut ops: Vec<Op>) -> Vec<Op> {
    let mut i = 0;
    while i < ops.len() {
        let mut fewer = ops.clone();
        fewer.remove(i);
        if failure(setup, &fewer).is_some() {
            ops = fewer;
            i = 0;
        } else {
            i += 1;
        }
    }
    ops
}

/// Runs the sequences of `scenarios` (as many as `PROPTEST_CASES`, 256 when unset) against the
/// model; on a failure, panics with the shrunk sequence. Prints what the cases exercised.
fn check(suite: &str, scenarios: impl Strategy<Value = (Setup, Vec<Op>)>) {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let totals = RefCell::new(Totals::default());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenarios, |(setup, sequence)| {
        let model = run(setup, &sequence)?;
        totals.borrow_mut().add(sequence.len(), &model);
        Ok(())
    });
    if let Err(e) = result {
        let smallest = match &e {
            TestError::Fail(_, (setup, ops)) => {
                let ops = minimize(*setup, ops.clone());
                let listed: String = ops.iter().map(|op| format!("    {op:?},\n")).collect();
                let why = failure(*setup, &ops).unwrap_or_default();
                format!(
                    "\nwithout the operations it does not need:\n{setup:?}\n[\n{listed}]\n{why}"
                )
            }
            TestError::Abort(_) => String::new(),
        };
        panic!("{suite}: {e}\n{runner}{smallest}");
    }
    let t = totals.into_inner();
    eprintln!(
        "model_core {suite}: {} cases, {} operations; {} hits, {} misses, {} deletes, {} \
         invalidated, removals {:?}, errors {:?}, {} entries in a shared TTL list, {} expired \
         entries made live by a clock step back",
        t.cases,
        t.ops,
        t.counters.hits,
        t.counters.misses,
        t.counters.deletes,
        t.counters.invalidations,
        t.removals,
        t.tally.errors,
        t.tally.shared_lists,
        t.tally.revived,
    );
}

#[test]
fn policy_core_matches_the_reference_model() {
    check("operations", scenario());
}

#[test]
fn past_sixteen_ttls_the_policy_core_matches_the_reference_model() {
    check("many TTLs", many_ttls());
}

// ---- regressions: sequences the model found, shrunk -------------------------------------------

/// "aa" is stored, the clock steps back 8 ms and "ab" is stored with the same TTL: "ab" sits
/// behind "aa" in their TTL list although it expires first. 20 ms later "ab" has expired and
/// "aa" has not.
fn expired_behind_live() -> (Setup, Vec<Op>) {
    let setup = Setup {
        max_entries: 24,
        max_bytes: None,
        default_ttl_ms: 20,
    };
    let set = |key: &str| Op::Set {
        key: Key::Raw(key.to_owned()),
        size: 0,
        ttl: Ttl::Default,
    };
    let ops = vec![
        set("aa"),
        Op::Rewind { ms: 8 },
        set("ab"),
        Op::Advance { ms: 20 },
    ];
    (setup, ops)
}

/// The full sweep of `Cache`'s cleanup timer (`TieredCache::sweep`, `MemoryTier::sweep_all`)
/// removes an expired entry that sits behind a live one; it used to look at list heads only.
#[test]
fn a_full_sweep_removes_an_expired_entry_behind_a_live_one() {
    let (setup, mut ops) = expired_behind_live();
    let real = Real::new(setup);
    for op in &ops {
        assert_eq!(real.apply(op, "value"), Ok(Reply::Done));
    }
    let now = real.clock.now_ms();
    assert_eq!(real.cache.sweep(now), 1, "\"ab\" went");
    assert_eq!(real.cache.memory().keys(now), ["aa"]);
    assert_eq!(real.cache.memory().len(), 1);
    ops.push(Op::Sweep { budget: None });
    assert_eq!(failure(setup, &ops), None);
}

/// Statistics count no expired entry, even one behind a live entry in its TTL list.
#[test]
fn statistics_count_no_expired_entry_behind_a_live_one() {
    let (setup, mut ops) = expired_behind_live();
    ops.push(Op::Stats);
    assert_eq!(failure(setup, &ops), None);
    let real = Real::new(setup);
    for op in &ops[..ops.len() - 1] {
        real.apply(op, "value").unwrap();
    }
    let stats = block_on(real.cache.snapshot(false));
    assert_eq!((stats.keys, stats.counters.expirations), (1, 1));
}

// ---- the reference matcher against known answers ------------------------------------------------

#[test]
fn reference_glob_follows_redis() {
    let m = |p: &str, s: &str| redis_match(p.as_bytes(), s.as_bytes());
    assert!(m("*", ""));
    assert!(!m("?", ""));
    assert!(!m("**", ""), "only the lone * is skipped by SCAN");
    assert!(m("a*", "a"));
    assert!(m("a**", "a"));
    assert!(m("a*b", "axxb") && !m("a*b", "axxc"));
    assert!(m("h?llo", "hello") && !m("h?llo", "hllo"));
    assert!(m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo"));
    assert!(m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"));
    assert!(
        m("h[a-b]llo", "hbllo") && m("h[b-a]llo", "hbllo"),
        "reversed range"
    );
    assert!(m("\\*", "*") && !m("\\*", "a"));
    assert!(m("a\\", "a\\"), "a trailing backslash is literal");
    assert!(m("[\\]]", "]") && m("[a\\-z]", "-") && !m("[a\\-z]", "b"));
    assert!(
        m("[abc", "a") && m("[abc", "c"),
        "an unterminated class runs to the end"
    );
    assert!(
        !m("[", "a") && !m("[", "["),
        "an empty unterminated class matches nothing"
    );
    assert!(m("[^", "a"), "an empty negated class matches anything");
    assert!(m("x[a-", "x-") && m("x[a-", "xa"));
    // Bytes above 0x7f compare as negative numbers: "é" is 0xc3 0xa9, and the class below is
    // the range 0xc3..='a' (-61..=97) plus the byte 0xa9.
    assert!(
        m("[a-\u{e9}]?", "\u{e9}"),
        "0xc3 lies in the range -61..=97"
    );
    assert!(!m("[a-\u{e9}]", "\u{e9}"), "one byte of two is left over");
    assert!(!m("[a-\u{e9}]?", "b?"), "'b' (98) lies above it");
    assert_eq!(escape("a*[?]\\"), "a\\*\\[\\?\\]\\\\");
    for p in ["*", "a*", "[a", "\\", "?*?", "[^a-b]*", "v1:*", "*\\*"] {
        for s in ["", "a", "ab", "*", "\\", "v1:x", "[a", "b*"] {
            assert_eq!(
                m(p, s),
                cachette::glob::matches(p.as_bytes(), s.as_bytes()),
                "{p:?} against {s:?}"
            );
        }
    }
}
