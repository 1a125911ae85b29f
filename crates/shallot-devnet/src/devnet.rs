//! `shallot devnet`'s network: a devnet directory (a simulated chain) and node processes that
//! register with it, kept in one directory and outliving the command that started them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_directory::{CallError, DirectoryClient};
use shallot_keys::AccountStore;
use shallot_proto::Identity;

use crate::fileserver::FileServerLaunch;
use crate::process::{self, DirectorySource, NodeLaunch, Signal, STOP_GRACE};
use crate::ready;
use crate::state::{DevnetConfig, DevnetState, NodeEntry};
use crate::{io, DevnetError};

/// How long `up` waits for all nodes to serve.
const UP_READY: Duration = Duration::from_secs(120);
/// How long `add-node` and `start-node` wait for the node to serve.
const NODE_READY: Duration = Duration::from_secs(60);
/// How long `up` waits for the nodes to agree on the swarms.
const SETTLE: Duration = Duration::from_secs(30);
/// How long the directory may take to answer after it starts.
const DIRECTORY_START: Duration = Duration::from_secs(20);

/// A stage of bringing a devnet up, for progress output.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// The directory is starting on these listeners.
    Directory {
        /// Public JSON-RPC listener.
        public: SocketAddr,
        /// Admin listener.
        admin: SocketAddr,
    },
    /// The file server for attachments serves at this address.
    FileServer(SocketAddr),
    /// This many nodes are being registered and started.
    Registering(usize),
    /// Of `total` nodes, `ready` serve clients.
    Ready {
        /// Nodes serving.
        ready: usize,
        /// Nodes waited for.
        total: usize,
    },
}

impl Step {
    /// Prints the step on stderr, as `shallot devnet up` does (readiness on one line).
    pub fn print(self) {
        use std::io::Write;
        match self {
            Self::Directory { public, admin } => {
                eprintln!("starting the directory on {public} (admin {admin}) …");
            }
            Self::FileServer(addr) => eprintln!("file server serving on http://{addr}"),
            Self::Registering(nodes) => eprintln!("registering and starting {nodes} nodes …"),
            Self::Ready { ready, total } => {
                eprint!("\r  nodes ready: {ready}/{total}   ");
                if ready == total {
                    eprintln!();
                }
                let _ = std::io::stderr().flush();
            }
        }
    }
}

/// A devnet kept in a directory (`devnet.json`, `devnet.toml`, `directory/`, `node<N>/`).
#[derive(Clone, Debug)]
pub struct Devnet {
    dir: PathBuf,
    binary: PathBuf,
    node_log: String,
    /// Whether the processes it starts stop when this process is gone (temporary devnets).
    exit_with_launcher: bool,
}

impl Devnet {
    /// The devnet in `dir`, whose processes run `binary` (`shallot`). Nodes log at the level in
    /// `SHALLOT_DEVNET_NODE_LOG`, else `warn`.
    pub fn new(dir: impl Into<PathBuf>, binary: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            binary: binary.into(),
            node_log: std::env::var("SHALLOT_DEVNET_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            exit_with_launcher: false,
        }
    }

    /// Where the devnet keeps its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its recorded state.
    pub fn state(&self) -> Result<DevnetState, DevnetError> {
        DevnetState::load(&self.dir)
    }

    /// Node `index`'s data directory.
    pub fn node_dir(&self, index: usize) -> PathBuf {
        self.dir.join(format!("node{index}"))
    }

    /// Node `index`'s observation log (written when the devnet keeps them).
    pub fn observation_log(&self, index: usize) -> PathBuf {
        self.node_dir(index).join("observations.jsonl")
    }

    /// The directory's admin token file.
    pub fn admin_token_path(&self) -> PathBuf {
        shallot_chain::auth::admin_token_path(&self.dir.join("directory"))
    }

    /// A client for the directory's public listener.
    pub fn directory(state: &DevnetState) -> DirectoryClient {
        DirectoryClient::new(state.directory_url())
    }

    /// A client for the directory's admin listener, with the token from its data directory.
    fn admin(&self, state: &DevnetState) -> Result<DirectoryClient, DevnetError> {
        let addr = state.admin_addr.ok_or(DevnetError::NoAdminListener)?;
        let path = self.admin_token_path();
        let token = std::fs::read_to_string(&path)
            .map_err(io(format!("read the admin token {}", path.display())))?;
        Ok(DirectoryClient::new(format!("http://{addr}/json_rpc")).bearer(token.trim()))
    }

    /// Starts a devnet (or restarts a stopped one with its recorded nodes' keys), records
    /// `config` in `devnet.toml`, and returns once every node serves and all agree on the
    /// swarms. If anything fails after processes were started, stops them again.
    pub async fn up(
        &self,
        config: &DevnetConfig,
        mut progress: impl FnMut(Step),
    ) -> Result<DevnetState, DevnetError> {
        if DevnetState::load(&self.dir).is_ok_and(|state| state.any_running()) {
            return Err(DevnetError::AlreadyRunning(self.dir.clone()));
        }
        let result = self.start_all(config, &mut progress).await;
        if result.is_err() {
            let _ = self.down();
        }
        result
    }

    async fn start_all(
        &self,
        config: &DevnetConfig,
        progress: &mut impl FnMut(Step),
    ) -> Result<DevnetState, DevnetError> {
        if config.nodes == 0 || config.nodes > 254 {
            return Err(DevnetError::NodeCount);
        }
        std::fs::create_dir_all(&self.dir).map_err(io("create the devnet directory"))?;
        let recorded = toml::to_string(config).map_err(|e| DevnetError::Corrupt(e.to_string()))?;
        std::fs::write(self.dir.join("devnet.toml"), recorded).map_err(io("write devnet.toml"))?;
        let localhost = Ipv4Addr::LOCALHOST;
        let directory_addr = crate::ports::free_addr(localhost).map_err(io("find a free port"))?;
        let admin_addr = crate::ports::free_addr(localhost).map_err(io("find a free port"))?;
        progress(Step::Directory {
            public: directory_addr,
            admin: admin_addr,
        });
        let mut command = Command::new(&self.binary);
        command
            .args(["directory", "serve", "--bind", &directory_addr.to_string()])
            .args(["--admin-bind", &admin_addr.to_string(), "--chain-dir"])
            .arg(self.dir.join("directory"))
            .args(["--block-time-ms", &config.block_time_ms.to_string()])
            .args(["--time-scale", &config.time_scale.to_string()])
            .env_remove("SHALLOT_HOME");
        if let Some(ms) = config.proof_interval_ms {
            command.args(["--proof-interval-ms", &ms.to_string()]);
        }
        let log = self.dir.join("directory.log");
        if self.exit_with_launcher {
            process::exit_with_launcher(&mut command);
        }
        let directory_pid =
            process::spawn_detached(&mut command, &log).map_err(io("start the directory"))?;
        let mut state = DevnetState {
            directory_addr,
            admin_addr: Some(admin_addr),
            directory_pid: Some(directory_pid),
            subnet: config.subnet,
            observation_logs: config.observation_logs,
            nodes: Vec::new(),
            file_server: None,
        };
        state.save(&self.dir)?;
        let directory = Self::directory(&state);
        let deadline = Instant::now() + DIRECTORY_START;
        while directory.call("get_info", json!({})).await.is_err() {
            if Instant::now() > deadline || !process::is_alive(directory_pid) {
                return Err(DevnetError::DirectoryDidNotStart(log));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let file_server = self.file_server_launch().spawn_detached().await?;
        progress(Step::FileServer(file_server.addr));
        state.file_server = Some(file_server);
        state.save(&self.dir)?;
        progress(Step::Registering(config.nodes));
        for index in 1..=config.nodes {
            let mut node = self.create_and_register(&state, index).await?;
            node.pid = Some(self.start_node_process(&state, &node)?);
            state.nodes.push(node);
            state.save(&self.dir)?;
        }
        let addrs: Vec<SocketAddr> = state.nodes.iter().map(|n| n.addr).collect();
        let http = readiness_client()?;
        ready::wait_serving(
            &http,
            &addrs,
            (UP_READY, Duration::from_millis(250)),
            |ready, total| progress(Step::Ready { ready, total }),
        )
        .await?;
        ready::wait_settled(&http, &addrs, SETTLE).await?;
        Ok(state)
    }

    /// The devnet's file server: on 127.0.0.1 (nodes may proxy to it: devnets allow private
    /// targets), its key and files in `fileserver/`, kept across restarts.
    fn file_server_launch(&self) -> FileServerLaunch {
        FileServerLaunch {
            binary: self.binary.clone(),
            dir: self.dir.join("fileserver"),
            ip: Ipv4Addr::LOCALHOST.into(),
            log: self.node_log.clone(),
            extra_args: Vec::new(),
            exit_with_launcher: self.exit_with_launcher,
        }
    }

    /// Creates node `index`'s key (or reuses it) and registers it with a full stake through the
    /// admin listener, unless the chain already knows it (a restarted devnet).
    async fn create_and_register(
        &self,
        state: &DevnetState,
        index: usize,
    ) -> Result<NodeEntry, DevnetError> {
        let keys = AccountStore::node(self.node_dir(index));
        let identity = if keys.exists() {
            keys.load()?
        } else {
            let identity = Identity::generate(&mut rand::rngs::OsRng);
            keys.save(&identity, false)?;
            identity
        };
        let last = u8::try_from(index).map_err(|_| DevnetError::NodeCount)?;
        let ip = Ipv4Addr::new(127, 0, state.subnet, last);
        let addr = crate::ports::free_addr(ip).map_err(io(format!("find a free port on {ip}")))?;
        let directory = Self::directory(state);
        let call = |method: &'static str| {
            move |source: CallError| DevnetError::Directory { method, source }
        };
        let stake = directory
            .call("get_staking_requirement", json!({}))
            .await
            .map_err(call("get_staking_requirement"))?["staking_requirement"]
            .as_u64()
            .ok_or(DevnetError::Answer("the staking requirement"))?;
        let ed25519 = identity.ed25519_public().to_hex();
        let known = directory
            .call(
                "get_service_nodes",
                json!({"service_node_pubkeys": [ed25519], "fields": {"service_node_pubkey": true}}),
            )
            .await
            .map_err(call("get_service_nodes"))?;
        let registered = known["service_node_states"]
            .as_array()
            .is_some_and(|nodes| !nodes.is_empty());
        if !registered {
            self.admin(state)?
                .call(
                    "devnet_register_service_node",
                    json!({"pubkey": ed25519, "reservations":
                        [{"address": format!("operator{index}"), "amount": stake}]}),
                )
                .await
                .map_err(call("devnet_register_service_node"))?;
        }
        Ok(NodeEntry {
            index,
            addr,
            ed25519,
            pid: None,
        })
    }

    fn start_node_process(
        &self,
        state: &DevnetState,
        node: &NodeEntry,
    ) -> Result<u32, DevnetError> {
        let node_dir = self.node_dir(node.index);
        let launch = NodeLaunch {
            binary: self.binary.clone(),
            node_dir: node_dir.clone(),
            bind: node.addr,
            directory: DirectorySource::Oxend(state.directory_url()),
            log: self.node_log.clone(),
            observation_log: state
                .observation_logs
                .then(|| self.observation_log(node.index)),
            extra_args: Vec::new(),
        };
        let mut command = launch.command();
        if self.exit_with_launcher {
            process::exit_with_launcher(&mut command);
        }
        process::spawn_detached(&mut command, &node_dir.join("node.log"))
            .map_err(io(format!("start node {}", node.index)))
    }

    /// Registers and starts one more node; returns once it serves.
    pub async fn add_node(&self) -> Result<NodeEntry, DevnetError> {
        let mut state = self.state()?;
        let index = state.nodes.len() + 1;
        let mut node = self.create_and_register(&state, index).await?;
        node.pid = Some(self.start_node_process(&state, &node)?);
        state.nodes.push(node.clone());
        state.save(&self.dir)?;
        wait_node(&node).await?;
        Ok(node)
    }

    /// Starts node `node` (1-based) again after it was killed or stopped; returns once it serves.
    pub async fn start_node(&self, node: usize) -> Result<(), DevnetError> {
        let mut state = self.state()?;
        let entry = state.node(node)?.clone();
        if entry.pid.is_some_and(process::is_alive) {
            return Err(DevnetError::NodeRunning(node));
        }
        let pid = self.start_node_process(&state, &entry)?;
        state.nodes[node - 1].pid = Some(pid);
        state.save(&self.dir)?;
        wait_node(&entry).await
    }

    /// Sends `signal` to node `node` (1-based) and waits until it has exited; its address.
    pub fn signal_node(&self, node: usize, signal: Signal) -> Result<SocketAddr, DevnetError> {
        let state = self.state()?;
        let entry = state.node(node)?;
        let pid = entry
            .pid
            .filter(|&p| process::is_alive(p))
            .ok_or(DevnetError::NodeNotRunning(node))?;
        process::signal(pid, signal);
        if !process::wait_exit(pid, STOP_GRACE) {
            return Err(DevnetError::DidNotExit(node));
        }
        Ok(entry.addr)
    }

    /// Stops every process of the devnet: SIGTERM, and SIGKILL for any still running after
    /// [`STOP_GRACE`]. Its data stays. Blocking (no network): safe in `Drop`.
    pub fn down(&self) -> Result<(), DevnetError> {
        let mut state = self.state()?;
        let stop = |pid: u32| {
            if !process::wait_exit(pid, STOP_GRACE) {
                process::signal(pid, Signal::KILL);
            }
        };
        for pid in state.nodes.iter().filter_map(|n| n.pid) {
            if process::is_alive(pid) {
                process::signal(pid, Signal::TERM);
            }
        }
        for node in &mut state.nodes {
            if let Some(pid) = node.pid.take() {
                stop(pid);
            }
        }
        if let Some(pid) = state
            .file_server
            .as_mut()
            .and_then(|f| f.pid.take())
            .filter(|&p| process::is_alive(p))
        {
            process::signal(pid, Signal::TERM);
            stop(pid);
        }
        if let Some(pid) = state.directory_pid.take().filter(|&p| process::is_alive(p)) {
            process::signal(pid, Signal::TERM);
            stop(pid);
        }
        state.save(&self.dir)
    }

    /// The directory's addresses and a row per node: address, key, swarm, chain state and
    /// whether its process runs (`shallot devnet status`).
    pub async fn status_table(&self, state: &DevnetState) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let dir = self.dir();
        let listing = Self::listing(state).await;
        let empty = Vec::new();
        #[allow(clippy::single_match_else)] // Both arms write; a match reads better here.
        let entries = match &listing {
            Ok(listing) => {
                let _ = writeln!(
                    out,
                    "directory  http://{}/json_rpc  height {}  ({})",
                    state.directory_addr,
                    listing["height"],
                    dir.display()
                );
                if let Some(admin) = state.admin_addr {
                    let _ = writeln!(
                        out,
                        "admin      http://{admin}/json_rpc  token {}",
                        self.admin_token_path().display()
                    );
                }
                listing["service_node_states"].as_array().unwrap_or(&empty)
            }
            Err(_) => {
                let _ = writeln!(
                    out,
                    "directory not running ({}); chain states unknown",
                    dir.display()
                );
                &empty
            }
        };
        if let Some(files) = &state.file_server {
            let running = if files.pid.is_some_and(process::is_alive) {
                "running"
            } else {
                "stopped"
            };
            let _ = writeln!(
                out,
                "fileserver {}  ed25519 {}  x25519 {}  {running}",
                files.url(),
                files.ed25519,
                files.x25519
            );
        }
        let _ = writeln!(out, "node  address                ed25519            swarm              state           process");
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
            let process = if node.pid.is_some_and(process::is_alive) {
                "running"
            } else {
                "stopped"
            };
            let swarm = if swarm == "ffffffffffffffff" {
                "-"
            } else {
                swarm
            };
            let _ = writeln!(
                out,
                "{:>4}  {:<22} {:<18} {:<18} {:<15} {}",
                node.index,
                node.addr,
                node.ed25519.get(..16).unwrap_or(&node.ed25519),
                swarm,
                chain_state,
                process
            );
        }
        out
    }

    /// The directory's full node list (`get_service_nodes`).
    pub async fn listing(state: &DevnetState) -> Result<Value, CallError> {
        Self::directory(state)
            .call("get_service_nodes", json!({}))
            .await
    }
}

/// An HTTPS client for readiness probes: a node that accepts but does not answer is asked
/// again soon.
fn readiness_client() -> Result<reqwest::Client, DevnetError> {
    Ok(ready::node_client()
        .timeout(Duration::from_secs(2))
        .build()?)
}

async fn wait_node(node: &NodeEntry) -> Result<(), DevnetError> {
    let http = readiness_client()?;
    ready::wait_serving(
        &http,
        &[node.addr],
        (NODE_READY, Duration::from_millis(250)),
        |_, _| {},
    )
    .await?;
    Ok(())
}

/// A devnet in a fresh temporary directory: dropping it stops every process (`devnet down`)
/// and, unless kept, deletes the directory — on success, error, panic or Ctrl-C alike. Its
/// processes also stop by themselves if this process is killed before it can drop it
/// ([`process::LAUNCHER_PID_ENV`]).
pub struct TempDevnet {
    devnet: Devnet,
    keep: bool,
}

impl TempDevnet {
    /// A new, empty devnet directory under the system's temporary directory (nothing runs yet:
    /// [`Devnet::up`] it). The guard exists before any process does, so a failing `up` is
    /// cleaned up too.
    pub fn new(binary: impl Into<PathBuf>, keep: bool) -> Result<Self, DevnetError> {
        let stamp: u64 = rand::random();
        let dir =
            std::env::temp_dir().join(format!("shallot-devnet-{}-{stamp:x}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let mut devnet = Devnet::new(dir, binary);
        devnet.exit_with_launcher = true;
        Ok(Self { devnet, keep })
    }

    /// Stops the devnet and removes its directory unless kept; the directory and whether it
    /// was removed.
    pub fn close(self) -> Result<(PathBuf, bool), DevnetError> {
        let result = self.devnet.down();
        let dir = self.devnet.dir.clone();
        let removed = !self.keep;
        // Drop does the removal (down again is a no-op: nothing runs).
        drop(self);
        result.map(|()| (dir, removed))
    }
}

impl std::ops::Deref for TempDevnet {
    type Target = Devnet;
    fn deref(&self) -> &Devnet {
        &self.devnet
    }
}

impl Drop for TempDevnet {
    fn drop(&mut self) {
        // Nothing may have started (no devnet.json): nothing to stop.
        let _ = self.devnet.down();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.devnet.dir);
        }
    }
}
