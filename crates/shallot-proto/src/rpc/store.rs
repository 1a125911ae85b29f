//! `store` params (storage RPC spec §4.1): one message into an account's namespace.

use serde_json::{Map, Value};

use super::auth::{load_account, load_auth, Auth};
use super::error::ParamError;
use super::fields::{aliased, decode_base64, is_base64, require, Params};
use super::{MAX_DATA_B64, MIN_TIMESTAMP_MS};
use crate::identity::AccountId;
use crate::message_hash::MessageHash;
use crate::namespace::Namespace;
use crate::signing::{RequestAuth, SignedRequest};

/// A parsed `store` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// The receiving account.
    pub account: AccountId,
    /// Namespace stored into (default 0).
    pub namespace: Namespace,
    /// The message's own timestamp in ms (any sign: the reference does not range-check it).
    pub timestamp: i64,
    /// Absolute expiry in ms (`expiry`, or `timestamp + ttl`, saturating).
    pub expiry: i64,
    /// The message bytes (at most [`super::MAX_MESSAGE_DATA`] when parsed from JSON).
    pub data: Vec<u8>,
    /// Present iff the request carried a `signature`.
    pub auth: Option<StoreAuth>,
}

/// A signed store's authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreAuth {
    /// The time the signature covers: `sig_timestamp`, or else the message `timestamp`.
    pub sig_timestamp: i64,
    /// The signature fields.
    pub auth: Auth,
}

impl Store {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let data = p.string("data")?;
        let expiry = p.timestamp("expiry")?;
        let namespace = p.namespace("namespace")?;
        let pubkey_alias = p.string("pubKey")?;
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let sig_timestamp = p.timestamp("sig_timestamp")?;
        let signature = p.string("signature")?;
        let subaccount = p.string("subaccount")?;
        let subaccount_sig = p.string("subaccount_sig")?;
        let timestamp = p.stringified_i64("timestamp")?;
        let ttl = p.stringified_u64("ttl")?;

        let timestamp = require("timestamp", timestamp)?;
        let expiry = match (expiry, ttl) {
            (Some(_), Some(_)) => return Err(ParamError::Both("expiry", "ttl")),
            (None, None) => return Err(ParamError::MissingEither("expiry", "ttl")),
            // Timestamps are checked to be at most i64::MAX.
            (Some(expiry), None) => i64::try_from(expiry).unwrap_or(i64::MAX),
            (None, Some(ttl)) => timestamp.saturating_add_unsigned(ttl),
        };
        let pubkey = aliased("pubkey", pubkey, "pubKey", pubkey_alias)?;
        let namespace = namespace.unwrap_or_default();

        let (account, auth) = if signature.is_some() {
            let (account, auth) = load_auth(
                Some(pubkey),
                pubkey_ed25519,
                signature,
                subaccount,
                subaccount_sig,
            )?;
            let sig_timestamp = sig_timestamp
                .and_then(|ts| i64::try_from(ts).ok())
                .unwrap_or(timestamp);
            (
                account,
                Some(StoreAuth {
                    sig_timestamp,
                    auth,
                }),
            )
        } else {
            (load_account(Some(pubkey))?, None)
        };

        let data = require("data", data)?;
        if !is_base64(data) {
            return Err(ParamError::DataNotBase64);
        }
        if data.len() > MAX_DATA_B64 {
            return Err(ParamError::DataTooLong);
        }
        let data = decode_base64(data).ok_or(ParamError::DataNotBase64)?;

        Ok(Self {
            account,
            namespace,
            timestamp,
            expiry,
            data,
            auth,
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("pubkey".into(), self.account.to_hex().into());
        out.insert("timestamp".into(), self.timestamp.into());
        // The absolute form when it is a valid JSON expiry, else the equivalent relative TTL
        // (only reachable for the odd timestamps that the numeric-string form admits).
        let ttl = u64::try_from(self.expiry.saturating_sub(self.timestamp));
        match (u64::try_from(self.expiry), ttl) {
            (Ok(expiry), _) if expiry >= MIN_TIMESTAMP_MS => {
                out.insert("expiry".into(), expiry.into());
            }
            (_, Ok(ttl)) => {
                out.insert("ttl".into(), ttl.into());
            }
            _ => {
                out.insert("expiry".into(), self.expiry.into());
            }
        }
        out.insert("data".into(), crate::b64::encode(&self.data).into());
        if self.namespace != Namespace::DEFAULT {
            out.insert("namespace".into(), self.namespace.0.into());
        }
        if let Some(auth) = &self.auth {
            auth.auth.write(&mut out);
            if auth.sig_timestamp != self.timestamp {
                out.insert("sig_timestamp".into(), auth.sig_timestamp.into());
            }
        }
        out
    }

    /// The requested lifetime, `expiry − timestamp`, in ms.
    pub fn ttl(&self) -> i64 {
        self.expiry.saturating_sub(self.timestamp)
    }

    /// The hash the message is stored under.
    pub fn hash(&self) -> MessageHash {
        MessageHash::compute(&self.account, self.namespace, &self.data)
    }

    /// The verification inputs, if the store was signed.
    pub fn request_auth(&self) -> Option<RequestAuth<'_>> {
        self.auth
            .as_ref()
            .map(|a| a.auth.request_auth(&self.account))
    }

    /// What the signature covers (spec §2.7), if signed; `None` also for a negative signature
    /// time, which no clock check accepts anyway.
    pub fn signed_message(&self) -> Option<Vec<u8>> {
        let auth = self.auth.as_ref()?;
        let sig_timestamp = u64::try_from(auth.sig_timestamp).ok()?;
        Some(
            SignedRequest::Store {
                namespace: self.namespace,
                sig_timestamp,
            }
            .message(),
        )
    }
}
