//! Saying things about messages: read receipts (opt-in, as in Session), typing indicators,
//! emoji reactions and quoted replies; and handing what others said to a screen (who is
//! typing, [`Update`]s).

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::Duration;

use shallot_proto::attachment::pointer::Quote;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::session::protos::{
    Content, DataMessage, Reaction, ReactionAction, ReceiptMessage, ReceiptType, TypingAction,
    TypingMessage,
};
use shallot_proto::SessionId;

use super::apply::FollowUp;
use super::feedback::{clean_emoji, Update, MAX_RECEIPT_TIMESTAMPS, TYPING_TTL_MS};
use super::{outgoing_profile, Messenger, MessengerError, SentMessage, MESSAGE_TTL_MS, PUSH_WAIT};
use crate::db::{
    ConversationState, DbError, Direction, MessageState, StoredGroupMessage, StoredMessage,
    StoredQuote, MAX_QUOTE_BYTES,
};

/// Most updates kept for [`Messenger::take_updates`]; older ones are dropped first.
pub const MAX_UPDATES: usize = 1024;

/// What [`Messenger::mark_read`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Incoming messages newly marked read.
    pub read: usize,
    /// How many of them read receipts were sent for (0 while receipts are off).
    pub receipts: usize,
}

impl Messenger {
    /// Takes in the typing indicators and updates of a receive.
    pub(super) fn note_feedback(&self, follow: &mut FollowUp) {
        let now = self.client.clock().now_ms();
        {
            let mut typing = self.typing.lock().unwrap_or_else(PoisonError::into_inner);
            for (who, until) in follow.typing.drain(..) {
                typing.set(who, until, now);
            }
        }
        self.note_updates(follow.updates.drain(..));
    }

    /// Keeps `new` updates for [`Self::take_updates`] (at most [`MAX_UPDATES`]).
    pub(crate) fn note_updates(&self, new: impl IntoIterator<Item = Update>) {
        let mut updates = self.updates.lock().unwrap_or_else(PoisonError::into_inner);
        for update in new {
            if updates.len() >= MAX_UPDATES {
                updates.pop_front();
            }
            updates.push_back(update);
        }
    }

    /// Whether `who` is typing to us now (a STARTED indicator less than
    /// [`TYPING_TTL_MS`] old, not followed by STOPPED or a message).
    pub fn is_typing(&self, who: &SessionId) -> bool {
        let now = self.client.clock().now_ms();
        self.typing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_typing(who, now)
    }

    /// The receipts and reactions recorded by receives since the last call, oldest first.
    pub fn take_updates(&self) -> Vec<Update> {
        let mut updates = self.updates.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *updates).into()
    }

    /// The one-to-one message whose id starts with `prefix` (as `shallot inbox` prints it).
    pub async fn find_message(&self, prefix: &str) -> Result<StoredMessage, MessengerError> {
        let prefix = prefix.trim().to_owned();
        self.db
            .call(move |db| {
                let ids = if prefix.is_empty() {
                    Vec::new()
                } else {
                    db.find_messages(&prefix)?
                };
                let [id] = ids.as_slice() else {
                    return Err(MessengerError::Build(if ids.is_empty() {
                        "no such message".into()
                    } else {
                        "ambiguous message id prefix".into()
                    }));
                };
                db.message(id)?
                    .ok_or_else(|| MessengerError::Build("no such message".into()))
            })
            .await
    }

    /// The one-to-one or group message whose id starts with `prefix` (as `shallot inbox`
    /// prints it).
    pub async fn find_any_message(&self, prefix: &str) -> Result<AnyMessage, MessengerError> {
        let prefix = prefix.trim().to_owned();
        self.db
            .call(move |db| {
                let (direct, group) = if prefix.is_empty() {
                    (Vec::new(), Vec::new())
                } else {
                    (db.find_messages(&prefix)?, db.find_group_messages(&prefix)?)
                };
                let found = match (direct.as_slice(), group.as_slice()) {
                    ([id], []) => db.message(id)?.map(AnyMessage::Direct),
                    ([], [id]) => db.group_message(id)?.map(AnyMessage::Group),
                    ([], []) => None,
                    _ => return Err(MessengerError::Build("ambiguous message id prefix".into())),
                };
                found.ok_or_else(|| MessengerError::Build("no such message".into()))
            })
            .await
    }

    /// Whether we send read receipts.
    pub async fn read_receipts(&self) -> Result<bool, MessengerError> {
        Ok(self.db.call(|db| db.read_receipts()).await?)
    }

    /// Turns sending read receipts on or off (off by default).
    pub async fn set_read_receipts(&self, on: bool) -> Result<(), MessengerError> {
        Ok(self.db.call(move |db| db.set_read_receipts(on)).await?)
    }

    /// Marks the incoming messages among `ids` read (they were shown). With read receipts on,
    /// each accepted contact among their senders is sent one READ receipt naming the newly
    /// read messages' timestamps; message requests and blocked contacts are sent nothing.
    pub async fn mark_read(&self, ids: &[MessageHash]) -> Result<ReadOutcome, MessengerError> {
        let ids = ids.to_vec();
        let (newly, on, accepted) = self
            .db
            .call(move |db| {
                let newly = db.mark_read(&ids)?;
                let mut accepted = Vec::new();
                for m in &newly {
                    if db.conversation_state(&m.conversation)? == Some(ConversationState::Accepted)
                    {
                        accepted.push(m.conversation);
                    }
                }
                Ok::<_, DbError>((newly, db.read_receipts()?, accepted))
            })
            .await?;
        let mut outcome = ReadOutcome {
            read: newly.len(),
            receipts: 0,
        };
        if !on {
            return Ok(outcome);
        }
        let mut per_conversation: BTreeMap<SessionId, Vec<u64>> = BTreeMap::new();
        for m in newly.iter().filter(|m| accepted.contains(&m.conversation)) {
            per_conversation
                .entry(m.conversation)
                .or_default()
                .push(m.timestamp);
        }
        for (to, timestamps) in per_conversation {
            for chunk in timestamps.chunks(MAX_RECEIPT_TIMESTAMPS) {
                let content = Content {
                    receipt_message: Some(ReceiptMessage {
                        kind: Some(ReceiptType::Read as i32),
                        timestamps: chunk.to_vec(),
                    }),
                    sig_timestamp: Some(self.client.clock().now_ms()),
                    ..Content::default()
                };
                self.send_control_ttl(&to, content, MESSAGE_TTL_MS).await?;
                outcome.receipts += chunk.len();
            }
        }
        Ok(outcome)
    }

    /// Tells `to` that we started (or stopped) typing, with the 20 s TTL Session gives typing
    /// indicators. Sent only to accepted contacts; returns whether it was sent.
    pub async fn send_typing(&self, to: &SessionId, started: bool) -> Result<bool, MessengerError> {
        if self.db.conversation_state(to).await? != Some(ConversationState::Accepted) {
            return Ok(false);
        }
        let now = self.client.clock().now_ms();
        let action = if started {
            TypingAction::Started
        } else {
            TypingAction::Stopped
        };
        let content = Content {
            typing_message: Some(TypingMessage {
                timestamp: Some(now),
                action: Some(action as i32),
            }),
            sig_timestamp: Some(now),
            ..Content::default()
        };
        self.send_control_ttl(to, content, TYPING_TTL_MS).await?;
        Ok(true)
    }

    /// Reacts to message `id` (or an unambiguous prefix) with `emoji`, or with `remove` takes
    /// our reaction back: recorded here, and sent to the other party and, with `syncTarget`,
    /// to our other devices; or, for a group message, posted to the group (every member and
    /// our other devices read it there). Returns the message reacted to.
    pub async fn react(
        &self,
        id: &str,
        emoji: &str,
        remove: bool,
    ) -> Result<AnyMessage, MessengerError> {
        let Some(emoji) = clean_emoji(emoji) else {
            return Err(MessengerError::Build(format!(
                "not an emoji (1 to {} bytes, no control characters)",
                super::feedback::MAX_EMOJI_BYTES
            )));
        };
        let message = self.find_any_message(id).await?;
        let me = self.session_id();
        let (target, own, text) = (message.id(), me, emoji.clone());
        let changed = self
            .db
            .call(move |db| db.set_reaction(&target, &own, &text, remove))
            .await?;
        if !changed && !remove {
            let count = self.db.call(move |db| db.reactions(&target)).await?.len();
            if count >= crate::db::MAX_REACTIONS {
                return Err(MessengerError::Build(format!(
                    "this message has the most reactions kept ({count})"
                )));
            }
        }
        let action = if remove {
            ReactionAction::Remove
        } else {
            ReactionAction::React
        };
        let (profile, profile_key) = outgoing_profile(&self.db.own_profile().await?);
        let content = |sync_target: Option<String>| Content {
            data_message: Some(DataMessage {
                reaction: Some(Reaction {
                    id: Some(message.timestamp()),
                    author: Some(message.sender().to_string()),
                    emoji: Some(emoji.clone()),
                    action: Some(action as i32),
                }),
                profile: profile.clone(),
                profile_key: profile_key.clone(),
                sync_target,
                ..DataMessage::default()
            }),
            sig_timestamp: Some(self.client.clock().now_ms()),
            ..Content::default()
        };
        let conversation = match &message {
            AnyMessage::Direct(direct) => direct.conversation,
            AnyMessage::Group(in_group) => {
                self.post_group_content(&in_group.group, content(None))
                    .await?;
                return Ok(message);
            }
        };
        // The reaction disappears as the conversation's messages do (desktop marks it alike).
        let disappearing = self
            .db
            .call(move |db| db.disappearing(&conversation))
            .await?;
        if conversation != me {
            let mut to_them = content(None);
            let (ttl, _) = super::outbox::apply_disappearing(&mut to_them, disappearing);
            self.send_control_ttl(&conversation, to_them, ttl).await?;
        }
        let mut sync = content(Some(conversation.to_string()));
        let (_, sync_ttl) = super::outbox::apply_disappearing(&mut sync, disappearing);
        if let Err(e) = self.send_control_ttl(&me, sync, sync_ttl).await {
            tracing::warn!("reaction not synced to our other devices: {e}");
        }
        Ok(message)
    }

    /// Replies to message `id` (or an unambiguous prefix) with `text`: a message to its
    /// conversation (as [`Messenger::send`]) or group (as [`Messenger::send_to_group`]) that
    /// quotes it (its timestamp, author and text).
    pub async fn reply(&self, id: &str, text: &str) -> Result<SentMessage, MessengerError> {
        let quoted = self.find_any_message(id).await?;
        let quote = StoredQuote {
            timestamp: quoted.timestamp(),
            author: quoted.sender(),
            text: Some(crate::db::truncate(quoted.body(), MAX_QUOTE_BYTES).to_owned()),
        };
        match quoted {
            AnyMessage::Direct(m) => {
                self.send_message(&m.conversation, text, Vec::new(), Some(quote))
                    .await
            }
            AnyMessage::Group(m) => {
                let sent = self
                    .send_group_message(&m.group, text, Vec::new(), Some(quote))
                    .await?;
                Ok(SentMessage {
                    hash: sent.hash,
                    timestamp: sent.timestamp,
                    stored_on: sent.stored_on,
                    // Our other devices read it in the group: no sync copy is needed.
                    synced: true,
                    delayed: Duration::ZERO,
                    attachments: Vec::new(),
                })
            }
        }
    }

    /// Waits up to `timeout` for the recipient's read receipt of our message `id`, receiving
    /// meanwhile (through the onion path, as [`Messenger::receive_waiting`]). Returns whether
    /// it came.
    pub async fn wait_read(
        &self,
        id: &MessageHash,
        timeout: Duration,
    ) -> Result<bool, MessengerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.db.message(id).await? {
                Some(m) if m.state == MessageState::Read => return Ok(true),
                Some(m) if m.direction == Direction::Outgoing => {}
                _ => return Err(MessengerError::Build("not one of our sent messages".into())),
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let round = self.receive_waiting(left.min(PUSH_WAIT));
            match tokio::time::timeout(left, round).await {
                Ok(Ok(waited)) if !waited.waited => {
                    tokio::time::sleep(left.min(Duration::from_millis(500))).await;
                }
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => {
                    tracing::debug!("receiving while waiting for a read receipt: {e}");
                    tokio::time::sleep(left.min(Duration::from_secs(1))).await;
                }
            }
        }
    }
}

/// A message reactions and replies name: one-to-one or in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyMessage {
    /// In a one-to-one conversation.
    Direct(StoredMessage),
    /// In a group.
    Group(StoredGroupMessage),
}

impl AnyMessage {
    /// Its id (hash on the swarm it was read from).
    pub const fn id(&self) -> MessageHash {
        match self {
            Self::Direct(m) => m.id,
            Self::Group(m) => m.id,
        }
    }

    /// Its author.
    pub const fn sender(&self) -> SessionId {
        match self {
            Self::Direct(m) => m.sender,
            Self::Group(m) => m.sender,
        }
    }

    /// Its sent timestamp (ms), by which reactions and quotes name it.
    pub const fn timestamp(&self) -> u64 {
        match self {
            Self::Direct(m) => m.timestamp,
            Self::Group(m) => m.timestamp,
        }
    }

    /// Its text.
    pub fn body(&self) -> &str {
        match self {
            Self::Direct(m) => &m.body,
            Self::Group(m) => &m.body,
        }
    }
}

/// The `Quote` a reply carries for `quote`.
pub(crate) fn quote_proto(quote: &StoredQuote) -> Quote {
    Quote {
        id: Some(quote.timestamp),
        author: Some(quote.author.to_string()),
        text: quote.text.clone(),
        attachments: Vec::new(),
    }
}
