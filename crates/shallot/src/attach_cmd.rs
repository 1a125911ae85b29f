//! Attachments on the command line: which file server to use (flags, a local devnet, or the
//! one pinned by an earlier run), `shallot send --attach`, the `attachment` lines of `inbox`,
//! and `shallot download`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use shallot_client::attachments::{FileServer, Progress, Stage};
use shallot_client::{AccountStore, Messenger, StoredAttachment};
use shallot_proto::Ed25519Pub;

/// Where the client keeps the file server it last used (sealed JSON in `client.db`).
const PINNED: &str = "file_server";

/// Files at least this large get progress output.
const PROGRESS_FROM: u64 = 1024 * 1024;

/// Which file server to use.
#[derive(Args, Debug, Clone, Default)]
pub struct FileServerArgs {
    /// File server for attachments, `http://HOST:PORT` (with --file-server-key); remembered for
    /// later runs. Without it: the one used last time, else the file server of a devnet in
    /// <data-dir>/devnet or in the default data directory
    #[arg(long, value_name = "URL", requires = "file_server_key")]
    file_server: Option<String>,
    /// The file server's Ed25519 key (64 hex characters): requests are encrypted to it, so
    /// nobody else can answer for the server
    #[arg(long, value_name = "HEX", requires = "file_server")]
    file_server_key: Option<Ed25519Pub>,
}

/// A pinned file server as saved in the client database.
#[derive(Serialize, Deserialize)]
struct Pinned {
    url: String,
    ed25519: Ed25519Pub,
}

impl FileServerArgs {
    /// The file server to use: the flags, else the one pinned by an earlier run (at the
    /// address of a local devnet's server if that is the same server, moved), else a local
    /// devnet's. The choice is pinned for later runs.
    pub async fn resolve(&self, messenger: &Messenger, data_dir: &Path) -> Result<FileServer> {
        let chosen = if let (Some(url), Some(key)) = (&self.file_server, self.file_server_key) {
            Pinned {
                url: url.clone(),
                ed25519: key,
            }
        } else {
            let pinned = messenger
                .db()
                .call(|db| db.load_json::<Pinned>(PINNED))
                .await?;
            match (pinned, devnet_file_server(data_dir)) {
                (Some(pinned), Some(devnet)) if pinned.ed25519 == devnet.ed25519 => devnet,
                (Some(pinned), _) => pinned,
                (None, Some(devnet)) => devnet,
                (None, None) => bail!(
                    "no file server known: give --file-server URL --file-server-key KEY \
                     (or start a devnet, which runs one)"
                ),
            }
        };
        let server = FileServer::new(&chosen.url, chosen.ed25519)?;
        messenger
            .db()
            .call(move |db| db.save_json(PINNED, &chosen))
            .await?;
        Ok(server)
    }
}

/// The running file server of a devnet kept in `<data-dir>/devnet` or in the default data
/// directory's `devnet` (where `shallot devnet up` puts it).
fn devnet_file_server(data_dir: &Path) -> Option<Pinned> {
    let mut dirs = vec![data_dir.join("devnet")];
    if let Ok(default) = AccountStore::default_dir() {
        dirs.push(default.join("devnet"));
    }
    dirs.iter().find_map(|dir| {
        let state = shallot_devnet::DevnetState::load(dir).ok()?;
        let entry = state.file_server?;
        entry
            .pid
            .filter(|&pid| shallot_devnet::process::is_alive(pid))?;
        Some(Pinned {
            url: entry.url(),
            ed25519: entry.ed25519.parse().ok()?,
        })
    })
}

/// Checks `--attach` files before anything is sent: each exists, is a file, and is within the
/// size limit.
pub fn check_files(files: &[PathBuf]) -> Result<()> {
    let max = shallot_client::attachments::MAX_ATTACHMENT_SIZE as u64;
    for file in files {
        let meta =
            std::fs::metadata(file).with_context(|| format!("cannot attach {}", file.display()))?;
        if !meta.is_file() {
            bail!("cannot attach {}: not a file", file.display());
        }
        if meta.len() > max {
            bail!(
                "cannot attach {}: {} bytes is over the {max}-byte attachment limit",
                file.display(),
                meta.len()
            );
        }
    }
    Ok(())
}

/// Prints progress on stderr (one rewritten line) for transfers of at least 1 MiB.
pub fn progress_printer(label: String) -> impl FnMut(Progress) + Send {
    let mut last = None;
    move |p: Progress| {
        if p.total < PROGRESS_FROM {
            return;
        }
        let stage = p.stage.doing();
        let percent = p.done.saturating_mul(100) / p.total.max(1);
        if last == Some((p.stage, percent)) {
            return;
        }
        last = Some((p.stage, percent));
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{label}: {stage} {percent:>3}%   ");
        if matches!(p.stage, Stage::Decrypt) && p.done >= p.total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

/// The `attachment <ID> <file name> <size>` lines of a message.
pub fn print_attachments(attachments: &[StoredAttachment]) {
    for a in attachments {
        println!("attachment {} {} {}", a.id, a.file_name(), a.size());
    }
}

/// `shallot download`.
#[derive(Args)]
pub struct DownloadArgs {
    /// The attachment's id, as `shallot inbox` prints it (or an unambiguous prefix)
    #[arg(value_name = "ATTACHMENT_ID")]
    id: String,
    /// Where to save the file (replaced if it exists; written only once the file checks out)
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    #[command(flatten)]
    files: FileServerArgs,
    #[command(flatten)]
    net: crate::msg_cmd::NetArgs,
}

/// Runs `shallot download`.
pub fn download(args: &DownloadArgs, dir: &Path) -> Result<()> {
    crate::msg_cmd::runtime()?.block_on(async {
        let messenger = crate::msg_cmd::connect(dir, &args.net).await?;
        let attachment = messenger.attachment(&args.id).await?;
        let server = args.files.resolve(&messenger, dir).await?;
        let mut progress = progress_printer(attachment.file_name());
        let (attachment, saved) = messenger
            .download_attachment(attachment.id.as_str(), &args.out, &server, &mut progress)
            .await
            .with_context(|| format!("could not download {}", attachment.file_name()))?;
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        println!(
            "Saved {} ({saved} bytes) to {}",
            attachment.file_name(),
            args.out.display()
        );
        Ok(())
    })
}
