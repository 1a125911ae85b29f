//! The storage server's message hash (storage RPC spec §2.4): names a stored message everywhere
//! (retrieve's `last_hash`, delete, expire, replication) so it must match byte for byte.

use std::fmt;
use std::str::FromStr;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use crate::identity::AccountId;
use crate::namespace::Namespace;

/// A message hash: BLAKE2b-256 of account, namespace and data; 43 unpadded base64 chars on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHash([u8; 32]);

/// A string that is not a 43-character base64 message hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid message hash: {0}")]
pub struct InvalidHash(pub String);

impl MessageHash {
    /// Computes `BLAKE2b-256(type byte ‖ key ‖ namespace text ‖ data)`.
    pub fn compute(account: &AccountId, namespace: Namespace, data: &[u8]) -> Self {
        let mut hasher = Blake2b::<U32>::new();
        hasher.update([account.prefix()]);
        hasher.update(account.key());
        hasher.update(namespace.sig_text().as_bytes());
        hasher.update(data);
        Self(hasher.finalize().into())
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps a raw digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::b64::encode_unpadded(self.0))
    }
}

impl fmt::Debug for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageHash({self})")
    }
}

impl FromStr for MessageHash {
    type Err = InvalidHash;
    fn from_str(s: &str) -> Result<Self, InvalidHash> {
        let invalid = || InvalidHash(s.to_owned());
        if s.len() != 43 {
            return Err(invalid());
        }
        let bytes = crate::b64::decode(s).map_err(|_| invalid())?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| invalid())
    }
}

impl serde::Serialize for MessageHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MessageHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
