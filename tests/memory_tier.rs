//! The memory tier through its public API, with a manual clock and the invariant checker run
//! after mutations.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use cachette::cache::MemoryTier;
use cachette::key::MAX_KEY_BYTES;
use cachette::memory::{MemoryConfig, RemovalCause};

type Log = Rc<RefCell<Vec<(String, RemovalCause)>>>;

fn tier(max_entries: usize, max_bytes: Option<u64>) -> (MemoryTier<u32>, Log) {
    let mut t = MemoryTier::new(MemoryConfig {
        max_entries,
        max_bytes,
    })
    .expect("valid bounds");
    let log: Log = Rc::default();
    let sink = log.clone();
    t.set_listener(Some(Box::new(move |k: &str, _: &u32, c| {
        sink.borrow_mut().push((k.to_owned(), c))
    })));
    (t, log)
}

fn taken(log: &Log) -> Vec<(String, RemovalCause)> {
    std::mem::take(&mut *log.borrow_mut())
}

#[test]
fn ttl_expires_exactly_at_deadline() {
    let (mut t, log) = tier(10, None);
    t.insert("k", 1, 0, Some(100), 1_000).unwrap();
    assert_eq!(t.get("k", 1_099), Some(&1));
    assert_eq!(t.ttl_ms("k", 1_050), Some(Some(50)));
    assert_eq!(
        t.peek("k", 1_100),
        None,
        "expired entries are never returned"
    );
    assert_eq!(t.get("k", 1_100), None);
    assert_eq!(taken(&log), vec![("k".to_owned(), RemovalCause::Expired)]);
    assert!(t.is_empty());
    t.check_invariants();
}

#[test]
fn entries_without_ttl_never_expire() {
    let (mut t, _) = tier(10, None);
    t.insert("forever", 7, 0, None, 0).unwrap();
    assert_eq!(t.get("forever", u64::MAX - 1), Some(&7));
    assert_eq!(t.ttl_ms("forever", 5), Some(None));
    assert_eq!(t.next_expiry(), None);
}

#[test]
fn lru_order_follows_reads_and_writes() {
    let (mut t, log) = tier(3, None);
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        t.insert(k, i as u32, 0, None, 0).unwrap();
    }
    assert_eq!(t.keys(0), ["c", "b", "a"]);
    assert_eq!(t.get("a", 0), Some(&0)); // a becomes most recent
    assert!(t.contains("b", 0)); // contains does not touch recency
    assert_eq!(t.peek("b", 0), Some(&1)); // nor does peek
    t.insert("d", 3, 0, None, 0).unwrap();
    assert_eq!(taken(&log), vec![("b".to_owned(), RemovalCause::Evicted)]);
    assert_eq!(t.keys(0), ["d", "a", "c"]);
    t.insert("c", 9, 0, None, 0).unwrap(); // replacing refreshes recency
    assert_eq!(taken(&log), vec![("c".to_owned(), RemovalCause::Replaced)]);
    assert_eq!(t.keys(0), ["c", "d", "a"]);
    t.check_invariants();
}

#[test]
fn byte_bound_evicts_lru_and_refuses_oversized_values() {
    let (mut t, log) = tier(100, Some(10));
    t.insert("a", 1, 4, None, 0).unwrap(); // charged 1 + 4
    t.insert("b", 2, 4, None, 0).unwrap(); // 10 in all
    assert_eq!(t.bytes(), 10);
    t.insert("c", 3, 1, None, 0).unwrap(); // 12 > 10: "a" goes
    assert_eq!(taken(&log), vec![("a".to_owned(), RemovalCause::Evicted)]);
    assert_eq!(t.bytes(), 7);
    let err = t.insert("d", 4, 10, None, 0).unwrap_err();
    assert_eq!(err.code(), "VALUE_TOO_LARGE");
    assert_eq!(
        t.keys(0),
        ["c", "b"],
        "a refused value leaves the tier unchanged"
    );
    assert!(taken(&log).is_empty());
    // Replacing with a smaller value gives bytes back.
    t.insert("b", 5, 1, None, 0).unwrap();
    assert_eq!(t.bytes(), 4);
    t.check_invariants();
    // One entry that fills the bound alone evicts everything else.
    t.insert("e", 6, 9, None, 0).unwrap();
    assert_eq!(t.keys(0), ["e"]);
    t.check_invariants();
}

#[test]
fn oversized_key_is_refused_empty_key_is_fine() {
    let (mut t, _) = tier(10, None);
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert_eq!(
        t.insert(&long, 1, 0, None, 0).unwrap_err().code(),
        "INVALID_KEY"
    );
    t.insert(&long[1..], 1, 0, None, 0).unwrap();
    t.insert("", 2, 0, None, 0).unwrap();
    assert_eq!(t.get("", 0), Some(&2));
    assert_eq!(t.len(), 2);
}

#[test]
fn zero_bounds_are_refused() {
    let e = MemoryTier::<u8>::new(MemoryConfig {
        max_entries: 0,
        max_bytes: None,
    })
    .unwrap_err();
    assert_eq!(e.code(), "INVALID_OPTIONS");
    let e = MemoryTier::<u8>::new(MemoryConfig {
        max_entries: 1,
        max_bytes: Some(0),
    })
    .unwrap_err();
    assert_eq!(e.code(), "INVALID_OPTIONS");
}

#[test]
fn sweep_cost_is_proportional_to_what_expired() {
    let (mut t, _) = tier(200_000, None);
    for i in 0..100_000u32 {
        t.insert(&format!("long:{i}"), i, 0, Some(1_000_000), 0)
            .unwrap();
    }
    for i in 0..10u32 {
        t.insert(&format!("short:{i}"), i, 0, Some(10), 0).unwrap();
    }
    // A budget of exactly ten heap items removes all ten expired entries: the sweep looks at
    // nothing else among the 100,000 live ones.
    assert_eq!(t.sweep(10, 10), 10);
    assert_eq!(t.len(), 100_000);
    assert_eq!(t.sweep(10, 1_000), 0, "nothing else has expired");
    assert_eq!(t.removals().expired, 10);
}

#[test]
fn sweep_all_removes_expired_entries_behind_live_ones() {
    // Found by tests/model_core.rs: "ab", stored after the clock stepped back, sits behind "aa"
    // in their TTL list although it expires first.
    let (mut t, log) = tier(24, None);
    t.insert("aa", 1, 0, Some(20), 1_000).unwrap();
    t.insert("ab", 2, 0, Some(20), 992).unwrap();
    assert_eq!(t.sweep(1_012, usize::MAX), 0, "the list's head is live");
    assert_eq!(t.sweep_all(1_012), 1);
    assert_eq!(taken(&log), vec![("ab".to_owned(), RemovalCause::Expired)]);
    assert_eq!(t.keys(1_012), ["aa"]);
    t.check_invariants();
}

#[test]
fn normal_operations_sweep_without_a_timer() {
    let (mut t, _) = tier(1_000, None);
    for i in 0..100u32 {
        t.insert(&format!("k{i}"), i, 0, Some(5), 0).unwrap();
    }
    // Misses on other keys: each sweeps a few expired items.
    for _ in 0..25 {
        assert_eq!(t.get("absent", 10), None);
    }
    assert_eq!(t.len(), 0);
    assert_eq!(t.removals().expired, 100);
    t.check_invariants();
}

#[test]
fn expiry_index_stays_bounded_under_rewrites() {
    let (mut t, _) = tier(10, None);
    for i in 0..10_000u64 {
        t.insert("hot", 1, 0, Some(1_000_000 + i), i).unwrap();
    }
    assert!(
        t.expiry_index_len() <= 2 + 64 + 1,
        "{}",
        t.expiry_index_len()
    );
    t.check_invariants();
    // The latest TTL is the one in force.
    assert_eq!(t.ttl_ms("hot", 9_999), Some(Some(1_009_999)));
}

#[test]
fn replacing_an_expired_entry_counts_as_expiry() {
    let (mut t, log) = tier(10, None);
    t.insert("k", 1, 0, Some(5), 0).unwrap();
    t.insert("k", 2, 0, None, 5).unwrap();
    assert_eq!(taken(&log), vec![("k".to_owned(), RemovalCause::Expired)]);
    assert_eq!(t.get("k", 100), Some(&2));
    t.check_invariants();
}

#[test]
fn remove_reports_only_live_entries() {
    let (mut t, log) = tier(10, None);
    t.insert("a", 1, 0, None, 0).unwrap();
    t.insert("b", 2, 0, Some(5), 0).unwrap();
    assert_eq!(t.remove("a", 0), Some(1));
    assert_eq!(t.remove("a", 0), None);
    assert_eq!(t.remove("b", 6), None);
    assert_eq!(
        taken(&log),
        vec![
            ("a".to_owned(), RemovalCause::Explicit),
            ("b".to_owned(), RemovalCause::Expired)
        ]
    );
    t.insert("c", 3, 0, None, 0).unwrap();
    assert_eq!(t.clear().unwrap(), 1);
    assert!(t.is_empty());
    t.insert("d", 4, 0, None, 0).unwrap();
    t.check_invariants();
}

#[test]
fn remove_matching_deletes_what_redis_scan_match_would() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/glob-redis.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("shared vectors");
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let pattern = v["pattern"].as_str().unwrap();
        let keys: Vec<&str> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let mut expected: Vec<&str> = v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        expected.sort_unstable();
        expected.dedup();
        let mut t: MemoryTier<u32> = MemoryTier::new(MemoryConfig {
            max_entries: 1000,
            max_bytes: None,
        })
        .unwrap();
        for k in &keys {
            t.insert(k, 0, 0, None, 0).unwrap();
        }
        let before: Vec<String> = t.keys(0).iter().map(|s| s.to_string()).collect();
        let removed = t.remove_matching(pattern, 0);
        let after: Vec<String> = t.keys(0).iter().map(|s| s.to_string()).collect();
        let mut gone: Vec<&str> = before
            .iter()
            .filter(|k| !after.contains(k))
            .map(String::as_str)
            .collect();
        gone.sort_unstable();
        assert_eq!(gone, expected, "pattern {pattern:?}");
        assert_eq!(removed, expected.len());
        t.check_invariants();
        lines += 1;
    }
    assert_eq!(lines, 500);
}

#[test]
fn remove_matching_skips_expired_in_the_count() {
    let (mut t, log) = tier(10, None);
    t.insert("v1:ns:a", 1, 0, None, 0).unwrap();
    t.insert("v1:ns:b", 2, 0, Some(5), 0).unwrap();
    t.insert("v1:other:c", 3, 0, None, 0).unwrap();
    assert_eq!(t.remove_matching("v1:ns:*", 10), 1);
    let mut causes = taken(&log);
    causes.sort();
    assert_eq!(
        causes,
        vec![
            ("v1:ns:a".to_owned(), RemovalCause::Explicit),
            ("v1:ns:b".to_owned(), RemovalCause::Expired)
        ]
    );
    assert_eq!(t.keys(10), ["v1:other:c"]);
}

/// A small deterministic generator (xorshift64*), so the randomized test needs no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_operations_keep_every_invariant_and_agree_with_a_model() {
    use std::collections::HashMap;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut t, log) = tier(50, Some(2_000));
    // Model: key -> (value, charged, expires_at), expired entries included until the tier
    // reports them gone; recency as a Vec, least recent first.
    let mut model: HashMap<String, (u32, u64, u64)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut now = 0u64;
    for step in 0..20_000u32 {
        now += rng.below(3);
        let key = format!("k{}", rng.below(120));
        let live = |m: &HashMap<String, (u32, u64, u64)>, k: &str, now: u64| {
            m.get(k).filter(|e| e.2 > now).map(|e| e.0)
        };
        // Run one operation on the tier, check its answer against the model, and note what the
        // model must do once the tier's removals have been applied to it.
        let mut then_insert = None;
        match rng.below(10) {
            0..=3 => {
                let got = t.get(&key, now).copied();
                assert_eq!(got, live(&model, &key, now), "step {step} get {key}");
                if got.is_some() {
                    order.retain(|k| *k != key);
                    order.push(key.clone());
                }
            }
            4..=7 => {
                let size = rng.below(60);
                let ttl = if rng.below(2) == 0 {
                    None
                } else {
                    Some(1 + rng.below(200))
                };
                t.insert(&key, step, size, ttl, now).unwrap();
                // The new entry is the most recent before any eviction happens.
                order.retain(|k| *k != key);
                order.push(key.clone());
                let charged = key.len() as u64 + size;
                then_insert = Some((step, charged, ttl.map_or(u64::MAX, |d| now + d)));
            }
            8 => {
                let got = t.remove(&key, now);
                assert_eq!(got, live(&model, &key, now), "step {step} remove {key}");
            }
            _ => {
                t.sweep(now, 8);
            }
        }
        for (k, cause) in taken(&log) {
            match cause {
                RemovalCause::Replaced => continue,
                RemovalCause::Expired => {
                    assert!(
                        model.get(&k).is_some_and(|e| e.2 <= now),
                        "step {step}: {k} expired early"
                    );
                }
                RemovalCause::Evicted => {
                    assert_eq!(
                        order.first(),
                        Some(&k),
                        "step {step}: evicted {k} out of LRU order"
                    );
                }
                RemovalCause::Explicit => {
                    assert!(
                        live(&model, &k, now).is_some(),
                        "step {step}: removed {k} was not live"
                    );
                }
            }
            model.remove(&k);
            order.retain(|o| *o != k);
        }
        if let Some(entry) = then_insert {
            model.insert(key.clone(), entry);
            order.retain(|k| *k != key);
            order.push(key.clone());
        }
        if step % 97 == 0 {
            t.check_invariants();
            let mut keys: Vec<&str> = t.keys(now);
            keys.sort_unstable();
            let mut want: Vec<&str> = model
                .iter()
                .filter(|(_, e)| e.2 > now)
                .map(|(k, _)| k.as_str())
                .collect();
            want.sort_unstable();
            assert_eq!(keys, want, "step {step}");
        }
    }
    t.check_invariants();
}
