//! The bridge's RESP2 codec (`bridge/src/resp.rs`, compiled in from the bridge's source).
//!
//! - The input read as a stream of replies (a pipelined connection): each read returns a reply or
//!   an error without panicking, and allocates in proportion to the bytes that arrived, not to a
//!   length header (`./run fuzz` caps a single allocation at 256 MB).
//! - Every reply that parses, written back with `write_resp`, parses to the same reply, and is
//!   written back identically.
//! - The input split into arguments, sent as a command by `encode_command`, reads back as an
//!   array of those bulk strings.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The bridge's Redis-side module as it is. The bridge binary uses all of it; this target does
// not (`Reply::as_error`).
#[allow(dead_code)]
#[path = "../../bridge/src/resp.rs"]
mod resp;

use resp::Reply;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        let before = rest.len();
        let Ok(reply) = resp::read_reply(&mut rest) else {
            break;
        };
        assert!(rest.len() < before, "a reply read from no bytes");
        let mut wire = Vec::new();
        reply.write_resp(&mut wire);
        let mut reader = &wire[..];
        let again = resp::read_reply(&mut reader)
            .unwrap_or_else(|e| panic!("{reply:?} written as {wire:?} does not parse: {e}"));
        assert_eq!(again, reply, "written as {wire:?}");
        assert!(reader.is_empty(), "{wire:?} has bytes after the reply");
        let mut rewritten = Vec::new();
        again.write_resp(&mut rewritten);
        assert_eq!(rewritten, wire);
    }

    let args: Vec<Vec<u8>> = data.split(|&b| b == 0xff).map(<[u8]>::to_vec).collect();
    let mut command = Vec::new();
    resp::encode_command(&mut command, &args);
    let mut reader = &command[..];
    let read = resp::read_reply(&mut reader)
        .unwrap_or_else(|e| panic!("the command {command:?} does not parse: {e}"));
    assert_eq!(
        read,
        Reply::Array(args.into_iter().map(Reply::Bulk).collect())
    );
    assert!(reader.is_empty());
});
