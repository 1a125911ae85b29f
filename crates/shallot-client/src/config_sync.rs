//! The profile and contact list shared by an account's devices, through the user config
//! namespaces of its own swarm (2: UserProfile, 3: Contacts) in libsession's config message
//! format (`shallot_proto::session::config_message`; what is compatible is in docs/compat.md).
//!
//! Each device keeps, per config kind, the version it last pushed or adopted (seqno, data, the
//! config hash and its storage hash). A change here pushes `seqno + 1` built from the local
//! database on top of that data (fields we do not model are kept); a poll adopts any version
//! greater in `(seqno, config hash)` than ours, so every device settles on the same one.
//!
//! This module holds the pure part (database ↔ config data); the network part is in
//! [`crate::Messenger`].

use serde::{Deserialize, Serialize};
use shallot_proto::session::config_message::{
    open_config_full, seal_config, ConfigKind, ConfigMessage, Contacts, Dict, ExpiryMode,
    UserProfile, Value,
};
use shallot_proto::{Identity, SessionId};

use crate::db::{ConversationState, Db, DbError, Disappearing};
use crate::messenger::clean_display_name;

/// What this device last pushed or adopted for one config kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigState {
    /// Sequence number of that version (0: none yet).
    pub seqno: i64,
    /// Its data dict, bencoded.
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
    /// Its config hash (BLAKE2b of the serialized message), hex; breaks seqno ties.
    pub config_hash: Option<String>,
    /// Its message hash on our swarm, so the next push can delete it.
    pub storage_hash: Option<String>,
}

mod hex_bytes {
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
    /// The data dict (empty if none yet, or unreadable).
    fn dict(&self) -> Dict {
        match Value::decode(&self.data) {
            Ok(Value::Dict(d)) => d,
            _ => Dict::new(),
        }
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
            let mut profile = UserProfile::from_data(base);
            profile.name = db.profile_name()?;
            profile.apply_to(&mut data);
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
        // Carried by the format, not modelled by this client.
        ConfigKind::ConvoInfoVolatile | ConfigKind::UserGroups => {}
    }
    Ok(data)
}

/// A new version ready to store in our swarm.
#[derive(Debug)]
pub struct PreparedPush {
    /// The encrypted message for `kind.namespace()`.
    pub sealed: Vec<u8>,
    /// The state to save once a swarm member stored it (without its storage hash).
    pub state: ConfigState,
    /// The previous version's storage hash, to delete after the push.
    pub replaces: Option<String>,
}

/// The next version of `kind` if the local database differs from the last known version
/// (`None`: nothing to push).
pub fn prepare_push(
    db: &Db,
    identity: &Identity,
    kind: ConfigKind,
    now_ms: u64,
) -> Result<Option<PreparedPush>, DbError> {
    let state = load_state(db, kind)?;
    let base = state.dict();
    let data = local_data(db, kind, &base, now_ms)?;
    if state.seqno > 0 && data == base {
        return Ok(None);
    }
    let message = ConfigMessage::new(state.seqno + 1, data);
    let previous = (state.seqno > 0).then_some(&base);
    let sealed = seal_config(&message, previous, identity.seed(), kind);
    let serialized = message.serialize(previous);
    let config_hash = shallot_proto::session::config_message::config_hash(&serialized);
    Ok(Some(PreparedPush {
        sealed,
        state: ConfigState {
            seqno: message.seqno,
            data: Value::Dict(message.data).encode(),
            config_hash: Some(hex::encode(config_hash)),
            storage_hash: None,
        },
        replaces: state.storage_hash,
    }))
}

/// Adopts the greatest of `items` (storage hash, stored data) if it is newer than our version:
/// the database takes its profile name or contacts. Items that do not open are skipped with a
/// log line. Returns the adopted seqno, if any.
pub fn adopt(
    db: &Db,
    identity: &Identity,
    kind: ConfigKind,
    items: &[(String, Vec<u8>)],
    now_ms: u64,
) -> Result<Option<i64>, DbError> {
    let best = items
        .iter()
        .filter_map(
            |(hash, data)| match open_config_full(data, identity.seed(), kind) {
                Ok(opened) => Some((hash, opened.parsed)),
                Err(e) => {
                    tracing::warn!(message = %hash, "dropping config message: {e}");
                    None
                }
            },
        )
        .max_by_key(|(_, parsed)| parsed.seqno_hash());
    let Some((storage_hash, parsed)) = best else {
        return Ok(None);
    };
    let state = load_state(db, kind)?;
    let ours = (
        state.seqno,
        state
            .config_hash
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .unwrap_or_default(),
    );
    if parsed.seqno_hash() <= ours {
        return Ok(None);
    }
    apply(db, identity, kind, &parsed.message.data, now_ms)?;
    save_state(
        db,
        kind,
        &ConfigState {
            seqno: parsed.message.seqno,
            data: Value::Dict(parsed.message.data).encode(),
            config_hash: Some(hex::encode(parsed.hash)),
            storage_hash: Some(storage_hash.clone()),
        },
    )?;
    Ok(Some(parsed.message.seqno))
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
            if let Some(name) = profile.name.as_deref().and_then(clean_display_name) {
                db.set_profile_name(&name)?;
            }
        }
        ConfigKind::Contacts => {
            let me = identity.session_id();
            for (id, entry) in Contacts::from_data(data).contacts {
                apply_contact(db, &me, &id, &entry, now_ms)?;
            }
        }
        ConfigKind::ConvoInfoVolatile | ConfigKind::UserGroups => {}
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

        for kind in [ConfigKind::UserProfile, ConfigKind::Contacts] {
            let push = prepare_push(&first, &me, kind, 5000).unwrap().unwrap();
            assert_eq!(push.state.seqno, 1);
            save_state(&first, kind, &push.state).unwrap();
            // Nothing changed since: nothing to push.
            assert!(prepare_push(&first, &me, kind, 5000).unwrap().is_none());
            let items = [("hash1".to_owned(), push.sealed)];
            assert_eq!(adopt(&second, &me, kind, &items, 6000).unwrap(), Some(1));
            // The same version again is not adopted twice.
            assert_eq!(adopt(&second, &me, kind, &items, 6000).unwrap(), None);
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

        // The second device changes the name: seqno 2, which the first adopts.
        second.set_profile_name("Alice B.").unwrap();
        let push = prepare_push(&second, &me, ConfigKind::UserProfile, 7000)
            .unwrap()
            .unwrap();
        assert_eq!(push.state.seqno, 2);
        assert_eq!(push.replaces.as_deref(), Some("hash1"));
        let items = [("hash2".to_owned(), push.sealed)];
        assert_eq!(
            adopt(&first, &me, ConfigKind::UserProfile, &items, 8000).unwrap(),
            Some(2)
        );
        assert_eq!(first.profile_name().unwrap().as_deref(), Some("Alice B."));
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
            ("h1".to_owned(), push.sealed),
            ("h2".to_owned(), b"garbage".to_vec()),
            ("h3".to_owned(), Vec::new()),
        ];
        assert_eq!(
            adopt(&db, &me, ConfigKind::UserProfile, &items, 2).unwrap(),
            None
        );
        assert_eq!(db.profile_name().unwrap(), None);
    }
}
