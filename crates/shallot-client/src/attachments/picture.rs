//! Profile pictures through the file server (attachments spec §1.3, §4 "Set a profile
//! picture"): encrypted with L-P (AES-256-GCM under a random 32-byte profile key, as current
//! Session clients write them), uploaded and fetched with one onion v4 request each, and kept
//! alive with `POST /file/{id}/extend`. Received pictures may use L-P or S (`d` in the URL).

use shallot_proto::attachment::padding::stream_encrypted_len;
use shallot_proto::attachment::pointer::resolve_profile_picture;
use shallot_proto::attachment::server_api::FileInfo;
use shallot_proto::attachment::{FileUrl, ProfileKey};
use shallot_proto::onion::HttpMethod;
use shallot_proto::X25519Pub;

use super::AttachmentError;
use crate::onion_client::OnionClient;

/// Largest picture we upload or accept, in bytes of image (Session desktop's avatar limit,
/// `maxAvatarDetails.maxSize`, 5 MB; desktop re-encodes avatars far below it).
pub const MAX_PICTURE_SIZE: usize = 5_000_000;

/// Largest picture blob we download: a [`MAX_PICTURE_SIZE`] image in the larger of the two
/// schemes (S pads; L-P adds 28 bytes).
pub fn max_picture_blob() -> u64 {
    stream_encrypted_len(MAX_PICTURE_SIZE as u64)
}

/// Encrypts `image` with a fresh profile key: (key, `iv ‖ ciphertext ‖ tag`).
pub fn encrypt_picture(image: &[u8]) -> Result<(ProfileKey, Vec<u8>), AttachmentError> {
    check_size(image.len() as u64)?;
    let mut rng = rand::rngs::OsRng;
    let key = ProfileKey::generate(&mut rng);
    let blob = key.encrypt(image, &mut rng);
    Ok((key, blob))
}

/// Refuses empty images and images over [`MAX_PICTURE_SIZE`].
pub fn check_size(len: u64) -> Result<(), AttachmentError> {
    if len == 0 {
        return Err(AttachmentError::Reply(
            "a profile picture cannot be empty".into(),
        ));
    }
    if len > MAX_PICTURE_SIZE as u64 {
        return Err(AttachmentError::TooLarge {
            size: len,
            max: MAX_PICTURE_SIZE as u64,
        });
    }
    Ok(())
}

/// Checks a downloaded or cached picture blob against its reference and decrypts it (S if the
/// URL has `d`, else L-P). Any failure means the blob is not the picture the key names.
pub fn decrypt_picture(url: &str, key: &[u8], blob: Vec<u8>) -> Result<Vec<u8>, AttachmentError> {
    let (_, decryption) = resolve_profile_picture(url, key).map_err(AttachmentError::Pointer)?;
    let image = decryption
        .decrypt(blob)
        .map_err(AttachmentError::Rejected)?;
    check_size(image.len() as u64)?;
    Ok(image)
}

/// Fetches the blob at `url` (`default_server`: the X25519 key for a URL without `#p=`) with
/// one onion v4 `GET`; refuses one larger than [`max_picture_blob`]. 404 is
/// [`AttachmentError::Expired`].
pub async fn fetch_picture(
    client: &OnionClient,
    url: &FileUrl,
    default_server: X25519Pub,
) -> Result<Vec<u8>, AttachmentError> {
    let body = super::download::get_file(client, url, default_server).await?;
    let max = max_picture_blob();
    if body.len() as u64 > max {
        return Err(AttachmentError::TooLarge {
            size: body.len() as u64,
            max,
        });
    }
    Ok(body)
}

/// Asks the server holding `url` to keep the file longer (`POST /file/{id}/extend`, no TTL
/// header: the server's default lifetime from now). 404 is [`AttachmentError::Expired`].
pub async fn extend_file(
    client: &OnionClient,
    url: &FileUrl,
    default_server: X25519Pub,
) -> Result<FileInfo, AttachmentError> {
    let endpoint = format!("/file/{}/extend", url.id.as_str());
    let body =
        super::download::file_request(client, url, default_server, HttpMethod::Post, endpoint)
            .await?;
    serde_json::from_slice(&body).map_err(|e| AttachmentError::Reply(format!("extend reply: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_picture_round_trips_and_a_changed_blob_or_key_is_refused() {
        let url = "http://files.example/file/abc";
        let (key, blob) = encrypt_picture(b"a tiny picture").unwrap();
        let image = decrypt_picture(url, key.as_bytes(), blob.clone()).unwrap();
        assert_eq!(image, b"a tiny picture");
        let mut bad = blob.clone();
        bad[14] ^= 1;
        let err = decrypt_picture(url, key.as_bytes(), bad).unwrap_err();
        assert!(matches!(err, AttachmentError::Rejected(_)), "{err}");
        assert!(decrypt_picture(url, &[0; 32], blob.clone()).is_err());
        assert!(decrypt_picture(url, &[0; 31], blob).is_err());
        assert!(encrypt_picture(b"").is_err());
        assert!(matches!(
            check_size(MAX_PICTURE_SIZE as u64 + 1),
            Err(AttachmentError::TooLarge { .. })
        ));
    }
}
