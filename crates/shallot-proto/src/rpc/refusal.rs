//! The node's refusals of well-formed requests (storage RPC spec §1.1, §4, §12): each with the
//! status it is answered with and, as `Display`, the exact plain-text body.

use super::method::Method;
use crate::identity::AccountId;
use crate::namespace::Namespace;

/// Why a node refused a parsed request. The body is the `Display` text, the status
/// [`Refusal::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A store TTL outside 10 s … 14 or 30 days (403).
    #[error("Provided expiry/TTL is not valid.")]
    InvalidTtl,
    /// A store timestamp in the future or expiry in the past beyond 10 s (406).
    #[error("Timestamp error: check your clock")]
    StoreClock,
    /// An unsigned store to a namespace that needs a signature (401).
    #[error("store: signature required to store to namespace {0}")]
    StoreUnsigned(Namespace),
    /// An unsigned retrieve from a namespace that needs a signature (401).
    #[error("retrieve: request signature required")]
    RetrieveUnsigned,
    /// A signature time outside the node's window (406).
    #[error("{} timestamp too far from current time", stale_prefix(*.0))]
    StaleTimestamp(Method),
    /// A signature that does not verify (401).
    #[error("{} signature verification failed", signature_prefix(*.0))]
    BadSignature(Method),
    /// `delete_before` more than 60 s ahead (401).
    #[error("delete_before timestamp too far in the future")]
    BeforeInFuture,
    /// `expire` to a time more than 60 s past (401).
    #[error("expire: timestamp should be >= current time")]
    ExpiryInPast,
    /// `expire_all` to a time more than 60 (70 forwarded) s past (406).
    #[error("expire_all timestamp should be >= current time")]
    ExpireAllInPast,
    /// `expire` with several expiries before hardfork 19.4 (403).
    #[error("expire: multi-expiry requests are not yet active on the network")]
    MultiExpiryInactive,
    /// `expire` `shorten` by a subaccount without delete access (400).
    #[error(
        "expire: shorten parameter cannot be used with this subaccount token (missing delete access)"
    )]
    ShortenWithoutDelete,
    /// The database failed a non-recursive request (500).
    #[error("request failed: {0}")]
    RequestFailed(String),
    /// The database failed a retrieve (500); names the account by its first 2 and last byte.
    #[error("Internal Server Error. Could not retrieve messages for {}…{}",
        hex::encode(&.0.to_bytes()[..2]), hex::encode(&.0.to_bytes()[32..]))]
    RetrieveFailed(AccountId),
    /// `oxend_request` for `ons_resolve`, which this network does not serve (400).
    #[error("ons_resolve is not supported on this network")]
    OnsUnsupported,
    /// Shallot: a store to an inbox at its quota on every member (429).
    #[error(
        "store: the recipient's inbox is full (per-account quota of unsigned messages); try later"
    )]
    InboxFull,
    /// The node is not serving yet; holds the reasons (503).
    #[error("Service node is not ready: {0}\n")]
    NotReady(String),
    /// The client's address is over its request rate (429).
    #[error("Too Many Requests\n")]
    RateLimited,
    /// A request with the old long-polling header (410).
    #[error("long polling is no longer supported, client upgrade required")]
    LongPolling,
    /// A non-recursive request forwarded by a swarm peer (400).
    #[error("invalid request: received invalid forwarded non-forwardable request")]
    NotForwardable,
}

/// How a method names itself in a stale-timestamp text (`store` says whose timestamp).
fn stale_prefix(method: Method) -> &'static str {
    match method {
        Method::Store => "store signature",
        other => other.name(),
    }
}

/// How a method names itself in a failed-signature text (the reference's own spellings).
fn signature_prefix(method: Method) -> &'static str {
    match method {
        Method::Delete => "delete_msgs",
        Method::Expire => "expire:",
        other => other.name(),
    }
}

impl Refusal {
    /// The HTTP status the refusal is answered with.
    pub const fn status(&self) -> u16 {
        match self {
            Self::ShortenWithoutDelete | Self::OnsUnsupported | Self::NotForwardable => 400,
            Self::StoreUnsigned(_)
            | Self::RetrieveUnsigned
            | Self::BadSignature(_)
            | Self::BeforeInFuture
            | Self::ExpiryInPast => 401,
            Self::InvalidTtl | Self::MultiExpiryInactive => 403,
            Self::StoreClock | Self::StaleTimestamp(_) | Self::ExpireAllInPast => 406,
            Self::LongPolling => 410,
            Self::InboxFull | Self::RateLimited => 429,
            Self::RequestFailed(_) | Self::RetrieveFailed(_) => 500,
            Self::NotReady(_) => 503,
        }
    }
}
