//! In-process nodes for executor tests: real stores (SQLite in a temporary directory), a
//! stopped clock, and swarm traffic over a [`MemoryNet`] instead of HTTPS.
#![allow(dead_code)] // Each test file uses part of the harness.

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{json, Value};
use shallot_directory::{NetworkView, NodeRecord};
use shallot_node::clock::ManualClock;
use shallot_node::exec::{Body, Origin, Reply};
use shallot_node::memory_link::MemoryNet;
use shallot_node::onion_limits::OnionLimits;
use shallot_node::peers::PeerClient;
use shallot_node::rate_limit::{RateLimitConfig, RateLimiter};
use shallot_node::state::Node;
use shallot_node::swarm_link::SwarmLink;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::Envelope;
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::swarm::SwarmId;
use shallot_proto::{AccountId, AccountKind, Ed25519Pub, Identity, Namespace, Signature};
use shallot_store::{Store, StoreConfig};

/// The time every test starts at (ms since the Unix epoch).
pub const T0: u64 = 1_700_000_000_000;
/// A day in ms.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Nodes of one process joined by a [`MemoryNet`], sharing a stopped clock.
pub struct Cluster {
    /// The in-memory network.
    pub net: Arc<MemoryNet>,
    /// Every node's clock.
    pub clock: Arc<ManualClock>,
    /// The nodes, in the order given.
    pub nodes: Vec<Arc<Node>>,
    hardfork: (u8, u8),
    _dir: tempfile::TempDir,
}

/// The identity of node `i` (fixed, so runs are repeatable).
pub fn node_identity(i: usize) -> Identity {
    Identity::from_seed([u8::try_from(i).unwrap() + 100; 32])
}

/// Node `i`'s directory entry in swarm `swarm` (0: not in a swarm).
pub fn record(i: usize, swarm: u64) -> NodeRecord {
    let id = node_identity(i);
    NodeRecord {
        pubkey_legacy: *id.ed25519_public().as_bytes(),
        ed25519: id.ed25519_public(),
        x25519: id.x25519_public(),
        ip: Ipv4Addr::new(127, 0, 9, u8::try_from(i).unwrap() + 1),
        https_port: 443,
        omq_port: 0,
        swarm_id: if swarm == 0 {
            SwarmId::INVALID
        } else {
            SwarmId(swarm)
        },
    }
}

/// A view placing node `i` in `swarms[i]` (0: in none).
pub fn view(swarms: &[u64], height: u64, hardfork: (u8, u8)) -> NetworkView {
    let nodes = swarms
        .iter()
        .enumerate()
        .map(|(i, &s)| record(i, s))
        .collect();
    NetworkView::new(height, format!("block{height}"), hardfork, nodes)
}

impl Cluster {
    /// Nodes `0..swarms.len()`, node `i` in swarm `swarms[i]`, on hardfork 19.4.
    pub fn start(swarms: &[u64]) -> Self {
        Self::with(swarms, (19, 4), &StoreConfig::default())
    }

    /// As [`Cluster::start`], on `hardfork`, every store opened with `config`.
    pub fn with(swarms: &[u64], hardfork: (u8, u8), config: &StoreConfig) -> Self {
        Self::wrapped(swarms, hardfork, config, |link| link)
    }

    /// As [`Cluster::with`], each node sending over `wrap(its memory link)`.
    pub fn wrapped(
        swarms: &[u64],
        hardfork: (u8, u8),
        config: &StoreConfig,
        wrap: impl Fn(Arc<dyn SwarmLink>) -> Arc<dyn SwarmLink>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let net = MemoryNet::new();
        let clock = Arc::new(ManualClock::new(T0));
        let first = view(swarms, 1, hardfork);
        let nodes = (0..swarms.len())
            .map(|i| {
                let identity = node_identity(i);
                let store = Store::open(dir.path().join(format!("node{i}.db")), *config).unwrap();
                let peers = PeerClient::new(&identity, OnionLimits::default(), None).unwrap();
                let link = wrap(net.link(identity.ed25519_public()));
                let node = Arc::new(
                    Node::new(
                        identity,
                        clock.clone(),
                        Arc::new(store),
                        RateLimiter::new(RateLimitConfig::default()),
                        peers,
                        false,
                    )
                    .with_swarm_link(link),
                );
                node.set_view(first.clone());
                net.attach(&node);
                node
            })
            .collect();
        Self {
            net,
            clock,
            nodes,
            hardfork,
            _dir: dir,
        }
    }

    /// Node `i`'s Ed25519 key.
    pub fn key(&self, i: usize) -> Ed25519Pub {
        self.nodes[i].identity.ed25519_public()
    }

    /// Node `i`'s key as the `swarm` results name it.
    pub fn hex(&self, i: usize) -> String {
        self.key(i).to_hex()
    }

    /// Gives every node a new view (no handoff runs: see `handoff::execute`).
    pub fn set_swarms(&self, swarms: &[u64], height: u64) -> NetworkView {
        let view = view(swarms, height, self.hardfork);
        for node in &self.nodes {
            node.set_view(view.clone());
        }
        view
    }

    /// A client's request at node `i`, as `/storage_rpc/v1` runs it.
    pub async fn rpc(&self, i: usize, method: &str, params: Value) -> (u16, Value) {
        self.call(i, method, params, Origin::Client).await
    }

    /// A request at node `i` from `origin`.
    pub async fn call(
        &self,
        i: usize,
        method: &str,
        params: Value,
        origin: Origin,
    ) -> (u16, Value) {
        // The body as `/storage_rpc/v1` gets it: replication forwards these bytes.
        let body = bytes::Bytes::from(json!({"method": method, "params": params}).to_string());
        let reply = match Envelope::parse(&body).and_then(|e| e.request()) {
            Ok(request) => {
                self.nodes[i]
                    .execute_envelope(request, origin, Some(body))
                    .await
            }
            Err(error) => Reply::text(error.status(), error.to_string()),
        };
        split(reply)
    }
}

/// A reply as status and JSON (text bodies become JSON strings).
pub fn split(reply: Reply) -> (u16, Value) {
    let body = match reply.body {
        Body::Json(value) => value,
        Body::Text(text) => Value::String(text),
    };
    (reply.status, body)
}

/// Base64 as clients send it.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    shallot_proto::b64::encode(bytes.as_ref())
}

/// An account and the key that signs for it.
pub struct User {
    /// The signing key.
    pub id: Identity,
    /// The account.
    pub account: AccountId,
}

impl User {
    /// A `03` account of a fixed Ed25519 key (signs directly; no `pubkey_ed25519` needed).
    pub fn new(seed: u8) -> Self {
        let id = Identity::from_seed([seed; 32]);
        let account = AccountId::new(
            AccountKind::from_prefix(0x03),
            *id.ed25519_public().as_bytes(),
        );
        Self { id, account }
    }

    /// The first user from `seed` on whose account maps to `swarm` in `view`.
    pub fn in_swarm(view: &NetworkView, swarm: u64, seed: u8) -> Self {
        (seed..=u8::MAX)
            .map(Self::new)
            .find(|u| view.swarm_for(&u.account) == Some(SwarmId(swarm)))
            .expect("an account in the swarm")
    }

    /// The account in hex.
    pub fn hex(&self) -> String {
        self.account.to_hex()
    }

    /// Base64 signature over `text`.
    pub fn sign(&self, text: impl AsRef<[u8]>) -> String {
        b64(self.id.sign(text.as_ref()).to_bytes())
    }

    /// `pubkey` plus `extra`.
    pub fn params(&self, extra: Value) -> Value {
        let mut params = extra;
        params["pubkey"] = self.hex().into();
        params
    }

    /// The hash a store of `data` in `namespace` gets.
    pub fn hash(&self, namespace: i16, data: &[u8]) -> String {
        MessageHash::compute(&self.account, Namespace(namespace), data).to_string()
    }

    /// Store params for `data` in `namespace` at time `t` (signed unless the namespace is
    /// public).
    pub fn store(&self, namespace: i16, data: &[u8], t: u64) -> Value {
        let mut params = self.params(
            json!({"namespace": namespace, "timestamp": t, "ttl": DAY_MS, "data": b64(data)}),
        );
        if !Namespace(namespace).is_public_inbox() {
            params["signature"] = self.sign(format!("store{namespace}{t}")).into();
        }
        params
    }

    /// Signed retrieve params for `namespace` at time `t`.
    pub fn retrieve(&self, namespace: i16, t: u64) -> Value {
        self.params(json!({"namespace": namespace, "timestamp": t,
            "signature": self.sign(format!("retrieve{}{t}", ns_text(namespace)))}))
    }

    /// A read, write and delete subaccount token for `sub` and this account's signature on it.
    pub fn subaccount(&self, sub: &User) -> (SubaccountToken, String) {
        let token = SubaccountToken::new(0x03, SubaccountFlags(0x07), &sub.id.ed25519_public());
        let sig = self.sign(token.as_bytes());
        (token, sig)
    }
}

/// A namespace as it appears in signed texts: empty for 0.
pub fn ns_text(namespace: i16) -> String {
    if namespace == 0 {
        String::new()
    } else {
        namespace.to_string()
    }
}

/// Checks that `entry["signature"]` is node `key`'s signature over `message`.
pub fn signed_by(key: &Ed25519Pub, message: &[u8], entry: &Value) -> bool {
    let Some(text) = entry["signature"].as_str() else {
        return false;
    };
    let Ok(bytes) = shallot_proto::b64::decode(text.as_bytes()) else {
        return false;
    };
    let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    key.verify(message, &Signature::from_bytes(&bytes))
}

/// The hashes of a retrieve answer, in order.
pub fn hashes(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hash"].as_str().unwrap().to_owned())
        .collect()
}
