//! What `info` and `oxend_request` answer (storage RPC spec §3.1, §4.11, §4.12).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Hardfork;

/// An `info` answer: `{"version", "timestamp", "t", "hf"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The network's `[hardfork, snode_revision]`.
    #[serde(default)]
    pub hf: Hardfork,
    /// The node's time, ms.
    #[serde(default)]
    pub t: u64,
    /// The node's time again, ms.
    pub timestamp: u64,
    /// The storage server version the node is compatible with.
    pub version: [u16; 3],
}

/// An `oxend_request` answer: `{"result": <oxend's JSON>, "t", "hf"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OxendResult {
    /// The network's `[hardfork, snode_revision]`.
    #[serde(default)]
    pub hf: Hardfork,
    /// What oxend (or the node's view of the network) answered.
    pub result: Value,
    /// The node's time, ms.
    #[serde(default)]
    pub t: u64,
}
