//! A node pointed at the devnet directory through the oxend backend (`--oxend URL`, the devnet
//! wiring) behaves identically to one reading the same `get_service_nodes` result from a file
//! (`--directory-file`): same readiness, same swarm, same answers to clients, and messages stored
//! through either reach the other and the rest of the swarm.
//!
//! One devnet of 14 oxend-wired nodes (two swarms) plus two newcomers started side by side with
//! the same binary and flags except the wiring: `oxend-wired` reads the directory's JSON-RPC,
//! `file-wired` reads a file the test keeps equal to the directory's answer to the exact request
//! the oxend backend makes. A file has nobody to send uptime proofs to, so the test does for the
//! file-wired node what a service node's own oxend does: it signs and submits its proof every
//! 5 s, with the node's key, through the same client code the nodes use.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test; one scenario.

mod support;

use support::{b64, now_ms, shallot, until};

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_directory::NetworkView;
use shallot_keys::AccountStore;
use shallot_node::oxend::{OxendClient, HEARTBEAT_INTERVAL};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::swarm::SwarmId;
use shallot_proto::{AccountId, AccountKind, Identity, Namespace};

/// Third octet of every address of this test (no other test uses it).
const SUBNET: u8 = 96;

/// `devnet up` in a temporary directory; `devnet down` on drop, also after a panic.
struct Devnet {
    dir: tempfile::TempDir,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = shallot(&["devnet", "down", "--dir", self.dir.path().to_str().unwrap()]);
    }
}

/// A node process started by the test; killed on drop.
struct NodeProc {
    name: &'static str,
    identity: Identity,
    addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl NodeProc {
    /// Starts `shallot node` as `devnet up` does, with `wiring` as its directory flags.
    fn start(name: &'static str, root: &Path, host: u8, wiring: &[&str]) -> Self {
        let identity = Identity::generate(&mut rand::rngs::OsRng);
        let dir = root.join(name);
        AccountStore::node(&dir).save(&identity, false).unwrap();
        let ip = Ipv4Addr::new(127, 0, SUBNET, host);
        let addr = shallot_devnet::ports::free_addr(ip).unwrap();
        let log = std::fs::File::create(dir.join("node.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_shallot"))
            .args(["node", "--node-dir", dir.to_str().unwrap()])
            .args(["--bind", &addr.to_string(), "--exempt-loopback"])
            .args(["--log", "warn"])
            .args(wiring)
            .env_remove("SHALLOT_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            name,
            identity,
            addr,
            dir,
            child,
        }
    }

    fn key(&self) -> String {
        self.identity.ed25519_public().to_hex()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON-RPC and storage-RPC calls.
#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    directory: String,
}

impl Http {
    async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        support::json_rpc(&self.client, &self.directory, method, params).await
    }

    /// The directory's view, parsed as the nodes parse it.
    async fn view(&self) -> NetworkView {
        let list = self.call("get_service_nodes", json!({})).await.unwrap();
        NetworkView::from_get_service_nodes(&list).unwrap()
    }

    /// (HTTP status, JSON body or text; status 0 if the node did not answer).
    async fn storage(&self, addr: SocketAddr, method: &str, params: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("https://{addr}/storage_rpc/v1"))
            .body(json!({"method": method, "params": params}).to_string())
            .send()
            .await;
        let Ok(response) = response else {
            return (0, Value::Null);
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A client-visible answer without its clock fields (`t`, `timestamp`).
    async fn answer(&self, addr: SocketAddr, method: &str, params: Value) -> (u16, Value) {
        let (status, mut body) = self.storage(addr, method, params).await;
        if let Some(map) = body.as_object_mut() {
            map.remove("t");
            map.remove("timestamp");
        }
        (status, body)
    }
}

/// The request the oxend backend makes (shallot-node `OxendClient::service_nodes`), without
/// `poll_block_hash`: its answer is what the file-wired node reads.
fn node_list_request() -> Value {
    json!({
        "active_only": false,
        "fields": {"service_node_pubkey": true, "swarm_id": true, "storage_port": true,
            "public_ip": true, "height": true, "block_hash": true, "hardfork": true,
            "snode_revision": true, "funded": true, "pubkey_x25519": true,
            "pubkey_ed25519": true, "storage_lmq_port": true},
    })
}

/// Keeps `file` equal to the directory's answer (atomic replace every 200 ms) and, every
/// heartbeat interval, submits the file-wired node's signed uptime proof as its oxend would.
async fn mirror(http: Http, file: PathBuf, node: Identity, addr: SocketAddr) {
    let oxend = OxendClient::new(http.directory.clone());
    let SocketAddr::V4(v4) = addr else {
        unreachable!("loopback IPv4")
    };
    let mut last_proof: Option<Instant> = None;
    loop {
        if last_proof.is_none_or(|t| t.elapsed() >= HEARTBEAT_INTERVAL) {
            // Refused until the node is registered; an oxend keeps trying too.
            if oxend
                .submit_uptime_proof(&node, *v4.ip(), v4.port(), now_ms() / 1000)
                .await
                .is_ok()
            {
                last_proof = Some(Instant::now());
            }
        }
        if let Ok(list) = http.call("get_service_nodes", node_list_request()).await {
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, list.to_string()).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A 05 account over a fresh Ed25519 key (as the reference suite does).
struct Account {
    user: Identity,
    id: AccountId,
}

impl Account {
    fn new() -> Self {
        let user = Identity::generate(&mut rand::rngs::OsRng);
        let id = AccountId::new(
            AccountKind::from_prefix(0x05),
            *user.ed25519_public().as_bytes(),
        );
        Self { user, id }
    }

    /// A fresh account that `view` maps to `swarm`.
    fn in_swarm(view: &NetworkView, swarm: SwarmId) -> Self {
        loop {
            let account = Self::new();
            if view.swarm_for(&account.id) == Some(swarm) {
                return account;
            }
        }
    }

    fn store_params(&self, text: &str) -> (Value, String) {
        let data = format!("{text} for {}", self.id.to_hex());
        let hash = MessageHash::compute(&self.id, Namespace(0), data.as_bytes()).to_string();
        let params = json!({"pubkey": self.id.to_hex(), "timestamp": now_ms(),
            "ttl": 3_600_000, "data": b64(&data)});
        (params, hash)
    }

    /// The hashes `addr` returns for this account's namespace 0.
    async fn held_by(&self, http: &Http, addr: SocketAddr) -> Result<BTreeSet<String>, String> {
        let ts = now_ms();
        let signature = b64(self
            .user
            .sign(format!("retrieve{ts}").as_bytes())
            .to_bytes());
        let params = json!({"pubkey": self.id.to_hex(), "timestamp": ts, "signature": signature});
        let (status, body) = http.storage(addr, "retrieve", params).await;
        if status != 200 {
            return Err(format!("{addr} answered {status}: {body}"));
        }
        Ok(body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["hash"].as_str().unwrap().to_owned())
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oxend_and_file_wired_nodes_behave_identically() {
    let started = Instant::now();
    shallot_node::tls::install_crypto_provider();
    let devnet = Devnet {
        dir: tempfile::tempdir().unwrap(),
    };
    let root = devnet.dir.path().to_owned();
    let (ok, text) = shallot(&[
        "devnet",
        "up",
        "--nodes",
        "14",
        "--subnet",
        &SUBNET.to_string(),
        "--block-time-ms",
        "200",
        "--dir",
        root.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let state = shallot_devnet::DevnetState::load(&root).unwrap();
    let url = state.directory_url();
    let first_member: SocketAddr = state.nodes[0].addr;
    let http = Http {
        client: shallot_devnet::ready::node_client()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        directory: url.clone(),
    };
    eprintln!("devnet up after {:?}", started.elapsed());

    // The two newcomers: same binary and flags, only the directory wiring differs.
    let file = root.join("directory.json");
    let oxend_wired = NodeProc::start("oxend-wired", &root, 31, &["--oxend", &url]);
    let file_wired = NodeProc::start(
        "file-wired",
        &root,
        32,
        &["--directory-file", file.to_str().unwrap()],
    );
    let mirror = tokio::spawn(mirror(
        http.clone(),
        file.clone(),
        file_wired.identity.clone(),
        file_wired.addr,
    ));
    let newcomers = [&oxend_wired, &file_wired];

    // Not listed yet: both serving, and both refusing clients alike (not in a swarm).
    let probe = Account::new();
    for node in newcomers {
        // Listening, and past its first directory read (before it, the refusal also names the
        // hardfork it has not seen yet): the two sources are compared from the same state.
        until(
            Duration::from_secs(20),
            "the node to read its directory",
            || async {
                match http.storage(node.addr, "info", json!({})).await {
                    (0, _) => Err(format!("{} not answering yet", node.name)),
                    (_, body) if body.to_string().contains("hardfork") => Err(format!(
                        "{} has not read its directory yet: {body}",
                        node.name
                    )),
                    (status, body) => Ok((status, body)),
                }
            },
        )
        .await;
    }
    let mut unlisted = Vec::new();
    for node in newcomers {
        let info = http.storage(node.addr, "info", json!({})).await;
        let swarm = http
            .storage(node.addr, "get_swarm", json!({"pubkey": probe.id.to_hex()}))
            .await;
        assert_eq!(info.0, 503, "{}: {info:?}", node.name);
        assert_eq!(swarm.0, 503, "{}: {swarm:?}", node.name);
        unlisted.push((info, swarm));
    }
    assert_eq!(unlisted[0], unlisted[1], "different refusals");

    // Registered with a full stake: both become ready.
    let stake = http
        .call("get_staking_requirement", json!({}))
        .await
        .unwrap()["staking_requirement"]
        .clone();
    // Through the directory's admin listener with its token, as `devnet up` registers nodes
    // (the public listener takes stake changes only signed by a wallet).
    let admin_url = format!("http://{}/json_rpc", state.admin_addr.unwrap());
    let token = std::fs::read_to_string(root.join("directory").join("admin.token")).unwrap();
    let admin = shallot_directory::DirectoryClient::with_http(http.client.clone(), admin_url)
        .bearer(token.trim());
    for node in newcomers {
        let result = admin
            .call(
                "devnet_register_service_node",
                json!({"pubkey": node.key(), "reservations":
                    [{"address": format!("operator-{}", node.name), "amount": stake}]}),
            )
            .await
            .unwrap();
        assert_eq!(result["status"], "OK", "{result}");
    }
    let registered = Instant::now();
    for node in newcomers {
        until(Duration::from_secs(20), "the node to be ready", || async {
            match http.storage(node.addr, "info", json!({})).await {
                (200, body) => Ok(body),
                (status, body) => Err(format!("{}: {status} {body}\n{}", node.name, node.log())),
            }
        })
        .await;
        eprintln!(
            "{} ready {:?} after registration",
            node.name,
            registered.elapsed()
        );
    }
    let infos: Vec<(u16, Value)> = {
        let mut infos = Vec::new();
        for node in newcomers {
            infos.push(http.answer(node.addr, "info", json!({})).await);
        }
        infos
    };
    assert_eq!(infos[0], infos[1], "info differs");

    // Each is in the swarm the directory lists it in, and says so to clients.
    let view = http.view().await;
    assert_eq!(view.swarm_ids().len(), 2, "16 nodes, two swarms");
    let mut own = Vec::new();
    for node in newcomers {
        let record = view.node(&node.key().parse().unwrap()).unwrap();
        assert_ne!(record.swarm_id, SwarmId::INVALID, "{}", node.name);
        assert_eq!(record.https_addr(), node.addr, "{}", node.name);
        let account = Account::in_swarm(&view, record.swarm_id);
        let (status, body) = http
            .storage(
                node.addr,
                "get_swarm",
                json!({"pubkey": account.id.to_hex()}),
            )
            .await;
        assert_eq!(status, 200, "{}: {body}", node.name);
        assert_eq!(
            body["swarm"],
            format!("{:x}", record.swarm_id.0),
            "{}",
            node.name
        );
        assert!(
            body["snodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["pubkey_ed25519"] == node.key().as_str()),
            "{}: {body}",
            node.name
        );
        own.push((record.swarm_id, account));
    }

    // Same answer to get_swarm (and its alias) for many accounts: from both newcomers, from an
    // original devnet node, and as computed from the directory's own listing.
    let accounts: Vec<Account> = (0..12).map(|_| Account::new()).collect();
    until(
        Duration::from_secs(10),
        "identical get_swarm answers",
        || async {
            let view = http.view().await;
            for account in &accounts {
                let pubkey = json!({"pubkey": account.id.to_hex()});
                let mut expected =
                    serde_json::to_value(view.swarm_members(&account.id, 0)).unwrap();
                expected.as_object_mut().unwrap().remove("t");
                for addr in [oxend_wired.addr, file_wired.addr, first_member] {
                    for method in ["get_swarm", "get_snodes_for_pubkey"] {
                        let (status, body) = http.answer(addr, method, pubkey.clone()).await;
                        if (status, &body) != (200, &expected) {
                            return Err(format!(
                                "{addr} {method}: {status} {body}, want {expected}"
                            ));
                        }
                    }
                }
            }
            Ok(())
        },
    )
    .await;

    // Outside its swarm, each redirects a store (421) to the same members.
    for (node, (swarm, _)) in newcomers.iter().zip(&own) {
        let other = *view.swarm_ids().iter().find(|s| *s != swarm).unwrap();
        let stranger = Account::in_swarm(&view, other);
        let (params, _) = stranger.store_params("misdirected");
        let (status, body) = http.storage(node.addr, "store", params).await;
        assert_eq!(status, 421, "{}: {body}", node.name);
        assert_eq!(
            body["snodes"],
            serde_json::to_value(view.swarm_members(&stranger.id, 0)).unwrap()["snodes"],
            "{}",
            node.name
        );
    }

    // Messages: stored through the newcomer, or through another member (an oxend-wired devnet
    // node), every member of the swarm — the newcomer included — returns both. For the
    // file-wired newcomer that is a message stored through either wiring read through the other.
    for (node, (swarm, account)) in newcomers.iter().zip(&own) {
        let members: Vec<SocketAddr> = view
            .members(*swarm)
            .map(shallot_directory::NodeRecord::https_addr)
            .collect();
        let peer = *members.iter().find(|a| **a != node.addr).unwrap();
        let mut stored = BTreeSet::new();
        for (via, text) in [(node.addr, "via the newcomer"), (peer, "via a peer")] {
            let (params, hash) = account.store_params(text);
            let (status, body) = http.storage(via, "store", params).await;
            assert_eq!(status, 200, "{}: {body}", node.name);
            assert_eq!(body["hash"], hash.as_str(), "{body}");
            let swarm = body["swarm"].as_object().unwrap();
            assert_eq!(swarm.len(), members.len(), "{}: {body}", node.name);
            assert!(
                swarm.values().all(|e| e.get("failed").is_none()),
                "{}: {body}",
                node.name
            );
            assert!(swarm.contains_key(&node.key()), "{}: {body}", node.name);
            stored.insert(hash);
        }
        until(
            Duration::from_secs(10),
            "every member to hold both messages",
            || async {
                for &addr in &members {
                    let held = account.held_by(&http, addr).await?;
                    if held != stored {
                        return Err(format!("{addr} holds {held:?}, stored {stored:?}"));
                    }
                }
                Ok(())
            },
        )
        .await;
    }
    eprintln!(
        "newcomers in swarms {:x} and {:x}",
        own[0].0 .0, own[1].0 .0
    );

    mirror.abort();
    eprintln!("directory backends test took {:?}", started.elapsed());
}
