//! The attachment protobufs (attachments spec §2; package `signalservice`, proto2), generated
//! from Shallot's own `proto/attachment.proto` like [`crate::session::protos`], and their checked
//! form: which scheme, which key, where.
//!
//! The receiver picks the scheme from the URL (`d` ⇒ S), not from the key length.

use super::error::DecryptError;
use super::legacy::{LegacyDecryptor, LegacyKey, LegacySealed};
use super::profile::ProfileKey;
use super::stream::{StreamDecryptor, StreamKey};
use super::url::{FileUrl, UrlError};

pub use crate::signalservice::{AttachmentPointer, Preview, Quote, QuotedAttachment};

/// Why a pointer cannot be downloaded and decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// No `url`.
    #[error("attachment pointer has no URL")]
    MissingUrl,
    /// The URL is not a file server URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The key or digest is unusable (wrong length, missing digest).
    #[error(transparent)]
    Key(#[from] DecryptError),
    /// An L-A pointer without `size` (the padding could not be told from the file).
    #[error("attachment pointer has no size")]
    MissingSize,
    /// The plaintext is too large for the `size` field.
    #[error("attachment of {0} bytes is too large for a pointer")]
    TooLarge(u64),
}

/// How to decrypt a downloaded blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decryption {
    /// L-A, with the pointer's digest and size.
    Legacy {
        /// The 64-byte key.
        key: LegacyKey,
        /// SHA-256 of the blob.
        digest: [u8; 32],
        /// Plaintext length.
        size: u64,
    },
    /// S, with the pointer's size when it has one.
    Stream {
        /// The 32-byte key.
        key: StreamKey,
        /// Plaintext length.
        size: Option<u64>,
    },
}

/// A pointer checked for download: where the blob is and how to decrypt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPointer {
    /// Where to download.
    pub url: FileUrl,
    /// How to decrypt.
    pub decryption: Decryption,
}

impl AttachmentPointer {
    /// `flags` bit: a voice message.
    pub const FLAG_VOICE_MESSAGE: u32 = 1;

    /// A pointer to an L-A blob uploaded at `url`.
    pub fn legacy(
        url: &FileUrl,
        key: &LegacyKey,
        sealed: &LegacySealed,
    ) -> Result<Self, PointerError> {
        Ok(Self {
            deprecated_id: Some(numeric_id(url)),
            key: Some(key.as_bytes().to_vec()),
            size: Some(
                u32::try_from(sealed.size).map_err(|_| PointerError::TooLarge(sealed.size))?,
            ),
            digest: Some(sealed.digest.to_vec()),
            url: Some(url.to_string()),
            ..Self::default()
        })
    }

    /// A pointer to an S blob uploaded at `url` (which must carry `d`).
    pub fn stream(url: &FileUrl, key: &StreamKey, size: u64) -> Result<Self, PointerError> {
        Ok(Self {
            deprecated_id: Some(numeric_id(url)),
            key: Some(key.as_bytes().to_vec()),
            size: Some(u32::try_from(size).map_err(|_| PointerError::TooLarge(size))?),
            url: Some(url.to_string()),
            ..Self::default()
        })
    }

    /// Checks the URL, key, digest and size for download.
    pub fn resolve(&self) -> Result<ResolvedPointer, PointerError> {
        let url: FileUrl = self
            .url
            .as_deref()
            .ok_or(PointerError::MissingUrl)?
            .parse()?;
        let key = self.key.as_deref().unwrap_or_default();
        let size = self.size.map(u64::from);
        let decryption = if url.stream {
            Decryption::Stream {
                key: StreamKey::from_slice(key)?,
                size,
            }
        } else {
            let key = LegacyKey::from_slice(key)?;
            let digest = self
                .digest
                .as_deref()
                .ok_or(DecryptError::MissingDigest)?
                .try_into()
                .map_err(|_| DecryptError::BadDigest)?;
            Decryption::Legacy {
                key,
                digest,
                size: size.ok_or(PointerError::MissingSize)?,
            }
        };
        Ok(ResolvedPointer { url, decryption })
    }

    /// Whether this is a voice message.
    pub fn is_voice_message(&self) -> bool {
        self.flags.unwrap_or(0) & Self::FLAG_VOICE_MESSAGE != 0
    }
}

/// `deprecated_id`: the id as a number when it is one, else 0.
fn numeric_id(url: &FileUrl) -> u64 {
    url.id.as_str().parse().unwrap_or(0)
}

/// A decryptor for either attachment scheme, fed the blob in pieces.
pub enum AttachmentDecryptor {
    /// L-A (boxed: it holds two AES key schedules).
    Legacy(Box<LegacyDecryptor>),
    /// S.
    Stream(StreamDecryptor),
}

impl AttachmentDecryptor {
    /// Takes the next piece of the blob, appending unverified plaintext to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        match self {
            Self::Legacy(d) => {
                d.update(input, out);
                Ok(())
            }
            Self::Stream(d) => d.update(input, out),
        }
    }

    /// Completes every check; only then is the plaintext the sender's file.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        match self {
            Self::Legacy(d) => d.finish(out),
            Self::Stream(d) => d.finish(out),
        }
    }
}

impl Decryption {
    /// A decryptor for this scheme and key.
    pub fn decryptor(&self) -> AttachmentDecryptor {
        match self {
            Self::Legacy { key, digest, size } => AttachmentDecryptor::Legacy(Box::new(
                LegacyDecryptor::new(key.as_bytes(), Some(digest), *size)
                    .expect("a resolved pointer's key and digest have the right lengths"),
            )),
            Self::Stream { key, size } => AttachmentDecryptor::Stream(
                StreamDecryptor::new(key.as_bytes(), *size)
                    .expect("a resolved pointer's key has the right length"),
            ),
        }
    }

    /// The plaintext size the pointer promises, if it says.
    pub fn size(&self) -> Option<u64> {
        match self {
            Self::Legacy { size, .. } => Some(*size),
            Self::Stream { size, .. } => *size,
        }
    }
}

/// How to decrypt a profile picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileDecryption {
    /// L-P: AES-GCM with the profile key.
    Legacy(ProfileKey),
    /// S: the URL carries `d`, the profile key is the stream key.
    Stream(StreamKey),
}

impl ProfileDecryption {
    /// Decrypts a downloaded avatar blob.
    pub fn decrypt(&self, blob: Vec<u8>) -> Result<Vec<u8>, DecryptError> {
        match self {
            Self::Legacy(key) => key.decrypt_owned(blob),
            Self::Stream(key) => super::stream::decrypt_stream(&blob, key.as_bytes(), None),
        }
    }
}

/// Checks a profile picture reference (`profilePicture` URL and `profileKey`, or config `p`/`q`).
pub fn resolve_profile_picture(
    url: &str,
    key: &[u8],
) -> Result<(FileUrl, ProfileDecryption), PointerError> {
    let url: FileUrl = url.parse()?;
    let decryption = if url.stream {
        ProfileDecryption::Stream(StreamKey::from_slice(key)?)
    } else {
        ProfileDecryption::Legacy(ProfileKey::from_slice(key)?)
    };
    Ok((url, decryption))
}
