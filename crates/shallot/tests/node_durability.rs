//! Crash and shutdown behaviour of a real node process: what was acknowledged survives.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::time::Duration;

use serde_json::json;
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Namespace};
use support::{b64, now_ms, user, Net};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_stores_loses_nothing_acknowledged() {
    // A one-node swarm, so every acknowledgement comes from the node we kill.
    let mut net = Net::start(&[1]).await;
    let alice = user();
    let account: AccountId = alice.session_id().into();

    // Eight concurrent writers store as fast as they can; the node is SIGKILLed mid-stream.
    let url = net.nodes[0].url("/storage_rpc/v1");
    let http = net.http.clone();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (url, http, account, acked) = (url.clone(), http.clone(), account, acked.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let data = format!("writer {w} message {i}");
                let body = json!({"method": "store", "params": {"pubkey": account.to_hex(),
                    "timestamp": now_ms(), "ttl": 600_000, "data": b64(&data)}});
                let Ok(response) = http.post(&url).body(body.to_string()).send().await else {
                    break;
                };
                if response.status() != 200 {
                    break;
                }
                let Ok(reply) = response.json::<serde_json::Value>().await else {
                    break;
                };
                acknowledged.push(reply["hash"].as_str().unwrap().to_owned());
                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            acknowledged
        }));
    }
    // Killed mid-stream once enough stores were acknowledged, however slowly this host runs.
    support::until(
        Duration::from_secs(30),
        "60 acknowledged stores",
        || async {
            match acked.load(std::sync::atomic::Ordering::Relaxed) {
                n if n >= 60 => Ok(()),
                n => Err(format!("{n} so far")),
            }
        },
    )
    .await;
    net.kill(0);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "only {} stores before the kill",
        acknowledged.len()
    );

    net.restart(0).await;
    let ts = now_ms();
    let sig = alice.sign(
        &SignedRequest::Retrieve {
            namespace: Namespace(0),
            timestamp: ts,
        }
        .message(),
    );
    let mut stored = std::collections::HashSet::new();
    let mut last_hash = String::new();
    loop {
        let (status, body) = net
            .rpc(0, "retrieve", json!({"pubkey": account.to_hex(), "pubkey_ed25519": alice.ed25519_public().to_hex(),
                "timestamp": ts, "signature": b64(sig.to_bytes()), "last_hash": last_hash, "max_size": -1}))
            .await;
        assert_eq!(status, 200, "{body}");
        for m in body["messages"].as_array().unwrap() {
            stored.insert(m["hash"].as_str().unwrap().to_owned());
            last_hash = m["hash"].as_str().unwrap().to_owned();
        }
        if body["more"] != true {
            break;
        }
    }
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|h| !stored.contains(*h))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged stores lost",
        missing.len(),
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_data_is_kept() {
    let mut net = Net::start(&[1]).await;
    let alice = user();
    let account: AccountId = alice.session_id().into();
    let (status, body) = net
        .rpc(0, "store", json!({"pubkey": account.to_hex(), "timestamp": now_ms(), "ttl": 600_000, "data": b64("kept")}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        net.terminate(0),
        "node did not exit cleanly on SIGTERM: {}",
        net.log(0)
    );
    // The checkpoint on shutdown folds the WAL into the database file.
    let wal = net.nodes[0].dir.join("storage.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
        "WAL not checkpointed"
    );
    net.restart(0).await;
    let ts = now_ms();
    let sig = alice.sign(
        &SignedRequest::Retrieve {
            namespace: Namespace(0),
            timestamp: ts,
        }
        .message(),
    );
    let (status, body) = net
        .rpc(
            0,
            "retrieve",
            json!({"pubkey": account.to_hex(), "pubkey_ed25519": alice.ed25519_public().to_hex(),
            "timestamp": ts, "signature": b64(sig.to_bytes())}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["data"], b64("kept"));
}
