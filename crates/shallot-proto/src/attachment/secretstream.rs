//! libsodium's `crypto_secretstream_xchacha20poly1305` (push and pull), which the S scheme
//! encrypts with, written from its published construction (attachments spec §1.4): HChaCha20
//! subkey, ChaCha20-IETF per message with a counter ‖ inner-nonce, Poly1305 over the tag block and
//! ciphertext, and the inner nonce ratcheted with each MAC.
//!
//! One quirk matters for interop: libsodium pads the ciphertext with `(16 − 64 + mlen) mod 16`
//! zero bytes before the length block, i.e. `mlen mod 16` bytes, not the "pad to 16" of
//! ChaCha20-Poly1305 (the attachments spec's prose says "pad to 16"; its vectors, made with
//! libsodium, need the quirk). Poly1305 therefore runs over an unaligned byte stream here.

use chacha20::cipher::consts::U10;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{hchacha, ChaCha20};
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::{Block, Poly1305};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the stream header (the XChaCha20 nonce).
pub const HEADER_LEN: usize = 24;
/// Bytes added to each message: the encrypted tag byte and the 16-byte MAC.
pub const ABYTES: usize = 17;
/// An ordinary message.
pub const TAG_MESSAGE: u8 = 0;
/// Marks the end of a set of messages.
pub const TAG_PUSH: u8 = 1;
/// Asks both sides to derive a new key after this message.
pub const TAG_REKEY: u8 = 2;
/// The last message of the stream (`PUSH | REKEY`).
pub const TAG_FINAL: u8 = TAG_PUSH | TAG_REKEY;

const MAC_LEN: usize = 16;
const BLOCK: usize = 64;

/// A chunk did not authenticate under the stream's key and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("secretstream message does not authenticate")]
pub struct Unauthentic;

/// The state of one direction of a secretstream.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretStream {
    key: [u8; 32],
    /// `LE32(counter) ‖ inner nonce(8)`, the ChaCha20-IETF nonce of the next message.
    nonce: [u8; 12],
}

impl SecretStream {
    /// Initialises a stream from a key and header, the same for pushing and pulling.
    pub fn new(key: &[u8; 32], header: &[u8; HEADER_LEN]) -> Self {
        let subkey = hchacha::<U10>(key.into(), header[..16].into());
        let mut nonce = [0; 12];
        nonce[..4].copy_from_slice(&1u32.to_le_bytes());
        nonce[4..].copy_from_slice(&header[16..]);
        Self {
            key: subkey.into(),
            nonce,
        }
    }

    /// Encrypts `message` with `tag`, appending `tag' ‖ ciphertext ‖ mac` to `out`.
    pub fn push(&mut self, message: &[u8], tag: u8, out: &mut Vec<u8>) {
        let (mut cipher, mut poly) = self.message_keys();
        let mut block = [0u8; BLOCK];
        block[0] = tag;
        cipher.apply_keystream(&mut block);
        poly.update(&block);
        let start = out.len();
        out.push(block[0]);
        out.extend_from_slice(message);
        cipher.apply_keystream(&mut out[start + 1..]);
        poly.update(&out[start + 1..]);
        let mac = poly.finish(message.len());
        out.extend_from_slice(&mac);
        self.advance(&mac, tag);
    }

    /// Checks and decrypts one encrypted message, appending the plaintext to `out` and returning
    /// its tag. A message that does not authenticate leaves both `out` and the state unchanged.
    pub fn pull(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<u8, Unauthentic> {
        if chunk.len() < ABYTES {
            return Err(Unauthentic);
        }
        let (ciphertext, their_mac) = chunk[1..].split_at(chunk.len() - ABYTES);
        let (mut cipher, mut poly) = self.message_keys();
        let mut block = [0u8; BLOCK];
        block[0] = chunk[0];
        cipher.apply_keystream(&mut block);
        let tag = block[0];
        block[0] = chunk[0];
        poly.update(&block);
        poly.update(ciphertext);
        let mac = poly.finish(ciphertext.len());
        if !bool::from(mac.ct_eq(their_mac)) {
            return Err(Unauthentic);
        }
        let start = out.len();
        out.extend_from_slice(ciphertext);
        cipher.apply_keystream(&mut out[start..]);
        self.advance(&mac, tag);
        Ok(tag)
    }

    /// The cipher positioned at block 1 and the Poly1305 keyed with block 0.
    fn message_keys(&self) -> (ChaCha20, PolyStream) {
        let mut cipher = ChaCha20::new(&self.key.into(), &self.nonce.into());
        let mut poly_key = [0u8; 32];
        cipher.apply_keystream(&mut poly_key);
        cipher.seek(BLOCK as u64);
        let poly = PolyStream::new(&poly_key);
        poly_key.zeroize();
        (cipher, poly)
    }

    /// Ratchets the inner nonce with the MAC, steps the counter and rekeys when asked or wrapped.
    fn advance(&mut self, mac: &[u8; MAC_LEN], tag: u8) {
        for (n, m) in self.nonce[4..].iter_mut().zip(mac) {
            *n ^= m;
        }
        let counter =
            u32::from_le_bytes([self.nonce[0], self.nonce[1], self.nonce[2], self.nonce[3]])
                .wrapping_add(1);
        self.nonce[..4].copy_from_slice(&counter.to_le_bytes());
        if tag & TAG_REKEY != 0 || counter == 0 {
            self.rekey();
        }
    }

    /// `k ‖ inonce ← ChaCha20-IETF(k, nonce) ⊕ (k ‖ inonce)`, counter back to 1.
    fn rekey(&mut self) {
        let mut fresh = [0u8; 40];
        fresh[..32].copy_from_slice(&self.key);
        fresh[32..].copy_from_slice(&self.nonce[4..]);
        ChaCha20::new(&self.key.into(), &self.nonce.into()).apply_keystream(&mut fresh);
        self.key.copy_from_slice(&fresh[..32]);
        self.nonce[4..].copy_from_slice(&fresh[32..]);
        self.nonce[..4].copy_from_slice(&1u32.to_le_bytes());
        fresh.zeroize();
    }
}

/// Poly1305 over a byte stream that need not be aligned to 16-byte blocks.
struct PolyStream {
    poly: Poly1305,
    partial: [u8; 16],
    partial_len: usize,
}

impl PolyStream {
    fn new(key: &[u8; 32]) -> Self {
        Self {
            poly: Poly1305::new(key.into()),
            partial: [0; 16],
            partial_len: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < 16 {
                return;
            }
            self.poly.update(&[Block::from(self.partial)]);
            self.partial_len = 0;
        }
        let mut blocks = data.chunks_exact(16);
        for block in &mut blocks {
            self.poly.update(&[*Block::from_slice(block)]);
        }
        let rest = blocks.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// Adds libsodium's `mlen mod 16` zero bytes and `LE64(ad_len = 0) ‖ LE64(64 + mlen)`, and
    /// returns the MAC.
    fn finish(mut self, message_len: usize) -> [u8; MAC_LEN] {
        self.update(&[0u8; 16][..message_len % 16]);
        let mut lengths = [0u8; 16];
        lengths[8..].copy_from_slice(&(BLOCK as u64 + message_len as u64).to_le_bytes());
        self.update(&lengths);
        self.poly
            .compute_unpadded(&self.partial[..self.partial_len])
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_with_rekey() {
        let key = [7u8; 32];
        let header = [9u8; HEADER_LEN];
        let mut push = SecretStream::new(&key, &header);
        let mut pull = SecretStream::new(&key, &header);
        let mut wire = Vec::new();
        let messages: [(&[u8], u8); 4] = [
            (b"one", TAG_MESSAGE),
            (b"", TAG_REKEY),
            (b"three", TAG_PUSH),
            (b"four", TAG_FINAL),
        ];
        let mut at = 0;
        for (message, tag) in messages {
            wire.clear();
            push.push(message, tag, &mut wire);
            assert_eq!(wire.len(), message.len() + ABYTES);
            let mut out = Vec::new();
            let mut tampered = wire.clone();
            tampered[at % wire.len()] ^= 1;
            at += 5;
            assert_eq!(pull.pull(&tampered, &mut out), Err(Unauthentic));
            assert!(out.is_empty());
            assert_eq!(pull.pull(&wire, &mut out), Ok(tag));
            assert_eq!(out, message);
        }
    }
}
