//! Waiting retrieves (`wait_ms`, private push) against a real `shallot node` process: a held
//! retrieve answers as soon as a message for its account is stored, or at its (capped) deadline
//! with nothing; the per-account cap answers at once with `wait_ms: 0`; a batch of retrieves
//! waits for any of them, and a batch mixing other methods or a `sequence` never waits.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_proto::{AccountId, AccountKind, Identity};
use support::{b64, now_ms, user, Net};

/// One node whose waits last at most 3 s, one per account.
async fn net() -> (Net, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[wait]\nmax_wait_ms = 3000\nmax_per_account = 1\n").unwrap();
    let net =
        Net::start_with_args(&[1], vec!["--config".into(), config.display().to_string()]).await;
    (net, dir)
}

/// A `05` account whose 32 bytes are an Ed25519 key: it signs without `pubkey_ed25519`.
fn account(id: &Identity) -> AccountId {
    AccountId::new(AccountKind::Session, *id.ed25519_public().as_bytes())
}

/// Signed retrieve params of namespace 0, after `last_hash`, asking to wait `wait_ms`.
fn retrieve(id: &Identity, last_hash: Option<&str>, wait_ms: u64) -> Value {
    let ts = now_ms();
    let signature = b64(id.sign(format!("retrieve{ts}").as_bytes()).to_bytes());
    let mut params = json!({"pubkey": account(id).to_hex(), "timestamp": ts,
        "signature": signature, "wait_ms": wait_ms});
    if let Some(hash) = last_hash {
        params["last_hash"] = hash.into();
    }
    params
}

fn store(id: &Identity, data: &str) -> Value {
    json!({"pubkey": account(id).to_hex(), "timestamp": now_ms(), "ttl": 600_000,
        "data": b64(data)})
}

fn hashes(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|m| m["hash"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_retrieve_answers_on_a_store_or_at_its_deadline() {
    let (net, _dir) = net().await;
    let (bob, other) = (user(), user());

    // Held until Alice's store; the 60 s asked for is capped at the node's 3 s.
    let started = Instant::now();
    let (waited, stored) = tokio::join!(
        net.rpc(0, "retrieve", retrieve(&bob, None, 60_000)),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let at = Instant::now();
            (net.rpc(0, "store", store(&bob, "hello")).await, at)
        }
    );
    let ((status, body), ((store_status, store_body), stored_at)) = (waited, stored);
    assert_eq!(store_status, 200, "{store_body}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wait_ms"], 3000, "{body}");
    let got = hashes(&body);
    assert_eq!(got.len(), 1, "{body}");
    assert_eq!(got[0], store_body["hash"].as_str().unwrap());
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it was held"
    );
    assert!(
        stored_at.elapsed() < Duration::from_secs(1),
        "answered {:?} after the store",
        stored_at.elapsed()
    );

    // Nothing newer: a store for another account does not wake it; it answers empty at 3 s.
    let started = Instant::now();
    let ((status, body), (other_status, _)) = tokio::join!(
        net.rpc(0, "retrieve", retrieve(&bob, Some(&got[0]), 60_000)),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            net.rpc(0, "store", store(&other, "not for bob")).await
        }
    );
    assert_eq!(other_status, 200);
    assert_eq!(status, 200, "{body}");
    assert!(hashes(&body).is_empty(), "{body}");
    assert_eq!(body["wait_ms"], 3000, "{body}");
    let held = started.elapsed();
    assert!(held >= Duration::from_millis(2900), "held {held:?}");
    assert!(held < Duration::from_secs(6), "held {held:?}");

    // A stored message newer than the cursor answers at once, without waiting.
    let started = Instant::now();
    let (status, body) = net.rpc(0, "retrieve", retrieve(&other, None, 60_000)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hashes(&body).len(), 1, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_batches_and_sequences() {
    let (net, _dir) = net().await;
    let (bob, carol) = (user(), user());

    let (first, (second, batch)) = tokio::join!(
        // Bob's one allowed wait: held to its deadline.
        net.rpc(0, "retrieve", retrieve(&bob, None, 3000)),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Over Bob's cap of one: answered at once, saying no wait was granted.
            let started = Instant::now();
            let second = net.rpc(0, "retrieve", retrieve(&bob, None, 3000)).await;
            let second = (second, started.elapsed());
            // A batch waiting for Carol (and Bob, who is at his cap): refused whole, at once.
            let requests = json!({"requests": [
                {"method": "retrieve", "params": retrieve(&carol, None, 3000)},
                {"method": "retrieve", "params": retrieve(&bob, None, 3000)},
            ]});
            let started = Instant::now();
            let batch = net.rpc(0, "batch", requests).await;
            (second, (batch, started.elapsed()))
        }
    );
    let (status, body) = first;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wait_ms"], 3000, "{body}");
    let ((status, body), took) = second;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wait_ms"], 0, "{body}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let ((status, body), took) = batch;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["body"]["wait_ms"], 0, "{body}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // A batch of retrieves for Bob and Carol waits for either: a store for Carol wakes it.
    let requests = json!({"requests": [
        {"method": "retrieve", "params": retrieve(&bob, None, 3000)},
        {"method": "retrieve", "params": retrieve(&carol, None, 3000)},
    ]});
    let ((status, body), (store_status, stored_at)) =
        tokio::join!(net.rpc(0, "batch", requests), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let at = Instant::now();
            (net.rpc(0, "store", store(&carol, "for carol")).await.0, at)
        });
    assert_eq!(store_status, 200);
    assert_eq!(status, 200, "{body}");
    assert!(stored_at.elapsed() < Duration::from_secs(1), "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(hashes(&results[0]["body"]).is_empty(), "{body}");
    assert_eq!(hashes(&results[1]["body"]).len(), 1, "{body}");
    assert!(
        results.iter().all(|r| r["body"]["wait_ms"] == 3000),
        "{body}"
    );

    // Only a batch of nothing but retrieves waits: with a store in it, or as a sequence, the
    // retrieves answer at once (and say nothing about waiting).
    for method in ["batch", "sequence"] {
        let requests = json!({"requests": [
            {"method": "retrieve", "params": retrieve(&bob, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 3000)},
            {"method": "store", "params": store(&carol, method)},
        ]});
        let started = Instant::now();
        let (status, body) = net.rpc(0, method, requests).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["results"][0]["body"].get("wait_ms").is_none(),
            "{body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{method} waited"
        );
    }
}
