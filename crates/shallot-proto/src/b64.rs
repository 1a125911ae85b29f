//! Base64 as the storage protocol uses it: standard alphabet, padded on output (except message
//! hashes), and decoders that accept both padded and unpadded input.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

/// Standard alphabet, emits padding, accepts input with or without padding.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard alphabet without padding (message hashes).
const STANDARD_UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes with padding, as the storage server does for response fields.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    STANDARD_LENIENT.encode(bytes)
}

/// Encodes without padding (message hashes are 43 characters).
pub fn encode_unpadded(bytes: impl AsRef<[u8]>) -> String {
    STANDARD_UNPADDED.encode(bytes)
}

/// Decodes standard base64, padded or not.
pub fn decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD_LENIENT.decode(text)
}
