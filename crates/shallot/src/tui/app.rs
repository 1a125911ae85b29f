//! The chat screen's state: pure, updated by [`Event`]s, and asking the runtime for side
//! effects through the returned [`Action`].

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use shallot_client::{Direction, MessageState, StoredGroupMessage, StoredMessage};
use shallot_proto::group::GroupId;
use shallot_proto::SessionId;

/// Who a conversation is with: one person, or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A 1:1 conversation.
    Direct(SessionId),
    /// A group (its `03…` ID).
    Group(GroupId),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Direct(id) => id.fmt(f),
            Self::Group(id) => id.fmt(f),
        }
    }
}

/// One message as shown on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Message hash, or `local-N` while a send is in flight.
    pub id: String,
    /// Sent by us.
    pub outgoing: bool,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The text.
    pub body: String,
    /// Delivery state.
    pub state: MessageState,
    /// Who wrote it, in a group (someone else's message); `None` in a 1:1 conversation.
    pub sender: Option<SessionId>,
}

impl From<&StoredMessage> for Msg {
    fn from(m: &StoredMessage) -> Self {
        Self {
            id: m.id.to_string(),
            outgoing: m.direction == Direction::Outgoing,
            timestamp: m.timestamp,
            body: m.body.clone(),
            state: m.state,
            sender: None,
        }
    }
}

impl From<&StoredGroupMessage> for Msg {
    fn from(m: &StoredGroupMessage) -> Self {
        let outgoing = m.direction == Direction::Outgoing;
        Self {
            id: m.id.to_string(),
            outgoing,
            timestamp: m.timestamp,
            body: m.body.clone(),
            state: m.state,
            sender: (!outgoing).then_some(m.sender),
        }
    }
}

/// One conversation (1:1 or group) in the left pane.
#[derive(Debug, Clone)]
pub struct Conv {
    /// The other party, or the group.
    pub id: Peer,
    /// Display name (a group's name), if known.
    pub name: Option<String>,
    /// Messages received while this conversation was not selected.
    pub unread: usize,
    /// Messages, oldest first.
    pub messages: Vec<Msg>,
}

/// Network status for the footer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathStatus {
    /// Number of onion paths built.
    pub paths: usize,
    /// Guards' addresses (`ip:port`).
    pub guards: Vec<String>,
    /// Network clock offset in milliseconds.
    pub offset_ms: i64,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A key press.
    Key(KeyEvent),
    /// A message arrived (pushed or polled), possibly a sync copy of one we sent elsewhere.
    Incoming {
        /// The conversation it belongs to.
        conversation: Peer,
        /// The message.
        msg: Msg,
    },
    /// A send finished: `Ok((hash, stored_on))` or `Err(error kind)`.
    SendDone {
        /// The token from [`Action::Send`].
        token: u64,
        /// Outcome.
        result: Result<(String, u32), String>,
    },
    /// Path status refreshed.
    Paths(PathStatus),
    /// A progress or status line (e.g. "building paths…"); `None` clears it.
    Status(Option<String>),
    /// A background operation failed with this error kind.
    Error(String),
}

/// What the runtime should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Send `text` to `to`; report back with [`Event::SendDone`] and `token`.
    Send {
        /// Identifies the pending message.
        token: u64,
        /// Recipient: a person or a group.
        to: Peer,
        /// Text.
        text: String,
    },
    /// Leave the chat.
    Quit,
}

/// The whole screen state.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// Conversations, in display order.
    pub convs: Vec<Conv>,
    /// Index of the selected conversation.
    pub selected: usize,
    /// The input line.
    pub input: String,
    /// Footer network status.
    pub paths: PathStatus,
    /// Progress/status line.
    pub status: Option<String>,
    /// Last error kind seen.
    pub last_error: Option<String>,
    /// Current network time (ms), kept up to date by the runtime; stamps pending messages.
    pub now_ms: u64,
    next_token: u64,
}

impl App {
    /// A screen showing `convs` with the first one selected.
    pub fn new(convs: Vec<Conv>) -> Self {
        Self {
            convs,
            ..Self::default()
        }
    }

    /// The selected conversation, if any.
    pub fn current(&self) -> Option<&Conv> {
        self.convs.get(self.selected)
    }

    fn select(&mut self, index: usize) {
        if let Some(c) = self.convs.get_mut(index) {
            self.selected = index;
            c.unread = 0;
        }
    }

    fn conv_index(&mut self, id: &Peer) -> usize {
        if let Some(i) = self.convs.iter().position(|c| c.id == *id) {
            return i;
        }
        self.convs.push(Conv {
            id: *id,
            name: None,
            unread: 0,
            messages: Vec::new(),
        });
        self.convs.len() - 1
    }

    /// Applies `event`; returns what the runtime must do.
    pub fn handle(&mut self, event: Event) -> Action {
        match event {
            Event::Key(key) => return self.key(key),
            Event::Incoming { conversation, msg } => {
                let i = self.conv_index(&conversation);
                let conv = &mut self.convs[i];
                if conv.messages.iter().any(|m| m.id == msg.id) {
                    return Action::None;
                }
                let at = conv
                    .messages
                    .iter()
                    .rposition(|m| m.timestamp <= msg.timestamp)
                    .map_or(0, |p| p + 1);
                let unread = !msg.outgoing && i != self.selected;
                conv.messages.insert(at, msg);
                if unread {
                    conv.unread += 1;
                }
            }
            Event::SendDone { token, result } => {
                let local = format!("local-{token}");
                let msg = self
                    .convs
                    .iter_mut()
                    .flat_map(|c| c.messages.iter_mut())
                    .find(|m| m.id == local);
                match (msg, result) {
                    (Some(m), Ok((hash, n))) => {
                        m.id = hash;
                        m.state = MessageState::Stored(n);
                    }
                    (Some(m), Err(kind)) => {
                        m.state = MessageState::Failed;
                        self.last_error = Some(kind);
                    }
                    (None, Err(kind)) => self.last_error = Some(kind),
                    (None, Ok(_)) => {}
                }
            }
            Event::Paths(p) => self.paths = p,
            Event::Status(s) => self.status = s,
            Event::Error(kind) => self.last_error = Some(kind),
        }
        Action::None
    }

    fn key(&mut self, key: KeyEvent) -> Action {
        let n = self.convs.len();
        match key.code {
            KeyCode::Esc => return Action::Quit,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Action::Quit;
            }
            KeyCode::Up | KeyCode::BackTab if n > 0 => self.select((self.selected + n - 1) % n),
            KeyCode::Down | KeyCode::Tab if n > 0 => self.select((self.selected + 1) % n),
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char(c) => self.input.push(c),
            KeyCode::Enter => return self.submit(),
            _ => {}
        }
        Action::None
    }

    fn submit(&mut self) -> Action {
        let line = std::mem::take(&mut self.input);
        let text = line.trim();
        if text.is_empty() {
            return Action::None;
        }
        if let Some(arg) = text.strip_prefix("/new") {
            let arg = arg.trim();
            let peer = arg
                .parse::<SessionId>()
                .map(Peer::Direct)
                .or_else(|_| arg.parse::<GroupId>().map(Peer::Group));
            match peer {
                Ok(id) => {
                    let i = self.conv_index(&id);
                    self.select(i);
                    self.status = None;
                }
                Err(_) => {
                    self.status =
                        Some("usage: /new <66-hex Session ID (05…) or group ID (03…)>".into());
                }
            }
            return Action::None;
        }
        let Some(conv) = self.convs.get_mut(self.selected) else {
            self.status = Some("no conversation: start one with /new <session-id>".into());
            self.input = line;
            return Action::None;
        };
        self.next_token += 1;
        let token = self.next_token;
        let timestamp = conv
            .messages
            .last()
            .map_or(self.now_ms, |m| m.timestamp.max(self.now_ms));
        conv.messages.push(Msg {
            id: format!("local-{token}"),
            outgoing: true,
            timestamp,
            body: text.to_owned(),
            state: MessageState::Sending,
            sender: None,
        });
        Action::Send {
            token,
            to: conv.id,
            text: text.to_owned(),
        }
    }
}
