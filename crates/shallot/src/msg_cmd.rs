//! `shallot send` and `shallot inbox`: one-to-one messages with the account in the data
//! directory, through onion paths, with local state in `<data-dir>/client.db`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use shallot_client::{
    AccountStore, ClientConfig, ConversationState, Db, Direction, Disappearing, Messenger,
    NetworkClock, OnionClient, Pool, ReceivedMessage, Seed,
};
use shallot_proto::SessionId;

/// Where to find the network.
#[derive(Args)]
pub struct NetArgs {
    /// A service node to fetch the node list from: `ED25519_KEY@IP:PORT` (pinned: the node must
    /// prove that key) or `IP:PORT` (unpinned, devnets only: anyone on the path can answer for
    /// it). Repeatable: with two or more seeds, a node is used only if most of them list it, so
    /// one lying seed cannot choose your nodes; a single seed can. Without any seed, the node
    /// list saved by the last run is used
    #[arg(long, value_name = "[KEY@]IP:PORT", value_parser = parse_seed_node)]
    seed_node: Vec<Seed>,
    /// A seed/directory JSON-RPC URL to fetch the node list from
    /// (e.g. https://seed1.example:4443/json_rpc; repeatable)
    #[arg(long, value_name = "URL")]
    seed_url: Vec<String>,
    /// Connect to seeds and guards through this SOCKS5 proxy, e.g. Tor's
    /// `socks5h://127.0.0.1:9050`, so your ISP does not see that you use Shallot. Host names
    /// of seed URLs are resolved by the proxy (socks5h); nodes are addressed by IP. Push is off
    /// behind a proxy
    #[arg(long, value_name = "socks5h://HOST:PORT", value_parser = parse_proxy)]
    proxy: Option<String>,
    /// Open every connection (seeds, guards, the proxy) from this local address, on a machine
    /// with several; on a devnet, give each client its own loopback address (127.0.200.N) so
    /// `shallot audit` can tell them apart
    #[arg(long, value_name = "IP")]
    source_ip: Option<std::net::IpAddr>,
    /// Before a message leaves, wait a random time up to this many ms, so its timestamp (which
    /// the recipient's swarm reads) does not tell when it reached your guard: a timing defence
    /// that works together with relay delays (README, "Privacy") [default: 0]
    #[arg(long, value_name = "MS")]
    send_jitter_ms: Option<u64>,
    /// Give a message a timestamp a random time up to this many ms in the past (after the
    /// conversation's latest message): the same timing defence as --send-jitter-ms without
    /// making you wait (README, "Privacy") [default: 2000; 0 turns it off]
    #[arg(long, value_name = "MS")]
    backdate_ms: Option<u64>,
}

impl NetArgs {
    /// The send jitter asked for, else the library's default.
    fn send_jitter(&self) -> Duration {
        self.send_jitter_ms.map_or(
            shallot_client::timing::DEFAULT_SEND_JITTER,
            Duration::from_millis,
        )
    }

    /// The backdating asked for, else the library's default.
    fn backdate(&self) -> Duration {
        self.backdate_ms.map_or(
            shallot_client::timing::DEFAULT_BACKDATE,
            Duration::from_millis,
        )
    }
}

/// Checks a `--cover-per-minute` value: a rate from 0 to
/// [`shallot_client::timing::MAX_COVER_PER_MINUTE`].
pub(crate) fn parse_cover_rate(text: &str) -> Result<f64, String> {
    let max = shallot_client::timing::MAX_COVER_PER_MINUTE;
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=max).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "expected a number of dummy sends a minute from 0 to {max}"
        )),
    }
}

/// Checks a `--proxy` value (`socks5h://HOST:PORT` or `socks5://HOST:PORT`).
pub(crate) fn parse_proxy(text: &str) -> Result<String, String> {
    shallot_client::onion_client::socks_proxy(text)
        .map_err(|_| "expected socks5h://HOST:PORT (or socks5://HOST:PORT)".to_owned())?;
    Ok(text.to_owned())
}

/// Parses a `--seed-node` value: `KEY@IP:PORT` or `IP:PORT` (URLs belong to `--seed-url`).
pub(crate) fn parse_seed_node(text: &str) -> Result<Seed, String> {
    match text.parse::<Seed>()? {
        Seed::JsonRpc(_) => Err("a URL is a --seed-url, not a --seed-node".into()),
        seed => Ok(seed),
    }
}

/// `shallot send`.
#[derive(Args)]
pub struct SendArgs {
    /// The recipient's Session ID (66 hex characters starting with 05), or a group ID (03…)
    /// to send to a group you are in
    #[arg(value_name = "SESSION_ID|GROUP_ID")]
    recipient: String,
    /// The message text (may be left out when attaching files)
    #[arg(value_name = "TEXT", required_unless_present = "attach")]
    text: Option<String>,
    /// Attach a file (up to 10 MB; repeatable): encrypted here, uploaded to the file server
    /// through your onion path, and named in the message
    #[arg(long, value_name = "FILE", num_args = 1..)]
    attach: Vec<std::path::PathBuf>,
    /// Then wait up to this many seconds for the recipient's read receipt; exit non-zero if
    /// none comes (they may have read receipts off)
    #[arg(long, value_name = "SECONDS")]
    wait_read: Option<u64>,
    #[command(flatten)]
    files: crate::attach_cmd::FileServerArgs,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot inbox`.
#[derive(Args)]
pub struct InboxArgs {
    /// Keep waiting and print messages as they arrive (Ctrl-C to stop). Waits through your
    /// onion path ("private push": no node learns both your IP address and your account)
    #[arg(long)]
    watch: bool,
    /// With --watch: poll every 5 seconds instead of waiting through the onion path
    #[arg(long, requires = "watch")]
    poll: bool,
    /// With --watch: send this many dummy messages a minute at random times, padded like real
    /// ones, so your guard cannot tell when you really send (cover traffic; about 40 KiB each;
    /// README, "Privacy") [default: 0]
    #[arg(long, value_name = "N", requires = "watch", value_parser = parse_cover_rate)]
    cover_per_minute: Option<f64>,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot requests`.
#[derive(Args)]
pub struct RequestsArgs {
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot accept`, `decline` and `block`.
#[derive(Args)]
pub struct ContactArgs {
    /// The contact's Session ID
    #[arg(value_name = "SESSION_ID")]
    contact: String,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot disappear`.
#[derive(Args)]
pub struct DisappearArgs {
    /// The contact's Session ID
    #[arg(value_name = "SESSION_ID")]
    contact: String,
    /// How long messages live: e.g. 30s, 5m, 1h, 1d, or `off` (at least 10s)
    #[arg(value_name = "DURATION")]
    duration: String,
    /// Start the timer when the message is read instead of when it is sent
    #[arg(long)]
    after_read: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot profile`.
#[derive(Args)]
pub struct ProfileArgs {
    /// Set the display name your contacts see with your messages (1–100 bytes)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Set your profile picture: the image is encrypted, uploaded to the file server and sent
    /// with your messages (at most 5 MB; sent as it is, so prefer a small JPEG or PNG)
    #[arg(long, value_name = "FILE", conflicts_with = "remove_picture")]
    picture: Option<PathBuf>,
    /// Remove your profile picture
    #[arg(long)]
    remove_picture: bool,
    /// Show a contact's name and profile picture instead of yours
    #[arg(long, value_name = "SESSION_ID", conflicts_with_all = ["name", "picture", "remove_picture"])]
    show: Option<String>,
    #[command(flatten)]
    files: crate::attach_cmd::FileServerArgs,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot unsend`.
#[derive(Args)]
pub struct UnsendArgs {
    /// The message id (its hash, as printed by `send`, or the start of it `inbox` prints)
    #[arg(value_name = "MESSAGE_ID")]
    id: String,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot wipe`.
#[derive(Args)]
pub struct WipeArgs {
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    net: NetArgs,
}

pub(crate) fn parse_sid(text: &str) -> Result<SessionId> {
    text.trim().parse().map_err(|e| {
        anyhow::anyhow!("{text:?} is not a Session ID (66 hex characters starting with 05): {e}")
    })
}

/// Seconds in a duration like `30s`, `5m`, `1h`, `2d`, `1w` or `1h 30m` (a bare number is
/// seconds); `None` for off.
pub(crate) fn parse_duration(text: &str) -> Result<Option<u32>> {
    let text = text.trim().to_ascii_lowercase();
    if text == "off" || text == "0" {
        return Ok(None);
    }
    let bad = || anyhow::anyhow!("{text:?} is not a duration like 30s, 5m, 1h, 1d or off");
    let duration = if text.bytes().all(|b| b.is_ascii_digit()) {
        std::time::Duration::from_secs(text.parse().map_err(|_| bad())?)
    } else {
        humantime::parse_duration(&text).map_err(|_| bad())?
    };
    if duration.subsec_nanos() != 0 {
        bail!("{text:?}: a disappearing timer counts whole seconds");
    }
    let secs =
        u32::try_from(duration.as_secs()).map_err(|_| anyhow::anyhow!("{text:?} is too long"))?;
    if secs < 10 {
        bail!("the shortest disappearing timer is 10s");
    }
    if u64::from(secs) * 1000 > shallot_client::messenger::MESSAGE_TTL_MS {
        bail!("the longest disappearing timer is 14 days");
    }
    Ok(Some(secs))
}

/// Runs `shallot requests`: polls, then lists pending message requests.
pub fn requests(args: &RequestsArgs, dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let messenger = connect(dir, &args.net).await?;
        if let Err(e) = messenger.receive().await {
            eprintln!("warning: could not fetch new messages: {e}");
        }
        {
            let db = messenger.db();
            let pending: Vec<_> = db
                .conversations()
                .await?
                .into_iter()
                .filter(|c| c.state == ConversationState::Requested)
                .collect();
            if pending.is_empty() {
                println!("No message requests.");
            }
            for c in pending {
                let messages = db.messages(&c.id).await?;
                // The name the request's messages carried, as `inbox` shows it.
                let from = match db.contact_name(&c.id).await? {
                    Some(name) => format!("{name} ({})", c.id),
                    None => c.id.to_string(),
                };
                println!("Request from {from} ({} message(s)):", messages.len());
                for m in messages {
                    println!("  {}  {}", utc(m.timestamp), m.body);
                }
            }
            println!("Answer with `shallot accept|decline|block <session-id>`.");
        }
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        Ok(())
    })
}

/// Which of `accept`, `decline`, `block`.
#[derive(Clone, Copy)]
pub enum ContactAction {
    /// Accept a message request.
    Accept,
    /// Decline a message request.
    Decline,
    /// Block a contact.
    Block,
}

/// Runs `shallot accept`, `decline` or `block`.
pub fn contact(action: ContactAction, args: &ContactArgs, dir: &Path) -> Result<()> {
    let contact = parse_sid(&args.contact)?;
    runtime()?.block_on(async {
        let messenger = connect_for(dir, &args.net, Some(&contact)).await?;
        match action {
            ContactAction::Accept => {
                messenger
                    .accept(&contact)
                    .await
                    .context("could not accept the request")?;
                println!("Accepted {contact}: their messages now show as a conversation.");
            }
            ContactAction::Decline => {
                messenger.decline(&contact).await?;
                println!("Declined the message request from {contact}.");
            }
            ContactAction::Block => {
                messenger.block(&contact).await?;
                println!("Blocked {contact}: their messages will be dropped.");
            }
        }
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        Ok(())
    })
}

/// Runs `shallot disappear`: sets the timer here and sends the change to the contact and our
/// other devices.
pub fn disappear(args: &DisappearArgs, dir: &Path) -> Result<()> {
    let contact = parse_sid(&args.contact)?;
    let setting = match parse_duration(&args.duration)? {
        None => Disappearing::Off,
        Some(secs) if args.after_read => Disappearing::AfterRead(secs),
        Some(secs) => Disappearing::AfterSend(secs),
    };
    runtime()?.block_on(async {
        let messenger = connect_for(dir, &args.net, Some(&contact)).await?;
        let stored = messenger
            .set_disappearing(&contact, setting)
            .await
            .context("the setting applies here, but telling the contact failed")?;
        eprintln!("Timer update stored on {stored} member(s) of their swarm.");
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        Ok::<_, anyhow::Error>(())
    })?;
    match setting {
        Disappearing::Off => println!("Messages to {contact} no longer disappear."),
        Disappearing::AfterSend(s) => {
            println!("Messages to {contact} now disappear {s}s after they are sent.");
        }
        Disappearing::AfterRead(s) => {
            println!("Messages to {contact} now disappear {s}s after they are read.");
        }
    }
    Ok(())
}

/// Runs `shallot profile`: shows (and with `--name`, sets) our display name.
pub fn profile(args: &ProfileArgs, dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let messenger = connect(dir, &args.net).await?;
        if let Some(id) = &args.show {
            return crate::picture_cmd::show(&messenger, id).await;
        }
        if let Some(name) = &args.name {
            let name = messenger
                .set_display_name(name)
                .await
                .context("the name is set here, but pushing it to your other devices failed")?;
            println!(
                "Display name set to {name:?}: contacts see it with your next message, \
                 and your other devices on their next poll."
            );
        }
        if let Some(file) = &args.picture {
            crate::picture_cmd::set(&messenger, file, &args.files, dir).await?;
        } else if args.remove_picture {
            crate::picture_cmd::remove(&messenger).await?;
        }
        if args.name.is_none() {
            match messenger.display_name().await? {
                Some(name) => println!("Display name: {name}"),
                None => println!("No display name set (use `shallot profile --name NAME`)."),
            }
        }
        println!("{}", crate::picture_cmd::describe(&messenger, None).await?);
        println!("Session ID: {}", messenger.session_id());
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        Ok(())
    })
}

/// Runs `shallot unsend`.
pub fn unsend(args: &UnsendArgs, dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let messenger = connect(dir, &args.net).await?;
        let message = messenger
            .unsend(args.id.trim())
            .await
            .context("could not unsend the message")?;
        println!(
            "Unsent message {} to {}: deleted here and from your swarm; {} was asked to delete it.",
            message.id, message.conversation, message.conversation
        );
        Ok(())
    })
}

/// Runs `shallot wipe`.
pub fn wipe(args: &WipeArgs, dir: &Path) -> Result<()> {
    if !args.yes {
        eprint!("Delete every message stored for your account on the network? Type 'yes': ");
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("could not read the confirmation")?;
        if line.trim() != "yes" {
            bail!("not confirmed; nothing was deleted");
        }
    }
    runtime()?.block_on(async {
        let messenger = connect(dir, &args.net).await?;
        let nodes = messenger
            .wipe()
            .await
            .context("could not delete your messages")?
            .succeeded();
        println!("Deleted everything stored for your account ({nodes} node(s) confirmed).");
        Ok(())
    })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// Loads the account, opens the database, bootstraps the node pool and builds onion paths.
pub(crate) async fn connect(dir: &Path, net: &NetArgs) -> Result<Messenger> {
    connect_for(dir, net, None).await
}

/// [`connect`] for a command that will write to `peer`: its swarm is kept clear of the nodes
/// that see our IP from the first guard on.
pub(crate) async fn connect_for(
    dir: &Path,
    net: &NetArgs,
    peer: Option<&SessionId>,
) -> Result<Messenger> {
    connect_with(
        dir,
        net,
        peer,
        shallot_client::timing::DEFAULT_COVER_PER_MINUTE,
    )
    .await
}

/// [`connect_for`] with a cover traffic rate for [`shallot_client::OnionClient::start_cover`].
async fn connect_with(
    dir: &Path,
    net: &NetArgs,
    peer: Option<&SessionId>,
    cover_per_minute: f64,
) -> Result<Messenger> {
    let store = AccountStore::new(dir);
    if !store.exists() {
        bail!(
            "no account in {}: create one with `shallot account new` or `shallot account restore`",
            dir.display()
        );
    }
    let identity = store.load()?;
    let db = Db::open_in_dir(dir, &identity).context("could not open the local database")?;
    let seeds: Vec<Seed> = net
        .seed_node
        .iter()
        .cloned()
        .chain(net.seed_url.iter().cloned().map(Seed::JsonRpc))
        .collect();
    let config = ClientConfig {
        seeds,
        proxy: net.proxy.clone(),
        source_ip: net.source_ip,
        send_jitter: net.send_jitter(),
        backdate: net.backdate(),
        cover_per_minute,
        ..ClientConfig::default()
    };
    let client = if config.seeds.is_empty() {
        let Some(pool) = db.load_pool()?.filter(|p| !p.nodes.is_empty()) else {
            bail!("no node list saved yet: give a seed with --seed-node IP:PORT or --seed-url URL");
        };
        eprintln!("Using the saved node list ({} nodes)", pool.nodes.len());
        OnionClient::new(config, Pool::from_snapshot(&pool), NetworkClock::default())?
    } else {
        eprintln!("Bootstrapping from {} seed(s)…", config.seeds.len());
        let client = OnionClient::bootstrap(config, NetworkClock::default())
            .await
            .context("could not get the node list from the seed")?;
        eprintln!("Got {} nodes", client.pool_len());
        client
    };
    // The messenger restores the saved guards: paths are built only after that, so every run
    // uses the same entry nodes.
    let messenger = Messenger::new(identity, client, db);
    messenger.note_correspondents(peer).await;
    let client = messenger.client();
    eprintln!("Building onion paths…");
    client
        .ensure_paths()
        .await
        .context("could not build onion paths")?;
    let guards: Vec<String> = client
        .paths()
        .iter()
        .map(|p| p.guard().https_addr().to_string())
        .collect();
    eprintln!(
        "{} onion paths ready (guards {})",
        guards.len(),
        guards.join(", ")
    );
    Ok(messenger)
}

/// `shallot network`.
#[derive(Args)]
pub struct NetworkArgs {
    /// Print JSON: pool size, paths, the guards in use and the saved guard set (with lifetimes
    /// and failure counts)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// Runs `shallot network`: what the client knows of the network and the paths it would use.
pub fn network(args: &NetworkArgs, dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let messenger = connect(dir, &args.net).await?;
        let client = messenger.client();
        // A request refreshes the clock offset from the node's `t`.
        let swarm = client.swarm(&messenger.session_id().into()).await.ok();
        if args.json {
            let node = |n: &shallot_directory::NodeRecord| {
                serde_json::json!({"ed25519": n.ed25519.to_hex(), "addr": n.https_addr().to_string(),
                                   "swarm_id": n.swarm_id.0})
            };
            let report = serde_json::json!({
                "pool": client.pool_len(),
                "clock_offset_ms": -client.clock().offset_ms(),
                "swarm": swarm.as_ref().map(|s| s.iter().map(node).collect::<Vec<_>>()),
                "paths": client.paths().iter().map(|p| p.nodes().iter().map(node).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "guards": client.guards().iter().map(shallot_proto::Ed25519Pub::to_hex).collect::<Vec<_>>(),
                "saved_guards": client.guard_entries(),
            });
            println!("{report:#}");
            if let Err(e) = messenger.save_network_state().await {
                eprintln!("warning: could not save the node list: {e}");
            }
            return Ok(());
        }
        println!("node pool:     {} nodes", client.pool_len());
        println!(
            "clock offset:  {} ms (network time minus this machine's)",
            -client.clock().offset_ms()
        );
        if let Some(members) = swarm {
            println!("your swarm:    {} members", members.len());
        }
        for (i, path) in client.paths().iter().enumerate() {
            let hops: Vec<String> = path
                .nodes()
                .iter()
                .map(|n| n.https_addr().to_string())
                .collect();
            println!(
                "path {}:        guard {}  →  {}",
                i + 1,
                hops[0],
                hops[1..].join("  →  ")
            );
        }
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        Ok(())
    })
}

/// Runs `shallot send`.
pub fn send(args: &SendArgs, dir: &Path) -> Result<()> {
    let text = args.text.as_deref().unwrap_or_default();
    if args.recipient.trim().starts_with("03") {
        if args.wait_read.is_some() {
            bail!("--wait-read is for one-to-one messages (groups send no read receipts)");
        }
        return crate::group_cmd::send(
            &args.recipient,
            text,
            &args.attach,
            &args.files,
            &args.net,
            dir,
        );
    }
    let recipient = parse_sid(&args.recipient)?;
    crate::attach_cmd::check_files(&args.attach)?;
    runtime()?.block_on(async {
        let messenger = connect_for(dir, &args.net, Some(&recipient)).await?;
        let sent = if args.attach.is_empty() {
            messenger.send(&recipient, text).await
        } else {
            let server = args.files.resolve(&messenger, dir).await?;
            let mut printers: Vec<_> = args
                .attach
                .iter()
                .map(|f| crate::attach_cmd::progress_printer(f.display().to_string()))
                .collect();
            messenger
                .send_files(&recipient, text, &args.attach, &server, &mut |i, p| {
                    if let Some(print) = printers.get_mut(i) {
                        print(p);
                    }
                })
                .await
        }
        .context("sending failed")?;
        crate::picture_cmd::keep_alive(&messenger, dir).await;
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        println!(
            "Sent to {recipient}: stored on {} node(s) of their swarm{} (id {})",
            sent.stored_on,
            if sent.synced {
                ""
            } else {
                "; copy for your other devices not stored"
            },
            sent.hash
        );
        crate::attach_cmd::print_attachments(&sent.attachments);
        if let Some(secs) = args.wait_read {
            crate::feedback_cmd::wait_read(&messenger, &recipient, &sent, secs).await?;
        }
        Ok(())
    })
}

/// Runs `shallot inbox`.
pub fn inbox(args: &InboxArgs, dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let cover = args
            .cover_per_minute
            .unwrap_or(shallot_client::timing::DEFAULT_COVER_PER_MINUTE);
        let messenger = connect_with(dir, &args.net, None, cover).await?;
        let me = messenger.session_id();
        if !args.watch {
            let messages = messenger
                .receive()
                .await
                .context("could not fetch messages")?;
            print_messages(&messenger, &me, &messages).await;
            crate::feedback_cmd::print_updates(&messenger).await;
            crate::feedback_cmd::mark_shown_read(&messenger, &messages).await;
            if messages.is_empty() {
                println!("No new messages.");
            }
            crate::picture_cmd::keep_alive(&messenger, dir).await;
            if let Err(e) = messenger.save_network_state().await {
                eprintln!("warning: could not save the node list: {e}");
            }
            return Ok(());
        }
        if args.poll {
            eprintln!("Watching for messages every 5 s (Ctrl-C to stop)…");
        } else {
            let mut guards: Vec<String> = messenger
                .client()
                .paths()
                .iter()
                .map(|p| p.guard().https_addr().to_string())
                .collect();
            guards.sort();
            guards.dedup();
            eprintln!(
                "Watching for messages through your onion paths (Ctrl-C to stop); only your \
                 guards see your address: {}",
                guards.join(", ")
            );
        }
        // Runs until the watch ends (dropped with it).
        let _cover = messenger.client().start_cover();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let poll = args.poll;
        loop {
            let round = async {
                if poll {
                    tick.tick().await;
                    return messenger.receive().await.map(|messages| (messages, true));
                }
                messenger
                    .receive_waiting(shallot_client::messenger::PUSH_WAIT)
                    .await
                    .map(|w| (w.messages, w.waited))
            };
            let pause = tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                result = round => match result {
                    Ok((messages, waited)) => {
                        print_messages(&messenger, &me, &messages).await;
                        crate::feedback_cmd::print_updates(&messenger).await;
                        crate::feedback_cmd::mark_shown_read(&messenger, &messages).await;
                        !waited
                    }
                    Err(e) => {
                        eprintln!("receiving failed (will retry): {e}");
                        true
                    }
                },
            };
            if pause && !poll {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        Ok(())
    })
}

async fn print_messages(messenger: &Messenger, me: &SessionId, messages: &[ReceivedMessage]) {
    for m in messages {
        if let Some(group) = &m.group {
            crate::group_cmd::print_group_message(messenger, group, m).await;
            continue;
        }
        let request = m.direction == Direction::Incoming
            && matches!(
                messenger.db().conversation_state(&m.conversation).await,
                Ok(Some(ConversationState::Requested))
            );
        if request {
            println!(
                "{}  [{}] [message request] {} → you: {}",
                utc(m.timestamp),
                crate::feedback_cmd::short_id(&m.hash),
                who(messenger, &m.sender).await,
                m.body
            );
            crate::attach_cmd::print_attachments(&m.attachments);
            continue;
        }
        let (from, to) = match m.direction {
            Direction::Incoming => (who(messenger, &m.sender).await, "you".to_owned()),
            Direction::Outgoing if m.conversation == *me => ("you".into(), "yourself".into()),
            Direction::Outgoing => ("you".into(), who(messenger, &m.conversation).await),
        };
        let id = crate::feedback_cmd::short_id(&m.hash);
        let extras = crate::feedback_cmd::message_extras(messenger, m).await;
        match extras.first() {
            // A reply: what it quotes, then its text.
            Some(quote) if quote.starts_with("    >") => {
                println!("{}  [{id}] {from} → {to}:", utc(m.timestamp));
                println!("{quote}");
                println!("    {}", m.body);
                crate::attach_cmd::print_attachments(&m.attachments);
                for line in &extras[1..] {
                    println!("{line}");
                }
            }
            _ => {
                println!("{}  [{id}] {from} → {to}: {}", utc(m.timestamp), m.body);
                crate::attach_cmd::print_attachments(&m.attachments);
                for line in &extras {
                    println!("{line}");
                }
            }
        }
    }
}

/// A contact as printed: `Name (05…)` when their profile gave a name, else the Session ID.
pub(crate) async fn who(messenger: &Messenger, id: &SessionId) -> String {
    match messenger.db().contact_name(id).await {
        Ok(Some(name)) => format!("{name} ({id})"),
        _ => id.to_string(),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a millisecond timestamp.
pub(crate) fn utc(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms} ms after 1970"),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, utc};

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56 UTC");
        assert_eq!(utc(u64::MAX), "18446744073709551615 ms after 1970");
    }

    #[test]
    fn parses_disappearing_timers() {
        for (text, secs) in [
            ("30", Some(30)),
            ("30s", Some(30)),
            ("5m", Some(300)),
            ("1h 30m", Some(5400)),
            ("1D", Some(86_400)),
            ("2w", Some(1_209_600)),
            ("off", None),
            ("0", None),
        ] {
            assert_eq!(parse_duration(text).unwrap(), secs, "{text}");
        }
        for bad in ["", "5x", "-5m", "9s", "15d", "1.5s", "99999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
