//! Hop encryption (onion-client spec §2): the per-layer symmetric key derived from an X25519
//! exchange and the three ciphertext layouts that use it.
//!
//! | `enc_type`  | key                                              | layout                      |
//! |-------------|--------------------------------------------------|-----------------------------|
//! | `aes-gcm`   | HMAC-SHA256(key = "LOKI", msg = S)               | IV(12) ‖ ct ‖ tag(16)       |
//! | `xchacha20` | BLAKE2b-32(S ‖ requester pub ‖ responder pub)    | nonce(24) ‖ ct ‖ tag(16)    |
//! | `aes-cbc`   | S                                                | IV(16) ‖ CBC-PKCS7 ct       |
//!
//! `S` is the X25519 shared secret. The same key encrypts a layer and its reply.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use chacha20poly1305::XChaCha20Poly1305;
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::identity::{Identity, X25519Pub};

/// HMAC key of the AES-GCM key derivation.
const AES_GCM_KDF_KEY: &[u8] = b"LOKI";
/// AES-GCM IV length.
const GCM_IV_LEN: usize = 12;
/// XChaCha20-Poly1305 nonce length.
const XCHACHA_NONCE_LEN: usize = 24;
/// AEAD tag length (both AEADs).
const TAG_LEN: usize = 16;
/// AES-CBC IV length (one block).
const CBC_IV_LEN: usize = 16;

/// Why a hop key could not be derived or a layer could not be encrypted or decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The `enc_type` string names no supported cipher.
    #[error("Invalid encryption type")]
    UnknownEncType,
    /// The X25519 exchange produced the all-zero secret (the peer sent a small-order key).
    #[error("X25519 key exchange produced an all-zero shared secret")]
    WeakSharedSecret,
    /// The ciphertext is too short, fails authentication or has bad padding.
    #[error("decryption failed")]
    Decrypt,
    /// The cipher refused to encrypt (plaintext beyond the cipher's limit).
    #[error("encryption failed")]
    Encrypt,
}

/// The symmetric cipher of one onion layer, named by the JSON `enc_type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncType {
    /// AES-256-GCM, the default when `enc_type` is absent.
    #[default]
    AesGcm,
    /// XChaCha20-Poly1305 (IETF), used by libsession.
    XChaCha20,
    /// Legacy AES-256-CBC, accepted by the storage server only.
    AesCbc,
}

impl EncType {
    /// The canonical `enc_type` string sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AesGcm => "aes-gcm",
            Self::XChaCha20 => "xchacha20",
            Self::AesCbc => "aes-cbc",
        }
    }

    /// Length of the IV or nonce that starts a ciphertext of this type.
    pub const fn nonce_len(self) -> usize {
        match self {
            Self::AesGcm => GCM_IV_LEN,
            Self::XChaCha20 => XCHACHA_NONCE_LEN,
            Self::AesCbc => CBC_IV_LEN,
        }
    }

    /// Bytes a ciphertext of this type adds to `plaintext_len` bytes of plaintext.
    pub const fn ciphertext_len(self, plaintext_len: usize) -> usize {
        match self {
            Self::AesGcm => GCM_IV_LEN + plaintext_len + TAG_LEN,
            Self::XChaCha20 => XCHACHA_NONCE_LEN + plaintext_len + TAG_LEN,
            Self::AesCbc => CBC_IV_LEN + (plaintext_len / CBC_IV_LEN + 1) * CBC_IV_LEN,
        }
    }
}

impl FromStr for EncType {
    type Err = CipherError;
    /// Accepts the names and aliases the storage server accepts.
    fn from_str(s: &str) -> Result<Self, CipherError> {
        match s {
            "aes-gcm" | "gcm" => Ok(Self::AesGcm),
            "xchacha20" | "xchacha20-poly1305" => Ok(Self::XChaCha20),
            "aes-cbc" | "cbc" => Ok(Self::AesCbc),
            _ => Err(CipherError::UnknownEncType),
        }
    }
}

impl fmt::Display for EncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for EncType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EncType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which side of an exchange we are; fixes the key order of the XChaCha20 derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The party that chose the ephemeral key (the client building the onion).
    Requester,
    /// The party that owns the long-term key (a hop, the destination node or server).
    Responder,
}

/// An X25519 secret with its public key: a node's long-term key or a client's ephemeral key.
///
/// The secret is zeroed on drop; `Debug` shows only the public key.
#[derive(Clone)]
pub struct X25519Keypair {
    secret: StaticSecret,
    public: X25519Pub,
    /// The same secret as aws-lc holds it: its assembly X25519 is about 3× faster than the
    /// portable ladder, and every onion layer costs one exchange. `None` only if aws-lc
    /// refused the key, in which case the portable code is used.
    fast: Option<Arc<aws_lc_rs::agreement::PrivateKey>>,
}

impl X25519Keypair {
    /// Wraps a secret, computing its public key.
    pub fn from_secret(secret: StaticSecret) -> Self {
        let fast = aws_lc_rs::agreement::PrivateKey::from_private_key(
            &aws_lc_rs::agreement::X25519,
            secret.as_bytes(),
        )
        .ok();
        let public = fast
            .as_ref()
            .and_then(|key| key.compute_public_key().ok())
            .and_then(|public| <[u8; 32]>::try_from(public.as_ref()).ok())
            .unwrap_or_else(|| PublicKey::from(&secret).to_bytes());
        Self {
            secret,
            public: X25519Pub::from_bytes(public),
            fast: fast.map(Arc::new),
        }
    }

    /// The shared secret with `theirs` (as [`shared_secret`], which it equals), rejecting the
    /// all-zero result of a small-order key.
    pub fn exchange(&self, theirs: &X25519Pub) -> Result<Zeroizing<[u8; 32]>, CipherError> {
        let Some(fast) = &self.fast else {
            return shared_secret(&self.secret, theirs);
        };
        let peer = aws_lc_rs::agreement::UnparsedPublicKey::new(
            &aws_lc_rs::agreement::X25519,
            theirs.as_bytes(),
        );
        // aws-lc refuses an all-zero result (a small-order key), as `was_contributory` does.
        aws_lc_rs::agreement::agree(fast, peer, CipherError::WeakSharedSecret, |bytes| {
            <[u8; 32]>::try_from(bytes)
                .map(Zeroizing::new)
                .map_err(|_| CipherError::WeakSharedSecret)
        })
    }

    /// A fresh random keypair (one per onion layer).
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_secret(StaticSecret::from(*bytes))
    }

    /// The public key.
    pub const fn public(&self) -> &X25519Pub {
        &self.public
    }

    /// The secret key. Secret.
    pub const fn secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl From<&Identity> for X25519Keypair {
    fn from(identity: &Identity) -> Self {
        Self::from_secret(identity.x25519_secret().clone())
    }
}

impl fmt::Debug for X25519Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519Keypair({})", self.public)
    }
}

/// The raw X25519 shared secret `S = X25519(ours, theirs)`, rejecting the all-zero result.
pub fn shared_secret(
    ours: &StaticSecret,
    theirs: &X25519Pub,
) -> Result<Zeroizing<[u8; 32]>, CipherError> {
    let shared = ours.diffie_hellman(&PublicKey::from(*theirs.as_bytes()));
    if !shared.was_contributory() {
        return Err(CipherError::WeakSharedSecret);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// The symmetric key of one onion layer and its cipher; encrypts the layer and its reply.
///
/// The key is zeroed on drop and never printed.
pub struct HopKey {
    enc_type: EncType,
    key: Zeroizing<[u8; 32]>,
}

impl HopKey {
    /// Derives the layer key from our keypair and the peer's public key (spec §2.1–§2.3).
    pub fn derive(
        enc_type: EncType,
        ours: &X25519Keypair,
        theirs: &X25519Pub,
        role: Role,
    ) -> Result<Self, CipherError> {
        let shared = ours.exchange(theirs)?;
        let (requester, responder) = match role {
            Role::Requester => (&ours.public, theirs),
            Role::Responder => (theirs, &ours.public),
        };
        Ok(Self::from_shared_secret(
            enc_type, &shared, requester, responder,
        ))
    }

    /// Derives the layer key from an already computed shared secret and both public keys.
    pub fn from_shared_secret(
        enc_type: EncType,
        shared: &[u8; 32],
        requester: &X25519Pub,
        responder: &X25519Pub,
    ) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        match enc_type {
            EncType::AesGcm => {
                // HMAC accepts keys of any length, so this cannot fail.
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(AES_GCM_KDF_KEY)
                    .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
                mac.update(shared);
                key.copy_from_slice(&mac.finalize().into_bytes());
            }
            EncType::XChaCha20 => {
                let mut hash = Blake2b::<U32>::new();
                hash.update(shared);
                hash.update(requester.as_bytes());
                hash.update(responder.as_bytes());
                key.copy_from_slice(&hash.finalize());
            }
            EncType::AesCbc => key.copy_from_slice(shared),
        }
        Self { enc_type, key }
    }

    /// The cipher this key is used with.
    pub const fn enc_type(&self) -> EncType {
        self.enc_type
    }

    /// The raw 32 key bytes. Secret: for test vectors and interop debugging only.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.key
    }

    /// Encrypts with a fresh random IV/nonce, producing the layout of [`Self::enc_type`].
    pub fn encrypt<R: CryptoRngCore + ?Sized>(
        &self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, CipherError> {
        let nonce_len = self.enc_type.nonce_len();
        let mut out = vec![0u8; self.enc_type.ciphertext_len(plaintext.len())];
        out[nonce_len..nonce_len + plaintext.len()].copy_from_slice(plaintext);
        let mut nonce = [0u8; XCHACHA_NONCE_LEN];
        rng.fill_bytes(&mut nonce[..nonce_len]);
        self.seal_in_place(&nonce[..nonce_len], &mut out, plaintext.len())?;
        Ok(out)
    }

    /// Encrypts in place: `region` is exactly [`EncType::ciphertext_len`]`(plaintext_len)`
    /// bytes with the plaintext at [`EncType::nonce_len`]; the nonce is written in front of it
    /// and the tag or padding after, so `region` ends up holding the layout of
    /// [`Self::enc_type`]. A large onion layer is encrypted where it lies instead of copied.
    /// Not generic, so the cipher code is compiled (and optimized) with this crate rather than
    /// in every caller: a 10 MB attachment layer took seconds in a debug build otherwise.
    pub fn seal_in_place(
        &self,
        nonce: &[u8],
        region: &mut [u8],
        plaintext_len: usize,
    ) -> Result<(), CipherError> {
        let nonce_len = self.enc_type.nonce_len();
        if nonce.len() != nonce_len || region.len() != self.enc_type.ciphertext_len(plaintext_len) {
            return Err(CipherError::Encrypt);
        }
        let (head, body) = region.split_at_mut(nonce_len);
        head.copy_from_slice(nonce);
        match self.enc_type {
            EncType::AesGcm => {
                let (text, tag_out) = body.split_at_mut(plaintext_len);
                let tag = Aes256Gcm::new(self.key.as_ref().into())
                    .encrypt_in_place_detached(nonce.into(), b"", text)
                    .map_err(|_| CipherError::Encrypt)?;
                tag_out.copy_from_slice(&tag);
            }
            EncType::XChaCha20 => {
                let (text, tag_out) = body.split_at_mut(plaintext_len);
                let tag = XChaCha20Poly1305::new(self.key.as_ref().into())
                    .encrypt_in_place_detached(nonce.into(), b"", text)
                    .map_err(|_| CipherError::Encrypt)?;
                tag_out.copy_from_slice(&tag);
            }
            EncType::AesCbc => {
                cbc::Encryptor::<aes::Aes256>::new(self.key.as_ref().into(), nonce.into())
                    .encrypt_padded_mut::<Pkcs7>(body, plaintext_len)
                    .map_err(|_| CipherError::Encrypt)?;
            }
        }
        Ok(())
    }

    /// Decrypts a ciphertext in the layout of [`Self::enc_type`]; fails on any tampering.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, CipherError> {
        let mut buffer = ciphertext.to_vec();
        let plaintext = self.open_in_place(&mut buffer)?;
        buffer.truncate(plaintext.end);
        buffer.drain(..plaintext.start);
        Ok(buffer)
    }

    /// Decrypts `ciphertext` where it lies; returns where the plaintext is in it. Fails on any
    /// tampering; an AEAD checks the tag before it decrypts, so a failed AEAD attempt leaves
    /// the bytes as they were (AES-CBC does not).
    pub fn open_in_place(&self, ciphertext: &mut [u8]) -> Result<Range<usize>, CipherError> {
        let nonce_len = self.enc_type.nonce_len();
        if ciphertext.len() < nonce_len {
            return Err(CipherError::Decrypt);
        }
        let (nonce, body) = ciphertext.split_at_mut(nonce_len);
        let len =
            match self.enc_type {
                EncType::AesGcm | EncType::XChaCha20 => {
                    let text_len = body
                        .len()
                        .checked_sub(TAG_LEN)
                        .ok_or(CipherError::Decrypt)?;
                    let (text, tag) = body.split_at_mut(text_len);
                    let tag: &[u8] = tag;
                    let opened =
                        if self.enc_type == EncType::AesGcm {
                            Aes256Gcm::new(self.key.as_ref().into()).decrypt_in_place_detached(
                                (&*nonce).into(),
                                b"",
                                text,
                                tag.into(),
                            )
                        } else {
                            XChaCha20Poly1305::new(self.key.as_ref().into())
                                .decrypt_in_place_detached((&*nonce).into(), b"", text, tag.into())
                        };
                    opened.map_err(|_| CipherError::Decrypt)?;
                    text_len
                }
                EncType::AesCbc => {
                    cbc::Decryptor::<aes::Aes256>::new(self.key.as_ref().into(), (&*nonce).into())
                        .decrypt_padded_mut::<Pkcs7>(body)
                        .map_err(|_| CipherError::Decrypt)?
                        .len()
                }
            };
        Ok(nonce_len..nonce_len + len)
    }
}

impl fmt::Debug for HopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HopKey")
            .field("enc_type", &self.enc_type)
            .finish_non_exhaustive()
    }
}

/// What a client keeps to read the reply to an onion it built: the destination layer's key.
///
/// For XChaCha20 it also holds the AES-GCM key of the same exchange, because the legacy push
/// server answers xchacha20 requests with AES-GCM errors (spec §2.4; libsession does the same).
#[derive(Debug)]
pub struct ResponseKey {
    key: HopKey,
    aes_gcm_fallback: Option<HopKey>,
}

impl ResponseKey {
    /// Derives the reply key(s) from the destination-layer ephemeral keypair and the destination key.
    pub fn derive(
        enc_type: EncType,
        ephemeral: &X25519Keypair,
        destination: &X25519Pub,
    ) -> Result<Self, CipherError> {
        // aws-lc's exchange: the portable ladder cost a client 3× more per layer.
        let shared = ephemeral.exchange(destination)?;
        let key = HopKey::from_shared_secret(enc_type, &shared, &ephemeral.public, destination);
        let aes_gcm_fallback = (enc_type == EncType::XChaCha20).then(|| {
            HopKey::from_shared_secret(EncType::AesGcm, &shared, &ephemeral.public, destination)
        });
        Ok(Self {
            key,
            aes_gcm_fallback,
        })
    }

    /// The destination-layer key (what the destination encrypts its reply with).
    pub const fn key(&self) -> &HopKey {
        &self.key
    }

    /// Decrypts a reply, falling back to AES-GCM for an xchacha20 request.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, CipherError> {
        self.key
            .decrypt(ciphertext)
            .or_else(|e| match &self.aes_gcm_fallback {
                Some(fallback) => fallback.decrypt(ciphertext),
                None => Err(e),
            })
    }

    /// [`Self::decrypt`] where the reply lies (a 10 MB download is not copied); where the
    /// plaintext is in it. The fallback is only tried after XChaCha20, an AEAD, whose failure
    /// leaves the bytes untouched.
    pub fn open_in_place(&self, ciphertext: &mut [u8]) -> Result<Range<usize>, CipherError> {
        self.key
            .open_in_place(ciphertext)
            .or_else(|e| match &self.aes_gcm_fallback {
                Some(fallback) => fallback.open_in_place(ciphertext),
                None => Err(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enc_type_names() {
        for (text, ty) in [
            ("aes-gcm", EncType::AesGcm),
            ("gcm", EncType::AesGcm),
            ("xchacha20", EncType::XChaCha20),
            ("xchacha20-poly1305", EncType::XChaCha20),
            ("aes-cbc", EncType::AesCbc),
            ("cbc", EncType::AesCbc),
        ] {
            assert_eq!(text.parse::<EncType>(), Ok(ty));
        }
        assert_eq!(
            "AES-GCM".parse::<EncType>(),
            Err(CipherError::UnknownEncType)
        );
        assert_eq!(EncType::default(), EncType::AesGcm);
        assert_eq!(EncType::XChaCha20.as_str(), "xchacha20");
        assert_eq!(
            serde_json::to_string(&EncType::AesCbc).unwrap(),
            "\"aes-cbc\""
        );
    }

    #[test]
    fn rejects_small_order_key() {
        let ours = X25519Keypair::from_secret(StaticSecret::from([7u8; 32]));
        let zero = X25519Pub::from_bytes([0u8; 32]);
        assert_eq!(
            HopKey::derive(EncType::AesGcm, &ours, &zero, Role::Requester).unwrap_err(),
            CipherError::WeakSharedSecret
        );
        // Every small-order point, in both encodings, by both implementations.
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let mut u = point.to_montgomery().0;
            for _ in 0..2 {
                let key = X25519Pub::from_bytes(u);
                assert_eq!(ours.exchange(&key), Err(CipherError::WeakSharedSecret));
                assert_eq!(
                    shared_secret(ours.secret(), &key),
                    Err(CipherError::WeakSharedSecret)
                );
                u[31] |= 0x80;
            }
        }
    }

    #[test]
    fn the_fast_exchange_equals_the_portable_one() {
        use rand_core::RngCore;
        let mut rng = rand_core::OsRng;
        for _ in 0..200 {
            let ours = X25519Keypair::generate(&mut rng);
            assert!(ours.fast.is_some());
            // The public key matches the portable derivation.
            assert_eq!(
                ours.public().as_bytes(),
                PublicKey::from(ours.secret()).as_bytes()
            );
            let mut theirs = [0u8; 32];
            rng.fill_bytes(&mut theirs);
            let theirs = X25519Pub::from_bytes(theirs);
            assert_eq!(
                ours.exchange(&theirs).map(|s| *s),
                shared_secret(ours.secret(), &theirs).map(|s| *s)
            );
        }
        let identity = Identity::from_seed([3; 32]);
        assert_eq!(
            *X25519Keypair::from(&identity).public(),
            identity.x25519_public()
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let pair = X25519Keypair::from_secret(StaticSecret::from([9u8; 32]));
        let key =
            HopKey::from_shared_secret(EncType::AesCbc, &[0xab; 32], pair.public(), pair.public());
        let text = format!("{key:?} {pair:?}");
        assert!(!text.contains("abab"), "{text}");
        assert!(!text.contains("0909"), "{text}");
    }

    /// The in-place layouts equal the cipher crates' own one-shot encryptions.
    #[test]
    fn in_place_equals_one_shot() {
        use aes_gcm::aead::Aead;
        let pair = X25519Keypair::from_secret(StaticSecret::from([9u8; 32]));
        let plaintext: Vec<u8> = (0..=255u8).cycle().step_by(7).take(1000).collect();
        for ty in [EncType::AesGcm, EncType::XChaCha20, EncType::AesCbc] {
            let key = HopKey::from_shared_secret(ty, &[1; 32], pair.public(), pair.public());
            let nonce = [5u8; 24];
            let nonce = &nonce[..ty.nonce_len()];
            let k = key.expose_secret().as_slice();
            let mut expected = nonce.to_vec();
            expected.extend(match ty {
                EncType::AesGcm => Aes256Gcm::new(k.into())
                    .encrypt(nonce.into(), plaintext.as_slice())
                    .unwrap(),
                EncType::XChaCha20 => XChaCha20Poly1305::new(k.into())
                    .encrypt(nonce.into(), plaintext.as_slice())
                    .unwrap(),
                EncType::AesCbc => cbc::Encryptor::<aes::Aes256>::new(k.into(), nonce.into())
                    .encrypt_padded_vec_mut::<Pkcs7>(&plaintext),
            });
            let mut sealed = vec![0u8; ty.ciphertext_len(plaintext.len())];
            sealed[nonce.len()..nonce.len() + plaintext.len()].copy_from_slice(&plaintext);
            key.seal_in_place(nonce, &mut sealed, plaintext.len())
                .unwrap();
            assert_eq!(sealed, expected, "{ty}");
            let opened = key.open_in_place(&mut sealed).unwrap();
            assert_eq!(sealed[opened], plaintext[..], "{ty}");
        }
    }

    #[test]
    fn ciphertext_len_matches() {
        let pair = X25519Keypair::from_secret(StaticSecret::from([9u8; 32]));
        let mut rng = rand_core::OsRng;
        for ty in [EncType::AesGcm, EncType::XChaCha20, EncType::AesCbc] {
            let key = HopKey::from_shared_secret(ty, &[1; 32], pair.public(), pair.public());
            for len in [0, 1, 15, 16, 17, 100] {
                let ct = key.encrypt(&vec![5u8; len], &mut rng).unwrap();
                assert_eq!(ct.len(), ty.ciphertext_len(len));
                assert_eq!(key.decrypt(&ct).unwrap(), vec![5u8; len]);
            }
            assert_eq!(key.decrypt(&[]), Err(CipherError::Decrypt));
        }
    }
}
