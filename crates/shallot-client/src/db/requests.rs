//! Caps on what strangers can make us keep: messages of requests we have not accepted, and group
//! invitations from people who are not contacts. Anyone can write to a Session ID, with as many
//! throwaway identities as they like, so both are bounded per sender and in total.
//!
//! Over a cap the **newest** item is refused (marked seen and dropped, never shown), rather
//! than the oldest dropped to make room: what is already here may have been seen, and a flood
//! must not be able to push out, unread, the one genuine request that came before it. A full
//! box is visible and the user frees it by declining or blocking; a contact (a conversation we
//! accepted or started) and a group we joined are never counted or capped.

use rusqlite::params;
use shallot_proto::SessionId;

use super::{ConversationState, Db, DbError};
use crate::groups::GroupStatus;

/// Most messages kept from one sender whose request we have not accepted.
pub const MAX_REQUEST_MESSAGES_PER_SENDER: usize = 100;
/// Most messages kept across all requests we have not accepted.
pub const MAX_REQUEST_MESSAGES: usize = 1_000;
/// Most requests (conversations with someone we have not accepted) kept at once. A declined
/// request holds no messages and does not count; a request emptied by its sender's unsends does.
pub const MAX_REQUESTS: usize = 1_000;
/// Most group invitations waiting for an answer from one inviter.
pub const MAX_PENDING_INVITES_PER_INVITER: usize = 5;
/// Most group invitations waiting for an answer in total.
pub const MAX_PENDING_INVITES: usize = 50;

impl Db {
    /// Why one more incoming message from `sender` must not be kept, if it must not: `sender`
    /// is not a contact and their request, or all requests together, are full. `None` for a
    /// contact (and for anyone with room).
    pub fn request_cap(&self, sender: &SessionId) -> Result<Option<&'static str>, DbError> {
        let state = self.conversation_state(sender)?;
        if !matches!(
            state,
            None | Some(ConversationState::Requested | ConversationState::Declined)
        ) {
            return Ok(None);
        }
        let from_sender: i64 = self.conn.query_row(
            "SELECT count(*) FROM messages WHERE conversation = ?1 AND direction = 0",
            params![sender.to_string()],
            |r| r.get(0),
        )?;
        if count(from_sender) >= MAX_REQUEST_MESSAGES_PER_SENDER {
            return Ok(Some("this sender's message request is full"));
        }
        let (requests, messages): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(
                 (SELECT count(*) FROM messages m WHERE m.conversation = c.id AND m.direction = 0)
             ), 0)
             FROM conversations c WHERE c.state = ?1",
            params![ConversationState::Requested.to_sql()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if count(messages) >= MAX_REQUEST_MESSAGES {
            return Ok(Some("message requests are full"));
        }
        if state != Some(ConversationState::Requested) && count(requests) >= MAX_REQUESTS {
            return Ok(Some("too many message requests"));
        }
        Ok(None)
    }

    /// Why one more pending group invitation from `inviter` must not be kept, if it must not.
    /// Only invitations that would wait for an answer count (a contact's join at once).
    pub fn invite_cap(&self, inviter: &SessionId) -> Result<Option<&'static str>, DbError> {
        let inviter = inviter.to_string();
        let (mut total, mut theirs) = (0, 0);
        for group in self.groups()? {
            if let GroupStatus::Invited { inviter: by } = &group.record.status {
                total += 1;
                theirs += usize::from(*by == inviter);
            }
        }
        Ok(if theirs >= MAX_PENDING_INVITES_PER_INVITER {
            Some("this inviter's group invitations are full")
        } else if total >= MAX_PENDING_INVITES {
            Some("group invitations are full")
        } else {
            None
        })
    }
}

/// A SQL count as a `usize`.
fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}
