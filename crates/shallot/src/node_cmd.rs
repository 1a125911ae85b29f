//! `shallot node`: run a service node.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use shallot_node::clock::{Clock, OffsetClock, SystemClock};
use shallot_node::config::{DirectorySource, NodeConfig};

/// Flags of `shallot node`; each overrides the config file.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// TOML config file (see README: "Running a node"); flags below override it
    #[arg(long, short, value_name = "FILE", env = "SHALLOT_NODE_CONFIG")]
    config: Option<PathBuf>,
    /// Where the node keeps its key, TLS certificate and database [default: <data-dir>/node]
    #[arg(long, value_name = "DIR")]
    node_dir: Option<PathBuf>,
    /// HTTPS listen address for clients and peers [default: 0.0.0.0:22021]
    #[arg(long, value_name = "IP:PORT")]
    bind: Option<SocketAddr>,
    /// Public IPv4 address to advertise, when it differs from the bind address
    #[arg(long, value_name = "IP")]
    public_ip: Option<Ipv4Addr>,
    /// Plain-HTTP address serving Prometheus metrics at /metrics (keep it private)
    #[arg(long, value_name = "IP:PORT")]
    admin_bind: Option<SocketAddr>,
    /// oxend JSON-RPC URL to read the service-node list from (e.g. http://127.0.0.1:22023/json_rpc)
    #[arg(long, value_name = "URL", conflicts_with = "directory_file")]
    oxend: Option<String>,
    /// JSON file holding a get_service_nodes result, re-read every second (tests, demos)
    #[arg(long, value_name = "FILE")]
    directory_file: Option<PathBuf>,
    /// Database size cap in bytes [default: 3.5 GiB]
    #[arg(long, value_name = "BYTES")]
    max_db_bytes: Option<u64>,
    /// Do not rate-limit clients on loopback addresses (devnets, local benchmarks)
    #[arg(long)]
    exempt_loopback: bool,
    /// Let onion proxy layers reach loopback and private addresses (devnets only: an open
    /// node must never be steered into its operator's own network)
    #[arg(long)]
    allow_private_targets: bool,
    /// Before relaying each onion layer, wait a random time from 0 to this many ms (at most
    /// 1000): a timing defence (README, "Privacy"); overrides `[onion] relay_delay_ms`
    #[arg(long, value_name = "MS")]
    relay_delay_ms: Option<u64>,
    /// Serve even when not in any swarm (testing only)
    #[arg(long)]
    force_start: bool,
    /// TESTING ONLY (hidden): run the node's clock this many milliseconds ahead (negative:
    /// behind) of the system clock, to simulate a node with a wrong clock in attack tests. Every
    /// timestamp check and every `t` the node reports uses the shifted clock.
    #[arg(long, hide = true, value_name = "MS", allow_hyphen_values = true)]
    test_clock_offset_ms: Option<i64>,
    /// DEVNETS AND AUDITS ONLY (hidden): append what this node sees of each request (client
    /// addresses next to accounts) to this JSON-lines file, for `shallot audit`. Refused
    /// without --allow-private-targets
    #[arg(long, hide = true, value_name = "FILE")]
    observation_log: Option<PathBuf>,
    /// Log filter, e.g. info or shallot_node=debug [default: info]
    #[arg(long, value_name = "FILTER", env = "SHALLOT_LOG")]
    log: Option<String>,
}

impl NodeArgs {
    fn into_config(self, data_dir: &Path) -> Result<NodeConfig> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig {
                data_dir: data_dir.join("node"),
                ..NodeConfig::default()
            },
        };
        if let Some(dir) = self.node_dir {
            config.data_dir = dir;
        }
        if let Some(bind) = self.bind {
            config.bind = bind;
        }
        if self.public_ip.is_some() {
            config.public_ip = self.public_ip;
        }
        if self.admin_bind.is_some() {
            config.admin_bind = self.admin_bind;
        }
        if let Some(url) = self.oxend {
            config.directory = Some(DirectorySource::Oxend { url });
        }
        if let Some(path) = self.directory_file {
            config.directory = Some(DirectorySource::File { path });
        }
        if let Some(bytes) = self.max_db_bytes {
            config.max_db_bytes = bytes;
        }
        config.rate_limit.exempt_loopback |= self.exempt_loopback;
        config.onion.allow_private_targets |= self.allow_private_targets;
        if let Some(ms) = self.relay_delay_ms {
            config.onion.relay_delay_ms = ms;
        }
        config.force_start |= self.force_start;
        if self.observation_log.is_some() {
            config.observation_log = self.observation_log;
        }
        if let Some(log) = self.log {
            config.log = log;
        }
        Ok(config)
    }
}

/// Runs the node until SIGINT or SIGTERM, then shuts down gracefully.
pub fn run(args: NodeArgs, data_dir: &Path) -> Result<()> {
    let clock_offset = args.test_clock_offset_ms;
    let config = args.into_config(data_dir)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log).context("invalid --log filter")?,
        )
        .with_target(false)
        // Colour codes only on a terminal: not in log files, journald or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    if config.directory.is_none() && !config.force_start {
        tracing::warn!(
            "no directory configured (--oxend or --directory-file): the node will not join a swarm"
        );
    }
    let clock: Arc<dyn Clock> = match clock_offset {
        Some(offset) => {
            tracing::warn!(offset_ms = offset, "TESTING: this node's clock is shifted");
            let clock = OffsetClock::default();
            clock.set_offset(offset);
            Arc::new(clock)
        }
        None => Arc::new(SystemClock),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        let running = shallot_node::runtime::start(config, clock)
            .await
            .context("could not start the node")?;
        println!(
            "node {} listening on https://{}",
            running.node.identity.ed25519_public(),
            running.https_addr
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        Ok(())
    })
}

/// Returns when a long-running process (node, directory, file server) should shut down:
/// SIGTERM, Ctrl-C, or the temporary devnet that started it is gone.
pub async fn wait_for_signal() {
    tokio::select! {
        () = terminate_or_interrupt() => {}
        () = launcher_gone() => {
            tracing::warn!("the temporary devnet that started this process is gone; stopping");
        }
    }
}

/// Returns on SIGTERM, SIGHUP (the terminal closed) or Ctrl-C.
pub async fn terminate_or_interrupt() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hangup.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Returns once this process's parent is no longer the launcher named in
/// [`shallot_devnet::process::LAUNCHER_PID_ENV`] (it died, and we were handed to another
/// parent); never if that is not set (a node an operator runs, `devnet up`'s processes).
async fn launcher_gone() {
    #[cfg(unix)]
    if let Some(launcher) = std::env::var(shallot_devnet::process::LAUNCHER_PID_ENV)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
    {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            every.tick().await;
            if std::os::unix::process::parent_id() != launcher {
                return;
            }
        }
    }
    std::future::pending::<()>().await;
}
