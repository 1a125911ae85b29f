//! `retrieve` params (storage RPC spec §4.2) and its page-size limits.

use serde_json::{Map, Value};

use super::auth::{load_account, load_auth, Auth};
use super::error::ParamError;
use super::fields::{aliased, is_base64, Params};
use super::{RETRIEVE_DEFAULT_SIZE, RETRIEVE_MAX_SIZE};
use crate::identity::AccountId;
use crate::message_hash::MessageHash;
use crate::namespace::Namespace;
use crate::signing::{RequestAuth, SignedRequest};

/// A parsed `retrieve` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retrieve {
    /// The account read.
    pub account: AccountId,
    /// Namespace read (default 0).
    pub namespace: Namespace,
    /// Present iff the request carried authentication (then it was required to be complete).
    pub auth: Option<RetrieveAuth>,
    /// Return messages stored after this one. A well-formed but non-canonical hash (which can
    /// never match a stored message) reads as absent, which is what the reference then does.
    pub last_hash: Option<MessageHash>,
    /// `max_count` as given; see [`effective_limits`].
    pub max_count: Option<i64>,
    /// `max_size` as given; see [`effective_limits`].
    pub max_size: Option<i64>,
    /// `wait_ms` (a Shallot extension, "private push"): when nothing newer than `last_hash` is
    /// stored, the node may hold the request open for up to this many ms (it caps the value)
    /// and answers as soon as a message arrives. Absent, 0 or negative: answer at once.
    pub wait_ms: Option<u64>,
}

/// An authenticated retrieve's timestamp and signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrieveAuth {
    /// Request time in ms, signed and checked against the clock.
    pub timestamp: u64,
    /// The signature fields.
    pub auth: Auth,
}

impl Retrieve {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let last_hash_alias = p.string("lastHash")?;
        let last_hash = p.string("last_hash")?;
        let max_count = p.integer("max_count")?;
        let max_size = p.integer("max_size")?;
        let wait_ms = p
            .integer("wait_ms")?
            .and_then(|ms| u64::try_from(ms).ok())
            .filter(|&ms| ms > 0);
        let namespace = p.namespace("namespace")?;
        let pubkey_alias = p.string("pubKey")?;
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let signature = p.string("signature")?;
        let subaccount = p.string("subaccount")?;
        let subaccount_sig = p.string("subaccount_sig")?;
        let timestamp = p.timestamp("timestamp")?;

        let pubkey = aliased("pubkey", pubkey, "pubKey", pubkey_alias)?;
        let needs_auth = pubkey_ed25519.is_some()
            || signature.is_some()
            || timestamp.is_some()
            || namespace.is_some_and(|ns| !ns.is_public_retrieve());
        let (account, auth) = if needs_auth {
            let (account, auth) = load_auth(
                Some(pubkey),
                pubkey_ed25519,
                signature,
                subaccount,
                subaccount_sig,
            )?;
            // The reference dereferences a missing timestamp here (undefined behaviour).
            let timestamp = timestamp.ok_or(ParamError::Missing("timestamp"))?;
            (account, Some(RetrieveAuth { timestamp, auth }))
        } else {
            (load_account(Some(pubkey))?, None)
        };

        if last_hash.is_some() && last_hash_alias.is_some() {
            return Err(ParamError::Both("last_hash", "lastHash"));
        }
        let last_hash = match last_hash.or(last_hash_alias) {
            None | Some("") => None,
            Some(text) if text.len() == 43 => {
                if !is_base64(text) {
                    return Err(ParamError::LastHashNotBase64);
                }
                text.parse().ok()
            }
            Some(_) => return Err(ParamError::LastHashLength),
        };

        Ok(Self {
            account,
            namespace: namespace.unwrap_or_default(),
            auth,
            last_hash,
            max_count,
            max_size,
            wait_ms,
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("pubkey".into(), self.account.to_hex().into());
        if self.namespace != Namespace::DEFAULT {
            out.insert("namespace".into(), self.namespace.0.into());
        }
        if let Some(hash) = &self.last_hash {
            out.insert("last_hash".into(), hash.to_string().into());
        }
        if let Some(n) = self.max_count {
            out.insert("max_count".into(), n.into());
        }
        if let Some(n) = self.max_size {
            out.insert("max_size".into(), n.into());
        }
        if let Some(ms) = self.wait_ms {
            out.insert("wait_ms".into(), ms.into());
        }
        if let Some(auth) = &self.auth {
            out.insert("timestamp".into(), auth.timestamp.into());
            auth.auth.write(&mut out);
        }
        out
    }

    /// The message count and byte limits for this page (see [`effective_limits`]).
    pub fn limits(&self) -> (Option<usize>, usize) {
        effective_limits(self.max_count, self.max_size)
    }

    /// The verification inputs, if the request was authenticated.
    pub fn request_auth(&self) -> Option<RequestAuth<'_>> {
        self.auth
            .as_ref()
            .map(|a| a.auth.request_auth(&self.account))
    }

    /// What the signature covers (spec §2.7), if authenticated.
    pub fn signed_message(&self) -> Option<Vec<u8>> {
        let auth = self.auth.as_ref()?;
        Some(
            SignedRequest::Retrieve {
                namespace: self.namespace,
                timestamp: auth.timestamp,
            }
            .message(),
        )
    }
}

/// Resolves `max_count`/`max_size` into (message limit, byte budget) (spec §4.2 step 4).
///
/// 0 is the same as absent, each independently; so is a negative `max_count` (the reference
/// wraps it to a huge count that returns nothing). With both absent the size is −5. A negative
/// size −k means `7 800 000 / k`; absent or larger sizes are capped at 7 800 000.
pub fn effective_limits(max_count: Option<i64>, max_size: Option<i64>) -> (Option<usize>, usize) {
    let count = max_count
        .filter(|&n| n > 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut size = max_size.filter(|&n| n != 0);
    if count.is_none() && size.is_none() {
        size = Some(RETRIEVE_DEFAULT_SIZE);
    }
    let cap = RETRIEVE_MAX_SIZE as u64;
    let bytes = match size {
        Some(n) if n < 0 => cap / n.unsigned_abs(),
        Some(n) => n.unsigned_abs().min(cap),
        None => cap,
    };
    (count, usize::try_from(bytes).unwrap_or(RETRIEVE_MAX_SIZE))
}
