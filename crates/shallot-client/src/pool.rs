//! The node pool (spec §3.1, directory spec §5): every service node the client knows, bootstrapped
//! from seeds and refreshed by intersecting the lists of several nodes, so one lying node cannot
//! fill the pool with its friends.
//!
//! Bootstrap asks every configured seed. With one seed, its list is taken as is (a devnet; that
//! seed can lie). With two or more, at least two must answer and a node enters the pool only if
//! more than half of the answering seeds list it with the same key, IP and port: with two seeds
//! that is their intersection, with three a majority. A lying seed can then neither add nodes
//! nor, when outvoted, remove honest ones; if no node is agreed on, bootstrap fails with an error
//! that says so. A seed given with its Ed25519 key ([`Seed::PinnedNode`]) must prove that key in
//! the TLS handshake, so nobody on the network path can answer in its name.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shallot_directory::capped::read_capped;
use shallot_directory::{CallError, DirectoryClient, NodeRecord};
use shallot_proto::rpc::{OxendEndpoint, Request};
use shallot_proto::swarm::{swarm_for, SwarmId};
use shallot_proto::{AccountId, Ed25519Pub, X25519Pub};

use crate::error::Error;
use crate::timeouts;

/// Where to fetch the first node list from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seed {
    /// An oxend-compatible JSON-RPC endpoint (full URL, e.g. `https://seed1…:4443/json_rpc`),
    /// asked `get_n_service_nodes`.
    JsonRpc(String),
    /// A service node, asked `oxend_request {endpoint: "get_service_nodes"}` over direct RPC.
    /// Its TLS certificate is not checked: anyone on the path could answer for it.
    Node(SocketAddr),
    /// A service node as [`Seed::Node`], whose TLS certificate must prove this Ed25519 key
    /// (written `KEY@IP:PORT`).
    PinnedNode {
        /// The node's HTTPS address.
        addr: SocketAddrV4,
        /// The node's Ed25519 key.
        ed25519: Ed25519Pub,
    },
}

impl Seed {
    /// Where the seed is (its address or URL), whatever key it is pinned to.
    fn place(&self) -> String {
        match self {
            Self::JsonRpc(url) => url.clone(),
            Self::Node(addr) => addr.to_string(),
            Self::PinnedNode { addr, .. } => addr.to_string(),
        }
    }
}

impl std::str::FromStr for Seed {
    type Err = String;

    /// Parses `IP:PORT` (unpinned node), `ED25519_HEX@IPV4:PORT` (pinned node) or an
    /// `http(s)://` JSON-RPC URL.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.starts_with("https://") || text.starts_with("http://") {
            return Ok(Self::JsonRpc(text.to_owned()));
        }
        match text.split_once('@') {
            Some((key, addr)) => Ok(Self::PinnedNode {
                addr: addr
                    .parse()
                    .map_err(|_| format!("{addr:?} is not an IPv4 address and port"))?,
                ed25519: key
                    .parse()
                    .map_err(|_| format!("{key:?} is not a 64-hex-digit Ed25519 key"))?,
            }),
            None => text
                .parse()
                .map(Self::Node)
                .map_err(|_| format!("{text:?} is not IP:PORT, KEY@IP:PORT or a URL")),
        }
    }
}

/// The `get_service_nodes` params a client sends: active nodes only, the fields it needs.
pub fn service_nodes_params() -> Value {
    json!({
        "active_only": true,
        "fields": {
            "public_ip": true, "storage_port": true, "storage_lmq_port": true,
            "pubkey_x25519": true, "pubkey_ed25519": true, "swarm_id": true,
            "requested_unlock_height": true, "height": true
        }
    })
}

/// The storage RPC request asking a node for its node list.
pub fn service_nodes_request() -> Request {
    Request::OxendRequest {
        endpoint: OxendEndpoint::GetServiceNodes,
        params: Some(service_nodes_params()),
    }
}

/// Parses the nodes of a `get_service_nodes` result (the object holding
/// `service_node_states`); unusable entries (no keys, unspecified IP, unfunded) are skipped.
pub fn parse_service_nodes(result: &Value) -> Result<Vec<NodeRecord>, Error> {
    let states = result
        .get("service_node_states")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::protocol("reading a node list", "no service_node_states"))?;
    Ok(states
        .iter()
        .filter_map(|entry| NodeRecord::from_json(entry).ok())
        .filter(usable)
        .collect())
}

fn usable(node: &NodeRecord) -> bool {
    !node.ip.is_unspecified() && node.https_port != 0
}

/// The nodes every answer agrees on (same Ed25519 key, IP and port), or an error when fewer than
/// `min_agreement` remain. Desktop requires 24 on mainnet; small devnets need a lower value.
pub fn intersect(
    answers: &[Vec<NodeRecord>],
    min_agreement: usize,
) -> Result<Vec<NodeRecord>, Error> {
    let Some((first, rest)) = answers.split_first() else {
        return Err(Error::Bootstrap("no node list to intersect".into()));
    };
    let key = |n: &NodeRecord| (n.ed25519, n.ip, n.https_port);
    let others: Vec<HashSet<_>> = rest.iter().map(|a| a.iter().map(key).collect()).collect();
    let common: Vec<NodeRecord> = first
        .iter()
        .filter(|n| others.iter().all(|set| set.contains(&key(n))))
        .cloned()
        .collect();
    if common.len() < min_agreement {
        return Err(Error::Bootstrap(format!(
            "only {} node(s) common to {} lists, need {min_agreement}",
            common.len(),
            answers.len()
        )));
    }
    Ok(common)
}

/// The set of known service nodes, with lookups by key and by account swarm.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    nodes: Vec<NodeRecord>,
    index: HashMap<Ed25519Pub, usize>,
}

impl Pool {
    /// A pool of `nodes`, dropping duplicates and nodes without a usable address.
    pub fn new(nodes: impl IntoIterator<Item = NodeRecord>) -> Self {
        let mut pool = Self::default();
        for node in nodes.into_iter().filter(usable) {
            if !pool.index.contains_key(&node.ed25519) {
                pool.index.insert(node.ed25519, pool.nodes.len());
                pool.nodes.push(node);
            }
        }
        pool
    }

    /// Every node.
    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the pool is empty (bootstrap needed).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A node by Ed25519 key.
    pub fn get(&self, ed25519: &Ed25519Pub) -> Option<&NodeRecord> {
        self.index.get(ed25519).map(|&i| &self.nodes[i])
    }

    /// Whether the pool holds the node.
    pub fn contains(&self, ed25519: &Ed25519Pub) -> bool {
        self.index.contains_key(ed25519)
    }

    /// Removes a node (failed too often, or unknown to the network); `true` if it was present.
    pub fn remove(&mut self, ed25519: &Ed25519Pub) -> bool {
        let Some(i) = self.index.remove(ed25519) else {
            return false;
        };
        self.nodes.remove(i);
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        true
    }

    /// Swarm ids of the pool's active nodes, ascending.
    pub fn swarm_ids(&self) -> Vec<SwarmId> {
        let mut ids: Vec<SwarmId> = self
            .nodes
            .iter()
            .filter(|n| n.is_active())
            .map(|n| n.swarm_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The members of the swarm serving `account`, computed locally from swarm ids (libsession's
    /// way); empty when the pool has no swarm ids.
    pub fn swarm_members(&self, account: &AccountId) -> Vec<NodeRecord> {
        let Some(swarm) = swarm_for(&self.swarm_ids(), account) else {
            return Vec::new();
        };
        self.nodes
            .iter()
            .filter(|n| n.swarm_id == swarm)
            .cloned()
            .collect()
    }

    /// A serialisable copy, for persisting the pool between runs.
    pub fn snapshot(&self) -> PoolSnapshot {
        PoolSnapshot {
            nodes: self.nodes.iter().map(SnapshotNode::from).collect(),
        }
    }

    /// The pool saved in `snapshot`.
    pub fn from_snapshot(snapshot: &PoolSnapshot) -> Self {
        Self::new(snapshot.nodes.iter().map(SnapshotNode::to_record))
    }

    /// Fetches the node list from one seed.
    pub async fn fetch(http: &reqwest::Client, seed: &Seed) -> Result<Vec<NodeRecord>, Error> {
        let (url, body) = match seed {
            Seed::JsonRpc(url) => {
                let result = DirectoryClient::with_http(http.clone(), url.clone())
                    .timeout(timeouts::SEED_REQUEST)
                    .call("get_n_service_nodes", service_nodes_params())
                    .await
                    .map_err(|e| match e {
                        CallError::Transport(e) => Error::Bootstrap(format!("seed: {e}")),
                        e => Error::protocol("reading a seed's answer", e),
                    })?;
                return parse_service_nodes(&result);
            }
            Seed::Node(addr) => (
                format!("https://{addr}/storage_rpc/v1"),
                service_nodes_request().to_envelope(),
            ),
            Seed::PinnedNode { addr, ed25519 } => (
                format!(
                    "https://{}:{}/storage_rpc/v1",
                    shallot_tls::pinned_host(*addr.ip(), ed25519),
                    addr.port()
                ),
                service_nodes_request().to_envelope(),
            ),
        };
        let response = http
            .post(&url)
            .timeout(timeouts::SEED_REQUEST)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Bootstrap(format!("seed unreachable: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::Bootstrap(format!(
                "seed answered {}",
                response.status()
            )));
        }
        let body = read_capped(response, crate::onion_client::MAX_DIRECT_REPLY_BYTES)
            .await
            .map_err(|e| Error::protocol("reading a seed's answer", e))?;
        let reply: Value = serde_json::from_slice(&body)
            .map_err(|e| Error::protocol("reading a seed's answer", e))?;
        let result = reply
            .get("result")
            .ok_or_else(|| Error::protocol("reading a seed's answer", "no result"))?;
        parse_service_nodes(result)
    }

    /// Bootstraps from `seeds`, all asked at once (see the module doc for the agreement rule).
    pub async fn bootstrap(http: &reqwest::Client, seeds: &[Seed]) -> Result<Self, Error> {
        // One seed configured twice (or pinned and unpinned) is one vote.
        let mut seen = HashSet::new();
        let seeds: Vec<&Seed> = seeds.iter().filter(|s| seen.insert(s.place())).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for &seed in &seeds {
            let (http, seed) = (http.clone(), seed.clone());
            tasks.spawn(async move { Self::fetch(&http, &seed).await });
        }
        let mut answers = Vec::new();
        let mut last = Error::Bootstrap("no seeds configured".into());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(nodes)) => answers.push(nodes),
                Ok(Err(e)) => last = e,
                Err(e) => last = Error::Bootstrap(e.to_string()),
            }
        }
        let needed = seeds.len().min(2);
        if answers.len() < needed || answers.is_empty() {
            if seeds.len() < 2 {
                return Err(last);
            }
            return Err(Error::Bootstrap(format!(
                "only {} of {} seeds answered, and two must agree on the node list ({last})",
                answers.len(),
                seeds.len()
            )));
        }
        let nodes = agreed(&answers);
        if nodes.is_empty() {
            return Err(Error::Bootstrap(if answers.len() == 1 {
                "seed listed no nodes".into()
            } else {
                format!(
                    "the {} answering seeds do not agree on any node: \
                     some seed is lying or out of date",
                    answers.len()
                )
            }));
        }
        if answers.len() > 1 && answers.iter().any(|a| a.len() != nodes.len()) {
            tracing::warn!(
                seeds = answers.len(),
                agreed = nodes.len(),
                "the seeds' node lists differ; keeping only the nodes most of them agree on"
            );
        }
        Ok(Self::new(nodes))
    }
}

/// The nodes listed (same Ed25519 key, IP and port) by more than half of `answers`, in the order
/// of the first answer listing them; with two answers, their intersection.
pub fn agreed(answers: &[Vec<NodeRecord>]) -> Vec<NodeRecord> {
    let key = |n: &NodeRecord| (n.ed25519, n.ip, n.https_port);
    let mut votes: HashMap<(Ed25519Pub, Ipv4Addr, u16), (usize, NodeRecord)> = HashMap::new();
    let mut order = Vec::new();
    for answer in answers {
        let mut seen = HashSet::new();
        for node in answer {
            if !seen.insert(key(node)) {
                continue;
            }
            votes
                .entry(key(node))
                .or_insert_with(|| {
                    order.push(key(node));
                    (0, node.clone())
                })
                .0 += 1;
        }
    }
    order
        .into_iter()
        .filter_map(|k| votes.remove(&k))
        .filter(|(count, _)| 2 * count > answers.len())
        .map(|(_, node)| node)
        .collect()
}

/// A persisted pool: plain serde, so any store (JSON file today, SQLite later) can keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSnapshot {
    /// The nodes.
    pub nodes: Vec<SnapshotNode>,
}

/// One persisted node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotNode {
    /// Ed25519 key (hex).
    pub ed25519: Ed25519Pub,
    /// X25519 key (hex).
    pub x25519: X25519Pub,
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// HTTPS port.
    pub https_port: u16,
    /// OMQ/QUIC port.
    pub omq_port: u16,
    /// Swarm id.
    pub swarm_id: SwarmId,
}

impl From<&NodeRecord> for SnapshotNode {
    fn from(n: &NodeRecord) -> Self {
        Self {
            ed25519: n.ed25519,
            x25519: n.x25519,
            ip: n.ip,
            https_port: n.https_port,
            omq_port: n.omq_port,
            swarm_id: n.swarm_id,
        }
    }
}

impl SnapshotNode {
    /// The node record.
    pub fn to_record(&self) -> NodeRecord {
        NodeRecord {
            pubkey_legacy: *self.ed25519.as_bytes(),
            ed25519: self.ed25519,
            x25519: self.x25519,
            ip: self.ip,
            https_port: self.https_port,
            omq_port: self.omq_port,
            swarm_id: self.swarm_id,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test node: key bytes `i`, address 10.0.`subnet`.`i`.
    pub(crate) fn node(i: u8, subnet: u8) -> NodeRecord {
        NodeRecord {
            pubkey_legacy: [i; 32],
            ed25519: Ed25519Pub::from_bytes([i; 32]),
            x25519: X25519Pub::from_bytes([i.wrapping_add(100); 32]),
            ip: Ipv4Addr::new(10, 0, subnet, i),
            https_port: 20000 + u16::from(i),
            omq_port: 0,
            swarm_id: SwarmId(u64::from(i % 3) * 1000),
        }
    }

    #[test]
    fn intersection_keeps_only_agreed_nodes() {
        let a: Vec<_> = (1..=10).map(|i| node(i, i)).collect();
        let b: Vec<_> = (2..=10).map(|i| node(i, i)).collect();
        let mut c: Vec<_> = (1..=9).map(|i| node(i, i)).collect();
        c[4].https_port = 1; // node 5 with a different port: disagreement.
        let common = intersect(&[a.clone(), b, c], 5).unwrap();
        let keys: Vec<u8> = common.iter().map(|n| n.ed25519.as_bytes()[0]).collect();
        assert_eq!(keys, vec![2, 3, 4, 6, 7, 8, 9]);
        assert_eq!(
            intersect(&[a.clone(), vec![node(1, 1)]], 2)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Bootstrap
        );
        assert_eq!(intersect(&[a], 10).unwrap().len(), 10);
        assert!(intersect(&[], 0).is_err());
    }

    #[test]
    fn seeds_agree_by_majority_and_two_seeds_by_intersection() {
        let honest: Vec<_> = (1..=6).map(|i| node(i, 1)).collect();
        // A liar adds two fake nodes and leaves out nodes 1 and 2.
        let mut lie: Vec<_> = (3..=6).map(|i| node(i, 1)).collect();
        lie.extend([node(200, 9), node(201, 9)]);
        let keys = |nodes: Vec<NodeRecord>| -> Vec<u8> {
            nodes.iter().map(|n| n.ed25519.as_bytes()[0]).collect()
        };
        // Two honest seeds outvote the liar: every honest node, no fake one.
        assert_eq!(
            keys(agreed(&[honest.clone(), lie.clone(), honest.clone()])),
            vec![1, 2, 3, 4, 5, 6]
        );
        // Honest + liar: only what both list.
        assert_eq!(
            keys(agreed(&[honest.clone(), lie.clone()])),
            vec![3, 4, 5, 6]
        );
        // A liar listing a node twice does not get two votes.
        let doubled = vec![node(200, 9), node(200, 9)];
        assert!(agreed(&[honest.clone(), doubled, vec![]]).is_empty());
        assert_eq!(agreed(std::slice::from_ref(&honest)).len(), 6);
    }

    #[test]
    fn seed_texts_parse() {
        let key = "ab".repeat(32);
        assert_eq!(
            format!("{key}@127.0.0.1:22021").parse::<Seed>(),
            Ok(Seed::PinnedNode {
                addr: "127.0.0.1:22021".parse().unwrap(),
                ed25519: key.parse().unwrap()
            })
        );
        assert_eq!(
            "127.0.0.1:22021".parse::<Seed>(),
            Ok(Seed::Node("127.0.0.1:22021".parse().unwrap()))
        );
        assert_eq!(
            "https://seed.example:4443/json_rpc".parse::<Seed>(),
            Ok(Seed::JsonRpc("https://seed.example:4443/json_rpc".into()))
        );
        assert!("zz@127.0.0.1:1".parse::<Seed>().is_err());
        assert!(format!("{key}@[::1]:1").parse::<Seed>().is_err());
        assert!("nonsense".parse::<Seed>().is_err());
    }

    #[test]
    fn drops_unspecified_addresses_and_parses_lists() {
        let mut zero = node(1, 1);
        zero.ip = Ipv4Addr::UNSPECIFIED;
        let pool = Pool::new([zero, node(2, 2), node(2, 2)]);
        assert_eq!(pool.len(), 1);

        let states: Vec<Value> = (1..=3)
            .map(|i| node(i, i).to_service_node_json())
            .chain([json!({"pubkey_ed25519": "", "public_ip": "0.0.0.0"})])
            .chain([{
                let mut v = node(4, 4).to_service_node_json();
                v["public_ip"] = json!("0.0.0.0");
                v
            }])
            .collect();
        let nodes = parse_service_nodes(&json!({"service_node_states": states})).unwrap();
        assert_eq!(nodes.len(), 3);
    }

    #[test]
    fn snapshot_round_trips_through_json() {
        let pool = Pool::new((1..=5).map(|i| node(i, 1)));
        let text = serde_json::to_string(&pool.snapshot()).unwrap();
        let back: PoolSnapshot = serde_json::from_str(&text).unwrap();
        let restored = Pool::from_snapshot(&back);
        assert_eq!(restored.nodes(), pool.nodes());
    }

    #[test]
    fn remove_keeps_index_consistent_and_swarms_are_local() {
        let mut pool = Pool::new((1..=6).map(|i| node(i, 1)));
        assert!(pool.remove(&Ed25519Pub::from_bytes([2; 32])));
        assert!(!pool.remove(&Ed25519Pub::from_bytes([2; 32])));
        assert_eq!(
            pool.get(&Ed25519Pub::from_bytes([6; 32]))
                .map(|n| n.https_port),
            Some(20006)
        );
        assert_eq!(
            pool.swarm_ids(),
            vec![SwarmId(0), SwarmId(1000), SwarmId(2000)]
        );
        let account = AccountId::new(shallot_proto::AccountKind::Session, [0; 32]);
        let members = pool.swarm_members(&account);
        assert!(members.iter().all(|n| n.swarm_id == SwarmId(0)));
        assert!(!members.is_empty());
    }
}
