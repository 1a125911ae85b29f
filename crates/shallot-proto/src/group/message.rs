//! Group messages (namespace 11, groups spec §5.1–§5.2): the sender signs the (optionally
//! zstd-compressed) payload together with the group's public key, wraps it in a small bencoded
//! dict with their Ed25519 key, pads it and encrypts it with the current group key.
//!
//! Only the current signature form (`data || group_pk`, libsession ≥ 2025-02) is written or
//! accepted; a message signed in the legacy form (`data` only) is reported as
//! [`GroupMessageError::LegacySignature`] and not shown (docs/compat.md).

use rand_core::CryptoRngCore;

use super::identity::GroupId;
use super::keys::GroupKey;
use super::multi::{aead_open, aead_seal, NONCE_LEN, TAG_LEN};
use crate::bencode::{Dict, Value};
use crate::identity::{Ed25519Pub, Identity, SessionId, Signature};

/// Largest plaintext accepted, before or after compression.
pub const MAX_GROUP_PLAINTEXT: usize = 1_000_000;
/// libsession's default padding block.
pub const GROUP_MESSAGE_PADDING: usize = 256;

/// Why a group message could not be built or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupMessageError {
    /// The plaintext (or its decompression) exceeds [`MAX_GROUP_PLAINTEXT`].
    #[error("group message larger than {MAX_GROUP_PLAINTEXT} bytes")]
    TooLarge,
    /// An empty plaintext (receivers require non-empty data, so it could never be read).
    #[error("group message plaintext is empty")]
    Empty,
    /// Shorter than nonce plus tag.
    #[error("group message ciphertext is {0} bytes, too short")]
    TooShort(usize),
    /// No held key opens it.
    #[error("no group key decrypts the message")]
    NoKey,
    /// The decrypted payload is not the expected dict.
    #[error("invalid group message payload: {0}")]
    Layout(&'static str),
    /// The sender key is not a valid Ed25519 key.
    #[error("group message sender key is invalid")]
    BadSender,
    /// Signed in the legacy form (data only), which is not accepted.
    #[error("group message uses the legacy signature form")]
    LegacySignature,
    /// The signature does not verify.
    #[error("group message signature does not verify")]
    BadSignature,
    /// The `z` payload is not a valid zstd frame.
    #[error("group message does not decompress")]
    Decompress,
}

/// A decrypted group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessage {
    /// The author, from the signed `a` key (never from the envelope).
    pub sender: SessionId,
    /// The author's Ed25519 key.
    pub sender_ed25519: Ed25519Pub,
    /// The plaintext (a protobuf `Envelope`).
    pub plaintext: Vec<u8>,
}

/// Encrypts `plaintext` from `sender` for `group` under `key` with a random nonce; `compress`
/// uses zstd when that is shorter, `padding` rounds the output to a multiple (≤ 1: none).
pub fn encrypt_for_group<R: CryptoRngCore + ?Sized>(
    sender: &Identity,
    group: &GroupId,
    key: &GroupKey,
    plaintext: &[u8],
    compress: bool,
    padding: usize,
    rng: &mut R,
) -> Result<Vec<u8>, GroupMessageError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    encrypt_for_group_with_nonce(sender, group, key, plaintext, compress, padding, &nonce)
}

/// [`encrypt_for_group`] with a given nonce (for test vectors; real senders use a random one).
pub fn encrypt_for_group_with_nonce(
    sender: &Identity,
    group: &GroupId,
    key: &GroupKey,
    plaintext: &[u8],
    compress: bool,
    padding: usize,
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, GroupMessageError> {
    if plaintext.len() > MAX_GROUP_PLAINTEXT {
        return Err(GroupMessageError::TooLarge);
    }
    if plaintext.is_empty() {
        return Err(GroupMessageError::Empty);
    }
    let compressed = compress
        .then(|| {
            ruzstd::encoding::compress_to_vec(
                plaintext,
                ruzstd::encoding::CompressionLevel::Fastest,
            )
        })
        .filter(|z| z.len() < plaintext.len());
    let (data_key, data) = match &compressed {
        Some(z) => (b"z", z.as_slice()),
        None => (b"d", plaintext),
    };
    let signature = sender.sign(&[data, group.pubkey().as_bytes()].concat());
    let mut dict = Dict::new();
    dict.insert(Vec::new(), Value::Int(1));
    dict.insert(
        b"a".to_vec(),
        Value::from(sender.ed25519_public().as_bytes().as_slice()),
    );
    dict.insert(data_key.to_vec(), Value::from(data));
    dict.insert(b"s".to_vec(), Value::from(signature.to_bytes().as_slice()));
    let mut inner = Value::Dict(dict).encode();
    if padding > 1 {
        let total = NONCE_LEN + TAG_LEN + inner.len();
        inner.resize(inner.len() + (padding - total % padding) % padding, 0);
    }
    let mut out = nonce.to_vec();
    out.extend_from_slice(&aead_seal(key.as_bytes(), nonce, &inner));
    Ok(out)
}

/// Decrypts a namespace-11 message with the first of `keys` that opens it, checks the sender's
/// signature and decompresses.
pub fn decrypt_group_message<'k>(
    keys: impl IntoIterator<Item = &'k GroupKey>,
    group: &GroupId,
    ciphertext: &[u8],
) -> Result<GroupMessage, GroupMessageError> {
    if ciphertext.len() < NONCE_LEN + TAG_LEN {
        return Err(GroupMessageError::TooShort(ciphertext.len()));
    }
    let (nonce, sealed) = ciphertext.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| GroupMessageError::TooShort(0))?;
    let padded = keys
        .into_iter()
        .find_map(|key| aead_open(key.as_bytes(), &nonce, sealed))
        .ok_or(GroupMessageError::NoKey)?;
    let end = padded.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let Ok(Value::Dict(dict)) = Value::decode(&padded[..end]) else {
        return Err(GroupMessageError::Layout("not a bencoded dict"));
    };
    if dict.get(b"".as_slice()).and_then(Value::as_int) != Some(1) {
        return Err(GroupMessageError::Layout("version \"\" must be 1"));
    }
    let sender_ed25519 = dict
        .get(b"a".as_slice())
        .and_then(Value::as_bytes)
        .and_then(|a| Ed25519Pub::from_slice(a).ok())
        .ok_or(GroupMessageError::Layout("\"a\" must be a 32-byte key"))?;
    let sender = SessionId::from_x25519(
        sender_ed25519
            .to_x25519()
            .map_err(|_| GroupMessageError::BadSender)?,
    );
    let signature = dict
        .get(b"s".as_slice())
        .and_then(Value::as_bytes)
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .map(|s| Signature::from_bytes(&s))
        .ok_or(GroupMessageError::Layout(
            "\"s\" must be a 64-byte signature",
        ))?;
    let non_empty = |k: &[u8]| {
        dict.get(k)
            .and_then(Value::as_bytes)
            .filter(|b| !b.is_empty())
    };
    let (data, compressed) = match (non_empty(b"d"), non_empty(b"z")) {
        (Some(d), None) => (d, false),
        (None, Some(z)) => (z, true),
        _ => return Err(GroupMessageError::Layout("exactly one of \"d\" and \"z\"")),
    };
    if !sender_ed25519.verify(&[data, group.pubkey().as_bytes()].concat(), &signature) {
        return Err(if sender_ed25519.verify(data, &signature) {
            GroupMessageError::LegacySignature
        } else {
            GroupMessageError::BadSignature
        });
    }
    let plaintext = if compressed {
        decompress(data)?
    } else {
        data.to_vec()
    };
    Ok(GroupMessage {
        sender,
        sender_ed25519,
        plaintext,
    })
}

/// Inflates a zstd frame, refusing more than [`MAX_GROUP_PLAINTEXT`] bytes.
fn decompress(frame: &[u8]) -> Result<Vec<u8>, GroupMessageError> {
    use std::io::Read as _;
    let mut source = frame;
    let decoder = ruzstd::decoding::StreamingDecoder::new(&mut source)
        .map_err(|_| GroupMessageError::Decompress)?;
    let mut out = Vec::new();
    decoder
        .take(MAX_GROUP_PLAINTEXT as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| GroupMessageError::Decompress)?;
    if out.len() > MAX_GROUP_PLAINTEXT {
        return Err(GroupMessageError::TooLarge);
    }
    Ok(out)
}
