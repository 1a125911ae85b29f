//! Prometheus metrics: counters and histograms of the `prometheus-client` crate, updated on the
//! request path and written in the Prometheus text format (0.0.4) on the admin listener's
//! `GET /metrics`.

use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
}

/// The node's counters. Handles are shared: [`Metrics::render`] registers clones.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<HttpLabels, Counter>,
    methods: Family<MethodLabels, Counter>,
    rpc_latency: Histogram,
    onion_latency: Histogram,
    onion_hops: Family<RoleLabels, Counter>,
    stores: Counter,
    stored_bytes: Counter,
    retrieves: Counter,
    retrieved_messages: Counter,
    peer_failures: Counter,
    rate_limited: Counter,
    onion_busy: Family<RoleLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            requests: Family::default(),
            methods: Family::default(),
            rpc_latency: Histogram::new(LATENCY_BUCKETS),
            onion_latency: Histogram::new(LATENCY_BUCKETS),
            onion_hops: Family::default(),
            stores: Counter::default(),
            stored_bytes: Counter::default(),
            retrieves: Counter::default(),
            retrieved_messages: Counter::default(),
            peer_failures: Counter::default(),
            rate_limited: Counter::default(),
            onion_busy: Family::default(),
        };
        // Every role's series exists from the start, at 0.
        for role in ["relay", "final", "proxy"] {
            metrics
                .onion_hops
                .get_or_create(&RoleLabels { role })
                .inc_by(0);
        }
        for role in ["relay", "proxy"] {
            metrics
                .onion_busy
                .get_or_create(&RoleLabels { role })
                .inc_by(0);
        }
        metrics
    }
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

fn count(bytes: usize) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

impl Metrics {
    /// Counts an RPC method invocation (including batch subrequests).
    pub fn count_request(&self, method: &'static str) {
        self.methods.get_or_create(&MethodLabels { method }).inc();
    }

    /// Records an HTTP response of a route with its latency.
    pub fn observe_http(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&HttpLabels { route, status })
            .inc();
        let histogram = if route == "onion" {
            &self.onion_latency
        } else {
            &self.rpc_latency
        };
        histogram.observe(elapsed.as_secs_f64());
    }

    /// Counts an onion request by what it was.
    pub fn count_onion(&self, kind: OnionKind) {
        let role = match kind {
            OnionKind::Relay => "relay",
            OnionKind::Final => "final",
            OnionKind::Proxy => "proxy",
        };
        self.onion_hops.get_or_create(&RoleLabels { role }).inc();
    }

    /// Counts a successful store of `bytes` bytes.
    pub fn count_store(&self, bytes: usize) {
        self.stores.inc();
        self.stored_bytes.inc_by(count(bytes));
    }

    /// Counts a retrieve returning `messages` messages.
    pub fn count_retrieve(&self, messages: usize) {
        self.retrieves.inc();
        self.retrieved_messages.inc_by(count(messages));
    }

    /// Counts a swarm peer that did not answer.
    pub fn count_peer_failure(&self) {
        self.peer_failures.inc();
    }

    /// Counts an onion layer refused because too many relays or proxied requests were in flight.
    pub fn count_busy(&self, work: crate::onion_limits::Work) {
        let role = match work {
            crate::onion_limits::Work::Relay => "relay",
            crate::onion_limits::Work::Proxy => "proxy",
        };
        self.onion_busy.get_or_create(&RoleLabels { role }).inc();
    }

    /// Counts a request refused by the rate limiter.
    pub fn count_rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Renders everything in the Prometheus text format (0.0.4); `gauges` adds point-in-time
    /// values (database size, message count, …) supplied by the caller as (name, help, value).
    /// Counter families are named with their `_total` suffix, as the README lists them.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str, metric: Counter| {
            registry.register(name, help, metric);
        };
        counter(
            "shallot_stores",
            "Messages stored (new or duplicate)",
            self.stores.clone(),
        );
        counter(
            "shallot_stored_bytes",
            "Bytes of message data stored",
            self.stored_bytes.clone(),
        );
        counter(
            "shallot_retrieves",
            "Retrieve requests served",
            self.retrieves.clone(),
        );
        counter(
            "shallot_retrieved_messages",
            "Messages returned by retrieves",
            self.retrieved_messages.clone(),
        );
        counter(
            "shallot_peer_failures",
            "Swarm peers that did not answer a forwarded request",
            self.peer_failures.clone(),
        );
        counter(
            "shallot_rate_limited",
            "Requests refused by the per-client rate limit",
            self.rate_limited.clone(),
        );
        registry.register(
            "shallot_http_requests",
            "HTTP requests by route and status",
            self.requests.clone(),
        );
        registry.register(
            "shallot_rpc_method",
            "Storage RPC calls by method",
            self.methods.clone(),
        );
        registry.register(
            "shallot_onion_hops",
            "Onion requests handled, by role",
            self.onion_hops.clone(),
        );
        registry.register(
            "shallot_onion_busy",
            "Onion layers refused with 503 because too many were in flight",
            self.onion_busy.clone(),
        );
        registry.register(
            "shallot_request_seconds",
            "Latency of client RPC requests",
            self.rpc_latency.clone(),
        );
        registry.register(
            "shallot_onion_seconds",
            "Latency of onion requests at this hop",
            self.onion_latency.clone(),
        );
        for (name, help, value) in gauges {
            // The registry ends every help text with a full stop.
            let help = help.strip_suffix('.').unwrap_or(help);
            registry.register(*name, help, ConstGauge::new(*value));
        }
        let mut out = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_text::encode(&mut out, &registry);
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
        assert!(text.contains("# TYPE shallot_rpc_method_total counter\n"));
        assert!(text.contains("shallot_rpc_method_total{method=\"store\"} 1\n"));
        assert!(text.contains("shallot_stored_bytes_total 10\n"));
        assert!(
            text.contains("shallot_http_requests_total{route=\"storage_rpc\",status=\"200\"} 1\n")
        );
        assert!(text.contains("shallot_request_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("shallot_request_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("shallot_request_seconds_count 1\n"));
        assert!(text.contains("shallot_onion_hops_total{role=\"relay\"} 1\n"));
        assert!(text.contains("shallot_onion_hops_total{role=\"final\"} 0\n"));
        assert!(text.contains("shallot_onion_busy_total{role=\"proxy\"} 0\n"));
        assert!(text.contains("# HELP shallot_db_bytes Database size.\n# TYPE shallot_db_bytes gauge\nshallot_db_bytes 4096\n"));
        // Nothing named twice over.
        assert!(!text.contains("_total_total"));
    }
}
