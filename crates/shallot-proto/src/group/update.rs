//! The GroupUpdateMessage protobuf family (`DataMessage.groupUpdateMessage`, field 120; groups
//! spec §5.4), declared by hand with `prost` derives like [`crate::session::protos`], and the
//! ASCII texts admins sign in them.

use super::identity::{GroupAdmin, GroupId};
use crate::identity::{SessionId, Signature};

/// One group control message; at most one field is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateMessage {
    /// 1: invitation (sent 1:1 to the invitee).
    #[prost(message, optional, tag = "1")]
    pub invite_message: Option<GroupUpdateInviteMessage>,
    /// 2: name, picture or timer changed.
    #[prost(message, optional, tag = "2")]
    pub info_change_message: Option<GroupUpdateInfoChangeMessage>,
    /// 3: members added, removed or promoted.
    #[prost(message, optional, tag = "3")]
    pub member_change_message: Option<GroupUpdateMemberChangeMessage>,
    /// 4: promotion to admin (sent 1:1, carries the group seed).
    #[prost(message, optional, tag = "4")]
    pub promote_message: Option<GroupUpdatePromoteMessage>,
    /// 5: the sender left.
    #[prost(message, optional, tag = "5")]
    pub member_left_message: Option<GroupUpdateMemberLeftMessage>,
    /// 6: the sender accepted the invitation.
    #[prost(message, optional, tag = "6")]
    pub invite_response: Option<GroupUpdateInviteResponseMessage>,
    /// 7: delete members' messages.
    #[prost(message, optional, tag = "7")]
    pub delete_member_content: Option<GroupUpdateDeleteMemberContentMessage>,
    /// 8: visible "X left" notification.
    #[prost(message, optional, tag = "8")]
    pub member_left_notification_message: Option<GroupUpdateMemberLeftNotificationMessage>,
}

/// An invitation: group, name, the invitee's `auth_data` and the admin's INVITE signature.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateInviteMessage {
    /// `03…` group ID (required).
    #[prost(string, optional, tag = "1")]
    pub group_session_id: Option<String>,
    /// Group name (required).
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// 100-byte `auth_data` (required).
    #[prost(bytes = "vec", optional, tag = "3")]
    pub member_auth_data: Option<Vec<u8>>,
    /// Signature over [`AdminText::Invite`] (required).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub admin_signature: Option<Vec<u8>>,
}

/// A promotion: the group seed and name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdatePromoteMessage {
    /// The 32-byte group seed (required).
    #[prost(bytes = "vec", optional, tag = "1")]
    pub group_identity_seed: Option<Vec<u8>>,
    /// Group name (required).
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
}

/// What an info change changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum InfoChangeType {
    /// The name.
    Name = 1,
    /// The picture.
    Avatar = 2,
    /// The disappearing timer.
    DisappearingMessages = 3,
}

/// A notification that group info changed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateInfoChangeMessage {
    /// What changed (required).
    #[prost(enumeration = "InfoChangeType", optional, tag = "1")]
    pub kind: Option<i32>,
    /// The new name.
    #[prost(string, optional, tag = "2")]
    pub updated_name: Option<String>,
    /// The new timer in seconds.
    #[prost(uint32, optional, tag = "3")]
    pub updated_expiration: Option<u32>,
    /// Signature over [`AdminText::InfoChange`] (required).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub admin_signature: Option<Vec<u8>>,
}

/// What a member change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MemberChangeType {
    /// Members added.
    Added = 1,
    /// Members removed.
    Removed = 2,
    /// Members promoted.
    Promoted = 3,
}

/// A notification that members changed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateMemberChangeMessage {
    /// What happened (required).
    #[prost(enumeration = "MemberChangeType", optional, tag = "1")]
    pub kind: Option<i32>,
    /// Who (`05…` hex).
    #[prost(string, repeated, tag = "2")]
    pub member_session_ids: Vec<String>,
    /// Added with history.
    #[prost(bool, optional, tag = "3")]
    pub history_shared: Option<bool>,
    /// Signature over [`AdminText::MemberChange`] (required).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub admin_signature: Option<Vec<u8>>,
}

/// The sender left (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateMemberLeftMessage {}

/// The sender left, as a visible notification (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateMemberLeftNotificationMessage {}

/// The sender accepted its invitation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateInviteResponseMessage {
    /// Always true (required).
    #[prost(bool, optional, tag = "1")]
    pub is_approved: Option<bool>,
}

/// Delete messages of members and/or by hash.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupUpdateDeleteMemberContentMessage {
    /// Members whose messages go (`05…` hex).
    #[prost(string, repeated, tag = "1")]
    pub member_session_ids: Vec<String>,
    /// Message hashes.
    #[prost(string, repeated, tag = "2")]
    pub message_hashes: Vec<String>,
    /// Signature over [`AdminText::DeleteContent`]; without it only the sender's own hashes go.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub admin_signature: Option<Vec<u8>>,
}

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
