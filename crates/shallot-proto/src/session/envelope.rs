//! The classic DM layering, both ways (onion-client spec §4.5):
//! `Content` → pad → [`encrypt_for_recipient`] → `Envelope` (type 6) → `WebSocketMessage`
//! (`PUT /api/v1/message`), whose bytes are what `store` puts (base64) in the recipient's
//! namespace 0.

use prost::Message as _;
use rand_core::CryptoRngCore;

use super::encrypt::{decrypt_incoming, encrypt_for_recipient, DecryptError, EncryptError};
use super::padding::{pad, unpad_lenient, PaddingError};
use super::protos::{
    Content, Envelope, EnvelopeType, WebSocketMessage, WebSocketMessageType,
    WebSocketRequestMessage,
};
use crate::identity::{Ed25519Pub, Identity, SessionId};

/// Verb of the request wrapping a stored message.
pub const MESSAGE_VERB: &str = "PUT";
/// Path of the request wrapping a stored message.
pub const MESSAGE_PATH: &str = "/api/v1/message";

/// Why a message could not be wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    /// `Content::sig_timestamp` is set and differs from the envelope timestamp, so every
    /// receiver would drop the message.
    #[error("content sigTimestamp {signed} differs from envelope timestamp {envelope}")]
    SigTimestampMismatch {
        /// The envelope timestamp requested.
        envelope: u64,
        /// The timestamp inside the content.
        signed: u64,
    },
    /// Encryption failed.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
}

/// Why an incoming message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The outer bytes are not a `WebSocketMessage`.
    #[error("malformed WebSocketMessage: {0}")]
    MalformedWebSocketMessage(prost::DecodeError),
    /// The `WebSocketMessage` is not a request.
    #[error("WebSocketMessage is not a request")]
    NotARequest,
    /// The request has no body, or an empty one.
    #[error("WebSocketMessage request has no body")]
    EmptyBody,
    /// The request body is not an `Envelope`.
    #[error("malformed Envelope: {0}")]
    MalformedEnvelope(prost::DecodeError),
    /// The envelope has no type.
    #[error("Envelope has no type")]
    MissingEnvelopeType,
    /// The envelope type is not the classic Session protocol (6).
    #[error("unsupported Envelope type {0}")]
    UnsupportedEnvelopeType(i32),
    /// The envelope has no timestamp.
    #[error("Envelope has no timestamp")]
    MissingTimestamp,
    /// The envelope has no content, or an empty one.
    #[error("Envelope has no content")]
    MissingContent,
    /// The content did not decrypt or its signature did not verify.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The decrypted content's padding is invalid.
    #[error(transparent)]
    Padding(#[from] PaddingError),
    /// The decrypted bytes are not a `Content`.
    #[error("malformed Content: {0}")]
    MalformedContent(prost::DecodeError),
    /// The signed `sigTimestamp` differs from the (unsigned) envelope timestamp: a replay with a
    /// rewritten envelope, which Session clients drop.
    #[error("Content sigTimestamp {signed} differs from Envelope timestamp {envelope}")]
    SigTimestampMismatch {
        /// The envelope timestamp.
        envelope: u64,
        /// The timestamp inside the signed content.
        signed: u64,
    },
}

/// A DM opened by [`unwrap_incoming`], with its authenticated sender.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    /// The sender's Session ID.
    pub sender: SessionId,
    /// The sender's Ed25519 key, which signed the content.
    pub sender_ed25519: Ed25519Pub,
    /// The envelope timestamp in milliseconds (the message's timestamp).
    pub envelope_timestamp: u64,
    /// The decrypted message.
    pub content: Content,
}

/// Builds the `WebSocketMessage` bytes carrying `content` from `sender` to `recipient`, with
/// envelope timestamp `timestamp_ms` (network time, ms).
///
/// `content.sig_timestamp` should be `Some(timestamp_ms)` (see [`Content::text`]); any other
/// value is refused because receivers would drop the message.
pub fn wrap_for_recipient<R: CryptoRngCore + ?Sized>(
    sender: &Identity,
    recipient: &SessionId,
    content: &Content,
    timestamp_ms: u64,
    rng: &mut R,
) -> Result<Vec<u8>, WrapError> {
    if let Some(signed) = content.sig_timestamp.filter(|&t| t != timestamp_ms) {
        return Err(WrapError::SigTimestampMismatch {
            envelope: timestamp_ms,
            signed,
        });
    }
    let padded = pad(&content.encode_to_vec());
    let ciphertext = encrypt_for_recipient(sender, recipient.x25519(), &padded, rng)?;
    let envelope = Envelope {
        kind: Some(EnvelopeType::SessionMessage.into()),
        timestamp: Some(timestamp_ms),
        content: Some(ciphertext),
        ..Envelope::default()
    };
    let message = WebSocketMessage {
        kind: Some(WebSocketMessageType::Request.into()),
        request: Some(WebSocketRequestMessage {
            verb: Some(MESSAGE_VERB.to_owned()),
            path: Some(MESSAGE_PATH.to_owned()),
            body: Some(envelope.encode_to_vec()),
            headers: Vec::new(),
            request_id: Some(0),
        }),
    };
    Ok(message.encode_to_vec())
}

/// Opens a retrieved DM (the base64-decoded `data` of a namespace-0 message) addressed to
/// `recipient`. Only classic Session-protocol envelopes (type 6) are handled so far.
///
/// Padding is removed leniently ([`unpad_lenient`]), as Session Desktop does: the content is
/// signed, so an unpadded sender gains nothing.
pub fn unwrap_incoming(recipient: &Identity, data: &[u8]) -> Result<IncomingMessage, UnwrapError> {
    let message = WebSocketMessage::decode(data).map_err(UnwrapError::MalformedWebSocketMessage)?;
    if message.kind != Some(WebSocketMessageType::Request.into()) {
        return Err(UnwrapError::NotARequest);
    }
    let body = message
        .request
        .and_then(|request| request.body)
        .filter(|body| !body.is_empty())
        .ok_or(UnwrapError::EmptyBody)?;

    let envelope = Envelope::decode(body.as_slice()).map_err(UnwrapError::MalformedEnvelope)?;
    match envelope.kind {
        None => return Err(UnwrapError::MissingEnvelopeType),
        Some(kind) if kind != i32::from(EnvelopeType::SessionMessage) => {
            return Err(UnwrapError::UnsupportedEnvelopeType(kind));
        }
        Some(_) => {}
    }
    let envelope_timestamp = envelope.timestamp.ok_or(UnwrapError::MissingTimestamp)?;
    let ciphertext = envelope
        .content
        .filter(|content| !content.is_empty())
        .ok_or(UnwrapError::MissingContent)?;

    let opened = decrypt_incoming(recipient, &ciphertext)?;
    let content = Content::decode(unpad_lenient(&opened.plaintext)?)
        .map_err(UnwrapError::MalformedContent)?;
    if let Some(signed) = content.sig_timestamp.filter(|&t| t != envelope_timestamp) {
        return Err(UnwrapError::SigTimestampMismatch {
            envelope: envelope_timestamp,
            signed,
        });
    }

    Ok(IncomingMessage {
        sender: opened.sender,
        sender_ed25519: opened.sender_ed25519,
        envelope_timestamp,
        content,
    })
}
