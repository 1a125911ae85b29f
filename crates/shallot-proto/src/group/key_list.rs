//! The key list every group client keeps (groups spec §3.3–§3.4): keys sorted by
//! `(generation, timestamp, key)`, an admin's pending key, which stored key messages are still
//! needed, expiry by swarm timestamps, and `needs_rekey`.

use std::collections::{BTreeMap, BTreeSet};

use super::identity::{GroupAdmin, GroupId};
use super::keys::{key_supplement, rekey, GroupKey, KeyEntry, KeyMessage, KeysError};
use crate::identity::{Identity, SessionId};
use crate::message_hash::MessageHash;

/// Keys of a generation are dropped once the next generation's first key is this much older
/// than the newest key (60 days, in ms).
pub const KEY_EXPIRY_MS: i64 = 60 * 24 * 60 * 60 * 1000;

/// Who is loading a key message: admins read `K`, members their own copy.
#[derive(Debug, Clone, Copy)]
pub enum KeyHolder<'a> {
    /// An admin (holds the group seed).
    Admin(&'a GroupAdmin),
    /// A member, by their own account keys.
    Member(&'a Identity),
}

/// A key an admin made with [`GroupKeys::rekey`] and has not yet seen come back from the swarm.
#[derive(Debug, Clone)]
struct Pending {
    generation: u64,
    key: GroupKey,
    message: Vec<u8>,
}

/// One group's key state.
#[derive(Debug, Clone)]
pub struct GroupKeys {
    group: GroupId,
    keys: Vec<KeyEntry>,
    pending: Option<Pending>,
    active: BTreeMap<u64, BTreeSet<MessageHash>>,
}

impl GroupKeys {
    /// An empty key list for `group`.
    pub const fn new(group: GroupId) -> Self {
        Self {
            group,
            keys: Vec::new(),
            pending: None,
            active: BTreeMap::new(),
        }
    }

    /// The group.
    pub const fn group(&self) -> &GroupId {
        &self.group
    }

    /// The confirmed keys, oldest first.
    pub fn keys(&self) -> &[KeyEntry] {
        &self.keys
    }

    /// Generation of the key messages encrypt with (pending first), if any.
    pub fn current_generation(&self) -> Option<u64> {
        self.pending
            .as_ref()
            .map(|p| p.generation)
            .or_else(|| self.keys.last().map(|k| k.generation))
    }

    /// The key new messages and configs are encrypted with: the pending key, else the newest.
    pub fn encryption_key(&self) -> Option<&GroupKey> {
        self.pending
            .as_ref()
            .map(|p| &p.key)
            .or_else(|| self.keys.last().map(|k| &k.key))
    }

    /// Every key to try when decrypting: pending first, then newest to oldest.
    pub fn decryption_keys(&self) -> Vec<&GroupKey> {
        self.pending
            .iter()
            .map(|p| &p.key)
            .chain(self.keys.iter().rev().map(|k| &k.key))
            .collect()
    }

    /// The message the last [`rekey`](Self::rekey) produced, until it is seen on the swarm.
    pub fn pending_message(&self) -> Option<&[u8]> {
        self.pending.as_ref().map(|p| p.message.as_slice())
    }

    /// Hashes of stored key messages still needed (to keep alive with `expire`).
    pub fn active_hashes(&self) -> BTreeSet<MessageHash> {
        self.active.values().flatten().copied().collect()
    }

    /// Two admins rekeyed concurrently (the two newest keys share a generation): an admin should
    /// [`rekey`](Self::rekey) again. Only meaningful for admins.
    pub fn needs_rekey(&self) -> bool {
        match self.keys.as_slice() {
            [.., a, b] => a.generation == b.generation,
            _ => false,
        }
    }

    /// Makes a new key for `members` (every Members entry except removed ones, ⚠ §9.5) and holds
    /// it as pending; store [`pending_message`](Self::pending_message) in namespace 12.
    pub fn rekey(&mut self, admin: &GroupAdmin, members: &[SessionId]) -> &[u8] {
        let generation = self.keys.last().map_or(0, |k| k.generation + 1);
        let made = rekey(admin, members, generation);
        &self
            .pending
            .insert(Pending {
                generation,
                key: made.key,
                message: made.message,
            })
            .message
    }

    /// A supplement giving every held key to `recipients` (added "with history").
    pub fn key_supplement(
        &self,
        admin: &GroupAdmin,
        recipients: &[SessionId],
    ) -> Result<Vec<u8>, KeysError> {
        key_supplement(admin, &self.keys, recipients)
    }

    /// Loads a namespace-12 message with its swarm hash and storage timestamp (ms). Returns
    /// whether it held a key for us; a forged or malformed message is an error and changes
    /// nothing.
    pub fn load(
        &mut self,
        holder: KeyHolder<'_>,
        message: &[u8],
        hash: MessageHash,
        timestamp_ms: i64,
    ) -> Result<bool, KeysError> {
        let parsed = KeyMessage::parse(message, &self.group)?;
        let generation = parsed.generation();
        let found: Vec<KeyEntry> = match (&parsed, holder) {
            (KeyMessage::Full(full), KeyHolder::Admin(admin)) => vec![KeyEntry {
                generation,
                timestamp_ms,
                key: full.open_admin(admin)?,
            }],
            (KeyMessage::Full(full), KeyHolder::Member(me)) => full
                .open_member(me, &self.group)
                .map(|key| KeyEntry {
                    generation,
                    timestamp_ms,
                    key,
                })
                .into_iter()
                .collect(),
            (KeyMessage::Supplement(supp), KeyHolder::Member(me)) => {
                supp.open_member(me, &self.group)?.unwrap_or_default()
            }
            // Admins already hold every key a supplement can carry.
            (KeyMessage::Supplement(_), KeyHolder::Admin(_)) => Vec::new(),
        };
        if let Some(pending) = &self.pending {
            if found
                .iter()
                .any(|k| k.generation > pending.generation || k.key == pending.key)
            {
                self.pending = None;
            }
        }
        self.active.entry(generation).or_default().insert(hash);
        for key in &found {
            self.insert(key.clone());
        }
        self.expire();
        Ok(!found.is_empty())
    }

    /// Inserts a key unless the same `(generation, key)` is held, or it predates a list that
    /// already spans more than the expiry window.
    fn insert(&mut self, key: KeyEntry) {
        if self
            .keys
            .iter()
            .any(|k| k.generation == key.generation && k.key == key.key)
        {
            return;
        }
        if let (Some(first), Some(last)) = (self.keys.first(), self.keys.last()) {
            if last.timestamp_ms - first.timestamp_ms > KEY_EXPIRY_MS && key < *first {
                return;
            }
        }
        let at = self.keys.partition_point(|k| *k < key);
        self.keys.insert(at, key);
    }

    /// Drops whole generations superseded by one stored more than [`KEY_EXPIRY_MS`] before the
    /// newest key (swarm timestamps only).
    fn expire(&mut self) {
        let Some(newest) = self.keys.last().map(|k| k.timestamp_ms) else {
            return;
        };
        let mut cut = 0;
        for i in 1..self.keys.len() {
            if self.keys[i].generation == self.keys[i - 1].generation {
                continue;
            }
            if self.keys[i].timestamp_ms.saturating_add(KEY_EXPIRY_MS) < newest {
                cut = i;
            } else {
                break;
            }
        }
        if cut > 0 {
            self.keys.drain(..cut);
            let oldest = self.keys[0].generation;
            self.active.retain(|&g, _| g >= oldest);
        }
    }
}
