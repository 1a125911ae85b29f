//! Attachments through a file server (attachments spec §1.2, §3, §4): files are encrypted with
//! the scheme current Session clients write (L-A: AES-CBC + HMAC, padded), uploaded through an
//! onion path so the server never learns who we are, and named in the message by an
//! `AttachmentPointer`; received pointers are downloaded the same way, checked and decrypted.
//!
//! - [`upload`]: file → encrypted into a `POST /file` onion → pointer.
//! - [`download`]: pointer → `GET /file/{id}` → checked plaintext saved under a path.
//! - [`picture`]: profile pictures (L-P, AES-GCM with the profile key): upload, fetch, extend.
//!
//! A file is read and written in pieces: the plaintext is never held whole. An onion request
//! cannot be streamed, so the encrypted blob travels as one body, as in Session, and is held
//! once: an upload encrypts the file straight into the onion request (again for a retry), a
//! download decrypts the reply where it arrived (`client_attachment_memory` measures both).

use std::path::PathBuf;

use shallot_proto::attachment::{DecryptError, FileUrl, PointerError, UrlError};
use shallot_proto::identity::IdError;
use shallot_proto::onion::ServerDestination;
use shallot_proto::{Ed25519Pub, X25519Pub};

use crate::error::Error;

pub mod download;
pub mod picture;
pub mod upload;

pub use download::download;
pub use upload::{upload_file, EncryptedFile};

/// Largest attachment plaintext (Session's 10 MB limit).
pub use shallot_proto::attachment::MAX_ATTACHMENT_SIZE;

/// Pieces files are read, encrypted and decrypted in.
const CHUNK: usize = 64 * 1024;

/// The file server attachments are uploaded to, pinned by its key: requests are encrypted to
/// its X25519 key, and its Ed25519 key goes in every URL (`#p=`) so recipients use it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileServer {
    /// Where the last hop sends requests (host, port, scheme, X25519 key).
    pub destination: ServerDestination,
    /// The server's Ed25519 key.
    pub ed25519: Ed25519Pub,
}

impl FileServer {
    /// A server at `url` (`http[s]://host[:port]`, no path) with Ed25519 key `ed25519`.
    pub fn new(url: &str, ed25519: Ed25519Pub) -> Result<Self, AttachmentError> {
        let base = url.trim().trim_end_matches('/');
        // Parsed as a file URL so the host and port obey the same rules as received ones.
        let probe: FileUrl = format!("{base}/file/0")
            .parse()
            .map_err(|e: UrlError| AttachmentError::ServerUrl(format!("{url}: {e}")))?;
        let destination = ServerDestination {
            host: probe.host,
            protocol: probe.protocol,
            port: Some(probe.port.unwrap_or(probe.protocol.default_port())),
            x25519: ed25519.to_x25519().map_err(AttachmentError::ServerKey)?,
        };
        Ok(Self {
            destination,
            ed25519,
        })
    }

    /// The server's X25519 key (for pointers without `#p=`).
    pub fn x25519(&self) -> X25519Pub {
        self.destination.x25519
    }

    /// `http[s]://host[:port]`.
    pub fn url(&self) -> String {
        let port = self
            .destination
            .port
            .filter(|&p| p != self.destination.protocol.default_port());
        match port {
            Some(port) => format!(
                "{}://{}:{port}",
                self.destination.protocol, self.destination.host
            ),
            None => format!("{}://{}", self.destination.protocol, self.destination.host),
        }
    }
}

/// What an upload or download is doing, for progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading and encrypting the file.
    Encrypt,
    /// Sending the blob through the onion path (`done` = 0 at the start, `total` at the end).
    Upload,
    /// Fetching the blob through the onion path (`done` = 0 at the start, `total` at the end).
    Download,
    /// Checking and decrypting the blob into a file.
    Decrypt,
}

impl Stage {
    /// What the stage is doing, as progress output says it ("encrypting", …).
    pub fn doing(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypting",
            Self::Upload => "uploading",
            Self::Download => "downloading",
            Self::Decrypt => "decrypting",
        }
    }
}

/// Progress of one transfer: `done` of `total` bytes in `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub stage: Stage,
    /// Bytes done in this stage.
    pub done: u64,
    /// Bytes in this stage.
    pub total: u64,
}

/// Why an attachment could not be sent or received. Nothing is saved after any of them.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// Reading the file or writing the download failed.
    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file (or the size a pointer claims) is over Session's limit.
    #[error("attachment too large: {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file server answered 404: the file expired or never existed.
    #[error("the attachment is no longer on the file server (expired or unknown; 404)")]
    Expired,
    /// The file server refused the request.
    #[error("the file server answered {status}: {reason}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Its text, shortened.
        reason: String,
    },
    /// The downloaded blob failed a check (tampered, corrupted, or the pointer is wrong).
    #[error("attachment rejected, nothing saved: {0}")]
    Rejected(#[source] DecryptError),
    /// The pointer cannot be downloaded (no URL, bad key length, …).
    #[error("unusable attachment pointer: {0}")]
    Pointer(#[source] PointerError),
    /// The configured file server URL is not `http[s]://host[:port]`.
    #[error("invalid file server URL {0}")]
    ServerUrl(String),
    /// A file server key is not a valid Ed25519 key.
    #[error("invalid file server key: {0}")]
    ServerKey(#[source] IdError),
    /// The server's reply is not what the API says.
    #[error("malformed file server reply: {0}")]
    Reply(String),
    /// No profile picture is known (or kept) for what was asked.
    #[error("{0}")]
    NoPicture(String),
    /// The onion path failed; [`Error::kind`] says what to do.
    #[error(transparent)]
    Network(Error),
}

impl AttachmentError {
    fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// The text of an error reply, shortened and without control characters (it is printed).
fn reason(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if text.is_empty() {
        "no reason given".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_server_url_is_checked_and_printed_back() {
        let key = shallot_proto::Identity::from_seed([3; 32]).ed25519_public();
        let server = FileServer::new("http://127.0.0.1:4000/", key).unwrap();
        assert_eq!(server.url(), "http://127.0.0.1:4000");
        assert_eq!(server.destination.port, Some(4000));
        assert_eq!(server.x25519(), key.to_x25519().unwrap());
        let default_port = FileServer::new("http://files.example", key).unwrap();
        assert_eq!(default_port.url(), "http://files.example");
        assert_eq!(default_port.destination.port, Some(80));
        for bad in ["ftp://x", "http://a b", "http://x/file"] {
            assert!(FileServer::new(bad, key).is_err(), "{bad}");
        }
    }
}
