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

/// A message hash as a `delete` or `expire` request named it: 43 base64 characters.
///
/// The reference storage server keeps and compares hashes as text, so a spelling whose last
/// character has non-zero trailing bits (e.g. 43 × `/`) is accepted there and names no stored
/// message (every real hash re-encodes canonically). Such a spelling is kept as sent, because
/// the request's signature and the members' result signatures cover the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum RequestedHash {
    /// The canonical spelling of a hash: names the message with that hash, if stored.
    Canonical(MessageHash),
    /// 43 base64 characters that do not re-encode to themselves: names no message.
    NonCanonical(String),
}

impl RequestedHash {
    /// The hash it names, if it can name a stored message at all.
    pub const fn hash(&self) -> Option<&MessageHash> {
        match self {
            Self::Canonical(hash) => Some(hash),
            Self::NonCanonical(_) => None,
        }
    }
}

impl From<MessageHash> for RequestedHash {
    fn from(hash: MessageHash) -> Self {
        Self::Canonical(hash)
    }
}

impl fmt::Display for RequestedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Canonical(hash) => fmt::Display::fmt(hash, f),
            Self::NonCanonical(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for RequestedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestedHash({self})")
    }
}

impl FromStr for RequestedHash {
    type Err = InvalidHash;
    /// 43 characters of the standard base64 alphabet, canonical or not; anything else is invalid.
    fn from_str(s: &str) -> Result<Self, InvalidHash> {
        if let Ok(hash) = s.parse::<MessageHash>() {
            return Ok(Self::Canonical(hash));
        }
        let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        if s.len() == 43 && s.bytes().all(base64) {
            Ok(Self::NonCanonical(s.to_owned()))
        } else {
            Err(InvalidHash(s.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_hashes_keep_non_canonical_spellings_and_refuse_the_rest() {
        let hash = MessageHash::from_bytes([7; 32]);
        let canonical: RequestedHash = hash.to_string().parse().unwrap();
        assert_eq!(canonical, RequestedHash::Canonical(hash));
        assert_eq!(canonical.hash(), Some(&hash));

        // 43 × '/': valid base64 whose last character carries non-zero trailing bits.
        let slashes = "/".repeat(43);
        assert!(slashes.parse::<MessageHash>().is_err());
        let odd: RequestedHash = slashes.parse().unwrap();
        assert_eq!(odd.hash(), None);
        assert_eq!(odd.to_string(), slashes);

        for bad in [
            "/".repeat(42),
            "/".repeat(44),
            format!("{}=", "A".repeat(42)),
            format!("{}-", "A".repeat(42)),
            String::new(),
        ] {
            assert!(bad.parse::<RequestedHash>().is_err(), "{bad}");
        }
    }
}
