//! How much the L-A and S schemes pad a plaintext (attachments spec §1.2 step 2, §1.4), so that
//! an observer of the blob learns only a size class.

/// Smallest padded L-A plaintext.
const LEGACY_MIN: usize = 541;
/// L-A padding never takes a plaintext of at most this size beyond it.
const LEGACY_CAP: usize = 10_000_000;

/// The padded length of an `n`-byte L-A plaintext: the next power of 1.05 (at least 541, at
/// most 10,000,000 when `n` fits), computed in IEEE doubles as desktop does. Receivers never
/// depend on it: they cut the plaintext to the pointer's `size`.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]
pub fn legacy_padded_len(n: usize) -> usize {
    let exponent = ((n as f64).ln() / 1.05f64.ln()).ceil();
    // A float → integer `as` saturates (and maps NaN to 0), so no value can panic here.
    let padded = (1.05f64.powf(exponent).floor() as usize).max(LEGACY_MIN);
    let padded = if padded > LEGACY_CAP && n <= LEGACY_CAP {
        LEGACY_CAP
    } else {
        padded
    };
    padded.max(n)
}

/// Size of one plaintext chunk of the S scheme's secretstream.
pub const STREAM_CHUNK: u64 = 32_768;
/// Bytes the secretstream adds to each chunk (tag byte and Poly1305 MAC).
pub const STREAM_ABYTES: u64 = 17;
/// Size of a full encrypted chunk.
pub const STREAM_CHUNK_ENCRYPTED: u64 = STREAM_CHUNK + STREAM_ABYTES;
/// The S blob's header: the scheme byte `'S'` and the 24-byte secretstream header.
pub const STREAM_HEADER: u64 = 1 + 24;

/// Padding bytes (`0x00…0x01`, at least one) the S scheme puts before an `n`-byte plaintext, so
/// that the blob's length is a multiple of 1/32 of its leading power of two (at least 4096).
pub fn stream_padding_len(n: u64) -> u64 {
    let chunks = n.div_ceil(STREAM_CHUNK);
    let e = n + STREAM_HEADER + 1 + STREAM_ABYTES * chunks;
    let floor_pow2 = 1u64 << e.max(131_072).ilog2();
    let f = floor_pow2 >> 5;
    let pad = e.div_ceil(f) * f - e + 1;
    let mut imp = if pad >= STREAM_CHUNK_ENCRYPTED {
        STREAM_ABYTES * (pad / STREAM_CHUNK_ENCRYPTED)
    } else {
        0
    };
    if pad % STREAM_CHUNK_ENCRYPTED > STREAM_CHUNK * chunks - n {
        imp += STREAM_ABYTES;
    }
    pad - imp
}

/// Length of the S blob of an `n`-byte plaintext.
pub fn stream_encrypted_len(n: u64) -> u64 {
    let stream = n + stream_padding_len(n);
    STREAM_HEADER + stream + STREAM_ABYTES * stream.div_ceil(STREAM_CHUNK)
}

/// The largest plaintext an S blob of `len` bytes can hold (an upper bound for allocation).
pub fn stream_max_plaintext(len: u64) -> u64 {
    let body = len.saturating_sub(STREAM_HEADER + 1);
    body.saturating_sub(STREAM_ABYTES * body.div_ceil(STREAM_CHUNK_ENCRYPTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_sizes() {
        assert_eq!(stream_padding_len(0), 4054);
        assert_eq!(stream_encrypted_len(0), 4096);
        assert_eq!(stream_encrypted_len(10_218_286), 10_223_616);
        assert!(stream_encrypted_len(10_218_287) > 10_223_616);
        assert!(stream_max_plaintext(4096) >= 4053);
    }

    #[test]
    fn legacy_sizes() {
        assert_eq!(legacy_padded_len(0), 541);
        assert_eq!(legacy_padded_len(542), 568);
        assert!(legacy_padded_len(20_000_000) >= 20_000_000);
    }
}
