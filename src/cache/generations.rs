//! Generation-counter invalidation (`invalidation: "generation"`) and the shared-tier lock: the
//! Redis key layout and the one Lua script ([`SCRIPT`]) both run through.
//!
//! A request key `{version}:{namespace}:{rest}` is *scoped*: its value is valid only under the
//! current counters of its version and namespace:
//!
//! | Redis key | Holds |
//! | --- | --- |
//! | `cachette:gen:{version}` | the version's counter (`INCR` by `invalidateVersion`, `updateVersion`) |
//! | `cachette:gen:{version}:{namespace}` | the namespace's counter (`INCR` by `invalidateNamespace`) |
//! | `cachette:del:{version}:{namespace}` | deletions in the namespace (`INCR` by `delete`, `deletePattern`) |
//! | `{version}:{namespace}:{rest}` | `{v}.{n}\|{value}`: the counters the value was written under, then the value |
//! | `cachette:lock:{key}` | the token of the instance generating `key` (`lock`), with a TTL |
//!
//! A value whose prefix is not the current `{v}.{n}|` is dead: the script reads it as missing,
//! and it leaves Redis when its TTL ends (or when the key is written again). Counters never
//! expire; one that is missing (never set, or evicted by Redis) starts from the clock in
//! microseconds, so that it never takes a value it had and no dead value comes back. The deletion counter does not decide validity; near copies use it to learn that
//! another instance deleted something in the namespace. Keys that are not scoped (fewer than two
//! `:`) are stored as in scan mode.

use std::rc::Rc;

use crate::upstash::{Reply, Script};

/// The script: every generation-mode read, write and delete, and every lock release.
pub const SCRIPT: Script = Script {
    source: include_str!("generations.lua"),
    sha1: "913ca1a47fe31d806c78bb30b2fb5bf94e22201e",
};

/// The prefix of Cachette's own keys in generation mode; `deletePattern` leaves them alone.
pub const INTERNAL_PREFIXES: [&str; 3] = ["cachette:gen:", "cachette:del:", "cachette:lock:"];

/// The version and namespace of a scoped key (`{version}:{namespace}:{rest}`, both non-empty).
pub fn scope(key: &str) -> Option<(&str, &str)> {
    let (version, rest) = key.split_once(':')?;
    let (namespace, _) = rest.split_once(':')?;
    (!version.is_empty() && !namespace.is_empty()).then_some((version, namespace))
}

/// `{version}:{namespace}`, the name an instance tracks a scope's counters by.
pub fn scope_name(version: &str, namespace: &str) -> String {
    format!("{version}:{namespace}")
}

/// The scope name of a scoped key: its own `{version}:{namespace}` prefix, no copy made.
pub fn scope_of(key: &str) -> Option<&str> {
    let (version, namespace) = scope(key)?;
    Some(&key[..version.len() + 1 + namespace.len()])
}

/// The version's counter.
pub fn version_counter(version: &str) -> String {
    format!("cachette:gen:{version}")
}

/// The namespace's counter.
pub fn namespace_counter(version: &str, namespace: &str) -> String {
    format!("cachette:gen:{version}:{namespace}")
}

/// The namespace's deletion counter.
pub fn deletion_counter(version: &str, namespace: &str) -> String {
    format!("cachette:del:{version}:{namespace}")
}

/// The lock of `key`.
pub fn lock_key(key: &str) -> String {
    format!("cachette:lock:{key}")
}

/// Whether `key` is one of Cachette's own keys.
pub fn is_internal(key: &str) -> bool {
    INTERNAL_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// One operation of the script on a scoped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Read the value and its remaining TTL.
    Read,
    /// Whether a live value is there.
    Exists,
    /// Write `text` for `px` milliseconds (`None`: no expiry), unless the counters moved past
    /// `since` (the generation the value was made under; `None`: whatever they are).
    Write {
        /// The generation the value was made under (`None`: any).
        since: Option<&'a str>,
        /// The value's text.
        text: &'a str,
        /// Its TTL in milliseconds (`None`: no expiry).
        px: Option<u64>,
    },
    /// Delete, counting the deletion in the namespace.
    Delete,
}

/// The `EVALSHA` command of `op` on `key`; `None` when `key` is not scoped.
pub fn command(key: &str, op: Op<'_>) -> Option<Vec<String>> {
    let (version, namespace) = scope(key)?;
    let mut c = vec![
        "EVALSHA".to_owned(),
        SCRIPT.sha1.to_owned(),
        "4".to_owned(),
        version_counter(version),
        namespace_counter(version, namespace),
        deletion_counter(version, namespace),
        key.to_owned(),
    ];
    match op {
        Op::Read => c.push("r".to_owned()),
        Op::Exists => c.push("e".to_owned()),
        Op::Delete => c.push("d".to_owned()),
        Op::Write { since, text, px } => {
            c.push("w".to_owned());
            c.push(since.unwrap_or_default().to_owned());
            c.push(text.to_owned());
            c.push(px.map(|ms| ms.max(1).to_string()).unwrap_or_default());
        }
    }
    Some(c)
}

/// The `EVALSHA` command counting `counter` up (an invalidation): started afresh from the clock
/// when it is missing, so that it never takes a value it had before.
pub fn invalidate_command(counter: &str) -> Vec<String> {
    vec![
        "EVALSHA".to_owned(),
        SCRIPT.sha1.to_owned(),
        "1".to_owned(),
        counter.to_owned(),
        "i".to_owned(),
    ]
}

/// The `EVALSHA` command releasing `key`'s lock if `token` still holds it.
pub fn unlock_command(key: &str, token: &str) -> Vec<String> {
    vec![
        "EVALSHA".to_owned(),
        SCRIPT.sha1.to_owned(),
        "1".to_owned(),
        lock_key(key),
        "u".to_owned(),
        token.to_owned(),
    ]
}

/// What the script answered for a scoped key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `{v}.{n}|`: the generation values are written under now.
    pub generation: String,
    /// The namespace's counters as a near copy checks them: `{v}.{n}|{d}`.
    pub stamp: Rc<str>,
    /// Read/exists: a live value is there; write: it was stored; delete: a live value went.
    pub yes: bool,
    /// Read: the value's text and its `PTTL`.
    pub value: Option<(Vec<u8>, Option<i64>)>,
}

/// Reads the script's answer (`{gen, del, flag[, payload, pttl]}`).
pub fn answer(reply: Reply) -> Option<Answer> {
    let Reply::Array(parts) = reply else {
        return None;
    };
    fn text(r: &Reply) -> Option<&str> {
        r.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
    let generation = text(parts.first()?)?.to_owned();
    let deletions = text(parts.get(1)?)?;
    let yes = parts.get(2)?.as_int()? == 1;
    let value = match (parts.get(3), parts.get(4)) {
        (Some(Reply::Bytes(b)), pttl) => Some((b.clone(), pttl.and_then(Reply::as_int))),
        _ => None,
    };
    Some(Answer {
        stamp: format!("{generation}{deletions}").into(),
        generation,
        yes,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_keys_have_a_version_and_a_namespace() {
        assert_eq!(scope("v1:chat:abc"), Some(("v1", "chat")));
        assert_eq!(scope("v1:chat:a:b"), Some(("v1", "chat")));
        assert_eq!(scope("v1:chat:"), Some(("v1", "chat")));
        for plain in ["plain", "v1:chat", ":chat:x", "v1::x", ""] {
            assert_eq!(scope(plain), None, "{plain:?}");
        }
        assert_eq!(scope_of("v1:chat:a:b"), Some("v1:chat"));
        assert_eq!(scope_of("v1:chat"), None);
        assert!(is_internal("cachette:gen:v1:chat"));
        assert!(!is_internal("v1:cachette:gen"));
    }

    #[test]
    fn commands_name_every_key_they_touch() {
        let w = command(
            "v1:ns:k",
            Op::Write {
                since: Some("0.2|"),
                text: "{}",
                px: Some(0),
            },
        )
        .unwrap();
        assert_eq!(
            w[2..],
            [
                "4",
                "cachette:gen:v1",
                "cachette:gen:v1:ns",
                "cachette:del:v1:ns",
                "v1:ns:k",
                "w",
                "0.2|",
                "{}",
                "1"
            ]
        );
        assert_eq!(command("plain", Op::Read), None);
        assert_eq!(unlock_command("v1:ns:k", "t")[3], "cachette:lock:v1:ns:k");
    }

    #[test]
    fn answers_are_read_strictly() {
        let b = |s: &str| Reply::Bytes(s.as_bytes().to_vec());
        let a = answer(Reply::Array(vec![
            b("3.1|"),
            b("7"),
            Reply::Int(1),
            b("{\"a\":1}"),
            Reply::Int(500),
        ]))
        .unwrap();
        assert_eq!((a.generation.as_str(), &*a.stamp), ("3.1|", "3.1|7"));
        assert_eq!(a.value, Some((b"{\"a\":1}".to_vec(), Some(500))));
        let miss = answer(Reply::Array(vec![b("0.0|"), b("0"), Reply::Int(0)])).unwrap();
        assert!(!miss.yes && miss.value.is_none());
        assert_eq!(answer(Reply::Int(1)), None);
        assert_eq!(answer(Reply::Array(vec![b("0.0|")])), None);
    }
}
