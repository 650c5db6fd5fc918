//! The bridge's HTTP/1.1 request reader (`bridge/src/http.rs`, compiled in from the bridge's
//! source), over the input as one keep-alive connection.
//!
//! Each request read is a request, a rejection (400, 411 or 431), an announced body over the
//! limit, or the end of the connection; never a panic. A request has a method and a target
//! without spaces, and a body that is exactly the `Content-Length` bytes at the end of what it
//! consumed; its method, target and body come from those bytes. `100 Continue` is written only
//! before a body is read.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The bridge's HTTP module as it is. The bridge binary uses all of it; this target reads requests
// only (no TCP, no responses written).
#[allow(dead_code)]
#[path = "../../bridge/src/http.rs"]
mod http;

use http::Incoming;

/// The largest body accepted, small enough that a fuzzed `Content-Length` stays cheap.
const MAX_BODY: usize = 64 * 1024;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        let before = rest;
        let mut written = Vec::new();
        match http::parse_request(&mut rest, &mut written, MAX_BODY, |_| {}) {
            Incoming::Request(req) => {
                let consumed = &before[..before.len() - rest.len()];
                for field in [&req.method, &req.target] {
                    assert!(!field.is_empty() && !field.contains(' '), "{field:?}");
                }
                // Each character of the method and target (U+FFFD for invalid UTF-8) comes from
                // at least one byte of the request line.
                assert!(
                    req.method.chars().count() + req.target.chars().count() + req.body.len()
                        < consumed.len(),
                    "{req_line:?}",
                    req_line = consumed.escape_ascii().to_string()
                );
                let announced = req
                    .header("content-length")
                    .map_or(0, |v| v.parse::<usize>().expect("a parsed Content-Length"));
                assert_eq!(req.body.len(), announced);
                assert!(consumed.ends_with(&req.body));
                assert!(
                    written.is_empty() || (written == CONTINUE && !req.body.is_empty()),
                    "{written:?}"
                );
                assert!(req.path().len() + req.query().len() <= req.target.len());
                let _ = req.keep_alive();
            }
            Incoming::Reject(response) => {
                assert!(
                    [400, 411, 431].contains(&response.status),
                    "{}",
                    response.status
                );
                break;
            }
            Incoming::TooLarge { announced, .. } => {
                assert!(announced > MAX_BODY as u64);
                break;
            }
            Incoming::Closed => break,
        }
    }
});
