//! `shallot chat`: a terminal chat client (ratatui + crossterm) over the same account, database
//! and network setup as `shallot send` / `shallot inbox`.
//!
//! The screen state lives in [`app::App`] (pure, unit-tested); [`view::draw`] renders it; this
//! module owns the terminal, the Tokio runtime and the background tasks (bootstrap, push
//! subscription with polling fallback, sends, path status).

pub mod app;
#[cfg(test)]
mod tests;
pub mod view;

use std::io::{self, Stdout};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use crossterm::event::{self as ct, Event as CtEvent, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use shallot_client::{
    push, AccountStore, AnyMessage, ClientConfig, Db, Direction, MessageState, Messenger,
    MessengerError, NetworkClock, OnionClient, Pool, ReceivedMessage, Seed, Update,
};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::Identity;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use app::{Action, App, Attached, Conv, Event, Msg, PathStatus, Peer};
use shallot_client::groups::Group;

/// `shallot chat`.
#[derive(Args)]
pub struct ChatArgs {
    /// A service node to fetch the node list from: `ED25519_KEY@IP:PORT` (pinned: the node must
    /// prove that key) or `IP:PORT` (unpinned, devnets only: anyone on the path can answer for
    /// it). Repeatable: with two or more seeds, a node is used only if most of them list it, so
    /// one lying seed cannot choose your nodes; a single seed can. Without any seed, the node
    /// list saved by the last run is used
    #[arg(long, value_name = "[KEY@]IP:PORT", value_parser = crate::msg_cmd::parse_seed_node)]
    seed_node: Vec<Seed>,
    /// A seed/directory JSON-RPC URL to fetch the node list from (repeatable)
    #[arg(long, value_name = "URL")]
    seed_url: Vec<String>,
    /// Only poll (every 5 s) instead of waiting for messages through the onion path
    #[arg(long, conflicts_with = "direct_push")]
    no_push: bool,
    /// Connect to seeds and guards through this SOCKS5 proxy (e.g. Tor's
    /// `socks5h://127.0.0.1:9050`); `--direct-push` is off behind a proxy
    #[arg(long, value_name = "socks5h://HOST:PORT", value_parser = crate::msg_cmd::parse_proxy)]
    proxy: Option<String>,
    /// Open every connection (seeds, guards, the proxy, direct push) from this local address;
    /// on a devnet, each client its own loopback address (127.0.200.N)
    #[arg(long, value_name = "IP")]
    source_ip: Option<std::net::IpAddr>,
    /// Receive by a direct WebSocket to a swarm member instead of through the onion path. The
    /// swarm member learns your IP address together with your account (and when you are
    /// online); the default private push reveals neither to any single node
    #[arg(long)]
    direct_push: bool,
    /// Before a message leaves, wait a random time up to this many ms (a timing defence; see
    /// `shallot send --help`) [default: 0]
    #[arg(long, value_name = "MS")]
    send_jitter_ms: Option<u64>,
    /// Give a message a timestamp a random time up to this many ms in the past (the same
    /// defence without the wait; see `shallot send --help`) [default: 2000; 0 turns it off]
    #[arg(long, value_name = "MS")]
    backdate_ms: Option<u64>,
    /// Send this many dummy messages a minute at random times, padded like real ones, so your
    /// guard cannot tell when you really send (cover traffic; about 40 KiB each) [default: 0]
    #[arg(long, value_name = "N", value_parser = crate::msg_cmd::parse_cover_rate)]
    cover_per_minute: Option<f64>,
    /// Do not tell contacts when you are typing (sent otherwise to accepted contacts only;
    /// read receipts are a separate setting: `shallot receipts on|off`)
    #[arg(long)]
    no_typing: bool,
    #[command(flatten)]
    files: crate::attach_cmd::FileServerArgs,
}

/// What the runtime needs besides the messenger: whether to send typing indicators, and where
/// attachments go (`/attach`, `/save`).
struct Opts {
    typing: bool,
    files: crate::attach_cmd::FileServerArgs,
    dir: PathBuf,
}

/// How the chat receives messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receive {
    /// Waiting retrieves through the onion path (the default).
    Private,
    /// A direct push WebSocket to a swarm member (opt-in, reveals our IP with our account).
    Direct,
    /// Polling every 5 s.
    Poll,
}

impl Receive {
    fn chosen(args: &ChatArgs) -> Self {
        if args.direct_push {
            Self::Direct
        } else if args.no_push {
            Self::Poll
        } else {
            Self::Private
        }
    }

    /// Receives until the screen closes.
    async fn run(self, m: Arc<Messenger>, identity: Option<Identity>, tx: UnboundedSender<Ui>) {
        match self {
            Self::Private => private_push_loop(m, tx).await,
            Self::Direct => receive_loop(m, identity, false, tx).await,
            Self::Poll => receive_loop(m, None, true, tx).await,
        }
    }
}

/// What the runtime's channel carries: screen events and the connected messenger.
enum Ui {
    App(Event),
    Connected(Arc<Messenger>),
    Fatal(String),
    /// Redraw only (e.g. the terminal was resized).
    Redraw,
}

type Term = Terminal<CrosstermBackend<Stdout>>;

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen);
}

/// Restores the terminal when dropped (normal exit, `?` errors, unwinding panics).
struct TermGuard;

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Runs `shallot chat`.
pub fn run(args: &ChatArgs, dir: &Path) -> Result<()> {
    let store = AccountStore::new(dir);
    if !store.exists() {
        bail!(
            "no account in {}: create one with `shallot account new` or `shallot account restore`",
            dir.display()
        );
    }
    let identity = store.load()?;
    let db = Db::open_in_dir(dir, &identity).context("could not open the local database")?;
    let convs = load_conversations(&db, &identity.session_id())?;
    let seeds: Vec<Seed> = args
        .seed_node
        .iter()
        .cloned()
        .chain(args.seed_url.iter().cloned().map(Seed::JsonRpc))
        .collect();
    let saved_pool = if seeds.is_empty() {
        let Some(pool) = db.load_pool()?.filter(|p| !p.nodes.is_empty()) else {
            bail!("no node list saved yet: give a seed with --seed-node IP:PORT or --seed-url URL");
        };
        Some(pool)
    } else {
        None
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous_hook(info);
    }));
    enable_raw_mode().context("could not switch the terminal to raw mode")?;
    let guard = TermGuard;
    execute!(io::stdout(), EnterAlternateScreen)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;

    let (tx, mut rx) = unbounded_channel::<Ui>();
    // Keys: crossterm's blocking reader on its own thread.
    let key_tx = tx.clone();
    std::thread::spawn(move || loop {
        match ct::read() {
            Ok(CtEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                if key_tx.send(Ui::App(Event::Key(k))).is_err() {
                    break;
                }
            }
            Ok(_) => {
                if key_tx.send(Ui::Redraw).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    });

    let mut app = App::new(convs);
    app.me = Some(identity.session_id());
    app.status = Some(if saved_pool.is_some() {
        "building paths… (saved node list)".into()
    } else {
        "bootstrapping from seed(s)…".into()
    });
    let boot_tx = tx.clone();
    let config = client_config(args, seeds);
    // A direct push connection would bypass the proxy: behind one, direct push becomes the
    // private (onion) kind.
    let mode = match Receive::chosen(args) {
        Receive::Direct if config.proxy.is_some() => Receive::Private,
        mode => mode,
    };
    rt.spawn(async move {
        match connect(config, saved_pool, identity, db, &boot_tx).await {
            Ok(m) => {
                let m = Arc::new(m);
                let _ = boot_tx.send(Ui::Connected(Arc::clone(&m)));
                let identity = store_identity(&store);
                // Runs as long as the chat receives.
                let _cover = m.client().start_cover();
                mode.run(m, identity, boot_tx).await;
            }
            Err(e) => {
                let _ = boot_tx.send(Ui::Fatal(format!("{e:#}")));
            }
        }
    });

    let opts = Opts {
        typing: !args.no_typing,
        files: args.files.clone(),
        dir: dir.to_owned(),
    };
    let result = rt.block_on(event_loop(&mut terminal, &mut app, &mut rx, &tx, &opts));
    // Leave the screen before the runtime shuts down.
    drop(guard);
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// `msg` (message `id`) with what `db` keeps beside it: its files, the text it quotes, and its
/// reactions (`me`'s marked ours).
fn with_extras(
    db: &Db,
    mut msg: Msg,
    id: &shallot_proto::message_hash::MessageHash,
    me: &shallot_proto::SessionId,
) -> Result<Msg> {
    msg.quote = db.quoted_text(id)?;
    msg.attachments = db.attachments(id)?.iter().map(Attached::from).collect();
    msg.reactions = db
        .reactions(id)?
        .into_iter()
        .map(|r| (r.emoji, r.author == *me))
        .collect();
    Ok(msg)
}

/// The 1:1 conversations saved in `db`, with each message's quote and reactions (`me`'s marked
/// ours), and beside them the groups we can write to, with their messages.
fn load_conversations(db: &Db, me: &shallot_proto::SessionId) -> Result<Vec<Conv>> {
    let mut convs = Vec::new();
    for c in db.conversations()? {
        let mut messages = Vec::new();
        for stored in db.messages(&c.id)? {
            messages.push(with_extras(db, Msg::from(&stored), &stored.id, me)?);
        }
        convs.push(Conv {
            id: Peer::Direct(c.id),
            name: c.name,
            unread: 0,
            messages,
            typing: false,
        });
    }
    for g in db.groups()?.into_iter().filter(Group::can_access) {
        let mut messages = Vec::new();
        for stored in db.group_messages(&g.id)? {
            messages.push(with_extras(db, Msg::from(&stored), &stored.id, me)?);
        }
        convs.push(Conv {
            id: Peer::Group(g.id),
            name: Some(g.name()),
            unread: 0,
            messages,
            typing: false,
        });
    }
    Ok(convs)
}

/// The client policy the chat's flags ask for.
fn client_config(args: &ChatArgs, seeds: Vec<Seed>) -> ClientConfig {
    ClientConfig {
        seeds,
        proxy: args.proxy.clone(),
        source_ip: args.source_ip,
        send_jitter: args.send_jitter_ms.map_or(
            shallot_client::timing::DEFAULT_SEND_JITTER,
            Duration::from_millis,
        ),
        backdate: args.backdate_ms.map_or(
            shallot_client::timing::DEFAULT_BACKDATE,
            Duration::from_millis,
        ),
        cover_per_minute: args
            .cover_per_minute
            .unwrap_or(shallot_client::timing::DEFAULT_COVER_PER_MINUTE),
        ..ClientConfig::default()
    }
}

fn store_identity(store: &AccountStore) -> Option<Identity> {
    store.load().ok()
}

async fn event_loop(
    terminal: &mut Term,
    app: &mut App,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Ui>,
    tx: &UnboundedSender<Ui>,
    opts: &Opts,
) -> Result<()> {
    let mut messenger: Option<Arc<Messenger>> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        if let Some(m) = &messenger {
            app.now_ms = m.client().clock().now_ms();
        } else {
            app.now_ms = NetworkClock::default().now_ms();
        }
        terminal.draw(|f| view::draw(f, app))?;
        let ui = tokio::select! {
            ui = rx.recv() => match ui { Some(ui) => ui, None => return Ok(()) },
            _ = tick.tick() => match &messenger {
                Some(m) => {
                    // Once a second: receipts and reactions recorded, who is typing, and
                    // whether our own composing has stopped.
                    for update in m.take_updates() {
                        app.handle(Event::Update(update));
                    }
                    let typists = app.convs.iter().filter_map(|c| match c.id {
                        Peer::Direct(id) if m.is_typing(&id) => Some(id),
                        _ => None,
                    });
                    app.handle(Event::Typing(typists.collect()));
                    let idle = app.tick();
                    perform(idle, messenger.as_ref(), tx, opts);
                    Ui::App(Event::Paths(path_status(m)))
                }
                None => continue,
            },
        };
        let event = match ui {
            Ui::App(e) => e,
            Ui::Connected(m) => {
                let status = path_status(&m);
                messenger = Some(m);
                app.handle(Event::Status(None));
                // The selected conversation is on screen: its messages are read.
                let read = app.read_current();
                perform(read, messenger.as_ref(), tx, opts);
                Event::Paths(status)
            }
            Ui::Fatal(e) => Event::Status(Some(format!("not connected: {e}"))),
            Ui::Redraw => continue,
        };
        match app.handle(event) {
            Action::Quit => {
                if let Some(m) = &messenger {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), m.save_network_state()).await;
                }
                return Ok(());
            }
            action => perform(action, messenger.as_ref(), tx, opts),
        }
    }
}

/// Starts what `action` asks for in the background; results come back on `tx`. Typing
/// indicators are sent only with `opts.typing`.
#[allow(clippy::too_many_lines)] // One arm per action.
fn perform(
    action: Action,
    messenger: Option<&Arc<Messenger>>,
    tx: &UnboundedSender<Ui>,
    opts: &Opts,
) {
    let tx = tx.clone();
    let Some(m) = messenger.map(Arc::clone) else {
        if let Action::Send { token, .. }
        | Action::Reply { token, .. }
        | Action::Attach { token, .. } = action
        {
            let _ = tx.send(Ui::App(Event::SendDone {
                token,
                result: Err("not connected yet".into()),
            }));
        }
        return;
    };
    match action {
        Action::Send { token, to, text } => {
            tokio::spawn(async move {
                let result = match to {
                    Peer::Direct(to) => m
                        .send(&to, &text)
                        .await
                        .map(|s| (s.hash.to_string(), s.stored_on)),
                    Peer::Group(group) => m
                        .send_to_group(&group, &text)
                        .await
                        .map(|s| (s.hash.to_string(), s.stored_on)),
                }
                .map_err(|e| error_kind(&e));
                let _ = tx.send(Ui::App(Event::SendDone { token, result }));
            });
        }
        Action::Reply {
            token,
            message,
            text,
            ..
        } => {
            tokio::spawn(async move {
                let result = m
                    .reply(&message, &text)
                    .await
                    .map(|s| (s.hash.to_string(), s.stored_on))
                    .map_err(|e| error_kind(&e));
                let _ = tx.send(Ui::App(Event::SendDone { token, result }));
            });
        }
        Action::React {
            message,
            emoji,
            remove,
        } => {
            tokio::spawn(async move {
                match m.react(&message, &emoji, remove).await {
                    Ok(reacted) => {
                        let (conversation, group) = match &reacted {
                            AnyMessage::Direct(d) => (d.conversation, None),
                            AnyMessage::Group(g) => (g.sender, Some(g.group)),
                        };
                        let _ = tx.send(Ui::App(Event::Update(Update::Reaction {
                            conversation,
                            group,
                            message: reacted.id(),
                            author: m.session_id(),
                            emoji: emoji.trim().to_owned(),
                            removed: remove,
                        })));
                    }
                    Err(e) => {
                        let _ = tx.send(Ui::App(Event::Error(error_kind(&e))));
                    }
                }
            });
        }
        Action::Read(ids) => {
            let ids: Vec<MessageHash> = ids.iter().filter_map(|id| id.parse().ok()).collect();
            tokio::spawn(async move {
                if let Err(e) = m.mark_read(&ids).await {
                    let _ = tx.send(Ui::App(Event::Error(error_kind(&e))));
                }
            });
        }
        Action::Attach { token, to, path } => {
            let (files, dir) = (opts.files.clone(), opts.dir.clone());
            tokio::spawn(async move {
                let result = attach(&m, &files, &dir, to, &path, token, &tx).await;
                let _ = tx.send(Ui::App(Event::Status(None)));
                if let Err(e) = &result {
                    let _ = tx.send(Ui::App(Event::Status(Some(format!("{e:#}")))));
                }
                let result = result.map_err(|e| {
                    e.downcast_ref::<MessengerError>()
                        .map_or_else(|| "attachment failed".to_owned(), error_kind)
                });
                let _ = tx.send(Ui::App(Event::SendDone { token, result }));
            });
        }
        Action::Save { id, name, path } => {
            let (files, dir) = (opts.files.clone(), opts.dir.clone());
            tokio::spawn(async move {
                let status = match save(&m, &files, &dir, &id, &name, &path, &tx).await {
                    Ok((saved, bytes)) => format!("saved {name} ({bytes} bytes) to {saved}"),
                    Err(e) => format!("could not save {name}: {e:#}"),
                };
                let _ = tx.send(Ui::App(Event::Status(Some(status))));
            });
        }
        Action::Typing { to, started } if opts.typing => {
            tokio::spawn(async move {
                if let Err(e) = m.send_typing(&to, started).await {
                    tracing::debug!("typing indicator not sent: {e}");
                }
            });
        }
        Action::Typing { .. } | Action::None | Action::Quit => {}
    }
}

/// A status-line progress reporter for a transfer of `name` (one update per percent).
fn status_progress(
    name: String,
    tx: UnboundedSender<Ui>,
) -> impl FnMut(shallot_client::attachments::Progress) + Send {
    let mut last = None;
    move |p| {
        let stage = p.stage.doing();
        let percent = p.done.saturating_mul(100) / p.total.max(1);
        if last != Some((p.stage, percent)) {
            last = Some((p.stage, percent));
            let _ = tx.send(Ui::App(Event::Status(Some(format!(
                "{stage} {name}: {percent}%"
            )))));
        }
    }
}

/// Uploads the file at `path` to the file server and sends it to `to`; the message's id and
/// how many nodes stored it. The message's files (with their ids) go to the screen first.
async fn attach(
    m: &Messenger,
    files: &crate::attach_cmd::FileServerArgs,
    dir: &Path,
    to: Peer,
    path: &Path,
    token: u64,
    tx: &UnboundedSender<Ui>,
) -> Result<(String, u32)> {
    let server = files.resolve(m, dir).await?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut progress = status_progress(name, tx.clone());
    let paths = [path.to_owned()];
    let (hash, stored_on, attachments) = match to {
        Peer::Direct(to) => {
            let sent = m
                .send_files(&to, "", &paths, &server, &mut |_, p| progress(p))
                .await?;
            (sent.hash, sent.stored_on, sent.attachments)
        }
        Peer::Group(group) => {
            let sent = m
                .send_files_to_group(&group, "", &paths, &server, &mut |_, p| progress(p))
                .await?;
            (sent.hash, sent.stored_on, sent.attachments)
        }
    };
    let _ = tx.send(Ui::App(Event::Attachments {
        message: format!("local-{token}"),
        attachments: attachments.iter().map(Attached::from).collect(),
    }));
    Ok((hash.to_string(), stored_on))
}

/// Downloads attachment `id` through an onion path and saves it at `path` (inside it, under
/// the file's name, when `path` is a directory); where it went and how many bytes.
async fn save(
    m: &Messenger,
    files: &crate::attach_cmd::FileServerArgs,
    dir: &Path,
    id: &str,
    name: &str,
    path: &Path,
    tx: &UnboundedSender<Ui>,
) -> Result<(String, u64)> {
    let server = files.resolve(m, dir).await?;
    let out = if path.is_dir() {
        path.join(name)
    } else {
        path.to_owned()
    };
    let mut progress = status_progress(name.to_owned(), tx.clone());
    let (_, bytes) = m
        .download_attachment(id, &out, &server, &mut progress)
        .await?;
    Ok((out.display().to_string(), bytes))
}

/// Bootstraps from `config`'s seeds (or loads the saved pool) and builds paths, retrying every
/// 5 s until it works; then makes the messenger.
async fn connect(
    config: ClientConfig,
    saved_pool: Option<shallot_client::PoolSnapshot>,
    identity: Identity,
    db: Db,
    tx: &UnboundedSender<Ui>,
) -> Result<Messenger> {
    let client = loop {
        let attempt = match &saved_pool {
            Some(pool) => OnionClient::new(
                config.clone(),
                Pool::from_snapshot(pool),
                NetworkClock::default(),
            )
            .context("could not load the saved node list"),
            None => OnionClient::bootstrap(config.clone(), NetworkClock::default())
                .await
                .context("could not get the node list from the seed"),
        };
        match attempt {
            Ok(client) => break client,
            Err(e) => retry_later(tx, &e).await,
        }
    };
    // Restore the saved guards before the first path is built.
    let messenger = Messenger::new(identity, client, db);
    let client = messenger.client();
    loop {
        let _ = tx.send(Ui::App(Event::Status(Some(format!(
            "building paths… ({} nodes known)",
            client.pool_len()
        )))));
        match client
            .ensure_paths()
            .await
            .context("could not build onion paths")
        {
            Ok(()) => break,
            Err(e) => retry_later(tx, &e).await,
        }
    }
    Ok(messenger)
}

async fn retry_later(tx: &UnboundedSender<Ui>, e: &anyhow::Error) {
    let _ = tx.send(Ui::App(Event::Status(Some(format!(
        "not connected ({e:#}); retrying in 5 s…"
    )))));
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// Receives by waiting retrieves through the onion path ("private push"): a message shows as
/// soon as a swarm member stores it. Pauses 5 s between requests when a node does not hold them
/// (it does not support waiting, or is at its cap) or after an error.
async fn private_push_loop(m: Arc<Messenger>, tx: UnboundedSender<Ui>) {
    loop {
        let pause = match m
            .receive_waiting(shallot_client::messenger::PUSH_WAIT)
            .await
        {
            Ok(waited) => {
                for r in waited.messages {
                    forward(&m, &tx, r).await;
                }
                !waited.waited
            }
            Err(e) => {
                let _ = tx.send(Ui::App(Event::Error(error_kind(&e))));
                true
            }
        };
        if tx.is_closed() {
            return;
        }
        if pause {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// Receives by a direct push WebSocket when possible (opt-in), polling every 5 s while push is
/// not connected; with `no_push`, only polls.
async fn receive_loop(
    m: Arc<Messenger>,
    identity: Option<Identity>,
    no_push: bool,
    tx: UnboundedSender<Ui>,
) {
    let mut sub = match identity {
        Some(id) if !no_push => Some(push::subscribe(m.client(), &id)),
        _ => None,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        let pushed = async {
            match sub.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            note = pushed => match note {
                Some(note) => match m.accept_pushed(&note).await {
                    Ok(Some(r)) => forward(&m, &tx, r).await,
                    Ok(None) => {}
                    Err(e) => { let _ = tx.send(Ui::App(Event::Error(error_kind(&e)))); }
                },
                None => sub = None,
            },
            _ = tick.tick() => {
                if sub.as_ref().is_some_and(push::PushSubscription::is_connected) {
                    continue;
                }
                match m.receive().await {
                    Ok(list) => {
                        for r in list {
                            forward(&m, &tx, r).await;
                        }
                    }
                    Err(e) => { let _ = tx.send(Ui::App(Event::Error(error_kind(&e)))); }
                }
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// Shows `r` in its pane: a group message in the group's, with its author; an invite (a group
/// message in our 1:1 inbox, not stored among the group's messages) in the inviter's, marked.
async fn forward(m: &Messenger, tx: &UnboundedSender<Ui>, r: ReceivedMessage) {
    let outgoing = r.direction == Direction::Outgoing;
    let id = r.hash;
    let quote = m
        .db()
        .call(move |db| db.quoted_text(&id))
        .await
        .unwrap_or_default();
    let in_group = match r.group {
        Some(id) => {
            let hash = r.hash;
            m.db()
                .call(move |db| db.group_messages(&id))
                .await
                .is_ok_and(|messages| messages.iter().any(|g| g.id == hash))
        }
        None => false,
    };
    let attachments = r.attachments.iter().map(Attached::from).collect();
    let (conversation, body, sender) = match r.group {
        Some(group) if in_group => (Peer::Group(group), r.body, (!outgoing).then_some(r.sender)),
        Some(group) => (
            Peer::Direct(r.conversation),
            format!("[invite to group {group}] {}", r.body),
            None,
        ),
        None => (Peer::Direct(r.conversation), r.body, None),
    };
    let _ = tx.send(Ui::App(Event::Incoming {
        conversation,
        msg: Msg {
            id: r.hash.to_string(),
            outgoing,
            timestamp: r.timestamp,
            body,
            state: MessageState::Received,
            quote,
            reactions: Vec::new(),
            sender,
            attachments,
        },
    }));
}

fn path_status(m: &Messenger) -> PathStatus {
    let client = m.client();
    let paths = client.paths();
    PathStatus {
        paths: paths.len(),
        guards: paths
            .iter()
            .map(|p| format!("{}:{}", p.guard().ip, p.guard().https_port))
            .collect(),
        offset_ms: client.clock().offset_ms(),
    }
}

/// A short, body-free description of a failure (the client's error kind).
fn error_kind(e: &MessengerError) -> String {
    match e {
        MessengerError::Network(n) => format!("{:?}", n.kind()),
        MessengerError::Db(_) => "local database".into(),
        MessengerError::Build(_) => "could not build message".into(),
        MessengerError::Group(_) => "group refused".into(),
        MessengerError::Attachment(_) | MessengerError::UnknownAttachment(_) => {
            "attachment failed".into()
        }
    }
}
