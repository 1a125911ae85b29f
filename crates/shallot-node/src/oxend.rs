//! The node's JSON-RPC client for an oxend-compatible directory (directory spec §1): the node
//! list, `storage_server_ping` every 30 s, and `report_peer_status` after each reachability test.

use std::time::Duration;

use serde_json::{json, Value};
use shallot_directory::{NetworkView, NodeRecord};

use crate::state::STORAGE_SERVER_VERSION;

/// How often the node tells the directory it is alive (spec §9.2).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

/// A JSON-RPC endpoint (`http://host:port/json_rpc`).
#[derive(Clone, Debug)]
pub struct OxendClient {
    http: reqwest::Client,
    url: String,
}

impl OxendClient {
    /// A client for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            url: url.into(),
        }
    }

    /// Calls `method`; the `result` on success, the error text otherwise.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let request = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params});
        let response: Value = self
            .http
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if let Some(error) = response.get("error") {
            return Err(error.to_string());
        }
        response
            .get("result")
            .cloned()
            .ok_or_else(|| "no result".to_owned())
    }

    /// The full node list.
    pub async fn service_nodes(&self) -> Result<NetworkView, String> {
        let result = self
            .call("get_service_nodes", json!({"active_only": false}))
            .await?;
        NetworkView::from_get_service_nodes(&result).map_err(|e| e.to_string())
    }

    /// Tells the directory this storage server is up and where it listens.
    pub async fn storage_server_ping(
        &self,
        ed25519_hex: &str,
        https_port: u16,
    ) -> Result<(), String> {
        self.call(
            "storage_server_ping",
            json!({"version": STORAGE_SERVER_VERSION, "pubkey_ed25519": ed25519_hex,
                   "https_port": https_port, "omq_port": 0}),
        )
        .await
        .map(|_| ())
    }
}

impl crate::reachability::Reporter for OxendClient {
    async fn report(&self, node: &NodeRecord, passed: bool) {
        let params =
            json!({"type": "storage", "pubkey": hex::encode(node.pubkey_legacy), "passed": passed});
        if let Err(error) = self.call("report_peer_status", params).await {
            tracing::debug!(%error, "report_peer_status failed");
        }
    }
}
