//! Polling the group swarms with the inbox (groups spec §2, §7.4): one batch per group, read
//! with our credential, and taken in keys first, then Info and Members, then kicked notices,
//! then messages. Everything that does not verify (a key message or config not signed by the
//! group, a message no held key opens or whose signature fails, a hash that does not name its
//! data) is dropped with a log line and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use shallot_directory::NodeRecord;
use shallot_proto::group::{
    check_kicked, decrypt_group_message, open_group_config, unwrap_group_content, GroupConfigKind,
    GroupId, GroupKeys, GroupUpdateMessage, KeyHolder, KickedError,
};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::{Request, RetrievedMessage};
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::session::protos::Content;
use shallot_proto::{Ed25519Pub, Identity, Namespace, SessionId};

use super::admin::Change;
use super::requests::{Credential, KICKED_NAMESPACE};
use super::state::{Hex, KeyLists, StoredKeyMessage};
use super::{Group, GroupStatus};
use crate::db::{Db, DbError, Direction, MessageState, StoredGroupMessage};
use crate::error::Error;
use crate::messenger::judge::MAX_ATTACHMENTS;
use crate::messenger::waits::{WaitTarget, MAX_GROUP_WAITS};
use crate::messenger::{retrieve_results, was_held, Messenger, MessengerError, ReceivedMessage};

/// The namespaces one group poll reads, in request order: kicked notices first (the one a
/// revoked member can still read, and a batch's first retrieve must succeed), messages,
/// Info, Members, and keys last so a key stored meanwhile is not missed.
pub const POLLED: [Namespace; 5] = [
    KICKED_NAMESPACE,
    Namespace::GROUP_MESSAGES,
    Namespace::GROUP_INFO,
    Namespace::GROUP_MEMBERS,
    Namespace::GROUP_KEYS,
];

/// What a poll asks an admin to do next.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AdminWork {
    /// Members who said they joined, with the name their profile gave.
    pub joined: Vec<(SessionId, Option<String>)>,
    /// Members who said they left: to remove (and rekey).
    pub left: Vec<SessionId>,
    /// Concurrent config versions (or concurrent rekeys) to resolve: push the merge.
    pub merge: bool,
}

/// What taking in one group's poll did.
#[derive(Debug, Default)]
pub(crate) struct GroupIntake {
    /// New visible messages.
    pub shown: Vec<ReceivedMessage>,
    /// Work for us as an admin.
    pub work: AdminWork,
    /// Our standing changed (kicked, destroyed): push UserGroups.
    pub standing_changed: bool,
    /// Reactions members added or took back.
    pub updates: Vec<crate::messenger::Update>,
}

/// A group message opened: its author (from the signature), timestamp and content.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedGroupMessage {
    /// The author.
    pub sender: SessionId,
    /// The envelope timestamp (ms).
    pub timestamp: u64,
    /// The content.
    pub content: Content,
}

/// Opens a namespace-11 item with any held key: decrypts, checks the author's signature, and
/// reads the envelope. The reason is returned when it does not open.
pub fn open_group_message(
    keys: &GroupKeys,
    group: &GroupId,
    data: &[u8],
) -> Result<OpenedGroupMessage, String> {
    let message =
        decrypt_group_message(keys.decryption_keys(), group, data).map_err(|e| e.to_string())?;
    let (timestamp, content) =
        unwrap_group_content(&message.plaintext).map_err(|e| e.to_string())?;
    Ok(OpenedGroupMessage {
        sender: message.sender,
        timestamp,
        content,
    })
}

/// Whether `item`'s hash names its data in `namespace` of `group` (a node cannot pass off
/// other bytes under a known hash).
fn names_its_data(group: &GroupId, namespace: Namespace, item: &RetrievedMessage) -> bool {
    let ok = MessageHash::compute(&group.account(), namespace, &item.data) == item.hash;
    if !ok {
        tracing::warn!(message = %item.hash, "dropping group item: hash does not match the data");
    }
    ok
}

/// Takes in the key messages of a poll: each one that verifies is kept (whether or not it held
/// a key for us); forged or malformed ones are dropped.
pub(crate) fn take_keys(
    group: &mut Group,
    me: &Identity,
    keys: &mut GroupKeys,
    items: &[RetrievedMessage],
) {
    let admin = group.admin();
    let holder = admin
        .as_ref()
        .map_or(KeyHolder::Member(me), KeyHolder::Admin);
    for item in items {
        if !names_its_data(&group.id, Namespace::GROUP_KEYS, item)
            || group.has_key_message(&item.hash)
        {
            continue;
        }
        let timestamp = i64::try_from(item.timestamp).unwrap_or(i64::MAX);
        match keys.load(holder, &item.data, item.hash, timestamp) {
            Ok(_) => group.record.key_messages.push(StoredKeyMessage {
                hash: item.hash,
                timestamp,
                data: Hex(item.data.clone()),
            }),
            Err(e) => tracing::warn!(message = %item.hash, "dropping group key message: {e}"),
        }
    }
}

/// Takes in Info or Members versions: each that opens with a held key and is signed by the
/// group joins the current versions (see [`Group::add_config_versions`]). Concurrent versions
/// are shown merged; an admin also pushes the merge (members only read, groups spec §4.1).
pub(crate) fn take_configs(
    group: &mut Group,
    keys: &GroupKeys,
    kind: GroupConfigKind,
    items: &[RetrievedMessage],
) {
    let mut opened_versions = Vec::new();
    for item in items {
        if !names_its_data(&group.id, kind.namespace(), item) {
            continue;
        }
        match open_group_config(&item.data, keys.decryption_keys(), &group.id, kind) {
            Ok(opened) => opened_versions.push(opened.plaintext),
            Err(e) => tracing::warn!(message = %item.hash, "dropping group config: {e}"),
        }
    }
    if !opened_versions.is_empty() {
        group.add_config_versions(kind, opened_versions);
    }
}

/// Takes in one group's poll (`items` in [`POLLED`] order) for `me`, its key list from
/// `lists`.
pub(crate) fn take_in_group(
    db: &mut Db,
    me: &Identity,
    lists: &KeyLists,
    id: GroupId,
    items: &[Vec<RetrievedMessage>],
    now_ms: u64,
) -> Result<GroupIntake, DbError> {
    let mut intake = GroupIntake::default();
    let Some(mut group) = db.group(&id)? else {
        return Ok(intake);
    };
    let before = group.record.clone();
    let empty = Vec::new();
    let at = |ns: Namespace| {
        POLLED
            .iter()
            .position(|p| *p == ns)
            .and_then(|i| items.get(i))
            .unwrap_or(&empty)
    };
    let mut keys = lists.of(&group, me);
    take_keys(&mut group, me, &mut keys, at(Namespace::GROUP_KEYS));
    if group.record.key_messages != before.key_messages {
        lists.keep(&group, &keys);
    }
    take_configs(
        &mut group,
        &keys,
        GroupConfigKind::Info,
        at(Namespace::GROUP_INFO),
    );
    take_configs(
        &mut group,
        &keys,
        GroupConfigKind::Members,
        at(Namespace::GROUP_MEMBERS),
    );
    if group.admin().is_some() && (group.config_conflict() || keys.needs_rekey()) {
        intake.work.merge = true;
    }
    let info = group.info();
    if info.destroyed && group.record.status != GroupStatus::Destroyed {
        group.record.status = GroupStatus::Destroyed;
        intake.standing_changed = true;
    }
    let delete_before = u64::try_from(info.delete_before).unwrap_or(0) * 1000;
    if delete_before > 0 {
        db.delete_group_messages_before(&id, delete_before)?;
    }
    take_kicked(&mut group, me, &keys, at(KICKED_NAMESPACE), &mut intake);
    take_messages(
        db,
        &group,
        me,
        &keys,
        at(Namespace::GROUP_MESSAGES),
        delete_before,
        &mut intake,
    )?;
    // Most answers bring messages only: the record is then sealed and written again only
    // when something in it changed, and the activity time is bumped either way.
    if group.record == before {
        db.touch_group(&id, now_ms)?;
    } else {
        db.save_group(&group, now_ms)?;
    }
    Ok(intake)
}

/// Takes in kicked notices: one for us, not older than our key, means we were removed.
fn take_kicked(
    group: &mut Group,
    me: &Identity,
    keys: &GroupKeys,
    items: &[RetrievedMessage],
    intake: &mut GroupIntake,
) {
    let id = group.id;
    for item in items {
        if !names_its_data(&id, KICKED_NAMESPACE, item) {
            continue;
        }
        match check_kicked(&item.data, me, &id, keys.current_generation()) {
            Ok(()) if group.record.status == GroupStatus::Joined => {
                tracing::info!("removed from a group");
                group.record.status = GroupStatus::Kicked;
                group.record.auth_data = None;
                group.record.admin_seed = None;
                intake.standing_changed = true;
            }
            Ok(()) | Err(KickedError::NotForUs) => {}
            Err(e) => tracing::debug!(message = %item.hash, "ignoring kicked notice: {e}"),
        }
    }
}

/// Takes in namespace-11 messages: texts are stored and shown (to disappear under the group's
/// timer, counted from their timestamp), control messages noted for an admin, and whatever
/// does not open (or predates delete-before) is dropped.
fn take_messages(
    db: &mut Db,
    group: &Group,
    me: &Identity,
    keys: &GroupKeys,
    items: &[RetrievedMessage],
    delete_before: u64,
    intake: &mut GroupIntake,
) -> Result<(), DbError> {
    let id = group.id;
    let own = me.session_id();
    let admin = group.admin().is_some();
    let disappear_ms = u64::try_from(group.info().disappear_after_send_secs).unwrap_or(0) * 1000;
    for item in items {
        if !names_its_data(&id, Namespace::GROUP_MESSAGES, item) || db.is_seen(&item.hash)? {
            continue;
        }
        let opened = match open_group_message(keys, &id, &item.data) {
            Ok(opened) => opened,
            Err(why) => {
                tracing::warn!(message = %item.hash, "dropping group message: {why}");
                db.mark_seen(&item.hash, None)?;
                continue;
            }
        };
        if opened.timestamp < delete_before {
            db.mark_seen(&item.hash, None)?;
            continue;
        }
        // A member's new picture (with its key), taken for someone we have a conversation with
        // (`record_contact_picture` keeps no others). A profile without a picture removes
        // nothing here: removals travel in one-to-one messages.
        let picture = (opened.sender != own)
            .then(|| crate::messenger::judge::profile_picture(&opened.content, opened.timestamp))
            .flatten()
            .filter(|(picture, _)| picture.is_some());
        let data = opened.content.data_message.unwrap_or_default();
        if let Some(update) = data.group_update_message {
            db.mark_seen(&item.hash, None)?;
            if admin && opened.sender != own {
                note_admin_work(&mut intake.work, opened.sender, &update, data.profile);
            }
            continue;
        }
        if let Some(reaction) = &data.reaction {
            db.mark_seen(&item.hash, None)?;
            take_reaction(db, &id, opened.sender, reaction, intake)?;
            continue;
        }
        // Read receipts and typing indicators are not sent in Session groups: anything with
        // neither text nor files is dropped. Attachment pointers are kept unchecked (checked
        // when downloaded), as in 1:1.
        let quote = crate::messenger::feedback::quote_of(&data);
        let mut pointers = data.attachments;
        pointers.truncate(MAX_ATTACHMENTS);
        let body = data.body.unwrap_or_default();
        if body.is_empty() && pointers.is_empty() {
            db.mark_seen(&item.hash, None)?;
            continue;
        }
        let message = StoredGroupMessage {
            id: item.hash,
            group: id,
            direction: if opened.sender == own {
                Direction::Outgoing
            } else {
                Direction::Incoming
            },
            sender: opened.sender,
            timestamp: opened.timestamp,
            body,
            state: MessageState::Received,
        };
        if db.insert_group_message(&message)? {
            if let Some((picture, updated)) = picture {
                db.record_contact_picture(&message.sender, picture, updated)?;
            }
            if let Some(quote) = &quote {
                db.set_quote(&message.id, quote)?;
            }
            // The group's disappearing timer (its signed Info), whatever the message says.
            if disappear_ms > 0 {
                db.set_group_message_expires(&message.id, message.timestamp + disappear_ms)?;
            }
            let attachments = db.insert_group_attachments(&message.id, &pointers)?;
            intake.shown.push(ReceivedMessage {
                hash: message.id,
                conversation: message.sender,
                sender: message.sender,
                direction: message.direction,
                timestamp: message.timestamp,
                body: message.body,
                group: Some(id),
                attachments,
            });
        }
    }
    Ok(())
}

/// Takes in a member's reaction to a group message (named by its timestamp and author; one
/// we do not hold is ignored).
fn take_reaction(
    db: &Db,
    group: &GroupId,
    reactor: SessionId,
    reaction: &shallot_proto::session::protos::Reaction,
    intake: &mut GroupIntake,
) -> Result<(), DbError> {
    let (target, emoji, remove) = match crate::messenger::feedback::read_reaction(reaction) {
        Ok(read) => read,
        Err(why) => {
            tracing::debug!("dropping a group reaction: {why}");
            return Ok(());
        }
    };
    let Some(message) = db.group_message_by(group, target.timestamp, &target.author)? else {
        return Ok(());
    };
    if db.set_reaction(&message.id, &reactor, &emoji, remove)? {
        intake.updates.push(crate::messenger::Update::Reaction {
            conversation: message.sender,
            group: Some(*group),
            message: message.id,
            author: reactor,
            emoji,
            removed: remove,
        });
    }
    Ok(())
}

/// Records what a member's control message asks of an admin.
fn note_admin_work(
    work: &mut AdminWork,
    sender: SessionId,
    update: &GroupUpdateMessage,
    profile: Option<shallot_proto::session::protos::Profile>,
) {
    if update
        .invite_response
        .as_ref()
        .is_some_and(|r| r.is_approved == Some(true))
    {
        let name = profile
            .and_then(|p| p.display_name)
            .and_then(|n| crate::messenger::clean_display_name(&n));
        work.joined.push((sender, name));
    }
    if update.member_left_message.is_some() {
        work.left.push(sender);
    }
}

impl Messenger {
    /// Polls every group we can access, each in one batch to one member of its swarm, and
    /// returns the new visible messages. A group that fails is logged and skipped.
    pub(crate) async fn receive_groups(&self) -> Vec<ReceivedMessage> {
        let groups = match self.db.call(|db| db.groups()).await {
            Ok(groups) => groups,
            Err(e) => {
                tracing::warn!("could not list groups: {e}");
                return Vec::new();
            }
        };
        self.note_groups(&groups);
        self.poll_groups(groups.into_iter().filter(Group::can_access).collect())
            .await
    }

    /// Polls `groups` at once and returns the new visible messages; failures are logged.
    pub(crate) async fn poll_groups(&self, groups: Vec<Group>) -> Vec<ReceivedMessage> {
        let polls = groups.into_iter().map(|g| self.poll_group(g));
        let mut shown = Vec::new();
        for result in futures_util::future::join_all(polls).await {
            match result {
                Ok(messages) => shown.extend(messages),
                Err(e) => tracing::warn!("could not poll a group: {e}"),
            }
        }
        shown
    }

    /// Starts a waiting retrieve for each group we can access that has none in flight, up to
    /// [`MAX_GROUP_WAITS`] (most recently active first); returns the groups to poll instead:
    /// past the cap, backing off after a wait that was not held, or whose wait could not start.
    pub(crate) async fn start_group_waits(&self, wait: Duration) -> Vec<Group> {
        let groups = match self.db.call(|db| db.groups()).await {
            Ok(groups) => groups,
            Err(e) => {
                tracing::warn!("could not list groups: {e}");
                return Vec::new();
            }
        };
        self.note_groups(&groups);
        let (mut covered, mut uncovered) = (Vec::new(), Vec::new());
        for group in groups.into_iter().filter(Group::can_access) {
            if covered.len() < MAX_GROUP_WAITS && !self.waits.backing_off(&group.id) {
                covered.push(group);
            } else {
                uncovered.push(group);
            }
        }
        self.waits
            .retain_groups(&covered.iter().map(|g| g.id).collect::<Vec<_>>());
        for group in covered {
            let target = WaitTarget::Group(group.id);
            if self.waits.in_flight(target) {
                continue;
            }
            match self.group_wait_request(&group, wait).await {
                Ok((member, request)) => {
                    let timeout = wait + crate::messenger::PUSH_WAIT_MARGIN;
                    self.waits
                        .start(target, &self.client, member, request, timeout);
                }
                Err(e) => {
                    tracing::debug!("could not wait on a group, polling it: {e}");
                    self.waits.back_off(group.id);
                    uncovered.push(group);
                }
            }
        }
        uncovered
    }

    /// A waiting retrieve of `group`'s namespaces ([`POLLED`]) to a member of its swarm: the
    /// one whose last answer brought items ([`Waits::stick`]), else a random one.
    ///
    /// [`Waits::stick`]: crate::messenger::waits::Waits::stick
    async fn group_wait_request(
        &self,
        group: &Group,
        wait: Duration,
    ) -> Result<(NodeRecord, Request), MessengerError> {
        let credential = self.credential(group)?;
        let mut members = self.client.swarm(&group.id.account()).await?;
        members.shuffle(&mut rand::thread_rng());
        let sticky = self.waits.take_sticky(&group.id);
        if let Some(pos) = sticky.and_then(|k| members.iter().position(|m| m.ed25519 == k)) {
            members.swap(0, pos);
        }
        let member = members.into_iter().next().ok_or(Error::SwarmUnreachable {
            tried: 0,
            last: "no group swarm members".into(),
        })?;
        let mut request = self
            .group_batch(&group.id, &credential, member.ed25519)
            .await?;
        if let Request::Batch(retrieves) = &mut request {
            for retrieve in retrieves {
                if let Request::Retrieve(r) = retrieve {
                    r.wait_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                }
            }
        }
        Ok((member, request))
    }

    /// Takes in the answer to a group's waiting retrieve. A wait the node did not hold (or
    /// that failed) puts the group on polling for a while, and a failed one is polled now.
    pub(crate) async fn take_group_wait(
        &self,
        id: GroupId,
        node: Ed25519Pub,
        result: Result<(u16, serde_json::Value), Error>,
    ) -> Vec<ReceivedMessage> {
        let taken = match result {
            Ok((_, body)) => self.take_group_answer(id, node, &body).await,
            Err(e) => Err(e.into()),
        };
        match taken {
            Ok((shown, true)) => shown,
            Ok((shown, false)) => {
                self.waits.back_off(id);
                shown
            }
            Err(e) => {
                tracing::debug!("a group wait failed, polling the group: {e}");
                self.waits.back_off(id);
                match self.load_group(&id).await {
                    Ok(group) if group.can_access() => self.poll_groups(vec![group]).await,
                    _ => Vec::new(),
                }
            }
        }
    }

    /// The batch of signed retrieves of [`POLLED`] of `id` from `node`'s cursors.
    async fn group_batch(
        &self,
        id: &GroupId,
        credential: &Credential,
        node: Ed25519Pub,
    ) -> Result<Request, MessengerError> {
        let account = id.account();
        let cursors = self
            .db
            .call(move |db| {
                POLLED
                    .iter()
                    .map(|ns| db.last_hash(&node, &account, *ns))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let retrieves = POLLED
            .iter()
            .zip(cursors)
            .map(|(ns, cursor)| self.group_retrieve(id, credential, *ns, cursor))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Request::Batch(retrieves))
    }

    /// Takes in `node`'s answer to a batch of [`POLLED`] of group `id`: items, then cursors,
    /// then any admin work. Also says whether the node held the request (granted its wait).
    async fn take_group_answer(
        &self,
        id: GroupId,
        node: Ed25519Pub,
        body: &serde_json::Value,
    ) -> Result<(Vec<ReceivedMessage>, bool), MessengerError> {
        let account = id.account();
        let pages = retrieve_results(body, POLLED.len())?;
        let held = was_held(&pages);
        let items: Vec<Vec<RetrievedMessage>> = pages
            .into_iter()
            .map(|page| page.map(|p| p.messages).unwrap_or_default())
            .collect();
        let cursors: Vec<(Namespace, MessageHash)> = POLLED
            .iter()
            .zip(&items)
            .filter_map(|(ns, messages)| Some((*ns, messages.last()?.hash)))
            .collect();
        if !cursors.is_empty() {
            self.waits.stick(id, node);
        }
        let me = Arc::clone(&self.identity);
        let lists = Arc::clone(&self.key_lists);
        let now = self.client.clock().now_ms();
        let intake = self
            .db
            .call(move |db| {
                let intake = take_in_group(db, &me, &lists, id, &items, now)?;
                for (ns, hash) in &cursors {
                    db.set_last_hash(&node, &account, *ns, hash)?;
                }
                Ok::<_, DbError>(intake)
            })
            .await?;
        if intake.standing_changed {
            self.sync_config_logged(ConfigKind::UserGroups).await;
        }
        self.note_updates(intake.updates);
        self.do_admin_work(&id, intake.work).await;
        Ok((intake.shown, held))
    }

    /// Polls one group and takes in what came.
    async fn poll_group(&self, group: Group) -> Result<Vec<ReceivedMessage>, MessengerError> {
        let id = group.id;
        let account = id.account();
        let credential = self.credential(&group)?;
        let mut members = self.client.swarm(&account).await?;
        members.shuffle(&mut rand::thread_rng());
        let mut last = None;
        for member in members.iter().take(2) {
            let request = self.group_batch(&id, &credential, member.ed25519).await?;
            let body = match self.client.request_node(member, &request).await {
                Ok((_, body)) => body,
                Err(Error::SwarmMoved { snodes }) => {
                    if !snodes.is_empty() {
                        self.client.set_cached_swarm(account, snodes);
                    }
                    last = Some(Error::SwarmMoved { snodes: Vec::new() });
                    continue;
                }
                Err(e @ Error::ClockSkew { .. }) => return Err(e.into()),
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let (shown, _) = self.take_group_answer(id, member.ed25519, &body).await?;
            return Ok(shown);
        }
        Err(last
            .unwrap_or(Error::SwarmUnreachable {
                tried: 0,
                last: "no group swarm members".into(),
            })
            .into())
    }

    /// Fetches the key messages stored since our last look (namespace 12 only, so no message
    /// is taken in unseen), so that what we send next uses the newest key: a message sealed
    /// with a key others do not hold yet would be lost to them.
    pub(crate) async fn refresh_group_keys(&self, group: &Group) -> Result<Group, MessengerError> {
        let (id, account) = (group.id, group.id.account());
        let credential = self.credential(group)?;
        let mut members = self.client.swarm(&account).await?;
        members.shuffle(&mut rand::thread_rng());
        let member = members.first().ok_or_else(|| Error::SwarmUnreachable {
            tried: 0,
            last: "no group swarm members".into(),
        })?;
        let node = member.ed25519;
        let ns = Namespace::GROUP_KEYS;
        let cursor = self
            .db
            .call(move |db| db.last_hash(&node, &account, ns))
            .await?;
        let retrieve = self.group_retrieve(&id, &credential, ns, cursor)?;
        let (_, body) = self
            .client
            .request_node(member, &Request::Batch(vec![retrieve]))
            .await?;
        let items: Vec<RetrievedMessage> = retrieve_results(&body, 1)?
            .into_iter()
            .flatten()
            .flat_map(|page| page.messages)
            .collect();
        let me = Arc::clone(&self.identity);
        let now = self.client.clock().now_ms();
        let refreshed = self
            .db
            .call(move |db| {
                let Some(mut group) = db.group(&id)? else {
                    return Ok(None);
                };
                let mut keys = group.keys(&me);
                take_keys(&mut group, &me, &mut keys, &items);
                db.save_group(&group, now)?;
                if let Some(last) = items.last() {
                    db.set_last_hash(&node, &account, ns, &last.hash)?;
                }
                Ok::<_, DbError>(Some(group))
            })
            .await?;
        Ok(refreshed.ok_or(super::GroupError::Unknown)?)
    }

    /// Marks members who joined as accepted, pushes the merge of concurrent configs (after a
    /// new key if admins rekeyed concurrently), and removes members who left; failures logged.
    async fn do_admin_work(&self, id: &GroupId, work: AdminWork) {
        if !work.joined.is_empty() || work.merge {
            let result = async {
                let mut group = self.load_group(id).await?;
                let Some(admin) = group.admin() else {
                    return Ok(());
                };
                if group.record.status != GroupStatus::Joined {
                    return Ok(());
                }
                let mut change = Change::of(&group);
                let mut changed = work.merge;
                for (member, name) in &work.joined {
                    if let Some(entry) = change.members.members.get_mut(member) {
                        if entry.invite != shallot_proto::group::SendStatus::Accepted {
                            entry.invite = shallot_proto::group::SendStatus::Accepted;
                            entry.supplement = false;
                            changed = true;
                        }
                        if let Some(name) = name.as_ref().filter(|n| **n != entry.name) {
                            entry.name.clone_from(name);
                            changed = true;
                        }
                    }
                }
                if changed {
                    self.push_change(&mut group, &admin, change).await?;
                }
                Ok::<_, MessengerError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!("could not update the group's configs: {e}");
            }
        }
        if !work.left.is_empty() {
            if let Err(e) = self.remove_from_group(id, &work.left).await {
                tracing::warn!("could not remove members who left: {e}");
            }
        }
    }
}
