//! Network time (spec §3.5): the offset between our clock and the nodes', learnt from the `t` of
//! every reply, so signatures and store timestamps pass the nodes' ±60 s / +10 s windows even when
//! the device clock is off.
//!
//! Desktop averages the last 10 offsets whatever node they came from, so one node with a wrong
//! clock (or a lying one) that answers often can push every request into 406 at honest nodes.
//! Here each node counts once (its latest offset), the offset is the **median** over the last
//! [`OFFSET_WINDOW`] distinct nodes, and until [`QUORUM`] distinct nodes have been heard the
//! correction is bounded to ±[`UNCONFIRMED_LIMIT_MS`]: a small drift is corrected from one node,
//! a large one only when several nodes agree.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use shallot_clock::{Clock, SystemClock};
use shallot_proto::Ed25519Pub;

/// How many distinct nodes' latest offsets are kept (desktop keeps 10 offsets).
pub const OFFSET_WINDOW: usize = 10;
/// Distinct nodes needed before the offset follows their median without bound.
pub const QUORUM: usize = 3;
/// The largest correction (ms, either way) made while fewer than [`QUORUM`] nodes were heard.
pub const UNCONFIRMED_LIMIT_MS: i64 = 10_000;
/// Server times before 2021-01-01 are ignored as bogus (desktop's sanity check), in ms.
pub const MIN_SERVER_TIME_MS: u64 = 1_609_459_200_000;

/// The latest offset (`local − server`, ms) of each recently heard node, oldest first.
#[derive(Debug, Default)]
struct Window {
    samples: VecDeque<(Ed25519Pub, i64)>,
    offset: i64,
}

impl Window {
    fn record(&mut self, node: Ed25519Pub, offset: i64) {
        self.samples.retain(|(n, _)| *n != node);
        if self.samples.len() == OFFSET_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back((node, offset));
        let median = median(self.samples.iter().map(|(_, o)| *o).collect());
        self.offset = if self.samples.len() >= QUORUM {
            median
        } else {
            median.clamp(-UNCONFIRMED_LIMIT_MS, UNCONFIRMED_LIMIT_MS)
        };
    }
}

/// The median of `values` (the floored mean of the middle two for an even count; 0 if empty).
fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => 0,
        _ if n % 2 == 1 => values[n / 2],
        _ => {
            let sum = i128::from(values[n / 2 - 1]) + i128::from(values[n / 2]);
            i64::try_from(sum.div_euclid(2)).unwrap_or(0)
        }
    }
}

/// Local time corrected by the median offset of recently heard nodes (see the module doc).
/// Cheap to clone; clones share the window.
#[derive(Clone)]
pub struct NetworkClock {
    source: Arc<dyn Clock>,
    window: Arc<Mutex<Window>>,
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
        Self::new(Arc::new(SystemClock))
    }
}

impl NetworkClock {
    /// A clock over `source` with no observations yet (offset 0).
    pub fn new(source: Arc<dyn Clock>) -> Self {
        Self {
            source,
            window: Arc::new(Mutex::new(Window::default())),
        }
    }

    /// Records a server time `t` (ms) seen in a reply of `node`; implausible values are ignored.
    pub fn observe(&self, node: Ed25519Pub, server_ms: u64) {
        if server_ms < MIN_SERVER_TIME_MS {
            return;
        }
        let local = i128::from(self.source.now_ms());
        let offset = i64::try_from(local - i128::from(server_ms)).unwrap_or(0);
        self.window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(node, offset);
    }

    /// Records the `t` of a reply body of `node`: top level, else that of its first
    /// `batch`/`sequence` result (one node's reply counts once).
    pub fn observe_body(&self, node: Ed25519Pub, body: &serde_json::Value) {
        let t = body
            .get("t")
            .and_then(serde_json::Value::as_u64)
            .or_else(|| {
                body.get("results")
                    .and_then(serde_json::Value::as_array)?
                    .iter()
                    .find_map(|r| r.pointer("/body/t").and_then(serde_json::Value::as_u64))
            });
        if let Some(t) = t {
            self.observe(node, t);
        }
    }

    /// The current offset `local − network` in ms (0 before any observation).
    pub fn offset_ms(&self) -> i64 {
        self.window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .offset
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
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const T0: u64 = 1_700_000_000_000;

    fn node(i: u8) -> Ed25519Pub {
        Ed25519Pub::from_bytes([i; 32])
    }

    fn clock() -> NetworkClock {
        NetworkClock::new(Arc::new(Fixed(AtomicU64::new(T0))))
    }

    #[test]
    fn no_observation_means_local_time() {
        let clock = clock();
        assert_eq!(clock.offset_ms(), 0);
        assert_eq!(clock.now_ms(), T0);
    }

    #[test]
    fn small_drift_is_corrected_from_one_node_a_large_one_needs_a_quorum() {
        let clock = clock();
        clock.observe(node(1), T0 - 4_000);
        assert_eq!(clock.offset_ms(), 4_000);
        // We are 5 minutes fast: one node saying so moves the clock by the bound only…
        let clock = self::clock();
        clock.observe(node(1), T0 - 300_000);
        assert_eq!(clock.offset_ms(), UNCONFIRMED_LIMIT_MS);
        // …however often it says it.
        for _ in 0..50 {
            clock.observe(node(1), T0 - 300_000);
        }
        assert_eq!(clock.offset_ms(), UNCONFIRMED_LIMIT_MS);
        clock.observe(node(2), T0 - 300_010);
        assert_eq!(clock.offset_ms(), UNCONFIRMED_LIMIT_MS);
        // Three distinct nodes agree: the median is taken.
        clock.observe(node(3), T0 - 299_990);
        assert_eq!(clock.offset_ms(), 300_000);
        assert_eq!(clock.now_ms(), T0 - 300_000);
    }

    #[test]
    fn one_lying_node_cannot_move_the_median() {
        let clock = clock();
        // A node an hour ahead, heard first and many times, then honest nodes.
        for _ in 0..20 {
            clock.observe(node(9), T0 + 3_600_000);
        }
        assert_eq!(clock.offset_ms(), -UNCONFIRMED_LIMIT_MS);
        clock.observe(node(1), T0 + 10);
        clock.observe(node(2), T0 + 20);
        assert_eq!(clock.offset_ms(), -20);
        for _ in 0..20 {
            clock.observe(node(9), T0 + 3_600_000);
        }
        assert_eq!(clock.offset_ms(), -20);
        // The window holds the last ten distinct nodes: nine honest ones outvote the liar.
        for i in 10..30 {
            clock.observe(node(i), T0);
        }
        clock.observe(node(9), T0 + 3_600_000);
        assert_eq!(clock.offset_ms(), 0);
    }

    #[test]
    fn median_of_even_counts_is_floored_mean_of_the_middle() {
        assert_eq!(median(vec![]), 0);
        assert_eq!(median(vec![5]), 5);
        assert_eq!(median(vec![1, 2]), 1);
        assert_eq!(median(vec![-1, -2]), -2);
        assert_eq!(median(vec![3, 1, 100, 2]), 2);
        assert_eq!(median(vec![i64::MAX, i64::MAX]), i64::MAX);
    }

    #[test]
    fn ignores_bogus_times_and_reads_batch_results() {
        let clock = clock();
        clock.observe(node(1), 12345);
        assert_eq!(clock.offset_ms(), 0);
        clock.observe_body(
            node(1),
            &serde_json::json!({"results": [
                {"code": 200, "body": {"t": T0 - 100}},
                {"code": 200, "body": {"t": T0 - 300}}
            ]}),
        );
        assert_eq!(clock.offset_ms(), 100);
        clock.observe_body(node(2), &serde_json::json!({"t": T0 - 300}));
        assert_eq!(clock.offset_ms(), 200);
    }
}
