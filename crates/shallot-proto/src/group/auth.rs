//! Member access to the group swarm (groups spec §2.2): the 100-byte `auth_data` an admin issues
//! to a member, the blinded subaccount token it contains, and the member's request signatures.
//!
//! The token key is `kT`, a blinding of the member's own Ed25519 key by a scalar `k` that only
//! admins can derive, so the swarm never learns the member's Session ID. Everything here is
//! deterministic: every admin issues the same `auth_data` for the same member and flags.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::Scalar;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::hash::{h32, h64};
use super::identity::{GroupAdmin, GroupId, SeedHash};
use crate::identity::{ed25519_seed_to_x25519_secret, Ed25519Pub, Identity, SessionId, Signature};
use crate::subaccount::{SubaccountFlags, SubaccountToken};

/// Length of `auth_data`.
pub const AUTH_DATA_LEN: usize = 100;
/// The network prefix byte of group tokens.
const GROUP_PREFIX: u8 = 0x03;

/// Why `auth_data` or a subaccount operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `auth_data` is not exactly 100 bytes.
    #[error("auth data must be {AUTH_DATA_LEN} bytes, got {0}")]
    WrongLength(usize),
    /// The token is not for `03` accounts (and does not carry the any-prefix flag).
    #[error("subaccount token is for prefix {0:#04x}, not a group")]
    WrongPrefix(u8),
    /// The token lacks a flag the caller requires (Read is always required).
    #[error("subaccount token grants {granted:#04x}, missing {missing:#04x}")]
    MissingFlags {
        /// The flags the token grants.
        granted: u8,
        /// The required flags it lacks.
        missing: u8,
    },
    /// The member key is not usable for blinding (a Session ID that is not a curve point, or a
    /// blinded key of small order).
    #[error("member key cannot be blinded")]
    BadMemberKey,
    /// The group's signature over the token does not verify: the data was not issued by this
    /// group for this member, or was altered.
    #[error("subaccount signature does not verify for this group and member")]
    BadSignature,
}

/// The 100-byte subaccount credential: `03 || flags || 00 00 || k(32) || sub_sig(64)`. Secret:
/// it lets its holder read (and usually write) the group swarm.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthData(Zeroizing<[u8; AUTH_DATA_LEN]>);

impl AuthData {
    /// Takes 100 bytes as they come from an invite or UserGroups `s`; the contents are checked
    /// by [`verify`](Self::verify).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuthError> {
        let array = <[u8; AUTH_DATA_LEN]>::try_from(bytes)
            .map_err(|_| AuthError::WrongLength(bytes.len()))?;
        Ok(Self(Zeroizing::new(array)))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; AUTH_DATA_LEN] {
        &self.0
    }

    /// The flags byte.
    pub fn flags(&self) -> SubaccountFlags {
        SubaccountFlags(self.0[1])
    }

    /// The blinding scalar `k` as stored (bytes 4..36).
    fn k_bytes(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(&self.0[4..36]);
        k
    }

    /// The group's signature over the token (`subaccount_sig`).
    pub fn subaccount_signature(&self) -> Signature {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&self.0[36..]);
        Signature::from_bytes(&sig)
    }

    /// The token this data yields for the member whose key is `member`.
    pub fn token(&self, member: &Ed25519Pub) -> Result<SubaccountToken, AuthError> {
        let (t, _) = member_point(member)?;
        let kt = noclamp_mul(&scalar_noclamp(&self.k_bytes()), &t)?;
        let mut token = [0u8; 36];
        token[..4].copy_from_slice(&self.0[..4]);
        token[4..].copy_from_slice(kt.compress().as_bytes());
        SubaccountToken::from_bytes(&token).map_err(|_| AuthError::BadMemberKey)
    }

    /// The client-side check before trusting an invite (`swarm_verify_subaccount`): group
    /// prefix (or any-prefix), Read plus `required`, and the group's signature over the token
    /// recomputed from `member`'s own key.
    pub fn verify(
        &self,
        group: &GroupId,
        member: &Identity,
        required: SubaccountFlags,
    ) -> Result<SubaccountToken, AuthError> {
        let flags = self.flags();
        if self.0[0] != GROUP_PREFIX && !flags.contains(SubaccountFlags::ANY_PREFIX) {
            return Err(AuthError::WrongPrefix(self.0[0]));
        }
        let wanted = required | SubaccountFlags::READ;
        if !flags.contains(wanted) {
            return Err(AuthError::MissingFlags {
                granted: flags.0,
                missing: wanted.0 & !flags.0,
            });
        }
        let token = self.token(&member.ed25519_public())?;
        if !token.verify(group.pubkey(), &self.subaccount_signature()) {
            return Err(AuthError::BadSignature);
        }
        Ok(token)
    }

    /// Signs a storage request (`msg` as in storage-rpc §2.7) as the member, giving the three
    /// request parameters. The signature verifies as plain Ed25519 of `msg` under the token key.
    pub fn sign_request(
        &self,
        member: &Identity,
        msg: &[u8],
    ) -> Result<SubaccountRequestAuth, AuthError> {
        Ok(self.signer(member)?.sign(msg))
    }

    /// What [`sign_request`](Self::sign_request) derives from this data and `member` before it
    /// signs (the token and the blinded signing key: point decompressions and scalar
    /// multiplications), kept to sign many requests: a group batch signs five.
    pub fn signer(&self, member: &Identity) -> Result<MemberSigner, AuthError> {
        let token = self.token(&member.ed25519_public())?;
        let (_, negate) = member_point(&member.ed25519_public())?;
        let s = Scalar::from_bytes_mod_order(*ed25519_seed_to_x25519_secret(member.seed()));
        let t = if negate { -s } else { s };
        let kt = scalar_noclamp(&self.k_bytes()) * t;
        Ok(MemberSigner {
            token,
            subaccount_signature: self.subaccount_signature(),
            kt: Zeroizing::new(kt.to_bytes()),
            hseed: Zeroizing::new(h32(b"SubaccountSeed", &[member.seed()])),
        })
    }
}

/// A member's request signer for one group ([`AuthData::signer`]). Secret: it signs as the
/// member.
#[derive(Clone)]
pub struct MemberSigner {
    token: SubaccountToken,
    subaccount_signature: Signature,
    /// The blinded signing scalar `kT` (canonical bytes).
    kt: Zeroizing<[u8; 32]>,
    /// The nonce seed.
    hseed: Zeroizing<[u8; 32]>,
}

impl MemberSigner {
    /// Signs a storage request (`msg` as in storage-rpc §2.7), as [`AuthData::sign_request`].
    pub fn sign(&self, msg: &[u8]) -> SubaccountRequestAuth {
        let kt = Scalar::from_bytes_mod_order(*self.kt);
        let blinded = &self.token.as_bytes()[4..];
        let r = Scalar::from_bytes_mod_order_wide(&h64(
            b"SubaccountSig",
            &[self.hseed.as_slice(), blinded, msg],
        ));
        let big_r = EdwardsPoint::mul_base(&r).compress();
        let challenge = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(big_r.as_bytes())
                .chain_update(blinded)
                .chain_update(msg)
                .finalize()
                .into(),
        );
        let s_part = r + challenge * kt;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(big_r.as_bytes());
        signature[32..].copy_from_slice(s_part.as_bytes());
        SubaccountRequestAuth {
            token: self.token,
            subaccount_signature: self.subaccount_signature,
            signature: Signature::from_bytes(&signature),
        }
    }
}

impl std::fmt::Debug for MemberSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberSigner")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AuthData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthData(flags {:#04x})", self.0[1])
    }
}

/// The parameters a member adds to a storage request: `subaccount`, `subaccount_sig`,
/// `signature` (with `pubkey` = the group ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubaccountRequestAuth {
    /// The 36-byte token.
    pub token: SubaccountToken,
    /// The group's signature over the token.
    pub subaccount_signature: Signature,
    /// The request signature under the token key.
    pub signature: Signature,
}

/// `libsodium`'s noclamp scalar: the 32 bytes with bit 255 ignored, reduced mod L.
fn scalar_noclamp(bytes: &[u8; 32]) -> Scalar {
    let mut b = *bytes;
    b[31] &= 0x7f;
    Scalar::from_bytes_mod_order(b)
}

/// `crypto_scalarmult_ed25519_noclamp`, which refuses small-order results.
fn noclamp_mul(k: &Scalar, point: &EdwardsPoint) -> Result<EdwardsPoint, AuthError> {
    let out = k * point;
    if out.is_small_order() {
        return Err(AuthError::BadMemberKey);
    }
    Ok(out)
}

/// The member's Ed25519 point with the sign bit cleared, and whether it was set.
fn member_point(member: &Ed25519Pub) -> Result<(EdwardsPoint, bool), AuthError> {
    let mut bytes = *member.as_bytes();
    let negate = bytes[31] & 0x80 != 0;
    bytes[31] &= 0x7f;
    let point = CompressedEdwardsY(bytes)
        .decompress()
        .filter(EdwardsPoint::is_torsion_free)
        .ok_or(AuthError::BadMemberKey)?;
    Ok((point, negate))
}

/// The admin side: `k`, the blinding scalar for `member` in this group.
fn blinding_scalar(admin: &GroupAdmin, member: &SessionId) -> Scalar {
    let mask = admin.seed_hash(SeedHash::SubaccountMask);
    let hash = h64(
        mask.as_slice(),
        &[
            &[0x05],
            member.x25519().as_bytes(),
            &[GROUP_PREFIX],
            admin.id().pubkey().as_bytes(),
        ],
    );
    Scalar::from_bytes_mod_order_wide(&hash)
}

/// `xed25519_pubkey(X)`: the Ed25519 point with sign bit 0 whose Montgomery form is `X`.
fn xed25519_point(member: &SessionId) -> Result<EdwardsPoint, AuthError> {
    MontgomeryPoint(*member.x25519().as_bytes())
        .to_edwards(0)
        .filter(EdwardsPoint::is_torsion_free)
        .ok_or(AuthError::BadMemberKey)
}

/// The token `member` gets with `flags` (`swarm_subaccount_token`), without their help: what an
/// admin revokes and unrevokes. Revocation matches whole tokens, so use the issued flags.
pub fn subaccount_token(
    admin: &GroupAdmin,
    member: &SessionId,
    flags: SubaccountFlags,
) -> Result<SubaccountToken, AuthError> {
    let kt = noclamp_mul(&blinding_scalar(admin, member), &xed25519_point(member)?)?;
    let mut token = [0u8; 36];
    token[0] = GROUP_PREFIX;
    token[1] = flags.0;
    token[4..].copy_from_slice(kt.compress().as_bytes());
    SubaccountToken::from_bytes(&token).map_err(|_| AuthError::BadMemberKey)
}

/// The `auth_data` an admin issues to `member` (`swarm_make_subaccount`); libsession's default
/// flags are Read | Write.
pub fn make_auth_data(
    admin: &GroupAdmin,
    member: &SessionId,
    flags: SubaccountFlags,
) -> Result<AuthData, AuthError> {
    let token = subaccount_token(admin, member, flags)?;
    let mut data = Zeroizing::new([0u8; AUTH_DATA_LEN]);
    data[..4].copy_from_slice(&token.as_bytes()[..4]);
    data[4..36].copy_from_slice(blinding_scalar(admin, member).as_bytes());
    data[36..].copy_from_slice(&admin.sign(token.as_bytes()).to_bytes());
    Ok(AuthData(data))
}
