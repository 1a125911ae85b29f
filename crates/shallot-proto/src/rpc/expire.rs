//! Per-message expiry methods (storage RPC spec §4.7, §4.8): `expire` sets expiries of listed
//! messages, `get_expiries` reads them.

use serde_json::{Map, Value};

use super::auth::{load_auth, Auth};
use super::delete::hash_list;
use super::error::ParamError;
use super::fields::{parse_hash, require, Params};
use crate::identity::AccountId;
use crate::message_hash::RequestedHash;
use crate::signing::{ExpireMode, RequestAuth, SignedRequest};

/// A parsed `expire` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expire {
    /// The account whose messages change.
    pub account: AccountId,
    /// The signature fields.
    pub auth: Auth,
    /// Hashes to update, in request order (never empty).
    pub messages: Vec<RequestedHash>,
    /// Requested expiries in ms: one for all messages, or one per message.
    pub expiries: Vec<u64>,
    /// Shorten only, extend only, or set.
    pub mode: ExpireMode,
}

/// A parsed `get_expiries` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetExpiries {
    /// The account.
    pub account: AccountId,
    /// The signature fields.
    pub auth: Auth,
    /// Request time in ms (signed, checked against the clock).
    pub timestamp: u64,
    /// Hash strings exactly as sent: this method does not validate them (never empty).
    pub messages: Vec<String>,
}

impl Expire {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let expiry = p.timestamp_array("expiry")?;
        let extend = p.boolean("extend")?;
        let messages = p.string_array("messages")?;
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let shorten = p.boolean("shorten")?;
        let signature = p.string("signature")?;
        let subaccount = p.string("subaccount")?;
        let subaccount_sig = p.string("subaccount_sig")?;

        let (account, auth) = load_auth(
            pubkey,
            pubkey_ed25519,
            signature,
            subaccount,
            subaccount_sig,
        )?;
        let expiries = require("expiry", expiry)?;
        if expiries.is_empty() {
            return Err(ParamError::NoExpiries);
        }
        let mode = match (shorten.unwrap_or(false), extend.unwrap_or(false)) {
            (true, true) => return Err(ParamError::ShortenAndExtend),
            (true, false) => ExpireMode::Shorten,
            (false, true) => ExpireMode::Extend,
            (false, false) => ExpireMode::Set,
        };
        let messages = require("messages", messages)?;
        if messages.is_empty() {
            return Err(ParamError::NoMessages);
        }
        if expiries.len() > 1 && expiries.len() != messages.len() {
            return Err(ParamError::ExpiryCount);
        }
        let messages = messages
            .into_iter()
            .map(parse_hash)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            account,
            auth,
            messages,
            expiries,
            mode,
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("pubkey".into(), self.account.to_hex().into());
        out.insert("messages".into(), hash_list(&self.messages));
        let expiry = match self.expiries.as_slice() {
            [single] => Value::from(*single),
            many => many.iter().copied().map(Value::from).collect(),
        };
        out.insert("expiry".into(), expiry);
        match self.mode {
            ExpireMode::Shorten => {
                out.insert("shorten".into(), true.into());
            }
            ExpireMode::Extend => {
                out.insert("extend".into(), true.into());
            }
            ExpireMode::Set => {}
        }
        self.auth.write(&mut out);
        out
    }

    /// The single expiry for all messages, if the request gave one (a one-element array counts).
    pub fn single_expiry(&self) -> Option<u64> {
        match self.expiries.as_slice() {
            [single] => Some(*single),
            _ => None,
        }
    }

    /// The verification inputs.
    pub fn request_auth(&self) -> RequestAuth<'_> {
        self.auth.request_auth(&self.account)
    }

    /// What the signature covers (spec §2.7), over the requested (unclamped) expiries.
    pub fn signed_message(&self) -> Vec<u8> {
        SignedRequest::Expire {
            mode: self.mode,
            expiries: &self.expiries,
            messages: &self.messages,
        }
        .message()
    }
}

impl GetExpiries {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let messages = p.string_array("messages")?;
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let signature = p.string("signature")?;
        let subaccount = p.string("subaccount")?;
        let subaccount_sig = p.string("subaccount_sig")?;
        let timestamp = p.timestamp("timestamp")?;

        let (account, auth) = load_auth(
            pubkey,
            pubkey_ed25519,
            signature,
            subaccount,
            subaccount_sig,
        )?;
        let timestamp = require("timestamp", timestamp)?;
        let messages = require("messages", messages)?;
        if messages.is_empty() {
            return Err(ParamError::NoMessages);
        }
        Ok(Self {
            account,
            auth,
            timestamp,
            messages: messages.into_iter().map(str::to_owned).collect(),
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("pubkey".into(), self.account.to_hex().into());
        out.insert("messages".into(), self.messages.clone().into());
        out.insert("timestamp".into(), self.timestamp.into());
        self.auth.write(&mut out);
        out
    }

    /// The verification inputs.
    pub fn request_auth(&self) -> RequestAuth<'_> {
        self.auth.request_auth(&self.account)
    }

    /// What the signature covers (spec §2.7).
    pub fn signed_message(&self) -> Vec<u8> {
        let messages: Vec<&str> = self.messages.iter().map(String::as_str).collect();
        SignedRequest::GetExpiries {
            timestamp: self.timestamp,
            messages: &messages,
        }
        .message()
    }
}
