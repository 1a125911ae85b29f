//! `shallot directory`: run the devnet directory (a simulated Oxen chain serving oxend's
//! JSON-RPC), which nodes and clients read membership from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use shallot_chain::ChainConfig;

/// Flags of `shallot directory`.
#[derive(Args, Debug)]
pub struct DirectoryArgs {
    /// JSON-RPC listen address (`POST /json_rpc`)
    #[arg(long, default_value = "127.0.0.1:38857", value_name = "IP:PORT")]
    pub bind: SocketAddr,
    /// Where the chain's event log and ledger are kept (SQLite); survives restarts
    #[arg(long, value_name = "DIR")]
    pub chain_dir: PathBuf,
    /// Milliseconds between blocks
    #[arg(long, default_value_t = 1000)]
    pub block_time_ms: u64,
    /// Divide every rule duration (proof interval, credit, locks) by this, for fast devnets
    #[arg(long, default_value_t = 60)]
    pub time_scale: u32,
    /// Stake needed to fund a node, in atomic units (default: 100 OXEN)
    #[arg(long)]
    pub staking_requirement: Option<u64>,
    /// Log filter
    #[arg(long, default_value = "warn", env = "SHALLOT_LOG")]
    pub log: String,
}

/// Serves the directory until SIGINT/SIGTERM.
pub fn run(args: DirectoryArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?,
        )
        .with_target(false)
        .init();
    let mut config = ChainConfig {
        block_time: Duration::from_millis(args.block_time_ms.max(10)),
        time_scale: args.time_scale.max(1),
        data_dir: Some(args.chain_dir),
        ..ChainConfig::default()
    };
    if let Some(stake) = args.staking_requirement {
        config.staking_requirement = stake;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("could not listen on {}", args.bind))?;
        println!(
            "directory serving JSON-RPC on http://{}/json_rpc",
            args.bind
        );
        shallot_chain::serve_with_shutdown(config, listener, crate::node_cmd::wait_for_signal())
            .await
            .context("directory failed")?;
        Ok(())
    })
}
