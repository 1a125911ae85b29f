//! "Only the author can unsend" (README, `unsend`): an `UnsendRequest` whose `author` is not the
//! authenticated sender of the message carrying it deletes nothing, whichever message it names —
//! one the recipient received, or one the recipient sent. Mallory builds the requests with the
//! protocol library and stores them in Bob's swarm directly, as any client can; Alice's own
//! unsend of the same message, sent through the messenger, then deletes it (so the forged ones
//! were refused for their author, not for their shape).
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use serde_json::json;
use shallot_proto::session::envelope::wrap_for_recipient;
use shallot_proto::session::protos::{Content, UnsendRequest};
use shallot_proto::{AccountId, Identity, SessionId};
use support::{b64, messenger, now_ms, user, Net};

/// Mallory's request to delete `author`'s message of `timestamp`, stored for `recipient`.
async fn forged_unsend(
    net: &Net,
    mallory: &Identity,
    recipient: &SessionId,
    author: &SessionId,
    timestamp: u64,
) {
    let now = now_ms();
    let content = Content {
        unsend_request: Some(UnsendRequest {
            timestamp: Some(timestamp),
            author: Some(author.to_string()),
        }),
        sig_timestamp: Some(now),
        ..Content::default()
    };
    let data =
        wrap_for_recipient(mallory, recipient, &content, now, &mut rand::rngs::OsRng).unwrap();
    let account: AccountId = (*recipient).into();
    let node = net.swarm_of(&account)[0];
    let (status, body) = net
        .rpc(
            node,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": now,
            "ttl": 600_000, "data": b64(&data)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_unsend_deletes_nothing() {
    let started = std::time::Instant::now();
    let net = Net::start(&[3, 3]).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (alice_id, bob_id, mallory) = (user(), user(), user());
    let (alice_sid, bob_sid) = (alice_id.session_id(), bob_id.session_id());
    let alice = messenger(&net, alice_id, dirs[0].path()).await;
    let bob = messenger(&net, bob_id, dirs[1].path()).await;

    let from_alice = alice.send(&bob_sid, "from alice").await.unwrap();
    let received = bob.receive().await.unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    let from_bob = bob.send(&alice_sid, "from bob").await.unwrap();
    let bob_has = async |bob: &shallot_client::Messenger| {
        let mut bodies: Vec<String> = bob
            .db()
            .messages(&alice_sid)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        bodies.sort();
        bodies
    };
    assert_eq!(bob_has(&bob).await, ["from alice", "from bob"]);

    // Mallory names Alice as the author of Alice's message, and Bob as the author of Bob's.
    forged_unsend(&net, &mallory, &bob_sid, &alice_sid, from_alice.timestamp).await;
    forged_unsend(&net, &mallory, &bob_sid, &bob_sid, from_bob.timestamp).await;
    let shown = bob.receive().await.unwrap();
    assert!(shown.is_empty(), "{shown:?}");
    assert_eq!(
        bob_has(&bob).await,
        ["from alice", "from bob"],
        "a forged unsend deleted a message"
    );
    assert_eq!(
        bob.db()
            .conversation_state(&mallory.session_id())
            .await
            .unwrap(),
        None,
        "the forged requests made Mallory a conversation"
    );

    // The author's own unsend of the same message works.
    alice.unsend(&from_alice.hash.to_string()).await.unwrap();
    assert!(bob.receive().await.unwrap().is_empty());
    assert_eq!(bob_has(&bob).await, ["from bob"]);
    eprintln!("forged unsend scenario: {:?}", started.elapsed());
}
