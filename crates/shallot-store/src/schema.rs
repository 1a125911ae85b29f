//! Connection setup and the schema migration list.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::StoreError;

/// How long a connection waits for a lock before failing (spec §7.1: 15 s).
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Schema migrations; entry `i` takes the database from version `i` to `i + 1`.
///
/// Append only: never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // Version 1. Differences from the reference schema (spec §7.1), deliberately:
    // - hashes are stored as their 32 raw bytes (the UNIQUE index is the only hash index);
    // - `messages(owner, namespace)` is the retrieve index: SQLite appends the row id to every
    //   index entry, so it also yields insertion order without a sort;
    // - revocations keep the account row alive: an account row is removed only when it has
    //   neither messages nor revocations, so revocations survive an empty mailbox (quirk 7).
    r"
    CREATE TABLE accounts (
        id     INTEGER PRIMARY KEY,
        type   INTEGER NOT NULL,
        pubkey BLOB NOT NULL,
        UNIQUE (pubkey, type)
    );
    CREATE TABLE messages (
        id        INTEGER PRIMARY KEY,
        hash      BLOB NOT NULL UNIQUE,
        owner     INTEGER NOT NULL REFERENCES accounts (id),
        namespace INTEGER NOT NULL DEFAULT 0,
        timestamp INTEGER NOT NULL,
        expiry    INTEGER NOT NULL,
        data      BLOB NOT NULL
    );
    CREATE INDEX messages_owner_namespace ON messages (owner, namespace);
    CREATE INDEX messages_expiry ON messages (expiry);
    CREATE TABLE revocations (
        owner     INTEGER NOT NULL REFERENCES accounts (id),
        token     BLOB NOT NULL,
        timestamp INTEGER NOT NULL,
        PRIMARY KEY (owner, token)
    );
    CREATE TRIGGER messages_forget_empty_account AFTER DELETE ON messages
    WHEN NOT EXISTS (SELECT 1 FROM messages WHERE owner = OLD.owner)
     AND NOT EXISTS (SELECT 1 FROM revocations WHERE owner = OLD.owner)
    BEGIN
        DELETE FROM accounts WHERE id = OLD.owner;
    END;
    CREATE TRIGGER revocations_forget_empty_account AFTER DELETE ON revocations
    WHEN NOT EXISTS (SELECT 1 FROM messages WHERE owner = OLD.owner)
     AND NOT EXISTS (SELECT 1 FROM revocations WHERE owner = OLD.owner)
    BEGIN
        DELETE FROM accounts WHERE id = OLD.owner;
    END;
    ",
    // Version 2: per-account usage of the public-inbox namespaces (`namespace % 10 = 0`, the
    // namespaces that take unsigned stores), kept by triggers so the inbox quota costs one row
    // read per store instead of a count over the account's messages.
    r"
    ALTER TABLE accounts ADD COLUMN inbox_messages INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE accounts ADD COLUMN inbox_bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE accounts SET
        inbox_messages = (SELECT count(*) FROM messages
                          WHERE owner = accounts.id AND namespace % 10 = 0),
        inbox_bytes = (SELECT coalesce(sum(length(data)), 0) FROM messages
                       WHERE owner = accounts.id AND namespace % 10 = 0);
    CREATE TRIGGER messages_inbox_added AFTER INSERT ON messages
    WHEN NEW.namespace % 10 = 0
    BEGIN
        UPDATE accounts SET inbox_messages = inbox_messages + 1,
                            inbox_bytes = inbox_bytes + length(NEW.data)
        WHERE id = NEW.owner;
    END;
    CREATE TRIGGER messages_inbox_removed AFTER DELETE ON messages
    WHEN OLD.namespace % 10 = 0
    BEGIN
        UPDATE accounts SET inbox_messages = inbox_messages - 1,
                            inbox_bytes = inbox_bytes - length(OLD.data)
        WHERE id = OLD.owner;
    END;
    ",
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

fn open_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        path: path.to_owned(),
        source: Arc::new(source),
    }
}

/// Opens (creating if needed) the single read-write connection, configures it and migrates.
pub(crate) fn open_writer(path: &Path, max_db_bytes: u64) -> Result<Connection, StoreError> {
    let err = open_error(path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(&err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal {
            path: path.to_owned(),
            mode,
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(&err)?;
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(&err)?;
    let max_pages = max_db_bytes / u64::try_from(page_size.max(512)).unwrap_or(4096);
    let max_pages = i64::try_from(max_pages.max(1)).unwrap_or(i64::MAX);
    // SQLite never lowers the cap below the current size, so reopening a big file still works.
    let _: i64 = conn
        .query_row(&format!("PRAGMA max_page_count = {max_pages}"), [], |row| {
            row.get(0)
        })
        .map_err(&err)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection for queries (WAL lets it read while the writer commits).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let err = open_error(path);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(&err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch("PRAGMA query_only = ON").map_err(&err)?;
    Ok(conn)
}

/// Brings the schema up to [`current_version`], refusing files from a newer build.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = open_error(path);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&err)?;
    let has_version_table: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version')",
            [],
            |row| row.get(0),
        )
        .map_err(&err)?;
    let found = if has_version_table {
        tx.query_row("SELECT version FROM schema_version", [], |row| row.get(0))
            .optional()
            .map_err(&err)?
            .unwrap_or(0)
    } else {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .map_err(&err)?;
        if tables > 0 {
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
            });
        }
        tx.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version (version) VALUES (0);",
        )
        .map_err(&err)?;
        0
    };
    let supported = current_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    let start = usize::try_from(found.max(0)).unwrap_or(usize::MAX);
    for sql in MIGRATIONS.iter().skip(start) {
        tx.execute_batch(sql).map_err(&err)?;
    }
    if found < supported {
        tx.execute("UPDATE schema_version SET version = ?1", [supported])
            .map_err(&err)?;
    }
    tx.commit().map_err(&err)
}
