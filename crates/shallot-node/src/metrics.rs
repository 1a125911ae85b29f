//! Prometheus metrics: lock-free counters updated on the request path, rendered as text on the
//! admin listener's `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)] // Microsecond sums fit f64 for centuries of uptime.
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The node's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    methods: Mutex<BTreeMap<&'static str, u64>>,
    rpc_latency: Histogram,
    onion_latency: Histogram,
    onion_requests: AtomicU64,
    onion_relayed: AtomicU64,
    onion_final: AtomicU64,
    onion_proxied: AtomicU64,
    stores: AtomicU64,
    stored_bytes: AtomicU64,
    retrieves: AtomicU64,
    retrieved_messages: AtomicU64,
    peer_failures: AtomicU64,
    rate_limited: AtomicU64,
    busy_relays: AtomicU64,
    busy_proxies: AtomicU64,
}

/// What an onion request turned out to be at this node.
#[derive(Clone, Copy, Debug)]
pub enum OnionKind {
    /// Relayed to the next hop.
    Relay,
    /// Executed here as the destination.
    Final,
    /// Proxied to an HTTP server.
    Proxy,
}

impl Metrics {
    /// Counts an RPC method invocation (including batch subrequests).
    pub fn count_request(&self, method: &'static str) {
        let mut methods = self
            .methods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *methods.entry(method).or_default() += 1;
    }

    /// Records an HTTP response of a route with its latency.
    pub fn observe_http(&self, route: &'static str, status: u16, elapsed: Duration) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((route, status)).or_default() += 1;
        drop(requests);
        if route == "onion" {
            self.onion_latency.observe(elapsed);
        } else {
            self.rpc_latency.observe(elapsed);
        }
    }

    /// Counts an onion request by what it was.
    pub fn count_onion(&self, kind: OnionKind) {
        self.onion_requests.fetch_add(1, Ordering::Relaxed);
        let counter = match kind {
            OnionKind::Relay => &self.onion_relayed,
            OnionKind::Final => &self.onion_final,
            OnionKind::Proxy => &self.onion_proxied,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a successful store of `bytes` bytes.
    pub fn count_store(&self, bytes: usize) {
        self.stores.fetch_add(1, Ordering::Relaxed);
        self.stored_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts a retrieve returning `messages` messages.
    pub fn count_retrieve(&self, messages: usize) {
        self.retrieves.fetch_add(1, Ordering::Relaxed);
        self.retrieved_messages.fetch_add(
            u64::try_from(messages).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts a swarm peer that did not answer.
    pub fn count_peer_failure(&self) {
        self.peer_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an onion layer refused because too many relays or proxied requests were in flight.
    pub fn count_busy(&self, work: crate::onion_limits::Work) {
        match work {
            crate::onion_limits::Work::Relay => &self.busy_relays,
            crate::onion_limits::Work::Proxy => &self.busy_proxies,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused by the rate limiter.
    pub fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders everything in the Prometheus text format; `gauges` adds point-in-time values
    /// (database size, message count, …) supplied by the caller.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        };
        let _ = writeln!(out, "# HELP shallot_http_requests_total HTTP requests by route and status.\n# TYPE shallot_http_requests_total counter");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "shallot_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP shallot_rpc_method_total Storage RPC calls by method.\n# TYPE shallot_rpc_method_total counter");
        for (method, n) in self
            .methods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "shallot_rpc_method_total{{method=\"{method}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP shallot_onion_hops_total Onion requests handled, by role.\n# TYPE shallot_onion_hops_total counter");
        for (kind, value) in [
            ("relay", &self.onion_relayed),
            ("final", &self.onion_final),
            ("proxy", &self.onion_proxied),
        ] {
            let _ = writeln!(
                out,
                "shallot_onion_hops_total{{role=\"{kind}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        counter(
            &mut out,
            "shallot_stores_total",
            "Messages stored (new or duplicate).",
            &self.stores,
        );
        counter(
            &mut out,
            "shallot_stored_bytes_total",
            "Bytes of message data stored.",
            &self.stored_bytes,
        );
        counter(
            &mut out,
            "shallot_retrieves_total",
            "Retrieve requests served.",
            &self.retrieves,
        );
        counter(
            &mut out,
            "shallot_retrieved_messages_total",
            "Messages returned by retrieves.",
            &self.retrieved_messages,
        );
        counter(
            &mut out,
            "shallot_peer_failures_total",
            "Swarm peers that did not answer a forwarded request.",
            &self.peer_failures,
        );
        counter(
            &mut out,
            "shallot_rate_limited_total",
            "Requests refused by the per-client rate limit.",
            &self.rate_limited,
        );
        let _ = writeln!(out, "# HELP shallot_onion_busy_total Onion layers refused with 503 because too many were in flight.\n# TYPE shallot_onion_busy_total counter");
        for (kind, value) in [("relay", &self.busy_relays), ("proxy", &self.busy_proxies)] {
            let _ = writeln!(
                out,
                "shallot_onion_busy_total{{role=\"{kind}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP shallot_request_seconds Latency of client RPC requests.\n# TYPE shallot_request_seconds histogram");
        self.rpc_latency.render(&mut out, "shallot_request_seconds");
        let _ = writeln!(out, "# HELP shallot_onion_seconds Latency of onion requests at this hop.\n# TYPE shallot_onion_seconds histogram");
        self.onion_latency.render(&mut out, "shallot_onion_seconds");
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.count_request("store");
        m.count_store(10);
        m.observe_http("storage_rpc", 200, Duration::from_millis(3));
        m.count_onion(OnionKind::Relay);
        let text = m.render(&[("shallot_db_bytes", "Database size.", 4096)]);
        assert!(text.contains("shallot_rpc_method_total{method=\"store\"} 1"));
        assert!(text.contains("shallot_stored_bytes_total 10"));
        assert!(
            text.contains("shallot_http_requests_total{route=\"storage_rpc\",status=\"200\"} 1")
        );
        assert!(text.contains("shallot_request_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("shallot_request_seconds_count 1"));
        assert!(text.contains("shallot_onion_hops_total{role=\"relay\"} 1"));
        assert!(text.contains("shallot_db_bytes 4096"));
    }
}
