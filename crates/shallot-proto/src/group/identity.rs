//! Group identity (groups spec §1): a group is an Ed25519 keypair; its ID is `03` + hex of the
//! public key, and whoever holds the 32-byte seed is an admin.

use std::fmt;
use std::str::FromStr;

use rand_core::CryptoRngCore;
use x25519_dalek::StaticSecret;

use super::hash::h32;
use crate::identity::{
    AccountId, AccountKind, Ed25519Pub, IdError, Identity, Signature, X25519Pub,
};

/// A group's public identity: its Ed25519 public key, written `03…` (66 hex characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(Ed25519Pub);

impl GroupId {
    /// The group with this Ed25519 public key.
    pub const fn from_pubkey(pubkey: Ed25519Pub) -> Self {
        Self(pubkey)
    }

    /// The group's Ed25519 public key: it verifies every key message, config and admin signature.
    pub const fn pubkey(&self) -> &Ed25519Pub {
        &self.0
    }

    /// The group as a storage account (`0x03` + key), which names its swarm.
    pub const fn account(&self) -> AccountId {
        AccountId::new(AccountKind::Group, *self.0.as_bytes())
    }

    /// The 33-byte binary ID (`0x03` + key), as UserGroups keys it.
    pub fn to_bytes(&self) -> [u8; 33] {
        self.account().to_bytes()
    }

    /// Parses the 33-byte binary ID; the first byte must be `0x03`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        Self::try_from(AccountId::from_bytes(bytes)?)
    }

    /// The group's X25519 public key (`gx_pk`), the sender key of member key copies and kicked
    /// notices.
    pub fn x25519(&self) -> Result<X25519Pub, IdError> {
        self.0.to_x25519()
    }
}

impl TryFrom<AccountId> for GroupId {
    type Error = IdError;
    fn try_from(account: AccountId) -> Result<Self, IdError> {
        if account.kind() != AccountKind::Group {
            return Err(IdError::WrongPrefix {
                expected: 0x03,
                found: account.prefix(),
            });
        }
        Ok(Self(Ed25519Pub::from_bytes(*account.key())))
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "03{}", self.0.to_hex())
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({self})")
    }
}

impl FromStr for GroupId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::try_from(AccountId::from_str(s)?)
    }
}

/// The keys derived from the group seed with [`seed_hash`], one per purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedHash {
    /// `SessionGroupKeySeed`: mixed into every rekey and supplement nonce.
    KeySeed,
    /// `SessionGroupKeyAdminKey`: encrypts the admins' copy of each group key.
    AdminKey,
    /// `SessionGroupSubaccountMask`: keys the subaccount blinding hash.
    SubaccountMask,
}

impl SeedHash {
    /// The BLAKE2b key string.
    pub const fn key(self) -> &'static str {
        match self {
            Self::KeySeed => "SessionGroupKeySeed",
            Self::AdminKey => "SessionGroupKeyAdminKey",
            Self::SubaccountMask => "SessionGroupSubaccountMask",
        }
    }
}

/// `seed_hash(s) = H_32(group_seed; key = s)`.
pub fn seed_hash(seed: &[u8; 32], purpose: SeedHash) -> [u8; 32] {
    h32(purpose.key().as_bytes(), &[seed])
}

/// An admin's view of a group: the seed and every key derived from it. Secret; `Debug` shows
/// only the group ID.
#[derive(Clone)]
pub struct GroupAdmin {
    keys: Identity,
}

impl GroupAdmin {
    /// The group whose seed is `seed` (from a promotion message or UserGroups `K`).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            keys: Identity::from_seed(seed),
        }
    }

    /// A new group with a random seed.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(*seed)
    }

    /// The 32-byte group seed. Secret: it makes its holder an admin.
    pub fn seed(&self) -> &[u8; 32] {
        self.keys.seed()
    }

    /// The 64-byte libsodium secret key, `seed || pk` (hashed into the junk-entry seed).
    pub fn secret_key_bytes(&self) -> zeroize::Zeroizing<[u8; 64]> {
        let mut out = zeroize::Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(self.seed());
        out[32..].copy_from_slice(self.keys.ed25519_public().as_bytes());
        out
    }

    /// The group's public identity.
    pub fn id(&self) -> GroupId {
        GroupId(self.keys.ed25519_public())
    }

    /// The group's X25519 public key (`gx_pk`).
    pub fn x25519_public(&self) -> X25519Pub {
        self.keys.x25519_public()
    }

    /// The group's X25519 secret (`gx_sk`). Secret.
    pub fn x25519_secret(&self) -> &StaticSecret {
        self.keys.x25519_secret()
    }

    /// A seed hash for `purpose`. Secret.
    pub fn seed_hash(&self, purpose: SeedHash) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(seed_hash(self.seed(), purpose))
    }

    /// Signs with the group key (admin authentication, `~` signatures, admin texts).
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.keys.sign(message)
    }
}

impl fmt::Debug for GroupAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupAdmin({})", self.id())
    }
}
