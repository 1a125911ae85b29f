//! The push-notification frames of `/monitor/v1` (storage RPC spec §6, as JSON text frames): the
//! client's subscription, the node's answer to it, and the notifications that follow.

use serde::{Deserialize, Serialize};

use super::wire::{b64_signature, flag, is_false, one, opt_b64_bytes};
use crate::identity::{AccountId, Ed25519Pub, Signature};
use crate::message_hash::MessageHash;
use crate::namespace::Namespace;

/// A subscription: `{"P" | "p", "d"?, "n", "s", "t"}`, signed as
/// [`crate::signing::SignedRequest::Monitor`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorSubscription {
    /// `P`: the Ed25519 key of a Session ID (the account is its X25519 form).
    #[serde(rename = "P", default, skip_serializing_if = "Option::is_none")]
    pub session_ed25519: Option<Ed25519Pub>,
    /// `d`: include message data in notifications.
    #[serde(
        rename = "d",
        default,
        serialize_with = "one::serialize",
        deserialize_with = "flag::deserialize",
        skip_serializing_if = "is_false"
    )]
    pub want_data: bool,
    /// `n`: the namespaces, ascending.
    #[serde(rename = "n")]
    pub namespaces: Vec<Namespace>,
    /// `p`: the account itself (instead of `P`).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// `s`: the signature.
    #[serde(rename = "s", with = "b64_signature")]
    pub signature: Signature,
    /// `t`: the signature time, in seconds.
    #[serde(rename = "t")]
    pub timestamp_s: u64,
}

/// The node's answer to one subscription: `{"success": 1}` or `{"errcode": n, "error": text}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MonitorReply {
    /// Subscribed (or renewed).
    Success {
        /// Always 1.
        success: u8,
    },
    /// Refused.
    Refused {
        /// 1 bad arguments, 2 bad pubkey, 3 bad namespaces, 4 bad timestamp, 5 bad signature.
        errcode: u8,
        /// Why.
        error: String,
    },
}

impl MonitorReply {
    /// `{"success": 1}`.
    pub const SUCCESS: Self = Self::Success { success: 1 };
}

/// A message stored for a subscribed account: `{"@", "h", "n", "t", "z", "~"?}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `@`: the account it was stored for.
    #[serde(rename = "@")]
    pub account: AccountId,
    /// `h`: its hash (the message id on the swarm).
    #[serde(rename = "h")]
    pub hash: MessageHash,
    /// `n`: its namespace.
    #[serde(rename = "n")]
    pub namespace: Namespace,
    /// `t`: the store request's timestamp, ms.
    #[serde(rename = "t", default)]
    pub timestamp_ms: u64,
    /// `z`: its expiry, ms.
    #[serde(rename = "z", default)]
    pub expiry_ms: u64,
    /// `~`: the stored (still encrypted) data, only to subscribers that asked for it.
    #[serde(
        rename = "~",
        default,
        with = "opt_b64_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Vec<u8>>,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No data: keep it out of logs even though it is encrypted.
        f.debug_struct("Notification")
            .field("hash", &self.hash)
            .field("namespace", &self.namespace.0)
            .field("data_len", &self.data.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// Any frame the node sends on the monitor socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MonitorFrame {
    /// A new message.
    Notification(Notification),
    /// The answer to one subscription.
    Reply(MonitorReply),
    /// The answers to a list of subscriptions, in order.
    Replies(Vec<MonitorReply>),
}
