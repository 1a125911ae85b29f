//! Who may change stakes on the devnet chain (issue #10, directory hardening).
//!
//! A stake-changing call (`devnet_register_service_node`, `devnet_contribute`,
//! `devnet_request_unlock`) is accepted on the public listener only when signed by the
//! **devnet wallet** whose address it acts for; the admin listener (token in a 0600 file)
//! accepts it unsigned, for any address label.
//!
//! * A devnet wallet is an Ed25519 key. Its address is `dw` followed by the 64-hex public
//!   key ([`Address::wallet`]), so the directory recovers the key from the address alone.
//! * The signed message is a domain tag followed by a bencoded dict of the method, every
//!   parameter that changes the outcome, a timestamp `t` and a 16-byte random nonce `n`
//!   ([`StakeAction::signing_bytes`]).
//! * The directory accepts `t` within ±[`AUTH_WINDOW_SECS`] of its clock and each
//!   (signer, nonce) once ([`NonceCache`]); a replay inside the window is refused, one outside
//!   it is stale.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;
/// A devnet wallet's private key (re-exported for callers that sign).
pub use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use shallot_directory::proof::{Bencode, Sig};
use shallot_proto::Ed25519Pub;

use crate::state::{Address, Reservation};

/// Prefix of a devnet wallet address (`dw` + 64 hex of the wallet's Ed25519 key).
pub const WALLET_PREFIX: &str = "dw";
/// A signed call's timestamp must be within this many seconds of the directory's clock.
pub const AUTH_WINDOW_SECS: u64 = 300;
/// At most this many (signer, nonce) pairs are remembered; past it, new signed calls are
/// refused until old ones leave the window (bounds memory: ~100 bytes each).
pub const MAX_REMEMBERED_NONCES: usize = 100_000;
/// Domain tag in front of every signed stake message (so no other signed format collides).
const DOMAIN: &[u8] = b"shallot-devnet-wallet-v1:";
/// File name of the admin token inside the directory's data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

impl Address {
    /// The address of the devnet wallet with public key `key`.
    pub fn wallet(key: &Ed25519Pub) -> Self {
        Self(format!("{WALLET_PREFIX}{}", key.to_hex()))
    }

    /// The wallet key behind a `dw…` address; `None` for labels (admin-only addresses).
    pub fn wallet_key(&self) -> Option<Ed25519Pub> {
        let hex = self.0.strip_prefix(WALLET_PREFIX)?;
        if hex.len() != 64 {
            return None;
        }
        let key: Ed25519Pub = hex.parse().ok()?;
        key.to_x25519().ok()?;
        Some(key)
    }
}

/// The authentication part of a signed call: `params.auth`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// Unix time of signing (seconds).
    pub t: u64,
    /// 16 random bytes, hex: makes each signed call unique.
    pub nonce: String,
    /// Ed25519 signature by the acting address's wallet key over
    /// [`StakeAction::signing_bytes`].
    pub signature: Sig,
}

/// A stake-changing call, as signed.
#[derive(Clone, Copy, Debug)]
pub enum StakeAction<'a> {
    /// `devnet_register_service_node`; signed by the operator (first reservation).
    Register {
        /// The node.
        pubkey: &'a Ed25519Pub,
        /// Operator fee, basis points.
        operator_fee_bp: u16,
        /// Reserved spots, operator first.
        reservations: &'a [Reservation],
        /// The operator's stake.
        operator_amount: u64,
    },
    /// `devnet_contribute`; signed by the contributor.
    Contribute {
        /// The node.
        pubkey: &'a Ed25519Pub,
        /// Contributor.
        address: &'a Address,
        /// Amount.
        amount: u64,
    },
    /// `devnet_request_unlock`; signed by the contributor.
    Unlock {
        /// The node.
        pubkey: &'a Ed25519Pub,
        /// Contributor.
        address: &'a Address,
    },
}

impl StakeAction<'_> {
    /// The JSON-RPC method.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Register { .. } => "devnet_register_service_node",
            Self::Contribute { .. } => "devnet_contribute",
            Self::Unlock { .. } => "devnet_request_unlock",
        }
    }

    /// The address whose wallet must sign.
    pub fn signer(&self) -> Option<&Address> {
        match self {
            Self::Register { reservations, .. } => reservations.first().map(|r| &r.address),
            Self::Contribute { address, .. } | Self::Unlock { address, .. } => Some(address),
        }
    }

    /// The canonical signed bytes: domain tag, then the bencoded dict
    /// `{a: address | operator amount, f: fee, m: method, n: nonce, p: node key,
    /// r: [[address, amount]…], t, v: amount}` with the keys the method has.
    pub fn signing_bytes(&self, t: u64, nonce: &[u8]) -> Vec<u8> {
        let mut b = Bencode(DOMAIN.to_vec());
        b.mark(b'd');
        match self {
            Self::Register {
                pubkey,
                operator_fee_bp,
                reservations,
                operator_amount,
            } => {
                b.bytes(b"a").int(*operator_amount);
                b.bytes(b"f").int(u64::from(*operator_fee_bp));
                b.bytes(b"m").bytes(self.method().as_bytes());
                b.bytes(b"n").bytes(nonce);
                b.bytes(b"p").bytes(pubkey.as_bytes());
                b.bytes(b"r").mark(b'l');
                for r in *reservations {
                    b.mark(b'l').bytes(r.address.0.as_bytes()).int(r.amount);
                    b.mark(b'e');
                }
                b.mark(b'e');
                b.bytes(b"t").int(t);
            }
            Self::Contribute {
                pubkey,
                address,
                amount,
            } => {
                b.bytes(b"a").bytes(address.0.as_bytes());
                b.bytes(b"m").bytes(self.method().as_bytes());
                b.bytes(b"n").bytes(nonce);
                b.bytes(b"p").bytes(pubkey.as_bytes());
                b.bytes(b"t").int(t);
                b.bytes(b"v").int(*amount);
            }
            Self::Unlock { pubkey, address } => {
                b.bytes(b"a").bytes(address.0.as_bytes());
                b.bytes(b"m").bytes(self.method().as_bytes());
                b.bytes(b"n").bytes(nonce);
                b.bytes(b"p").bytes(pubkey.as_bytes());
                b.bytes(b"t").int(t);
            }
        }
        b.mark(b'e');
        b.0
    }

    /// Signs with `wallet` at time `t` with a fresh random nonce.
    pub fn sign(&self, wallet: &SigningKey, t: u64) -> Auth {
        let nonce: [u8; 16] = rand::random();
        let signature = Sig(wallet.sign(&self.signing_bytes(t, &nonce)).to_bytes());
        Auth {
            t,
            nonce: hex::encode(nonce),
            signature,
        }
    }
}

/// Why a signed call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `auth` on the public listener.
    #[error(
        "{method} changes stakes: it needs params.auth signed by the wallet of {who} \
         (a dw… address), or the directory's admin listener"
    )]
    Missing {
        /// The method.
        method: &'static str,
        /// The address that must sign.
        who: String,
    },
    /// The acting address is a label, not a wallet address.
    #[error("address {0} is not a devnet wallet address (dw + 64 hex); only the admin listener may use labels")]
    NotWallet(String),
    /// Signature invalid.
    #[error("invalid wallet signature")]
    BadSignature,
    /// Timestamp outside the window.
    #[error("auth.t is more than {AUTH_WINDOW_SECS} s away from the directory's clock")]
    Stale,
    /// The (signer, nonce) pair was used already.
    #[error("replayed request: this signed call was already received")]
    Replayed,
    /// Too many signed calls in the window.
    #[error("too many signed calls in the last {AUTH_WINDOW_SECS} s; retry later")]
    Busy,
}

/// Remembers the (signer, nonce) pairs seen within the window.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<(Ed25519Pub, [u8; 16]), u64>,
}

impl NonceCache {
    /// Checks a signed call at directory time `now` and, if it is new, remembers it.
    pub fn check(
        &mut self,
        action: &StakeAction<'_>,
        auth: &Auth,
        now: u64,
    ) -> Result<(), AuthError> {
        let signer = action.signer().ok_or(AuthError::BadSignature)?.clone();
        let key = signer
            .wallet_key()
            .ok_or_else(|| AuthError::NotWallet(signer.0.clone()))?;
        let mut nonce = [0u8; 16];
        hex::decode_to_slice(&auth.nonce, &mut nonce).map_err(|_| AuthError::BadSignature)?;
        let signature = ed25519_dalek::Signature::from_bytes(&auth.signature.0);
        if !key.verify(&action.signing_bytes(auth.t, &nonce), &signature) {
            return Err(AuthError::BadSignature);
        }
        if auth.t.abs_diff(now) > AUTH_WINDOW_SECS {
            return Err(AuthError::Stale);
        }
        if self.seen.contains_key(&(key, nonce)) {
            return Err(AuthError::Replayed);
        }
        if self.seen.len() >= MAX_REMEMBERED_NONCES {
            // Entries older than the window can never match a fresh call again.
            self.seen
                .retain(|_, t| t.saturating_add(AUTH_WINDOW_SECS) >= now);
            if self.seen.len() >= MAX_REMEMBERED_NONCES {
                return Err(AuthError::Busy);
            }
        }
        self.seen.insert((key, nonce), auth.t);
        Ok(())
    }

    /// Pairs remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Where the admin token of a directory with data dir `dir` is kept.
pub fn admin_token_path(dir: &Path) -> PathBuf {
    dir.join(ADMIN_TOKEN_FILE)
}

/// Reads the admin token in `dir`, creating it (32 random bytes, hex, mode 0600) if missing.
pub fn load_or_create_admin_token(dir: &Path) -> std::io::Result<String> {
    let path = admin_token_path(dir);
    std::fs::create_dir_all(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            let token = hex::encode(rand::random::<[u8; 32]>());
            file.write_all(token.as_bytes())?;
            file.sync_all()?;
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let token = std::fs::read_to_string(&path)?.trim().to_owned();
            if token.len() < 32 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} holds no usable token", path.display()),
                ));
            }
            Ok(token)
        }
        Err(e) => Err(e),
    }
}

/// Whether `presented` equals `token`, compared without an early exit.
pub fn token_matches(token: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    token.len() == presented.len() && bool::from(token.as_bytes().ct_eq(presented.as_bytes()))
}

/// A devnet wallet key file: the 32-byte Ed25519 seed in hex.
pub fn load_or_create_wallet(path: &Path) -> std::io::Result<SigningKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path)?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a devnet wallet (64 hex)", path.display()),
            )
        })?;
        return Ok(SigningKey::from_bytes(&seed));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let seed: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(hex::encode(seed).as_bytes())?;
    file.sync_all()?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The address of a wallet signing key.
pub fn wallet_address(key: &SigningKey) -> Address {
    Address::wallet(&Ed25519Pub::from_bytes(key.verifying_key().to_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn wallet(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    #[test]
    fn addresses_bind_keys_and_labels_have_none() {
        let w = wallet(1);
        let address = wallet_address(&w);
        assert!(address.0.starts_with("dw") && address.0.len() == 66);
        assert_eq!(
            address.wallet_key().unwrap().as_bytes(),
            &w.verifying_key().to_bytes()
        );
        assert_eq!(Address("operator1".into()).wallet_key(), None);
        assert_eq!(Address("dw1234".into()).wallet_key(), None);
    }

    #[test]
    fn signed_calls_verify_once_and_only_unchanged_within_the_window() {
        let w = wallet(2);
        let address = wallet_address(&w);
        let node = Ed25519Pub::from_bytes(wallet(9).verifying_key().to_bytes());
        let action = StakeAction::Unlock {
            pubkey: &node,
            address: &address,
        };
        let mut cache = NonceCache::default();
        let auth = action.sign(&w, 1000);
        assert_eq!(cache.check(&action, &auth, 1010), Ok(()));
        assert_eq!(cache.check(&action, &auth, 1011), Err(AuthError::Replayed));
        // Another call by the same wallet gets its own nonce.
        assert_eq!(cache.check(&action, &action.sign(&w, 1001), 1011), Ok(()));
        // Out of the window.
        let old = action.sign(&w, 1000);
        assert_eq!(
            cache.check(&action, &old, 1000 + AUTH_WINDOW_SECS + 1),
            Err(AuthError::Stale)
        );
        // Another method or other params with the same signature fail.
        let contribute = StakeAction::Contribute {
            pubkey: &node,
            address: &address,
            amount: 5,
        };
        let auth = action.sign(&w, 1000);
        assert_eq!(
            cache.check(&contribute, &auth, 1000),
            Err(AuthError::BadSignature)
        );
        // Someone else's wallet cannot act for this address.
        let forged = action.sign(&wallet(3), 1000);
        assert_eq!(
            cache.check(&action, &forged, 1000),
            Err(AuthError::BadSignature)
        );
        // A label address cannot be signed for.
        let label = Address("operator1".into());
        let labelled = StakeAction::Unlock {
            pubkey: &node,
            address: &label,
        };
        assert!(matches!(
            cache.check(&labelled, &labelled.sign(&w, 1000), 1000),
            Err(AuthError::NotWallet(_))
        ));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_admin_token_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let token = load_or_create_admin_token(dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(load_or_create_admin_token(dir.path()).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(admin_token_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(token_matches(&token, &token.clone()));
        assert!(!token_matches(&token, "nope"));
    }
}
