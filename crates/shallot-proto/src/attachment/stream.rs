//! "S", the deterministic stream scheme of libsession's `session::attachment` (attachments spec
//! §1.4): key and nonce derived from the account seed and the content (so identical uploads get
//! identical blobs and file ids), blob = `'S' ‖ nonce(24) ‖ secretstream(0x00… 0x01 ‖ plaintext)`
//! in 32,768-byte chunks, the last tagged FINAL.

use blake2::digest::consts::U56;
use blake2::digest::{FixedOutput, Mac, Update};
use blake2::Blake2bMac;
use zeroize::Zeroize;

use super::error::DecryptError;
use super::padding::{stream_padding_len, STREAM_ABYTES, STREAM_HEADER};
use super::secretstream::{SecretStream, HEADER_LEN, TAG_FINAL, TAG_MESSAGE};

/// First byte of an S blob.
pub const SCHEME_BYTE: u8 = b'S';
/// Largest plaintext an S blob may carry through onion requests: its blob is 10,223,616 bytes,
/// the same as a 10,000,000-byte plaintext's.
pub const MAX_REGULAR_SIZE: u64 = 10_218_286;
/// Length of the S key.
pub const STREAM_KEY_LEN: usize = 32;
/// Smallest S blob: scheme byte, header, one chunk holding the `0x01` marker.
pub const STREAM_MIN_BLOB: u64 = STREAM_HEADER + STREAM_ABYTES + 1;

/// A plaintext chunk and an encrypted one, as buffer lengths.
const CHUNK: usize = 32_768;
const CHUNK_ENCRYPTED: usize = 32_785;

/// The stream header, which is the derived nonce.
pub type StreamNonce = [u8; HEADER_LEN];

/// What is being encrypted: the derivation is domain-separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamDomain {
    /// A message attachment.
    Attachment,
    /// A profile picture.
    ProfilePicture,
}

impl StreamDomain {
    /// BLAKE2b personalisation of the current derivation.
    const fn personal(self) -> &'static [u8; 16] {
        match self {
            Self::Attachment => b"SessionAttachmnt",
            Self::ProfilePicture => b"Session_Prof_Pic",
        }
    }

    /// The one-byte BLAKE2b key of the older derivation.
    const fn older_key(self) -> u8 {
        match self {
            Self::Attachment => 0,
            Self::ProfilePicture => 1,
        }
    }
}

secret_key!(
    /// The 32-byte S key as it travels in a pointer (or as the profile key of a `#d` avatar URL).
    StreamKey,
    STREAM_KEY_LEN
);

/// Derives the key and nonce from the account seed and the plaintext, read in pieces:
/// `BLAKE2b(out 56, key = seed, person = domain)`, nonce = bytes 0..24, key = bytes 24..56
/// (libsession's current derivation).
pub struct StreamKeyDeriver(Blake2bMac<U56>);

impl StreamKeyDeriver {
    /// Starts a derivation for `domain` with the account's 32-byte Ed25519 seed.
    pub fn new(seed: &[u8; 32], domain: StreamDomain) -> Self {
        Self(
            Blake2bMac::new_with_salt_and_personal(seed, &[], domain.personal())
                .expect("BLAKE2b takes a 32-byte key and 16-byte personalisation"),
        )
    }

    /// Hashes the next piece of plaintext.
    pub fn update(&mut self, plaintext: &[u8]) {
        Mac::update(&mut self.0, plaintext);
    }

    /// The key and nonce.
    pub fn finish(self) -> (StreamKey, StreamNonce) {
        split_derived(self.0.finalize_fixed().into())
    }
}

/// [`StreamKeyDeriver`] over a whole plaintext.
pub fn derive_stream_key(
    seed: &[u8; 32],
    domain: StreamDomain,
    plaintext: &[u8],
) -> (StreamKey, StreamNonce) {
    let mut deriver = StreamKeyDeriver::new(seed, domain);
    deriver.update(plaintext);
    deriver.finish()
}

/// Older libsession's derivation, `BLAKE2b(out 56, key = [domain byte])` over `seed ‖ plaintext`.
/// Decryption never needs it (the key travels in the pointer); kept to check the vectors.
pub fn derive_stream_key_older(
    seed: &[u8; 32],
    domain: StreamDomain,
    plaintext: &[u8],
) -> (StreamKey, StreamNonce) {
    let mut mac = <Blake2bMac<U56> as Mac>::new_from_slice(&[domain.older_key()])
        .expect("BLAKE2b takes a one-byte key");
    Update::update(&mut mac, seed);
    Update::update(&mut mac, plaintext);
    split_derived(mac.finalize_fixed().into())
}

fn split_derived(mut derived: [u8; 56]) -> (StreamKey, StreamNonce) {
    let mut nonce = [0; HEADER_LEN];
    nonce.copy_from_slice(&derived[..HEADER_LEN]);
    let mut key = [0; STREAM_KEY_LEN];
    key.copy_from_slice(&derived[HEADER_LEN..]);
    derived.zeroize();
    (StreamKey(key), nonce)
}

/// Why an S encryption was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamEncryptError {
    /// Over [`MAX_REGULAR_SIZE`]: such a blob does not fit through onion requests.
    #[error("{0} bytes is more than an attachment may hold ({MAX_REGULAR_SIZE})")]
    TooLarge(u64),
    /// The plaintext given differs from the length declared up front.
    #[error("declared {declared} plaintext bytes but was given {given}")]
    LengthMismatch {
        /// Length passed to [`StreamEncryptor::new`].
        declared: u64,
        /// Bytes given so far.
        given: u64,
    },
}

/// Encrypts a plaintext of known length given in pieces; the blob comes out in pieces too.
pub struct StreamEncryptor {
    stream: SecretStream,
    header: Option<StreamNonce>,
    padding: u64,
    declared: u64,
    given: u64,
    /// The chunk being filled (at most 32,768 bytes).
    chunk: Vec<u8>,
    /// Stream bytes (padding and plaintext) not yet placed in a chunk.
    left: u64,
}

impl StreamEncryptor {
    /// Starts a blob for a `plaintext_len`-byte plaintext (at most [`MAX_REGULAR_SIZE`]).
    pub fn new(
        key: &StreamKey,
        nonce: &StreamNonce,
        plaintext_len: u64,
    ) -> Result<Self, StreamEncryptError> {
        if plaintext_len > MAX_REGULAR_SIZE {
            return Err(StreamEncryptError::TooLarge(plaintext_len));
        }
        let padding = stream_padding_len(plaintext_len);
        Ok(Self {
            stream: SecretStream::new(&key.0, nonce),
            header: Some(*nonce),
            padding,
            declared: plaintext_len,
            given: 0,
            chunk: Vec::with_capacity(CHUNK),
            left: padding + plaintext_len,
        })
    }

    /// Encrypts the next piece of plaintext, appending finished chunks to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), StreamEncryptError> {
        let given = self.given + input.len() as u64;
        if given > self.declared {
            return Err(StreamEncryptError::LengthMismatch {
                declared: self.declared,
                given,
            });
        }
        self.given = given;
        self.start(out);
        self.feed(input, out);
        Ok(())
    }

    /// Encrypts the last chunk with the FINAL tag.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), StreamEncryptError> {
        if self.given != self.declared {
            return Err(StreamEncryptError::LengthMismatch {
                declared: self.declared,
                given: self.given,
            });
        }
        self.start(out);
        self.stream.push(&self.chunk, TAG_FINAL, out);
        Ok(())
    }

    /// Writes the header and the padding before the first plaintext byte.
    fn start(&mut self, out: &mut Vec<u8>) {
        let Some(nonce) = self.header.take() else {
            return;
        };
        out.push(SCHEME_BYTE);
        out.extend_from_slice(&nonce);
        let zeros = [0u8; 4096];
        let mut left = self.padding - 1;
        while left > 0 {
            let take = left.min(zeros.len() as u64);
            #[allow(clippy::cast_possible_truncation)] // At most 4096.
            self.feed(&zeros[..take as usize], out);
            left -= take;
        }
        self.feed(&[1], out);
    }

    /// Adds stream bytes to the chunk, pushing each full chunk that is not the last.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            let room = CHUNK - self.chunk.len();
            let take = room.min(input.len());
            self.chunk.extend_from_slice(&input[..take]);
            input = &input[take..];
            self.left -= take as u64;
            if self.chunk.len() == CHUNK && self.left > 0 {
                self.stream.push(&self.chunk, TAG_MESSAGE, out);
                self.chunk.clear();
            }
        }
    }
}

/// Encrypts a whole plaintext deterministically for `domain`: returns the blob and its key.
pub fn encrypt_stream(
    seed: &[u8; 32],
    domain: StreamDomain,
    plaintext: &[u8],
) -> Result<(Vec<u8>, StreamKey), StreamEncryptError> {
    let (key, nonce) = derive_stream_key(seed, domain, plaintext);
    let mut encryptor = StreamEncryptor::new(&key, &nonce, plaintext.len() as u64)?;
    let capacity = super::padding::stream_encrypted_len(plaintext.len() as u64);
    let mut blob = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    encryptor.update(plaintext, &mut blob)?;
    encryptor.finish(&mut blob)?;
    Ok((blob, key))
}

/// Decrypts an S blob given in pieces, by libsession's rules: every chunk authenticates, only
/// the last carries FINAL, the padding is `0x00… 0x01`. The plaintext it appends is unverified
/// until [`Self::finish`] returns `Ok`.
pub struct StreamDecryptor {
    key: StreamKey,
    stream: Option<SecretStream>,
    header: Vec<u8>,
    /// Bytes of the chunk being collected (at most one encrypted chunk).
    pending: Vec<u8>,
    chunk_index: u64,
    in_padding: bool,
    produced: u64,
    expected_size: Option<u64>,
    total: u64,
}

impl StreamDecryptor {
    /// Prepares to decrypt with a pointer's 32-byte `key`; `expected_size` is its `size`, if any.
    pub fn new(key: &[u8], expected_size: Option<u64>) -> Result<Self, DecryptError> {
        Ok(Self {
            key: StreamKey::from_slice(key)?,
            stream: None,
            header: Vec::with_capacity(1 + HEADER_LEN),
            pending: Vec::new(),
            chunk_index: 0,
            in_padding: true,
            produced: 0,
            expected_size,
            total: 0,
        })
    }

    /// Takes the next piece of the blob, appending decrypted (unverified) plaintext to `out`.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        self.total += input.len() as u64;
        if self.stream.is_none() {
            let take = (1 + HEADER_LEN - self.header.len()).min(input.len());
            self.header.extend_from_slice(&input[..take]);
            input = &input[take..];
            if let Some(&first) = self.header.first() {
                if first != SCHEME_BYTE {
                    return Err(DecryptError::UnknownScheme(first));
                }
            }
            let Ok(nonce) = <&StreamNonce>::try_from(self.header.get(1..).unwrap_or_default())
            else {
                return Ok(());
            };
            self.stream = Some(SecretStream::new(&self.key.0, nonce));
        }
        let full = CHUNK_ENCRYPTED;
        // A chunk is decrypted only once a byte after it has arrived: the last one must carry
        // FINAL and is left for `finish`.
        if !self.pending.is_empty() {
            let take = (full - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < full || input.is_empty() {
                return Ok(());
            }
            let chunk = std::mem::take(&mut self.pending);
            self.open(&chunk, false, out)?;
            self.pending = chunk;
            self.pending.clear();
        }
        while input.len() > full {
            let (chunk, rest) = input.split_at(full);
            self.open(chunk, false, out)?;
            input = rest;
        }
        self.pending.extend_from_slice(input);
        Ok(())
    }

    /// Decrypts the last chunk and checks FINAL, the padding and the size.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if self.total < STREAM_MIN_BLOB {
            return Err(DecryptError::TooShort(
                usize::try_from(self.total).unwrap_or(usize::MAX),
            ));
        }
        let chunk = std::mem::take(&mut self.pending);
        self.open(&chunk, true, out)?;
        if self.in_padding {
            return Err(DecryptError::BadStreamPadding);
        }
        match self.expected_size {
            Some(expected) if expected != self.produced => Err(DecryptError::SizeMismatch {
                expected,
                got: self.produced,
            }),
            _ => Ok(()),
        }
    }

    fn open(&mut self, chunk: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        let index = self.chunk_index;
        self.chunk_index += 1;
        let Some(stream) = self.stream.as_mut() else {
            return Err(DecryptError::TooShort(0));
        };
        let start = out.len();
        let tag = stream
            .pull(chunk, out)
            .map_err(|_| DecryptError::BadChunk(index))?;
        if (tag == TAG_FINAL) != last {
            out.truncate(start);
            return Err(DecryptError::BadFinal);
        }
        if self.in_padding {
            match out[start..].iter().position(|&b| b != 0) {
                None => out.truncate(start),
                Some(at) if out[start + at] == 1 => {
                    out.drain(start..=start + at);
                    self.in_padding = false;
                }
                Some(_) => {
                    out.truncate(start);
                    return Err(DecryptError::BadStreamPadding);
                }
            }
        }
        self.produced += (out.len() - start) as u64;
        if let Some(expected) = self.expected_size {
            if self.produced > expected {
                return Err(DecryptError::SizeMismatch {
                    expected,
                    got: self.produced,
                });
            }
        }
        Ok(())
    }
}

/// Decrypts a whole S blob; `expected_size` is the pointer's `size`, if any.
pub fn decrypt_stream(
    blob: &[u8],
    key: &[u8],
    expected_size: Option<u64>,
) -> Result<Vec<u8>, DecryptError> {
    let mut decryptor = StreamDecryptor::new(key, expected_size)?;
    let bound = super::padding::stream_max_plaintext(blob.len() as u64);
    let mut out = Vec::with_capacity(usize::try_from(bound).unwrap_or(0));
    decryptor.update(blob, &mut out)?;
    decryptor.finish(&mut out)?;
    Ok(out)
}
