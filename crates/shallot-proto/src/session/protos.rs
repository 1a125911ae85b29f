//! The protobuf messages of the classic DM layering (onion-client spec §4.5), declared by hand
//! with `prost` derives (package `signalservice`, proto2 syntax).
//!
//! Proto2 semantics are kept: every singular field is an `Option` so presence survives a round
//! trip, `required` fields are `Option` too (the layer that uses them checks presence), and
//! repeated numeric fields are unpacked. Enum fields hold the raw `i32` so unknown values still
//! decode; prost generates typed getters and setters (e.g. [`Envelope::kind`]) alongside.
//! Sub-messages and fields the client does not use yet (attachments, quotes, calls, group updates…)
//! are omitted; prost skips them when decoding.

/// Outermost layer of a stored DM: a websocket-style request carrying the [`Envelope`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebSocketMessage {
    /// Request or response; see [`WebSocketMessageType`].
    #[prost(enumeration = "WebSocketMessageType", optional, tag = "1")]
    pub kind: Option<i32>,
    /// The request, for [`WebSocketMessageType::Request`].
    #[prost(message, optional, tag = "2")]
    pub request: Option<WebSocketRequestMessage>,
}

/// What a [`WebSocketMessage`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum WebSocketMessageType {
    /// Unset.
    Unknown = 0,
    /// A request: every stored DM is one.
    Request = 1,
    /// A response (unused by Session).
    Response = 2,
}

/// The request inside a [`WebSocketMessage`]: `PUT /api/v1/message` with the envelope as body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebSocketRequestMessage {
    /// HTTP-style verb, `"PUT"`.
    #[prost(string, optional, tag = "1")]
    pub verb: Option<String>,
    /// Request path, `"/api/v1/message"`.
    #[prost(string, optional, tag = "2")]
    pub path: Option<String>,
    /// The serialised [`Envelope`].
    #[prost(bytes = "vec", optional, tag = "3")]
    pub body: Option<Vec<u8>>,
    /// Header lines (unused by Session).
    #[prost(string, repeated, tag = "5")]
    pub headers: Vec<String>,
    /// Request id (`id` in the .proto): 0 from Desktop, random from iOS.
    #[prost(uint64, optional, tag = "4")]
    pub request_id: Option<u64>,
}

/// The envelope around an encrypted [`Content`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// Envelope type (required); see [`EnvelopeType`].
    #[prost(enumeration = "EnvelopeType", optional, tag = "1")]
    pub kind: Option<i32>,
    /// Sender, only for [`EnvelopeType::ClosedGroupMessage`] (iOS also sends `""` for DMs).
    #[prost(string, optional, tag = "2")]
    pub source: Option<String>,
    /// Sender device; iOS sends 1, others omit it.
    #[prost(uint32, optional, tag = "7")]
    pub source_device: Option<u32>,
    /// Message timestamp in milliseconds (required); equals `Content::sig_timestamp` when set.
    #[prost(uint64, optional, tag = "5")]
    pub timestamp: Option<u64>,
    /// The encrypted, padded [`Content`].
    #[prost(bytes = "vec", optional, tag = "8")]
    pub content: Option<Vec<u8>>,
    /// Server timestamp in milliseconds (newer protos; communities).
    #[prost(uint64, optional, tag = "10")]
    pub server_timestamp: Option<u64>,
}

/// How an [`Envelope`]'s content is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EnvelopeType {
    /// Classic Session protocol, sealed to the recipient (spec §4.2).
    SessionMessage = 6,
    /// Closed-group message, encrypted by the group's key.
    ClosedGroupMessage = 7,
}

/// The decrypted message body: exactly one of the message fields is normally set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Content {
    /// A visible message (text, profile update, sync copy…).
    #[prost(message, optional, tag = "1")]
    pub data_message: Option<DataMessage>,
    /// Read receipts.
    #[prost(message, optional, tag = "5")]
    pub receipt_message: Option<ReceiptMessage>,
    /// Typing indicator.
    #[prost(message, optional, tag = "6")]
    pub typing_message: Option<TypingMessage>,
    /// Screenshot / media-saved notice.
    #[prost(message, optional, tag = "8")]
    pub data_extraction_notification: Option<DataExtractionNotification>,
    /// Request to delete an earlier message (`unsendMessage` in newer protos).
    #[prost(message, optional, tag = "9")]
    pub unsend_request: Option<UnsendRequest>,
    /// Acceptance of a message request.
    #[prost(message, optional, tag = "10")]
    pub message_request_response: Option<MessageRequestResponse>,
    /// Disappearing-message mode; see [`ExpirationType`].
    #[prost(enumeration = "ExpirationType", optional, tag = "12")]
    pub expiration_type: Option<i32>,
    /// Disappearing-message timer in seconds.
    #[prost(uint32, optional, tag = "13")]
    pub expiration_timer: Option<u32>,
    /// Message timestamp in milliseconds, covered by the encryption signature; receivers drop a DM
    /// whose value differs from the envelope timestamp.
    #[prost(uint64, optional, tag = "15")]
    pub sig_timestamp: Option<u64>,
}

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

/// Disappearing-message mode of a [`Content`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ExpirationType {
    /// Not set / unknown.
    Unknown = 0,
    /// Timer starts when the message is read.
    DeleteAfterRead = 1,
    /// Timer starts when the message is sent.
    DeleteAfterSend = 2,
}

/// A visible message. Community invitations (102) are not modelled yet.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DataMessage {
    /// Message text.
    #[prost(string, optional, tag = "1")]
    pub body: Option<String>,
    /// Attached files, images and voice notes.
    #[prost(message, repeated, tag = "2")]
    pub attachments: Vec<crate::attachment::AttachmentPointer>,
    /// Bit flags; see [`DataMessage::FLAG_EXPIRATION_TIMER_UPDATE`].
    #[prost(uint32, optional, tag = "4")]
    pub flags: Option<u32>,
    /// Legacy disappearing timer in seconds; superseded by `Content::expiration_timer` and
    /// reserved in current protos. Decode only.
    #[prost(uint32, optional, tag = "5")]
    pub expire_timer: Option<u32>,
    /// Key that decrypts the sender's profile picture.
    #[prost(bytes = "vec", optional, tag = "6")]
    pub profile_key: Option<Vec<u8>>,
    /// Legacy message timestamp in milliseconds; reserved in current protos. Decode only.
    #[prost(uint64, optional, tag = "7")]
    pub timestamp: Option<u64>,
    /// The message this one replies to.
    #[prost(message, optional, tag = "8")]
    pub quote: Option<crate::attachment::pointer::Quote>,
    /// Link previews.
    #[prost(message, repeated, tag = "10")]
    pub preview: Vec<crate::attachment::pointer::Preview>,
    /// An emoji reaction to a message (the message has no body then).
    #[prost(message, optional, tag = "11")]
    pub reaction: Option<Reaction>,
    /// The sender's display name and picture.
    #[prost(message, optional, tag = "101")]
    pub profile: Option<Profile>,
    /// On the copy sent to our own swarm: the Session ID the message was sent to.
    #[prost(string, optional, tag = "105")]
    pub sync_target: Option<String>,
    /// Whether the sender refuses message requests from community members.
    #[prost(bool, optional, tag = "106")]
    pub blocks_community_message_requests: Option<bool>,
    /// A group control message (invites, promotions, member and info changes).
    #[prost(message, optional, tag = "120")]
    pub group_update_message: Option<crate::group::update::GroupUpdateMessage>,
}

impl DataMessage {
    /// `flags` bit: this message only changes the disappearing-messages timer.
    pub const FLAG_EXPIRATION_TIMER_UPDATE: u32 = 2;
}

/// An emoji reaction (`DataMessage.Reaction`): names the reacted-to message by its sent
/// timestamp and its author's Session ID.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reaction {
    /// Timestamp (ms) of the message reacted to (required).
    #[prost(uint64, optional, tag = "1")]
    pub id: Option<u64>,
    /// Session ID of that message's author (required).
    #[prost(string, optional, tag = "2")]
    pub author: Option<String>,
    /// The emoji.
    #[prost(string, optional, tag = "3")]
    pub emoji: Option<String>,
    /// Add or remove (required); see [`ReactionAction`].
    #[prost(enumeration = "ReactionAction", optional, tag = "4")]
    pub action: Option<i32>,
}

/// What a [`Reaction`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ReactionAction {
    /// Add the emoji.
    React = 0,
    /// Remove it.
    Remove = 1,
}

/// A user's public profile (`DataMessage.LokiProfile`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// Display name.
    #[prost(string, optional, tag = "1")]
    pub display_name: Option<String>,
    /// URL of the encrypted profile picture (decrypted with the profile key).
    #[prost(string, optional, tag = "2")]
    pub profile_picture: Option<String>,
    /// When the profile last changed, in **seconds** (newer clients).
    #[prost(uint64, optional, tag = "3")]
    pub last_profile_update_seconds: Option<u64>,
}

/// Read receipts for one or more messages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReceiptMessage {
    /// Receipt type (required); see [`ReceiptType`].
    #[prost(enumeration = "ReceiptType", optional, tag = "1")]
    pub kind: Option<i32>,
    /// Timestamps (ms) of the messages being acknowledged.
    #[prost(uint64, repeated, packed = "false", tag = "2")]
    pub timestamps: Vec<u64>,
}

/// What a [`ReceiptMessage`] acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ReceiptType {
    /// The messages reached the device (older clients; current ones send only `Read`).
    Delivery = 0,
    /// The messages were read.
    Read = 1,
}

/// A typing indicator.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypingMessage {
    /// When the state changed, ms (required).
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// Started or stopped (required); see [`TypingAction`].
    #[prost(enumeration = "TypingAction", optional, tag = "2")]
    pub action: Option<i32>,
}

/// Typing state in a [`TypingMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum TypingAction {
    /// The sender started typing.
    Started = 0,
    /// The sender stopped typing.
    Stopped = 1,
}

/// Tells the other side that we screenshotted or saved media from the conversation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DataExtractionNotification {
    /// What happened (required); see [`DataExtractionType`].
    #[prost(enumeration = "DataExtractionType", optional, tag = "1")]
    pub kind: Option<i32>,
    /// When, in ms (for media saves).
    #[prost(uint64, optional, tag = "2")]
    pub timestamp: Option<u64>,
}

/// The event in a [`DataExtractionNotification`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataExtractionType {
    /// A screenshot was taken.
    Screenshot = 1,
    /// An attachment was saved.
    MediaSaved = 2,
}

/// Asks the recipient to delete one of the author's earlier messages (`Unsend` in the .proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnsendRequest {
    /// Timestamp (ms) of the message to delete (required).
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// Session ID (hex) of the message's author (required).
    #[prost(string, optional, tag = "2")]
    pub author: Option<String>,
}

/// Answers a message request; only approval is ever sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessageRequestResponse {
    /// Whether the request was approved (required).
    #[prost(bool, optional, tag = "1")]
    pub is_approved: Option<bool>,
    /// The responder's profile key.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub profile_key: Option<Vec<u8>>,
    /// The responder's profile.
    #[prost(message, optional, tag = "3")]
    pub profile: Option<Profile>,
}
