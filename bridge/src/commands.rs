//! Commands from requests: JSON bodies (`POST /`, `/pipeline`, `/multi-exec`), the path form,
//! and the commands the bridge refuses before they reach Redis.

use serde_json::value::RawValue;

use crate::util::{percent_decode, query_pairs};

/// One command: its name then its arguments, as bytes.
pub type Command = Vec<Vec<u8>>;

const NOT_JSON: &str = "ERR failed to parse command";

/// Parses `["CMD", arg, ...]`.
pub fn parse_single(body: &[u8]) -> Result<Command, String> {
    let items = parse_array(body)?;
    command_from(&items)
}

/// Parses `[["CMD", ...], ...]` (a pipeline or a transaction).
pub fn parse_batch(body: &[u8]) -> Result<Vec<Command>, String> {
    let items = parse_array(body)?;
    if items.is_empty() {
        return Err("ERR empty pipeline".into());
    }
    items
        .iter()
        .map(|item| {
            let inner: Vec<&RawValue> = serde_json::from_str(item.get()).map_err(|_| {
                "ERR failed to parse command: each command must be a JSON array".to_string()
            })?;
            command_from(&inner)
        })
        .collect()
}

fn parse_array(body: &[u8]) -> Result<Vec<&RawValue>, String> {
    let raw: &RawValue = serde_json::from_slice(body).map_err(|_| NOT_JSON.to_string())?;
    serde_json::from_str(raw.get())
        .map_err(|_| format!("{NOT_JSON}: the body must be a JSON array"))
}

/// Turns JSON scalars into arguments: strings as their UTF-8 bytes, numbers as their exact JSON
/// text (`1.5`, `60`, `1e3`), booleans as `true`/`false`. Null, objects and arrays are refused.
fn command_from(items: &[&RawValue]) -> Result<Command, String> {
    if items.is_empty() {
        return Err("ERR empty command".into());
    }
    items
        .iter()
        .map(|item| {
            let text = item.get();
            match text.as_bytes().first() {
                Some(b'"') => serde_json::from_str::<String>(text)
                    .map(String::into_bytes)
                    .map_err(|_| NOT_JSON.to_string()),
                Some(b'-' | b'0'..=b'9' | b't' | b'f') => Ok(text.as_bytes().to_vec()),
                _ => Err(format!(
                    "{NOT_JSON}: arguments must be strings, numbers or booleans"
                )),
            }
        })
        .collect()
}

/// The path form: `/set/foo/bar` → `SET foo bar`; each raw segment is percent-decoded after
/// splitting (so `%2F` stays inside its argument); a non-empty body is appended; then the query
/// pairs `K=V` (as `K`, `V`; a bare `K` as `K`), except `_token`.
pub fn parse_path(path: &str, query: &str, body: &[u8]) -> Result<Command, String> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let mut cmd: Command = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed
            .split('/')
            .map(|seg| percent_decode(seg.as_bytes()))
            .collect()
    };
    if cmd.is_empty() {
        return Err("ERR empty command".into());
    }
    if !body.is_empty() {
        cmd.push(body.to_vec());
    }
    for (k, v) in query_pairs(query) {
        if k == b"_token" {
            continue;
        }
        cmd.push(k);
        cmd.extend(v);
    }
    Ok(cmd)
}

/// The command name in upper case.
pub fn name(cmd: &Command) -> String {
    cmd.first()
        .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
        .unwrap_or_default()
}

/// Commands that would block a pooled connection, change its state, or leave the REST model.
const REFUSED: &[&str] = &[
    // blocking
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "WAIT",
    "WAITAOF",
    // connection state
    "AUTH",
    "HELLO",
    "QUIT",
    "RESET",
    "CLIENT",
    "READONLY",
    "READWRITE",
    "ASKING",
    // transactions (use /multi-exec)
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    // streaming (Upstash serves these as server-sent events, which the bridge does not)
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    // server control and replication
    "SHUTDOWN",
    "DEBUG",
    "SYNC",
    "PSYNC",
    "REPLCONF",
];

/// `Some(error)` if the bridge refuses `cmd` without forwarding it.
pub fn refusal(cmd: &Command) -> Option<String> {
    let name = name(cmd);
    let refused = REFUSED.contains(&name.as_str())
        || (name == "SELECT" && cmd.get(1).map(Vec::as_slice) != Some(b"0"))
        || ((name == "XREAD" || name == "XREADGROUP") && xread_blocks(cmd));
    refused.then(|| format!("ERR Command is not available: '{name}'"))
}

/// Whether an XREAD/XREADGROUP has the BLOCK option (options come before STREAMS; values of
/// options are skipped so a group or consumer named "block" is not mistaken for it).
fn xread_blocks(cmd: &Command) -> bool {
    let mut i = 1;
    while i < cmd.len() {
        let opt = String::from_utf8_lossy(&cmd[i]).to_ascii_uppercase();
        match opt.as_str() {
            "BLOCK" => return true,
            "STREAMS" => return false,
            "COUNT" => i += 2,
            "GROUP" => i += 3,
            _ => i += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &[&str]) -> Command {
        cmd.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn parses_json_commands() {
        assert_eq!(
            parse_single(br#"["SET","k","v","EX",60]"#),
            Ok(args(&["SET", "k", "v", "EX", "60"]))
        );
        assert_eq!(
            parse_single(br#"[ "zadd" , "z", 1.5, "m", 1e3, -0, true ]"#),
            Ok(args(&["zadd", "z", "1.5", "m", "1e3", "-0", "true"]))
        );
        assert_eq!(
            parse_single(br#"["a\u00e9"]"#),
            Ok(vec!["aé".as_bytes().to_vec()])
        );
        for bad in [
            &b"hello"[..],
            b"{\"cmd\":\"GET\"}",
            b"[]",
            b"[null]",
            b"[[\"GET\"]]",
            b"[{}]",
        ] {
            let err = parse_single(bad).expect_err("refused");
            assert!(err.starts_with("ERR "), "{err}");
        }
    }

    #[test]
    fn parses_batches() {
        assert_eq!(
            parse_batch(br#"[["SET","a",1],["GET","a"]]"#),
            Ok(vec![args(&["SET", "a", "1"]), args(&["GET", "a"])])
        );
        for bad in [
            &b"[]"[..],
            b"[\"GET\",\"k\"]",
            b"[[]]",
            b"nope",
            b"[[\"GET\"],5]",
        ] {
            assert!(parse_batch(bad).is_err());
        }
    }

    #[test]
    fn parses_the_path_form() {
        assert_eq!(
            parse_path("/set/pk/pv", "", b""),
            Ok(args(&["set", "pk", "pv"]))
        );
        assert_eq!(
            parse_path("/set/pb", "EX=100&_token=secret", b"hello world"),
            Ok(args(&["set", "pb", "hello world", "EX", "100"]))
        );
        assert_eq!(parse_path("/get/a%2Fb", "", b""), Ok(args(&["get", "a/b"])));
        assert_eq!(
            parse_path("/zrange/z/0/-1", "WITHSCORES", b""),
            Ok(args(&["zrange", "z", "0", "-1", "WITHSCORES"]))
        );
        assert!(parse_path("/", "", b"").is_err());
    }

    #[test]
    fn refuses_blocking_and_stateful_commands() {
        for cmd in [
            &["blpop", "q", "5"][..],
            &["MULTI"],
            &["subscribe", "ch"],
            &["client", "list"],
            &["select", "1"],
            &["xread", "count", "1", "block", "0", "streams", "s", "$"],
            &[
                "xreadgroup",
                "group",
                "g",
                "c",
                "BLOCK",
                "10",
                "STREAMS",
                "s",
                ">",
            ],
        ] {
            assert_eq!(
                refusal(&args(cmd)),
                Some(format!(
                    "ERR Command is not available: '{}'",
                    cmd[0].to_uppercase()
                ))
            );
        }
        for cmd in [
            &["get", "k"][..],
            &["select", "0"],
            &["xread", "streams", "block", "0"],
            &["xreadgroup", "group", "block", "block", "streams", "s", ">"],
            &["ping"],
        ] {
            assert_eq!(refusal(&args(cmd)), None, "{cmd:?}");
        }
    }
}
