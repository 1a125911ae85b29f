//! Onion requests through real node processes: 3 hops to a 4th node's storage RPC, and 3 hops to
//! an HTTP server speaking `/oxen/v4/lsrpc`.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use shallot_proto::onion::{
    build_to_node, build_to_server, decode_snode_response, parse_onion_request, EncType,
    HttpMethod, NodeKeys, ProxyProtocol, ServerDestination, SnodeBody, V4Request, V4Response,
    X25519Keypair,
};
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Identity, Namespace};
use support::{b64, now_ms, user, Net};

fn keys(net: &Net, i: usize) -> NodeKeys {
    NodeKeys {
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
    }
}

async fn post_onion(net: &Net, guard: usize, body: Vec<u8>) -> (u16, bytes::Bytes) {
    let response = net
        .http
        .post(net.nodes[guard].url("/onion_req/v2"))
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hops_to_a_fourth_nodes_rpc() {
    let net = Net::start(&[3, 3]).await;
    let alice = user();
    let account: AccountId = alice.session_id().into();
    let swarm = net.swarm_of(&account);
    let others = net.not_swarm_of(&account);
    let destination = swarm[0];
    let path: Vec<NodeKeys> = [others[0], others[1], others[2]]
        .iter()
        .map(|&i| keys(&net, i))
        .collect();

    for enc in [EncType::XChaCha20, EncType::AesGcm] {
        let data = format!("through the onion with {}", enc.as_str());
        let store = json!({"method": "store", "params": {"pubkey": account.to_hex(), "timestamp": now_ms(),
            "ttl": 60_000, "data": b64(&data)}});
        let onion = build_to_node(
            &path,
            &keys(&net, destination),
            store.to_string().as_bytes(),
            enc,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        let (status, body) = post_onion(&net, others[0], onion.body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let reply = decode_snode_response(&onion.response_key, &body).unwrap();
        assert_eq!(reply.status, 200);
        let result = reply.body.to_json().unwrap();
        assert_eq!(result["swarm"].as_object().unwrap().len(), 3, "{result}");

        // Retrieve it back through a fresh onion.
        let ts = now_ms();
        let sig = alice.sign(
            &SignedRequest::Retrieve {
                namespace: Namespace(0),
                timestamp: ts,
            }
            .message(),
        );
        let retrieve = json!({"method": "retrieve", "params": {"pubkey": account.to_hex(),
            "pubkey_ed25519": alice.ed25519_public().to_hex(), "timestamp": ts, "signature": b64(sig.to_bytes())}});
        let onion = build_to_node(
            &path,
            &keys(&net, swarm[1]),
            retrieve.to_string().as_bytes(),
            enc,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        let (status, body) = post_onion(&net, others[0], onion.body).await;
        assert_eq!(status, 200);
        let reply = decode_snode_response(&onion.response_key, &body).unwrap();
        let result = reply.body.to_json().unwrap();
        let datas: Vec<&str> = result["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["data"].as_str().unwrap())
            .collect();
        assert!(datas.contains(&b64(&data).as_str()), "{result}");
    }

    // An RPC error travels back encrypted, inside an HTTP 200.
    let bad = json!({"method": "retrieve", "params": {"pubkey": account.to_hex()}});
    let onion = build_to_node(
        &path,
        &keys(&net, destination),
        bad.to_string().as_bytes(),
        EncType::XChaCha20,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let (status, body) = post_onion(&net, others[0], onion.body).await;
    assert_eq!(status, 200);
    let reply = decode_snode_response(&onion.response_key, &body).unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.body,
        SnodeBody::Text("retrieve: request signature required".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_next_hop_is_reported_by_the_relay() {
    let net = Net::start(&[3]).await;
    let stranger = Identity::generate(&mut rand::rngs::OsRng);
    let path = vec![
        keys(&net, 0),
        NodeKeys {
            ed25519: stranger.ed25519_public(),
            x25519: stranger.x25519_public(),
        },
    ];
    let onion = build_to_node(
        &path,
        &keys(&net, 1),
        br#"{"method":"info","params":{}}"#,
        EncType::AesGcm,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let (status, body) = post_onion(&net, 0, onion.body).await;
    assert_eq!(status, 502);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("Next node not found: {}", stranger.ed25519_public())
    );
}

/// A tiny HTTP server speaking the v4 onion protocol: echoes the request back.
async fn start_v4_server(keypair: X25519Keypair) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/oxen/v4/lsrpc",
        axum::routing::post(move |body: bytes::Bytes| {
            let keypair = keypair.clone();
            async move {
                let request = parse_onion_request(&body).unwrap();
                let layer = request.decrypt(&keypair).unwrap();
                let v4 = V4Request::parse(layer.plaintext()).unwrap();
                let echo = json!({"endpoint": v4.endpoint(), "method": v4.method().as_str(),
                    "body": String::from_utf8_lossy(v4.body().unwrap_or_default())});
                let mut headers = BTreeMap::new();
                headers.insert("content-type".to_owned(), "application/json".to_owned());
                let response = V4Response {
                    code: 201,
                    headers,
                    body: echo.to_string().into_bytes(),
                };
                response
                    .seal(layer.reply_key(), &mut rand::rngs::OsRng)
                    .unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hops_to_an_http_server() {
    let net = Net::start(&[3]).await;
    let server_keys = X25519Keypair::generate(&mut rand::rngs::OsRng);
    let addr = start_v4_server(server_keys.clone()).await;
    let destination = ServerDestination {
        host: addr.ip().to_string(),
        protocol: ProxyProtocol::Http,
        port: Some(addr.port()),
        x25519: *server_keys.public(),
    };
    let path: Vec<NodeKeys> = (0..3).map(|i| keys(&net, i)).collect();
    let request = V4Request::new(
        HttpMethod::Post,
        "/room/lobby?x=1",
        BTreeMap::new(),
        Some(b"ping".to_vec()),
    )
    .unwrap();
    for enc in [EncType::XChaCha20, EncType::AesGcm] {
        let onion =
            build_to_server(&path, &destination, &request, enc, &mut rand::rngs::OsRng).unwrap();
        let (status, body) = post_onion(&net, 0, onion.body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let response = V4Response::open(&onion.response_key, &body).unwrap();
        assert_eq!(response.code, 201);
        let echo: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(
            echo,
            json!({"endpoint": "/room/lobby?x=1", "method": "POST", "body": "ping"})
        );
    }
}
