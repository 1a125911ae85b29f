//! The `03` group entries of the UserGroups config (namespace 5, groups spec §6): `g`, a dict
//! keyed by the 33-byte group ID, through which a user's devices learn their groups, admin
//! seeds and member credentials. Unknown keys of an entry survive a read-modify-write.

use std::collections::BTreeMap;

use super::auth::{AuthData, AUTH_DATA_LEN};
use super::identity::{GroupAdmin, GroupId};
use super::info::{truncate, MAX_GROUP_NAME};
use crate::bencode::{Dict, Value};
use crate::session::config_views::{get_bytes, get_int, get_text, put};

/// Whether the user was removed from the group (`r`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RemovedStatus {
    /// Still a member (or invited).
    #[default]
    Member,
    /// Kicked (1): may be re-invited.
    Kicked,
    /// The group was destroyed (2): permanent.
    Destroyed,
}

/// One group as the user's own config records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserGroupEntry {
    /// `K`: the group seed when the user is an admin (kept only if it matches the group ID).
    pub admin_seed: Option<[u8; 32]>,
    /// `s`: the member credential (only without `K`).
    pub auth_data: Option<AuthData>,
    /// `n`: the name from the invite.
    pub name: Option<String>,
    /// `r`: removed status.
    pub removed: RemovedStatus,
    /// `i`: invitation not accepted yet (show as a request).
    pub invite_pending: bool,
    /// `j`: joined at, unix seconds.
    pub joined_at: i64,
    /// `+`: priority (−1 hidden, > 0 pinned).
    pub priority: i64,
    /// `@`: notifications (1 all, 2 off, 3 mentions; 0 default).
    pub notify: i64,
    /// `!`: muted until, unix seconds.
    pub mute_until: i64,
}

impl UserGroupEntry {
    /// Reads an entry for `id`: a seed that does not derive `id` is dropped, `s` of the wrong
    /// length is ignored.
    pub fn from_dict(id: &GroupId, dict: &Dict) -> Self {
        let admin_seed = get_bytes(dict, "K")
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .filter(|seed| GroupAdmin::from_seed(*seed).id() == *id);
        let auth_data = get_bytes(dict, "s")
            .filter(|s| s.len() == AUTH_DATA_LEN)
            .and_then(|s| AuthData::from_bytes(s).ok());
        Self {
            admin_seed,
            auth_data,
            name: get_text(dict, "n"),
            removed: match get_int(dict, "r") {
                Some(1) => RemovedStatus::Kicked,
                Some(2) => RemovedStatus::Destroyed,
                _ => RemovedStatus::Member,
            },
            invite_pending: get_int(dict, "i").is_some_and(|v| v != 0),
            joined_at: get_int(dict, "j").unwrap_or(0),
            priority: get_int(dict, "+").unwrap_or(0),
            notify: get_int(dict, "@").unwrap_or(0),
            mute_until: get_int(dict, "!").unwrap_or(0),
        }
    }

    /// Sets the admin key from a 64-byte libsodium secret key (`seed || pk`): kept (and `s`
    /// dropped) only if its public key is the group's, as libsession does.
    pub fn set_secret_key(&mut self, id: &GroupId, secret_key: &[u8; 64]) {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&secret_key[..32]);
        if GroupAdmin::from_seed(seed).id() == *id && secret_key[32..] == id.pubkey().as_bytes()[..]
        {
            self.admin_seed = Some(seed);
            self.auth_data = None;
        }
    }

    /// Marks the user kicked: credentials are cleared (never un-destroys).
    pub fn mark_kicked(&mut self) {
        self.admin_seed = None;
        self.auth_data = None;
        if self.removed != RemovedStatus::Destroyed {
            self.removed = RemovedStatus::Kicked;
        }
    }

    /// Writes the entry into `dict`, touching only fields that read differently. `K` is always
    /// present (empty when not an admin); `s` is written only without `K`.
    pub fn apply_to(&self, id: &GroupId, dict: &mut Dict) {
        let current = Self::from_dict(id, dict);
        if current.admin_seed != self.admin_seed || !dict.contains_key(b"K".as_slice()) {
            let seed = self.admin_seed.map(|s| s.to_vec()).unwrap_or_default();
            put(dict, "K", Some(Value::Bytes(seed)));
        }
        let auth = if self.admin_seed.is_some() {
            None
        } else {
            self.auth_data.as_ref()
        };
        if current.auth_data.as_ref() != auth {
            put(
                dict,
                "s",
                auth.map(|a| Value::from(a.as_bytes().as_slice())),
            );
        }
        let name = self
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|n| truncate(n, MAX_GROUP_NAME));
        if current.name != name {
            put(dict, "n", name.map(Value::from));
        }
        if current.removed != self.removed {
            let code = match self.removed {
                RemovedStatus::Member => None,
                RemovedStatus::Kicked => Some(1),
                RemovedStatus::Destroyed => Some(2),
            };
            put(dict, "r", code.map(Value::Int));
        }
        if current.invite_pending != self.invite_pending {
            put(dict, "i", self.invite_pending.then_some(Value::Int(1)));
        }
        for (key, was, wanted) in [
            ("j", current.joined_at, self.joined_at),
            ("+", current.priority, self.priority),
            ("@", current.notify, self.notify),
            ("!", current.mute_until, self.mute_until),
        ] {
            if was != wanted {
                put(dict, key, (wanted != 0).then_some(Value::Int(wanted)));
            }
        }
    }
}

/// All `03` groups of a UserGroups data dict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserGroups {
    /// Each group by ID.
    pub groups: BTreeMap<GroupId, UserGroupEntry>,
}

impl UserGroups {
    /// Reads `g`, skipping keys that are not 33-byte `03` IDs.
    pub fn from_data(data: &Dict) -> Self {
        let groups = data
            .get(b"g".as_slice())
            .and_then(Value::as_dict)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let id = GroupId::from_bytes(k).ok()?;
                Some((id, UserGroupEntry::from_dict(&id, v.as_dict()?)))
            })
            .collect();
        Self { groups }
    }

    /// Makes `g` hold exactly these groups, keeping other data keys and unknown entry keys.
    pub fn apply_to(&self, data: &mut Dict) {
        let slot = data
            .entry(b"g".to_vec())
            .or_insert_with(|| Value::Dict(Dict::new()));
        if !matches!(slot, Value::Dict(_)) {
            *slot = Value::Dict(Dict::new());
        }
        let Value::Dict(all) = slot else {
            return;
        };
        all.retain(|k, _| GroupId::from_bytes(k).is_ok_and(|id| self.groups.contains_key(&id)));
        for (id, entry) in &self.groups {
            let slot = all
                .entry(id.to_bytes().to_vec())
                .or_insert_with(|| Value::Dict(Dict::new()));
            if !matches!(slot, Value::Dict(_)) {
                *slot = Value::Dict(Dict::new());
            }
            if let Value::Dict(dict) = slot {
                entry.apply_to(id, dict);
            }
        }
        if all.is_empty() {
            data.remove(b"g".as_slice());
        }
    }
}
