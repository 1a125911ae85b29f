//! The authentication fields shared by signed methods (storage RPC spec §2.3, §2.5, §2.6):
//! `signature`, `pubkey_ed25519`, `subaccount` and `subaccount_sig`, parsed in the reference's
//! order so that the first error matches.

use serde_json::{Map, Value};

use super::error::ParamError;
use super::fields::{parse_account, parse_ed25519, parse_signature, require};
use crate::identity::{AccountId, AccountKind, Ed25519Pub, Signature};
use crate::signing::{RequestAuth, SignedSubaccount};
use crate::subaccount::SubaccountToken;

/// A subaccount token with the account owner's signature over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedToken {
    /// The 36-byte token.
    pub token: SubaccountToken,
    /// `subaccount_sig`: the owner's signature over the token bytes.
    pub signature: Signature,
}

/// A request's authentication: the signature and what identifies the key that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth {
    /// `signature` over the method's message (spec §2.7).
    pub signature: Signature,
    /// `pubkey_ed25519`: the Ed25519 key behind a `05` (X25519) account.
    pub pubkey_ed25519: Option<Ed25519Pub>,
    /// A delegated key's token, when a subaccount signed.
    pub subaccount: Option<SignedToken>,
}

impl Auth {
    /// Authentication by the account's own key (no `pubkey_ed25519`, no subaccount).
    pub const fn new(signature: Signature) -> Self {
        Self {
            signature,
            pubkey_ed25519: None,
            subaccount: None,
        }
    }

    /// What [`RequestAuth::verify`] needs to check this authentication for `account`.
    pub fn request_auth<'a>(&'a self, account: &'a AccountId) -> RequestAuth<'a> {
        RequestAuth {
            account,
            pubkey_ed25519: self.pubkey_ed25519.as_ref(),
            subaccount: self.subaccount.as_ref().map(|s| SignedSubaccount {
                token: &s.token,
                signature: &s.signature,
            }),
            signature: &self.signature,
        }
    }

    /// Writes the auth fields into JSON params (signatures padded base64, keys hex).
    pub(crate) fn write(&self, out: &mut Map<String, Value>) {
        write_key_auth(out, &self.signature, self.pubkey_ed25519.as_ref());
        if let Some(sub) = &self.subaccount {
            out.insert(
                "subaccount".into(),
                crate::b64::encode(sub.token.as_bytes()).into(),
            );
            out.insert(
                "subaccount_sig".into(),
                crate::b64::encode(sub.signature.to_bytes()).into(),
            );
        }
    }
}

/// Writes `signature` and, if given, `pubkey_ed25519`.
pub(crate) fn write_key_auth(
    out: &mut Map<String, Value>,
    signature: &Signature,
    pubkey_ed25519: Option<&Ed25519Pub>,
) {
    out.insert(
        "signature".into(),
        crate::b64::encode(signature.to_bytes()).into(),
    );
    if let Some(ed) = pubkey_ed25519 {
        out.insert("pubkey_ed25519".into(), ed.to_hex().into());
    }
}

/// Requires and parses `pubkey` (spec §2.1).
pub(crate) fn load_account(pubkey: Option<&str>) -> Result<AccountId, ParamError> {
    parse_account(require("pubkey", pubkey)?).ok_or(ParamError::Pubkey)
}

/// The account and signing-key fields of a signed request, parsed in the reference's order:
/// `pubkey` (required, valid), `signature` (required), `pubkey_ed25519` (only for `05`
/// accounts), then the signature's encoding.
pub(crate) fn load_signed(
    pubkey: Option<&str>,
    pubkey_ed25519: Option<&str>,
    signature: Option<&str>,
) -> Result<(AccountId, Signature, Option<Ed25519Pub>), ParamError> {
    let account = load_account(pubkey)?;
    let signature = require("signature", signature)?;
    let ed = pubkey_ed25519
        .map(|text| {
            if account.kind() != AccountKind::Session {
                return Err(ParamError::Ed25519NotPermitted);
            }
            parse_ed25519(text)
        })
        .transpose()?;
    let signature = parse_signature(signature, ParamError::Signature)?;
    Ok((account, signature, ed))
}

/// `subaccount` and `subaccount_sig`; an empty or absent `subaccount` means none.
pub(crate) fn load_subaccount(
    subaccount: Option<&str>,
    subaccount_sig: Option<&str>,
) -> Result<Option<SignedToken>, ParamError> {
    let Some(text) = subaccount.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let sig = subaccount_sig.ok_or(ParamError::SubaccountSigRequired)?;
    let token = SubaccountToken::from_text(text).map_err(|_| ParamError::Subaccount)?;
    let signature = parse_signature(sig, ParamError::SubaccountSignature)?;
    Ok(Some(SignedToken { token, signature }))
}

/// Everything a signed method with subaccount support parses into [`Auth`].
pub(crate) fn load_auth(
    pubkey: Option<&str>,
    pubkey_ed25519: Option<&str>,
    signature: Option<&str>,
    subaccount: Option<&str>,
    subaccount_sig: Option<&str>,
) -> Result<(AccountId, Auth), ParamError> {
    let (account, signature, pubkey_ed25519) = load_signed(pubkey, pubkey_ed25519, signature)?;
    let subaccount = load_subaccount(subaccount, subaccount_sig)?;
    Ok((
        account,
        Auth {
            signature,
            pubkey_ed25519,
            subaccount,
        },
    ))
}
