//! Groups and their messages. A group's record (keys, configs, credentials, status) is one
//! sealed JSON value per row; its messages are rows like 1:1 messages, sender and body sealed.
//! Visible without the key: which group IDs we are in, and per message its hash, group,
//! direction, timestamp and state.

use rusqlite::{params, OptionalExtension};
use shallot_proto::group::GroupId;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::SessionId;

use super::{aad, hash_from_sql, seal_with, to_i64, to_u64, Db, DbError, Direction, MessageState};
use crate::groups::{Group, GroupRecord};

/// A message of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroupMessage {
    /// Its hash on the group swarm.
    pub id: MessageHash,
    /// The group.
    pub group: GroupId,
    /// Ours or someone else's.
    pub direction: Direction,
    /// Who wrote it (from the message's signature).
    pub sender: SessionId,
    /// Its timestamp (ms).
    pub timestamp: u64,
    /// The text.
    pub body: String,
    /// Delivery state.
    pub state: MessageState,
}

impl Db {
    /// A group by ID.
    pub fn group(&self, id: &GroupId) -> Result<Option<Group>, DbError> {
        let key = id.to_string();
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT record FROM groups WHERE id = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?;
        sealed.map(|s| self.open_group(*id, &s)).transpose()
    }

    /// Every group, most recently active first.
    pub fn groups(&self) -> Result<Vec<Group>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, record FROM groups ORDER BY last_ms DESC, id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, sealed) = row?;
            let id: GroupId = id
                .parse()
                .map_err(|_| DbError::Corrupt("groups.id".into()))?;
            out.push(self.open_group(id, &sealed)?);
        }
        Ok(out)
    }

    fn open_group(&self, id: GroupId, sealed: &[u8]) -> Result<Group, DbError> {
        let json = self.open_value(&aad("groups", "record", &id.to_string()), sealed)?;
        let record: GroupRecord =
            serde_json::from_slice(&json).map_err(|_| DbError::Corrupt("groups.record".into()))?;
        Ok(Group { id, record })
    }

    /// Creates or replaces a group's record, bumping its activity time to `now_ms`.
    pub fn save_group(&self, group: &Group, now_ms: u64) -> Result<(), DbError> {
        let key = group.id.to_string();
        let json = serde_json::to_vec(&group.record)
            .map_err(|_| DbError::Corrupt("groups.record".into()))?;
        let sealed = self.seal(&aad("groups", "record", &key), &json);
        self.conn.execute(
            "INSERT INTO groups (id, record, last_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET record = excluded.record,
                 last_ms = max(last_ms, excluded.last_ms)",
            params![key, sealed, to_i64(now_ms)],
        )?;
        Ok(())
    }

    /// Bumps a group's activity time to `now_ms`, as [`Self::save_group`] does, leaving its
    /// record as it is.
    pub fn touch_group(&self, id: &GroupId, now_ms: u64) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE groups SET last_ms = max(last_ms, ?2) WHERE id = ?1",
            params![id.to_string(), to_i64(now_ms)],
        )?;
        Ok(())
    }

    /// Forgets a group and its messages (left or declined).
    pub fn delete_group(&self, id: &GroupId) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM group_messages WHERE group_id = ?1",
            params![id.to_string()],
        )?;
        self.conn
            .execute("DELETE FROM groups WHERE id = ?1", params![id.to_string()])?;
        Ok(())
    }

    /// Stores a group message unless its id exists; returns whether it was new. Its id is
    /// marked seen.
    pub fn insert_group_message(&mut self, m: &StoredGroupMessage) -> Result<bool, DbError> {
        let id = m.id.to_string();
        let sender = self.seal(
            &aad("group_messages", "sender", &id),
            m.sender.to_string().as_bytes(),
        );
        let body = seal_with(
            &self.cipher,
            &aad("group_messages", "body", &id),
            m.body.as_bytes(),
        );
        let (state, stored_on) = m.state.to_sql();
        let tx = self.conn.transaction()?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO group_messages
                 (id, group_id, direction, sender, timestamp, body, state, stored_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                m.group.to_string(),
                i64::from(m.direction == Direction::Outgoing),
                sender,
                to_i64(m.timestamp),
                body,
                state,
                stored_on
            ],
        )?;
        tx.execute(
            "UPDATE groups SET last_ms = max(last_ms, ?2) WHERE id = ?1",
            params![m.group.to_string(), to_i64(m.timestamp)],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO seen (hash, message) VALUES (?1, ?1)",
            params![id],
        )?;
        tx.commit()?;
        Ok(added == 1)
    }

    /// Sets the delivery state of a group message we sent.
    pub fn set_group_message_state(
        &self,
        id: &MessageHash,
        state: MessageState,
    ) -> Result<(), DbError> {
        let (state, stored_on) = state.to_sql();
        self.conn.execute(
            "UPDATE group_messages SET state = ?2, stored_on = ?3 WHERE id = ?1",
            params![id.to_string(), state, stored_on],
        )?;
        Ok(())
    }

    /// Sets when a group message disappears locally (the group's disappearing timer).
    pub fn set_group_message_expires(
        &self,
        id: &MessageHash,
        expires_ms: u64,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE group_messages SET expires_ms = ?2 WHERE id = ?1",
            params![id.to_string(), to_i64(expires_ms)],
        )?;
        Ok(())
    }

    /// When a group message disappears locally, if it does.
    pub fn group_message_expires(&self, id: &MessageHash) -> Result<Option<u64>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT expires_ms FROM group_messages WHERE id = ?1",
                params![id.to_string()],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .map(to_u64))
    }

    /// Deletes a group's messages sent before `before_ms` (the group's delete-before).
    pub fn delete_group_messages_before(
        &self,
        group: &GroupId,
        before_ms: u64,
    ) -> Result<usize, DbError> {
        Ok(self.conn.execute(
            "DELETE FROM group_messages WHERE group_id = ?1 AND timestamp < ?2",
            params![group.to_string(), to_i64(before_ms)],
        )?)
    }

    /// A group's messages, oldest first.
    pub fn group_messages(&self, group: &GroupId) -> Result<Vec<StoredGroupMessage>, DbError> {
        self.query_group_messages(
            "WHERE group_id = ?1 ORDER BY timestamp, id",
            params![group.to_string()],
        )
    }

    /// One group message by id.
    pub fn group_message(&self, id: &MessageHash) -> Result<Option<StoredGroupMessage>, DbError> {
        Ok(self
            .query_group_messages("WHERE id = ?1", params![id.to_string()])?
            .pop())
    }

    /// The message of `group` sent at `timestamp` by `author`, as reactions and quotes name
    /// messages.
    pub fn group_message_by(
        &self,
        group: &GroupId,
        timestamp: u64,
        author: &SessionId,
    ) -> Result<Option<StoredGroupMessage>, DbError> {
        Ok(self
            .query_group_messages(
                "WHERE group_id = ?1 AND timestamp = ?2 ORDER BY id",
                params![group.to_string(), to_i64(timestamp)],
            )?
            .into_iter()
            .find(|m| m.sender == *author))
    }

    /// The ids of group messages whose hash starts with `prefix`.
    pub fn find_group_messages(&self, prefix: &str) -> Result<Vec<MessageHash>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM group_messages WHERE substr(id, 1, length(?1)) = ?1")?;
        let ids = stmt
            .query_map(params![prefix], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter()
            .map(|id| hash_from_sql(id, "group_messages.id"))
            .collect()
    }

    fn query_group_messages(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<StoredGroupMessage>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, group_id, direction, sender, timestamp, body, state, stored_on
             FROM group_messages {filter}"
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
            let (id, group, direction, sender, timestamp, body, state, stored_on) = row?;
            let corrupt = |what: &str| DbError::Corrupt(format!("group_messages.{what}"));
            let sender = self.open_string(&aad("group_messages", "sender", &id), &sender)?;
            let body = self.open_string(&aad("group_messages", "body", &id), &body)?;
            out.push(StoredGroupMessage {
                id: hash_from_sql(&id, "group_messages.id")?,
                group: group.parse().map_err(|_| corrupt("group_id"))?,
                direction: if direction == 0 {
                    Direction::Incoming
                } else {
                    Direction::Outgoing
                },
                sender: sender.parse().map_err(|_| corrupt("sender"))?,
                timestamp: to_u64(timestamp),
                body,
                state: MessageState::from_sql(state, stored_on).ok_or_else(|| corrupt("state"))?,
            });
        }
        Ok(out)
    }
}
