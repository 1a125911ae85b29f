//! One group as this device keeps it ([`GroupRecord`], persisted sealed in the database) and
//! the views derived from it: the key list (rebuilt by replaying the stored key messages), the
//! Info and Members configs, and our credentials.
//!
//! Of each config we keep the current versions: one, or several when admins pushed
//! concurrently. They are resolved by libsession's rules (`shallot_proto::session::
//! config_merge`, as the user configs are): what we show is their merge, which is also what an
//! admin pushes next (signed), so both admins' changes survive and every admin pushes the same
//! bytes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use shallot_proto::bencode::Dict;
use shallot_proto::group::GroupConfigKind;
use shallot_proto::group::{
    AuthData, GroupAdmin, GroupId, GroupInfo, GroupKeys, GroupMembers, KeyHolder, RemovedStatus,
    UserGroups,
};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::session::config_merge::{current_versions, next_base, NextBase};
use shallot_proto::session::config_message::{ConfigMessage, ParsedConfig};
use shallot_proto::Identity;

use crate::config_sync::hex_bytes;
use crate::db::{Db, DbError};

/// Bytes kept as hex in the record's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hex(#[serde(with = "hex_bytes")] pub Vec<u8>);

/// Where we stand with a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupStatus {
    /// Invited by someone we have not accepted as a contact: shown as a request until
    /// accepted or declined; the group swarm is not polled.
    Invited {
        /// Who sent the invite (Session ID hex).
        inviter: String,
    },
    /// A member (or admin): polled, can read and write.
    Joined,
    /// Removed by an admin (a kicked notice came): history stays, nothing new arrives.
    Kicked,
    /// An admin destroyed the group.
    Destroyed,
}

/// A key message taken from the group swarm (namespace 12), replayed to rebuild the key list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKeyMessage {
    /// Its hash on the group swarm.
    pub hash: MessageHash,
    /// Its storage timestamp (ms): the key's timestamp, which expiry compares.
    pub timestamp: i64,
    /// The signed message.
    pub data: Hex,
}

/// One group as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The name from the invite, until the Info config names it.
    pub invite_name: String,
    /// Where we stand.
    pub status: GroupStatus,
    /// The group seed, when we are an admin.
    pub admin_seed: Option<Hex>,
    /// Our member credential (`auth_data`), when we are not an admin.
    pub auth_data: Option<Hex>,
    /// When we joined (unix seconds).
    pub joined_at: i64,
    /// Every valid key message seen, oldest first.
    pub key_messages: Vec<StoredKeyMessage>,
    /// The current Info config versions (decrypted, signed, serialized): one, or several
    /// concurrent ones until an admin pushes their merge.
    #[serde(deserialize_with = "heads")]
    pub info: Vec<Hex>,
    /// The current Members config versions, likewise.
    #[serde(deserialize_with = "heads")]
    pub members: Vec<Hex>,
}

/// Key lists rebuilt from groups' stored key messages ([`Group::keys`]), kept per group while
/// the key messages and our seed stay the same: replaying them (a signature check and a key
/// agreement each) was done again for every answer of a group wait.
#[derive(Default)]
pub(crate) struct KeyLists(Mutex<HashMap<GroupId, (KeysSource, GroupKeys)>>);

/// What a key list is rebuilt from: our seed for the group, and each key message's hash and
/// timestamp.
type KeysSource = (Option<Hex>, Vec<(MessageHash, i64)>);

fn keys_source(group: &Group) -> KeysSource {
    (
        group.record.admin_seed.clone(),
        group
            .record
            .key_messages
            .iter()
            .map(|m| (m.hash, m.timestamp))
            .collect(),
    )
}

impl KeyLists {
    fn lists(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, (KeysSource, GroupKeys)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `group.keys(me)`, kept or rebuilt.
    pub fn of(&self, group: &Group, me: &Identity) -> GroupKeys {
        let source = keys_source(group);
        if let Some((from, keys)) = self.lists().get(&group.id) {
            if *from == source {
                return keys.clone();
            }
        }
        let keys = group.keys(me);
        self.lists().insert(group.id, (source, keys.clone()));
        keys
    }

    /// Keeps `keys`, the list `group`'s key messages rebuild (after new ones were loaded).
    pub fn keep(&self, group: &Group, keys: &GroupKeys) {
        self.lists()
            .insert(group.id, (keys_source(group), keys.clone()));
    }
}

/// Most concurrent versions of a config kept (the greatest `(seqno, hash)` ones): admins
/// merge them at their next poll, so more means a misbehaving admin.
pub const MAX_CONFIG_HEADS: usize = 16;

/// Reads a record's config versions: a list, or (records written before merging) one
/// version or none.
fn heads<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Hex>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Heads {
        Many(Vec<Hex>),
        One(Option<Hex>),
    }
    Ok(match Heads::deserialize(d)? {
        Heads::Many(heads) => heads,
        Heads::One(head) => head.into_iter().collect(),
    })
}

impl GroupRecord {
    /// A record for a group we were just invited to or created.
    pub fn new(name: &str, status: GroupStatus, joined_at: i64) -> Self {
        Self {
            invite_name: name.to_owned(),
            status,
            admin_seed: None,
            auth_data: None,
            joined_at,
            key_messages: Vec::new(),
            info: Vec::new(),
            members: Vec::new(),
        }
    }
}

/// A group: its ID and record, with the derived views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group ID.
    pub id: GroupId,
    /// What we keep of it.
    pub record: GroupRecord,
}

impl Group {
    /// The admin keys, if we hold the seed (and it is this group's).
    pub fn admin(&self) -> Option<GroupAdmin> {
        let seed = <[u8; 32]>::try_from(self.record.admin_seed.as_ref()?.0.as_slice()).ok()?;
        let admin = GroupAdmin::from_seed(seed);
        (admin.id() == self.id).then_some(admin)
    }

    /// Our member credential, if we have one.
    pub fn auth_data(&self) -> Option<AuthData> {
        AuthData::from_bytes(&self.record.auth_data.as_ref()?.0).ok()
    }

    /// Whether we may read and write the group swarm (joined, with a credential).
    pub fn can_access(&self) -> bool {
        self.record.status == GroupStatus::Joined
            && (self.admin().is_some() || self.auth_data().is_some())
    }

    /// The key list, rebuilt from the stored key messages as `me` (admin if we hold the seed).
    pub fn keys(&self, me: &Identity) -> GroupKeys {
        let admin = self.admin();
        let holder = admin
            .as_ref()
            .map_or(KeyHolder::Member(me), KeyHolder::Admin);
        let mut keys = GroupKeys::new(self.id);
        for m in &self.record.key_messages {
            if let Err(e) = keys.load(holder, &m.data.0, m.hash, m.timestamp) {
                tracing::debug!(message = %m.hash, "stored key message no longer loads: {e}");
            }
        }
        keys
    }

    /// Whether a key message with this hash is stored.
    pub fn has_key_message(&self, hash: &MessageHash) -> bool {
        self.record.key_messages.iter().any(|m| m.hash == *hash)
    }

    fn heads(&self, kind: GroupConfigKind) -> &Vec<Hex> {
        match kind {
            GroupConfigKind::Info => &self.record.info,
            GroupConfigKind::Members => &self.record.members,
        }
    }

    /// The current versions of a config, sorted by `(seqno, hash)`: one, several while
    /// concurrent admin pushes await a merge, or none yet.
    pub fn config_versions(&self, kind: GroupConfigKind) -> Vec<ParsedConfig> {
        self.heads(kind)
            .iter()
            .filter_map(|head| ConfigMessage::parse_full(&head.0).ok())
            .collect()
    }

    /// What the next version of a config builds on: the merge of the current versions (their
    /// data when there is one), with the seqno and lagged diffs an admin's next push carries.
    pub fn config_base(&self, kind: GroupConfigKind) -> NextBase {
        next_base(&self.config_versions(kind))
    }

    /// Whether concurrent versions of a config wait for an admin's merge.
    pub fn config_conflict(&self) -> bool {
        self.record.info.len() > 1 || self.record.members.len() > 1
    }

    /// Adds config versions (decrypted, verified, serialized): those absorbed by another
    /// version's lagged diffs, stale or repeated are dropped, at most [`MAX_CONFIG_HEADS`]
    /// kept. Returns whether the current versions changed.
    pub fn add_config_versions(
        &mut self,
        kind: GroupConfigKind,
        versions: impl IntoIterator<Item = Vec<u8>>,
    ) -> bool {
        let slot = match kind {
            GroupConfigKind::Info => &mut self.record.info,
            GroupConfigKind::Members => &mut self.record.members,
        };
        let mut by_hash = std::collections::HashMap::new();
        let mut parsed = Vec::new();
        for bytes in slot.iter().map(|h| h.0.clone()).chain(versions) {
            if let Ok(version) = ConfigMessage::parse_full(&bytes) {
                by_hash.entry(version.hash).or_insert(bytes);
                parsed.push(version);
            }
        }
        let mut current = current_versions(parsed);
        let cut = current.len().saturating_sub(MAX_CONFIG_HEADS);
        current.drain(..cut);
        let kept: Vec<Hex> = current
            .iter()
            .filter_map(|v| by_hash.remove(&v.hash).map(Hex))
            .collect();
        let changed = kept != *slot;
        *slot = kept;
        changed
    }

    /// The group's settings (defaults before the first Info config): the merge of the
    /// current versions.
    pub fn info(&self) -> GroupInfo {
        GroupInfo::from_data(&self.config_base(GroupConfigKind::Info).data)
    }

    /// The member list (empty before the first Members config): the merge of the current
    /// versions.
    pub fn members(&self) -> GroupMembers {
        GroupMembers::from_data(&self.config_base(GroupConfigKind::Members).data)
    }

    /// The name to show: the Info config's, else the invite's.
    pub fn name(&self) -> String {
        self.info()
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.record.invite_name.clone())
    }
}

/// The UserGroups data (namespace 5) describing our groups, built on `base` so entries and
/// fields we do not model are kept: a group missing here was left or declined on this device.
pub(crate) fn user_groups_data(db: &Db, base: &Dict, data: &mut Dict) -> Result<(), DbError> {
    let mut groups = UserGroups::from_data(base);
    let local = db.groups()?;
    groups
        .groups
        .retain(|id, _| local.iter().any(|g| g.id == *id));
    for group in &local {
        let entry = groups.groups.entry(group.id).or_default();
        let admin = group.admin();
        entry.admin_seed = admin.as_ref().map(|a| *a.seed());
        entry.auth_data = if admin.is_some() {
            None
        } else {
            group.auth_data()
        };
        entry.name = Some(group.name());
        entry.removed = match group.record.status {
            GroupStatus::Kicked => RemovedStatus::Kicked,
            GroupStatus::Destroyed => RemovedStatus::Destroyed,
            _ => RemovedStatus::Member,
        };
        entry.invite_pending = matches!(group.record.status, GroupStatus::Invited { .. });
        if entry.joined_at == 0 {
            entry.joined_at = group.record.joined_at;
        }
    }
    groups.apply_to(data);
    Ok(())
}

/// Makes the database reflect UserGroups `data` from another device: new groups start being
/// polled (or wait as invites), admin keys and credentials are taken, removals and
/// destructions are recorded, and groups the data no longer lists are forgotten.
pub(crate) fn apply_user_groups(db: &Db, data: &Dict, now_ms: u64) -> Result<(), DbError> {
    let groups = UserGroups::from_data(data);
    for local in db.groups()? {
        if !groups.groups.contains_key(&local.id) {
            db.delete_group(&local.id)?;
        }
    }
    for (id, entry) in groups.groups {
        let known = db.group(&id)?;
        let mut group = known.clone().unwrap_or_else(|| Group {
            id,
            record: GroupRecord::new(
                entry.name.as_deref().unwrap_or_default(),
                GroupStatus::Joined,
                entry.joined_at,
            ),
        });
        if let Some(seed) = entry.admin_seed {
            group.record.admin_seed = Some(Hex(seed.to_vec()));
            group.record.auth_data = None;
        } else if let (Some(auth), None) = (&entry.auth_data, &group.record.admin_seed) {
            group.record.auth_data = Some(Hex(auth.as_bytes().to_vec()));
        }
        group.record.status = match (entry.removed, &group.record.status) {
            (RemovedStatus::Destroyed, _) | (_, GroupStatus::Destroyed) => GroupStatus::Destroyed,
            (RemovedStatus::Kicked, _) => {
                group.record.admin_seed = None;
                group.record.auth_data = None;
                GroupStatus::Kicked
            }
            (RemovedStatus::Member, GroupStatus::Invited { .. }) if !entry.invite_pending => {
                GroupStatus::Joined
            }
            (RemovedStatus::Member, _) if known.is_none() && entry.invite_pending => {
                GroupStatus::Invited {
                    inviter: String::new(),
                }
            }
            (RemovedStatus::Member, status) => status.clone(),
        };
        if known.as_ref() != Some(&group) {
            db.save_group(&group, now_ms)?;
        }
    }
    Ok(())
}
