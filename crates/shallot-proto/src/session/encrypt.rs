//! The classic Session protocol: sign-then-seal 1-to-1 message encryption (onion-client spec
//! §4.2, §7 item 12).
//!
//! The sender signs `M || sender_Ed25519 || recipient_X25519`, then seals
//! `M || sender_Ed25519 || SIG` to the recipient's X25519 key with a libsodium sealed box. The
//! recipient learns who sent the message only from inside the box, and the signature binds the
//! message to that recipient so it cannot be re-sealed to someone else.

use blake2::digest::consts::{U24, U32};
use blake2::digest::Mac;
use blake2::{Blake2b, Blake2bMac, Digest};
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::CryptoRngCore;
use sha2::Sha512;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::identity::{Ed25519Pub, Identity, SessionId, Signature, X25519Pub};
use crate::onion::X25519Keypair;

/// BLAKE2b key for deriving the deterministic ephemeral seed (libsession's name for it).
const EPHEMERAL_HASH_KEY: &[u8] = b"SessionBoxEphemeralHashKey";

/// Bytes a sealed box adds: the ephemeral X25519 key and the Poly1305 tag.
const SEAL_OVERHEAD: usize = 32 + 16;
/// Bytes the signed inner layer adds after the message: sender Ed25519 key and signature.
const SIGNED_SUFFIX: usize = 32 + 64;

/// Total bytes [`encrypt_for_recipient`] adds to a message (144); also the shortest ciphertext
/// [`decrypt_incoming`] accepts (an empty message).
pub const ENCRYPTION_OVERHEAD: usize = SEAL_OVERHEAD + SIGNED_SUFFIX;

/// Why a message could not be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    /// The recipient key is a low-order point, so the box key would be public; libsodium refuses
    /// such keys too.
    #[error("recipient X25519 key is a low-order point")]
    WeakRecipientKey,
    /// The XSalsa20-Poly1305 box failed (not expected to happen with in-memory buffers).
    #[error("box encryption failed")]
    Encryption,
}

/// Why an incoming ciphertext was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// Shorter than [`ENCRYPTION_OVERHEAD`] bytes, so not a Session-protocol ciphertext.
    #[error("ciphertext is {len} bytes, shorter than the {ENCRYPTION_OVERHEAD}-byte minimum")]
    TooShort {
        /// The length received.
        len: usize,
    },
    /// The sealed box did not open: not for us, corrupted, or a low-order ephemeral key.
    #[error("sealed box could not be opened")]
    Decryption,
    /// The embedded sender key is not a valid Ed25519 point.
    #[error("embedded sender Ed25519 key is invalid")]
    InvalidSenderKey,
    /// The sender's signature over the message does not verify.
    #[error("sender signature does not verify")]
    BadSignature,
}

/// A message opened by [`decrypt_incoming`], with its authenticated sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The message as the sender passed it in (for DMs: a padded `Content`).
    pub plaintext: Vec<u8>,
    /// The sender's Ed25519 key, which signed the message.
    pub sender_ed25519: Ed25519Pub,
    /// The sender's Session ID, derived from `sender_ed25519`.
    pub sender: SessionId,
}

/// Encrypts `message` for `recipient` with a fresh random ephemeral key (a libsodium sealed box).
///
/// The output is `|message| + 144` bytes. `message` should already be padded (see
/// [`super::padding`]) when it is a DM `Content`.
pub fn encrypt_for_recipient<R: CryptoRngCore + ?Sized>(
    sender: &Identity,
    recipient: &X25519Pub,
    message: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, EncryptError> {
    reject_low_order(recipient)?;
    let inner = signed_inner(sender, recipient, message);
    seal_with(&X25519Keypair::generate(rng), recipient, &inner)
}

/// libsodium's sealed box with a given ephemeral keypair: `EPK || XSalsa20-Poly1305(inner)`
/// under the box key of (ephemeral secret, recipient), nonce = BLAKE2b-24(EPK || recipient).
fn seal_with(
    ephemeral: &X25519Keypair,
    recipient: &X25519Pub,
    inner: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let nonce = seal_nonce(ephemeral.public(), recipient);
    let boxed = box_cipher(ephemeral, recipient)
        .ok_or(EncryptError::WeakRecipientKey)?
        .encrypt(&nonce.into(), inner)
        .map_err(|_| EncryptError::Encryption)?;
    let mut out = Vec::with_capacity(32 + boxed.len());
    out.extend_from_slice(ephemeral.public().as_bytes());
    out.extend_from_slice(&boxed);
    Ok(out)
}

/// The cipher of a box between `ours` and `theirs` (libsodium's `crypto_box_beforenm`): its key
/// is HSalsa20 over the X25519 shared secret with a zero input. `None` for a small-order key.
///
/// The exchange goes through [`X25519Keypair::exchange`] (aws-lc's assembly), which is why this
/// does not use `crypto_box`, whose exchange is the 3× slower portable ladder.
fn box_cipher(ours: &X25519Keypair, theirs: &X25519Pub) -> Option<XSalsa20Poly1305> {
    let shared = ours.exchange(theirs).ok()?;
    let key = Zeroizing::new(salsa20::hsalsa::<crypto_secretbox::consts::U10>(
        shared.as_ref().into(),
        &[0u8; 16].into(),
    ));
    Some(XSalsa20Poly1305::new(&key))
}

/// Encrypts like [`encrypt_for_recipient`], but derives the ephemeral key from the sender's seed,
/// the recipient and the message, so the same input always gives the same ciphertext.
///
/// Session uses this for self-addressed legacy config messages so that repeated pushes of the
/// same data deduplicate. The output has the sealed-box format and opens with
/// [`decrypt_incoming`].
pub fn encrypt_for_recipient_deterministic(
    sender: &Identity,
    recipient: &X25519Pub,
    message: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    reject_low_order(recipient)?;
    let inner = signed_inner(sender, recipient, message);

    let mut seed_mac = <Blake2bMac<U32> as Mac>::new_from_slice(EPHEMERAL_HASH_KEY)
        .map_err(|_| EncryptError::Encryption)?;
    seed_mac.update(sender.seed());
    seed_mac.update(recipient.as_bytes());
    seed_mac.update(message);
    let seed = Zeroizing::new(<[u8; 32]>::from(seed_mac.finalize().into_bytes()));

    // libsodium's crypto_box_seed_keypair: the secret key is the first half of SHA-512(seed).
    let digest = Zeroizing::new(Sha512::digest(*seed));
    let mut ephemeral_bytes = Zeroizing::new([0u8; 32]);
    ephemeral_bytes.copy_from_slice(&digest[..32]);
    let ephemeral = X25519Keypair::from_secret(StaticSecret::from(*ephemeral_bytes));
    seal_with(&ephemeral, recipient, &inner)
}

/// Opens a Session-protocol ciphertext addressed to `recipient` and checks the sender's
/// signature. Any input is safe: malformed or forged ciphertexts give an error.
pub fn decrypt_incoming(
    recipient: &Identity,
    ciphertext: &[u8],
) -> Result<Decrypted, DecryptError> {
    if ciphertext.len() < ENCRYPTION_OVERHEAD {
        return Err(DecryptError::TooShort {
            len: ciphertext.len(),
        });
    }
    let mut ephemeral = [0u8; 32];
    ephemeral.copy_from_slice(&ciphertext[..32]);
    if is_low_order(&ephemeral) {
        return Err(DecryptError::Decryption);
    }

    let ours = X25519Keypair::from(recipient);
    let ephemeral = X25519Pub::from_bytes(ephemeral);
    let nonce = seal_nonce(&ephemeral, ours.public());
    let inner = Zeroizing::new(
        box_cipher(&ours, &ephemeral)
            .ok_or(DecryptError::Decryption)?
            .decrypt(&nonce.into(), &ciphertext[32..])
            .map_err(|_| DecryptError::Decryption)?,
    );

    // The length check above guarantees at least SIGNED_SUFFIX bytes of plaintext.
    let (signed, signature) = inner.split_at(inner.len() - 64);
    let (message, sender_bytes) = signed.split_at(signed.len() - 32);
    let sender_ed25519 =
        Ed25519Pub::from_slice(sender_bytes).map_err(|_| DecryptError::InvalidSenderKey)?;
    let sender_x25519 = sender_ed25519
        .to_x25519()
        .map_err(|_| DecryptError::InvalidSenderKey)?;
    let signature = Signature::from_slice(signature).map_err(|_| DecryptError::BadSignature)?;

    let mut to_verify = Vec::with_capacity(signed.len() + 32);
    to_verify.extend_from_slice(signed);
    to_verify.extend_from_slice(recipient.x25519_public().as_bytes());
    if !sender_ed25519.verify(&to_verify, &signature) {
        return Err(DecryptError::BadSignature);
    }

    Ok(Decrypted {
        plaintext: message.to_vec(),
        sender_ed25519,
        sender: SessionId::from_x25519(sender_x25519),
    })
}

/// `M || sender_Ed25519 || Ed25519-sign(M || sender_Ed25519 || recipient_X25519)`.
fn signed_inner(sender: &Identity, recipient: &X25519Pub, message: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(message.len() + SIGNED_SUFFIX));
    buf.extend_from_slice(message);
    buf.extend_from_slice(sender.ed25519_public().as_bytes());
    buf.extend_from_slice(recipient.as_bytes());
    let signature = sender.sign(&buf);
    // Replace the recipient key (signed, not sent) with the signature.
    buf.truncate(message.len() + 32);
    buf.extend_from_slice(&signature.to_bytes());
    buf
}

/// The sealed-box nonce: unkeyed BLAKE2b-24 of the ephemeral then the recipient public key.
fn seal_nonce(ephemeral: &X25519Pub, recipient: &X25519Pub) -> [u8; 24] {
    Blake2b::<U24>::new()
        .chain_update(ephemeral.as_bytes())
        .chain_update(recipient.as_bytes())
        .finalize()
        .into()
}

fn reject_low_order(key: &X25519Pub) -> Result<(), EncryptError> {
    if is_low_order(key.as_bytes()) {
        Err(EncryptError::WeakRecipientKey)
    } else {
        Ok(())
    }
}

/// Whether an X25519 u-coordinate is a point of order dividing 8 (on the curve or its twist),
/// which would make any Diffie-Hellman result with it all zeros.
fn is_low_order(u: &[u8; 32]) -> bool {
    // [8]P by a 4-step ladder over the bits of 8 (0b1000): the key is public, so this need not
    // be constant time, and it costs a few µs instead of a full 255-step ladder.
    MontgomeryPoint(*u)
        .mul_bits_be([true, false, false, false].into_iter())
        .0
        == [0u8; 32]
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::Scalar;
    use rand::RngCore;

    /// The definition the fast check must agree with: [8]P by a full ladder.
    fn low_order_by_full_ladder(u: &[u8; 32]) -> bool {
        (MontgomeryPoint(*u) * Scalar::from(8u8)).0 == [0u8; 32]
    }

    #[test]
    fn every_eight_torsion_point_is_low_order_in_either_encoding() {
        for point in EIGHT_TORSION {
            let mut u = point.to_montgomery().0;
            assert!(is_low_order(&u), "{u:?}");
            // X25519 ignores the top bit.
            u[31] |= 0x80;
            assert!(is_low_order(&u), "{u:?}");
        }
    }

    #[test]
    fn agrees_with_the_full_ladder_on_random_and_edge_keys() {
        let mut rng = rand::thread_rng();
        let mut keys: Vec<[u8; 32]> = (0..2000)
            .map(|_| {
                let mut k = [0u8; 32];
                rng.fill_bytes(&mut k);
                k
            })
            .collect();
        // Non-canonical encodings of 0 and 1 (p and p + 1), and p − 1.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut p1 = p;
        p1[0] = 0xee;
        let mut pm1 = p;
        pm1[0] = 0xec;
        keys.extend([p, p1, pm1, [0; 32]]);
        for k in keys {
            assert_eq!(is_low_order(&k), low_order_by_full_ladder(&k), "{k:?}");
        }
    }
}
