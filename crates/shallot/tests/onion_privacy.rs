//! What a guard can read of a client's onion traffic, on real node processes.
//!
//! (a) A later hop that cannot reach its successor answers an error only the client can open:
//!     the bytes the guard relays back (exactly the HTTP reply the client receives from it) name
//!     no node key and no address, yet our client drops exactly the dead node.
//! (b) Padding: a send, an empty poll and a poll bringing messages back are the same size at the
//!     guard, requests and replies alike; the test prints the bytes with and without padding.
#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)] // Test code: a panic is a failed test.

mod support;

use shallot_client::{ClientConfig, Db, Messenger, NetworkClock, OnionClient, PathConfig, Seed};
use shallot_directory::NodeRecord;
use shallot_proto::onion::padding::{MIN_REPLY_CLASS, MIN_REQUEST_CLASS};
use shallot_proto::onion::{build_to_node_padded, open_hop_error, EncType, NodeKeys, SnodeBody};
use shallot_proto::Identity;
use support::{user, Net};

fn keys(net: &Net, i: usize) -> NodeKeys {
    NodeKeys {
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
    }
}

/// Everything by which a body could name node `i`: its keys in hex and its address.
fn names_of(net: &Net, i: usize) -> Vec<String> {
    let node = &net.nodes[i];
    vec![
        node.identity.ed25519_public().to_hex(),
        node.identity.x25519_public().to_hex(),
        node.addr.to_string(),
        node.addr.ip().to_string(),
    ]
}

/// POSTs an onion to the guard: what the guard sends back is exactly what we receive.
async fn post_onion(net: &Net, guard: usize, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = net
        .http
        .post(net.nodes[guard].url("/onion_req/v2"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_hops_error_is_for_the_client_only() {
    let mut net = Net::start(&[3, 3]).await;
    let info = br#"{"method":"info","params":{}}"#;
    let stranger = Identity::generate(&mut rand::rngs::OsRng);
    let stranger_keys = NodeKeys {
        ed25519: stranger.ed25519_public(),
        x25519: stranger.x25519_public(),
    };
    // Node 5 is down but still listed.
    net.kill(5);

    // (hops, destination, which hop fails, whom it names)
    let cases: [(Vec<NodeKeys>, NodeKeys, usize, String); 3] = [
        // The middle hop cannot reach the last hop.
        (
            vec![keys(&net, 0), keys(&net, 1), keys(&net, 5)],
            keys(&net, 2),
            1,
            format!("Next node not reachable: {}", keys(&net, 5).ed25519),
        ),
        // The last hop cannot reach the destination.
        (
            vec![keys(&net, 0), keys(&net, 1), keys(&net, 2)],
            keys(&net, 5),
            2,
            format!("Next node not reachable: {}", keys(&net, 5).ed25519),
        ),
        // The middle hop does not know the last hop at all.
        (
            vec![keys(&net, 0), keys(&net, 1), stranger_keys],
            keys(&net, 2),
            1,
            format!("Next node not found: {}", stranger.ed25519_public()),
        ),
    ];
    for (path, destination, failing, text) in cases {
        let onion = build_to_node_padded(
            &path,
            &destination,
            info,
            EncType::XChaCha20,
            MIN_REQUEST_CLASS,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        let (status, body) = post_onion(&net, 0, onion.body).await;
        assert_eq!(status, 502);
        // What the guard saw: no key, address or error text, only a padded ciphertext.
        let seen = String::from_utf8_lossy(&body);
        let mut forbidden = names_of(&net, 5);
        forbidden.extend(names_of(&net, 2));
        forbidden.push(stranger.ed25519_public().to_hex());
        forbidden.push("Next node".into());
        for name in &forbidden {
            assert!(!seen.contains(name.as_str()), "the guard saw {name}");
        }
        assert_eq!(body.len(), MIN_REPLY_CLASS);
        // The client opens it with the failing hop's key.
        let (hop, reply) = open_hop_error(&onion.hop_keys, &body).unwrap();
        assert_eq!((hop, reply.status), (failing, 502));
        assert_eq!(reply.body, SnodeBody::Text(text));
    }

    // The guard's own error about its next hop stays plain (it names only what the guard
    // knows): Session clients keep dropping exactly that node.
    let onion = build_to_node_padded(
        &[keys(&net, 0), keys(&net, 5), keys(&net, 1)],
        &keys(&net, 2),
        info,
        EncType::XChaCha20,
        MIN_REQUEST_CLASS,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let (status, body) = post_onion(&net, 0, onion.body).await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).into_owned()),
        (
            502,
            format!("Next node not reachable: {}", keys(&net, 5).ed25519)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_drops_exactly_the_dead_later_hop() {
    // Four swarms, so a destination exists whose swarm holds no node of the path: paths avoid
    // the destination's swarm, so the client would otherwise swap out such a hop before sending
    // (the middle hop, or the dead hop without ever noticing it died).
    let mut net = Net::start(&[3, 3, 3, 3]).await;
    // One path, so the request must take it.
    let config = ClientConfig {
        seeds: net.nodes.iter().map(|n| Seed::Node(n.addr)).collect(),
        min_refresh_agreement: net.nodes.len(),
        paths: PathConfig {
            paths: 1,
            ..PathConfig::default()
        },
        ..ClientConfig::default()
    };
    let client = OnionClient::bootstrap(config, NetworkClock::default())
        .await
        .unwrap();
    client.ensure_paths().await.unwrap();
    let before: Vec<NodeRecord> = client.paths()[0].nodes().to_vec();
    let pool_before = client.pool_len();
    let index = |node: &NodeRecord| {
        net.nodes
            .iter()
            .position(|n| n.identity.ed25519_public() == node.ed25519)
            .unwrap()
    };
    // The last hop dies: only the middle hop (encrypted) can say so.
    let dead = before[2].clone();
    let dead_index = index(&dead);
    net.kill(dead_index);
    let destination = client
        .pool_snapshot()
        .nodes
        .iter()
        .map(shallot_client::pool::SnapshotNode::to_record)
        .find(|n| {
            before
                .iter()
                .all(|b| b.swarm_id != n.swarm_id && b.ed25519 != n.ed25519)
                && net
                    .nodes
                    .iter()
                    .any(|p| p.identity.ed25519_public() == n.ed25519 && p.is_running())
        })
        .expect("a live destination outside the swarms of the path's nodes");
    let (status, _) = client
        .request_node(&destination, &shallot_proto::rpc::Request::Info)
        .await
        .expect("answered over the repaired path");
    assert_eq!(status, 200);
    let after: Vec<NodeRecord> = client.paths()[0].nodes().to_vec();
    assert_eq!(after.len(), 3);
    assert_eq!(
        (&after[0], &after[1]),
        (&before[0], &before[1]),
        "the guard and the middle hop are kept"
    );
    assert_ne!(after[2].ed25519, dead.ed25519, "the dead hop was replaced");
    assert_eq!(
        client.pool_len(),
        pool_before - 1,
        "exactly the dead node left the pool"
    );
    assert!(client
        .pool_snapshot()
        .nodes
        .iter()
        .all(|n| n.to_record().ed25519 != dead.ed25519));
}

/// A messenger whose client pads (or not).
async fn messenger(
    net: &Net,
    identity: Identity,
    dir: &std::path::Path,
    padding: bool,
) -> Messenger {
    let config = ClientConfig {
        seeds: net.nodes.iter().map(|n| Seed::Node(n.addr)).collect(),
        min_refresh_agreement: net.nodes.len(),
        padding,
        ..ClientConfig::default()
    };
    let client = OnionClient::bootstrap(config, NetworkClock::default())
        .await
        .unwrap();
    let db = Db::open_in_dir(dir, &identity).unwrap();
    Messenger::new(identity, client, db)
}

/// (request bytes, reply bytes) of every onion request `client` made since route `from`, with
/// the method.
fn exchanges(client: &OnionClient, from: u64) -> Vec<(String, usize, usize)> {
    client
        .recent_routes()
        .into_iter()
        .filter(|r| r.seq >= from)
        .map(|r| (r.method, r.request_bytes, r.reply_bytes))
        .collect()
}

/// Runs a send, an empty poll and a poll of 10 messages; returns the guard's view of each.
async fn workload(net: &Net, padding: bool) -> [Vec<(String, usize, usize)>; 3] {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (alice_id, bob_id) = (user(), user());
    let bob_sid = bob_id.session_id();
    let alice = messenger(net, alice_id, dirs[0].path(), padding).await;
    let bob = messenger(net, bob_id, dirs[1].path(), padding).await;
    // Warm up: swarms known, paths built, config namespaces fetched.
    assert!(bob.receive().await.unwrap().is_empty());
    alice.send(&bob_sid, "warm-up").await.unwrap();
    assert_eq!(bob.receive().await.unwrap().len(), 1);

    let from = bob.client().next_route_seq();
    assert!(bob.receive().await.unwrap().is_empty());
    let empty_poll = exchanges(bob.client(), from);

    let from = alice.client().next_route_seq();
    alice.send(&bob_sid, "hello Bob").await.unwrap();
    let send = exchanges(alice.client(), from);

    for n in 0..9 {
        alice.send(&bob_sid, &format!("message {n}")).await.unwrap();
    }
    let from = bob.client().next_route_seq();
    assert_eq!(bob.receive().await.unwrap().len(), 10);
    let full_poll = exchanges(bob.client(), from);
    [send, empty_poll, full_poll]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_and_polls_look_alike_at_the_guard() {
    let net = Net::start(&[4, 4]).await;
    let plain = workload(&net, false).await;
    let padded = workload(&net, true).await;

    let names = ["send", "poll, no messages", "poll, 10 messages"];
    eprintln!("bytes at the guard (request / reply), unpadded -> padded:");
    for ((name, plain), padded) in names.iter().zip(&plain).zip(&padded) {
        let total = |v: &[(String, usize, usize)]| {
            (
                v.iter().map(|e| e.1).sum::<usize>(),
                v.iter().map(|e| e.2).sum::<usize>(),
            )
        };
        let (pq, pr) = total(plain);
        let (q, r) = total(padded);
        eprintln!(
            "  {name}: {} onion request(s); {pq} / {pr} -> {q} / {r} ({:.1}x)",
            padded.len(),
            (q + r) as f64 / (pq + pr) as f64
        );
        for (method, request, reply) in plain {
            eprintln!("    unpadded {method}: {request} / {reply}");
        }
    }
    // Every request and every reply of all three is exactly the smallest class.
    for (name, exchanges) in names.iter().zip(&padded) {
        assert!(!exchanges.is_empty(), "{name}");
        for (method, request, reply) in exchanges {
            assert_eq!(
                (*request, *reply),
                (MIN_REQUEST_CLASS, MIN_REPLY_CLASS),
                "{name}: {method}"
            );
        }
    }
    // Without padding the guard could tell them apart.
    let largest_reply = |v: &[(String, usize, usize)]| v.iter().map(|e| e.2).max().unwrap();
    assert!(largest_reply(&plain[2]) > 4 * largest_reply(&plain[1]));
}
