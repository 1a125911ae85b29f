//! The client's local state in SQLite (`<data-dir>/client.db`): conversations, messages, the
//! `last_hash` retrieve cursors, and snapshots of the swarm cache and node pool.
//!
//! # Encryption at rest
//!
//! Personal fields are sealed row by row with XChaCha20-Poly1305 under a key derived from the
//! account seed (`BLAKE2b-256` keyed with [`KEY_DOMAIN`], over the 32-byte Ed25519 seed). Each
//! sealed value is `nonce (24) ‖ ciphertext ‖ tag (16)` with a random nonce, and its associated
//! data is `table ‖ 0x00 ‖ column ‖ 0x00 ‖ row id`, so a sealed value copied into another row or
//! column fails to open instead of being shown in the wrong place.
//!
//! Why per-row AEAD rather than SQLCipher: SQLCipher needs a system OpenSSL (or a vendored
//! crypto build) and its own SQLite fork, which breaks the "builds on a fresh machine with just
//! cargo" rule; bundled SQLite plus RustCrypto AEAD needs neither. The price is that structure
//! stays visible to whoever reads the file. Exactly what is **not** encrypted:
//! - row counts of every table, and the file size;
//! - `conversations.id` (which Session IDs we have a conversation with) and their created /
//!   last-activity times;
//! - per message: its id (the storage-server message hash), conversation id, direction, timestamp,
//!   delivery state (read by them included), whether we have read it, how many nodes stored it,
//!   and the sealed body's length (not padded: the text length + 40 bytes), and whether it has
//!   reactions or quotes another message (the sealed lengths of those);
//! - `seen` hashes (including dropped ones) and the `last_hash` cursors: node Ed25519 keys, our
//!   own account id, namespace, last hash;
//! - the schema version and the snapshot names;
//! - which messages have attachments, and how many (`attachments`, `group_attachments`: id,
//!   message id, index);
//! - which group IDs we are in, and per group message its hash, group, direction, timestamp
//!   and state (`db::groups`);
//! - whether a contact's messages carried a profile (`conversations.picture` is set), and how
//!   many pictures are cached in `pictures/` and their (encrypted) sizes.
//!
//! Sealed: message bodies and senders, reactions and quotes, attachment pointers (URL, key,
//! digest, name, size), group records (keys, configs, credentials), contact display names and
//! profile pictures (URL, key; the cached pictures in `pictures/` stay encrypted with their
//! profile keys, under file names keyed by the database key), the
//! pool and swarm snapshots, and
//! an account check value (opening the file with another account's key fails cleanly).

use std::path::Path;

use blake2::digest::consts::U32;
use blake2::digest::Mac;
use blake2::Blake2bMac;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::Identity;
use zeroize::Zeroizing;

mod actor;
mod attachments;
mod conversations;
mod feedback;
mod groups;
mod messages;
mod network;
mod pictures;
mod requests;
mod rows;
#[cfg(test)]
mod tests;

pub use actor::DbHandle;
pub use attachments::{AttachmentId, StoredAttachment};
pub(crate) use feedback::truncate;
pub use feedback::{StoredQuote, StoredReaction, MAX_QUOTE_BYTES, MAX_REACTIONS};
pub use groups::StoredGroupMessage;
pub use pictures::{ContactPicture, OwnProfile, PictureRef, PICTURES_DIR};
pub use requests::{
    MAX_PENDING_INVITES, MAX_PENDING_INVITES_PER_INVITER, MAX_REQUESTS, MAX_REQUEST_MESSAGES,
    MAX_REQUEST_MESSAGES_PER_SENDER,
};
pub use rows::{
    Conversation, ConversationState, Direction, Disappearing, MessageState, StoredMessage,
};

/// Domain string keying the BLAKE2b that derives the database key from the account seed.
pub const KEY_DOMAIN: &[u8] = b"shallot-client-db-v1";

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "client.db";

/// Schema migrations, in order; entry `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE conversations (
        id TEXT PRIMARY KEY,          -- the other party's Session ID (05…)
        name BLOB,                    -- sealed display name, if known
        created_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,          -- storage-server message hash
        conversation TEXT NOT NULL REFERENCES conversations(id),
        direction INTEGER NOT NULL,   -- 0 incoming, 1 outgoing
        sender BLOB NOT NULL,         -- sealed Session ID
        timestamp INTEGER NOT NULL,   -- message (envelope) timestamp, ms
        body BLOB NOT NULL,           -- sealed UTF-8 text
        state INTEGER NOT NULL,       -- see MessageState
        stored_on INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_by_conversation ON messages(conversation, timestamp);
    CREATE TABLE seen (
        hash TEXT PRIMARY KEY,        -- every hash processed (shown, duplicated or dropped)
        message TEXT                  -- the message it belongs to, if any
    );
    CREATE TABLE last_hashes (
        node TEXT NOT NULL,
        account TEXT NOT NULL,
        namespace INTEGER NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (node, account, namespace)
    );
    CREATE TABLE snapshots (
        name TEXT PRIMARY KEY,
        data BLOB NOT NULL            -- sealed JSON
    );",
    // v2: message requests, disappearing messages, unsend.
    "ALTER TABLE conversations ADD COLUMN state INTEGER NOT NULL DEFAULT 1; -- ConversationState
    ALTER TABLE conversations ADD COLUMN expire_mode INTEGER NOT NULL DEFAULT 0; -- ExpireSetting
    ALTER TABLE conversations ADD COLUMN expire_secs INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN expires_ms INTEGER; -- local deletion time, if any
    ALTER TABLE messages ADD COLUMN sync_hash TEXT;     -- our sync copy's hash (sent messages)",
    // v3: groups.
    "CREATE TABLE groups (
        id TEXT PRIMARY KEY,          -- the group ID (03…)
        record BLOB NOT NULL,         -- sealed JSON: keys, configs, credentials, status
        last_ms INTEGER NOT NULL
    );
    CREATE TABLE group_messages (
        id TEXT PRIMARY KEY,          -- message hash on the group swarm
        group_id TEXT NOT NULL REFERENCES groups(id),
        direction INTEGER NOT NULL,   -- 0 incoming, 1 outgoing
        sender BLOB NOT NULL,         -- sealed Session ID
        timestamp INTEGER NOT NULL,   -- envelope timestamp, ms
        body BLOB NOT NULL,           -- sealed UTF-8 text
        state INTEGER NOT NULL,       -- see MessageState
        stored_on INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX group_messages_by_group ON group_messages(group_id, timestamp);",
    // v4: read receipts, reactions and quoted replies (`db::feedback`).
    "ALTER TABLE messages ADD COLUMN read INTEGER NOT NULL DEFAULT 0; -- incoming: shown to us
    ALTER TABLE messages ADD COLUMN reactions BLOB;                    -- sealed JSON list
    ALTER TABLE messages ADD COLUMN quote BLOB;                        -- sealed JSON, replies
    UPDATE messages SET read = 1;                  -- what was there before was shown already",
    // v5: attachments.
    "CREATE TABLE attachments (
        id TEXT PRIMARY KEY,          -- AttachmentId: 16 hex of BLAKE2b(message id, index)
        message TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,         -- position in the message
        pointer BLOB NOT NULL         -- sealed AttachmentPointer protobuf
    );
    CREATE INDEX attachments_by_message ON attachments(message);",
    // v6: disappearing group messages.
    "ALTER TABLE group_messages ADD COLUMN expires_ms INTEGER; -- local deletion time, if any",
    // v7: attachments of group messages (as `attachments`, for `group_messages`).
    "CREATE TABLE group_attachments (
        id TEXT PRIMARY KEY,          -- AttachmentId: 16 hex of BLAKE2b(message id, index)
        message TEXT NOT NULL REFERENCES group_messages(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,         -- position in the message
        pointer BLOB NOT NULL         -- sealed AttachmentPointer protobuf
    );
    CREATE INDEX group_attachments_by_message ON group_attachments(message);",
    // v8: contacts' profile pictures (`db::pictures`).
    "ALTER TABLE conversations ADD COLUMN picture BLOB; -- sealed JSON: URL, key, cache file",
    // v9: reactions and quoted replies in groups (`db::feedback`).
    "ALTER TABLE group_messages ADD COLUMN reactions BLOB;     -- sealed JSON list
    ALTER TABLE group_messages ADD COLUMN quote BLOB;         -- sealed JSON, replies",
];

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A sealed value did not open: wrong account, or the file was tampered with.
    #[error("cannot decrypt {0} (wrong account for this database, or a corrupted file)")]
    Decrypt(String),
    /// The file was written by a newer Shallot.
    #[error("database schema version {0} is newer than this program supports")]
    TooNew(usize),
    /// A stored value is not what this program wrote.
    #[error("corrupted value in {0}")]
    Corrupt(String),
    /// The database thread is gone (it panicked, or every handle was dropped).
    #[error("the database thread has stopped")]
    Closed,
}

/// The client database of one account.
pub struct Db {
    conn: Connection,
    cipher: XChaCha20Poly1305,
    /// Where downloaded profile pictures are cached (`pictures/` beside the database file).
    pictures: std::path::PathBuf,
    /// Keys the cache's file names, so they do not reveal the pictures' URLs.
    picture_names: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A message hash read back from a column this program wrote.
fn hash_from_sql(text: &str, column: &str) -> Result<MessageHash, DbError> {
    text.parse()
        .map_err(|_| DbError::Corrupt(column.to_owned()))
}

fn aad(table: &str, column: &str, row: &str) -> Vec<u8> {
    [
        table.as_bytes(),
        b"\0",
        column.as_bytes(),
        b"\0",
        row.as_bytes(),
    ]
    .concat()
}

/// The database key of an account: BLAKE2b-256 keyed with [`KEY_DOMAIN`] over the seed.
fn derive_key(identity: &Identity) -> Zeroizing<[u8; 32]> {
    let mut mac = <Blake2bMac<U32> as Mac>::new_from_slice(KEY_DOMAIN)
        .unwrap_or_else(|_| unreachable!("the domain is a valid BLAKE2b key length"));
    mac.update(identity.seed());
    Zeroizing::new(mac.finalize().into_bytes().into())
}

impl Db {
    /// Opens (creating and migrating as needed) `<dir>/client.db` for `identity`.
    pub fn open_in_dir(dir: &Path, identity: &Identity) -> Result<Self, DbError> {
        Self::open(&dir.join(DB_FILE), identity)
    }

    /// Opens (creating and migrating as needed) the database at `path` for `identity`. Fails
    /// with [`DbError::Decrypt`] if it belongs to another account.
    pub fn open(path: &Path, identity: &Identity) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // No fsync per commit (0.37 ms each on the bench machine, several per message): a crash
        // of the program loses nothing; a power cut may lose the last commits but never corrupts
        // the file, and whatever it loses is fetched again from the swarm.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let key = derive_key(identity);
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let picture_names = pictures::name_key(&key);
        let pictures = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(pictures::PICTURES_DIR);
        let mut db = Self {
            conn,
            cipher,
            pictures,
            picture_names,
        };
        db.migrate()?;
        db.check_account(identity)?;
        Ok(db)
    }

    /// The schema version the file is at.
    pub fn schema_version(&self) -> Result<usize, DbError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        v.map_or(Ok(0), |v| {
            v.parse().map_err(|_| DbError::Corrupt("meta".into()))
        })
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
        )?;
        let current = self.schema_version()?;
        if current > MIGRATIONS.len() {
            return Err(DbError::TooNew(current));
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                params![(version + 1).to_string()],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Stores a sealed check value on first open; later opens must decrypt it.
    fn check_account(&self, identity: &Identity) -> Result<(), DbError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'account'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let me = identity.session_id().to_string();
        if let Some(sealed) = sealed {
            let opened = self.open_value(&aad("meta", "value", "account"), &sealed)?;
            if opened != me.as_bytes() {
                return Err(DbError::Decrypt("the account check".into()));
            }
        } else {
            let sealed = self.seal(&aad("meta", "value", "account"), me.as_bytes());
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('account', ?1)",
                params![sealed],
            )?;
        }
        Ok(())
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher, aad, plaintext)
    }

    fn open_value(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, DbError> {
        let what = || String::from_utf8_lossy(aad).replace('\0', ".");
        if sealed.len() < 24 {
            return Err(DbError::Decrypt(what()));
        }
        let (nonce, ciphertext) = sealed.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| DbError::Decrypt(what()))
    }

    fn open_string(&self, aad: &[u8], sealed: &[u8]) -> Result<String, DbError> {
        String::from_utf8(self.open_value(aad, sealed)?)
            .map_err(|_| DbError::Corrupt(String::from_utf8_lossy(aad).replace('\0', ".")))
    }
}

fn seal_with(cipher: &XChaCha20Poly1305, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 encryption cannot fail"));
    [nonce.as_slice(), &ciphertext].concat()
}
