//! Real node processes on loopback: swarm replication, 421 redirects and member signatures.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use serde_json::json;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Ed25519Pub, Namespace, Signature};
use support::{b64, now_ms, user, Net};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_on_one_member_is_retrievable_from_every_member() {
    let net = Net::start(&[3, 3]).await;
    let alice = user();
    let account: AccountId = alice.session_id().into();
    let members = net.swarm_of(&account);
    assert_eq!(members.len(), 3);

    let now = now_ms();
    let data = b"hello swarm";
    let (status, body) = net
        .rpc(
            members[0],
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": now, "ttl": 60_000, "data": b64(data)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let expected = MessageHash::compute(&account, Namespace(0), data).to_string();
    assert_eq!(body["hash"], expected);
    let swarm = body["swarm"].as_object().unwrap();
    assert_eq!(swarm.len(), 3, "{body}");
    for (key, entry) in swarm {
        assert_eq!(entry["hash"], expected, "{key}: {entry}");
        // Each member signs the hash with its own Ed25519 key.
        let node_key: Ed25519Pub = key.parse().unwrap();
        let sig = shallot_proto::b64::decode(entry["signature"].as_str().unwrap()).unwrap();
        let sig = Signature::from_slice(&sig).unwrap();
        assert!(
            node_key.verify(expected.as_bytes(), &sig),
            "bad signature from {key}"
        );
        assert!(members.iter().any(|&i| net.nodes[i].ed25519_hex() == *key));
    }

    // Every member returns it, with the same hash.
    for &i in &members {
        let ts = now_ms();
        let sig = alice.sign(
            &SignedRequest::Retrieve {
                namespace: Namespace(0),
                timestamp: ts,
            }
            .message(),
        );
        let (status, body) = net
            .rpc(i, "retrieve", json!({"pubkey": account.to_hex(), "pubkey_ed25519": alice.ed25519_public().to_hex(),
                "timestamp": ts, "signature": b64(sig.to_bytes())}))
            .await;
        assert_eq!(status, 200, "{body}");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "node {i}: {body}");
        assert_eq!(messages[0]["hash"], expected);
        assert_eq!(messages[0]["data"], b64(data));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_swarm_gets_421_with_the_right_swarm() {
    let net = Net::start(&[2, 2]).await;
    let account: AccountId = user().session_id().into();
    let outsider = net.not_swarm_of(&account)[0];
    let (status, body) = net
        .rpc(outsider, "store", json!({"pubkey": account.to_hex(), "timestamp": now_ms(), "ttl": 60_000, "data": b64("x")}))
        .await;
    assert_eq!(status, 421, "{body}");
    let listed: Vec<&str> = body["snodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pubkey_ed25519"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = net
        .swarm_of(&account)
        .iter()
        .map(|&i| net.nodes[i].ed25519_hex())
        .collect();
    assert_eq!(listed.len(), expected.len());
    for key in expected {
        assert!(listed.contains(&key.as_str()));
    }
    assert!(body["t"].as_u64().unwrap() > 0);
    // The listed address is where the member really is.
    let first = &body["snodes"][0];
    let member = net
        .nodes
        .iter()
        .find(|n| n.ed25519_hex() == first["pubkey_ed25519"])
        .unwrap();
    assert_eq!(first["ip"], member.addr.ip().to_string());
    assert_eq!(first["port_https"], member.addr.port());
}
