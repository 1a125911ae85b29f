//! The profile and contact list shared by an account's devices, through the user config
//! namespaces of its own swarm (2: UserProfile, 3: Contacts) in libsession's config message
//! format (`shallot_proto::session::config_message`; what is compatible is in docs/compat.md).
//!
//! Each device keeps, per config kind, the current versions it knows (normally one; several
//! when devices pushed concurrently). A change here pushes the next version, built from the
//! local database on top of what all current versions agree on (fields we do not model are
//! kept), and deletes the versions it replaces. A poll adds the versions it retrieved; if two
//! versions conflict, the device merges them by libsession's rules
//! (`shallot_proto::session::config_merge`) and pushes the merge, so no device's change is lost
//! and all devices settle on the same data. A change made here but not yet pushed survives the
//! adoption of another device's version: it is re-applied on top and pushed.
//!
//! This module holds the pure part (database ↔ config data); the network part is in
//! [`crate::Messenger`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::session::config_merge::{apply_diff, current_versions, next_base, NextBase};
use shallot_proto::session::config_message::{
    diff, open_config_full, prune, seal_config, ConfigKind, ConfigMessage, Contacts, Dict,
    ExpiryMode, ParsedConfig, ProfilePictureTimes, UserProfile,
};
use shallot_proto::{Identity, SessionId};

use crate::db::{ConversationState, Db, DbError, Disappearing, PictureRef};
use crate::messenger::clean_display_name;

/// One current version of a config, as this device holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    /// The serialized message (decrypted, unpadded): what its hash and lagged diffs cover.
    #[serde(with = "hex_bytes")]
    pub message: Vec<u8>,
    /// Its message hash on our swarm, once known, so the version replacing it can delete it.
    pub storage_hash: Option<MessageHash>,
}

/// What this device knows of one config kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigState {
    /// The current versions: one, or several concurrent ones until a merge is pushed.
    #[serde(default)]
    pub heads: Vec<Head>,
}

pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

impl ConfigState {
    /// The current versions, parsed (a head that no longer parses is skipped).
    pub fn versions(&self) -> Vec<ParsedConfig> {
        self.heads
            .iter()
            .filter_map(|head| ConfigMessage::parse_full(&head.message).ok())
            .collect()
    }

    /// What the next version builds on: the data all current versions agree on.
    pub fn base(&self) -> NextBase {
        next_base(&self.versions())
    }

    /// The greatest seqno among the current versions (0: none yet).
    pub fn seqno(&self) -> i64 {
        self.versions()
            .iter()
            .map(|v| v.message.seqno)
            .max()
            .unwrap_or(0)
    }

    /// The storage hashes of the current versions, which a new version replaces.
    fn storage_hashes(&self) -> Vec<MessageHash> {
        self.heads
            .iter()
            .filter_map(|head| head.storage_hash)
            .collect()
    }
}

/// The snapshot name a kind's state is saved under.
fn state_name(kind: ConfigKind) -> String {
    format!("config:{}", kind.namespace().0)
}

/// The saved state of `kind` (default if none).
pub fn load_state(db: &Db, kind: ConfigKind) -> Result<ConfigState, DbError> {
    Ok(db.load_json(&state_name(kind))?.unwrap_or_default())
}

/// Saves the state of `kind`.
pub fn save_state(db: &Db, kind: ConfigKind, state: &ConfigState) -> Result<(), DbError> {
    db.save_json(&state_name(kind), state)
}

/// The config data describing the local database, built on `base` (the last known version) so
/// that fields and contacts we do not model are kept.
pub fn local_data(db: &Db, kind: ConfigKind, base: &Dict, now_ms: u64) -> Result<Dict, DbError> {
    let mut data = base.clone();
    match kind {
        ConfigKind::UserProfile => {
            let own = db.own_profile()?;
            let mut profile = UserProfile::from_data(base);
            profile.name.clone_from(&own.name);
            let url = own.picture.as_ref().map(|p| &p.url);
            let key = own.picture.as_ref().map(|p| &p.key);
            let set_at = i64::try_from(own.picture_set_at).unwrap_or(i64::MAX);
            if own.reupload_at > own.picture_set_at {
                // A keep-alive's re-upload: `P`/`Q`/`T`, leaving `p`/`q`/`t` as they were.
                profile.apply_to(&mut data);
                let at = i64::try_from(own.reupload_at).unwrap_or(i64::MAX);
                ProfilePictureTimes::apply_reupload(&mut data, url, key, at);
            } else {
                profile.picture_url = url.cloned();
                profile.picture_key = key.cloned();
                profile.apply_to(&mut data);
            }
            ProfilePictureTimes::apply_set_at(&mut data, set_at);
        }
        ConfigKind::Contacts => {
            let mut contacts = Contacts::from_data(base);
            for conversation in db.conversations()? {
                let known = contacts.contacts.contains_key(&conversation.id);
                let listed = matches!(
                    conversation.state,
                    ConversationState::Accepted | ConversationState::Blocked
                );
                if !known && !listed {
                    // Requests stay on this device until answered.
                    continue;
                }
                let entry = contacts.contacts.entry(conversation.id).or_default();
                entry.approved = conversation.state == ConversationState::Accepted;
                entry.blocked = conversation.state == ConversationState::Blocked;
                if let Some(name) = conversation.name {
                    entry.name = Some(name);
                }
                (entry.expiry_mode, entry.expiry_timer_secs) = match conversation.disappearing {
                    Disappearing::Off => (ExpiryMode::Off, 0),
                    Disappearing::AfterSend(s) => (ExpiryMode::AfterSend, i64::from(s)),
                    Disappearing::AfterRead(s) => (ExpiryMode::AfterRead, i64::from(s)),
                };
                if entry.created == 0 {
                    entry.created = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
                }
            }
            contacts.apply_to(&mut data);
        }
        ConfigKind::UserGroups => crate::groups::state::user_groups_data(db, base, &mut data)?,
        // Carried by the format, not modelled by this client.
        ConfigKind::ConvoInfoVolatile => {}
    }
    Ok(data)
}

/// A new version ready to store in our swarm.
#[derive(Debug)]
pub struct PreparedPush {
    /// The encrypted message for `kind.namespace()`.
    pub sealed: Vec<u8>,
    /// The new version (its storage hash unknown until stored); see [`record_push`].
    pub head: Head,
    /// Its seqno.
    pub seqno: i64,
    /// The storage hashes of the versions it replaces, to delete after the push.
    pub replaces: Vec<MessageHash>,
}

/// The next version of `kind` if there is something to push: the local database differs from
/// the current version, there are concurrent versions to merge, or nothing was pushed yet.
pub fn prepare_push(
    db: &Db,
    identity: &Identity,
    kind: ConfigKind,
    now_ms: u64,
) -> Result<Option<PreparedPush>, DbError> {
    let state = load_state(db, kind)?;
    let versions = state.versions();
    let base = next_base(&versions);
    let data = prune(&local_data(db, kind, &base.data, now_ms)?);
    if versions.len() == 1 && data == base.data {
        return Ok(None);
    }
    let message = base.message(data);
    let previous = (!versions.is_empty()).then_some(&base.data);
    Ok(Some(PreparedPush {
        sealed: seal_config(&message, previous, identity.seed(), kind),
        head: Head {
            message: message.serialize(previous),
            storage_hash: None,
        },
        seqno: message.seqno,
        replaces: state.storage_hashes(),
    }))
}

/// Records a version this device stored on its swarm: it joins the current versions and absorbs
/// those it was built on (versions adopted meanwhile stay, to be merged).
pub fn record_push(db: &Db, kind: ConfigKind, head: Head) -> Result<(), DbError> {
    let state = load_state(db, kind)?;
    let mut heads = state.heads;
    heads.push(head);
    save_state(db, kind, &current_heads(heads))
}

/// The heads among `heads` that are still current (see `current_versions`).
fn current_heads(heads: Vec<Head>) -> ConfigState {
    let mut by_hash: HashMap<[u8; 32], Head> = HashMap::new();
    let mut versions = Vec::new();
    for head in heads {
        let Ok(parsed) = ConfigMessage::parse_full(&head.message) else {
            continue;
        };
        let slot = by_hash.entry(parsed.hash).or_insert_with(|| head.clone());
        if slot.storage_hash.is_none() {
            slot.storage_hash = head.storage_hash;
        }
        versions.push(parsed);
    }
    ConfigState {
        heads: current_versions(versions)
            .iter()
            .filter_map(|v| by_hash.remove(&v.hash))
            .collect(),
    }
}

/// What [`adopt`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adoption {
    /// The newest seqno, if the current versions changed (the database now reflects them).
    pub adopted: Option<i64>,
    /// A version should be pushed: concurrent versions need a merge, or a change made here
    /// was re-applied on top of another device's version.
    pub needs_push: bool,
}

/// Takes in retrieved `items` (storage hash, stored data) of `kind`: versions newer than or
/// concurrent with ours become current and the database takes their (merged) data, keeping
/// local changes not yet pushed. Items that do not open are skipped with a log line.
pub fn adopt(
    db: &Db,
    identity: &Identity,
    kind: ConfigKind,
    items: &[(MessageHash, Vec<u8>)],
    now_ms: u64,
) -> Result<Adoption, DbError> {
    let state = load_state(db, kind)?;
    let before = state.versions();
    let mut heads = state.heads.clone();
    for (storage_hash, data) in items {
        match open_config_full(data, identity.seed(), kind) {
            Ok(opened) => heads.push(Head {
                message: opened.plaintext,
                storage_hash: Some(*storage_hash),
            }),
            Err(e) => tracing::warn!(message = %storage_hash, "dropping config message: {e}"),
        }
    }
    let next = current_heads(heads);
    let after = next.versions();
    let key = |versions: &[ParsedConfig]| -> Vec<[u8; 32]> {
        let mut hashes: Vec<[u8; 32]> = versions.iter().map(|v| v.hash).collect();
        hashes.sort_unstable();
        hashes
    };
    if key(&after) == key(&before) {
        return Ok(Adoption {
            adopted: None,
            needs_push: after.len() > 1,
        });
    }

    // Our changes not yet pushed, to re-apply on top of the new data.
    let old_base = next_base(&before);
    let local = prune(&local_data(db, kind, &old_base.data, now_ms)?);
    let pending = diff(&old_base.data, &local);
    let new_base = next_base(&after);
    let mut data = new_base.data.clone();
    apply_diff(&mut data, &pending, &local);
    let data = prune(&data);

    apply(db, identity, kind, &data, now_ms)?;
    save_state(db, kind, &next)?;
    Ok(Adoption {
        adopted: after.iter().map(|v| v.message.seqno).max(),
        needs_push: after.len() > 1 || data != new_base.data,
    })
}

/// Makes the database reflect config `data` of `kind`.
fn apply(
    db: &Db,
    identity: &Identity,
    kind: ConfigKind,
    data: &Dict,
    now_ms: u64,
) -> Result<(), DbError> {
    match kind {
        ConfigKind::UserProfile => {
            let profile = UserProfile::from_data(data);
            let times = ProfilePictureTimes::from_data(data);
            let reupload = times.reupload_is_current();
            let (url, key) = if reupload {
                times.reupload.clone()
            } else {
                (profile.picture_url.clone(), profile.picture_key.clone())
            };
            let picture = url.zip(key).map(|(url, key)| PictureRef { url, key });
            let mut own = db.own_profile()?;
            if let Some(name) = profile.name.as_deref().and_then(clean_display_name) {
                own.name = Some(name);
            }
            if own.picture != picture {
                // Another device's picture: its file server lifetime is unknown here.
                own.picture = picture;
                own.uploaded_at = 0;
                own.expires_at = 0;
                own.checked_at = 0;
            }
            own.picture_set_at = u64::try_from(times.set_at).unwrap_or(0);
            own.reupload_at = if reupload {
                u64::try_from(times.reupload_at).unwrap_or(0)
            } else {
                0
            };
            db.save_own_profile(&own)?;
        }
        ConfigKind::Contacts => {
            let me = identity.session_id();
            for (id, entry) in Contacts::from_data(data).contacts {
                apply_contact(db, &me, &id, &entry, now_ms)?;
            }
        }
        ConfigKind::UserGroups => crate::groups::state::apply_user_groups(db, data, now_ms)?,
        ConfigKind::ConvoInfoVolatile => {}
    }
    Ok(())
}

fn apply_contact(
    db: &Db,
    me: &SessionId,
    id: &SessionId,
    entry: &shallot_proto::session::config_message::ContactEntry,
    now_ms: u64,
) -> Result<(), DbError> {
    if id == me {
        return Ok(());
    }
    let state = if entry.blocked {
        Some(ConversationState::Blocked)
    } else if entry.approved {
        Some(ConversationState::Accepted)
    } else {
        None
    };
    match state {
        Some(state) => db.set_conversation_state(id, state, now_ms)?,
        // Neither approved nor blocked: only update what we already have.
        None if db.conversation_state(id)?.is_none() => return Ok(()),
        None => {}
    }
    if let Some(name) = entry.name.as_deref().and_then(clean_display_name) {
        db.set_contact_name(id, &name)?;
    }
    let secs = u32::try_from(entry.expiry_timer_secs).unwrap_or(0);
    let setting = match entry.expiry_mode {
        _ if secs == 0 => Disappearing::Off,
        ExpiryMode::Off => Disappearing::Off,
        ExpiryMode::AfterSend => Disappearing::AfterSend(secs),
        ExpiryMode::AfterRead => Disappearing::AfterRead(secs),
    };
    db.set_disappearing(id, setting, now_ms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn identity(n: u8) -> Identity {
        Identity::from_seed([n; 32])
    }

    /// Pushes `db`'s pending version of `kind` as if a swarm member stored it under
    /// `storage_hash`; returns the stored item.
    fn push(
        db: &Db,
        me: &Identity,
        kind: ConfigKind,
        storage_hash: MessageHash,
    ) -> (MessageHash, Vec<u8>) {
        let push = prepare_push(db, me, kind, 5000).unwrap().unwrap();
        let head = Head {
            storage_hash: Some(storage_hash),
            ..push.head
        };
        record_push(db, kind, head).unwrap();
        (storage_hash, push.sealed)
    }

    /// A distinct storage hash per `n`.
    fn hash(n: u8) -> MessageHash {
        MessageHash::from_bytes([n; 32])
    }

    fn adopted(seqno: i64, needs_push: bool) -> Adoption {
        Adoption {
            adopted: Some(seqno),
            needs_push,
        }
    }

    #[test]
    fn a_second_device_adopts_the_first_ones_profile_and_contacts() {
        let me = identity(1);
        let (bob, carol) = (identity(2).session_id(), identity(3).session_id());
        let dir = tempfile::tempdir().unwrap();
        let first = Db::open(&dir.path().join("a.db"), &me).unwrap();
        let second = Db::open(&dir.path().join("b.db"), &me).unwrap();

        first.set_profile_name("Alice").unwrap();
        first
            .set_conversation_state(&bob, ConversationState::Accepted, 1000)
            .unwrap();
        first.set_contact_name(&bob, "Bob").unwrap();
        first
            .set_disappearing(&bob, Disappearing::AfterRead(300), 1000)
            .unwrap();
        first
            .set_conversation_state(&carol, ConversationState::Blocked, 1000)
            .unwrap();

        let mut profile_v1 = None;
        for kind in [ConfigKind::UserProfile, ConfigKind::Contacts] {
            let item = push(&first, &me, kind, hash(1));
            if kind == ConfigKind::UserProfile {
                profile_v1 = Some(item.clone());
            }
            assert_eq!(load_state(&first, kind).unwrap().seqno(), 1);
            // Nothing changed since: nothing to push.
            assert!(prepare_push(&first, &me, kind, 5000).unwrap().is_none());
            let items = [item];
            assert_eq!(
                adopt(&second, &me, kind, &items, 6000).unwrap(),
                adopted(1, false)
            );
            // The same version again changes nothing.
            assert_eq!(
                adopt(&second, &me, kind, &items, 6000).unwrap(),
                Adoption::default()
            );
        }
        assert_eq!(second.profile_name().unwrap().as_deref(), Some("Alice"));
        assert_eq!(
            second.conversation_state(&bob).unwrap(),
            Some(ConversationState::Accepted)
        );
        assert_eq!(second.contact_name(&bob).unwrap().as_deref(), Some("Bob"));
        assert_eq!(
            second.disappearing(&bob).unwrap(),
            Disappearing::AfterRead(300)
        );
        assert_eq!(
            second.conversation_state(&carol).unwrap(),
            Some(ConversationState::Blocked)
        );

        // The second device changes the name: seqno 2, replacing version 1, which the first
        // adopts.
        second.set_profile_name("Alice B.").unwrap();
        let prepared = prepare_push(&second, &me, ConfigKind::UserProfile, 7000)
            .unwrap()
            .unwrap();
        assert_eq!(prepared.seqno, 2);
        assert_eq!(prepared.replaces, vec![hash(1)]);
        let item = push(&second, &me, ConfigKind::UserProfile, hash(2));
        assert_eq!(
            adopt(&first, &me, ConfigKind::UserProfile, &[item], 8000).unwrap(),
            adopted(2, false)
        );
        assert_eq!(first.profile_name().unwrap().as_deref(), Some("Alice B."));
        // Version 1 seen again late is absorbed by version 2: nothing changes.
        let old = profile_v1.unwrap();
        assert_eq!(
            adopt(&first, &me, ConfigKind::UserProfile, &[old], 9000).unwrap(),
            Adoption::default()
        );
        assert_eq!(first.profile_name().unwrap().as_deref(), Some("Alice B."));
    }

    #[test]
    fn our_picture_and_its_reupload_copy_reach_the_second_device() {
        let me = identity(1);
        let dir = tempfile::tempdir().unwrap();
        let first = Db::open(&dir.path().join("a.db"), &me).unwrap();
        let second = Db::open(&dir.path().join("b.db"), &me).unwrap();
        let kind = ConfigKind::UserProfile;
        let picture = |n: u8| PictureRef {
            url: format!("http://f.example/file/{n}"),
            key: vec![n; 32],
        };
        let mut own = first.own_profile().unwrap();
        own.name = Some("Alice".into());
        own.picture = Some(picture(1));
        own.picture_set_at = 1_000;
        own.expires_at = 9_000;
        first.save_own_profile(&own).unwrap();
        let v1 = push(&first, &me, kind, hash(1));
        let data = &load_state(&first, kind).unwrap().versions()[0].message.data;
        assert_eq!(
            UserProfile::from_data(data).picture_url.as_deref(),
            Some("http://f.example/file/1")
        );
        assert_eq!(ProfilePictureTimes::from_data(data).set_at, 1_000);
        adopt(&second, &me, kind, &[v1], 2_000).unwrap();
        let theirs = second.own_profile().unwrap();
        assert_eq!(theirs.picture, Some(picture(1)));
        assert_eq!(theirs.picture_set_at, 1_000);
        assert_eq!(
            theirs.expires_at, 0,
            "the lifetime is the first device's to know"
        );
        assert!(prepare_push(&second, &me, kind, 3_000).unwrap().is_none());

        // A keep-alive re-upload on the first device: `P`/`Q`/`T`, `p`/`q`/`t` unchanged.
        own = first.own_profile().unwrap();
        own.picture = Some(picture(2));
        own.reupload_at = 5_000;
        first.save_own_profile(&own).unwrap();
        let v2 = push(&first, &me, kind, hash(2));
        let data = &load_state(&first, kind).unwrap().versions()[0].message.data;
        assert_eq!(
            UserProfile::from_data(data).picture_url.as_deref(),
            Some("http://f.example/file/1")
        );
        let times = ProfilePictureTimes::from_data(data);
        assert!(times.reupload_is_current());
        assert_eq!(times.reupload.0.as_deref(), Some("http://f.example/file/2"));
        adopt(&second, &me, kind, &[v2], 6_000).unwrap();
        let theirs = second.own_profile().unwrap();
        assert_eq!(theirs.picture, Some(picture(2)));
        assert_eq!(theirs.reupload_at, 5_000);
        assert!(prepare_push(&second, &me, kind, 7_000).unwrap().is_none());

        // Removed on the second device: the first learns it.
        let mut theirs = second.own_profile().unwrap();
        theirs.picture = None;
        theirs.picture_set_at = 8_000;
        theirs.reupload_at = 0;
        second.save_own_profile(&theirs).unwrap();
        let v3 = push(&second, &me, kind, hash(3));
        adopt(&first, &me, kind, &[v3], 9_000).unwrap();
        let own = first.own_profile().unwrap();
        assert_eq!(own.picture, None);
        assert_eq!(own.name.as_deref(), Some("Alice"));
        assert!(prepare_push(&first, &me, kind, 10_000).unwrap().is_none());
    }

    #[test]
    fn concurrent_contact_changes_on_two_devices_are_merged_not_lost() {
        let me = identity(1);
        let (bob, dave, erin) = (
            identity(2).session_id(),
            identity(4).session_id(),
            identity(5).session_id(),
        );
        let dir = tempfile::tempdir().unwrap();
        let first = Db::open(&dir.path().join("a.db"), &me).unwrap();
        let second = Db::open(&dir.path().join("b.db"), &me).unwrap();
        let kind = ConfigKind::Contacts;
        first
            .set_conversation_state(&bob, ConversationState::Accepted, 1000)
            .unwrap();
        let v1 = push(&first, &me, kind, hash(11));
        adopt(&second, &me, kind, &[v1], 2000).unwrap();

        // Both change the contact list before seeing the other's change: two versions 2.
        first
            .set_conversation_state(&dave, ConversationState::Blocked, 3000)
            .unwrap();
        second
            .set_conversation_state(&erin, ConversationState::Accepted, 3000)
            .unwrap();
        let a2 = push(&first, &me, kind, hash(12));
        let b2 = push(&second, &me, kind, hash(13));

        // Each sees the other's: both changes apply, and each wants to push the merge.
        assert_eq!(
            adopt(&first, &me, kind, &[b2.clone(), a2.clone()], 4000).unwrap(),
            adopted(2, true)
        );
        assert_eq!(
            adopt(&second, &me, kind, std::slice::from_ref(&a2), 4000).unwrap(),
            adopted(2, true)
        );
        for db in [&first, &second] {
            assert_eq!(
                db.conversation_state(&dave).unwrap(),
                Some(ConversationState::Blocked)
            );
            assert_eq!(
                db.conversation_state(&erin).unwrap(),
                Some(ConversationState::Accepted)
            );
            assert_eq!(
                db.conversation_state(&bob).unwrap(),
                Some(ConversationState::Accepted)
            );
        }
        // Both compute the same merge, byte for byte (the swarm stores it once), replacing both.
        let merge_first = prepare_push(&first, &me, kind, 5000).unwrap().unwrap();
        let merge_second = prepare_push(&second, &me, kind, 6000).unwrap().unwrap();
        assert_eq!(merge_first.seqno, 3);
        assert_eq!(merge_first.sealed, merge_second.sealed);
        let mut replaced = merge_first.replaces.clone();
        replaced.sort();
        assert_eq!(replaced, vec![hash(12), hash(13)]);

        // Once it is pushed, both devices hold that one version and nothing more to push.
        let v3 = push(&first, &me, kind, hash(14));
        assert_eq!(
            adopt(&second, &me, kind, &[v3], 7000).unwrap(),
            adopted(3, false)
        );
        for db in [&first, &second] {
            assert_eq!(load_state(db, kind).unwrap().heads.len(), 1);
            assert!(prepare_push(db, &me, kind, 8000).unwrap().is_none());
        }
    }

    #[test]
    fn a_change_not_yet_pushed_survives_adopting_another_devices_version() {
        let me = identity(1);
        let (erin, frank) = (identity(5).session_id(), identity(6).session_id());
        let dir = tempfile::tempdir().unwrap();
        let first = Db::open(&dir.path().join("a.db"), &me).unwrap();
        let second = Db::open(&dir.path().join("b.db"), &me).unwrap();
        let kind = ConfigKind::Contacts;
        let v1 = push(&first, &me, kind, hash(11));
        adopt(&second, &me, kind, &[v1], 1000).unwrap();

        // The first device blocks Frank, but its push fails (offline).
        first
            .set_conversation_state(&frank, ConversationState::Blocked, 2000)
            .unwrap();
        // Meanwhile the second accepts Erin and pushes version 2.
        second
            .set_conversation_state(&erin, ConversationState::Accepted, 2000)
            .unwrap();
        let v2 = push(&second, &me, kind, hash(15));

        assert_eq!(
            adopt(&first, &me, kind, &[v2], 3000).unwrap(),
            adopted(2, true)
        );
        assert_eq!(
            first.conversation_state(&frank).unwrap(),
            Some(ConversationState::Blocked)
        );
        assert_eq!(
            first.conversation_state(&erin).unwrap(),
            Some(ConversationState::Accepted)
        );
        let v3 = push(&first, &me, kind, hash(14));
        assert_eq!(load_state(&first, kind).unwrap().seqno(), 3);
        adopt(&second, &me, kind, &[v3], 4000).unwrap();
        assert_eq!(
            second.conversation_state(&frank).unwrap(),
            Some(ConversationState::Blocked)
        );
    }

    #[test]
    fn another_accounts_or_garbage_config_is_ignored() {
        let me = identity(1);
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("a.db"), &me).unwrap();
        let other = identity(9);
        let other_db = Db::open(&dir.path().join("o.db"), &other).unwrap();
        other_db.set_profile_name("Mallory").unwrap();
        let push = prepare_push(&other_db, &other, ConfigKind::UserProfile, 1)
            .unwrap()
            .unwrap();
        let items = [
            (hash(1), push.sealed),
            (hash(2), b"garbage".to_vec()),
            (hash(3), Vec::new()),
        ];
        assert_eq!(
            adopt(&db, &me, ConfigKind::UserProfile, &items, 2).unwrap(),
            Adoption::default()
        );
        assert_eq!(db.profile_name().unwrap(), None);
    }
}
