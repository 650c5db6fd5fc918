//! The accept loop (a thread per connection, capped) and the keep-alive request loop.

use std::io::{BufReader, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{Action, App};
use crate::http::{self, Incoming, Response};

/// How long an idle keep-alive connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the rest of an oversized body is read and discarded before closing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Server options.
pub struct Options {
    /// Most concurrent connections; more are answered 503 and closed.
    pub max_connections: usize,
    /// One log line per request on stderr.
    pub verbose: bool,
}

struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves connections forever.
pub fn serve(app: Arc<App>, listener: TcpListener, opts: Options) {
    let active = Arc::new(AtomicUsize::new(0));
    let verbose = opts.verbose;
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("upstash-bridge: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= opts.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let resp = Response::error(503, "ERR upstash-bridge: too many connections").closing();
            let _ = http::write_response(&mut stream, &resp, &app.common_headers(), false);
            if verbose {
                eprintln!("upstash-bridge: connection refused: too many connections");
            }
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        let app = Arc::clone(&app);
        let spawned = std::thread::Builder::new()
            .name("upstash-bridge-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve_connection(&app, stream, verbose);
            });
        if let Err(e) = spawned {
            eprintln!("upstash-bridge: cannot start a connection thread: {e}");
        }
    }
}

fn serve_connection(app: &App, stream: TcpStream, verbose: bool) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let log = |start: Instant, what: &str, status: &str, note: &str| {
        if verbose {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            eprintln!("upstash-bridge: {peer} {what} -> {status} {ms:.1}ms {note}");
        }
    };
    loop {
        let _ = reader.get_ref().set_read_timeout(Some(IDLE_TIMEOUT));
        let start = Instant::now();
        match http::read_request(&mut reader, &mut writer, app.max_body) {
            Incoming::Closed => return,
            Incoming::Reject(resp) => {
                let resp = resp.closing();
                let _ = http::write_response(&mut writer, &resp, &app.common_headers(), false);
                log(start, "(unreadable request)", &resp.status.to_string(), "");
                return;
            }
            Incoming::TooLarge {
                announced,
                expects_continue,
            } => {
                let resp = app.too_large().closing();
                let _ = http::write_response(&mut writer, &resp, &app.common_headers(), false);
                log(
                    start,
                    "(request)",
                    "413",
                    &format!("body of {announced} bytes"),
                );
                let _ = writer.shutdown(Shutdown::Write);
                if !expects_continue {
                    drain(&mut reader, announced);
                }
                return;
            }
            Incoming::Request(req) => {
                let start = Instant::now();
                let what = format!("{} {}", req.method, req.path());
                let outcome = app.handle(&req);
                match outcome.action {
                    Action::Reset => {
                        log(start, &what, "reset", &outcome.note);
                        let _ = writer.shutdown(Shutdown::Both);
                        return;
                    }
                    Action::Respond(mut resp) => {
                        if !req.keep_alive() {
                            resp.close = true;
                        }
                        let head_only = req.method == "HEAD";
                        let written = http::write_response(
                            &mut writer,
                            &resp,
                            &app.common_headers(),
                            head_only,
                        );
                        log(start, &what, &resp.status.to_string(), &outcome.note);
                        if written.is_err() || resp.close {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Reads and discards up to `announced` bytes, so closing does not reset the connection before
/// the client has read the 413.
fn drain(reader: &mut BufReader<TcpStream>, announced: u64) {
    let _ = reader.get_ref().set_read_timeout(Some(DRAIN_TIMEOUT));
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut left = announced;
    let mut buf = [0u8; 64 * 1024];
    while left > 0 && Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}
