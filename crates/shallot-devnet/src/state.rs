//! What describes a devnet on disk: its settings (`devnet.toml`) and its processes
//! (`devnet.json`: the directory's and every node's address and process id).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::DevnetError;

/// Everything that describes a devnet; the TOML form of `devnet up --config`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DevnetConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Milliseconds between blocks.
    pub block_time_ms: u64,
    /// Speed-up of the chain's rule durations.
    pub time_scale: u32,
    /// Expected uptime-proof interval in wall-time ms, not scaled (`None`: 10 min / time_scale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_interval_ms: Option<u64>,
    /// Third octet of the nodes' addresses.
    pub subnet: u8,
    /// Whether every node keeps an observation log (`node<N>/observations.jsonl`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub observation_logs: bool,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            nodes: 14,
            block_time_ms: 1000,
            time_scale: 60,
            proof_interval_ms: None,
            subnet: 77,
            observation_logs: false,
        }
    }
}

/// One node of a devnet as `devnet.json` records it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct NodeEntry {
    /// Node number (1-based; the last octet of its address).
    pub index: usize,
    /// HTTPS address.
    pub addr: SocketAddr,
    /// Ed25519 key in hex.
    pub ed25519: String,
    /// Process id while started by the devnet.
    pub pid: Option<u32>,
}

/// A devnet's processes: the contents of `devnet.json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct DevnetState {
    /// The directory's public JSON-RPC listener.
    pub directory_addr: SocketAddr,
    /// The directory's admin listener (token in `directory/admin.token`), which registers
    /// nodes for the launcher; older devnet.json files have none.
    #[serde(default)]
    pub admin_addr: Option<SocketAddr>,
    /// The directory's process id while running.
    pub directory_pid: Option<u32>,
    /// Third octet of the nodes' addresses.
    pub subnet: u8,
    /// Whether nodes keep observation logs (older devnet.json files: no).
    #[serde(default)]
    pub observation_logs: bool,
    /// The nodes, in index order.
    pub nodes: Vec<NodeEntry>,
    /// The file server for attachments (older devnet.json files have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_server: Option<crate::FileServerEntry>,
}

impl DevnetState {
    /// Where a devnet in `dir` keeps its state.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("devnet.json")
    }

    /// Reads the state of the devnet in `dir`.
    pub fn load(dir: &Path) -> Result<Self, DevnetError> {
        let text = std::fs::read_to_string(Self::path(dir))
            .map_err(|_| DevnetError::NoDevnet(dir.to_owned()))?;
        serde_json::from_str(&text).map_err(|e| DevnetError::Corrupt(e.to_string()))
    }

    /// Writes it to `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), DevnetError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| DevnetError::Corrupt(e.to_string()))?;
        std::fs::write(Self::path(dir), text).map_err(crate::io("write devnet.json"))
    }

    /// The directory's public JSON-RPC URL.
    pub fn directory_url(&self) -> String {
        format!("http://{}/json_rpc", self.directory_addr)
    }

    /// Node number `node` (1-based).
    pub fn node(&self, node: usize) -> Result<&NodeEntry, DevnetError> {
        node.checked_sub(1)
            .and_then(|i| self.nodes.get(i))
            .ok_or(DevnetError::NoSuchNode(node))
    }

    /// Whether the directory or any node still runs.
    pub fn any_running(&self) -> bool {
        let alive = |pid: Option<u32>| pid.is_some_and(crate::process::is_alive);
        alive(self.directory_pid)
            || self.nodes.iter().any(|n| alive(n.pid))
            || self.file_server.as_ref().is_some_and(|f| alive(f.pid))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

    use super::*;

    #[test]
    fn an_older_devnet_json_still_loads_and_a_saved_one_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            DevnetState::load(dir.path()),
            Err(DevnetError::NoDevnet(_))
        ));
        // From before the admin listener and observation logs.
        std::fs::write(
            DevnetState::path(dir.path()),
            r#"{"directory_addr": "127.0.0.1:4000", "directory_pid": null, "subnet": 77,
                "nodes": [{"index": 1, "addr": "127.0.77.1:5000", "ed25519": "ab", "pid": 42}]}"#,
        )
        .unwrap();
        let state = DevnetState::load(dir.path()).unwrap();
        assert_eq!(state.admin_addr, None);
        assert!(!state.observation_logs);
        assert_eq!(state.file_server, None);
        assert_eq!(state.directory_url(), "http://127.0.0.1:4000/json_rpc");
        assert_eq!(state.node(1).unwrap().pid, Some(42));
        assert!(matches!(state.node(0), Err(DevnetError::NoSuchNode(0))));
        assert!(matches!(state.node(2), Err(DevnetError::NoSuchNode(2))));
        state.save(dir.path()).unwrap();
        let again = DevnetState::load(dir.path()).unwrap();
        assert_eq!(again.nodes[0].addr, state.nodes[0].addr);
        std::fs::write(DevnetState::path(dir.path()), "{").unwrap();
        assert!(matches!(
            DevnetState::load(dir.path()),
            Err(DevnetError::Corrupt(_))
        ));
    }
}
