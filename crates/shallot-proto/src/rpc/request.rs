//! A typed client RPC request: every method's params (storage RPC spec §4), parsed from JSON with
//! the reference's error texts and serialised back to JSON params that re-parse to an equal
//! request.

use serde_json::{Map, Value};

use super::bulk::{DeleteAll, DeleteBefore, ExpireAll};
use super::delete::Delete;
use super::error::{ParamError, RpcError, TokenList};
use super::expire::{Expire, GetExpiries};
use super::fields::{aliased, parse_account, Params};
use super::meta::{parse_subrequests, subrequests_params, IfElse};
use super::method::Method;
use super::oxend::{self, OxendEndpoint};
use super::retrieve::Retrieve;
use super::revoke::Revocation;
use super::store::Store;
use crate::identity::AccountId;
use crate::signing::RequestAuth;

/// A parsed client request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `store`.
    Store(Store),
    /// `retrieve`.
    Retrieve(Retrieve),
    /// `delete`.
    Delete(Delete),
    /// `delete_all`.
    DeleteAll(DeleteAll),
    /// `delete_before`.
    DeleteBefore(DeleteBefore),
    /// `expire_all`.
    ExpireAll(ExpireAll),
    /// `expire`.
    Expire(Expire),
    /// `get_expiries`.
    GetExpiries(GetExpiries),
    /// `revoke_subaccount`.
    RevokeSubaccount(Revocation),
    /// `unrevoke_subaccount`.
    UnrevokeSubaccount(Revocation),
    /// `get_swarm` / `get_snodes_for_pubkey`: the swarm serving an account.
    GetSwarm {
        /// The account looked up.
        account: AccountId,
    },
    /// `info`: the node's version and time.
    Info,
    /// `oxend_request`: a whitelisted oxend call.
    OxendRequest {
        /// The oxend endpoint.
        endpoint: OxendEndpoint,
        /// Its params (never JSON null).
        params: Option<Value>,
    },
    /// `batch`: 1–20 non-meta subrequests run concurrently.
    Batch(Vec<Request>),
    /// `sequence`: 1–20 non-meta subrequests run in order until one fails.
    Sequence(Vec<Request>),
    /// `ifelse`: a conditional request.
    IfElse(Box<IfElse>),
}

impl Request {
    /// Parses a method's params. An unknown method is `no method <name>`; params that are not a
    /// JSON object read as an empty object (the envelope parser already requires an object).
    pub fn parse(method: &str, params: &Value) -> Result<Self, RpcError> {
        let method =
            Method::from_name(method).ok_or_else(|| RpcError::UnknownMethod(method.to_owned()))?;
        Ok(Self::parse_method(method, params)?)
    }

    /// Parses params for a known method.
    pub fn parse_method(method: Method, params: &Value) -> Result<Self, ParamError> {
        let p = Params::new(params);
        Ok(match method {
            Method::Store => Self::Store(Store::parse(p)?),
            Method::Retrieve => Self::Retrieve(Retrieve::parse(p)?),
            Method::Delete => Self::Delete(Delete::parse(p)?),
            Method::DeleteAll => Self::DeleteAll(DeleteAll::parse(p)?),
            Method::DeleteBefore => Self::DeleteBefore(DeleteBefore::parse(p)?),
            Method::ExpireAll => Self::ExpireAll(ExpireAll::parse(p)?),
            Method::Expire => Self::Expire(Expire::parse(p)?),
            Method::GetExpiries => Self::GetExpiries(GetExpiries::parse(p)?),
            Method::RevokeSubaccount => Self::RevokeSubaccount(Revocation::parse_revoke(p)?),
            Method::UnrevokeSubaccount => Self::UnrevokeSubaccount(Revocation::parse_unrevoke(p)?),
            Method::GetSwarm => {
                let alias = p.string("pubKey")?;
                let pubkey = p.string("pubkey")?;
                let pubkey = aliased("pubkey", pubkey, "pubKey", alias)?;
                Self::GetSwarm {
                    account: parse_account(pubkey).ok_or(ParamError::SwarmPubkey)?,
                }
            }
            Method::Info => Self::Info,
            Method::OxendRequest => {
                let (endpoint, params) = oxend::parse(p)?;
                Self::OxendRequest { endpoint, params }
            }
            Method::Batch => Self::Batch(parse_subrequests(p)?),
            Method::Sequence => Self::Sequence(parse_subrequests(p)?),
            Method::IfElse => Self::IfElse(Box::new(IfElse::parse(p)?)),
        })
    }

    /// The method of this request.
    pub const fn method(&self) -> Method {
        match self {
            Self::Store(_) => Method::Store,
            Self::Retrieve(_) => Method::Retrieve,
            Self::Delete(_) => Method::Delete,
            Self::DeleteAll(_) => Method::DeleteAll,
            Self::DeleteBefore(_) => Method::DeleteBefore,
            Self::ExpireAll(_) => Method::ExpireAll,
            Self::Expire(_) => Method::Expire,
            Self::GetExpiries(_) => Method::GetExpiries,
            Self::RevokeSubaccount(_) => Method::RevokeSubaccount,
            Self::UnrevokeSubaccount(_) => Method::UnrevokeSubaccount,
            Self::GetSwarm { .. } => Method::GetSwarm,
            Self::Info => Method::Info,
            Self::OxendRequest { .. } => Method::OxendRequest,
            Self::Batch(_) => Method::Batch,
            Self::Sequence(_) => Method::Sequence,
            Self::IfElse(_) => Method::IfElse,
        }
    }

    /// The canonical method name (`get_swarm` even if the alias was used).
    pub const fn method_name(&self) -> &'static str {
        self.method().name()
    }

    /// The account the request is about, if any (meta-requests, `info` and `oxend_request` have
    /// none). See [`Method::checks_swarm`] for which ones are refused with 421 on the wrong swarm.
    pub const fn account(&self) -> Option<&AccountId> {
        match self {
            Self::Store(r) => Some(&r.account),
            Self::Retrieve(r) => Some(&r.account),
            Self::Delete(r) => Some(&r.account),
            Self::DeleteAll(r) => Some(&r.account),
            Self::DeleteBefore(r) => Some(&r.account),
            Self::ExpireAll(r) => Some(&r.account),
            Self::Expire(r) => Some(&r.account),
            Self::GetExpiries(r) => Some(&r.account),
            Self::RevokeSubaccount(r) | Self::UnrevokeSubaccount(r) => Some(&r.account),
            Self::GetSwarm { account } => Some(account),
            Self::Info
            | Self::OxendRequest { .. }
            | Self::Batch(_)
            | Self::Sequence(_)
            | Self::IfElse(_) => None,
        }
    }

    /// Whether entry nodes forward this request to their swarm (spec §3.2).
    pub const fn is_recursive(&self) -> bool {
        self.method().is_recursive()
    }

    /// Whether this is `batch`, `sequence` or `ifelse`.
    pub const fn is_meta(&self) -> bool {
        self.method().is_meta()
    }

    /// The verification inputs of a signed request (`None` for unsigned requests and methods).
    pub fn request_auth(&self) -> Option<RequestAuth<'_>> {
        match self {
            Self::Store(r) => r.request_auth(),
            Self::Retrieve(r) => r.request_auth(),
            Self::Delete(r) => Some(r.request_auth()),
            Self::DeleteAll(r) => Some(r.request_auth()),
            Self::DeleteBefore(r) => Some(r.request_auth()),
            Self::ExpireAll(r) => Some(r.request_auth()),
            Self::Expire(r) => Some(r.request_auth()),
            Self::GetExpiries(r) => Some(r.request_auth()),
            Self::RevokeSubaccount(r) | Self::UnrevokeSubaccount(r) => Some(r.request_auth()),
            Self::GetSwarm { .. }
            | Self::Info
            | Self::OxendRequest { .. }
            | Self::Batch(_)
            | Self::Sequence(_)
            | Self::IfElse(_) => None,
        }
    }

    /// The bytes the request's signature covers (spec §2.7), for signed requests.
    pub fn signed_message(&self) -> Option<Vec<u8>> {
        match self {
            Self::Store(r) => r.signed_message(),
            Self::Retrieve(r) => r.signed_message(),
            Self::Delete(r) => Some(r.signed_message()),
            Self::DeleteAll(r) => Some(r.signed_message()),
            Self::DeleteBefore(r) => Some(r.signed_message()),
            Self::ExpireAll(r) => Some(r.signed_message()),
            Self::Expire(r) => Some(r.signed_message()),
            Self::GetExpiries(r) => Some(r.signed_message()),
            Self::RevokeSubaccount(r) => Some(r.revoke_message()),
            Self::UnrevokeSubaccount(r) => Some(r.unrevoke_message()),
            Self::GetSwarm { .. }
            | Self::Info
            | Self::OxendRequest { .. }
            | Self::Batch(_)
            | Self::Sequence(_)
            | Self::IfElse(_) => None,
        }
    }

    /// JSON params that parse back to an equal request: hex pubkeys, padded base64 for binary
    /// values, store with an absolute `expiry`, defaults omitted.
    pub fn to_params(&self) -> Value {
        let map: Map<String, Value> = match self {
            Self::Store(r) => r.to_params(),
            Self::Retrieve(r) => r.to_params(),
            Self::Delete(r) => r.to_params(),
            Self::DeleteAll(r) => r.to_params(),
            Self::DeleteBefore(r) => r.to_params(),
            Self::ExpireAll(r) => r.to_params(),
            Self::Expire(r) => r.to_params(),
            Self::GetExpiries(r) => r.to_params(),
            Self::RevokeSubaccount(r) => r.to_params(TokenList::Revoke),
            Self::UnrevokeSubaccount(r) => r.to_params(TokenList::Unrevoke),
            Self::GetSwarm { account } => {
                let mut out = Map::new();
                out.insert("pubkey".into(), account.to_hex().into());
                out
            }
            Self::Info => Map::new(),
            Self::OxendRequest { endpoint, params } => oxend::to_params(*endpoint, params.as_ref()),
            Self::Batch(requests) | Self::Sequence(requests) => subrequests_params(requests),
            Self::IfElse(r) => r.to_params(),
        };
        Value::Object(map)
    }

    /// The full JSON envelope `{"method": …, "params": …}`, as posted to `/storage_rpc/v1` and
    /// used for batch subrequests.
    pub fn to_envelope(&self) -> Value {
        let mut out = Map::new();
        out.insert("method".into(), self.method_name().into());
        out.insert("params".into(), self.to_params());
        Value::Object(out)
    }
}
