//! What every member does: answer an invite, send to the group, leave.

use shallot_proto::attachment::AttachmentPointer;
use shallot_proto::group::update::{
    GroupUpdateInviteResponseMessage, GroupUpdateMemberLeftMessage,
    GroupUpdateMemberLeftNotificationMessage,
};
use shallot_proto::group::{GroupId, GroupUpdateMessage};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::session::protos::{Content, ExpirationType};

use super::admin::update_content;
use super::requests::Credential;
use super::{GroupError, GroupStatus, GroupSummary};
use crate::db::{Direction, MessageState, StoredAttachment, StoredGroupMessage, StoredQuote};
use crate::messenger::waits::WaitTarget;
use crate::messenger::{outgoing_profile, Messenger, MessengerError};

/// The result of [`Messenger::send_to_group`].
#[derive(Debug, Clone, PartialEq)]
pub struct SentToGroup {
    /// The message's hash on the group swarm (its id in the database).
    pub hash: MessageHash,
    /// Its timestamp (ms).
    pub timestamp: u64,
    /// How many members of the group swarm stored it.
    pub stored_on: u32,
    /// The files it carries, as stored ([`Messenger::send_files_to_group`]).
    pub attachments: Vec<StoredAttachment>,
}

impl Messenger {
    /// Our groups, most recently active first.
    pub async fn groups(&self) -> Result<Vec<GroupSummary>, MessengerError> {
        let groups = self.db.call(|db| db.groups()).await?;
        Ok(groups.iter().map(GroupSummary::from).collect())
    }

    /// A group as we know it.
    pub async fn group(&self, id: &GroupId) -> Result<super::Group, MessengerError> {
        self.load_group(id).await
    }

    /// Accepts an invite: the group is polled from now on (its keys, configs and messages are
    /// fetched at once), our other devices learn it, and the admins are told we joined.
    pub async fn accept_group(&self, id: &GroupId) -> Result<(), MessengerError> {
        let mut group = self.load_group(id).await?;
        match group.record.status {
            GroupStatus::Invited { .. } => {}
            GroupStatus::Joined => return Ok(()),
            _ => return Err(GroupError::NoAccess("removed from the group or destroyed").into()),
        }
        group.record.status = GroupStatus::Joined;
        self.save_group(&group).await?;
        self.sync_config_logged(ConfigKind::UserGroups).await;
        let _ = self.receive_groups().await;
        let group = self.load_group(id).await?;
        let credential = self.credential(&group)?;
        let timestamp = self.client.clock().now_ms();
        let update = GroupUpdateMessage {
            invite_response: Some(GroupUpdateInviteResponseMessage {
                is_approved: Some(true),
            }),
            ..GroupUpdateMessage::default()
        };
        let mut content = update_content(update, timestamp);
        if let Some(data) = content.data_message.as_mut() {
            data.profile = self.profile().await?;
        }
        if let Err(e) = self
            .post_to_group(&group, &credential, &content, timestamp)
            .await
        {
            tracing::warn!("could not tell the group we joined: {e}");
        }
        Ok(())
    }

    /// Declines an invite: the group is forgotten (here and on our other devices).
    pub async fn decline_group(&self, id: &GroupId) -> Result<(), MessengerError> {
        let group = self.load_group(id).await?;
        if !matches!(group.record.status, GroupStatus::Invited { .. }) {
            return Err(GroupError::Invalid("no pending invite for this group".into()).into());
        }
        self.forget_group(id).await
    }

    /// Forgets a group and its messages, here and (through UserGroups) on our other devices.
    async fn forget_group(&self, id: &GroupId) -> Result<(), MessengerError> {
        let id = *id;
        self.db.call(move |db| db.delete_group(&id)).await?;
        self.sync_config_logged(ConfigKind::UserGroups).await;
        Ok(())
    }

    /// Leaves a group: the members are told (an admin then removes us and changes the key),
    /// and the group is forgotten here and on our other devices. Admins destroy instead
    /// (`destroy_group`), as Session does; a group we were removed from is just forgotten.
    pub async fn leave_group(&self, id: &GroupId) -> Result<(), MessengerError> {
        let group = self.load_group(id).await?;
        if group.record.status == GroupStatus::Joined {
            if group.admin().is_some() {
                return Err(GroupError::Invalid(
                    "admins cannot leave; destroy the group instead".into(),
                )
                .into());
            }
            let credential = self.credential(&group)?;
            let timestamp = self.client.clock().now_ms();
            let notification = GroupUpdateMessage {
                member_left_notification_message: Some(GroupUpdateMemberLeftNotificationMessage {}),
                ..GroupUpdateMessage::default()
            };
            let left = GroupUpdateMessage {
                member_left_message: Some(GroupUpdateMemberLeftMessage {}),
                ..GroupUpdateMessage::default()
            };
            for (update, ts) in [(notification, timestamp), (left, timestamp + 1)] {
                let content = update_content(update, ts);
                if let Err(e) = self.post_to_group(&group, &credential, &content, ts).await {
                    // A 401: we were revoked already; leave anyway.
                    tracing::warn!("could not tell the group we left: {e}");
                }
            }
        }
        self.forget_group(id).await
    }

    /// Sends `text` to a group we are in: encrypted with the group key, signed by us, stored in
    /// the group swarm (namespace 11) with our credential.
    pub async fn send_to_group(
        &self,
        id: &GroupId,
        text: &str,
    ) -> Result<SentToGroup, MessengerError> {
        self.send_group_message(id, text, Vec::new(), None).await
    }

    /// A group we can write to, with our credential and a current key list. A message
    /// sealed with a key the other members do not hold yet is lost to them, so the key list
    /// must be current. It is while a waiting retrieve of the group is in flight (a key
    /// message stored meanwhile answers it, and it is taken in before the next wait starts);
    /// otherwise (polling, past the wait cap, a fresh start) fetch the key messages stored
    /// since our last look first.
    async fn group_to_write(
        &self,
        id: &GroupId,
    ) -> Result<(super::Group, Credential), MessengerError> {
        let mut group = self.load_group(id).await?;
        let credential = self.credential(&group)?;
        if !self.waits.in_flight(WaitTarget::Group(*id)) {
            match self.refresh_group_keys(&group).await {
                Ok(refreshed) => group = refreshed,
                Err(e) => tracing::debug!("could not refresh the group keys before sending: {e}"),
            }
        }
        Ok((group, credential))
    }

    /// Posts a control `content` (a reaction) to a group we are in; its hash is marked seen
    /// so our own poll does not take it in again.
    pub(crate) async fn post_group_content(
        &self,
        id: &GroupId,
        content: Content,
    ) -> Result<(), MessengerError> {
        let (group, credential) = self.group_to_write(id).await?;
        let mut content = content;
        apply_group_timer(&group, &mut content);
        let timestamp = content
            .sig_timestamp
            .unwrap_or_else(|| self.client.clock().now_ms());
        let stored = self
            .post_to_group(&group, &credential, &content, timestamp)
            .await?;
        let hash = stored.hash;
        self.db.call(move |db| db.mark_seen(&hash, None)).await?;
        Ok(())
    }

    /// [`Self::send_to_group`] with the `attachments` pointers (already uploaded, see
    /// `Messenger::send_files_to_group`) and `quote` for a reply: both go in the group-encrypted
    /// `DataMessage`, as in a 1:1 message, and are kept with our copy.
    pub(crate) async fn send_group_message(
        &self,
        id: &GroupId,
        text: &str,
        attachments: Vec<AttachmentPointer>,
        quote: Option<StoredQuote>,
    ) -> Result<SentToGroup, MessengerError> {
        if text.is_empty() && attachments.is_empty() {
            return Err(MessengerError::Build("empty message".into()));
        }
        let (group, credential) = self.group_to_write(id).await?;
        let timestamp = self.client.clock().now_ms();
        let mut content = Content::text(text, timestamp);
        if let Some(data) = content.data_message.as_mut() {
            // Name and picture with its key, as in our one-to-one messages: members' clients
            // show the picture from these.
            (data.profile, data.profile_key) = outgoing_profile(&self.db.own_profile().await?);
            // A file-only message has no body (as Session sends it).
            if text.is_empty() {
                data.body = None;
            }
            data.attachments.clone_from(&attachments);
            data.quote = quote.as_ref().map(crate::messenger::signals::quote_proto);
        }
        // The swarm copy lives as long as the group's timer says, and so does ours.
        let secs = apply_group_timer(&group, &mut content);
        let stored = self
            .post_to_group(&group, &credential, &content, timestamp)
            .await?;
        let message = StoredGroupMessage {
            id: stored.hash,
            group: group.id,
            direction: Direction::Outgoing,
            sender: self.session_id(),
            timestamp,
            body: text.to_owned(),
            state: MessageState::Stored(stored.stored_on),
        };
        let attachments = self
            .db
            .call(move |db| {
                db.insert_group_message(&message)?;
                let attachments = db.insert_group_attachments(&message.id, &attachments)?;
                if let Some(quote) = &quote {
                    db.set_quote(&message.id, quote)?;
                }
                if secs > 0 {
                    db.set_group_message_expires(&message.id, timestamp + u64::from(secs) * 1000)?;
                }
                Ok::<_, crate::db::DbError>(attachments)
            })
            .await?;
        Ok(SentToGroup {
            hash: stored.hash,
            timestamp,
            stored_on: stored.stored_on,
            attachments,
        })
    }
}

/// Marks `content` with the group's disappearing timer, if it has one (post_to_group gives the
/// swarm copy that TTL); the timer in seconds, 0 for none. Every message to the group carries
/// it, reactions included, as Session clients do.
fn apply_group_timer(group: &super::Group, content: &mut Content) -> u32 {
    let secs = u32::try_from(group.info().disappear_after_send_secs).unwrap_or(0);
    if secs > 0 {
        content.expiration_type = Some(ExpirationType::DeleteAfterSend as i32);
        content.expiration_timer = Some(secs);
    }
    secs
}
