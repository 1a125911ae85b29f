//! The SQL behind each store operation; every function runs on a connection handed to it (the
//! writer's, inside a transaction, or a pooled reader's).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::namespace::{Namespace, NamespaceSelector};
use shallot_proto::subaccount::SubaccountToken;
use shallot_proto::AccountId;

use crate::error::{Context, StoreError};
use crate::{
    ExpireMode, ExpireResult, ExportCursor, ImportOutcome, InboxQuota, Retrieved, Revocation,
    StoreOutcome, StoredMessage, MAX_REVOCATIONS_PER_ACCOUNT, RETRIEVE_HASH_LEN, RETRIEVE_OVERHEAD,
};

/// SQLite integers are signed; protocol times are unsigned. Saturate rather than wrap.
pub(crate) fn sql_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn sql_usize(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A non-negative integer column read as `u64`.
struct U64(u64);

impl FromSql for U64 {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let raw = value.as_i64()?;
        u64::try_from(raw)
            .map(U64)
            .map_err(|_| FromSqlError::OutOfRange(raw))
    }
}

/// A message hash column (32 raw bytes).
struct HashCol(MessageHash);

impl FromSql for HashCol {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let blob = value.as_blob()?;
        <[u8; 32]>::try_from(blob)
            .map(|bytes| HashCol(MessageHash::from_bytes(bytes)))
            .map_err(|_| FromSqlError::InvalidBlobSize {
                expected_size: 32,
                blob_size: blob.len(),
            })
    }
}

/// A namespace column.
struct NsCol(Namespace);

impl FromSql for NsCol {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let raw = value.as_i64()?;
        i16::try_from(raw)
            .map(|ns| NsCol(Namespace(ns)))
            .map_err(|_| FromSqlError::OutOfRange(raw))
    }
}

fn ns_hash(row: &Row<'_>) -> rusqlite::Result<(Namespace, MessageHash)> {
    Ok((row.get::<_, NsCol>(0)?.0, row.get::<_, HashCol>(1)?.0))
}

/// Sorts by namespace, then by the hash's text form (the order responses list hashes in).
fn sort_ns_hashes(items: &mut [(Namespace, MessageHash)]) {
    items.sort_by_cached_key(|(ns, hash)| (*ns, hash.to_string()));
}

fn selector_param(selector: NamespaceSelector) -> Option<i64> {
    match selector {
        NamespaceSelector::One(ns) => Some(i64::from(ns.0)),
        NamespaceSelector::All => None,
    }
}

/// The row id of an account, if it has a row.
fn account_row(conn: &Connection, account: &AccountId) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM accounts WHERE pubkey = ?1 AND type = ?2")?
        .query_row(
            params![&account.key()[..], i64::from(account.prefix())],
            |row| row.get(0),
        )
        .optional()
}

/// The row id of an account, creating the row if needed.
fn ensure_account(conn: &Connection, account: &AccountId) -> rusqlite::Result<i64> {
    if let Some(id) = account_row(conn, account)? {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO accounts (type, pubkey) VALUES (?1, ?2)")?
        .execute(params![i64::from(account.prefix()), &account.key()[..]])?;
    Ok(conn.last_insert_rowid())
}

fn insert_message(conn: &Connection, owner: i64, msg: &StoredMessage) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO messages (hash, owner, namespace, timestamp, expiry, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (hash) DO NOTHING",
    )?
    .execute(params![
        &msg.hash.as_bytes()[..],
        owner,
        i64::from(msg.namespace.0),
        sql_u64(msg.timestamp),
        sql_u64(msg.expiry),
        &msg.data[..],
    ])
}

/// Messages and bytes an account row holds in public-inbox namespaces (0, 0 without a row).
fn usage_of(conn: &Connection, owner: Option<i64>) -> rusqlite::Result<(u64, u64)> {
    let Some(owner) = owner else {
        return Ok((0, 0));
    };
    conn.prepare_cached("SELECT inbox_messages, inbox_bytes FROM accounts WHERE id = ?1")?
        .query_row([owner], |row| {
            Ok((row.get::<_, U64>(0)?.0, row.get::<_, U64>(1)?.0))
        })
        .optional()
        .map(Option::unwrap_or_default)
}

/// The quota refusal for a new message, if it is a public-inbox message over the quota.
fn over_quota(
    conn: &Connection,
    owner: Option<i64>,
    msg: &StoredMessage,
    quota: InboxQuota,
) -> rusqlite::Result<Option<StoreError>> {
    if !msg.namespace.is_public_inbox() || quota == InboxQuota::UNLIMITED {
        return Ok(None);
    }
    let (messages, bytes) = usage_of(conn, owner)?;
    Ok((!quota.allows(messages, bytes, msg.data.len()))
        .then_some(StoreError::QuotaExceeded { messages, bytes }))
}

/// What the quota counts for an account (spec-external; see [`InboxQuota`]).
pub(crate) fn inbox_usage(
    conn: &Connection,
    account: &AccountId,
) -> Result<(u64, u64), StoreError> {
    const CONTEXT: &str = "reading an account's inbox usage";
    let owner = account_row(conn, account).context(CONTEXT)?;
    usage_of(conn, owner).context(CONTEXT)
}

/// Spec §7.2: outbox replacement, then global duplicate lookup (extend only), else insert
/// (unless the account's inbox quota is reached).
pub(crate) fn store(
    conn: &Connection,
    msg: &StoredMessage,
    quota: InboxQuota,
) -> Result<StoreOutcome, StoreError> {
    const CONTEXT: &str = "storing a message";
    let hash = &msg.hash.as_bytes()[..];
    if msg.namespace.is_public_outbox() {
        conn.prepare_cached(
            "DELETE FROM messages
             WHERE owner = (SELECT id FROM accounts WHERE pubkey = ?1 AND type = ?2)
               AND namespace = ?3 AND hash != ?4",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                &msg.account.key()[..],
                i64::from(msg.account.prefix()),
                i64::from(msg.namespace.0),
                hash,
            ])
        })
        .context(CONTEXT)?;
    }
    let existing: Option<U64> = conn
        .prepare_cached("SELECT expiry FROM messages WHERE hash = ?1")
        .and_then(|mut stmt| stmt.query_row([hash], |row| row.get(0)).optional())
        .context(CONTEXT)?;
    match existing {
        Some(U64(old)) if old < msg.expiry => {
            conn.prepare_cached("UPDATE messages SET expiry = ?1 WHERE hash = ?2")
                .and_then(|mut stmt| stmt.execute(params![sql_u64(msg.expiry), hash]))
                .context(CONTEXT)?;
            Ok(StoreOutcome::Extended { expiry: msg.expiry })
        }
        Some(U64(old)) => Ok(StoreOutcome::Exists { expiry: old }),
        None => {
            let existing_owner = account_row(conn, &msg.account).context(CONTEXT)?;
            if let Some(refusal) = over_quota(conn, existing_owner, msg, quota).context(CONTEXT)? {
                return Err(refusal);
            }
            let owner = match existing_owner {
                Some(id) => id,
                None => ensure_account(conn, &msg.account).context(CONTEXT)?,
            };
            insert_message(conn, owner, msg).context(CONTEXT)?;
            Ok(StoreOutcome::New)
        }
    }
}

/// Spec §8.6: insert-or-ignore, namespaces kept, no expiry extension, inbox quota applied;
/// then revocations, keeping their times.
pub(crate) fn import(
    conn: &Connection,
    msgs: &[StoredMessage],
    revocations: &[Revocation],
    quota: InboxQuota,
) -> Result<ImportOutcome, StoreError> {
    const CONTEXT: &str = "bulk-storing messages from a peer";
    let mut owners: HashMap<AccountId, i64> = HashMap::new();
    let mut outcome = ImportOutcome::default();
    for msg in msgs {
        let owner = if let Some(&id) = owners.get(&msg.account) {
            id
        } else {
            let id = ensure_account(conn, &msg.account).context(CONTEXT)?;
            owners.insert(msg.account, id);
            id
        };
        if over_quota(conn, Some(owner), msg, quota)
            .context(CONTEXT)?
            .is_some()
        {
            // Only a new message counts against the quota; a duplicate is not "over" it.
            let exists: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE hash = ?1)")
                .and_then(|mut stmt| stmt.query_row([&msg.hash.as_bytes()[..]], |row| row.get(0)))
                .context(CONTEXT)?;
            if !exists {
                outcome.over_quota += 1;
            }
            continue;
        }
        outcome.inserted += insert_message(conn, owner, msg).context(CONTEXT)?;
    }
    for revocation in revocations {
        revoke(
            conn,
            &revocation.account,
            &[revocation.token],
            revocation.timestamp,
        )?;
        outcome.revocations += 1;
    }
    // Accounts created only for duplicates would otherwise linger without messages.
    for id in owners.into_values() {
        conn.prepare_cached(
            "DELETE FROM accounts WHERE id = ?1
               AND NOT EXISTS (SELECT 1 FROM messages WHERE owner = ?1)
               AND NOT EXISTS (SELECT 1 FROM revocations WHERE owner = ?1)",
        )
        .and_then(|mut stmt| stmt.execute([id]))
        .context(CONTEXT)?;
    }
    Ok(outcome)
}

/// Up to `limit` revocations after row `after`, in row order, with the last row id.
pub(crate) fn export_revocations(
    conn: &Connection,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<Revocation>, Option<i64>), StoreError> {
    const CONTEXT: &str = "reading revocations for handoff";
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.rowid, a.type, a.pubkey, r.token, r.timestamp
             FROM revocations r JOIN accounts a ON a.id = r.owner
             WHERE r.rowid > ?1 ORDER BY r.rowid LIMIT ?2",
        )
        .context(CONTEXT)?;
    let mut rows = stmt
        .query(params![after.unwrap_or(i64::MIN), sql_usize(limit.max(1))])
        .context(CONTEXT)?;
    let (mut out, mut last) = (Vec::new(), None);
    while let Some(row) = rows.next().context(CONTEXT)? {
        let id: i64 = row.get(0).context(CONTEXT)?;
        last = Some(id);
        let prefix: u8 = row.get(1).context(CONTEXT)?;
        let key = row
            .get_ref(2)
            .and_then(|v| Ok(v.as_blob()?))
            .context(CONTEXT)?;
        let token = row
            .get_ref(3)
            .and_then(|v| Ok(v.as_blob()?))
            .context(CONTEXT)?;
        let timestamp = row.get::<_, U64>(4).context(CONTEXT)?.0;
        // A malformed row (never written by this build) is skipped, not handed on.
        let (Ok(key), Ok(token)) = (
            <[u8; 32]>::try_from(key),
            SubaccountToken::from_bytes(token),
        ) else {
            continue;
        };
        out.push(Revocation {
            account: AccountId::new(shallot_proto::AccountKind::from_prefix(prefix), key),
            token,
            timestamp,
        });
    }
    Ok((out, last))
}

/// Spec §7.3.
pub(crate) fn retrieve(
    conn: &Connection,
    account: &AccountId,
    namespace: Namespace,
    last_hash: Option<&MessageHash>,
    max_count: Option<usize>,
    max_size: usize,
) -> Result<Retrieved, StoreError> {
    const CONTEXT: &str = "retrieving messages";
    let mut out = Retrieved::default();
    let Some(owner) = account_row(conn, account).context(CONTEXT)? else {
        return Ok(out);
    };
    let ns = i64::from(namespace.0);
    let mut after = i64::MIN;
    if let Some(last) = last_hash {
        let found: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM messages WHERE hash = ?1 AND owner = ?2 AND namespace = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![&last.as_bytes()[..], owner, ns], |row| row.get(0))
                    .optional()
            })
            .context(CONTEXT)?;
        if let Some(id) = found {
            after = id;
        }
    }
    let max_count = max_count.filter(|&count| count > 0);
    let limit = max_count.map_or(-1, |count| sql_usize(count.saturating_add(1)));
    let mut stmt = conn
        .prepare_cached(
            "SELECT hash, timestamp, expiry, data FROM messages
             WHERE owner = ?1 AND namespace = ?2 AND id > ?3
             ORDER BY id LIMIT ?4",
        )
        .context(CONTEXT)?;
    let mut rows = stmt
        .query(params![owner, ns, after, limit])
        .context(CONTEXT)?;
    let mut total: usize = 0;
    while let Some(row) = rows.next().context(CONTEXT)? {
        if max_count.is_some_and(|count| out.messages.len() >= count) {
            out.more = true;
            break;
        }
        let data = row.get_ref(3).context(CONTEXT)?;
        let data = data
            .as_blob()
            .map_err(rusqlite::Error::from)
            .context(CONTEXT)?;
        total = total.saturating_add(retrieve_size(data.len()));
        if !out.messages.is_empty() && total > max_size {
            out.more = true;
            break;
        }
        out.messages.push(StoredMessage {
            account: *account,
            namespace,
            hash: row.get::<_, HashCol>(0).context(CONTEXT)?.0,
            timestamp: row.get::<_, U64>(1).context(CONTEXT)?.0,
            expiry: row.get::<_, U64>(2).context(CONTEXT)?.0,
            data: Bytes::copy_from_slice(data),
        });
    }
    Ok(out)
}

/// What one message counts against `max_size`: overhead, hash text, base64 data (spec §7.3).
pub(crate) fn retrieve_size(data_len: usize) -> usize {
    RETRIEVE_OVERHEAD
        .saturating_add(RETRIEVE_HASH_LEN)
        .saturating_add(data_len.saturating_mul(4) / 3)
}

/// Deletes the given hashes of one account (any namespace); returns those deleted, sorted.
pub(crate) fn delete(
    conn: &Connection,
    account: &AccountId,
    hashes: &[MessageHash],
) -> Result<Vec<MessageHash>, StoreError> {
    const CONTEXT: &str = "deleting messages";
    let Some(owner) = account_row(conn, account).context(CONTEXT)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare_cached("DELETE FROM messages WHERE hash = ?1 AND owner = ?2")
        .context(CONTEXT)?;
    let mut deleted = Vec::new();
    for hash in hashes {
        if stmt
            .execute(params![&hash.as_bytes()[..], owner])
            .context(CONTEXT)?
            > 0
        {
            deleted.push(*hash);
        }
    }
    deleted.sort_by_cached_key(ToString::to_string);
    deleted.dedup();
    Ok(deleted)
}

/// Runs a `... RETURNING namespace, hash` statement for one account and sorts the result.
fn ns_hash_query(
    conn: &Connection,
    account: &AccountId,
    sql: &str,
    selector: NamespaceSelector,
    value: Option<i64>,
    context: &'static str,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    let Some(owner) = account_row(conn, account).context(context)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(sql).context(context)?;
    let ns = selector_param(selector);
    let rows = match value {
        Some(value) => stmt.query_map(params![owner, ns, value], ns_hash),
        None => stmt.query_map(params![owner, ns], ns_hash),
    };
    let mut out = rows
        .context(context)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .context(context)?;
    sort_ns_hashes(&mut out);
    Ok(out)
}

/// Deletes every message of an account in one or all namespaces.
pub(crate) fn delete_all(
    conn: &Connection,
    account: &AccountId,
    selector: NamespaceSelector,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    ns_hash_query(
        conn,
        account,
        "DELETE FROM messages WHERE owner = ?1 AND (?2 IS NULL OR namespace = ?2)
         RETURNING namespace, hash",
        selector,
        None,
        "deleting all messages",
    )
}

/// Deletes messages whose client-supplied timestamp is at or before `before`.
pub(crate) fn delete_before(
    conn: &Connection,
    account: &AccountId,
    selector: NamespaceSelector,
    before: u64,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    ns_hash_query(
        conn,
        account,
        "DELETE FROM messages WHERE owner = ?1 AND (?2 IS NULL OR namespace = ?2)
         AND timestamp <= ?3 RETURNING namespace, hash",
        selector,
        Some(sql_u64(before)),
        "deleting messages before a time",
    )
}

/// Shortens (never extends) the expiry of an account's messages.
pub(crate) fn expire_all(
    conn: &Connection,
    account: &AccountId,
    selector: NamespaceSelector,
    expiry: u64,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    ns_hash_query(
        conn,
        account,
        "UPDATE messages SET expiry = ?3
         WHERE owner = ?1 AND (?2 IS NULL OR namespace = ?2) AND expiry > ?3
         RETURNING namespace, hash",
        selector,
        Some(sql_u64(expiry)),
        "shortening expiries",
    )
}

/// Per-hash expiry update (spec §4.8 step 6).
pub(crate) fn expire(
    conn: &Connection,
    account: &AccountId,
    updates: &[(MessageHash, u64)],
    mode: ExpireMode,
) -> Result<ExpireResult, StoreError> {
    const CONTEXT: &str = "updating expiries";
    let mut result = ExpireResult::default();
    let Some(owner) = account_row(conn, account).context(CONTEXT)? else {
        return Ok(result);
    };
    let mut current = conn
        .prepare_cached("SELECT expiry FROM messages WHERE hash = ?1 AND owner = ?2")
        .context(CONTEXT)?;
    let mut update = conn
        .prepare_cached("UPDATE messages SET expiry = ?1 WHERE hash = ?2 AND owner = ?3")
        .context(CONTEXT)?;
    // Per hash: whether it was updated (a hash listed twice ends in its last state) and expiry.
    let mut outcome: HashMap<MessageHash, (bool, u64)> = HashMap::new();
    for &(hash, new) in updates {
        let bytes = &hash.as_bytes()[..];
        let Some(U64(old)) = current
            .query_row(params![bytes, owner], |row| row.get(0))
            .optional()
            .context(CONTEXT)?
        else {
            continue;
        };
        let apply = match mode {
            ExpireMode::Extend => old < new,
            ExpireMode::Shorten => old > new,
            ExpireMode::Set => true,
        };
        if apply {
            update
                .execute(params![sql_u64(new), bytes, owner])
                .context(CONTEXT)?;
            outcome.insert(hash, (true, new));
        } else {
            outcome.entry(hash).or_insert((false, old));
        }
    }
    for (hash, (updated, expiry)) in outcome {
        if updated {
            result.updated.push((hash, expiry));
        } else {
            result.unchanged.push((hash, expiry));
        }
    }
    result
        .updated
        .sort_by_cached_key(|(hash, _)| hash.to_string());
    result
        .unchanged
        .sort_by_cached_key(|(hash, _)| hash.to_string());
    Ok(result)
}

/// Current expiries of the given hashes of one account; text that is not a hash is skipped.
pub(crate) fn get_expiries<S: AsRef<str>>(
    conn: &Connection,
    account: &AccountId,
    hashes: &[S],
) -> Result<Vec<(String, u64)>, StoreError> {
    const CONTEXT: &str = "reading expiries";
    let Some(owner) = account_row(conn, account).context(CONTEXT)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare_cached("SELECT expiry FROM messages WHERE hash = ?1 AND owner = ?2")
        .context(CONTEXT)?;
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut seen = HashSet::new();
    for text in hashes {
        let text = text.as_ref();
        let Ok(hash) = text.parse::<MessageHash>() else {
            continue;
        };
        if !seen.insert(hash) {
            continue;
        }
        let expiry: Option<U64> = stmt
            .query_row(params![&hash.as_bytes()[..], owner], |row| row.get(0))
            .optional()
            .context(CONTEXT)?;
        if let Some(U64(expiry)) = expiry {
            out.push((text.to_owned(), expiry));
        }
    }
    Ok(out)
}

/// Records revocations (refreshing the time of known ones), then keeps the newest 50.
pub(crate) fn revoke(
    conn: &Connection,
    account: &AccountId,
    tokens: &[SubaccountToken],
    now_ms: u64,
) -> Result<(), StoreError> {
    const CONTEXT: &str = "revoking subaccounts";
    if tokens.is_empty() {
        return Ok(());
    }
    let owner = ensure_account(conn, account).context(CONTEXT)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO revocations (owner, token, timestamp) VALUES (?1, ?2, ?3)
             ON CONFLICT (owner, token) DO UPDATE SET timestamp = excluded.timestamp
             WHERE excluded.timestamp > timestamp",
        )
        .context(CONTEXT)?;
    for token in tokens {
        insert
            .execute(params![owner, &token.as_bytes()[..], sql_u64(now_ms)])
            .context(CONTEXT)?;
    }
    conn.prepare_cached(
        "DELETE FROM revocations WHERE owner = ?1 AND rowid NOT IN (
             SELECT rowid FROM revocations WHERE owner = ?1
             ORDER BY timestamp DESC, rowid DESC LIMIT ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![owner, MAX_REVOCATIONS_PER_ACCOUNT]))
    .context(CONTEXT)?;
    Ok(())
}

/// Removes revocations; returns how many existed.
pub(crate) fn unrevoke(
    conn: &Connection,
    account: &AccountId,
    tokens: &[SubaccountToken],
) -> Result<usize, StoreError> {
    const CONTEXT: &str = "unrevoking subaccounts";
    let Some(owner) = account_row(conn, account).context(CONTEXT)? else {
        return Ok(0);
    };
    let mut stmt = conn
        .prepare_cached("DELETE FROM revocations WHERE owner = ?1 AND token = ?2")
        .context(CONTEXT)?;
    let mut removed = 0;
    for token in tokens {
        removed += stmt
            .execute(params![owner, &token.as_bytes()[..]])
            .context(CONTEXT)?;
    }
    Ok(removed)
}

/// Whether a token is revoked for an account.
pub(crate) fn is_revoked(
    conn: &Connection,
    account: &AccountId,
    token: &SubaccountToken,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM revocations JOIN accounts ON accounts.id = revocations.owner
         WHERE accounts.pubkey = ?1 AND accounts.type = ?2 AND revocations.token = ?3)",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                &account.key()[..],
                i64::from(account.prefix()),
                &token.as_bytes()[..]
            ],
            |row| row.get(0),
        )
    })
    .context("checking a subaccount revocation")
}

/// Deletes every message whose expiry is at or before `now_ms`.
pub(crate) fn sweep_expired(conn: &Connection, now_ms: u64) -> Result<usize, StoreError> {
    conn.prepare_cached("DELETE FROM messages WHERE expiry <= ?1")
        .and_then(|mut stmt| stmt.execute([sql_u64(now_ms)]))
        .context("deleting expired messages")
}

/// Up to `limit` messages after the cursor, in row order, with their accounts.
pub(crate) fn export_batch(
    conn: &Connection,
    after: Option<ExportCursor>,
    limit: usize,
) -> Result<(Vec<StoredMessage>, Option<ExportCursor>), StoreError> {
    const CONTEXT: &str = "reading messages for handoff";
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.id, a.type, a.pubkey, m.namespace, m.hash, m.timestamp, m.expiry, m.data
             FROM messages m JOIN accounts a ON a.id = m.owner
             WHERE m.id > ?1 ORDER BY m.id LIMIT ?2",
        )
        .context(CONTEXT)?;
    let start = after.map_or(i64::MIN, |cursor| cursor.0);
    let mut last = None;
    let mut out = Vec::new();
    let mut rows = stmt
        .query(params![start, sql_usize(limit.max(1))])
        .context(CONTEXT)?;
    while let Some(row) = rows.next().context(CONTEXT)? {
        let (id, msg) = export_row(row).context(CONTEXT)?;
        last = Some(ExportCursor(id));
        out.push(msg);
    }
    Ok((out, last))
}

fn export_row(row: &Row<'_>) -> rusqlite::Result<(i64, StoredMessage)> {
    let prefix: u8 = row.get(1)?;
    let key = row.get_ref(2)?.as_blob()?;
    let key = <[u8; 32]>::try_from(key).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Blob,
            Box::new(FromSqlError::InvalidBlobSize {
                expected_size: 32,
                blob_size: key.len(),
            }),
        )
    })?;
    let account = AccountId::new(shallot_proto::AccountKind::from_prefix(prefix), key);
    Ok((
        row.get(0)?,
        StoredMessage {
            account,
            namespace: row.get::<_, NsCol>(3)?.0,
            hash: row.get::<_, HashCol>(4)?.0,
            timestamp: row.get::<_, U64>(5)?.0,
            expiry: row.get::<_, U64>(6)?.0,
            data: Bytes::from(row.get::<_, Vec<u8>>(7)?),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(3))
            .expect("query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows");
        rows.join("; ")
    }

    #[test]
    fn hot_queries_use_indexes_without_sorting() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let conn = crate::schema::open_writer(&dir.path().join("db"), 1 << 30).expect("open");
        let retrieve = plan(
            &conn,
            "SELECT hash, timestamp, expiry, data FROM messages
             WHERE owner = 1 AND namespace = 2 AND id > 3 ORDER BY id LIMIT 4",
        );
        assert!(retrieve.contains("messages_owner_namespace"), "{retrieve}");
        assert!(!retrieve.contains("TEMP B-TREE"), "{retrieve}");
        let sweep = plan(&conn, "DELETE FROM messages WHERE expiry <= 5");
        assert!(sweep.contains("messages_expiry"), "{sweep}");
        let by_hash = plan(&conn, "SELECT expiry FROM messages WHERE hash = x'00'");
        assert!(by_hash.contains("autoindex"), "{by_hash}");
    }
}
