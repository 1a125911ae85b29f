//! "L-A", the legacy attachment scheme current clients write (attachments spec §1.2):
//! blob = `iv(16) ‖ AES-256-CBC(aes_key, iv, PKCS#7(plain ‖ zero padding)) ‖ HMAC-SHA256(mac_key,
//! iv ‖ ct)`, and the pointer carries the 64-byte key, SHA-256 of the blob and the plaintext size.

use aes::Aes256;
use cbc::cipher::generic_array::GenericArray;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::DecryptError;
use super::padding::legacy_padded_len;

/// Length of the L-A key: AES key ‖ HMAC key.
pub const LEGACY_KEY_LEN: usize = 64;
/// Length of the CBC IV at the start of the blob.
pub const LEGACY_IV_LEN: usize = 16;
/// Length of the HMAC at the end of the blob.
pub const LEGACY_MAC_LEN: usize = 32;
/// Shortest blob checked at all (IV and MAC); a valid one also has at least one cipher block.
pub const LEGACY_MIN_BLOB: usize = LEGACY_IV_LEN + LEGACY_MAC_LEN;
const BLOCK: usize = 16;
/// The decryptor keeps this many trailing bytes back: they may be the last block and the MAC.
const HOLD_BACK: usize = BLOCK + LEGACY_MAC_LEN;

type HmacSha256 = Hmac<Sha256>;

secret_key!(
    /// The 64-byte L-A key (`aes_key ‖ mac_key`) as it travels in the pointer.
    LegacyKey,
    LEGACY_KEY_LEN
);

impl LegacyKey {
    fn cipher_key(&self) -> &[u8] {
        &self.0[..32]
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(&self.0[32..]).expect("HMAC takes keys of any length")
    }
}

/// Whether the plaintext is padded to its size class before encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyPadding {
    /// Message attachments: padded (see [`legacy_padded_len`]).
    Padded,
    /// Link-preview images: desktop uploads them unpadded.
    Unpadded,
}

/// Length of the blob a [`LegacyEncryptor`] makes of `n` plaintext bytes: IV, the padded
/// plaintext with PKCS#7 (1 to 16 bytes more, to whole blocks), MAC. Known before encrypting,
/// so the blob can be written straight into its place in an upload.
pub fn legacy_blob_len(n: usize, padding: LegacyPadding) -> usize {
    let padded = match padding {
        LegacyPadding::Padded => legacy_padded_len(n),
        LegacyPadding::Unpadded => n,
    };
    LEGACY_IV_LEN + (padded / BLOCK + 1) * BLOCK + LEGACY_MAC_LEN
}

/// What the sender puts in the pointer besides the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacySealed {
    /// SHA-256 of the whole blob (`digest`).
    pub digest: [u8; 32],
    /// Plaintext length before padding (`size`).
    pub size: u64,
}

/// Encrypts a plaintext given in pieces; the blob comes out in pieces too.
pub struct LegacyEncryptor {
    cipher: cbc::Encryptor<Aes256>,
    mac: HmacSha256,
    digest: Sha256,
    iv: Option<[u8; LEGACY_IV_LEN]>,
    partial: [u8; BLOCK],
    partial_len: usize,
    consumed: u64,
    padding: LegacyPadding,
}

impl LegacyEncryptor {
    /// Starts a blob with a fresh random IV.
    pub fn new<R: CryptoRngCore + ?Sized>(
        key: &LegacyKey,
        padding: LegacyPadding,
        rng: &mut R,
    ) -> Self {
        let mut iv = [0; LEGACY_IV_LEN];
        rng.fill_bytes(&mut iv);
        Self::with_iv(key, iv, padding)
    }

    /// Starts a blob with the given IV (test vectors; real use needs a fresh random IV).
    pub fn with_iv(key: &LegacyKey, iv: [u8; LEGACY_IV_LEN], padding: LegacyPadding) -> Self {
        Self {
            cipher: cbc::Encryptor::<Aes256>::new(key.cipher_key().into(), &iv.into()),
            mac: key.mac(),
            digest: Sha256::new(),
            iv: Some(iv),
            partial: [0; BLOCK],
            partial_len: 0,
            consumed: 0,
            padding,
        }
    }

    /// Encrypts the next piece of plaintext, appending whatever blob bytes are ready to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.consumed += input.len() as u64;
        self.feed(input, out);
    }

    /// Pads, encrypts the last block and appends the MAC; returns the pointer's digest and size.
    pub fn finish(mut self, out: &mut Vec<u8>) -> LegacySealed {
        self.start(out);
        if self.padding == LegacyPadding::Padded {
            // `usize` holds any length this process could have been given.
            let n = usize::try_from(self.consumed).unwrap_or(usize::MAX);
            let mut zeros = legacy_padded_len(n) - n;
            let block = [0u8; 4096];
            while zeros > 0 {
                let take = zeros.min(block.len());
                self.feed(&block[..take], out);
                zeros -= take;
            }
        }
        // PKCS#7 always adds 1..=16 bytes.
        #[allow(clippy::cast_possible_truncation)] // At most 16.
        let pad = (BLOCK - self.partial_len) as u8;
        self.partial[self.partial_len..].fill(pad);
        let last = self.partial;
        self.encrypt_append(&last, out);
        let mac = self.mac.finalize().into_bytes();
        out.extend_from_slice(&mac);
        self.digest.update(mac);
        LegacySealed {
            digest: self.digest.finalize().into(),
            size: self.consumed,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if let Some(iv) = self.iv.take() {
            out.extend_from_slice(&iv);
            self.mac.update(&iv);
            self.digest.update(iv);
        }
    }

    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.start(out);
        if self.partial_len > 0 {
            let take = (BLOCK - self.partial_len).min(input.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&input[..take]);
            self.partial_len += take;
            input = &input[take..];
            if self.partial_len < BLOCK {
                return;
            }
            let block = self.partial;
            self.partial_len = 0;
            self.encrypt_append(&block, out);
        }
        let full = input.len() / BLOCK * BLOCK;
        self.encrypt_append(&input[..full], out);
        let rest = &input[full..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// Appends whole blocks of plaintext to `out` and encrypts them there.
    fn encrypt_append(&mut self, blocks: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(blocks);
        for block in out[start..].chunks_exact_mut(BLOCK) {
            self.cipher
                .encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        self.mac.update(&out[start..]);
        self.digest.update(&out[start..]);
    }
}

/// Encrypts a whole plaintext: returns the blob, its key and what goes in the pointer.
pub fn encrypt_legacy<R: CryptoRngCore + ?Sized>(
    plaintext: &[u8],
    padding: LegacyPadding,
    rng: &mut R,
) -> (Vec<u8>, LegacyKey, LegacySealed) {
    let key = LegacyKey::generate(rng);
    let mut encryptor = LegacyEncryptor::new(&key, padding, rng);
    let mut blob = Vec::with_capacity(plaintext.len() + LEGACY_MIN_BLOB + BLOCK);
    encryptor.update(plaintext, &mut blob);
    let sealed = encryptor.finish(&mut blob);
    (blob, key, sealed)
}

/// Decrypts a blob given in pieces. Checks, in the order clients do: MAC, digest, block padding,
/// size. The plaintext it appends is unverified until [`Self::finish`] returns `Ok`: a caller
/// writes it somewhere private and discards it on error.
pub struct LegacyDecryptor {
    key: LegacyKey,
    mac: HmacSha256,
    digest: Sha256,
    expected_digest: [u8; 32],
    size: u64,
    cipher: Option<cbc::Decryptor<Aes256>>,
    iv: [u8; LEGACY_IV_LEN],
    iv_len: usize,
    /// Bytes after the IV not yet decrypted: fewer than `HOLD_BACK + BLOCK`.
    held: Vec<u8>,
    total: u64,
    produced: u64,
}

impl LegacyDecryptor {
    /// Prepares to decrypt with a pointer's `key`, `digest` and `size`.
    pub fn new(key: &[u8], digest: Option<&[u8]>, size: u64) -> Result<Self, DecryptError> {
        let key = LegacyKey::from_slice(key)?;
        let expected_digest = digest
            .ok_or(DecryptError::MissingDigest)?
            .try_into()
            .map_err(|_| DecryptError::BadDigest)?;
        Ok(Self {
            mac: key.mac(),
            key,
            digest: Sha256::new(),
            expected_digest,
            size,
            cipher: None,
            iv: [0; LEGACY_IV_LEN],
            iv_len: 0,
            held: Vec::with_capacity(HOLD_BACK + BLOCK),
            total: 0,
            produced: 0,
        })
    }

    /// Takes the next piece of the blob, appending decrypted (unverified) plaintext to `out`,
    /// never more than `size` bytes in all.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.total += input.len() as u64;
        self.digest.update(input);
        if self.iv_len < LEGACY_IV_LEN {
            let take = (LEGACY_IV_LEN - self.iv_len).min(input.len());
            self.iv[self.iv_len..self.iv_len + take].copy_from_slice(&input[..take]);
            self.iv_len += take;
            input = &input[take..];
            if self.iv_len < LEGACY_IV_LEN {
                return;
            }
            self.mac.update(&self.iv);
            self.cipher = Some(cbc::Decryptor::<Aes256>::new(
                self.key.cipher_key().into(),
                &self.iv.into(),
            ));
        }
        let available = self.held.len() + input.len();
        if available < HOLD_BACK + BLOCK {
            self.held.extend_from_slice(input);
            return;
        }
        let release = (available - HOLD_BACK) / BLOCK * BLOCK;
        let from_held = release.min(self.held.len());
        let from_input = release - from_held;
        let start = out.len();
        out.extend_from_slice(&self.held[..from_held]);
        out.extend_from_slice(&input[..from_input]);
        self.held.drain(..from_held);
        self.held.extend_from_slice(&input[from_input..]);
        self.decrypt_in_place(out, start);
    }

    /// Checks the MAC and digest, strips the padding and checks the size; on success, the
    /// plaintext appended to `out` over all calls is exactly the sender's file.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if self.total < LEGACY_MIN_BLOB as u64 {
            return Err(DecryptError::TooShort(
                usize::try_from(self.total).unwrap_or(usize::MAX),
            ));
        }
        let held = std::mem::take(&mut self.held);
        let (body, their_mac) = held.split_at(held.len() - LEGACY_MAC_LEN);
        self.mac.update(body);
        let our_mac = self.mac.clone().finalize().into_bytes();
        if !bool::from(our_mac.as_slice().ct_eq(their_mac)) {
            return Err(DecryptError::BadMac);
        }
        let digest: [u8; 32] = self.digest.clone().finalize().into();
        if !bool::from(digest.ct_eq(&self.expected_digest)) {
            return Err(DecryptError::BadDigest);
        }
        // The update loop leaves between HOLD_BACK and HOLD_BACK + BLOCK bytes; a ciphertext
        // that is a whole number of blocks leaves exactly its last block before the MAC.
        let Ok(mut last) = <[u8; BLOCK]>::try_from(body) else {
            return Err(DecryptError::BadPadding);
        };
        if let Some(cipher) = self.cipher.as_mut() {
            cipher.decrypt_block_mut(GenericArray::from_mut_slice(&mut last));
        }
        let pad = usize::from(last[BLOCK - 1]);
        if !(1..=BLOCK).contains(&pad) || last[BLOCK - pad..].iter().any(|&b| usize::from(b) != pad)
        {
            return Err(DecryptError::BadPadding);
        }
        let start = out.len();
        out.extend_from_slice(&last[..BLOCK - pad]);
        self.limit(out, start);
        if self.produced < self.size {
            return Err(DecryptError::SizeMismatch {
                expected: self.size,
                got: self.produced,
            });
        }
        Ok(())
    }

    fn decrypt_in_place(&mut self, out: &mut Vec<u8>, start: usize) {
        self.mac.update(&out[start..]);
        if let Some(cipher) = self.cipher.as_mut() {
            for block in out[start..].chunks_exact_mut(BLOCK) {
                cipher.decrypt_block_mut(GenericArray::from_mut_slice(block));
            }
        }
        self.limit(out, start);
    }

    /// Drops whatever lies beyond `size`: it is padding, and is not inspected.
    fn limit(&mut self, out: &mut Vec<u8>, start: usize) {
        let room = usize::try_from(self.size - self.produced).unwrap_or(usize::MAX);
        let keep = (out.len() - start).min(room);
        out.truncate(start + keep);
        self.produced += keep as u64;
    }
}

/// Decrypts a whole blob with a pointer's `key`, `digest` and `size`.
pub fn decrypt_legacy(
    blob: &[u8],
    key: &[u8],
    digest: Option<&[u8]>,
    size: u64,
) -> Result<Vec<u8>, DecryptError> {
    let mut decryptor = LegacyDecryptor::new(key, digest, size)?;
    let capacity = usize::try_from(size).unwrap_or(usize::MAX).min(blob.len());
    let mut out = Vec::with_capacity(capacity);
    decryptor.update(blob, &mut out);
    decryptor.finish(&mut out)?;
    Ok(out)
}
