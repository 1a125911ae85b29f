//! Shallot's protocol core: everything about Session's wire formats and cryptography that can be
//! computed without touching a socket, a file or a clock.
//!
//! Each wire format lives in exactly one module:
//! - [`attachment`]: attachment and profile-picture encryption, pointers, file server URLs and API.
//! - [`bencode`]: canonical bencode values, encoder and strict parser.
//! - [`group`]: Session's "03" groups: identity, member auth, group keys, configs, messages.
//! - [`identity`]: Ed25519/X25519 keys, Session IDs and other account IDs.
//! - [`mnemonic`]: the 13-word recovery phrase.
//! - [`namespace`]: storage namespaces and their access classes.
//! - [`message_hash`]: the storage server's message hash.
//! - [`signing`]: the exact byte strings clients and nodes sign (storage RPC §2.7, §2.8).
//! - [`subaccount`]: delegated-access tokens.
//! - [`swarm`]: pubkey → swarm-space position and nearest-swarm selection.
//! - [`onion`]: onion-request framing, hop encryption, building and peeling.
//! - [`session`]: Session-protocol message encryption, padding and protobuf envelopes.
//! - [`rpc`]: the storage server's client RPC: request envelope, every method's params, errors.
#![forbid(unsafe_code)]

pub mod attachment;
pub mod b64;
pub mod bencode;
pub mod group;
pub mod identity;
pub mod json_limit;
pub mod message_hash;
pub mod mnemonic;
pub mod namespace;
pub mod onion;
pub mod rpc;
pub mod session;
mod signalservice;
pub mod signing;
pub mod subaccount;
pub mod swarm;

pub use identity::{AccountId, AccountKind, Ed25519Pub, Identity, SessionId, Signature, X25519Pub};
pub use namespace::Namespace;
