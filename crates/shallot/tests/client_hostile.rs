//! A hostile network against the client and between nodes, with real node processes on loopback:
//! a seed that lies about the node list, a node that lies about the time, and a peer or seed
//! that presents a certificate for another key than the one listed for it.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use shallot_client::{ClientConfig, Db, ErrorKind, Messenger, NetworkClock, OnionClient, Seed};
use shallot_directory::NodeRecord;
use shallot_proto::message_hash::RequestedHash;
use shallot_proto::rpc::Request;
use shallot_proto::signing::{ExpireMode, SignedRequest};
use shallot_proto::{AccountId, Ed25519Pub, Identity, Namespace};
use support::{b64, now_ms, user, Net};

fn config(seeds: Vec<Seed>, net: &Net) -> ClientConfig {
    ClientConfig {
        seeds,
        min_refresh_agreement: net.nodes.len(),
        ..ClientConfig::default()
    }
}

fn subnet(net: &Net) -> u8 {
    match net.nodes[0].addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets()[2],
        std::net::IpAddr::V6(_) => unreachable!(),
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!(),
    }
}

fn keys(client: &OnionClient) -> HashSet<Ed25519Pub> {
    client
        .pool_snapshot()
        .nodes
        .iter()
        .map(|n| n.ed25519)
        .collect()
}

fn honest_keys(net: &Net, skip: &[usize]) -> HashSet<Ed25519Pub> {
    (0..net.nodes.len())
        .filter(|i| !skip.contains(i))
        .map(|i| net.nodes[i].identity.ed25519_public())
        .collect()
}

/// A node list that leaves out the nodes `omit` and adds `fakes` made-up nodes (fresh keys, on
/// loopback addresses where nothing listens).
fn lie(net: &Net, omit: &[usize], fakes: u8) -> Value {
    let mut list = net.directory_json();
    let states = list["service_node_states"].as_array_mut().unwrap();
    let omitted: HashSet<String> = omit.iter().map(|&i| net.nodes[i].ed25519_hex()).collect();
    states.retain(|s| !omitted.contains(s["pubkey_ed25519"].as_str().unwrap()));
    for f in 0..fakes {
        let fake = Identity::generate(&mut rand::rngs::OsRng);
        states.push(json!({
            "service_node_pubkey": fake.ed25519_public().to_hex(),
            "pubkey_ed25519": fake.ed25519_public().to_hex(),
            "pubkey_x25519": fake.x25519_public().to_hex(),
            "public_ip": Ipv4Addr::new(127, 0, subnet(net), 200 + f).to_string(),
            "storage_port": 9,
            "storage_lmq_port": 0,
            "swarm_id": net.nodes[0].swarm.0,
            "funded": true,
        }));
    }
    list
}

/// A seed that answers every JSON-RPC request with `list` (plain HTTP on a loopback address);
/// returns its URL. It lives as long as the test's runtime.
async fn lying_seed(net: &Net, list: Value) -> String {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::new(127, 0, subnet(net), 250), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = json!({"jsonrpc": "2.0", "id": 1, "result": list});
    let app = axum::Router::new().route(
        "/json_rpc",
        axum::routing::post(move || {
            let reply = reply.clone();
            async move { axum::Json(reply) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/json_rpc")
}

async fn messenger(config: ClientConfig, identity: Identity, dir: &std::path::Path) -> Messenger {
    let client = OnionClient::bootstrap(config, NetworkClock::default())
        .await
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let db = Db::open_in_dir(dir, &identity).unwrap();
    Messenger::new(identity, client, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_seed_is_outvoted_or_refused_and_pinned_seeds_must_prove_their_key() {
    let net = Net::start(&[3, 3]).await;
    let all = honest_keys(&net, &[]);
    let node = |i: usize| Seed::Node(net.nodes[i].addr);

    // The liar leaves out one member of each swarm and adds three nodes of its own.
    let liar = Seed::JsonRpc(lying_seed(&net, lie(&net, &[0, 3], 3)).await);

    // Two honest seeds and the liar: exactly the honest nodes, those it left out included.
    let seeds = vec![node(0), liar.clone(), node(1)];
    let client = OnionClient::bootstrap(config(seeds.clone(), &net), NetworkClock::default())
        .await
        .unwrap();
    assert_eq!(keys(&client), all);

    // …and messages flow between two users bootstrapped that way.
    let dir = tempfile::tempdir().unwrap();
    let (alice_id, bob_id) = (user(), user());
    let bob_sid = bob_id.session_id();
    let alice = messenger(config(seeds.clone(), &net), alice_id, &dir.path().join("a")).await;
    let bob = messenger(config(seeds, &net), bob_id, &dir.path().join("b")).await;
    let sent = alice.send(&bob_sid, "through agreed nodes").await.unwrap();
    // Every member of bob's 3-node swarm signed its result, and every signature checked out.
    assert_eq!(sent.stored_on, 3);
    assert!(sent.synced);
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "through agreed nodes");

    // One honest seed and the liar: only what both list (never a made-up node).
    let client = OnionClient::bootstrap(
        config(vec![node(1), liar.clone()], &net),
        NetworkClock::default(),
    )
    .await
    .unwrap();
    assert_eq!(keys(&client), honest_keys(&net, &[0, 3]));
    // Configured twice, the liar still has one vote.
    let client = OnionClient::bootstrap(
        config(vec![liar.clone(), node(1), liar], &net),
        NetworkClock::default(),
    )
    .await
    .unwrap();
    assert_eq!(keys(&client), honest_keys(&net, &[0, 3]));

    // A liar listing only its own nodes: no agreement, a clear refusal.
    let only_fakes = lie(&net, &[0, 1, 2, 3, 4, 5], 4);
    let liar = Seed::JsonRpc(lying_seed(&net, only_fakes).await);
    let err = OnionClient::bootstrap(config(vec![node(2), liar], &net), NetworkClock::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Bootstrap);
    assert!(err.to_string().contains("do not agree"), "{err}");

    // Pinned seeds: the right keys bootstrap…
    let pinned = |i: usize, key: usize| Seed::PinnedNode {
        addr: v4(net.nodes[i].addr),
        ed25519: net.nodes[key].identity.ed25519_public(),
    };
    let client = OnionClient::bootstrap(
        config(vec![pinned(0, 0), pinned(1, 1)], &net),
        NetworkClock::default(),
    )
    .await
    .unwrap();
    assert_eq!(keys(&client), all);
    // …a seed whose certificate is not for its pinned key is not listened to: one seed left,
    // too few to cross-check.
    let err = OnionClient::bootstrap(
        config(vec![pinned(0, 0), pinned(1, 2)], &net),
        NetworkClock::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Bootstrap);
    assert!(
        err.to_string().contains("only 1 of 2 seeds answered"),
        "{err}"
    );
}

fn store(account: &AccountId, timestamp: u64, data: &str) -> Request {
    Request::parse(
        "store",
        &json!({"pubkey": account.to_hex(), "timestamp": timestamp, "ttl": 60_000, "data": b64(data)}),
    )
    .unwrap()
}

fn retrieve_params(identity: &Identity, timestamp: u64) -> Value {
    let account: AccountId = identity.session_id().into();
    let signature = identity.sign(
        &SignedRequest::Retrieve {
            namespace: Namespace(0),
            timestamp,
        }
        .message(),
    );
    json!({"pubkey": account.to_hex(), "pubkey_ed25519": identity.ed25519_public().to_hex(),
           "timestamp": timestamp, "signature": b64(signature.to_bytes())})
}

/// The pool's record of node `i`.
fn record(client: &OnionClient, net: &Net, i: usize) -> NodeRecord {
    let key = net.nodes[i].identity.ed25519_public();
    client
        .pool_snapshot()
        .nodes
        .iter()
        .find(|n| n.ed25519 == key)
        .unwrap()
        .to_record()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_an_hour_ahead_does_not_push_requests_into_406() {
    let mut net = Net::start(&[3, 3]).await;
    net.restart_with_args(0, vec!["--test-clock-offset-ms".into(), "3600000".into()])
        .await
        .unwrap();
    let liar_swarm = net.nodes[0].swarm;

    // The flag works: the skewed node refuses a correctly timed signed request as skewed.
    let probe = loop {
        let identity = user();
        let account: AccountId = identity.session_id().into();
        if net.swarm_of(&account).contains(&0) {
            break identity;
        }
    };
    let (status, body) = net
        .rpc(0, "retrieve", retrieve_params(&probe, now_ms()))
        .await;
    assert_eq!(status, 406, "{body}");

    let clock = NetworkClock::default();
    let seeds = vec![Seed::Node(net.nodes[1].addr), Seed::Node(net.nodes[4].addr)];
    let client = OnionClient::bootstrap(config(seeds, &net), clock.clone())
        .await
        .unwrap();

    // The client hears the skewed node first and often (as it would testing it as a guard).
    let liar = record(&client, &net, 0);
    for _ in 0..5 {
        let (status, _) = client
            .direct_request(&liar, &Request::Info, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    assert!(clock.offset_ms().abs() <= 10_000, "{}", clock.offset_ms());

    // Stores and retrieves at honest nodes keep working, through paths whose guard tests
    // brought in the honest nodes' times.
    let (alice, account) = loop {
        let identity = user();
        let account: AccountId = identity.session_id().into();
        if !net.swarm_of(&account).contains(&0) {
            break (identity, account);
        }
    };
    assert_ne!(net.nodes[net.swarm_of(&account)[0]].swarm, liar_swarm);
    for round in 0..3 {
        let text = format!("on time {round}");
        let (status, _) = client
            .request_swarm(&account, &store(&account, clock.now_ms(), &text))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e} (offset {})", clock.offset_ms()));
        assert_eq!(status, 200);
        // The skewed node keeps answering the client in between.
        client
            .direct_request(&liar, &Request::Info, Duration::from_secs(5))
            .await
            .unwrap();
    }
    let retrieve = Request::parse("retrieve", &retrieve_params(&alice, clock.now_ms())).unwrap();
    let (_, got) = client.request_swarm(&account, &retrieve).await.unwrap();
    assert_eq!(got["messages"].as_array().unwrap().len(), 3, "{got}");
    assert!(clock.offset_ms().abs() < 5_000, "{}", clock.offset_ms());

    // Shortening and deleting them: every member's signed result checks out at the client.
    let hashes: Vec<RequestedHash> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hash"].as_str().unwrap().parse().unwrap())
        .collect();
    let texts: Vec<String> = hashes.iter().map(ToString::to_string).collect();
    let expiry = clock.now_ms() + 30_000;
    let signature = alice.sign(
        &SignedRequest::Expire {
            mode: ExpireMode::Shorten,
            expiries: &[expiry],
            messages: &hashes,
        }
        .message(),
    );
    let expire = Request::parse(
        "expire",
        &json!({"pubkey": account.to_hex(), "pubkey_ed25519": alice.ed25519_public().to_hex(),
                "messages": texts, "expiry": expiry, "shorten": true,
                "signature": b64(signature.to_bytes())}),
    )
    .unwrap();
    let signature = alice.sign(
        &SignedRequest::Delete {
            messages: &hashes[..1],
        }
        .message(),
    );
    let delete = Request::parse(
        "delete",
        &json!({"pubkey": account.to_hex(), "pubkey_ed25519": alice.ed25519_public().to_hex(),
                "messages": [texts[0]], "signature": b64(signature.to_bytes())}),
    )
    .unwrap();
    for request in [expire, delete] {
        let (_, body) = client.request_swarm(&account, &request).await.unwrap();
        let swarm = body["swarm"].as_object().unwrap();
        assert_eq!(swarm.len(), 3, "{body}");
        assert!(swarm.values().all(|e| e.get("failed").is_none()), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_a_peer_whose_certificate_is_for_another_key() {
    let net = Net::start(&[2]).await;
    let me = &net.nodes[0].identity;
    let peers = shallot_node::peers::PeerClient::new(
        me,
        shallot_node::onion_limits::OnionLimits::default(),
        None,
    )
    .unwrap();
    let listed = |i: usize, key: &Identity| NodeRecord {
        pubkey_legacy: *key.ed25519_public().as_bytes(),
        ed25519: key.ed25519_public(),
        x25519: key.x25519_public(),
        ip: *v4(net.nodes[i].addr).ip(),
        https_port: net.nodes[i].addr.port(),
        omq_port: 0,
        swarm_id: net.nodes[i].swarm,
    };
    let envelope = bytes::Bytes::from(json!({"method": "info", "params": {}}).to_string());

    // Node 1 at its listed key: the connection is made (the forward route answers, here
    // refusing a non-recursive method).
    let reply = peers
        .forward(&listed(1, &net.nodes[1].identity), envelope.clone())
        .await
        .unwrap();
    assert_eq!(reply.status, 400, "{:?}", reply.body);

    // The directory lists another key at node 1's address (an impostor there, as seen from
    // the peer): the handshake is refused before anything is sent.
    let stranger = user();
    let err = peers
        .forward(&listed(1, &stranger), envelope)
        .await
        .unwrap_err();
    assert!(
        matches!(err, shallot_node::peers::PeerError::Unreachable(_)),
        "{err}"
    );
}

/// A guard that passes the guard test (any `/storage_rpc/v1` request: `200 {}`) but answers
/// every onion request with an endless body: HTTPS with `identity`'s node certificate at
/// `addr`. Returns how many onion requests it answered.
async fn endless_guard(identity: &Identity, addr: SocketAddr) -> std::sync::Arc<AtomicUsize> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (cert, key) = shallot_node::peer_tls::node_certificate(identity).unwrap();
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key.into())
        .unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let onions = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = onions.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                // The request head, then as much of the body as it announces.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while request.len() < head_end + length {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                if head.starts_with("post /onion_req/v2") {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let ok = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                    if stream.write_all(ok).await.is_err() {
                        return;
                    }
                    let chunk = vec![0u8; 64 * 1024];
                    while stream.write_all(&chunk).await.is_ok() {}
                } else {
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
                    let _ = stream.write_all(ok).await;
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    onions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_sending_an_endless_reply_is_cut_off_and_replaced() {
    let net = Net::start(&[2, 3]).await;
    let listed = |i: usize| NodeRecord {
        pubkey_legacy: *net.nodes[i].identity.ed25519_public().as_bytes(),
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
        ip: *v4(net.nodes[i].addr).ip(),
        https_port: net.nodes[i].addr.port(),
        omq_port: 0,
        swarm_id: net.nodes[i].swarm,
    };
    let hostile = user();
    let hostile_addr = SocketAddrV4::new(Ipv4Addr::new(127, 0, subnet(&net), 251), 4433);
    let onions = endless_guard(&hostile, hostile_addr.into()).await;
    // The destination (node 0) is left out of the client's pool, so the honest guard that
    // replaces the hostile one is never the destination itself (with a single path, that
    // would leave no path avoiding it, by design).
    let mut nodes: Vec<NodeRecord> = (1..net.nodes.len()).map(listed).collect();
    nodes.push(NodeRecord {
        pubkey_legacy: *hostile.ed25519_public().as_bytes(),
        ed25519: hostile.ed25519_public(),
        x25519: hostile.x25519_public(),
        ip: *hostile_addr.ip(),
        https_port: hostile_addr.port(),
        omq_port: 0,
        swarm_id: net.nodes[2].swarm,
    });
    let config = ClientConfig {
        paths: shallot_client::PathConfig {
            paths: 1,
            ..shallot_client::PathConfig::default()
        },
        max_attempts: 1,
        ..config(Vec::new(), &net)
    };
    let client = OnionClient::new(
        config,
        shallot_client::Pool::new(nodes),
        NetworkClock::default(),
    )
    .unwrap();
    let now = now_ms() / 1000;
    client.restore_guards(vec![shallot_client::GuardEntry {
        ed25519: hostile.ed25519_public(),
        added: now,
        expires: now + 30 * 24 * 3600,
        failures: 0,
    }]);

    // The one path starts at the hostile guard: its endless reply is cut off at the cap (the
    // client does not run out of memory), the guard is dropped like an unreachable one, and
    // the request goes through a new path with an honest guard. A dropped guard's try does not
    // use up `max_attempts` (1 here), so the user's request still succeeds.
    let destination = listed(0);
    let (status, _) = client
        .request_node(&destination, &Request::Info)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        onions.load(Ordering::SeqCst),
        1,
        "the hostile guard got one try"
    );
    assert!(!client.guards().contains(&hostile.ed25519_public()));
    let (status, _) = client
        .request_node(&destination, &Request::Info)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(onions.load(Ordering::SeqCst), 1);
}
