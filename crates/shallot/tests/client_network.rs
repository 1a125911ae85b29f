//! The client networking core against real node processes: bootstrap from a seed node, onion
//! paths, store and retrieve through them to the account's swarm, a dead guard, a wrong cached
//! swarm (421) and a skewed client clock (406).
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use shallot_client::{
    ClientConfig, Clock, ErrorKind, NetworkClock, OnionClient, Seed, SystemClock,
};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_directory::NodeRecord;
use shallot_proto::rpc::Request;
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Identity, Namespace};
use support::{b64, user};

async fn start(subnet: u8, swarms: Vec<usize>) -> LocalNet {
    LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms,
        subnet,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap()
}

fn config(net: &LocalNet) -> ClientConfig {
    ClientConfig {
        seeds: vec![Seed::Node(net.nodes[0].addr)],
        min_refresh_agreement: net.nodes.len(),
        ..ClientConfig::default()
    }
}

fn store(account: &AccountId, timestamp: u64, data: &str) -> Request {
    Request::parse(
        "store",
        &json!({"pubkey": account.to_hex(), "timestamp": timestamp, "ttl": 60_000, "data": b64(data)}),
    )
    .unwrap()
}

fn retrieve(identity: &Identity, timestamp: u64) -> Request {
    let account: AccountId = identity.session_id().into();
    let signature = identity.sign(
        &SignedRequest::Retrieve {
            namespace: Namespace(0),
            timestamp,
        }
        .message(),
    );
    Request::parse(
        "retrieve",
        &json!({"pubkey": account.to_hex(), "pubkey_ed25519": identity.ed25519_public().to_hex(),
                "timestamp": timestamp, "signature": b64(signature.to_bytes())}),
    )
    .unwrap()
}

fn datas(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect()
}

fn records(client: &OnionClient, net: &LocalNet, indices: &[usize]) -> Vec<NodeRecord> {
    let pool = client.pool_snapshot();
    indices
        .iter()
        .map(|&i| {
            let key = net.nodes[i].identity.ed25519_public();
            pool.nodes
                .iter()
                .find(|n| n.ed25519 == key)
                .unwrap()
                .to_record()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_paths_store_retrieve_redirect_and_dead_guards() {
    let mut net = start(231, vec![3, 3, 3]).await;
    let client = OnionClient::bootstrap(config(&net), NetworkClock::default())
        .await
        .unwrap();
    assert_eq!(client.pool_len(), 9);

    // Paths: 2 disjoint 3-hop paths; every node shares 127.0.231.0/24, so the /24 rule relaxes.
    client.ensure_paths().await.unwrap();
    let paths = client.paths();
    assert_eq!(paths.len(), 2);
    assert!(paths.iter().all(|p| p.nodes().len() == 3));
    assert_ne!(paths[0].guard().ed25519, paths[1].guard().ed25519);
    assert!(client.subnet_rule_relaxed());

    // Refresh by intersecting 3 nodes' lists (through the onion).
    assert_eq!(client.refresh_pool().await.unwrap(), 9);

    // Store and retrieve through onion paths to the account's swarm.
    let alice = user();
    let account: AccountId = alice.session_id().into();
    let (status, stored) = client
        .request_swarm(&account, &store(&account, client.clock().now_ms(), "hello"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(stored["hash"].is_string(), "{stored}");
    let (_, got) = client
        .request_swarm(&account, &retrieve(&alice, client.clock().now_ms()))
        .await
        .unwrap();
    assert!(datas(&got).contains(&b64("hello")), "{got}");

    // A bad signature is the destination's answer, not a path problem.
    let mut bad = json!({"pubkey": account.to_hex(), "pubkey_ed25519": alice.ed25519_public().to_hex(),
        "timestamp": client.clock().now_ms(), "signature": b64([0u8; 64])});
    bad["namespace"] = json!(0);
    let err = client
        .request_swarm(&account, &Request::parse("retrieve", &bad).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected { status: 401 }, "{err}");

    // A wrong cached swarm: the members answer 421, the client follows to the real swarm.
    let wrong = records(&client, &net, &net.not_swarm_of(&account)[..3]);
    client.set_cached_swarm(account, wrong);
    let (_, got) = client
        .request_swarm(&account, &retrieve(&alice, client.clock().now_ms()))
        .await
        .unwrap();
    assert!(datas(&got).contains(&b64("hello")));
    let swarm = client.swarm(&account).await.unwrap();
    let real: Vec<_> = records(&client, &net, &net.swarm_of(&account))
        .into_iter()
        .map(|n| n.ed25519)
        .collect();
    assert!(
        swarm.iter().all(|n| real.contains(&n.ed25519)),
        "cache now holds the real swarm"
    );

    // Kill both guards: the next requests still succeed, on rebuilt paths with new guards. A
    // saved guard that failed keeps its slot for this run while another guard works (it is
    // retried at the next start and replaced after 3 failures in a row:
    // crates/shallot-client/src/paths.rs); each new guard learns our IP.
    let guards: Vec<_> = client.paths().iter().map(|p| p.guard().ed25519).collect();
    for guard in &guards {
        let i = net
            .nodes
            .iter()
            .position(|n| n.identity.ed25519_public() == *guard)
            .unwrap();
        net.kill(i);
    }
    let mut new_guards = std::collections::BTreeSet::new();
    for round in 0..10 {
        let data = format!("after the guards died {round}");
        let to: AccountId = user().session_id().into();
        client
            .request_swarm(&to, &store(&to, client.clock().now_ms(), &data))
            .await
            .unwrap();
        for path in client.paths() {
            assert!(
                !guards.contains(&path.guard().ed25519),
                "a path still goes through a dead guard"
            );
            new_guards.insert(path.guard().ed25519);
        }
    }
    // At most one new guard per slot, however many requests failed: a dead saved guard is
    // benched for the run, not retried as a relay, and not replaced once per failure.
    let entries = client.guard_entries();
    assert!(
        (1..=2).contains(&new_guards.len()),
        "new guards {new_guards:?}, saved {entries:?}"
    );
    assert!(
        new_guards
            .iter()
            .all(|g| entries.iter().any(|e| e.ed25519 == *g)),
        "the new guards are saved: {entries:?}"
    );
}

/// Local time ten minutes ahead of the network.
struct Fast;
impl Clock for Fast {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms() + 600_000
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_clock_is_reported_then_corrected_from_node_times() {
    let net = start(232, vec![3, 3]).await;
    let clock = NetworkClock::new(Arc::new(Fast));
    let client = OnionClient::bootstrap(
        ClientConfig {
            enc_type: shallot_proto::onion::EncType::AesGcm,
            ..config(&net)
        },
        clock.clone(),
    )
    .await
    .unwrap();
    let account: AccountId = user().session_id().into();

    // Built before any reply was seen: the timestamp is 10 minutes in the future → 406.
    let early = store(&account, clock.now_ms(), "too early");
    let err = client.request_swarm(&account, &early).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClockSkew, "{err}");

    // The replies seen since (guard tests, the 406 round trip's paths) taught the offset.
    assert!(
        (clock.offset_ms() - 600_000).abs() < 5_000,
        "{}",
        clock.offset_ms()
    );
    let (status, _) = client
        .request_swarm(&account, &store(&account, clock.now_ms(), "on time"))
        .await
        .unwrap();
    assert_eq!(status, 200);
}
