//! Sending: text messages (to the recipient's inbox, and a sync copy to ours), and the control
//! messages that answer requests, set timers, unsend, or wipe our swarm.

use shallot_proto::attachment::AttachmentPointer;
use shallot_proto::namespace::NamespaceSelector;
use shallot_proto::rpc::{DeleteAll, Deleted, Request, Store, SwarmResults};
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::session::protos::{
    Content, DataMessage, ExpirationType, MessageRequestResponse, UnsendRequest,
};
use shallot_proto::session::wrap_for_recipient;
use shallot_proto::signing::SignedRequest;
use shallot_proto::{Namespace, SessionId};

use super::replies::count_stored;
use super::{outgoing_profile, Messenger, MessengerError, SentMessage, MESSAGE_TTL_MS};
use crate::db::{
    ConversationState, DbError, Direction, Disappearing, MessageState, StoredMessage, StoredQuote,
};
use crate::onion_client::decode_reply;

impl Messenger {
    /// Builds the `store` of one wrapped copy of `content` to `to`'s inbox.
    fn store_request(
        &self,
        to: &SessionId,
        content: &Content,
        timestamp: u64,
        ttl_ms: u64,
    ) -> Result<Store, MessengerError> {
        let data = wrap_for_recipient(
            &self.identity,
            to,
            content,
            timestamp,
            &mut rand::rngs::OsRng,
        )
        .map_err(|e| MessengerError::Build(e.to_string()))?;
        if data.len() > shallot_proto::rpc::MAX_MESSAGE_DATA {
            return Err(MessengerError::Build("message too long".into()));
        }
        let ts = i64::try_from(timestamp).unwrap_or(i64::MAX);
        Ok(Store {
            account: to.account(),
            namespace: Namespace::DEFAULT,
            timestamp: ts,
            expiry: ts.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
            data,
            auth: None,
        })
    }

    /// Sends `text` to `recipient`: stored in their swarm's inbox (ns 0, 14-day TTL), and a sync
    /// copy (`syncTarget` = recipient) in ours for our other devices. The message is recorded
    /// before sending and its state updated with how many swarm members stored it. With
    /// [`crate::ClientConfig::send_jitter`] set, it waits a random time before leaving; with
    /// [`crate::ClientConfig::backdate`], its timestamp is a random time in the past.
    pub async fn send(
        &self,
        recipient: &SessionId,
        text: &str,
    ) -> Result<SentMessage, MessengerError> {
        self.send_message(recipient, text, Vec::new(), None).await
    }

    /// [`Self::send`] with files already uploaded (their pointers go in
    /// `DataMessage.attachments` and are stored with the message) and, for a reply, the message
    /// it quotes (kept with the message here too).
    #[allow(clippy::too_many_lines)] // One message, step by step.
    pub async fn send_message(
        &self,
        recipient: &SessionId,
        text: &str,
        attachments: Vec<AttachmentPointer>,
        quote: Option<StoredQuote>,
    ) -> Result<SentMessage, MessengerError> {
        let to = *recipient;
        let (latest, disappearing, own) = self
            .db
            .call(move |db| {
                let latest = db.latest_timestamp(&to)?;
                Ok::<_, DbError>((latest, db.disappearing(&to)?, db.own_profile()?))
            })
            .await?;
        // Backdated, but after the conversation's latest message: a reply never shows above
        // the message it answers.
        let timestamp = crate::timing::backdated(
            self.client.clock().now_ms(),
            self.client.config().backdate,
            latest.unwrap_or(0),
            &mut rand::thread_rng(),
        );
        let mut content = Content::text(text, timestamp);
        if let Some(data) = content.data_message.as_mut() {
            (data.profile, data.profile_key) = outgoing_profile(&own);
            data.quote = quote.as_ref().map(super::signals::quote_proto);
            // Session sends no empty body with a file.
            if text.is_empty() && !attachments.is_empty() {
                data.body = None;
            }
            data.attachments.clone_from(&attachments);
        }
        let (ttl, sync_ttl) = apply_disappearing(&mut content, disappearing);
        let local_expiry = match disappearing {
            Disappearing::Off => None,
            Disappearing::AfterSend(_) | Disappearing::AfterRead(_) => Some(timestamp + sync_ttl),
        };
        let store = self.store_request(recipient, &content, timestamp, ttl)?;
        let hash = store.hash();
        let message = StoredMessage {
            id: hash,
            conversation: to,
            direction: Direction::Outgoing,
            sender: self.session_id(),
            timestamp,
            body: text.to_owned(),
            state: MessageState::Sending,
        };
        let stored_attachments = self
            .db
            .call(move |db| {
                db.insert_message(&message)?;
                if let Some(quote) = &quote {
                    db.set_quote(&hash, quote)?;
                }
                let stored = db.insert_attachments(&hash, &attachments)?;
                if let Some(at) = local_expiry {
                    db.set_expires(&hash, at)?;
                }
                Ok::<_, DbError>(stored)
            })
            .await?;
        self.note_correspondents(None).await;

        // The timestamp is taken: the jitter separates it from the moment the onion leaves.
        let delayed = self.client.send_delay();
        if !delayed.is_zero() {
            tokio::time::sleep(delayed).await;
        }
        let stored = self
            .client
            .request_swarm(&recipient.account(), &Request::Store(store))
            .await;
        let stored_on = stored.as_ref().map_or(0, |(_, body)| count_stored(body));
        let state = if stored_on == 0 {
            MessageState::Failed
        } else {
            MessageState::Stored(stored_on)
        };
        self.db.call(move |db| db.set_state(&hash, state)).await?;
        stored?;

        // The sync copy is built once the recipient's copy is on its way (it is not on the path
        // of delivery). Our own poll brings it back: it is this message, not a new one.
        let mut sync_content = content;
        if let Some(data) = sync_content.data_message.as_mut() {
            data.sync_target = Some(recipient.to_string());
        }
        let sync_store =
            self.store_request(&self.session_id(), &sync_content, timestamp, sync_ttl)?;
        let sync_hash = sync_store.hash();
        self.db
            .call(move |db| {
                db.mark_seen(&sync_hash, Some(&hash))?;
                db.set_sync_hash(&hash, &sync_hash)
            })
            .await?;
        let synced = match self
            .client
            .request_swarm(&self.account(), &Request::Store(sync_store))
            .await
        {
            Ok((_, body)) => count_stored(&body) > 0,
            Err(e) => {
                tracing::warn!(message = %hash, "sync copy not stored: {e}");
                false
            }
        };
        Ok(SentMessage {
            hash,
            timestamp,
            stored_on,
            synced,
            delayed,
            attachments: stored_attachments,
        })
    }

    /// Sends a control message (no visible text) to `to`'s inbox; returns how many nodes stored it.
    pub(crate) async fn send_control(
        &self,
        to: &SessionId,
        content: Content,
    ) -> Result<u32, MessengerError> {
        self.send_control_ttl(to, content, MESSAGE_TTL_MS).await
    }

    /// [`Self::send_control`] stored for `ttl_ms` (typing indicators live 20 s).
    pub(crate) async fn send_control_ttl(
        &self,
        to: &SessionId,
        content: Content,
        ttl_ms: u64,
    ) -> Result<u32, MessengerError> {
        let timestamp = content.sig_timestamp.unwrap_or(0);
        let store = self.store_request(to, &content, timestamp, ttl_ms)?;
        let hash = store.hash();
        self.db.call(move |db| db.mark_seen(&hash, None)).await?;
        self.note_correspondents(None).await;
        let delay = self.client.send_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (_, body) = self
            .client
            .request_swarm(&to.account(), &Request::Store(store))
            .await?;
        Ok(count_stored(&body))
    }

    /// Sets the state of the conversation with `contact` (clearing its messages first unless
    /// `Accepted`).
    async fn answer_request(
        &self,
        contact: &SessionId,
        state: ConversationState,
    ) -> Result<(), MessengerError> {
        let (contact, now) = (*contact, self.client.clock().now_ms());
        self.db
            .call(move |db| {
                if state != ConversationState::Accepted {
                    db.clear_conversation(&contact)?;
                }
                db.set_conversation_state(&contact, state, now)
            })
            .await?;
        Ok(())
    }

    /// Accepts `contact`'s message request: they become a contact and are told so
    /// (`MessageRequestResponse { isApproved: true }`).
    pub async fn accept(&self, contact: &SessionId) -> Result<(), MessengerError> {
        let now = self.client.clock().now_ms();
        self.answer_request(contact, ConversationState::Accepted)
            .await?;
        let (profile, profile_key) = outgoing_profile(&self.db.own_profile().await?);
        let content = Content {
            message_request_response: Some(MessageRequestResponse {
                is_approved: Some(true),
                profile,
                profile_key,
            }),
            sig_timestamp: Some(now),
            ..Content::default()
        };
        self.send_control(contact, content).await?;
        self.sync_config_logged(ConfigKind::Contacts).await;
        Ok(())
    }

    /// Declines `contact`'s message request: its messages are dropped (a later message from
    /// them makes a new request). Nothing is sent.
    pub async fn decline(&self, contact: &SessionId) -> Result<(), MessengerError> {
        self.answer_request(contact, ConversationState::Declined)
            .await
    }

    /// Blocks `contact`: everything they send from now on is dropped unseen, on our other
    /// devices too (Contacts config).
    pub async fn block(&self, contact: &SessionId) -> Result<(), MessengerError> {
        self.answer_request(contact, ConversationState::Blocked)
            .await?;
        self.sync_config_logged(ConfigKind::Contacts).await;
        Ok(())
    }

    /// Sets the disappearing-messages timer of the conversation with `contact` for the messages
    /// sent from now on, and tells them and our other devices: a timer-update control message
    /// (`DataMessage.flags` = `EXPIRATION_TIMER_UPDATE`, with the setting in `Content`) goes to
    /// their inbox and, with `syncTarget`, to ours; both sides' clients adopt it. The local
    /// setting applies even if sending fails (the error says so). Returns how many members of
    /// their swarm stored the update.
    pub async fn set_disappearing(
        &self,
        contact: &SessionId,
        setting: Disappearing,
    ) -> Result<u32, MessengerError> {
        let (to, now) = (*contact, self.client.clock().now_ms());
        self.db
            .call(move |db| db.set_disappearing(&to, setting, now))
            .await?;
        let (kind, secs) = match setting {
            Disappearing::Off => (None, 0),
            Disappearing::AfterSend(s) => (Some(ExpirationType::DeleteAfterSend), s),
            Disappearing::AfterRead(s) => (Some(ExpirationType::DeleteAfterRead), s),
        };
        let (profile, profile_key) = outgoing_profile(&self.db.own_profile().await?);
        let update = |sync_target: Option<String>| Content {
            data_message: Some(DataMessage {
                flags: Some(DataMessage::FLAG_EXPIRATION_TIMER_UPDATE),
                profile: profile.clone(),
                profile_key: profile_key.clone(),
                sync_target,
                ..DataMessage::default()
            }),
            expiration_type: kind.map(|k| k as i32),
            expiration_timer: Some(secs),
            sig_timestamp: Some(now),
            ..Content::default()
        };
        let stored = self.send_control(contact, update(None)).await?;
        if let Err(e) = self
            .send_control(&self.session_id(), update(Some(contact.to_string())))
            .await
        {
            tracing::warn!("timer update not synced to our other devices: {e}");
        }
        self.sync_config_logged(ConfigKind::Contacts).await;
        Ok(stored)
    }

    /// Deletes one of our sent messages for everyone: an `UnsendRequest` goes to the
    /// recipient, our sync copy is deleted from our swarm, and the message from our database.
    /// `id` is the message hash or an unambiguous prefix of it.
    pub async fn unsend(&self, id: &str) -> Result<StoredMessage, MessengerError> {
        let prefix = id.to_owned();
        let message = self
            .db
            .call(move |db| {
                let ids = db.find_messages(&prefix)?;
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
            .await?;
        if message.direction != Direction::Outgoing || message.sender != self.session_id() {
            return Err(MessengerError::Build(
                "only messages you sent can be unsent".into(),
            ));
        }
        let now = self.client.clock().now_ms();
        let content = Content {
            unsend_request: Some(UnsendRequest {
                timestamp: Some(message.timestamp),
                author: Some(self.session_id().to_string()),
            }),
            sig_timestamp: Some(now),
            ..Content::default()
        };
        self.send_control(&message.conversation, content.clone())
            .await?;
        // And to our own swarm, so our other devices delete their copy too.
        if let Err(e) = self.send_control(&self.session_id(), content).await {
            tracing::warn!("unsend not synced to our other devices: {e}");
        }
        let sync_hash = self.db.sync_hash(&message.id).await?;
        if let Some(request) = sync_hash.and_then(|h| self.delete_request(&[h])) {
            self.client.request_swarm(&self.account(), &request).await?;
        }
        let id = message.id;
        self.db.call(move |db| db.delete_message(&id)).await?;
        Ok(message)
    }

    /// Deletes everything stored for us in our swarm (`delete_all`, every namespace). Local
    /// history is kept.
    pub async fn wipe(&self) -> Result<SwarmResults<Deleted>, MessengerError> {
        let timestamp = self.client.clock().now_ms();
        let auth = self.auth(
            &SignedRequest::DeleteAll {
                namespaces: NamespaceSelector::All,
                timestamp,
            }
            .message(),
        );
        let request = Request::DeleteAll(DeleteAll {
            account: self.account(),
            auth,
            namespace: NamespaceSelector::All,
            timestamp,
        });
        let (_, body) = self.client.request_swarm(&self.account(), &request).await?;
        Ok(decode_reply("reading a delete_all reply", &body)?)
    }
}

/// Marks `content` with the conversation's disappearing setting (as Session clients mark every
/// message of such a conversation, reactions included); the swarm TTLs of the recipient's copy
/// and of our sync copy. After send: both live `secs`. After read: the recipient's copy waits to
/// be read (14 days), and ours (we have read it) lives `secs` from now.
pub(crate) fn apply_disappearing(content: &mut Content, disappearing: Disappearing) -> (u64, u64) {
    match disappearing {
        Disappearing::Off => (MESSAGE_TTL_MS, MESSAGE_TTL_MS),
        Disappearing::AfterSend(secs) | Disappearing::AfterRead(secs) => {
            let ms = u64::from(secs) * 1000;
            content.expiration_timer = Some(secs);
            let (kind, ttl) = if matches!(disappearing, Disappearing::AfterSend(_)) {
                (ExpirationType::DeleteAfterSend, ms)
            } else {
                (ExpirationType::DeleteAfterRead, MESSAGE_TTL_MS)
            };
            content.expiration_type = Some(kind as i32);
            (ttl, ms)
        }
    }
}
