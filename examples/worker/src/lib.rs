//! The old topic service's endpoints as a Rust Cloudflare Worker (workers-rs), on
//! `cachette::worker::Cache` with Upstash as the shared tier. See examples/README.md.
//!
//! - `GET  /api/subtopics?topic=…`           generated content through `get_or_set_entry`; `x-cache: <status>`
//! - `GET  /api/explain?topic=…`             an explanation streamed as server-sent events through
//!   `get_or_set_stream`; `x-cache: miss|joined|hit`
//! - `GET  /api/cache/stats[?format=legacy]` statistics (camelCase, or the old service's names)
//! - `POST /api/cache/invalidate/:namespace` `{ "invalidated": n }`, with `Authorization: Bearer <ADMIN_TOKEN>`
//! - `GET  /api/health`                      `{ status, backend, latencyMs, error? }`
//!
//! Secrets: `UPSTASH_REDIS_REST_URL`, `UPSTASH_REDIS_REST_TOKEN`, `ADMIN_TOKEN`. Every failure
//! answers JSON `{ "error": { "code", "message" } }`; where the cache failed, `code` is its
//! CacheError code.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use cachette::cache::HealthStatus;
use cachette::options::Options;
use cachette::stats::StatsSnapshot;
use cachette::worker::{Cache, Chunk, ChunkStream, GetOrSetOptions, StreamOptions};
use cachette::Error as CacheError;
use futures_core::Stream;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{event, Context, Delay, Env, Method, Request, Response, Result};

/// The namespace of generated subtopics (the request data is `{ "topic": topic }`).
const NAMESPACE: &str = "subtopics";
/// The namespace of streamed explanations (the request data is `{ "topic": topic }`), as the JS
/// Worker's: the two share recordings over Upstash.
const EXPLAIN_NAMESPACE: &str = "explain";
const MAX_TOPIC_CHARS: usize = 200;
const INVALIDATE_PREFIX: &str = "/api/cache/invalidate/";

thread_local! {
    /// One cache per isolate, made by the first request that needs it: nothing runs at global
    /// scope (no I/O, no timers), and `get_or_set` is single-flight across the isolate.
    static CACHE: OnceCell<Cache> = const { OnceCell::new() };
}

/// The cache's options. The Upstash URL and token come from the env (`Cache::from_env`), with
/// the default timeout (5 s) and retries (3), as in the JS Worker.
fn options() -> Options {
    Options {
        version: "v1".to_owned(),
        ttl: 3600.0,
        max_entries: 1000,
        max_bytes: Some(8 << 20),
        // Never a timer in a Worker: expiry is lazy + amortized (the option is not used here).
        cleanup_interval: 0.0,
        ..Options::default()
    }
}

fn cache(env: &Env) -> std::result::Result<Cache, CacheError> {
    if let Some(c) = CACHE.with(|slot| slot.get().cloned()) {
        return Ok(c);
    }
    let c = Cache::from_env(env, &options())?;
    Ok(CACHE.with(|slot| slot.get_or_init(|| c).clone()))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subtopics {
    topic: String,
    subtopics: Vec<String>,
    generated_by: String,
}

/// A STAND-IN for the old service's LLM call: deterministic, and 50 ms slow so that a cache hit
/// shows. Replace it with the real generator.
async fn stand_in_generate_subtopics(topic: &str) -> Subtopics {
    Delay::from(Duration::from_millis(50)).await;
    Subtopics {
        topic: topic.to_owned(),
        subtopics: vec![
            format!("Introduction to {topic}"),
            format!("Core concepts of {topic}"),
            format!("{topic} in practice"),
            format!("Common pitfalls in {topic}"),
            format!("Advanced {topic}"),
        ],
        generated_by: "rust-worker stand-in".to_owned(),
    }
}

fn json_response(body: &impl Serialize, status: u16) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

fn error(status: u16, code: &str, message: &str) -> Result<Response> {
    json_response(
        &json!({ "error": { "code": code, "message": message } }),
        status,
    )
}

/// The HTTP status for a cache failure: the caller's mistake, Upstash unreachable, Upstash
/// misbehaving, or ours.
fn status_of(e: &CacheError) -> u16 {
    match e {
        CacheError::InvalidKey(_) | CacheError::InvalidPattern(_) => 400,
        CacheError::UpstashTransport(_) | CacheError::Timeout(_) => 503,
        CacheError::UpstashAuth(_)
        | CacheError::UpstashProtocol(_)
        | CacheError::UpstashCommand(_) => 502,
        _ => 500,
    }
}

fn cache_error(e: &CacheError) -> Result<Response> {
    error(status_of(e), e.code(), &e.to_string())
}

/// A cache that cannot be made (the Upstash secrets are missing) is a service that is not
/// configured: 503 with the CacheError code (`INVALID_OPTIONS`).
fn config_error(e: &CacheError) -> Result<Response> {
    error(503, e.code(), &e.to_string())
}

/// The first value of query parameter `name`. (Parsed here rather than with `Request::url`, whose
/// full URL parser brings IDNA tables, about 100 KB of wasm, that this Worker has no use for.)
fn query_param(req: &Request, name: &str) -> Option<String> {
    let url = req.inner().url();
    let (_, query) = url.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let path = req.path();
    let path = path.as_str();
    let allowed = if path.starts_with(INVALIDATE_PREFIX) {
        Method::Post
    } else if matches!(
        path,
        "/api/subtopics" | "/api/explain" | "/api/cache/stats" | "/api/health"
    ) {
        Method::Get
    } else {
        return error(404, "NOT_FOUND", &format!("no route for {path}"));
    };
    if req.method() != allowed {
        let mut r = error(
            405,
            "METHOD_NOT_ALLOWED",
            &format!("{path} takes {allowed}"),
        )?;
        r.headers_mut().set("Allow", allowed.as_ref())?;
        return Ok(r);
    }
    match path {
        "/api/subtopics" => subtopics(&req, &env, &ctx).await,
        "/api/explain" => explain(&req, &env, &ctx).await,
        "/api/cache/stats" => stats(&req, &env).await,
        "/api/health" => health(&env).await,
        _ => invalidate(&req, &env, &path[INVALIDATE_PREFIX.len()..]).await,
    }
}

/// The `topic` query parameter, if given and 1 to `MAX_TOPIC_CHARS` characters.
fn topic_of(req: &Request) -> Option<String> {
    query_param(req, "topic")
        .filter(|t| !t.trim().is_empty() && t.chars().count() <= MAX_TOPIC_CHARS)
}

fn bad_topic() -> Result<Response> {
    error(
        400,
        "BAD_REQUEST",
        &format!("topic must be given, 1 to {MAX_TOPIC_CHARS} characters"),
    )
}

async fn subtopics(req: &Request, env: &Env, ctx: &Context) -> Result<Response> {
    let Some(topic) = topic_of(req) else {
        return bad_topic();
    };
    let cache = match cache(env) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    // The generation runs in a task of its own, handed to waitUntil: it completes for the
    // other requests waiting for it even if this one goes away.
    let options = GetOrSetOptions::new().wait_until(ctx);
    let data = json!({ "topic": topic });
    let entry = cache
        .get_or_set_entry(NAMESPACE, &data, &options, move |_ctx| async move {
            Ok::<_, std::convert::Infallible>(stand_in_generate_subtopics(&topic).await)
        })
        .await;
    match entry {
        Ok(entry) => {
            let mut r = json_response(&entry.value, 200)?;
            r.headers_mut().set("x-cache", entry.status.as_str())?;
            Ok(r)
        }
        Err(e) => cache_error(&e),
    }
}

/// How far apart the stand-in explanation's tokens come, in milliseconds.
const STAND_IN_TOKEN_MS: u64 = 10;

/// The tokens of the stand-in explanation of `topic`: words, each but the first with its
/// leading space (as the JS Worker's stand-in splits them).
fn stand_in_explain_tokens(topic: &str) -> Vec<String> {
    let text = format!(
        "{topic}, explained by a stand-in for a model. \
         In short, {topic} is a set of ideas, tools and habits. \
         Start with its core concepts, practise them on small examples, then study its common pitfalls."
    );
    let mut tokens = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices(' ') {
        if i > start {
            tokens.push(text[start..i].to_owned());
        }
        start = i;
    }
    tokens.push(text[start..].to_owned());
    tokens
}

/// A STAND-IN for a streaming LLM call: the tokens of [`stand_in_explain_tokens`],
/// `STAND_IN_TOKEN_MS` apart so that the stream shows. Replace it with the real model's stream
/// (any `Stream<Item = Result<impl Into<Chunk>, E>>`). With `fail_at: Some(n)` (the test-only var
/// `STAND_IN_FAIL_AT`, unset in a deployment), it fails in place of token `n`.
struct StandInTokens {
    tokens: std::vec::IntoIter<String>,
    sent: usize,
    fail_at: Option<usize>,
    delay: Option<Delay>,
}

impl StandInTokens {
    fn new(topic: &str, fail_at: Option<usize>) -> Self {
        StandInTokens {
            tokens: stand_in_explain_tokens(topic).into_iter(),
            sent: 0,
            fail_at,
            delay: None,
        }
    }
}

impl Stream for StandInTokens {
    type Item = std::result::Result<String, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let delay = self
            .delay
            .get_or_insert_with(|| Delay::from(Duration::from_millis(STAND_IN_TOKEN_MS)));
        if Pin::new(delay).poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.delay = None;
        if self.fail_at == Some(self.sent) {
            self.fail_at = None;
            self.tokens = Vec::new().into_iter();
            let at = self.sent;
            return Poll::Ready(Some(Err(format!("the stand-in failed at token {at}"))));
        }
        self.sent += 1;
        Poll::Ready(self.tokens.next().map(Ok))
    }
}

/// A chunk as the JSON of a server-sent event's data (a token: a JSON string).
fn chunk_json(chunk: &Chunk) -> String {
    let text = match chunk {
        Chunk::Text(s) => serde_json::to_string(s),
        Chunk::Json(v) => serde_json::to_string(v),
        Chunk::Bytes(b) => serde_json::to_string(&String::from_utf8_lossy(b)),
    };
    text.unwrap_or_else(|_| "null".to_owned())
}

/// How long a stream may stay silent before a comment line (`: keep-alive`) goes out, so that
/// proxies keep a slow stream open (as the JS Worker does).
const HEARTBEAT_MS: u64 = 15_000;

/// `chunks` as server-sent events, the JS Worker's format: one unnamed event per chunk
/// (`data: <the token as a JSON string>`), then `event: end` with `{ "tokens": n }`; a failure
/// midway ends the stream with `event: error` and `{ "error": { code, message } }`. Pulled one
/// chunk at a time, so each event goes out as its chunk arrives; a client that goes away drops
/// `chunks` (the generation stops when every reader has gone). A comment goes out after
/// `HEARTBEAT_MS` of silence.
struct ServerSentEvents {
    chunks: ChunkStream,
    count: usize,
    done: bool,
    heartbeat: Option<Delay>,
}

impl Stream for ServerSentEvents {
    type Item = std::result::Result<Vec<u8>, worker::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let event = match self.chunks.as_mut().poll_next(cx) {
            Poll::Pending => {
                let beat = self
                    .heartbeat
                    .get_or_insert_with(|| Delay::from(Duration::from_millis(HEARTBEAT_MS)));
                if Pin::new(beat).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.heartbeat = None;
                return Poll::Ready(Some(Ok(b": keep-alive\n\n".to_vec())));
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.count += 1;
                format!("data: {}\n\n", chunk_json(&chunk))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                let body = json!({ "error": { "code": e.code(), "message": e.to_string() } });
                format!("event: error\ndata: {body}\n\n")
            }
            Poll::Ready(None) => {
                self.done = true;
                format!("event: end\ndata: {}\n\n", json!({ "tokens": self.count }))
            }
        };
        self.heartbeat = None;
        Poll::Ready(Some(Ok(event.into_bytes())))
    }
}

async fn explain(req: &Request, env: &Env, ctx: &Context) -> Result<Response> {
    let Some(topic) = topic_of(req) else {
        return bad_topic();
    };
    let cache = match cache(env) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let fail_at = env
        .var("STAND_IN_FAIL_AT")
        .ok()
        .and_then(|v| v.to_string().parse::<usize>().ok());
    // The generation is handed to waitUntil: it runs to its end (and is recorded) for the
    // requests that joined it even if this one goes away.
    let options = StreamOptions::new().wait_until(ctx);
    let data = json!({ "topic": topic });
    // `status`: miss (this request runs the generator; its tokens are forwarded as they come
    // and recorded), joined (another request in this isolate is generating: the tokens so far,
    // then the live ones) or hit (the recording, replayed).
    let entry = cache
        .get_or_set_stream(EXPLAIN_NAMESPACE, &data, &options, move |_ctx| async move {
            Ok::<_, String>(StandInTokens::new(&topic, fail_at))
        })
        .await;
    let entry = match entry {
        Ok(entry) => entry,
        Err(e) => return cache_error(&e),
    };
    let events = ServerSentEvents {
        chunks: entry.stream,
        count: 0,
        done: false,
        heartbeat: None,
    };
    let mut r = Response::from_stream(events)?;
    let headers = r.headers_mut();
    headers.set("content-type", "text/event-stream; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    headers.set("x-cache", entry.status.as_str())?;
    Ok(r)
}

async fn stats(req: &Request, env: &Env) -> Result<Response> {
    let legacy = match query_param(req, "format") {
        None => false,
        Some(f) if f == "legacy" => true,
        Some(_) => return error(400, "BAD_REQUEST", "format must be \"legacy\" or absent"),
    };
    let cache = match cache(env) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let stats = cache.stats().await;
    if legacy {
        json_response(&legacy_stats(&stats.0), 200)
    } else {
        json_response(&stats, 200)
    }
}

/// Bytes as Redis's INFO prints them in `used_memory_human` (`"1.05M"`). Integer arithmetic:
/// float formatting would cost this Worker about 10 KB of wasm.
fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    match UNITS.iter().find(|(_, size)| n >= *size) {
        Some((unit, size)) => {
            let (n, size) = (u128::from(n), u128::from(*size));
            let hundredths = (n * 100 + size / 2) / size;
            format!("{}.{:02}{unit}", hundredths / 100, hundredths % 100)
        }
        None => format!("{n}B"),
    }
}

/// `?format=legacy`: the statistics under the old service's field names. Every field of
/// `stats()` has its counterpart (the table is in examples/README.md).
fn legacy_stats(s: &StatsSnapshot) -> Value {
    let c = &s.counters;
    let mib = (s.memory_used_bytes as f64 / 1_048_576.0 * 100.0).round() / 100.0;
    json!({
        "backend": if s.backend == "upstash" { "redis" } else { s.backend },
        "version": s.version,
        "hits": c.hits,
        "misses": c.misses,
        "total_requests": s.total_requests,
        "hit_rate_percent": s.hit_rate_percent,
        "sets": c.sets,
        "deletes": c.deletes,
        "invalidations": c.invalidations,
        "evictions": c.evictions,
        "expirations": c.expirations,
        "errors": c.errors,
        "avg_latency_ms": s.avg_latency_ms,
        "p99_latency_ms": s.p99_latency_ms,
        "total_keys": s.keys,
        "max_size": s.max_entries,
        "memory_used_mb": mib,
        "cleanup_running": s.cleanup_timer_active,
        "fallback_active": s.fallback_active,
        "redis_stats": s.upstash.map(|u| json!({
            "keyspace_hits": u.keyspace_hits,
            "keyspace_misses": u.keyspace_misses,
            "evicted_keys": u.evicted_keys,
            "used_memory": u.used_memory_bytes,
            "used_memory_human": human_bytes(u.used_memory_bytes),
            "round_trips": u.round_trips,
        })),
    })
}

async fn health(env: &Env) -> Result<Response> {
    let cache = match cache(env) {
        Ok(c) => c,
        Err(e) => {
            let body = json!({
                "status": "unhealthy",
                "error": { "code": e.code(), "message": e.to_string() },
            });
            return json_response(&body, 503);
        }
    };
    let h = cache.health().await;
    let status = if h.status() == HealthStatus::Unhealthy {
        503
    } else {
        200
    };
    json_response(&h, status)
}

/// Compares in time that depends on the length of `given` only, never on where it differs.
fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != secret.len());
    for (i, g) in given.iter().enumerate() {
        diff |= g ^ secret.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(char::is_whitespace)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn invalidate(req: &Request, env: &Env, raw_namespace: &str) -> Result<Response> {
    let admin = env
        .secret("ADMIN_TOKEN")
        .map(|s| s.to_string())
        .unwrap_or_default();
    if admin.is_empty() {
        return error(
            503,
            "ADMIN_TOKEN_MISSING",
            "ADMIN_TOKEN is not set: invalidation is disabled",
        );
    }
    let header = req.headers().get("Authorization")?.unwrap_or_default();
    let authorized =
        bearer(&header).is_some_and(|t| constant_time_eq(t.as_bytes(), admin.as_bytes()));
    if !authorized {
        let mut r = error(
            401,
            "UNAUTHORIZED",
            "invalidation needs Authorization: Bearer <ADMIN_TOKEN>",
        )?;
        r.headers_mut().set("WWW-Authenticate", "Bearer")?;
        return Ok(r);
    }
    let Ok(namespace) = percent_decode_str(raw_namespace).decode_utf8() else {
        return cache_error(&CacheError::InvalidKey(
            "namespace is not UTF-8 once percent-decoded".to_owned(),
        ));
    };
    let cache = match cache(env) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    match cache.invalidate_namespace(&namespace).await {
        Ok(n) => json_response(&json!({ "invalidated": n }), 200),
        Err(e) => cache_error(&e),
    }
}
