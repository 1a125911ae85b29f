//! Limits on the work onion requests make a node do: concurrent relays and proxied requests,
//! the size of any reply read from a peer or an HTTP server, which addresses a proxy layer
//! may reach, and the random delay before relaying a layer (`[onion]` in `node.toml`).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default cap on a reply read from a peer or a proxied HTTP server: 10 MiB, the reference's
/// largest message.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 10 * 1024 * 1024;

/// Longest relay delay whatever the configuration: 1 s per hop. A 3-hop path then adds at most
/// 3 s, inside the client's 20 s request timeout and its 10 s margin over a waiting retrieve,
/// and the guard's 30 s relay timeout still covers two later delays plus a 25 s wait.
pub const MAX_RELAY_DELAY_MS: u64 = 1000;

/// `[onion]` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnionLimits {
    /// Onion layers relayed to a next hop at the same time; more answer `503`.
    pub max_concurrent_relays: usize,
    /// Proxy layers (requests to HTTP servers) in flight at the same time; more answer `503`.
    pub max_concurrent_proxies: usize,
    /// Largest reply body read from a peer or an HTTP server; a longer one is cut off and the
    /// request fails with `502`.
    pub max_reply_bytes: usize,
    /// Let proxy layers reach loopback, private, link-local and other non-public addresses.
    /// Devnets only (they run everything on 127.x); never on the open internet.
    pub allow_private_targets: bool,
    /// Timing defence: before relaying a layer to the next hop, wait a random time drawn
    /// uniformly from 0 to this many ms (at most [`MAX_RELAY_DELAY_MS`]), so that the time a
    /// request reaches a swarm member says less about when it left its sender. The wait holds
    /// a relay slot (it counts against `max_concurrent_relays`) but no thread. 0: relay at once.
    pub relay_delay_ms: u64,
}

impl Default for OnionLimits {
    fn default() -> Self {
        Self {
            // Each client waiting for messages (private push) holds a slot at its guard and
            // its middle hop for up to 20 s; a slot is one pending request (memory-bound).
            max_concurrent_relays: 2048,
            max_concurrent_proxies: 64,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            allow_private_targets: false,
            relay_delay_ms: 0,
        }
    }
}

impl OnionLimits {
    /// A delay to wait before relaying one layer: uniform in 0..=`relay_delay_ms` (capped at
    /// [`MAX_RELAY_DELAY_MS`]), with µs resolution.
    pub fn relay_delay(&self, rng: &mut impl Rng) -> Duration {
        let max_us = self.relay_delay_ms.min(MAX_RELAY_DELAY_MS) * 1000;
        if max_us == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(rng.gen_range(0..=max_us))
    }
}

/// Which bounded kind of work a permit is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Relaying a layer to the next hop.
    Relay,
    /// Proxying a layer to an HTTP server.
    Proxy,
}

/// The semaphores enforcing [`OnionLimits`]' concurrency caps. Acquiring never waits: over the
/// cap the request is refused at once rather than queued.
#[derive(Clone, Debug)]
pub struct WorkSlots {
    relays: Arc<Semaphore>,
    proxies: Arc<Semaphore>,
}

impl WorkSlots {
    /// Slots for these limits (a cap of 0 is read as 1).
    pub fn new(limits: &OnionLimits) -> Self {
        let cap = |n: usize| n.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            relays: Arc::new(Semaphore::new(cap(limits.max_concurrent_relays))),
            proxies: Arc::new(Semaphore::new(cap(limits.max_concurrent_proxies))),
        }
    }

    /// A slot for `work`, or `None` when all are taken. The slot is freed when dropped.
    pub fn try_acquire(&self, work: Work) -> Option<OwnedSemaphorePermit> {
        let semaphore = match work {
            Work::Relay => &self.relays,
            Work::Proxy => &self.proxies,
        };
        semaphore.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_over_the_cap_and_free_on_drop() {
        let slots = WorkSlots::new(&OnionLimits {
            max_concurrent_relays: 2,
            max_concurrent_proxies: 0,
            ..OnionLimits::default()
        });
        let a = slots.try_acquire(Work::Relay).unwrap();
        let _b = slots.try_acquire(Work::Relay).unwrap();
        assert!(slots.try_acquire(Work::Relay).is_none());
        // Proxies have their own slots (a configured 0 still allows one).
        let p = slots.try_acquire(Work::Proxy).unwrap();
        assert!(slots.try_acquire(Work::Proxy).is_none());
        drop(a);
        drop(p);
        assert!(slots.try_acquire(Work::Relay).is_some());
        assert!(slots.try_acquire(Work::Proxy).is_some());
    }

    #[test]
    fn relay_delays_are_random_and_bounded() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let off = OnionLimits::default();
        assert_eq!(off.relay_delay(&mut rng), Duration::ZERO);
        let on = OnionLimits {
            relay_delay_ms: 200,
            ..OnionLimits::default()
        };
        let delays: Vec<Duration> = (0..1000).map(|_| on.relay_delay(&mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(200)));
        // Uniform: both halves of the range are used about equally.
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(100))
            .count();
        assert!((400..600).contains(&low), "{low} of 1000 below the middle");
        // A configured delay above the cap is cut to it.
        let huge = OnionLimits {
            relay_delay_ms: u64::MAX / 2,
            ..OnionLimits::default()
        };
        let max = (0..1000).map(|_| huge.relay_delay(&mut rng)).max().unwrap();
        assert!(max <= Duration::from_millis(MAX_RELAY_DELAY_MS));
        assert!(max > Duration::from_millis(MAX_RELAY_DELAY_MS / 2));
    }
}
