//! Receiving side: check the pointer, fetch the blob with one onion v4 `GET /file/{id}`, and
//! decrypt it in pieces into a temporary file next to the destination, which becomes the
//! destination only once every check (MAC, digest, padding, size) has passed.

use std::io::Write;
use std::path::Path;

use shallot_proto::attachment::{AttachmentPointer, Decryption, FileUrl, MAX_BLOB_SIZE};
use shallot_proto::onion::{Headers, HttpMethod, V4Request};
use shallot_proto::X25519Pub;

use super::{reason, AttachmentError, Progress, Stage, CHUNK, MAX_ATTACHMENT_SIZE};
use crate::onion_client::OnionClient;

/// Downloads the attachment `pointer` names through an onion path of `client` and saves the
/// checked plaintext at `out` (replacing it). `default_server` is the X25519 key used when the
/// URL names no server key (`#p=`). On any error nothing is written at `out`. Returns the
/// number of bytes saved.
pub async fn download(
    client: &OnionClient,
    pointer: &AttachmentPointer,
    default_server: X25519Pub,
    out: &Path,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, AttachmentError> {
    let resolved = pointer.resolve().map_err(AttachmentError::Pointer)?;
    if let Some(size) = resolved.decryption.size() {
        if size > MAX_ATTACHMENT_SIZE as u64 {
            return Err(AttachmentError::TooLarge {
                size,
                max: MAX_ATTACHMENT_SIZE as u64,
            });
        }
    }
    let expected = resolved.decryption.size().unwrap_or(0);
    progress(Progress {
        stage: Stage::Download,
        done: 0,
        total: expected,
    });
    let blob = get_file(client, &resolved.url, default_server).await?;
    if blob.len() > MAX_BLOB_SIZE {
        return Err(AttachmentError::TooLarge {
            size: blob.len() as u64,
            max: MAX_BLOB_SIZE as u64,
        });
    }
    progress(Progress {
        stage: Stage::Download,
        done: expected,
        total: expected,
    });
    let out = out.to_owned();
    let decryption = resolved.decryption;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let work = tokio::task::spawn_blocking(move || decrypt_to_file(&decryption, &blob, &out, &tx));
    while let Some(p) = rx.recv().await {
        progress(p);
    }
    work.await
        .map_err(|e| AttachmentError::Reply(format!("decryption task failed: {e}")))?
}

/// Decrypts `blob` in pieces into a private temporary file beside `out`, and renames it to `out`
/// once every check has passed (on any error the temporary file is removed). Bytes saved.
fn decrypt_to_file(
    decryption: &Decryption,
    blob: &[u8],
    out: &Path,
    progress: &tokio::sync::mpsc::UnboundedSender<Progress>,
) -> Result<u64, AttachmentError> {
    let mut decryptor = decryption.decryptor();
    let total = blob.len() as u64;
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .map_err(AttachmentError::io("create a temporary file in", &dir))?;
    let mut plain = Vec::with_capacity(CHUNK + 64);
    let mut written = 0u64;
    for (i, piece) in blob.chunks(CHUNK).enumerate() {
        plain.clear();
        decryptor
            .update(piece, &mut plain)
            .map_err(AttachmentError::Rejected)?;
        temp.write_all(&plain)
            .map_err(AttachmentError::io("write", temp.path()))?;
        written += plain.len() as u64;
        let _ = progress.send(Progress {
            stage: Stage::Decrypt,
            done: ((i + 1) * CHUNK).min(blob.len()) as u64,
            total,
        });
    }
    plain.clear();
    decryptor
        .finish(&mut plain)
        .map_err(AttachmentError::Rejected)?;
    temp.write_all(&plain)
        .map_err(AttachmentError::io("write", temp.path()))?;
    written += plain.len() as u64;
    temp.as_file()
        .sync_all()
        .map_err(AttachmentError::io("write", temp.path()))?;
    temp.persist(out)
        .map_err(|e| AttachmentError::io("save", out)(e.error))?;
    Ok(written)
}

/// The blob at `url` (`default_server`: the X25519 key for a URL without `#p=`), fetched with one
/// onion v4 `GET` through `client`'s path. 404 is [`AttachmentError::Expired`]; another failure
/// status carries the server's reason.
pub(crate) async fn get_file(
    client: &OnionClient,
    url: &FileUrl,
    default_server: X25519Pub,
) -> Result<Vec<u8>, AttachmentError> {
    file_request(
        client,
        url,
        default_server,
        HttpMethod::Get,
        url.download_endpoint(),
    )
    .await
}

/// One bodiless onion v4 request about the file at `url` to the server holding it (download,
/// extend): the answer's body on 200; 404 is [`AttachmentError::Expired`]; another failure
/// status carries the server's reason.
pub(crate) async fn file_request(
    client: &OnionClient,
    url: &FileUrl,
    default_server: X25519Pub,
    method: HttpMethod,
    endpoint: String,
) -> Result<Vec<u8>, AttachmentError> {
    let destination = url
        .destination(default_server)
        .map_err(AttachmentError::ServerKey)?;
    let request = V4Request::new(method, endpoint, Headers::new(), None)
        .map_err(|e| AttachmentError::Reply(e.to_string()))?;
    let response = client
        .request_server_with_timeout(&destination, &request, crate::timeouts::FILE_TRANSFER)
        .await
        .map_err(AttachmentError::Network)?;
    match response.code {
        200 => Ok(response.body),
        404 => Err(AttachmentError::Expired),
        status => Err(AttachmentError::Server {
            status,
            reason: reason(&response.body),
        }),
    }
}
