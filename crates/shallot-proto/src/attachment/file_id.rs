//! File ids (attachments spec §3.5): opaque `[A-Za-z0-9_-]+` strings. Servers name a file by the
//! hash of its bytes (44 characters) or, for old clients, by a random decimal number.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use blake2::digest::core_api::{Buffer, UpdateCore, VariableOutputCore};
use blake2::digest::Output;
use blake2::Blake2bVarCore;

/// Longest id accepted (real ids are 44 characters or at most 16 digits).
pub const MAX_FILE_ID_LEN: usize = 128;
/// Length of a content-hash id.
pub const CONTENT_ID_LEN: usize = 44;
/// BLAKE2b salt of the content-hash id.
const CONTENT_ID_SALT: &[u8; 16] = b"SessionFileSvr\0\0";
/// Bytes of hash behind a content id (33 bytes are 44 base64 characters without padding).
const CONTENT_HASH_LEN: usize = 33;

/// A file id as a server issues it and a URL carries it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(String);

/// The text is not a valid file id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a file id is 1 to {MAX_FILE_ID_LEN} characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidFileId;

impl FileId {
    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a content-hash id (the only kind desktop extends).
    pub fn is_content_id(&self) -> bool {
        self.0.len() == CONTENT_ID_LEN
    }
}

impl FromStr for FileId {
    type Err = InvalidFileId;
    fn from_str(s: &str) -> Result<Self, InvalidFileId> {
        let ok = (1..=MAX_FILE_ID_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidFileId)
        }
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({})", self.0)
    }
}

/// Hashes a blob given in pieces into its content id: base64url of
/// `BLAKE2b(out 33, salt "SessionFileSvr\0\0", no key, no personalisation)`.
pub struct ContentHasher {
    core: Blake2bVarCore,
    buffer: Buffer<Blake2bVarCore>,
}

impl Default for ContentHasher {
    fn default() -> Self {
        Self {
            core: Blake2bVarCore::new_with_params(CONTENT_ID_SALT, &[], 0, CONTENT_HASH_LEN),
            buffer: Buffer::<Blake2bVarCore>::default(),
        }
    }
}

impl ContentHasher {
    /// Hashes the next piece.
    pub fn update(&mut self, bytes: &[u8]) {
        let core = &mut self.core;
        self.buffer
            .digest_blocks(bytes, |blocks| core.update_blocks(blocks));
    }

    /// The content id.
    pub fn finish(mut self) -> FileId {
        let mut out = Output::<Blake2bVarCore>::default();
        self.core.finalize_variable_core(&mut self.buffer, &mut out);
        FileId(URL_SAFE.encode(&out[..CONTENT_HASH_LEN]))
    }
}

/// The content id of a whole blob.
pub fn content_id(blob: &[u8]) -> FileId {
    let mut hasher = ContentHasher::default();
    hasher.update(blob);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!("abc-_09".parse::<FileId>().is_ok());
        for bad in ["", "a/b", "a b", "..", "é", &"a".repeat(129)] {
            assert_eq!(bad.parse::<FileId>(), Err(InvalidFileId), "{bad}");
        }
        let id = content_id(b"");
        assert!(id.is_content_id());
        let mut pieces = ContentHasher::default();
        let data = vec![5u8; 1000];
        for piece in data.chunks(7) {
            pieces.update(piece);
        }
        assert_eq!(pieces.finish(), content_id(&data));
    }
}
