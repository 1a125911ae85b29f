//! `revoke_subaccount` / `unrevoke_subaccount` params (storage RPC spec §4.9): the account owner
//! (never a subaccount) withdraws or restores delegated tokens.

use serde_json::{Map, Value};

use super::auth::{load_signed, write_key_auth};
use super::error::{ParamError, TokenList};
use super::fields::{require, Params};
use super::MAX_REVOKE;
use crate::identity::{AccountId, Ed25519Pub, Signature};
use crate::signing::{RequestAuth, SignedRequest};
use crate::subaccount::SubaccountToken;

/// A parsed `revoke_subaccount` or `unrevoke_subaccount` request (the [`super::Request`] variant
/// says which).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The account whose tokens change.
    pub account: AccountId,
    /// The owner's signature (subaccount fields are not accepted here).
    pub signature: Signature,
    /// `pubkey_ed25519` for `05` accounts.
    pub pubkey_ed25519: Option<Ed25519Pub>,
    /// Request time in ms (signed, checked against the clock).
    pub timestamp: u64,
    /// Tokens in request order (at most 50 for a revoke; possibly empty).
    pub tokens: Vec<SubaccountToken>,
}

fn parse_tokens(list: TokenList, texts: Vec<&str>) -> Result<Vec<SubaccountToken>, ParamError> {
    texts
        .into_iter()
        .map(|text| SubaccountToken::from_text(text).map_err(|_| ParamError::Token(list)))
        .collect()
}

impl Revocation {
    pub(crate) fn parse_revoke(p: Params<'_>) -> Result<Self, ParamError> {
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let revoke = p.string_array("revoke")?;
        let signature = p.string("signature")?;
        let timestamp = p.timestamp("timestamp")?;

        let (account, signature, pubkey_ed25519) = load_signed(pubkey, pubkey_ed25519, signature)?;
        let revoke = require("revoke", revoke)?;
        if revoke.len() > MAX_REVOKE {
            return Err(ParamError::TooManyRevocations);
        }
        let tokens = parse_tokens(TokenList::Revoke, revoke)?;
        let timestamp = require("timestamp", timestamp)?;
        Ok(Self {
            account,
            signature,
            pubkey_ed25519,
            timestamp,
            tokens,
        })
    }

    pub(crate) fn parse_unrevoke(p: Params<'_>) -> Result<Self, ParamError> {
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let signature = p.string("signature")?;
        let timestamp = p.timestamp("timestamp")?;
        let unrevoke = p.string_array("unrevoke")?;

        let (account, signature, pubkey_ed25519) = load_signed(pubkey, pubkey_ed25519, signature)?;
        let timestamp = require("timestamp", timestamp)?;
        let unrevoke = require("unrevoke", unrevoke)?;
        let tokens = parse_tokens(TokenList::Unrevoke, unrevoke)?;
        Ok(Self {
            account,
            signature,
            pubkey_ed25519,
            timestamp,
            tokens,
        })
    }

    /// JSON params under the list key `revoke` or `unrevoke` (tokens as padded base64).
    pub(crate) fn to_params(&self, list: TokenList) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("pubkey".into(), self.account.to_hex().into());
        out.insert("timestamp".into(), self.timestamp.into());
        let tokens = self
            .tokens
            .iter()
            .map(|t| Value::from(crate::b64::encode(t.as_bytes())))
            .collect();
        out.insert(list.to_string(), tokens);
        write_key_auth(&mut out, &self.signature, self.pubkey_ed25519.as_ref());
        out
    }

    /// The verification inputs (main key only: never a subaccount).
    pub fn request_auth(&self) -> RequestAuth<'_> {
        RequestAuth {
            account: &self.account,
            pubkey_ed25519: self.pubkey_ed25519.as_ref(),
            subaccount: None,
            signature: &self.signature,
        }
    }

    /// What a `revoke_subaccount` signature covers (spec §2.7).
    pub fn revoke_message(&self) -> Vec<u8> {
        SignedRequest::RevokeSubaccount {
            timestamp: self.timestamp,
            tokens: &self.tokens,
        }
        .message()
    }

    /// What an `unrevoke_subaccount` signature covers (spec §2.7).
    pub fn unrevoke_message(&self) -> Vec<u8> {
        SignedRequest::UnrevokeSubaccount {
            timestamp: self.timestamp,
            tokens: &self.tokens,
        }
        .message()
    }
}
