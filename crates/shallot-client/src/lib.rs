//! The Shallot client library.
//!
//! Today it re-exports the account key store; onion paths, sending and receiving build on it.

pub use shallot_keys::{AccountStore, KeystoreError};
