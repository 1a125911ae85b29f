//! Padding onion requests and replies to a small set of size classes, so that a guard (which
//! knows the client's address) cannot tell a send from a poll, or count the messages a poll
//! brought back, from the sizes it relays.
//!
//! Where the padding lives (both are fields Session's storage server ignores):
//! - **requests** to a service node: a `"pad"` string in the destination's control JSON
//!   (`{"headers": "", "pad": "000…"}`), inside the innermost encrypted layer. Every outer layer
//!   adds a fixed number of bytes (fixed-length keys, AEAD), so the client sizes the padding to
//!   make the *whole body it POSTs to the guard* exactly one class long;
//! - **replies**: a destination that saw `"pad"` in the request adds a `"pad"` string to its
//!   encrypted `{"status", "body"}` reply, so the HTTP body the guard relays back is exactly one
//!   class long. Clients read `status` and `body` and ignore other keys.
//!
//! Classes are powers of two from a floor ([`MIN_REQUEST_CLASS`], [`MIN_REPLY_CLASS`]) up to
//! 8 MiB, then [`MAX_ONION_SIZE`] (10 MiB). A message that does not fit the largest class is
//! left unpadded (and will be refused by the framing limit anyway).

use super::framing::MAX_ONION_SIZE;

/// The JSON key that carries padding, in a request's control JSON and in a padded reply.
pub const PAD_KEY: &str = "pad";

/// Smallest class of a padded onion request: the body a client POSTs to its guard. A send of a
/// text message and a poll of a few namespaces both fit.
pub const MIN_REQUEST_CLASS: usize = 4 * 1024;

/// Smallest class of a padded reply: the body the guard relays back. A store's reply, an empty
/// poll and a poll bringing back about a dozen text messages all fit.
pub const MIN_REPLY_CLASS: usize = 16 * 1024;

/// The size class of a message of `len` bytes: the smallest of `floor · 2^k` (below
/// [`MAX_ONION_SIZE`]) and [`MAX_ONION_SIZE`] that holds it; `None` when `len` exceeds
/// [`MAX_ONION_SIZE`]. A `floor` of 0 counts as 1.
pub fn size_class(len: usize, floor: usize) -> Option<usize> {
    if len > MAX_ONION_SIZE {
        return None;
    }
    let mut class = floor.max(1);
    while class < len {
        class = class.saturating_mul(2);
    }
    Some(class.min(MAX_ONION_SIZE))
}

/// The padding to add to a message whose wire size, given `pad` bytes of padding, is
/// `wire(pad)` (non-decreasing in `pad`): the largest `pad` whose wire size is at most the class
/// of `wire(0)`. When the wire size cannot reach the class exactly (block ciphers, base64), the
/// result stays just below it. `None` when `wire(0)` has no class.
pub fn fit_padding(floor: usize, wire: impl Fn(usize) -> usize) -> Option<usize> {
    let class = size_class(wire(0), floor)?;
    // Binary search for the largest pad with wire(pad) <= class; wire(pad) >= pad, so the answer
    // is at most `class`.
    let (mut low, mut high) = (0usize, class);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if wire(mid) <= class {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    Some(low)
}

/// `len` bytes of padding as a JSON string value (ASCII zeros: no escaping, one byte each).
pub fn pad_string(len: usize) -> String {
    "0".repeat(len)
}

/// Bytes that `,"pad":""` adds to a non-empty JSON object (the padding string's content comes
/// on top, one byte per padding byte).
pub const PAD_FIELD_OVERHEAD: usize = r#","pad":"""#.len();

/// Base64 (padded) length of `len` bytes.
pub const fn base64_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onion::EncType;

    #[test]
    fn classes() {
        assert_eq!(size_class(0, 4096), Some(4096));
        assert_eq!(size_class(4096, 4096), Some(4096));
        assert_eq!(size_class(4097, 4096), Some(8192));
        assert_eq!(size_class(8 * 1024 * 1024, 4096), Some(8 * 1024 * 1024));
        assert_eq!(
            size_class(8 * 1024 * 1024 + 1, 4096),
            Some(MAX_ONION_SIZE),
            "above 8 MiB the last class is the 10 MiB limit"
        );
        assert_eq!(size_class(MAX_ONION_SIZE, 4096), Some(MAX_ONION_SIZE));
        assert_eq!(size_class(MAX_ONION_SIZE + 1, 4096), None);
        assert_eq!(size_class(3, 0), Some(4));
        // A floor above the limit is capped to it.
        assert_eq!(size_class(1, usize::MAX), Some(MAX_ONION_SIZE));
    }

    #[test]
    fn fits_exactly_when_affine() {
        // An AEAD layer plus a fixed frame: wire grows one byte per padding byte.
        let wire = |pad: usize| EncType::XChaCha20.ciphertext_len(1000 + pad) + 200;
        let pad = fit_padding(4096, wire).unwrap();
        assert_eq!(wire(pad), 4096);
        // base64 reaches a class that is a multiple of 4 exactly too.
        let wire = |pad: usize| base64_len(EncType::AesGcm.ciphertext_len(5000 + pad));
        let pad = fit_padding(4096, wire).unwrap();
        assert_eq!(wire(pad), 8192);
    }

    #[test]
    fn block_cipher_stays_below_the_class() {
        let wire = |pad: usize| {
            EncType::AesCbc.ciphertext_len(EncType::AesCbc.ciphertext_len(pad + 77) + 9)
        };
        let pad = fit_padding(1024, wire).unwrap();
        assert!(wire(pad) <= 1024 && wire(pad + 1) > 1024);
    }

    #[test]
    fn too_large_is_unpadded() {
        assert_eq!(fit_padding(4096, |pad| MAX_ONION_SIZE + 1 + pad), None);
        // Exactly at the limit: no room to pad.
        assert_eq!(fit_padding(4096, |pad| MAX_ONION_SIZE + pad), Some(0));
    }

    #[test]
    fn pad_strings() {
        assert_eq!(pad_string(3), "000");
        let with = format!(r#"{{"a":1,"pad":"{}"}}"#, pad_string(5));
        assert_eq!(with.len(), r#"{"a":1}"#.len() + PAD_FIELD_OVERHEAD + 5);
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(3 * 1024), 4096);
        assert_eq!(base64_len(3 * 1024 + 1), 4100);
    }
}
