//! Session message padding (onion-client spec §4.5 step 2, §7 item 13).
//!
//! A serialised `Content` is padded before encryption so that ciphertext lengths reveal only a
//! coarse size class: append `0x80`, then zero bytes up to `160·k − 1` total bytes for the
//! smallest `k` that fits (`160·⌈(L+2)/160⌉ − 1`; a 16-byte `Content` becomes 159 bytes).
//!
//! Unpadding scans back from the end over zero bytes of any length and strips one `0x80`
//! ([`unpad`]). Senders are not trusted to hit the exact target length, so it is never checked.
//! [`unpad_lenient`] additionally accepts input that was never padded, as Session Desktop does.

/// Padded messages are a multiple of this many bytes, minus one.
pub const PADDING_BLOCK: usize = 160;

/// The marker byte that ends the real data.
const MARKER: u8 = 0x80;

/// Why padding could not be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaddingError {
    /// The input is empty or only zero bytes: there is no `0x80` marker.
    #[error("padding marker missing: message is empty or all zero")]
    MissingMarker,
    /// The last non-zero byte is not the `0x80` marker.
    #[error("last non-zero byte is {found:#04x}, not the 0x80 padding marker")]
    BadMarker {
        /// The byte found where the marker should be.
        found: u8,
    },
}

/// The total length [`pad`] produces for an `unpadded_len`-byte message:
/// `160·⌈(L+2)/160⌉ − 1`, always at least `L + 1`.
pub const fn padded_len(unpadded_len: usize) -> usize {
    (unpadded_len + 2).div_ceil(PADDING_BLOCK) * PADDING_BLOCK - 1
}

/// Pads a message: the data, `0x80`, then zeros up to [`padded_len`] bytes.
pub fn pad(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(padded_len(message.len()));
    out.extend_from_slice(message);
    out.push(MARKER);
    out.resize(padded_len(message.len()), 0);
    out
}

/// Strips padding: skips trailing zero bytes (any number), then requires and strips one `0x80`.
pub fn unpad(padded: &[u8]) -> Result<&[u8], PaddingError> {
    let marker_at = padded
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(PaddingError::MissingMarker)?;
    match padded[marker_at] {
        MARKER => Ok(&padded[..marker_at]),
        found => Err(PaddingError::BadMarker { found }),
    }
}

/// Like [`unpad`], but input whose last non-zero byte is not `0x80` is taken to be unpadded and
/// returned whole (Session Desktop's receive behaviour). Empty or all-zero input is still an error.
///
/// Used for inbound messages: the content is signed by its sender, so accepting an unpadded
/// `Content` costs nothing and keeps interoperability with clients that skip padding.
pub fn unpad_lenient(data: &[u8]) -> Result<&[u8], PaddingError> {
    match unpad(data) {
        Err(PaddingError::BadMarker { .. }) => Ok(data),
        other => other,
    }
}
