//! The node's fixed network timeouts, with the reason for each value. The listener's
//! configurable ones (handshake, headers, body, idle) are in [`crate::connections`].

use std::time::Duration;

/// Forwarding a recursive request to a swarm peer (storage RPC spec §3.2, §8.5): a slow peer must
/// not hold up the client's answer; its entry is reported as `timeout`.
pub const PEER_FORWARD: Duration = Duration::from_secs(5);
/// Relaying an onion request to the next hop (spec §1.4): covers the rest of the path, which may
/// itself proxy to an HTTP server (25 s), so it must be longer than that.
pub const ONION_RELAY: Duration = Duration::from_secs(30);
/// Proxying the last onion layer to an HTTP server (spec §1.4).
pub const ONION_PROXY: Duration = Duration::from_secs(25);
/// Reachability ping of a peer (spec §10.2).
pub const PING: Duration = Duration::from_secs(5);
/// How long graceful shutdown waits for in-flight requests before closing connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Expiry sweep interval (spec §7.1).
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(10);
