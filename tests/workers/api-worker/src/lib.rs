//! Checks of `cachette::worker::Cache` run inside workerd: `GET /` runs the checks of the
//! basic API, `GET /generation` those of `get_or_set_entry` (statuses, stale values, timeouts,
//! the generator context, dropped callers); each answers `[{ "name", "ok", "error"? }]`
//! (tests/workers/rust-api.test.mjs turns each into a subtest).
//! Memory-only checks need nothing; Upstash checks use `UPSTASH_REDIS_REST_URL` and
//! `UPSTASH_REDIS_REST_TOKEN`, pointing at an upstash-bridge whose faults they switch.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use cachette::key::{request_key, KeyFormat};
use cachette::options::{Invalidation, Lock, Options, UpstashOptions};
use cachette::worker::{
    Cache, CacheEntry, CacheStatus, Chunk, ChunkStream, GenerationContext, GetOrSetOptions,
    StreamOptions,
};
use cachette::Error as CacheError;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{
    event, AbortSignal, Context, Delay, Env, Fetch, Headers, Method, Request, RequestInit, Response,
};

type Check = std::result::Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!("{} = {:?}, expected {:?}", stringify!($a), a, b));
        }
    }};
    ($a:expr, $b:expr, $($msg:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!("{}: {} = {:?}, expected {:?}", format!($($msg)+), stringify!($a), a, b));
        }
    }};
}

fn code<T: std::fmt::Debug>(r: &std::result::Result<T, CacheError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => e.code().to_owned(),
    }
}

fn must<T>(r: std::result::Result<T, CacheError>, what: &str) -> std::result::Result<T, String> {
    r.map_err(|e| format!("{what}: {} {e}", e.code()))
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

fn boxed<'a, T>(f: impl Future<Output = T> + 'a) -> Boxed<'a, T> {
    Box::pin(f)
}

/// Polls every future until all are done; their outputs in order.
async fn join_all<T>(futures: Vec<Boxed<'_, T>>) -> Vec<T> {
    let mut futures = futures;
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut done = true;
        for (f, o) in futures.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

async fn sleep(ms: u64) {
    Delay::from(Duration::from_millis(ms)).await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Topic {
    name: String,
    level: u32,
    tags: Vec<String>,
}

fn topic(name: &str) -> Topic {
    Topic {
        name: name.to_owned(),
        level: 3,
        tags: vec!["a".to_owned(), "é".to_owned()],
    }
}

fn memory_cache() -> std::result::Result<Cache, String> {
    must(
        Cache::new(&Options {
            cleanup_interval: 0.0,
            ..Options::default()
        }),
        "Cache::new",
    )
}

struct Upstash {
    url: String,
    token: String,
}

impl Upstash {
    fn from(env: &Env) -> std::result::Result<Upstash, String> {
        let get = |n: &str| {
            env.secret(n)
                .map(|s| s.to_string())
                .map_err(|e| e.to_string())
        };
        Ok(Upstash {
            url: get("UPSTASH_REDIS_REST_URL")?,
            token: get("UPSTASH_REDIS_REST_TOKEN")?,
        })
    }

    /// A cache on the bridge with its own version prefix.
    fn cache(
        &self,
        version: &str,
        timeout_ms: u32,
        retries: u32,
    ) -> std::result::Result<Cache, String> {
        self.cache_with(
            Options {
                version: version.to_owned(),
                ..Options::default()
            },
            timeout_ms,
            retries,
        )
    }

    /// A cache on the bridge with `options` (its timer off).
    fn cache_with(
        &self,
        options: Options,
        timeout_ms: u32,
        retries: u32,
    ) -> std::result::Result<Cache, String> {
        let mut u = UpstashOptions::new(self.url.clone(), self.token.clone());
        u.timeout_ms = timeout_ms;
        u.retries = retries;
        must(
            Cache::new(&Options {
                cleanup_interval: 0.0,
                upstash: Some(u),
                ..options
            }),
            "Cache::new",
        )
    }

    /// POSTs `body` to the bridge's `path`; the response.
    async fn post(&self, path: &str, body: Value) -> std::result::Result<Response, String> {
        let headers = Headers::new();
        let auth = format!("Bearer {}", self.token);
        headers
            .set("Authorization", &auth)
            .map_err(|e| e.to_string())?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.to_string().into()));
        let req = Request::new_with_init(&format!("{}{path}", self.url), &init)
            .map_err(|e| e.to_string())?;
        Fetch::Request(req).send().await.map_err(|e| e.to_string())
    }

    /// Sets the bridge's fault injection.
    async fn faults(&self, body: Value) -> Check {
        let resp = self.post("/__bridge/faults", body).await?;
        ensure!(
            resp.status_code() == 200,
            "fault control answered {}",
            resp.status_code()
        );
        Ok(())
    }

    /// One Redis command through the bridge (not through the cache); its `result`.
    async fn raw(&self, command: &[&str]) -> std::result::Result<Value, String> {
        let mut resp = self.post("", json!(command)).await?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        Ok(body["result"].clone())
    }

    /// Runs `check` with `fault` set, clearing it afterwards whatever happened.
    async fn with_fault(&self, fault: Value, check: impl Future<Output = Check>) -> Check {
        self.faults(fault).await?;
        let r = check.await;
        self.faults(json!({ "mode": "none" })).await?;
        r
    }
}

// ---------------------------------------------------------------------------------------------
// Checks that hold for both tiers
// ---------------------------------------------------------------------------------------------

async fn round_trip(c: &Cache) -> Check {
    let v = topic("Rust");
    must(c.set("k", &v, None).await, "set")?;
    ensure_eq!(must(c.get::<Topic>("k").await, "get")?, Some(v.clone()));
    ensure_eq!(
        must(c.get::<Value>("k").await, "get as Value")?,
        Some(json!(v))
    );
    ensure_eq!(must(c.has("k").await, "has")?, true);
    ensure_eq!(must(c.get::<Topic>("missing").await, "get missing")?, None);
    ensure_eq!(must(c.delete("k").await, "delete")?, true);
    ensure_eq!(must(c.has("k").await, "has after delete")?, false);
    ensure_eq!(must(c.delete("k").await, "delete again")?, false);
    must(c.set("", &"", None).await, "empty key and value")?;
    ensure_eq!(
        must(c.get::<String>("").await, "get empty")?,
        Some(String::new())
    );
    must(c.set("n", &"text", None).await, "set text")?;
    ensure_eq!(code(&c.get::<u32>("n").await), "UNSERIALIZABLE");
    ensure_eq!(code(&c.set("k", &1, Some(-1.0)).await), "INVALID_OPTIONS");
    ensure_eq!(
        code(&c.get::<u32>(&"k".repeat(40_000)).await),
        "INVALID_KEY"
    );
    Ok(())
}

async fn keys_lookup_store(c: &Cache) -> Check {
    let version = c.version();
    let key = must(
        c.key("subtopics", &json!({ "topic": "Python Programming" })),
        "key",
    )?;
    let want = must(
        request_key(
            &version,
            "subtopics",
            r#"{"topic":"Python Programming"}"#,
            KeyFormat::Jcs,
        ),
        "request_key",
    )?;
    ensure_eq!(key, want);
    #[derive(Serialize)]
    struct Data<'a> {
        topic: &'a str,
    }
    ensure_eq!(
        must(
            c.key(
                "subtopics",
                &Data {
                    topic: "Python Programming"
                }
            ),
            "key of a struct"
        )?,
        want
    );
    ensure_eq!(code(&c.key("a:b", &1)), "INVALID_KEY");
    let stored = must(
        c.store(
            "subtopics",
            &json!({ "topic": "Go" }),
            &vec!["x", "y"],
            None,
        )
        .await,
        "store",
    )?;
    ensure_eq!(
        stored,
        must(c.key("subtopics", &json!({ "topic": "Go" })), "key")?
    );
    let found: Option<Vec<String>> = must(
        c.lookup("subtopics", &json!({ "topic": "Go" })).await,
        "lookup",
    )?;
    ensure_eq!(found, Some(vec!["x".to_owned(), "y".to_owned()]));
    Ok(())
}

async fn single_flight(c: &Cache) -> Check {
    let calls = &Cell::new(0);
    let gen = move || async move {
        calls.set(calls.get() + 1);
        sleep(20).await;
        Ok::<_, String>(topic("generated"))
    };
    let data = json!({ "topic": "sf" });
    let all = join_all(
        (0..10)
            .map(|_| boxed(c.get_or_set("quiz", &data, gen)))
            .collect(),
    )
    .await;
    ensure_eq!(calls.get(), 1);
    for r in all {
        ensure_eq!(must(r, "get_or_set")?, topic("generated"));
    }
    let again: Topic = must(
        c.get_or_set("quiz", &json!({ "topic": "sf" }), gen).await,
        "again",
    )?;
    ensure_eq!(again, topic("generated"));
    ensure_eq!(calls.get(), 1);
    ensure_eq!(
        code(
            &c.get_or_set_with_ttl("quiz", &json!({}), Some(0.0), gen)
                .await
        ),
        "INVALID_OPTIONS"
    );
    Ok(())
}

async fn failing_generator(c: &Cache) -> Check {
    let calls = &Cell::new(0);
    let failing = move || async move {
        calls.set(calls.get() + 1);
        sleep(10).await;
        Err::<Topic, _>("model overloaded")
    };
    let data = json!({ "topic": "fail" });
    let all = join_all(
        (0..4)
            .map(|_| boxed(c.get_or_set("quiz", &data, failing)))
            .collect(),
    )
    .await;
    ensure_eq!(calls.get(), 1);
    for r in &all {
        ensure_eq!(code(r), "GENERATOR_FAILED");
        let msg = r
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        ensure!(msg.contains("model overloaded"), "message {msg:?}");
    }
    let key = must(c.key("quiz", &json!({ "topic": "fail" })), "key")?;
    ensure_eq!(must(c.has(&key).await, "has")?, false);
    let ok: Topic = must(
        c.get_or_set("quiz", &json!({ "topic": "fail" }), || async {
            Ok::<_, String>(topic("second try"))
        })
        .await,
        "retry",
    )?;
    ensure_eq!(ok, topic("second try"));
    Ok(())
}

/// `get_or_set` runs a borrowing generator inside the call that starts it: when that call is
/// dropped, the calls that joined it generate again themselves.
async fn dropped_leader(c: &Cache) -> Check {
    let data = json!({ "topic": "dropped leader" });
    let mut leader = Box::pin(c.get_or_set("quiz", &data, || async {
        sleep(5_000).await;
        Ok::<_, String>(topic("never"))
    }));
    let mut waiter =
        Box::pin(c.get_or_set("quiz", &data, || async { Ok::<_, String>(topic("waiter")) }));
    // One poll each: the leader starts generating, the waiter joins its flight.
    poll_fn(|cx| {
        let _ = leader.as_mut().poll(cx);
        let _ = waiter.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
    drop(leader);
    let served: Topic = must(waiter.await, "the waiter")?;
    ensure_eq!(served, topic("waiter"));
    let cached: Topic = must(
        c.get_or_set("quiz", &data, || async { Ok::<_, String>(topic("again")) })
            .await,
        "cached",
    )?;
    ensure_eq!(cached, topic("waiter"));
    Ok(())
}

async fn invalidations(c: &Cache) -> Check {
    let v = c.version();
    must(
        c.store("a*", &json!({ "i": 1 }), &1, None).await,
        "store a*",
    )?;
    must(
        c.store("ab", &json!({ "i": 1 }), &1, None).await,
        "store ab",
    )?;
    ensure_eq!(
        must(c.invalidate_namespace("a*").await, "invalidate a*")?,
        1
    );
    ensure_eq!(
        must(
            c.lookup::<_, u32>("ab", &json!({ "i": 1 })).await,
            "ab kept"
        )?,
        Some(1)
    );
    ensure_eq!(code(&c.invalidate_namespace("a:b").await), "INVALID_KEY");
    ensure_eq!(code(&c.invalidate_namespace("").await), "INVALID_KEY");
    must(c.set("p:1", &1, None).await, "set p:1")?;
    must(c.set("p:2", &2, None).await, "set p:2")?;
    must(c.set("q:1", &3, None).await, "set q:1")?;
    ensure_eq!(must(c.delete_pattern("p:*").await, "delete_pattern")?, 2);
    ensure_eq!(must(c.has("q:1").await, "q:1 kept")?, true);
    ensure_eq!(code(&c.delete_pattern("").await), "INVALID_PATTERN");
    // `ab` and the keys of the other checks live under the current version.
    let next = format!("{v}next");
    let removed = must(c.update_version(&next).await, "update_version")?;
    ensure!(removed >= 1, "update_version removed {removed}");
    ensure_eq!(c.version(), next);
    ensure_eq!(
        must(
            c.lookup::<_, u32>("ab", &json!({ "i": 1 })).await,
            "ab gone"
        )?,
        None
    );
    must(
        c.store("ns", &json!({}), &1, None).await,
        "store under the new version",
    )?;
    ensure_eq!(
        must(c.invalidate_version(&next).await, "invalidate_version")?,
        1
    );
    ensure_eq!(code(&c.update_version("bad:version").await), "INVALID_KEY");
    ensure_eq!(c.version(), next);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

async fn memory_expiry() -> Check {
    let c = memory_cache()?;
    must(c.set("short", &1, Some(0.05)).await, "set")?;
    ensure_eq!(must(c.get::<u32>("short").await, "get at once")?, Some(1));
    sleep(120).await;
    ensure_eq!(
        must(c.get::<u32>("short").await, "get after the TTL")?,
        None
    );
    Ok(())
}

/// With `KeyFormat::Python`, the key is the one a Python service computes for the JSON that
/// serde_json sends: integers are Python ints (at any size), `f64` values floats. The md5 is
/// Python's, of `json.dumps(json.loads(text), sort_keys=True)`.
async fn python_keys() -> Check {
    let c = must(
        Cache::new(&Options {
            cleanup_interval: 0.0,
            key_format: KeyFormat::Python,
            ..Options::default()
        }),
        "Cache::new",
    )?;
    #[derive(Serialize)]
    struct Params<'a> {
        topic: &'a str,
        temperature: f64,
        seed: u64,
    }
    let params = Params {
        topic: "Rust",
        temperature: 1.0,
        seed: 10_000_000_000_000_002,
    };
    let want = "v1:subtopics:821ab02eae65603d671186e1519e484d";
    ensure_eq!(must(c.key("subtopics", &params), "key of a struct")?, want);
    ensure_eq!(
        must(
            c.key(
                "subtopics",
                &json!({ "temperature": 1.0, "seed": 10_000_000_000_000_002u64, "topic": "Rust" })
            ),
            "key of a json! value"
        )?,
        want
    );
    // 1 (an int) and 1.0 (a float) are different Python data, hence different keys.
    ensure!(
        must(
            c.key(
                "subtopics",
                &json!({ "temperature": 1, "seed": 10_000_000_000_000_002u64, "topic": "Rust" })
            ),
            "int key"
        )? != want,
        "an int temperature must key differently from 1.0"
    );
    Ok(())
}

async fn memory_stats_health_shutdown() -> Check {
    let c = memory_cache()?;
    must(c.set("k", &1, None).await, "set")?;
    let _ = must(c.get::<u32>("k").await, "hit")?;
    let _ = must(c.get::<u32>("nope").await, "miss")?;
    let s = c.stats().await;
    ensure_eq!(
        (s.backend, s.counters.hits, s.counters.misses, s.keys),
        ("memory", 1, 1, 1)
    );
    let j = serde_json::to_value(&s).map_err(|e| e.to_string())?;
    ensure_eq!(j["hitRatePercent"], json!(50.0));
    ensure_eq!(j["cleanupTimerActive"], json!(false));
    ensure!(j.get("upstash").is_none(), "no upstash field: {j}");
    let h = serde_json::to_value(c.health().await).map_err(|e| e.to_string())?;
    ensure_eq!(
        (h["status"].clone(), h["backend"].clone()),
        (json!("healthy"), json!("memory"))
    );
    ensure!(h.get("error").is_none(), "no error field: {h}");
    must(c.clear(), "clear")?;
    ensure_eq!(must(c.has("k").await, "has after clear")?, false);
    c.shutdown();
    ensure_eq!(code(&c.get::<u32>("k").await), "SHUT_DOWN");
    ensure_eq!(c.health().await.report.status.as_str(), "unhealthy");
    Ok(())
}

async fn from_env_errors() -> Check {
    let env = |pairs: &[(&str, &str)]| -> Env {
        let o = worker::js_sys::Object::new();
        for (k, v) in pairs {
            let _ = worker::js_sys::Reflect::set(&o, &(*k).into(), &(*v).into());
        }
        worker::wasm_bindgen::JsCast::unchecked_into(o)
    };
    let none = Cache::from_env(&env(&[]), &Options::default());
    ensure_eq!(code(&none), "INVALID_OPTIONS");
    let msg = none.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        msg.contains("UPSTASH_REDIS_REST_URL") && msg.contains("UPSTASH_REDIS_REST_TOKEN"),
        "message {msg:?}"
    );
    let url_only = Cache::from_env(
        &env(&[("UPSTASH_REDIS_REST_URL", "https://x.upstash.io")]),
        &Options::default(),
    );
    let msg = url_only.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        msg.contains("UPSTASH_REDIS_REST_TOKEN") && !msg.contains("UPSTASH_REDIS_REST_URL"),
        "message {msg:?}"
    );
    let secret = "s3cr3t-token-value";
    let bad = Cache::from_env(
        &env(&[
            ("UPSTASH_REDIS_REST_URL", "ftp://x"),
            ("UPSTASH_REDIS_REST_TOKEN", secret),
        ]),
        &Options::default(),
    );
    ensure_eq!(code(&bad), "INVALID_OPTIONS");
    ensure!(
        !bad.err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains(secret),
        "token leaked"
    );
    let ok = Cache::from_env(
        &env(&[
            ("UPSTASH_REDIS_REST_URL", "https://x.upstash.io"),
            ("UPSTASH_REDIS_REST_TOKEN", secret),
        ]),
        &Options::default(),
    );
    ensure!(ok.is_ok(), "from_env with both: {}", code(&ok));
    Ok(())
}

async fn upstash_stats_health(up: &Upstash) -> Check {
    let c = up.cache("st", 5_000, 1)?;
    must(c.set("st:k", &1, None).await, "set")?;
    let _ = must(c.get::<u32>("st:k").await, "hit")?;
    let s = c.stats().await;
    ensure_eq!(s.backend, "upstash");
    ensure_eq!(s.fallback_active, false);
    let u = s.upstash.ok_or("no upstash figures")?;
    ensure!(
        u.used_memory_bytes > 0 && u.keyspace_hits >= 1 && u.round_trips >= 3,
        "{u:?}"
    );
    ensure!(s.avg_latency_ms >= 0.0 && s.counters.hits == 1, "{s:?}");
    let j = serde_json::to_value(&s).map_err(|e| e.to_string())?;
    ensure!(j["upstash"]["keyspaceHits"].as_u64().is_some(), "{j}");
    let h = c.health().await;
    ensure_eq!(h.report.status.as_str(), "healthy");
    ensure_eq!(h.backend(), "upstash");
    Ok(())
}

async fn upstash_retries(up: &Upstash) -> Check {
    let c = up.cache("rt", 2_000, 2)?;
    must(c.set("rt:k", &7, None).await, "set")?;
    let before = c.stats().await.upstash.map_or(0, |u| u.round_trips);
    up.with_fault(json!({ "mode": "reset", "count": 2 }), async {
        ensure_eq!(
            must(c.get::<u32>("rt:k").await, "get through two resets")?,
            Some(7)
        );
        Ok(())
    })
    .await?;
    let after = c.stats().await.upstash.map_or(0, |u| u.round_trips);
    // stats() itself sends one request (INFO + DBSIZE in a pipeline) before reading the count.
    ensure_eq!(after - before, 4);
    Ok(())
}

async fn upstash_timeout(up: &Upstash) -> Check {
    let c = up.cache("to", 300, 3)?;
    up.with_fault(json!({ "mode": "delay", "ms": 3000, "count": 1 }), async {
        let t0 = worker::js_sys::Date::now();
        let r = c.get::<u32>("to:k").await;
        let elapsed = worker::js_sys::Date::now() - t0;
        // Memory answers in its place (fallback), so the get succeeds; the timeout is counted.
        ensure_eq!(code(&r), "Ok(None)");
        ensure!(
            (250.0..2_000.0).contains(&elapsed),
            "answered after {elapsed} ms"
        );
        let s = c.stats().await;
        ensure!(s.counters.errors == 1 && s.fallback_active, "{s:?}");
        Ok(())
    })
    .await?;
    let mut strict = Options {
        version: "to".to_owned(),
        cleanup_interval: 0.0,
        fallback: false,
        ..Options::default()
    };
    let mut u = UpstashOptions::new(up.url.clone(), up.token.clone());
    u.timeout_ms = 300;
    strict.upstash = Some(u);
    let c = must(Cache::new(&strict), "Cache::new without fallback")?;
    up.with_fault(json!({ "mode": "delay", "ms": 3000, "count": 1 }), async {
        let r = c.get::<u32>("to:k").await;
        ensure_eq!(code(&r), "TIMEOUT");
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        ensure!(
            msg.contains("300 ms") && !msg.contains(&up.token),
            "message {msg:?}"
        );
        Ok(())
    })
    .await
}

async fn upstash_fallback(up: &Upstash) -> Check {
    let c = up.cache("fb", 1_000, 0)?;
    up.with_fault(json!({ "mode": "reset" }), async {
        must(
            c.set("fb:k", &topic("offline"), None).await,
            "set while down",
        )?;
        ensure_eq!(
            must(c.get::<Topic>("fb:k").await, "get while down")?,
            Some(topic("offline"))
        );
        let v: Topic = must(
            c.get_or_set("subtopics", &json!({ "topic": "down" }), || async {
                Ok::<_, String>(topic("down"))
            })
            .await,
            "get_or_set while down",
        )?;
        ensure_eq!(v, topic("down"));
        let s = c.stats().await;
        ensure!(
            s.fallback_active && s.counters.errors >= 3 && s.upstash.is_none(),
            "{s:?}"
        );
        ensure_eq!(
            code(&c.invalidate_namespace("subtopics").await),
            "UPSTASH_TRANSPORT"
        );
        let h = c.health().await;
        ensure_eq!(h.report.status.as_str(), "degraded");
        ensure!(h.report.error.is_some(), "degraded health says why");
        Ok(())
    })
    .await?;
    ensure_eq!(c.health().await.report.status.as_str(), "healthy");
    ensure_eq!(c.stats().await.fallback_active, false);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// get_or_set_entry (GET /generation)
// ---------------------------------------------------------------------------------------------

type Calls = Rc<Cell<u32>>;

/// A generator that counts its calls, takes `ms`, and comes to `value`.
fn counted<T: 'static>(
    calls: &Calls,
    ms: u64,
    value: T,
) -> impl FnOnce(GenerationContext<T>) -> Boxed<'static, std::result::Result<T, String>> {
    let calls = calls.clone();
    move |_ctx| {
        boxed(async move {
            calls.set(calls.get() + 1);
            if ms > 0 {
                sleep(ms).await;
            }
            Ok(value)
        })
    }
}

/// Polls each future once: the first starts a generation, the others join it.
async fn start_all<T>(futures: &mut [Boxed<'_, T>]) {
    poll_fn(|cx| {
        for f in futures.iter_mut() {
            let _ = f.as_mut().poll(cx);
        }
        Poll::Ready(())
    })
    .await;
}

/// Waits (10 ms at a time, up to `ms`) until `done()`.
async fn until(ms: u64, done: impl Fn() -> bool) -> bool {
    for _ in 0..ms / 10 {
        if done() {
            return true;
        }
        sleep(10).await;
    }
    done()
}

fn statuses<T>(entries: &[std::result::Result<CacheEntry<T>, CacheError>]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            Ok(e) => e.status.as_str().to_owned(),
            Err(e) => e.code().to_owned(),
        })
        .collect()
}

/// The `code` of an aborted signal's reason.
fn reason_code(signal: &AbortSignal) -> Option<String> {
    let reason = signal.reason()?;
    worker::js_sys::Reflect::get(&reason, &"code".into())
        .ok()?
        .as_string()
}

async fn entry_statuses(c: &Cache) -> Check {
    let calls = Calls::default();
    let o = GetOrSetOptions::new();
    let data = json!({ "topic": "statuses" });
    let all = join_all(
        (0..3)
            .map(|_| {
                boxed(c.get_or_set_entry("entry", &data, &o, counted(&calls, 20, topic("made"))))
            })
            .collect(),
    )
    .await;
    ensure_eq!(calls.get(), 1);
    ensure_eq!(statuses(&all), ["miss", "joined", "joined"]);
    let key = must(c.key("entry", &data), "key")?;
    for e in all {
        let e = must(e, "get_or_set_entry")?;
        ensure_eq!((e.value, e.key, e.age), (topic("made"), key.clone(), 0.0));
    }
    sleep(60).await;
    let hit = must(
        c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, topic("never")))
            .await,
        "hit",
    )?;
    ensure_eq!(
        (hit.status, hit.value, calls.get()),
        (CacheStatus::Hit, topic("made"), 1)
    );
    ensure!((0.04..5.0).contains(&hit.age), "age {}", hit.age);
    Ok(())
}

async fn dropped_callers(c: &Cache) -> Check {
    let calls = Calls::default();
    let o = GetOrSetOptions::new();
    let data = json!({ "topic": "dropped" });
    let mut all: Vec<Boxed<'_, _>> = (0..3)
        .map(|_| boxed(c.get_or_set_entry("entry", &data, &o, counted(&calls, 50, 7u32))))
        .collect();
    start_all(&mut all).await;
    drop(all.remove(0));
    let rest = join_all(all).await;
    ensure_eq!(statuses(&rest), ["joined", "joined"]);
    ensure_eq!(calls.get(), 1);

    // Every caller dropped: the generation is abandoned.
    let signal: Rc<RefCell<Option<AbortSignal>>> = Rc::default();
    let seen = signal.clone();
    let watched = move |ctx: GenerationContext<u32>| async move {
        *seen.borrow_mut() = Some(ctx.signal());
        sleep(200).await;
        Ok::<_, String>(8)
    };
    let other = json!({ "topic": "abandoned" });
    let mut only = vec![boxed(c.get_or_set_entry("entry", &other, &o, watched))];
    start_all(&mut only).await;
    ensure!(
        until(2_000, || signal.borrow().is_some()).await,
        "the generator never started"
    );
    let aborted = || signal.borrow().as_ref().is_some_and(AbortSignal::aborted);
    ensure!(!aborted(), "aborted while a caller waits");
    drop(only);
    ensure!(
        aborted(),
        "every caller left: the generator's signal aborts"
    );
    sleep(250).await;
    ensure_eq!(
        must(c.lookup::<_, u32>("entry", &other).await, "lookup")?,
        None
    );
    let next = must(
        c.get_or_set_entry("entry", &other, &o, counted(&calls, 0, 9u32))
            .await,
        "the next call",
    )?;
    ensure_eq!((next.status, next.value), (CacheStatus::Miss, 9));
    Ok(())
}

async fn generator_timeout(c: &Cache) -> Check {
    let o = GetOrSetOptions::new().timeout("50ms");
    let signal: Rc<RefCell<Option<AbortSignal>>> = Rc::default();
    let seen = signal.clone();
    let late = move |ctx: GenerationContext<String>| async move {
        *seen.borrow_mut() = Some(ctx.signal());
        sleep(300).await;
        Ok::<_, String>("too late".to_owned())
    };
    let data = json!({ "topic": "timeout" });
    let calls = Calls::default();
    let all = join_all(vec![
        boxed(c.get_or_set_entry("entry", &data, &o, late)),
        boxed(c.get_or_set_entry(
            "entry",
            &data,
            &GetOrSetOptions::new(),
            counted(&calls, 0, String::new()),
        )),
    ])
    .await;
    ensure_eq!(statuses(&all), ["TIMEOUT", "TIMEOUT"]);
    ensure_eq!(calls.get(), 0);
    let reason = signal.borrow().as_ref().and_then(reason_code);
    ensure_eq!(reason.as_deref(), Some("TIMEOUT"));
    sleep(350).await;
    ensure_eq!(
        must(c.lookup::<_, String>("entry", &data).await, "lookup")?,
        None
    );
    let next = must(
        c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, "next".to_owned()))
            .await,
        "the next call",
    )?;
    ensure_eq!(
        (next.status, next.value.as_str()),
        (CacheStatus::Miss, "next")
    );
    Ok(())
}

async fn skip_ttl_and_options(c: &Cache) -> Check {
    let o = GetOrSetOptions::new();
    let data = json!({ "topic": "skip" });
    let skipped = must(
        c.get_or_set_entry(
            "entry",
            &data,
            &o,
            |ctx: GenerationContext<String>| async move {
                ctx.skip();
                Ok::<_, String>("truncated answer".to_owned())
            },
        )
        .await,
        "skip",
    )?;
    ensure_eq!(
        (skipped.status, skipped.value.as_str()),
        (CacheStatus::Miss, "truncated answer")
    );
    ensure_eq!(
        must(c.lookup::<_, String>("entry", &data).await, "lookup")?,
        None
    );
    let bad_ttl = c
        .get_or_set_entry(
            "entry",
            &data,
            &o,
            |ctx: GenerationContext<u32>| async move {
                ctx.ttl(0)?;
                Ok::<_, CacheError>(1)
            },
        )
        .await;
    ensure_eq!(code(&bad_ttl), "GENERATOR_FAILED");
    let msg = bad_ttl.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(msg.contains("Infinity"), "message {msg:?}");
    let calls = Calls::default();
    for bad in [
        GetOrSetOptions::new().ttl("5 m"),
        GetOrSetOptions::new().grace("1w"),
        GetOrSetOptions::new().timeout(-1),
        GetOrSetOptions::new().stale_if_error("x"),
    ] {
        let r = c
            .get_or_set_entry("entry", &data, &bad, counted(&calls, 0, 1u32))
            .await;
        ensure_eq!(code(&r), "INVALID_OPTIONS");
    }
    ensure_eq!(calls.get(), 0);
    Ok(())
}

/// Memory, 300 ms TTL, an hour of grace: stale values for a while.
fn graced() -> GetOrSetOptions {
    GetOrSetOptions::new().ttl("300ms").grace("1h")
}

async fn stale_while_revalidate() -> Check {
    let c = memory_cache()?;
    let handed: Rc<RefCell<Vec<Boxed<'static, ()>>>> = Rc::default();
    let hand = handed.clone();
    let o = graced()
        .stale_while_revalidate(true)
        .wait_until_with(move |task| hand.borrow_mut().push(task));
    let data = json!({ "topic": "swr" });
    let calls = Calls::default();
    let first = must(
        c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, "v1".to_owned()))
            .await,
        "first",
    )?;
    ensure_eq!(first.status, CacheStatus::Miss);
    sleep(400).await;
    let key = must(c.key("entry", &data), "key")?;
    ensure_eq!(
        must(c.get::<String>(&key).await, "a plain get")?,
        None,
        "a plain read never returns a stale value"
    );
    let refresh = {
        let calls = calls.clone();
        move |ctx: GenerationContext<String>| async move {
            calls.set(calls.get() + 1);
            sleep(50).await;
            ctx.ttl(60).map_err(|e| e.to_string())?;
            Ok::<_, String>(format!("v2 (was {})", ctx.stale().unwrap_or_default()))
        }
    };
    // The first call's generator refreshes; the other nine would, were they to run.
    let mut reads = vec![boxed(c.get_or_set_entry("entry", &data, &o, refresh))];
    reads.extend((0..9).map(|_| {
        boxed(c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, "v2'".to_owned())))
    }));
    let all = join_all(reads).await;
    ensure_eq!(statuses(&all), vec!["stale"; 10]);
    for e in all {
        let e = must(e, "stale")?;
        ensure!(e.value == "v1" && e.age >= 0.3, "{e:?}");
    }
    // The first generation, then the refresh (a task of its own), went to wait_until.
    let task = handed.borrow_mut().pop();
    ensure_eq!(handed.borrow().len(), 1);
    task.ok_or("nothing handed to wait_until")?.await;
    ensure_eq!(calls.get(), 2, "exactly one refresh for ten stale reads");
    let after = must(
        c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, "v3".to_owned()))
            .await,
        "after",
    )?;
    ensure_eq!(
        (after.status, after.value.as_str(), calls.get()),
        (CacheStatus::Hit, "v2 (was v1)", 2)
    );
    Ok(())
}

async fn stale_if_error() -> Check {
    let c = memory_cache()?;
    let data = json!({ "topic": "sie" });
    let calls = Calls::default();
    must(
        c.get_or_set_entry(
            "entry",
            &data,
            &graced(),
            counted(&calls, 0, "good".to_owned()),
        )
        .await,
        "first",
    )?;
    sleep(400).await;
    let failing = |_: GenerationContext<String>| async { Err::<String, _>("model down") };
    let served = must(
        c.get_or_set_entry("entry", &data, &graced().stale_if_error(true), failing)
            .await,
        "stale-if-error",
    )?;
    ensure!(
        served.status == CacheStatus::StaleError && served.value == "good" && served.age >= 0.3,
        "{served:?}"
    );
    for (o, why) in [
        (graced(), "without stale_if_error"),
        (graced().stale_if_error("10ms"), "outside a 10 ms window"),
    ] {
        let r = c.get_or_set_entry("entry", &data, &o, failing).await;
        ensure_eq!(code(&r), "GENERATOR_FAILED", "{why}");
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        ensure!(msg.contains("model down"), "{why}: {msg:?}");
    }
    Ok(())
}

/// Through Upstash: the refresh of a stale value, handed to the request's `ctx.wait_until`,
/// stores the TTL its generator set (`PTTL`); `f64::INFINITY` is no expiry; the age of a hit
/// follows the key's remaining TTL.
async fn upstash_refresh_and_ttls(up: &Upstash, ctx: &Context) -> Check {
    let c = up.cache("ttl", 5_000, 1)?;
    let o = graced().stale_while_revalidate(true).wait_until(ctx);
    let data = json!({ "topic": "refresh" });
    let calls = Calls::default();
    let first = must(
        c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, "v1".to_owned()))
            .await,
        "first",
    )?;
    ensure_eq!(first.status, CacheStatus::Miss);
    let key = first.key;
    sleep(400).await;
    ensure_eq!(up.raw(&["EXISTS", &key]).await?, json!(0));
    let refresh = {
        let calls = calls.clone();
        move |ctx: GenerationContext<String>| async move {
            calls.set(calls.get() + 1);
            ctx.ttl("2m").map_err(|e| e.to_string())?;
            Ok::<_, String>(format!("v2 (was {})", ctx.stale().unwrap_or_default()))
        }
    };
    let all = join_all(vec![
        boxed(c.get_or_set_entry("entry", &data, &o, refresh)),
        boxed(c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, "x".to_owned()))),
    ])
    .await;
    ensure_eq!(statuses(&all), ["stale", "stale"]);
    ensure!(
        until(2_000, || calls.get() == 2).await,
        "one refresh: {} calls",
        calls.get()
    );
    let mut pttl = json!(-2);
    for _ in 0..100 {
        pttl = up.raw(&["PTTL", &key]).await?;
        if pttl.as_i64().is_some_and(|p| p > 0) {
            break;
        }
        sleep(10).await;
    }
    let ms = pttl.as_i64().unwrap_or(-2);
    ensure!(
        (110_000..=120_000).contains(&ms),
        "PTTL {pttl} after ctx.ttl(\"2m\")"
    );
    // The refresh's value is in Redis; its generation ends once that write's answer is back.
    // Until then a call joins it and is served the stale value at once.
    let mut hit = None;
    for _ in 0..100 {
        let e = must(
            c.get_or_set_entry("entry", &data, &o, counted(&calls, 0, "x".to_owned()))
                .await,
            "hit",
        )?;
        if e.status != CacheStatus::Stale {
            hit = Some(e);
            break;
        }
        ensure_eq!(e.value.as_str(), "v1");
        sleep(20).await;
    }
    let hit = hit.ok_or_else(|| "still stale after 2 s".to_owned())?;
    ensure_eq!(
        (hit.status, hit.value.as_str()),
        (CacheStatus::Hit, "v2 (was v1)")
    );
    ensure_eq!(calls.get(), 2);

    let forever = json!({ "topic": "forever" });
    let e = must(
        c.get_or_set_entry(
            "entry",
            &forever,
            &o,
            |ctx: GenerationContext<u32>| async move {
                ctx.ttl(f64::INFINITY).map_err(|e| e.to_string())?;
                Ok::<_, String>(1)
            },
        )
        .await,
        "ctx.ttl(INFINITY)",
    )?;
    ensure_eq!(up.raw(&["PTTL", &e.key]).await?, json!(-1));
    must(c.set("ttl:forever", &1, Some(f64::INFINITY)).await, "set")?;
    ensure_eq!(up.raw(&["PTTL", "ttl:forever"]).await?, json!(-1));

    let old = json!({ "topic": "old" });
    let old_key = must(c.key("entry", &old), "key")?;
    up.raw(&["SET", &old_key, "\"old\"", "PX", "50000"]).await?;
    let e = must(
        c.get_or_set_entry(
            "entry",
            &old,
            &GetOrSetOptions::new().ttl(60),
            counted(&calls, 0, String::new()),
        )
        .await,
        "an older entry",
    )?;
    ensure!(
        e.status == CacheStatus::Hit && (9.9..=10.5).contains(&e.age),
        "{e:?}: 60 s TTL with 50 s left"
    );
    Ok(())
}

/// During an outage, a value cached before it is served: fresh as a hit, past its TTL (within
/// stale_if_error) as stale-error, without generating.
async fn upstash_outage(up: &Upstash) -> Check {
    let c = up.cache_with(
        Options {
            version: "outage".to_owned(),
            stale_if_error: cachette::options::Stale::Secs(3600.0),
            ..Options::default()
        },
        300,
        0,
    )?;
    let calls = Calls::default();
    let data = json!({ "topic": "outage" });
    let o = GetOrSetOptions::new().ttl(1);
    let first = must(
        c.get_or_set_entry("llm", &data, &o, counted(&calls, 0, topic("paid")))
            .await,
        "first",
    )?;
    ensure_eq!(first.status, CacheStatus::Miss);
    up.with_fault(json!({ "mode": "reset" }), async {
        let hit = must(
            c.get_or_set_entry("llm", &data, &o, counted(&calls, 0, topic("x")))
                .await,
            "fresh",
        )?;
        ensure_eq!((hit.status, calls.get()), (CacheStatus::Hit, 1));
        sleep(1_100).await;
        let stale = must(
            c.get_or_set_entry("llm", &data, &o, counted(&calls, 0, topic("x")))
                .await,
            "stale",
        )?;
        ensure!(
            stale.status == CacheStatus::StaleError
                && stale.value == topic("paid")
                && stale.age >= 1.0,
            "{stale:?}"
        );
        ensure_eq!(calls.get(), 1, "no paid call");
        ensure_eq!(c.health().await.report.status.as_str(), "degraded");
        Ok(())
    })
    .await?;
    let back = must(
        c.get_or_set_entry("llm", &data, &o, counted(&calls, 0, topic("again")))
            .await,
        "back",
    )?;
    ensure_eq!((back.status, calls.get()), (CacheStatus::Miss, 2));
    Ok(())
}

async fn generation_checks(env: &Env, ctx: &Context) -> Vec<Outcome> {
    let mut out = Vec::new();
    let tiers = [
        ("memory", memory_cache()),
        (
            "upstash",
            Upstash::from(env).and_then(|up| up.cache("gen", 5_000, 1)),
        ),
    ];
    for (tier, c) in tiers {
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                out.push(Outcome {
                    name: format!("{tier}: make the cache"),
                    ok: false,
                    error: Some(e),
                });
                continue;
            }
        };
        run(
            &mut out,
            &format!("{tier}: get_or_set_entry statuses miss, joined, hit (with age)"),
            entry_statuses(&c),
        )
        .await;
        run(
            &mut out,
            &format!("{tier}: a dropped caller leaves the others served; when all are dropped the generation is abandoned"),
            dropped_callers(&c),
        )
        .await;
        run(
            &mut out,
            &format!("{tier}: timeout: TIMEOUT for every caller, signal aborted, the late result not cached"),
            generator_timeout(&c),
        )
        .await;
    }
    run(
        &mut out,
        "memory: ctx.skip() caches nothing, a bad ctx.ttl() and bad options are refused",
        async { skip_ttl_and_options(&memory_cache()?).await },
    )
    .await;
    run(
        &mut out,
        "memory: grace + stale_while_revalidate: the stale value at once, exactly one refresh, handed to wait_until",
        stale_while_revalidate(),
    )
    .await;
    run(
        &mut out,
        "memory: stale_if_error serves the stale value when the generator fails, within the window",
        stale_if_error(),
    )
    .await;
    match Upstash::from(env) {
        Ok(up) => {
            run(
                &mut out,
                "upstash: a background refresh (ctx.wait_until) stores ctx.ttl() as PTTL; INFINITY is PTTL -1; a hit's age follows PTTL",
                upstash_refresh_and_ttls(&up, ctx),
            )
            .await;
            run(
                &mut out,
                "upstash: during an outage a value cached before it is a hit, then stale-error, never generated",
                upstash_outage(&up),
            )
            .await;
        }
        Err(e) => out.push(Outcome {
            name: "upstash: bindings".to_owned(),
            ok: false,
            error: Some(e),
        }),
    }
    out
}

// ---------------------------------------------------------------------------------------------
// get_or_set_stream (GET /stream)
// ---------------------------------------------------------------------------------------------

/// A source of `items`, `ms` apart; `dropped` is set when it is dropped.
struct Paced {
    items: std::collections::VecDeque<std::result::Result<Chunk, String>>,
    ms: u64,
    delay: Option<Delay>,
    dropped: Rc<Cell<bool>>,
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.dropped.set(true);
    }
}

impl Stream for Paced {
    type Item = std::result::Result<Chunk, String>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        if self.ms > 0 {
            let ms = self.ms;
            let delay = self
                .delay
                .get_or_insert_with(|| Delay::from(Duration::from_millis(ms)));
            if Pin::new(delay).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.delay = None;
        }
        Poll::Ready(self.items.pop_front())
    }
}

/// What a stream generator saw: its calls, its signal, whether its source was dropped.
#[derive(Default, Clone)]
struct Seen {
    calls: Calls,
    signal: Rc<RefCell<Option<AbortSignal>>>,
    dropped: Rc<Cell<bool>>,
}

impl Seen {
    fn aborted(&self) -> bool {
        self.signal
            .borrow()
            .as_ref()
            .is_some_and(AbortSignal::aborted)
    }
}

type StreamGen =
    Box<dyn FnOnce(GenerationContext<Chunk>) -> Boxed<'static, std::result::Result<Paced, String>>>;

/// A generator of `items`, `ms` apart; `skip` calls `ctx.skip()`.
fn source(
    seen: &Seen,
    ms: u64,
    items: Vec<std::result::Result<Chunk, String>>,
    skip: bool,
) -> StreamGen {
    let seen = seen.clone();
    Box::new(move |ctx: GenerationContext<Chunk>| {
        boxed(async move {
            seen.calls.set(seen.calls.get() + 1);
            *seen.signal.borrow_mut() = Some(ctx.signal());
            if skip {
                ctx.skip();
            }
            Ok(Paced {
                items: items.into_iter().collect(),
                ms,
                delay: None,
                dropped: seen.dropped.clone(),
            })
        })
    })
}

/// Text, bytes and JSON chunks.
fn mixed() -> Vec<Chunk> {
    vec![
        Chunk::from("Hello"),
        Chunk::Bytes(vec![0, 1, 2, 255]),
        Chunk::Json(json!({ "n": 1 })),
        Chunk::from(" world"),
    ]
}

fn oks(chunks: &[Chunk]) -> Vec<std::result::Result<Chunk, String>> {
    chunks.iter().cloned().map(Ok).collect()
}

async fn next(stream: &mut ChunkStream) -> Option<std::result::Result<Chunk, CacheError>> {
    poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// The chunks of `stream` to its end, and the error that ended it, if any.
async fn read_all(stream: &mut ChunkStream) -> (Vec<Chunk>, Option<String>) {
    let mut chunks = Vec::new();
    while let Some(item) = next(stream).await {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => return (chunks, Some(e.code().to_owned())),
        }
    }
    (chunks, None)
}

async fn stream_statuses(c: &Cache, up: Option<&Upstash>) -> Check {
    let seen = Seen::default();
    let o = StreamOptions::new();
    let data = json!({ "topic": "statuses" });
    let mut a = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 20, oks(&mixed()), false))
            .await,
        "miss",
    )?;
    ensure_eq!(a.status, CacheStatus::Miss);
    let first = next(&mut a.stream)
        .await
        .map(|r| r.map_err(|e| e.to_string()));
    ensure_eq!(first, Some(Ok(Chunk::from("Hello"))));
    let mut b = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 0, vec![], false))
            .await,
        "joined",
    )?;
    ensure_eq!(b.status, CacheStatus::Joined);
    ensure_eq!(b.key, a.key);
    let (rest_a, end_a) = read_all(&mut a.stream).await;
    let (all_b, end_b) = read_all(&mut b.stream).await;
    ensure_eq!((end_a, end_b), (None, None));
    ensure_eq!(rest_a, mixed()[1..]);
    ensure_eq!(
        all_b,
        mixed(),
        "the joined reader: the chunks so far, then the live ones"
    );
    ensure_eq!(seen.calls.get(), 1);
    // Right after the end, while the recording is being stored, a call joins the finished
    // generation; once it is stored, a hit. Never a second generation.
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let mut s = must(
            c.get_or_set_stream("stream", &data, &o, source(&seen, 0, vec![], false))
                .await,
            "after the end",
        )?;
        ensure_eq!(
            read_all(&mut s.stream).await,
            (mixed(), None),
            "{:?}",
            s.status
        );
        statuses.push(s.status);
        if s.status != CacheStatus::Joined {
            break;
        }
        sleep(10).await;
    }
    ensure_eq!(statuses.last(), Some(&CacheStatus::Hit), "{statuses:?}");
    ensure_eq!(seen.calls.get(), 1);
    let stored = |key: String| async move {
        for _ in 0..100 {
            if let Some(v) = must(c.get::<Value>(&key).await, "get")? {
                return Ok::<_, String>(Some(v));
            }
            sleep(10).await;
        }
        Ok(None)
    };
    let recording = stored(a.key.clone()).await?;
    let want = json!({ "cachette/stream": 1, "chunks": ["Hello", "AAEC/w==", { "n": 1 }, " world"], "bytes": [1] });
    ensure_eq!(
        recording,
        Some(want.clone()),
        "the recording, in the JS format"
    );
    if let Some(up) = up {
        let raw = up.raw(&["GET", &a.key]).await?;
        let text = raw.as_str().unwrap_or_default().to_owned();
        ensure_eq!(
            text,
            r#"{"cachette/stream":1,"chunks":["Hello","AAEC/w==",{"n":1}," world"],"bytes":[1]}"#,
            "the JSON text in Upstash"
        );
    }
    Ok(())
}

/// Polls `key` until it holds a value (up to 1 s): whether a recording was stored.
async fn stored(c: &Cache, key: &str) -> std::result::Result<bool, String> {
    for _ in 0..20 {
        if must(c.has(key).await, "has")? {
            return Ok(true);
        }
        sleep(50).await;
    }
    Ok(false)
}

async fn stream_dropped_readers(c: &Cache) -> Check {
    let o = StreamOptions::new();
    // The first reader leaves: the joined one still gets every chunk, and it is recorded.
    let seen = Seen::default();
    let data = json!({ "topic": "first leaves" });
    let mut a = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 20, oks(&mixed()), false))
            .await,
        "miss",
    )?;
    ensure!(next(&mut a.stream).await.is_some(), "a first chunk");
    let mut b = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 0, vec![], false))
            .await,
        "joined",
    )?;
    ensure_eq!(b.status, CacheStatus::Joined);
    drop(a);
    ensure!(!seen.aborted(), "a reader is left: the generation goes on");
    ensure_eq!(read_all(&mut b.stream).await, (mixed(), None));
    ensure!(stored(c, &b.key).await?, "the recording is stored");

    // Every reader leaves before the end: the generation is abandoned, nothing is stored.
    let seen = Seen::default();
    let data = json!({ "topic": "all leave" });
    let mut a = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 30, oks(&mixed()), false))
            .await,
        "miss",
    )?;
    ensure!(next(&mut a.stream).await.is_some(), "a first chunk");
    ensure!(!seen.aborted(), "aborted while a reader reads");
    let key = a.key.clone();
    drop(a);
    ensure!(
        seen.aborted(),
        "every reader left: the generator's signal aborts"
    );
    ensure_eq!(
        reason_code(seen.signal.borrow().as_ref().expect("a signal")),
        Some("TIMEOUT".to_owned())
    );
    ensure!(
        until(1_000, || seen.dropped.get()).await,
        "the abandoned source is dropped"
    );
    sleep(150).await;
    ensure!(!must(c.has(&key).await, "has")?, "nothing stored");
    let again = Seen::default();
    let mut next_call = must(
        c.get_or_set_stream("stream", &data, &o, source(&again, 0, oks(&mixed()), false))
            .await,
        "the next call",
    )?;
    ensure_eq!(next_call.status, CacheStatus::Miss);
    ensure_eq!(read_all(&mut next_call.stream).await, (mixed(), None));
    Ok(())
}

async fn stream_failures(c: &Cache) -> Check {
    let o = StreamOptions::new();
    let seen = Seen::default();
    let data = json!({ "topic": "failing source" });
    let items = vec![
        Ok(Chunk::from("a")),
        Ok(Chunk::from("b")),
        Err("boom".to_owned()),
    ];
    let mut a = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 20, items, false))
            .await,
        "miss",
    )?;
    ensure!(next(&mut a.stream).await.is_some(), "a first chunk");
    let mut b = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 0, vec![], false))
            .await,
        "joined",
    )?;
    let want = (vec![Chunk::from("b")], Some("GENERATOR_FAILED".to_owned()));
    ensure_eq!(read_all(&mut a.stream).await, want);
    ensure_eq!(
        read_all(&mut b.stream).await,
        (vec![Chunk::from("a"), Chunk::from("b")], want.1.clone())
    );
    ensure!(seen.aborted(), "the failed generation's signal aborts");
    ensure!(!stored(c, &a.key).await?, "a failed stream is not stored");

    // A generator that fails before it has a source: every caller gets GENERATOR_FAILED.
    let failing =
        |_ctx: GenerationContext<Chunk>| async move { Err::<Paced, _>("no source".to_owned()) };
    let r = c
        .get_or_set_stream("stream", &json!({ "topic": "no source" }), &o, failing)
        .await;
    ensure_eq!(
        r.map(|e| e.status).map_err(|e| e.code().to_owned()),
        Err("GENERATOR_FAILED".to_owned())
    );
    Ok(())
}

async fn stream_skip_max_options(c: &Cache) -> Check {
    // ctx.skip(): forwarded, not stored.
    let seen = Seen::default();
    let o = StreamOptions::new();
    let mut s = must(
        c.get_or_set_stream(
            "stream",
            &json!({ "topic": "skipped" }),
            &o,
            source(&seen, 0, oks(&mixed()), true),
        )
        .await,
        "skipped",
    )?;
    ensure_eq!(read_all(&mut s.stream).await, (mixed(), None));
    ensure!(!stored(c, &s.key).await?, "a skipped stream is not stored");
    // Over max_stream_bytes: forwarded, not stored; at the limit: stored.
    let errors = c.stats().await.counters.errors;
    let big = StreamOptions::new().max_stream_bytes(10);
    let mut s = must(
        c.get_or_set_stream(
            "stream",
            &json!({ "topic": "big" }),
            &big,
            source(&seen, 0, oks(&mixed()), false),
        )
        .await,
        "big",
    )?;
    ensure_eq!(read_all(&mut s.stream).await, (mixed(), None));
    ensure!(
        !stored(c, &s.key).await?,
        "a stream over max_stream_bytes is not stored"
    );
    ensure_eq!(
        c.stats().await.counters.errors - errors,
        1,
        "a stream too large to keep is counted once in stats().errors"
    );
    let fits = StreamOptions::new().max_stream_bytes(4);
    let four = vec![Ok(Chunk::from("ab")), Ok(Chunk::from("cd"))];
    let mut s = must(
        c.get_or_set_stream(
            "stream",
            &json!({ "topic": "fits" }),
            &fits,
            source(&seen, 0, four, false),
        )
        .await,
        "fits",
    )?;
    ensure_eq!(read_all(&mut s.stream).await.0.len(), 2);
    ensure!(
        stored(c, &s.key).await?,
        "a stream of max_stream_bytes is stored"
    );
    // Bad options are refused before anything runs.
    let calls = seen.calls.get();
    for (what, bad) in [
        (
            "max_stream_bytes 0",
            StreamOptions::new().max_stream_bytes(0),
        ),
        ("ttl 0", StreamOptions::new().ttl(0)),
        ("grace -1", StreamOptions::new().grace(-1)),
    ] {
        let r = c
            .get_or_set_stream(
                "stream",
                &json!({ "topic": what }),
                &bad,
                source(&seen, 0, vec![], false),
            )
            .await;
        ensure_eq!(
            r.map(|e| e.status).map_err(|e| e.code().to_owned()),
            Err("INVALID_OPTIONS".to_owned()),
            "{what}"
        );
    }
    ensure_eq!(seen.calls.get(), calls, "no generator ran");
    // wait_until is handed the task a miss starts (a joined call starts none), and that task
    // ends once the recording is stored.
    let handed = Calls::default();
    let task_done: Rc<Cell<bool>> = Rc::default();
    let (h, d) = (handed.clone(), task_done.clone());
    let o = StreamOptions::new().wait_until_with(move |task| {
        h.set(h.get() + 1);
        let d = d.clone();
        worker::wasm_bindgen_futures::spawn_local(async move {
            task.await;
            d.set(true);
        });
    });
    let data = json!({ "topic": "handed" });
    let mut a = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 10, oks(&mixed()), false))
            .await,
        "handed",
    )?;
    ensure_eq!(a.status, CacheStatus::Miss);
    ensure!(next(&mut a.stream).await.is_some(), "a first chunk");
    let mut b = must(
        c.get_or_set_stream("stream", &data, &o, source(&seen, 0, vec![], false))
            .await,
        "joined",
    )?;
    ensure_eq!((b.status, handed.get()), (CacheStatus::Joined, 1));
    ensure_eq!(read_all(&mut b.stream).await, (mixed(), None));
    drop(a);
    ensure!(
        until(1_000, || task_done.get()).await,
        "the handed task ends"
    );
    ensure!(
        must(c.has(&b.key).await, "has")?,
        "the handed task ended after the recording was stored"
    );
    Ok(())
}

async fn stream_shutdown() -> Check {
    let c = memory_cache()?;
    let seen = Seen::default();
    let mut s = must(
        c.get_or_set_stream(
            "stream",
            &json!({ "topic": "shut" }),
            &StreamOptions::new(),
            source(&seen, 30, oks(&mixed()), false),
        )
        .await,
        "miss",
    )?;
    ensure!(next(&mut s.stream).await.is_some(), "a first chunk");
    c.shutdown();
    ensure_eq!(
        read_all(&mut s.stream).await,
        (vec![], Some("SHUT_DOWN".to_owned()))
    );
    ensure!(seen.aborted(), "the generator's signal aborts");
    let r = c
        .get_or_set_stream(
            "stream",
            &json!({ "topic": "shut" }),
            &StreamOptions::new(),
            source(&seen, 0, vec![], false),
        )
        .await;
    ensure_eq!(
        r.map(|e| e.status).map_err(|e| e.code().to_owned()),
        Err("SHUT_DOWN".to_owned())
    );
    Ok(())
}

/// The PTTL of `key` once it is stored (up to 1 s), in milliseconds (-2: never stored).
async fn stored_pttl(up: &Upstash, key: &str) -> std::result::Result<i64, String> {
    for _ in 0..100 {
        let pttl = up.raw(&["PTTL", key]).await?.as_i64().unwrap_or(-2);
        if pttl != -2 {
            return Ok(pttl);
        }
        sleep(10).await;
    }
    Ok(-2)
}

async fn stream_ttls(up: &Upstash) -> Check {
    let c = up.cache("stream-ttl", 5_000, 1)?;
    let seen = Seen::default();
    // The options' TTL.
    let o = StreamOptions::new().ttl("1h");
    let mut s = must(
        c.get_or_set_stream(
            "stream",
            &json!({ "topic": "ttl" }),
            &o,
            source(&seen, 0, oks(&mixed()), false),
        )
        .await,
        "ttl",
    )?;
    ensure_eq!(read_all(&mut s.stream).await, (mixed(), None));
    let ms = stored_pttl(up, &s.key).await?;
    ensure!(
        (3_590_000..=3_600_000).contains(&ms),
        "PTTL {ms} with ttl(\"1h\")"
    );
    // ctx.ttl() over the options'.
    let by_ctx = |ctx: GenerationContext<Chunk>| async move {
        ctx.ttl("2m").map_err(|e| e.to_string())?;
        Ok::<_, String>(Paced {
            items: oks(&mixed()).into_iter().collect(),
            ms: 0,
            delay: None,
            dropped: Rc::default(),
        })
    };
    let mut s = must(
        c.get_or_set_stream("stream", &json!({ "topic": "ctx ttl" }), &o, by_ctx)
            .await,
        "ctx.ttl",
    )?;
    ensure_eq!(read_all(&mut s.stream).await, (mixed(), None));
    let ms = stored_pttl(up, &s.key).await?;
    ensure!(
        (110_000..=120_000).contains(&ms),
        "PTTL {ms} after ctx.ttl(\"2m\")"
    );
    Ok(())
}

async fn stream_checks(env: &Env) -> Vec<Outcome> {
    let mut out = Vec::new();
    let up = Upstash::from(env);
    let tiers = [
        ("memory", memory_cache()),
        (
            "upstash",
            up.as_ref()
                .map_err(Clone::clone)
                .and_then(|up| up.cache("stream", 5_000, 1)),
        ),
    ];
    for (tier, c) in tiers {
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                out.push(Outcome {
                    name: format!("{tier}: make the cache"),
                    ok: false,
                    error: Some(e),
                });
                continue;
            }
        };
        let raw = if tier == "upstash" {
            up.as_ref().ok()
        } else {
            None
        };
        run(
            &mut out,
            &format!("{tier}: get_or_set_stream miss (incremental), joined (chunks so far, then live), hit (replay); the recording in the JS format"),
            stream_statuses(&c, raw),
        )
        .await;
        run(
            &mut out,
            &format!("{tier}: get_or_set_stream: a dropped reader detaches; when every reader is dropped the generation is abandoned (signal aborted, source dropped, nothing stored)"),
            stream_dropped_readers(&c),
        )
        .await;
        run(
            &mut out,
            &format!("{tier}: get_or_set_stream: a failing source ends every reader with GENERATOR_FAILED after the chunks so far; nothing stored"),
            stream_failures(&c),
        )
        .await;
    }
    run(
        &mut out,
        "memory: get_or_set_stream: ctx.skip() and max_stream_bytes store nothing, bad options are INVALID_OPTIONS, wait_until is handed the generation until it is stored",
        async { stream_skip_max_options(&memory_cache()?).await },
    )
    .await;
    run(
        &mut out,
        "memory: get_or_set_stream: shutdown ends a stream being generated with SHUT_DOWN",
        stream_shutdown(),
    )
    .await;
    if let Ok(up) = &up {
        run(
            &mut out,
            "upstash: get_or_set_stream stores the recording with the options' TTL, or ctx.ttl()'s (PTTL)",
            stream_ttls(up),
        )
        .await;
    }
    out
}

#[derive(Serialize)]
struct Outcome {
    name: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn run(out: &mut Vec<Outcome>, name: &str, check: impl Future<Output = Check>) {
    let r = check.await;
    out.push(Outcome {
        name: name.to_owned(),
        ok: r.is_ok(),
        error: r.err(),
    });
}

async fn on_tier(out: &mut Vec<Outcome>, tier: &str, c: std::result::Result<Cache, String>) {
    let c = match c {
        Ok(c) => c,
        Err(e) => {
            out.push(Outcome {
                name: format!("{tier}: make the cache"),
                ok: false,
                error: Some(e),
            });
            return;
        }
    };
    run(
        out,
        &format!("{tier}: set/get/has/delete of typed values"),
        round_trip(&c),
    )
    .await;
    run(
        out,
        &format!("{tier}: key (as requestKey makes it), lookup, store"),
        keys_lookup_store(&c),
    )
    .await;
    run(
        out,
        &format!("{tier}: get_or_set is single-flight (10 concurrent calls, 1 generation)"),
        single_flight(&c),
    )
    .await;
    run(
        out,
        &format!("{tier}: a failing generator reaches every waiter, nothing is cached"),
        failing_generator(&c),
    )
    .await;
    run(
        out,
        &format!("{tier}: a dropped get_or_set call leaves the calls that joined it served"),
        dropped_leader(&c),
    )
    .await;
    run(out, &format!("{tier}: delete_pattern, invalidate_namespace (escaped), update_version, invalidate_version"), invalidations(&c)).await;
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    match req.path().as_str() {
        "/" => Response::from_json(&basic_checks(&env).await),
        "/generation" => Response::from_json(&generation_checks(&env, &ctx).await),
        "/stream" => Response::from_json(&stream_checks(&env).await),
        "/lock" => locked_generation(&req, &env).await,
        path => Ok(
            Response::from_json(&json!({ "error": format!("no route for {path}") }))?
                .with_status(404),
        ),
    }
}

/// `GET /lock?id=..&mode=scan|generation`: one `get_or_set_entry` of `("locked", {id})` by a
/// cache of its own (an instance, as another isolate would have) with `lock` on, generating for
/// 300 ms a value that names this call: `{ value, status, locksAcquired, lockJoins }`. Callers
/// that get the same value shared one generation.
async fn locked_generation(req: &Request, env: &Env) -> worker::Result<Response> {
    let url = req.url()?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, mode) = (param("id"), param("mode"));
    let up = Upstash::from(env).map_err(worker::Error::RustError)?;
    let c = up
        .cache_with(
            Options {
                lock: Lock::On,
                invalidation: if mode == "generation" {
                    Invalidation::Generation
                } else {
                    Invalidation::Scan
                },
                ..Options::default()
            },
            5_000,
            0,
        )
        .map_err(worker::Error::RustError)?;
    let me = format!("made by call {}", param("call"));
    let entry = c
        .get_or_set_entry(
            "locked",
            &json!({ "id": id }),
            &GetOrSetOptions::new(),
            move |_ctx| async move {
                sleep(300).await;
                Ok::<_, String>(me)
            },
        )
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let locks = c.stats().await.upstash.map(|u| u.locks).unwrap_or_default();
    Response::from_json(&json!({
        "value": entry.value,
        "status": format!("{:?}", entry.status),
        "locksAcquired": locks.acquired,
        "lockJoins": locks.joins,
    }))
}

async fn basic_checks(env: &Env) -> Vec<Outcome> {
    let mut out = Vec::new();
    on_tier(&mut out, "memory", memory_cache()).await;
    run(&mut out, "memory: a TTL expires", memory_expiry()).await;
    run(
        &mut out,
        "memory: python keys are Python's for the JSON serde_json sends",
        python_keys(),
    )
    .await;
    run(
        &mut out,
        "memory: stats, health, clear, shutdown",
        memory_stats_health_shutdown(),
    )
    .await;
    run(
        &mut out,
        "from_env: missing or bad secrets are INVALID_OPTIONS, naming them, never the token",
        from_env_errors(),
    )
    .await;
    match Upstash::from(env) {
        Ok(up) => {
            on_tier(&mut out, "upstash", up.cache("v1", 5_000, 1)).await;
            run(
                &mut out,
                "upstash: stats and health",
                upstash_stats_health(&up),
            )
            .await;
            run(
                &mut out,
                "upstash: a reset connection is retried with backoff",
                upstash_retries(&up),
            )
            .await;
            run(
                &mut out,
                "upstash: a slow Upstash times out (fallback, then TIMEOUT without it)",
                upstash_timeout(&up),
            )
            .await;
            run(
                &mut out,
                "upstash: while unreachable, memory serves and invalidations fail loudly",
                upstash_fallback(&up),
            )
            .await;
        }
        Err(e) => out.push(Outcome {
            name: "upstash: bindings".to_owned(),
            ok: false,
            error: Some(e),
        }),
    }
    out
}
