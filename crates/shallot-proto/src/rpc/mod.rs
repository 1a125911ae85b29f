//! The storage server's client RPC wire format (storage RPC spec §1.1, §2–§4, §6, §13): the JSON
//! request envelope, every method's params as typed requests, every answer as a typed response,
//! and the exact error texts the reference node answers with.
//!
//! Parsing follows the reference's order of checks, so the first error reported for a bad
//! request is the same: fields are read (and type-checked) in ascending key order, then required
//! fields and cross-field rules are checked method by method. [`Request::to_params`] serialises
//! back to JSON params that parse to an equal request; clients build requests with it and nodes
//! forward them to swarm peers with it. Only JSON is handled (not the bt encoding).
//!
//! - [`Envelope`] / [`parse_body`]: the outer `{"method", "params"}` object.
//! - [`Request`]: one variant per method, with [`Method`] naming them.
//! - [`RpcError`] / [`ParamError`]: `Display` is the response body (status 400).
//! - Responses, each one type that nodes encode and clients decode: [`SwarmResults`] of
//!   [`MemberResult`]s ([`Stored`], [`Deleted`], [`Updated`], [`Expired`], [`Revoked`],
//!   [`Unrevoked`]) for the recursive methods, [`RetrievePage`], [`Expiries`], [`SwarmMembers`],
//!   [`Info`], [`OxendResult`], [`BatchResults`], [`IfElseResult`], and the monitor frames.
//!   Field names and order, omitted fields and number types are the reference's: JSON objects
//!   are written with their keys in ascending order, as its sorted maps are.
//! - [`Refusal`]: the node's other error texts, with their statuses.

mod auth;
mod batch_results;
mod bulk;
mod delete;
mod envelope;
mod error;
mod expire;
mod fields;
mod member_results;
mod meta;
mod method;
mod monitor;
mod node_info;
mod oxend;
mod refusal;
mod request;
mod retrieve;
mod retrieved;
mod revoke;
mod store;
mod swarm_members;
mod swarm_results;
mod wire;

pub use auth::{Auth, SignedToken};
pub use batch_results::{BatchResults, IfElseResult, SubResult};
pub use bulk::{DeleteAll, DeleteBefore, ExpireAll};
pub use delete::Delete;
pub use envelope::{parse_body, Envelope};
pub use error::{Branch, Expected, ParamError, RpcError, TokenList};
pub use expire::{Expire, GetExpiries};
pub use member_results::{
    Deleted, Expired, ExpiryValue, HashList, Revoked, Stored, Unchanged, Unrevoked, Updated,
};
pub use meta::{IfCondition, IfElse};
pub use method::Method;
pub use monitor::{MonitorFrame, MonitorReply, MonitorSubscription, Notification};
pub use node_info::{Info, OxendResult};
pub use oxend::OxendEndpoint;
pub use refusal::Refusal;
pub use request::Request;
pub use retrieve::{effective_limits, Retrieve, RetrieveAuth};
pub use retrieved::{Expiries, RetrievePage, RetrievedMessage};
pub use revoke::Revocation;
pub use store::{Store, StoreAuth};
pub use swarm_members::{SwarmMember, SwarmMembers};
pub use swarm_results::{Failed, MemberFailure, MemberResult, SwarmResults};

/// `hf` in answers: the network's `[hardfork, snode_revision]`.
pub type Hardfork = [u16; 2];

/// Largest message a `store` accepts, in bytes.
pub const MAX_MESSAGE_DATA: usize = 76_800;
/// Largest `store` `data` string in JSON: the base64 length of [`MAX_MESSAGE_DATA`] bytes.
pub const MAX_DATA_B64: usize = MAX_MESSAGE_DATA / 3 * 4;
/// Most subrequests in one `batch` or `sequence`.
pub const MAX_BATCH: usize = 20;
/// Most tokens in one `revoke_subaccount` (and revocations kept per account).
pub const MAX_REVOKE: usize = 50;
/// Smallest accepted timestamp field, in ms (10⁶ s): smaller values were most likely seconds.
pub const MIN_TIMESTAMP_MS: u64 = 1_000_000_000;

/// Largest retrieve page, in accounted bytes.
pub const RETRIEVE_MAX_SIZE: usize = 7_800_000;
/// `max_size` used when a retrieve gives neither `max_count` nor `max_size` (1/5 of the max).
pub const RETRIEVE_DEFAULT_SIZE: i64 = -5;
/// Bytes accounted per retrieved message on top of its hash and base64 data.
pub const RETRIEVE_MESSAGE_OVERHEAD: usize = 100;

/// Shortest store TTL, in ms (10 s).
pub const TTL_MIN_MS: u64 = 10_000;
/// Longest store TTL in public-inbox namespaces, in ms (14 days).
pub const TTL_MAX_PUBLIC_MS: u64 = 14 * 24 * 3_600_000;
/// Longest store TTL elsewhere, and the cap on `expire`, in ms (30 days).
pub const TTL_MAX_PRIVATE_MS: u64 = 30 * 24 * 3_600_000;
/// How far a store's timestamp may be ahead of (and its expiry behind) the node's clock, in ms.
pub const STORE_CLOCK_TOLERANCE_MS: u64 = 10_000;
/// How far a signed timestamp may be from the node's clock, in ms.
pub const SIGNATURE_TOLERANCE_MS: u64 = 60_000;
/// The same for `delete_all`/`expire_all` received forwarded from a swarm peer, in ms.
pub const FORWARDED_SIGNATURE_TOLERANCE_MS: u64 = 70_000;
