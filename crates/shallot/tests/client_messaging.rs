//! One-to-one messaging against real node processes: Alice and Bob exchange messages through
//! onion paths, Bob catches up on messages sent while he was offline (each exactly once), junk
//! in his inbox is dropped, a second device restored from Alice's seed sees her sync copies and
//! Bob's reply, and the `send`/`inbox` CLI commands work end to end.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::path::Path;

use assert_cmd::Command;
use serde_json::{json, Value};
use shallot_client::{ConversationState, Direction, MessageState, OnionClient};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_proto::rpc::Request;
use shallot_proto::session::protos::Content;
use shallot_proto::session::wrap_for_recipient;
use shallot_proto::{Identity, SessionId};
use support::{b64, messenger, user};

async fn start(subnet: u8) -> LocalNet {
    LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms: vec![3, 3],
        subnet,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap()
}

/// Stores raw bytes into `to`'s inbox (namespace 0 needs no signature).
async fn raw_store(client: &OnionClient, to: &SessionId, data: &[u8]) {
    let request = Request::parse(
        "store",
        &json!({"pubkey": to.to_string(), "timestamp": client.clock().now_ms(),
                "ttl": 600_000, "data": b64(data)}),
    )
    .unwrap();
    client.request_swarm(&to.account(), &request).await.unwrap();
}

fn bodies(messages: &[shallot_client::ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One conversation, step by step.
async fn alice_and_bob_exchange_messages_across_devices() {
    let net = start(233).await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (alice_id, bob_id) = (user(), user());
    let alice_seed = *alice_id.seed();
    let (alice_sid, bob_sid) = (alice_id.session_id(), bob_id.session_id());
    let alice = messenger(&net, alice_id, dirs[0].path()).await;
    let bob = messenger(&net, bob_id, dirs[1].path()).await;

    // Alice → Bob, stored on all 3 members of Bob's swarm, sync copy in Alice's swarm.
    let sent = alice.send(&bob_sid, "hello bob").await.unwrap();
    assert_eq!(sent.stored_on, 3);
    assert!(sent.synced);
    let stored = alice.db().message(&sent.hash).await.unwrap().unwrap();
    assert_eq!(stored.state, MessageState::Stored(3));
    assert_eq!(stored.direction, Direction::Outgoing);

    let got = bob.receive().await.unwrap();
    assert_eq!(bodies(&got), ["hello bob"]);
    assert_eq!(got[0].sender, alice_sid);
    assert_eq!(got[0].conversation, alice_sid);
    assert_eq!(got[0].direction, Direction::Incoming);
    assert_eq!(got[0].hash, sent.hash, "same hash on both sides");
    assert_eq!(got[0].timestamp, sent.timestamp);
    assert!(bob.receive().await.unwrap().is_empty(), "idempotent");

    // Bob → Alice; Alice's own sync copy is not shown to her again.
    bob.send(&alice_sid, "hi alice").await.unwrap();
    let got = alice.receive().await.unwrap();
    assert_eq!(bodies(&got), ["hi alice"]);
    assert_eq!(got[0].conversation, bob_sid);
    assert!(alice.receive().await.unwrap().is_empty());

    // Bob offline while 3 messages arrive: he then gets each of them exactly once.
    for text in ["one", "two", "three"] {
        alice.send(&bob_sid, text).await.unwrap();
    }
    let got = bob.receive().await.unwrap();
    assert_eq!(bodies(&got), ["one", "two", "three"]);
    assert!(bob.receive().await.unwrap().is_empty());
    // Junk in Bob's inbox: random bytes, and a real message encrypted for someone else.
    let carol = user();
    raw_store(alice.client(), &bob_sid, &rand::random::<[u8; 32]>()).await;
    let t = alice.client().clock().now_ms();
    let misaddressed = wrap_for_recipient(
        &Identity::from_seed(alice_seed),
        &carol.session_id(),
        &Content::text("not for bob", t),
        t,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    raw_store(alice.client(), &bob_sid, &misaddressed).await;
    assert!(bob.receive().await.unwrap().is_empty(), "junk is dropped");
    alice.send(&bob_sid, "after the junk").await.unwrap();
    assert_eq!(bodies(&bob.receive().await.unwrap()), ["after the junk"]);
    assert_eq!(bob.db().messages(&alice_sid).await.unwrap().len(), 6);

    // Alice's profile and contact list go to her swarm's config namespaces (2 and 3).
    alice.set_display_name("Alice").await.unwrap();
    alice.block(&carol.session_id()).await.unwrap();

    // A second device restored from Alice's seed: her sent messages (sync copies) and Bob's reply,
    // her display name and her contacts (Bob accepted, Carol blocked).
    let alice2 = messenger(&net, Identity::from_seed(alice_seed), dirs[2].path()).await;
    let got = alice2.receive().await.unwrap();
    let mut texts = bodies(&got);
    texts.sort_unstable();
    assert_eq!(
        texts,
        [
            "after the junk",
            "hello bob",
            "hi alice",
            "one",
            "three",
            "two"
        ]
    );
    for m in &got {
        assert_eq!(m.conversation, bob_sid);
        let expected = if m.body == "hi alice" {
            Direction::Incoming
        } else {
            Direction::Outgoing
        };
        assert_eq!(m.direction, expected, "{}", m.body);
    }
    assert!(alice2.receive().await.unwrap().is_empty());
    let convo = alice2.db().messages(&bob_sid).await.unwrap();
    assert_eq!(convo.len(), 6);
    assert_eq!(convo[0].body, "hello bob");
    assert_eq!(
        alice2.display_name().await.unwrap().as_deref(),
        Some("Alice")
    );
    assert_eq!(
        alice2
            .db()
            .conversation_state(&carol.session_id())
            .await
            .unwrap(),
        Some(ConversationState::Blocked)
    );
    assert_eq!(
        alice2.db().conversation_state(&bob_sid).await.unwrap(),
        Some(ConversationState::Accepted)
    );

    // A change on the second device reaches the first; Bob sees the new name.
    alice2.set_display_name("Alice (laptop)").await.unwrap();
    assert!(alice.receive().await.unwrap().is_empty());
    assert_eq!(
        alice.display_name().await.unwrap().as_deref(),
        Some("Alice (laptop)")
    );
    alice.send(&bob_sid, "renamed").await.unwrap();
    assert_eq!(bodies(&bob.receive().await.unwrap()), ["renamed"]);
    assert_eq!(
        bob.db().contact_name(&alice_sid).await.unwrap().as_deref(),
        Some("Alice (laptop)")
    );
    // A restart keeps the same guards (saved with the node pool and the swarm).
    alice2.save_network_state().await.unwrap();
    let guards: std::collections::BTreeSet<_> = alice2.client().guards().into_iter().collect();
    assert_eq!(guards.len(), 2);
    let restarted = messenger(&net, Identity::from_seed(alice_seed), dirs[2].path()).await;
    restarted.client().ensure_paths().await.unwrap();
    let again: std::collections::BTreeSet<_> = restarted.client().guards().into_iter().collect();
    assert_eq!(again, guards, "the same entry nodes after a restart");
    drop(restarted);

    // Only the newest version stays in the swarm: each push deletes the one it replaces.
    let profile_versions = config_messages(&alice2, &Identity::from_seed(alice_seed), 2).await;
    assert_eq!(profile_versions, 1, "old profile versions are deleted");

    // Both devices change the contact list before either has seen the other's change: two
    // versions with the same seqno. The next poll merges them (libsession's rules): neither
    // change is lost, both devices agree, and one version remains in the swarm.
    let (dave, erin) = (user().session_id(), user().session_id());
    alice.block(&dave).await.unwrap();
    alice2.block(&erin).await.unwrap();
    alice.receive().await.unwrap();
    alice2.receive().await.unwrap();
    for (device, name) in [(&alice, "first"), (&alice2, "second")] {
        for (who, state) in [
            (&dave, ConversationState::Blocked),
            (&erin, ConversationState::Blocked),
            (&carol.session_id(), ConversationState::Blocked),
            (&bob_sid, ConversationState::Accepted),
        ] {
            assert_eq!(
                device.db().conversation_state(who).await.unwrap(),
                Some(state),
                "{who} on the {name} device"
            );
        }
    }
    let contact_versions = config_messages(&alice, &Identity::from_seed(alice_seed), 3).await;
    assert_eq!(
        contact_versions, 1,
        "the merge replaced both concurrent versions"
    );

    // Five more changes put the account's contact list beyond the 5-seqno merge window. A
    // device restored now that blocks someone before its first poll fetches the current
    // version and builds on it (a seqno 1 would be dropped as stale, and the block with it).
    for _ in 0..5 {
        alice.block(&user().session_id()).await.unwrap();
    }
    let alice3 = messenger(&net, Identity::from_seed(alice_seed), dirs[3].path()).await;
    let frank = user().session_id();
    alice3.block(&frank).await.unwrap();
    assert_eq!(
        alice3.db().conversation_state(&dave).await.unwrap(),
        Some(ConversationState::Blocked),
        "the restored device took the current list"
    );
    alice.receive().await.unwrap();
    for who in [&frank, &dave, &erin] {
        assert_eq!(
            alice.db().conversation_state(who).await.unwrap(),
            Some(ConversationState::Blocked),
            "{who}"
        );
    }
}

/// How many messages one member of `m`'s swarm holds in `namespace` (a signed retrieve).
async fn config_messages(
    m: &shallot_client::Messenger,
    identity: &Identity,
    namespace: i16,
) -> usize {
    retrieve_page(m.client(), identity, namespace, None).await.0
}

/// One signed retrieve of `identity`'s `namespace` from a member of its swarm, sent through
/// `client`: how many messages the reply holds and whether the node says it has `more`.
async fn retrieve_page(
    client: &OnionClient,
    identity: &Identity,
    namespace: i16,
    max_size: Option<i64>,
) -> (usize, bool) {
    use shallot_proto::rpc::{Auth, Request, Retrieve, RetrieveAuth};
    use shallot_proto::signing::SignedRequest;
    use shallot_proto::Namespace;
    let account = identity.session_id().account();
    let members = client.swarm(&account).await.unwrap();
    let timestamp = client.clock().now_ms();
    let namespace = Namespace(namespace);
    let signature = identity.sign(
        &SignedRequest::Retrieve {
            namespace,
            timestamp,
        }
        .message(),
    );
    let request = Request::Batch(vec![Request::Retrieve(Retrieve {
        account,
        namespace,
        auth: Some(RetrieveAuth {
            timestamp,
            auth: Auth {
                signature,
                pubkey_ed25519: Some(identity.ed25519_public()),
                subaccount: None,
            },
        }),
        last_hash: None,
        max_count: None,
        max_size,
        wait_ms: None,
    })]);
    let (_, body) = client.request_node(&members[0], &request).await.unwrap();
    let page = &body["results"][0]["body"];
    (
        page["messages"].as_array().unwrap().len(),
        page["more"].as_bool() == Some(true),
    )
}

/// A backlog bigger than one retrieve reply (the node answers `more: true`) still arrives
/// whole in one `receive`: every message, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_one_reply_arrives_whole() {
    const COUNT: usize = 70;
    let net = start(238).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (alice_id, bob_id) = (user(), user());
    let alice_key = Identity::from_seed(*alice_id.seed());
    let bob_key = Identity::from_seed(*bob_id.seed());
    let bob_sid = bob_id.session_id();
    let alice = messenger(&net, alice_id, dirs[0].path()).await;

    // Bob is offline while 70 messages of 60 kB arrive for him: about 4.3 MB in his swarm,
    // more than the 3.9 MB (network maximum / 2) a client asks for per reply. How they arrive
    // is not under test: they are stored straight into one member of his swarm, which
    // replicates them (not with `send`, which would add as many sync copies, nor through onion
    // paths, ten times slower here).
    let filler = "x".repeat(60_000);
    let entry = alice.client().swarm(&bob_sid.account()).await.unwrap()[0].clone();
    for i in 0..COUNT {
        let t = alice.client().clock().now_ms();
        let content = Content::text(format!("{i:02} {filler}"), t);
        let data =
            wrap_for_recipient(&alice_key, &bob_sid, &content, t, &mut rand::rngs::OsRng).unwrap();
        let request = Request::parse(
            "store",
            &json!({"pubkey": bob_sid.to_string(), "timestamp": t, "ttl": 600_000,
                    "data": b64(&data)}),
        )
        .unwrap();
        let (status, body) = alice
            .client()
            .direct_request(&entry, &request, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let (first_page, more) = retrieve_page(alice.client(), &bob_key, 0, Some(-2)).await;
    assert!(more, "one reply holds only {first_page} of {COUNT}");
    assert!(first_page < COUNT);

    let bob = messenger(&net, bob_id, dirs[1].path()).await;
    let got = bob.receive().await.unwrap();
    let numbers: Vec<&str> = got.iter().map(|m| &m.body[..2]).collect();
    let expected: Vec<String> = (0..COUNT).map(|i| format!("{i:02}")).collect();
    assert_eq!(numbers, expected);
    assert!(got.iter().all(|m| m.body.len() == 60_003));
    assert!(bob.receive().await.unwrap().is_empty(), "nothing twice");
}

fn shallot(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("shallot").unwrap();
    cmd.env_remove("SHALLOT_HOME").arg("--data-dir").arg(dir);
    cmd
}

fn new_account(dir: &Path) -> String {
    shallot(dir).args(["account", "new"]).assert().success();
    let out = shallot(dir)
        .args(["account", "show", "--json"])
        .output()
        .unwrap();
    let show: Value = serde_json::from_slice(&out.stdout).unwrap();
    show["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_send_and_inbox() {
    let net = start(234).await;
    let seed = net.nodes[1].addr.to_string();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let _alice = new_account(a.path());
    let bob = new_account(b.path());

    let out = shallot(a.path())
        .args(["send", &bob, "hello from the cli", "--seed-node", &seed])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stored on 3"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("onion paths"), "{stderr}");
    assert!(!stderr.contains("hello from the cli"), "no bodies in logs");

    let out = shallot(b.path())
        .args(["inbox", "--seed-node", &seed])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hello from the cli"), "{stdout}");

    // Nothing new the second time; the saved node list is enough without a seed.
    let out = shallot(b.path()).arg("inbox").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("hello from the cli"), "{stdout}");
    assert!(stdout.contains("No new messages"), "{stdout}");

    // A bad recipient is refused with a helpful message.
    shallot(a.path())
        .args(["send", "05nothex", "x", "--seed-node", &seed])
        .assert()
        .failure();
}
