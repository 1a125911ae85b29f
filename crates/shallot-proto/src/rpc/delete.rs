//! `delete` params (storage RPC spec §4.3): remove messages by hash.

use serde_json::{Map, Value};

use super::auth::{load_auth, Auth};
use super::error::ParamError;
use super::fields::{parse_hash, require, Params};
use crate::identity::AccountId;
use crate::message_hash::RequestedHash;
use crate::signing::{RequestAuth, SignedRequest};

/// A parsed `delete` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    /// The account whose messages are deleted.
    pub account: AccountId,
    /// The signature fields.
    pub auth: Auth,
    /// Hashes to delete, in request order (never empty).
    pub messages: Vec<RequestedHash>,
    /// Answer 404 if nothing was deleted anywhere.
    pub required: bool,
}

impl Delete {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let messages = p.string_array("messages")?;
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let required = p.boolean("required")?;
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
        let messages = require("messages", messages)?;
        if messages.is_empty() {
            return Err(ParamError::NoMessages);
        }
        let messages = messages
            .into_iter()
            .map(parse_hash)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            account,
            auth,
            messages,
            required: required.unwrap_or(false),
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("pubkey".into(), self.account.to_hex().into());
        out.insert("messages".into(), hash_list(&self.messages));
        if self.required {
            out.insert("required".into(), true.into());
        }
        self.auth.write(&mut out);
        out
    }

    /// The verification inputs.
    pub fn request_auth(&self) -> RequestAuth<'_> {
        self.auth.request_auth(&self.account)
    }

    /// What the signature covers (spec §2.7).
    pub fn signed_message(&self) -> Vec<u8> {
        SignedRequest::Delete {
            messages: &self.messages,
        }
        .message()
    }
}

/// Hashes as a JSON array of their 43-character texts.
pub(crate) fn hash_list(hashes: &[RequestedHash]) -> Value {
    hashes.iter().map(|h| Value::from(h.to_string())).collect()
}
