//! `shallot directory`: run the devnet directory (a simulated Oxen chain serving oxend's
//! JSON-RPC), which nodes and clients read membership from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use shallot_chain::auth::{self, StakeAction};
use shallot_chain::{Address, ChainConfig, Reservation};
use shallot_directory::{CallError, DirectoryClient};
use shallot_proto::Ed25519Pub;

/// `shallot directory` subcommands.
#[derive(Subcommand, Debug)]
pub enum DirectoryCommand {
    /// Run the directory: a simulated chain serving oxend's JSON-RPC at POST /json_rpc
    Serve(DirectoryArgs),
    /// Create (if missing) a devnet wallet key file and print its address (dw…)
    Wallet(WalletArgs),
    /// Register a service node with its operator's stake (signed by --wallet, or --admin-token)
    Register(RegisterArgs),
    /// Add a contribution to a node's stake (signed by --wallet, or --admin-token)
    Contribute(ContributeArgs),
    /// Ask for a contributor's stake to unlock: the node leaves after the unlock period
    /// (signed by --wallet, or --admin-token)
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

/// Flags of `shallot directory wallet`.
#[derive(Args, Debug)]
pub struct WalletArgs {
    /// The wallet key file (created with mode 0600 if missing)
    #[arg(long, value_name = "FILE")]
    pub wallet: PathBuf,
}

/// How a stake-changing call proves it may act: a wallet signature or the admin token.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Signer {
    /// Devnet wallet key file (see `shallot directory wallet`): the call is signed by it and
    /// acts for its address (dw…). Works on the public JSON-RPC listener.
    #[arg(long, value_name = "FILE")]
    pub wallet: Option<PathBuf>,
    /// The directory's admin token file (<chain-dir>/admin.token): the call goes unsigned to
    /// the admin listener (--url must point at `serve --admin-bind`) and may use any address
    /// label.
    #[arg(long, value_name = "FILE")]
    pub admin_token: Option<PathBuf>,
}

/// Flags of `shallot directory register`.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The node's Ed25519 key (64 hex)
    pub pubkey: String,
    /// Operator's address [default with --wallet: the wallet's address; required with
    /// --admin-token, where any label is allowed]
    #[arg(long)]
    pub operator: Option<String>,
    /// Operator's stake in atomic units [default: the whole staking requirement]
    #[arg(long)]
    pub amount: Option<u64>,
    /// Operator fee in basis points
    #[arg(long, default_value_t = 0)]
    pub fee_bp: u16,
    #[command(flatten)]
    pub signer: Signer,
    #[command(flatten)]
    pub url: UrlArgs,
}

/// Flags of `shallot directory contribute`.
#[derive(Args, Debug)]
pub struct ContributeArgs {
    /// The node's Ed25519 key (64 hex)
    pub pubkey: String,
    /// Contributor's address [default with --wallet: the wallet's address]
    #[arg(long)]
    pub address: Option<String>,
    /// Amount in atomic units
    #[arg(long)]
    pub amount: u64,
    #[command(flatten)]
    pub signer: Signer,
    #[command(flatten)]
    pub url: UrlArgs,
}

/// Flags of `shallot directory unlock`.
#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// The node's Ed25519 key (64 hex)
    pub pubkey: String,
    /// Contributor's address asking to unlock [default with --wallet: the wallet's address]
    #[arg(long)]
    pub address: Option<String>,
    #[command(flatten)]
    pub signer: Signer,
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

/// A directory endpoint and the runtime its calls run on (one for the whole command).
struct Endpoint {
    runtime: tokio::runtime::Runtime,
    client: DirectoryClient,
}

impl Endpoint {
    /// The directory at `url`, authenticated with the admin `token` if given.
    fn new(url: &str, token: Option<&str>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not start the async runtime")?;
        let client = DirectoryClient::new(url);
        let client = match token {
            Some(token) => client.bearer(token),
            None => client,
        };
        Ok(Self { runtime, client })
    }

    /// Calls `method`; its `result`.
    fn call(&self, method: &str, params: Value) -> Result<Value> {
        match self.runtime.block_on(self.client.call(method, params)) {
            Ok(result) => Ok(result),
            Err(CallError::Rpc { message, .. }) => {
                bail!("the directory refused {method}: {message}")
            }
            Err(e) => Err(e)
                .with_context(|| format!("cannot reach the directory at {}", self.client.url())),
        }
    }
}

/// A loaded signer: the wallet key or the admin token.
enum Credential {
    Wallet(auth::SigningKey),
    Admin(String),
}

impl Credential {
    fn load(signer: &Signer) -> Result<Self> {
        match (&signer.wallet, &signer.admin_token) {
            (Some(path), _) => Ok(Self::Wallet(
                auth::load_or_create_wallet(path)
                    .with_context(|| format!("cannot use the wallet {}", path.display()))?,
            )),
            (None, Some(path)) => {
                let token = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the admin token {}", path.display()))?;
                Ok(Self::Admin(token.trim().to_owned()))
            }
            (None, None) => bail!("give --wallet FILE or --admin-token FILE"),
        }
    }

    /// The admin token, if this is one.
    fn token(&self) -> Option<&str> {
        match self {
            Self::Wallet(_) => None,
            Self::Admin(token) => Some(token),
        }
    }

    /// The acting address: the wallet's (an explicit one must match), or the given label.
    fn address(&self, given: Option<&str>, flag: &str) -> Result<Address> {
        match (self, given) {
            (Self::Wallet(key), given) => {
                let own = auth::wallet_address(key);
                if given.is_some_and(|g| g != own.0) {
                    bail!(
                        "{flag} must be the wallet's own address {} (or omitted)",
                        own.0
                    );
                }
                Ok(own)
            }
            (Self::Admin(_), Some(label)) => Ok(Address(label.to_owned())),
            (Self::Admin(_), None) => bail!("{flag} is required with --admin-token"),
        }
    }

    /// The directory at `url`, with the bearer token if this is the admin's credential.
    fn endpoint(&self, url: &str) -> Result<Endpoint> {
        Endpoint::new(url, self.token())
    }

    /// Sends a stake call: signed (`params.auth`) with a wallet, with the bearer token as admin.
    fn send(&self, to: &Endpoint, action: &StakeAction<'_>, mut params: Value) -> Result<Value> {
        if let Self::Wallet(key) = self {
            let auth = action.sign(
                key,
                shallot_clock::Clock::now_secs(&shallot_clock::SystemClock),
            );
            params["auth"] = serde_json::to_value(auth)?;
        }
        to.call(action.method(), params)
    }
}

fn node_key(text: &str) -> Result<Ed25519Pub> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("{text} is not an Ed25519 key (64 hex)"))
}

/// Runs a `shallot directory` subcommand.
pub fn run(command: DirectoryCommand) -> Result<()> {
    let print = |v: &Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match command {
        DirectoryCommand::Serve(args) => serve(args),
        DirectoryCommand::Wallet(a) => {
            let key = auth::load_or_create_wallet(&a.wallet)
                .with_context(|| format!("cannot use the wallet {}", a.wallet.display()))?;
            println!("{}", auth::wallet_address(&key).0);
            Ok(())
        }
        DirectoryCommand::Register(a) => {
            let credential = Credential::load(&a.signer)?;
            let operator = credential.address(a.operator.as_deref(), "--operator")?;
            let pubkey = node_key(&a.pubkey)?;
            let directory = credential.endpoint(&a.url.url)?;
            let amount = match a.amount {
                Some(amount) => amount,
                None => directory.call("get_staking_requirement", json!({}))?
                    ["staking_requirement"]
                    .as_u64()
                    .context("the directory did not give its staking requirement")?,
            };
            let reservations = vec![Reservation {
                address: operator,
                amount,
            }];
            let action = StakeAction::Register {
                pubkey: &pubkey,
                operator_fee_bp: a.fee_bp,
                reservations: &reservations,
                operator_amount: amount,
            };
            let params = json!({"pubkey": pubkey, "operator_fee_bp": a.fee_bp,
                "reservations": reservations, "operator_amount": amount});
            print(&credential.send(&directory, &action, params)?);
            Ok(())
        }
        DirectoryCommand::Contribute(a) => {
            let credential = Credential::load(&a.signer)?;
            let address = credential.address(a.address.as_deref(), "--address")?;
            let pubkey = node_key(&a.pubkey)?;
            let action = StakeAction::Contribute {
                pubkey: &pubkey,
                address: &address,
                amount: a.amount,
            };
            let params = json!({"pubkey": pubkey, "address": address, "amount": a.amount});
            print(&credential.send(&credential.endpoint(&a.url.url)?, &action, params)?);
            Ok(())
        }
        DirectoryCommand::Unlock(a) => {
            let credential = Credential::load(&a.signer)?;
            let address = credential.address(a.address.as_deref(), "--address")?;
            let pubkey = node_key(&a.pubkey)?;
            let action = StakeAction::Unlock {
                pubkey: &pubkey,
                address: &address,
            };
            let params = json!({"pubkey": pubkey, "address": address});
            print(&credential.send(&credential.endpoint(&a.url.url)?, &action, params)?);
            Ok(())
        }
        DirectoryCommand::Ledger(a) => {
            print(&Endpoint::new(&a.url, None)?.call("devnet_ledger", json!({}))?);
            Ok(())
        }
        DirectoryCommand::History(a) => {
            let directory = Endpoint::new(&a.url.url, None)?;
            print(&directory.call("devnet_node_history", json!({"pubkey": a.pubkey}))?);
            Ok(())
        }
    }
}

/// Flags of `shallot directory serve`.
#[derive(Args, Debug)]
pub struct DirectoryArgs {
    /// Public JSON-RPC listen address (`POST /json_rpc`). Stake changes (register, contribute,
    /// unlock) are accepted here only when signed by the acting devnet wallet
    #[arg(long, default_value = "127.0.0.1:38857", value_name = "IP:PORT")]
    pub bind: SocketAddr,
    /// Also serve an admin JSON-RPC listener here: every call needs `Authorization: Bearer
    /// <token>` with the token in <chain-dir>/admin.token (created with mode 0600), and stake
    /// changes need no wallet signature and may use any address label. Keep it on loopback
    #[arg(long, value_name = "IP:PORT")]
    pub admin_bind: Option<SocketAddr>,
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
        // Colour codes only on a terminal: not in log files, journald or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
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
    let chain_dir = config.data_dir.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("could not listen on {}", args.bind))?;
        let admin = match args.admin_bind {
            Some(addr) => {
                let dir = chain_dir.context("the admin listener needs --chain-dir")?;
                let token = auth::load_or_create_admin_token(&dir).with_context(|| {
                    format!("could not create the admin token in {}", dir.display())
                })?;
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("could not listen on {addr}"))?;
                println!(
                    "directory admin JSON-RPC on http://{addr}/json_rpc (token: {})",
                    auth::admin_token_path(&dir).display()
                );
                Some(shallot_chain::AdminListener { listener, token })
            }
            None => None,
        };
        println!(
            "directory serving JSON-RPC on http://{}/json_rpc",
            args.bind
        );
        let chain = std::sync::Arc::new(
            shallot_chain::Chain::open(config).context("could not open the chain")?,
        );
        shallot_chain::serve_chain_with_admin(
            chain,
            listener,
            admin,
            crate::node_cmd::wait_for_signal(),
        )
        .await
        .context("directory failed")?;
        Ok(())
    })
}
