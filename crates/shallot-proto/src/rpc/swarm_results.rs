//! The answer to a recursive method (storage RPC spec §3.2): one result per swarm member under
//! `swarm`, keyed by the member's Ed25519 hex, each a success of the method's own shape or a
//! failure. The entry node writes it; clients check each member's signature on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::wire::{flag, is_false};
use super::Hardfork;
use crate::message_hash::MessageHash;

/// `{"swarm": {...}, "hash"?, "t", "hf"}` as the entry node answers a client. `T` is the
/// method's per-member success ([`super::Stored`], [`super::Deleted`], …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmResults<T> {
    /// `store` only: the hash, present iff the entry node stored the message itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<MessageHash>,
    /// The network's `[hardfork, snode_revision]`.
    #[serde(default)]
    pub hf: Hardfork,
    /// One result per member (entry node included), keyed by Ed25519 hex. Keys stay text so a
    /// key that is not a key at all can still be seen and counted.
    pub swarm: BTreeMap<String, MemberResult<T>>,
    /// The entry node's time, ms.
    #[serde(default)]
    pub t: u64,
}

impl<T> SwarmResults<T> {
    /// How many members answered without failing.
    pub fn succeeded(&self) -> usize {
        self.swarm.values().filter(|r| !r.is_failed()).count()
    }
}

/// One member's result: `Failed` whenever the entry has a `failed` key, else the method's
/// success shape, else whatever object or value came (kept as sent, relayed as is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MemberResult<T> {
    /// A member that did not carry out the request (or could not be heard).
    Failed(MemberFailure),
    /// The member's signed result.
    Ok(T),
    /// An entry of neither shape: not failed, but not a signed result either.
    Unrecognised(Value),
}

impl<T> MemberResult<T> {
    /// Whether the entry is a failure: it has `failed` (an unrecognised one included).
    pub fn is_failed(&self) -> bool {
        match self {
            Self::Failed(_) => true,
            Self::Ok(_) => false,
            Self::Unrecognised(value) => value.get("failed").is_some(),
        }
    }

    /// The success, if the entry is one.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Self::Ok(result) => Some(result),
            _ => None,
        }
    }
}

/// Marks a failure entry: written as `"failed": true`, read from any `failed` value (a
/// reference node relays it from bt as `1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failed;

impl Serialize for Failed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for Failed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Self)
    }
}

/// A failed member entry (spec §3.2): `{"failed": true}` and what went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::struct_excessive_bools)] // The wire format's flags, each written only when set.
pub struct MemberFailure {
    /// The member's answer could not be parsed.
    #[serde(
        default,
        deserialize_with = "flag::deserialize",
        skip_serializing_if = "is_false"
    )]
    pub bad_peer_response: bool,
    /// Set by clients: the entry's signature is missing or wrong, or its key is not a member.
    #[serde(
        default,
        deserialize_with = "flag::deserialize",
        skip_serializing_if = "is_false"
    )]
    pub bad_signature: bool,
    /// The member's HTTP status, as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Always present.
    pub failed: Failed,
    /// The member's database failed (or is full).
    #[serde(
        default,
        deserialize_with = "flag::deserialize",
        skip_serializing_if = "is_false"
    )]
    pub query_failure: bool,
    /// Shallot: the account is over its inbox quota on this member.
    #[serde(
        default,
        deserialize_with = "flag::deserialize",
        skip_serializing_if = "is_false"
    )]
    pub quota_exceeded: bool,
    /// The member's error body, or what failed locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The member did not answer in time (or could not be reached).
    #[serde(
        default,
        deserialize_with = "flag::deserialize",
        skip_serializing_if = "is_false"
    )]
    pub timeout: bool,
}

impl MemberFailure {
    /// `{"failed": true, "timeout": true}`.
    pub fn timeout() -> Self {
        Self {
            timeout: true,
            ..Self::default()
        }
    }

    /// `{"failed": true, "bad_peer_response": true}`.
    pub fn bad_peer_response() -> Self {
        Self {
            bad_peer_response: true,
            ..Self::default()
        }
    }

    /// `{"failed": true, "bad_signature": true}`.
    pub fn bad_signature() -> Self {
        Self {
            bad_signature: true,
            ..Self::default()
        }
    }

    /// `{"failed": true, "code": "<status>", "reason": <body>}`: a member answered an error.
    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            code: Some(status.to_string()),
            reason: Some(body.into()),
            ..Self::default()
        }
    }

    /// `{"failed": true, "query_failure": true}`, with `"reason"` if one is given.
    pub fn query_failure(reason: Option<String>) -> Self {
        Self {
            query_failure: true,
            reason,
            ..Self::default()
        }
    }

    /// `{"failed": true, "quota_exceeded": true, "reason": …}`.
    pub fn quota_exceeded(reason: impl Into<String>) -> Self {
        Self {
            quota_exceeded: true,
            reason: Some(reason.into()),
            ..Self::default()
        }
    }
}
