//! The group-signed bencoded dict (groups spec §0.1): a dict whose last key `~` holds the group's
//! Ed25519 signature over the serialization up to (not including) `1:~`. Key messages are such
//! dicts; group configs carry the same signature as their last key.

use super::identity::{GroupAdmin, GroupId};
use crate::bencode::{decode_dict_entries, BencodeError, Dict, Value};
use crate::identity::Signature;

/// Why a signed dict was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    /// Not canonical bencode.
    #[error("invalid bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// No `~` key (it must be the last one).
    #[error("missing the \"~\" group signature")]
    Unsigned,
    /// `~` is not 64 bytes.
    #[error("\"~\" must be a 64-byte signature")]
    BadSignatureField,
    /// The signature is not the group's.
    #[error("not signed by the group")]
    BadSignature,
}

/// Serializes `dict` (which must not hold `~`) and appends the group signature.
pub(crate) fn sign_dict(dict: &Dict, admin: &GroupAdmin) -> Vec<u8> {
    let mut out = Value::Dict(dict.clone()).encode();
    out.pop();
    append_signature(out, admin)
}

/// Finishes a serialization missing its closing `e`: signs it and appends `1:~64:<sig>e`.
pub(crate) fn append_signature(mut signed: Vec<u8>, admin: &GroupAdmin) -> Vec<u8> {
    let signature = admin.sign(&signed);
    signed.extend_from_slice(b"1:~64:");
    signed.extend_from_slice(&signature.to_bytes());
    signed.push(b'e');
    signed
}

/// Verifies the signature of a serialized signed dict and returns the dict without `~`.
pub(crate) fn open_signed(bytes: &[u8], group: &GroupId) -> Result<Dict, SignedError> {
    let mut entries = decode_dict_entries(bytes)?;
    let last = entries.pop().ok_or(SignedError::Unsigned)?;
    if last.key != b"~" {
        return Err(SignedError::Unsigned);
    }
    let signature = last
        .value
        .as_bytes()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or(SignedError::BadSignatureField)?;
    verify_range(&bytes[..last.offset], &signature, group)?;
    Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
}

/// Checks the group's signature over `signed`.
pub(crate) fn verify_range(
    signed: &[u8],
    signature: &[u8; 64],
    group: &GroupId,
) -> Result<(), SignedError> {
    if group
        .pubkey()
        .verify(signed, &Signature::from_bytes(signature))
    {
        Ok(())
    } else {
        Err(SignedError::BadSignature)
    }
}
