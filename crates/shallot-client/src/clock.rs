//! Network time (spec §3.5): the offset between our clock and the nodes', learnt from the `t` of
//! every reply, so signatures and store timestamps pass the nodes' ±60 s / +10 s windows even when
//! the device clock is off.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// How many recent offsets are averaged (desktop keeps 10).
pub const OFFSET_WINDOW: usize = 10;
/// Server times before 2021-01-01 are ignored as bogus (desktop's sanity check), in ms.
pub const MIN_SERVER_TIME_MS: u64 = 1_609_459_200_000;

/// Where local time comes from; injectable so tests can skew or freeze it.
pub trait TimeSource: Send + Sync {
    /// Milliseconds since the Unix epoch by this source.
    fn now_ms(&self) -> u64;
}

/// The device's system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemTimeSource;

impl TimeSource for SystemTimeSource {
    #[allow(clippy::disallowed_methods)] // The one place that reads the system clock.
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Local time corrected by the floored average of the last [`OFFSET_WINDOW`] observed offsets
/// (`local − server`), as desktop's `NetworkTime`. Cheap to clone; clones share the window.
#[derive(Clone)]
pub struct NetworkClock {
    source: Arc<dyn TimeSource>,
    offsets: Arc<Mutex<VecDeque<i64>>>,
}

impl std::fmt::Debug for NetworkClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkClock")
            .field("offset_ms", &self.offset_ms())
            .finish_non_exhaustive()
    }
}

impl Default for NetworkClock {
    fn default() -> Self {
        Self::new(Arc::new(SystemTimeSource))
    }
}

impl NetworkClock {
    /// A clock over `source` with no observations yet (offset 0).
    pub fn new(source: Arc<dyn TimeSource>) -> Self {
        Self {
            source,
            offsets: Arc::new(Mutex::new(VecDeque::with_capacity(OFFSET_WINDOW))),
        }
    }

    /// Records a server time `t` (ms) seen in a reply; implausible values are ignored.
    pub fn observe(&self, server_ms: u64) {
        if server_ms < MIN_SERVER_TIME_MS {
            return;
        }
        let local = i128::from(self.source.now_ms());
        let offset = i64::try_from(local - i128::from(server_ms)).unwrap_or(0);
        let mut offsets = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        if offsets.len() == OFFSET_WINDOW {
            offsets.pop_front();
        }
        offsets.push_back(offset);
    }

    /// Records every `t` in a reply body: top level, and in each `batch`/`sequence` result.
    pub fn observe_body(&self, body: &serde_json::Value) {
        if let Some(t) = body.get("t").and_then(serde_json::Value::as_u64) {
            self.observe(t);
        }
        if let Some(results) = body.get("results").and_then(serde_json::Value::as_array) {
            for result in results {
                if let Some(t) = result
                    .pointer("/body/t")
                    .and_then(serde_json::Value::as_u64)
                {
                    self.observe(t);
                }
            }
        }
    }

    /// The current offset `local − network` in ms: floored average of the window (0 when empty).
    pub fn offset_ms(&self) -> i64 {
        let offsets = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        if offsets.is_empty() {
            return 0;
        }
        let sum: i128 = offsets.iter().copied().map(i128::from).sum();
        let len = i128::try_from(offsets.len()).unwrap_or(1);
        i64::try_from(sum.div_euclid(len)).unwrap_or(0)
    }

    /// Network time in ms since the epoch: local time minus the offset. Use it for every
    /// signature timestamp, message timestamp and TTL computation.
    pub fn now_ms(&self) -> u64 {
        let now = i128::from(self.source.now_ms()) - i128::from(self.offset_ms());
        u64::try_from(now.max(0)).unwrap_or(u64::MAX)
    }

    /// Local time by the underlying source, uncorrected.
    pub fn local_ms(&self) -> u64 {
        self.source.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Fixed(AtomicU64);
    impl TimeSource for Fixed {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn no_observation_means_local_time() {
        let clock = NetworkClock::new(Arc::new(Fixed(AtomicU64::new(T0))));
        assert_eq!(clock.offset_ms(), 0);
        assert_eq!(clock.now_ms(), T0);
    }

    #[test]
    fn offset_is_floored_average_of_last_ten() {
        let source = Arc::new(Fixed(AtomicU64::new(T0)));
        let clock = NetworkClock::new(source.clone());
        // We are 5 minutes fast: server says T0 - 300 s.
        clock.observe(T0 - 300_000);
        assert_eq!(clock.offset_ms(), 300_000);
        assert_eq!(clock.now_ms(), T0 - 300_000);
        // Offsets 1 and 2 average to 1.5, floored to 1; negative -1 and -2 floor to -2.
        let clock = NetworkClock::new(source.clone());
        clock.observe(T0 - 1);
        clock.observe(T0 - 2);
        assert_eq!(clock.offset_ms(), 1);
        let clock = NetworkClock::new(source.clone());
        clock.observe(T0 + 1);
        clock.observe(T0 + 2);
        assert_eq!(clock.offset_ms(), -2);
        // The window keeps only the last 10: ten observations of offset 0 replace an old 1000.
        let clock = NetworkClock::new(source);
        clock.observe(T0 - 1000);
        for _ in 0..OFFSET_WINDOW {
            clock.observe(T0);
        }
        assert_eq!(clock.offset_ms(), 0);
    }

    #[test]
    fn ignores_bogus_times_and_reads_batch_results() {
        let clock = NetworkClock::new(Arc::new(Fixed(AtomicU64::new(T0))));
        clock.observe(12345);
        assert_eq!(clock.offset_ms(), 0);
        clock.observe_body(&serde_json::json!({"results": [
            {"code": 200, "body": {"t": T0 - 100}},
            {"code": 200, "body": {"t": T0 - 300}}
        ]}));
        assert_eq!(clock.offset_ms(), 200);
    }
}
