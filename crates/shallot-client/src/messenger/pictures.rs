//! Profile pictures: setting and removing ours (uploaded through an onion path, named in our
//! UserProfile config and in every one-to-one message we send), keeping it alive on the file
//! server, and fetching ours or a contact's on demand into the cache beside the database.

use std::path::Path;

use shallot_proto::attachment::FileUrl;
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::SessionId;

use super::{Messenger, MessengerError};
use crate::attachments::picture::{
    check_size, decrypt_picture, encrypt_picture, extend_file, fetch_picture,
};
use crate::attachments::upload::upload_blob_expiring;
use crate::attachments::{AttachmentError, FileServer};
use crate::db::{Db, DbError, OwnProfile, PictureRef};

/// Keep-alive checks of our picture happen at most this often (desktop: every 2 hours).
pub const KEEP_ALIVE_INTERVAL_SECS: u64 = 2 * 60 * 60;

/// A picture under an id `/extend` does not serve is uploaded again after this (desktop: 12
/// days, under every known file server lifetime).
pub const REUPLOAD_AFTER_SECS: u64 = 12 * 24 * 60 * 60;

/// Length of a content-hash file id, the only kind `/extend` serves.
const CONTENT_ID_LEN: usize = 44;

/// What [`Messenger::keep_picture_alive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepAlive {
    /// We have no picture.
    NoPicture,
    /// Checked recently, and not near half its lifetime.
    NotDue,
    /// The file server keeps it until `expires` (Unix seconds).
    Extended {
        /// New expiry.
        expires: u64,
    },
    /// The file was gone: uploaded again from the cache, under `url` (the same URL on a
    /// content-addressed server); our config and contacts get the new reference.
    Reuploaded {
        /// Its URL now.
        url: String,
    },
}

/// Whether our picture's keep-alive is due at `now` (seconds): never more often than every
/// [`KEEP_ALIVE_INTERVAL_SECS`]; then when its lifetime is half over, or unknown.
pub fn keep_alive_due(own: &OwnProfile, now: u64) -> bool {
    if own.picture.is_none() || now < own.checked_at.saturating_add(KEEP_ALIVE_INTERVAL_SECS) {
        return false;
    }
    if own.expires_at == 0 || own.uploaded_at == 0 || own.expires_at <= own.uploaded_at {
        return true;
    }
    let half = (own.expires_at - own.uploaded_at) / 2;
    now >= own.uploaded_at.saturating_add(half)
}

/// A picture as [`Messenger::profile_picture`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// The image bytes (checked: they decrypted under the profile key).
    pub image: Vec<u8>,
    /// Whether it was downloaded now (else it came from the cache).
    pub downloaded: bool,
}

fn float_secs(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        // Whole seconds of a reply's timestamp; nothing here needs more.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = secs as u64;
        whole
    } else {
        0
    }
}

/// Writes `blob` as `owner`'s cached picture at `url` (a temporary file renamed into place),
/// and records it; if the picture changed meanwhile the file is dropped.
fn cache_blob(db: &Db, owner: Option<&SessionId>, url: &str, blob: &[u8]) -> Result<(), DbError> {
    let dir = db.pictures_dir()?;
    let path = db.picture_cache_path(owner, url);
    let io = |e: std::io::Error| DbError::Corrupt(format!("cannot cache the picture: {e}"));
    let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    std::io::Write::write_all(&mut temp, blob).map_err(io)?;
    temp.persist(&path).map_err(|e| io(e.error))?;
    db.set_picture_cached(owner, url)?;
    Ok(())
}

impl Messenger {
    /// Sets our profile picture to the image at `path` (at most [`crate::attachments::picture::MAX_PICTURE_SIZE`] bytes,
    /// sent as it is: no re-encoding): encrypted under a fresh profile key, uploaded to
    /// `server` through an onion path, recorded (`p`/`q`/`t`) and pushed in our UserProfile
    /// config for our other devices, and sent with our messages from now on.
    pub async fn set_profile_picture(
        &self,
        path: &Path,
        server: &FileServer,
    ) -> Result<PictureRef, MessengerError> {
        let file = path.to_owned();
        let (key, blob) = tokio::task::spawn_blocking(move || {
            let io = |source| AttachmentError::Io {
                action: "read",
                path: file.clone(),
                source,
            };
            let len = std::fs::metadata(&file).map_err(io)?.len();
            check_size(len)?;
            let image = std::fs::read(&file).map_err(io)?;
            encrypt_picture(&image)
        })
        .await
        .map_err(|e| AttachmentError::Reply(format!("encryption task failed: {e}")))??;
        let (url, expires) =
            upload_blob_expiring(&self.client, server, blob.clone(), &mut |_| {}).await?;
        let now = self.client.clock().now_ms() / 1000;
        let picture = PictureRef {
            url: url.to_string(),
            key: key.as_bytes().to_vec(),
        };
        let reference = picture.clone();
        self.db
            .call(move |db| {
                let mut own = db.own_profile()?;
                own.picture = Some(reference.clone());
                own.picture_set_at = now;
                own.reupload_at = 0;
                own.uploaded_at = now;
                own.expires_at = float_secs(expires);
                own.checked_at = now;
                db.save_own_profile(&own)?;
                cache_blob(db, None, &reference.url, &blob)
            })
            .await?;
        self.sync_config(ConfigKind::UserProfile).await?;
        Ok(picture)
    }

    /// Removes our profile picture: our messages carry none from now on, and our other devices
    /// learn it through the UserProfile config. The file is left to expire on the server.
    pub async fn remove_profile_picture(&self) -> Result<(), MessengerError> {
        let now = self.client.clock().now_ms() / 1000;
        self.db
            .call(move |db| {
                let mut own = db.own_profile()?;
                own.picture = None;
                own.picture_set_at = now;
                own.reupload_at = 0;
                own.uploaded_at = 0;
                own.expires_at = 0;
                db.save_own_profile(&own)
            })
            .await?;
        self.sync_config(ConfigKind::UserProfile).await?;
        Ok(())
    }

    /// The picture of `owner` (`None`: ours) as last recorded: from the cache, else downloaded
    /// through an onion path (a URL without `#p=` means `server`), checked and decrypted, and
    /// cached (the blob, still encrypted; replacing the owner's previous file). A blob that
    /// does not decrypt under the key, or is over the size limit, is an error and nothing is
    /// cached; so is a picture the server no longer has ([`AttachmentError::Expired`]).
    pub async fn profile_picture(
        &self,
        owner: Option<&SessionId>,
        server: &FileServer,
    ) -> Result<Picture, MessengerError> {
        let who = owner.copied();
        let (reference, cached) = self
            .db
            .call(move |db| {
                let reference = match &who {
                    None => db.own_profile()?.picture,
                    Some(contact) => db.contact_picture(contact)?.and_then(|p| p.picture),
                };
                Ok::<_, DbError>((reference, db.cached_picture(who.as_ref())?))
            })
            .await?;
        let Some(reference) = reference else {
            return Err(MessengerError::Attachment(AttachmentError::NoPicture(
                match owner {
                    None => "you have no profile picture".into(),
                    Some(id) => format!("no profile picture is known for {id}"),
                },
            )));
        };
        if let Some(path) = cached {
            if let Ok(blob) = std::fs::read(&path) {
                if let Ok(image) = decrypt_picture(&reference.url, &reference.key, blob) {
                    return Ok(Picture {
                        image,
                        downloaded: false,
                    });
                }
            }
        }
        let url: FileUrl = reference.url.parse().map_err(|e| {
            AttachmentError::Pointer(shallot_proto::attachment::PointerError::Url(e))
        })?;
        let blob = fetch_picture(&self.client, &url, server.x25519()).await?;
        let image = decrypt_picture(&reference.url, &reference.key, blob.clone())?;
        let who = owner.copied();
        self.db
            .call(move |db| cache_blob(db, who.as_ref(), &reference.url, &blob))
            .await?;
        Ok(Picture {
            image,
            downloaded: true,
        })
    }

    /// Keeps our picture on the file server: when due ([`keep_alive_due`], or always with
    /// `force`), `POST /file/{id}/extend`; if the server no longer has it, uploads the cached
    /// blob again to `server` and records the result as the re-upload copy (`P`/`Q`/`T`),
    /// pushed to our other devices. Call it now and then (the CLI does on `send` and `inbox`).
    pub async fn keep_picture_alive(
        &self,
        server: &FileServer,
        force: bool,
    ) -> Result<KeepAlive, MessengerError> {
        let now = self.client.clock().now_ms() / 1000;
        let own = self.db.own_profile().await?;
        let Some(picture) = own.picture.clone() else {
            return Ok(KeepAlive::NoPicture);
        };
        if !force && !keep_alive_due(&own, now) {
            return Ok(KeepAlive::NotDue);
        }
        self.db
            .call(move |db| {
                let mut own = db.own_profile()?;
                own.checked_at = now;
                db.save_own_profile(&own)
            })
            .await?;
        let url: FileUrl = picture.url.parse().map_err(|e| {
            AttachmentError::Pointer(shallot_proto::attachment::PointerError::Url(e))
        })?;
        if url.id.as_str().len() != CONTENT_ID_LEN {
            // Not a content-hash id (Session's server also hands out numeric ids): `/extend`
            // answers 404 for those whether or not the file is there, so, as desktop does,
            // upload it again once it is 12 days old instead.
            let since = own.uploaded_at.max(own.picture_time());
            if now < since.saturating_add(REUPLOAD_AFTER_SECS) {
                return Ok(KeepAlive::NotDue);
            }
            return self.reupload_picture(picture, server, now).await;
        }
        match extend_file(&self.client, &url, server.x25519()).await {
            Ok(info) => {
                let expires = float_secs(info.expires);
                let uploaded = float_secs(info.uploaded).max(1);
                let same = picture.clone();
                self.db
                    .call(move |db| {
                        let mut own = db.own_profile()?;
                        if own.picture.as_ref() == Some(&same) {
                            own.expires_at = expires;
                            own.uploaded_at = uploaded;
                            db.save_own_profile(&own)?;
                        }
                        Ok::<_, DbError>(())
                    })
                    .await?;
                Ok(KeepAlive::Extended { expires })
            }
            Err(AttachmentError::Expired) => self.reupload_picture(picture, server, now).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Uploads our cached picture blob again (same key, same bytes) after the server lost it.
    async fn reupload_picture(
        &self,
        picture: PictureRef,
        server: &FileServer,
        now: u64,
    ) -> Result<KeepAlive, MessengerError> {
        let cached = self.db.call(|db| db.cached_picture(None)).await?;
        let blob = cached
            .and_then(|path| std::fs::read(path).ok())
            .filter(|blob| decrypt_picture(&picture.url, &picture.key, blob.clone()).is_ok())
            .ok_or_else(|| {
                MessengerError::Attachment(AttachmentError::NoPicture(
                    "your profile picture expired on the file server and no copy is kept \
                     here: set it again with `shallot profile --picture FILE`"
                        .into(),
                ))
            })?;
        let (url, expires) =
            upload_blob_expiring(&self.client, server, blob.clone(), &mut |_| {}).await?;
        let reference = PictureRef {
            url: url.to_string(),
            key: picture.key.clone(),
        };
        let new = reference.clone();
        self.db
            .call(move |db| {
                let mut own = db.own_profile()?;
                own.picture = Some(new.clone());
                own.reupload_at = now.max(own.picture_set_at + 1);
                own.uploaded_at = now;
                own.expires_at = float_secs(expires);
                own.checked_at = now;
                db.save_own_profile(&own)?;
                cache_blob(db, None, &new.url, &blob)
            })
            .await?;
        self.sync_config_logged(ConfigKind::UserProfile).await;
        Ok(KeepAlive::Reuploaded { url: reference.url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_is_due_at_half_the_lifetime_and_at_most_every_two_hours() {
        let picture = Some(PictureRef {
            url: "http://f/file/a".into(),
            key: vec![1; 32],
        });
        let day = 24 * 3600;
        let own = OwnProfile {
            picture,
            uploaded_at: 1_000_000,
            expires_at: 1_000_000 + 20 * day,
            checked_at: 1_000_000,
            ..OwnProfile::default()
        };
        assert!(!keep_alive_due(&own, 1_000_000 + 9 * day));
        assert!(keep_alive_due(&own, 1_000_000 + 10 * day));
        // Unknown lifetime (learned from another device): every two hours.
        let unknown = OwnProfile {
            expires_at: 0,
            ..own.clone()
        };
        assert!(!keep_alive_due(&unknown, 1_000_000 + 3600));
        assert!(keep_alive_due(&unknown, 1_000_000 + 2 * 3600));
        assert!(!keep_alive_due(&OwnProfile::default(), u64::MAX));
    }
}
