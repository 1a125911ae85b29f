//! The exact byte strings that are signed in the storage protocol: what clients sign to
//! authenticate a request (storage RPC spec §2.7), what swarm members sign in their replies (§2.8),
//! and the common verification algorithm (§2.5).
//!
//! All numbers are rendered as decimal text; hashes as their 43-character base64 text. Lists of
//! hashes that the spec calls "sorted" are sorted here, by their text, so callers cannot forget.

use crate::identity::{AccountId, AccountKind, Ed25519Pub, Signature};
use crate::message_hash::{MessageHash, RequestedHash};
use crate::namespace::{Namespace, NamespaceSelector};
use crate::subaccount::{SubaccountFlags, SubaccountToken};

/// Which expiry changes an `expire` request allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireMode {
    /// Only shorten (`"shorten"`).
    Shorten,
    /// Only extend (`"extend"`).
    Extend,
    /// Set to the given value either way (`""`).
    Set,
}

impl ExpireMode {
    /// The text the mode contributes to the signature.
    pub const fn sig_text(self) -> &'static str {
        match self {
            Self::Shorten => "shorten",
            Self::Extend => "extend",
            Self::Set => "",
        }
    }
}

/// A client request whose signature the storage server verifies (spec §2.7).
#[derive(Clone, Copy, Debug)]
pub enum SignedRequest<'a> {
    /// `"store" ‖ NS ‖ sig_timestamp` (non-public namespaces only).
    Store {
        /// Namespace stored into.
        namespace: Namespace,
        /// `sig_timestamp`, or else the message `timestamp` (ms).
        sig_timestamp: u64,
    },
    /// `"retrieve" ‖ NS ‖ timestamp`.
    Retrieve {
        /// Namespace read.
        namespace: Namespace,
        /// Request time (ms).
        timestamp: u64,
    },
    /// `"delete" ‖ hashes…` in request order.
    Delete {
        /// Hashes as sent.
        messages: &'a [RequestedHash],
    },
    /// `"delete_all" ‖ NSV ‖ timestamp`.
    DeleteAll {
        /// Namespace or all.
        namespaces: NamespaceSelector,
        /// Request time (ms).
        timestamp: u64,
    },
    /// `"delete_before" ‖ NSV ‖ before`.
    DeleteBefore {
        /// Namespace or all.
        namespaces: NamespaceSelector,
        /// Delete messages stored before this time (ms).
        before: u64,
    },
    /// `"expire_all" ‖ NSV ‖ expiry`.
    ExpireAll {
        /// Namespace or all.
        namespaces: NamespaceSelector,
        /// New expiry (ms).
        expiry: u64,
    },
    /// `"expire" ‖ mode ‖ expiries ‖ hashes…`.
    Expire {
        /// Shorten, extend or set.
        mode: ExpireMode,
        /// One expiry, or one per message (concatenated without separator).
        expiries: &'a [u64],
        /// Hashes as sent.
        messages: &'a [RequestedHash],
    },
    /// `"get_expiries" ‖ timestamp ‖ hashes…` (hashes are not validated by this method).
    GetExpiries {
        /// Request time (ms).
        timestamp: u64,
        /// Hash strings exactly as sent.
        messages: &'a [&'a str],
    },
    /// `"revoke_subaccount" ‖ timestamp ‖ tokens…`.
    RevokeSubaccount {
        /// Request time (ms).
        timestamp: u64,
        /// Tokens in request order.
        tokens: &'a [SubaccountToken],
    },
    /// `"unrevoke_subaccount" ‖ timestamp ‖ tokens…`.
    UnrevokeSubaccount {
        /// Request time (ms).
        timestamp: u64,
        /// Tokens in request order.
        tokens: &'a [SubaccountToken],
    },
    /// `"MONITOR" ‖ account hex ‖ t (seconds) ‖ "0"/"1" ‖ namespaces joined by ","`.
    Monitor {
        /// Account subscribed to.
        account: &'a AccountId,
        /// Request time in **seconds**.
        timestamp_s: u64,
        /// Whether notifications carry message data.
        want_data: bool,
        /// Namespaces subscribed to, sorted as sent.
        namespaces: &'a [Namespace],
    },
}

fn push_hashes(out: &mut Vec<u8>, hashes: &[RequestedHash]) {
    for hash in hashes {
        out.extend_from_slice(hash.to_string().as_bytes());
    }
}

/// Appends hash texts in ASCII order (the order of the text, not of the raw digests).
fn push_sorted(out: &mut Vec<u8>, hashes: &[MessageHash]) {
    let mut texts: Vec<String> = hashes.iter().map(ToString::to_string).collect();
    texts.sort_unstable();
    for text in texts {
        out.extend_from_slice(text.as_bytes());
    }
}

impl SignedRequest<'_> {
    /// The bytes the account key (or subaccount key) signs.
    pub fn message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match *self {
            Self::Store {
                namespace,
                sig_timestamp,
            } => {
                out.extend_from_slice(
                    format!("store{}{sig_timestamp}", namespace.sig_text()).as_bytes(),
                );
            }
            Self::Retrieve {
                namespace,
                timestamp,
            } => {
                out.extend_from_slice(
                    format!("retrieve{}{timestamp}", namespace.sig_text()).as_bytes(),
                );
            }
            Self::Delete { messages } => {
                out.extend_from_slice(b"delete");
                push_hashes(&mut out, messages);
            }
            Self::DeleteAll {
                namespaces,
                timestamp,
            } => {
                out.extend_from_slice(
                    format!("delete_all{}{timestamp}", namespaces.sig_text()).as_bytes(),
                );
            }
            Self::DeleteBefore { namespaces, before } => {
                out.extend_from_slice(
                    format!("delete_before{}{before}", namespaces.sig_text()).as_bytes(),
                );
            }
            Self::ExpireAll { namespaces, expiry } => {
                out.extend_from_slice(
                    format!("expire_all{}{expiry}", namespaces.sig_text()).as_bytes(),
                );
            }
            Self::Expire {
                mode,
                expiries,
                messages,
            } => {
                out.extend_from_slice(b"expire");
                out.extend_from_slice(mode.sig_text().as_bytes());
                for expiry in expiries {
                    out.extend_from_slice(expiry.to_string().as_bytes());
                }
                push_hashes(&mut out, messages);
            }
            Self::GetExpiries {
                timestamp,
                messages,
            } => {
                out.extend_from_slice(format!("get_expiries{timestamp}").as_bytes());
                for hash in messages {
                    out.extend_from_slice(hash.as_bytes());
                }
            }
            Self::RevokeSubaccount { timestamp, tokens } => {
                out.extend_from_slice(format!("revoke_subaccount{timestamp}").as_bytes());
                for token in tokens {
                    out.extend_from_slice(token.as_bytes());
                }
            }
            Self::UnrevokeSubaccount { timestamp, tokens } => {
                out.extend_from_slice(format!("unrevoke_subaccount{timestamp}").as_bytes());
                for token in tokens {
                    out.extend_from_slice(token.as_bytes());
                }
            }
            Self::Monitor {
                account,
                timestamp_s,
                want_data,
                namespaces,
            } => {
                let ns: Vec<String> = namespaces.iter().map(ToString::to_string).collect();
                out.extend_from_slice(
                    format!(
                        "MONITOR{}{timestamp_s}{}{}",
                        account.to_hex(),
                        u8::from(want_data),
                        ns.join(",")
                    )
                    .as_bytes(),
                );
            }
        }
        out
    }
}

/// A swarm member's reply that it signs with its Ed25519 key (spec §2.8).
#[derive(Clone, Copy, Debug)]
pub enum SignedResponse<'a> {
    /// The stored message's hash text.
    Store {
        /// Hash of the stored message.
        hash: &'a MessageHash,
    },
    /// `PUBKEY_HEX ‖ requested… ‖ deleted… (sorted)`.
    Delete {
        /// Account.
        account: &'a AccountId,
        /// Hashes in request order, as sent.
        requested: &'a [RequestedHash],
        /// Hashes actually deleted (any order; sorted here).
        deleted: &'a [MessageHash],
    },
    /// `PUBKEY_HEX ‖ timestamp ‖ deleted… (sorted)`.
    DeleteAll {
        /// Account.
        account: &'a AccountId,
        /// Request timestamp.
        timestamp: u64,
        /// Hashes deleted (any order; sorted here).
        deleted: &'a [MessageHash],
    },
    /// `PUBKEY_HEX ‖ before ‖ deleted… (sorted)`.
    DeleteBefore {
        /// Account.
        account: &'a AccountId,
        /// Request `before`.
        before: u64,
        /// Hashes deleted (any order; sorted here).
        deleted: &'a [MessageHash],
    },
    /// `PUBKEY_HEX ‖ expiry ‖ updated… (sorted)`.
    ExpireAll {
        /// Account.
        account: &'a AccountId,
        /// Expiry as requested.
        expiry: u64,
        /// Hashes whose expiry changed (any order; sorted here).
        updated: &'a [MessageHash],
    },
    /// `PUBKEY_HEX ‖ EXP' ‖ requested… ‖ updated… (sorted) ‖ (hash ‖ expiry) for unchanged (sorted)`.
    Expire {
        /// Account.
        account: &'a AccountId,
        /// For a single-expiry request, the applied (clamped) expiry; `None` for a per-message
        /// request, where EXP' is the applied expiries of `updated` in hash-sorted order.
        single_expiry: Option<u64>,
        /// Hashes in request order, as sent.
        requested: &'a [RequestedHash],
        /// Updated hashes with their applied expiry (any order; sorted here).
        updated: &'a [(MessageHash, u64)],
        /// Unchanged hashes with their current expiry (any order; sorted here).
        unchanged: &'a [(MessageHash, u64)],
    },
    /// `PUBKEY_HEX ‖ timestamp ‖ tokens…` (request order).
    RevokeSubaccount {
        /// Account.
        account: &'a AccountId,
        /// Request timestamp.
        timestamp: u64,
        /// Tokens in request order.
        tokens: &'a [SubaccountToken],
    },
    /// Same layout as [`SignedResponse::RevokeSubaccount`].
    UnrevokeSubaccount {
        /// Account.
        account: &'a AccountId,
        /// Request timestamp.
        timestamp: u64,
        /// Tokens in request order.
        tokens: &'a [SubaccountToken],
    },
}

impl SignedResponse<'_> {
    /// The bytes the node's Ed25519 key signs.
    pub fn message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        match *self {
            Self::Store { hash } => out.extend_from_slice(hash.to_string().as_bytes()),
            Self::Delete {
                account,
                requested,
                deleted,
            } => {
                out.extend_from_slice(account.to_hex().as_bytes());
                push_hashes(&mut out, requested);
                push_sorted(&mut out, deleted);
            }
            Self::DeleteAll {
                account,
                timestamp: number,
                deleted: hashes,
            }
            | Self::DeleteBefore {
                account,
                before: number,
                deleted: hashes,
            }
            | Self::ExpireAll {
                account,
                expiry: number,
                updated: hashes,
            } => {
                out.extend_from_slice(format!("{}{number}", account.to_hex()).as_bytes());
                push_sorted(&mut out, hashes);
            }
            Self::Expire {
                account,
                single_expiry,
                requested,
                updated,
                unchanged,
            } => {
                let mut updated: Vec<(String, u64)> =
                    updated.iter().map(|(h, e)| (h.to_string(), *e)).collect();
                updated.sort_unstable();
                let mut unchanged: Vec<(String, u64)> =
                    unchanged.iter().map(|(h, e)| (h.to_string(), *e)).collect();
                unchanged.sort_unstable();

                out.extend_from_slice(account.to_hex().as_bytes());
                match single_expiry {
                    Some(expiry) => out.extend_from_slice(expiry.to_string().as_bytes()),
                    None => {
                        for (_, expiry) in &updated {
                            out.extend_from_slice(expiry.to_string().as_bytes());
                        }
                    }
                }
                push_hashes(&mut out, requested);
                for (hash, _) in &updated {
                    out.extend_from_slice(hash.as_bytes());
                }
                for (hash, expiry) in &unchanged {
                    out.extend_from_slice(format!("{hash}{expiry}").as_bytes());
                }
            }
            Self::RevokeSubaccount {
                account,
                timestamp,
                tokens,
            }
            | Self::UnrevokeSubaccount {
                account,
                timestamp,
                tokens,
            } => {
                out.extend_from_slice(format!("{}{timestamp}", account.to_hex()).as_bytes());
                for token in tokens {
                    out.extend_from_slice(token.as_bytes());
                }
            }
        }
        out
    }
}

/// Why a request's authentication failed. Nodes answer every variant with the same 401 text; the
/// detail is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `pubkey_ed25519` does not convert to the account's X25519 key.
    #[error("pubkey_ed25519 does not match the account")]
    Ed25519Mismatch,
    /// The subaccount token has been revoked for this account.
    #[error("subaccount token revoked")]
    Revoked,
    /// The token is for accounts of another prefix.
    #[error("subaccount token is for another account type")]
    WrongPrefix,
    /// The token lacks a required permission.
    #[error("subaccount token lacks the required permission")]
    MissingPermission,
    /// The owner's signature over the token is invalid.
    #[error("subaccount signature invalid")]
    BadSubaccountSignature,
    /// The request signature is invalid.
    #[error("signature invalid")]
    BadSignature,
}

/// A subaccount token presented with a request, and the owner's signature over it.
#[derive(Clone, Copy, Debug)]
pub struct SignedSubaccount<'a> {
    /// The token.
    pub token: &'a SubaccountToken,
    /// The owner's signature over the token bytes.
    pub signature: &'a Signature,
}

/// Everything needed to check a request's signature (spec §2.5).
#[derive(Clone, Copy, Debug)]
pub struct RequestAuth<'a> {
    /// The account the request acts on.
    pub account: &'a AccountId,
    /// `pubkey_ed25519`, given for `05` accounts.
    pub pubkey_ed25519: Option<&'a Ed25519Pub>,
    /// A subaccount token, when a delegate signs.
    pub subaccount: Option<SignedSubaccount<'a>>,
    /// The request signature.
    pub signature: &'a Signature,
}

impl RequestAuth<'_> {
    /// Runs the common verification algorithm: resolve the account's Ed25519 key, check the
    /// subaccount (unless `is_revoked` says it was revoked), then the request signature over `message`.
    pub fn verify(
        &self,
        message: &[u8],
        required: SubaccountFlags,
        is_revoked: impl FnOnce(&SubaccountToken) -> bool,
    ) -> Result<(), AuthError> {
        self.verify_with(message, required, is_revoked, |owner, token, signature| {
            token.verify(owner, signature)
        })
    }

    /// [`Self::verify`], with the owner's signature over a subaccount token checked by
    /// `token_valid(owner key, token, signature)`: a node remembers the tokens it verified, as
    /// a group member signs every request with the same one.
    pub fn verify_with(
        &self,
        message: &[u8],
        required: SubaccountFlags,
        is_revoked: impl FnOnce(&SubaccountToken) -> bool,
        token_valid: impl FnOnce(&Ed25519Pub, &SubaccountToken, &Signature) -> bool,
    ) -> Result<(), AuthError> {
        let account_key = match (self.pubkey_ed25519, self.account.kind()) {
            (Some(ed), AccountKind::Session) => {
                let x = ed.to_x25519().map_err(|_| AuthError::Ed25519Mismatch)?;
                if x.as_bytes() != self.account.key() {
                    return Err(AuthError::Ed25519Mismatch);
                }
                *ed
            }
            _ => Ed25519Pub::from_bytes(*self.account.key()),
        };
        let signer = match self.subaccount {
            None => account_key,
            Some(SignedSubaccount { token, signature }) => {
                if is_revoked(token) {
                    return Err(AuthError::Revoked);
                }
                if token.prefix() != self.account.prefix()
                    && !token.flags().contains(SubaccountFlags::ANY_PREFIX)
                {
                    return Err(AuthError::WrongPrefix);
                }
                if !token.flags().contains(required) {
                    return Err(AuthError::MissingPermission);
                }
                if !token_valid(&account_key, token, signature) {
                    return Err(AuthError::BadSubaccountSignature);
                }
                token.subaccount_key()
            }
        };
        if signer.verify(message, self.signature) {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        }
    }
}
