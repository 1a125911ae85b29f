//! Node configuration: a TOML file, overridable by command-line flags and environment variables
//! (the binary merges those before building a [`NodeConfig`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::account_limits::AccountLimits;
use crate::connections::ConnectionConfig;
use crate::onion_limits::OnionLimits;
use crate::rate_limit::RateLimitConfig;
use crate::waiters::WaitLimits;

/// Default HTTPS port (Session mainnet storage servers).
pub const DEFAULT_HTTPS_PORT: u16 = 22021;
/// Default database size cap: 3.5 GiB, as the reference.
pub const DEFAULT_MAX_DB_BYTES: u64 = 3_584 * 1024 * 1024;

/// Where the node learns the service-node list from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DirectorySource {
    /// An oxend-compatible JSON-RPC endpoint (`http://host:port/json_rpc`).
    Oxend {
        /// The JSON-RPC URL.
        url: String,
    },
    /// A JSON file holding a `get_service_nodes` result, re-read when it changes (tests, demos).
    File {
        /// Path of the file.
        path: PathBuf,
    },
}

/// Everything a node needs to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Keys, TLS certificate and the message database live here.
    pub data_dir: PathBuf,
    /// HTTPS listen address (client API and node-to-node protocol).
    pub bind: SocketAddr,
    /// Address other nodes and clients reach us at, if different from `bind`'s IP.
    pub public_ip: Option<Ipv4Addr>,
    /// Plain-HTTP listen address for `/metrics`; keep it private. `None` disables it.
    pub admin_bind: Option<SocketAddr>,
    /// Membership source.
    pub directory: Option<DirectorySource>,
    /// Per-client rate limiting of `/storage_rpc/v1` and `/onion_req/v2`.
    pub rate_limit: RateLimitConfig,
    /// Connection caps and timeouts of the HTTPS listener.
    pub connections: ConnectionConfig,
    /// Limits on onion relaying and proxying (`[onion]`).
    pub onion: OnionLimits,
    /// Database size cap in bytes; stores fail cleanly once it is reached.
    pub max_db_bytes: u64,
    /// Serve even when not in a swarm (testing only).
    pub force_start: bool,
    /// Log filter (`tracing` syntax, e.g. `info` or `shallot_node=debug`).
    pub log: String,
    /// Per-account inbox quotas, push-subscription caps and push-connection timers.
    pub account_limits: AccountLimits,
    /// Caps on waiting retrieves, the private push (`[wait]`).
    pub wait: WaitLimits,
    /// DEVNETS ONLY: append what the node sees of each request (client addresses next to
    /// accounts) to this JSON-lines file, for `shallot audit`. Refused unless
    /// `onion.allow_private_targets` is set (see [`crate::observe`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation_log: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("shallot-node"),
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_HTTPS_PORT)),
            public_ip: None,
            admin_bind: None,
            directory: None,
            rate_limit: RateLimitConfig::default(),
            connections: ConnectionConfig::default(),
            onion: OnionLimits::default(),
            max_db_bytes: DEFAULT_MAX_DB_BYTES,
            force_start: false,
            log: "info".to_owned(),
            account_limits: AccountLimits::default(),
            wait: WaitLimits::default(),
            observation_log: None,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("could not read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
}

impl NodeConfig {
    /// Reads a TOML config file; missing keys take their defaults, unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The IPv4 address advertised to the directory.
    pub fn advertised_ip(&self) -> Ipv4Addr {
        self.public_ip.unwrap_or(match self.bind {
            SocketAddr::V4(v4) => *v4.ip(),
            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            r#"
data_dir = "/tmp/n1"
bind = "127.0.0.5:22021"
[directory]
file = { path = "nodes.json" }
[rate_limit]
exempt_loopback = true
[onion]
allow_private_targets = true
relay_delay_ms = 150
"#,
        )
        .unwrap();
        let config = NodeConfig::from_file(&path).unwrap();
        assert_eq!(config.advertised_ip(), Ipv4Addr::new(127, 0, 0, 5));
        assert!(config.rate_limit.exempt_loopback);
        assert_eq!(config.rate_limit.capacity, 600);
        assert!(config.onion.allow_private_targets);
        assert_eq!(config.onion.max_concurrent_relays, 2048);
        assert_eq!(config.onion.relay_delay_ms, 150);
        assert_eq!(NodeConfig::default().onion.relay_delay_ms, 0);
        assert_eq!(config.onion.max_reply_bytes, 10 * 1024 * 1024);
        assert!(!NodeConfig::default().onion.allow_private_targets);
        assert_eq!(
            config.directory,
            Some(DirectorySource::File {
                path: "nodes.json".into()
            })
        );

        std::fs::write(&path, "bnid = \"1.2.3.4:5\"\n").unwrap();
        let err = NodeConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("bnid"), "{err}");
    }
}
