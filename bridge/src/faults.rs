//! Fault injection, switchable while the bridge runs (`/__bridge/faults`).

use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

/// Longest accepted delay (10 minutes).
const MAX_DELAY_MS: u64 = 600_000;

/// What happens to the next API request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serve normally.
    None,
    /// Wait this many milliseconds, then serve normally.
    Delay(u64),
    /// Answer with this HTTP status and a JSON error, without running the command.
    Status(u16),
    /// Close the TCP connection without a response (after reading the request).
    Reset,
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer 401 as for a wrong token.
    Unauthorized,
}

#[derive(Clone, Copy, Debug)]
struct Setting {
    mode: Mode,
    /// Requests left before the mode reverts to `None`; `None` = until changed.
    remaining: Option<u64>,
}

/// The current fault setting, shared by all connections.
pub struct Faults(Mutex<Setting>);

impl Default for Faults {
    fn default() -> Faults {
        Faults(Mutex::new(Setting {
            mode: Mode::None,
            remaining: None,
        }))
    }
}

impl Faults {
    /// The fault to apply to one API request (counting it against `count`).
    pub fn take(&self) -> Mode {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mode = s.mode;
        if mode != Mode::None {
            if let Some(left) = s.remaining.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    *s = Setting {
                        mode: Mode::None,
                        remaining: None,
                    };
                }
            }
        }
        mode
    }

    /// Replaces the setting from a JSON body such as `{"mode":"delay","ms":3000,"count":2}`.
    pub fn set(&self, body: &[u8]) -> Result<Value, String> {
        let v: Value = serde_json::from_slice(body).map_err(|_| "ERR fault body is not JSON")?;
        let obj = v
            .as_object()
            .ok_or("ERR fault body must be a JSON object")?;
        let uint = |key: &str| -> Result<Option<u64>, String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(n) => n.as_u64().map(Some).ok_or_else(|| {
                    format!("ERR fault field '{key}' must be a non-negative integer")
                }),
            }
        };
        let mode = match obj.get("mode").and_then(Value::as_str) {
            Some("none") => Mode::None,
            Some("delay") => match uint("ms")? {
                Some(ms) if ms <= MAX_DELAY_MS => Mode::Delay(ms),
                _ => {
                    return Err(format!(
                        "ERR delay needs \"ms\" between 0 and {MAX_DELAY_MS}"
                    ))
                }
            },
            Some("status") => match uint("status")? {
                Some(s @ 200..=599) => Mode::Status(s as u16),
                _ => return Err("ERR status needs \"status\" between 200 and 599".into()),
            },
            Some("reset") => Mode::Reset,
            Some("malformed") => Mode::Malformed,
            Some("unauthorized") => Mode::Unauthorized,
            _ => {
                return Err(
                    "ERR fault \"mode\" must be one of none, delay, status, reset, \
                            malformed, unauthorized"
                        .into(),
                )
            }
        };
        let remaining = match uint("count")? {
            Some(0) => return Err("ERR fault \"count\" must be at least 1".into()),
            count => count,
        };
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *s = if mode == Mode::None {
            Setting {
                mode,
                remaining: None,
            }
        } else {
            Setting { mode, remaining }
        };
        Ok(describe(&s))
    }

    /// The current setting as JSON.
    pub fn get(&self) -> Value {
        describe(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn describe(s: &Setting) -> Value {
    let mut v = match s.mode {
        Mode::None => json!({ "mode": "none" }),
        Mode::Delay(ms) => json!({ "mode": "delay", "ms": ms }),
        Mode::Status(status) => json!({ "mode": "status", "status": status }),
        Mode::Reset => json!({ "mode": "reset" }),
        Mode::Malformed => json!({ "mode": "malformed" }),
        Mode::Unauthorized => json!({ "mode": "unauthorized" }),
    };
    if let (Some(left), Some(obj)) = (s.remaining, v.as_object_mut()) {
        obj.insert("count".into(), left.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_then_reverts() {
        let f = Faults::default();
        assert_eq!(f.take(), Mode::None);
        let set = f
            .set(br#"{"mode":"status","status":503,"count":2}"#)
            .expect("valid");
        assert_eq!(set, json!({"mode":"status","status":503,"count":2}));
        assert_eq!(f.take(), Mode::Status(503));
        assert_eq!(f.get(), json!({"mode":"status","status":503,"count":1}));
        assert_eq!(f.take(), Mode::Status(503));
        assert_eq!(f.take(), Mode::None);
        assert_eq!(f.get(), json!({"mode":"none"}));
    }

    #[test]
    fn stays_until_changed_without_count() {
        let f = Faults::default();
        f.set(br#"{"mode":"delay","ms":5}"#).expect("valid");
        for _ in 0..3 {
            assert_eq!(f.take(), Mode::Delay(5));
        }
        f.set(br#"{"mode":"none"}"#).expect("valid");
        assert_eq!(f.take(), Mode::None);
    }

    #[test]
    fn rejects_bad_settings() {
        let f = Faults::default();
        for bad in [
            &b"nope"[..],
            b"[]",
            br#"{"mode":"explode"}"#,
            br#"{"mode":"delay"}"#,
            br#"{"mode":"delay","ms":-1}"#,
            br#"{"mode":"status","status":99}"#,
            br#"{"mode":"reset","count":0}"#,
        ] {
            assert!(f.set(bad).is_err());
        }
        assert_eq!(f.get(), json!({"mode":"none"}));
    }
}
