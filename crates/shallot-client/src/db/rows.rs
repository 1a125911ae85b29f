//! The rows the database holds, as the rest of the client sees them.

use shallot_proto::message_hash::MessageHash;
use shallot_proto::SessionId;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the other party to us.
    Incoming,
    /// From us (this device or another of ours, via a sync copy).
    Outgoing,
}

/// Delivery state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Being sent; not yet acknowledged by any node.
    Sending,
    /// Stored by this many members of the recipient's swarm.
    Stored(u32),
    /// Sending failed (no node stored it).
    Failed,
    /// Received from the network.
    Received,
    /// The recipient's client said it reached their device (a delivery receipt, older clients).
    Delivered,
    /// The recipient's client said it was read (a read receipt).
    Read,
}

impl MessageState {
    pub(super) fn to_sql(self) -> (i64, i64) {
        match self {
            Self::Sending => (0, 0),
            Self::Stored(n) => (1, i64::from(n)),
            Self::Failed => (2, 0),
            Self::Received => (3, 0),
            Self::Read => (4, 0),
            Self::Delivered => (5, 0),
        }
    }

    pub(super) fn from_sql(state: i64, stored_on: i64) -> Option<Self> {
        Some(match state {
            0 => Self::Sending,
            1 => Self::Stored(u32::try_from(stored_on).ok()?),
            2 => Self::Failed,
            3 => Self::Received,
            4 => Self::Read,
            5 => Self::Delivered,
            _ => return None,
        })
    }
}

/// Whether we talk with a contact (message requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationState {
    /// They wrote to us first and we have not answered: a message request.
    Requested,
    /// An accepted contact (we accepted their request, or wrote to them).
    Accepted,
    /// We declined their request (a new message makes a new request).
    Declined,
    /// Everything they send is dropped.
    Blocked,
}

impl ConversationState {
    pub(super) fn to_sql(self) -> i64 {
        match self {
            Self::Requested => 0,
            Self::Accepted => 1,
            Self::Declined => 2,
            Self::Blocked => 3,
        }
    }

    pub(super) fn from_sql(v: i64) -> Self {
        match v {
            0 => Self::Requested,
            2 => Self::Declined,
            3 => Self::Blocked,
            _ => Self::Accepted,
        }
    }
}

/// A conversation's disappearing-messages setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disappearing {
    /// Messages stay.
    #[default]
    Off,
    /// Messages disappear this many seconds after they are sent.
    AfterSend(u32),
    /// Messages disappear this many seconds after they are read.
    AfterRead(u32),
}

impl Disappearing {
    pub(super) fn to_sql(self) -> (i64, i64) {
        match self {
            Self::Off => (0, 0),
            Self::AfterRead(s) => (1, i64::from(s)),
            Self::AfterSend(s) => (2, i64::from(s)),
        }
    }

    pub(super) fn from_sql(mode: i64, secs: i64) -> Self {
        let secs = u32::try_from(secs).unwrap_or(0);
        match mode {
            _ if secs == 0 => Self::Off,
            1 => Self::AfterRead(secs),
            2 => Self::AfterSend(secs),
            _ => Self::Off,
        }
    }
}

/// One message as kept locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message hash (on the recipient's swarm for sent messages).
    pub id: MessageHash,
    /// The other party.
    pub conversation: SessionId,
    /// Which way it went.
    pub direction: Direction,
    /// Who wrote it.
    pub sender: SessionId,
    /// Message timestamp (ms, network time of the sender).
    pub timestamp: u64,
    /// The text.
    pub body: String,
    /// Delivery state.
    pub state: MessageState,
}

/// A conversation (1:1 with a contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The contact's Session ID.
    pub id: SessionId,
    /// Their display name, if known.
    pub name: Option<String>,
    /// Time of the last message, ms.
    pub last_ms: u64,
    /// Request, accepted, declined or blocked.
    pub state: ConversationState,
    /// Disappearing-messages setting.
    pub disappearing: Disappearing,
}
