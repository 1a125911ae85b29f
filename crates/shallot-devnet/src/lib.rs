//! Local networks of real `shallot node` processes on 127.0.N.x addresses: node keys made up
//! front, one directory file they all read, and an HTTPS client to talk to them. Used by the
//! integration tests and `shallot bench`, and the base of `shallot devnet`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_keys::AccountStore;
use shallot_proto::swarm::SwarmId;
use shallot_proto::{AccountId, Identity};

/// Why a local network could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A file-system operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A node key could not be written.
    #[error(transparent)]
    Keys(#[from] shallot_keys::KeystoreError),
    /// A node did not become ready in time.
    #[error("node {index} did not become ready within {seconds} s; its log:\n{log}")]
    NotReady {
        /// Node index.
        index: usize,
        /// How long we waited.
        seconds: u64,
        /// The node's stderr so far.
        log: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
    let action = action.into();
    move |source| NetError::Io { action, source }
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

fn free_port(ip: Ipv4Addr) -> Result<u16, NetError> {
    let listener = TcpListener::bind((ip, 0)).map_err(io(format!("find a free port on {ip}")))?;
    Ok(listener
        .local_addr()
        .map_err(io("read local address"))?
        .port())
}

impl LocalNet {
    /// Creates keys and the directory for the network, starts every node, and waits until all
    /// serve clients.
    pub async fn start(options: NetOptions) -> Result<Self, NetError> {
        Self::start_inner(options, false).await
    }

    /// [`Self::start`] with every node keeping an observation log (what it saw of each request:
    /// client addresses next to accounts; devnets and audits only) at
    /// [`Self::observation_log`].
    pub async fn start_observed(options: NetOptions) -> Result<Self, NetError> {
        Self::start_inner(options, true).await
    }

    /// Node `i`'s observation log (written only by a network from [`Self::start_observed`]).
    pub fn observation_log(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("observations.jsonl")
    }

    async fn start_inner(options: NetOptions, observed: bool) -> Result<Self, NetError> {
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
                    addr: SocketAddr::from((ip, free_port(ip)?)),
                    dir: node_dir,
                    swarm,
                    child: None,
                });
            }
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(30))
            // Below the nodes' 20 s idle limit: never reuse a connection as the node closes it.
            .pool_idle_timeout(Duration::from_secs(10))
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
        for i in 0..net.nodes.len() {
            net.wait_ready(i).await?;
        }
        Ok(net)
    }

    fn spawn(&mut self, i: usize) -> Result<(), NetError> {
        let node = &self.nodes[i];
        let log =
            std::fs::File::create(node.dir.join("node.log")).map_err(io("create node.log"))?;
        let observe = self
            .observed
            .then(|| ["--observation-log".into(), self.observation_log(i)]);
        let child = Command::new(&self.options.binary)
            .arg("node")
            .arg("--node-dir")
            .arg(&node.dir)
            .arg("--bind")
            .arg(node.addr.to_string())
            .arg("--directory-file")
            .arg(&self.directory_file)
            .arg("--exempt-loopback")
            .arg("--allow-private-targets")
            .arg("--log")
            .arg(&self.options.log)
            .args(&self.options.node_args)
            .args(self.extra_args.get(&i).into_iter().flatten())
            .args(observe.iter().flatten())
            .env_remove("SHALLOT_HOME")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io(format!("start {}", self.options.binary.display())))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// The directory as every node reads it (a `get_service_nodes` result).
    pub fn directory_json(&self) -> Value {
        let states: Vec<Value> = self
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "service_node_pubkey": n.ed25519_hex(),
                    "pubkey_ed25519": n.ed25519_hex(),
                    "pubkey_x25519": n.identity.x25519_public().to_hex(),
                    "public_ip": n.addr.ip().to_string(),
                    "storage_port": n.addr.port(),
                    "storage_lmq_port": 0,
                    "swarm_id": n.swarm.0,
                    "funded": true,
                })
            })
            .collect();
        json!({"height": self.height, "block_hash": format!("{:064x}", self.height), "hardfork": 19,
               "snode_revision": 4, "service_node_states": states})
    }

    /// Rewrites the directory file atomically as a new block (nodes re-read it within a second).
    pub fn write_directory(&mut self) -> Result<(), NetError> {
        self.height += 1;
        let tmp = self.directory_file.with_extension("tmp");
        std::fs::write(&tmp, self.directory_json().to_string())
            .map_err(io("write the directory"))?;
        std::fs::rename(&tmp, &self.directory_file).map_err(io("replace the directory"))
    }

    /// Waits until node `i` answers `info` with 200.
    pub async fn wait_ready(&self, i: usize) -> Result<(), NetError> {
        const LIMIT: Duration = Duration::from_secs(30);
        let deadline = Instant::now() + LIMIT;
        loop {
            let response = self
                .http
                .post(self.nodes[i].url("/storage_rpc/v1"))
                .body(r#"{"method":"info","params":{}}"#)
                .send()
                .await;
            if matches!(&response, Ok(r) if r.status() == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(NetError::NotReady {
                    index: i,
                    seconds: LIMIT.as_secs(),
                    log: self.log(i),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Node `i`'s stderr so far.
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
    pub async fn restart(&mut self, i: usize) -> Result<(), NetError> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// Restarts node `i` as [`Self::restart`] does, with `args` added to its command line from
    /// now on (e.g. a test-only flag for this one node).
    pub async fn restart_with_args(&mut self, i: usize, args: Vec<String>) -> Result<(), NetError> {
        self.extra_args.insert(i, args);
        self.restart(i).await
    }

    /// Sends SIGTERM to node `i` and waits up to 20 s; `true` if it exited with success.
    pub fn terminate(&mut self, i: usize) -> bool {
        let Some(mut child) = self.nodes[i].child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        false
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
