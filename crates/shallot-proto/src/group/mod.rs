//! Session's "03" groups (groups spec): a group is its own Ed25519 identity and swarm; members
//! reach the swarm with blinded subaccount tokens, read messages with a symmetric group key that
//! admins rotate, and keep group state in configs signed by the group. Pure: no I/O, and every
//! random choice is an argument so results can be reproduced.
//!
//! - [`identity`]: the group ID, the admin's secret keys, seed hashes.
//! - [`auth`]: member `auth_data`, subaccount tokens and request signatures.
//! - [`message`]: `encrypt_for_group` and decryption of namespace-11 messages.
//! - [`config`]: GroupInfo/GroupMembers configs: signed, sealed with the group keys.
//! - [`info`], [`members`]: typed views of their data.
//! - [`kicked`]: the namespace −11 removal notice.
//! - [`envelope`]: the envelope and content inside a decrypted group message.
//! - [`update`]: the GroupUpdateMessage protobufs and admin-signed texts.
//! - [`user_groups`]: the `03` group entries of the user's UserGroups config (namespace 5).
//! - [`multi`]: multi-recipient encryption and its simple container.
//! - [`signed`]: the `~` group signature on bencoded dicts.
//! - [`keys`]: GroupKeys messages (rekey, supplements) and their decryption.
//! - [`key_list`]: the key list a client keeps: loading messages, expiry, `needs_rekey`.

pub mod auth;
pub mod config;
pub mod envelope;
mod hash;
pub mod identity;
pub mod info;
pub mod key_list;
pub mod keys;
pub mod kicked;
pub mod members;
pub mod message;
pub mod multi;
pub mod signed;
pub mod update;
pub mod user_groups;

pub use auth::{
    make_auth_data, subaccount_token, AuthData, AuthError, MemberSigner, SubaccountRequestAuth,
};
pub use config::{
    open_group_config, seal_group_config, seal_signed_group_config, sign_group_config,
    GroupConfigError, GroupConfigKind,
};
pub use envelope::{unwrap_group_content, wrap_group_content, GroupEnvelopeError};
pub use identity::{seed_hash, GroupAdmin, GroupId, SeedHash};
pub use info::GroupInfo;
pub use key_list::{GroupKeys, KeyHolder, KEY_EXPIRY_MS};
pub use keys::{
    key_supplement, rekey, FullKeyMessage, GroupKey, KeyEntry, KeyMessage, KeysError, Rekey,
    SupplementMessage,
};
pub use kicked::{check_kicked, kicked_notice, KickedError};
pub use members::{GroupMember, GroupMembers, Removal, SendStatus};
pub use message::{decrypt_group_message, encrypt_for_group, GroupMessage, GroupMessageError};
pub use multi::{decrypt_for_multiple, encrypt_for_multiple, MultiContainer};
pub use signed::SignedError;
pub use update::{AdminText, GroupUpdateMessage};
pub use user_groups::{RemovedStatus, UserGroupEntry, UserGroups};
