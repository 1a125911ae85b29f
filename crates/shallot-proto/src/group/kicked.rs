//! The "kicked" notice (namespace −11, groups spec §5.5): admins tell removed members, who may
//! still read −11 after revocation, that they were removed. Each removed member's entry is its
//! X25519 key and the key generation before the removal, multi-encrypted from the group's X25519
//! key with domain `SessionGroupKickedMessage`, in the simple container.

use rand_core::CryptoRngCore;

use super::identity::{GroupAdmin, GroupId};
use super::multi::{
    decrypt_for_multiple, encrypt_for_multiple, ContainerError, MultiContainer, NONCE_LEN,
};
use crate::identity::{Identity, SessionId};

const DOMAIN: &[u8] = b"SessionGroupKickedMessage";

/// Builds the notice for `removed` with the current (pre-removal) generation.
pub fn kicked_notice<R: CryptoRngCore + ?Sized>(
    admin: &GroupAdmin,
    removed: &[SessionId],
    generation: u64,
    rng: &mut R,
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    kicked_notice_with_nonce(admin, removed, generation, &nonce)
}

/// [`kicked_notice`] with a given nonce (for test vectors).
pub fn kicked_notice_with_nonce(
    admin: &GroupAdmin,
    removed: &[SessionId],
    generation: u64,
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    let keys: Vec<_> = removed.iter().map(|id| *id.x25519()).collect();
    let plaintexts: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| [k.as_bytes().as_slice(), generation.to_string().as_bytes()].concat())
        .collect();
    let ciphertexts = encrypt_for_multiple(admin.x25519_secret(), &keys, nonce, DOMAIN, |i| {
        &plaintexts[i]
    });
    MultiContainer {
        nonce: *nonce,
        ciphertexts,
    }
    .encode()
}

/// Why a −11 message does not kick us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KickedError {
    /// Not a multi-recipient container.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// No entry is for us.
    #[error("the notice is not for this member")]
    NotForUs,
    /// Our entry is not `our key || decimal generation`.
    #[error("malformed kicked entry")]
    Malformed,
    /// The notice predates our current keys (an old removal before a re-invite).
    #[error("stale kicked notice for generation {notice}, current {current}")]
    Stale {
        /// Generation in the notice.
        notice: u64,
        /// Our current generation.
        current: u64,
    },
}

/// The member side: `Ok(())` if `notice` says we were removed at or after `current_generation`
/// (our newest key's generation, if any).
pub fn check_kicked(
    notice: &[u8],
    me: &Identity,
    group: &GroupId,
    current_generation: Option<u64>,
) -> Result<(), KickedError> {
    let container = MultiContainer::parse(notice)?;
    let sender = group.x25519().map_err(|_| KickedError::NotForUs)?;
    let plain = decrypt_for_multiple(
        container.ciphertexts.iter().map(Vec::as_slice),
        &container.nonce,
        me.x25519_secret(),
        &sender,
        DOMAIN,
    )
    .ok_or(KickedError::NotForUs)?;
    let (key, generation) = plain.split_at_checked(32).ok_or(KickedError::Malformed)?;
    if key != me.x25519_public().as_bytes() {
        return Err(KickedError::Malformed);
    }
    let notice_gen: u64 = std::str::from_utf8(generation)
        .ok()
        .filter(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|g| g.parse().ok())
        .ok_or(KickedError::Malformed)?;
    match current_generation {
        Some(current) if notice_gen < current => Err(KickedError::Stale {
            notice: notice_gen,
            current,
        }),
        _ => Ok(()),
    }
}
