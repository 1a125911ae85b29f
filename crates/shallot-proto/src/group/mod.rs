//! Session's "03" groups (groups spec): a group is its own Ed25519 identity and swarm; members
//! reach the swarm with blinded subaccount tokens, read messages with a symmetric group key that
//! admins rotate, and keep group state in configs signed by the group. Pure: no I/O, and every
//! random choice is an argument so results can be reproduced.
//!
//! - [`identity`]: the group ID, the admin's secret keys, seed hashes.
//! - [`auth`]: member `auth_data`, subaccount tokens and request signatures.
//! - [`multi`]: multi-recipient encryption and its simple container.
//! - [`signed`]: the `~` group signature on bencoded dicts.
//! - [`keys`]: GroupKeys messages (rekey, supplements) and their decryption.

pub mod auth;
mod hash;
pub mod identity;
pub mod keys;
pub mod multi;
pub mod signed;

pub use auth::{make_auth_data, subaccount_token, AuthData, AuthError, SubaccountRequestAuth};
pub use identity::{seed_hash, GroupAdmin, GroupId, SeedHash};
pub use keys::{
    key_supplement, rekey, FullKeyMessage, GroupKey, KeyEntry, KeyMessage, KeysError, Rekey,
    SupplementMessage,
};
pub use multi::{decrypt_for_multiple, encrypt_for_multiple, MultiContainer};
pub use signed::SignedError;
