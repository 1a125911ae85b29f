//! What is said about messages after they are sent: read state (receipts from them, reading
//! by us), emoji reactions, and the message a reply quotes. Reactions and quotes are sealed
//! JSON columns of the message they belong to, one-to-one or group (a message id names one
//! row of one table), so they go when it goes (unsend, expiry, delete-before).

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::SessionId;

use super::{aad, seal_with, to_i64, Db, DbError, Direction, StoredMessage};

/// Most reactions one message keeps, all authors together: a sender cannot grow a message's
/// row without limit (further reactions are ignored until some are removed).
pub const MAX_REACTIONS: usize = 32;

/// Longest quoted text kept with a reply, in bytes (cut at a character boundary); the reply
/// itself may be up to a message's size.
pub const MAX_QUOTE_BYTES: usize = 2000;

/// Snapshot name of the read-receipts setting.
const READ_RECEIPTS: &str = "settings.read_receipts";

/// One emoji reaction to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReaction {
    /// Who reacted (us or the other party).
    pub author: SessionId,
    /// The emoji.
    pub emoji: String,
}

/// The message a reply quotes, as the reply named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredQuote {
    /// The quoted message's sent timestamp (ms).
    pub timestamp: u64,
    /// Its author.
    pub author: SessionId,
    /// The quoted text the reply carried (newest clients send none), at most
    /// [`MAX_QUOTE_BYTES`].
    pub text: Option<String>,
}

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Db {
    /// Applies a receipt from the other party of `conversation`: our sent messages there with
    /// one of `timestamps` become read (or, for `read == false`, delivered unless already
    /// read). Returns the ids that changed; messages elsewhere or unknown are untouched.
    pub fn apply_receipt(
        &self,
        conversation: &SessionId,
        timestamps: &[u64],
        read: bool,
    ) -> Result<Vec<MessageHash>, DbError> {
        let (to, unless) = if read { (4, 4) } else { (5, 4) };
        let mut changed = Vec::new();
        let mut stmt = self.conn.prepare(
            "UPDATE messages SET state = ?3
             WHERE conversation = ?1 AND timestamp = ?2 AND direction = 1
                 AND state NOT IN (?3, ?4)
             RETURNING id",
        )?;
        for &timestamp in timestamps {
            let ids = stmt
                .query_map(
                    params![conversation.to_string(), to_i64(timestamp), to, unless],
                    |r| r.get::<_, String>(0),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            for id in ids {
                changed.push(super::hash_from_sql(&id, "messages.id")?);
            }
        }
        Ok(changed)
    }

    /// The message of `conversation` sent at `timestamp` by `author`, as reactions and quotes
    /// name messages.
    pub fn message_by(
        &self,
        conversation: &SessionId,
        timestamp: u64,
        author: &SessionId,
    ) -> Result<Option<StoredMessage>, DbError> {
        Ok(self
            .query_messages(
                "WHERE conversation = ?1 AND timestamp = ?2 ORDER BY id",
                params![conversation.to_string(), to_i64(timestamp)],
            )?
            .into_iter()
            .find(|m| m.sender == *author))
    }

    /// The table holding message `id` (one-to-one or group), if any.
    fn table_of(&self, id: &MessageHash) -> Result<Option<&'static str>, DbError> {
        for table in ["messages", "group_messages"] {
            let found = self
                .conn
                .query_row(
                    &format!("SELECT 1 FROM {table} WHERE id = ?1"),
                    params![id.to_string()],
                    |_| Ok(()),
                )
                .optional()?;
            if found.is_some() {
                return Ok(Some(table));
            }
        }
        Ok(None)
    }

    /// Sealed column `column` of message `id` in `table`, if set.
    fn sealed_column(
        &self,
        table: &str,
        column: &str,
        id: &MessageHash,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let row = id.to_string();
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                &format!("SELECT {column} FROM {table} WHERE id = ?1"),
                params![row],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        sealed
            .map(|sealed| self.open_value(&aad(table, column, &row), &sealed))
            .transpose()
    }

    /// The reactions to a message (one-to-one or group), in the order they came.
    pub fn reactions(&self, id: &MessageHash) -> Result<Vec<StoredReaction>, DbError> {
        let Some(table) = self.table_of(id)? else {
            return Ok(Vec::new());
        };
        let Some(json) = self.sealed_column(table, "reactions", id)? else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(&json).map_err(|_| DbError::Corrupt(format!("{table}.reactions")))
    }

    /// Adds (or with `remove`, removes) `author`'s `emoji` on message `id` (one-to-one or
    /// group). Returns whether anything changed: not for an unknown message, a repeat, or a
    /// message already holding [`MAX_REACTIONS`].
    pub fn set_reaction(
        &self,
        id: &MessageHash,
        author: &SessionId,
        emoji: &str,
        remove: bool,
    ) -> Result<bool, DbError> {
        let Some(table) = self.table_of(id)? else {
            return Ok(false);
        };
        let mut reactions = self.reactions(id)?;
        let at = reactions
            .iter()
            .position(|r| r.author == *author && r.emoji == emoji);
        match (at, remove) {
            (Some(i), true) => {
                reactions.remove(i);
            }
            (None, false) if reactions.len() < MAX_REACTIONS => reactions.push(StoredReaction {
                author: *author,
                emoji: emoji.to_owned(),
            }),
            _ => return Ok(false),
        }
        let row = id.to_string();
        let sealed = if reactions.is_empty() {
            None
        } else {
            let json = serde_json::to_vec(&reactions)
                .map_err(|_| DbError::Corrupt(format!("{table}.reactions")))?;
            Some(seal_with(
                &self.cipher,
                &aad(table, "reactions", &row),
                &json,
            ))
        };
        self.conn.execute(
            &format!("UPDATE {table} SET reactions = ?2 WHERE id = ?1"),
            params![row, sealed],
        )?;
        Ok(true)
    }

    /// Keeps with reply `id` (one-to-one or group) the message it quotes (text cut to
    /// [`MAX_QUOTE_BYTES`]).
    pub fn set_quote(&self, id: &MessageHash, quote: &StoredQuote) -> Result<(), DbError> {
        let Some(table) = self.table_of(id)? else {
            return Ok(());
        };
        let quote = StoredQuote {
            text: quote
                .text
                .as_deref()
                .map(|t| truncate(t, MAX_QUOTE_BYTES).to_owned()),
            ..quote.clone()
        };
        let json =
            serde_json::to_vec(&quote).map_err(|_| DbError::Corrupt(format!("{table}.quote")))?;
        let row = id.to_string();
        let sealed = seal_with(&self.cipher, &aad(table, "quote", &row), &json);
        self.conn.execute(
            &format!("UPDATE {table} SET quote = ?2 WHERE id = ?1"),
            params![row, sealed],
        )?;
        Ok(())
    }

    /// The message reply `id` (one-to-one or group) quotes, if it is a reply.
    pub fn quote(&self, id: &MessageHash) -> Result<Option<StoredQuote>, DbError> {
        let Some(table) = self.table_of(id)? else {
            return Ok(None);
        };
        self.sealed_column(table, "quote", id)?
            .map(|json| {
                serde_json::from_slice(&json)
                    .map_err(|_| DbError::Corrupt(format!("{table}.quote")))
            })
            .transpose()
    }

    /// What reply `id` quotes, as text to show: the text the reply carried, else the quoted
    /// message's own text if we have it (in the same conversation or group), else
    /// `(original message not found)`; `None` when `id` is not a reply.
    pub fn quoted_text(&self, id: &MessageHash) -> Result<Option<String>, DbError> {
        let Some(quote) = self.quote(id)? else {
            return Ok(None);
        };
        if let Some(text) = quote.text {
            return Ok(Some(text));
        }
        let original = if let Some(reply) = self.message(id)? {
            self.message_by(&reply.conversation, quote.timestamp, &quote.author)?
                .map(|m| m.body)
        } else if let Some(reply) = self.group_message(id)? {
            self.group_message_by(&reply.group, quote.timestamp, &quote.author)?
                .map(|m| m.body)
        } else {
            return Ok(None);
        };
        Ok(Some(original.unwrap_or_else(|| {
            "(original message not found)".to_owned()
        })))
    }

    /// Marks the incoming messages among `ids` as read by us; returns those not read before
    /// (what a read receipt may name), oldest first.
    pub fn mark_read(&self, ids: &[MessageHash]) -> Result<Vec<StoredMessage>, DbError> {
        let mut newly = Vec::new();
        for id in ids {
            let changed = self.conn.execute(
                "UPDATE messages SET read = 1 WHERE id = ?1 AND direction = 0 AND read = 0",
                params![id.to_string()],
            )?;
            if changed == 1 {
                newly.extend(self.message(id)?);
            }
        }
        newly.retain(|m| m.direction == Direction::Incoming);
        newly.sort_by_key(|m| (m.timestamp, m.id));
        Ok(newly)
    }

    /// Whether we send read receipts (off until turned on, as in Session).
    pub fn read_receipts(&self) -> Result<bool, DbError> {
        Ok(self.load_json::<bool>(READ_RECEIPTS)?.unwrap_or(false))
    }

    /// Turns sending read receipts on or off.
    pub fn set_read_receipts(&self, on: bool) -> Result<(), DbError> {
        self.save_json(READ_RECEIPTS, &on)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::db::MessageState;
    use shallot_proto::Identity;

    const T: u64 = 1_700_000_000_000;

    fn user() -> SessionId {
        Identity::generate(&mut rand::rngs::OsRng).session_id()
    }

    fn msg(n: u8, conversation: SessionId, sender: SessionId, out: bool, ts: u64) -> StoredMessage {
        StoredMessage {
            id: MessageHash::from_bytes([n; 32]),
            conversation,
            direction: if out {
                Direction::Outgoing
            } else {
                Direction::Incoming
            },
            sender,
            timestamp: ts,
            body: format!("m{n}"),
            state: if out {
                MessageState::Stored(2)
            } else {
                MessageState::Received
            },
        }
    }

    fn open() -> (tempfile::TempDir, Db, SessionId) {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::generate(&mut rand::rngs::OsRng);
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        (dir, db, me.session_id())
    }

    #[test]
    fn receipts_move_only_our_messages_in_that_conversation() {
        let (_dir, mut db, me) = open();
        let (bob, carol) = (user(), user());
        let ours = msg(1, bob, me, true, T);
        let theirs = msg(2, bob, bob, false, T);
        let to_carol = msg(3, carol, me, true, T);
        for m in [&ours, &theirs, &to_carol] {
            db.insert_message(m).unwrap();
        }
        // A delivery receipt, then a read one; a repeat changes nothing.
        assert_eq!(db.apply_receipt(&bob, &[T], false).unwrap(), [ours.id]);
        assert_eq!(
            db.message(&ours.id).unwrap().unwrap().state,
            MessageState::Delivered
        );
        assert_eq!(
            db.apply_receipt(&bob, &[T, T + 1], true).unwrap(),
            [ours.id]
        );
        assert!(db.apply_receipt(&bob, &[T], true).unwrap().is_empty());
        assert!(
            db.apply_receipt(&bob, &[T], false).unwrap().is_empty(),
            "read stays read"
        );
        assert_eq!(
            db.message(&ours.id).unwrap().unwrap().state,
            MessageState::Read
        );
        // Their own message and our message to Carol are untouched.
        assert_eq!(
            db.message(&theirs.id).unwrap().unwrap().state,
            MessageState::Received
        );
        assert_eq!(
            db.message(&to_carol.id).unwrap().unwrap().state,
            MessageState::Stored(2)
        );
    }

    #[test]
    fn reactions_are_per_author_and_emoji_bounded_and_removable() {
        let (_dir, mut db, me) = open();
        let bob = user();
        let m = msg(1, bob, me, true, T);
        db.insert_message(&m).unwrap();
        assert_eq!(db.message_by(&bob, T, &me).unwrap().unwrap().id, m.id);
        assert!(db.message_by(&bob, T, &bob).unwrap().is_none());
        assert!(db.set_reaction(&m.id, &bob, "👍", false).unwrap());
        assert!(db.set_reaction(&m.id, &bob, "❤️", false).unwrap());
        assert!(
            !db.set_reaction(&m.id, &bob, "👍", false).unwrap(),
            "repeat"
        );
        assert!(db.set_reaction(&m.id, &me, "👍", false).unwrap());
        let emoji: Vec<_> = db
            .reactions(&m.id)
            .unwrap()
            .into_iter()
            .map(|r| r.emoji)
            .collect();
        assert_eq!(emoji, ["👍", "❤️", "👍"]);
        assert!(db.set_reaction(&m.id, &bob, "👍", true).unwrap());
        assert!(!db.set_reaction(&m.id, &bob, "👍", true).unwrap());
        assert_eq!(db.reactions(&m.id).unwrap().len(), 2);
        for i in 0..100 {
            db.set_reaction(&m.id, &bob, &format!("e{i}"), false)
                .unwrap();
        }
        assert_eq!(db.reactions(&m.id).unwrap().len(), MAX_REACTIONS);
        // Unknown messages take none.
        let nowhere = MessageHash::from_bytes([9; 32]);
        assert!(!db.set_reaction(&nowhere, &bob, "👍", false).unwrap());
        assert!(db.reactions(&nowhere).unwrap().is_empty());
    }

    #[test]
    fn quotes_are_kept_sealed_and_cut_and_read_marks_only_new_incoming() {
        let (_dir, mut db, me) = open();
        let bob = user();
        let reply = msg(1, bob, bob, false, T);
        let other = msg(2, bob, bob, false, T + 1);
        let ours = msg(3, bob, me, true, T + 2);
        for m in [&reply, &other, &ours] {
            db.insert_message(m).unwrap();
        }
        let long = "é".repeat(MAX_QUOTE_BYTES);
        db.set_quote(
            &reply.id,
            &StoredQuote {
                timestamp: T - 5,
                author: me,
                text: Some(long),
            },
        )
        .unwrap();
        let quote = db.quote(&reply.id).unwrap().unwrap();
        assert_eq!(quote.text.unwrap().len(), MAX_QUOTE_BYTES);
        assert_eq!((quote.timestamp, quote.author), (T - 5, me));
        assert_eq!(db.quote(&other.id).unwrap(), None);
        assert_eq!(db.quoted_text(&other.id).unwrap(), None);
        // Without the text, the quoted message's own text if we have it.
        let bare = StoredQuote {
            timestamp: T + 2,
            author: me,
            text: None,
        };
        db.set_quote(&other.id, &bare).unwrap();
        assert_eq!(db.quoted_text(&other.id).unwrap().as_deref(), Some("m3"));
        let gone = StoredQuote {
            timestamp: T + 3,
            ..bare
        };
        db.set_quote(&other.id, &gone).unwrap();
        assert_eq!(
            db.quoted_text(&other.id).unwrap().as_deref(),
            Some("(original message not found)")
        );

        let read = db.mark_read(&[other.id, reply.id, ours.id]).unwrap();
        let ids: Vec<_> = read.iter().map(|m| m.id).collect();
        assert_eq!(ids, [reply.id, other.id]);
        assert!(db.mark_read(&[reply.id]).unwrap().is_empty(), "once");

        assert!(!db.read_receipts().unwrap(), "off by default");
        db.set_read_receipts(true).unwrap();
        assert!(db.read_receipts().unwrap());
    }

    #[test]
    fn group_messages_take_reactions_and_quotes_in_their_own_rows() {
        use crate::db::StoredGroupMessage;
        use crate::groups::{Group, GroupRecord, GroupStatus};
        let (_dir, mut db, me) = open();
        let bob = user();
        let group = shallot_proto::group::GroupAdmin::from_seed([7; 32]).id();
        db.save_group(
            &Group {
                id: group,
                record: GroupRecord::new("Friends", GroupStatus::Joined, 1),
            },
            T,
        )
        .unwrap();
        let in_group = |n: u8, sender: SessionId, ts: u64, body: &str| StoredGroupMessage {
            id: MessageHash::from_bytes([n; 32]),
            group,
            direction: Direction::Incoming,
            sender,
            timestamp: ts,
            body: body.into(),
            state: MessageState::Received,
        };
        let lunch = in_group(1, bob, T, "lunch?");
        let noon = in_group(2, me, T + 1, "noon");
        for m in [&lunch, &noon] {
            db.insert_group_message(m).unwrap();
        }
        assert_eq!(
            db.find_group_messages(&lunch.id.to_string()[..6]).unwrap(),
            [lunch.id]
        );
        assert_eq!(
            db.group_message_by(&group, T, &bob).unwrap(),
            Some(lunch.clone())
        );
        assert!(db.group_message_by(&group, T, &me).unwrap().is_none());
        assert!(db.set_reaction(&lunch.id, &me, "👍", false).unwrap());
        assert_eq!(db.reactions(&lunch.id).unwrap()[0].author, me);
        // A reply naming the message without its text shows the group message's own text.
        db.set_quote(
            &noon.id,
            &StoredQuote {
                timestamp: T,
                author: bob,
                text: None,
            },
        )
        .unwrap();
        assert_eq!(db.quoted_text(&noon.id).unwrap().as_deref(), Some("lunch?"));
        assert_eq!(db.quoted_text(&lunch.id).unwrap(), None);
        // Unknown ids take nothing; the rows go with the group.
        db.delete_group(&group).unwrap();
        assert!(!db.set_reaction(&lunch.id, &me, "👍", false).unwrap());
        assert!(db.reactions(&lunch.id).unwrap().is_empty());
    }

    #[test]
    fn truncates_at_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }
}
