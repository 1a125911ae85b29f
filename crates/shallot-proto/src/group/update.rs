//! The GroupUpdateMessage protobuf family (`DataMessage.groupUpdateMessage`, field 120; groups
//! spec §5.4), generated from Shallot's own `proto/group_update.proto` like
//! [`crate::session::protos`], and the ASCII texts admins sign in them.

use super::identity::{GroupAdmin, GroupId};
use crate::identity::{SessionId, Signature};

pub use crate::signalservice::{
    GroupUpdateDeleteMemberContentMessage, GroupUpdateInfoChangeMessage, GroupUpdateInviteMessage,
    GroupUpdateInviteResponseMessage, GroupUpdateMemberChangeMessage, GroupUpdateMemberLeftMessage,
    GroupUpdateMemberLeftNotificationMessage, GroupUpdateMessage, GroupUpdatePromoteMessage,
    InfoChangeType, MemberChangeType,
};

/// The ASCII texts admins sign with the group key; `timestamp_ms` is the envelope timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminText<'a> {
    /// `"INVITE" || invitee || TS`.
    Invite {
        /// The invitee.
        invitee: &'a SessionId,
        /// Sent timestamp (ms).
        timestamp_ms: u64,
    },
    /// `"INFO_CHANGE" || type || TS`.
    InfoChange {
        /// What changed.
        kind: InfoChangeType,
        /// Sent timestamp (ms).
        timestamp_ms: u64,
    },
    /// `"MEMBER_CHANGE" || type || TS`.
    MemberChange {
        /// What happened.
        kind: MemberChangeType,
        /// Sent timestamp (ms).
        timestamp_ms: u64,
    },
    /// `"DELETE_CONTENT" || TS || concat(member IDs) || concat(hashes)`.
    DeleteContent {
        /// Sent timestamp (ms).
        timestamp_ms: u64,
        /// `05…` member IDs as sent.
        members: &'a [String],
        /// Message hashes as sent.
        hashes: &'a [String],
    },
}

impl AdminText<'_> {
    /// The signed bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Invite {
                invitee,
                timestamp_ms,
            } => format!("INVITE{invitee}{timestamp_ms}").into_bytes(),
            Self::InfoChange { kind, timestamp_ms } => {
                format!("INFO_CHANGE{}{timestamp_ms}", *kind as i32).into_bytes()
            }
            Self::MemberChange { kind, timestamp_ms } => {
                format!("MEMBER_CHANGE{}{timestamp_ms}", *kind as i32).into_bytes()
            }
            Self::DeleteContent {
                timestamp_ms,
                members,
                hashes,
            } => format!(
                "DELETE_CONTENT{timestamp_ms}{}{}",
                members.concat(),
                hashes.concat()
            )
            .into_bytes(),
        }
    }

    /// The admin's signature.
    pub fn sign(&self, admin: &GroupAdmin) -> Signature {
        admin.sign(&self.bytes())
    }

    /// Whether `signature` (64 bytes) is the group's over this text.
    pub fn verify(&self, group: &GroupId, signature: &[u8]) -> bool {
        <[u8; 64]>::try_from(signature).is_ok_and(|s| {
            group
                .pubkey()
                .verify(&self.bytes(), &Signature::from_bytes(&s))
        })
    }
}
