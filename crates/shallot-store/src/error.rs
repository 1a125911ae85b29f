//! The store's error type.

use std::path::PathBuf;
use std::sync::Arc;

/// Why a store operation failed; every variant says what was being done.
///
/// Cloneable (sources are shared) because one failed group commit fails every caller in it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reached its size cap (`StoreConfig::max_db_bytes`) or the disk is full.
    /// The node reports this as its own `query_failure`; nothing was written.
    #[error("database is full while {context}")]
    Full {
        /// What was being done.
        context: &'static str,
    },
    /// Any other SQLite failure.
    #[error("SQLite error while {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open message store {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The file was written by a newer Shallot whose schema this build does not know.
    #[error(
        "message store schema version {found} is newer than this build supports ({supported})"
    )]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The file holds tables but no Shallot schema version (for example a reference
    /// `storage.db`); refusing to touch it.
    #[error("{} is not a Shallot message store (it has tables but no schema_version)", path.display())]
    NotAStore {
        /// The database file.
        path: PathBuf,
    },
    /// SQLite refused write-ahead logging (e.g. on a filesystem without shared memory).
    #[error("cannot switch {} to WAL journal mode (it stays {mode})", path.display())]
    NotWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Spawn(#[source] Arc<std::io::Error>),
    /// The account already holds its quota of unsigned inbox messages or bytes
    /// ([`crate::InboxQuota`]); nothing was written.
    #[error("the account's inbox holds its quota ({messages} messages, {bytes} bytes)")]
    QuotaExceeded {
        /// Messages the account holds in public-inbox namespaces.
        messages: u64,
        /// Bytes of data it holds there.
        bytes: u64,
    },
    /// The writer thread has stopped (only after a bug or while shutting down).
    #[error("the store writer thread has stopped")]
    WriterStopped,
}

impl StoreError {
    /// Whether this is the "database full" condition (a per-node `query_failure`).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full { .. })
    }

    /// Whether this is the per-account inbox quota refusal.
    pub fn is_quota(&self) -> bool {
        matches!(self, Self::QuotaExceeded { .. })
    }
}

/// Adds "what was being done" to SQLite results, turning `SQLITE_FULL` into [`StoreError::Full`].
pub(crate) trait Context<T> {
    /// Attaches `context` to an error.
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|err| with_context(err, context))
    }
}

/// Wraps a SQLite error, recognising the full-database condition.
pub(crate) fn with_context(err: rusqlite::Error, context: &'static str) -> StoreError {
    if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        StoreError::Full { context }
    } else {
        StoreError::Sqlite {
            context,
            source: Arc::new(err),
        }
    }
}
