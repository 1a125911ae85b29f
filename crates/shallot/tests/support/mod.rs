//! Test helpers over [`shallot_devnet::LocalNet`]: a local network of real `shallot node`
//! processes on 127.0.N.x, with panicking shortcuts and JSON RPC helpers for tests.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod attack;
pub mod clients;
pub mod config_net;
pub mod files;

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{json, Value};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_proto::Identity;

/// Each network of a test binary gets its own 127.0.N.0/24 so tests running in parallel never
/// collide.
static NEXT_SUBNET: AtomicU8 = AtomicU8::new(10);

/// A running local network (dereferences to [`LocalNet`]). Dropping it kills every node.
pub struct Net(LocalNet);

impl Deref for Net {
    type Target = LocalNet;
    fn deref(&self) -> &LocalNet {
        &self.0
    }
}

impl DerefMut for Net {
    fn deref_mut(&mut self) -> &mut LocalNet {
        &mut self.0
    }
}

/// Options for a test network of `swarms` whose nodes get `node_args`, on the next free subnet.
fn options(swarms: &[usize], node_args: Vec<String>) -> NetOptions {
    NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms: swarms.to_vec(),
        subnet: NEXT_SUBNET.fetch_add(1, Ordering::SeqCst),
        log: "warn".into(),
        node_args,
    }
}

impl Net {
    /// Starts `swarms.len()` swarms with the given member counts and waits until all are ready.
    pub async fn start(swarms: &[usize]) -> Self {
        Self::start_with(swarms, &[]).await
    }

    /// [`Net::start`] with every node keeping an observation log
    /// ([`LocalNet::observation_log`]).
    pub async fn start_observed(swarms: &[usize]) -> Self {
        Self(
            LocalNet::start_observed(options(swarms, Vec::new()))
                .await
                .unwrap(),
        )
    }

    /// Every observation of every node so far.
    pub fn observations(&self) -> Vec<shallot_node::observe::Observation> {
        (0..self.nodes.len())
            .flat_map(|i| shallot_node::observe::read_log(&self.observation_log(i)).unwrap())
            .collect()
    }

    /// [`Net::start`] with extra `shallot node` flags for every node (e.g. `--config FILE`).
    pub async fn start_with(swarms: &[usize], node_args: &[&str]) -> Self {
        let args = node_args.iter().map(ToString::to_string).collect();
        Self::start_with_args(swarms, args).await
    }

    /// [`Net::start`] with extra arguments for every node (e.g. `--config <file>`).
    pub async fn start_with_args(swarms: &[usize], node_args: Vec<String>) -> Self {
        Self(LocalNet::start(options(swarms, node_args)).await.unwrap())
    }

    /// Rewrites the directory file (nodes re-read it within a second).
    pub fn write_directory(&mut self) {
        self.0.write_directory().unwrap();
    }

    /// Waits until node `i` answers `info` with 200.
    pub async fn wait_ready(&self, i: usize) {
        self.0.wait_ready(i).await.unwrap();
    }

    /// Restarts a killed node with the same keys, address and data.
    pub async fn restart(&mut self, i: usize) {
        self.0.restart(i).await.unwrap();
    }

    /// Posts an RPC to node `i`: (status, JSON body or the text as a JSON string).
    pub async fn rpc(&self, i: usize, method: &str, params: Value) -> (u16, Value) {
        let body = json!({"method": method, "params": params}).to_string();
        self.post(i, "/storage_rpc/v1", body.into_bytes()).await
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

/// A messenger for `identity` on `net`, its database in `dir`. Every node is a seed, so the
/// client can fetch the node list again after nodes die (as Session ships several seeds).
pub async fn messenger(
    net: &LocalNet,
    identity: Identity,
    dir: &std::path::Path,
) -> shallot_client::Messenger {
    use shallot_client::{ClientConfig, Db, Messenger, NetworkClock, OnionClient, Seed};
    let config = ClientConfig {
        seeds: net.nodes.iter().map(|n| Seed::Node(n.addr)).collect(),
        min_refresh_agreement: net.nodes.len(),
        ..ClientConfig::default()
    };
    let client = OnionClient::bootstrap(config, NetworkClock::default())
        .await
        .unwrap();
    let db = Db::open_in_dir(dir, &identity).unwrap();
    Messenger::new(identity, client, db)
}

/// The `shallot` binary on the account in `dir` (`--data-dir`, no `SHALLOT_HOME`).
pub fn cli(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shallot"));
    cmd.env_remove("SHALLOT_HOME").arg("--data-dir").arg(dir);
    cmd
}

/// Runs `shallot` on the account in `dir` with `args`: (success, stdout, stderr).
pub fn cli_output(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = cli(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` and returns its stdout, failing with its stderr if it failed.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the `shallot` binary with `args` (no `SHALLOT_HOME`); (success, stdout + stderr).
pub fn shallot(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shallot"))
        .args(args)
        .env_remove("SHALLOT_HOME")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// One JSON-RPC call to a directory at `url` (its `/json_rpc` endpoint) with the project's
/// directory client: the `result`, or the method name and the error.
pub async fn json_rpc(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    shallot_directory::DirectoryClient::with_http(http.clone(), url)
        .call(method, params)
        .await
        .map_err(|e| format!("{method}: {e}"))
}

/// Polls `check` every 200 ms until it yields a value; fails with its last complaint after `limit`.
pub async fn until<T, F, Fut>(limit: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if std::time::Instant::now() > deadline => {
                panic!("timed out after {limit:?} waiting for {what}: {last}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
