//! `shallot devnet`: a whole network on this machine — the devnet directory plus N node
//! processes on 127.0.N.x addresses, registered, funded and sending uptime proofs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use shallot_devnet::process::Signal;
use shallot_devnet::{Devnet, DevnetConfig, Step};

/// `shallot devnet` subcommands.
#[derive(Subcommand, Debug)]
pub enum DevnetCommand {
    /// Start a directory and N nodes, wait until all serve clients, print the network
    Up(UpArgs),
    /// Show the nodes, their swarms and states
    Status(DirArgs),
    /// Stop every process of the devnet cleanly (data is kept)
    Down(DirArgs),
    /// Register and start one more node
    AddNode(DirArgs),
    /// SIGKILL node N (for failure experiments)
    KillNode(NodeArgs),
    /// Stop node N gracefully (SIGTERM)
    StopNode(NodeArgs),
    /// Start node N again after kill-node or stop-node
    StartNode(NodeArgs),
    /// Start a throwaway devnet, send a message each way between two new accounts through onion
    /// paths, show what each node on the way learned, and shut it all down
    Demo(crate::demo_cmd::DemoArgs),
}

/// Where a devnet keeps its state.
#[derive(Args, Debug)]
pub struct DirArgs {
    /// Devnet state directory [default: <data-dir>/devnet]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A node of a devnet.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Node number as shown by `shallot devnet status`
    pub node: usize,
    #[command(flatten)]
    pub dir: DirArgs,
}

/// Flags of `shallot devnet up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Devnet config file (TOML keys: nodes, block_time_ms, time_scale, proof_interval_ms,
    /// subnet); flags override it. `up` writes the config it used to <dir>/devnet.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Number of nodes [default: 14, which gives two swarms of 7: the swarm algorithm opens a
    /// new swarm only when enough spare nodes accumulate]
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Milliseconds between blocks [default: 1000]
    #[arg(long)]
    pub block_time_ms: Option<u64>,
    /// Speed-up of the chain's rule durations: proofs, credit, locks [default: 60]
    #[arg(long)]
    pub time_scale: Option<u32>,
    /// Expected uptime-proof interval in wall-time milliseconds, not divided by --time-scale
    /// (nodes send one every 5000 ms; proofs then expire after 11 s) [default: 10 min divided
    /// by --time-scale]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub proof_interval_ms: Option<u64>,
    /// Third octet of the nodes' 127.0.N.x addresses [default: 77]
    #[arg(long)]
    pub subnet: Option<u8>,
    /// Every node appends what it sees of each request (client addresses next to accounts) to
    /// <dir>/node<N>/observations.jsonl, for `shallot audit`-style checks; devnets only
    #[arg(long)]
    pub observation_logs: bool,
    #[command(flatten)]
    pub dir: DirArgs,
}

impl UpArgs {
    /// The config file (if any; else the one a previous `up` recorded in `dir`) with the flags
    /// applied on top, so `up` on a stopped devnet restarts the same network.
    fn resolve(&self, dir: &Path) -> Result<DevnetConfig> {
        let recorded = dir.join("devnet.toml");
        let file = self
            .config
            .clone()
            .or_else(|| recorded.exists().then_some(recorded));
        let mut config = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid devnet config {}", path.display()))?
            }
            None => DevnetConfig::default(),
        };
        if let Some(nodes) = self.nodes {
            config.nodes = nodes;
        }
        if let Some(ms) = self.block_time_ms {
            config.block_time_ms = ms;
        }
        if let Some(scale) = self.time_scale {
            config.time_scale = scale;
        }
        if let Some(ms) = self.proof_interval_ms {
            config.proof_interval_ms = Some(ms);
        }
        if let Some(subnet) = self.subnet {
            config.subnet = subnet;
        }
        config.observation_logs |= self.observation_logs;
        Ok(config)
    }
}

/// Runs a devnet subcommand.
pub fn run(command: DevnetCommand, data_dir: &Path) -> Result<()> {
    let pick = |d: &DirArgs| {
        let dir = d.dir.clone().unwrap_or_else(|| data_dir.join("devnet"));
        let binary = std::env::current_exe().context("cannot find the shallot binary")?;
        anyhow::Ok(Devnet::new(dir, binary))
    };
    match command {
        DevnetCommand::Up(args) => {
            let devnet = pick(&args.dir)?;
            let config = args.resolve(devnet.dir())?;
            block_on(async {
                let started = Instant::now();
                let state = devnet.up(&config, Step::print).await.inspect_err(|_| {
                    eprintln!("\nstart-up failed; what was started is stopped again");
                })?;
                eprintln!("devnet up in {:.1} s", started.elapsed().as_secs_f64());
                print!("{}", devnet.status_table(&state).await);
                Ok(())
            })
        }
        DevnetCommand::Status(d) => {
            let devnet = pick(&d)?;
            let state = devnet.state()?;
            block_on(async {
                print!("{}", devnet.status_table(&state).await);
                Ok(())
            })
        }
        DevnetCommand::Down(d) => {
            let devnet = pick(&d)?;
            devnet.down()?;
            println!(
                "devnet stopped; its data stays in {}",
                devnet.dir().display()
            );
            Ok(())
        }
        DevnetCommand::Demo(args) => crate::demo_cmd::run(&args),
        DevnetCommand::AddNode(d) => {
            let devnet = pick(&d)?;
            block_on(async {
                devnet.add_node().await?;
                print!("{}", devnet.status_table(&devnet.state()?).await);
                Ok(())
            })
        }
        DevnetCommand::KillNode(n) => stop_node(&pick(&n.dir)?, n.node, Signal::KILL),
        DevnetCommand::StopNode(n) => stop_node(&pick(&n.dir)?, n.node, Signal::TERM),
        DevnetCommand::StartNode(n) => {
            let devnet = pick(&n.dir)?;
            block_on(async { Ok(devnet.start_node(n.node).await?) })?;
            println!("node {} started", n.node);
            Ok(())
        }
    }
}

/// Runs the subcommand's async part on the one runtime of this invocation.
fn block_on<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(work)
}

fn stop_node(devnet: &Devnet, node: usize, signal: Signal) -> Result<()> {
    let addr = devnet.signal_node(node, signal)?;
    println!("node {node} ({addr}) stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

    use super::*;

    fn up_args(config: Option<PathBuf>, proof_interval_ms: Option<u64>) -> UpArgs {
        UpArgs {
            config,
            nodes: None,
            block_time_ms: None,
            time_scale: None,
            proof_interval_ms,
            subnet: None,
            observation_logs: false,
            dir: DirArgs { dir: None },
        }
    }

    #[test]
    fn the_proof_interval_comes_from_the_file_or_the_flag_and_is_recorded_only_when_set() {
        let dir = tempfile::tempdir().unwrap();
        // Unset: the recorded config has no such key, so older devnet.toml files stay valid.
        let default = up_args(None, None).resolve(dir.path()).unwrap();
        assert_eq!(default, DevnetConfig::default());
        assert!(!toml::to_string(&default)
            .unwrap()
            .contains("proof_interval_ms"));

        let file = dir.path().join("net.toml");
        std::fs::write(&file, "time_scale = 30\nproof_interval_ms = 5000\n").unwrap();
        let from_file = up_args(Some(file.clone()), None)
            .resolve(dir.path())
            .unwrap();
        assert_eq!(from_file.proof_interval_ms, Some(5000));
        assert_eq!(from_file.time_scale, 30);
        let text = toml::to_string(&from_file).unwrap();
        assert_eq!(toml::from_str::<DevnetConfig>(&text).unwrap(), from_file);

        let flag = up_args(Some(file), Some(7000)).resolve(dir.path()).unwrap();
        assert_eq!(flag.proof_interval_ms, Some(7000));
    }
}
