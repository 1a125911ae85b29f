//! The protobuf messages of the classic DM layering (onion-client spec §4.5), package
//! `signalservice`, proto2, generated at build time from Shallot's own `proto/session.proto`;
//! the helpers on them live here.
//!
//! Proto2 semantics are kept: every singular field is an `Option` so presence survives a round
//! trip, `required` fields are `Option` too (the layer that uses them checks presence), and
//! repeated numeric fields are unpacked. Enum fields hold the raw `i32` so unknown values still
//! decode; prost generates typed getters and setters (e.g. [`Envelope::kind`]) alongside.
//! Sub-messages and fields the client does not use yet (calls, legacy groups…) are omitted;
//! prost skips them when decoding.

pub use crate::signalservice::{
    Content, DataExtractionNotification, DataExtractionType, DataMessage, Envelope, EnvelopeType,
    ExpirationType, MessageRequestResponse, OpenGroupInvitation, Profile, Reaction, ReactionAction,
    ReceiptMessage, ReceiptType, TypingAction, TypingMessage, UnsendRequest, WebSocketMessage,
    WebSocketMessageType, WebSocketRequestMessage,
};

impl Content {
    /// A plain text message: `dataMessage { body }` with `sigTimestamp` set to `timestamp_ms`
    /// (which must also be the envelope timestamp).
    pub fn text(body: impl Into<String>, timestamp_ms: u64) -> Self {
        Self {
            data_message: Some(DataMessage {
                body: Some(body.into()),
                ..DataMessage::default()
            }),
            sig_timestamp: Some(timestamp_ms),
            ..Self::default()
        }
    }
}

impl DataMessage {
    /// `flags` bit: this message only changes the disappearing-messages timer.
    pub const FLAG_EXPIRATION_TIMER_UPDATE: u32 = 2;
}
