//! The cache without a shared tier, as `Cache` and the Rust Worker API run it: versions,
//! namespaces, invalidation, statistics, shutdown. Time is a manual clock.
#![allow(clippy::unwrap_used)]

mod support;

use std::rc::Rc;

use cachette::cache::{
    namespace_pattern, topic_json, version_pattern, warm_plan, InFlight, Removal, TieredCache,
    WarmOutcome, WarmReport,
};
use cachette::canonical::{canonical_json, KeyFormat};
use cachette::clock::ManualClock;
use cachette::options::Options;
use cachette::stats::StatsSnapshot;
use support::{block_on, BlockingTransport, Text};

/// A memory-only cache at time `now` (set with `at`), with synchronous wrappers.
struct Mem {
    cache: TieredCache<String, BlockingTransport, Text>,
    clock: Rc<ManualClock>,
}

impl Mem {
    fn at(&self, now: u64) -> &Self {
        self.clock.set_ms(now);
        self
    }
    fn request_key(&mut self, ns: &str, json: &str) -> cachette::Result<String> {
        self.cache.request_key(ns, json)
    }
    fn set(
        &mut self,
        k: &str,
        v: String,
        size: u64,
        ttl: Option<f64>,
        now: u64,
    ) -> cachette::Result<()> {
        block_on(self.at(now).cache.set(k, v, size, ttl))
    }
    fn get(&mut self, k: &str, now: u64) -> cachette::Result<Option<String>> {
        block_on(self.at(now).cache.get(k))
    }
    fn contains(&mut self, k: &str, now: u64) -> cachette::Result<bool> {
        block_on(self.at(now).cache.contains(k))
    }
    fn delete(&mut self, k: &str, now: u64) -> cachette::Result<bool> {
        block_on(self.at(now).cache.delete(k))
    }
    fn remove(&mut self, kind: Removal, arg: &str, now: u64) -> cachette::Result<u64> {
        block_on(self.at(now).cache.remove_by(kind, arg))
    }
    fn delete_pattern(&mut self, p: &str, now: u64) -> cachette::Result<u64> {
        self.remove(Removal::Pattern, p, now)
    }
    fn invalidate_namespace(&mut self, ns: &str, now: u64) -> cachette::Result<u64> {
        self.remove(Removal::Namespace, ns, now)
    }
    fn invalidate_version(&mut self, v: &str, now: u64) -> cachette::Result<u64> {
        self.remove(Removal::Version, v, now)
    }
    fn update_version(&mut self, v: &str, now: u64) -> cachette::Result<u64> {
        self.remove(Removal::SwitchVersion, v, now)
    }
    fn version(&self) -> String {
        self.cache.version()
    }
    fn is_empty(&mut self, now: u64) -> bool {
        self.cache.memory().live_len(now) == 0
    }
    fn snapshot(&mut self, now: u64) -> StatsSnapshot {
        block_on(self.at(now).cache.snapshot(false))
    }
    fn shutdown(&mut self) -> bool {
        self.cache.shutdown()
    }
    fn is_shut_down(&self) -> bool {
        self.cache.check_open().is_err()
    }
}

fn core(opts: Options) -> Mem {
    let clock = Rc::new(ManualClock::new(0));
    Mem {
        cache: TieredCache::new(&opts, BlockingTransport, Text, clock.clone()).unwrap(),
        clock,
    }
}

#[test]
fn request_keys_carry_version_and_namespace() {
    let mut c = core(Options {
        version: "v1.0".into(),
        ..Options::default()
    });
    let k = c
        .request_key("subtopics", r#"{"topic":"Python Programming"}"#)
        .unwrap();
    assert_eq!(k, "v1.0:subtopics:3260222b82f1023d3fd9501bd984cd80");
    let mut p = core(Options {
        key_format: KeyFormat::Python,
        ..Options::default()
    });
    let k = p
        .request_key("subtopics", r#"{"topic":"Python Programming"}"#)
        .unwrap();
    assert_eq!(k, "v1:subtopics:afc5c4f25dbfab7559ccff1975be8899");
    assert_eq!(c.request_key("", "{}").unwrap_err().code(), "INVALID_KEY");
    assert_eq!(
        c.request_key("a:b", "{}").unwrap_err().code(),
        "INVALID_KEY"
    );
    assert_eq!(
        c.request_key("ns", "{nope").unwrap_err().code(),
        "UNSERIALIZABLE"
    );
}

#[test]
fn namespace_invalidation_escapes_metacharacters() {
    let mut c = core(Options::default());
    let a_star = c.request_key("a*", "{}").unwrap();
    let ab = c.request_key("ab", "{}").unwrap();
    c.set(&a_star, "x".into(), 0, None, 0).unwrap();
    c.set(&ab, "y".into(), 0, None, 0).unwrap();
    assert_eq!(c.invalidate_namespace("a*", 0).unwrap(), 1);
    assert!(
        c.contains(&ab, 0).unwrap(),
        "namespace ab survives invalidating a*"
    );
    assert!(!c.contains(&a_star, 0).unwrap());
    assert_eq!(namespace_pattern("v[1]", "n?").unwrap(), "v\\[1\\]:n\\?:*");
    assert_eq!(version_pattern("v*").unwrap(), "v\\*:*");
    assert_eq!(
        c.invalidate_namespace("bad:ns", 0).unwrap_err().code(),
        "INVALID_KEY"
    );
}

#[test]
fn versions_invalidate_and_switch() {
    let mut c = core(Options {
        version: "v1".into(),
        ..Options::default()
    });
    let k1 = c.request_key("ns", "{}").unwrap();
    c.set(&k1, "old".into(), 0, None, 0).unwrap();
    c.set("v10:ns:x", "other version".into(), 0, None, 0)
        .unwrap();
    assert_eq!(
        c.update_version("v2", 0).unwrap(),
        1,
        "only v1:* goes, not v10:*"
    );
    assert_eq!(c.version(), "v2");
    let k2 = c.request_key("ns", "{}").unwrap();
    assert!(k2.starts_with("v2:ns:"));
    assert_eq!(c.update_version("", 0).unwrap_err().code(), "INVALID_KEY");
    assert_eq!(c.version(), "v2", "a refused version changes nothing");
    assert_eq!(c.invalidate_version("v10", 0).unwrap(), 1);
    assert!(c.is_empty(0));
}

#[test]
fn statistics_count_every_kind_of_operation() {
    let mut c = core(Options {
        max_entries: 2,
        ttl: 1.0,
        ..Options::default()
    });
    c.set("a", "1".into(), 0, None, 0).unwrap();
    c.set("b", "2".into(), 0, Some(0.5), 0).unwrap();
    assert_eq!(c.get("a", 0).unwrap().as_deref(), Some("1"));
    assert!(c.get("zz", 0).unwrap().is_none());
    c.set("c", "3".into(), 0, None, 0).unwrap(); // evicts b
    assert!(c.delete("a", 0).unwrap());
    assert!(!c.delete("a", 0).unwrap());
    assert!(c.get("c", 1_000).unwrap().is_none()); // default ttl 1 s: expired
    c.set("p:1", "x".into(), 0, None, 1_000).unwrap();
    assert_eq!(c.delete_pattern("p:*", 1_000).unwrap(), 1);
    c.cache.memory().record_latency(2.0);
    c.cache.memory().counters_mut().errors += 1;
    let s = c.snapshot(1_000);
    assert_eq!(s.counters.hits, 1);
    assert_eq!(s.counters.misses, 2);
    assert_eq!(s.counters.sets, 4);
    assert_eq!(s.counters.deletes, 1);
    assert_eq!(s.counters.invalidations, 1);
    assert_eq!(s.counters.evictions, 1);
    assert_eq!(s.counters.expirations, 1);
    assert_eq!(s.counters.errors, 1);
    assert_eq!(s.hit_rate_percent, 33.33);
    assert_eq!(s.keys, 0);
    assert_eq!(s.max_entries, 2);
    assert_eq!(s.backend, "memory");
    assert!(s.p99_latency_ms >= 2.0 && s.avg_latency_ms > 0.0);
}

#[test]
fn bad_inputs_leave_the_cache_unchanged() {
    let mut c = core(Options {
        max_bytes: Some(100),
        ..Options::default()
    });
    c.set("k", "v".into(), 1, None, 0).unwrap();
    for ttl in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY, 1e12] {
        assert_eq!(
            c.set("k", "new".into(), 1, Some(ttl), 0)
                .unwrap_err()
                .code(),
            "INVALID_OPTIONS"
        );
    }
    assert_eq!(
        c.set("k", "huge".into(), 500, None, 0).unwrap_err().code(),
        "VALUE_TOO_LARGE"
    );
    let long = "x".repeat(32 * 1024 + 1);
    assert_eq!(
        c.set(&long, "v".into(), 1, None, 0).unwrap_err().code(),
        "INVALID_KEY"
    );
    assert_eq!(c.get(&long, 0).unwrap_err().code(), "INVALID_KEY");
    assert_eq!(
        c.delete_pattern(&"*".repeat(32 * 1024 + 1), 0)
            .unwrap_err()
            .code(),
        "INVALID_PATTERN"
    );
    assert_eq!(
        c.delete_pattern("", 0).unwrap_err().code(),
        "INVALID_PATTERN"
    );
    assert_eq!(c.get("k", 0).unwrap().as_deref(), Some("v"));
    assert_eq!(c.snapshot(0).counters.sets, 1);
}

#[test]
fn shutdown_is_idempotent_and_final() {
    let mut c = core(Options::default());
    c.set("k", "v".into(), 0, None, 0).unwrap();
    assert!(c.shutdown());
    assert!(!c.shutdown());
    assert!(c.is_shut_down());
    assert_eq!(c.get("k", 0).unwrap_err().code(), "SHUT_DOWN");
    assert_eq!(
        c.set("k", "v".into(), 0, None, 0).unwrap_err().code(),
        "SHUT_DOWN"
    );
    assert_eq!(c.delete_pattern("*", 0).unwrap_err().code(), "SHUT_DOWN");
}

#[test]
fn in_flight_calls_are_shared_until_finished() {
    let mut f: InFlight<u32> = InFlight::default();
    assert!(f.get("k").is_none());
    f.start("k", 7);
    assert_eq!(f.get("k"), Some(7));
    assert_eq!(f.len(), 1);
    f.finish("k");
    assert!(f.is_empty());
}

#[test]
fn warm_plan_covers_every_namespace_and_topic() {
    let mut c = core(Options::default());
    let plan = warm_plan(
        &["subtopics".into(), "quiz".into()],
        &["Python".into(), "Rust \"quoted\"".into()],
        |ns, json| c.cache.request_key(ns, json),
    )
    .unwrap();
    assert_eq!(plan.len(), 4);
    let direct = c
        .request_key("quiz", r#"{"topic":"Rust \"quoted\""}"#)
        .unwrap();
    assert_eq!(plan[3].key, direct);
    assert_eq!((plan[3].namespace, plan[3].topic), (1, 1));
    assert!(warm_plan(&["bad:ns".into()], &["x".into()], |ns, json| c
        .cache
        .request_key(ns, json))
    .is_err());
    let mut r = WarmReport::default();
    for o in [
        WarmOutcome::Warmed,
        WarmOutcome::Skipped,
        WarmOutcome::Failed,
        WarmOutcome::Warmed,
    ] {
        r.add(o);
    }
    assert_eq!((r.warmed, r.skipped, r.failed, r.done()), (2, 1, 1, 4));
}

#[test]
fn topic_json_is_valid_json_for_any_topic() {
    for t in [
        "plain",
        "quote\"d",
        "back\\slash",
        "new\nline",
        "tab\t",
        "\u{1}",
        "é😀",
    ] {
        let text = topic_json(t);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["topic"], t);
        canonical_json(&text, KeyFormat::Jcs).unwrap();
    }
}

#[test]
fn stale_values_are_kept_for_the_policy_window_and_offered_only_to_read() {
    let mut c = core(Options {
        ttl: 10.0,
        grace: 60.0,
        ..Options::default()
    });
    c.set("k", "v".into(), 1, None, 0).unwrap();
    let policy = *c.cache.defaults();
    assert_eq!(policy.keep_ms(), 60_000);
    // Fresh: both reads see it, age counted from the store.
    c.at(4_000);
    let r = block_on(c.cache.read("k", &policy)).unwrap();
    let f = r.found.unwrap();
    assert_eq!((f.value.as_str(), f.age_ms, f.stale_ms), ("v", 4_000, None));
    // Past the TTL: plain reads miss; `read` offers it as stale, with how long past the TTL.
    assert_eq!(c.get("k", 15_000).unwrap(), None);
    assert!(!c.contains("k", 15_000).unwrap());
    c.at(15_000);
    let f = block_on(c.cache.read("k", &policy)).unwrap().found.unwrap();
    assert_eq!((f.age_ms, f.stale_ms), (15_000, Some(5_000)));
    let s = c.snapshot(15_000);
    assert_eq!(
        (s.counters.hits, s.counters.misses),
        (1, 2),
        "a stale read counts as a miss"
    );
    assert_eq!(s.keys, 1, "held until its grace ends");
    // Past TTL + grace: gone, and it left as expired.
    c.at(70_000);
    assert!(block_on(c.cache.read("k", &policy))
        .unwrap()
        .found
        .is_none());
    assert_eq!(c.cache.memory().removals().expired, 1);
}

#[test]
fn infinite_ttl_never_expires_and_removals_carry_their_causes() {
    use cachette::cache::RemoveCause;
    let mut c = core(Options {
        max_entries: 2,
        ..Options::default()
    });
    c.cache.record_removals();
    c.set("forever", "a".into(), 1, Some(f64::INFINITY), 0)
        .unwrap();
    assert_eq!(
        c.get("forever", u64::MAX / 4).unwrap().as_deref(),
        Some("a")
    );
    c.set("forever", "b".into(), 1, None, 0).unwrap();
    c.set("x", "c".into(), 1, Some(1.0), 0).unwrap();
    c.set("y", "d".into(), 1, None, 0).unwrap(); // evicts "forever", the least recently used
    assert_eq!(c.get("x", 5_000).unwrap(), None);
    c.delete("y", 5_000).unwrap();
    c.set("v1:ns:z", "e".into(), 1, None, 5_000).unwrap();
    c.invalidate_namespace("ns", 5_000).unwrap();
    c.set("w", "f".into(), 1, None, 5_000).unwrap();
    c.cache.clear().unwrap();
    let log: Vec<(String, String, &str)> = c
        .cache
        .take_removals()
        .into_iter()
        .map(|(k, v, cause)| (k, v, cause.as_str()))
        .collect();
    let expect = [
        ("forever", "a", RemoveCause::Replaced),
        ("forever", "b", RemoveCause::Evicted),
        ("x", "c", RemoveCause::Expired),
        ("y", "d", RemoveCause::Deleted),
        ("v1:ns:z", "e", RemoveCause::Invalidated),
        ("w", "f", RemoveCause::Cleared),
    ];
    let expect: Vec<(String, String, &str)> = expect
        .iter()
        .map(|(k, v, c)| ((*k).to_owned(), (*v).to_owned(), c.as_str()))
        .collect();
    assert_eq!(log, expect);
    assert!(c.cache.take_removals().is_empty(), "taken once");
}
