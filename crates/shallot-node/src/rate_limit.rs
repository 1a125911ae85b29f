//! Per-client-address token buckets (storage RPC spec §12): 600 tokens, refilled at 300 per
//! second, at most 10 000 clients tracked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rate-limit settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Bucket size: the burst a client may send.
    pub capacity: u32,
    /// Tokens added per second.
    pub refill_per_sec: u32,
    /// Most client addresses tracked at once.
    pub max_clients: usize,
    /// Never limit loopback clients (devnets, local load tests).
    pub exempt_loopback: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            capacity: 600,
            refill_per_sec: 300,
            max_clients: 10_000,
            exempt_loopback: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u32,
    last: Instant,
}

/// The limiter shared by all connections.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter with these settings.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Adds the whole tokens earned since the bucket was last topped up, keeping the fractional
    /// remainder so slow, steady clients are not starved.
    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let per_token = Duration::from_secs(1) / self.config.refill_per_sec.max(1);
        let earned =
            now.saturating_duration_since(bucket.last).as_nanos() / per_token.as_nanos().max(1);
        if earned == 0 {
            return;
        }
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        bucket.tokens = bucket
            .tokens
            .saturating_add(earned)
            .min(self.config.capacity);
        bucket.last = if bucket.tokens == self.config.capacity {
            now
        } else {
            bucket.last + per_token * earned
        };
    }

    /// Takes one token for `ip`; `false` means the request must be refused with 429.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.config.exempt_loopback && ip.is_loopback() {
            return true;
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(&ip) {
            self.refill(bucket, now);
            return match bucket.tokens.checked_sub(1) {
                Some(left) => {
                    bucket.tokens = left;
                    true
                }
                None => false,
            };
        }
        if buckets.len() >= self.config.max_clients {
            // Make room by forgetting clients whose buckets are full again.
            buckets.retain(|_, bucket| {
                self.refill(bucket, now);
                bucket.tokens < self.config.capacity
            });
            if buckets.len() >= self.config.max_clients {
                return false;
            }
        }
        buckets.insert(
            ip,
            Bucket {
                tokens: self.config.capacity.saturating_sub(1),
                last: now,
            },
        );
        true
    }

    /// Drops buckets that have refilled completely (called periodically to bound memory).
    pub fn prune(&self, now: Instant) {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.retain(|_, bucket| {
            self.refill(bucket, now);
            bucket.tokens < self.config.capacity
        });
    }

    /// Number of client addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn burst_of_capacity_then_refuse_then_refill() {
        let limiter = RateLimiter::new(RateLimitConfig::default());
        let t0 = Instant::now();
        for i in 0..600 {
            assert!(limiter.allow(ip(1), t0), "request {i}");
        }
        assert!(!limiter.allow(ip(1), t0));
        // Another client is unaffected.
        assert!(limiter.allow(ip(2), t0));
        // 300 tokens per second: after 10 ms, 3 more requests.
        let t1 = t0 + Duration::from_millis(10);
        assert!(limiter.allow(ip(1), t1));
        assert!(limiter.allow(ip(1), t1));
        assert!(limiter.allow(ip(1), t1));
        assert!(!limiter.allow(ip(1), t1));
    }

    #[test]
    fn loopback_exemption_and_client_cap() {
        let limiter = RateLimiter::new(RateLimitConfig {
            capacity: 1,
            max_clients: 2,
            exempt_loopback: true,
            ..RateLimitConfig::default()
        });
        let t0 = Instant::now();
        let lo = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        for _ in 0..100 {
            assert!(limiter.allow(lo, t0));
        }
        assert!(limiter.allow(ip(1), t0));
        assert!(limiter.allow(ip(2), t0));
        // Table full of non-full buckets: a new client is refused.
        assert!(!limiter.allow(ip(3), t0));
        // Once the others have refilled, they are forgotten and the new client gets in.
        let later = t0 + Duration::from_secs(1);
        assert!(limiter.allow(ip(3), later));
        limiter.prune(later + Duration::from_secs(1));
        assert_eq!(limiter.tracked(), 0);
    }
}
