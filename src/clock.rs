//! Time, behind a trait, so that expiry is deterministic in tests.
//!
//! The cache reads time only through [`Clock`]. Natively, `SystemClock` reads the system time;
//! in JavaScript the platform layer supplies a clock backed by `Date.now()`, because
//! `std::time::Instant` panics on `wasm32-unknown-unknown`. Tests use [`ManualClock`] and move it
//! forward by hand, so TTL tests are exact and instant.

use std::cell::Cell;
use std::rc::Rc;

/// A source of wall-clock milliseconds.
pub trait Clock {
    /// Milliseconds since the Unix epoch (any fixed origin works: only differences matter).
    fn now_ms(&self) -> u64;

    /// A high-resolution reading in milliseconds, for latency measurement. Defaults to
    /// [`Clock::now_ms`].
    fn precise_ms(&self) -> f64 {
        self.now_ms() as f64
    }
}

/// The host's system clock. Not available on `wasm32-unknown-unknown`.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(not(target_arch = "wasm32"))]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn precise_ms(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// A clock that moves only when told to. Clones share one time.
///
/// ```
/// use cachette::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// let view = clock.clone();
/// clock.advance_ms(250);
/// assert_eq!(view.now_ms(), 1_250);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Rc<Cell<u64>>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            now: Rc::new(Cell::new(start_ms)),
        }
    }

    /// Moves time forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        self.now.set(self.now.get().saturating_add(ms));
    }

    /// Sets the time.
    pub fn set_ms(&self, ms: u64) {
        self.now.set(ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
}

/// A TTL in milliseconds that means "never expires" (what `secs_to_ms(f64::INFINITY)` gives).
pub const NEVER_MS: u64 = u64::MAX;

/// Converts a duration in seconds (possibly fractional) to whole milliseconds, rounding up so
/// that a positive duration never becomes zero. Callers validate that `secs` is finite and
/// non-negative first.
pub fn secs_to_ms(secs: f64) -> u64 {
    let exact = secs * 1000.0;
    // Products such as 0.07 * 1000 land a hair above the integer; do not round those up.
    let ms = if (exact - exact.round()).abs() < 1e-6 {
        exact.round()
    } else {
        exact.ceil()
    };
    if ms >= u64::MAX as f64 {
        u64::MAX
    } else if ms > 0.0 {
        ms as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_and_saturates() {
        let c = ManualClock::new(5);
        let d = c.clone();
        c.advance_ms(10);
        assert_eq!(d.now_ms(), 15);
        c.set_ms(u64::MAX - 1);
        c.advance_ms(10);
        assert_eq!(d.now_ms(), u64::MAX);
    }

    #[test]
    fn seconds_convert_to_ms() {
        assert_eq!(secs_to_ms(0.05), 50);
        assert_eq!(secs_to_ms(0.07), 70);
        assert_eq!(secs_to_ms(0.0015), 2);
        assert_eq!(secs_to_ms(0.0001), 1);
        assert_eq!(secs_to_ms(3600.0), 3_600_000);
        assert_eq!(secs_to_ms(0.0), 0);
        assert_eq!(secs_to_ms(1e300), u64::MAX);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn system_clock_moves_forward() {
        let a = SystemClock.now_ms();
        assert!(a > 1_600_000_000_000);
        assert!(SystemClock.precise_ms() >= a as f64);
    }
}
