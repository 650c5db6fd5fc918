//! Test support: a throwaway redis-server, the bridge binary, and a tiny HTTP/1.1 client.

#![allow(dead_code)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The standard token every test bridge uses.
pub const TOKEN: &str = "test-token-7b1d3c";
/// The read-only token (only where a test passes `--read-only-token`).
pub const RO_TOKEN: &str = "test-ro-token-9f2e";

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "upstash-bridge-test-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A free loopback port (free when asked; the caller retries if it gets taken meanwhile).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A redis-server child process with no persistence, killed on drop.
pub struct Redis {
    child: Child,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts redis-server on a free port.
    pub fn start() -> Redis {
        for _ in 0..5 {
            if let Some(redis) = Redis::try_start(free_port()) {
                return redis;
            }
        }
        panic!("redis-server did not start (is it installed? `./run test_bridge` installs it)");
    }

    /// Starts redis-server on `port`, or `None` if it exits (port taken) or never answers.
    pub fn try_start(port: u16) -> Option<Redis> {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir = scratch_dir();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut redis = Redis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = redis.child.try_wait() {
                return None;
            }
            if redis.ping() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The bridge binary as a child process, killed on drop.
pub struct Bridge {
    child: Child,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    _stdout: BufReader<ChildStdout>,
    stderr_path: PathBuf,
    dir: PathBuf,
}

impl Bridge {
    /// Starts the bridge on a free port in front of `redis_url`, waiting for the listening line.
    pub fn start(redis_url: &str, extra: &[&str]) -> Bridge {
        let dir = scratch_dir();
        let stderr_path = dir.join("bridge.stderr");
        let stderr = File::create(&stderr_path).expect("create the stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_upstash-bridge"))
            .args(["--listen", "127.0.0.1:0", "--redis-url", redis_url])
            .args(["--token", TOKEN])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn upstash-bridge");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the listening line");
        let port = line
            .trim()
            .strip_prefix("upstash-bridge listening on http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("unexpected first line {line:?}; stderr: {err}")
            });
        Bridge {
            child,
            port,
            _stdout: stdout,
            stderr_path,
            dir,
        }
    }

    /// Waits until `/__bridge/health` answers 200.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = self.req("GET", "/__bridge/health").try_send() {
                if r.status == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "bridge never became healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A request builder (no token).
    pub fn req(&self, method: &str, target: &str) -> Req {
        Req {
            port: self.port,
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Stops the bridge and returns everything it wrote to stderr.
    pub fn stop_and_read_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// redis-server plus a bridge in front of it. The bridge is dropped first.
pub struct Env {
    /// The bridge.
    pub bridge: Bridge,
    /// Its Redis.
    pub redis: Redis,
}

impl Env {
    /// A fresh Redis and a healthy bridge started with `extra` arguments.
    pub fn start(extra: &[&str]) -> Env {
        let redis = Redis::start();
        let bridge = Bridge::start(&redis.url(), extra);
        bridge.wait_healthy();
        Env { bridge, redis }
    }

    /// `POST /` with the standard token and a JSON body.
    pub fn cmd(&self, json: &str) -> Reply {
        self.post("/", json).send()
    }

    /// As [`Env::cmd`], with `Upstash-Encoding: base64`.
    pub fn cmd64(&self, json: &str) -> Reply {
        self.post("/", json)
            .header("Upstash-Encoding", "base64")
            .send()
    }

    /// `POST path` with the standard token and a JSON body.
    pub fn post(&self, path: &str, json: &str) -> Req {
        self.bridge
            .req("POST", path)
            .bearer(TOKEN)
            .header("Content-Type", "application/json")
            .body(json.as_bytes())
    }

    /// Sets a fault (`POST /__bridge/faults`) and checks it was accepted.
    pub fn fault(&self, json: &str) {
        let r = self.post("/__bridge/faults", json).send();
        assert_eq!(r.status, 200, "fault {json}: {}", r.text());
    }
}

/// One HTTP request being built.
pub struct Req {
    port: u16,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer token`.
    pub fn bearer(self, token: &str) -> Req {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Sets the body (sent with Content-Length).
    pub fn body(mut self, body: &[u8]) -> Req {
        self.body = body.to_vec();
        self
    }

    /// The request's bytes, with `Connection: close`.
    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            self.method, self.target
        );
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT") {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Sends on a new connection and reads the response.
    pub fn try_send(&self) -> io::Result<Reply> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut writer = stream.try_clone()?;
        writer.write_all(&self.to_bytes(true))?;
        read_response(&mut BufReader::new(stream), self.method == "HEAD")
    }

    /// As [`Req::try_send`], panicking on I/O errors.
    pub fn send(&self) -> Reply {
        self.try_send()
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.target))
    }
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `result` of a 200 reply (panics on anything else).
    pub fn result(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "expected 200, got {}: {}",
            self.status,
            self.text()
        );
        let v = self.json();
        let obj = v.as_object().expect("a JSON object");
        assert!(obj.contains_key("result"), "no result key: {v}");
        v["result"].clone()
    }

    /// The `error` string of a reply with `status` (panics on anything else).
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error string: {}", self.text()))
            .to_string()
    }
}

/// Reads one response (Content-Length bodies; the bridge always sends one).
pub fn read_response<R: BufRead>(r: &mut R, head_only: bool) -> io::Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("status line {line:?}"))
        })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated head",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap_or((l, ""));
        headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; if head_only { 0 } else { len }];
    r.read_exact(&mut body)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}
