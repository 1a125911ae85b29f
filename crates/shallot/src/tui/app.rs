//! The chat screen's state: pure, updated by [`Event`]s, and asking the runtime for side
//! effects through the returned [`Action`].

use std::collections::HashSet;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use shallot_client::{Direction, MessageState, StoredGroupMessage, StoredMessage, Update};
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

/// While composing, a STARTED typing indicator is sent again after this long (it lasts 20 s
/// at the other end).
pub const TYPING_REFRESH_MS: u64 = 10_000;

/// Composing counts as stopped after this long without a key (a STOPPED indicator is sent).
pub const TYPING_IDLE_MS: u64 = 5_000;

/// A file a message carries, as shown (`📎 name (size)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The attachment's id (what `/save` downloads); empty while our upload is in flight.
    pub id: String,
    /// The file name (made safe to show).
    pub name: String,
    /// Its size in bytes, as the sender gave it.
    pub size: u64,
}

impl From<&shallot_client::StoredAttachment> for Attached {
    fn from(a: &shallot_client::StoredAttachment) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.file_name(),
            size: a.size(),
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
    /// For a reply: the text it quotes.
    pub quote: Option<String>,
    /// Reactions: the emoji, and whether it is ours.
    pub reactions: Vec<(String, bool)>,
    /// Who wrote it, in a group (someone else's message); `None` in a 1:1 conversation.
    pub sender: Option<SessionId>,
    /// The files it carries.
    pub attachments: Vec<Attached>,
}

impl From<&StoredMessage> for Msg {
    fn from(m: &StoredMessage) -> Self {
        Self {
            id: m.id.to_string(),
            outgoing: m.direction == Direction::Outgoing,
            timestamp: m.timestamp,
            body: m.body.clone(),
            state: m.state,
            quote: None,
            reactions: Vec::new(),
            sender: None,
            attachments: Vec::new(),
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
            quote: None,
            reactions: Vec::new(),
            sender: (!outgoing).then_some(m.sender),
            attachments: Vec::new(),
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
    /// Whether they are typing to us.
    pub typing: bool,
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
    /// A receipt or reaction was recorded.
    Update(Update),
    /// The conversations whose other party is typing now.
    Typing(Vec<SessionId>),
    /// Our message `message` (`local-N` while in flight) carries these files, as stored.
    Attachments {
        /// The message's id.
        message: String,
        /// Its files, with their ids.
        attachments: Vec<Attached>,
    },
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
    /// Reply to message `message` (an id) of `to` with `text`, quoting it; report back as
    /// for [`Action::Send`].
    Reply {
        /// Identifies the pending message.
        token: u64,
        /// Recipient: a person or a group.
        to: Peer,
        /// The id of the message replied to.
        message: String,
        /// Text.
        text: String,
    },
    /// React to message `message` (an id) with `emoji`, or take the reaction back.
    React {
        /// The id of the message.
        message: String,
        /// The emoji.
        emoji: String,
        /// Take it back.
        remove: bool,
    },
    /// The messages with these ids were shown: mark them read (read receipts, if on).
    Read(Vec<String>),
    /// Tell `to` we started (or stopped) typing.
    Typing {
        /// The conversation.
        to: SessionId,
        /// Started or stopped.
        started: bool,
    },
    /// Upload the file at `path` and send it to `to`; report back as for [`Action::Send`]
    /// (progress in [`Event::Status`]).
    Attach {
        /// Identifies the pending message.
        token: u64,
        /// Recipient: a person or a group.
        to: Peer,
        /// The file.
        path: PathBuf,
    },
    /// Download attachment `id` and save it at `path` (progress and outcome in
    /// [`Event::Status`]).
    Save {
        /// The attachment's id.
        id: String,
        /// Its name (for the status line).
        name: String,
        /// Where to save it.
        path: PathBuf,
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
    /// Incoming message ids already reported read ([`Action::Read`]).
    reported: HashSet<String>,
    /// While composing: the conversation, when STARTED was last sent, and the last key.
    composing: Option<(SessionId, u64, u64)>,
    /// Our Session ID: marks our reactions in groups.
    pub me: Option<SessionId>,
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

    /// The incoming messages of the selected conversation not yet reported read: it is on
    /// screen, so they are read now.
    pub fn read_current(&mut self) -> Action {
        let Some(conv) = self.convs.get(self.selected) else {
            return Action::None;
        };
        // Groups send no read receipts (as in Session).
        if matches!(conv.id, Peer::Group(_)) {
            return Action::None;
        }
        let ids: Vec<String> = conv
            .messages
            .iter()
            .filter(|m| !m.outgoing && !m.id.starts_with("local-"))
            .filter(|m| !self.reported.contains(&m.id))
            .map(|m| m.id.clone())
            .collect();
        if ids.is_empty() {
            return Action::None;
        }
        self.reported.extend(ids.iter().cloned());
        Action::Read(ids)
    }

    /// Once a second: a STOPPED typing indicator after [`TYPING_IDLE_MS`] without a key.
    pub fn tick(&mut self) -> Action {
        match self.composing {
            Some((to, _, last_key)) if self.now_ms.saturating_sub(last_key) >= TYPING_IDLE_MS => {
                self.composing = None;
                Action::Typing { to, started: false }
            }
            _ => Action::None,
        }
    }

    /// After a key that edited the input: STARTED when composing starts, and again every
    /// [`TYPING_REFRESH_MS`]; STOPPED when the input is emptied. Commands are not composing.
    fn typed(&mut self) -> Action {
        // Typing indicators are for one-to-one conversations (Session sends none in groups).
        let to = match self.current().map(|c| c.id) {
            Some(Peer::Direct(to)) => Some(to),
            _ => None,
        };
        let Some(to) = to else {
            return match self.composing.take() {
                Some((was, _, _)) => Action::Typing {
                    to: was,
                    started: false,
                },
                None => Action::None,
            };
        };
        let now = self.now_ms;
        let composing = !self.input.is_empty() && !self.input.starts_with('/');
        match self.composing {
            Some((was, _, _)) if !composing || was != to => {
                self.composing = None;
                Action::Typing {
                    to: was,
                    started: false,
                }
            }
            None if !composing => Action::None,
            Some((_, sent, _)) if now.saturating_sub(sent) < TYPING_REFRESH_MS => {
                self.composing = Some((to, sent, now));
                Action::None
            }
            _ => {
                self.composing = Some((to, now, now));
                Action::Typing { to, started: true }
            }
        }
    }

    fn update(&mut self, update: Update) {
        match update {
            Update::Receipt {
                conversation,
                messages,
                read,
            } => {
                let Some(conv) = self
                    .convs
                    .iter_mut()
                    .find(|c| c.id == Peer::Direct(conversation))
                else {
                    return;
                };
                let ids: HashSet<String> = messages.iter().map(ToString::to_string).collect();
                for m in conv.messages.iter_mut().filter(|m| ids.contains(&m.id)) {
                    if read {
                        m.state = MessageState::Read;
                    } else if m.state != MessageState::Read {
                        m.state = MessageState::Delivered;
                    }
                }
            }
            Update::Reaction {
                conversation,
                group,
                message,
                author,
                emoji,
                removed,
            } => {
                // In a one-to-one conversation, a reaction not by them is ours.
                let (pane, mine) = match group {
                    Some(group) => (Peer::Group(group), Some(author) == self.me),
                    None => (Peer::Direct(conversation), author != conversation),
                };
                let id = message.to_string();
                let Some(m) = self
                    .convs
                    .iter_mut()
                    .find(|c| c.id == pane)
                    .and_then(|c| c.messages.iter_mut().find(|m| m.id == id))
                else {
                    return;
                };
                let entry = (emoji, mine);
                if removed {
                    m.reactions.retain(|r| *r != entry);
                } else if !m.reactions.contains(&entry) {
                    m.reactions.push(entry);
                }
            }
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
            typing: false,
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
                if i == self.selected {
                    return self.read_current();
                }
            }
            Event::Update(update) => self.update(update),
            Event::Typing(typing) => {
                for c in &mut self.convs {
                    c.typing = matches!(c.id, Peer::Direct(id) if typing.contains(&id));
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
            Event::Attachments {
                message,
                attachments,
            } => {
                if let Some(m) = self
                    .convs
                    .iter_mut()
                    .flat_map(|c| c.messages.iter_mut())
                    .find(|m| m.id == message)
                {
                    m.attachments = attachments;
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
            KeyCode::Up | KeyCode::BackTab if n > 0 => {
                self.select((self.selected + n - 1) % n);
                return self.read_current();
            }
            KeyCode::Down | KeyCode::Tab if n > 0 => {
                self.select((self.selected + 1) % n);
                return self.read_current();
            }
            KeyCode::Backspace => {
                self.input.pop();
                return self.typed();
            }
            KeyCode::Char(c) => {
                self.input.push(c);
                return self.typed();
            }
            KeyCode::Enter => return self.submit(),
            _ => {}
        }
        Action::None
    }

    /// `/new ID`: opens (or selects) the conversation with a person or a group.
    fn open(&mut self, arg: &str) {
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
    }

    /// `/attach PATH` in the selected conversation: the file is checked, shown at once as
    /// being sent, and handed to the runtime; on a bad file the command stays in the input.
    fn attach(&mut self, path: &str, line: String) -> Action {
        let attached = match attachable(path) {
            Ok(attached) => attached,
            Err(why) => {
                self.status = Some(why);
                self.input = line;
                return Action::None;
            }
        };
        let Some((token, to)) = self.show_sending(String::new(), None, vec![attached]) else {
            return Action::None;
        };
        Action::Attach {
            token,
            to,
            path: PathBuf::from(path),
        }
    }

    /// Shows a message we are sending in the selected conversation at once, as `Sending`, under
    /// a new local token (the runtime reports its outcome by it); ends composing (the other side
    /// clears "typing" when the message arrives). The token and the conversation.
    fn show_sending(
        &mut self,
        body: String,
        quote: Option<String>,
        attachments: Vec<Attached>,
    ) -> Option<(u64, Peer)> {
        let now = self.now_ms;
        let conv = self.convs.get_mut(self.selected)?;
        self.status = None;
        self.composing = None;
        self.next_token += 1;
        let token = self.next_token;
        let timestamp = conv.messages.last().map_or(now, |m| m.timestamp.max(now));
        conv.messages.push(Msg {
            id: format!("local-{token}"),
            outgoing: true,
            timestamp,
            body,
            state: MessageState::Sending,
            quote,
            reactions: Vec::new(),
            sender: None,
            attachments,
        });
        Some((token, conv.id))
    }

    fn submit(&mut self) -> Action {
        let line = std::mem::take(&mut self.input);
        let text = line.trim();
        if text.is_empty() {
            return Action::None;
        }
        if let Some(arg) = text.strip_prefix("/new") {
            self.open(arg.trim());
            return Action::None;
        }
        let Some(conv) = self.convs.get_mut(self.selected) else {
            self.status = Some("no conversation: start one with /new <session-id>".into());
            self.input = line;
            return Action::None;
        };
        if let Some(args) = text.strip_prefix("/save") {
            return save(conv, args).unwrap_or_else(|usage| {
                self.status = Some(usage);
                Action::None
            });
        }
        if let Some(path) = text.strip_prefix("/attach") {
            let path = path.trim().to_owned();
            return self.attach(&path, line);
        }
        for (command, remove) in [("/react ", false), ("/unreact ", true)] {
            if let Some(args) = text.strip_prefix(command) {
                let mut words = args.split_whitespace();
                let target = words.next().and_then(|n| message_at(conv, n));
                if let (Some(m), Some(emoji), None) = (target, words.next(), words.next()) {
                    self.status = None;
                    return Action::React {
                        message: m.id.clone(),
                        emoji: emoji.to_owned(),
                        remove,
                    };
                }
                self.status = Some(format!("usage: {command}N EMOJI (N: the message's number)"));
                return Action::None;
            }
        }
        let mut quote = None;
        let mut text = text;
        if let Some(args) = text.strip_prefix("/reply ") {
            let (n, reply) = args.trim_start().split_once(' ').unwrap_or((args, ""));
            match message_at(conv, n) {
                Some(m) if !reply.trim().is_empty() => {
                    quote = Some((m.id.clone(), m.body.clone()));
                    text = reply.trim();
                }
                _ => {
                    self.status = Some("usage: /reply N TEXT (N: the message's number)".into());
                    return Action::None;
                }
            }
        }
        let text = text.to_owned();
        let shown = quote.as_ref().map(|(_, body)| body.clone());
        let Some((token, to)) = self.show_sending(text.clone(), shown, Vec::new()) else {
            return Action::None;
        };
        match quote {
            Some((message, _)) => Action::Reply {
                token,
                to,
                message,
                text,
            },
            None => Action::Send { token, to, text },
        }
    }
}

/// The file `/attach PATH` names, checked before anything is sent: it exists, is a file, and is
/// within the attachment size limit.
fn attachable(path: &str) -> Result<Attached, String> {
    if path.is_empty() {
        return Err("usage: /attach PATH (a file up to 10 MB)".into());
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot attach {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot attach {path}: not a file"));
    }
    let max = shallot_client::attachments::MAX_ATTACHMENT_SIZE as u64;
    if meta.len() > max {
        return Err(format!(
            "cannot attach {path}: {} bytes is over the {max}-byte limit",
            meta.len()
        ));
    }
    let name = std::path::Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned());
    Ok(Attached {
        id: String::new(),
        name,
        size: meta.len(),
    })
}

/// `/save N PATH` (or `N.K` for a message's K-th file): the download to start, or the usage.
fn save(conv: &Conv, args: &str) -> Result<Action, String> {
    const USAGE: &str = "usage: /save N PATH (N: the message's number; N.K: its K-th file)";
    let (which, path) = args
        .trim()
        .split_once(' ')
        .ok_or_else(|| USAGE.to_owned())?;
    let path = path.trim();
    let (n, k) = which.split_once('.').unwrap_or((which, "1"));
    let m = message_at(conv, n).ok_or_else(|| USAGE.to_owned())?;
    if path.is_empty() {
        return Err(USAGE.to_owned());
    }
    let Some(file) = k
        .parse::<usize>()
        .ok()
        .and_then(|k| m.attachments.get(k.checked_sub(1)?))
    else {
        return Err(if m.attachments.is_empty() {
            format!("message {n} has no file")
        } else {
            format!("message {n} has no file {k}")
        });
    };
    if file.id.is_empty() {
        return Err("that file is still being sent".into());
    }
    Ok(Action::Save {
        id: file.id.clone(),
        name: file.name.clone(),
        path: PathBuf::from(path),
    })
}

/// Message number `n` (as the screen numbers them, from 1) of `conv`, if sent or received
/// (not one still being sent).
fn message_at<'a>(conv: &'a Conv, n: &str) -> Option<&'a Msg> {
    let i = n.trim().trim_start_matches('#').parse::<usize>().ok()?;
    conv.messages
        .get(i.checked_sub(1)?)
        .filter(|m| !m.id.starts_with("local-"))
}

#[cfg(test)]
impl App {
    /// Whether a STARTED typing indicator is in force (tests).
    pub fn composing(&self) -> bool {
        self.composing.is_some()
    }
}
