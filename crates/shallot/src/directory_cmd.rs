//! `shallot directory`: run the devnet directory (a simulated Oxen chain serving oxend's
//! JSON-RPC), which nodes and clients read membership from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use shallot_chain::ChainConfig;

/// `shallot directory` subcommands.
#[derive(Subcommand, Debug)]
pub enum DirectoryCommand {
    /// Run the directory: a simulated chain serving oxend's JSON-RPC at POST /json_rpc
    Serve(DirectoryArgs),
    /// Register a service node with its operator's stake (devnet admin)
    Register(RegisterArgs),
    /// Add a contribution to a node's stake (devnet admin)
    Contribute(ContributeArgs),
    /// Ask for a contributor's stake to unlock: the node leaves after the unlock period
    Unlock(UnlockArgs),
    /// Show the stake ledger: contributions, locks from deregistration ("slashing"), unlocks
    Ledger(UrlArgs),
    /// Show a node's state history (registered, activated, decommissioned, …)
    History(HistoryArgs),
}

/// The directory to talk to.
#[derive(Args, Debug)]
pub struct UrlArgs {
    /// The directory's JSON-RPC URL
    #[arg(
        long,
        default_value = "http://127.0.0.1:38857/json_rpc",
        env = "SHALLOT_DIRECTORY"
    )]
    pub url: String,
}

/// Flags of `shallot directory register`.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The node's Ed25519 key (64 hex)
    pub pubkey: String,
    /// Operator's wallet address (any label on a devnet)
    #[arg(long)]
    pub operator: String,
    /// Operator's stake in atomic units [default: the whole staking requirement]
    #[arg(long)]
    pub amount: Option<u64>,
    /// Operator fee in basis points
    #[arg(long, default_value_t = 0)]
    pub fee_bp: u64,
    #[command(flatten)]
    pub url: UrlArgs,
}

/// Flags of `shallot directory contribute`.
#[derive(Args, Debug)]
pub struct ContributeArgs {
    /// The node's Ed25519 key (64 hex)
    pub pubkey: String,
    /// Contributor's address
    #[arg(long)]
    pub address: String,
    /// Amount in atomic units
    #[arg(long)]
    pub amount: u64,
    #[command(flatten)]
    pub url: UrlArgs,
}

/// Flags of `shallot directory unlock`.
#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// The node's Ed25519 key (64 hex)
    pub pubkey: String,
    /// Contributor's address asking to unlock
    #[arg(long)]
    pub address: String,
    #[command(flatten)]
    pub url: UrlArgs,
}

/// Flags of `shallot directory history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The node's Ed25519 key (64 hex)
    pub pubkey: String,
    #[command(flatten)]
    pub url: UrlArgs,
}

fn call(url: &str, method: &str, params: &Value) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .with_context(|| format!("cannot reach the directory at {url}"))?
            .json()
            .await
            .context("the directory's answer is not JSON")?;
        if let Some(error) = response.get("error") {
            bail!(
                "the directory refused {method}: {}",
                error["message"].as_str().unwrap_or("unknown error")
            );
        }
        Ok(response["result"].clone())
    })
}

/// Runs a `shallot directory` subcommand.
pub fn run(command: DirectoryCommand) -> Result<()> {
    let print = |v: &Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match command {
        DirectoryCommand::Serve(args) => serve(args),
        DirectoryCommand::Register(a) => {
            let amount = match a.amount {
                Some(amount) => amount,
                None => call(&a.url.url, "get_staking_requirement", &json!({}))?
                    ["staking_requirement"]
                    .as_u64()
                    .context("the directory did not give its staking requirement")?,
            };
            let params = json!({"pubkey": a.pubkey, "operator_fee_bp": a.fee_bp,
                "reservations": [{"address": a.operator, "amount": amount}]});
            print(&call(&a.url.url, "devnet_register_service_node", &params)?);
            Ok(())
        }
        DirectoryCommand::Contribute(a) => {
            let params = json!({"pubkey": a.pubkey, "address": a.address, "amount": a.amount});
            print(&call(&a.url.url, "devnet_contribute", &params)?);
            Ok(())
        }
        DirectoryCommand::Unlock(a) => {
            let params = json!({"pubkey": a.pubkey, "address": a.address});
            print(&call(&a.url.url, "devnet_request_unlock", &params)?);
            Ok(())
        }
        DirectoryCommand::Ledger(a) => {
            print(&call(&a.url, "devnet_ledger", &json!({}))?);
            Ok(())
        }
        DirectoryCommand::History(a) => {
            print(&call(
                &a.url.url,
                "devnet_node_history",
                &json!({"pubkey": a.pubkey}),
            )?);
            Ok(())
        }
    }
}

/// Flags of `shallot directory serve`.
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
    /// Expected interval between a node's uptime proofs in wall-time milliseconds, not divided
    /// by --time-scale: proofs expire after 2 × this + max(this / 10, 1 s), and a node failing
    /// reachability tests for validity − this counts as unreachable. Devnet nodes send a proof
    /// every 5000 ms. [default: testnet's 10 min divided by --time-scale]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub proof_interval_ms: Option<u64>,
    /// Stake needed to fund a node, in atomic units (default: 100 OXEN)
    #[arg(long)]
    pub staking_requirement: Option<u64>,
    /// Log filter
    #[arg(long, default_value = "warn", env = "SHALLOT_LOG")]
    pub log: String,
}

/// Serves the directory until SIGINT/SIGTERM.
fn serve(args: DirectoryArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?,
        )
        .with_target(false)
        .init();
    let mut config = ChainConfig {
        block_time: Duration::from_millis(args.block_time_ms.max(10)),
        time_scale: args.time_scale.max(1),
        proof_interval: args.proof_interval_ms.map(Duration::from_millis),
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
