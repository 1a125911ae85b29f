//! Malformed and hostile input against a real `shallot node` (storage RPC spec §1.1, §1.4, §4.1):
//! exact statuses and texts, and the node keeps serving afterwards.
//!
//! Rate limiting (§12) is not tested here: the harness starts nodes with `--exempt-loopback`,
//! so loopback clients are never limited; the limiter has unit tests.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use serde_json::{json, Value};
use shallot_proto::onion::{build_to_node, decode_snode_response, EncType, NodeKeys};
use shallot_proto::AccountId;
use support::{b64, now_ms, user, Net};

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// `info` still answers 200 with the version.
async fn assert_alive(net: &Net, i: usize) {
    let (status, body) = net.rpc(i, "info", json!({})).await;
    assert_eq!(status, 200, "node {i}: {body}\n{}", net.log(i));
    assert_eq!(body["version"], json!([2, 6, 2]));
}

fn keys(net: &Net, i: usize) -> NodeKeys {
    NodeKeys {
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_envelopes() {
    let net = Net::start(&[1]).await;
    let post = |body: &str| net.post(0, "/storage_rpc/v1", body.as_bytes().to_vec());

    assert_eq!(post("").await, (400, text("invalid json")));
    assert_eq!(post("{\"method\": ").await, (400, text("invalid json")));
    assert_eq!(post("not json at all").await, (400, text("invalid json")));
    assert_eq!(
        post("{\"params\": {}}").await,
        (400, text("invalid json: no `method` field"))
    );
    assert_eq!(
        post("{\"method\": 5, \"params\": {}}").await,
        (400, text("invalid json: no `method` field"))
    );
    assert_eq!(
        post("[1, 2]").await,
        (400, text("invalid json: no `method` field"))
    );
    assert_eq!(
        post("{\"method\": \"info\"}").await,
        (400, text("invalid json: no `params` field"))
    );
    assert_eq!(
        post("{\"method\": \"info\", \"params\": [1]}").await,
        (400, text("invalid json: no `params` field"))
    );
    assert_eq!(
        post("{\"method\": \"get_stats\", \"params\": {}}").await,
        (400, text("no method get_stats"))
    );
    assert_eq!(
        post("{\"method\": \"\", \"params\": {}}").await,
        (400, text("no method "))
    );

    // Long polling is gone.
    let response = net
        .http
        .post(net.nodes[0].url("/storage_rpc/v1"))
        .header("X-Loki-Long-Poll", "true")
        .body(r#"{"method":"info","params":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    assert_eq!(
        response.text().await.unwrap(),
        "long polling is no longer supported, client upgrade required"
    );

    assert_alive(&net, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_store_data() {
    let net = Net::start(&[1]).await;
    let account: AccountId = user().session_id().into();
    let store = |data: Value| json!({"pubkey": account.to_hex(), "timestamp": now_ms(), "ttl": 60_000, "data": data});

    assert_eq!(
        net.rpc(0, "store", store(json!("not base64!"))).await,
        (
            400,
            text("invalid request: Invalid 'data' value: not base64 encoded")
        )
    );
    assert_eq!(
        net.rpc(0, "store", store(json!(12))).await.0,
        400,
        "data must be a string"
    );

    // 76 800 bytes is the limit: accepted; one more is refused.
    let (status, body) = net
        .rpc(0, "store", store(json!(b64(vec![7u8; 76_800]))))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        net.rpc(0, "store", store(json!(b64(vec![7u8; 76_801]))))
            .await,
        (
            400,
            text("invalid request: Message body exceeds maximum allowed length of 76800 bytes")
        )
    );

    assert_alive(&net, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_body_is_refused() {
    let net = Net::start(&[1]).await;
    let limit = 10 * 1024 * 1024;
    // Padding after the JSON keeps the body well-formed up to the size check.
    let mut body = br#"{"method":"info","params":{}}"#.to_vec();
    body.resize(limit + 1, b' ');
    assert_eq!(
        net.post(0, "/storage_rpc/v1", body).await,
        (413, text("Request body too large"))
    );
    // Exactly 10 MiB is read (and then parsed).
    let mut body = br#"{"method":"info","params":{}}"#.to_vec();
    body.resize(limit, b' ');
    let (status, reply) = net.post(0, "/storage_rpc/v1", body).await;
    assert_eq!(status, 200, "{reply}");

    // The onion entry has the same cap.
    assert_eq!(
        net.post(0, "/onion_req/v2", vec![0u8; limit + 1]).await,
        (413, text("Request body too large"))
    );
    assert_alive(&net, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One list of malformations of the same onion.
async fn malformed_onions() {
    let net = Net::start(&[2]).await;
    let request = br#"{"method":"info","params":{}}"#;
    let onion = build_to_node(
        &[keys(&net, 0)],
        &keys(&net, 1),
        request,
        EncType::AesGcm,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let good = onion.body.clone();
    let declared = usize::try_from(u32::from_le_bytes(good[..4].try_into().unwrap())).unwrap();
    let (ciphertext, tail) = good[4..].split_at(declared);
    let control: Value = serde_json::from_slice(tail).unwrap();
    assert!(control.get("ephemeral_key").is_some(), "{control}");
    let with_tail = |tail: &[u8]| {
        let mut body = good[..4 + declared].to_vec();
        body.extend_from_slice(tail);
        body
    };
    let parse_error = |what: &str| text(&format!("Error parsing onion request: {what}"));
    let post = |body: Vec<u8>| net.post(0, "/onion_req/v2", body);

    // Sanity: the unmodified onion goes through both nodes and runs `info` at the second.
    let response = net
        .http
        .post(net.nodes[0].url("/onion_req/v2"))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply =
        decode_snode_response(&onion.response_key, &response.bytes().await.unwrap()).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.to_json().unwrap()["version"], json!([2, 6, 2]));

    // Framing: shorter than the length prefix, or a prefix promising more than follows.
    assert_eq!(
        post(good[..3].to_vec()).await,
        (
            400,
            parse_error("Unexpected payload size; expected ciphertext size")
        )
    );
    assert_eq!(
        post(Vec::new()).await,
        (
            400,
            parse_error("Unexpected payload size; expected ciphertext size")
        )
    );
    let mut lying = good.clone();
    let claimed = u32::try_from(good.len()).unwrap();
    lying[..4].copy_from_slice(&claimed.to_le_bytes());
    assert_eq!(
        post(lying).await,
        (
            400,
            parse_error(&format!(
                "Unexpected payload size {}, expected >= {claimed}",
                good.len() - 4
            ))
        )
    );

    // The control JSON: not JSON, not an object, missing or malformed fields.
    for tail in [&b"not json"[..], b"", b"{\"ephemeral_key\": "] {
        let (status, body) = post(with_tail(tail)).await;
        assert_eq!(status, 400, "{tail:?}");
        assert!(
            body.as_str()
                .unwrap()
                .starts_with("Error parsing onion request: invalid JSON: "),
            "{body}"
        );
    }
    assert_eq!(
        post(with_tail(b"[1,2]")).await,
        (400, parse_error("JSON is not an object"))
    );
    for control in [
        json!({}),
        json!({"ephemeral_key": "zz"}),
        json!({"ephemeral_key": "00ff"}),
        json!({"ephemeral_key": 5}),
        json!({"ephemeral_key": "g".repeat(64)}),
    ] {
        let (status, body) = post(with_tail(control.to_string().as_bytes())).await;
        assert_eq!(status, 400, "{control}");
        let body = body.as_str().unwrap();
        assert!(
            body.starts_with("Error parsing onion request: ")
                && body.len() > "Error parsing onion request: ".len(),
            "{control}: {body}"
        );
    }

    // Well-formed but undecryptable: a flipped ciphertext byte, or another ephemeral key.
    let mut flipped = good.clone();
    flipped[4 + declared / 2] ^= 0x01;
    assert_eq!(post(flipped).await, (400, text("Invalid ciphertext")));
    let mut other_key = control.clone();
    other_key["ephemeral_key"] = user().x25519_public().to_hex().into();
    assert_eq!(
        post(with_tail(other_key.to_string().as_bytes())).await,
        (400, text("Invalid ciphertext"))
    );
    // Too short to hold even the cipher's nonce and tag.
    let mut tiny = 3u32.to_le_bytes().to_vec();
    tiny.extend_from_slice(b"abc");
    tiny.extend_from_slice(tail);
    assert_eq!(post(tiny).await, (400, text("Invalid ciphertext")));
    assert_eq!(ciphertext.len(), declared);

    assert_alive(&net, 0).await;
    assert_alive(&net, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_peer_routes() {
    let net = Net::start(&[2]).await;
    let url = |path: &str| net.nodes[0].url(path);

    // Anything unrouted: 404 "<METHOD> <URL> Not Found", whatever the HTTP version.
    for (method, path) in [
        (reqwest::Method::GET, "/nope"),
        (reqwest::Method::POST, "/storage_rpc/v2"),
        (reqwest::Method::GET, "/storage_rpc/v1"),
        (reqwest::Method::PUT, "/onion_req/v2"),
        (reqwest::Method::GET, "/nope?x=1"), // the query is not echoed
    ] {
        for http1 in [true, false] {
            let mut builder = reqwest::Client::builder()
                .use_rustls_tls()
                .danger_accept_invalid_certs(true);
            if http1 {
                builder = builder.http1_only();
            }
            let client = builder.build().unwrap();
            let response = client
                .request(method.clone(), url(path))
                .send()
                .await
                .unwrap();
            let version = response.version();
            assert_eq!(response.status(), 404, "{method} {path} {version:?}");
            assert_eq!(
                response.text().await.unwrap(),
                format!("{method} {} Not Found", path.split('?').next().unwrap()),
                "{version:?}"
            );
        }
    }

    // Node-to-node routes refuse clients without a node certificate...
    for path in ["/snode/v1/forward", "/snode/v1/onion", "/snode/v1/handoff"] {
        assert_eq!(
            net.post(0, path, br#"{"method":"info","params":{}}"#.to_vec())
                .await,
            (403, text("node-to-node route: no node certificate")),
            "{path}"
        );
    }
    // ...and with the certificate of a key that is not an active node.
    let stranger = user();
    let pem = shallot_node::peer_tls::client_identity_pem(&stranger).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    for path in ["/snode/v1/forward", "/snode/v1/onion", "/snode/v1/handoff"] {
        let response = client
            .post(url(path))
            .body(r#"{"method":"info","params":{}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            format!(
                "node-to-node route: {} is not an active service node",
                stranger.ed25519_public()
            )
        );
    }

    assert_alive(&net, 0).await;
    assert_alive(&net, 1).await;
}
