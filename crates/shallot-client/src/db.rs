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
//!   delivery state, how many nodes stored it, and the sealed body's length (not padded: the
//!   text length + 40 bytes);
//! - `seen` hashes (including dropped ones) and the `last_hash` cursors: node Ed25519 keys, our
//!   own account id, namespace, last hash;
//! - the schema version and the snapshot names.
//!
//! Sealed: message bodies and senders, contact display names, the pool and swarm snapshots, and
//! an account check value (opening the file with another account's key fails cleanly).

use std::path::Path;

use blake2::digest::consts::U32;
use blake2::digest::Mac;
use blake2::Blake2bMac;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use shallot_proto::{Identity, SessionId};
use zeroize::Zeroizing;

use crate::pool::{PoolSnapshot, SnapshotNode};

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
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the other party to us.
    Incoming,
    /// From us (this device or another of ours, via a sync copy).
    Outgoing,
}

/// Delivery state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Being sent; not yet acknowledged by any node.
    Sending,
    /// Stored by this many members of the recipient's swarm.
    Stored(u32),
    /// Sending failed (no node stored it).
    Failed,
    /// Received from the network.
    Received,
}

impl MessageState {
    fn to_sql(self) -> (i64, i64) {
        match self {
            Self::Sending => (0, 0),
            Self::Stored(n) => (1, i64::from(n)),
            Self::Failed => (2, 0),
            Self::Received => (3, 0),
        }
    }

    fn from_sql(state: i64, stored_on: i64) -> Option<Self> {
        Some(match state {
            0 => Self::Sending,
            1 => Self::Stored(u32::try_from(stored_on).ok()?),
            2 => Self::Failed,
            3 => Self::Received,
            _ => return None,
        })
    }
}

/// Whether we talk with a contact (message requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationState {
    /// They wrote to us first and we have not answered: a message request.
    Requested,
    /// An accepted contact (we accepted their request, or wrote to them).
    Accepted,
    /// We declined their request (a new message makes a new request).
    Declined,
    /// Everything they send is dropped.
    Blocked,
}

impl ConversationState {
    fn to_sql(self) -> i64 {
        match self {
            Self::Requested => 0,
            Self::Accepted => 1,
            Self::Declined => 2,
            Self::Blocked => 3,
        }
    }

    fn from_sql(v: i64) -> Self {
        match v {
            0 => Self::Requested,
            2 => Self::Declined,
            3 => Self::Blocked,
            _ => Self::Accepted,
        }
    }
}

/// A conversation's disappearing-messages setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disappearing {
    /// Messages stay.
    #[default]
    Off,
    /// Messages disappear this many seconds after they are sent.
    AfterSend(u32),
    /// Messages disappear this many seconds after they are read.
    AfterRead(u32),
}

impl Disappearing {
    fn to_sql(self) -> (i64, i64) {
        match self {
            Self::Off => (0, 0),
            Self::AfterRead(s) => (1, i64::from(s)),
            Self::AfterSend(s) => (2, i64::from(s)),
        }
    }

    fn from_sql(mode: i64, secs: i64) -> Self {
        let secs = u32::try_from(secs).unwrap_or(0);
        match mode {
            _ if secs == 0 => Self::Off,
            1 => Self::AfterRead(secs),
            2 => Self::AfterSend(secs),
            _ => Self::Off,
        }
    }
}

/// One message as kept locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message hash (on the recipient's swarm for sent messages).
    pub id: String,
    /// The other party.
    pub conversation: SessionId,
    /// Which way it went.
    pub direction: Direction,
    /// Who wrote it.
    pub sender: SessionId,
    /// Message timestamp (ms, network time of the sender).
    pub timestamp: u64,
    /// The text.
    pub body: String,
    /// Delivery state.
    pub state: MessageState,
}

/// A conversation (1:1 with a contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The contact's Session ID.
    pub id: SessionId,
    /// Their display name, if known.
    pub name: Option<String>,
    /// Time of the last message, ms.
    pub last_ms: u64,
    /// Request, accepted, declined or blocked.
    pub state: ConversationState,
    /// Disappearing-messages setting.
    pub disappearing: Disappearing,
}

/// The client database of one account.
pub struct Db {
    conn: Connection,
    cipher: XChaCha20Poly1305,
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
        let mut db = Self { conn, cipher };
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

    /// Creates the conversation with `contact` if new, and bumps its last-activity time.
    pub fn touch_conversation(&self, contact: &SessionId, at_ms: u64) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO conversations (id, created_ms, last_ms) VALUES (?1, ?2, ?2)
             ON CONFLICT(id) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms)",
            params![contact.to_string(), to_i64(at_ms)],
        )?;
        Ok(())
    }

    /// Sets a contact's display name (sealed).
    pub fn set_contact_name(&self, contact: &SessionId, name: &str) -> Result<(), DbError> {
        let id = contact.to_string();
        let sealed = self.seal(&aad("conversations", "name", &id), name.as_bytes());
        self.conn.execute(
            "UPDATE conversations SET name = ?2 WHERE id = ?1",
            params![id, sealed],
        )?;
        Ok(())
    }

    /// A contact's display name, as their last message's profile said (`None` if unknown).
    pub fn contact_name(&self, contact: &SessionId) -> Result<Option<String>, DbError> {
        let id = contact.to_string();
        let sealed: Option<Option<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT name FROM conversations WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        sealed
            .flatten()
            .map(|n| self.open_string(&aad("conversations", "name", &id), &n))
            .transpose()
    }

    /// Our own display name, sent with our messages (`None` until set).
    pub fn profile_name(&self) -> Result<Option<String>, DbError> {
        let profile: Option<serde_json::Value> = self.load_snapshot("profile")?;
        Ok(profile
            .as_ref()
            .and_then(|p| p.get("name"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned))
    }

    /// Sets our own display name.
    pub fn set_profile_name(&self, name: &str) -> Result<(), DbError> {
        let json = serde_json::json!({ "name": name }).to_string();
        self.save_snapshot("profile", json.as_bytes())
    }

    /// All conversations, most recent first.
    pub fn conversations(&self) -> Result<Vec<Conversation>, DbError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, last_ms, state, expire_mode, expire_secs FROM conversations
                 ORDER BY last_ms DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<Vec<u8>>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, last_ms, state, mode, secs) = row?;
            let name = name
                .map(|n| self.open_string(&aad("conversations", "name", &id), &n))
                .transpose()?;
            out.push(Conversation {
                id: id
                    .parse()
                    .map_err(|_| DbError::Corrupt("conversations.id".into()))?,
                name,
                last_ms: to_u64(last_ms),
                state: ConversationState::from_sql(state),
                disappearing: Disappearing::from_sql(mode, secs),
            });
        }
        Ok(out)
    }

    /// Whether `hash` was already processed (stored as a message, or seen and dropped).
    pub fn is_seen(&self, hash: &str) -> Result<bool, DbError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM seen WHERE hash = ?1", params![hash], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// Records `hash` as processed, belonging to `message` (or dropped when `None`).
    pub fn mark_seen(&self, hash: &str, message: Option<&str>) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO seen (hash, message) VALUES (?1, ?2)",
            params![hash, message],
        )?;
        Ok(())
    }

    /// Stores a message (and its conversation) unless one with the same id exists; returns
    /// whether it was new. Its id is marked seen.
    ///
    /// An incoming message from someone new (or declined) makes a message request; an outgoing
    /// one makes the other party an accepted contact (unless blocked).
    pub fn insert_message(&mut self, m: &StoredMessage) -> Result<bool, DbError> {
        let tx = self.conn.transaction()?;
        let state = match m.direction {
            Direction::Incoming => ConversationState::Requested,
            Direction::Outgoing => ConversationState::Accepted,
        };
        tx.execute(
            "INSERT INTO conversations (id, created_ms, last_ms, state) VALUES (?1, ?2, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms),
                 state = CASE
                     WHEN state = 3 THEN 3
                     WHEN excluded.state = 1 THEN 1
                     WHEN state = 2 THEN 0
                     ELSE state END",
            params![
                m.conversation.to_string(),
                to_i64(m.timestamp),
                state.to_sql()
            ],
        )?;
        let (state, stored_on) = m.state.to_sql();
        let sender = seal_with(
            &self.cipher,
            &aad("messages", "sender", &m.id),
            m.sender.to_string().as_bytes(),
        );
        let body = seal_with(
            &self.cipher,
            &aad("messages", "body", &m.id),
            m.body.as_bytes(),
        );
        let added = tx.execute(
            "INSERT OR IGNORE INTO messages
                 (id, conversation, direction, sender, timestamp, body, state, stored_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                m.id,
                m.conversation.to_string(),
                i64::from(m.direction == Direction::Outgoing),
                sender,
                to_i64(m.timestamp),
                body,
                state,
                stored_on
            ],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO seen (hash, message) VALUES (?1, ?1)",
            params![m.id],
        )?;
        tx.commit()?;
        Ok(added == 1)
    }

    /// The state of the conversation with `contact` (`None` if there is none).
    pub fn conversation_state(
        &self,
        contact: &SessionId,
    ) -> Result<Option<ConversationState>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT state FROM conversations WHERE id = ?1",
                params![contact.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(ConversationState::from_sql))
    }

    /// Sets the state of the conversation with `contact`, creating it if needed.
    pub fn set_conversation_state(
        &self,
        contact: &SessionId,
        state: ConversationState,
        now_ms: u64,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO conversations (id, created_ms, last_ms, state) VALUES (?1, ?2, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET state = excluded.state",
            params![contact.to_string(), to_i64(now_ms), state.to_sql()],
        )?;
        Ok(())
    }

    /// Deletes the messages of the conversation with `contact` (their hashes stay seen).
    pub fn clear_conversation(&self, contact: &SessionId) -> Result<usize, DbError> {
        Ok(self.conn.execute(
            "DELETE FROM messages WHERE conversation = ?1",
            params![contact.to_string()],
        )?)
    }

    /// The disappearing-messages setting of the conversation with `contact`.
    pub fn disappearing(&self, contact: &SessionId) -> Result<Disappearing, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT expire_mode, expire_secs FROM conversations WHERE id = ?1",
                params![contact.to_string()],
                |r| Ok(Disappearing::from_sql(r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Sets the disappearing-messages setting of the conversation with `contact` (creating it
    /// as accepted if new).
    pub fn set_disappearing(
        &self,
        contact: &SessionId,
        setting: Disappearing,
        now_ms: u64,
    ) -> Result<(), DbError> {
        let (mode, secs) = setting.to_sql();
        self.conn.execute(
            "INSERT INTO conversations (id, created_ms, last_ms, expire_mode, expire_secs)
             VALUES (?1, ?2, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET expire_mode = excluded.expire_mode,
                 expire_secs = excluded.expire_secs",
            params![contact.to_string(), to_i64(now_ms), mode, secs],
        )?;
        Ok(())
    }

    /// Sets when a message disappears locally.
    pub fn set_expires(&self, id: &str, expires_ms: u64) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE messages SET expires_ms = ?2 WHERE id = ?1",
            params![id, to_i64(expires_ms)],
        )?;
        Ok(())
    }

    /// When a message disappears locally, if it does.
    pub fn expires(&self, id: &str) -> Result<Option<u64>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT expires_ms FROM messages WHERE id = ?1",
                params![id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .map(to_u64))
    }

    /// Deletes the messages whose disappearing time is at or before `now_ms`; returns how many.
    pub fn delete_expired(&self, now_ms: u64) -> Result<usize, DbError> {
        Ok(self.conn.execute(
            "DELETE FROM messages WHERE expires_ms IS NOT NULL AND expires_ms <= ?1",
            params![to_i64(now_ms)],
        )?)
    }

    /// Records the hash of a sent message's sync copy in our own swarm.
    pub fn set_sync_hash(&self, id: &str, sync_hash: &str) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE messages SET sync_hash = ?2 WHERE id = ?1",
            params![id, sync_hash],
        )?;
        Ok(())
    }

    /// The hash of a sent message's sync copy, if recorded.
    pub fn sync_hash(&self, id: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sync_hash FROM messages WHERE id = ?1",
                params![id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Deletes one message locally; returns whether it existed.
    pub fn delete_message(&self, id: &str) -> Result<bool, DbError> {
        Ok(self
            .conn
            .execute("DELETE FROM messages WHERE id = ?1", params![id])?
            == 1)
    }

    /// The ids of messages whose id starts with `prefix`.
    pub fn find_messages(&self, prefix: &str) -> Result<Vec<String>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM messages WHERE substr(id, 1, length(?1)) = ?1")?;
        let ids = stmt
            .query_map(params![prefix], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Updates a message's delivery state.
    pub fn set_state(&self, id: &str, state: MessageState) -> Result<(), DbError> {
        let (state, stored_on) = state.to_sql();
        self.conn.execute(
            "UPDATE messages SET state = ?2, stored_on = ?3 WHERE id = ?1",
            params![id, state, stored_on],
        )?;
        Ok(())
    }

    /// One message by id.
    pub fn message(&self, id: &str) -> Result<Option<StoredMessage>, DbError> {
        self.query_messages("WHERE id = ?1", params![id])
            .map(|mut v| v.pop())
    }

    /// The messages of a conversation, oldest first.
    pub fn messages(&self, conversation: &SessionId) -> Result<Vec<StoredMessage>, DbError> {
        self.query_messages(
            "WHERE conversation = ?1 ORDER BY timestamp, id",
            params![conversation.to_string()],
        )
    }

    /// The timestamp of the latest message of a conversation (ms), if it has any.
    pub fn latest_timestamp(&self, conversation: &SessionId) -> Result<Option<u64>, DbError> {
        let latest: Option<i64> = self.conn.query_row(
            "SELECT max(timestamp) FROM messages WHERE conversation = ?1",
            params![conversation.to_string()],
            |r| r.get(0),
        )?;
        Ok(latest.map(to_u64))
    }

    /// Every message, oldest first.
    pub fn all_messages(&self) -> Result<Vec<StoredMessage>, DbError> {
        self.query_messages("ORDER BY timestamp, id", params![])
    }

    fn query_messages(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<StoredMessage>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, conversation, direction, sender, timestamp, body, state, stored_on
             FROM messages {filter}"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Vec<u8>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, conversation, direction, sender, timestamp, body, state, stored_on) = row?;
            let corrupt = |what: &str| DbError::Corrupt(format!("messages.{what}"));
            let sender = self.open_string(&aad("messages", "sender", &id), &sender)?;
            let body = self.open_string(&aad("messages", "body", &id), &body)?;
            out.push(StoredMessage {
                conversation: conversation.parse().map_err(|_| corrupt("conversation"))?,
                direction: if direction == 0 {
                    Direction::Incoming
                } else {
                    Direction::Outgoing
                },
                sender: sender.parse().map_err(|_| corrupt("sender"))?,
                timestamp: to_u64(timestamp),
                body,
                state: MessageState::from_sql(state, stored_on).ok_or_else(|| corrupt("state"))?,
                id,
            });
        }
        Ok(out)
    }

    /// The retrieve cursor for (node Ed25519 hex, account id, namespace).
    pub fn last_hash(
        &self,
        node: &str,
        account: &str,
        namespace: i16,
    ) -> Result<Option<String>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT hash FROM last_hashes WHERE node = ?1 AND account = ?2 AND namespace = ?3",
                params![node, account, namespace],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Moves the retrieve cursor for (node, account, namespace) to `hash`.
    pub fn set_last_hash(
        &self,
        node: &str,
        account: &str,
        namespace: i16,
        hash: &str,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO last_hashes (node, account, namespace, hash)
             VALUES (?1, ?2, ?3, ?4)",
            params![node, account, namespace, hash],
        )?;
        Ok(())
    }

    fn save_snapshot(&self, name: &str, json: &[u8]) -> Result<(), DbError> {
        let sealed = self.seal(&aad("snapshots", "data", name), json);
        self.conn.execute(
            "INSERT OR REPLACE INTO snapshots (name, data) VALUES (?1, ?2)",
            params![name, sealed],
        )?;
        Ok(())
    }

    fn load_snapshot<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, DbError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT data FROM snapshots WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let json = self.open_value(&aad("snapshots", "data", name), &sealed)?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|_| DbError::Corrupt(format!("snapshot {name}")))
    }

    /// Saves `value` as sealed JSON under `name` (replacing what was there).
    pub fn save_json<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<(), DbError> {
        let json = serde_json::to_vec(value).map_err(|_| DbError::Corrupt(name.to_owned()))?;
        self.save_snapshot(name, &json)
    }

    /// The sealed JSON value saved under `name`, if any.
    pub fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, DbError> {
        self.load_snapshot(name)
    }

    /// Saves the node pool (to start without a seed next time).
    pub fn save_pool(&self, pool: &PoolSnapshot) -> Result<(), DbError> {
        let json = serde_json::to_vec(pool).map_err(|_| DbError::Corrupt("pool".into()))?;
        self.save_snapshot("pool", &json)
    }

    /// The saved node pool, if any.
    pub fn load_pool(&self) -> Result<Option<PoolSnapshot>, DbError> {
        self.load_snapshot("pool")
    }

    /// Saves the cached swarm of `account`.
    pub fn save_swarm(&self, account: &str, members: &[SnapshotNode]) -> Result<(), DbError> {
        let json = serde_json::to_vec(members).map_err(|_| DbError::Corrupt("swarm".into()))?;
        self.save_snapshot(&format!("swarm:{account}"), &json)
    }

    /// The saved swarm of `account`, if any.
    pub fn load_swarm(&self, account: &str) -> Result<Option<Vec<SnapshotNode>>, DbError> {
        self.load_snapshot(&format!("swarm:{account}"))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user() -> Identity {
        Identity::generate(&mut rand::rngs::OsRng)
    }

    fn message(id: &str, conversation: SessionId, body: &str) -> StoredMessage {
        StoredMessage {
            id: id.into(),
            conversation,
            direction: Direction::Incoming,
            sender: conversation,
            timestamp: 1_700_000_000_000,
            body: body.into(),
            state: MessageState::Received,
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn conversation_states_follow_requests_and_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let me = user();
        let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
        let (a, b) = (user().session_id(), user().session_id());
        db.insert_message(&message("h1", a, "hi")).unwrap();
        assert_eq!(
            db.conversation_state(&a).unwrap(),
            Some(ConversationState::Requested)
        );
        let mut out = message("h2", b, "hello");
        out.direction = Direction::Outgoing;
        out.sender = me.session_id();
        db.insert_message(&out).unwrap();
        assert_eq!(
            db.conversation_state(&b).unwrap(),
            Some(ConversationState::Accepted)
        );
        db.insert_message(&message("h3", b, "reply")).unwrap();
        assert_eq!(
            db.conversation_state(&b).unwrap(),
            Some(ConversationState::Accepted),
            "a reply from a contact stays accepted"
        );
        db.set_conversation_state(&a, ConversationState::Declined, 1)
            .unwrap();
        db.insert_message(&message("h4", a, "again")).unwrap();
        assert_eq!(
            db.conversation_state(&a).unwrap(),
            Some(ConversationState::Requested),
            "a new message after a decline is a new request"
        );
        db.set_conversation_state(&a, ConversationState::Blocked, 1)
            .unwrap();
        let mut out = message("h5", a, "sorry");
        out.direction = Direction::Outgoing;
        db.insert_message(&out).unwrap();
        assert_eq!(
            db.conversation_state(&a).unwrap(),
            Some(ConversationState::Blocked)
        );

        db.set_disappearing(&b, Disappearing::AfterRead(30), 1)
            .unwrap();
        assert_eq!(db.disappearing(&b).unwrap(), Disappearing::AfterRead(30));
        db.set_expires("h2", 5_000).unwrap();
        assert_eq!(db.expires("h2").unwrap(), Some(5_000));
        assert_eq!(db.delete_expired(4_999).unwrap(), 0);
        assert_eq!(db.delete_expired(5_000).unwrap(), 1);
        assert!(db.message("h2").unwrap().is_none());
        assert!(
            db.is_seen("h2").unwrap(),
            "an expired message is not shown again"
        );
        assert_eq!(db.find_messages("h").unwrap().len(), 4);
    }

    #[test]
    fn bodies_never_reach_the_file_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let (me, bob) = (user(), user());
        let secret = "attack at dawn, bring the zebra-striped umbrella";
        {
            let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
            assert!(db
                .insert_message(&message("h1", bob.session_id(), secret))
                .unwrap());
            db.set_contact_name(&bob.session_id(), "Bobby Tables the Third")
                .unwrap();
            let got = db.messages(&bob.session_id()).unwrap();
            assert_eq!(got[0].body, secret);
            assert_eq!(got[0].sender, bob.session_id());
            assert_eq!(
                db.conversations().unwrap()[0].name.as_deref(),
                Some("Bobby Tables the Third")
            );
            // Force everything out of the WAL into the main file.
            db.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
        }
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(contains(&bytes, b"h1"), "the id is visible (documented)");
        assert!(!contains(&bytes, secret.as_bytes()));
        assert!(!contains(&bytes, b"zebra"));
        assert!(!contains(&bytes, b"Bobby Tables"));

        // Reopening with the right key works; another account's key is refused.
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        assert_eq!(db.all_messages().unwrap()[0].body, secret);
        drop(db);
        assert!(matches!(
            Db::open_in_dir(dir.path(), &user()),
            Err(DbError::Decrypt(_))
        ));
    }

    #[test]
    fn sealed_values_are_bound_to_their_row() {
        let dir = tempfile::tempdir().unwrap();
        let (me, bob) = (user(), user());
        let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
        db.insert_message(&message("a", bob.session_id(), "first"))
            .unwrap();
        db.insert_message(&message("b", bob.session_id(), "second"))
            .unwrap();
        // Swap the sealed bodies of the two rows: both must now fail to open.
        db.conn
            .execute_batch(
                "UPDATE messages SET body = (SELECT body FROM messages WHERE id = 'b') WHERE id = 'a';",
            )
            .unwrap();
        assert!(matches!(db.message("a"), Err(DbError::Decrypt(_))));
        assert_eq!(db.message("b").unwrap().unwrap().body, "second");
    }

    #[test]
    fn last_hash_is_per_node_account_and_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_in_dir(dir.path(), &user()).unwrap();
        assert_eq!(db.last_hash("n1", "05aa", 0).unwrap(), None);
        db.set_last_hash("n1", "05aa", 0, "h1").unwrap();
        db.set_last_hash("n2", "05aa", 0, "h2").unwrap();
        db.set_last_hash("n1", "05aa", 2, "h3").unwrap();
        db.set_last_hash("n1", "05bb", 0, "h4").unwrap();
        db.set_last_hash("n1", "05aa", 0, "h5").unwrap();
        assert_eq!(
            db.last_hash("n1", "05aa", 0).unwrap().as_deref(),
            Some("h5")
        );
        assert_eq!(
            db.last_hash("n2", "05aa", 0).unwrap().as_deref(),
            Some("h2")
        );
        assert_eq!(
            db.last_hash("n1", "05aa", 2).unwrap().as_deref(),
            Some("h3")
        );
        assert_eq!(
            db.last_hash("n1", "05bb", 0).unwrap().as_deref(),
            Some("h4")
        );
    }

    #[test]
    fn messages_and_hashes_are_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let (me, bob) = (user(), user());
        let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
        let m = message("h", bob.session_id(), "hi");
        assert!(!db.is_seen("h").unwrap());
        assert!(db.insert_message(&m).unwrap());
        assert!(!db.insert_message(&m).unwrap(), "second insert is a no-op");
        assert!(db.is_seen("h").unwrap());
        db.mark_seen("garbage", None).unwrap();
        db.mark_seen("garbage", None).unwrap();
        assert!(db.is_seen("garbage").unwrap());
        assert_eq!(db.all_messages().unwrap().len(), 1);
        db.set_state("h", MessageState::Stored(3)).unwrap();
        assert_eq!(
            db.message("h").unwrap().unwrap().state,
            MessageState::Stored(3)
        );
    }

    #[test]
    fn migrations_are_recorded_and_snapshots_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let me = user();
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len());
        assert_eq!(db.load_pool().unwrap(), None);
        let pool = PoolSnapshot::default();
        db.save_pool(&pool).unwrap();
        assert_eq!(db.load_pool().unwrap(), Some(pool));
        db.save_swarm("05aa", &[]).unwrap();
        assert_eq!(db.load_swarm("05aa").unwrap(), Some(Vec::new()));
        drop(db);
        // Reopening does not re-run migrations.
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len());
        db.conn
            .execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        drop(db);
        assert!(matches!(
            Db::open_in_dir(dir.path(), &me),
            Err(DbError::TooNew(99))
        ));
    }
}
