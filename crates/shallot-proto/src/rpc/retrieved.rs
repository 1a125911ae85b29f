//! What `retrieve` and `get_expiries` answer (storage RPC spec §4.2, §4.7).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::wire::b64_bytes;
use super::Hardfork;
use crate::message_hash::MessageHash;

/// A `retrieve` answer: `{"messages", "more", "t", "hf", "wait_ms"?}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrievePage {
    /// The network's `[hardfork, snode_revision]`.
    #[serde(default)]
    pub hf: Hardfork,
    /// Messages after the cursor, oldest stored first: the last one's hash is the next cursor.
    #[serde(default)]
    pub messages: Vec<RetrievedMessage>,
    /// Whether the node holds more than this page.
    #[serde(default)]
    pub more: bool,
    /// The node's time, ms.
    #[serde(default)]
    pub t: u64,
    /// Shallot: the wait granted to a waiting retrieve, ms (0: answered at once). Absent from
    /// nodes that do not hold retrieves open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// One retrieved message: `{"hash", "timestamp", "expiration", "data"}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrievedMessage {
    /// The stored (still encrypted) bytes, base64 on the wire.
    #[serde(with = "b64_bytes")]
    pub data: Vec<u8>,
    /// Expiry, ms (the reference's key is `expiration`).
    pub expiration: u64,
    /// The message hash.
    pub hash: MessageHash,
    /// The store request's timestamp, ms.
    pub timestamp: u64,
}

impl std::fmt::Debug for RetrievedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No data: keep it out of logs even though it is encrypted.
        f.debug_struct("RetrievedMessage")
            .field("hash", &self.hash)
            .field("timestamp", &self.timestamp)
            .field("expiration", &self.expiration)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// A `get_expiries` answer: `{"expiries": {hash: expiry ms}}`, only for hashes that exist. The
/// keys are the requested strings, which the reference does not check to be hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiries {
    /// Expiry per hash, ms.
    pub expiries: BTreeMap<String, u64>,
}
