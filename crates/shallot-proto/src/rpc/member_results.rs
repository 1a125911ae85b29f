//! Each recursive method's per-member success (storage RPC spec §4.1, §4.3–§4.6, §4.8, §4.9),
//! signed by the member as [`crate::signing::SignedResponse`] describes. Fields the signature
//! does not cover read as their default when absent, so only what is signed decides whether a
//! result is one.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::wire::{b64_signature, flag, is_false};
use crate::identity::Signature;
use crate::message_hash::MessageHash;
use crate::namespace::{Namespace, NamespaceSelector};

/// A member's `store` result: `{"hash", "signature" (over the hash), "expiry", "already"?, "t"?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The hash was stored before (its expiry is then the later of the two).
    #[serde(
        default,
        deserialize_with = "flag::deserialize",
        skip_serializing_if = "is_false"
    )]
    pub already: bool,
    /// The message's expiry as stored, ms (not signed: 0 when a node leaves it out).
    #[serde(default)]
    pub expiry: u64,
    /// The message hash.
    pub hash: MessageHash,
    /// The member's signature over the hash text.
    #[serde(with = "b64_signature")]
    pub signature: Signature,
    /// The entry node's own entry only: its time, ms (deprecated in the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<u64>,
}

/// A member's `delete`, `delete_all` or `delete_before` result: `{"deleted", "signature"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The hashes deleted.
    pub deleted: HashList,
    /// The member's signature (spec §2.8).
    #[serde(with = "b64_signature")]
    pub signature: Signature,
}

/// A member's `expire_all` result: `{"updated", "signature"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updated {
    /// The member's signature (spec §2.8).
    #[serde(with = "b64_signature")]
    pub signature: Signature,
    /// The hashes whose expiry was shortened.
    pub updated: HashList,
}

/// A member's `expire` result: `{"expiry", "updated", "unchanged"?, "signature"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expired {
    /// The applied expiry: one for a single-expiry request, else one per updated hash.
    pub expiry: ExpiryValue,
    /// The member's signature (spec §2.8).
    #[serde(with = "b64_signature")]
    pub signature: Signature,
    /// Only when the request said `shorten` or `extend`: hashes that exist but kept their
    /// expiry, with that expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<Unchanged>,
    /// The hashes updated, sorted.
    pub updated: Vec<MessageHash>,
}

/// `expire`'s `"expiry"`: a number for a single-expiry request, else a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpiryValue {
    /// The one expiry applied to every updated hash, ms.
    Single(u64),
    /// The expiry applied to each updated hash, in `updated` order, ms.
    Each(Vec<u64>),
}

/// `expire`'s `"unchanged"`: `{hash: current expiry}`, written in hash-text order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unchanged(pub Vec<(MessageHash, u64)>);

impl Serialize for Unchanged {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<String, u64> =
            self.0.iter().map(|(h, e)| (h.to_string(), *e)).collect();
        s.collect_map(sorted)
    }
}

impl<'de> Deserialize<'de> for Unchanged {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, u64>::deserialize(d)?
            .into_iter()
            .map(|(hash, expiry)| {
                let hash = hash.parse().map_err(serde::de::Error::custom)?;
                Ok((hash, expiry))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// A member's `revoke_subaccount` result: `{"signature"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The member's signature (spec §2.8).
    #[serde(with = "b64_signature")]
    pub signature: Signature,
}

/// A member's `unrevoke_subaccount` result: `{"count", "signature"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unrevoked {
    /// Revocations removed (not signed: 0 when a node leaves it out).
    #[serde(default)]
    pub count: u64,
    /// The member's signature (spec §2.8).
    #[serde(with = "b64_signature")]
    pub signature: Signature,
}

/// Hashes affected by a delete or expire: a sorted list, or for namespace `"all"` a sorted list
/// per namespace (`{"-42": [...], "0": [...]}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HashList {
    /// One namespace's hashes.
    One(Vec<MessageHash>),
    /// Per namespace (decimal key), for a request on all namespaces.
    ByNamespace(BTreeMap<String, Vec<MessageHash>>),
}

fn sorted(mut hashes: Vec<MessageHash>) -> Vec<MessageHash> {
    hashes.sort_by_cached_key(ToString::to_string);
    hashes
}

impl HashList {
    /// A list sorted by hash text, as the reference writes it.
    pub fn sorted(hashes: Vec<MessageHash>) -> Self {
        Self::One(sorted(hashes))
    }

    /// The answer's shape for `selector`: a sorted list for one namespace, or sorted lists per
    /// namespace for `"all"`.
    pub fn for_selector(selector: NamespaceSelector, pairs: &[(Namespace, MessageHash)]) -> Self {
        match selector {
            NamespaceSelector::One(_) => Self::sorted(pairs.iter().map(|(_, h)| *h).collect()),
            NamespaceSelector::All => {
                let mut grouped: BTreeMap<i16, Vec<MessageHash>> = BTreeMap::new();
                for (ns, hash) in pairs {
                    grouped.entry(ns.0).or_default().push(*hash);
                }
                Self::ByNamespace(
                    grouped
                        .into_iter()
                        .map(|(ns, hashes)| (ns.to_string(), sorted(hashes)))
                        .collect(),
                )
            }
        }
    }

    /// Every hash, whatever the shape.
    pub fn hashes(&self) -> Vec<MessageHash> {
        match self {
            Self::One(list) => list.clone(),
            Self::ByNamespace(map) => map.values().flatten().copied().collect(),
        }
    }

    /// Whether no hash is listed.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::One(list) => list.is_empty(),
            Self::ByNamespace(map) => map.values().all(Vec::is_empty),
        }
    }
}
