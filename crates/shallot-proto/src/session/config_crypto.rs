//! Deterministic symmetric encryption of config messages (onion-client spec §4.4, "Config
//! encryption"; libsession's `config::encrypt`).
//!
//! The nonce is a keyed hash of the plaintext, so every client holding the same key base turns the
//! same config data into the same ciphertext and the storage server can deduplicate it:
//! - key = BLAKE2b-32 (unkeyed) over `key_base || BE64(len(msg)) || domain`;
//! - nonce = BLAKE2b-24 keyed with `"libsessionutil-config-encrypted-" || domain`, over `msg`;
//! - output = XChaCha20-Poly1305(msg) `|| tag(16) || nonce(24)`.
//!
//! `key_base` is hashed as input, not used as the BLAKE2b key: the `config_encrypt` vector
//! matches only this reading.

use std::fmt;

use blake2::digest::consts::{U24, U32};
use blake2::digest::Mac;
use blake2::{Blake2b, Blake2bMac, Digest};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;
use zeroize::Zeroizing;

/// Prefix of the BLAKE2b key that derives the nonce; the domain follows it.
const NONCE_KEY_PREFIX: &[u8] = b"libsessionutil-config-encrypted-";
/// Length of the XChaCha20 nonce appended to the ciphertext.
const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag.
const TAG_LEN: usize = 16;

/// Bytes [`encrypt_config`] adds to a message: tag and nonce (40).
pub const CONFIG_ENCRYPTION_OVERHEAD: usize = TAG_LEN + NONCE_LEN;

/// Longest domain libsession accepts (it keeps the nonce key within BLAKE2b's 64-byte limit).
pub const CONFIG_DOMAIN_MAX_LEN: usize = 24;

/// Why config encryption or decryption failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigCryptoError {
    /// The domain is empty or longer than [`CONFIG_DOMAIN_MAX_LEN`] bytes.
    #[error("config domain must be 1 to {CONFIG_DOMAIN_MAX_LEN} bytes, got {len}")]
    InvalidDomain {
        /// The domain's length in bytes.
        len: usize,
    },
    /// The ciphertext is shorter than tag plus nonce.
    #[error("config ciphertext is {len} bytes, shorter than the {CONFIG_ENCRYPTION_OVERHEAD}-byte minimum")]
    TooShort {
        /// The length received.
        len: usize,
    },
    /// The AEAD refused to encrypt (only for messages beyond its 256 GiB limit).
    #[error("config encryption failed")]
    Encryption,
    /// Authentication failed: wrong key or domain, or corrupted data.
    #[error("config decryption failed")]
    Decryption,
}

/// The domain that separates config types: each type's data is encrypted under its own key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigDomain<'a>(&'a str);

impl<'a> ConfigDomain<'a> {
    /// The user-profile config (namespace 2).
    pub const USER_PROFILE: ConfigDomain<'static> = ConfigDomain("UserProfile");
    /// The contacts config (namespace 3).
    pub const CONTACTS: ConfigDomain<'static> = ConfigDomain("Contacts");
    /// The conversation-info-volatile config (namespace 4).
    pub const CONVO_INFO_VOLATILE: ConfigDomain<'static> = ConfigDomain("ConvoInfoVolatile");
    /// The user-groups config (namespace 5).
    pub const USER_GROUPS: ConfigDomain<'static> = ConfigDomain("UserGroups");
    /// A group's info config (group namespace 13), keyed with the group key.
    pub const GROUP_INFO: ConfigDomain<'static> = ConfigDomain("groups::Info");
    /// A group's members config (group namespace 14), keyed with the group key.
    pub const GROUP_MEMBERS: ConfigDomain<'static> = ConfigDomain("groups::Members");

    /// A domain from its text, which must be 1 to [`CONFIG_DOMAIN_MAX_LEN`] bytes.
    pub const fn new(domain: &'a str) -> Result<Self, ConfigCryptoError> {
        if domain.is_empty() || domain.len() > CONFIG_DOMAIN_MAX_LEN {
            return Err(ConfigCryptoError::InvalidDomain { len: domain.len() });
        }
        Ok(Self(domain))
    }

    /// The domain text.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for ConfigDomain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigDomain({:?})", self.0)
    }
}

impl fmt::Display for ConfigDomain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Encrypts a config message: `ciphertext || tag || nonce`, deterministic in its inputs.
pub fn encrypt_config(
    message: &[u8],
    key_base: &[u8; 32],
    domain: ConfigDomain<'_>,
) -> Result<Vec<u8>, ConfigCryptoError> {
    let cipher = cipher_for(key_base, message.len(), domain);
    let nonce = message_nonce(message, domain)?;
    // chacha20poly1305 appends the tag, giving `ct || tag`; the nonce goes last.
    let mut out = cipher
        .encrypt(&nonce.into(), message)
        .map_err(|_| ConfigCryptoError::Encryption)?;
    out.extend_from_slice(&nonce);
    Ok(out)
}

/// Decrypts and authenticates the output of [`encrypt_config`].
pub fn decrypt_config(
    ciphertext: &[u8],
    key_base: &[u8; 32],
    domain: ConfigDomain<'_>,
) -> Result<Vec<u8>, ConfigCryptoError> {
    let Some(plain_len) = ciphertext.len().checked_sub(CONFIG_ENCRYPTION_OVERHEAD) else {
        return Err(ConfigCryptoError::TooShort {
            len: ciphertext.len(),
        });
    };
    let (sealed, nonce) = ciphertext.split_at(plain_len + TAG_LEN);
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    cipher_for(key_base, plain_len, domain)
        .decrypt(&nonce_bytes.into(), sealed)
        .map_err(|_| ConfigCryptoError::Decryption)
}

/// The per-message cipher: key = BLAKE2b-32 over `key_base || BE64(len) || domain`.
fn cipher_for(
    key_base: &[u8; 32],
    message_len: usize,
    domain: ConfigDomain<'_>,
) -> XChaCha20Poly1305 {
    let key = Zeroizing::new(
        Blake2b::<U32>::new()
            .chain_update(key_base)
            .chain_update((message_len as u64).to_be_bytes())
            .chain_update(domain.as_str().as_bytes())
            .finalize(),
    );
    XChaCha20Poly1305::new(&key)
}

/// The nonce: BLAKE2b-24 keyed `"libsessionutil-config-encrypted-" || domain` over the message.
fn message_nonce(
    message: &[u8],
    domain: ConfigDomain<'_>,
) -> Result<[u8; NONCE_LEN], ConfigCryptoError> {
    let mut nonce_key = Vec::with_capacity(NONCE_KEY_PREFIX.len() + CONFIG_DOMAIN_MAX_LEN);
    nonce_key.extend_from_slice(NONCE_KEY_PREFIX);
    nonce_key.extend_from_slice(domain.as_str().as_bytes());
    let mut mac = <Blake2bMac<U24> as Mac>::new_from_slice(&nonce_key).map_err(|_| {
        ConfigCryptoError::InvalidDomain {
            len: domain.as_str().len(),
        }
    })?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().into())
}
