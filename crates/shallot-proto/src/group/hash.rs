//! The keyed BLAKE2b hashes of the groups protocol (groups spec §0): the key is an ASCII
//! string used as the BLAKE2b *key*, and the output length varies (24, 32, 56 or 64 bytes).

use blake2::digest::consts::{U24, U32, U56, U64};
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac;

/// Keyed BLAKE2b over the concatenation of `parts`; `key` must be at most 64 bytes (every key
/// used here is a short constant or a 32-byte hash).
fn keyed<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> blake2::digest::Output<M> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("BLAKE2b keys are at most 64 bytes");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes()
}

/// `H_24(parts; key)`.
pub(crate) fn h24(key: &[u8], parts: &[&[u8]]) -> [u8; 24] {
    keyed::<Blake2bMac<U24>>(key, parts).into()
}

/// `H_32(parts; key)`.
pub(crate) fn h32(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    keyed::<Blake2bMac<U32>>(key, parts).into()
}

/// `H_56(parts; key)`.
pub(crate) fn h56(key: &[u8], parts: &[&[u8]]) -> [u8; 56] {
    keyed::<Blake2bMac<U56>>(key, parts).into()
}

/// `H_64(parts; key)`.
pub(crate) fn h64(key: &[u8], parts: &[&[u8]]) -> [u8; 64] {
    keyed::<Blake2bMac<U64>>(key, parts).into()
}
