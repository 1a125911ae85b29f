//! README: "Logs never contain message data, keys, or a client address together with an account
//! or a destination." Two real nodes run at `--log debug` (every crate's debug output), a client
//! on its own address drives them through every route — storage RPC methods of each kind (good
//! and refused), a waiting retrieve, a push subscription with data, an onion relayed to a final
//! hop, an onion proxied to an HTTP server, a handoff, the reachability ping — and then both
//! logs are searched for the message data, every private key, and any line that names the
//! client's address together with the account or the onion's destination.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use shallot_node::node_api::{HandoffBatch, HandoffMessage, HANDOFF_PATH};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::onion::{
    build_to_node, build_to_server, decode_snode_response, EncType, HttpMethod, NodeKeys,
    ProxyProtocol, ServerDestination, V4Request, X25519Keypair,
};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, Identity, Namespace};
use support::clients::{monitor_ws, next_json, peer_client};
use support::config_net::ConfigNet;
use support::{b64, now_ms, user};
use tokio_tungstenite::tungstenite::Message;

const SUBNET: u8 = 212;
/// The client's own address, so its appearances in a log are unambiguous.
const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, SUBNET, 77);

fn keys(net: &ConfigNet, i: usize) -> NodeKeys {
    NodeKeys {
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
    }
}

/// How `{:?}` shows the first 12 bytes of `bytes` (as in a `Vec<u8>` or `[u8; N]` field), open
/// at the end so it matches any longer run.
fn bytes_debug(bytes: &[u8]) -> String {
    let shown = format!("{:?}", &bytes[..12]);
    shown.trim_end_matches(']').to_owned()
}

/// Message data that can be recognised wherever it turns up: a marker and 16 random bytes.
fn secret(label: &str) -> String {
    format!(
        "private-{label}-{}",
        hex::encode(rand::random::<[u8; 16]>())
    )
}

struct Client {
    http: reqwest::Client,
    net: ConfigNet,
    alice: Identity,
    account: AccountId,
}

impl Client {
    async fn rpc(&self, i: usize, method: &str, params: Value) -> (u16, Value) {
        self.net.rpc_with(&self.http, i, method, params).await
    }

    async fn post(&self, i: usize, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.net.post_with(&self.http, i, path, body).await
    }

    /// `params` with the account, `pubkey_ed25519` and Alice's signature over `text`.
    fn signed(&self, text: &str, params: Value) -> Value {
        let mut params = params;
        params["pubkey"] = self.account.to_hex().into();
        params["pubkey_ed25519"] = self.alice.ed25519_public().to_hex().into();
        params["signature"] = b64(self.alice.sign(text.as_bytes()).to_bytes()).into();
        params
    }

    async fn store(&self, i: usize, data: &str) -> String {
        let (status, body) = self
            .rpc(
                i,
                "store",
                json!({"pubkey": self.account.to_hex(), "timestamp": now_ms(),
                "ttl": 600_000, "data": b64(data)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["hash"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One walk through every route, then one search of the logs.
async fn a_debug_log_holds_no_message_data_keys_or_client_next_to_account() {
    let started = std::time::Instant::now();
    let net = ConfigNet::start(
        SUBNET,
        2,
        "debug",
        "[onion]\nallow_private_targets = true\n",
    )
    .await;
    let http = support::config_net::client_from(Some(CLIENT));
    let alice = user();
    let account: AccountId = alice.session_id().into();
    let c = Client {
        http,
        net,
        alice,
        account,
    };
    let mut secrets = Vec::new();
    let mut data = |label: &str| {
        let s = secret(label);
        secrets.push(s.clone());
        s
    };

    // Storage RPC: store, retrieve, get_expiries, expire, batch, sequence, get_swarm, info.
    let first = data("store");
    let h1 = c.store(0, &first).await;
    let t = now_ms();
    let (status, body) = c
        .rpc(
            1,
            "retrieve",
            c.signed(&format!("retrieve{t}"), json!({"timestamp": t})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["data"], b64(&first));
    let t = now_ms();
    let (status, body) = c
        .rpc(
            0,
            "get_expiries",
            c.signed(
                &format!("get_expiries{t}{h1}"),
                json!({"timestamp": t, "messages": [h1]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let e = now_ms() + 3_600_000;
    let (status, body) = c
        .rpc(
            0,
            "expire",
            c.signed(
                &format!("expire{e}{h1}"),
                json!({"expiry": e, "messages": [h1]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let t = now_ms();
    let retrieve = c.signed(&format!("retrieve{t}"), json!({"timestamp": t}));
    let (status, body) = c
        .rpc(
            1,
            "batch",
            json!({"requests": [{"method": "retrieve", "params": retrieve},
            {"method": "get_swarm", "params": {"pubkey": c.account.to_hex()}}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c
        .rpc(
            0,
            "sequence",
            json!({"requests": [{"method": "store", "params": {"pubkey": c.account.to_hex(),
            "timestamp": now_ms(), "ttl": 600_000, "data": b64(data("sequence"))}},
            {"method": "info", "params": {}}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Refusals: a bad signature, broken JSON, an unknown method, an unknown path.
    let t = now_ms();
    let mut forged = c.signed(&format!("retrieve{t}"), json!({"timestamp": t}));
    forged["signature"] = b64([7u8; 64]).into();
    assert_eq!(c.rpc(0, "retrieve", forged).await.0, 401);
    assert_eq!(
        c.post(0, "/storage_rpc/v1", b"{not json".to_vec()).await.0,
        400
    );
    assert_eq!(
        c.rpc(0, "no_such_method", json!({"pubkey": c.account.to_hex()}))
            .await
            .0,
        400
    );
    assert_eq!(c.post(0, "/no/such/path", Vec::new()).await.0, 404);
    assert_eq!(c.post(1, "/ping_test/v1", Vec::new()).await.0, 200);

    // A waiting retrieve at node 1, woken by a store at node 0.
    let t = now_ms();
    let waiting = c.signed(
        &format!("retrieve{t}"),
        json!({"timestamp": t, "wait_ms": 10_000}),
    );
    let mut waiting = waiting;
    let (status, body) = c
        .rpc(1, "retrieve", json!({"pubkey": c.account.to_hex()}))
        .await;
    assert_eq!(status, 401, "{body}");
    let last = {
        let t = now_ms();
        let (_, body) = c
            .rpc(
                1,
                "retrieve",
                c.signed(&format!("retrieve{t}"), json!({"timestamp": t})),
            )
            .await;
        body["messages"].as_array().unwrap().last().unwrap()["hash"].clone()
    };
    waiting["last_hash"] = last;
    let woken = data("woken");
    let (held, _) = tokio::join!(c.rpc(1, "retrieve", waiting), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.store(0, &woken).await
    });
    assert_eq!(held.0, 200, "{}", held.1);

    // A push subscription with data at node 0, from the client's address; a store at node 1.
    let mut ws = monitor_ws(c.net.nodes[0].addr, Some(CLIENT)).await;
    let t_s = now_ms() / 1000;
    let text = format!("MONITOR{}{t_s}10", c.account.to_hex());
    let request = json!({"P": c.alice.ed25519_public().to_hex(), "n": [0], "d": 1, "t": t_s,
        "s": b64(c.alice.sign(text.as_bytes()).to_bytes())});
    ws.send(Message::text(request.to_string())).await.unwrap();
    let answer = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(answer, Some(json!({"success": 1})));
    let pushed = data("pushed");
    c.store(1, &pushed).await;
    let note = next_json(&mut ws, Duration::from_secs(10))
        .await
        .expect("a push");
    assert_eq!(note["~"], b64(&pushed));
    drop(ws);

    // An onion: node 1 relays a store to node 0.
    let through = data("onion");
    let request = json!({"method": "store", "params": {"pubkey": c.account.to_hex(),
        "timestamp": now_ms(), "ttl": 600_000, "data": b64(&through)}});
    let onion = build_to_node(
        &[keys(&c.net, 1)],
        &keys(&c.net, 0),
        request.to_string().as_bytes(),
        EncType::XChaCha20,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let (status, body) = c
        .net
        .post_bytes_with(&c.http, 1, "/onion_req/v2", onion.body)
        .await;
    assert_eq!(status, 200);
    let reply = decode_snode_response(&onion.response_key, &body).unwrap();
    assert_eq!(reply.status, 200);

    // An onion proxied by node 0 to an HTTP server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "proxied" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let proxied = data("proxied");
    let onion = build_to_server(
        &[keys(&c.net, 0)],
        &ServerDestination {
            host: server.ip().to_string(),
            protocol: ProxyProtocol::Http,
            port: Some(server.port()),
            x25519: *X25519Keypair::generate(&mut rand::rngs::OsRng).public(),
        },
        &V4Request::new(
            HttpMethod::Post,
            "/room",
            BTreeMap::new(),
            Some(proxied.into_bytes()),
        )
        .unwrap(),
        EncType::AesGcm,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    assert_eq!(
        c.post(0, "/onion_req/v2", onion.body).await,
        (200, json!("proxied"))
    );

    // A handoff from node 1 to node 0 (node-to-node TLS).
    let handed = data("handoff");
    let now = now_ms();
    let batch = HandoffBatch {
        version: 1,
        messages: vec![HandoffMessage {
            pubkey: c.account,
            namespace: Namespace(0),
            hash: MessageHash::compute(&c.account, Namespace(0), handed.as_bytes()),
            timestamp: now,
            expiry: now + 600_000,
            data: handed.clone().into_bytes().into(),
        }],
        revocations: Vec::new(),
    };
    let peer = peer_client(&c.net.nodes[1].identity, Some(CLIENT));
    let response = peer
        .post(c.net.nodes[0].url(HANDOFF_PATH))
        .body(serde_json::to_string(&batch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Subaccount revocations and the deletions, last.
    let sub = user();
    let token = SubaccountToken::new(0x05, SubaccountFlags(0x03), &sub.ed25519_public());
    for (method, key) in [
        ("revoke_subaccount", "revoke"),
        ("unrevoke_subaccount", "unrevoke"),
    ] {
        let t = now_ms();
        let mut text = format!("{method}{t}").into_bytes();
        text.extend_from_slice(token.as_bytes());
        let params = json!({"pubkey": c.account.to_hex(), "pubkey_ed25519": c.alice.ed25519_public().to_hex(),
            "timestamp": t, key: b64(token.as_bytes()), "signature": b64(c.alice.sign(&text).to_bytes())});
        let (status, body) = c.rpc(0, method, params).await;
        assert_eq!(status, 200, "{method}: {body}");
    }
    let (status, body) = c
        .rpc(
            0,
            "delete",
            c.signed(&format!("delete{h1}"), json!({"messages": [h1]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let e = now_ms() + 60_000;
    let (status, body) = c
        .rpc(
            1,
            "expire_all",
            c.signed(&format!("expire_all{e}"), json!({"expiry": e})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let b = now_ms() - 3_600_000;
    let (status, body) = c
        .rpc(
            0,
            "delete_before",
            c.signed(&format!("delete_before{b}"), json!({"before": b})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let t = now_ms();
    let (status, body) = c
        .rpc(
            1,
            "delete_all",
            c.signed(&format!("delete_all{t}"), json!({"timestamp": t})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Stop both nodes gracefully, so the shutdown's lines are in the logs too.
    let mut net = c.net;
    for node in &mut net.nodes {
        node.send_sigterm();
        let exit = node.wait_exit(Duration::from_secs(20));
        assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    }

    // What must never be in a log line.
    let mut forbidden: Vec<(String, String)> = Vec::new();
    for s in &secrets {
        forbidden.push((format!("message data {s}"), s.clone()));
        forbidden.push((
            format!("message data {s} in base64"),
            b64(s).trim_end_matches('=').to_owned(),
        ));
        forbidden.push((format!("message data {s} in hex"), hex::encode(s)));
        forbidden.push((
            format!("message data {s} as bytes"),
            bytes_debug(s.as_bytes()),
        ));
    }
    let mut identities: Vec<(String, &Identity)> =
        vec![("alice".into(), &c.alice), ("subaccount".into(), &sub)];
    for (i, node) in net.nodes.iter().enumerate() {
        identities.push((format!("node {i}"), &node.identity));
    }
    for (who, id) in &identities {
        forbidden.push((format!("{who}'s seed in hex"), hex::encode(id.seed())));
        forbidden.push((
            format!("{who}'s seed in base64"),
            b64(id.seed()).trim_end_matches('=').to_owned(),
        ));
        forbidden.push((
            format!("{who}'s X25519 secret"),
            hex::encode(id.x25519_secret().to_bytes()),
        ));
        forbidden.push((format!("{who}'s seed as bytes"), bytes_debug(id.seed())));
    }
    for (i, node) in net.nodes.iter().enumerate() {
        let pem = std::fs::read_to_string(node.data_dir.join("key.pem")).unwrap();
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        {
            forbidden.push((format!("node {i}'s TLS key"), line.to_owned()));
        }
    }
    // Names of the account and of the onion's destinations, never beside the client's address.
    let account_names = [
        c.account.to_hex(),
        c.alice.ed25519_public().to_hex(),
        c.alice.x25519_public().to_hex(),
    ];
    // (A peer is also named by its pinned host, the key's hex in two halves.)
    let destination = net.nodes[0].identity.ed25519_public().to_hex();
    let destinations = [
        destination.clone(),
        destination[..32].to_owned(),
        destination[32..].to_owned(),
        net.nodes[0].identity.x25519_public().to_hex(),
        server.to_string(),
    ];
    let client = CLIENT.to_string();

    let mut problems = Vec::new();
    for i in 0..2 {
        let log = net.nodes[i].log_text();
        assert!(
            log.contains("DEBUG"),
            "node {i} did not log at debug:\n{log}"
        );
        let mut with_client = 0;
        for (n, line) in log.lines().enumerate() {
            for (what, needle) in &forbidden {
                if line.contains(needle.as_str()) {
                    problems.push(format!("node {i} line {n} holds {what}: {line}"));
                }
            }
            if line.contains(&client) {
                with_client += 1;
                for name in account_names.iter().chain(&destinations) {
                    if line.contains(name.as_str()) {
                        problems.push(format!(
                            "node {i} line {n} names the client with {name}: {line}"
                        ));
                    }
                }
            }
        }
        eprintln!(
            "node {i}: {} log lines, {with_client} naming the client's address",
            log.lines().count()
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("log privacy scenario: {:?}", started.elapsed());
}
