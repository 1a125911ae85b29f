//! `shallot devnet`: a whole network on this machine — the devnet directory plus N node
//! processes on 127.0.N.x addresses, registered, funded and sending uptime proofs.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shallot_keys::AccountStore;
use shallot_proto::Identity;

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

/// Everything that describes a devnet; the TOML form of `devnet up --config`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DevnetConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Milliseconds between blocks.
    pub block_time_ms: u64,
    /// Speed-up of the chain's rule durations.
    pub time_scale: u32,
    /// Expected uptime-proof interval in wall-time ms, not scaled (`None`: 10 min / time_scale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_interval_ms: Option<u64>,
    /// Third octet of the nodes' addresses.
    pub subnet: u8,
    /// Whether every node keeps an observation log (`node<N>/observations.jsonl`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub observation_logs: bool,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            nodes: 14,
            block_time_ms: 1000,
            time_scale: 60,
            proof_interval_ms: None,
            subnet: 77,
            observation_logs: false,
        }
    }
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

#[derive(Serialize, Deserialize, Debug, Clone)]
struct NodeEntry {
    index: usize,
    addr: SocketAddr,
    ed25519: String,
    pid: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug)]
struct DevnetState {
    directory_addr: SocketAddr,
    /// The directory's admin listener (token in `directory/admin.token`), which registers
    /// nodes for the launcher; older devnet.json files have none.
    #[serde(default)]
    admin_addr: Option<SocketAddr>,
    directory_pid: Option<u32>,
    subnet: u8,
    /// Whether nodes keep observation logs (older devnet.json files: no).
    #[serde(default)]
    observation_logs: bool,
    nodes: Vec<NodeEntry>,
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("devnet.json")
}

fn load(dir: &Path) -> Result<DevnetState> {
    let text = std::fs::read_to_string(state_path(dir)).with_context(|| {
        format!(
            "no devnet in {}; start one with `shallot devnet up`",
            dir.display()
        )
    })?;
    serde_json::from_str(&text).context("devnet.json is corrupt")
}

fn save(dir: &Path, state: &DevnetState) -> Result<()> {
    std::fs::write(state_path(dir), serde_json::to_string_pretty(state)?)
        .context("could not write devnet.json")
}

fn alive(pid: Option<u32>) -> bool {
    // An exited child not yet reaped (a zombie: state `Z`) is not alive; `devnet demo` and
    // `bench e2e` outlive the processes they spawn and never wait on them.
    pid.is_some_and(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
    })
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(sig).arg(pid.to_string()).status();
}

/// Waits until `pid` has exited, up to `limit`.
fn wait_exit(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(Some(pid)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn spawn_detached(args: &[String], log: &Path) -> Result<u32> {
    let exe = std::env::current_exe().context("cannot find the shallot binary")?;
    let log = std::fs::File::create(log)
        .with_context(|| format!("could not create {}", log.display()))?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .env_remove("SHALLOT_HOME")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    #[cfg(unix)]
    {
        // Own process group: a Ctrl-C in the terminal that ran `up` does not stop the devnet.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    Ok(command
        .spawn()
        .context("could not start a devnet process")?
        .id())
}

fn rpc(directory: SocketAddr, method: &str, params: &Value) -> Result<Value> {
    rpc_with(directory, None, method, params)
}

/// A call to the devnet directory's admin listener with the token from its data dir.
fn admin_rpc(dir: &Path, state: &DevnetState, method: &str, params: &Value) -> Result<Value> {
    let addr = state
        .admin_addr
        .context("this devnet's directory has no admin listener; restart it with `devnet up`")?;
    let path = shallot_chain::auth::admin_token_path(&dir.join("directory"));
    let token = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the admin token {}", path.display()))?;
    rpc_with(addr, Some(token.trim()), method, params)
}

fn rpc_with(
    directory: SocketAddr,
    token: Option<&str>,
    method: &str,
    params: &Value,
) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .post(format!("http://{directory}/json_rpc"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .timeout(Duration::from_secs(10));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response: Value = request.send().await?.json().await?;
        if let Some(error) = response.get("error") {
            bail!("directory refused {method}: {error}");
        }
        Ok(response["result"].clone())
    })
}

/// Node `index`'s observation log (written when the devnet keeps them).
pub(crate) fn observation_log(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("node{index}")).join("observations.jsonl")
}

fn start_node(dir: &Path, state: &DevnetState, node: &NodeEntry) -> Result<u32> {
    let node_dir = dir.join(format!("node{}", node.index));
    let mut args: Vec<String> = vec![
        "node".into(),
        "--node-dir".into(),
        node_dir.display().to_string(),
        "--bind".into(),
        node.addr.to_string(),
        "--oxend".into(),
        format!("http://{}/json_rpc", state.directory_addr),
        "--exempt-loopback".into(),
        "--allow-private-targets".into(),
        "--log".into(),
        std::env::var("SHALLOT_DEVNET_NODE_LOG").unwrap_or_else(|_| "warn".into()),
    ];
    if state.observation_logs {
        args.push("--observation-log".into());
        args.push(observation_log(dir, node.index).display().to_string());
    }
    spawn_detached(&args, &node_dir.join("node.log"))
}

/// Creates node `index`'s key and registers it with a full stake.
fn create_and_register(dir: &Path, state: &DevnetState, index: usize) -> Result<NodeEntry> {
    let node_dir = dir.join(format!("node{index}"));
    let keys = AccountStore::node(&node_dir);
    let identity = if keys.exists() {
        keys.load()?
    } else {
        let identity = Identity::generate(&mut rand::rngs::OsRng);
        keys.save(&identity, false)?;
        identity
    };
    let ip = Ipv4Addr::new(
        127,
        0,
        state.subnet,
        u8::try_from(index).context("at most 254 nodes")?,
    );
    let port = TcpListener::bind((ip, 0))?.local_addr()?.port();
    let stake = rpc(state.directory_addr, "get_staking_requirement", &json!({}))?
        ["staking_requirement"]
        .as_u64()
        .context("directory did not say the staking requirement")?;
    let ed25519 = identity.ed25519_public().to_hex();
    // On a restarted devnet the chain already knows the node: keep its registration.
    let known = rpc(
        state.directory_addr,
        "get_service_nodes",
        &json!({"service_node_pubkeys": [ed25519], "fields": {"service_node_pubkey": true}}),
    )?;
    let registered = known["service_node_states"]
        .as_array()
        .is_some_and(|nodes| !nodes.is_empty());
    if !registered {
        admin_rpc(
            dir,
            state,
            "devnet_register_service_node",
            &json!({"pubkey": ed25519, "reservations": [{"address": format!("operator{index}"), "amount": stake}]}),
        )?;
    }
    Ok(NodeEntry {
        index,
        addr: SocketAddr::from((ip, port)),
        ed25519,
        pid: None,
    })
}

/// An HTTPS client for the devnet's nodes (self-signed certificates).
fn node_http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(2))
        .build()?)
}

async fn wait_ready(nodes: &[NodeEntry], limit: Duration) -> Result<()> {
    let http = node_http()?;
    let deadline = Instant::now() + limit;
    let mut ready = vec![false; nodes.len()];
    loop {
        for (i, node) in nodes.iter().enumerate() {
            if ready[i] {
                continue;
            }
            let response = http
                .post(format!("https://{}/storage_rpc/v1", node.addr))
                .body(r#"{"method":"info","params":{}}"#)
                .send()
                .await;
            ready[i] = matches!(response, Ok(r) if r.status() == 200);
        }
        let count = ready.iter().filter(|&&r| r).count();
        eprint!("\r  nodes ready: {count}/{}   ", nodes.len());
        if count == nodes.len() {
            eprintln!();
            return Ok(());
        }
        if Instant::now() > deadline {
            eprintln!();
            bail!(
                "only {count} of {} nodes became ready within {} s; see node*/node.log",
                nodes.len(),
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until every node puts a few sample accounts in the same swarm with the same members:
/// while nodes register, swarms split and form, and a node whose view lags still replicates to
/// the old members (a node a client chose as a guard outside the swarm would get the message).
async fn wait_settled(nodes: &[NodeEntry], limit: Duration) -> Result<()> {
    let http = node_http()?;
    let samples: Vec<String> = ["00", "55", "aa", "ff"]
        .iter()
        .map(|b| format!("05{}", b.repeat(32)))
        .collect();
    let deadline = Instant::now() + limit;
    loop {
        let mut views = std::collections::HashSet::new();
        for node in nodes {
            let mut view = Vec::new();
            for account in &samples {
                let body = json!({"method": "get_swarm", "params": {"pubkey": account}});
                let answer: Option<Value> = match http
                    .post(format!("https://{}/storage_rpc/v1", node.addr))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => response.json().await.ok(),
                    Err(_) => None,
                };
                let mut members: Vec<String> = answer
                    .as_ref()
                    .and_then(|a| a["snodes"].as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["pubkey_ed25519"].as_str().map(str::to_owned))
                    .collect();
                members.sort();
                view.push(members);
            }
            views.insert(view);
        }
        if views.len() == 1 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the nodes' views of the swarms still differ after {} s",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[allow(clippy::unnecessary_wraps)] // Uniform with the other subcommands' results.
fn print_table(dir: &Path, state: &DevnetState) -> Result<()> {
    let listing = rpc(state.directory_addr, "get_service_nodes", &json!({}));
    let empty = Vec::new();
    #[allow(clippy::single_match_else)] // Both arms print; a match reads better here.
    let entries = match &listing {
        Ok(listing) => {
            println!(
                "directory  http://{}/json_rpc  height {}  ({})",
                state.directory_addr,
                listing["height"],
                dir.display()
            );
            if let Some(admin) = state.admin_addr {
                println!(
                    "admin      http://{admin}/json_rpc  token {}",
                    shallot_chain::auth::admin_token_path(&dir.join("directory")).display()
                );
            }
            listing["service_node_states"].as_array().unwrap_or(&empty)
        }
        Err(_) => {
            println!(
                "directory not running ({}); chain states unknown",
                dir.display()
            );
            &empty
        }
    };
    println!("node  address                ed25519            swarm              state           process");
    for node in &state.nodes {
        let entry = entries
            .iter()
            .find(|e| e["service_node_pubkey"] == node.ed25519.as_str());
        let swarm = entry.and_then(|e| e["swarm"].as_str()).unwrap_or("-");
        let chain_state = match entry {
            None if listing.is_err() => "?",
            None => "deregistered",
            Some(e) if e["active"] == true => "active",
            Some(e) if e["funded"] == true => "decommissioned",
            Some(_) => "awaiting stake",
        };
        let process = if alive(node.pid) {
            "running"
        } else {
            "stopped"
        };
        let swarm = if swarm == "ffffffffffffffff" {
            "-"
        } else {
            swarm
        };
        println!(
            "{:>4}  {:<22} {:<18} {:<18} {:<15} {}",
            node.index,
            node.addr,
            &node.ed25519[..16],
            swarm,
            chain_state,
            process
        );
    }
    Ok(())
}

/// Runs a devnet subcommand.
pub fn run(command: DevnetCommand, data_dir: &Path) -> Result<()> {
    let pick = |d: &DirArgs| d.dir.clone().unwrap_or_else(|| data_dir.join("devnet"));
    match command {
        DevnetCommand::Up(args) => {
            let dir = pick(&args.dir);
            up(&args.resolve(&dir)?, &dir)
        }
        DevnetCommand::Status(d) => {
            let dir = pick(&d);
            print_table(&dir, &load(&dir)?)
        }
        DevnetCommand::Down(d) => down(&pick(&d)),
        DevnetCommand::Demo(args) => crate::demo_cmd::run(&args),
        DevnetCommand::AddNode(d) => {
            let dir = pick(&d);
            let mut state = load(&dir)?;
            let index = state.nodes.len() + 1;
            let mut node = create_and_register(&dir, &state, index)?;
            node.pid = Some(start_node(&dir, &state, &node)?);
            state.nodes.push(node.clone());
            save(&dir, &state)?;
            tokio::runtime::Runtime::new()?
                .block_on(wait_ready(&[node], Duration::from_secs(60)))?;
            print_table(&dir, &state)
        }
        DevnetCommand::KillNode(n) => node_signal(&pick(&n.dir), n.node, "-KILL"),
        DevnetCommand::StopNode(n) => node_signal(&pick(&n.dir), n.node, "-TERM"),
        DevnetCommand::StartNode(n) => {
            let dir = pick(&n.dir);
            let mut state = load(&dir)?;
            let i = n
                .node
                .checked_sub(1)
                .filter(|&i| i < state.nodes.len())
                .context("no such node")?;
            if alive(state.nodes[i].pid) {
                bail!("node {} is already running", n.node);
            }
            let node = state.nodes[i].clone();
            state.nodes[i].pid = Some(start_node(&dir, &state, &node)?);
            save(&dir, &state)?;
            tokio::runtime::Runtime::new()?
                .block_on(wait_ready(&[node], Duration::from_secs(60)))?;
            println!("node {} started", n.node);
            Ok(())
        }
    }
}

/// The JSON-RPC URL of the devnet directory in `dir` (a seed that is not a service node, as
/// Session's seed servers are not).
pub(crate) fn directory_url(dir: &Path) -> Result<String> {
    Ok(format!("http://{}/json_rpc", load(dir)?.directory_addr))
}

/// The nodes' HTTPS addresses of the devnet in `dir`.
pub(crate) fn node_addrs(dir: &Path) -> Result<Vec<SocketAddr>> {
    Ok(load(dir)?.nodes.iter().map(|n| n.addr).collect())
}

fn node_signal(dir: &Path, node: usize, sig: &str) -> Result<()> {
    let state = load(dir)?;
    let entry = node
        .checked_sub(1)
        .and_then(|i| state.nodes.get(i))
        .context("no such node")?;
    let pid = entry
        .pid
        .filter(|&p| alive(Some(p)))
        .context("that node is not running")?;
    signal(pid, sig);
    if !wait_exit(pid, Duration::from_secs(15)) {
        bail!("node {node} did not exit");
    }
    println!("node {node} ({}) stopped", entry.addr);
    Ok(())
}

/// Starts a devnet; if anything fails after processes were started, stops them again.
pub(crate) fn up(args: &DevnetConfig, dir: &Path) -> Result<()> {
    if let Ok(state) = load(dir) {
        if alive(state.directory_pid) || state.nodes.iter().any(|n| alive(n.pid)) {
            bail!(
                "a devnet is already running in {}; stop it with `shallot devnet down`",
                dir.display()
            );
        }
    }
    let result = start_all(args, dir);
    if result.is_err() {
        eprintln!("start-up failed; stopping what was started …");
        let _ = down(dir);
    }
    result
}

fn start_all(args: &DevnetConfig, dir: &Path) -> Result<()> {
    if args.nodes == 0 || args.nodes > 254 {
        bail!("--nodes must be between 1 and 254");
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("devnet.toml"), toml::to_string(args)?)
        .context("could not write devnet.toml")?;
    let started = Instant::now();
    let directory_addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let admin_addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    eprintln!("starting the directory on {directory_addr} (admin {admin_addr}) …");
    let mut directory_args: Vec<String> = vec![
        "directory".into(),
        "serve".into(),
        "--bind".into(),
        directory_addr.to_string(),
        "--admin-bind".into(),
        admin_addr.to_string(),
        "--chain-dir".into(),
        dir.join("directory").display().to_string(),
        "--block-time-ms".into(),
        args.block_time_ms.to_string(),
        "--time-scale".into(),
        args.time_scale.to_string(),
    ];
    if let Some(ms) = args.proof_interval_ms {
        directory_args.extend(["--proof-interval-ms".into(), ms.to_string()]);
    }
    let directory_pid = spawn_detached(&directory_args, &dir.join("directory.log"))?;
    let mut state = DevnetState {
        directory_addr,
        admin_addr: Some(admin_addr),
        directory_pid: Some(directory_pid),
        subnet: args.subnet,
        observation_logs: args.observation_logs,
        nodes: Vec::new(),
    };
    save(dir, &state)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while rpc(directory_addr, "get_info", &json!({})).is_err() {
        if Instant::now() > deadline || !alive(Some(directory_pid)) {
            bail!(
                "the directory did not start; see {}",
                dir.join("directory.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("registering and starting {} nodes …", args.nodes);
    for index in 1..=args.nodes {
        let mut node = create_and_register(dir, &state, index)?;
        node.pid = Some(start_node(dir, &state, &node)?);
        state.nodes.push(node);
        save(dir, &state)?;
    }
    tokio::runtime::Runtime::new()?.block_on(async {
        wait_ready(&state.nodes, Duration::from_secs(120)).await?;
        wait_settled(&state.nodes, Duration::from_secs(30)).await
    })?;
    eprintln!("devnet up in {:.1} s", started.elapsed().as_secs_f64());
    print_table(dir, &state)
}

pub(crate) fn down(dir: &Path) -> Result<()> {
    let mut state = load(dir)?;
    for node in &mut state.nodes {
        if let Some(pid) = node.pid.filter(|&p| alive(Some(p))) {
            signal(pid, "-TERM");
        }
    }
    for node in &mut state.nodes {
        if let Some(pid) = node.pid.take() {
            if !wait_exit(pid, Duration::from_secs(15)) {
                signal(pid, "-KILL");
            }
        }
    }
    if let Some(pid) = state.directory_pid.take().filter(|&p| alive(Some(p))) {
        signal(pid, "-TERM");
        if !wait_exit(pid, Duration::from_secs(15)) {
            signal(pid, "-KILL");
        }
    }
    save(dir, &state)?;
    println!("devnet stopped; its data stays in {}", dir.display());
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
