//! The namespace-wide methods (storage RPC spec §4.4–§4.6): `delete_all`, `delete_before` and
//! `expire_all`, which act on one namespace or on `"all"` and carry one signed time each.

use serde_json::{Map, Value};

use super::auth::{load_auth, Auth};
use super::error::ParamError;
use super::fields::{require, Params};
use crate::identity::AccountId;
use crate::namespace::{Namespace, NamespaceSelector};
use crate::signing::{RequestAuth, SignedRequest};

/// A parsed `delete_all` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteAll {
    /// The account emptied.
    pub account: AccountId,
    /// The signature fields.
    pub auth: Auth,
    /// One namespace (default 0) or all of them.
    pub namespace: NamespaceSelector,
    /// Request time in ms (signed, checked against the clock).
    pub timestamp: u64,
}

/// A parsed `delete_before` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteBefore {
    /// The account.
    pub account: AccountId,
    /// The signature fields.
    pub auth: Auth,
    /// One namespace (default 0) or all of them.
    pub namespace: NamespaceSelector,
    /// Delete messages whose own timestamp is at most this (ms).
    pub before: u64,
}

/// A parsed `expire_all` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpireAll {
    /// The account.
    pub account: AccountId,
    /// The signature fields.
    pub auth: Auth,
    /// One namespace (default 0) or all of them.
    pub namespace: NamespaceSelector,
    /// New expiry in ms (messages expiring later are shortened to it).
    pub expiry: u64,
}

/// The shared shape: ordered field reads, then auth, then the required time field.
fn parse_bulk(
    p: Params<'_>,
    time_field: &'static str,
) -> Result<(AccountId, Auth, NamespaceSelector, u64), ParamError> {
    // `before` and `expiry` sort before `namespace`, `timestamp` after `subaccount_sig`.
    let early = time_field < "namespace";
    let time = if early {
        p.timestamp(time_field)?
    } else {
        None
    };
    let namespace = p.namespace_selector("namespace")?;
    let pubkey = p.string("pubkey")?;
    let pubkey_ed25519 = p.string("pubkey_ed25519")?;
    let signature = p.string("signature")?;
    let subaccount = p.string("subaccount")?;
    let subaccount_sig = p.string("subaccount_sig")?;
    let time = if early {
        time
    } else {
        p.timestamp(time_field)?
    };

    let (account, auth) = load_auth(
        pubkey,
        pubkey_ed25519,
        signature,
        subaccount,
        subaccount_sig,
    )?;
    let time = require(time_field, time)?;
    let namespace = namespace.unwrap_or(NamespaceSelector::One(Namespace::DEFAULT));
    Ok((account, auth, namespace, time))
}

fn write_bulk(
    account: &AccountId,
    auth: &Auth,
    namespace: NamespaceSelector,
    time_field: &str,
    time: u64,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("pubkey".into(), account.to_hex().into());
    let ns = match namespace {
        NamespaceSelector::One(ns) => Value::from(ns.0),
        NamespaceSelector::All => Value::from("all"),
    };
    out.insert("namespace".into(), ns);
    out.insert(time_field.into(), time.into());
    auth.write(&mut out);
    out
}

impl DeleteAll {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let (account, auth, namespace, timestamp) = parse_bulk(p, "timestamp")?;
        Ok(Self {
            account,
            auth,
            namespace,
            timestamp,
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        write_bulk(
            &self.account,
            &self.auth,
            self.namespace,
            "timestamp",
            self.timestamp,
        )
    }

    /// The verification inputs.
    pub fn request_auth(&self) -> RequestAuth<'_> {
        self.auth.request_auth(&self.account)
    }

    /// What the signature covers (spec §2.7).
    pub fn signed_message(&self) -> Vec<u8> {
        SignedRequest::DeleteAll {
            namespaces: self.namespace,
            timestamp: self.timestamp,
        }
        .message()
    }
}

impl DeleteBefore {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let (account, auth, namespace, before) = parse_bulk(p, "before")?;
        Ok(Self {
            account,
            auth,
            namespace,
            before,
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        write_bulk(
            &self.account,
            &self.auth,
            self.namespace,
            "before",
            self.before,
        )
    }

    /// The verification inputs.
    pub fn request_auth(&self) -> RequestAuth<'_> {
        self.auth.request_auth(&self.account)
    }

    /// What the signature covers (spec §2.7).
    pub fn signed_message(&self) -> Vec<u8> {
        SignedRequest::DeleteBefore {
            namespaces: self.namespace,
            before: self.before,
        }
        .message()
    }
}

impl ExpireAll {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let (account, auth, namespace, expiry) = parse_bulk(p, "expiry")?;
        Ok(Self {
            account,
            auth,
            namespace,
            expiry,
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        write_bulk(
            &self.account,
            &self.auth,
            self.namespace,
            "expiry",
            self.expiry,
        )
    }

    /// The verification inputs.
    pub fn request_auth(&self) -> RequestAuth<'_> {
        self.auth.request_auth(&self.account)
    }

    /// What the signature covers (spec §2.7).
    pub fn signed_message(&self) -> Vec<u8> {
        SignedRequest::ExpireAll {
            namespaces: self.namespace,
            expiry: self.expiry,
        }
        .message()
    }
}
