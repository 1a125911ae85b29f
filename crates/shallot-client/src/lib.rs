//! The Shallot client library.
//!
//! Today it holds the account key store; onion paths, sending and receiving build on it.

pub mod keystore;

pub use keystore::{AccountStore, KeystoreError};
