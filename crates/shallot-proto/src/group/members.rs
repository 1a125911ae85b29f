//! The GroupMembers data (groups spec §4.3) as a typed view: `m`, a dict keyed by the 33-byte
//! binary Session ID. Each entry keeps unknown keys through a read-modify-write and always has
//! a name (possibly empty), so it is never pruned.

use std::collections::BTreeMap;

use super::info::{truncate, MAX_GROUP_NAME};
use crate::bencode::{Dict, Value};
use crate::identity::{SessionId, X25519Pub};
use crate::session::config_views::{apply_picture, get_bytes, get_int, get_picture, put};

/// Progress of an invitation or promotion (`I` / `P`); absent = accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Accepted (key omitted).
    #[default]
    Accepted,
    /// Sent (1).
    Sent,
    /// Sending failed (2).
    Failed,
    /// Not yet sent (3).
    NotSent,
}

impl SendStatus {
    fn from_code(code: Option<i64>) -> Self {
        match code {
            Some(1) => Self::Sent,
            Some(2) => Self::Failed,
            Some(3) => Self::NotSent,
            _ => Self::Accepted,
        }
    }

    const fn code(self) -> Option<i64> {
        match self {
            Self::Accepted => None,
            Self::Sent => Some(1),
            Self::Failed => Some(2),
            Self::NotSent => Some(3),
        }
    }
}

/// Pending removal (`R`, ⚠ §9.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Removal {
    /// Not being removed.
    #[default]
    None,
    /// Remove the member (1).
    Member,
    /// Remove the member and their messages (2).
    MemberAndMessages,
}

/// One member entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMember {
    /// `n`: display name (truncated to 100 bytes; written even when empty).
    pub name: String,
    /// `p`: picture URL, paired with the key.
    pub picture_url: Option<String>,
    /// `q`: picture key (32 bytes).
    pub picture_key: Option<Vec<u8>>,
    /// `I`: invitation status (only meaningful while not admin).
    pub invite: SendStatus,
    /// `s`: invited with history (supplemental keys).
    pub supplement: bool,
    /// `A`: admin (informative only: admins are whoever holds the seed).
    pub admin: bool,
    /// `P`: promotion status.
    pub promotion: SendStatus,
    /// `R`: removal pending.
    pub removal: Removal,
}

impl GroupMember {
    /// Reads an entry; missing or mistyped fields are defaults.
    pub fn from_dict(dict: &Dict) -> Self {
        let (picture_url, picture_key) = get_picture(dict);
        let admin = get_int(dict, "A").is_some_and(|v| v != 0);
        Self {
            name: get_bytes(dict, "n")
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
            picture_url,
            picture_key,
            invite: if admin {
                SendStatus::Accepted
            } else {
                SendStatus::from_code(get_int(dict, "I"))
            },
            supplement: get_int(dict, "s").is_some_and(|v| v != 0),
            admin,
            promotion: SendStatus::from_code(get_int(dict, "P")),
            removal: match get_int(dict, "R") {
                Some(1) => Removal::Member,
                Some(2) => Removal::MemberAndMessages,
                _ => Removal::None,
            },
        }
    }

    /// Writes the entry into `dict`, touching only fields that read differently.
    pub fn apply_to(&self, dict: &mut Dict) {
        let current = Self::from_dict(dict);
        let name = truncate(&self.name, MAX_GROUP_NAME);
        if current.name != name || !dict.contains_key(b"n".as_slice()) {
            put(dict, "n", Some(Value::from(name)));
        }
        apply_picture(dict, self.picture_url.as_ref(), self.picture_key.as_ref());
        let invite = if self.admin {
            SendStatus::Accepted
        } else {
            self.invite
        };
        if current.invite != invite || (self.admin && dict.contains_key(b"I".as_slice())) {
            put(dict, "I", invite.code().map(Value::Int));
        }
        let flags = [
            ("s", current.supplement, self.supplement),
            ("A", current.admin, self.admin),
        ];
        for (key, was, wanted) in flags {
            if was != wanted {
                put(dict, key, wanted.then_some(Value::Int(1)));
            }
        }
        if current.promotion != self.promotion {
            put(dict, "P", self.promotion.code().map(Value::Int));
        }
        if current.removal != self.removal {
            let code = match self.removal {
                Removal::None => None,
                Removal::Member => Some(Value::Int(1)),
                Removal::MemberAndMessages => Some(Value::Int(2)),
            };
            put(dict, "R", code);
        }
    }
}

/// The Session ID a `m` key names, if it is 33 bytes starting with `05`.
fn member_id(key: &[u8]) -> Option<SessionId> {
    let (&prefix, rest) = key.split_first()?;
    let bytes = <[u8; 32]>::try_from(rest).ok()?;
    (prefix == 0x05).then(|| SessionId::from_x25519(X25519Pub::from_bytes(bytes)))
}

/// The member list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMembers {
    /// Every member, by Session ID.
    pub members: BTreeMap<SessionId, GroupMember>,
}

impl GroupMembers {
    /// Reads the members from a GroupMembers data dict, skipping keys that are not Session IDs.
    pub fn from_data(data: &Dict) -> Self {
        let members = data
            .get(b"m".as_slice())
            .and_then(Value::as_dict)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((member_id(k)?, GroupMember::from_dict(v.as_dict()?))))
            .collect();
        Self { members }
    }

    /// Makes `data` hold exactly these members, keeping unknown keys of kept entries.
    pub fn apply_to(&self, data: &mut Dict) {
        let slot = data
            .entry(b"m".to_vec())
            .or_insert_with(|| Value::Dict(Dict::new()));
        if !matches!(slot, Value::Dict(_)) {
            *slot = Value::Dict(Dict::new());
        }
        let Value::Dict(all) = slot else {
            return;
        };
        all.retain(|k, _| member_id(k).is_some_and(|id| self.members.contains_key(&id)));
        for (id, member) in &self.members {
            let entry = all
                .entry(id.account().to_bytes().to_vec())
                .or_insert_with(|| Value::Dict(Dict::new()));
            if !matches!(entry, Value::Dict(_)) {
                *entry = Value::Dict(Dict::new());
            }
            if let Value::Dict(dict) = entry {
                member.apply_to(dict);
            }
        }
        if all.is_empty() {
            data.remove(b"m".as_slice());
        }
    }

    /// The members as a fresh data dict.
    pub fn to_data(&self) -> Dict {
        let mut data = Dict::new();
        self.apply_to(&mut data);
        data
    }

    /// The members a rekey must cover: everyone not marked for removal (⚠ §9.5).
    pub fn rekey_members(&self) -> Vec<SessionId> {
        self.members
            .iter()
            .filter(|(_, m)| m.removal == Removal::None)
            .map(|(id, _)| *id)
            .collect()
    }
}
