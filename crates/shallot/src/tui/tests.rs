//! App state transitions, rendered through ratatui's `TestBackend`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use shallot_client::{MessageState, Update};
use shallot_proto::group::GroupId;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::SessionId;

use super::app::{Action, App, Attached, Conv, Event, Msg, PathStatus, Peer};
use super::view::draw;

fn sid(byte: char) -> SessionId {
    format!("05{}", byte.to_string().repeat(64))
        .parse()
        .expect("valid session id")
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        let action = app.handle(key(KeyCode::Char(c)));
        assert!(
            matches!(action, Action::None | Action::Typing { .. }),
            "{action:?}"
        );
    }
}

fn incoming(conv: SessionId, id: &str, ts: u64, body: &str) -> Event {
    Event::Incoming {
        conversation: Peer::Direct(conv),
        msg: Msg {
            id: id.into(),
            outgoing: false,
            timestamp: ts,
            body: body.into(),
            state: MessageState::Received,
            quote: None,
            reactions: Vec::new(),
            sender: None,
            attachments: Vec::new(),
        },
    }
}

fn conv(id: SessionId, name: &str) -> Conv {
    pane(Peer::Direct(id), name)
}

/// An empty, read pane for `id` named `name`.
fn pane(id: Peer, name: &str) -> Conv {
    Conv {
        id,
        name: Some(name.into()),
        unread: 0,
        messages: Vec::new(),
        typing: false,
    }
}

/// An app with a conversation with `a` ("alice") and the group `group` ("Friends").
fn alice_and_group(a: SessionId, group: GroupId) -> App {
    App::new(vec![conv(a, "alice"), pane(Peer::Group(group), "Friends")])
}

fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(100, 20)).expect("test terminal");
    terminal.draw(|f| draw(f, app)).expect("draw");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn select_switches_conversation() {
    let (a, b) = (sid('a'), sid('b'));
    let mut app = App::new(vec![conv(a, "alice"), conv(b, "bob")]);
    assert_eq!(app.selected, 0);
    assert!(screen(&app).contains(&a.to_string()));
    app.handle(key(KeyCode::Down));
    assert_eq!(app.selected, 1);
    assert!(screen(&app).contains(&b.to_string()));
    app.handle(key(KeyCode::Tab));
    assert_eq!(app.selected, 0);
    app.handle(key(KeyCode::Up));
    assert_eq!(app.selected, 1);
}

#[test]
fn send_goes_sending_then_stored_or_failed() {
    let a = sid('a');
    let mut app = App::new(vec![conv(a, "alice")]);
    app.now_ms = 3_600_000;
    type_text(&mut app, "hello there");
    assert!(
        screen(&app).contains("hello there"),
        "input line shows text"
    );
    let Action::Send { token, to, text } = app.handle(key(KeyCode::Enter)) else {
        panic!("Enter must send");
    };
    assert_eq!((to, text.as_str()), (Peer::Direct(a), "hello there"));
    assert!(app.input.is_empty());
    let s = screen(&app);
    assert!(s.contains("01:00:00 you: hello there [sending…]"), "{s}");

    app.handle(Event::SendDone {
        token,
        result: Ok(("hash1".into(), 3)),
    });
    let s = screen(&app);
    assert!(s.contains("you: hello there [stored on 3]"), "{s}");
    assert!(!s.contains("sending…"));
    // A later sync copy of the same message (same hash) is not shown twice.
    app.handle(incoming(a, "hash1", 3_600_000, "hello there"));
    assert_eq!(app.convs[0].messages.len(), 1);

    type_text(&mut app, "second");
    let Action::Send { token, .. } = app.handle(key(KeyCode::Enter)) else {
        panic!("Enter must send");
    };
    app.handle(Event::SendDone {
        token,
        result: Err("PathFailed".into()),
    });
    let s = screen(&app);
    assert!(s.contains("you: second [failed]"), "{s}");
    assert!(s.contains("last error: PathFailed"), "{s}");
}

#[test]
fn incoming_shows_once_and_counts_unread() {
    let (a, b) = (sid('a'), sid('b'));
    let mut app = App::new(vec![conv(a, "alice"), conv(b, "bob")]);
    app.handle(incoming(b, "h1", 1_000, "hi from bob"));
    app.handle(incoming(b, "h1", 1_000, "hi from bob"));
    app.handle(incoming(b, "h2", 2_000, "again"));
    assert_eq!(app.convs[1].messages.len(), 2);
    assert_eq!(app.convs[1].unread, 2);
    assert!(screen(&app).contains("bob (2)"));
    // Messages in the selected conversation are not unread.
    app.handle(incoming(a, "h3", 3_000, "from alice"));
    assert_eq!(app.convs[0].unread, 0);
    let s = screen(&app);
    assert!(s.contains("00:00:03 them: from alice"), "{s}");
    assert!(!s.contains("hi from bob"));
    // Selecting clears the count and shows the messages once each.
    app.handle(key(KeyCode::Down));
    let s = screen(&app);
    assert!(s.contains("bob ") && !s.contains("bob (2)"), "{s}");
    assert_eq!(s.matches("hi from bob").count(), 1, "{s}");
    assert!(s.contains("them: again"));
}

#[test]
fn new_conversation_command_and_unknown_sender() {
    let mut app = App::new(Vec::new());
    assert!(screen(&app).contains("/new <session-id>"));
    // Sending without a conversation keeps the text and explains.
    type_text(&mut app, "hi");
    assert_eq!(app.handle(key(KeyCode::Enter)), Action::None);
    assert_eq!(app.input, "hi");
    app.input.clear();
    type_text(&mut app, "/new nonsense");
    app.handle(key(KeyCode::Enter));
    assert!(screen(&app).contains("usage: /new"));
    let c = sid('c');
    type_text(&mut app, &format!("/new {c}"));
    app.handle(key(KeyCode::Enter));
    assert_eq!(app.convs.len(), 1);
    assert_eq!(app.current().map(|x| x.id), Some(Peer::Direct(c)));
    // A message from someone new opens a conversation with one unread message.
    let d = sid('d');
    app.handle(incoming(d, "h9", 5_000, "hello stranger"));
    assert_eq!(app.convs.len(), 2);
    assert_eq!(app.convs[1].unread, 1);
    assert!(screen(&app).contains("05dddd…dddd (1)"));
}

#[test]
fn footer_shows_paths_and_quit_keys() {
    let mut app = App::new(Vec::new());
    app.handle(Event::Status(Some("building paths…".into())));
    assert!(screen(&app).contains("building paths…"));
    app.handle(Event::Paths(PathStatus {
        paths: 2,
        guards: vec!["10.123.0.5:22021".into(), "10.123.0.7:22022".into()],
        offset_ms: -42,
    }));
    let s = screen(&app);
    assert!(s.contains("paths: 2 […5:22021,…7:22022]"), "{s}");
    assert!(s.contains("clock offset: -42 ms"), "{s}");
    assert_eq!(app.handle(key(KeyCode::Esc)), Action::Quit);
    assert_eq!(
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL
        ))),
        Action::Quit
    );
}

/// A message hash and its text id.
fn hash(n: u8) -> (MessageHash, String) {
    let h = MessageHash::from_bytes([n; 32]);
    (h, h.to_string())
}

/// Sends `text` in the selected conversation and confirms it stored as `id`.
fn sent(app: &mut App, text: &str, id: &str) {
    type_text(app, text);
    let Action::Send { token, .. } = app.handle(key(KeyCode::Enter)) else {
        panic!("Enter must send");
    };
    app.handle(Event::SendDone {
        token,
        result: Ok((id.into(), 2)),
    });
}

#[test]
fn read_receipts_tick_our_messages_and_reading_reports_incoming() {
    let (a, b) = (sid('a'), sid('b'));
    let mut app = App::new(vec![conv(a, "alice"), conv(b, "bob")]);
    let (h1, id1) = hash(1);
    sent(&mut app, "lunch?", &id1);
    assert!(screen(&app).contains("you: lunch? [stored on 2]"));
    // A receipt for another conversation's message changes nothing here.
    app.handle(Event::Update(Update::Receipt {
        conversation: b,
        messages: vec![h1],
        read: true,
    }));
    assert!(screen(&app).contains("[stored on 2]"));
    app.handle(Event::Update(Update::Receipt {
        conversation: a,
        messages: vec![h1],
        read: false,
    }));
    assert!(screen(&app).contains("you: lunch? [delivered ✓]"));
    app.handle(Event::Update(Update::Receipt {
        conversation: a,
        messages: vec![h1],
        read: true,
    }));
    let s = screen(&app);
    assert!(s.contains("you: lunch? [read ✓✓]"), "{s}");

    // A message arriving in the conversation on screen is read at once; one elsewhere is
    // read when its conversation is selected, and only once.
    let (_, id2) = hash(2);
    let (_, id3) = hash(3);
    assert_eq!(
        app.handle(incoming(a, &id2, 5_000, "yes")),
        Action::Read(vec![id2.clone()])
    );
    assert_eq!(app.handle(incoming(b, &id3, 6_000, "hey")), Action::None);
    assert_eq!(app.handle(key(KeyCode::Down)), Action::Read(vec![id3]));
    assert_eq!(
        app.handle(key(KeyCode::Up)),
        Action::None,
        "alice's read already"
    );
}

#[test]
fn typing_shows_for_the_peer_and_ours_is_sent_rate_limited() {
    let (a, b) = (sid('a'), sid('b'));
    let mut app = App::new(vec![conv(a, "alice"), conv(b, "bob")]);
    app.handle(Event::Typing(vec![a]));
    assert!(screen(&app).contains("typing…"));
    app.handle(Event::Typing(vec![b]));
    assert!(!screen(&app).contains("typing…"), "bob's is not on screen");
    app.handle(Event::Typing(Vec::new()));

    app.now_ms = 100_000;
    assert_eq!(
        app.handle(key(KeyCode::Char('h'))),
        Action::Typing {
            to: a,
            started: true
        }
    );
    // More keys within the refresh interval send nothing; after it, STARTED again.
    app.now_ms += 3_000;
    assert_eq!(app.handle(key(KeyCode::Char('i'))), Action::None);
    assert_eq!(app.tick(), Action::None, "not idle yet");
    app.now_ms += 4_000;
    assert_eq!(app.handle(key(KeyCode::Char('!'))), Action::None);
    app.now_ms += 4_000;
    assert_eq!(
        app.handle(key(KeyCode::Char('!'))),
        Action::Typing {
            to: a,
            started: true
        }
    );
    // Idle: STOPPED once.
    app.now_ms += 5_000;
    assert_eq!(
        app.tick(),
        Action::Typing {
            to: a,
            started: false
        }
    );
    assert_eq!(app.tick(), Action::None);
    // Emptying the input stops; a command is not composing; sending ends composing.
    app.input.clear();
    assert!(matches!(
        app.handle(key(KeyCode::Char('x'))),
        Action::Typing { started: true, .. }
    ));
    assert_eq!(
        app.handle(key(KeyCode::Backspace)),
        Action::Typing {
            to: a,
            started: false
        }
    );
    assert_eq!(app.handle(key(KeyCode::Char('/'))), Action::None);
    app.input.clear();
    type_text_any(&mut app, "ok");
    assert!(app.composing());
    assert!(matches!(
        app.handle(key(KeyCode::Enter)),
        Action::Send { .. }
    ));
    assert!(!app.composing());
}

/// Types `text`, whatever actions the keys ask for.
fn type_text_any(app: &mut App, text: &str) {
    for c in text.chars() {
        app.handle(key(KeyCode::Char(c)));
    }
}

#[test]
fn reactions_and_replies_by_message_number() {
    let a = sid('a');
    let mut app = App::new(vec![conv(a, "alice")]);
    let (h1, id1) = hash(1);
    app.handle(incoming(a, &id1, 1_000, "lunch?"));
    let s = screen(&app);
    assert!(s.contains("  1 00:00:01 them: lunch?"), "{s}");

    type_text_any(&mut app, "/react 1 👍");
    assert_eq!(
        app.handle(key(KeyCode::Enter)),
        Action::React {
            message: id1.clone(),
            emoji: "👍".into(),
            remove: false
        }
    );
    type_text_any(&mut app, "/unreact 1 👍");
    assert!(matches!(
        app.handle(key(KeyCode::Enter)),
        Action::React { remove: true, .. }
    ));
    for bad in ["/react 9 👍", "/react 1", "/react x 👍"] {
        type_text_any(&mut app, bad);
        assert_eq!(app.handle(key(KeyCode::Enter)), Action::None, "{bad}");
        assert!(screen(&app).contains("usage: /react"), "{bad}");
    }
    // Their reaction and ours show with the message; taking one back removes it.
    for (author, removed) in [(a, false), (sid('f'), false)] {
        app.handle(Event::Update(Update::Reaction {
            conversation: a,
            group: None,
            message: h1,
            author,
            emoji: "👍".into(),
            removed,
        }));
    }
    // A wide emoji takes two cells (the second blank in the test buffer).
    let s = screen(&app).replace("👍 ", "👍");
    assert!(s.contains("them: lunch?  (👍 them, 👍 you)"), "{s}");
    app.handle(Event::Update(Update::Reaction {
        conversation: a,
        group: None,
        message: h1,
        author: a,
        emoji: "👍".into(),
        removed: true,
    }));
    assert!(screen(&app)
        .replace("👍 ", "👍")
        .contains("them: lunch?  (👍 you)"));

    type_text_any(&mut app, "/reply 1 sure, at noon");
    let Action::Reply {
        token,
        to,
        message,
        text,
    } = app.handle(key(KeyCode::Enter))
    else {
        panic!("a reply");
    };
    assert_eq!(
        (to, message, text.as_str()),
        (Peer::Direct(a), id1, "sure, at noon")
    );
    app.handle(Event::SendDone {
        token,
        result: Ok(("r".into(), 1)),
    });
    let s = screen(&app);
    assert!(s.contains("  2          > lunch?"), "{s}");
    assert!(s.contains("  2 "), "{s}");
    assert!(s.contains("you: sure, at noon [stored on 1]"), "{s}");
    type_text_any(&mut app, "/reply 1");
    assert_eq!(app.handle(key(KeyCode::Enter)), Action::None);
    assert!(screen(&app).contains("usage: /reply"));
}

#[test]
fn groups_are_listed_beside_conversations_and_sent_to() {
    let a = sid('a');
    let group = shallot_proto::group::GroupAdmin::from_seed([7; 32]).id();
    let mut app = alice_and_group(a, group);
    // A member's message lands in the group's pane, unread, with its author.
    app.handle(Event::Incoming {
        conversation: Peer::Group(group),
        msg: Msg {
            id: "g1".into(),
            outgoing: false,
            timestamp: 4_000,
            body: "hi all".into(),
            state: MessageState::Received,
            sender: Some(sid('b')),
            quote: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        },
    });
    assert_eq!(app.convs[1].unread, 1);
    let s = screen(&app);
    assert!(s.contains("# Friends (1)"), "{s}");
    app.handle(key(KeyCode::Down));
    let s = screen(&app);
    let title = format!("group Friends ({})", super::view::short_id(&group));
    assert!(s.contains(&title), "{s}");
    assert!(s.contains("00:00:04 05bbbb…bbbb: hi all"), "{s}");
    // Reactions and replies work on group messages too; ours are marked by our ID.
    let (h1, id1) = hash(1);
    app.handle(Event::Incoming {
        conversation: Peer::Group(group),
        msg: Msg {
            id: id1.clone(),
            outgoing: false,
            timestamp: 5_000,
            body: "lunch?".into(),
            state: MessageState::Received,
            sender: Some(sid('b')),
            quote: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        },
    });
    type_text_any(&mut app, "/react 2 🎉");
    assert_eq!(
        app.handle(key(KeyCode::Enter)),
        Action::React {
            message: id1.clone(),
            emoji: "🎉".into(),
            remove: false
        }
    );
    app.me = Some(sid('e'));
    for author in [sid('b'), sid('e')] {
        app.handle(Event::Update(Update::Reaction {
            conversation: sid('b'),
            group: Some(group),
            message: h1,
            author,
            emoji: "🎉".into(),
            removed: false,
        }));
    }
    let s = screen(&app).replace("🎉 ", "🎉");
    assert!(s.contains("lunch?  (🎉 them, 🎉 you)"), "{s}");
    type_text_any(&mut app, "/reply 2 noon");
    let Action::Reply { to, message, .. } = app.handle(key(KeyCode::Enter)) else {
        panic!("a reply in the group");
    };
    assert_eq!((to, message), (Peer::Group(group), id1));
    // Enter sends to the selected group.
    type_text(&mut app, "hello group");
    let Action::Send { to, text, .. } = app.handle(key(KeyCode::Enter)) else {
        panic!("Enter must send");
    };
    assert_eq!((to, text.as_str()), (Peer::Group(group), "hello group"));
    assert!(screen(&app).contains("you: hello group [sending…]"));
    // `/new 03…` opens a group's pane too.
    let other = shallot_proto::group::GroupAdmin::from_seed([8; 32]).id();
    type_text(&mut app, &format!("/new {other}"));
    app.handle(key(KeyCode::Enter));
    assert_eq!(app.current().map(|c| c.id), Some(Peer::Group(other)));
}

/// The screen with the paperclip's second cell (it is two columns wide) taken out.
fn flat(app: &App) -> String {
    screen(app).replace("📎  ", "📎 ")
}

#[test]
fn attach_sends_a_file_with_progress_in_the_status_line() {
    let a = sid('a');
    let group = shallot_proto::group::GroupAdmin::from_seed([9; 32]).id();
    let mut app = alice_and_group(a, group);
    app.now_ms = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.png");
    std::fs::write(&photo, vec![7u8; 1820]).unwrap();

    // A missing file is refused at once, the command kept for correcting.
    let missing = dir.path().join("nope.png");
    type_text_any(&mut app, &format!("/attach {}", missing.display()));
    assert_eq!(app.handle(key(KeyCode::Enter)), Action::None);
    assert!(app.status.as_deref().unwrap().starts_with("cannot attach"));
    assert!(app.input.starts_with("/attach"));
    assert!(app.convs[0].messages.is_empty());
    app.input.clear();
    type_text_any(&mut app, "/attach");
    app.handle(key(KeyCode::Enter));
    assert!(app.status.as_deref().unwrap().starts_with("usage: /attach"));
    app.input.clear();

    // A file: shown at once as `📎 name (size)`, sending; progress in the status line.
    type_text_any(&mut app, &format!("/attach {}", photo.display()));
    let Action::Attach { token, to, path } = app.handle(key(KeyCode::Enter)) else {
        panic!("/attach must attach");
    };
    assert_eq!((to, path.as_path()), (Peer::Direct(a), photo.as_path()));
    let s = flat(&app);
    assert!(s.contains("01:00:00 you:  [sending…]"), "{s}");
    assert!(s.contains("📎 photo.png (1.8 KB)"), "{s}");
    assert!(
        !s.contains("/save 1"),
        "our own file needs no save hint: {s}"
    );
    app.handle(Event::Status(Some("uploading photo.png: 45%".into())));
    assert!(screen(&app).contains("uploading photo.png: 45%"));
    app.handle(Event::Attachments {
        message: format!("local-{token}"),
        attachments: vec![Attached {
            id: "0123456789abcdef".into(),
            name: "photo.png".into(),
            size: 1820,
        }],
    });
    app.handle(Event::Status(None));
    app.handle(Event::SendDone {
        token,
        result: Ok(("hash1".into(), 3)),
    });
    let s = flat(&app);
    assert!(s.contains("you:  [stored on 3]"), "{s}");
    assert!(s.contains("📎 photo.png (1.8 KB)"), "{s}");
    assert_eq!(
        app.convs[0].messages[0].attachments[0].id,
        "0123456789abcdef"
    );

    // The same in a group's pane goes to the group.
    app.handle(key(KeyCode::Down));
    type_text_any(&mut app, &format!("/attach {}", photo.display()));
    let Action::Attach { to, .. } = app.handle(key(KeyCode::Enter)) else {
        panic!("/attach must attach in a group too");
    };
    assert_eq!(to, Peer::Group(group));
    assert!(flat(&app).contains("📎 photo.png (1.8 KB)"));
}

#[test]
fn a_received_file_shows_and_saves_by_message_number() {
    let a = sid('a');
    let mut app = App::new(vec![conv(a, "alice")]);
    let file = |id: &str, name: &str, size| Attached {
        id: id.into(),
        name: name.into(),
        size,
    };
    let Event::Incoming {
        conversation,
        mut msg,
    } = incoming(a, "h1", 5_000, "the report")
    else {
        unreachable!()
    };
    msg.attachments = vec![file("aaaa", "report.pdf", 1_000_000)];
    app.handle(Event::Incoming { conversation, msg });
    let Event::Incoming {
        conversation,
        mut msg,
    } = incoming(a, "h2", 6_000, "")
    else {
        unreachable!()
    };
    msg.attachments = vec![file("bbbb", "a.png", 512), file("cccc", "b.png", 2_500)];
    app.handle(Event::Incoming { conversation, msg });
    let s = flat(&app);
    assert!(s.contains("them: the report"), "{s}");
    assert!(s.contains("📎 report.pdf (1.0 MB)  · /save 1 PATH"), "{s}");
    assert!(s.contains("📎 a.png (512 B)  · /save 2.1 PATH"), "{s}");
    assert!(s.contains("📎 b.png (2.5 KB)  · /save 2.2 PATH"), "{s}");

    type_text_any(&mut app, "/save 1 /tmp/out.pdf");
    assert_eq!(
        app.handle(key(KeyCode::Enter)),
        Action::Save {
            id: "aaaa".into(),
            name: "report.pdf".into(),
            path: "/tmp/out.pdf".into(),
        }
    );
    type_text_any(&mut app, "/save 2.2 ~/b copy.png");
    assert_eq!(
        app.handle(key(KeyCode::Enter)),
        Action::Save {
            id: "cccc".into(),
            name: "b.png".into(),
            path: "~/b copy.png".into(),
        }
    );
    for (bad, why) in [
        ("/save 2.3 x", "message 2 has no file 3"),
        ("/save 1", "usage: /save N PATH"),
        ("/save 9 x", "usage: /save N PATH"),
    ] {
        type_text_any(&mut app, bad);
        assert_eq!(app.handle(key(KeyCode::Enter)), Action::None, "{bad}");
        assert!(
            app.status.as_deref().unwrap().starts_with(why),
            "{bad}: {:?}",
            app.status
        );
    }
}
