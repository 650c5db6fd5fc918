//! The Upstash client and the two-tier cache, natively, against the `upstash-bridge` in front of
//! a real redis-server, with faults injected by the bridge.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::rc::Rc;

use cachette::cache::generations::SCRIPT;
use cachette::cache::{HealthStatus, MemoryTier, Removal, TieredCache};
use cachette::clock::SystemClock;
use cachette::memory::MemoryConfig;
use cachette::options::{Invalidation, Options, Stale, UpstashOptions};
use cachette::upstash::{Client, Reply};
use support::{block_on, BlockingTransport, Text, Upstash, TOKEN};

fn client(up: &Upstash) -> Client<BlockingTransport> {
    let mut o = UpstashOptions::new(up.url.clone(), TOKEN);
    o.timeout_ms = 1_000;
    Client::new(&o, BlockingTransport).unwrap()
}

fn no_token(msg: &str) {
    assert!(!msg.contains(TOKEN), "the token leaked into: {msg}");
}

#[test]
fn commands_pipelines_and_binary_values() {
    let up = Upstash::start();
    let c = client(&up);
    block_on(async {
        c.ping().await.unwrap();
        c.set_px("k", "{\"a\":1}", 60_000).await.unwrap();
        assert_eq!(
            c.get("k").await.unwrap().as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(c.get("missing").await.unwrap(), None);
        let ttl = c.command(&["PTTL", "k"]).await.unwrap().as_int().unwrap();
        assert!((59_000..=60_000).contains(&ttl), "{ttl}");
        // A byte that is not UTF-8 comes back exactly (base64 mode).
        c.command(&["SETBIT", "bin", "0", "1"]).await.unwrap();
        assert_eq!(c.get("bin").await.unwrap(), Some(vec![0x80]));
        // Errors: a command error is UPSTASH_COMMAND, per slot in a pipeline.
        let e = c.command(&["LPUSH", "k", "x"]).await.unwrap_err();
        assert_eq!(e.code(), "UPSTASH_COMMAND");
        assert!(e.to_string().starts_with("WRONGTYPE"), "{e}");
        let r = c
            .pipeline(&[
                vec!["SET", "a", "1"],
                vec!["LPUSH", "a", "x"],
                vec!["GET", "a"],
            ])
            .await
            .unwrap();
        assert_eq!(r[0].as_ref().unwrap(), &Reply::Bytes(b"OK".to_vec()));
        assert_eq!(r[1].as_ref().unwrap_err().code(), "UPSTASH_COMMAND");
        assert_eq!(r[2].as_ref().unwrap(), &Reply::Bytes(b"1".to_vec()));
        let t = c
            .multi_exec(&[vec!["SET", "t", "1"], vec!["INCR", "t"]])
            .await
            .unwrap();
        assert_eq!(t[1].as_ref().unwrap(), &Reply::Int(2));
        assert_eq!(
            c.exists_each(&["a", "nope", "t"]).await.unwrap(),
            [true, false, true]
        );
        assert_eq!(c.unlink(&["a", "t", "nope"]).await.unwrap(), 2);
        let (info, keys) = c.info().await.unwrap();
        assert!(info.used_memory_bytes > 0);
        assert!(info.keyspace_hits > 0);
        assert_eq!(keys, 2); // k and bin
    });
    assert!(c.sync_token().is_some(), "the sync token is carried");
}

#[test]
fn a_wrong_token_is_an_auth_error_without_the_token() {
    let up = Upstash::start();
    let wrong = Client::new(
        &UpstashOptions::new(up.url.clone(), "wrong-secret-value"),
        BlockingTransport,
    )
    .unwrap();
    let e = block_on(wrong.ping()).unwrap_err();
    assert_eq!(e.code(), "UPSTASH_AUTH");
    assert!(!e.to_string().contains("wrong-secret-value"));
    assert_eq!(wrong.round_trips(), 1, "auth failures are not retried");
}

#[test]
fn retries_on_transport_failures_only() {
    let up = Upstash::start();
    let c = client(&up);
    // Two 503s, then success: three requests.
    up.faults(r#"{"mode":"status","status":503,"count":2}"#);
    block_on(c.ping()).unwrap();
    assert_eq!(c.round_trips(), 3);
    // Resets past the retry budget: 1 + 3 retries, then UPSTASH_TRANSPORT.
    up.faults(r#"{"mode":"reset","count":10}"#);
    let e = block_on(c.ping()).unwrap_err();
    assert_eq!(e.code(), "UPSTASH_TRANSPORT", "{e}");
    assert_eq!(c.round_trips(), 3 + 4);
    no_token(&e.to_string());
    // A timeout is not retried.
    up.faults(r#"{"mode":"delay","ms":3000,"count":1}"#);
    let e = block_on(c.ping()).unwrap_err();
    assert_eq!(e.code(), "TIMEOUT", "{e}");
    assert_eq!(c.round_trips(), 3 + 4 + 1);
    // A body that is not JSON is a protocol error, not retried.
    up.faults(r#"{"mode":"malformed","count":1}"#);
    assert_eq!(block_on(c.ping()).unwrap_err().code(), "UPSTASH_PROTOCOL");
    // A command error is never retried.
    up.faults(r#"{"mode":"none"}"#);
    let before = c.round_trips();
    assert_eq!(
        block_on(c.command(&["GET"])).unwrap_err().code(),
        "UPSTASH_COMMAND"
    );
    assert_eq!(c.round_trips(), before + 1);
}

#[test]
fn delete_matching_removes_what_the_memory_tier_would() {
    let up = Upstash::start();
    let c = client(&up);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/glob-redis.jsonl"
    ))
    .unwrap();
    let mut lines = 0;
    block_on(async {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let pattern = v["pattern"].as_str().unwrap();
            let keys: Vec<String> = v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect();
            c.command(&["FLUSHDB"]).await.unwrap();
            let mut mset = vec!["MSET".to_owned()];
            let mut tier: MemoryTier<()> = MemoryTier::new(MemoryConfig {
                max_entries: 1000,
                max_bytes: None,
            })
            .unwrap();
            for k in &keys {
                mset.push(k.clone());
                mset.push("1".to_owned());
                tier.insert(k, (), 0, None, 0).unwrap();
            }
            c.command(&mset).await.unwrap();
            let memory_removed = tier.remove_matching(pattern, 0) as u64;
            let removed = c.delete_matching(pattern).await.unwrap();
            assert_eq!(removed, memory_removed, "pattern {pattern:?}");
            let left = c.exists_each(&keys).await.unwrap();
            for (k, there) in keys.iter().zip(left) {
                assert_eq!(
                    there,
                    tier.peek(k, 0).is_some(),
                    "pattern {pattern:?} key {k:?}"
                );
            }
            lines += 1;
        }
    });
    assert_eq!(lines, 500);
}

#[test]
fn delete_matching_pages_through_100k_keys() {
    let up = Upstash::start();
    let c = client(&up);
    block_on(async {
        for chunk in 0..100 {
            let mut mset = vec!["MSET".to_owned()];
            for i in 0..1000 {
                mset.push(format!("big:{chunk}:{i}"));
                mset.push("x".to_owned());
            }
            c.command(&mset).await.unwrap();
        }
        c.set_px("other", "1", 60_000).await.unwrap();
        let before = c.round_trips();
        assert_eq!(c.delete_matching("big:*").await.unwrap(), 100_000);
        let trips = c.round_trips() - before;
        // One SCAN to start, then one pipeline (UNLINK page + next SCAN) per page.
        assert!((90..=250).contains(&trips), "{trips} round trips");
        let (_, keys) = c.info().await.unwrap();
        assert_eq!(keys, 1, "only the unmatched key is left");
    });
}

type Tiered = TieredCache<String, BlockingTransport, Text>;

fn tiered(up: &Upstash, local_ttl: f64) -> Tiered {
    tiered_in(up, local_ttl, Invalidation::Scan)
}

/// Both invalidation modes: the shared-tier tests run in each.
const MODES: [Invalidation; 2] = [Invalidation::Scan, Invalidation::Generation];

fn tiered_in(up: &Upstash, local_ttl: f64, mode: Invalidation) -> Tiered {
    with(up, |o| {
        o.local_ttl = local_ttl;
        o.invalidation = mode;
    })
}

/// A cache on `up` with the options `edit` makes.
fn with(up: &Upstash, edit: impl FnOnce(&mut Options)) -> Tiered {
    let mut u = UpstashOptions::new(up.url.clone(), TOKEN);
    u.timeout_ms = 1_000;
    let mut options = Options {
        upstash: Some(u),
        ..Options::default()
    };
    edit(&mut options);
    TieredCache::new(&options, BlockingTransport, Text, Rc::new(SystemClock)).unwrap()
}

#[test]
fn two_tier_operations_and_statistics() {
    for mode in MODES {
        two_tier_operations_in(mode);
    }
}

fn two_tier_operations_in(mode: Invalidation) {
    let up = Upstash::start();
    let cache = tiered_in(&up, 0.0, mode);
    block_on(async {
        assert_eq!(cache.get("v1:ns:a").await.unwrap(), None);
        cache
            .set("v1:ns:a", "\"A\"".into(), 0, Some(60.0))
            .await
            .unwrap();
        cache.set("v1:ns:b", "\"B\"".into(), 0, None).await.unwrap();
        cache
            .set("v1:other:c", "\"C\"".into(), 0, None)
            .await
            .unwrap();
        assert_eq!(
            cache.get("v1:ns:a").await.unwrap().as_deref(),
            Some("\"A\"")
        );
        assert!(cache.contains("v1:ns:b").await.unwrap());
        assert_eq!(cache.remove_by(Removal::Namespace, "ns").await.unwrap(), 2);
        assert!(!cache.contains("v1:ns:b").await.unwrap());
        assert!(cache.delete("v1:other:c").await.unwrap());
        assert!(!cache.delete("v1:other:c").await.unwrap());
        cache.set("v1:x:1", "1".into(), 0, None).await.unwrap();
        assert_eq!(
            cache.remove_by(Removal::SwitchVersion, "v2").await.unwrap(),
            1
        );
        assert_eq!(cache.version(), "v2");
        assert_eq!(
            cache.present(&["v1:x:1".to_owned()]).await.unwrap(),
            [false]
        );
        let s = cache.snapshot(false).await;
        assert_eq!(s.backend, "upstash");
        assert_eq!(
            (s.counters.hits, s.counters.misses, s.counters.sets),
            (1, 1, 4)
        );
        assert_eq!(s.counters.invalidations, 3);
        assert_eq!(s.counters.deletes, 1);
        let u = s.upstash.expect("INFO figures");
        assert!(u.round_trips > 10);
        assert!(u.traffic.commands >= u.round_trips && u.traffic.bytes_received > 0);
        if mode == Invalidation::Scan {
            assert_eq!(s.keys, 0);
        } else {
            // Three dead values (left to their TTL: v1:ns:a, v1:ns:b, v1:x:1) and seven
            // counters: gen:v1, and gen: and del: of v1:ns, v1:other and v1:x.
            assert_eq!(s.keys, 10, "{mode:?}");
        }
        assert_eq!(cache.health().await.status, HealthStatus::Healthy);
    });
}

#[test]
fn fallback_serves_from_memory_and_recovers() {
    for mode in MODES {
        fallback_in(mode);
    }
}

fn fallback_in(mode: Invalidation) {
    let up = Upstash::start();
    let cache = tiered_in(&up, 0.0, mode);
    block_on(async {
        cache
            .set("v1:ns:k", "before".into(), 0, None)
            .await
            .unwrap();
        up.faults(r#"{"mode":"reset"}"#);
        // Writes and reads go to memory while Upstash is unreachable.
        cache
            .set("v1:ns:k", "during".into(), 0, None)
            .await
            .unwrap();
        assert_eq!(
            cache.get("v1:ns:k").await.unwrap().as_deref(),
            Some("during")
        );
        assert!(cache.fallback_active());
        let h = cache.health().await;
        assert_eq!(h.status, HealthStatus::Degraded);
        no_token(h.error.as_deref().unwrap());
        // Invalidations apply to memory, then fail: nobody believes Upstash forgot "k".
        let e = cache
            .remove_by(Removal::Pattern, "v1:ns:k*")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "UPSTASH_TRANSPORT");
        no_token(&e.to_string());
        assert_eq!(
            cache.get("v1:ns:k").await.unwrap(),
            None,
            "memory applied the invalidation"
        );
        let s = cache.snapshot(false).await;
        assert!(s.fallback_active);
        assert!(s.counters.errors >= 4, "{}", s.counters.errors);
        assert!(s.upstash.is_none());
        // Upstash answers again: back to it (it still holds the value written before).
        up.faults(r#"{"mode":"none"}"#);
        assert_eq!(
            cache.get("v1:ns:k").await.unwrap().as_deref(),
            Some("before")
        );
        assert!(!cache.fallback_active());
        assert_eq!(cache.health().await.status, HealthStatus::Healthy);
    });
}

#[test]
fn a_command_error_is_not_hidden_by_fallback() {
    for mode in MODES {
        let up = Upstash::start();
        let cache = tiered_in(&up, 0.0, mode);
        up.raw(r#"["LPUSH","v1:ns:list","x"]"#);
        let e = block_on(cache.get("v1:ns:list")).unwrap_err();
        assert_eq!(e.code(), "UPSTASH_COMMAND", "{mode:?}");
        assert!(!cache.fallback_active());
    }
}

#[test]
fn local_ttl_keeps_a_near_copy() {
    for mode in MODES {
        local_ttl_in(mode);
    }
}

fn local_ttl_in(mode: Invalidation) {
    let up = Upstash::start();
    let cache = tiered_in(&up, 60.0, mode);
    block_on(async {
        cache.set("v1:ns:hot", "v".into(), 0, None).await.unwrap();
        let trips = cache.client().unwrap().round_trips();
        for _ in 0..5 {
            assert_eq!(cache.get("v1:ns:hot").await.unwrap().as_deref(), Some("v"));
        }
        assert_eq!(
            cache.client().unwrap().round_trips(),
            trips,
            "served from the near copy"
        );
        // A write through this cache refreshes the near copy.
        cache.set("v1:ns:hot", "w".into(), 0, None).await.unwrap();
        assert_eq!(cache.get("v1:ns:hot").await.unwrap().as_deref(), Some("w"));
    });
}

#[test]
fn memory_keeps_the_last_good_value_through_an_outage() {
    for mode in MODES {
        last_good_value_in(mode);
    }
}

fn last_good_value_in(mode: Invalidation) {
    let up = Upstash::start();
    let mut u = UpstashOptions::new(up.url.clone(), TOKEN);
    u.timeout_ms = 500;
    u.retries = 0;
    let options = Options {
        upstash: Some(u),
        stale_if_error: Stale::Secs(3600.0),
        invalidation: mode,
        ..Options::default()
    };
    let cache = TieredCache::new(&options, BlockingTransport, Text, Rc::new(SystemClock)).unwrap();
    let policy = *cache.defaults();
    block_on(async {
        cache
            .set("v1:ns:k", "\"v\"".into(), 0, Some(0.3))
            .await
            .unwrap();
        up.faults(r#"{"mode":"reset"}"#);
        assert_eq!(
            cache.get("v1:ns:k").await.unwrap().as_deref(),
            Some("\"v\""),
            "written before the outage, still fresh: served from memory"
        );
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert_eq!(
            cache.get("v1:ns:k").await.unwrap(),
            None,
            "past its TTL a plain read misses"
        );
        let r = cache.read("v1:ns:k", &policy).await.unwrap();
        assert_eq!(r.shared_error.map(|e| e.code()), Some("UPSTASH_TRANSPORT"));
        let f = r.found.expect("the stale copy is offered");
        assert!(f.stale_ms.is_some() && f.age_ms >= 400, "{f:?}");
        up.faults(r#"{"mode":"none"}"#);
        // Upstash answers again: its key expired, the copy is offered as stale, no error.
        let r = cache.read("v1:ns:k", &policy).await.unwrap();
        assert!(r.shared_error.is_none());
        assert!(r.found.is_some_and(|f| f.stale_ms.is_some()));
        // A copy memory believes fresh, deleted in Upstash by another client, is dropped.
        cache
            .set("v1:ns:gone", "1".into(), 0, Some(60.0))
            .await
            .unwrap();
        up.raw(r#"["DEL","v1:ns:gone"]"#);
        assert_eq!(cache.get("v1:ns:gone").await.unwrap(), None);
        up.faults(r#"{"mode":"reset"}"#);
        assert_eq!(
            cache.get("v1:ns:gone").await.unwrap(),
            None,
            "not resurrected by an outage"
        );
        up.faults(r#"{"mode":"none"}"#);
    });
}

#[test]
fn an_upstash_hit_knows_its_age_from_pttl_and_infinity_sets_no_expiry() {
    let up = Upstash::start();
    let cache = tiered(&up, 0.0);
    let mut policy = *cache.defaults();
    policy.ttl_ms = Some(60_000);
    up.raw(r#"["SET","aged","\"x\"","PX","50000"]"#);
    block_on(async {
        let f = cache.read("aged", &policy).await.unwrap().found.unwrap();
        assert!((9_900..=10_500).contains(&f.age_ms), "{}", f.age_ms);
        cache
            .set("forever", "1".into(), 0, Some(f64::INFINITY))
            .await
            .unwrap();
    });
    assert_eq!(up.raw(r#"["PTTL","forever"]"#), r#"{"result":-1}"#);
}

#[test]
fn the_script_is_the_one_redis_loads() {
    let up = Upstash::start();
    let c = client(&up);
    let sha = block_on(c.command(&["SCRIPT", "LOAD", SCRIPT.source])).unwrap();
    assert_eq!(sha.as_bytes().unwrap(), SCRIPT.sha1.as_bytes());
}

fn generation(up: &Upstash) -> Tiered {
    tiered_in(up, 0.0, Invalidation::Generation)
}

#[test]
fn generation_mode_invalidates_in_one_round_trip_whatever_the_keyspace() {
    let up = Upstash::start();
    let c = client(&up);
    let (a, b) = (generation(&up), generation(&up));
    block_on(async {
        for chunk in 0..20 {
            let mut mset = vec!["MSET".to_owned()];
            for i in 0..1000 {
                mset.push(format!("v1:other:{chunk}-{i}"));
                mset.push("\"x\"".to_owned());
            }
            c.command(&mset).await.unwrap();
        }
        a.set("v1:ns:x", "\"X\"".into(), 0, Some(60.0))
            .await
            .unwrap();
        a.set("v1:ns:y", "\"Y\"".into(), 0, None).await.unwrap();
        a.set("v1:keep:z", "\"Z\"".into(), 0, None).await.unwrap();
        let c = &c;
        let counter = |k: &'static str| async move {
            String::from_utf8(c.get(k).await.unwrap().unwrap()).unwrap()
        };
        let (v, n) = (
            counter("cachette:gen:v1").await,
            counter("cachette:gen:v1:ns").await,
        );
        // Counters start from the clock in microseconds.
        assert!(
            v.len() >= 16 && v.bytes().all(|b| b.is_ascii_digit()),
            "{v}"
        );
        assert_eq!(
            c.get("v1:ns:x").await.unwrap().unwrap(),
            format!("{v}.{n}|\"X\"").as_bytes()
        );
        assert_eq!(b.get("v1:ns:x").await.unwrap().as_deref(), Some("\"X\""));

        let trips = |t: &Tiered| t.client().unwrap().round_trips();
        let before = trips(&a);
        assert_eq!(a.remove_by(Removal::Namespace, "ns").await.unwrap(), 2);
        assert_eq!(trips(&a) - before, 1, "one INCR");
        assert_eq!(b.get("v1:ns:x").await.unwrap(), None, "another instance");
        assert!(!b.contains("v1:ns:y").await.unwrap());
        assert_eq!(b.get("v1:keep:z").await.unwrap().as_deref(), Some("\"Z\""));
        assert_eq!(
            c.command(&["EXISTS", "v1:ns:x"]).await.unwrap(),
            Reply::Int(1),
            "the dead value stays until its TTL"
        );
        // A new value of the namespace lives under the new generation.
        b.set("v1:ns:x", "\"X2\"".into(), 0, None).await.unwrap();
        let n1: u64 = n.parse::<u64>().unwrap() + 1;
        assert_eq!(
            c.get("v1:ns:x").await.unwrap().unwrap(),
            format!("{v}.{n1}|\"X2\"").as_bytes()
        );
        assert_eq!(a.get("v1:ns:x").await.unwrap().as_deref(), Some("\"X2\""));

        let before = trips(&a);
        a.remove_by(Removal::Version, "v1").await.unwrap();
        assert_eq!(trips(&a) - before, 1);
        assert_eq!(b.get("v1:keep:z").await.unwrap(), None);
        b.set("v1:keep:z", "\"Z2\"".into(), 0, None).await.unwrap();
        let before = trips(&a);
        a.remove_by(Removal::SwitchVersion, "v2").await.unwrap();
        assert_eq!(trips(&a) - before, 1);
        assert_eq!((a.version(), b.version()), ("v2".into(), "v1".into()));
        assert_eq!(b.get("v1:keep:z").await.unwrap(), None, "old version dead");
        let v2 = v.parse::<u64>().unwrap() + 2;
        assert_eq!(counter("cachette:gen:v1").await, v2.to_string());

        // deletePattern still SCANs, leaves the counters alone, removes only what matches.
        b.set("v1:p:1", "1".into(), 0, None).await.unwrap();
        b.set("v1:p:2", "2".into(), 0, None).await.unwrap();
        assert_eq!(b.remove_by(Removal::Pattern, "v1:p:*").await.unwrap(), 2);
        assert_eq!(b.get("v1:p:1").await.unwrap(), None);
        assert_eq!(
            b.remove_by(Removal::Pattern, "cachette:*").await.unwrap(),
            0
        );
        assert_eq!(counter("cachette:gen:v1:ns").await, n1.to_string());
        // Counted up once per SCAN page that removed keys of the namespace.
        let d: u64 = counter("cachette:del:v1:p").await.parse().unwrap();
        assert!(d > 1_000_000_000_000_000, "{d}");
        assert_eq!(
            b.remove_by(Removal::Pattern, "v1:other:*").await.unwrap(),
            20_000
        );
    });
}

#[test]
fn a_value_made_before_an_invalidation_is_not_stored_after_it() {
    let up = Upstash::start();
    let (a, b) = (generation(&up), generation(&up));
    let policy = *a.defaults();
    block_on(async {
        let r = a.read("v1:ns:k", &policy).await.unwrap();
        assert!(r.found.is_none());
        b.remove_by(Removal::Namespace, "ns").await.unwrap();
        a.store_generated(
            "v1:ns:k",
            "old".into(),
            None,
            0,
            &policy,
            r.since.as_ref(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(b.get("v1:ns:k").await.unwrap(), None);
        assert_eq!(a.get("v1:ns:k").await.unwrap(), None, "nor kept in memory");
        let r = a.read("v1:ns:k", &policy).await.unwrap();
        a.store_generated(
            "v1:ns:k",
            "new".into(),
            None,
            0,
            &policy,
            r.since.as_ref(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(b.get("v1:ns:k").await.unwrap().as_deref(), Some("new"));
    });
}

#[test]
fn near_copies_end_within_the_stated_bound() {
    use std::time::Duration;
    let up = Upstash::start();
    let wait = |ms| std::thread::sleep(Duration::from_millis(ms));
    block_on(async {
        // Scan mode: a near copy lasts localTtl, whatever another instance does.
        let a = tiered_in(&up, 0.4, Invalidation::Scan);
        let b = tiered(&up, 0.0);
        a.set("v1:ns:k", "1".into(), 0, None).await.unwrap();
        b.remove_by(Removal::Namespace, "ns").await.unwrap();
        assert_eq!(a.get("v1:ns:k").await.unwrap().as_deref(), Some("1"));
        wait(450);
        assert_eq!(a.get("v1:ns:k").await.unwrap(), None);

        // Generation mode: at most generationCheck, for invalidations and deletes alike.
        let a = with(&up, |o| {
            o.local_ttl = 60.0;
            o.generation_check = 0.3;
            o.invalidation = Invalidation::Generation;
        });
        let b = generation(&up);
        for k in ["v1:g:1", "v1:g:2", "v1:h:1"] {
            a.set(k, "x".into(), 0, None).await.unwrap();
        }
        let trips = a.client().unwrap().round_trips();
        assert_eq!(a.get("v1:g:1").await.unwrap().as_deref(), Some("x"));
        assert_eq!(a.client().unwrap().round_trips(), trips, "a near copy");
        b.remove_by(Removal::Namespace, "g").await.unwrap();
        assert!(b.delete("v1:h:1").await.unwrap());
        wait(320);
        assert_eq!(a.get("v1:g:1").await.unwrap(), None);
        assert_eq!(a.get("v1:g:2").await.unwrap(), None);
        assert_eq!(a.get("v1:h:1").await.unwrap(), None, "a delete elsewhere");
    });
}

#[test]
fn one_instance_holds_the_lock_and_another_takes_over_when_it_expires() {
    use cachette::cache::Claim;
    use cachette::options::Lock;
    let up = Upstash::start();
    let locked = || {
        with(&up, |o| {
            o.lock = Lock::Secs(0.3);
            o.invalidation = Invalidation::Generation;
        })
    };
    let (a, b) = (locked(), locked());
    let policy = *a.defaults();
    assert_eq!(policy.lock_ms, 300);
    let k = "v1:ns:k";
    block_on(async {
        let Claim::Generate { lock: Some(la), .. } = a.claim(k, &policy, false).await.unwrap()
        else {
            panic!("the first claim takes the lock");
        };
        assert!(matches!(
            b.claim(k, &policy, true).await.unwrap(),
            Claim::Busy
        ));
        // a never stores (it died): b waits, then takes the lock once it expires.
        let t0 = std::time::Instant::now();
        let Claim::Generate {
            lock: Some(lb),
            since,
        } = b.claim(k, &policy, false).await.unwrap()
        else {
            panic!("b takes over");
        };
        let waited = t0.elapsed().as_millis();
        assert!((200..1_000).contains(&waited), "{waited} ms");
        // a's late release leaves b's lock alone.
        a.release(la).await;
        assert_eq!(
            up.raw(r#"["EXISTS","cachette:lock:v1:ns:k"]"#),
            r#"{"result":1}"#
        );
        b.store_generated(k, "v".into(), None, 0, &policy, since.as_ref(), Some(&lb))
            .await
            .unwrap();
        assert_eq!(
            up.raw(r#"["EXISTS","cachette:lock:v1:ns:k"]"#),
            r#"{"result":0}"#
        );
        match a.claim("v1:ns:k", &policy, false).await.unwrap() {
            Claim::Found(f) => assert_eq!(f.value, "v"),
            other => panic!("{other:?}"),
        }
        let l = b.snapshot(false).await.upstash.unwrap().locks;
        assert_eq!((l.acquired, l.released, l.joins), (1, 1, 0));
        assert!(l.waits >= 2, "{l:?}");
        let l = a.snapshot(false).await.upstash.unwrap().locks;
        // Its late release released nothing (b held the lock); its last claim took the lock as
        // the value arrived, and released it at once.
        assert_eq!((l.acquired, l.released, l.joins), (2, 1, 1));
    });
}

#[test]
fn an_evicted_counter_never_brings_dead_values_back() {
    let up = Upstash::start();
    let a = generation(&up);
    block_on(async {
        a.set("v1:ns:k", "\"old\"".into(), 0, None).await.unwrap();
        a.remove_by(Removal::Namespace, "ns").await.unwrap();
        assert_eq!(a.get("v1:ns:k").await.unwrap(), None);
        // Redis evicts the namespace's counter (allkeys-lru): it starts again from the clock,
        // not from a value it had, so the value stays dead.
        up.raw(r#"["DEL","cachette:gen:v1:ns"]"#);
        assert_eq!(a.get("v1:ns:k").await.unwrap(), None);
        a.remove_by(Removal::Namespace, "ns").await.unwrap();
        assert_eq!(a.get("v1:ns:k").await.unwrap(), None);
        // The cache's own keys are refused as keys in generation mode.
        for own in [
            "cachette:gen:v1",
            "cachette:del:v1:ns",
            "cachette:lock:v1:ns:k",
        ] {
            let e = a.set(own, "1".into(), 0, None).await.unwrap_err();
            assert_eq!(e.code(), "INVALID_KEY", "{own}");
        }
    });
}
