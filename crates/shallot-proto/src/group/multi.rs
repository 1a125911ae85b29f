//! Multi-recipient encryption (onion-client spec §4.4, libsession `multi_encrypt`): one nonce,
//! one XChaCha20-Poly1305 ciphertext per recipient, each under
//! `H_32(X25519(a, B) || A || B; key = domain)` with the sender's X25519 keys `(a, A)` and the
//! recipient's `B` (the recipient computes the same key from `(b, A)`). Recipients are not named:
//! a recipient tries every entry. The "simple" container is `bt{"#": nonce, "e": [ct…]}`.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::hash::h32;
use crate::bencode::{Dict, Value};
use crate::identity::X25519Pub;

/// Length of the shared nonce.
pub const NONCE_LEN: usize = 24;
/// The Poly1305 tag each ciphertext adds.
pub const TAG_LEN: usize = 16;

/// The pairwise key, or `None` when the key agreement is all zeros (a low-order public key;
/// libsodium refuses those and the group-keys code skips such recipients).
/// `secret` is ours and `peer` the other side's key; `sender`/`recipient` fix the hash order.
fn pair_key(
    secret: &StaticSecret,
    peer: &X25519Pub,
    sender: &X25519Pub,
    recipient: &X25519Pub,
    domain: &[u8],
) -> Option<Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(&PublicKey::from(*peer.as_bytes()));
    if !shared.was_contributory() {
        return None;
    }
    Some(Zeroizing::new(h32(
        domain,
        &[shared.as_bytes(), sender.as_bytes(), recipient.as_bytes()],
    )))
}

/// XChaCha20-Poly1305 without associated data: `ct || tag`.
pub(crate) fn aead_seal(key: &[u8; 32], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(nonce.into(), plaintext)
        .expect("XChaCha20-Poly1305 only fails beyond 256 GiB")
}

/// Opens [`aead_seal`]'s output; `None` if it does not authenticate.
pub(crate) fn aead_open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    XChaCha20Poly1305::new(key.into())
        .decrypt(nonce.into(), ciphertext)
        .ok()
}

/// Encrypts `message(i)` for each recipient `i` from the sender's X25519 secret, skipping
/// recipients whose key agreement fails (their index is absent from the result).
pub fn encrypt_for_multiple<'m>(
    sender: &StaticSecret,
    recipients: &[X25519Pub],
    nonce: &[u8; NONCE_LEN],
    domain: &[u8],
    mut message: impl FnMut(usize) -> &'m [u8],
) -> Vec<Vec<u8>> {
    let sender_pub = X25519Pub::from_bytes(PublicKey::from(sender).to_bytes());
    recipients
        .iter()
        .enumerate()
        .filter_map(|(i, recipient)| {
            let key = pair_key(sender, recipient, &sender_pub, recipient, domain)?;
            Some(aead_seal(&key, nonce, message(i)))
        })
        .collect()
}

/// The recipient side: the first entry that opens under the key shared with `sender`.
pub fn decrypt_for_multiple<'c>(
    ciphertexts: impl IntoIterator<Item = &'c [u8]>,
    nonce: &[u8; NONCE_LEN],
    secret: &StaticSecret,
    sender: &X25519Pub,
    domain: &[u8],
) -> Option<Vec<u8>> {
    let me = X25519Pub::from_bytes(PublicKey::from(secret).to_bytes());
    let key = pair_key(secret, sender, sender, &me, domain)?;
    ciphertexts
        .into_iter()
        .find_map(|ct| aead_open(&key, nonce, ct))
}

/// Why a simple multi-recipient container could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    /// Not canonical bencode.
    #[error("invalid bencode: {0}")]
    Bencode(#[from] crate::bencode::BencodeError),
    /// Not `{"#": 24 bytes, "e": [byte strings]}`.
    #[error("not a multi-recipient container: {0}")]
    Layout(&'static str),
}

/// The simple container: a nonce and the ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiContainer {
    /// The shared nonce (`#`).
    pub nonce: [u8; NONCE_LEN],
    /// One ciphertext per recipient (`e`).
    pub ciphertexts: Vec<Vec<u8>>,
}

impl MultiContainer {
    /// `d1:#24:<nonce>1:el<ct>…ee`.
    pub fn encode(&self) -> Vec<u8> {
        let mut dict = Dict::new();
        dict.insert(b"#".to_vec(), Value::from(self.nonce.as_slice()));
        dict.insert(
            b"e".to_vec(),
            Value::List(self.ciphertexts.iter().cloned().map(Value::Bytes).collect()),
        );
        Value::Dict(dict).encode()
    }

    /// Parses [`encode`](Self::encode)'s output; other keys are rejected.
    pub fn parse(bytes: &[u8]) -> Result<Self, ContainerError> {
        let Value::Dict(dict) = Value::decode(bytes)? else {
            return Err(ContainerError::Layout("not a dict"));
        };
        if dict.len() != 2 {
            return Err(ContainerError::Layout("keys other than \"#\" and \"e\""));
        }
        let nonce = dict
            .get(b"#".as_slice())
            .and_then(Value::as_bytes)
            .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
            .ok_or(ContainerError::Layout("\"#\" must be a 24-byte nonce"))?;
        let ciphertexts = dict
            .get(b"e".as_slice())
            .and_then(Value::as_list)
            .ok_or(ContainerError::Layout("\"e\" must be a list"))?
            .iter()
            .map(|v| v.as_bytes().map(<[u8]>::to_vec))
            .collect::<Option<Vec<_>>>()
            .ok_or(ContainerError::Layout("\"e\" must hold byte strings"))?;
        Ok(Self { nonce, ciphertexts })
    }
}
