//! Messages and the `seen` hashes that deduplicate them, keyed by [`MessageHash`] (stored as
//! its base64 text).

use rusqlite::{params, OptionalExtension};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::SessionId;

use super::{
    aad, hash_from_sql, seal_with, to_i64, to_u64, ConversationState, Db, DbError, Direction,
    MessageState, StoredMessage,
};

impl Db {
    /// Whether `hash` was already processed (stored as a message, or seen and dropped).
    pub fn is_seen(&self, hash: &MessageHash) -> Result<bool, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM seen WHERE hash = ?1",
                params![hash.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records `hash` as processed, belonging to `message` (or dropped when `None`).
    pub fn mark_seen(
        &self,
        hash: &MessageHash,
        message: Option<&MessageHash>,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO seen (hash, message) VALUES (?1, ?2)",
            params![hash.to_string(), message.map(ToString::to_string)],
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
        let id = m.id.to_string();
        let sender = seal_with(
            &self.cipher,
            &aad("messages", "sender", &id),
            m.sender.to_string().as_bytes(),
        );
        let body = seal_with(
            &self.cipher,
            &aad("messages", "body", &id),
            m.body.as_bytes(),
        );
        let added = tx.execute(
            "INSERT OR IGNORE INTO messages
                 (id, conversation, direction, sender, timestamp, body, state, stored_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
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
            params![id],
        )?;
        tx.commit()?;
        Ok(added == 1)
    }

    /// Sets when a message disappears locally.
    pub fn set_expires(&self, id: &MessageHash, expires_ms: u64) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE messages SET expires_ms = ?2 WHERE id = ?1",
            params![id.to_string(), to_i64(expires_ms)],
        )?;
        Ok(())
    }

    /// When a message disappears locally, if it does.
    pub fn expires(&self, id: &MessageHash) -> Result<Option<u64>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT expires_ms FROM messages WHERE id = ?1",
                params![id.to_string()],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .map(to_u64))
    }

    /// Deletes the messages (1:1 and group) whose disappearing time is at or before `now_ms`;
    /// returns how many.
    pub fn delete_expired(&self, now_ms: u64) -> Result<usize, DbError> {
        let now = to_i64(now_ms);
        let direct = self.conn.execute(
            "DELETE FROM messages WHERE expires_ms IS NOT NULL AND expires_ms <= ?1",
            params![now],
        )?;
        let group = self.conn.execute(
            "DELETE FROM group_messages WHERE expires_ms IS NOT NULL AND expires_ms <= ?1",
            params![now],
        )?;
        Ok(direct + group)
    }

    /// Records the hash of a sent message's sync copy in our own swarm.
    pub fn set_sync_hash(&self, id: &MessageHash, sync_hash: &MessageHash) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE messages SET sync_hash = ?2 WHERE id = ?1",
            params![id.to_string(), sync_hash.to_string()],
        )?;
        Ok(())
    }

    /// The hash of a sent message's sync copy, if recorded.
    pub fn sync_hash(&self, id: &MessageHash) -> Result<Option<MessageHash>, DbError> {
        self.conn
            .query_row(
                "SELECT sync_hash FROM messages WHERE id = ?1",
                params![id.to_string()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten()
            .map(|h| hash_from_sql(&h, "messages.sync_hash"))
            .transpose()
    }

    /// Deletes one message locally; returns whether it existed.
    pub fn delete_message(&self, id: &MessageHash) -> Result<bool, DbError> {
        Ok(self.conn.execute(
            "DELETE FROM messages WHERE id = ?1",
            params![id.to_string()],
        )? == 1)
    }

    /// The ids of messages whose id (as text) starts with `prefix`, as a user types it.
    pub fn find_messages(&self, prefix: &str) -> Result<Vec<MessageHash>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM messages WHERE substr(id, 1, length(?1)) = ?1")?;
        let ids = stmt
            .query_map(params![prefix], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter()
            .map(|id| hash_from_sql(id, "messages.id"))
            .collect()
    }

    /// Updates a message's delivery state.
    pub fn set_state(&self, id: &MessageHash, state: MessageState) -> Result<(), DbError> {
        let (state, stored_on) = state.to_sql();
        self.conn.execute(
            "UPDATE messages SET state = ?2, stored_on = ?3 WHERE id = ?1",
            params![id.to_string(), state, stored_on],
        )?;
        Ok(())
    }

    /// One message by id.
    pub fn message(&self, id: &MessageHash) -> Result<Option<StoredMessage>, DbError> {
        self.query_messages("WHERE id = ?1", params![id.to_string()])
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

    pub(super) fn query_messages(
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
                id: hash_from_sql(&id, "messages.id")?,
            });
        }
        Ok(out)
    }
}
