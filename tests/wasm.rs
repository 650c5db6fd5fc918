//! The core compiled to WebAssembly, run by wasm-bindgen-test in Node.js and (with
//! `WASM_BINDGEN_USE_BROWSER=1`) in headless Chromium: one suite, every engine.
//!
//! On wasm32, canonical JSON formats and parses non-trivial numbers with the JavaScript engine
//! (`String(x)`, `parseFloat`) instead of Rust's float code, so the shared vectors run here too.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use cachette::cache::MemoryTier;
use cachette::canonical::{canonical_json, KeyFormat};
use cachette::clock::Clock;
use cachette::key::request_key;
use cachette::memory::MemoryConfig;
use cachette::options::Options;
use cachette::platform::{Interval, JsClock};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

const KEY_VECTORS: &str = include_str!("../../shared/vectors/request-keys.jsonl");
const GLOB_VECTORS: &str = include_str!("../../shared/vectors/glob-redis.jsonl");
const PYTHON_TEXT_VECTORS: &str = include_str!("../../shared/vectors/python-text.jsonl");

/// The `data` member's text exactly as it stands in a vector line.
fn data_text(raw: &str) -> &str {
    let rest = raw
        .strip_prefix(r#"{"data":"#)
        .expect("line starts with data");
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    stream.next().expect("a value").expect("valid JSON");
    &rest[..stream.byte_offset()]
}

#[wasm_bindgen_test]
fn request_key_vectors_in_both_formats() {
    let mut n = 0;
    for raw in KEY_VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let data = data_text(raw);
        for (format, canon, md5) in [
            (KeyFormat::Jcs, "jcs", "md5_jcs"),
            (KeyFormat::Python, "python", "md5_python"),
        ] {
            assert_eq!(
                canonical_json(data, format).unwrap(),
                v[canon].as_str().unwrap(),
                "vector {n} {canon}"
            );
            assert_eq!(
                request_key("v1", "ns", data, format).unwrap(),
                format!("v1:ns:{}", v[md5].as_str().unwrap()),
                "vector {n} {md5}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 400);
}

/// Every row of python-text.jsonl: what Python prints, or UNSERIALIZABLE where it cannot.
#[wasm_bindgen_test]
fn python_text_vectors() {
    let mut n = 0;
    for raw in PYTHON_TEXT_VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let text = v["text"].as_str().unwrap();
        match (v["python"].as_str(), v["md5_python"].as_str()) {
            (Some(want), Some(md5)) => {
                assert_eq!(
                    canonical_json(text, KeyFormat::Python).unwrap(),
                    want,
                    "row {n}"
                );
                assert_eq!(
                    request_key("v1", "ns", text, KeyFormat::Python).unwrap(),
                    format!("v1:ns:{md5}"),
                    "row {n}"
                );
            }
            _ => assert_eq!(
                canonical_json(text, KeyFormat::Python).unwrap_err().code(),
                "UNSERIALIZABLE",
                "row {n}"
            ),
        }
        n += 1;
    }
    assert_eq!(n, 300);
}

#[wasm_bindgen_test]
fn numbers_that_need_the_engine() {
    for (text, jcs, py) in [
        ("0.1", "0.1", "0.1"),
        ("1e400", "", ""),
        (
            "-769795.0031441454",
            "-769795.0031441454",
            "-769795.0031441454",
        ),
        ("0.10000000000000001", "0.1", "0.1"),
        ("1.5e-7", "1.5e-7", "1.5e-07"),
        (
            "123456789012345678901",
            "123456789012345680000",
            "123456789012345678901",
        ),
        ("9007199254740993", "9007199254740992", "9007199254740993"),
        (
            "9007199254740993.0",
            "9007199254740992",
            "9007199254740992.0",
        ),
        ("1e16", "10000000000000000", "1e+16"),
        ("-0.0", "0", "-0.0"),
        ("5.0", "5", "5.0"),
        ("1E21", "1e+21", "1e+21"),
        ("5e-324", "5e-324", "5e-324"),
    ] {
        let got_jcs = canonical_json(text, KeyFormat::Jcs);
        let got_py = canonical_json(text, KeyFormat::Python);
        if jcs.is_empty() {
            assert_eq!(got_jcs.unwrap_err().code(), "UNSERIALIZABLE", "{text}");
            assert_eq!(got_py.unwrap_err().code(), "UNSERIALIZABLE", "{text}");
        } else {
            assert_eq!(got_jcs.unwrap(), jcs, "{text} jcs");
            assert_eq!(got_py.unwrap(), py, "{text} python");
        }
    }
}

#[wasm_bindgen_test]
fn glob_vectors_delete_what_redis_matched() {
    let mut n = 0;
    for raw in GLOB_VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let pattern = v["pattern"].as_str().unwrap();
        let mut tier: MemoryTier<JsValue> = MemoryTier::new(MemoryConfig {
            max_entries: 1000,
            max_bytes: None,
        })
        .unwrap();
        let keys: Vec<&str> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        for k in &keys {
            tier.insert(k, JsValue::from_str(k), 0, None, 0).unwrap();
        }
        let mut want: Vec<&str> = v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(
            tier.remove_matching(pattern, 0),
            want.len(),
            "pattern {pattern:?}"
        );
        for k in &keys {
            assert_eq!(
                tier.peek(k, 0).is_none(),
                want.contains(k),
                "{pattern:?} {k:?}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 500);
}

#[wasm_bindgen_test]
fn memory_core_holds_js_values_by_identity() {
    let mut core: MemoryTier<JsValue> = MemoryTier::with_options(&Options::default()).unwrap();
    let obj = js_sys::Object::new();
    let now = JsClock.now_ms();
    core.set("k", obj.clone().into(), 0, Some(60.0), now)
        .unwrap();
    let got = core.get("k", now).cloned().unwrap();
    assert!(js_sys::Object::is(&got, &obj), "the same object comes back");
    assert!(core.get("k", now + 60_000).is_none(), "expired at its TTL");
}

#[wasm_bindgen_test]
fn js_clock_reads_wall_time() {
    let a = JsClock.now_ms();
    assert!(a > 1_600_000_000_000, "{a}");
    let p1 = JsClock.precise_ms();
    let p2 = JsClock.precise_ms();
    assert!(p2 >= p1);
}

#[wasm_bindgen_test]
async fn interval_fires_and_stops_when_dropped() {
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let interval = Interval::start(5.0, move || t.set(t.get() + 1)).expect("timers exist here");
    sleep(60).await;
    let seen = ticks.get();
    assert!(seen >= 2, "only {seen} ticks in 60 ms");
    drop(interval);
    sleep(40).await;
    let after = ticks.get();
    sleep(40).await;
    assert_eq!(ticks.get(), after, "no ticks after drop");
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into()).unwrap();
        let set_timeout: js_sys::Function = set_timeout.into();
        set_timeout
            .call2(&JsValue::UNDEFINED, &resolve, &ms.into())
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}
