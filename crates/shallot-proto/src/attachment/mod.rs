//! Attachments and profile pictures (attachments spec §1–§3): the three encryption schemes, the
//! `AttachmentPointer` protobuf, file server URLs, file ids and the file server's HTTP API.
//!
//! - [`legacy`]: "L-A", AES-256-CBC + HMAC-SHA256 + SHA-256 digest, with [`padding`] (§1.2).
//!   What current clients write for message attachments.
//! - [`profile`]: "L-P", AES-256-GCM with the profile key (§1.3). What clients write for avatars.
//! - [`stream`]: "S", deterministic XChaCha20-Poly1305 secretstream (§1.4), on [`secretstream`].
//!   Read always; written only on request.
//! - [`padding`]: the size functions of L-A and S.
//! - [`pointer`]: `AttachmentPointer`, `Preview`, `Quote` (§2) and their checked, typed form.
//! - [`url`]: `http://host/file/<id>#p=<ed25519>&d` (§3.2).
//! - [`file_id`]: file ids and the server's content-hash id (§3.5).
//! - [`server_api`]: the file server's routes, headers and JSON bodies (§3.4).
//!
//! Encryption and decryption take the data in pieces of any size, so a 10 MB file need not be
//! held in memory more than once; decrypted output is unverified until `finish` returns `Ok`.

/// A fixed-length secret key newtype: zeroized on drop, never printed, built from random bytes,
/// raw bytes or a protobuf field (refusing other lengths with [`DecryptError::KeyLength`]).
macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// A fresh random key.
            pub fn generate<R: rand_core::CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
                let mut key = [0; $len];
                rng.fill_bytes(&mut key);
                Self(key)
            }

            /// Wraps raw key bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Takes the key from a message or config field.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, $crate::attachment::DecryptError> {
                bytes.try_into().map(Self).map_err(|_| {
                    $crate::attachment::DecryptError::KeyLength {
                        expected: $len,
                        got: bytes.len(),
                    }
                })
            }

            /// The key bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

pub mod error;
pub mod file_id;
pub mod legacy;
pub mod padding;
pub mod pointer;
pub mod profile;
pub mod secretstream;
pub mod server_api;
pub mod stream;
pub mod url;

pub use error::DecryptError;
pub use file_id::{content_id, ContentHasher, FileId, InvalidFileId};
pub use legacy::{LegacyDecryptor, LegacyEncryptor, LegacyKey, LegacyPadding};
pub use pointer::{AttachmentPointer, Decryption, PointerError, ResolvedPointer};
pub use profile::ProfileKey;
pub use stream::{StreamDecryptor, StreamDomain, StreamEncryptor, StreamKey, StreamNonce};
pub use url::{FileUrl, UrlError};

/// Largest plaintext clients send as one attachment (desktop `MAX_ATTACHMENT_FILESIZE_BYTES`).
pub const MAX_ATTACHMENT_SIZE: usize = 10_000_000;

/// Largest blob a current client uploads: an S-scheme 10,218,286-byte plaintext, 10,223,616
/// bytes (an L-A blob of a 10 MB plaintext is 10,000,064). A file server must accept it.
pub const MAX_BLOB_SIZE: usize = 10_223_616;
