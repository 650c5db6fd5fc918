//! A RESP2 codec: commands out as arrays of bulk strings, replies in as [`Reply`] trees that keep
//! every distinction RESP2 makes (status vs bulk, null bulk vs null array), so a reply can be
//! written back byte for byte (`Upstash-Response-Format: resp2`).

use std::io::{self, BufRead, Read};

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(Vec<u8>),
    /// `-ERR ...`
    Error(Vec<u8>),
    /// `:42`
    Int(i64),
    /// `$3\r\nabc`
    Bulk(Vec<u8>),
    /// `$-1`
    NilBulk,
    /// `*2 ...`
    Array(Vec<Reply>),
    /// `*-1`
    NilArray,
}

/// Deepest nesting accepted in a reply (Lua tables can nest; this bounds recursion).
const MAX_DEPTH: usize = 512;
/// Longest header line (`$123`, `+status`, `-error`) accepted from Redis.
const MAX_LINE: usize = 1 << 20;
/// Most bytes of a bulk string allocated before they arrive; the rest grow as they are read.
const BULK_AHEAD: usize = 64 * 1024;

/// Appends `args` as one RESP2 command (an array of bulk strings).
pub fn encode_command(out: &mut Vec<u8>, args: &[Vec<u8>]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

impl Reply {
    /// Appends this reply in RESP2 wire form.
    pub fn write_resp(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => line(out, b'+', s),
            Reply::Error(e) => line(out, b'-', e),
            Reply::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(b) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::NilBulk => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.write_resp(out);
                }
            }
            Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
        }
    }

    /// The error text of a top-level error reply.
    pub fn as_error(&self) -> Option<String> {
        match self {
            Reply::Error(e) => Some(String::from_utf8_lossy(e).into_owned()),
            _ => None,
        }
    }
}

fn line(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

fn protocol_error(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("RESP protocol error: {what}"),
    )
}

/// Reads one complete reply.
pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    read_depth(r, 0)
}

fn read_depth<R: BufRead>(r: &mut R, depth: usize) -> io::Result<Reply> {
    if depth > MAX_DEPTH {
        return Err(protocol_error("reply nested too deeply"));
    }
    let line = read_line(r)?;
    let (&kind, rest) = line
        .split_first()
        .ok_or_else(|| protocol_error("empty line"))?;
    match kind {
        b'+' => Ok(Reply::Status(rest.to_vec())),
        b'-' => Ok(Reply::Error(rest.to_vec())),
        b':' => Ok(Reply::Int(parse_int(rest)?)),
        b'$' => {
            let len = parse_int(rest)?;
            if len < 0 {
                return Ok(Reply::NilBulk);
            }
            let len = usize::try_from(len).map_err(|_| protocol_error("bulk length"))?;
            // The announced length bounds the read, not the allocation: a length that no data
            // follows costs nothing.
            let want = len as u64 + 2;
            let mut buf = Vec::with_capacity(len.min(BULK_AHEAD) + 2);
            r.by_ref().take(want).read_to_end(&mut buf)?;
            if (buf.len() as u64) < want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection within a bulk string",
                ));
            }
            if !buf.ends_with(b"\r\n") {
                return Err(protocol_error("bulk string without CRLF"));
            }
            buf.truncate(len);
            Ok(Reply::Bulk(buf))
        }
        b'*' => {
            let len = parse_int(rest)?;
            if len < 0 {
                return Ok(Reply::NilArray);
            }
            let len = usize::try_from(len).map_err(|_| protocol_error("array length"))?;
            let mut items = Vec::with_capacity(len.min(4096));
            for _ in 0..len {
                items.push(read_depth(r, depth + 1)?);
            }
            Ok(Reply::Array(items))
        }
        _ => Err(protocol_error("unknown reply type")),
    }
}

/// One CRLF-terminated line, without the CRLF.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "Redis closed the connection",
        ));
    }
    if !buf.ends_with(b"\r\n") {
        return Err(protocol_error("line without CRLF"));
    }
    buf.truncate(buf.len() - 2);
    Ok(buf)
}

fn parse_int(bytes: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_error("bad integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Reply {
        read_reply(&mut &bytes[..]).expect("valid RESP")
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET".to_vec(), b"k".to_vec(), Vec::new()]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn parses_and_writes_back_every_type() {
        let wire: &[u8] =
            b"*7\r\n+OK\r\n-ERR no\r\n:-5\r\n$2\r\n\r\n\r\n$-1\r\n*-1\r\n*1\r\n$1\r\n\x80\r\n";
        let reply = parse(wire);
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Status(b"OK".to_vec()),
                Reply::Error(b"ERR no".to_vec()),
                Reply::Int(-5),
                Reply::Bulk(b"\r\n".to_vec()),
                Reply::NilBulk,
                Reply::NilArray,
                Reply::Array(vec![Reply::Bulk(vec![0x80])]),
            ])
        );
        let mut out = Vec::new();
        reply.write_resp(&mut out);
        assert_eq!(out, wire);
    }

    #[test]
    fn rejects_garbage() {
        assert!(read_reply(&mut &b"?x\r\n"[..]).is_err());
        assert!(read_reply(&mut &b":x\r\n"[..]).is_err());
        assert!(read_reply(&mut &b"$3\r\nab"[..]).is_err());
        assert!(read_reply(&mut &b""[..]).is_err());
    }

    #[test]
    fn bulk_length_without_data_allocates_nothing_ahead() {
        // Found by fuzz/fuzz_targets/bridge_resp.rs: the announced length was allocated (and
        // zeroed) before any of the data was read: 624 MB here, an abort for `$9223372036854775807`.
        for wire in [
            &b"$624415471\r\n"[..],
            b"$9223372036854775807\r\nab",
            b"*1\r\n$4611686018427387904\r\n",
        ] {
            let err = read_reply(&mut &wire[..]).expect_err("the data is missing");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
        let mut big = b"$100000\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 100_000));
        big.extend_from_slice(b"\r\n");
        assert_eq!(parse(&big), Reply::Bulk(vec![b'x'; 100_000]));
    }
}
