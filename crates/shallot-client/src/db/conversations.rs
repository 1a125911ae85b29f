//! Conversations (one per contact) and our own profile.

use rusqlite::{params, OptionalExtension};
use shallot_proto::SessionId;

use super::{aad, to_i64, to_u64, Conversation, ConversationState, Db, DbError, Disappearing};

impl Db {
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

    /// Whether we have sent `contact` a message (one is stored, from this or another device).
    pub fn wrote_to(&self, contact: &SessionId) -> Result<bool, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM messages WHERE conversation = ?1 AND direction = 1 LIMIT 1",
                params![contact.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
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
}
