//! `shallot`: the command-line entry point for accounts today, and the node, devnet and client
//! as they land.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use shallot_client::AccountStore;
use shallot_proto::{mnemonic, Identity};

mod attach_cmd;
mod audit_cmd;
mod bench_attach;
mod bench_cmd;
mod bench_groups;
mod bench_net;
mod bench_stats;
mod bench_timing;
mod demo_cmd;
mod demo_files;
mod demo_group;
mod devnet_cmd;
mod directory_cmd;
mod feedback_cmd;
mod fileserver_cmd;
mod group_cmd;
mod local_accounts;
mod msg_cmd;
mod node_cmd;
mod observations;
mod picture_cmd;
mod timing_attack;
mod tui;

/// Shallot: metadata-private messaging on the Session network.
#[derive(Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Directory holding your account keys and local state
    /// [default: $SHALLOT_HOME, else your platform's data directory + /shallot]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, restore or show your account (no phone number or email needed)
    #[command(subcommand)]
    Account(AccountCommand),
    /// Run a service node: store messages for its swarm, relay onion requests
    Node(node_cmd::NodeArgs),
    /// Run a file server for attachments and profile pictures (encrypted blobs; reached over
    /// plain HTTP and through onion requests)
    Fileserver(fileserver_cmd::FileServerArgs),
    /// The devnet directory: run it (a simulated Oxen chain serving oxend's JSON-RPC) or
    /// administer stakes on it
    #[command(subcommand)]
    Directory(directory_cmd::DirectoryCommand),
    /// A whole network on this machine: directory plus node processes
    #[command(subcommand)]
    Devnet(devnet_cmd::DevnetCommand),
    /// Measure performance on this machine
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Send a text message (and files with --attach) to a Session ID (through onion paths; a
    /// copy goes to your other devices), or to a group by its ID (03…)
    Send(msg_cmd::SendArgs),
    /// Fetch new messages for your account and print them (--watch keeps polling); each
    /// attached file shows as `attachment <ATTACHMENT_ID> <file name> <size>`
    Inbox(msg_cmd::InboxArgs),
    /// Download an attachment through your onion path, check it and save it
    Download(attach_cmd::DownloadArgs),
    /// Interactive terminal chat: conversations, messages with delivery state, path status
    Chat(tui::ChatArgs),
    /// Group chats: create, invite, accept, list, remove, promote, leave, rename, …
    #[command(subcommand)]
    Group(group_cmd::GroupCommand),
    /// Fetch new messages, then list message requests (from people you have not accepted)
    Requests(msg_cmd::RequestsArgs),
    /// Accept a message request (the sender is told, and becomes a contact)
    Accept(msg_cmd::ContactArgs),
    /// Decline a message request (its messages are dropped)
    Decline(msg_cmd::ContactArgs),
    /// Block a Session ID: everything they send is dropped
    Block(msg_cmd::ContactArgs),
    /// Set the disappearing-messages timer for a conversation (e.g. 30s, 5m, 1h, off)
    Disappear(msg_cmd::DisappearArgs),
    /// Show or set your display name (`--name`) and profile picture (`--picture FILE`,
    /// `--remove-picture`), which contacts see with your messages; `--show ID` shows a contact's
    Profile(msg_cmd::ProfileArgs),
    /// Save a contact's profile picture (or yours) to a file: fetched through your onion path
    /// once, checked, and cached (encrypted) beside your database
    Picture(picture_cmd::PictureArgs),
    /// Delete one of your sent messages for everyone
    Unsend(msg_cmd::UnsendArgs),
    /// React to a message with an emoji (its id as `shallot inbox` prints it); --remove takes
    /// the reaction back
    React(feedback_cmd::ReactArgs),
    /// Reply to a message (its id as `shallot inbox` prints it), quoting it
    Reply(feedback_cmd::ReplyArgs),
    /// Show or set whether you send read receipts (`on`/`off`; off by default)
    Receipts(feedback_cmd::ReceiptsArgs),
    /// Delete everything stored for your account on the network
    Wipe(msg_cmd::WipeArgs),
    /// Show the node pool, your swarm, the onion paths and guards, and the clock offset
    Network(msg_cmd::NetworkArgs),
    /// Metadata audit: start a devnet whose nodes log what they observe, run messaging through
    /// it with each client on its own address, and check that no node could link a client's
    /// address to its account or its correspondent's (exits non-zero if one could)
    Audit(audit_cmd::AuditArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Start two local nodes and drive them over HTTPS: store, retrieve and onion throughput,
    /// latency percentiles, and node CPU time per request
    Node(bench_cmd::BenchNodeArgs),
    /// Start a devnet and time messages from send until visible at the recipient, with push
    /// notifications and with polling: p50/p95/p99 and mean
    E2e(bench_cmd::BenchE2eArgs),
    /// Start a devnet and time group messages from send until visible at every member of a
    /// 10-member group (p50/p95/p99), against its bound measured in the same run (a 1:1
    /// message to one account whose nine devices wait the same way: the same fan-out without
    /// the group layer), and removing one member of a 100-member group
    Groups(bench_groups::BenchGroupsArgs),
    /// Start a devnet and time a 10 MB attachment from send to saved at the recipient through
    /// onion paths, against the raw AES + TLS bound measured in the same run
    Attach(bench_attach::BenchAttachArgs),
    /// Start a devnet whose nodes log what they see, run 20 users sending to each other, and
    /// measure how often nodes that watch guards and swarms can tell who sent each message, with
    /// and without the timing defences (send jitter, relay delay, cover traffic)
    Timing(bench_timing::BenchTimingArgs),
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create a new account with a fresh random key and recovery phrase
    New(NewArgs),
    /// Restore an account from its 13-word recovery phrase
    ///
    /// Give the phrase as arguments, or leave them out to read it from standard input (safer: it
    /// stays out of your shell history).
    Restore(RestoreArgs),
    /// Show your Session ID and public key (and, with --phrase, your recovery phrase)
    Show(ShowArgs),
}

#[derive(Args)]
struct NewArgs {
    /// Replace an existing account in this data directory (it is lost unless you kept its phrase)
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct RestoreArgs {
    /// The 13 words of the recovery phrase; read from standard input when absent
    #[arg(value_name = "WORD")]
    words: Vec<String>,
    /// Replace an existing account in this data directory
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ShowArgs {
    /// Also print the recovery phrase (anyone who sees it can take over your account)
    #[arg(long)]
    phrase: bool,
    /// Print as JSON
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    shallot_node::tls::install_crypto_provider();
    let dir = match cli.data_dir {
        Some(dir) => dir,
        None => AccountStore::default_dir()?,
    };
    match cli.command {
        Command::Account(cmd) => account(&AccountStore::new(dir), cmd),
        Command::Node(args) => node_cmd::run(args, &dir),
        Command::Fileserver(args) => fileserver_cmd::run(args, &dir),
        Command::Bench(BenchCommand::Node(args)) => bench_cmd::run(&args),
        Command::Bench(BenchCommand::E2e(args)) => bench_cmd::run_e2e(&args),
        Command::Bench(BenchCommand::Groups(args)) => bench_groups::run(&args),
        Command::Bench(BenchCommand::Attach(args)) => bench_attach::run(&args),
        Command::Bench(BenchCommand::Timing(args)) => bench_timing::run(&args),
        Command::Directory(command) => directory_cmd::run(command),
        Command::Devnet(command) => devnet_cmd::run(command, &dir),
        Command::Send(args) => msg_cmd::send(&args, &dir),
        Command::Inbox(args) => msg_cmd::inbox(&args, &dir),
        Command::Download(args) => attach_cmd::download(&args, &dir),
        Command::Chat(args) => tui::run(&args, &dir),
        Command::Requests(args) => msg_cmd::requests(&args, &dir),
        Command::Group(command) => group_cmd::run(command, &dir),
        Command::Accept(args) => msg_cmd::contact(msg_cmd::ContactAction::Accept, &args, &dir),
        Command::Decline(args) => msg_cmd::contact(msg_cmd::ContactAction::Decline, &args, &dir),
        Command::Block(args) => msg_cmd::contact(msg_cmd::ContactAction::Block, &args, &dir),
        Command::Disappear(args) => msg_cmd::disappear(&args, &dir),
        Command::Profile(args) => msg_cmd::profile(&args, &dir),
        Command::Picture(args) => picture_cmd::picture(&args, &dir),
        Command::Unsend(args) => msg_cmd::unsend(&args, &dir),
        Command::React(args) => feedback_cmd::react(&args, &dir),
        Command::Reply(args) => feedback_cmd::reply(&args, &dir),
        Command::Receipts(args) => feedback_cmd::receipts(&args, &dir),
        Command::Wipe(args) => msg_cmd::wipe(&args, &dir),
        Command::Network(args) => msg_cmd::network(&args, &dir),
        Command::Audit(args) => audit_cmd::run(&args),
    }
}

fn account(store: &AccountStore, cmd: AccountCommand) -> Result<()> {
    match cmd {
        AccountCommand::New(args) => {
            let identity = Identity::generate(&mut rand_core::OsRng);
            store.save(&identity, args.force)?;
            println!("Created a new account in {}", store.dir().display());
            println!("Session ID: {}", identity.session_id());
            println!();
            println!("Your recovery phrase is the only way to restore this account on another");
            println!("device. Write it down and keep it secret:  shallot account show --phrase");
            Ok(())
        }
        AccountCommand::Restore(args) => {
            let phrase = if args.words.is_empty() {
                read_phrase_from_stdin()?
            } else {
                zeroize::Zeroizing::new(args.words.join(" "))
            };
            let seed = mnemonic::decode(&phrase).context("could not restore the account")?;
            let identity = Identity::from_recovery_seed(&seed);
            store.save(&identity, args.force)?;
            println!("Restored account in {}", store.dir().display());
            println!("Session ID: {}", identity.session_id());
            Ok(())
        }
        AccountCommand::Show(args) => {
            let identity = store.load()?;
            let phrase = if args.phrase {
                match identity.recovery_seed() {
                    Some(seed) => Some(mnemonic::encode(&seed)),
                    None => {
                        bail!("this account was not created from a recovery phrase and has none")
                    }
                }
            } else {
                None
            };
            if args.json {
                let mut out = serde_json::json!({
                    "session_id": identity.session_id(),
                    "ed25519_public_key": identity.ed25519_public(),
                });
                if let Some(phrase) = &phrase {
                    out["recovery_phrase"] = serde_json::Value::from(phrase.as_str());
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("Session ID:         {}", identity.session_id());
                println!("Ed25519 public key: {}", identity.ed25519_public());
                if let Some(phrase) = &phrase {
                    println!("Recovery phrase:    {}", phrase.as_str());
                }
            }
            Ok(())
        }
    }
}

fn read_phrase_from_stdin() -> Result<zeroize::Zeroizing<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Enter your 13-word recovery phrase, then press Enter:");
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut line)
        .context("could not read the recovery phrase from standard input")?;
    if line.trim().is_empty() {
        bail!("no recovery phrase given: pass the words as arguments or on standard input");
    }
    Ok(line)
}
