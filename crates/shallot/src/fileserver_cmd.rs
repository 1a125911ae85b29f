//! `shallot fileserver`: run a Session-compatible file server for attachments and profile
//! pictures (plain HTTP for bots, onion v4 requests proxied by service nodes).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use shallot_fileserver::{FileServer, FileServerConfig};

/// Flags of `shallot fileserver`.
#[derive(Args, Debug)]
pub struct FileServerArgs {
    /// Where the server keeps its key, database and files [default: <data-dir>/fileserver]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Plain-HTTP listen address
    #[arg(long, value_name = "IP:PORT", default_value = "0.0.0.0:22030")]
    bind: SocketAddr,
    /// Base URL clients reach the server at (e.g. http://files.example.org) [default: http://<bind>]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Largest upload in bytes [default: 10 MiB, enough for a 10 MB attachment once encrypted]
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<usize>,
    /// How long an upload is kept, in days, unless extended
    #[arg(long, value_name = "DAYS", default_value_t = 21)]
    ttl_days: u64,
    /// Longest lifetime a client may ask for (X-FS-TTL), in days
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    max_ttl_days: u64,
    /// Total bytes of files kept; uploads beyond it are refused with 507
    #[arg(long, value_name = "BYTES")]
    max_total_bytes: Option<u64>,
    /// Log filter, e.g. info or shallot_fileserver=debug
    #[arg(
        long,
        value_name = "FILTER",
        env = "SHALLOT_LOG",
        default_value = "info"
    )]
    log: String,
}

/// Runs the file server until SIGINT or SIGTERM.
pub fn run(args: FileServerArgs, data_dir: &Path) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?,
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let mut config = FileServerConfig::new(args.dir.unwrap_or_else(|| data_dir.join("fileserver")));
    config.listen = args.bind;
    config.public_url = args.public_url;
    if let Some(max) = args.max_file_size {
        config.max_file_size = max;
    }
    config.default_ttl_secs = args.ttl_days.saturating_mul(24 * 3600);
    config.max_ttl_secs = args.max_ttl_days.saturating_mul(24 * 3600);
    config.max_total_bytes = args.max_total_bytes;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        let server = FileServer::start(config)
            .await
            .context("could not start the file server")?;
        println!("file server listening on {}", server.url());
        println!("ed25519 {}", server.ed25519());
        println!("x25519 {}", server.x25519());
        crate::node_cmd::wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}
