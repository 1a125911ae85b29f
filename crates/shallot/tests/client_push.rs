//! Push for the client library: Bob subscribes to a member of his swarm over the monitor
//! WebSocket, Alice sends through an onion path, and the notification arrives and decrypts (via
//! `Messenger::accept_pushed`) to the sent text; a later poll does not show it again.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::time::Duration;

use shallot_client::push;
use shallot_devnet::{LocalNet, NetOptions};
use support::{messenger, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_message_arrives_and_decrypts() {
    let net = LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms: vec![3, 3],
        subnet: 236,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (alice_id, bob_id) = (user(), user());
    let bob_sid = bob_id.session_id();
    let alice = messenger(&net, alice_id, dirs[0].path()).await;
    let bob = messenger(&net, bob_id.clone(), dirs[1].path()).await;

    let mut subscription = push::subscribe(bob.client(), &bob_id);
    assert!(
        subscription.wait_connected(Duration::from_secs(20)).await,
        "a swarm member accepted the subscription"
    );

    let sent = alice.send(&bob_sid, "pushed to bob").await.unwrap();
    let note = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a notification within 10 s")
        .unwrap();
    assert_eq!(note.hash, sent.hash);
    assert_eq!(note.account, bob_sid.account());
    assert_eq!(note.namespace.0, 0);
    let got = bob
        .accept_pushed(&note)
        .await
        .unwrap()
        .expect("a new message");
    assert_eq!(got.body, "pushed to bob");
    assert_eq!(got.sender, alice.session_id());
    // Already seen: neither a repeated notification nor the poll shows it again.
    assert!(bob.accept_pushed(&note).await.unwrap().is_none());
    assert!(bob.receive().await.unwrap().is_empty());
}
