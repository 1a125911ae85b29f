//! Nodes started as an operator starts them: from a `node.toml` the test writes, with none of the
//! devnet harness's flags (`--exempt-loopback`, `--allow-private-targets`) and no key made up
//! front (each node creates its own on first start). For tests of what an operator configures
//! or relies on: the rate limit, the admin listener, the key files, shutdown.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_keys::AccountStore;
use shallot_proto::swarm::SwarmId;
use shallot_proto::Identity;

/// One node process of a [`ConfigNet`].
pub struct ConfigNode {
    /// The identity the node created for itself (read back from its key file).
    pub identity: Identity,
    /// HTTPS address.
    pub addr: SocketAddr,
    /// Admin (metrics) address.
    pub admin: SocketAddr,
    /// `data_dir` of its config: created by the node itself.
    pub data_dir: PathBuf,
    /// Its `node.toml`.
    pub config: PathBuf,
    /// Its output (the log goes to stdout, errors to stderr).
    pub log: PathBuf,
    child: Option<Child>,
}

impl ConfigNode {
    /// `https://ip:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The admin listener's metrics URL.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.admin)
    }

    /// Its output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (the process keeps running until it has shut down).
    pub fn send_sigterm(&self) {
        use shallot_devnet::process::{signal, Signal};
        let child = self.child.as_ref().expect("node is running");
        signal(child.id(), Signal::TERM);
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A network of [`ConfigNode`]s, all in one swarm. Dropping it kills every node.
pub struct ConfigNet {
    /// Holds configs, logs, data directories and the directory file.
    pub dir: tempfile::TempDir,
    /// The nodes.
    pub nodes: Vec<ConfigNode>,
    /// HTTPS client accepting the nodes' self-signed certificates.
    pub http: reqwest::Client,
}

/// An HTTPS client for the nodes, connecting from `source` when given.
pub fn client_from(source: Option<Ipv4Addr>) -> reqwest::Client {
    shallot_node::tls::install_crypto_provider();
    shallot_devnet::ready::node_client()
        .timeout(Duration::from_secs(30))
        .local_address(source.map(std::net::IpAddr::V4))
        .build()
        .unwrap()
}

impl ConfigNet {
    /// Starts `count` nodes on 127.0.`subnet`.1…, each from a `node.toml` naming its data
    /// directory, HTTPS and admin addresses, the shared directory file and `log`, followed by
    /// `extra` (more TOML keys and sections). Once every node has written its key, the directory
    /// lists them all in one swarm; returns when all serve clients.
    pub async fn start(subnet: u8, count: usize, log: &str, extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("shallot-confnet-")
            .tempdir()
            .unwrap();
        let directory_file = dir.path().join("nodes.json");
        let mut children = Vec::new();
        for i in 0..count {
            let ip = Ipv4Addr::new(127, 0, subnet, u8::try_from(i + 1).unwrap());
            let addr = shallot_devnet::ports::free_addr(ip).unwrap();
            let admin = shallot_devnet::ports::free_addr(ip).unwrap();
            let data_dir = dir.path().join(format!("node{i}"));
            let config = dir.path().join(format!("node{i}.toml"));
            let log_path = dir.path().join(format!("node{i}.log"));
            std::fs::write(
                &config,
                format!(
                    "data_dir = {:?}\nbind = \"{addr}\"\nadmin_bind = \"{admin}\"\nlog = {log:?}\n\
                     directory = {{ file = {{ path = {:?} }} }}\n{extra}",
                    data_dir.display().to_string(),
                    directory_file.display().to_string(),
                ),
            )
            .unwrap();
            // The node logs to stdout; both streams go to one file.
            let log_file = std::fs::File::create(&log_path).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_shallot"))
                .arg("node")
                .arg("--config")
                .arg(&config)
                .env_remove("SHALLOT_HOME")
                .env_remove("SHALLOT_LOG")
                .env_remove("SHALLOT_NODE_CONFIG")
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap();
            children.push((child, addr, admin, data_dir, config, log_path));
        }
        let mut nodes = Vec::new();
        for (child, addr, admin, data_dir, config, log) in children {
            let deadline = Instant::now() + Duration::from_secs(30);
            let identity = loop {
                if let Ok(identity) = AccountStore::node(&data_dir).load() {
                    break identity;
                }
                assert!(
                    Instant::now() < deadline,
                    "no node key in {} after 30 s; log:\n{}",
                    data_dir.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            nodes.push(ConfigNode {
                identity,
                addr,
                admin,
                data_dir,
                config,
                log,
                child: Some(child),
            });
        }
        let listing = shallot_devnet::directory_listing(
            2,
            nodes.iter().map(|n| (&n.identity, n.addr, SwarmId(1000))),
        );
        shallot_devnet::write_directory_file(&directory_file, &listing).unwrap();
        let net = Self {
            dir,
            nodes,
            http: client_from(None),
        };
        for i in 0..count {
            net.wait_ready(i).await;
        }
        net
    }

    /// Waits until node `i` answers `info` with 200.
    pub async fn wait_ready(&self, i: usize) {
        let limits = (Duration::from_secs(30), Duration::from_millis(50));
        let addrs = [self.nodes[i].addr];
        if shallot_devnet::ready::wait_serving(&self.http, &addrs, limits, |_, _| {})
            .await
            .is_err()
        {
            panic!(
                "node {i} not ready after 30 s; log:\n{}",
                self.nodes[i].log_text()
            );
        }
    }

    /// Posts an RPC to node `i` with `http`: (status, JSON body or the text as a JSON string).
    pub async fn rpc_with(
        &self,
        http: &reqwest::Client,
        i: usize,
        method: &str,
        params: Value,
    ) -> (u16, Value) {
        let body = json!({"method": method, "params": params}).to_string();
        self.post_with(http, i, "/storage_rpc/v1", body.into_bytes())
            .await
    }

    /// Posts `body` to `path` of node `i` with `http`: (status, JSON body or the text as a JSON
    /// string).
    pub async fn post_with(
        &self,
        http: &reqwest::Client,
        i: usize,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let (status, bytes) = self.post_bytes_with(http, i, path, body).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts `body` to `path` of node `i` with `http`: (status, body bytes).
    pub async fn post_bytes_with(
        &self,
        http: &reqwest::Client,
        i: usize,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, bytes::Bytes) {
        let response = http
            .post(self.nodes[i].url(path))
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap())
    }

    /// Node `i`'s `/metrics` text from its admin listener.
    pub async fn metrics_text(&self, i: usize) -> String {
        let response = self
            .http
            .get(self.nodes[i].metrics_url())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ConfigNet {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
