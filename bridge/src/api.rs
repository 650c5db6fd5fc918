//! The Upstash REST dialect: auth, routing, command checks, forwarding, reply mapping, faults.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::commands::{self, Command};
use crate::faults::{Faults, Mode};
use crate::http::{Request, Response};
use crate::redis::{Conn, Pool};
use crate::resp::Reply;
use crate::util::{ct_eq, query_pairs};

const UNAUTHORIZED: &str = "WRONGPASS invalid or missing auth token";
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, OPTIONS";
/// What browsers may send (the telemetry headers are sent by `@upstash/redis` unless disabled).
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Upstash-Encoding, Upstash-Sync-Token, \
     Upstash-Response-Format, Upstash-Telemetry-Sdk, Upstash-Telemetry-Platform, \
     Upstash-Telemetry-Runtime, Upstash-Telemetry-Retry";
/// Bound on the cache of `COMMAND INFO` answers (read-only token checks).
const MAX_CACHED_COMMANDS: usize = 1024;

/// What to do with a request.
pub enum Action {
    /// Write this response.
    Respond(Response),
    /// Close the connection without a response (the `reset` fault).
    Reset,
}

/// A handled request: the action plus a short note for the `--verbose` log (never a secret).
pub struct Outcome {
    /// What to do.
    pub action: Action,
    /// Command name(s) or what happened.
    pub note: String,
}

impl Outcome {
    fn respond(resp: Response, note: impl Into<String>) -> Outcome {
        Outcome {
            action: Action::Respond(resp),
            note: note.into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Standard,
    ReadOnly,
}

#[derive(Clone, Copy)]
struct Format {
    base64: bool,
    resp2: bool,
}

/// Flags of one command from `COMMAND INFO`: readonly, and the same for each subcommand.
#[derive(Clone, Default)]
struct CommandFlags {
    readonly: bool,
    subcommands: HashMap<String, bool>,
}

/// Bridge settings.
pub struct Settings {
    /// The standard token.
    pub token: String,
    /// The optional read-only token.
    pub read_only_token: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body: usize,
}

/// Shared state of the running bridge.
pub struct App {
    token: Vec<u8>,
    read_only_token: Option<Vec<u8>>,
    /// Largest accepted request body, in bytes.
    pub max_body: usize,
    pool: Pool,
    faults: Faults,
    sync: AtomicU64,
    flags: Mutex<HashMap<String, CommandFlags>>,
}

impl App {
    /// A bridge forwarding to `pool`.
    pub fn new(settings: Settings, pool: Pool) -> App {
        App {
            token: settings.token.into_bytes(),
            read_only_token: settings.read_only_token.map(String::into_bytes),
            max_body: settings.max_body,
            pool,
            faults: Faults::default(),
            sync: AtomicU64::new(0),
            flags: Mutex::new(HashMap::new()),
        }
    }

    /// Headers on every response: a fresh sync token and CORS.
    pub fn common_headers(&self) -> Vec<(&'static str, String)> {
        let token = self.sync.fetch_add(1, Ordering::Relaxed) + 1;
        vec![
            ("upstash-sync-token", token.to_string()),
            ("Access-Control-Allow-Origin", "*".into()),
            ("Access-Control-Expose-Headers", "upstash-sync-token".into()),
        ]
    }

    /// The 413 answer for a body over the limit.
    pub fn too_large(&self) -> Response {
        Response::error(
            413,
            &format!(
                "ERR max request size exceeded. Limit: {} bytes",
                self.max_body
            ),
        )
    }

    /// Whether Redis answers PING.
    pub fn redis_ready(&self) -> bool {
        matches!(
            self.with_conn(|c| c.call(vec![b"PING".to_vec()])),
            Ok(Reply::Status(s)) if s == b"PONG"
        )
    }

    /// Handles one request.
    pub fn handle(&self, req: &Request) -> Outcome {
        let path = req.path();
        if req.method == "OPTIONS" {
            let resp = Response::empty(204)
                .with("Access-Control-Allow-Methods", ALLOW_METHODS)
                .with("Access-Control-Allow-Headers", ALLOW_HEADERS)
                .with("Access-Control-Max-Age", "600");
            return Outcome::respond(resp, "preflight");
        }
        if let Some(endpoint) = path.strip_prefix("/__bridge/") {
            return self.bridge_endpoint(req, endpoint);
        }
        match self.faults.take() {
            Mode::None => {}
            Mode::Delay(ms) => std::thread::sleep(Duration::from_millis(ms)),
            Mode::Status(status) => {
                let msg = format!("ERR upstash-bridge injected fault: HTTP {status}");
                return Outcome::respond(Response::error(status, &msg), "fault: status");
            }
            Mode::Reset => {
                return Outcome {
                    action: Action::Reset,
                    note: "fault: reset".into(),
                }
            }
            Mode::Malformed => {
                let body = b"upstash-bridge injected fault: this body is not JSON {".to_vec();
                let resp = Response::new(200, "application/json", body);
                return Outcome::respond(resp, "fault: malformed");
            }
            Mode::Unauthorized => {
                return Outcome::respond(Response::error(401, UNAUTHORIZED), "fault: unauthorized")
            }
        }
        if !matches!(req.method.as_str(), "GET" | "HEAD" | "POST" | "PUT") {
            let resp = Response::error(405, "ERR method not allowed").with("Allow", ALLOW_METHODS);
            return Outcome::respond(resp, "method not allowed");
        }
        let Some(role) = self.role(req) else {
            return Outcome::respond(Response::error(401, UNAUTHORIZED), "unauthorized");
        };
        let format = match request_format(req) {
            Ok(f) => f,
            Err(msg) => return Outcome::respond(Response::error(400, &msg), "bad format header"),
        };
        match path {
            "/" => match commands::parse_single(&req.body) {
                Ok(cmd) => {
                    let note = commands::name(&cmd);
                    Outcome::respond(self.run_single(role, cmd, format), note)
                }
                Err(msg) => Outcome::respond(Response::error(400, &msg), "bad body"),
            },
            "/pipeline" => match commands::parse_batch(&req.body) {
                Ok(cmds) => {
                    let note = format!("pipeline [{}]", names(&cmds));
                    Outcome::respond(self.run_pipeline(role, cmds, format), note)
                }
                Err(msg) => Outcome::respond(Response::error(400, &msg), "bad body"),
            },
            "/multi-exec" => match commands::parse_batch(&req.body) {
                Ok(cmds) => {
                    let note = format!("multi-exec [{}]", names(&cmds));
                    Outcome::respond(self.run_multi(role, cmds, format), note)
                }
                Err(msg) => Outcome::respond(Response::error(400, &msg), "bad body"),
            },
            _ => match commands::parse_path(path, req.query(), &req.body) {
                Ok(cmd) => {
                    let note = commands::name(&cmd);
                    Outcome::respond(self.run_single(role, cmd, format), note)
                }
                Err(msg) => Outcome::respond(Response::error(400, &msg), "bad path"),
            },
        }
    }

    /// `/__bridge/health` (no auth) and `/__bridge/faults` (standard token); never faulted.
    fn bridge_endpoint(&self, req: &Request, endpoint: &str) -> Outcome {
        let method = req.method.as_str();
        match (endpoint, method) {
            ("health", "GET" | "HEAD") => {
                let resp = if self.redis_ready() {
                    Response::new(200, "text/plain", b"ok".to_vec())
                } else {
                    Response::new(503, "text/plain", b"redis unavailable".to_vec())
                };
                Outcome::respond(resp, "health")
            }
            ("faults", "GET" | "HEAD" | "POST" | "PUT") => {
                if self.role(req) != Some(Role::Standard) {
                    return Outcome::respond(Response::error(401, UNAUTHORIZED), "unauthorized");
                }
                let resp = if method == "POST" || method == "PUT" {
                    match self.faults.set(&req.body) {
                        Ok(v) => Response::json(200, &v),
                        Err(msg) => Response::error(400, &msg),
                    }
                } else {
                    Response::json(200, &self.faults.get())
                };
                Outcome::respond(resp, "faults")
            }
            ("health" | "faults", _) => {
                let resp =
                    Response::error(405, "ERR method not allowed").with("Allow", ALLOW_METHODS);
                Outcome::respond(resp, "method not allowed")
            }
            _ => Outcome::respond(
                Response::error(404, "ERR unknown upstash-bridge endpoint"),
                "not found",
            ),
        }
    }

    /// `Authorization: Bearer` if present, otherwise `?_token=`.
    fn role(&self, req: &Request) -> Option<Role> {
        let presented = match req.header("authorization") {
            Some(h) => {
                let (scheme, token) = h.split_once(' ')?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return None;
                }
                token.trim().as_bytes().to_vec()
            }
            None => query_pairs(req.query())
                .into_iter()
                .find(|(k, _)| k == b"_token")
                .and_then(|(_, v)| v)?,
        };
        if ct_eq(&presented, &self.token) {
            Some(Role::Standard)
        } else if self
            .read_only_token
            .as_ref()
            .is_some_and(|ro| ct_eq(&presented, ro))
        {
            Some(Role::ReadOnly)
        } else {
            None
        }
    }

    /// Borrows a pooled connection and runs `f`. A failure on a reused connection that looks like
    /// a dropped connection (Redis restarted) empties the idle pool and retries once.
    fn with_conn<T>(&self, mut f: impl FnMut(&mut Conn) -> io::Result<T>) -> Result<T, Response> {
        let mut conn = self.pool.get().map_err(backend_error)?;
        let reused = conn.reused();
        match conn.run(&mut f) {
            Ok(v) => Ok(v),
            Err(e) if reused && is_disconnect(&e) => {
                drop(conn);
                self.pool.clear_idle();
                let mut conn = self.pool.get().map_err(backend_error)?;
                conn.run(f).map_err(backend_error)
            }
            Err(e) => Err(backend_error(e)),
        }
    }

    /// The error to answer instead of running `cmd`, if any.
    fn check(&self, role: Role, cmd: &Command) -> Result<Option<String>, Response> {
        if let Some(msg) = commands::refusal(cmd) {
            return Ok(Some(msg));
        }
        if role == Role::ReadOnly && !self.readonly_allowed(cmd)? {
            let name = commands::name(cmd).to_ascii_lowercase();
            return Ok(Some(format!(
                "NOPERM this user has no permissions to run the '{name}' command"
            )));
        }
        Ok(None)
    }

    /// Read-only token: commands whose `COMMAND INFO` flags include `readonly` (for container
    /// commands such as `OBJECT ENCODING`, the subcommand's flags), minus SCAN and KEYS; PING and
    /// ECHO are allowed too.
    fn readonly_allowed(&self, cmd: &Command) -> Result<bool, Response> {
        let name = commands::name(cmd).to_ascii_lowercase();
        match name.as_str() {
            "scan" | "keys" => return Ok(false),
            "ping" | "echo" => return Ok(true),
            _ if name.contains('|') || name.is_empty() => return Ok(false),
            _ => {}
        }
        let cached = self
            .flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)
            .cloned();
        let flags = match cached {
            Some(flags) => flags,
            None => {
                let info = self.with_conn(|c| {
                    c.call(vec![
                        b"COMMAND".to_vec(),
                        b"INFO".to_vec(),
                        name.as_bytes().to_vec(),
                    ])
                })?;
                let flags = parse_command_info(&info);
                let mut cache = self.flags.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.len() < MAX_CACHED_COMMANDS {
                    cache.insert(name.clone(), flags.clone());
                }
                flags
            }
        };
        if flags.subcommands.is_empty() {
            return Ok(flags.readonly);
        }
        let sub = cmd
            .get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .unwrap_or_default();
        Ok(flags
            .subcommands
            .get(&format!("{name}|{sub}"))
            .copied()
            .unwrap_or(false))
    }

    fn run_single(&self, role: Role, cmd: Command, format: Format) -> Response {
        match self.check(role, &cmd) {
            Err(resp) => return resp,
            Ok(Some(msg)) => return Response::error(400, &msg),
            Ok(None) => {}
        }
        let reply = match self.with_conn(|c| c.call(cmd.clone())) {
            Ok(reply) => reply,
            Err(resp) => return resp,
        };
        let status = if matches!(reply, Reply::Error(_)) {
            400
        } else {
            200
        };
        if format.resp2 {
            let mut raw = Vec::new();
            reply.write_resp(&mut raw);
            return Response::new(status, "application/octet-stream", raw);
        }
        match reply.as_error() {
            Some(msg) => Response::error(400, &msg),
            None => Response::json(
                200,
                &json!({ "result": to_json(&reply, format.base64, true) }),
            ),
        }
    }

    /// Commands run in order on one connection (RESP pipelining), not atomically; refused
    /// commands get their error in their slot. Always 200 once the body parsed.
    fn run_pipeline(&self, role: Role, cmds: Vec<Command>, format: Format) -> Response {
        let mut slots: Vec<Option<Reply>> = Vec::with_capacity(cmds.len());
        let mut forward = Vec::new();
        for cmd in cmds {
            match self.check(role, &cmd) {
                Err(resp) => return resp,
                Ok(Some(msg)) => slots.push(Some(Reply::Error(msg.into_bytes()))),
                Ok(None) => {
                    slots.push(None);
                    forward.push(cmd);
                }
            }
        }
        let replies = match self.with_conn(|c| c.call_many(&forward)) {
            Ok(replies) => replies,
            Err(resp) => return resp,
        };
        let mut replies = replies.into_iter();
        let results: Vec<Reply> = slots
            .into_iter()
            .map(|slot| slot.or_else(|| replies.next()).unwrap_or(Reply::NilBulk))
            .collect();
        if format.resp2 {
            let mut raw = Vec::new();
            for reply in &results {
                reply.write_resp(&mut raw);
            }
            return Response::new(200, "application/octet-stream", raw);
        }
        let entries: Vec<Value> = results.iter().map(|r| entry(r, format.base64)).collect();
        Response::json(200, &Value::Array(entries))
    }

    /// MULTI, the commands, EXEC on one exclusively borrowed connection. A refused command or a
    /// queue-time error (EXECABORT) fails the whole request with 400; run-time errors fill their
    /// slot. Always JSON (`Upstash-Response-Format` does not apply).
    fn run_multi(&self, role: Role, cmds: Vec<Command>, format: Format) -> Response {
        for cmd in &cmds {
            match self.check(role, cmd) {
                Err(resp) => return resp,
                Ok(Some(msg)) => return Response::error(400, &msg),
                Ok(None) => {}
            }
        }
        let n = cmds.len();
        let mut all = Vec::with_capacity(n + 2);
        all.push(vec![b"MULTI".to_vec()]);
        all.extend(cmds);
        all.push(vec![b"EXEC".to_vec()]);
        let replies = match self.with_conn(|c| c.call_many(&all)) {
            Ok(replies) => replies,
            Err(resp) => return resp,
        };
        if let Some(msg) = replies.first().and_then(Reply::as_error) {
            return Response::error(400, &msg);
        }
        let queue_error = replies[1..=n].iter().find_map(Reply::as_error);
        match &replies[n + 1] {
            Reply::Array(items) => {
                let entries: Vec<Value> = items.iter().map(|r| entry(r, format.base64)).collect();
                Response::json(200, &Value::Array(entries))
            }
            Reply::Error(e) => {
                let exec = String::from_utf8_lossy(e);
                let msg = match queue_error {
                    Some(cause) => format!("{}: {cause}", exec.trim_end_matches('.')),
                    None => exec.into_owned(),
                };
                Response::error(400, &msg)
            }
            _ => Response::error(400, "ERR transaction aborted"),
        }
    }
}

/// Command names for the log: the first few, then a count.
fn names(cmds: &[Command]) -> String {
    const SHOWN: usize = 8;
    let mut out: Vec<String> = cmds.iter().take(SHOWN).map(commands::name).collect();
    if cmds.len() > SHOWN {
        out.push(format!("+{} more", cmds.len() - SHOWN));
    }
    out.join(" ")
}

fn request_format(req: &Request) -> Result<Format, String> {
    let base64 = req
        .header("upstash-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    let resp2 = match req.header("upstash-response-format") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("json") => false,
        Some(v) if v.eq_ignore_ascii_case("resp2") => true,
        Some(_) => return Err("ERR Upstash-Response-Format must be json or resp2".into()),
    };
    if resp2 && base64 {
        return Err(
            "ERR Upstash-Response-Format: resp2 cannot be combined with Upstash-Encoding: base64"
                .into(),
        );
    }
    Ok(Format { base64, resp2 })
}

fn backend_error(e: io::Error) -> Response {
    Response::error(502, &format!("ERR upstash-bridge: Redis unavailable: {e}"))
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// One pipeline or transaction slot: `{"result": ...}` or `{"error": "..."}`.
fn entry(reply: &Reply, base64: bool) -> Value {
    match reply.as_error() {
        Some(msg) => json!({ "error": msg }),
        None => json!({ "result": to_json(reply, base64, true) }),
    }
}

/// RESP2 → JSON. Plain mode: strings as lossy UTF-8 (invalid bytes become U+FFFD). Base64 mode:
/// every string base64-encoded except a top-level `+OK` status. Integers stay numbers, nils
/// become null, arrays recurse. An error nested in an array becomes its message as a string.
fn to_json(reply: &Reply, base64: bool, top: bool) -> Value {
    let string = |bytes: &[u8]| -> Value {
        if base64 {
            Value::String(BASE64.encode(bytes))
        } else {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
    };
    match reply {
        Reply::Status(s) if top && s == b"OK" => Value::String("OK".into()),
        Reply::Status(b) | Reply::Bulk(b) | Reply::Error(b) => string(b),
        Reply::Int(n) => Value::from(*n),
        Reply::NilBulk | Reply::NilArray => Value::Null,
        Reply::Array(items) => {
            Value::Array(items.iter().map(|r| to_json(r, base64, false)).collect())
        }
    }
}

/// Reads `readonly` flags from a `COMMAND INFO name` reply (Redis 7 layout: index 2 holds the
/// flags, index 9 the subcommands in the same layout). Unknown commands are not read-only.
fn parse_command_info(info: &Reply) -> CommandFlags {
    fn readonly(entry: &[Reply]) -> bool {
        matches!(entry.get(2), Some(Reply::Array(flags))
            if flags.iter().any(|f| matches!(f, Reply::Status(s) | Reply::Bulk(s) if s == b"readonly")))
    }
    let mut flags = CommandFlags::default();
    let Reply::Array(entries) = info else {
        return flags;
    };
    let Some(Reply::Array(entry)) = entries.first() else {
        return flags;
    };
    flags.readonly = readonly(entry);
    if let Some(Reply::Array(subs)) = entry.get(9) {
        for sub in subs {
            if let Reply::Array(sub) = sub {
                if let Some(Reply::Bulk(name)) = sub.first() {
                    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                    flags.subcommands.insert(name, readonly(sub));
                }
            }
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn maps_replies_to_json() {
        let r = Reply::Array(vec![
            Reply::Int(1),
            bulk("a"),
            Reply::Array(vec![Reply::Int(2), Reply::NilBulk, bulk("b")]),
        ]);
        assert_eq!(to_json(&r, false, true), json!([1, "a", [2, null, "b"]]));
        assert_eq!(
            to_json(&Reply::Bulk(vec![0x80]), false, true),
            json!("\u{fffd}")
        );
        assert_eq!(to_json(&Reply::Bulk(vec![0x80]), true, true), json!("gA=="));
        assert_eq!(
            to_json(&Reply::Status(b"OK".to_vec()), true, true),
            json!("OK")
        );
        assert_eq!(
            to_json(&Reply::Status(b"PONG".to_vec()), true, true),
            json!("UE9ORw==")
        );
        // A bulk "OK" (a stored value) and a nested status "OK" are encoded.
        assert_eq!(to_json(&bulk("OK"), true, true), json!("T0s="));
        let nested = Reply::Array(vec![Reply::Status(b"OK".to_vec())]);
        assert_eq!(to_json(&nested, true, true), json!(["T0s="]));
        let with_error = Reply::Array(vec![Reply::Error(b"ERR x".to_vec())]);
        assert_eq!(to_json(&with_error, false, true), json!(["ERR x"]));
        assert_eq!(to_json(&Reply::NilArray, true, true), Value::Null);
    }

    #[test]
    fn reads_command_info_flags() {
        let flag = |s: &str| Reply::Status(s.as_bytes().to_vec());
        let sub = |name: &str, f: &str| {
            Reply::Array(vec![bulk(name), Reply::Int(3), Reply::Array(vec![flag(f)])])
        };
        let info = Reply::Array(vec![Reply::Array(vec![
            bulk("object"),
            Reply::Int(-2),
            Reply::Array(vec![]),
            Reply::Int(0),
            Reply::Int(0),
            Reply::Int(0),
            Reply::Array(vec![]),
            Reply::Array(vec![]),
            Reply::Array(vec![]),
            Reply::Array(vec![
                sub("object|encoding", "readonly"),
                sub("object|help", "loading"),
            ]),
        ])]);
        let flags = parse_command_info(&info);
        assert!(!flags.readonly);
        assert_eq!(flags.subcommands.get("object|encoding"), Some(&true));
        assert_eq!(flags.subcommands.get("object|help"), Some(&false));
        assert!(!parse_command_info(&Reply::Array(vec![Reply::NilArray])).readonly);
    }
}
