//! GroupInfo (namespace 13) and GroupMembers (namespace 14) configs on the wire (groups spec
//! §4.1): the user-config message format, signed by the group as its last key `~`, compressed
//! when that is shorter, padded, and encrypted with the group key (decrypting tries every held
//! key). A config without the group's signature is refused.

use super::identity::{GroupAdmin, GroupId};
use super::keys::GroupKey;
use super::signed::{append_signature, verify_range, SignedError};
use crate::bencode::Dict;
use crate::namespace::Namespace;
use crate::session::config_crypto::{decrypt_config, encrypt_config, ConfigDomain};
use crate::session::config_message::{
    open_decrypted, pad_config, ConfigError, ConfigMessage, OpenedConfig,
};

/// Largest stored group config (after encryption).
pub const MAX_GROUP_CONFIG: usize = 76_800;

/// The two group configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupConfigKind {
    /// Name, description, picture, timers, destroyed flag.
    Info,
    /// The member list.
    Members,
}

impl GroupConfigKind {
    /// The group namespace it is stored in.
    pub const fn namespace(self) -> Namespace {
        match self {
            Self::Info => Namespace::GROUP_INFO,
            Self::Members => Namespace::GROUP_MEMBERS,
        }
    }

    /// Its encryption domain.
    pub const fn domain(self) -> ConfigDomain<'static> {
        match self {
            Self::Info => ConfigDomain::GROUP_INFO,
            Self::Members => ConfigDomain::GROUP_MEMBERS,
        }
    }
}

/// Why a group config could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupConfigError {
    /// No held key decrypts it.
    #[error("no group key decrypts the config")]
    NoKey,
    /// It decrypts but is not a valid config message.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// It carries no `~` signature.
    #[error("group config is not signed")]
    Unsigned,
    /// The signature is not the group's.
    #[error("group config is not signed by the group")]
    BadSignature,
    /// The sealed config exceeds [`MAX_GROUP_CONFIG`].
    #[error("group config is {0} bytes, over the {MAX_GROUP_CONFIG}-byte limit")]
    TooLarge(usize),
}

/// Serializes (diffing against `previous`), signs, compresses if shorter, pads and encrypts.
/// Admins only. Deterministic for the same inputs.
pub fn seal_group_config(
    message: &ConfigMessage,
    previous: Option<&Dict>,
    admin: &GroupAdmin,
    key: &GroupKey,
    kind: GroupConfigKind,
) -> Result<Vec<u8>, GroupConfigError> {
    seal_signed_group_config(&sign_group_config(message, previous, admin), key, kind)
}

/// The signed serialization of `message` (its `=` diff against `previous`), `~` last: the
/// bytes members decrypt, and what the version's hash in later `<` lagged diffs covers.
/// Deterministic (Ed25519), so admins signing the same merge produce the same bytes.
pub fn sign_group_config(
    message: &ConfigMessage,
    previous: Option<&Dict>,
    admin: &GroupAdmin,
) -> Vec<u8> {
    let mut serialized = message.serialize(previous);
    serialized.pop();
    append_signature(serialized, admin)
}

/// Compresses a signed config (from [`sign_group_config`]) if shorter, pads and encrypts it.
pub fn seal_signed_group_config(
    signed: &[u8],
    key: &GroupKey,
    kind: GroupConfigKind,
) -> Result<Vec<u8>, GroupConfigError> {
    let compressed =
        ruzstd::encoding::compress_to_vec(signed, ruzstd::encoding::CompressionLevel::Fastest);
    let payload = if compressed.len() + 1 < signed.len() {
        [b"z".as_slice(), &compressed].concat()
    } else {
        signed.to_vec()
    };
    let sealed = encrypt_config(&pad_config(&payload), key.as_bytes(), kind.domain())
        .map_err(|e| GroupConfigError::Config(e.into()))?;
    if sealed.len() > MAX_GROUP_CONFIG {
        return Err(GroupConfigError::TooLarge(sealed.len()));
    }
    Ok(sealed)
}

/// Decrypts with the first of `keys` that works, parses, and checks the group signature.
pub fn open_group_config<'k>(
    ciphertext: &[u8],
    keys: impl IntoIterator<Item = &'k GroupKey>,
    group: &GroupId,
    kind: GroupConfigKind,
) -> Result<OpenedConfig, GroupConfigError> {
    let plaintext = keys
        .into_iter()
        .find_map(|key| decrypt_config(ciphertext, key.as_bytes(), kind.domain()).ok())
        .ok_or(GroupConfigError::NoKey)?;
    let opened = open_decrypted(plaintext)?;
    let signature = opened.parsed.signature.ok_or(GroupConfigError::Unsigned)?;
    verify_range(
        signature.signed_bytes(&opened.plaintext),
        &signature.signature,
        group,
    )
    .map_err(|e| match e {
        SignedError::BadSignature => GroupConfigError::BadSignature,
        _ => GroupConfigError::Unsigned,
    })?;
    Ok(opened)
}
