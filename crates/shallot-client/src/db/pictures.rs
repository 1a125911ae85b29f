//! Profile pictures: ours (in the sealed `profile` snapshot, beside the display name) and each
//! contact's (sealed JSON in `conversations.picture`, schema step 8), and the on-disk cache of
//! downloaded pictures in `pictures/` beside the database.
//!
//! The cache holds each picture as downloaded: the blob still encrypted with its profile key
//! (which is sealed in the database), checked to decrypt before it was kept. File names are a
//! BLAKE2b keyed by the database key over (owner, URL), so the directory reveals neither. A
//! contact has at most one cached file: recording a new picture deletes the old one.

use std::path::PathBuf;

use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::Blake2bMac;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use shallot_proto::SessionId;
use zeroize::Zeroizing;

use super::{aad, Db, DbError};

/// The cache directory's name, beside `client.db`.
pub const PICTURES_DIR: &str = "pictures";

/// The key naming cache files, derived from the database key.
pub(super) fn name_key(db_key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut mac = <Blake2bMac<blake2::digest::consts::U32> as Mac>::new_from_slice(db_key)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid BLAKE2b key length"));
    mac.update(b"profile picture cache names");
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// A profile picture reference: the file's URL and the 32-byte key it is encrypted with
/// (`profilePicture` + `profileKey` in messages, `p` + `q` in configs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureRef {
    /// The download URL (with its `#p=`/`d` fragment).
    pub url: String,
    /// The profile key.
    #[serde(with = "crate::config_sync::hex_bytes")]
    pub key: Vec<u8>,
}

impl std::fmt::Debug for PictureRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PictureRef")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Our own profile: what goes out with our messages and into our UserProfile config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnProfile {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The current picture (the re-upload copy when `reupload_at > picture_set_at`).
    #[serde(default)]
    pub picture: Option<PictureRef>,
    /// When the picture was last set or removed on purpose (config `t`), Unix seconds.
    #[serde(default)]
    pub picture_set_at: u64,
    /// When a keep-alive last re-uploaded it (config `T`), Unix seconds; 0 if never.
    #[serde(default)]
    pub reupload_at: u64,
    /// When the file server said the current file was (re)stored, Unix seconds; 0 if unknown
    /// (a picture learned from another device).
    #[serde(default)]
    pub uploaded_at: u64,
    /// When the file server will drop it, Unix seconds; 0 if unknown.
    #[serde(default)]
    pub expires_at: u64,
    /// The last keep-alive attempt, Unix seconds.
    #[serde(default)]
    pub checked_at: u64,
}

impl OwnProfile {
    /// The time the current picture dates from (`t`, or `T` for a re-upload), seconds.
    pub fn picture_time(&self) -> u64 {
        self.picture_set_at.max(self.reupload_at)
    }
}

/// A contact's profile picture as their messages said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPicture {
    /// The picture (`None`: they removed it).
    pub picture: Option<PictureRef>,
    /// When they set it (their `lastProfileUpdateSeconds`, else the message's time), seconds.
    pub updated: u64,
    /// The cached file's name in [`PICTURES_DIR`], once downloaded.
    pub cached: Option<String>,
}

/// The snapshot our own profile lives in.
const OWN: &str = "profile";

impl Db {
    /// Our own profile (default until something is set).
    pub fn own_profile(&self) -> Result<OwnProfile, DbError> {
        Ok(self.load_snapshot(OWN)?.unwrap_or_default())
    }

    /// Saves our own profile. If its picture changed, the cached copy of the old one is deleted.
    pub fn save_own_profile(&self, profile: &OwnProfile) -> Result<(), DbError> {
        let old = self.own_profile()?;
        if old.picture != profile.picture {
            if let Some(old) = &old.picture {
                self.remove_cached(&self.cache_name(None, &old.url));
            }
        }
        let json = serde_json::to_vec(profile).map_err(|_| DbError::Corrupt(OWN.into()))?;
        self.save_snapshot(OWN, &json)
    }

    /// Our own display name, sent with our messages (`None` until set).
    pub fn profile_name(&self) -> Result<Option<String>, DbError> {
        Ok(self.own_profile()?.name)
    }

    /// Sets our own display name (the rest of the profile stays).
    pub fn set_profile_name(&self, name: &str) -> Result<(), DbError> {
        let mut profile = self.own_profile()?;
        profile.name = Some(name.to_owned());
        self.save_own_profile(&profile)
    }

    /// A contact's recorded picture, if their messages ever carried a profile.
    pub fn contact_picture(&self, contact: &SessionId) -> Result<Option<ContactPicture>, DbError> {
        let id = contact.to_string();
        let sealed: Option<Option<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT picture FROM conversations WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(sealed) = sealed.flatten() else {
            return Ok(None);
        };
        let json = self.open_value(&aad("conversations", "picture", &id), &sealed)?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|_| DbError::Corrupt("conversations.picture".into()))
    }

    fn save_contact_picture(
        &self,
        contact: &SessionId,
        picture: &ContactPicture,
    ) -> Result<(), DbError> {
        let id = contact.to_string();
        let json = serde_json::to_vec(picture)
            .map_err(|_| DbError::Corrupt("conversations.picture".into()))?;
        let sealed = self.seal(&aad("conversations", "picture", &id), &json);
        self.conn.execute(
            "UPDATE conversations SET picture = ?2 WHERE id = ?1",
            params![id, sealed],
        )?;
        Ok(())
    }

    /// Records the picture a message from `contact` carried (`None`: its profile had none),
    /// set at `updated` seconds. Only for a conversation we have; an update older than the one
    /// recorded is ignored, and the same picture again changes nothing. A different picture
    /// replaces the old one and deletes its cached file. Whether anything changed.
    pub fn record_contact_picture(
        &self,
        contact: &SessionId,
        picture: Option<PictureRef>,
        updated: u64,
    ) -> Result<bool, DbError> {
        if self.conversation_state(contact)?.is_none() {
            return Ok(false);
        }
        let old = self.contact_picture(contact)?.unwrap_or_default();
        if updated < old.updated || old.picture == picture {
            return Ok(false);
        }
        if let Some(name) = &old.cached {
            self.remove_cached(name);
        }
        self.save_contact_picture(
            contact,
            &ContactPicture {
                picture,
                updated,
                cached: None,
            },
        )?;
        Ok(true)
    }

    /// The cache file for the picture at `url` of `owner` (`None`: us). Not created here.
    pub fn picture_cache_path(&self, owner: Option<&SessionId>, url: &str) -> PathBuf {
        self.pictures.join(self.cache_name(owner, url))
    }

    /// The cached blob of `owner`'s current picture (`None`: ours), if it is cached.
    pub fn cached_picture(&self, owner: Option<&SessionId>) -> Result<Option<PathBuf>, DbError> {
        let (url, cached) = match owner {
            None => match self.own_profile()?.picture {
                Some(p) => (p.url, true),
                None => return Ok(None),
            },
            Some(contact) => match self.contact_picture(contact)? {
                Some(ContactPicture {
                    picture: Some(p),
                    cached,
                    ..
                }) => (p.url, cached.is_some()),
                _ => return Ok(None),
            },
        };
        let path = self.picture_cache_path(owner, &url);
        Ok((cached && path.is_file()).then_some(path))
    }

    /// Notes that `owner`'s picture at `url` is now cached at [`Self::picture_cache_path`].
    /// If the picture changed meanwhile the file is deleted instead; whether it was kept.
    pub fn set_picture_cached(
        &self,
        owner: Option<&SessionId>,
        url: &str,
    ) -> Result<bool, DbError> {
        let name = self.cache_name(owner, url);
        let kept = match owner {
            None => self.own_profile()?.picture.is_some_and(|p| p.url == url),
            Some(contact) => match self.contact_picture(contact)? {
                Some(mut record) if record.picture.as_ref().is_some_and(|p| p.url == url) => {
                    record.cached = Some(name.clone());
                    self.save_contact_picture(contact, &record)?;
                    true
                }
                _ => false,
            },
        };
        if !kept {
            self.remove_cached(&name);
        }
        Ok(kept)
    }

    /// The cache directory (created if missing).
    pub fn pictures_dir(&self) -> Result<PathBuf, DbError> {
        std::fs::create_dir_all(&self.pictures)
            .map_err(|e| DbError::Corrupt(format!("cannot create {PICTURES_DIR}/: {e}")))?;
        Ok(self.pictures.clone())
    }

    fn cache_name(&self, owner: Option<&SessionId>, url: &str) -> String {
        let mut mac = <Blake2bMac<U16> as Mac>::new_from_slice(self.picture_names.as_ref())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid BLAKE2b key length"));
        mac.update(
            owner
                .map(SessionId::to_string)
                .unwrap_or_default()
                .as_bytes(),
        );
        mac.update(b"\0");
        mac.update(url.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn remove_cached(&self, name: &str) {
        match std::fs::remove_file(self.pictures.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("could not delete a cached profile picture: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::db::ConversationState;
    use shallot_proto::Identity;

    fn picture(n: u8) -> PictureRef {
        PictureRef {
            url: format!("http://files.example/file/{n}"),
            key: vec![n; 32],
        }
    }

    #[test]
    fn a_contacts_picture_is_recorded_replaced_and_its_cache_bounded_to_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::from_seed([1; 32]);
        let alice = Identity::from_seed([2; 32]).session_id();
        let stranger = Identity::from_seed([3; 32]).session_id();
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        // Only for a conversation we have.
        assert!(!db
            .record_contact_picture(&stranger, Some(picture(1)), 10)
            .unwrap());
        assert_eq!(db.contact_picture(&stranger).unwrap(), None);
        db.set_conversation_state(&alice, ConversationState::Accepted, 1)
            .unwrap();
        assert!(db
            .record_contact_picture(&alice, Some(picture(1)), 10)
            .unwrap());
        // The same again, or an older update, changes nothing.
        assert!(!db
            .record_contact_picture(&alice, Some(picture(1)), 20)
            .unwrap());
        assert!(!db
            .record_contact_picture(&alice, Some(picture(2)), 5)
            .unwrap());
        assert_eq!(db.cached_picture(Some(&alice)).unwrap(), None);

        // Cached: one file, under a name that is not the URL.
        let path = db.picture_cache_path(Some(&alice), &picture(1).url);
        std::fs::create_dir_all(db.pictures_dir().unwrap()).unwrap();
        std::fs::write(&path, b"blob one").unwrap();
        assert!(db
            .set_picture_cached(Some(&alice), &picture(1).url)
            .unwrap());
        assert_eq!(db.cached_picture(Some(&alice)).unwrap(), Some(path.clone()));
        assert!(!path.to_string_lossy().contains("files.example"));
        assert_eq!(path.parent().unwrap(), dir.path().join(PICTURES_DIR));

        // A newer picture replaces it and deletes the cached file; a download of the old one
        // finishing late is not kept.
        assert!(db
            .record_contact_picture(&alice, Some(picture(2)), 30)
            .unwrap());
        assert!(!path.exists());
        assert_eq!(db.cached_picture(Some(&alice)).unwrap(), None);
        std::fs::write(&path, b"late").unwrap();
        assert!(!db
            .set_picture_cached(Some(&alice), &picture(1).url)
            .unwrap());
        assert!(!path.exists());
        // Removed: the record stays (with its time), without a picture.
        assert!(db.record_contact_picture(&alice, None, 40).unwrap());
        let record = db.contact_picture(&alice).unwrap().unwrap();
        assert_eq!((record.picture, record.updated), (None, 40));

        // Survives reopening; the key is sealed (not in the file in plain).
        db.record_contact_picture(&alice, Some(picture(7)), 50)
            .unwrap();
        drop(db);
        let raw = std::fs::read(dir.path().join(crate::db::DB_FILE)).unwrap();
        assert!(!raw.windows(32).any(|w| w == [7u8; 32]));
        assert!(!raw.windows(13).any(|w| w == b"files.example"));
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        assert_eq!(
            db.contact_picture(&alice).unwrap().unwrap().picture,
            Some(picture(7))
        );
        assert_eq!(db.schema_version().unwrap(), crate::db::MIGRATIONS.len());
    }

    #[test]
    fn our_profile_keeps_the_name_and_picture_together_and_reads_the_old_form() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::from_seed([1; 32]);
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        // What earlier versions wrote: just the name.
        db.save_snapshot("profile", br#"{"name":"Alice"}"#).unwrap();
        assert_eq!(db.profile_name().unwrap().as_deref(), Some("Alice"));
        let mut own = db.own_profile().unwrap();
        own.picture = Some(picture(1));
        own.picture_set_at = 100;
        db.save_own_profile(&own).unwrap();
        let path = db.picture_cache_path(None, &picture(1).url);
        std::fs::create_dir_all(db.pictures_dir().unwrap()).unwrap();
        std::fs::write(&path, b"ours").unwrap();
        assert!(db.set_picture_cached(None, &picture(1).url).unwrap());
        assert_eq!(db.cached_picture(None).unwrap(), Some(path.clone()));
        // Changing the name keeps the picture.
        db.set_profile_name("Alice B.").unwrap();
        assert_eq!(db.own_profile().unwrap().picture, Some(picture(1)));
        // A new picture drops the old one's cache.
        own = db.own_profile().unwrap();
        own.picture = Some(picture(2));
        db.save_own_profile(&own).unwrap();
        assert!(!path.exists());
        assert_eq!(db.own_profile().unwrap().name.as_deref(), Some("Alice B."));
    }
}
