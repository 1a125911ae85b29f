//! A local network of real `shallot node` processes sharing one directory file (no chain), for
//! the integration tests, `shallot audit` and `shallot bench`: keys made up front, swarms
//! chosen by the caller, and an HTTPS client to talk to the nodes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::{json, Value};
use shallot_keys::AccountStore;
use shallot_proto::swarm::SwarmId;
use shallot_proto::{AccountId, Identity};

use crate::process::{self, DirectorySource, NodeLaunch};
use crate::{io, ready, DevnetError};

/// A `get_service_nodes` result at block `height` listing `nodes` (identity, HTTPS address,
/// swarm), all funded and active: what a node started with `--directory-file` reads.
pub fn directory_listing<'a>(
    height: u64,
    nodes: impl IntoIterator<Item = (&'a Identity, SocketAddr, SwarmId)>,
) -> Value {
    let states: Vec<Value> = nodes
        .into_iter()
        .map(|(identity, addr, swarm)| {
            let key = identity.ed25519_public().to_hex();
            json!({
                "service_node_pubkey": key,
                "pubkey_ed25519": key,
                "pubkey_x25519": identity.x25519_public().to_hex(),
                "public_ip": addr.ip().to_string(),
                "storage_port": addr.port(),
                "storage_lmq_port": 0,
                "swarm_id": swarm.0,
                "funded": true,
            })
        })
        .collect();
    json!({"height": height, "block_hash": format!("{height:064x}"), "hardfork": 19,
           "snode_revision": 4, "service_node_states": states})
}

/// Replaces the directory file at `path` with `listing` atomically (a node never reads half).
pub fn write_directory_file(path: &Path, listing: &Value) -> Result<(), DevnetError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, listing.to_string()).map_err(io("write the directory"))?;
    std::fs::rename(&tmp, path).map_err(io("replace the directory"))
}

/// One node process of a local network.
pub struct NodeProc {
    /// The node's identity (its key file is written before it starts).
    pub identity: Identity,
    /// HTTPS address.
    pub addr: SocketAddr,
    /// Data directory (key, certificate, database, `node.log`).
    pub dir: PathBuf,
    /// Swarm the directory puts it in.
    pub swarm: SwarmId,
    child: Option<Child>,
}

impl NodeProc {
    /// `https://ip:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The node's Ed25519 key in hex.
    pub fn ed25519_hex(&self) -> String {
        self.identity.ed25519_public().to_hex()
    }

    /// Whether the process is running (as far as we started it).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// How to start a local network.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// The `shallot` binary to run nodes with.
    pub binary: PathBuf,
    /// Member count of each swarm.
    pub swarms: Vec<usize>,
    /// Third octet of the 127.0.N.x addresses (distinct per concurrent network).
    pub subnet: u8,
    /// Node log filter.
    pub log: String,
    /// Extra arguments for every node.
    pub node_args: Vec<String>,
}

/// A running local network. Dropping it kills every node.
pub struct LocalNet {
    /// Holds every node's data; removed on drop.
    pub dir: tempfile::TempDir,
    /// The nodes.
    pub nodes: Vec<NodeProc>,
    /// The directory file every node polls.
    pub directory_file: PathBuf,
    /// HTTPS client accepting the nodes' self-signed certificates.
    pub http: reqwest::Client,
    options: NetOptions,
    height: u64,
    /// Extra arguments per node index (see [`LocalNet::restart_with_args`]).
    extra_args: std::collections::HashMap<usize, Vec<String>>,
    /// Whether nodes keep an observation log (see [`LocalNet::start_observed`]).
    observed: bool,
}

impl LocalNet {
    /// Creates keys and the directory for the network, starts every node, and waits until all
    /// serve clients.
    pub async fn start(options: NetOptions) -> Result<Self, DevnetError> {
        Self::start_inner(options, false).await
    }

    /// [`Self::start`] with every node keeping an observation log (what it saw of each request:
    /// client addresses next to accounts; devnets and audits only) at
    /// [`Self::observation_log`].
    pub async fn start_observed(options: NetOptions) -> Result<Self, DevnetError> {
        Self::start_inner(options, true).await
    }

    /// Node `i`'s observation log (written only by a network from [`Self::start_observed`]).
    pub fn observation_log(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("observations.jsonl")
    }

    async fn start_inner(options: NetOptions, observed: bool) -> Result<Self, DevnetError> {
        shallot_node::tls::install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("shallot-net-")
            .tempdir()
            .map_err(io("create a temporary directory"))?;
        let directory_file = dir.path().join("nodes.json");
        let mut nodes = Vec::new();
        let count = u64::try_from(options.swarms.len().max(1)).unwrap_or(1);
        for (s, &members) in options.swarms.iter().enumerate() {
            // Spread swarm ids evenly over the ring.
            let swarm = SwarmId(u64::MAX / count * u64::try_from(s).unwrap_or(0) + 1000);
            for _ in 0..members {
                let index = u8::try_from(nodes.len() + 1).unwrap_or(u8::MAX);
                let ip = Ipv4Addr::new(127, 0, options.subnet, index);
                let node_dir = dir.path().join(format!("node{index}"));
                let identity = Identity::generate(&mut rand::rngs::OsRng);
                AccountStore::node(&node_dir).save(&identity, false)?;
                nodes.push(NodeProc {
                    identity,
                    addr: crate::ports::free_addr(ip)
                        .map_err(io(format!("find a free port on {ip}")))?,
                    dir: node_dir,
                    swarm,
                    child: None,
                });
            }
        }
        let http = ready::node_client()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut net = Self {
            dir,
            nodes,
            directory_file,
            http,
            options,
            height: 1,
            extra_args: std::collections::HashMap::new(),
            observed,
        };
        net.write_directory()?;
        for i in 0..net.nodes.len() {
            net.spawn(i)?;
        }
        let addrs: Vec<SocketAddr> = net.nodes.iter().map(|n| n.addr).collect();
        net.wait_serving(&addrs).await?;
        Ok(net)
    }

    fn spawn(&mut self, i: usize) -> Result<(), DevnetError> {
        let node = &self.nodes[i];
        let launch = NodeLaunch {
            binary: self.options.binary.clone(),
            node_dir: node.dir.clone(),
            bind: node.addr,
            directory: DirectorySource::File(self.directory_file.clone()),
            log: self.options.log.clone(),
            observation_log: self.observed.then(|| self.observation_log(i)),
            extra_args: self
                .options
                .node_args
                .iter()
                .chain(self.extra_args.get(&i).into_iter().flatten())
                .cloned()
                .collect(),
        };
        let child = process::spawn_logged(&mut launch.command(), &node.dir.join("node.log"))
            .map_err(io(format!("start {}", self.options.binary.display())))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// The directory as every node reads it (a `get_service_nodes` result).
    pub fn directory_json(&self) -> Value {
        directory_listing(
            self.height,
            self.nodes.iter().map(|n| (&n.identity, n.addr, n.swarm)),
        )
    }

    /// Rewrites the directory file atomically as a new block (nodes re-read it within a second).
    pub fn write_directory(&mut self) -> Result<(), DevnetError> {
        self.height += 1;
        write_directory_file(&self.directory_file, &self.directory_json())
    }

    /// Waits until node `i` answers `info` with 200.
    pub async fn wait_ready(&self, i: usize) -> Result<(), DevnetError> {
        self.wait_serving(&[self.nodes[i].addr]).await
    }

    async fn wait_serving(&self, addrs: &[SocketAddr]) -> Result<(), DevnetError> {
        const LIMIT: Duration = Duration::from_secs(30);
        let poll = Duration::from_millis(50);
        ready::wait_serving(&self.http, addrs, (LIMIT, poll), |_, _| {})
            .await
            .map_err(|e| {
                let first = e.waiting.first().copied().unwrap_or(0);
                let index = self
                    .nodes
                    .iter()
                    .position(|n| n.addr == addrs[first])
                    .unwrap_or(0);
                DevnetError::NotReady {
                    index,
                    seconds: LIMIT.as_secs(),
                    log: self.log(index),
                }
            })
    }

    /// Node `i`'s output (its log and any panic) so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("node.log")).unwrap_or_default()
    }

    /// Indices of the nodes in the swarm that serves `account`.
    pub fn swarm_of(&self, account: &AccountId) -> Vec<usize> {
        let mut ids: Vec<SwarmId> = self.nodes.iter().map(|n| n.swarm).collect();
        ids.sort_unstable();
        ids.dedup();
        let Some(swarm) = shallot_proto::swarm::swarm_for(&ids, account) else {
            return Vec::new();
        };
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].swarm == swarm)
            .collect()
    }

    /// Indices of the nodes *not* serving `account`.
    pub fn not_swarm_of(&self, account: &AccountId) -> Vec<usize> {
        let members = self.swarm_of(account);
        (0..self.nodes.len())
            .filter(|i| !members.contains(i))
            .collect()
    }

    /// SIGKILLs node `i` (no graceful shutdown).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts node `i` with the same keys, address and data, and waits until it is ready.
    pub async fn restart(&mut self, i: usize) -> Result<(), DevnetError> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// Restarts node `i` as [`Self::restart`] does, with `args` added to its command line from
    /// now on (e.g. a test-only flag for this one node).
    pub async fn restart_with_args(
        &mut self,
        i: usize,
        args: Vec<String>,
    ) -> Result<(), DevnetError> {
        self.extra_args.insert(i, args);
        self.restart(i).await
    }

    /// Sends SIGTERM to node `i` and waits up to 20 s; `true` if it exited with success.
    pub fn terminate(&mut self, i: usize) -> bool {
        self.nodes[i]
            .child
            .take()
            .is_some_and(|child| process::terminate(child, Duration::from_secs(20)))
    }

    /// Process ids of the running nodes (for memory measurements).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }

    /// Where the network keeps its files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for LocalNet {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
