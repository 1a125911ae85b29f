//! Rendering of [`App`] into a ratatui frame.

use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use shallot_client::MessageState;

use super::app::{App, Msg, Peer};

/// `05abcd…wxyz` (or `03…` for a group).
pub fn short_id(id: &impl std::fmt::Display) -> String {
    let s = id.to_string();
    if s.len() <= 12 {
        return s;
    }
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

/// `HH:MM:SS` (UTC) of a millisecond timestamp.
pub fn hms(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

fn state_text(m: &Msg) -> String {
    match m.state {
        MessageState::Sending => " [sending…]".into(),
        MessageState::Stored(n) => format!(" [stored on {n}]"),
        MessageState::Failed => " [failed]".into(),
        MessageState::Received => String::new(),
        MessageState::Delivered => " [delivered ✓]".into(),
        MessageState::Read => " [read ✓✓]".into(),
    }
}

/// The lines of one message, numbered as `/react` and `/reply` name it: what it quotes (a
/// reply), then its text with its delivery state and reactions.
fn message_lines(n: usize, m: &Msg) -> Vec<Line<'static>> {
    let who = match (m.outgoing, &m.sender) {
        (true, _) => "you".to_owned(),
        (false, Some(sender)) => short_id(sender),
        (false, None) => "them".to_owned(),
    };
    let extra = if m.outgoing {
        state_text(m)
    } else {
        String::new()
    };
    let reactions = if m.reactions.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = m
            .reactions
            .iter()
            .map(|(emoji, ours)| format!("{emoji} {}", if *ours { "you" } else { "them" }))
            .collect();
        format!("  ({})", list.join(", "))
    };
    let mut lines = Vec::new();
    if let Some(quote) = &m.quote {
        let quote: String = quote.chars().filter(|c| !c.is_control()).take(60).collect();
        lines.push(Line::from(format!("{n:>3}          > {quote}")));
    }
    lines.push(Line::from(format!(
        "{n:>3} {} {who}: {}{extra}{reactions}",
        hms(m.timestamp),
        m.body
    )));
    let several = m.attachments.len() > 1;
    for (k, a) in m.attachments.iter().enumerate() {
        let name: String = a.name.chars().filter(|c| !c.is_control()).collect();
        // A received file says how to save it (`/save N.K` when the message has several).
        let hint = match (m.outgoing, several) {
            (true, _) => String::new(),
            (false, false) => format!("  · /save {n} PATH"),
            (false, true) => format!("  · /save {n}.{} PATH", k + 1),
        };
        lines.push(Line::from(format!(
            "{n:>3}          📎 {name} ({}){hint}",
            size_text(a.size)
        )));
    }
    lines
}

/// A file size as people read it: `512 B`, `1.8 KB`, `10.0 MB` (powers of 1000).
pub fn size_text(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // Shown with one decimal.
    let b = bytes as f64;
    if bytes < 1000 {
        format!("{bytes} B")
    } else if bytes < 1_000_000 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

/// A conversation's line in the left pane: its name (groups marked `#`, as they sit in the same
/// list as 1:1 conversations) and its unread count.
fn list_entry(c: &super::app::Conv) -> ListItem<'static> {
    let name = c.name.clone().unwrap_or_else(|| short_id(&c.id));
    let name = match c.id {
        Peer::Group(_) => format!("# {name}"),
        Peer::Direct(_) => name,
    };
    ListItem::new(if c.unread > 0 {
        format!("{name} ({})", c.unread)
    } else {
        name
    })
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let [main, input, footer] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [left, right] =
        Layout::horizontal([Constraint::Length(24), Constraint::Min(10)]).areas(main);

    let items: Vec<ListItem> = app.convs.iter().map(list_entry).collect();
    let list = List::new(items)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title("Conversations"),
        )
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol(">");
    let mut state = ListState::default();
    if !app.convs.is_empty() {
        state.select(Some(app.selected));
    }
    frame.render_stateful_widget(list, left, &mut state);

    let (title, lines): (String, Vec<Line>) = match app.current() {
        Some(c) => (
            match c.id {
                Peer::Group(id) => {
                    let name = c.name.as_deref().unwrap_or_default();
                    format!("group {name} ({})", short_id(&id))
                }
                Peer::Direct(id) => id.to_string(),
            },
            c.messages
                .iter()
                .enumerate()
                .flat_map(|(i, m)| message_lines(i + 1, m))
                .chain(c.typing.then(|| Line::from("    typing…")))
                .collect(),
        ),
        None => (
            "No conversation".into(),
            vec![Line::from("Start one with /new <session-id>")],
        ),
    };
    let height = right.height.saturating_sub(2);
    let scroll = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_sub(height);
    let messages = Paragraph::new(lines)
        .block(Block::default().borders(Borders::ALL).title(title))
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0));
    frame.render_widget(messages, right);

    let input_title = app.status.clone().unwrap_or_else(|| {
        "Enter: send · /reply N text · /react N 👍 · /attach PATH · /save N PATH · /new ID · Esc: quit"
            .into()
    });
    frame.render_widget(
        Paragraph::new(app.input.as_str())
            .block(Block::default().borders(Borders::ALL).title(input_title)),
        input,
    );

    let guards = app
        .paths
        .guards
        .iter()
        .map(|g| short_addr(g))
        .collect::<Vec<_>>()
        .join(",");
    let error = app
        .last_error
        .as_deref()
        .map_or(String::new(), |e| format!(" · last error: {e}"));
    frame.render_widget(
        Paragraph::new(format!(
            "paths: {} [{guards}] · clock offset: {} ms{error}",
            app.paths.paths, app.paths.offset_ms
        )),
        footer,
    );
}

/// `a.b.c.d:port` shortened to its last octet and port (`…d:port`) when long.
fn short_addr(addr: &str) -> String {
    match addr.rsplit_once('.') {
        Some((_, tail)) if addr.len() > 12 => format!("…{tail}"),
        _ => addr.to_owned(),
    }
}
