//! A small HTTP/1.1 server side: request parsing (Content-Length bodies, keep-alive,
//! `Expect: 100-continue`) and response writing. Chunked request bodies are refused with 411.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Longest request head (request line + headers).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// How long the body of a request may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed request.
pub struct Request {
    /// `GET`, `POST`, ... as sent (methods are case-sensitive).
    pub method: String,
    /// The raw request target: path plus optional `?query`, not decoded.
    pub target: String,
    http11: bool,
    /// Header names in lower case, values trimmed (non-UTF-8 bytes replaced).
    headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query (after the first `?`), or `""`.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// Whether the client wants the connection kept open after the response.
    pub fn keep_alive(&self) -> bool {
        let tokens = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has = |t: &str| tokens.split(',').any(|x| x.trim() == t);
        if self.http11 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }
}

/// A response to write.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers (Content-Length and Connection are added when writing).
    pub headers: Vec<(&'static str, String)>,
    /// The body; not written for HEAD requests.
    pub body: Vec<u8>,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    /// A response with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body,
            close: false,
        }
    }

    /// `application/json` from a JSON value.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string().into_bytes())
    }

    /// `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    /// A response without a body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Marks the connection to be closed after this response.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }
}

/// What arrived on a connection.
pub enum Incoming {
    /// A complete request.
    Request(Request),
    /// The client closed the connection (or went idle) between requests.
    Closed,
    /// A request that cannot be served; answer with this response, then close.
    Reject(Response),
    /// The announced body is larger than the limit: answer, then drain and close.
    TooLarge {
        /// The announced Content-Length.
        announced: u64,
        /// Whether the client is waiting for `100 Continue` (so it has sent no body).
        expects_continue: bool,
    },
}

/// Reads the next request from a keep-alive connection.
pub fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    max_body: usize,
) -> Incoming {
    parse_request(reader, writer, max_body, |r| {
        let _ = r.get_ref().set_read_timeout(Some(BODY_TIMEOUT));
    })
}

/// [`read_request`] over any reader and writer (`100 Continue` goes to `writer`);
/// `before_body` runs just before a body is read.
pub fn parse_request<R: BufRead, W: Write>(
    reader: &mut R,
    writer: &mut W,
    max_body: usize,
    before_body: impl FnOnce(&mut R),
) -> Incoming {
    let head = match read_head(reader) {
        Ok(Some(head)) => head,
        Ok(None) => return Incoming::Closed,
        Err(HeadError::Io) => return Incoming::Closed,
        Err(HeadError::TooLarge) => {
            return Incoming::Reject(Response::error(431, "ERR request head too large"))
        }
        Err(HeadError::Malformed(what)) => {
            return Incoming::Reject(Response::error(
                400,
                &format!("ERR bad HTTP request: {what}"),
            ))
        }
    };
    let mut req = head;
    if req.header("transfer-encoding").is_some() {
        return Incoming::Reject(Response::error(
            411,
            "ERR chunked request bodies are not supported: send Content-Length",
        ));
    }
    let mut lengths = req
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<u64>());
    let len = match (lengths.next(), lengths.next()) {
        (None, _) => 0,
        (Some(Ok(n)), None) => n,
        _ => return Incoming::Reject(Response::error(400, "ERR bad Content-Length")),
    };
    let expects_continue = req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if len > max_body as u64 {
        return Incoming::TooLarge {
            announced: len,
            expects_continue,
        };
    }
    if len > 0 {
        if expects_continue
            && req.http11
            && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return Incoming::Closed;
        }
        before_body(reader);
        // `len <= max_body`, so it fits in usize.
        let mut body = vec![0; len as usize];
        if reader.read_exact(&mut body).is_err() {
            return Incoming::Closed;
        }
        req.body = body;
    }
    Incoming::Request(req)
}

enum HeadError {
    Io,
    TooLarge,
    Malformed(&'static str),
}

fn read_head<R: BufRead>(reader: &mut R) -> Result<Option<Request>, HeadError> {
    let mut budget = MAX_HEAD;
    let mut line = Vec::new();
    // Skip empty lines before the request line (RFC 9112 §2.2).
    loop {
        line.clear();
        let n = read_line(reader, &mut line, &mut budget)?;
        if n == 0 {
            return Ok(None);
        }
        if !trim_eol(&line).is_empty() {
            break;
        }
    }
    let request_line = String::from_utf8_lossy(trim_eol(&line)).into_owned();
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(HeadError::Malformed("request line")),
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(HeadError::Malformed("HTTP version")),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        if read_line(reader, &mut line, &mut budget)? == 0 {
            return Err(HeadError::Io);
        }
        let l = trim_eol(&line);
        if l.is_empty() {
            break;
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err(HeadError::Malformed("folded header"));
        }
        let colon = l
            .iter()
            .position(|&c| c == b':')
            .ok_or(HeadError::Malformed("header without colon"))?;
        let name = String::from_utf8_lossy(&l[..colon]).to_ascii_lowercase();
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(HeadError::Malformed("header name"));
        }
        let value = String::from_utf8_lossy(&l[colon + 1..]).trim().to_string();
        headers.push((name, value));
        if headers.len() > MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
    }
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        http11,
        headers,
        body: Vec::new(),
    }))
}

fn read_line<R: BufRead>(
    reader: &mut R,
    line: &mut Vec<u8>,
    budget: &mut usize,
) -> Result<usize, HeadError> {
    let n = reader
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', line)
        .map_err(|_| HeadError::Io)?;
    if n > *budget {
        return Err(HeadError::TooLarge);
    }
    *budget -= n;
    if n > 0 && !line.ends_with(b"\n") {
        // EOF in the middle of a line.
        return Err(HeadError::Io);
    }
    Ok(n)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Writes `resp` plus `common` headers. `head_only` omits the body (HEAD requests).
pub fn write_response(
    writer: &mut TcpStream,
    resp: &Response,
    common: &[(&'static str, String)],
    head_only: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).as_bytes(),
    );
    for (name, value) in resp.headers.iter().chain(common) {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if resp.status != 204 && resp.status >= 200 {
        out.extend_from_slice(format!("Content-Length: {}\r\n", resp.body.len()).as_bytes());
    }
    if resp.close {
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    } else {
        // Clients (undici) close idle sockets a second before this hint, well before the
        // server's own idle timeout, so a reused socket is never closed under a request.
        out.extend_from_slice(b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n");
    }
    if !head_only && resp.status != 204 {
        out.extend_from_slice(&resp.body);
    }
    writer.write_all(&out)?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
