//! Builders of real, encrypted inbox items for the unit tests of [`super::judge`] and
//! [`super::apply`].
#![allow(clippy::unwrap_used)]

use shallot_proto::attachment::pointer::Quote;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::RetrievedMessage;
use shallot_proto::session::protos::{
    Content, DataMessage, ExpirationType, MessageRequestResponse, Profile, Reaction,
    ReceiptMessage, TypingMessage, UnsendRequest,
};
use shallot_proto::session::wrap_for_recipient;
use shallot_proto::{Identity, Namespace, SessionId};

/// A message timestamp (ms).
pub const T: u64 = 1_700_000_000_000;

pub fn user() -> Identity {
    Identity::generate(&mut rand::rngs::OsRng)
}

/// `content` from `from`, as `to` retrieves it from its inbox (the hash names the data).
pub fn item(to: &Identity, from: &Identity, content: &Content) -> RetrievedMessage {
    let timestamp = content.sig_timestamp.unwrap_or(T);
    let data = wrap_for_recipient(
        from,
        &to.session_id(),
        content,
        timestamp,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let hash = MessageHash::compute(&to.session_id().account(), Namespace::DEFAULT, &data);
    RetrievedMessage {
        data,
        expiration: timestamp + 1000,
        hash,
        timestamp,
    }
}

pub fn text(body: &str, timestamp: u64) -> Content {
    Content::text(body, timestamp)
}

/// `content` with our profile's display name in it.
pub fn named(mut content: Content, name: &str) -> Content {
    let profile = Some(Profile {
        display_name: Some(name.into()),
        ..Profile::default()
    });
    if let Some(data) = content.data_message.as_mut() {
        data.profile = profile;
    } else if let Some(response) = content.message_request_response.as_mut() {
        response.profile = profile;
    }
    content
}

pub fn with_timer(mut content: Content, kind: Option<ExpirationType>, secs: u32) -> Content {
    content.expiration_type = kind.map(|k| k as i32);
    content.expiration_timer = Some(secs);
    content
}

pub fn approval(approved: bool, timestamp: u64) -> Content {
    Content {
        message_request_response: Some(MessageRequestResponse {
            is_approved: Some(approved),
            ..MessageRequestResponse::default()
        }),
        sig_timestamp: Some(timestamp),
        ..Content::default()
    }
}

pub fn unsend(author: &SessionId, message_timestamp: u64, timestamp: u64) -> Content {
    Content {
        unsend_request: Some(UnsendRequest {
            timestamp: Some(message_timestamp),
            author: Some(author.to_string()),
        }),
        sig_timestamp: Some(timestamp),
        ..Content::default()
    }
}

/// A timer update, as the other party sends it (`sync_target: None`) or our other device.
pub fn timer(
    kind: Option<ExpirationType>,
    secs: u32,
    sync_target: Option<SessionId>,
    timestamp: u64,
) -> Content {
    let content = Content {
        data_message: Some(DataMessage {
            flags: Some(DataMessage::FLAG_EXPIRATION_TIMER_UPDATE),
            sync_target: sync_target.map(|s| s.to_string()),
            ..DataMessage::default()
        }),
        sig_timestamp: Some(timestamp),
        ..Content::default()
    };
    with_timer(content, kind, secs)
}

/// A receipt of `kind` (0 delivery, 1 read; others are invalid) for messages sent at `timestamps`.
pub fn receipt(kind: i32, timestamps: &[u64], timestamp: u64) -> Content {
    Content {
        receipt_message: Some(ReceiptMessage {
            kind: Some(kind),
            timestamps: timestamps.to_vec(),
        }),
        sig_timestamp: Some(timestamp),
        ..Content::default()
    }
}

/// A typing indicator (`action` 0 started, 1 stopped) sent at `timestamp`.
pub fn typing(action: Option<i32>, timestamp: u64) -> Content {
    Content {
        typing_message: Some(TypingMessage {
            timestamp: Some(timestamp),
            action,
        }),
        sig_timestamp: Some(timestamp),
        ..Content::default()
    }
}

/// A reaction (`action` 0 react, 1 remove) to `author`'s message sent at `id`.
pub fn reaction(
    id: u64,
    author: &SessionId,
    emoji: &str,
    action: i32,
    sync_target: Option<&SessionId>,
    timestamp: u64,
) -> Content {
    Content {
        data_message: Some(DataMessage {
            reaction: Some(Reaction {
                id: Some(id),
                author: Some(author.to_string()),
                emoji: Some(emoji.into()),
                action: Some(action),
            }),
            sync_target: sync_target.map(ToString::to_string),
            ..DataMessage::default()
        }),
        sig_timestamp: Some(timestamp),
        ..Content::default()
    }
}

/// A reply `body` quoting `author`'s message sent at `id`.
pub fn reply(body: &str, id: u64, author: &str, quoted: Option<&str>, timestamp: u64) -> Content {
    let mut content = text(body, timestamp);
    if let Some(data) = content.data_message.as_mut() {
        data.quote = Some(Quote {
            id: Some(id),
            author: Some(author.into()),
            text: quoted.map(Into::into),
            attachments: Vec::new(),
        });
    }
    content
}
