//! The Upstash reply decoder (`cachette::fuzzing`, the client's own decoding of HTTP 200 bodies).
//!
//! - Any body, as the answer to one command and to a batch of commands: a result or an error,
//!   never a panic; a batch result holds exactly one entry per command.
//! - A reply tree built from the input and written as Upstash writes it in base64 mode
//!   (`{"result": ...}`, strings base64-encoded), alone and in a batch beside an
//!   `{"error": ...}` envelope, decodes to that tree and that error.

#![no_main]

use arbitrary::{Result, Unstructured};
use cachette::fuzzing::{upstash_batch_replies, upstash_command_reply};
use cachette::upstash::Reply;
use cachette::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&count, body)) = data.split_first() {
        if let Ok(body) = std::str::from_utf8(body) {
            let _ = upstash_command_reply(body);
            let count = usize::from(count % 8);
            if let Ok(replies) = upstash_batch_replies(body, count) {
                assert_eq!(replies.len(), count, "{body:?}");
            }
        }
    }

    let mut u = Unstructured::new(data);
    let (Ok(reply), Ok(message)) = (reply(&mut u, 0), u.arbitrary::<String>()) else {
        return;
    };
    let mut result = String::from("{\"result\":");
    write_reply(&reply, &mut result);
    result.push('}');
    assert_eq!(
        upstash_command_reply(&result),
        Ok(reply.clone()),
        "{result}"
    );
    let error = format!("{{\"error\":{}}}", json_string(&message));
    let batch = format!("[{result},{error}]");
    assert_eq!(
        upstash_batch_replies(&batch, 2),
        Ok(vec![Ok(reply), Err(Error::UpstashCommand(message))]),
        "{batch}"
    );
});

/// A reply tree, at most 8 arrays deep.
fn reply(u: &mut Unstructured, depth: usize) -> Result<Reply> {
    let kinds = if depth < 8 { 3 } else { 2 };
    Ok(match u.int_in_range(0..=kinds)? {
        0 => Reply::Nil,
        1 => Reply::Int(u.arbitrary()?),
        2 => Reply::Bytes(u.arbitrary()?),
        _ => {
            let mut items = Vec::new();
            u.arbitrary_loop(None, Some(8), |u| {
                items.push(reply(u, depth + 1)?);
                Ok(std::ops::ControlFlow::Continue(()))
            })?;
            Reply::Array(items)
        }
    })
}

/// `reply` as Upstash writes it with `Upstash-Encoding: base64`: nil as `null`, integers as
/// numbers, strings in base64, arrays as arrays.
fn write_reply(reply: &Reply, out: &mut String) {
    match reply {
        Reply::Nil => out.push_str("null"),
        Reply::Int(n) => out.push_str(&n.to_string()),
        Reply::Bytes(b) => {
            out.push('"');
            base64(b, out);
            out.push('"');
        }
        Reply::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_reply(item, out);
            }
            out.push(']');
        }
    }
}

/// Standard padded base64 (RFC 4648).
fn base64(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
}

/// A JSON string literal, as serde_json writes it.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}
