//! Sending side: read a file in pieces, encrypt it with L-A (padded, as current clients do for
//! message attachments) straight into one onion v4 `POST /file`, and build the pointer.

use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use shallot_proto::attachment::legacy::{legacy_blob_len, LegacySealed};
use shallot_proto::attachment::server_api::UploadResponse;
use shallot_proto::attachment::{
    AttachmentPointer, FileUrl, LegacyEncryptor, LegacyKey, LegacyPadding,
};
use shallot_proto::onion::{Headers, HttpMethod, V4Request, V4Response};

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
        let (len, file_name) = measure(path)?;
        // `len` is at most 10 MB, so it fits.
        let len = usize::try_from(len).unwrap_or(MAX_ATTACHMENT_SIZE);
        let key = LegacyKey::generate(&mut rand::rngs::OsRng);
        let mut blob = vec![0; legacy_blob_len(len, LegacyPadding::Padded)];
        let progress = std::cell::RefCell::new(progress);
        let sealed = encrypt_into(path, &key, len, &mut blob, &|p| (progress.borrow_mut())(p))?;
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
///
/// The file is read in pieces and encrypted straight into the onion request around it, so the
/// encrypted file is held once, as part of that request; a retry on another path reads and
/// encrypts it again (same key, new IV) rather than keeping a copy.
pub async fn upload_file(
    client: &OnionClient,
    server: &FileServer,
    path: &Path,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<AttachmentPointer, AttachmentError> {
    let (len, file_name) = measure(path)?;
    // At most 10 MB: it fits.
    let plain_len = usize::try_from(len).unwrap_or(MAX_ATTACHMENT_SIZE);
    let blob_len = legacy_blob_len(plain_len, LegacyPadding::Padded);
    let key = LegacyKey::generate(&mut rand::rngs::OsRng);
    // What the last attempt's encryption gave (the one that reached the server), or why it
    // could not read the file.
    let sealed: Mutex<Option<Result<LegacySealed, AttachmentError>>> = Mutex::new(None);
    let progress = Mutex::new(progress);
    let report = |p: Progress| (progress.lock().unwrap_or_else(PoisonError::into_inner))(p);
    let request = V4Request::new(HttpMethod::Post, "/file", octet_stream(), None)
        .map_err(|e| AttachmentError::Reply(e.to_string()))?;
    let response = client
        .request_server_writing_body(
            &server.destination,
            (&request, blob_len),
            |out| {
                let result = encrypt_into(path, &key, plain_len, out, &report);
                let failed = result.as_ref().err().map(ToString::to_string);
                *sealed.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                failed.map_or(Ok(()), Err)
            },
            crate::timeouts::FILE_TRANSFER,
        )
        .await;
    let sealed = sealed.into_inner().unwrap_or_else(PoisonError::into_inner);
    let response = match (response, sealed) {
        (Err(_), Some(Err(unreadable))) => return Err(unreadable),
        (Err(e), _) => return Err(AttachmentError::Network(e)),
        (Ok(response), Some(Ok(sealed))) => (response, sealed),
        (Ok(_), _) => return Err(AttachmentError::Reply("no upload was built".into())),
    };
    let (response, sealed) = response;
    let progress = progress
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    progress(Progress {
        stage: Stage::Upload,
        done: blob_len as u64,
        total: blob_len as u64,
    });
    let (url, _) = uploaded(server, &response)?;
    let content_type = content_type(&file_name);
    let mut pointer =
        AttachmentPointer::legacy(&url, &key, &sealed).map_err(AttachmentError::Pointer)?;
    pointer.file_name = Some(file_name);
    pointer.content_type = Some(content_type.to_owned());
    Ok(pointer)
}

/// The size of the file at `path`, refused if over [`MAX_ATTACHMENT_SIZE`] before it is read,
/// and the name the recipient sees (the file's own name).
fn measure(path: &Path) -> Result<(u64, String), AttachmentError> {
    let len = std::fs::metadata(path)
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
    Ok((len, file_name))
}

/// Reads `path` (`len` bytes) in pieces and encrypts it with `key` (L-A, padded, a fresh IV)
/// into `out`, which is exactly the blob's length; the pointer's digest and size. A file that
/// changed size since it was measured is refused rather than sent cut or padded wrong.
fn encrypt_into(
    path: &Path,
    key: &LegacyKey,
    len: usize,
    out: &mut [u8],
    progress: &dyn Fn(Progress),
) -> Result<LegacySealed, AttachmentError> {
    let changed = || AttachmentError::Io {
        action: "send",
        path: path.to_owned(),
        source: std::io::Error::other("the file changed while it was being sent"),
    };
    let mut file = std::fs::File::open(path).map_err(AttachmentError::io("open", path))?;
    let mut encryptor = LegacyEncryptor::new(key, LegacyPadding::Padded, &mut rand::rngs::OsRng);
    let mut buffer = vec![0; CHUNK];
    let mut ready = Vec::with_capacity(CHUNK + 64);
    let (mut read, mut written) = (0usize, 0usize);
    let total = len as u64;
    let mut put = |ready: &mut Vec<u8>, written: &mut usize| {
        let end = *written + ready.len();
        let place = out.get_mut(*written..end).ok_or_else(changed)?;
        place.copy_from_slice(ready);
        *written = end;
        ready.clear();
        Ok::<(), AttachmentError>(())
    };
    progress(Progress {
        stage: Stage::Encrypt,
        done: 0,
        total,
    });
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(AttachmentError::io("read", path))?;
        if n == 0 {
            break;
        }
        read += n;
        if read > len {
            return Err(changed());
        }
        encryptor.update(&buffer[..n], &mut ready);
        put(&mut ready, &mut written)?;
        progress(Progress {
            stage: Stage::Encrypt,
            done: read as u64,
            total,
        });
    }
    let sealed = encryptor.finish(&mut ready);
    put(&mut ready, &mut written)?;
    if read != len || written != out.len() {
        return Err(changed());
    }
    Ok(sealed)
}

fn octet_stream() -> Headers {
    let mut headers = Headers::new();
    headers.insert(
        "Content-Type".to_owned(),
        "application/octet-stream".to_owned(),
    );
    headers
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
    let request = V4Request::new(HttpMethod::Post, "/file", octet_stream(), Some(blob))
        .map_err(|e| AttachmentError::Reply(e.to_string()))?;
    let response = client
        .request_server_with_timeout(
            &server.destination,
            &request,
            crate::timeouts::FILE_TRANSFER,
        )
        .await
        .map_err(AttachmentError::Network)?;
    let uploaded = uploaded(server, &response)?;
    progress(Progress {
        stage: Stage::Upload,
        done: total,
        total,
    });
    Ok(uploaded)
}

/// The file's URL on `server` and when the server will drop it (Unix seconds), from the
/// server's answer to an upload.
fn uploaded(server: &FileServer, response: &V4Response) -> Result<(FileUrl, f64), AttachmentError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.
    use super::*;
    use shallot_proto::attachment::legacy::decrypt_legacy;

    /// What each attempt of an upload writes into its onion: the file's blob, which decrypts
    /// back to the file; a file whose size changed since it was measured is refused.
    #[test]
    fn a_file_encrypted_into_place_decrypts_and_a_changed_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let key = LegacyKey::generate(&mut rand::rngs::OsRng);
        let blob = |len| vec![0u8; legacy_blob_len(len, LegacyPadding::Padded)];

        let mut out = blob(data.len());
        let sealed = encrypt_into(&path, &key, data.len(), &mut out, &|_| {}).unwrap();
        let back = decrypt_legacy(&out, key.as_bytes(), Some(&sealed.digest), sealed.size);
        assert!(back.unwrap() == data);

        for len in [data.len() - 1, data.len() + 1] {
            let err = encrypt_into(&path, &key, len, &mut blob(len), &|_| {}).unwrap_err();
            assert!(err.to_string().contains("changed while"), "{err}");
        }
    }
}
