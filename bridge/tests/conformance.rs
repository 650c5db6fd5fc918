//! The bridge against a real redis-server: the conformance cases of
//! `upstash-rest-protocol.md` §14 (1–44), then read-only tokens, body limits, CORS, fault
//! injection, blocking commands, HTTP details and log hygiene.
//!
//! Each test starts its own redis-server (free port, no persistence) and bridge binary.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{read_response, Bridge, Env, Redis, RO_TOKEN, TOKEN};

/// Runs numbered cases, reporting each, and fails at the end with the list of failed numbers.
struct Cases {
    failed: Vec<u32>,
    passed: Vec<u32>,
}

impl Cases {
    fn new() -> Cases {
        Cases {
            failed: Vec::new(),
            passed: Vec::new(),
        }
    }

    fn case(&mut self, n: u32, f: impl FnOnce()) {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => {
                eprintln!("conformance case {n}: pass");
                self.passed.push(n);
            }
            Err(_) => {
                eprintln!("conformance case {n}: FAIL");
                self.failed.push(n);
            }
        }
    }

    fn finish(self) {
        eprintln!("passed: {:?}", self.passed);
        assert!(self.failed.is_empty(), "failed cases: {:?}", self.failed);
    }
}

fn starts_with_err(e: &str) {
    assert!(e.starts_with("ERR"), "{e}");
}

#[test]
fn conformance_cases_1_to_44() {
    let env = Env::start(&[]);
    assert_eq!(env.cmd(r#"["SET","k","v"]"#).result(), json!("OK"));
    assert_eq!(env.cmd(r#"["SETBIT","bin",0,1]"#).result(), json!(0));
    let mut cases = Cases::new();
    let b = &env.bridge;

    cases.case(1, || {
        let r = b.req("POST", "/").body(br#"["PING"]"#).send();
        let e = r.error(401);
        assert!(e.starts_with("WRONGPASS"), "{e}");
    });
    cases.case(2, || {
        let r = b
            .req("POST", "/")
            .bearer("nope")
            .body(br#"["PING"]"#)
            .send();
        r.error(401);
    });
    cases.case(3, || {
        let r = b
            .req("POST", &format!("/?_token={TOKEN}"))
            .body(br#"["PING"]"#)
            .send();
        assert_eq!(r.result(), json!("PONG"));
    });
    cases.case(4, || {
        assert_eq!(env.cmd(r#"["SET","k","v","EX",60]"#).result(), json!("OK"));
        let ttl = env.cmd(r#"["TTL","k"]"#).result().as_i64().expect("int");
        assert!((59..=60).contains(&ttl), "{ttl}");
    });
    cases.case(5, || {
        assert_eq!(env.cmd(r#"["GET","k"]"#).result(), json!("v"))
    });
    cases.case(6, || {
        assert_eq!(env.cmd(r#"["GET","missing"]"#).result(), Value::Null)
    });
    cases.case(7, || {
        assert_eq!(env.cmd(r#"["INCR","ctr"]"#).result(), json!(1));
        assert_eq!(env.cmd(r#"["INCR","ctr"]"#).result(), json!(2));
    });
    cases.case(8, || {
        assert_eq!(env.cmd(r#"["SET","n",42]"#).result(), json!("OK"));
        assert_eq!(env.cmd(r#"["GET","n"]"#).result(), json!("42"));
    });
    cases.case(9, || {
        assert_eq!(
            env.cmd(r#"["MGET","k","missing"]"#).result(),
            json!(["v", null])
        );
    });
    cases.case(10, || {
        assert_eq!(env.cmd(r#"["ZADD","z",1.5,"m"]"#).result(), json!(1));
        assert_eq!(env.cmd(r#"["ZSCORE","z","m"]"#).result(), json!("1.5"));
        let r = env.cmd(r#"["ZRANGE","z",0,-1,"WITHSCORES"]"#);
        assert_eq!(r.result(), json!(["m", "1.5"]));
    });
    cases.case(11, || {
        assert_eq!(env.cmd(r#"["HSET","h","f1","v1"]"#).result(), json!(1));
        assert_eq!(env.cmd(r#"["HGETALL","h"]"#).result(), json!(["f1", "v1"]));
        assert_eq!(env.cmd(r#"["HGETALL","nohash"]"#).result(), json!([]));
    });
    cases.case(12, || {
        let r = env.cmd(r#"["EVAL","return {1,'a',{2,false,'b'}}","0"]"#);
        assert_eq!(r.result(), json!([1, "a", [2, null, "b"]]));
    });
    cases.case(13, || {
        assert_eq!(env.cmd(r#"["EVAL","return true","0"]"#).result(), json!(1));
        assert_eq!(env.cmd(r#"["EVAL","return 3.99","0"]"#).result(), json!(3));
    });
    cases.case(14, || {
        let mut cursor = "0".to_string();
        let mut keys = Vec::new();
        loop {
            let body = json!(["SCAN", cursor, "MATCH", "k*", "COUNT", "100"]).to_string();
            let r = env.cmd(&body).result();
            let page = r.as_array().expect("[cursor, keys]");
            assert_eq!(page.len(), 2);
            cursor = page[0].as_str().expect("string cursor").to_string();
            keys.extend(page[1].as_array().expect("keys").iter().cloned());
            if cursor == "0" {
                break;
            }
        }
        assert!(keys.contains(&json!("k")), "{keys:?}");
    });
    cases.case(15, || {
        assert_eq!(env.cmd(r#"["TTL","missing"]"#).result(), json!(-2));
        assert_eq!(env.cmd(r#"["PEXPIRE","missing",100]"#).result(), json!(0));
        assert_eq!(env.cmd(r#"["SET","p","1"]"#).result(), json!("OK"));
        assert_eq!(env.cmd(r#"["TTL","p"]"#).result(), json!(-1));
    });
    cases.case(16, || {
        assert_eq!(
            env.cmd(r#"["MEMORY","USAGE","missing"]"#).result(),
            Value::Null
        );
        let used = env.cmd(r#"["MEMORY","USAGE","k"]"#).result();
        assert!(used.as_i64().expect("int") > 0);
    });
    cases.case(17, || {
        assert!(env.cmd(r#"["DBSIZE"]"#).result().is_i64());
        let time = env.cmd(r#"["TIME"]"#).result();
        let parts = time.as_array().expect("array");
        assert_eq!(parts.len(), 2);
        for p in parts {
            let s = p.as_str().expect("string");
            assert!(
                !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()),
                "{s}"
            );
        }
        let info = env.cmd(r#"["INFO","server"]"#).result();
        assert!(info.as_str().expect("string").contains("\r\n"));
    });
    cases.case(18, || {
        let e = env.cmd(r#"["GET"]"#).error(400);
        assert_eq!(e, "ERR wrong number of arguments for 'get' command");
    });
    cases.case(19, || {
        let e = env.cmd(r#"["LPUSH","k","x"]"#).error(400);
        assert_eq!(
            e,
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
    });
    cases.case(20, || {
        starts_with_err(&env.cmd(r#"["NOTACMD","a"]"#).error(400))
    });
    cases.case(21, || {
        let e = env
            .cmd(r#"["EVALSHA","0000000000000000000000000000000000000000","0"]"#)
            .error(400);
        assert!(e.contains("NOSCRIPT"), "{e}");
    });
    cases.case(22, || {
        let e = env.cmd("hello").error(400);
        assert_eq!(e, "ERR failed to parse command");
    });
    cases.case(23, || {
        env.cmd(r#"{"cmd":"GET"}"#).error(400);
        env.cmd("[]").error(400);
    });
    cases.case(24, || {
        let start = Instant::now();
        starts_with_err(&env.cmd(r#"["BLPOP","q","5"]"#).error(400));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    });
    cases.case(25, || {
        starts_with_err(&env.cmd(r#"["SUBSCRIBE","ch"]"#).error(400));
        starts_with_err(&env.cmd(r#"["MULTI"]"#).error(400));
    });
    cases.case(26, || {
        let r = b.req("DELETE", "/").bearer(TOKEN).send();
        assert_eq!(r.status, 405);
    });
    cases.case(27, || {
        assert_eq!(env.cmd(r#"["GET","bin"]"#).result(), json!("\u{fffd}"))
    });
    cases.case(28, || {
        assert_eq!(env.cmd64(r#"["GET","bin"]"#).result(), json!("gA=="))
    });
    cases.case(29, || {
        assert_eq!(env.cmd64(r#"["SET","k2","v"]"#).result(), json!("OK"));
        assert_eq!(env.cmd64(r#"["PING"]"#).result(), json!("UE9ORw=="));
        assert_eq!(env.cmd64(r#"["INCR","c2"]"#).result(), json!(1));
        assert_eq!(env.cmd64(r#"["GET","missing"]"#).result(), Value::Null);
    });
    cases.case(30, || {
        let r = env.cmd64(r#"["MGET","k","missing"]"#);
        assert_eq!(r.result(), json!(["dg==", null]));
        let r = env.cmd64(r#"["SCAN","0","MATCH","k","COUNT","1000"]"#);
        assert_eq!(r.result(), json!(["MA==", ["aw=="]]));
    });
    cases.case(31, || {
        let e = env.cmd64(r#"["GET"]"#).error(400);
        assert_eq!(e, "ERR wrong number of arguments for 'get' command");
    });
    cases.case(32, || {
        assert_eq!(env.cmd(r#"["SET","e",""]"#).result(), json!("OK"));
        assert_eq!(env.cmd(r#"["GET","e"]"#).result(), json!(""));
        assert_eq!(env.cmd64(r#"["GET","e"]"#).result(), json!(""));
    });
    cases.case(33, || {
        assert_eq!(env.cmd(r#"["SET","u","😀"]"#).result(), json!("OK"));
        assert_eq!(env.cmd(r#"["GET","u"]"#).result(), json!("😀"));
        assert_eq!(env.cmd64(r#"["GET","u"]"#).result(), json!("8J+YgA=="));
    });
    cases.case(34, || {
        let r = env
            .post(
                "/pipeline",
                r#"[["SET","a","1"],["LPUSH","a","x"],["GET","a"]]"#,
            )
            .send();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            json!([
                {"result": "OK"},
                {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
                {"result": "1"}
            ])
        );
    });
    cases.case(35, || {
        let r = env
            .post(
                "/pipeline",
                r#"[["GET","k"],["INCR","c3"],["GET","missing"]]"#,
            )
            .header("Upstash-Encoding", "base64")
            .send();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            json!([{"result": "dg=="}, {"result": 1}, {"result": null}])
        );
    });
    cases.case(36, || {
        env.post("/pipeline", r#"["GET","k"]"#).send().error(400);
        env.post("/pipeline", "[]").send().error(400);
    });
    cases.case(37, || {
        let r = env
            .post("/multi-exec", r#"[["SET","t","1"],["INCR","t"]]"#)
            .send();
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!([{"result": "OK"}, {"result": 2}]));
    });
    cases.case(38, || {
        let r = env
            .post(
                "/multi-exec",
                r#"[["SET","w","1"],["LPUSH","w","x"],["GET","w"]]"#,
            )
            .send();
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v[0], json!({"result": "OK"}));
        assert!(v[1]["error"]
            .as_str()
            .expect("error")
            .starts_with("WRONGTYPE"));
        assert_eq!(v[2], json!({"result": "1"}));
        assert_eq!(v.as_array().map(Vec::len), Some(3));
    });
    cases.case(39, || {
        let e = env
            .post("/multi-exec", r#"[["SET","q"],["SET","q2","1"]]"#)
            .send()
            .error(400);
        assert!(e.starts_with("EXECABORT"), "{e}");
        assert_eq!(env.cmd(r#"["EXISTS","q2"]"#).result(), json!(0));
    });
    cases.case(40, || {
        let r = b.req("GET", "/set/pk/pv").bearer(TOKEN).send();
        assert_eq!(r.result(), json!("OK"));
        let r = b.req("GET", "/get/pk").bearer(TOKEN).send();
        assert_eq!(r.result(), json!("pv"));
    });
    cases.case(41, || {
        let r = b
            .req("POST", "/set/pb?EX=100")
            .bearer(TOKEN)
            .body(b"hello world")
            .send();
        assert_eq!(r.result(), json!("OK"));
        assert_eq!(env.cmd(r#"["GET","pb"]"#).result(), json!("hello world"));
        let ttl = env.cmd(r#"["TTL","pb"]"#).result().as_i64().expect("int");
        assert!((99..=100).contains(&ttl), "{ttl}");
    });
    cases.case(42, || {
        assert_eq!(env.cmd(r#"["SET","a/b","x"]"#).result(), json!("OK"));
        let r = b.req("GET", "/get/a%2Fb").bearer(TOKEN).send();
        assert_eq!(r.result(), json!("x"));
    });
    cases.case(43, || {
        let r = env.cmd(r#"["PING"]"#);
        assert!(!r.header("upstash-sync-token").unwrap_or("").is_empty());
        let r = env
            .post("/", r#"["GET","k"]"#)
            .header("upstash-sync-token", "")
            .send();
        assert_eq!(r.result(), json!("v"));
        assert!(r.header("upstash-sync-token").is_some());
    });
    cases.case(44, || {
        let r = env
            .post("/", r#"["GET","k"]"#)
            .header("Upstash-Response-Format", "resp2")
            .send();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"$1\r\nv\r\n");
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        env.post("/", r#"["GET","k"]"#)
            .header("Upstash-Response-Format", "resp2")
            .header("Upstash-Encoding", "base64")
            .send()
            .error(400);
    });
    cases.finish();
}

#[test]
fn read_only_token() {
    let env = Env::start(&["--read-only-token", RO_TOKEN]);
    env.cmd(r#"["SET","k","v"]"#).result();
    let ro = |json: &str| {
        env.bridge
            .req("POST", "/")
            .bearer(RO_TOKEN)
            .body(json.as_bytes())
            .send()
    };
    for allowed in [
        r#"["GET","k"]"#,
        r#"["MGET","k","x"]"#,
        r#"["PING"]"#,
        r#"["DBSIZE"]"#,
        r#"["OBJECT","ENCODING","k"]"#,
        r#"["EVAL_RO","return 1","0"]"#,
    ] {
        let r = ro(allowed);
        assert_eq!(r.status, 200, "{allowed}: {}", r.text());
    }
    for (refused, name) in [
        (r#"["SET","k","w"]"#, "set"),
        (r#"["DEL","k"]"#, "del"),
        (r#"["SCAN","0"]"#, "scan"),
        (r#"["KEYS","*"]"#, "keys"),
        (r#"["EVAL","return 1","0"]"#, "eval"),
        (r#"["CONFIG","SET","maxmemory","1"]"#, "config"),
        (r#"["FLUSHALL"]"#, "flushall"),
        (r#"["NOTACMD"]"#, "notacmd"),
    ] {
        let e = ro(refused).error(400);
        let want = format!("NOPERM this user has no permissions to run the '{name}' command");
        assert_eq!(e, want);
    }
    let r = env
        .bridge
        .req("POST", "/pipeline")
        .bearer(RO_TOKEN)
        .body(br#"[["GET","k"],["SET","k","w"]]"#)
        .send();
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v[0], json!({"result": "v"}));
    assert!(v[1]["error"].as_str().expect("error").starts_with("NOPERM"));
    let r = env
        .bridge
        .req("POST", "/multi-exec")
        .bearer(RO_TOKEN)
        .body(br#"[["GET","k"],["SET","k","w"]]"#)
        .send();
    assert!(r.error(400).starts_with("NOPERM"));
    let r = env
        .bridge
        .req("POST", "/multi-exec")
        .bearer(RO_TOKEN)
        .body(br#"[["GET","k"]]"#)
        .send();
    assert_eq!(r.json(), json!([{"result": "v"}]));
    let r = env
        .bridge
        .req("GET", &format!("/get/k?_token={RO_TOKEN}"))
        .send();
    assert_eq!(r.result(), json!("v"));
    let r = env
        .bridge
        .req("GET", &format!("/set/k/w?_token={RO_TOKEN}"))
        .send();
    assert!(r.error(400).starts_with("NOPERM"));
    // Nothing was written, and the read-only token cannot drive faults.
    assert_eq!(env.cmd(r#"["GET","k"]"#).result(), json!("v"));
    let r = env
        .bridge
        .req("GET", "/__bridge/faults")
        .bearer(RO_TOKEN)
        .send();
    assert_eq!(r.status, 401);
}

#[test]
fn max_body_size() {
    let env = Env::start(&["--max-body-bytes", "1024"]);
    let body_of = |len: usize| {
        let frame = r#"["SET","big",""]"#.len();
        format!(r#"["SET","big","{}"]"#, "x".repeat(len - frame))
    };
    let ok = body_of(1024);
    assert_eq!(ok.len(), 1024);
    assert_eq!(env.cmd(&ok).result(), json!("OK"));
    let r = env.cmd(&body_of(1025));
    assert_eq!(
        r.error(413),
        "ERR max request size exceeded. Limit: 1024 bytes"
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("upstash-sync-token").is_some());
    // Path form: the raw body counts the same way.
    let r = env
        .bridge
        .req("POST", "/set/big")
        .bearer(TOKEN)
        .body(&[b'y'; 2000])
        .send();
    assert_eq!(r.status, 413);
    // Expect: 100-continue gets the 413 before any body is sent.
    let mut s = TcpStream::connect(("127.0.0.1", env.bridge.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 5000000\r\nExpect: 100-continue\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write");
    let r = read_response(&mut BufReader::new(s), false).expect("response");
    assert_eq!(r.status, 413);
    // Expect: 100-continue within the limit gets 100 and then the answer.
    let mut s = TcpStream::connect(("127.0.0.1", env.bridge.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 8\r\nExpect: 100-continue\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    assert_eq!(read_response(&mut reader, false).expect("100").status, 100);
    s.write_all(br#"["PING"]"#).expect("write body");
    let r = read_response(&mut reader, false).expect("response");
    assert_eq!(r.result(), json!("PONG"));
    // The bridge still serves after all that.
    assert_eq!(env.cmd(r#"["GET","big"]"#).status, 200);
}

#[test]
fn default_max_body_is_10_mib() {
    let env = Env::start(&[]);
    let mut s = TcpStream::connect(("127.0.0.1", env.bridge.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let head = format!(
        "POST /pipeline HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 10485761\r\nExpect: 100-continue\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write");
    let r = read_response(&mut BufReader::new(s), false).expect("response");
    assert_eq!(
        r.error(413),
        "ERR max request size exceeded. Limit: 10485760 bytes"
    );
    // A real 10 MiB body is accepted.
    let value = "v".repeat(10 * 1024 * 1024 - 64);
    let body = json!([["SET", "large", value], ["STRLEN", "large"]]).to_string();
    assert!(body.len() <= 10 * 1024 * 1024);
    let r = env.post("/pipeline", &body).send();
    assert_eq!(r.json(), json!([{"result": "OK"}, {"result": value.len()}]));
}

#[test]
fn cors_preflight_and_headers() {
    let env = Env::start(&[]);
    let r = env
        .bridge
        .req("OPTIONS", "/pipeline")
        .header("Origin", "http://localhost:8080")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,upstash-encoding",
        )
        .send();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let allowed = r
        .header("access-control-allow-headers")
        .expect("allow headers")
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "upstash-encoding",
        "upstash-sync-token",
        "upstash-response-format",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    let methods = r
        .header("access-control-allow-methods")
        .expect("allow methods");
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    assert!(r.body.is_empty());
    let r = env.cmd(r#"["PING"]"#);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("upstash-sync-token")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Errors carry CORS headers too, so browsers can read them.
    let r = env.bridge.req("POST", "/").body(br#"["PING"]"#).send();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn fault_injection() {
    let env = Env::start(&[]);
    let b = &env.bridge;
    let get_faults = || b.req("GET", "/__bridge/faults").bearer(TOKEN).send();
    assert_eq!(get_faults().json(), json!({"mode": "none"}));
    // Fault control needs the token and a valid body.
    assert_eq!(b.req("GET", "/__bridge/faults").send().status, 401);
    let r = b
        .req("POST", "/__bridge/faults")
        .bearer("wrong")
        .body(br#"{"mode":"reset"}"#)
        .send();
    assert_eq!(r.status, 401);
    starts_with_err(
        &env.post("/__bridge/faults", r#"{"mode":"boom"}"#)
            .send()
            .error(400),
    );

    // delay
    env.fault(r#"{"mode":"delay","ms":300,"count":1}"#);
    let start = Instant::now();
    assert_eq!(env.cmd(r#"["PING"]"#).result(), json!("PONG"));
    assert!(start.elapsed() >= Duration::from_millis(300));
    let start = Instant::now();
    env.cmd(r#"["PING"]"#).result();
    assert!(start.elapsed() < Duration::from_millis(250));

    // status, counted
    env.fault(r#"{"mode":"status","status":503,"count":2}"#);
    assert_eq!(
        get_faults().json(),
        json!({"mode":"status","status":503,"count":2})
    );
    for _ in 0..2 {
        let r = env.cmd(r#"["SET","s","1"]"#);
        starts_with_err(&r.error(503));
        assert!(r.header("upstash-sync-token").is_some());
    }
    assert_eq!(
        env.cmd(r#"["EXISTS","s"]"#).result(),
        json!(0),
        "faulted commands must not run"
    );
    assert_eq!(get_faults().json(), json!({"mode": "none"}));

    // Fault control and health are never faulted, even with an unlimited fault.
    env.fault(r#"{"mode":"status","status":500}"#);
    for _ in 0..3 {
        assert_eq!(env.cmd(r#"["PING"]"#).status, 500);
    }
    assert_eq!(get_faults().json(), json!({"mode":"status","status":500}));
    assert_eq!(b.req("GET", "/__bridge/health").send().status, 200);
    env.fault(r#"{"mode":"none"}"#);
    assert_eq!(env.cmd(r#"["PING"]"#).status, 200);

    // reset: the connection closes without any response, and the command does not run.
    env.fault(r#"{"mode":"reset","count":1}"#);
    let err = env
        .post("/", r#"["SET","r","1"]"#)
        .try_send()
        .expect_err("no response");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(env.cmd(r#"["EXISTS","r"]"#).result(), json!(0));

    // malformed: 200 with a body that is not JSON.
    env.fault(r#"{"mode":"malformed","count":1}"#);
    let r = env.cmd(r#"["PING"]"#);
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_slice::<Value>(&r.body).is_err(),
        "{}",
        r.text()
    );
    assert_eq!(env.cmd(r#"["PING"]"#).result(), json!("PONG"));

    // unauthorized: 401 even with the right token.
    env.fault(r#"{"mode":"unauthorized","count":1}"#);
    assert!(env.cmd(r#"["PING"]"#).error(401).starts_with("WRONGPASS"));
    assert_eq!(env.cmd(r#"["PING"]"#).result(), json!("PONG"));

    // A fault applies to pipelines and to requests on a kept-alive connection as well.
    let mut s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let pipeline = env.post("/pipeline", r#"[["PING"]]"#).to_bytes(false);
    s.write_all(&pipeline).expect("write");
    assert_eq!(
        read_response(&mut reader, false).expect("first").status,
        200
    );
    env.fault(r#"{"mode":"reset","count":1}"#);
    s.write_all(&pipeline).expect("write");
    assert!(read_response(&mut reader, false).is_err());
    assert_eq!(env.post("/pipeline", r#"[["PING"]]"#).send().status, 200);
}

#[test]
fn blocking_commands_answer_fast() {
    let env = Env::start(&[]);
    let start = Instant::now();
    for cmd in [
        r#"["BLPOP","q","5"]"#,
        r#"["BRPOP","q","5"]"#,
        r#"["BRPOPLPUSH","q","r","5"]"#,
        r#"["BLMOVE","q","r","LEFT","LEFT","5"]"#,
        r#"["BLMPOP","5","1","q","LEFT"]"#,
        r#"["BZPOPMIN","z","5"]"#,
        r#"["BZPOPMAX","z","5"]"#,
        r#"["BZMPOP","5","1","z","MIN"]"#,
        r#"["WAIT","1","5000"]"#,
        r#"["XREAD","BLOCK","5000","STREAMS","s","$"]"#,
        r#"["XREADGROUP","GROUP","g","c","BLOCK","5000","STREAMS","s",">"]"#,
        r#"["blpop","q",0]"#,
        r#"["CLIENT","PAUSE","5000"]"#,
        r#"["DEBUG","SLEEP","5"]"#,
        r#"["SELECT","1"]"#,
        r#"["MONITOR"]"#,
    ] {
        let e = env.cmd(cmd).error(400);
        assert!(
            e.starts_with("ERR Command is not available: '"),
            "{cmd}: {e}"
        );
    }
    let r = env
        .post("/pipeline", r#"[["BLPOP","q","5"],["PING"]]"#)
        .send();
    let v = r.json();
    starts_with_err(v[0]["error"].as_str().expect("error"));
    assert_eq!(v[1], json!({"result": "PONG"}));
    starts_with_err(
        &env.post("/multi-exec", r#"[["BLPOP","q","5"]]"#)
            .send()
            .error(400),
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Non-blocking forms still reach Redis.
    assert_eq!(env.cmd(r#"["XADD","s","*","f","v"]"#).status, 200);
    let r = env
        .cmd(r#"["XREAD","COUNT","1","STREAMS","s","0"]"#)
        .result();
    assert_eq!(r[0][0], json!("s"));
    assert_eq!(env.cmd(r#"["SELECT","0"]"#).result(), json!("OK"));
}

#[test]
fn http_and_mapping_details() {
    let env = Env::start(&[]);
    let b = &env.bridge;
    env.cmd(r#"["SET","k","v"]"#).result();

    // Keep-alive: two requests on one connection, fresh sync tokens.
    let mut s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let req = env.post("/", r#"["GET","k"]"#).to_bytes(false);
    s.write_all(&req).expect("write");
    let first = read_response(&mut reader, false).expect("first");
    s.write_all(&req).expect("write");
    let second = read_response(&mut reader, false).expect("second");
    assert_eq!((first.result(), second.result()), (json!("v"), json!("v")));
    let token = |r: &support::Reply| -> u64 {
        r.header("upstash-sync-token")
            .and_then(|t| t.parse().ok())
            .expect("numeric token")
    };
    assert!(token(&second) > token(&first));

    // HTTP/1.0 without keep-alive: answered, then closed.
    let mut s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let req = format!(
        "POST / HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 8\r\n\r\n[\"PING\"]"
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to close");
    assert!(String::from_utf8_lossy(&all).ends_with(r#"{"result":"PONG"}"#));

    // HEAD runs the path form and sends no body.
    let r = b.req("HEAD", "/get/k").bearer(TOKEN).send();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(r#"{"result":"v"}"#.len().to_string().as_str())
    );
    // _token is not passed on as an argument; other query pairs are.
    let r = b.req("GET", &format!("/get/k?_token={TOKEN}")).send();
    assert_eq!(r.result(), json!("v"));
    env.cmd(r#"["ZADD","zz",2,"b",1,"a"]"#).result();
    let r = b
        .req("GET", "/zrange/zz/0/-1?WITHSCORES")
        .bearer(TOKEN)
        .send();
    assert_eq!(r.result(), json!(["a", "1", "b", "2"]));
    // Raw (non-UTF-8) bytes through the path form, then back in base64.
    let r = b
        .req("PUT", "/set/raw")
        .bearer(TOKEN)
        .body(&[0xff, 0x00, 0x80])
        .send();
    assert_eq!(r.result(), json!("OK"));
    assert_eq!(env.cmd64(r#"["GET","raw"]"#).result(), json!("/wCA"));
    assert_eq!(
        b.req("GET", "/get/%E2%82%AC").bearer(TOKEN).send().result(),
        Value::Null
    );

    // Chunked bodies are refused; other methods get 405; unknown bridge endpoints 404.
    let r = b
        .req("POST", "/")
        .bearer(TOKEN)
        .header("Transfer-Encoding", "chunked")
        .send();
    assert_eq!(r.status, 411);
    let r = b.req("PATCH", "/").bearer(TOKEN).send();
    assert_eq!(r.status, 405);
    assert_eq!(
        b.req("GET", "/__bridge/nope").bearer(TOKEN).send().status,
        404
    );
    // `/` takes a JSON body (none here); a bad response format is refused.
    b.req("GET", "/").bearer(TOKEN).send().error(400);
    let r = env
        .post("/", r#"["PING"]"#)
        .header("Upstash-Response-Format", "xml")
        .send();
    starts_with_err(&r.error(400));

    // A 401 never echoes the presented token.
    let r = b
        .req("POST", "/")
        .bearer("secret-guess-123")
        .body(br#"["PING"]"#)
        .send();
    assert!(!r.text().contains("secret-guess-123"));

    // JSON numbers keep their text; booleans become true/false; null is refused.
    env.cmd(r#"["SET","f",1e3]"#).result();
    assert_eq!(env.cmd(r#"["GET","f"]"#).result(), json!("1e3"));
    env.cmd(r#"["SET","t",true]"#).result();
    assert_eq!(env.cmd(r#"["GET","t"]"#).result(), json!("true"));
    starts_with_err(&env.cmd(r#"["SET","x",null]"#).error(400));
    starts_with_err(&env.cmd(r#"["SET","x",{"a":1}]"#).error(400));
    starts_with_err(
        &env.post("/pipeline", r#"[["GET","k"],"GET"]"#)
            .send()
            .error(400),
    );

    // Mapping details the reference leaves open (see bridge/README.md).
    let r = env.cmd(r#"["EVAL","return {1, redis.error_reply('boom')}","0"]"#);
    // Redis adds the "ERR " prefix to a bare error_reply text.
    assert_eq!(r.result(), json!([1, "ERR boom"]));
    env.cmd(r#"["SET","okv","OK"]"#).result();
    assert_eq!(env.cmd64(r#"["GET","okv"]"#).result(), json!("T0s="));
    let r = env.post("/multi-exec", r#"[["SET","m","OK"],["GET","m"],["PING"]]"#);
    let r = r.header("Upstash-Encoding", "base64").send();
    assert_eq!(
        r.json(),
        json!([{"result": "OK"}, {"result": "T0s="}, {"result": "UE9ORw=="}])
    );
    let r = env
        .post("/pipeline", r#"[["GET","k"],["GET"],["BLPOP","q",1]]"#)
        .header("Upstash-Response-Format", "resp2")
        .send();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "$1\r\nv\r\n-ERR wrong number of arguments for 'get' command\r\n\
         -ERR Command is not available: 'BLPOP'\r\n"
    );
    let r = env
        .post("/", r#"["GET"]"#)
        .header("Upstash-Response-Format", "resp2")
        .send();
    assert_eq!((r.status, r.text().starts_with("-ERR")), (400, true));
}

#[test]
fn token_never_logged() {
    let redis = Redis::start();
    let mut bridge = Bridge::start(&redis.url(), &["--verbose", "--read-only-token", RO_TOKEN]);
    bridge.wait_healthy();
    let wrong = "wrong-token-55aa";
    bridge
        .req("POST", &format!("/?_token={TOKEN}"))
        .body(br#"["PING"]"#)
        .send();
    bridge
        .req("GET", &format!("/get/k?_token={RO_TOKEN}"))
        .send();
    bridge
        .req("POST", "/")
        .bearer(wrong)
        .body(br#"["PING"]"#)
        .send();
    bridge.req("GET", &format!("/get/k?_token={wrong}")).send();
    bridge
        .req("POST", "/")
        .bearer(TOKEN)
        .body(b"not json")
        .send();
    bridge
        .req("POST", "/__bridge/faults")
        .bearer(TOKEN)
        .body(br#"{"mode":"none"}"#)
        .send();
    let log = bridge.stop_and_read_stderr();
    assert!(log.lines().count() >= 6, "one line per request:\n{log}");
    for secret in [TOKEN, RO_TOKEN, wrong] {
        assert!(!log.contains(secret), "log leaks a token:\n{log}");
    }
}

#[test]
fn redis_down_then_restarted() {
    // No Redis yet: health says 503 and commands fail with a 5xx error.
    let redis_port = support::free_port();
    let bridge = Bridge::start(&format!("redis://127.0.0.1:{redis_port}"), &[]);
    assert_eq!(bridge.req("GET", "/__bridge/health").send().status, 503);
    let r = bridge
        .req("POST", "/")
        .bearer(TOKEN)
        .body(br#"["PING"]"#)
        .send();
    starts_with_err(&r.error(502));
    // Redis comes up: the bridge connects.
    let redis = Redis::try_start(redis_port).expect("redis on the chosen port");
    bridge.wait_healthy();
    let cmd = |json: &str| {
        bridge
            .req("POST", "/")
            .bearer(TOKEN)
            .body(json.as_bytes())
            .send()
    };
    assert_eq!(cmd(r#"["SET","k","v"]"#).result(), json!("OK"));
    // Redis restarts: pooled connections are dead; the next request reconnects.
    drop(redis);
    let _redis = Redis::try_start(redis_port).expect("redis restarted on the same port");
    assert_eq!(cmd(r#"["GET","k"]"#).result(), Value::Null);
}

#[test]
fn connection_cap() {
    let env = Env::start(&["--max-connections", "2"]);
    let open = || {
        let s = TcpStream::connect(("127.0.0.1", env.bridge.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    };
    // Two kept-alive connections hold both slots (start-up probes may still be closing, and
    // a slot is freed only when its connection's thread ends, so take the slots as they free)...
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.len() < 2 {
        let mut s = open();
        s.write_all(&env.post("/", r#"["PING"]"#).to_bytes(false))
            .expect("write");
        let mut reader = BufReader::new(s.try_clone().expect("clone"));
        let r = read_response(&mut reader, false).expect("response");
        if r.status == 503 {
            assert!(Instant::now() < deadline, "slots never freed at start");
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(r.result(), json!("PONG"));
        assert_eq!(r.header("keep-alive"), Some("timeout=5"));
        held.push(s);
    }
    // ...so a third is answered 503 and closed...
    let r = env.post("/", r#"["PING"]"#).send();
    starts_with_err(&r.error(503));
    // ...until one of them closes.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = env.post("/", r#"["PING"]"#).send();
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}
