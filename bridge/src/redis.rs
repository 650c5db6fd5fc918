//! Connections to redis-server: URL parsing, one RESP2 connection, and a bounded pool.
//!
//! Pooled connections are borrowed exclusively: a pipeline or a MULTI/EXEC runs on one connection
//! that nobody else writes to meanwhile. A connection that saw any I/O or protocol error is
//! dropped, never returned (its reply stream may be out of step).

use std::io::{self, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::resp::{self, Reply};
use crate::util::percent_decode;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one reply may take (blocking commands are refused before they get here).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Where redis-server is, from `redis://[[user]:password@]host[:port][/db]`.
#[derive(Clone)]
pub struct Target {
    addr: String,
    username: Option<Vec<u8>>,
    password: Option<Vec<u8>>,
    db: u32,
}

impl std::fmt::Debug for Target {
    // The password is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses a `redis://` URL. TLS (`rediss://`) and unix sockets are not supported.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("redis://").ok_or(
            "--redis-url must start with redis:// (TLS and unix sockets are not supported)",
        )?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (
                    (!u.is_empty()).then(|| percent_decode(u.as_bytes())),
                    Some(percent_decode(p.as_bytes())),
                ),
                None => (None, Some(percent_decode(info.as_bytes()))),
            },
        };
        if hostport.is_empty() {
            return Err("--redis-url has no host".into());
        }
        let has_port = match hostport.rfind(']') {
            Some(bracket) => hostport[bracket..].contains(':'),
            None => hostport.contains(':'),
        };
        let addr = if has_port {
            hostport.to_string()
        } else {
            format!("{hostport}:6379")
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let db = if path.is_empty() {
            0
        } else {
            path.parse()
                .map_err(|_| "--redis-url has a bad database number")?
        };
        Ok(Target {
            addr,
            username,
            password,
            db,
        })
    }
}

/// One connection to redis-server.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects, then authenticates and selects the database if the URL asks for it.
    pub fn connect(target: &Target) -> io::Result<Conn> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for Redis host");
        for addr in target.addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
                    stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
                    let mut conn = Conn {
                        reader: BufReader::new(stream.try_clone()?),
                        writer: stream,
                    };
                    conn.setup(target)?;
                    return Ok(conn);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn setup(&mut self, target: &Target) -> io::Result<()> {
        let mut cmds = Vec::new();
        if let Some(password) = &target.password {
            let mut auth = vec![b"AUTH".to_vec()];
            auth.extend(target.username.clone());
            auth.push(password.clone());
            cmds.push(auth);
        }
        if target.db != 0 {
            cmds.push(vec![b"SELECT".to_vec(), target.db.to_string().into_bytes()]);
        }
        for reply in self.call_many(&cmds)? {
            if let Reply::Error(e) = reply {
                // Redis's AUTH/SELECT errors do not echo the password.
                let text = String::from_utf8_lossy(&e).into_owned();
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, text));
            }
        }
        Ok(())
    }

    /// Sends every command in one write (RESP pipelining), then reads one reply per command.
    pub fn call_many(&mut self, cmds: &[Vec<Vec<u8>>]) -> io::Result<Vec<Reply>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for cmd in cmds {
            resp::encode_command(&mut out, cmd);
        }
        self.writer.write_all(&out)?;
        cmds.iter()
            .map(|_| resp::read_reply(&mut self.reader))
            .collect()
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, cmd: Vec<Vec<u8>>) -> io::Result<Reply> {
        let mut replies = self.call_many(&[cmd])?;
        replies
            .pop()
            .ok_or_else(|| io::Error::other("no reply from Redis"))
    }
}

struct State {
    idle: Vec<Conn>,
    open: usize,
}

/// A bounded pool of Redis connections.
pub struct Pool {
    target: Target,
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

impl Pool {
    /// A pool that opens at most `max` connections, lazily.
    pub fn new(target: Target, max: usize) -> Pool {
        Pool {
            target,
            max: max.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Borrows a connection: an idle one, a new one while under the bound, or the next one freed.
    pub fn get(&self) -> io::Result<PooledConn<'_>> {
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(PooledConn {
                    pool: self,
                    conn: Some(conn),
                    reused: true,
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match Conn::connect(&self.target) {
                    Ok(conn) => Ok(PooledConn {
                        pool: self,
                        conn: Some(conn),
                        reused: false,
                    }),
                    Err(e) => {
                        self.release(None);
                        Err(e)
                    }
                };
            }
            let (next, timeout) = self
                .freed
                .wait_timeout(state, POOL_WAIT)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.max {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no Redis connection became free",
                ));
            }
        }
    }

    /// Closes every idle connection (after one of them turned out to be dead).
    pub fn clear_idle(&self) {
        let mut state = self.lock();
        let closed = std::mem::take(&mut state.idle);
        state.open -= closed.len();
        drop(state);
        self.freed.notify_all();
    }

    fn release(&self, conn: Option<Conn>) {
        let mut state = self.lock();
        match conn {
            Some(conn) => state.idle.push(conn),
            None => state.open -= 1,
        }
        drop(state);
        self.freed.notify_one();
    }
}

/// A borrowed connection. Call [`PooledConn::run`]; errors make it be discarded on drop.
pub struct PooledConn<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    reused: bool,
}

impl PooledConn<'_> {
    /// Whether the connection was idle in the pool (rather than opened for this borrow).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Runs `f` on the connection. If `f` fails, the connection is closed instead of reused.
    pub fn run<T>(&mut self, f: impl FnOnce(&mut Conn) -> io::Result<T>) -> io::Result<T> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| io::Error::other("connection already discarded"))?;
        let result = f(conn);
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

impl Drop for PooledConn<'_> {
    fn drop(&mut self) {
        self.pool.release(self.conn.take());
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn parses_urls() {
        let t = Target::parse("redis://127.0.0.1:6380").expect("valid");
        assert_eq!((t.addr.as_str(), t.db), ("127.0.0.1:6380", 0));
        assert!(t.password.is_none());
        let t = Target::parse("redis://localhost").expect("valid");
        assert_eq!(t.addr, "localhost:6379");
        let t = Target::parse("redis://:p%40ss@[::1]:7000/3").expect("valid");
        assert_eq!((t.addr.as_str(), t.db), ("[::1]:7000", 3));
        assert_eq!(t.password.as_deref(), Some(&b"p@ss"[..]));
        assert!(t.username.is_none());
        let t = Target::parse("redis://me:secret@h:1/").expect("valid");
        assert_eq!(t.username.as_deref(), Some(&b"me"[..]));
        assert!(!format!("{t:?}").contains("secret"));
        assert!(Target::parse("rediss://h:1").is_err());
        assert!(Target::parse("redis://h:1/x").is_err());
        assert!(Target::parse("redis://").is_err());
    }
}
