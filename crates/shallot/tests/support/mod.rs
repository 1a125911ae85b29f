//! A local network of real `shallot node` processes on 127.0.0.x addresses, for integration
//! tests: keys made up front, a directory file they all read, HTTPS clients to talk to them.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_keys::AccountStore;
use shallot_proto::swarm::SwarmId;
use shallot_proto::{AccountId, Identity};

/// Each network gets its own 127.0.N.0/24 so tests running in parallel never collide.
static NEXT_SUBNET: AtomicU8 = AtomicU8::new(10);

/// One node process.
pub struct NodeProc {
    pub identity: Identity,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub swarm: SwarmId,
    child: Option<Child>,
}

impl NodeProc {
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
    pub fn ed25519_hex(&self) -> String {
        self.identity.ed25519_public().to_hex()
    }
}

/// A running local network.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
    pub directory_file: PathBuf,
    pub http: reqwest::Client,
    height: u64,
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(node: &NodeProc, directory_file: &PathBuf) -> Child {
    let log = std::fs::File::create(node.dir.join("node.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_shallot"))
        .arg("node")
        .arg("--node-dir")
        .arg(&node.dir)
        .arg("--bind")
        .arg(node.addr.to_string())
        .arg("--directory-file")
        .arg(directory_file)
        .arg("--exempt-loopback")
        .arg("--log")
        .arg("warn")
        .env_remove("SHALLOT_HOME")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start shallot node")
}

impl Net {
    /// Starts `swarms.len()` swarms with the given member counts and waits until all are ready.
    pub async fn start(swarms: &[usize]) -> Self {
        shallot_node::tls::install_crypto_provider();
        let subnet = NEXT_SUBNET.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let directory_file = dir.path().join("nodes.json");
        let mut nodes = Vec::new();
        let count = u64::try_from(swarms.len()).unwrap();
        for (s, &members) in swarms.iter().enumerate() {
            // Spread swarm ids evenly over the ring.
            let swarm = SwarmId(u64::MAX / count * u64::try_from(s).unwrap() + 1000);
            for _ in 0..members {
                let index = u8::try_from(nodes.len() + 1).unwrap();
                let ip = Ipv4Addr::new(127, 0, subnet, index);
                let node_dir = dir.path().join(format!("node{index}"));
                let identity = Identity::generate(&mut rand::rngs::OsRng);
                AccountStore::node(&node_dir)
                    .save(&identity, false)
                    .unwrap();
                nodes.push(NodeProc {
                    identity,
                    addr: SocketAddr::from((ip, free_port(ip))),
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
            .build()
            .unwrap();
        let mut net = Self {
            dir,
            nodes,
            directory_file,
            http,
            height: 1,
        };
        net.write_directory();
        for i in 0..net.nodes.len() {
            net.nodes[i].child = Some(spawn(&net.nodes[i], &net.directory_file));
        }
        for i in 0..net.nodes.len() {
            net.wait_ready(i).await;
        }
        net
    }

    /// The directory as every node reads it.
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

    /// Rewrites the directory file (nodes re-read it within a second).
    pub fn write_directory(&mut self) {
        self.height += 1;
        let tmp = self.directory_file.with_extension("tmp");
        std::fs::write(&tmp, self.directory_json().to_string()).unwrap();
        std::fs::rename(&tmp, &self.directory_file).unwrap();
    }

    /// Waits until node `i` answers `info` with 200.
    pub async fn wait_ready(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = self
                .http
                .post(self.nodes[i].url("/storage_rpc/v1"))
                .body(r#"{"method":"info","params":{}}"#)
                .send()
                .await;
            if matches!(&response, Ok(r) if r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} not ready: {}",
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node's log so far (stderr), for failure messages.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("node.log")).unwrap_or_default()
    }

    /// Posts an RPC to node `i`: (status, JSON body or the text as a JSON string).
    pub async fn rpc(&self, i: usize, method: &str, params: Value) -> (u16, Value) {
        self.post(
            i,
            "/storage_rpc/v1",
            json!({"method": method, "params": params})
                .to_string()
                .into_bytes(),
        )
        .await
    }

    /// Posts raw bytes to a path of node `i`.
    pub async fn post(&self, i: usize, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(self.nodes[i].url(path))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Indices of the nodes in the swarm that serves `account`.
    pub fn swarm_of(&self, account: &AccountId) -> Vec<usize> {
        let mut ids: Vec<SwarmId> = self.nodes.iter().map(|n| n.swarm).collect();
        ids.sort_unstable();
        ids.dedup();
        let swarm = shallot_proto::swarm::swarm_for(&ids, account).unwrap();
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].swarm == swarm)
            .collect()
    }

    /// Indices of nodes *not* serving `account`.
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

    /// Restarts a killed node with the same keys, address and data.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.nodes[i].child = Some(spawn(&self.nodes[i], &self.directory_file));
        self.wait_ready(i).await;
    }

    /// Stops node `i` with SIGTERM and waits for it to exit; returns whether it exited cleanly.
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
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Milliseconds since the epoch (tests sign with the real clock, as clients do).
pub fn now_ms() -> u64 {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    u64::try_from(
        now.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Padded base64.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    shallot_proto::b64::encode(bytes)
}

/// A fresh random user account.
pub fn user() -> Identity {
    Identity::generate(&mut rand::rngs::OsRng)
}
