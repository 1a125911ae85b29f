//! What a namespace-11 group message carries inside its encryption (groups spec §5.3): an
//! `Envelope` of type `CLOSED_GROUP_MESSAGE` holding the `Content` without the 1:1 padding.
//! Receivers read leniently: the sender comes from the encryption layer (never `source`),
//! unknown fields are ignored, and 1:1-style padding is stripped if present.

use prost::Message as _;

use crate::session::padding::unpad_lenient;
use crate::session::protos::{Content, Envelope, EnvelopeType};

/// Why a decrypted group message is not a readable envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupEnvelopeError {
    /// Not an `Envelope` protobuf.
    #[error("group message is not an envelope")]
    Envelope,
    /// The envelope has no timestamp or no content.
    #[error("group envelope lacks a timestamp or content")]
    Incomplete,
    /// The content is not a `Content` protobuf (padded or not).
    #[error("group message content does not parse")]
    Content,
}

/// The plaintext to pass to `encrypt_for_group`: `content` in a type-7 envelope stamped
/// `timestamp_ms` (which should equal `content.sig_timestamp`).
pub fn wrap_group_content(content: &Content, timestamp_ms: u64) -> Vec<u8> {
    Envelope {
        kind: Some(EnvelopeType::ClosedGroupMessage.into()),
        timestamp: Some(timestamp_ms),
        content: Some(content.encode_to_vec()),
        ..Envelope::default()
    }
    .encode_to_vec()
}

/// Reads a decrypted group message: its envelope timestamp (ms) and content.
pub fn unwrap_group_content(plaintext: &[u8]) -> Result<(u64, Content), GroupEnvelopeError> {
    let envelope = Envelope::decode(plaintext).map_err(|_| GroupEnvelopeError::Envelope)?;
    let (Some(timestamp), Some(bytes)) = (envelope.timestamp, envelope.content) else {
        return Err(GroupEnvelopeError::Incomplete);
    };
    let content = Content::decode(bytes.as_slice())
        .or_else(|_| {
            let unpadded = unpad_lenient(&bytes).map_err(|_| GroupEnvelopeError::Content)?;
            Content::decode(unpadded).map_err(|_| GroupEnvelopeError::Content)
        })
        .map_err(|_| GroupEnvelopeError::Content)?;
    Ok((timestamp, content))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn content_round_trips_and_junk_is_refused() {
        let content = Content::text("hi group", 1_700_000_000_000);
        let wrapped = wrap_group_content(&content, 1_700_000_000_000);
        assert_eq!(
            unwrap_group_content(&wrapped).unwrap(),
            (1_700_000_000_000, content.clone())
        );
        // Padded content (as 1:1 messages carry it) is read too.
        let padded = Envelope {
            kind: Some(EnvelopeType::ClosedGroupMessage.into()),
            timestamp: Some(5),
            content: Some(crate::session::padding::pad(&content.encode_to_vec())),
            ..Envelope::default()
        }
        .encode_to_vec();
        assert_eq!(unwrap_group_content(&padded).unwrap().1, content);
        assert!(unwrap_group_content(b"\xff\xff\xff").is_err());
        let empty = Envelope::default().encode_to_vec();
        assert_eq!(
            unwrap_group_content(&empty),
            Err(GroupEnvelopeError::Incomplete)
        );
        for cut in 0..wrapped.len() {
            let _ = unwrap_group_content(&wrapped[..cut]);
        }
    }
}
