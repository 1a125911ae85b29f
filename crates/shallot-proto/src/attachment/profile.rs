//! "L-P", the legacy profile-picture scheme current clients write (attachments spec §1.3):
//! blob = `iv(12) ‖ AES-256-GCM(profile_key, iv, image)` (ciphertext ‖ 16-byte tag), no AAD, no
//! padding, no digest. Group avatars use the same cipher with the group's key.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand_core::CryptoRngCore;

use super::error::DecryptError;

/// Length of a profile key.
pub const PROFILE_KEY_LEN: usize = 32;
/// Length of the GCM nonce at the start of the blob.
pub const PROFILE_IV_LEN: usize = 12;
/// Length of the GCM tag at the end.
pub const PROFILE_TAG_LEN: usize = 16;
/// Smallest blob: nonce, one byte, tag (as clients check).
pub const PROFILE_MIN_BLOB: usize = PROFILE_IV_LEN + 1 + PROFILE_TAG_LEN;

secret_key!(
    /// The 32-byte profile key (`DataMessage.profileKey`, UserProfile config `q`).
    ProfileKey,
    PROFILE_KEY_LEN
);

impl ProfileKey {
    /// Encrypts an image with a fresh random nonce.
    pub fn encrypt<R: CryptoRngCore + ?Sized>(&self, image: &[u8], rng: &mut R) -> Vec<u8> {
        let mut iv = [0; PROFILE_IV_LEN];
        rng.fill_bytes(&mut iv);
        self.encrypt_with_iv(image, iv)
    }

    /// Encrypts an image with the given nonce (test vectors; real use needs a random one).
    pub fn encrypt_with_iv(&self, image: &[u8], iv: [u8; PROFILE_IV_LEN]) -> Vec<u8> {
        let mut blob = Vec::with_capacity(PROFILE_IV_LEN + image.len() + PROFILE_TAG_LEN);
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(image);
        let tag = Aes256Gcm::new(self.0.as_ref().into())
            .encrypt_in_place_detached(Nonce::from_slice(&iv), &[], &mut blob[PROFILE_IV_LEN..])
            // Only inputs beyond 64 GiB are refused.
            .expect("AES-GCM encrypts any image that fits in memory");
        blob.extend_from_slice(&tag);
        blob
    }

    /// Decrypts a blob; a tag failure means the key changed since this URL was published.
    pub fn decrypt(&self, blob: &[u8]) -> Result<Vec<u8>, DecryptError> {
        self.decrypt_owned(blob.to_vec())
    }

    /// [`Self::decrypt`] in place: the image is the blob's own buffer, without its framing.
    pub fn decrypt_owned(&self, mut blob: Vec<u8>) -> Result<Vec<u8>, DecryptError> {
        if blob.len() < PROFILE_MIN_BLOB {
            return Err(DecryptError::TooShort(blob.len()));
        }
        let tag_at = blob.len() - PROFILE_TAG_LEN;
        let tag = *Tag::from_slice(&blob[tag_at..]);
        let iv = *Nonce::from_slice(&blob[..PROFILE_IV_LEN]);
        Aes256Gcm::new(self.0.as_ref().into())
            .decrypt_in_place_detached(&iv, &[], &mut blob[PROFILE_IV_LEN..tag_at], &tag)
            .map_err(|_| DecryptError::BadTag)?;
        blob.truncate(tag_at);
        blob.drain(..PROFILE_IV_LEN);
        Ok(blob)
    }
}
