//! The shared tier against the upstash-bridge over a real redis-server (both started here):
//! round trips per cache operation, and pattern deletion of 100,000 keys compared with a native
//! SCAN + UNLINK loop over RESP on the same redis-server, in one process run.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::Instant;

use cachette::cache::{Removal, TieredCache};
use cachette::clock::SystemClock;
use cachette::options::{Options, UpstashOptions};
use cachette::upstash::Client;
use support::{block_on, BlockingTransport, Text, Upstash, TOKEN};

const KEYS: usize = 100_000;
const ROUNDS: usize = 3;

/// A minimal RESP2 client: the native baseline.
struct Resp {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

#[derive(Debug)]
enum Value {
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Value>),
}

impl Resp {
    fn connect(port: u16) -> Resp {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        Resp {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.w.write_all(out.as_bytes()).unwrap();
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let (kind, rest) = line.trim_end().split_at(1);
        match kind {
            ":" => Value::Int(rest.parse().unwrap()),
            "+" => Value::Bulk(Some(rest.to_owned())),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Value::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                std::io::Read::read_exact(&mut self.r, &mut buf).unwrap();
                buf.truncate(n as usize);
                Value::Bulk(Some(String::from_utf8(buf).unwrap()))
            }
            "*" => Value::Array(
                (0..rest.parse::<usize>().unwrap())
                    .map(|_| self.read())
                    .collect(),
            ),
            other => panic!("RESP {other}{rest}"),
        }
    }

    fn call(&mut self, args: &[&str]) -> Value {
        self.send(args);
        self.read()
    }

    /// SCAN MATCH COUNT 1000 + UNLINK, one page at a time: the usual native loop.
    fn delete_matching(&mut self, pattern: &str) -> u64 {
        let (mut cursor, mut removed) = ("0".to_owned(), 0u64);
        loop {
            let Value::Array(mut page) =
                self.call(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"])
            else {
                panic!("SCAN")
            };
            let Some(Value::Array(keys)) = page.pop() else {
                panic!("keys")
            };
            let Some(Value::Bulk(Some(next))) = page.pop() else {
                panic!("cursor")
            };
            let keys: Vec<String> = keys
                .into_iter()
                .map(|k| match k {
                    Value::Bulk(Some(k)) => k,
                    _ => panic!("key"),
                })
                .collect();
            if !keys.is_empty() {
                let mut args = vec!["UNLINK"];
                args.extend(keys.iter().map(String::as_str));
                if let Value::Int(n) = self.call(&args) {
                    removed += n as u64;
                }
            }
            if next == "0" {
                return removed;
            }
            cursor = next;
        }
    }

    fn fill(&mut self, prefix: &str) {
        for chunk in 0..KEYS / 1000 {
            let keys: Vec<String> = (0..1000).map(|i| format!("{prefix}:{chunk}:{i}")).collect();
            let mut args = vec!["MSET"];
            for k in &keys {
                args.push(k);
                args.push("x");
            }
            self.call(&args);
        }
    }
}

fn main() {
    let up = Upstash::start();
    let client = || {
        let mut o = UpstashOptions::new(up.url.clone(), TOKEN);
        o.timeout_ms = 30_000;
        Client::new(&o, BlockingTransport).unwrap()
    };
    let mut resp = Resp::connect(up.redis_port);

    // Round trips per operation of the two-tier cache.
    let mut options = Options::default();
    let mut u = UpstashOptions::new(up.url.clone(), TOKEN);
    u.timeout_ms = 30_000;
    options.upstash = Some(u);
    let cache = TieredCache::new(&options, BlockingTransport, Text, Rc::new(SystemClock)).unwrap();
    let round_trips = || cache.client().map_or(0, |c| c.round_trips());
    let trips = |f: &dyn Fn()| {
        let before = round_trips();
        f();
        round_trips() - before
    };
    println!("round trips per operation (Upstash REST, through TieredCache):");
    let rows: Vec<(&str, u64)> = vec![
        (
            "set",
            trips(&|| block_on(cache.set("v1:ns:a", "\"x\"".into(), 0, None)).unwrap()),
        ),
        (
            "get (hit)",
            trips(&|| assert!(block_on(cache.get("v1:ns:a")).unwrap().is_some())),
        ),
        (
            "get (miss)",
            trips(&|| assert!(block_on(cache.get("v1:ns:zz")).unwrap().is_none())),
        ),
        (
            "has",
            trips(&|| assert!(block_on(cache.contains("v1:ns:a")).unwrap())),
        ),
        (
            "delete",
            trips(&|| assert!(block_on(cache.delete("v1:ns:a")).unwrap())),
        ),
        (
            "presence of 1,000 keys (warm)",
            trips(&|| {
                let keys: Vec<String> = (0..1000).map(|i| format!("v1:ns:{i}")).collect();
                block_on(cache.present(&keys)).unwrap();
            }),
        ),
        (
            "invalidateNamespace (empty)",
            trips(&|| {
                block_on(cache.remove_by(Removal::Namespace, "ns")).unwrap();
            }),
        ),
        (
            "stats (INFO + DBSIZE)",
            trips(&|| {
                block_on(cache.snapshot(false));
            }),
        ),
        (
            "health (PING)",
            trips(&|| {
                block_on(cache.health());
            }),
        ),
    ];
    for (op, n) in rows {
        println!("  {op:<34} {n}");
    }

    // Pattern deletion of 100k keys, alternating contenders.
    let c = client();
    let (mut ours, mut native) = (Vec::new(), Vec::new());
    let mut pages = 0;
    for round in 0..ROUNDS {
        resp.call(&["FLUSHDB"]);
        resp.fill("big");
        let before = c.round_trips();
        let t = Instant::now();
        assert_eq!(block_on(c.delete_matching("big:*")).unwrap(), KEYS as u64);
        ours.push(t.elapsed().as_secs_f64());
        pages = c.round_trips() - before;

        resp.fill("big");
        let t = Instant::now();
        assert_eq!(resp.delete_matching("big:*"), KEYS as u64);
        native.push(t.elapsed().as_secs_f64());
        println!(
            "round {}: REST {:.3} s, RESP {:.3} s",
            round + 1,
            ours[round],
            native[round]
        );
    }
    ours.sort_by(f64::total_cmp);
    native.sort_by(f64::total_cmp);
    let (o, n) = (ours[ROUNDS / 2], native[ROUNDS / 2]);
    println!("deletePattern of {KEYS} keys (median of {ROUNDS}):");
    println!(
        "  Upstash REST via upstash-bridge  {:>9.0} keys/s  ({pages} HTTP round trips)",
        KEYS as f64 / o
    );
    println!(
        "  native SCAN+UNLINK over RESP     {:>9.0} keys/s",
        KEYS as f64 / n
    );
    println!(
        "  ratio REST / RESP                {:.2}x  (target >= 0.5x)",
        n / o
    );
}
