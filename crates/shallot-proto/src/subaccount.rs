//! Subaccount tokens (storage RPC spec §2.6): an account owner delegates read/write/delete access
//! to another Ed25519 key by signing a 36-byte token.

use std::fmt;

use crate::identity::{Ed25519Pub, Identity, Signature};

/// Access a subaccount token grants, as the token's flag byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubaccountFlags(pub u8);

impl SubaccountFlags {
    /// May retrieve.
    pub const READ: Self = Self(0x01);
    /// May store (and extend expiries).
    pub const WRITE: Self = Self(0x02);
    /// May delete (and shorten expiries).
    pub const DELETE: Self = Self(0x04);
    /// Valid for an account of any prefix, not only the token's own.
    pub const ANY_PREFIX: Self = Self(0x08);

    /// Whether every flag of `required` is set here.
    pub const fn contains(self, required: Self) -> bool {
        self.0 & required.0 == required.0
    }
}

impl std::ops::BitOr for SubaccountFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for SubaccountFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubaccountFlags({:#04x})", self.0)
    }
}

/// A 36-byte token: `[prefix, flags, 0, 0] ‖ subaccount Ed25519 key`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubaccountToken([u8; 36]);

/// Text or bytes that are not a subaccount token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subaccount: expected base64 or hex-encoded subaccount token")]
pub struct InvalidToken;

impl SubaccountToken {
    /// Token length in bytes.
    pub const LEN: usize = 36;

    /// A token granting `flags` on accounts with type byte `prefix` to `key`.
    pub fn new(prefix: u8, flags: SubaccountFlags, key: &Ed25519Pub) -> Self {
        let mut bytes = [0u8; 36];
        bytes[0] = prefix;
        bytes[1] = flags.0;
        bytes[4..].copy_from_slice(key.as_bytes());
        Self(bytes)
    }

    /// Parses the 36 raw bytes (reserved bytes are kept as given: they are covered by signatures).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidToken> {
        <[u8; 36]>::try_from(bytes)
            .map(Self)
            .map_err(|_| InvalidToken)
    }

    /// Parses the JSON form: 48 base64 characters or 72 hex characters.
    pub fn from_text(text: &str) -> Result<Self, InvalidToken> {
        let bytes = match text.len() {
            48 => crate::b64::decode(text).map_err(|_| InvalidToken)?,
            72 => hex::decode(text).map_err(|_| InvalidToken)?,
            _ => return Err(InvalidToken),
        };
        Self::from_bytes(&bytes)
    }

    /// The raw token bytes (what signatures cover).
    pub const fn as_bytes(&self) -> &[u8; 36] {
        &self.0
    }

    /// The type byte of the accounts this token is for.
    pub const fn prefix(&self) -> u8 {
        self.0[0]
    }

    /// The access the token grants.
    pub const fn flags(&self) -> SubaccountFlags {
        SubaccountFlags(self.0[1])
    }

    /// The delegated key, which signs requests made with this token.
    pub fn subaccount_key(&self) -> Ed25519Pub {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.0[4..]);
        Ed25519Pub::from_bytes(key)
    }

    /// The account owner's signature that makes this token valid (`subaccount_sig`).
    pub fn sign(&self, owner: &Identity) -> Signature {
        owner.sign(&self.0)
    }

    /// Whether `signature` is the owner's signature over this token.
    pub fn verify(&self, owner: &Ed25519Pub, signature: &Signature) -> bool {
        owner.verify(&self.0, signature)
    }
}

impl fmt::Debug for SubaccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubaccountToken({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_spec_example() {
        let owner = Identity::from_seed([7; 32]);
        let member = Identity::from_seed([9; 32]);
        let token = SubaccountToken::new(
            0x03,
            SubaccountFlags::READ | SubaccountFlags::WRITE,
            &member.ed25519_public(),
        );
        assert_eq!(&token.as_bytes()[..4], &[0x03, 0x03, 0, 0]);
        assert_eq!(token.subaccount_key(), member.ed25519_public());
        assert!(token.flags().contains(SubaccountFlags::READ));
        assert!(!token.flags().contains(SubaccountFlags::DELETE));

        let sig = token.sign(&owner);
        assert!(token.verify(&owner.ed25519_public(), &sig));
        assert!(!token.verify(&member.ed25519_public(), &sig));

        let hex_form = hex::encode(token.as_bytes());
        assert_eq!(SubaccountToken::from_text(&hex_form), Ok(token));
        let b64_form = crate::b64::encode(token.as_bytes());
        assert_eq!(b64_form.len(), 48);
        assert_eq!(SubaccountToken::from_text(&b64_form), Ok(token));
        assert_eq!(SubaccountToken::from_text("abcd"), Err(InvalidToken));
    }
}
