//! What an operator reads on the admin listener (README "Metrics at …", docs/security.md), on
//! two real nodes started from their own `node.toml` (no devnet flags, so loopback clients are
//! rate-limited as anyone else):
//!
//! - every metric the README lists (read from the README itself) is served on `admin_bind`;
//! - each moves by exactly what the matching traffic should make it move: stores, retrieves,
//!   onion relays, finals and proxies, a proxy over its cap (503), a push subscription, a forged
//!   handoff item, connections over the per-address and total caps, a dead swarm peer, and the
//!   rate limit's 429s (`shallot_rate_limited_total` equals the 429s the client saw).
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{json, Value};
use shallot_node::node_api::{HandoffBatch, HandoffMessage, HANDOFF_PATH};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::onion::{
    build_to_node, build_to_server, decode_snode_response, EncType, HttpMethod, NodeKeys,
    ProxyProtocol, ServerDestination, V4Request, X25519Keypair,
};
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Namespace};
use support::clients::{monitor_ws, next_json, peer_client};
use support::config_net::{client_from, ConfigNet};
use support::{b64, now_ms, user};
use tokio_tungstenite::tungstenite::Message;

const SUBNET: u8 = 211;
const RATE_CAPACITY: usize = 60;
const MAX_DB_BYTES: u64 = 1 << 30;
const MAX_CONNECTIONS: usize = 40;
const MAX_PER_IP: usize = 8;

fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap()
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, SUBNET, last)
}

/// The metric names of the README's "Metrics at" paragraph.
fn readme_metrics() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("Metrics at ")
        .expect("the README lists metrics");
    let paragraph = &readme[start..];
    let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
    let mut names = BTreeSet::new();
    let mut rest = paragraph;
    while let Some(at) = rest.find("shallot_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    assert!(names.len() >= 20, "{names:?}");
    names
}

/// One scrape of `/metrics`: sample values (as written) by their exact series text, and the
/// declared families.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<String, String>,
    families: BTreeSet<String>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        let mut families = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                families.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (series, value) = line.rsplit_once(' ').unwrap();
                samples.insert(series.to_owned(), value.to_owned());
            }
        }
        Self { samples, families }
    }

    /// An integer series' value (absent: 0, as Prometheus reads a counter not yet
    /// incremented).
    fn get(&self, series: &str) -> i64 {
        self.samples.get(series).map_or(0, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{series} = {v} is not an integer"))
        })
    }
}

async fn scrape(net: &ConfigNet, i: usize) -> Scrape {
    Scrape::parse(&net.metrics_text(i).await)
}

/// How much each listed series moved from `before` to `after`.
fn moved(before: &Scrape, after: &Scrape, series: &str) -> i64 {
    after.get(series) - before.get(series)
}

fn keys(net: &ConfigNet, i: usize) -> NodeKeys {
    NodeKeys {
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
    }
}

/// An HTTP server on 127.0.0.1 that holds every request until released, and says when one has
/// arrived.
async fn held_server() -> (u16, Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) {
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (signal, wait) = (arrived.clone(), release.clone());
    let app = axum::Router::new().fallback(move || {
        let (signal, wait) = (signal.clone(), wait.clone());
        async move {
            signal.notify_one();
            wait.notified().await;
            "held"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, arrived, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One network, one pass over every metric.
async fn every_readme_metric_is_served_and_counts() {
    let started = Instant::now();
    let extra = format!(
        "max_db_bytes = {MAX_DB_BYTES}\n\
         [rate_limit]\ncapacity = {RATE_CAPACITY}\nrefill_per_sec = 1\nexempt_loopback = false\n\
         [connections]\nmax_connections = {MAX_CONNECTIONS}\nmax_connections_per_ip = {MAX_PER_IP}\n\
         [onion]\nallow_private_targets = true\nmax_concurrent_proxies = 1\n"
    );
    let mut net = ConfigNet::start(SUBNET, 2, "warn", &extra).await;
    let client = client_from(Some(ip(50)));

    // Every README metric is declared on both admin listeners from the start.
    let names = readme_metrics();
    let (before0, before1) = (scrape(&net, 0).await, scrape(&net, 1).await);
    for (i, scrape) in [&before0, &before1].into_iter().enumerate() {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !scrape.families.contains(*n))
            .collect();
        assert!(missing.is_empty(), "node {i} does not serve {missing:?}");
    }

    // Three stores and a retrieve at node 0 (replicated to node 1).
    let alice = user();
    let account: AccountId = alice.session_id().into();
    let sizes = [10usize, 200, 3000];
    for (k, size) in sizes.iter().enumerate() {
        let data = vec![b'a' + u8::try_from(k).unwrap(); *size];
        let (status, body) = net
            .rpc_with(
                &client,
                0,
                "store",
                json!({"pubkey": account.to_hex(),
                "timestamp": now_ms(), "ttl": 600_000, "data": b64(&data)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["swarm"]
            .as_object()
            .unwrap()
            .values()
            .all(|e| e.get("failed").is_none()));
    }
    let t = now_ms();
    let sig = alice.sign(
        &SignedRequest::Retrieve {
            namespace: Namespace(0),
            timestamp: t,
        }
        .message(),
    );
    let (status, body) = net
        .rpc_with(
            &client,
            0,
            "retrieve",
            json!({"pubkey": account.to_hex(),
            "pubkey_ed25519": alice.ed25519_public().to_hex(), "timestamp": t,
            "signature": b64(sig.to_bytes())}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), 3);

    // An onion through node 1 (relay) to node 0 (final).
    let onion = build_to_node(
        &[keys(&net, 1)],
        &keys(&net, 0),
        br#"{"method":"info","params":{}}"#,
        EncType::AesGcm,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let (status, body) = net
        .post_bytes_with(&client, 1, "/onion_req/v2", onion.body)
        .await;
    assert_eq!(status, 200);
    let reply = decode_snode_response(&onion.response_key, &body).unwrap();
    assert_eq!(reply.status, 200);

    // Two proxy layers at node 1, whose one proxy slot the first holds: the second gets 503.
    let (port, arrived, release) = held_server().await;
    let proxy_onion = || {
        let destination = ServerDestination {
            host: "127.0.0.1".into(),
            protocol: ProxyProtocol::Http,
            port: Some(port),
            x25519: *X25519Keypair::generate(&mut rand::rngs::OsRng).public(),
        };
        let request = V4Request::new(
            HttpMethod::Post,
            "/room",
            BTreeMap::new(),
            Some(b"x".to_vec()),
        )
        .unwrap();
        build_to_server(
            &[keys(&net, 1)],
            &destination,
            &request,
            EncType::AesGcm,
            &mut rand::rngs::OsRng,
        )
        .unwrap()
        .body
    };
    let (first, busy) = (proxy_onion(), proxy_onion());
    let first = async { net.post_with(&client, 1, "/onion_req/v2", first).await };
    let second = async {
        tokio::time::timeout(Duration::from_secs(10), arrived.notified())
            .await
            .expect("the first proxied request reaches the server");
        let answer = net.post_with(&client, 1, "/onion_req/v2", busy).await;
        release.notify_one();
        answer
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(
        second,
        (503, json!("Server busy, try again later")),
        "a second proxy while the only slot is held"
    );
    assert_eq!(first, (200, json!("held")));

    // A push subscription at node 0, kept open until the scrape.
    let mut ws = monitor_ws(net.nodes[0].addr, None).await;
    let t_s = now_ms() / 1000;
    let text = format!("MONITOR{}{t_s}00", account.to_hex());
    let subscription = json!({"P": alice.ed25519_public().to_hex(), "n": [0], "d": 0, "t": t_s,
        "s": b64(alice.sign(text.as_bytes()).to_bytes())});
    ws.send(Message::text(subscription.to_string()))
        .await
        .unwrap();
    let answer = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(answer, Some(json!({"success": 1})));

    // A forged handoff item (its hash is not its content's) from the swarm peer.
    let now = now_ms();
    let batch = HandoffBatch {
        version: 1,
        messages: vec![HandoffMessage {
            pubkey: account,
            namespace: Namespace(0),
            hash: MessageHash::compute(&account, Namespace(0), b"what was hashed"),
            timestamp: now,
            expiry: now + 600_000,
            data: b"what is sent".to_vec().into(),
        }],
        revocations: Vec::new(),
    };
    let peer = peer_client(&net.nodes[1].identity, None);
    let response = peer
        .post(net.nodes[0].url(HANDOFF_PATH))
        .body(serde_json::to_string(&batch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let done: Value = response.json().await.unwrap();
    assert_eq!(
        (done["refused"].as_u64(), done["inserted"].as_u64()),
        (Some(1), Some(0))
    );

    // One address over the rate limit at node 1: count what it saw.
    let flooder = client_from(Some(ip(51)));
    let (mut served, mut limited) = (0, 0);
    for _ in 0..RATE_CAPACITY + 10 {
        let (status, body) = net.rpc_with(&flooder, 1, "info", json!({})).await;
        match status {
            200 => served += 1,
            429 => {
                assert_eq!(body, json!("Too Many Requests\n"));
                limited += 1;
            }
            other => panic!("{other} {body}"),
        }
    }
    assert!(limited >= 1, "{served} served, none limited");

    // Connections: one address over its cap, then many addresses over the total cap (at node 0).
    let target = net.nodes[0].addr;
    let over_ip = tokio::spawn(support::attack::idle_flood(
        ip(60),
        target,
        MAX_PER_IP + 4,
        Duration::from_secs(2),
    ));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let open = scrape(&net, 0).await.get("shallot_connections_open");
        if open >= int(MAX_PER_IP) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections_open stayed at {open}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let per_ip = over_ip.await.unwrap();
    assert_eq!(per_ip.connected, MAX_PER_IP + 4, "{per_ip:?}");
    assert_eq!(per_ip.closed_at_once, 4, "{per_ip:?}");
    let drained = |limit: i64| {
        let net = &net;
        async move {
            support::until(Duration::from_secs(10), "connections to close", || async {
                match scrape(net, 0).await.get("shallot_connections_open") {
                    open if open < limit => Ok(()),
                    open => Err(format!("{open} open")),
                }
            })
            .await;
        }
    };
    drained(int(MAX_PER_IP)).await;
    let floods = (61..67).map(|last| {
        support::attack::idle_flood(ip(last), target, MAX_PER_IP, Duration::from_secs(2))
    });
    let reports = futures_util::future::join_all(floods).await;
    let refused_full: usize = reports.iter().map(|r| r.closed_at_once).sum();
    let connected: usize = reports.iter().map(|r| r.connected).sum();
    assert_eq!(connected, 6 * MAX_PER_IP, "{reports:?}");
    assert!(
        refused_full >= 6 * MAX_PER_IP - MAX_CONNECTIONS,
        "{reports:?}"
    );
    drained(int(MAX_PER_IP)).await;

    let (after0, after1) = (scrape(&net, 0).await, scrape(&net, 1).await);
    let checks: Vec<(usize, &str, i64)> = vec![
        (0, "shallot_rpc_method_total{method=\"store\"}", 3),
        (0, "shallot_rpc_method_total{method=\"retrieve\"}", 1),
        (0, "shallot_rpc_method_total{method=\"info\"}", 1),
        (1, "shallot_rpc_method_total{method=\"info\"}", served),
        (0, "shallot_stores_total", 3),
        (1, "shallot_stores_total", 3),
        (0, "shallot_stored_bytes_total", 3210),
        (1, "shallot_stored_bytes_total", 3210),
        (0, "shallot_retrieves_total", 1),
        (0, "shallot_retrieved_messages_total", 3),
        (1, "shallot_onion_hops_total{role=\"relay\"}", 1),
        (0, "shallot_onion_hops_total{role=\"final\"}", 1),
        (1, "shallot_onion_busy_total{role=\"proxy\"}", 1),
        (1, "shallot_onion_busy_total{role=\"relay\"}", 0),
        (
            0,
            "shallot_http_requests_total{route=\"storage_rpc\",status=\"200\"}",
            4,
        ),
        (
            1,
            "shallot_http_requests_total{route=\"storage_rpc\",status=\"429\"}",
            limited,
        ),
        (
            1,
            "shallot_http_requests_total{route=\"onion\",status=\"503\"}",
            1,
        ),
        (1, "shallot_rate_limited_total", limited),
        (0, "shallot_rate_limited_total", 0),
        (0, "shallot_request_seconds_count", 4),
        (0, "shallot_onion_seconds_count", 1),
        (1, "shallot_onion_seconds_count", 3),
        (0, "shallot_peer_items_refused", 1),
        (0, "shallot_connections_refused_per_ip", 4),
        (0, "shallot_connections_refused_full", int(refused_full)),
        (0, "shallot_messages", 3),
        (1, "shallot_messages", 3),
        (0, "shallot_accounts", 1),
        (0, "shallot_push_subscriptions", 1),
        (0, "shallot_peer_failures_total", 0),
    ];
    let mut wrong = Vec::new();
    for (i, series, expected) in &checks {
        let (before, after) = if *i == 0 {
            (&before0, &after0)
        } else {
            (&before1, &after1)
        };
        let delta = moved(before, after, series);
        if delta != *expected {
            wrong.push(format!(
                "node {i} {series}: moved {delta}, expected {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for (i, after) in [&after0, &after1].into_iter().enumerate() {
        let proxy = moved(
            if i == 0 { &before0 } else { &before1 },
            after,
            "shallot_onion_hops_total{role=\"proxy\"}",
        );
        assert!(i == 0 || proxy >= 1, "node {i} counted {proxy} proxies");
        assert_eq!(after.get("shallot_ready"), 1, "node {i}");
        assert_eq!(after.get("shallot_known_nodes"), 2, "node {i}");
        assert!(after.get("shallot_db_bytes") > 0, "node {i}");
        assert_eq!(
            after.get("shallot_db_max_bytes"),
            i64::try_from(MAX_DB_BYTES).unwrap(),
            "node {i}"
        );
    }
    assert!(after1.get("shallot_rate_limited_clients") >= 1);
    assert!(
        moved(
            &before1,
            &after1,
            "shallot_http_requests_total{route=\"onion\",status=\"200\"}"
        ) >= 2
    );
    drop(ws);

    // A swarm peer that is gone: the next store at node 0 counts a peer failure.
    net.kill(1);
    let (status, body) = net
        .rpc_with(
            &client,
            0,
            "store",
            json!({"pubkey": account.to_hex(),
            "timestamp": now_ms(), "ttl": 600_000, "data": b64("after the peer died")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let last = scrape(&net, 0).await;
    assert_eq!(moved(&after0, &last, "shallot_peer_failures_total"), 1);
    assert_eq!(moved(&after0, &last, "shallot_stores_total"), 1);
    eprintln!("metrics scenario: {:?}", started.elapsed());
}
