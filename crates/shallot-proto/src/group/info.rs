//! The GroupInfo data (groups spec §4.2) as a typed view: applied onto an existing dict it
//! changes only fields whose meaning changed, so unknown keys survive.

use crate::bencode::{Dict, Value};
use crate::session::config_views::{apply_picture, get_int, get_picture, get_text, non_empty, put};

/// Longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 100;
/// Longest description, in bytes.
pub const MAX_GROUP_DESCRIPTION: usize = 2000;

/// The group's shared settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupInfo {
    /// `n`: the name (at most [`MAX_GROUP_NAME`] bytes when written).
    pub name: Option<String>,
    /// `o`: the description (at most [`MAX_GROUP_DESCRIPTION`] bytes when written).
    pub description: Option<String>,
    /// `p`: picture URL, paired with [`picture_key`](Self::picture_key).
    pub picture_url: Option<String>,
    /// `q`: picture key (32 bytes).
    pub picture_key: Option<Vec<u8>>,
    /// `E`: disappear-after-send timer in seconds; 0 = off.
    pub disappear_after_send_secs: i64,
    /// `c`: created, unix **seconds**.
    pub created: i64,
    /// `d`: members delete messages sent before this (unix **seconds**, ⚠ §9.12); 0 = unset.
    pub delete_before: i64,
    /// `D`: members delete attachments sent before this (unix seconds); 0 = unset.
    pub delete_attachments_before: i64,
    /// `!`: the group was destroyed (permanent).
    pub destroyed: bool,
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl GroupInfo {
    /// Reads the info from a GroupInfo data dict; missing or mistyped fields are defaults.
    pub fn from_data(data: &Dict) -> Self {
        let (picture_url, picture_key) = get_picture(data);
        let positive = |key| get_int(data, key).unwrap_or(0).max(0);
        Self {
            name: get_text(data, "n"),
            description: get_text(data, "o"),
            picture_url,
            picture_key,
            disappear_after_send_secs: positive("E"),
            created: positive("c"),
            delete_before: positive("d"),
            delete_attachments_before: positive("D"),
            destroyed: get_int(data, "!").is_some_and(|v| v != 0),
        }
    }

    /// Writes the info into `data`, touching only fields that read differently; texts are
    /// truncated to their limits.
    pub fn apply_to(&self, data: &mut Dict) {
        let current = Self::from_data(data);
        let name = non_empty(self.name.as_ref()).map(|n| truncate(&n, MAX_GROUP_NAME));
        if current.name != name {
            put(data, "n", name.map(Value::from));
        }
        let description =
            non_empty(self.description.as_ref()).map(|d| truncate(&d, MAX_GROUP_DESCRIPTION));
        if current.description != description {
            put(data, "o", description.map(Value::from));
        }
        apply_picture(data, self.picture_url.as_ref(), self.picture_key.as_ref());
        for (key, was, wanted) in [
            (
                "E",
                current.disappear_after_send_secs,
                self.disappear_after_send_secs,
            ),
            ("c", current.created, self.created),
            ("d", current.delete_before, self.delete_before),
            (
                "D",
                current.delete_attachments_before,
                self.delete_attachments_before,
            ),
        ] {
            let wanted = wanted.max(0);
            if was != wanted {
                put(data, key, (wanted > 0).then_some(Value::Int(wanted)));
            }
        }
        if current.destroyed != self.destroyed {
            put(data, "!", self.destroyed.then_some(Value::Int(1)));
        }
    }

    /// The info as a fresh data dict.
    pub fn to_data(&self) -> Dict {
        let mut data = Dict::new();
        self.apply_to(&mut data);
        data
    }
}
