//! Wire formats of the node-to-node protocol (docs/node-protocol.md), in one place.
//!
//! Every route here is served on the node's HTTPS port and accepted only from connections whose
//! TLS client certificate proves an Ed25519 key that the directory lists as an active node.

use axum::http::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::onion::EncType;
use shallot_proto::{AccountId, Namespace, X25519Pub};
use shallot_store::StoredMessage;

/// A swarm peer forwards a recursive client request: body = the client's JSON envelope,
/// answer = this node's own per-node result with the RPC's status.
pub const FORWARD_PATH: &str = "/snode/v1/forward";
/// An onion hop relays the next layer: body = the layer's ciphertext, parameters in headers
/// ([`OnionHop`]), answer = whatever the rest of the path answered, status included.
pub const ONION_PATH: &str = "/snode/v1/onion";
/// A node hands stored messages to a new swarm member: body = [`HandoffBatch`] JSON.
pub const HANDOFF_PATH: &str = "/snode/v1/handoff";

/// Header carrying the next hop's ephemeral X25519 key (64 hex).
pub const EPHEMERAL_KEY_HEADER: &str = "x-shallot-ephemeral-key";
/// Header carrying the layer's cipher (`aes-gcm`, `xchacha20`, `aes-cbc`).
pub const ENC_TYPE_HEADER: &str = "x-shallot-enc-type";
/// Header carrying the hop number the receiver is at (1-based, ≤ 15).
pub const HOP_NO_HEADER: &str = "x-shallot-hop-no";

/// Parameters of a relayed onion layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnionHop {
    /// Key the receiving hop combines with its X25519 secret.
    pub ephemeral_key: X25519Pub,
    /// Cipher of the layer.
    pub enc_type: EncType,
    /// Position of the receiving hop.
    pub hop_no: u32,
}

/// Why a relayed onion layer's headers were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid internal onion request: {0}")]
pub struct BadHop(pub &'static str);

impl OnionHop {
    /// The request headers that carry these parameters.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (EPHEMERAL_KEY_HEADER, self.ephemeral_key.to_hex()),
            (ENC_TYPE_HEADER, self.enc_type.as_str().to_owned()),
            (HOP_NO_HEADER, self.hop_no.to_string()),
        ]
    }

    /// Reads the parameters from request headers; hop numbers below 1 become 1.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, BadHop> {
        let text = |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok());
        let ephemeral_key = text(EPHEMERAL_KEY_HEADER)
            .ok_or(BadHop("missing ephemeral_key"))?
            .parse()
            .map_err(|_| BadHop("invalid ephemeral_key"))?;
        let enc_type = match text(ENC_TYPE_HEADER) {
            None => EncType::default(),
            Some(name) => name.parse().map_err(|_| BadHop("invalid enc_type"))?,
        };
        let hop_no = match text(HOP_NO_HEADER) {
            None => 1,
            Some(n) => n
                .parse::<u32>()
                .map_err(|_| BadHop("invalid hop_no"))?
                .max(1),
        };
        Ok(Self {
            ephemeral_key,
            enc_type,
            hop_no,
        })
    }
}

/// One message in a handoff batch. Unlike the reference's `sn.data`, the namespace is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffMessage {
    /// Owner account (66 hex).
    pub pubkey: AccountId,
    /// Namespace.
    pub namespace: Namespace,
    /// Message hash.
    pub hash: MessageHash,
    /// Client timestamp, ms.
    pub timestamp: u64,
    /// Expiry, ms.
    pub expiry: u64,
    /// Data, base64.
    #[serde(with = "b64_bytes")]
    pub data: Bytes,
}

/// A subaccount revocation handed over with an account's messages, so the new holder keeps
/// refusing the revoked token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRevocation {
    /// The account that revoked the token (66 hex).
    pub pubkey: AccountId,
    /// The revoked token (72 hex).
    pub token: String,
    /// When it was revoked, ms.
    pub timestamp: u64,
}

/// A batch of messages (and revocations) handed to a new swarm member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffBatch {
    /// Format version; this build writes and reads 1.
    pub version: u32,
    /// The messages.
    pub messages: Vec<HandoffMessage>,
    /// Subaccount revocations (absent from older senders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<HandoffRevocation>,
}

/// The answer to an accepted handoff batch: what the receiver did with its items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffDone {
    /// Messages already expired (dropped quietly).
    pub expired: usize,
    /// New messages stored.
    pub inserted: usize,
    /// Items left out: forged, not ours, untrusted, over quota.
    pub refused: usize,
    /// Revocations recorded.
    pub revocations: usize,
}

impl From<shallot_store::Revocation> for HandoffRevocation {
    fn from(r: shallot_store::Revocation) -> Self {
        Self {
            pubkey: r.account,
            token: hex::encode(r.token.as_bytes()),
            timestamp: r.timestamp,
        }
    }
}

impl From<StoredMessage> for HandoffMessage {
    fn from(m: StoredMessage) -> Self {
        Self {
            pubkey: m.account,
            namespace: m.namespace,
            hash: m.hash,
            timestamp: m.timestamp,
            expiry: m.expiry,
            data: m.data,
        }
    }
}

impl From<HandoffMessage> for StoredMessage {
    fn from(m: HandoffMessage) -> Self {
        Self {
            account: m.pubkey,
            namespace: m.namespace,
            hash: m.hash,
            timestamp: m.timestamp,
            expiry: m.expiry,
            data: m.data,
        }
    }
}

mod b64_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&shallot_proto::b64::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        shallot_proto::b64::decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}
