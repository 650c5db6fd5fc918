//! The shared tier's client: Redis over HTTP in the Upstash REST dialect.
//!
//! A command is data: an array of strings, sent as a JSON array of JSON strings (every argument
//! a string, so number formatting never differs between clients). Every request carries
//! `Upstash-Encoding: base64`, so replies are plain ASCII JSON and values come back as raw bytes;
//! `"OK"` stays `"OK"` and `"T0s="` (a server that encodes it too) decodes to the same bytes.
//!
//! The [`Client`] owns the rest: one timeout on every request, retries with exponential backoff
//! on transport failures only (network errors and HTTP 5xx, never a command error or a timeout),
//! the read-your-writes sync token carried from each response to the next request, and typed
//! errors: 401 → `UPSTASH_AUTH`, a command failure → `UPSTASH_COMMAND`, an unreachable server →
//! `UPSTASH_TRANSPORT`, a reply that is not the dialect → `UPSTASH_PROTOCOL`, a timeout →
//! `TIMEOUT`. No error message ever contains the token.
//!
//! HTTP itself sits behind the [`Transport`] trait: `fetch` in JavaScript runtimes, a plain
//! socket client in native tests.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::canonical::{push_json_string, Document, Kind, Value};
use crate::error::{Error, Result};
use crate::options::UpstashOptions;
use crate::stats::UpstashStats;

/// A boxed future that need not be `Send` (JavaScript runtimes are single-threaded).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One HTTP request: always `POST` with a JSON body.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Full URL.
    pub url: String,
    /// Headers besides `Content-Type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
    /// Give up after this many milliseconds.
    pub timeout_ms: u32,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
    /// The `upstash-sync-token` response header, if any.
    pub sync_token: Option<String>,
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The timeout ran out.
    Timeout,
    /// The network failed (refused, reset, DNS, CORS, ...).
    Failed(String),
}

/// HTTP for the client, plus a timer for backoff.
pub trait Transport {
    /// Sends one request.
    fn send(&self, request: HttpRequest) -> LocalFuture<'_, Result<HttpResponse, TransportError>>;
    /// Waits `ms` milliseconds.
    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()>;
    /// 64 random bits (lock tokens: two instances must never draw the same one).
    fn random(&self) -> u64;
}

/// A Lua script, run with `EVALSHA` and, when Redis does not have it yet, `EVAL` (which loads
/// it).
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// The Lua source.
    pub source: &'static str,
    /// The SHA-1 of `source`, 40 lowercase hex digits (what `SCRIPT LOAD` answers).
    pub sha1: &'static str,
}

/// A decoded Redis reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nil.
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk or status string, as raw bytes.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Reply>),
}

impl Reply {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

fn protocol(msg: impl Into<String>) -> Error {
    Error::UpstashProtocol(msg.into())
}

/// Decodes a base64-mode `result` into a [`Reply`].
fn decode_reply(v: Value<'_>) -> Result<Reply> {
    Ok(match v.kind() {
        Kind::Null => Reply::Nil,
        Kind::Integer(text) => Reply::Int(
            text.parse()
                .map_err(|_| protocol(format!("Upstash sent an integer out of range: {text}")))?,
        ),
        Kind::Number => return Err(protocol("Upstash sent a number that is not an integer")),
        Kind::Str(s) if s == "OK" => Reply::Bytes(b"OK".to_vec()),
        Kind::Str(s) => Reply::Bytes(
            BASE64
                .decode(s.as_bytes())
                .map_err(|_| protocol("Upstash sent a string that is not base64"))?,
        ),
        Kind::Array => Reply::Array(v.items().map(decode_reply).collect::<Result<_>>()?),
        Kind::Bool(_) | Kind::Object => {
            return Err(protocol(
                "Upstash sent a value that base64 mode never carries",
            ))
        }
    })
}

/// The message of an `{"error": "..."}` envelope, if `v` is one.
fn command_error(v: Value<'_>) -> Option<String> {
    match v.get("error")?.kind() {
        Kind::Str(e) => Some(e.into_owned()),
        _ => None,
    }
}

/// Reads one `{"result": ...}` / `{"error": "..."}` envelope.
fn envelope(v: Value<'_>) -> Result<Reply> {
    if let Some(e) = command_error(v) {
        return Err(Error::UpstashCommand(e));
    }
    match v.get("result") {
        Some(r) => decode_reply(r),
        None => Err(protocol("Upstash reply has neither result nor error")),
    }
}

/// Reads one envelope per command from the answer to a batch of `count` commands.
fn batch_replies(v: Value<'_>, count: usize) -> Result<Vec<Result<Reply>>> {
    if v.kind() != Kind::Array {
        return envelope(v).and_then(|_| Err(protocol("Upstash answered a batch with one result")));
    }
    match v.items().count() {
        n if n == count => Ok(v.items().map(envelope).collect()),
        n => Err(protocol(format!(
            "Upstash answered {n} results to {count} commands"
        ))),
    }
}

/// Parses the body of a 2xx reply and reads its JSON with `read`.
fn read_body<T>(status: u16, body: &str, read: impl FnOnce(Value<'_>) -> Result<T>) -> Result<T> {
    let doc = Document::parse(body).map_err(|_| {
        protocol(format!(
            "Upstash answered HTTP {status} with a body that is not JSON: {}",
            excerpt(body)
        ))
    })?;
    read(doc.root())
}

/// Decodes the body of an HTTP 200 answer to one command, as [`Client::command`] does.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_command_body(body: &str) -> Result<Reply> {
    read_body(200, body, envelope)
}

/// Decodes the body of an HTTP 200 answer to `count` commands, as [`Client::pipeline`] does.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_batch_body(body: &str, count: usize) -> Result<Vec<Result<Reply>>> {
    read_body(200, body, |v| batch_replies(v, count))
}

/// Appends the JSON array of one command.
fn push_command<S: AsRef<str>>(args: &[S], out: &mut String) {
    out.push('[');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(a.as_ref(), out);
    }
    out.push(']');
}

/// The first 200 characters of a body, for error messages.
fn excerpt(body: &str) -> String {
    body.chars().take(200).collect()
}

/// The Upstash REST client.
pub struct Client<T> {
    base: String,
    token: String,
    transport: T,
    timeout_ms: u32,
    retries: u32,
    sync_token: RefCell<Option<String>>,
    round_trips: Cell<u64>,
    traffic: Cell<Traffic>,
}

/// What a client has sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Redis commands sent (a pipeline of n commands counts n; retries count again).
    pub commands: u64,
    /// Bytes of request bodies sent.
    pub bytes_sent: u64,
    /// Bytes of response bodies received.
    pub bytes_received: u64,
}

impl<T> std::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// How many keys an `UNLINK` or `EXISTS` batch holds at most; also `SCAN`'s `COUNT`.
pub const BATCH: usize = 1000;

/// Bytes of key text one batch may carry (far under Upstash's 10 MB request limit).
pub const BATCH_BYTES: usize = 1 << 20;

impl<T: Transport> Client<T> {
    /// A client for `options` over `transport` (options are validated here).
    pub fn new(options: &UpstashOptions, transport: T) -> Result<Self> {
        options.validate()?;
        Ok(Client {
            base: options.url.trim().trim_end_matches('/').to_owned(),
            token: options.token.clone(),
            transport,
            timeout_ms: options.timeout_ms,
            retries: options.retries,
            sync_token: RefCell::new(None),
            round_trips: Cell::new(0),
            traffic: Cell::new(Traffic::default()),
        })
    }

    /// Commands and bytes sent and received so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic.get()
    }

    /// HTTP requests sent so far (retries included).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The latest sync token (for handing read-your-writes to another client).
    pub fn sync_token(&self) -> Option<String> {
        self.sync_token.borrow().clone()
    }

    /// POSTs `body` (`commands` Redis commands) to `path` and returns the status and body of a
    /// 2xx reply.
    async fn post(&self, path: &str, body: String, commands: u64) -> Result<(u16, String)> {
        let mut attempt = 0;
        loop {
            let mut t = self.traffic.get();
            t.commands += commands;
            t.bytes_sent += body.len() as u64;
            self.traffic.set(t);
            let mut headers = vec![
                ("Authorization", format!("Bearer {}", self.token)),
                ("Upstash-Encoding", "base64".to_owned()),
            ];
            if let Some(t) = self.sync_token.borrow().as_ref() {
                headers.push(("Upstash-Sync-Token", t.clone()));
            }
            let request = HttpRequest {
                url: format!("{}{path}", self.base),
                headers,
                body: body.clone(),
                timeout_ms: self.timeout_ms,
            };
            self.round_trips.set(self.round_trips.get() + 1);
            let failure = match self.transport.send(request).await {
                Ok(r) => {
                    let mut t = self.traffic.get();
                    t.bytes_received += r.body.len() as u64;
                    self.traffic.set(t);
                    if let Some(t) = r.sync_token.filter(|t| !t.is_empty()) {
                        *self.sync_token.borrow_mut() = Some(t);
                    }
                    match r.status {
                        200..=299 => return Ok((r.status, r.body)),
                        401 | 403 => {
                            return Err(Error::UpstashAuth(format!(
                                "Upstash refused the token (HTTP {})",
                                r.status
                            )))
                        }
                        500..=599 => format!("Upstash answered HTTP {}", r.status),
                        status => {
                            let error = Document::parse(&r.body)
                                .ok()
                                .and_then(|doc| command_error(doc.root()));
                            return Err(match error {
                                Some(e) => Error::UpstashCommand(e),
                                None => protocol(format!(
                                    "Upstash answered HTTP {status}: {}",
                                    excerpt(&r.body)
                                )),
                            });
                        }
                    }
                }
                Err(TransportError::Timeout) => {
                    return Err(Error::Timeout(format!(
                        "Upstash did not answer within {} ms",
                        self.timeout_ms
                    )))
                }
                Err(TransportError::Failed(why)) => format!("Upstash is unreachable: {why}"),
            };
            if attempt >= self.retries {
                let tries = attempt + 1;
                return Err(Error::UpstashTransport(format!(
                    "{failure} (after {tries} attempts)"
                )));
            }
            // 50 ms, 100 ms, 200 ms, ... capped at 2 s.
            self.transport
                .sleep((50u32 << attempt.min(5)).min(2_000))
                .await;
            attempt += 1;
        }
    }

    /// Runs one command.
    pub async fn command<S: AsRef<str>>(&self, args: &[S]) -> Result<Reply> {
        let mut body = String::new();
        push_command(args, &mut body);
        let (status, body) = self.post("", body, 1).await?;
        read_body(status, &body, envelope)
    }

    /// Runs commands in one `/pipeline` request (not atomic); one result per command, in order.
    pub async fn pipeline<S: AsRef<str>>(&self, commands: &[Vec<S>]) -> Result<Vec<Result<Reply>>> {
        self.batch("/pipeline", commands).await
    }

    /// Runs commands in one `/multi-exec` transaction.
    pub async fn multi_exec<S: AsRef<str>>(
        &self,
        commands: &[Vec<S>],
    ) -> Result<Vec<Result<Reply>>> {
        self.batch("/multi-exec", commands).await
    }

    async fn batch<S: AsRef<str>>(
        &self,
        path: &str,
        commands: &[Vec<S>],
    ) -> Result<Vec<Result<Reply>>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = String::from("[");
        for (i, c) in commands.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            push_command(c, &mut body);
        }
        body.push(']');
        let (status, body) = self.post(path, body, commands.len() as u64).await?;
        read_body(status, &body, |v| batch_replies(v, commands.len()))
    }

    /// Runs `commands` in one `/pipeline` request, where a command `["EVALSHA", script.sha1,
    /// ...]` that Redis answers with `NOSCRIPT` is sent again as `["EVAL", script.source, ...]`
    /// (one more request, once per Redis that lost or never had the script).
    pub async fn pipeline_script(
        &self,
        script: &Script,
        commands: &[Vec<String>],
    ) -> Result<Vec<Result<Reply>>> {
        let mut replies = self.pipeline(commands).await?;
        let missing: Vec<usize> = replies
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                commands[*i].first().map(String::as_str) == Some("EVALSHA")
                    && matches!(r, Err(Error::UpstashCommand(m)) if m.starts_with("NOSCRIPT"))
            })
            .map(|(i, _)| i)
            .collect();
        if missing.is_empty() {
            return Ok(replies);
        }
        let again: Vec<Vec<String>> = missing
            .iter()
            .map(|&i| {
                let mut c = commands[i].clone();
                c[0] = "EVAL".to_owned();
                c[1] = script.source.to_owned();
                c
            })
            .collect();
        for (i, r) in missing.into_iter().zip(self.pipeline(&again).await?) {
            replies[i] = r;
        }
        Ok(replies)
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.command(&["GET", key]).await? {
            Reply::Nil => Ok(None),
            Reply::Bytes(b) => Ok(Some(b)),
            other => Err(protocol(format!("GET answered {other:?}"))),
        }
    }

    /// `SET key value PX ttl_ms`, or `SET key value` for [`crate::clock::NEVER_MS`].
    pub async fn set_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<()> {
        if ttl_ms == crate::clock::NEVER_MS {
            return self.command(&["SET", key, value]).await.map(drop);
        }
        let ttl = ttl_ms.max(1).to_string();
        self.command(&["SET", key, value, "PX", &ttl])
            .await
            .map(drop)
    }

    /// `UNLINK key...` in batches; returns how many keys were removed.
    pub async fn unlink<S: AsRef<str>>(&self, keys: &[S]) -> Result<u64> {
        let mut removed = 0;
        for batch in batches(keys) {
            let mut cmd = Vec::with_capacity(batch.len() + 1);
            cmd.push("UNLINK");
            cmd.extend(batch.iter().map(|k| k.as_ref()));
            removed += self.command(&cmd).await?.as_int().unwrap_or(0).max(0) as u64;
        }
        Ok(removed)
    }

    /// Which of `keys` exist: one `/pipeline` request per [`BATCH`] keys.
    pub async fn exists_each<S: AsRef<str>>(&self, keys: &[S]) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let commands: Vec<Vec<&str>> =
                chunk.iter().map(|k| vec!["EXISTS", k.as_ref()]).collect();
            for r in self.pipeline(&commands).await? {
                out.push(r?.as_int().unwrap_or(0) > 0);
            }
        }
        Ok(out)
    }

    /// Deletes every key matching `pattern` with `SCAN cursor MATCH pattern COUNT 1000` and
    /// `UNLINK`, page by page: never the whole keyspace at once, never a request over
    /// [`BATCH_BYTES`] of keys. The `UNLINK` of one page travels in the same pipeline as the
    /// `SCAN` of the next, so a deletion costs about one round trip per page. Returns how many
    /// keys were removed.
    pub async fn delete_matching(&self, pattern: &str) -> Result<u64> {
        self.delete_matching_with(pattern, &|_| false, &mut |_| Vec::new())
            .await
    }

    /// [`Client::delete_matching`], leaving alone the keys `keep` says to keep, and sending the
    /// commands `also` makes of each page's removed keys in that page's pipeline.
    pub async fn delete_matching_with(
        &self,
        pattern: &str,
        keep: &dyn Fn(&str) -> bool,
        also: &mut dyn FnMut(&[String]) -> Vec<Vec<String>>,
    ) -> Result<u64> {
        let count = BATCH.to_string();
        let scan = |cursor: &str| -> Vec<String> {
            ["SCAN", cursor, "MATCH", pattern, "COUNT", &count]
                .map(str::to_owned)
                .to_vec()
        };
        let mut removed = 0u64;
        let mut page = self.command(&scan("0")).await?;
        loop {
            let (cursor, mut keys) = scan_page(page)?;
            keys.retain(|k| !keep(k));
            let done = cursor == "0";
            let mut commands: Vec<Vec<String>> = batches(&keys)
                .map(|b| {
                    std::iter::once("UNLINK".to_owned())
                        .chain(b.iter().cloned())
                        .collect()
                })
                .collect();
            let unlinks = commands.len();
            if !keys.is_empty() {
                commands.extend(also(&keys));
            }
            let extra = commands.len() - unlinks;
            if !done {
                commands.push(scan(&cursor));
            }
            if commands.is_empty() {
                return Ok(removed);
            }
            let mut results = self.pipeline(&commands).await?.into_iter();
            for r in results.by_ref().take(unlinks) {
                removed += r?.as_int().unwrap_or(0).max(0) as u64;
            }
            for r in results.by_ref().take(extra) {
                r?;
            }
            if done {
                return Ok(removed);
            }
            page = results
                .next()
                .ok_or_else(|| protocol("SCAN result missing"))??;
        }
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<()> {
        match self.command(&["PING"]).await? {
            Reply::Bytes(b) if b == b"PONG" => Ok(()),
            other => Err(protocol(format!("PING answered {other:?}"))),
        }
    }

    /// `INFO` figures and `DBSIZE`, in one pipeline.
    pub async fn info(&self) -> Result<(UpstashStats, u64)> {
        let r = self.pipeline(&[vec!["INFO"], vec!["DBSIZE"]]).await?;
        let mut it = r.into_iter();
        let info = it.next().ok_or_else(|| protocol("INFO result missing"))??;
        let size = it
            .next()
            .ok_or_else(|| protocol("DBSIZE result missing"))??;
        let text = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
        Ok((parse_info(&text), size.as_int().unwrap_or(0).max(0) as u64))
    }
}

/// Splits keys into batches of at most [`BATCH`] keys and [`BATCH_BYTES`] bytes.
fn batches<S: AsRef<str>>(keys: &[S]) -> impl Iterator<Item = &[S]> {
    let mut rest = keys;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && n < BATCH {
            bytes += rest[n].as_ref().len() + 8;
            if n > 0 && bytes > BATCH_BYTES {
                break;
            }
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// Reads a `SCAN` reply: `[cursor, [key, ...]]`.
fn scan_page(reply: Reply) -> Result<(String, Vec<String>)> {
    let Reply::Array(mut parts) = reply else {
        return Err(protocol("SCAN answered something other than an array"));
    };
    if parts.len() != 2 {
        return Err(protocol(
            "SCAN answered an array that is not [cursor, keys]",
        ));
    }
    let keys = match parts.pop() {
        Some(Reply::Array(keys)) => keys
            .into_iter()
            .map(|k| match k {
                Reply::Bytes(b) => String::from_utf8(b)
                    .map_err(|_| protocol("SCAN returned a key that is not UTF-8")),
                _ => Err(protocol("SCAN returned a key that is not a string")),
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(protocol("SCAN answered keys that are not an array")),
    };
    let cursor = match parts.pop() {
        Some(Reply::Bytes(b)) => {
            String::from_utf8(b).map_err(|_| protocol("SCAN cursor is not text"))?
        }
        _ => return Err(protocol("SCAN cursor is not a string")),
    };
    Ok((cursor, keys))
}

/// Reads the figures Cachette reports from `INFO` text.
pub fn parse_info(text: &str) -> UpstashStats {
    let mut s = UpstashStats::default();
    for line in text.lines() {
        let Some((name, value)) = line.trim().split_once(':') else {
            continue;
        };
        let Ok(n) = value.trim().parse::<u64>() else {
            continue;
        };
        match name {
            "keyspace_hits" => s.keyspace_hits = n,
            "keyspace_misses" => s.keyspace_misses = n,
            "evicted_keys" => s.evicted_keys = n,
            "used_memory" => s.used_memory_bytes = n,
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one JSON text with `read`, as a 200 reply's body.
    fn read<T>(text: &str, read: impl FnOnce(Value<'_>) -> Result<T>) -> Result<T> {
        read_body(200, text, read)
    }

    #[test]
    fn replies_decode_from_base64_mode() {
        assert_eq!(
            read(
                r#"["OK","T0s=","gA==",12,-0,null,["MA==",["aw=="]]]"#,
                decode_reply
            )
            .unwrap(),
            Reply::Array(vec![
                Reply::Bytes(b"OK".to_vec()),
                Reply::Bytes(b"OK".to_vec()),
                Reply::Bytes(vec![0x80]),
                Reply::Int(12),
                Reply::Int(0),
                Reply::Nil,
                Reply::Array(vec![
                    Reply::Bytes(b"0".to_vec()),
                    Reply::Array(vec![Reply::Bytes(b"k".to_vec())])
                ]),
            ])
        );
        // RFC 4648's vectors, and what padded standard base64 does not allow.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("😀", "8J+YgA=="),
        ] {
            assert_eq!(
                read(&format!("\"{coded}\""), decode_reply).unwrap(),
                Reply::Bytes(plain.as_bytes().to_vec())
            );
        }
        for bad in [
            r#""not base64!""#,
            r#""abc""#,
            r#""ab=c""#,
            r#""====""#,
            r#""Zg==Zg==""#,
            r#""Zm9""#,
            r#""Zm9v\n""#,
            "1.5",
            "1e3",
            "9223372036854775808",
            "true",
            "{}",
            "not json",
        ] {
            assert_eq!(
                read(bad, decode_reply).unwrap_err().code(),
                "UPSTASH_PROTOCOL",
                "{bad}"
            );
        }
    }

    #[test]
    fn envelopes_separate_results_and_errors() {
        assert_eq!(
            read(r#"{"result":"dg=="}"#, envelope).unwrap(),
            Reply::Bytes(b"v".to_vec())
        );
        assert_eq!(
            read(
                r#" { "error" : "WRONGTYPE \"x\" \u00e9 \ud83d\ude00" } "#,
                envelope
            )
            .unwrap_err(),
            Error::UpstashCommand("WRONGTYPE \"x\" é 😀".into())
        );
        for neither in [r#"{"x":1}"#, r#"{"x":{"result":1}}"#, r#"["result"]"#] {
            assert_eq!(
                read(neither, envelope).unwrap_err().code(),
                "UPSTASH_PROTOCOL",
                "{neither}"
            );
        }
    }

    #[test]
    fn batches_read_one_envelope_per_command() {
        let body = r#"[{"result":12},{"error":"ERR x"},{"result":null}]"#;
        assert_eq!(
            read(body, |v| batch_replies(v, 3)).unwrap(),
            vec![
                Ok(Reply::Int(12)),
                Err(Error::UpstashCommand("ERR x".into())),
                Ok(Reply::Nil)
            ]
        );
        for (body, count) in [(body, 2), (r#"{"result":1}"#, 1), ("[", 1)] {
            assert_eq!(
                read(body, |v| batch_replies(v, count)).unwrap_err().code(),
                "UPSTASH_PROTOCOL",
                "{body}"
            );
        }
        assert_eq!(
            read(r#"{"error":"ERR batch"}"#, |v| batch_replies(v, 1)).unwrap_err(),
            Error::UpstashCommand("ERR batch".into())
        );
    }

    #[test]
    fn commands_encode_every_argument_as_a_string() {
        let mut out = String::new();
        push_command(&["SET", "k\"1", "{\"a\":1}", "PX", "60000"], &mut out);
        assert_eq!(out, r#"["SET","k\"1","{\"a\":1}","PX","60000"]"#);
        // Every string reads back as itself.
        let args = [
            "plain",
            "q\"uote",
            "back\\slash",
            "ctl\u{1}\u{8}\n\t\u{1f}",
            "é😀\u{7f}",
        ];
        out.clear();
        push_command(&args, &mut out);
        let doc = Document::parse(&out).unwrap();
        let back: Vec<String> = doc
            .root()
            .items()
            .map(|v| match v.kind() {
                Kind::Str(s) => s.into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, args);
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let keys: Vec<String> = (0..2500).map(|i| format!("k{i}")).collect();
        let sizes: Vec<usize> = batches(&keys).map(<[String]>::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let big: Vec<String> = (0..100).map(|_| "x".repeat(30_000)).collect();
        for b in batches(&big) {
            assert!(b.iter().map(|k| k.len()).sum::<usize>() <= BATCH_BYTES);
        }
        assert_eq!(batches(&big).map(<[String]>::len).sum::<usize>(), 100);
        let empty: Vec<String> = Vec::new();
        assert_eq!(batches(&empty).count(), 0);
    }

    #[test]
    fn info_figures() {
        let s = parse_info("# Stats\r\nkeyspace_hits:10\r\nkeyspace_misses:3\r\nevicted_keys:0\r\n# Memory\r\nused_memory:123456\r\nused_memory_human:120K\r\n");
        assert_eq!(
            s,
            UpstashStats {
                keyspace_hits: 10,
                keyspace_misses: 3,
                evicted_keys: 0,
                used_memory_bytes: 123_456,
                ..UpstashStats::default()
            }
        );
    }
}
