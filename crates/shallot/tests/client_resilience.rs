//! The messenger through failures on real node processes: the node holding Bob's push
//! subscription dies (it moves to another swarm member and keeps delivering); the guards of
//! Alice's paths die mid-conversation (the next message still arrives, shown once); a message
//! unsent on one of Alice's devices disappears from her other device and from Bob's.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

mod support;

use std::time::Duration;

use shallot_client::{push, Direction};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_proto::{Ed25519Pub, Identity};
use support::{messenger, user};

fn index_of(net: &LocalNet, key: &Ed25519Pub) -> usize {
    net.nodes
        .iter()
        .position(|n| n.identity.ed25519_public() == *key)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_failover_dead_guards_and_unsend_across_devices() {
    let mut net = LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms: vec![5, 5],
        subnet: 237,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (alice_id, bob_id) = (user(), user());
    let alice_seed = *alice_id.seed();
    let (alice_sid, bob_sid) = (alice_id.session_id(), bob_id.session_id());
    let alice = messenger(&net, alice_id, dirs[0].path()).await;
    let alice2 = messenger(&net, Identity::from_seed(alice_seed), dirs[1].path()).await;
    let bob = messenger(&net, bob_id.clone(), dirs[2].path()).await;

    // 1. Push, then the node holding the subscription dies: it moves to another member.
    let mut subscription = push::subscribe(bob.client(), &bob_id);
    assert!(subscription.wait_connected(Duration::from_secs(20)).await);
    let sent = alice.send(&bob_sid, "hello").await.unwrap();
    let note = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.hash, sent.hash);
    assert_eq!(
        bob.accept_pushed(&note).await.unwrap().unwrap().body,
        "hello",
        "shown once, from the push"
    );
    let first = subscription.node().unwrap();
    let dead_push_node = index_of(&net, &first);
    net.kill(dead_push_node);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let second = loop {
        match subscription.node() {
            Some(node) if node != first => break node,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("the subscription never moved off the dead node")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(subscription.is_connected());
    assert_ne!(second, first);
    let sent = alice
        .send(&bob_sid, "after the push node died")
        .await
        .unwrap();
    let note = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a notification from the new subscription node")
        .unwrap();
    assert_eq!(note.hash, sent.hash);
    assert!(bob.accept_pushed(&note).await.unwrap().is_some());
    // Already shown by push: a poll does not show them again.
    assert!(bob.receive().await.unwrap().is_empty());

    // 2. Alice's guards die mid-conversation: the next message still arrives, once.
    alice.client().ensure_paths().await.unwrap();
    let guards: Vec<Ed25519Pub> = alice
        .client()
        .paths()
        .iter()
        .map(|p| p.guard().ed25519)
        .collect();
    assert!(!guards.is_empty());
    for guard in &guards {
        let i = index_of(&net, guard);
        if net.nodes[i].is_running() {
            net.kill(i);
        }
    }
    let sent = alice
        .send(&bob_sid, "after the guards died")
        .await
        .expect("sent over rebuilt paths");
    assert!(sent.stored_on > 0);
    let now_guards: Vec<Ed25519Pub> = alice
        .client()
        .paths()
        .iter()
        .map(|p| p.guard().ed25519)
        .collect();
    assert!(
        now_guards.iter().any(|g| !guards.contains(g)),
        "a dead guard was replaced"
    );
    // Bob may get it by push and by poll: he sees it exactly once.
    let mut seen = Vec::new();
    if let Ok(Some(note)) = tokio::time::timeout(Duration::from_secs(3), subscription.next()).await
    {
        seen.extend(bob.accept_pushed(&note).await.unwrap().map(|m| m.body));
    }
    seen.extend(bob.receive().await.unwrap().into_iter().map(|m| m.body));
    assert_eq!(seen, ["after the guards died"]);
    let texts: Vec<String> = bob
        .db()
        .messages(&alice_sid)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        texts,
        ["hello", "after the push node died", "after the guards died"]
    );
    // Alice's own database holds each sent message once, stored.
    assert_eq!(alice.db().messages(&bob_sid).await.unwrap().len(), 3);

    // 3. Unsend on one device: gone on Alice's other device and on Bob's.
    let got = alice2.receive().await.unwrap();
    assert_eq!(got.len(), 3, "the second device has the sync copies");
    assert!(got.iter().all(|m| m.direction == Direction::Outgoing));
    let hello = alice
        .db()
        .messages(&bob_sid)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.body == "hello")
        .unwrap();
    alice.unsend(&hello.id.to_string()).await.unwrap();
    assert!(alice2.receive().await.unwrap().is_empty());
    let left: Vec<String> = alice2
        .db()
        .messages(&bob_sid)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(left, ["after the push node died", "after the guards died"]);
    assert!(bob.receive().await.unwrap().is_empty());
    assert!(bob.db().message(&hello.id).await.unwrap().is_none());
    assert_eq!(bob.db().messages(&alice_sid).await.unwrap().len(), 2);
}
