//! Typed views of user config data: [`UserProfile`] (namespace 2) and [`Contacts`] (namespace 3).
//!
//! A view is applied onto an existing data dict and touches only the fields whose meaning
//! changed, so fields set by other clients survive a read-modify-write.

use std::collections::BTreeMap;

use crate::bencode::{Dict, Value};
use crate::identity::{SessionId, X25519Pub};

/// Length of a profile picture's encryption key.
pub const PROFILE_PICTURE_KEY_LEN: usize = 32;

pub(crate) fn get_bytes<'a>(dict: &'a Dict, key: &str) -> Option<&'a [u8]> {
    dict.get(key.as_bytes()).and_then(Value::as_bytes)
}

pub(crate) fn get_int(dict: &Dict, key: &str) -> Option<i64> {
    dict.get(key.as_bytes()).and_then(Value::as_int)
}

/// A non-empty string field (invalid UTF-8 is replaced, not rejected).
pub(crate) fn get_text(dict: &Dict, key: &str) -> Option<String> {
    get_bytes(dict, key)
        .filter(|b| !b.is_empty())
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

pub(crate) fn put(dict: &mut Dict, key: &str, value: Option<Value>) {
    match value {
        Some(value) => dict.insert(key.as_bytes().to_vec(), value),
        None => dict.remove(key.as_bytes()),
    };
}

/// `Some` of a non-empty string, `None` otherwise.
pub(crate) fn non_empty(text: Option<&String>) -> Option<String> {
    text.filter(|t| !t.is_empty()).cloned()
}

/// A profile picture as the pair libsession requires: a non-empty URL and a 32-byte key.
pub(crate) type Picture = (Option<String>, Option<Vec<u8>>);

pub(crate) fn get_picture(dict: &Dict) -> Picture {
    let url = get_text(dict, "p");
    let key = get_bytes(dict, "q").filter(|k| k.len() == PROFILE_PICTURE_KEY_LEN);
    match (url, key) {
        (Some(url), Some(key)) => (Some(url), Some(key.to_vec())),
        _ => (None, None),
    }
}

fn wanted_picture(url: Option<&String>, key: Option<&Vec<u8>>) -> Picture {
    match (non_empty(url), key) {
        (Some(url), Some(key)) if key.len() == PROFILE_PICTURE_KEY_LEN => {
            (Some(url), Some(key.clone()))
        }
        _ => (None, None),
    }
}

pub(crate) fn apply_picture(dict: &mut Dict, url: Option<&String>, key: Option<&Vec<u8>>) {
    let wanted = wanted_picture(url, key);
    if get_picture(dict) != wanted {
        let (url, key) = wanted;
        put(dict, "p", url.map(Value::from));
        put(dict, "q", key.map(Value::from));
    }
}

/// Libsession's reading of a timestamp that may be in seconds, milliseconds or microseconds.
const fn to_epoch_seconds(timestamp: i64) -> i64 {
    if timestamp > 9_000_000_000_000 {
        timestamp / 1_000_000
    } else if timestamp > 9_000_000_000 {
        timestamp / 1_000
    } else {
        timestamp
    }
}

/// The user's profile (UserProfile config, namespace 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    /// Display name (`n`); empty counts as unset.
    pub name: Option<String>,
    /// Profile picture URL (`p`); only meaningful with [`picture_key`](Self::picture_key).
    pub picture_url: Option<String>,
    /// Profile picture key (`q`, 32 bytes). URL and key are read and written as a pair: both are
    /// `Some` only if the URL is non-empty and the key is 32 bytes.
    pub picture_key: Option<Vec<u8>>,
    /// Note-to-self conversation priority (`+`): 0 normal, positive pinned, negative hidden.
    pub note_to_self_priority: i64,
}

impl UserProfile {
    /// Reads the profile from a UserProfile data dict; missing or mistyped fields are defaults.
    pub fn from_data(data: &Dict) -> Self {
        let (picture_url, picture_key) = get_picture(data);
        Self {
            name: get_text(data, "n"),
            picture_url,
            picture_key,
            note_to_self_priority: get_int(data, "+").unwrap_or(0),
        }
    }

    /// Writes the profile into `data`, changing only fields that read differently and keeping
    /// every other key: applying the view read from a dict leaves it unchanged.
    pub fn apply_to(&self, data: &mut Dict) {
        let current = Self::from_data(data);
        let name = non_empty(self.name.as_ref());
        if current.name != name {
            put(data, "n", name.map(Value::from));
        }
        apply_picture(data, self.picture_url.as_ref(), self.picture_key.as_ref());
        if current.note_to_self_priority != self.note_to_self_priority {
            let priority = self.note_to_self_priority;
            put(data, "+", (priority != 0).then_some(Value::Int(priority)));
        }
    }

    /// The profile as a fresh data dict.
    pub fn to_data(&self) -> Dict {
        let mut data = Dict::new();
        self.apply_to(&mut data);
        data
    }
}

/// The profile picture's history in UserProfile, beside [`UserProfile`]'s `p`/`q`: when it was
/// last set explicitly (`t`, seconds) and the re-upload copy a keep-alive wrote (`P`/`Q`, at
/// `T`). The picture shown is the re-upload copy when `T > t`, else `p`/`q` (libsession's rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePictureTimes {
    /// `t`: last explicit change of the picture (set or removed), Unix seconds; 0 if unknown.
    pub set_at: i64,
    /// `P`/`Q`: the re-upload copy (both or neither, as `p`/`q`).
    pub reupload: (Option<String>, Option<Vec<u8>>),
    /// `T`: when the re-upload copy was written, Unix seconds; 0 if never.
    pub reupload_at: i64,
}

impl ProfilePictureTimes {
    /// Reads `t`, `P`, `Q`, `T` (timestamps in ms or µs are read as seconds, as libsession does).
    pub fn from_data(data: &Dict) -> Self {
        let url = get_text(data, "P");
        let key = get_bytes(data, "Q").filter(|k| k.len() == PROFILE_PICTURE_KEY_LEN);
        let reupload = match (url, key) {
            (Some(url), Some(key)) => (Some(url), Some(key.to_vec())),
            _ => (None, None),
        };
        Self {
            set_at: get_int(data, "t").map_or(0, to_epoch_seconds),
            reupload,
            reupload_at: get_int(data, "T").map_or(0, to_epoch_seconds),
        }
    }

    /// Whether the re-upload copy is the current picture (`T > t` and `P`/`Q` set).
    pub fn reupload_is_current(&self) -> bool {
        self.reupload_at > self.set_at && self.reupload.0.is_some()
    }

    /// Writes `t` (absent when 0), changing nothing that already reads the same.
    pub fn apply_set_at(data: &mut Dict, set_at: i64) {
        if Self::from_data(data).set_at != set_at {
            put(data, "t", (set_at != 0).then_some(Value::Int(set_at)));
        }
    }

    /// Writes `P`/`Q` and `T` (a re-upload of the current picture), changing nothing that
    /// already reads the same.
    pub fn apply_reupload(data: &mut Dict, url: Option<&String>, key: Option<&Vec<u8>>, at: i64) {
        let current = Self::from_data(data);
        let wanted = wanted_picture(url, key);
        if current.reupload != wanted {
            let (url, key) = wanted;
            put(data, "P", url.map(Value::from));
            put(data, "Q", key.map(Value::from));
        }
        if current.reupload_at != at {
            put(data, "T", (at != 0).then_some(Value::Int(at)));
        }
    }
}

/// A contact's disappearing-messages setting (`e`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ExpiryMode {
    /// Messages do not disappear (`e` omitted).
    #[default]
    Off,
    /// Delete a fixed time after sending (`e` = 1).
    AfterSend,
    /// Delete a fixed time after reading (`e` = 2).
    AfterRead,
}

impl ExpiryMode {
    /// The value stored under `e` (0 for off, which is never stored).
    pub const fn code(self) -> i64 {
        match self {
            Self::Off => 0,
            Self::AfterSend => 1,
            Self::AfterRead => 2,
        }
    }

    /// The mode stored as `code`; unknown codes are `None`.
    pub const fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Off),
            1 => Some(Self::AfterSend),
            2 => Some(Self::AfterRead),
            _ => None,
        }
    }
}

/// One contact in the Contacts config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactEntry {
    /// The contact's own display name (`n`; written as an empty string rather than removed, and
    /// added empty if the entry would otherwise be empty, as libsession keeps entries alive).
    pub name: Option<String>,
    /// Our nickname for the contact (`N`).
    pub nickname: Option<String>,
    /// Profile picture URL (`p`), paired with the key as in [`UserProfile`].
    pub picture_url: Option<String>,
    /// Profile picture key (`q`, 32 bytes).
    pub picture_key: Option<Vec<u8>>,
    /// We accepted the contact (`a` = 1).
    pub approved: bool,
    /// The contact accepted us (`A` = 1).
    pub approved_me: bool,
    /// Blocked (`b` = 1).
    pub blocked: bool,
    /// Conversation priority (`+`): 0 normal, positive pinned, negative hidden.
    pub priority: i64,
    /// Disappearing-messages mode (`e`); [`ExpiryMode::Off`] unless the timer is positive.
    pub expiry_mode: ExpiryMode,
    /// Disappearing-messages timer in seconds (`E`); 0 when off.
    pub expiry_timer_secs: i64,
    /// When the contact was created, unix seconds (`j`); 0 if unknown.
    pub created: i64,
}

impl ContactEntry {
    /// Reads a contact from its dict; missing or mistyped fields are defaults.
    pub fn from_dict(dict: &Dict) -> Self {
        let (picture_url, picture_key) = get_picture(dict);
        let (expiry_mode, expiry_timer_secs) = Self::normalized_expiry(
            get_int(dict, "e")
                .and_then(ExpiryMode::from_code)
                .unwrap_or_default(),
            get_int(dict, "E").unwrap_or(0),
        );
        Self {
            name: get_text(dict, "n"),
            nickname: get_text(dict, "N"),
            picture_url,
            picture_key,
            approved: get_int(dict, "a").is_some_and(|v| v != 0),
            approved_me: get_int(dict, "A").is_some_and(|v| v != 0),
            blocked: get_int(dict, "b").is_some_and(|v| v != 0),
            priority: get_int(dict, "+").unwrap_or(0),
            expiry_mode,
            expiry_timer_secs,
            created: to_epoch_seconds(get_int(dict, "j").unwrap_or(0)).max(0),
        }
    }

    /// A mode only counts with a positive timer, and a timer only with a mode.
    fn normalized_expiry(mode: ExpiryMode, secs: i64) -> (ExpiryMode, i64) {
        if mode == ExpiryMode::Off || secs <= 0 {
            (ExpiryMode::Off, 0)
        } else {
            (mode, secs)
        }
    }

    /// Writes the contact into its dict, changing only fields that read differently and keeping
    /// every other key: applying the view read from a dict leaves it unchanged.
    pub fn apply_to(&self, dict: &mut Dict) {
        let current = Self::from_dict(dict);
        let name = non_empty(self.name.as_ref());
        if current.name != name {
            // Libsession writes an empty name rather than removing the key.
            put(dict, "n", Some(Value::from(name.unwrap_or_default())));
        }
        let nickname = non_empty(self.nickname.as_ref());
        if current.nickname != nickname {
            put(dict, "N", nickname.map(Value::from));
        }
        apply_picture(dict, self.picture_url.as_ref(), self.picture_key.as_ref());
        for (key, was, wanted) in [
            ("a", current.approved, self.approved),
            ("A", current.approved_me, self.approved_me),
            ("b", current.blocked, self.blocked),
        ] {
            if was != wanted {
                put(dict, key, wanted.then_some(Value::Int(1)));
            }
        }
        if current.priority != self.priority {
            put(
                dict,
                "+",
                (self.priority != 0).then_some(Value::Int(self.priority)),
            );
        }
        let expiry = Self::normalized_expiry(self.expiry_mode, self.expiry_timer_secs);
        if (current.expiry_mode, current.expiry_timer_secs) != expiry {
            let (mode, secs) = expiry;
            let on = mode != ExpiryMode::Off;
            put(dict, "e", on.then_some(Value::Int(mode.code())));
            put(dict, "E", on.then_some(Value::Int(secs)));
        }
        let created = self.created.max(0);
        if current.created != created {
            put(dict, "j", (created > 0).then_some(Value::Int(created)));
        }
        if dict.is_empty() {
            // An empty dict would be pruned, dropping the contact: keep an empty name, as
            // libsession does.
            put(dict, "n", Some(Value::from("")));
        }
    }
}

/// The contact list (Contacts config, namespace 3): data key `c`, a dict keyed by the 33-byte
/// binary Session ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    /// Every contact, by Session ID.
    pub contacts: BTreeMap<SessionId, ContactEntry>,
}

/// The Session ID a `c` key names, if it is 33 bytes starting with `05`.
fn contact_id(key: &[u8]) -> Option<SessionId> {
    let (&prefix, rest) = key.split_first()?;
    let bytes = <[u8; 32]>::try_from(rest).ok()?;
    (prefix == 0x05).then(|| SessionId::from_x25519(X25519Pub::from_bytes(bytes)))
}

impl Contacts {
    /// Reads the contacts from a Contacts data dict, skipping keys that are not 05-prefixed
    /// 33-byte Session IDs and entries that are not dicts.
    pub fn from_data(data: &Dict) -> Self {
        let contacts = data
            .get(b"c".as_slice())
            .and_then(Value::as_dict)
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                Some((contact_id(key)?, ContactEntry::from_dict(value.as_dict()?)))
            })
            .collect();
        Self { contacts }
    }

    /// Makes `data` hold exactly these contacts: entries of contacts not listed are removed,
    /// listed ones are updated in place (keeping their unknown fields) or created. Keys that are
    /// not Session IDs, and all other data keys, are left alone; a `c` that is not a dict is
    /// replaced only if there are contacts to write.
    pub fn apply_to(&self, data: &mut Dict) {
        let has_dict = matches!(data.get(b"c".as_slice()), Some(Value::Dict(_)));
        if self.contacts.is_empty() && !has_dict {
            return;
        }
        let slot = data
            .entry(b"c".to_vec())
            .or_insert_with(|| Value::Dict(Dict::new()));
        if !matches!(slot, Value::Dict(_)) {
            *slot = Value::Dict(Dict::new());
        }
        let Value::Dict(all) = slot else {
            return;
        };
        all.retain(|key, value| match (contact_id(key), value) {
            (Some(id), Value::Dict(_)) => self.contacts.contains_key(&id),
            _ => true,
        });
        for (id, contact) in &self.contacts {
            let entry = all
                .entry(id.account().to_bytes().to_vec())
                .or_insert_with(|| Value::Dict(Dict::new()));
            if !matches!(entry, Value::Dict(_)) {
                *entry = Value::Dict(Dict::new());
            }
            if let Value::Dict(dict) = entry {
                contact.apply_to(dict);
            }
        }
        if all.is_empty() {
            data.remove(b"c".as_slice());
        }
    }

    /// The contacts as a fresh data dict.
    pub fn to_data(&self) -> Dict {
        let mut data = Dict::new();
        self.apply_to(&mut data);
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reupload_copy_counts_only_when_newer_than_the_explicit_set() {
        let mut data = Dict::new();
        apply_picture(
            &mut data,
            Some(&"http://f/file/a".to_owned()),
            Some(&vec![1; 32]),
        );
        ProfilePictureTimes::apply_set_at(&mut data, 1_000);
        let times = ProfilePictureTimes::from_data(&data);
        assert_eq!(times.set_at, 1_000);
        assert!(!times.reupload_is_current());

        ProfilePictureTimes::apply_reupload(
            &mut data,
            Some(&"http://f/file/b".to_owned()),
            Some(&vec![1; 32]),
            2_000_000_000_000, // ms: read as seconds
        );
        let times = ProfilePictureTimes::from_data(&data);
        assert_eq!(times.reupload_at, 2_000_000_000);
        assert!(times.reupload_is_current());
        assert_eq!(times.reupload.0.as_deref(), Some("http://f/file/b"));
        // `p`/`q` are untouched by a re-upload.
        assert_eq!(
            UserProfile::from_data(&data).picture_url.as_deref(),
            Some("http://f/file/a")
        );
        // A later explicit set wins again; a bad `Q` makes no copy.
        ProfilePictureTimes::apply_set_at(&mut data, 3_000_000_000);
        assert!(!ProfilePictureTimes::from_data(&data).reupload_is_current());
        data.insert(b"Q".to_vec(), Value::from(vec![1u8; 31]));
        assert_eq!(ProfilePictureTimes::from_data(&data).reupload, (None, None));
        // Applying what is there changes nothing.
        let before = data.clone();
        ProfilePictureTimes::apply_set_at(&mut data, 3_000_000_000);
        assert_eq!(data, before);
    }
}
