//! Test support for the shared tier: a real redis-server and the `upstash-bridge` in front of it,
//! both on free loopback ports and stopped on drop, plus a blocking HTTP transport and a tiny
//! executor (the transport answers at once, so every future is ready when polled).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use cachette::cache::Codec;
use cachette::upstash::{HttpRequest, HttpResponse, LocalFuture, Transport, TransportError};

pub const TOKEN: &str = "test-token-4b1d-secret";

/// Runs a future whose every await is already resolved.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future never completed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `upstash-bridge` binary: `CACHETTE_BRIDGE_BIN`, or the workspace's debug build, built
/// here (once per test binary, through the `cargo` running the tests) when it is missing, so
/// that a plain `cargo test` works on a fresh clone.
fn bridge_binary() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Ok(p) = std::env::var("CACHETTE_BRIDGE_BIN") {
        return p.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("upstash-bridge");
    BUILT
        .get_or_init(|| {
            if bin.exists() {
                return Ok(bin.clone());
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(&cargo)
                .args(["build", "-p", "upstash-bridge", "--manifest-path"])
                .arg(root.join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .status()
                .map_err(|e| format!("could not run {cargo}: {e}"))?;
            if status.success() && bin.exists() {
                Ok(bin.clone())
            } else {
                Err(format!("`cargo build -p upstash-bridge` failed ({status})"))
            }
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// redis-server plus the bridge.
pub struct Upstash {
    redis: Child,
    bridge: Child,
    pub url: String,
    pub redis_port: u16,
}

impl Upstash {
    pub fn start() -> Upstash {
        let redis_port = free_port();
        let redis = Command::new("redis-server")
            .args([
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-server could not start ({e}): install it (Debian/Ubuntu: `sudo apt-get \
                     install redis-server`; macOS: `brew install redis`), or run `./run setup`"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", redis_port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut bridge = Command::new(bridge_binary())
            .args([
                "--listen",
                "127.0.0.1:0",
                "--redis-url",
                &format!("redis://127.0.0.1:{redis_port}"),
                "--token",
                TOKEN,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start upstash-bridge");
        let mut line = String::new();
        BufReader::new(bridge.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected bridge banner: {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        let up = Upstash {
            redis,
            bridge,
            url,
            redis_port,
        };
        up.faults(r#"{"mode":"none"}"#);
        // The bridge answers before its first Redis connection is up: wait for a real PONG.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = up.post(r#"["PING"]"#);
            if r.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the bridge never reached Redis: {}",
                r.body
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        up
    }

    /// Sets the bridge's fault injection (`{"mode": ...}`).
    pub fn faults(&self, json: &str) {
        let r = http(
            &self.url,
            "/__bridge/faults",
            &[("Authorization", format!("Bearer {TOKEN}"))],
            json,
            5_000,
        )
        .expect("fault control");
        assert_eq!(
            r.status, 200,
            "fault control answered {}: {}",
            r.status, r.body
        );
    }

    fn post(&self, command: &str) -> HttpResponse {
        http(
            &self.url,
            "",
            &[("Authorization", format!("Bearer {TOKEN}"))],
            command,
            5_000,
        )
        .unwrap()
    }

    /// One command straight to the bridge (for set-up and checks); it must succeed.
    pub fn raw(&self, command: &str) -> String {
        let r = self.post(command);
        assert_eq!(r.status, 200, "{command} answered {}: {}", r.status, r.body);
        r.body
    }
}

impl Drop for Upstash {
    fn drop(&mut self) {
        let _ = self.bridge.kill();
        let _ = self.redis.kill();
        let _ = self.bridge.wait();
        let _ = self.redis.wait();
    }
}

/// A blocking HTTP/1.1 POST (one connection per request).
pub fn http(
    base: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
    timeout_ms: u32,
) -> Result<HttpResponse, TransportError> {
    let rest = base
        .strip_prefix("http://")
        .ok_or(TransportError::Failed("not http".into()))?;
    let (host, base_path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let addr = host
        .parse()
        .map_err(|_| TransportError::Failed(format!("bad host {host}")))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| TransportError::Failed(e.to_string()))?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    let target = format!("/{base_path}{path}").replace("//", "/");
    let mut req = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => TransportError::Timeout,
        _ => TransportError::Failed(e.to_string()),
    };
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| TransportError::Failed("connection closed without a response".into()))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| TransportError::Failed("bad status line".into()))?;
    let sync_token = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("upstash-sync-token"))
        .map(|(_, v)| v.trim().to_owned());
    Ok(HttpResponse {
        status,
        body: body.to_owned(),
        sync_token,
    })
}

/// [`http`] as a [`Transport`]; `sleep` blocks the thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlockingTransport;

impl Transport for BlockingTransport {
    fn send(&self, r: HttpRequest) -> LocalFuture<'_, Result<HttpResponse, TransportError>> {
        let (base, path) = match r.url.split_once("://").map(|(_, rest)| rest) {
            Some(rest) => match rest.find('/') {
                Some(i) => (
                    r.url[..r.url.len() - rest.len() + i].to_owned(),
                    rest[i..].to_owned(),
                ),
                None => (r.url.clone(), String::new()),
            },
            None => (r.url.clone(), String::new()),
        };
        let headers: Vec<(&str, String)> = r.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
        let out = http(&base, &path, &headers, &r.body, r.timeout_ms);
        Box::pin(std::future::ready(out))
    }

    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()> {
        std::thread::sleep(Duration::from_millis(u64::from(ms)));
        Box::pin(std::future::ready(()))
    }
    fn random(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.finish()
    }
}

/// Values that are their own JSON text.
pub struct Text;

impl Codec<String> for Text {
    fn encode(&self, v: &String) -> cachette::Result<String> {
        Ok(v.clone())
    }
    fn decode(&self, t: &str) -> cachette::Result<String> {
        Ok(t.to_owned())
    }
}
