//! What admins do (groups spec §7): create a group, invite (with or without history), remove
//! with a kicked notice, revocation and a rekey, promote, change the name, description,
//! disappearing timer or delete-before, and destroy. Every change pushes new Info and Members
//! configs signed by the group (after a new key message when the key changes), then tells the
//! members with an admin-signed control message in the group.

use shallot_proto::group::message::GROUP_MESSAGE_PADDING;
use shallot_proto::group::update::{
    GroupUpdateInfoChangeMessage, GroupUpdateInviteMessage, GroupUpdateMemberChangeMessage,
    GroupUpdatePromoteMessage, InfoChangeType, MemberChangeType,
};
use shallot_proto::group::{
    encrypt_for_group, kicked_notice, make_auth_data, seal_signed_group_config, sign_group_config,
    subaccount_token, wrap_group_content, AdminText, GroupAdmin, GroupConfigKind, GroupId,
    GroupInfo, GroupMember, GroupMembers, GroupUpdateMessage, KeyHolder, SendStatus,
};
use shallot_proto::session::config_merge::next_base;
use shallot_proto::session::config_message::{prune, ConfigKind};
use shallot_proto::session::protos::{Content, DataMessage, ExpirationType};
use shallot_proto::subaccount::SubaccountFlags;
use shallot_proto::{Namespace, SessionId};

use super::requests::{Credential, GroupStored, KICKED_NAMESPACE};
use super::state::{Hex, StoredKeyMessage};
use super::{Group, GroupError, GroupRecord, GroupStatus, GROUP_CONFIG_TTL_MS};
use crate::messenger::{clean_display_name, Messenger, MessengerError, MESSAGE_TTL_MS};

/// The flags of the credentials we issue (libsession's default): read and write.
pub const MEMBER_FLAGS: SubaccountFlags =
    SubaccountFlags(SubaccountFlags::READ.0 | SubaccountFlags::WRITE.0);

/// A change an admin pushes: the new Info and Members, whether the key changes, and who gets
/// every existing key (members added with history).
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub info: GroupInfo,
    pub members: GroupMembers,
    pub rekey: bool,
    pub supplement: Vec<SessionId>,
}

impl Change {
    pub(crate) fn of(group: &Group) -> Self {
        Self {
            info: group.info(),
            members: group.members(),
            rekey: false,
            supplement: Vec::new(),
        }
    }
}

/// A `Content` carrying a group update, stamped `timestamp`.
pub(crate) fn update_content(update: GroupUpdateMessage, timestamp: u64) -> Content {
    Content {
        data_message: Some(DataMessage {
            group_update_message: Some(update),
            ..DataMessage::default()
        }),
        sig_timestamp: Some(timestamp),
        ..Content::default()
    }
}

/// A group name as it may be set: cleaned like a display name (1–100 bytes).
fn clean_group_name(name: &str) -> Result<String, GroupError> {
    clean_display_name(name).ok_or_else(|| {
        GroupError::Invalid("a group name must be 1 to 100 bytes of printable text".into())
    })
}

impl Messenger {
    /// A group from the database.
    pub(crate) async fn load_group(&self, id: &GroupId) -> Result<Group, MessengerError> {
        let id = *id;
        self.db
            .call(move |db| db.group(&id))
            .await?
            .ok_or_else(|| GroupError::Unknown.into())
    }

    /// Saves a group's record.
    pub(crate) async fn save_group(&self, group: &Group) -> Result<(), MessengerError> {
        let (group, now) = (group.clone(), self.client.clock().now_ms());
        self.db.call(move |db| db.save_group(&group, now)).await?;
        Ok(())
    }

    /// The group's admin keys, if we are a joined admin.
    fn admin_of(group: &Group) -> Result<GroupAdmin, GroupError> {
        if group.record.status != GroupStatus::Joined {
            return Err(GroupError::NoAccess("not a member (removed or destroyed)"));
        }
        group.admin().ok_or(GroupError::NotAdmin)
    }

    /// Pushes `change` to the group swarm as its admin: a supplement and a new key message if
    /// asked (or if admins rekeyed concurrently), then new Info and Members versions sealed
    /// with the current key. Each new version is built on the merge of the current versions
    /// (libsession's rules), so it also resolves concurrent pushes of other admins; a config
    /// is pushed only if its data changes, it has concurrent versions, or the key changed.
    /// The record is saved after each stored step, so a failure midway loses nothing that
    /// reached the swarm.
    pub(crate) async fn push_change(
        &self,
        group: &mut Group,
        admin: &GroupAdmin,
        change: Change,
    ) -> Result<(), MessengerError> {
        let id = group.id;
        let credential = Credential::Admin(Box::new(admin.clone()));
        let mut keys = group.keys(&self.identity);
        if !change.supplement.is_empty() && !keys.keys().is_empty() {
            let message = keys
                .key_supplement(admin, &change.supplement)
                .map_err(|e| GroupError::Invalid(format!("cannot share the history: {e}")))?;
            let stored = self
                .group_store(
                    &id,
                    &credential,
                    Namespace::GROUP_KEYS,
                    message.clone(),
                    GROUP_CONFIG_TTL_MS,
                )
                .await?;
            record_key_message(group, stored, message);
        }
        let rekey = change.rekey || keys.needs_rekey();
        if rekey {
            let message = keys.rekey(admin, &change.members.rekey_members()).to_vec();
            let stored = self
                .group_store(
                    &id,
                    &credential,
                    Namespace::GROUP_KEYS,
                    message.clone(),
                    GROUP_CONFIG_TTL_MS,
                )
                .await?;
            keys.load(
                KeyHolder::Admin(admin),
                &message,
                stored.hash,
                stored.timestamp,
            )
            .map_err(|e| GroupError::Invalid(format!("our own key message: {e}")))?;
            record_key_message(group, stored, message);
            self.save_group(group).await?;
        }
        let key = keys.encryption_key().ok_or(GroupError::NoKey)?.clone();
        for kind in [GroupConfigKind::Info, GroupConfigKind::Members] {
            let Some(signed) = next_config_version(group, admin, &change, kind, rekey) else {
                continue;
            };
            let sealed = seal_signed_group_config(&signed, &key, kind)
                .map_err(|e| GroupError::Invalid(format!("cannot seal the group config: {e}")))?;
            self.group_store(
                &id,
                &credential,
                kind.namespace(),
                sealed,
                GROUP_CONFIG_TTL_MS,
            )
            .await?;
            group.add_config_versions(kind, [signed]);
            self.save_group(group).await?;
        }
        Ok(())
    }

    /// Encrypts `content` for the group with its current key and stores it in namespace 11.
    pub(crate) async fn post_to_group(
        &self,
        group: &Group,
        credential: &Credential,
        content: &Content,
        timestamp: u64,
    ) -> Result<GroupStored, MessengerError> {
        let keys = self.key_lists.of(group, &self.identity);
        let key = keys.encryption_key().ok_or(GroupError::NoKey)?;
        let plaintext = wrap_group_content(content, timestamp);
        let data = encrypt_for_group(
            &self.identity,
            &group.id,
            key,
            &plaintext,
            true,
            GROUP_MESSAGE_PADDING,
            &mut rand::rngs::OsRng,
        )
        .map_err(|e| MessengerError::Build(e.to_string()))?;
        // A message that disappears after sending lives only that long on the swarm too.
        let ttl = match (content.expiration_type, content.expiration_timer) {
            (Some(kind), Some(secs))
                if secs > 0 && kind == ExpirationType::DeleteAfterSend as i32 =>
            {
                u64::from(secs) * 1000
            }
            _ => MESSAGE_TTL_MS,
        };
        self.group_store(&group.id, credential, Namespace::GROUP_MESSAGES, data, ttl)
            .await
    }

    /// Tells the group about a membership change (admin-signed); failures are logged only:
    /// the configs already carry the change.
    async fn post_member_change(
        &self,
        group: &Group,
        admin: &GroupAdmin,
        kind: MemberChangeType,
        members: &[SessionId],
        history: bool,
    ) {
        let timestamp = self.client.clock().now_ms();
        let signature = AdminText::MemberChange {
            kind,
            timestamp_ms: timestamp,
        }
        .sign(admin);
        let update = GroupUpdateMessage {
            member_change_message: Some(GroupUpdateMemberChangeMessage {
                kind: Some(kind as i32),
                member_session_ids: members.iter().map(ToString::to_string).collect(),
                history_shared: history.then_some(true),
                admin_signature: Some(signature.to_bytes().to_vec()),
            }),
            ..GroupUpdateMessage::default()
        };
        self.post_admin_update(group, admin, update, timestamp)
            .await;
    }

    /// Posts an admin's control message to the group; failures are logged only (the configs
    /// already carry the change).
    async fn post_admin_update(
        &self,
        group: &Group,
        admin: &GroupAdmin,
        update: GroupUpdateMessage,
        timestamp: u64,
    ) {
        let credential = Credential::Admin(Box::new(admin.clone()));
        let content = update_content(update, timestamp);
        if let Err(e) = self
            .post_to_group(group, &credential, &content, timestamp)
            .await
        {
            tracing::warn!("could not post a group update: {e}");
        }
    }

    /// Tells the group about an Info change (admin-signed); failures are logged only.
    async fn post_info_change(
        &self,
        group: &Group,
        admin: &GroupAdmin,
        kind: InfoChangeType,
        name: Option<String>,
        expiration: Option<u32>,
    ) {
        let timestamp = self.client.clock().now_ms();
        let signature = AdminText::InfoChange {
            kind,
            timestamp_ms: timestamp,
        }
        .sign(admin);
        let update = GroupUpdateMessage {
            info_change_message: Some(GroupUpdateInfoChangeMessage {
                kind: Some(kind as i32),
                updated_name: name,
                updated_expiration: expiration,
                admin_signature: Some(signature.to_bytes().to_vec()),
            }),
            ..GroupUpdateMessage::default()
        };
        self.post_admin_update(group, admin, update, timestamp)
            .await;
    }

    /// Sends each of `members` an invite over the 1:1 protocol: the group ID and name, their
    /// credential, and the group's signature binding it to them and the moment. Returns how
    /// many were sent; the first failure is returned after trying everyone.
    async fn send_invites(
        &self,
        group: &Group,
        admin: &GroupAdmin,
        members: &[SessionId],
    ) -> Result<usize, MessengerError> {
        let profile = self.profile().await?;
        let mut first_error = None;
        let mut sent = 0;
        for member in members {
            let auth = make_auth_data(admin, member, MEMBER_FLAGS)
                .map_err(|e| GroupError::Invalid(format!("cannot invite {member}: {e}")))?;
            let timestamp = self.client.clock().now_ms();
            let signature = AdminText::Invite {
                invitee: member,
                timestamp_ms: timestamp,
            }
            .sign(admin);
            let update = GroupUpdateMessage {
                invite_message: Some(GroupUpdateInviteMessage {
                    group_session_id: Some(group.id.to_string()),
                    name: Some(group.name()),
                    member_auth_data: Some(auth.as_bytes().to_vec()),
                    admin_signature: Some(signature.to_bytes().to_vec()),
                }),
                ..GroupUpdateMessage::default()
            };
            let mut content = update_content(update, timestamp);
            if let Some(data) = content.data_message.as_mut() {
                data.profile.clone_from(&profile);
            }
            match self.send_control(member, content).await {
                Ok(_) => sent += 1,
                Err(e) => {
                    tracing::warn!("could not send a group invite: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(sent), Err)
    }

    /// Creates a group named `name` with us as its admin and invites `members` (who see the
    /// invite as a request unless we are their contact). Returns the new group's ID.
    pub async fn create_group(
        &self,
        name: &str,
        members: &[SessionId],
    ) -> Result<GroupId, MessengerError> {
        let name = clean_group_name(name)?;
        let admin = GroupAdmin::generate(&mut rand::rngs::OsRng);
        let now = self.client.clock().now_ms();
        let now_s = i64::try_from(now / 1000).unwrap_or(i64::MAX);
        let me = self.session_id();
        let mut group = Group {
            id: admin.id(),
            record: GroupRecord::new(&name, GroupStatus::Joined, now_s),
        };
        group.record.admin_seed = Some(Hex(admin.seed().to_vec()));
        let mut change = Change::of(&group);
        change.info.name = Some(name);
        change.info.created = now_s;
        change.members.members.insert(
            me,
            GroupMember {
                name: self.display_name().await?.unwrap_or_default(),
                admin: true,
                ..GroupMember::default()
            },
        );
        let invitees: Vec<SessionId> = members.iter().copied().filter(|m| *m != me).collect();
        for member in &invitees {
            change.members.members.insert(
                *member,
                GroupMember {
                    invite: SendStatus::Sent,
                    ..GroupMember::default()
                },
            );
        }
        change.rekey = true;
        self.save_group(&group).await?;
        self.push_change(&mut group, &admin, change).await?;
        self.sync_config_logged(ConfigKind::UserGroups).await;
        if !invitees.is_empty() {
            self.post_member_change(&group, &admin, MemberChangeType::Added, &invitees, false)
                .await;
            self.send_invites(&group, &admin, &invitees).await?;
        }
        Ok(group.id)
    }

    /// Adds `members` to a group we administer and invites them. With `history`, they also get
    /// every key held so far (a supplement) and can read earlier messages; without, only
    /// messages from now on. Either way the key changes, and their tokens are un-revoked (a
    /// re-invite after a removal).
    pub async fn invite_to_group(
        &self,
        id: &GroupId,
        members: &[SessionId],
        history: bool,
    ) -> Result<usize, MessengerError> {
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let mut change = Change::of(&group);
        let new: Vec<SessionId> = members
            .iter()
            .copied()
            .filter(|m| *m != self.session_id())
            .collect();
        if new.is_empty() {
            return Err(GroupError::Invalid("nobody to invite".into()).into());
        }
        for member in &new {
            let entry = change.members.members.entry(*member).or_default();
            entry.invite = SendStatus::Sent;
            entry.supplement = history;
            entry.removal = shallot_proto::group::Removal::None;
        }
        change.rekey = true;
        if history {
            change.supplement.clone_from(&new);
        }
        let tokens = new
            .iter()
            .filter_map(|m| subaccount_token(&admin, m, MEMBER_FLAGS).ok())
            .collect();
        self.group_revocation(&admin, tokens, false).await?;
        self.push_change(&mut group, &admin, change).await?;
        self.post_member_change(&group, &admin, MemberChangeType::Added, &new, history)
            .await;
        self.send_invites(&group, &admin, &new).await
    }

    /// Removes `members` from a group we administer: a kicked notice they can still read
    /// (namespace −11), their tokens revoked, the member list without them and a new key they
    /// do not get, so nothing written from now on is readable to them.
    pub async fn remove_from_group(
        &self,
        id: &GroupId,
        members: &[SessionId],
    ) -> Result<(), MessengerError> {
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let mut change = Change::of(&group);
        let removed: Vec<SessionId> = members
            .iter()
            .copied()
            .filter(|m| change.members.members.remove(m).is_some())
            .collect();
        if removed.is_empty() {
            return Err(GroupError::Invalid("none of them is a member".into()).into());
        }
        let generation = group.keys(&self.identity).current_generation().unwrap_or(0);
        let notice = kicked_notice(&admin, &removed, generation, &mut rand::rngs::OsRng);
        let credential = Credential::Admin(Box::new(admin.clone()));
        self.group_store(
            &group.id,
            &credential,
            KICKED_NAMESPACE,
            notice,
            GROUP_CONFIG_TTL_MS,
        )
        .await?;
        let tokens = removed
            .iter()
            .filter_map(|m| subaccount_token(&admin, m, MEMBER_FLAGS).ok())
            .collect();
        self.group_revocation(&admin, tokens, true).await?;
        change.rekey = true;
        self.push_change(&mut group, &admin, change).await?;
        self.post_member_change(&group, &admin, MemberChangeType::Removed, &removed, false)
            .await;
        Ok(())
    }

    /// Makes `member` an admin of a group we administer: they get the group seed over the
    /// 1:1 protocol (and keep it in their UserGroups config for their other devices).
    pub async fn promote_in_group(
        &self,
        id: &GroupId,
        member: &SessionId,
    ) -> Result<(), MessengerError> {
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let mut change = Change::of(&group);
        let entry = change
            .members
            .members
            .get_mut(member)
            .ok_or_else(|| GroupError::Invalid(format!("{member} is not a member")))?;
        entry.admin = true;
        entry.promotion = SendStatus::Sent;
        self.push_change(&mut group, &admin, change).await?;
        self.post_member_change(
            &group,
            &admin,
            MemberChangeType::Promoted,
            &[*member],
            false,
        )
        .await;
        let timestamp = self.client.clock().now_ms();
        let update = GroupUpdateMessage {
            promote_message: Some(GroupUpdatePromoteMessage {
                group_identity_seed: Some(admin.seed().to_vec()),
                name: Some(group.name()),
            }),
            ..GroupUpdateMessage::default()
        };
        let mut content = update_content(update, timestamp);
        if let Some(data) = content.data_message.as_mut() {
            data.profile = self.profile().await?;
        }
        self.send_control(member, content).await?;
        Ok(())
    }

    /// Renames a group we administer.
    pub async fn rename_group(&self, id: &GroupId, name: &str) -> Result<(), MessengerError> {
        let name = clean_group_name(name)?;
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let mut change = Change::of(&group);
        change.info.name = Some(name.clone());
        self.push_change(&mut group, &admin, change).await?;
        self.post_info_change(&group, &admin, InfoChangeType::Name, Some(name), None)
            .await;
        self.sync_config_logged(ConfigKind::UserGroups).await;
        Ok(())
    }

    /// Sets the description of a group we administer (empty: none).
    pub async fn describe_group(&self, id: &GroupId, text: &str) -> Result<(), MessengerError> {
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let mut change = Change::of(&group);
        change.info.description = (!text.trim().is_empty()).then(|| text.trim().to_owned());
        self.push_change(&mut group, &admin, change).await
    }

    /// Sets the disappearing timer of a group we administer (seconds after sending; 0: off).
    pub async fn set_group_timer(&self, id: &GroupId, secs: u32) -> Result<(), MessengerError> {
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let mut change = Change::of(&group);
        change.info.disappear_after_send_secs = i64::from(secs);
        self.push_change(&mut group, &admin, change).await?;
        self.post_info_change(
            &group,
            &admin,
            InfoChangeType::DisappearingMessages,
            None,
            Some(secs),
        )
        .await;
        Ok(())
    }

    /// Deletes a group's messages sent until now, for every member (Info `d`): each client
    /// deletes its copies and drops older ones that arrive late.
    pub async fn clear_group_history(&self, id: &GroupId) -> Result<(), MessengerError> {
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let now = self.client.clock().now_ms();
        let mut change = Change::of(&group);
        change.info.delete_before = i64::try_from(now / 1000).unwrap_or(i64::MAX);
        self.push_change(&mut group, &admin, change).await?;
        let gid = group.id;
        let before = now / 1000 * 1000;
        self.db
            .call(move |db| db.delete_group_messages_before(&gid, before))
            .await?;
        Ok(())
    }

    /// Destroys a group we administer: members remove it when they see the Info flag.
    pub async fn destroy_group(&self, id: &GroupId) -> Result<(), MessengerError> {
        let mut group = self.load_group(id).await?;
        let admin = Self::admin_of(&group)?;
        let mut change = Change::of(&group);
        change.info.destroyed = true;
        self.push_change(&mut group, &admin, change).await?;
        group.record.status = GroupStatus::Destroyed;
        self.save_group(&group).await?;
        self.sync_config_logged(ConfigKind::UserGroups).await;
        Ok(())
    }
}

/// The next version of config `kind` carrying `change`, signed: built on the merge of the
/// current versions (its `=` diff holds only this change, its `<` the diffs it absorbs).
/// `None` when there is nothing to push: one current version, no change, no new key.
pub(crate) fn next_config_version(
    group: &Group,
    admin: &GroupAdmin,
    change: &Change,
    kind: GroupConfigKind,
    rekeyed: bool,
) -> Option<Vec<u8>> {
    let versions = group.config_versions(kind);
    let base = next_base(&versions);
    let mut data = base.data.clone();
    match kind {
        GroupConfigKind::Info => change.info.apply_to(&mut data),
        GroupConfigKind::Members => change.members.apply_to(&mut data),
    }
    let data = prune(&data);
    if versions.len() == 1 && data == base.data && !rekeyed {
        return None;
    }
    let previous = (!versions.is_empty()).then_some(&base.data);
    Some(sign_group_config(&base.message(data), previous, admin))
}

/// Adds a key message we stored to the record.
fn record_key_message(group: &mut Group, stored: GroupStored, message: Vec<u8>) {
    if !group.has_key_message(&stored.hash) {
        group.record.key_messages.push(StoredKeyMessage {
            hash: stored.hash,
            timestamp: stored.timestamp,
            data: Hex(message),
        });
    }
}
