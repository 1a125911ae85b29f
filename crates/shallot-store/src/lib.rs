//! The service node's message store (storage RPC spec §7): SQLite in WAL mode, one writer
//! thread that group-commits, and a pool of read-only connections.
//!
//! # Design
//!
//! * **One writer, group commit.** Every write ([`Store::store`], deletes, expiry updates,
//!   revocations, the expiry sweep, peer bulk inserts) is queued to a single writer thread that
//!   owns the only read-write connection. The thread takes the first queued write plus everything
//!   else queued behind it (up to [`StoreConfig::max_batch`]) and runs them in **one**
//!   `BEGIN IMMEDIATE … COMMIT` transaction; under load, writes that arrive while a transaction
//!   is committing form the next batch, so the commit cost is shared without any added delay.
//!   Each write runs inside its own savepoint, so one failing write (say, a store hitting the
//!   size cap) is undone alone and its neighbours still commit. If SQLite aborts the whole
//!   transaction instead (it may on `SQLITE_FULL`), the failed write keeps its error and the
//!   others are run again in a fresh transaction.
//! * **Acknowledged means committed.** A write call blocks until the transaction holding it has
//!   committed. With WAL and `synchronous=NORMAL` a committed transaction is in the OS page cache
//!   and survives the process being killed (`kill -9`); only an OS crash or power loss can lose
//!   the last transactions (the reference makes the same trade).
//! * **Reads never queue behind writes.** Queries run on pooled read-only connections; WAL lets
//!   them read the last committed state while the writer works. Because a write returns only
//!   after its commit, a read issued after a write returned sees it.
//! * **Time is injected.** Methods that need "now" take `now_ms`; nothing here reads a clock.
//! * **Reads do not filter expired rows** (reference behaviour): a message stays visible until
//!   the next [`Store::sweep_expired`], which the node runs every 10 s.
//! * **Calling from async code.** Every method blocks; call from `spawn_blocking` (or a
//!   dedicated thread). [`Store`] is `Send + Sync`; share it in an `Arc`.
//!
//! # Deliberate differences from the reference (docs/compat.md)
//!
//! * `delete_before` with `"all"` works and reports `(namespace, hash)` pairs (quirk 4).
//! * [`Store::bulk_store`] keeps each message's namespace (quirk 5): the caller decides what a
//!   peer push without a namespace means.
//! * Revocations belong to the account row, which is removed only when it has neither messages
//!   nor revocations, so revocations survive an empty mailbox; revoking for an account that has
//!   never stored anything records the revocation; the newest 50 per account are kept (quirk 7).

mod error;
mod ops;
mod schema;
mod writer;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use rusqlite::Connection;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::namespace::{Namespace, NamespaceSelector};
use shallot_proto::subaccount::SubaccountToken;
use shallot_proto::AccountId;

pub use error::StoreError;

use error::Context;
use writer::Writer;

/// Default database size cap: 3.5 GiB (spec §7.1, §13).
pub const DEFAULT_MAX_DB_BYTES: u64 = 3584 * 1024 * 1024;

/// Per-message overhead counted against retrieve's `max_size` (spec §7.3).
pub const RETRIEVE_OVERHEAD: usize = 100;

/// Length of a message hash's text form, also counted against `max_size`.
pub const RETRIEVE_HASH_LEN: usize = 43;

/// Largest `max_size` a retrieve may ask for (spec §4.2, §13).
pub const RETRIEVE_MAX_SIZE: usize = 7_800_000;

/// Revocations remembered per account; older ones silently lapse (spec §7.4).
pub const MAX_REVOCATIONS_PER_ACCOUNT: i64 = 50;

/// Default number of writes committed together at most.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// Read-only connections kept open for reuse.
const MAX_IDLE_READERS: usize = 16;

/// How much one account may hold in its public-inbox namespaces (`namespace % 10 == 0`, where
/// stores need no signature). Not in the reference, which has no per-account limit (spec §7.1):
/// without one, anyone can fill a node through a single account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxQuota {
    /// Most messages; 0 means unlimited.
    pub max_messages: u64,
    /// Most bytes of message data; 0 means unlimited.
    pub max_bytes: u64,
}

impl InboxQuota {
    /// No limit at all.
    pub const UNLIMITED: Self = Self {
        max_messages: 0,
        max_bytes: 0,
    };

    /// Whether an account holding `messages`/`bytes` may take one more message of `len` bytes.
    pub fn allows(&self, messages: u64, bytes: u64, len: usize) -> bool {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        (self.max_messages == 0 || messages < self.max_messages)
            && (self.max_bytes == 0 || bytes.saturating_add(len) <= self.max_bytes)
    }
}

impl Default for InboxQuota {
    /// 10 000 messages or 100 MiB per account.
    fn default() -> Self {
        Self {
            max_messages: 10_000,
            max_bytes: 100 * 1024 * 1024,
        }
    }
}

/// How the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Size cap of the database file; stores beyond it fail with [`StoreError::Full`].
    pub max_db_bytes: u64,
    /// Most writes committed in one transaction (at least 1).
    pub max_batch: usize,
    /// Per-account quota of public-inbox messages, enforced by [`Store::store`] and
    /// [`Store::import`] (new messages over it are refused; duplicates are not).
    pub inbox_quota: InboxQuota,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_db_bytes: DEFAULT_MAX_DB_BYTES,
            max_batch: DEFAULT_MAX_BATCH,
            inbox_quota: InboxQuota::default(),
        }
    }
}

/// A subaccount revocation as stored (spec §7.4), for handing it to another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// The account that revoked the token.
    pub account: AccountId,
    /// The revoked token.
    pub token: SubaccountToken,
    /// When it was revoked (ms); the newest 50 per account are kept.
    pub timestamp: u64,
}

/// Position in a revocation export (see [`Store::export_revocations`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RevocationCursor(i64);

/// What [`Store::import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Messages that were new and inserted.
    pub inserted: usize,
    /// New messages left out because their account's inbox quota was reached.
    pub over_quota: usize,
    /// Revocations recorded or refreshed.
    pub revocations: usize,
}

/// A message as stored: who it is for, where, its hash, times (ms) and raw data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The mailbox (type byte and key).
    pub account: AccountId,
    /// The namespace within the mailbox.
    pub namespace: Namespace,
    /// The message hash (spec §2.4); unique across the whole store.
    pub hash: MessageHash,
    /// The client-supplied timestamp (ms); never changed after the first store.
    pub timestamp: u64,
    /// When the message expires (ms since the Unix epoch).
    pub expiry: u64,
    /// The raw message bytes (shared, not copied, between the store, push and handoff).
    pub data: Bytes,
}

/// A message to store: the same fields as a stored one.
pub type NewMessage = StoredMessage;

/// What [`Store::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// The hash was new; the message was inserted.
    New,
    /// The hash existed with an earlier expiry, which was raised to this one (`already: true`).
    Extended {
        /// The stored (new) expiry.
        expiry: u64,
    },
    /// The hash existed with this expiry, at least as late as requested (`already: true`).
    Exists {
        /// The stored (unchanged) expiry.
        expiry: u64,
    },
}

impl StoreOutcome {
    /// Whether the hash was already stored (the response's `already` flag).
    pub fn already(self) -> bool {
        !matches!(self, Self::New)
    }
}

/// The result of [`Store::retrieve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retrieved {
    /// Messages in insertion order; the last one's hash is the next `last_hash`.
    pub messages: Vec<StoredMessage>,
    /// Whether more messages were left out because of `max_count` or `max_size`.
    pub more: bool,
}

/// How [`Store::expire`] treats each message's current expiry (spec §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireMode {
    /// Only lower expiries (`shorten: true`).
    Shorten,
    /// Only raise expiries (`extend: true`, or forced for subaccounts without Delete).
    Extend,
    /// Set whatever the current value (neither flag).
    Set,
}

/// The result of [`Store::expire`]; both lists sorted by hash text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpireResult {
    /// Messages whose expiry was set, with the new expiry.
    pub updated: Vec<(MessageHash, u64)>,
    /// Messages that exist but were not changed, with their current expiry.
    pub unchanged: Vec<(MessageHash, u64)>,
}

/// Position in a handoff export (see [`Store::export_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExportCursor(i64);

/// Counters for metrics (see [`Store::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Stored messages, including expired ones not yet swept.
    pub messages: u64,
    /// Accounts with messages or revocations.
    pub accounts: u64,
    /// Recorded subaccount revocations.
    pub revocations: u64,
    /// Size of the database pages in use or free (`page_count × page_size`).
    pub db_bytes: u64,
    /// Bytes of free pages inside the file, reused before it grows.
    pub free_bytes: u64,
    /// The configured size cap.
    pub max_db_bytes: u64,
    /// Write transactions committed since open.
    pub commits: u64,
    /// Writes in those transactions (writes ÷ commits = average group size).
    pub committed_writes: u64,
}

/// The message store: one writer thread and a pool of readers over one SQLite file.
pub struct Store {
    path: PathBuf,
    config: StoreConfig,
    readers: Mutex<Vec<Connection>>,
    writer: Writer,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens or creates the store at `path` (the node uses `<data-dir>/storage.db`), migrating
    /// older schemas and refusing newer ones.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = schema::open_writer(&path, config.max_db_bytes)?;
        // Opened after the writer so the file and its WAL exist.
        let reader = schema::open_reader(&path)?;
        let writer = Writer::spawn(conn, config.max_batch)?;
        Ok(Self {
            path,
            config,
            readers: Mutex::new(vec![reader]),
            writer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a query on a pooled read-only connection.
    fn read<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        let result = op(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result
    }

    /// Stores a client message (spec §7.2). A duplicate hash (looked up globally) only ever
    /// raises the stored expiry; a public-outbox store replaces the account's other messages
    /// in that namespace. Returns once committed.
    ///
    /// A new public-inbox message that would take its account over
    /// [`StoreConfig::inbox_quota`] fails with [`StoreError::QuotaExceeded`].
    pub fn store(&self, msg: &NewMessage) -> Result<StoreOutcome, StoreError> {
        let msg = msg.clone();
        let quota = self.config.inbox_quota;
        self.writer.write(move |conn| ops::store(conn, &msg, quota))
    }

    /// [`Store::store`] for async callers: awaits the group commit without occupying a thread.
    pub async fn store_async(&self, msg: NewMessage) -> Result<StoreOutcome, StoreError> {
        let quota = self.config.inbox_quota;
        self.writer
            .write_async(move |conn| ops::store(conn, &msg, quota))
            .await
    }

    /// Inserts messages pushed by a peer (spec §8.6): existing hashes are left alone (no expiry
    /// extension), namespaces are kept, and the inbox quota applies. Returns how many were new.
    pub fn bulk_store(&self, msgs: &[StoredMessage]) -> Result<usize, StoreError> {
        self.import(msgs, &[]).map(|outcome| outcome.inserted)
    }

    /// Inserts messages and revocations handed over by a peer (spec §8.6): messages as
    /// [`Store::bulk_store`] (new ones over their account's inbox quota are left out and
    /// counted), revocations keeping their time (a newer one refreshes it; the newest 50 per
    /// account are kept). One transaction.
    pub fn import(
        &self,
        msgs: &[StoredMessage],
        revocations: &[Revocation],
    ) -> Result<ImportOutcome, StoreError> {
        if msgs.is_empty() && revocations.is_empty() {
            return Ok(ImportOutcome::default());
        }
        let (msgs, revocations) = (msgs.to_vec(), revocations.to_vec());
        let quota = self.config.inbox_quota;
        self.writer
            .write(move |conn| ops::import(conn, &msgs, &revocations, quota))
    }

    /// Messages and bytes the account holds in public-inbox namespaces (what the quota counts).
    pub fn inbox_usage(&self, account: &AccountId) -> Result<(u64, u64), StoreError> {
        self.read(|conn| ops::inbox_usage(conn, account))
    }

    /// Up to `batch_size` recorded revocations after `after` (from the start if `None`), with
    /// the cursor to pass next time (`None` once nothing is left); for swarm handoff.
    pub fn export_revocations(
        &self,
        after: Option<RevocationCursor>,
        batch_size: usize,
    ) -> Result<(Vec<Revocation>, Option<RevocationCursor>), StoreError> {
        self.read(|conn| ops::export_revocations(conn, after.map(|c| c.0), batch_size))
            .map(|(rows, last)| (rows, last.map(RevocationCursor)))
    }

    /// Reads an account's messages in one namespace after `last_hash` (spec §7.3).
    ///
    /// `last_hash` is looked up within this account and namespace; unknown means "from the
    /// start". `max_count` of `None` or 0 means unlimited. `max_size` is in bytes (the caller
    /// turns negative request values into `7 800 000 / k`); the first message is always
    /// returned whatever its size.
    pub fn retrieve(
        &self,
        account: &AccountId,
        namespace: Namespace,
        last_hash: Option<&MessageHash>,
        max_count: Option<usize>,
        max_size: usize,
    ) -> Result<Retrieved, StoreError> {
        self.read(|conn| ops::retrieve(conn, account, namespace, last_hash, max_count, max_size))
    }

    /// Deletes these hashes of the account, in any namespace; returns the ones that existed,
    /// sorted by hash text.
    pub fn delete(
        &self,
        account: &AccountId,
        hashes: &[MessageHash],
    ) -> Result<Vec<MessageHash>, StoreError> {
        let (account, hashes) = (*account, hashes.to_vec());
        self.writer
            .write(move |conn| ops::delete(conn, &account, &hashes))
    }

    /// Deletes all of the account's messages in one or every namespace; returns what was
    /// deleted, sorted by namespace then hash text.
    pub fn delete_all(
        &self,
        account: &AccountId,
        selector: NamespaceSelector,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        let account = *account;
        self.writer
            .write(move |conn| ops::delete_all(conn, &account, selector))
    }

    /// Deletes the account's messages whose client-supplied timestamp is ≤ `before_ms`, in one
    /// or every namespace; returns what was deleted, sorted by namespace then hash text.
    pub fn delete_before(
        &self,
        account: &AccountId,
        selector: NamespaceSelector,
        before_ms: u64,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        let account = *account;
        self.writer
            .write(move |conn| ops::delete_before(conn, &account, selector, before_ms))
    }

    /// Lowers to `expiry` the expiry of the account's messages that expire later (shorten only,
    /// spec §4.6); returns the updated ones, sorted by namespace then hash text.
    pub fn expire_all(
        &self,
        account: &AccountId,
        selector: NamespaceSelector,
        expiry: u64,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        let account = *account;
        self.writer
            .write(move |conn| ops::expire_all(conn, &account, selector, expiry))
    }

    /// Sets per-message expiries of the account's messages (any namespace) under `mode`
    /// (spec §4.8); the caller has already capped them at now + 30 days. Unknown hashes are
    /// ignored.
    pub fn expire(
        &self,
        account: &AccountId,
        updates: &[(MessageHash, u64)],
        mode: ExpireMode,
    ) -> Result<ExpireResult, StoreError> {
        let (account, updates) = (*account, updates.to_vec());
        self.writer
            .write(move |conn| ops::expire(conn, &account, &updates, mode))
    }

    /// Current expiries of the account's messages named by `hashes` (spec §4.7), in request
    /// order; strings that are not hashes or not the account's messages are left out.
    pub fn get_expiries<S: AsRef<str>>(
        &self,
        account: &AccountId,
        hashes: &[S],
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|conn| ops::get_expiries(conn, account, hashes))
    }

    /// Revokes subaccount tokens for the account at time `now_ms` (spec §7.4); only the newest
    /// [`MAX_REVOCATIONS_PER_ACCOUNT`] revocations of an account are kept.
    pub fn revoke(
        &self,
        account: &AccountId,
        tokens: &[SubaccountToken],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let (account, tokens) = (*account, tokens.to_vec());
        self.writer
            .write(move |conn| ops::revoke(conn, &account, &tokens, now_ms))
    }

    /// Lifts revocations; returns how many of the tokens were revoked.
    pub fn unrevoke(
        &self,
        account: &AccountId,
        tokens: &[SubaccountToken],
    ) -> Result<usize, StoreError> {
        let (account, tokens) = (*account, tokens.to_vec());
        self.writer
            .write(move |conn| ops::unrevoke(conn, &account, &tokens))
    }

    /// Whether `token` is revoked for the account (signature checks, spec §2.5 step 3a).
    pub fn is_revoked(
        &self,
        account: &AccountId,
        token: &SubaccountToken,
    ) -> Result<bool, StoreError> {
        self.read(|conn| ops::is_revoked(conn, account, token))
    }

    /// Deletes every message with expiry ≤ `now_ms`; returns how many. The node calls this
    /// every 10 s.
    pub fn sweep_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.writer
            .write(move |conn| ops::sweep_expired(conn, now_ms))
    }

    /// Up to `batch_size` stored messages after `after` (from the start if `None`), oldest row
    /// first, with the cursor to pass next time (`None` once nothing is left). For swarm handoff
    /// from async code: each call is one short read, so nothing is pinned between calls.
    pub fn export_batch(
        &self,
        after: Option<ExportCursor>,
        batch_size: usize,
    ) -> Result<(Vec<StoredMessage>, Option<ExportCursor>), StoreError> {
        self.read(|conn| ops::export_batch(conn, after, batch_size))
    }

    /// Calls `f` with every stored message, `batch_size` at a time, without loading the whole
    /// store; `f` may stop early with `ControlFlow::Break`. Messages stored meanwhile may or may
    /// not be included.
    pub fn for_each_batch(
        &self,
        batch_size: usize,
        mut f: impl FnMut(&[StoredMessage]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut cursor = None;
        loop {
            let (batch, next) = self.export_batch(cursor, batch_size)?;
            if batch.is_empty() || f(&batch).is_break() {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Counts and sizes for metrics. Counting is a full index scan: call it every few seconds,
    /// not per request.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        const CONTEXT: &str = "reading store statistics";
        let mut stats = self.read(|conn| {
            let count = |sql: &str| -> Result<u64, StoreError> {
                conn.query_row(sql, [], |row| row.get::<_, i64>(0))
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .context(CONTEXT)
            };
            let page_size = count("PRAGMA page_size")?;
            Ok(StoreStats {
                messages: count("SELECT count(*) FROM messages")?,
                accounts: count("SELECT count(*) FROM accounts")?,
                revocations: count("SELECT count(*) FROM revocations")?,
                db_bytes: count("PRAGMA page_count")?.saturating_mul(page_size),
                free_bytes: count("PRAGMA freelist_count")?.saturating_mul(page_size),
                ..StoreStats::default()
            })
        })?;
        stats.max_db_bytes = self.config.max_db_bytes;
        let metrics = self.writer.metrics();
        stats.commits = metrics.commits.load(Ordering::Relaxed);
        stats.committed_writes = metrics.jobs.load(Ordering::Relaxed);
        Ok(stats)
    }

    /// Copies the WAL into the database file and truncates it (`wal_checkpoint(TRUNCATE)`), for
    /// a graceful shutdown or a quiet moment. Returns whether every WAL frame was copied (false
    /// if a reader held an old snapshot).
    pub fn checkpoint(&self) -> Result<bool, StoreError> {
        self.writer.alone(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|busy| busy == 0)
            .context("checkpointing the WAL")
        })
    }
}
