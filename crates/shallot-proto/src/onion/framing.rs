//! The "ciphertext plus JSON" framing every onion layer uses (onion-client spec §1.2):
//! `LE32(N) || PAYLOAD[N] || JSON`, where the JSON object runs to the end of the buffer.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::json_limit::{self, MAX_ROUTING_VALUES};

/// Largest framed onion message accepted or produced (10 MiB), as libsession and the storage server cap it.
pub const MAX_ONION_SIZE: usize = 10 * 1024 * 1024;

/// Length of the little-endian length prefix.
const PREFIX_LEN: usize = 4;

/// Why a framed onion message could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Fewer than 4 bytes: not even the length prefix is there.
    #[error("Unexpected payload size; expected ciphertext size")]
    TooShort,
    /// The length prefix announces more bytes than follow it.
    #[error("Unexpected payload size {available}, expected >= {declared}")]
    Truncated {
        /// Payload length announced by the prefix.
        declared: usize,
        /// Bytes actually present after the prefix.
        available: usize,
    },
    /// The whole message exceeds [`MAX_ONION_SIZE`].
    #[error("onion message of {len} bytes exceeds the limit of {MAX_ONION_SIZE} bytes")]
    TooLarge {
        /// Total size of the message.
        len: usize,
    },
    /// The trailing bytes are not UTF-8 JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The trailing JSON is valid but not an object.
    #[error("JSON is not an object")]
    NotObject,
}

/// A parsed frame: the length-prefixed payload (borrowed from the input) and the trailing JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<'a> {
    /// The `N` bytes after the prefix: a ciphertext for the next party, or the final request.
    pub payload: &'a [u8],
    /// The JSON object that follows the payload (routing or control information).
    pub json: Map<String, Value>,
}

/// Splits `LE32(N) || PAYLOAD[N] || JSON` and parses the JSON object, without copying the payload.
/// The JSON may hold at most [`MAX_ROUTING_VALUES`] values.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame<'_>, FramingError> {
    if bytes.len() > MAX_ONION_SIZE {
        return Err(FramingError::TooLarge { len: bytes.len() });
    }
    let (prefix, rest) = bytes
        .split_first_chunk::<PREFIX_LEN>()
        .ok_or(FramingError::TooShort)?;
    let declared = usize::try_from(u32::from_le_bytes(*prefix)).unwrap_or(usize::MAX);
    if rest.len() < declared {
        return Err(FramingError::Truncated {
            declared,
            available: rest.len(),
        });
    }
    let (payload, json_bytes) = rest.split_at(declared);
    let json = match json_limit::from_slice(json_bytes, MAX_ROUTING_VALUES) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(FramingError::NotObject),
        Err(e) => return Err(FramingError::InvalidJson(e.to_string())),
    };
    Ok(Frame { payload, json })
}

/// Builds `LE32(|payload|) || payload || compact-JSON(json)`; `json` must serialize to an object.
pub fn encode_frame<T: Serialize + ?Sized>(
    payload: &[u8],
    json: &T,
) -> Result<Vec<u8>, FramingError> {
    let json_bytes = frame_json(json)?;
    let len = PREFIX_LEN + payload.len() + json_bytes.len();
    if len > MAX_ONION_SIZE {
        return Err(FramingError::TooLarge { len });
    }
    let declared = u32::try_from(payload.len()).map_err(|_| FramingError::TooLarge { len })?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&declared.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&json_bytes);
    Ok(out)
}

/// The compact JSON that ends a frame; `json` must serialize to an object.
pub(crate) fn frame_json<T: Serialize + ?Sized>(json: &T) -> Result<Vec<u8>, FramingError> {
    let json_bytes =
        serde_json::to_vec(json).map_err(|e| FramingError::InvalidJson(e.to_string()))?;
    if json_bytes.first() != Some(&b'{') {
        return Err(FramingError::NotObject);
    }
    Ok(json_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_exact_bytes() {
        let framed = encode_frame(b"abc", &serde_json::json!({"headers": ""})).unwrap();
        assert_eq!(framed, b"\x03\x00\x00\x00abc{\"headers\":\"\"}");
    }

    #[test]
    fn parses_and_borrows() {
        let bytes = b"\x02\x00\x00\x00hi { \"a\" : 1 } ";
        let frame = parse_frame(bytes).unwrap();
        assert_eq!(frame.payload, b"hi");
        assert_eq!(frame.json.get("a"), Some(&Value::from(1)));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_frame(b"\x01\x00\x00"), Err(FramingError::TooShort));
        assert_eq!(
            parse_frame(b"\x05\x00\x00\x00abc"),
            Err(FramingError::Truncated {
                declared: 5,
                available: 3
            })
        );
        assert_eq!(
            parse_frame(b"\x00\x00\x00\x00[1]"),
            Err(FramingError::NotObject)
        );
        assert!(matches!(
            parse_frame(b"\x00\x00\x00\x00"),
            Err(FramingError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_frame(b"\x00\x00\x00\x00{\"a\":\"\xff\"}"),
            Err(FramingError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_frame(b"\x00\x00\x00\x00{} x"),
            Err(FramingError::InvalidJson(_))
        ));
        let big = vec![0u8; MAX_ONION_SIZE + 1];
        assert_eq!(
            parse_frame(&big),
            Err(FramingError::TooLarge {
                len: MAX_ONION_SIZE + 1
            })
        );
        assert_eq!(
            encode_frame(&big, &serde_json::json!({})),
            Err(FramingError::TooLarge {
                len: MAX_ONION_SIZE + 7
            })
        );
        assert_eq!(
            encode_frame(b"", &serde_json::json!([1])),
            Err(FramingError::NotObject)
        );
    }
}
