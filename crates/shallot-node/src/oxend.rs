//! The node's JSON-RPC client for an oxend-compatible directory (directory spec §1): the node
//! list, `storage_server_ping` every 30 s, and `report_peer_status` after each reachability test.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shallot_directory::proof::{Heartbeat, PeerReport, TestKind};
use shallot_directory::{DirectoryClient, NetworkView, NodeRecord};
use shallot_proto::Identity;

use crate::clock::Clock;
use crate::state::STORAGE_SERVER_VERSION;

/// How often the node tells the directory it is alive (spec §9.2).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// How often a devnet node sends a signed uptime proof (a devnet directory may run with proof
/// intervals scaled down to seconds, so this is short; real oxends make their own proofs).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// JSON-RPC "method not found": the directory is a real oxend, which makes its own proofs.
const METHOD_NOT_FOUND: i64 = -32601;

/// A directory's JSON-RPC endpoint (`http://host:port/json_rpc`) and the calls a node makes.
#[derive(Clone, Debug)]
pub struct OxendClient(DirectoryClient);

pub use shallot_directory::CallError;

impl OxendClient {
    /// A client for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self(DirectoryClient::new(url))
    }

    /// Calls `method`; the `result` on success.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.0.call(method, params).await
    }

    /// The node list with the fields a storage server reads (directory spec §1.4), or `None`
    /// when the top block is still `known_hash` (`poll_block_hash`: nothing to re-parse).
    pub async fn service_nodes(
        &self,
        known_hash: Option<&str>,
    ) -> Result<Option<NetworkView>, String> {
        self.0
            .service_nodes(known_hash)
            .await
            .map_err(|e| e.to_string())
    }

    /// Tells the directory this storage server is up and where it listens.
    pub async fn storage_server_ping(
        &self,
        ed25519_hex: &str,
        https_port: u16,
    ) -> Result<(), CallError> {
        self.call(
            "storage_server_ping",
            json!({"version": STORAGE_SERVER_VERSION, "pubkey_ed25519": ed25519_hex,
                   "https_port": https_port, "omq_port": 0}),
        )
        .await
        .map(|_| ())
    }
}

impl OxendClient {
    /// Sends a signed uptime proof (devnet directories); `Ok(false)` when the directory does not
    /// take proofs from nodes (a real oxend makes its own).
    pub async fn submit_uptime_proof(
        &self,
        identity: &Identity,
        ip: Ipv4Addr,
        https_port: u16,
        now_s: u64,
    ) -> Result<bool, CallError> {
        let proof = Heartbeat {
            ip,
            lv: [0, 0, 0],
            pke: identity.ed25519_public(),
            q: 0,
            shp: https_port,
            sop: 0,
            sv: STORAGE_SERVER_VERSION,
            t: now_s,
            v: [0, 0, 0],
        }
        .sign(identity.signing_key());
        let params =
            serde_json::to_value(&proof).map_err(|e| CallError::Transport(e.to_string()))?;
        match self.call("devnet_submit_uptime_proof", params).await {
            Ok(_) => Ok(true),
            Err(CallError::Rpc {
                code: METHOD_NOT_FOUND,
                ..
            }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Reports reachability results to the directory, signed by this node (the devnet directory
/// verifies the signature; an oxend ignores the extra fields).
pub struct SignedReporter {
    /// The directory.
    pub oxend: OxendClient,
    /// This node's identity.
    pub identity: Identity,
    /// Time for the report's `t`.
    pub clock: Arc<dyn Clock>,
}

impl crate::reachability::Reporter for SignedReporter {
    async fn report(&self, node: &NodeRecord, passed: bool) {
        let report = PeerReport {
            kind: TestKind::Storage,
            pubkey: node.ed25519,
            passed,
            reporter: self.identity.ed25519_public(),
            t: self.clock.now_ms() / 1000,
        }
        .sign(self.identity.signing_key());
        let Ok(mut params) = serde_json::to_value(&report) else {
            return;
        };
        // oxend's field: the tested node's primary key.
        params["pubkey"] = Value::from(hex::encode(node.pubkey_legacy));
        if let Err(error) = self.oxend.call("report_peer_status", params).await {
            tracing::debug!(%error, "report_peer_status failed");
        }
    }
}
