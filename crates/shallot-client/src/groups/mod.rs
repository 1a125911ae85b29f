//! Session's "03" groups on top of the messenger (groups spec §7): each group is its own
//! identity and swarm; members reach it with blinded subaccount tokens, so the swarm never
//! learns who they are, and read with a group key that admins rotate on removal.
//!
//! - [`state`]: what this device keeps of a group, and the key list and configs derived from it.
//! - [`invite`]: the 1:1 messages that bring groups in (invites, promotions), checked.
//! - [`requests`]: the group swarm's authentication (admin key or subaccount) and requests.
//! - [`admin`]: create, invite, remove, promote, rename, timers, delete-before, destroy.
//! - [`member`]: accept, decline, leave, send.
//! - [`poll`]: polling the group swarms with the inbox, and what the items do.
//!
//! The protocol itself (keys, configs, tokens, message encryption) is
//! `shallot_proto::group`; this module is the policy and the I/O around it.

pub mod admin;
pub mod invite;
pub mod member;
pub mod poll;
pub mod requests;
pub mod state;
#[cfg(test)]
mod tests;

pub use state::{Group, GroupRecord, GroupStatus};

/// TTL of group configs, key messages and kicked notices (desktop: 30 days).
pub const GROUP_CONFIG_TTL_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Why a group operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The group is not known here.
    #[error("no such group here (see `shallot group list`)")]
    Unknown,
    /// Only admins (holders of the group seed) may do this.
    #[error("only an admin of the group can do this")]
    NotAdmin,
    /// We cannot read or write the group swarm.
    #[error("you cannot access this group: {0}")]
    NoAccess(&'static str),
    /// No group key is held yet (nothing polled from the group swarm).
    #[error("no group key yet: fetch the group's messages first")]
    NoKey,
    /// The request does not make sense for this group.
    #[error("{0}")]
    Invalid(String),
}

/// One group as `group list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// The group ID.
    pub id: shallot_proto::group::GroupId,
    /// Its name.
    pub name: String,
    /// Where we stand.
    pub status: GroupStatus,
    /// Whether we hold the admin key.
    pub admin: bool,
    /// How many members the Members config lists.
    pub members: usize,
}

impl From<&Group> for GroupSummary {
    fn from(group: &Group) -> Self {
        Self {
            id: group.id,
            name: group.name(),
            status: group.record.status.clone(),
            admin: group.admin().is_some(),
            members: group.members().members.len(),
        }
    }
}
