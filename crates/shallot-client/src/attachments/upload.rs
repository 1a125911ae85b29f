//! Sending side: read a file in pieces, encrypt it with L-A (padded, as current clients do for
//! message attachments), upload the blob with one onion v4 `POST /file`, and build the pointer.

use std::io::Read;
use std::path::{Path, PathBuf};

use shallot_proto::attachment::legacy::{LegacySealed, LEGACY_MIN_BLOB};
use shallot_proto::attachment::padding::legacy_padded_len;
use shallot_proto::attachment::server_api::UploadResponse;
use shallot_proto::attachment::{
    AttachmentPointer, FileUrl, LegacyEncryptor, LegacyKey, LegacyPadding,
};
use shallot_proto::onion::{Headers, HttpMethod, V4Request};

use super::{reason, AttachmentError, FileServer, Progress, Stage, CHUNK, MAX_ATTACHMENT_SIZE};
use crate::onion_client::OnionClient;

/// A file encrypted for upload: the blob and what the pointer needs.
pub struct EncryptedFile {
    /// `iv ‖ ciphertext ‖ mac`.
    pub blob: Vec<u8>,
    /// The key that goes in the pointer.
    pub key: LegacyKey,
    /// Digest and plaintext size.
    pub sealed: LegacySealed,
    /// The name the recipient sees (the file's own name).
    pub file_name: String,
}

impl std::fmt::Debug for EncryptedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedFile")
            .field("blob_len", &self.blob.len())
            .field("size", &self.sealed.size)
            .finish_non_exhaustive()
    }
}

impl EncryptedFile {
    /// Reads `path` in pieces and encrypts it with a fresh key; refuses files over
    /// [`MAX_ATTACHMENT_SIZE`] before reading them.
    pub fn read(path: &Path, progress: &mut dyn FnMut(Progress)) -> Result<Self, AttachmentError> {
        let mut file = std::fs::File::open(path).map_err(AttachmentError::io("open", path))?;
        let len = file
            .metadata()
            .map_err(AttachmentError::io("read the size of", path))?
            .len();
        if len > MAX_ATTACHMENT_SIZE as u64 {
            return Err(AttachmentError::TooLarge {
                size: len,
                max: MAX_ATTACHMENT_SIZE as u64,
            });
        }
        let file_name = path.file_name().map_or_else(
            || "attachment".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut rng = rand::rngs::OsRng;
        let key = LegacyKey::generate(&mut rng);
        let mut encryptor = LegacyEncryptor::new(&key, LegacyPadding::Padded, &mut rng);
        // `len` is at most 10 MB, so it fits; the blob is padded plaintext + IV, block, MAC.
        let expected = usize::try_from(len).unwrap_or(MAX_ATTACHMENT_SIZE);
        let mut blob = Vec::with_capacity(legacy_padded_len(expected) + LEGACY_MIN_BLOB + 16);
        let mut buffer = vec![0; CHUNK];
        let mut done = 0u64;
        progress(Progress {
            stage: Stage::Encrypt,
            done,
            total: len,
        });
        loop {
            let n = file
                .read(&mut buffer)
                .map_err(AttachmentError::io("read", path))?;
            if n == 0 {
                break;
            }
            done += n as u64;
            // A file that grew while being read is held to the limit all the same.
            if done > MAX_ATTACHMENT_SIZE as u64 {
                return Err(AttachmentError::TooLarge {
                    size: done,
                    max: MAX_ATTACHMENT_SIZE as u64,
                });
            }
            encryptor.update(&buffer[..n], &mut blob);
            progress(Progress {
                stage: Stage::Encrypt,
                done,
                total: len.max(done),
            });
        }
        let sealed = encryptor.finish(&mut blob);
        Ok(Self {
            blob,
            key,
            sealed,
            file_name,
        })
    }
}

/// Encrypts the file at `path`, uploads it to `server` through an onion path of `client`, and
/// returns the pointer to put in the message (URL with the server's key, key, digest, size,
/// file name, content type).
pub async fn upload_file(
    client: &OnionClient,
    server: &FileServer,
    path: &Path,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<AttachmentPointer, AttachmentError> {
    let owned: PathBuf = path.to_owned();
    // Reading and encrypting 10 MB is blocking work: off the async threads. The progress
    // callback stays here; the reader reports through a channel.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let work = tokio::task::spawn_blocking(move || {
        EncryptedFile::read(&owned, &mut |p| {
            let _ = tx.send(p);
        })
    });
    while let Some(p) = rx.recv().await {
        progress(p);
    }
    let encrypted = work
        .await
        .map_err(|e| AttachmentError::Reply(format!("encryption task failed: {e}")))??;
    let content_type = content_type(&encrypted.file_name);
    let EncryptedFile {
        blob,
        key,
        sealed,
        file_name,
    } = encrypted;
    let url = upload_blob(client, server, blob, progress).await?;
    let mut pointer =
        AttachmentPointer::legacy(&url, &key, &sealed).map_err(AttachmentError::Pointer)?;
    pointer.file_name = Some(file_name);
    pointer.content_type = Some(content_type.to_owned());
    Ok(pointer)
}

/// Uploads an encrypted blob with one onion v4 `POST /file`; the file's URL on `server`.
pub async fn upload_blob(
    client: &OnionClient,
    server: &FileServer,
    blob: Vec<u8>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<FileUrl, AttachmentError> {
    Ok(upload_blob_expiring(client, server, blob, progress)
        .await?
        .0)
}

/// [`upload_blob`], also returning when the server will drop the file (Unix seconds).
pub async fn upload_blob_expiring(
    client: &OnionClient,
    server: &FileServer,
    blob: Vec<u8>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(FileUrl, f64), AttachmentError> {
    let total = blob.len() as u64;
    progress(Progress {
        stage: Stage::Upload,
        done: 0,
        total,
    });
    let mut headers = Headers::new();
    headers.insert(
        "Content-Type".to_owned(),
        "application/octet-stream".to_owned(),
    );
    let request = V4Request::new(HttpMethod::Post, "/file", headers, Some(blob))
        .map_err(|e| AttachmentError::Reply(e.to_string()))?;
    let response = client
        .request_server_with_timeout(
            &server.destination,
            &request,
            crate::timeouts::FILE_TRANSFER,
        )
        .await
        .map_err(AttachmentError::Network)?;
    // 413 carries the server's limit in words.
    if response.code != 200 {
        return Err(AttachmentError::Server {
            status: response.code,
            reason: reason(&response.body),
        });
    }
    let reply: UploadResponse = serde_json::from_slice(&response.body)
        .map_err(|e| AttachmentError::Reply(format!("upload reply: {e}")))?;
    let id = reply
        .file_id()
        .map_err(|_| AttachmentError::Reply("upload reply: invalid file id".into()))?;
    progress(Progress {
        stage: Stage::Upload,
        done: total,
        total,
    });
    let destination = &server.destination;
    let url = FileUrl {
        protocol: destination.protocol,
        host: destination.host.clone(),
        port: destination
            .port
            .filter(|&p| p != destination.protocol.default_port()),
        id,
        server_ed25519: Some(server.ed25519),
        stream: false,
    };
    Ok((url, reply.expires))
}

/// A MIME type from a file name's extension (what the recipient's client uses to show it).
pub fn content_type(file_name: &str) -> &'static str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" => "audio/ogg",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}
