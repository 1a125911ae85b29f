//! Client-side timing defences. Nodes that see when a client's guard receives a request and
//! when a swarm member receives a store can try to match senders to recipients by timing
//! (`shallot bench timing` measures how well; README, "Privacy"). Two knobs live here:
//!
//! - **send jitter** ([`crate::ClientConfig::send_jitter`]): a message to another account waits a
//!   random time after its timestamp is taken and before it leaves, so the plaintext timestamp
//!   the recipient's swarm reads no longer pins when the onion reached the guard;
//! - **backdating** ([`crate::ClientConfig::backdate`]): the same effect on the timestamp
//!   without the wait — the timestamp is set a random time in the past instead;
//! - **cover traffic** ([`crate::ClientConfig::cover_per_minute`], [`OnionClient::start_cover`]):
//!   dummy sends at Poisson times, each two requests padded like a real send's (the message,
//!   then its sync copy) over the client's own paths, so the guard sees requests at times when
//!   nothing was sent.
//!
//! The third defence, a random delay at each relay, is a node setting (`[onion]
//! relay_delay_ms`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::onion_client::OnionClient;

/// Default [`crate::ClientConfig::send_jitter`]: none. It protects the timestamp as backdating
/// does, but makes every message wait (+1 s at the median for up to 2 s); keep it for sends that
/// follow a received message at once (README, "Privacy").
pub const DEFAULT_SEND_JITTER: Duration = Duration::ZERO;

/// Default [`crate::ClientConfig::backdate`]: up to 2 s. It costs no latency and no bytes, and
/// it is what makes relay delays work: with relays waiting up to 300 ms each, `shallot bench
/// timing` measured the adversary naming 93 % of senders from the timestamps, 45–47 % when
/// clients backdate by up to 2 s (README, "Privacy"). On by default because it is free: a user
/// never waits for it, and a message shows at most 2 s earlier than it was written.
pub const DEFAULT_BACKDATE: Duration = Duration::from_secs(2);

/// Default [`crate::ClientConfig::cover_per_minute`]: none. Without relay delays it did not
/// lower the adversary's accuracy at all, and 6 dummy sends a minute cost about 250 KiB a minute
/// per client (README, "Privacy").
pub const DEFAULT_COVER_PER_MINUTE: f64 = 0.0;

/// Highest cover rate honoured, dummy sends per minute (one every 100 ms on average): a typo in
/// a rate must not turn a client into a flood.
pub const MAX_COVER_PER_MINUTE: f64 = 600.0;

/// Requests in one dummy send: a real send is the message to the recipient's swarm, then its
/// sync copy to our own, one after the other.
pub const REQUESTS_PER_DUMMY_SEND: usize = 2;

/// Longest wait between two dummy sends, whatever the rate (the exponential draw is cut here).
const MAX_COVER_GAP: Duration = Duration::from_secs(24 * 60 * 60);

/// A random delay uniform in `0..=max` (µs resolution); zero when `max` is zero.
pub fn jitter(max: Duration, rng: &mut impl Rng) -> Duration {
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    if max_us == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(rng.gen_range(0..=max_us))
}

/// A message timestamp for a send at `now_ms`: up to `backdate` earlier (uniform), but after
/// `previous` (the conversation's latest message), so messages keep the order they were sent
/// in; never after `now_ms`.
pub fn backdated(now_ms: u64, backdate: Duration, previous: u64, rng: &mut impl Rng) -> u64 {
    let back = u64::try_from(jitter(backdate, rng).as_millis()).unwrap_or(u64::MAX);
    now_ms
        .saturating_sub(back)
        .max(previous.saturating_add(1).min(now_ms))
}

/// The wait before the next event of a Poisson process of `per_minute` events a minute
/// (exponentially distributed, mean one minute / `per_minute`), at most a day. `None` when the
/// rate is not a positive number.
pub fn poisson_gap(per_minute: f64, rng: &mut impl Rng) -> Option<Duration> {
    if !per_minute.is_finite() || per_minute <= 0.0 {
        return None;
    }
    let rate = per_minute.min(MAX_COVER_PER_MINUTE) / 60.0;
    // 1 - U lies in (0, 1]: its logarithm is finite.
    let unit: f64 = 1.0 - rng.gen::<f64>();
    let secs = -unit.ln() / rate;
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_COVER_GAP, |gap| gap.min(MAX_COVER_GAP)))
}

/// Counts of a running [`CoverTraffic`].
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    failed: AtomicU64,
}

/// Cover traffic running in the background ([`OnionClient::start_cover`]); stops when dropped.
#[derive(Debug)]
pub struct CoverTraffic {
    task: tokio::task::JoinHandle<()>,
    counts: Arc<Counts>,
}

impl CoverTraffic {
    /// Dummy requests answered so far.
    pub fn sent(&self) -> u64 {
        self.counts.sent.load(Ordering::Relaxed)
    }

    /// Dummy requests that failed (no path, a path failure) or dummy sends skipped (too many in
    /// flight); the schedule goes on.
    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }
}

impl Drop for CoverTraffic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OnionClient {
    /// Starts cover traffic at [`crate::ClientConfig::cover_per_minute`] dummy sends a minute, on the
    /// current Tokio runtime; `None` when the rate is zero. Dummy sends go out at Poisson times
    /// (at most 4 in flight; one due beyond that is skipped), each as
    /// [`REQUESTS_PER_DUMMY_SEND`] padded `info` requests to random nodes over our paths.
    /// Their guard sees the request and reply sizes of a real send; the nodes after it see no
    /// address. Costs about 40 KiB per dummy send at the client (and at each hop).
    pub fn start_cover(&self) -> Option<CoverTraffic> {
        let per_minute = self.config().cover_per_minute;
        poisson_gap(per_minute, &mut rand::thread_rng())?;
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(cover_loop(self.clone(), per_minute, Arc::clone(&counts)));
        Some(CoverTraffic { task, counts })
    }

    /// A delay to wait before a message leaves: uniform up to [`crate::ClientConfig::send_jitter`].
    pub(crate) fn send_delay(&self) -> Duration {
        jitter(self.config().send_jitter, &mut rand::thread_rng())
    }
}

/// Dummy sends in flight at once; a dummy send due while this many are still out is skipped
/// (paths too slow to keep up), so a stalled network cannot pile them up.
const MAX_DUMMY_SENDS_IN_FLIGHT: usize = 4;

async fn cover_loop(client: OnionClient, per_minute: f64, counts: Arc<Counts>) {
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        let Some(gap) = poisson_gap(per_minute, &mut rand::thread_rng()) else {
            return;
        };
        tokio::time::sleep(gap).await;
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() >= MAX_DUMMY_SENDS_IN_FLIGHT {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // Its own task: a slow path (relay delays) must not stretch the schedule.
        in_flight.spawn(dummy_send(client.clone(), Arc::clone(&counts)));
    }
}

/// One dummy send: [`REQUESTS_PER_DUMMY_SEND`] requests, one after the other.
async fn dummy_send(client: OnionClient, counts: Arc<Counts>) {
    for _ in 0..REQUESTS_PER_DUMMY_SEND {
        match client.send_dummy().await {
            Ok(()) => counts.sent.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::debug!("dummy request failed: {e}");
                counts.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn jitter_is_uniform_and_bounded() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(jitter(Duration::ZERO, &mut rng), Duration::ZERO);
        let max = Duration::from_millis(500);
        let draws: Vec<Duration> = (0..2000).map(|_| jitter(max, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        let low = draws.iter().filter(|d| **d < max / 2).count();
        assert!((900..1100).contains(&low), "{low} of 2000 below the middle");
    }

    #[test]
    fn backdated_timestamps_are_earlier_bounded_and_increasing() {
        let mut rng = StdRng::seed_from_u64(3);
        let max = Duration::from_secs(2);
        assert_eq!(backdated(10_000, Duration::ZERO, 0, &mut rng), 10_000);
        let mut previous = 0;
        let mut backs = Vec::new();
        for step in 0..500u64 {
            // Sends 50 ms apart: closer than the backdating.
            let now = 1_000_000 + 50 * step;
            let stamp = backdated(now, max, previous, &mut rng);
            assert!(stamp <= now && stamp + 2000 >= now, "{stamp} for {now}");
            assert!(stamp > previous, "order kept");
            backs.push(now - stamp);
            previous = stamp;
        }
        // Far apart, the full range is used.
        let spread: Vec<u64> = (0..500u64)
            .map(|i| {
                let now = 1_000_000 + 10_000 * i;
                now - backdated(now, max, 0, &mut rng)
            })
            .collect();
        assert!(spread.iter().any(|&b| b > 1500) && spread.iter().any(|&b| b < 500));
        // A clock that went back never yields a timestamp after now.
        assert_eq!(backdated(5, max, 100, &mut rng), 5);
    }

    #[test]
    fn cover_gaps_are_exponential_with_the_asked_mean() {
        let mut rng = StdRng::seed_from_u64(2);
        for off in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(poisson_gap(off, &mut rng), None, "{off}");
        }
        // 30 a minute: mean 2 s; an exponential's median is ln 2 of its mean.
        let mut gaps: Vec<f64> = (0..4000)
            .map(|_| poisson_gap(30.0, &mut rng).unwrap().as_secs_f64())
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((1.85..2.15).contains(&mean), "mean gap {mean}");
        gaps.sort_by(f64::total_cmp);
        let median = gaps[gaps.len() / 2];
        assert!((1.25..1.53).contains(&median), "median gap {median}");
        // An absurd rate is capped; a tiny one waits at most a day.
        let fast = poisson_gap(1e12, &mut rng).unwrap();
        assert!(fast < Duration::from_secs(5));
        let slow = (0..100)
            .map(|_| poisson_gap(1e-12, &mut rng).unwrap())
            .max()
            .unwrap();
        assert_eq!(slow, MAX_COVER_GAP);
    }
}
