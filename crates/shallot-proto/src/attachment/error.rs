//! Why an encrypted attachment or profile picture was refused. Every variant is permanent for
//! that blob and pointer: downloading it again cannot change the answer.

/// Why a blob did not decrypt. Nothing decrypted before the error may be shown or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The key has the wrong length for the scheme.
    #[error("attachment key must be {expected} bytes, got {got}")]
    KeyLength {
        /// Length the scheme needs.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The blob is shorter than the scheme's framing.
    #[error("encrypted attachment too short ({0} bytes)")]
    TooShort(usize),
    /// The blob is longer than the scheme allows.
    #[error("encrypted attachment too large ({0} bytes)")]
    TooLarge(u64),
    /// L-A: the HMAC does not match (tampered or corrupted blob, or wrong key).
    #[error("bad MAC: the attachment was tampered with or corrupted")]
    BadMac,
    /// L-A: the pointer carries no digest (sent by a very old client).
    #[error("attachment pointer has no digest; ask the sender to update Session and resend")]
    MissingDigest,
    /// L-A: the digest is not the SHA-256 of the blob (or is not 32 bytes).
    #[error("bad digest: the downloaded attachment is not the one the sender uploaded")]
    BadDigest,
    /// L-A: the PKCS#7 padding of the decrypted data is malformed.
    #[error("bad block padding")]
    BadPadding,
    /// The decrypted data is shorter than (or, for S, differs from) the pointer's `size`.
    #[error("attachment size mismatch: pointer says {expected} bytes, decrypted {got}")]
    SizeMismatch {
        /// The pointer's `size`.
        expected: u64,
        /// Bytes actually decrypted.
        got: u64,
    },
    /// L-P: the AES-GCM tag does not verify (for an avatar: the profile key changed).
    #[error("profile picture does not decrypt with this profile key")]
    BadTag,
    /// S: the first byte names no scheme this library knows.
    #[error("unknown attachment encryption type {0:#04x}")]
    UnknownScheme(u8),
    /// S: a chunk does not authenticate (tampered, truncated or wrong key).
    #[error("chunk {0} of the encrypted attachment does not authenticate")]
    BadChunk(u64),
    /// S: a chunk other than the last carries the FINAL tag, or the last one lacks it.
    #[error("encrypted attachment is truncated or has data after its end")]
    BadFinal,
    /// S: the padding before the data is not `0x00… 0x01`.
    #[error("bad attachment padding")]
    BadStreamPadding,
}
