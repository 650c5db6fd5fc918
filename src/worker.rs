//! Cloudflare Workers in Rust (feature `worker`, wasm32 only): [`Cache`], the JavaScript
//! `Cache` for workers-rs, with serde values.
//!
//! ```ignore
//! use cachette::options::Options;
//! use cachette::worker::Cache;
//! use worker::*;
//!
//! thread_local! {
//!     // One cache per isolate, made on the first request (no I/O or timers at global scope).
//!     static CACHE: std::cell::OnceCell<Cache> = const { std::cell::OnceCell::new() };
//! }
//!
//! #[event(fetch)]
//! async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
//!     let cache = match CACHE.with(|c| c.get().cloned()) {
//!         Some(c) => c,
//!         None => {
//!             let c = Cache::from_env(&env, &Options::default()).map_err(|e| e.to_string())?;
//!             CACHE.with(|slot| slot.get_or_init(|| c).clone())
//!         }
//!     };
//!     let topic = "Rust";
//!     let subtopics: Vec<String> = cache
//!         .get_or_set("subtopics", &serde_json::json!({ "topic": topic }), || async {
//!             Ok::<_, Error>(vec![format!("{topic} basics")])
//!         })
//!         .await
//!         .map_err(|e| e.to_string())?;
//!     Response::from_json(&subtopics)
//! }
//! ```
//!
//! - Values are anything serde can turn into JSON and back: `set(key, &value, ttl)` stores the
//!   JSON text, `get::<T>(key)` reads it back into `T`. The JSON text in Upstash is the same as
//!   the npm package writes, and request keys are the same, so a Rust Worker and a JS Worker
//!   share one cache.
//! - With Upstash (`options.upstash`, or [`Cache::from_env`]), Upstash holds the data and the
//!   memory tier is the fallback while it is unreachable (see [`TieredCache`]);
//!   without it, the cache is the memory tier behind an async API.
//! - [`Cache::get_or_set`] is single-flight within the isolate: concurrent calls for one key
//!   (from concurrent requests too) run the generator once; a failure reaches every waiter as
//!   [`Error::GeneratorFailed`] and nothing is cached. If the request running the generator is
//!   cancelled, its waiters get `GENERATOR_FAILED` rather than waiting forever.
//! - No timer is ever started (Workers refuse timers at global scope, and a timer started by a
//!   request belongs to that request): `cleanup_interval` is not used, and expiry is lazy plus
//!   amortized, at a cost proportional to what expired.
//! - Durations are seconds (`ttl: Some(0.5)`); `None` means the cache's default TTL.

use std::cell::RefCell;
use std::fmt::Display;
use std::future::Future;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::cache::{ttl_ms, Codec, HealthReport, HealthStatus, InFlight, Removal, TieredCache};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::platform::worker::{upstash_from_env, Signal, WorkerTransport};
use crate::platform::JsClock;
use crate::stats::StatsSnapshot;

/// The JSON text of a value: what both tiers hold.
type Text = Rc<str>;

/// The shared tier's codec: values are already JSON text; what comes back from Upstash is
/// checked to be JSON (with serde_json, without building a value).
struct JsonText;

impl Codec<Text> for JsonText {
    fn encode(&self, value: &Text) -> Result<String> {
        Ok(value.to_string())
    }

    fn decode(&self, text: &str) -> Result<Text> {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|_| {
            Error::Unserializable("the value stored in Upstash is not JSON".to_owned())
        })?;
        Ok(Rc::from(text))
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Text> {
    serde_json::to_string(value)
        .map(Rc::from)
        .map_err(|e| Error::Unserializable(format!("the value cannot be serialized: {e}")))
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::Unserializable(format!(
            "the cached JSON does not deserialize into the requested type: {e}"
        ))
    })
}

/// One `get_or_set` generation under way: its outcome, once settled, and the signal its waiters
/// (calls from this request or others) wait for.
#[derive(Default)]
struct Flight {
    outcome: RefCell<Option<Result<Text>>>,
    done: Signal,
}

impl Flight {
    fn settle(&self, outcome: Result<Text>) {
        *self.outcome.borrow_mut() = Some(outcome);
        self.done.notify();
    }

    async fn wait(&self) -> Result<Text> {
        if self.outcome.borrow().is_none() {
            self.done.wait().await;
        }
        self.outcome.borrow().clone().unwrap_or_else(|| {
            Err(Error::GeneratorFailed(
                "the call generating this value never settled".to_owned(),
            ))
        })
    }
}

/// Settles a flight and forgets it, when the generating call ends, or is dropped half-way.
struct Leader<'a> {
    flights: &'a RefCell<InFlight<Rc<Flight>>>,
    key: &'a str,
    flight: Rc<Flight>,
    settled: bool,
}

impl Leader<'_> {
    fn settle(mut self, outcome: Result<Text>) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Result<Text>) {
        self.settled = true;
        self.flights.borrow_mut().finish(self.key);
        self.flight.settle(outcome);
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.finish(Err(Error::GeneratorFailed(
                "the call generating this value was cancelled".to_owned(),
            )));
        }
    }
}

type Tiered = TieredCache<Text, WorkerTransport, JsonText>;

struct Inner {
    cache: Tiered,
    flights: RefCell<InFlight<Rc<Flight>>>,
}

/// The two-tier cache for Rust Workers. Cloning is cheap and clones share one cache; keep one
/// per isolate (a `thread_local`), made on the first request.
#[derive(Clone)]
pub struct Cache {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache with `options` (validated: [`Error::InvalidOptions`] for what `Options::validate`
    /// refuses). With `options.upstash`, Upstash is reached through `worker::Fetch`.
    pub fn new(options: &Options) -> Result<Cache> {
        let cache = TieredCache::new(options, WorkerTransport, JsonText, Rc::new(JsClock))?;
        Ok(Cache {
            inner: Rc::new(Inner {
                cache,
                flights: RefCell::default(),
            }),
        })
    }

    /// A cache whose shared tier is read from `UPSTASH_REDIS_REST_URL` and
    /// `UPSTASH_REDIS_REST_TOKEN` in the Worker's `env` (secrets or vars); the timeout and
    /// retries of `options.upstash`, when given, are kept. [`Error::InvalidOptions`] when either
    /// is missing.
    pub fn from_env(env: &::worker::Env, options: &Options) -> Result<Cache> {
        let mut options = options.clone();
        let mut upstash = upstash_from_env(env)?;
        if let Some(given) = &options.upstash {
            upstash.timeout_ms = given.timeout_ms;
            upstash.retries = given.retries;
        }
        options.upstash = Some(upstash);
        Cache::new(&options)
    }

    /// The current version prefix.
    pub fn version(&self) -> String {
        self.inner.cache.version()
    }

    /// The request key `"{version}:{namespace}:{md5}"` of `data` (its canonical JSON, as
    /// `requestKey` makes it in JavaScript).
    pub fn key<D: Serialize + ?Sized>(&self, namespace: &str, data: &D) -> Result<String> {
        let json = serde_json::to_string(data)
            .map_err(|e| Error::Unserializable(format!("request data: {e}")))?;
        self.inner.cache.request_key(namespace, &json)
    }

    async fn set_text(&self, key: &str, text: Text, ttl: Option<f64>) -> Result<()> {
        let size = if self.inner.cache.needs_sizes() {
            text.len() as u64
        } else {
            0
        };
        self.inner.cache.set(key, text, size, ttl).await
    }

    /// The value under `key` as a `T`, or `None`. [`Error::Unserializable`] when the cached JSON
    /// is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.inner.cache.get(key).await? {
            Some(text) => decode(&text).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` (as JSON) under `key` for `ttl` seconds, or the default TTL.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<f64>,
    ) -> Result<()> {
        let text = encode(value)?;
        self.set_text(key, text, ttl).await
    }

    /// Whether `key` holds a value (not counted as a hit or miss).
    pub async fn has(&self, key: &str) -> Result<bool> {
        self.inner.cache.contains(key).await
    }

    /// Deletes `key`; true when a value was removed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.cache.delete(key).await
    }

    /// `get(key(namespace, data))`.
    pub async fn lookup<D, T>(&self, namespace: &str, data: &D) -> Result<Option<T>>
    where
        D: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.get(&self.key(namespace, data)?).await
    }

    /// `set(key(namespace, data), value, ttl)`; returns the key.
    pub async fn store<D, T>(
        &self,
        namespace: &str,
        data: &D,
        value: &T,
        ttl: Option<f64>,
    ) -> Result<String>
    where
        D: Serialize + ?Sized,
        T: Serialize + ?Sized,
    {
        let key = self.key(namespace, data)?;
        self.set(&key, value, ttl).await?;
        Ok(key)
    }

    /// The cached value for `(namespace, data)`, or the result of `generate()` stored under it
    /// with the default TTL. See [`Cache::get_or_set_with_ttl`].
    pub async fn get_or_set<D, T, E, F, Fut>(
        &self,
        namespace: &str,
        data: &D,
        generate: F,
    ) -> Result<T>
    where
        D: Serialize + ?Sized,
        T: Serialize + DeserializeOwned,
        E: Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        self.get_or_set_with_ttl(namespace, data, None, generate)
            .await
    }

    /// The cached value for `(namespace, data)`, or the result of `generate()` stored under it
    /// for `ttl` seconds (`None`: the default TTL). Concurrent calls for one key within the
    /// isolate run `generate` once and all get its value; an `Err` from it reaches every caller
    /// as [`Error::GeneratorFailed`] and nothing is cached.
    pub async fn get_or_set_with_ttl<D, T, E, F, Fut>(
        &self,
        namespace: &str,
        data: &D,
        ttl: Option<f64>,
        generate: F,
    ) -> Result<T>
    where
        D: Serialize + ?Sized,
        T: Serialize + DeserializeOwned,
        E: Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        ttl_ms(ttl, 0)?;
        let key = self.key(namespace, data)?;
        let running = self.inner.flights.borrow().get(&key);
        if let Some(flight) = running {
            return decode(&flight.wait().await?);
        }
        let flight = Rc::new(Flight::default());
        self.inner.flights.borrow_mut().start(&key, flight.clone());
        let leader = Leader {
            flights: &self.inner.flights,
            key: &key,
            flight,
            settled: false,
        };
        // The cache operations are timed; the generator is not.
        let outcome: Result<(Option<T>, Text)> = async {
            if let Some(text) = self.inner.cache.get(&key).await? {
                return Ok((None, text));
            }
            let value = generate()
                .await
                .map_err(|e| Error::GeneratorFailed(format!("generator failed: {e}")))?;
            let text = encode(&value)?;
            self.set_text(&key, text.clone(), ttl).await?;
            Ok((Some(value), text))
        }
        .await;
        leader.settle(match &outcome {
            Ok((_, text)) => Ok(text.clone()),
            Err(e) => Err(e.clone()),
        });
        match outcome? {
            (Some(value), _) => Ok(value),
            (None, text) => decode(&text),
        }
    }

    /// Deletes every key matching the Redis glob `pattern`; returns how many.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        self.inner.cache.remove_by(Removal::Pattern, pattern).await
    }

    /// Deletes every request key of `namespace` under the current version; returns how many.
    /// [`Error::InvalidKey`] for an empty namespace or one containing `:`.
    pub async fn invalidate_namespace(&self, namespace: &str) -> Result<u64> {
        self.inner
            .cache
            .remove_by(Removal::Namespace, namespace)
            .await
    }

    /// Deletes every key under `version`; returns how many.
    pub async fn invalidate_version(&self, version: &str) -> Result<u64> {
        self.inner.cache.remove_by(Removal::Version, version).await
    }

    /// Switches to `version` and removes the old version's keys; returns how many went.
    pub async fn update_version(&self, version: &str) -> Result<u64> {
        self.inner
            .cache
            .remove_by(Removal::SwitchVersion, version)
            .await
    }

    /// Removes every entry of the memory tier (Upstash is left alone: use
    /// [`Cache::invalidate_version`] or [`Cache::delete_pattern`] there).
    pub fn clear(&self) -> Result<()> {
        self.inner.cache.clear()
    }

    /// Statistics (serialize it for the JSON the JavaScript `stats()` returns).
    pub async fn stats(&self) -> Stats {
        Stats(self.inner.cache.snapshot(false).await)
    }

    /// Pings Upstash: `healthy` when it answers, `degraded` while memory serves in its place,
    /// `unhealthy` when nothing serves (or after [`Cache::shutdown`]).
    pub async fn health(&self) -> Health {
        Health {
            report: self.inner.cache.health().await,
        }
    }

    /// Shuts the cache down: later operations fail with [`Error::ShutDown`].
    pub fn shutdown(&self) {
        self.inner.cache.shutdown();
    }
}

/// What [`Cache::stats`] returns: the snapshot, serialized with the JavaScript `stats()` field
/// names (`hitRatePercent`, `avgLatencyMs`, `upstash: { keyspaceHits, ... }`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats(pub StatsSnapshot);

impl std::ops::Deref for Stats {
    type Target = StatsSnapshot;

    fn deref(&self) -> &StatsSnapshot {
        &self.0
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_fields(serializer, "Stats", &self.0.fields())
    }
}

/// A report's fields ([`crate::stats::Field`]) as a serde struct: absent fields are skipped.
fn serialize_fields<S: Serializer>(
    serializer: S,
    name: &'static str,
    fields: &[(&'static str, crate::stats::Field<'_>)],
) -> std::result::Result<S::Ok, S::Error> {
    use crate::stats::Field;
    let mut o = serializer.serialize_struct(name, fields.len())?;
    for &(key, field) in fields {
        match field {
            Field::Text(s) => o.serialize_field(key, s)?,
            Field::Count(n) => o.serialize_field(key, &n)?,
            Field::Number(n) => o.serialize_field(key, &n)?,
            Field::Flag(b) => o.serialize_field(key, &b)?,
            Field::Upstash(u) => o.serialize_field(key, &UpstashFigures(u))?,
            Field::Absent => o.skip_field(key)?,
        }
    }
    o.end()
}

/// `stats.upstash`, serialized from [`crate::stats::UpstashStats::fields`].
struct UpstashFigures<'a>(&'a crate::stats::UpstashStats);

impl Serialize for UpstashFigures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_fields(serializer, "UpstashStats", &self.0.fields())
    }
}

/// What [`Cache::health`] returns; serializes as `{ status, backend, latencyMs, error? }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Status, backend, latency of the probe, and why it is not healthy.
    pub report: HealthReport,
}

impl Health {
    /// The status.
    pub fn status(&self) -> HealthStatus {
        self.report.status
    }

    /// `"upstash"` or `"memory"`.
    pub fn backend(&self) -> &'static str {
        self.report.backend
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_fields(serializer, "Health", &self.report.fields())
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use crate::stats::{Counters, Field, UpstashStats};

    /// The names of the fields that have a value, sorted.
    fn present(fields: &[(&'static str, Field<'_>)]) -> Vec<String> {
        let mut names: Vec<String> = fields
            .iter()
            .filter(|(_, f)| *f != Field::Absent)
            .map(|(n, _)| (*n).to_owned())
            .collect();
        names.sort();
        names
    }

    /// The keys of the JSON object `v` serializes to, sorted.
    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        keys.sort();
        keys
    }

    fn snapshot(upstash: Option<UpstashStats>) -> StatsSnapshot {
        StatsSnapshot {
            backend: "upstash",
            version: "v1".to_owned(),
            counters: Counters::default(),
            hit_rate_percent: 0.0,
            total_requests: 0,
            avg_latency_ms: 0.0,
            p99_latency_ms: 0.0,
            keys: 0,
            max_entries: 1,
            memory_used_bytes: 0,
            cleanup_timer_active: false,
            fallback_active: false,
            upstash,
        }
    }

    #[wasm_bindgen_test]
    fn stats_serialize_with_the_field_list() {
        for upstash in [None, Some(UpstashStats::default())] {
            let s = snapshot(upstash);
            let json = serde_json::to_value(Stats(s.clone())).expect("serializes");
            assert_eq!(keys(&json), present(&s.fields()));
            match upstash {
                Some(u) => assert_eq!(keys(&json["upstash"]), present(&u.fields())),
                None => assert!(json.get("upstash").is_none()),
            }
        }
    }

    #[wasm_bindgen_test]
    fn health_serializes_with_the_field_list() {
        for error in [None, Some("down".to_owned())] {
            let h = Health {
                report: HealthReport {
                    status: HealthStatus::Degraded,
                    backend: "upstash",
                    latency_ms: 1.5,
                    error,
                },
            };
            let json = serde_json::to_value(&h).expect("serializes");
            assert_eq!(keys(&json), present(&h.report.fields()));
        }
    }
}
