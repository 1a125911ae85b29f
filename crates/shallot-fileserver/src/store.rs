//! Blobs on disk under their content id (`<data>/files/<id>`), metadata in SQLite
//! (`<data>/files.sqlite`): size, upload time, expiry. Identical uploads share one file whose
//! expiry only ever moves later. Reads refuse expired files at once; [`Store::purge_expired`]
//! deletes them.
//!
//! Every method blocks (file and database I/O): async callers run it on a blocking thread.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand_core::{OsRng, RngCore};
use rusqlite::{params, Connection, OptionalExtension};
use shallot_proto::attachment::{content_id, FileId};

/// Schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_ms);
";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the configured quota) has no room for the upload.
    #[error("no space left for the upload")]
    Full,
    /// A file operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The database was written by a newer version.
    #[error("database schema version {0} is newer than this program understands")]
    NewerSchema(i64),
    /// The lock was poisoned by a panic in another request.
    #[error("store lock poisoned")]
    Poisoned,
}

/// What the server knows about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Blob size in bytes.
    pub size: u64,
    /// When it was last uploaded, Unix ms.
    pub uploaded_ms: u64,
    /// When it expires, Unix ms.
    pub expires_ms: u64,
}

/// The blob and metadata store.
pub struct Store {
    db: Mutex<Connection>,
    files: PathBuf,
    max_total_bytes: Option<u64>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path, max_total_bytes: Option<u64>) -> Result<Self, StoreError> {
        let files = dir.join("files");
        fs::create_dir_all(&files).map_err(io("creating the files directory"))?;
        let db = Connection::open(dir.join("files.sqlite"))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = db.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        db.execute_batch(SCHEMA)?;
        db.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self {
            db: Mutex::new(db),
            files,
            max_total_bytes,
        })
    }

    /// Stores a blob for `ttl_ms` from `now_ms`; returns its id and metadata. Re-uploading the
    /// same bytes refreshes `uploaded` and never shortens the expiry.
    pub fn put(
        &self,
        blob: &[u8],
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<(FileId, FileMeta), StoreError> {
        let id = content_id(blob);
        let expires = now_ms.saturating_add(ttl_ms);
        let db = self.db.lock().map_err(|_| StoreError::Poisoned)?;
        let existing = meta(&db, &id)?;
        let path = self.path(&id);
        if existing.is_none() || !path.exists() {
            if let Some(limit) = self.max_total_bytes {
                let used: i64 =
                    db.query_row("SELECT COALESCE(SUM(size), 0) FROM files", [], |r| r.get(0))?;
                if u64::try_from(used)
                    .unwrap_or(0)
                    .saturating_add(blob.len() as u64)
                    > limit
                {
                    return Err(StoreError::Full);
                }
            }
            self.write_blob(&path, blob)?;
        }
        let expires = existing.map_or(expires, |old| old.expires_ms.max(expires));
        let result = db.execute(
            "INSERT INTO files (id, size, uploaded_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET uploaded_ms = ?3, expires_ms = ?4",
            params![
                id.as_str(),
                sql(blob.len() as u64),
                sql(now_ms),
                sql(expires)
            ],
        );
        if let Err(error) = result {
            if existing.is_none() {
                let _ = fs::remove_file(&path);
            }
            return Err(error.into());
        }
        Ok((
            id,
            FileMeta {
                size: blob.len() as u64,
                uploaded_ms: now_ms,
                expires_ms: expires,
            },
        ))
    }

    /// The metadata of a file that has not expired.
    pub fn info(&self, id: &FileId, now_ms: u64) -> Result<Option<FileMeta>, StoreError> {
        let db = self.db.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(meta(&db, id)?.filter(|m| m.expires_ms > now_ms))
    }

    /// A file's bytes and metadata, if it has not expired.
    pub fn get(&self, id: &FileId, now_ms: u64) -> Result<Option<(Vec<u8>, FileMeta)>, StoreError> {
        let Some(meta) = self.info(id, now_ms)? else {
            return Ok(None);
        };
        match fs::read(self.path(id)) {
            Ok(bytes) => Ok(Some((bytes, meta))),
            // Purged between the two reads.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io("reading a blob")(error)),
        }
    }

    /// Moves a file's expiry to at least `now_ms + ttl_ms`. A file that expired but is not yet
    /// purged comes back, as on session-file-server.
    pub fn extend(
        &self,
        id: &FileId,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<Option<FileMeta>, StoreError> {
        let db = self.db.lock().map_err(|_| StoreError::Poisoned)?;
        let Some(mut meta) = meta(&db, id)? else {
            return Ok(None);
        };
        meta.expires_ms = meta.expires_ms.max(now_ms.saturating_add(ttl_ms));
        db.execute(
            "UPDATE files SET expires_ms = ?2 WHERE id = ?1",
            params![id.as_str(), sql(meta.expires_ms)],
        )?;
        Ok(Some(meta))
    }

    /// Deletes every file that expired by `now_ms`; returns how many.
    pub fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        let db = self.db.lock().map_err(|_| StoreError::Poisoned)?;
        let ids: Vec<String> = db
            .prepare("SELECT id FROM files WHERE expires_ms <= ?1")?
            .query_map([sql(now_ms)], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            match fs::remove_file(self.files.join(id)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(%error, "could not delete an expired blob");
                }
                _ => {}
            }
        }
        db.execute("DELETE FROM files WHERE expires_ms <= ?1", [sql(now_ms)])?;
        Ok(ids.len())
    }

    fn path(&self, id: &FileId) -> PathBuf {
        // Ids are `[A-Za-z0-9_-]+`, so this never leaves the directory.
        self.files.join(id.as_str())
    }

    /// Writes to a temporary name and renames, so a crash never leaves a partial blob under
    /// its id.
    fn write_blob(&self, path: &Path, blob: &[u8]) -> Result<(), StoreError> {
        let tmp = self.files.join(format!(".tmp-{:016x}", OsRng.next_u64()));
        let written = fs::File::create(&tmp)
            .and_then(|mut file| {
                file.write_all(blob)?;
                file.sync_data()
            })
            .and_then(|()| fs::rename(&tmp, path));
        written.map_err(|error| {
            let _ = fs::remove_file(&tmp);
            if error.kind() == std::io::ErrorKind::StorageFull {
                StoreError::Full
            } else {
                io("writing a blob")(error)
            }
        })
    }
}

fn meta(db: &Connection, id: &FileId) -> Result<Option<FileMeta>, StoreError> {
    Ok(db
        .query_row(
            "SELECT size, uploaded_ms, expires_ms FROM files WHERE id = ?1",
            [id.as_str()],
            |row| {
                Ok(FileMeta {
                    size: unsql(row.get(0)?),
                    uploaded_ms: unsql(row.get(1)?),
                    expires_ms: unsql(row.get(2)?),
                })
            },
        )
        .optional()?)
}

/// SQLite integers are signed; our values are far below `i64::MAX`.
fn sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unsql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn io(action: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |source| StoreError::Io { action, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_dedup_extend_purge() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(10)).unwrap();
        let (id, first) = store.put(b"blob", 1_000, 500).unwrap();
        assert_eq!(first.expires_ms, 1_500);
        // Same bytes: same id, uploaded refreshed, expiry never shorter.
        let (again, second) = store.put(b"blob", 1_100, 100).unwrap();
        assert_eq!(
            (again.clone(), second.uploaded_ms, second.expires_ms),
            (id.clone(), 1_100, 1_500)
        );
        assert!(matches!(
            store.put(b"too much", 1_100, 100),
            Err(StoreError::Full)
        ));
        assert_eq!(store.get(&id, 1_499).unwrap().unwrap().0, b"blob");
        assert_eq!(store.get(&id, 1_500).unwrap(), None);
        // Expired but not purged: extend revives it.
        assert_eq!(
            store.extend(&id, 1_600, 100).unwrap().unwrap().expires_ms,
            1_700
        );
        assert_eq!(store.purge_expired(1_700).unwrap(), 1);
        assert_eq!(store.extend(&id, 1_800, 100).unwrap(), None);
        assert!(!dir.path().join("files").join(id.as_str()).exists());
    }
}
