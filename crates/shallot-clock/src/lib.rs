//! The one source of "now" for every layer: protocol checks, the node, the client. Code takes a
//! [`Clock`] instead of reading the system clock, so tests can skew, stop or move time.
//! [`SystemClock`] is the one place that reads the system clock.

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of Unix time in milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Whole seconds since the Unix epoch (the devnet chain's resolution).
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place that reads the system clock.
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that shows the system time plus a settable offset (tests, simulated skew).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicU64,
}

impl OffsetClock {
    /// Shifts this clock by `offset_ms` (wrapping, so negative offsets work as two's complement).
    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(
            u64::from_ne_bytes(offset_ms.to_ne_bytes()),
            Ordering::Relaxed,
        );
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        SystemClock
            .now_ms()
            .wrapping_add(self.offset_ms.load(Ordering::Relaxed))
    }
}

/// A clock that shows a set time and moves only when told (deterministic tests).
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock stopped at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms: AtomicU64::new(now_ms),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}
