//! The Shallot client library: accounts, and the networking core that reaches service nodes
//! through onion paths.
//!
//! Layers, bottom up (onion-client spec §3):
//! - [`clock`]: network time from the `t` of node replies, so signatures are not rejected as skewed.
//! - [`pool`]: the known service nodes, bootstrapped from a seed and refreshed by intersection.
//! - [`paths`]: guards and 3-hop paths as a sans-I/O state machine fed request outcomes.
//! - TLS to directly contacted nodes (guards, seeds) holds them to their listed keys
//!   ([`shallot_tls`]).
//! - [`onion_client`]: sends requests over those paths and classifies what came back.
//! - [`swarm`]: which nodes hold an account, following 421 redirects.
//! - [`swarm_sig`]: checking each swarm member's signature on recursive replies.
//! - [`db`]: local state in SQLite, personal fields sealed per row, on a thread of its own.
//! - [`attachments`]: files encrypted, uploaded to and downloaded from a file server through
//!   onion paths.
//! - [`messenger`]: sending and receiving 1:1 messages on top of all of the above.
//! - [`groups`]: group chats in their own swarms (create, invite, remove, promote, …).
//! - [`config_sync`]: the profile and contacts shared by an account's devices (namespaces 2, 3).
//! - [`push`]: opt-in push notifications over a swarm member's monitor WebSocket.
//! - [`timing`]: send jitter and cover traffic, defences against timing correlation.
//!
//! Every failure is an [`Error`] whose [`Error::kind`] says what the caller should do.

pub mod attachments;
pub mod clock;
pub mod config_sync;
pub mod db;
pub mod error;
pub mod groups;
pub mod messenger;
pub mod onion_client;
pub mod paths;
pub mod pool;
pub mod push;
pub mod swarm;
pub mod swarm_sig;
pub mod timeouts;
pub mod timing;

pub use clock::NetworkClock;
pub use db::{
    AttachmentId, ContactPicture, ConversationState, Db, DbError, DbHandle, Direction,
    Disappearing, MessageState, OwnProfile, PictureRef, StoredAttachment, StoredGroupMessage,
    StoredMessage, StoredQuote, StoredReaction,
};
pub use error::{Error, ErrorKind};
pub use messenger::{
    AnyMessage, KeepAlive, Messenger, MessengerError, Picture, ReadOutcome, ReceivedMessage,
    SentMessage, Update, Waited,
};
pub use onion_client::{ClientConfig, OnionClient, Route};
pub use paths::{GuardEntry, PathConfig, PathId, PathManager};
pub use pool::{Pool, PoolSnapshot, Seed};
pub use shallot_clock::{Clock, SystemClock};
pub use shallot_keys::{AccountStore, KeystoreError};
pub use swarm::SwarmCache;
pub use timing::CoverTraffic;
