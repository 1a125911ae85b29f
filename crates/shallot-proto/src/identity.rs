//! Keys and account identifiers (onion-client spec §4.1).
//!
//! An account is a 32-byte Ed25519 seed. Its X25519 key, derived from the Ed25519 key, is what the
//! network sees: a Session ID is `05` followed by that X25519 key in hex. Other one-byte prefixes
//! name other kinds of account (`03` groups, `15`/`25` blinded community IDs, `00` unblinded keys).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

pub use ed25519_dalek::Signature;

/// Why a key or account ID could not be parsed or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text or byte string has the wrong length.
    #[error("expected {expected} hex characters, got {got}")]
    WrongLength {
        /// Expected number of hex characters.
        expected: usize,
        /// Number actually given.
        got: usize,
    },
    /// The text is not hexadecimal.
    #[error("not hexadecimal")]
    NotHex,
    /// The account ID has a prefix other than the one required here.
    #[error("expected an account ID starting with {expected:02x}, got prefix {found:02x}")]
    WrongPrefix {
        /// Prefix required by the caller.
        expected: u8,
        /// Prefix found.
        found: u8,
    },
    /// The 32 bytes are not a valid Ed25519 point.
    #[error("not a valid Ed25519 public key")]
    InvalidEd25519,
}

fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], IdError> {
    if text.len() != 2 * N {
        return Err(IdError::WrongLength {
            expected: 2 * N,
            got: text.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| IdError::NotHex)?;
    Ok(out)
}

/// Implements lowercase-hex `Display`/`FromStr`/serde for a 32-byte key newtype.
macro_rules! hex_key_type {
    ($name:ident) => {
        impl $name {
            /// Wraps raw key bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            /// The raw 32 key bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Parses a 32-byte slice.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
                <[u8; 32]>::try_from(bytes)
                    .map(Self)
                    .map_err(|_| IdError::WrongLength {
                        expected: 64,
                        got: bytes.len() * 2,
                    })
            }
            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_hex::<32>(s).map(Self)
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An Ed25519 public key: a node's identity, or the signing key behind an account.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ed25519Pub([u8; 32]);
hex_key_type!(Ed25519Pub);

/// An X25519 public key: what encryption to an account or node uses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct X25519Pub([u8; 32]);
hex_key_type!(X25519Pub);

impl Ed25519Pub {
    /// Converts to the X25519 (Montgomery) form, as libsodium's
    /// `crypto_sign_ed25519_pk_to_curve25519` does; fails for bytes that are not a curve point.
    pub fn to_x25519(&self) -> Result<X25519Pub, IdError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| IdError::InvalidEd25519)?;
        Ok(X25519Pub(key.to_montgomery().to_bytes()))
    }

    /// Verifies a detached signature, rejecting non-canonical and small-order forms.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        VerifyingKey::from_bytes(&self.0)
            .and_then(|key| key.verify_strict(message, signature))
            .is_ok()
    }
}

/// The X25519 secret scalar libsodium derives from an Ed25519 seed: the first half of
/// SHA-512(seed), clamped (`crypto_sign_ed25519_sk_to_curve25519`).
pub fn ed25519_seed_to_x25519_secret(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let digest = Zeroizing::new(Sha512::digest(seed));
    let mut scalar = Zeroizing::new([0u8; 32]);
    scalar.copy_from_slice(&digest[..32]);
    scalar[0] &= 0xf8;
    scalar[31] &= 0x7f;
    scalar[31] |= 0x40;
    scalar
}

/// The one-byte prefix of an account ID, naming what the following 32 bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// `05`: a user account; the key is X25519 (a Session ID).
    Session,
    /// `03`: a groups-v2 account; the key is the group's Ed25519 key.
    Group,
    /// `15`: a community-blinded ID (blind15).
    Blinded15,
    /// `25`: a community-blinded ID (blind25).
    Blinded25,
    /// `00`: an unblinded Ed25519 key (community auth headers, testnet accounts).
    Unblinded,
    /// `07`: a version-check blinded key.
    VersionBlinded,
    /// Any other prefix: the storage server accepts all 256.
    Other(u8),
}

impl AccountKind {
    /// The prefix byte.
    pub const fn prefix(self) -> u8 {
        match self {
            Self::Session => 0x05,
            Self::Group => 0x03,
            Self::Blinded15 => 0x15,
            Self::Blinded25 => 0x25,
            Self::Unblinded => 0x00,
            Self::VersionBlinded => 0x07,
            Self::Other(p) => p,
        }
    }

    /// The kind named by a prefix byte.
    pub const fn from_prefix(prefix: u8) -> Self {
        match prefix {
            0x05 => Self::Session,
            0x03 => Self::Group,
            0x15 => Self::Blinded15,
            0x25 => Self::Blinded25,
            0x00 => Self::Unblinded,
            0x07 => Self::VersionBlinded,
            p => Self::Other(p),
        }
    }
}

/// Any storage account: a type byte and 32 key bytes (66 hex characters on the wire).
///
/// `03ab…` and `05ab…` are different mailboxes that map to the same swarm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId {
    prefix: u8,
    key: [u8; 32],
}

impl AccountId {
    /// Builds an account ID from its parts.
    pub const fn new(kind: AccountKind, key: [u8; 32]) -> Self {
        Self {
            prefix: kind.prefix(),
            key,
        }
    }

    /// Parses 33 raw bytes (type byte first).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        let (&prefix, key) = bytes.split_first().ok_or(IdError::WrongLength {
            expected: 66,
            got: 0,
        })?;
        let key = <[u8; 32]>::try_from(key).map_err(|_| IdError::WrongLength {
            expected: 66,
            got: bytes.len() * 2,
        })?;
        Ok(Self { prefix, key })
    }

    /// What kind of account this is.
    pub const fn kind(&self) -> AccountKind {
        AccountKind::from_prefix(self.prefix)
    }

    /// The type ("network id") byte.
    pub const fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The 32 key bytes without the prefix.
    pub const fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The 33 bytes: prefix then key.
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.prefix;
        out[1..].copy_from_slice(&self.key);
        out
    }

    /// Lowercase hex, 66 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.to_hex())
    }
}

impl FromStr for AccountId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bytes = parse_hex::<33>(s)?;
        Self::from_bytes(&bytes)
    }
}

impl serde::Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A Session ID: a user account, `05` followed by the account's X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(X25519Pub);

impl SessionId {
    /// The Session ID of an X25519 public key.
    pub const fn from_x25519(key: X25519Pub) -> Self {
        Self(key)
    }

    /// The account's X25519 public key.
    pub const fn x25519(&self) -> &X25519Pub {
        &self.0
    }

    /// As a generic storage account.
    pub const fn account(&self) -> AccountId {
        AccountId::new(AccountKind::Session, self.0 .0)
    }
}

impl From<SessionId> for AccountId {
    fn from(id: SessionId) -> Self {
        id.account()
    }
}

impl TryFrom<AccountId> for SessionId {
    type Error = IdError;
    fn try_from(id: AccountId) -> Result<Self, IdError> {
        match id.kind() {
            AccountKind::Session => Ok(Self(X25519Pub(id.key))),
            _ => Err(IdError::WrongPrefix {
                expected: 0x05,
                found: id.prefix,
            }),
        }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.account().fmt(f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.account().to_hex())
    }
}

impl FromStr for SessionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        s.parse::<AccountId>()?.try_into()
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A full account or node identity: the Ed25519 seed and every key derived from it.
///
/// Secrets are zeroed on drop and never printed: `Debug` shows only the public Ed25519 key.
#[derive(Clone)]
pub struct Identity {
    seed: Zeroizing<[u8; 32]>,
    signing: SigningKey,
    x25519_secret: StaticSecret,
    x25519_public: X25519Pub,
}

impl Identity {
    /// Derives every key from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        let signing = SigningKey::from_bytes(&seed);
        let scalar = ed25519_seed_to_x25519_secret(&seed);
        let x25519_secret = StaticSecret::from(*scalar);
        let x25519_public = X25519Pub(x25519_dalek::PublicKey::from(&x25519_secret).to_bytes());
        Self {
            seed,
            signing,
            x25519_secret,
            x25519_public,
        }
    }

    /// Derives an account from a 16-byte recovery seed (zero-extended to 32 bytes, as Session does).
    pub fn from_recovery_seed(seed: &[u8; 16]) -> Self {
        let mut full = Zeroizing::new([0u8; 32]);
        full[..16].copy_from_slice(seed);
        Self::from_seed(*full)
    }

    /// A new random account with a 16-byte seed, so that it has a recovery phrase.
    pub fn generate<R: rand_core::CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(seed.as_mut());
        Self::from_recovery_seed(&seed)
    }

    /// The 32-byte Ed25519 seed. Secret.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The 16-byte recovery seed, if this identity has one (its seed ends in 16 zero bytes).
    pub fn recovery_seed(&self) -> Option<Zeroizing<[u8; 16]>> {
        if self.seed[16..].iter().any(|&b| b != 0) {
            return None;
        }
        let mut out = Zeroizing::new([0u8; 16]);
        out.copy_from_slice(&self.seed[..16]);
        Some(out)
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> Ed25519Pub {
        Ed25519Pub(self.signing.verifying_key().to_bytes())
    }

    /// The X25519 public key (derived from the Ed25519 key).
    pub fn x25519_public(&self) -> X25519Pub {
        self.x25519_public
    }

    /// The X25519 secret, for key agreement. Secret.
    pub fn x25519_secret(&self) -> &StaticSecret {
        &self.x25519_secret
    }

    /// The Ed25519 signing key. Secret.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The Session ID (`05` + X25519 public key).
    pub fn session_id(&self) -> SessionId {
        SessionId(self.x25519_public)
    }

    /// Signs a message with the Ed25519 key (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        self.signing.sign(message)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.ed25519_public())
    }
}
