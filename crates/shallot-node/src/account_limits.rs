//! Limits that keep one account, one push connection or one peer from growing the node's state
//! without bound (issue #10 item 4): per-account quotas on unsigned inbox stores, caps on push
//! subscriptions, the push WebSocket's ping/idle timers, and counters of what peers sent that
//! was refused. Configured in `node.toml` under `[account_limits]`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default most messages one account holds from unsigned (public-inbox) stores.
pub const DEFAULT_INBOX_MAX_MESSAGES: u64 = 10_000;
/// Default most bytes of data one account holds from unsigned (public-inbox) stores: 100 MiB.
pub const DEFAULT_INBOX_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Default most accounts one push connection subscribes to.
pub const DEFAULT_MONITOR_MAX_PER_CONNECTION: usize = 1_000;
/// Default most push subscriptions held by the connections of one client address.
pub const DEFAULT_MONITOR_MAX_PER_IP: usize = 5_000;
/// Default most open push connections on the node.
pub const DEFAULT_MONITOR_MAX_CONNECTIONS: usize = 5_000;
/// Default most open push connections from one client address.
pub const DEFAULT_MONITOR_MAX_CONNECTIONS_PER_IP: usize = 128;
/// Default most push subscriptions (account × connection) on the node.
pub const DEFAULT_MONITOR_MAX_TOTAL: usize = 50_000;

/// The `[account_limits]` section of `node.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountLimits {
    /// Most messages an account holds in public-inbox namespaces (stores that need no
    /// signature); further new messages are refused with 429 until some expire or are deleted.
    /// 0 disables the limit.
    pub inbox_max_messages: u64,
    /// Most bytes of message data an account holds in public-inbox namespaces; 0 disables it.
    pub inbox_max_bytes: u64,
    /// Most accounts one push (`/monitor/v1`) connection may subscribe to.
    pub monitor_max_per_connection: usize,
    /// Most push subscriptions the connections of one client address may hold together.
    pub monitor_max_per_ip: usize,
    /// Most push subscriptions (account × connection) the node keeps in total.
    pub monitor_max_total: usize,
    /// Most open push (`/monitor/v1`) connections on the node. A WebSocket leaves the
    /// listener's connection accounting once upgraded, so push connections have their own caps.
    pub monitor_max_connections: usize,
    /// Most open push connections from one client address.
    pub monitor_max_connections_per_ip: usize,
    /// Seconds between WebSocket pings on a push connection.
    pub monitor_ping_secs: u64,
    /// Seconds a push connection may stay silent (no frame, no pong) before it is closed.
    pub monitor_idle_secs: u64,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self {
            inbox_max_messages: DEFAULT_INBOX_MAX_MESSAGES,
            inbox_max_bytes: DEFAULT_INBOX_MAX_BYTES,
            monitor_max_per_connection: DEFAULT_MONITOR_MAX_PER_CONNECTION,
            monitor_max_per_ip: DEFAULT_MONITOR_MAX_PER_IP,
            monitor_max_total: DEFAULT_MONITOR_MAX_TOTAL,
            monitor_max_connections: DEFAULT_MONITOR_MAX_CONNECTIONS,
            monitor_max_connections_per_ip: DEFAULT_MONITOR_MAX_CONNECTIONS_PER_IP,
            monitor_ping_secs: 30,
            monitor_idle_secs: 60,
        }
    }
}

impl AccountLimits {
    /// The store's quota for these settings.
    pub fn inbox_quota(&self) -> shallot_store::InboxQuota {
        shallot_store::InboxQuota {
            max_messages: self.inbox_max_messages,
            max_bytes: self.inbox_max_bytes,
        }
    }

    /// Interval between pings on a push connection (at least 1 s).
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.monitor_ping_secs.max(1))
    }

    /// How long a push connection may stay silent (at least one ping interval).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.monitor_idle_secs).max(self.ping_interval())
    }
}

/// Counts of what peers pushed that was refused (logged with each refusal batch).
#[derive(Debug, Default)]
pub struct PeerRejections {
    /// Handoff or forward requests refused because the sender is not a (recent) swarm peer.
    pub untrusted_sender: AtomicU64,
    /// Handed-off items for accounts that do not map to our swarm.
    pub not_our_account: AtomicU64,
    /// Handed-off items whose hash does not match their content, or whose times are not sane.
    pub forged: AtomicU64,
    /// Handed-off items over an account's inbox quota.
    pub over_quota: AtomicU64,
}

impl PeerRejections {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Total refused so far.
    pub fn total(&self) -> u64 {
        [
            &self.untrusted_sender,
            &self.not_our_account,
            &self.forged,
            &self.over_quota,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// Gauges for the admin `/metrics` page: live push subscriptions, and peer-pushed items
/// refused since start (name, help, value).
pub fn gauges(node: &crate::state::Node) -> [(&'static str, &'static str, u64); 2] {
    [
        (
            "shallot_push_subscriptions",
            "Live push subscriptions (account x connection).",
            u64::try_from(node.monitor.len()).unwrap_or(u64::MAX),
        ),
        (
            "shallot_peer_items_refused",
            "Handoff/forward items from peers refused since start (untrusted sender, not our account, forged, over quota).",
            node.peer_rejections.total(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_toml_section_overrides_defaults_and_rejects_typos() {
        let config: crate::config::NodeConfig = toml::from_str(
            "[account_limits]\ninbox_max_messages = 5\nmonitor_max_per_ip = 7\nmonitor_idle_secs = 0\n",
        )
        .unwrap();
        let limits = config.account_limits;
        assert_eq!(limits.inbox_max_messages, 5);
        assert_eq!(limits.inbox_max_bytes, DEFAULT_INBOX_MAX_BYTES);
        assert_eq!(limits.monitor_max_per_ip, 7);
        assert_eq!(limits.monitor_max_total, DEFAULT_MONITOR_MAX_TOTAL);
        // The idle timeout is never shorter than one ping interval.
        assert_eq!(limits.idle_timeout(), Duration::from_secs(30));
        assert!(
            toml::from_str::<crate::config::NodeConfig>("[account_limits]\ninbox_max = 1\n")
                .is_err()
        );
    }
}
