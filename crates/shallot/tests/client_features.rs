//! Session features on real node processes: message requests (accept, decline, block),
//! disappearing messages (after read: gone from every swarm member once the timer runs out),
//! unsend (delete for everyone) and wiping our swarm, plus the CLI commands for them.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use shallot_client::{ConversationState, Disappearing, Messenger};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{Identity, SessionId};
use support::{messenger, user};

fn bodies(messages: &[shallot_client::ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

/// Whether any member of `m`'s swarm still holds `hash` (signed retrieves from each one).
async fn held_anywhere(m: &Messenger, hash: &MessageHash) -> bool {
    let members = m.client().swarm(&m.session_id().account()).await.unwrap();
    assert!(!members.is_empty());
    for member in &members {
        if m.peek_node(member).await.unwrap().iter().any(|h| h == hash) {
            return true;
        }
    }
    false
}

/// What `m`'s swarm holds in its inbox (every member asked: the one a store went to has it at
/// once): each message's hash and expiry (ms).
async fn inbox_expiries(m: &Messenger) -> Vec<(MessageHash, u64)> {
    let members = m.client().swarm(&m.session_id().account()).await.unwrap();
    let mut held: Vec<(MessageHash, u64)> = Vec::new();
    for member in &members {
        for (hash, expiry) in m.peek_node_expiries(member).await.unwrap() {
            if !held.iter().any(|(h, _)| *h == hash) {
                held.push((hash, expiry));
            }
        }
    }
    held
}

async fn state(m: &Messenger, who: &SessionId) -> Option<ConversationState> {
    m.db().conversation_state(who).await.unwrap()
}

fn shallot(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("shallot").unwrap();
    cmd.env_remove("SHALLOT_HOME").arg("--data-dir").arg(dir);
    cmd
}

fn cli_session_id(dir: &Path) -> SessionId {
    let out = run_ok(shallot(dir).args(["account", "show", "--json"]));
    let show: serde_json::Value = serde_json::from_str(&out).unwrap();
    show["session_id"].as_str().unwrap().parse().unwrap()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_disappearing_unsend_and_wipe() {
    let net = LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms: vec![3, 3],
        subnet: 235,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let ids = [user(), user(), user(), user()];
    let sids: Vec<SessionId> = ids.iter().map(Identity::session_id).collect();
    let (alice_sid, bob_sid, carol_sid, dave_sid) = (sids[0], sids[1], sids[2], sids[3]);
    let mut ms = Vec::new();
    for (id, dir) in ids.into_iter().zip(&dirs) {
        ms.push(messenger(&net, id, dir.path()).await);
    }
    let (alice, bob, carol, dave) = (&ms[0], &ms[1], &ms[2], &ms[3]);

    // 1. Message requests. A stranger's message is a request; sending makes a contact.
    // Alice's display name travels with her messages (control characters are cleaned out).
    assert_eq!(
        alice.set_display_name(" Alice\u{7} ✨ ").await.unwrap(),
        "Alice ✨"
    );
    assert!(alice.set_display_name(&"x".repeat(101)).await.is_err());
    assert_eq!(
        alice.display_name().await.unwrap().as_deref(),
        Some("Alice ✨")
    );
    alice.send(&bob_sid, "hi bob").await.unwrap();
    carol.send(&bob_sid, "buy my stuff").await.unwrap();
    dave.send(&bob_sid, "spam 1").await.unwrap();
    assert_eq!(
        state(alice, &bob_sid).await,
        Some(ConversationState::Accepted)
    );
    let mut got = bodies(&bob.receive().await.unwrap())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    got.sort();
    assert_eq!(got, ["buy my stuff", "hi bob", "spam 1"]);
    for who in [&alice_sid, &carol_sid, &dave_sid] {
        assert_eq!(state(bob, who).await, Some(ConversationState::Requested));
    }
    assert_eq!(
        bob.db().contact_name(&alice_sid).await.unwrap().as_deref(),
        Some("Alice ✨")
    );
    assert_eq!(bob.db().contact_name(&carol_sid).await.unwrap(), None);
    // Bob's name reaches Alice with his acceptance.
    bob.set_display_name("Bob").await.unwrap();
    bob.accept(&alice_sid).await.unwrap();
    assert_eq!(
        state(bob, &alice_sid).await,
        Some(ConversationState::Accepted)
    );
    assert!(
        alice.receive().await.unwrap().is_empty(),
        "the approval is not a visible message"
    );
    assert_eq!(
        alice.db().contact_name(&bob_sid).await.unwrap().as_deref(),
        Some("Bob")
    );
    bob.decline(&carol_sid).await.unwrap();
    assert_eq!(
        state(bob, &carol_sid).await,
        Some(ConversationState::Declined)
    );
    assert!(bob.db().messages(&carol_sid).await.unwrap().is_empty());
    bob.block(&dave_sid).await.unwrap();
    dave.send(&bob_sid, "spam 2").await.unwrap();
    carol.send(&bob_sid, "please?").await.unwrap();
    assert_eq!(bodies(&bob.receive().await.unwrap()), ["please?"]);
    assert!(bob.db().messages(&dave_sid).await.unwrap().is_empty());
    assert_eq!(
        state(bob, &dave_sid).await,
        Some(ConversationState::Blocked)
    );
    assert_eq!(
        state(bob, &carol_sid).await,
        Some(ConversationState::Requested)
    );

    // 2. Disappearing after read (10 s, the network minimum TTL).
    // Setting the timer tells Bob's client, which adopts it for the messages Bob sends.
    let stored = alice
        .set_disappearing(&bob_sid, Disappearing::AfterRead(10))
        .await
        .unwrap();
    assert!(stored > 0);
    let secret = alice.send(&bob_sid, "self-destructs").await.unwrap();
    let got = bob.receive().await.unwrap();
    assert_eq!(bodies(&got), ["self-destructs"], "the update is not shown");
    assert_eq!(
        bob.db().disappearing(&alice_sid).await.unwrap(),
        Disappearing::AfterRead(10)
    );
    let read_at = Instant::now();
    assert!(bob.db().expires(&secret.hash).await.unwrap().is_some());
    assert!(
        held_anywhere(bob, &secret.hash).await,
        "still there before the timer"
    );
    // And after send: the copy in Bob's swarm is stored with a 10 s TTL.
    alice
        .set_disappearing(&bob_sid, Disappearing::AfterSend(10))
        .await
        .unwrap();
    let brief = alice.send(&bob_sid, "brief").await.unwrap();
    assert_eq!(bodies(&bob.receive().await.unwrap()), ["brief"]);
    assert!(bob.db().expires(&brief.hash).await.unwrap().is_some());
    assert_eq!(
        bob.db().disappearing(&alice_sid).await.unwrap(),
        Disappearing::AfterSend(10)
    );
    // A reaction in that conversation disappears with it: its copy in Bob's swarm has the same
    // 10 s TTL, not the 14 days of a lasting message.
    let before = inbox_expiries(bob).await;
    alice
        .react(&brief.hash.to_string(), "👍", false)
        .await
        .unwrap();
    let sent_by = alice.client().clock().now_ms();
    let after = inbox_expiries(bob).await;
    let new: Vec<u64> = after
        .iter()
        .filter(|(hash, _)| !before.iter().any(|(h, _)| h == hash))
        .map(|&(_, expiry)| expiry)
        .collect();
    assert_eq!(new.len(), 1, "one reaction stored: {new:?}");
    assert!(
        new[0] <= sent_by + 10_000,
        "reaction expires {new:?}, sent by {sent_by}"
    );
    assert!(
        bob.receive().await.unwrap().is_empty(),
        "a reaction is no message"
    );
    alice
        .set_disappearing(&bob_sid, Disappearing::Off)
        .await
        .unwrap();
    assert!(bob.receive().await.unwrap().is_empty());
    assert_eq!(
        bob.db().disappearing(&alice_sid).await.unwrap(),
        Disappearing::Off
    );
    // A stranger's timer update creates nothing.
    dave.set_disappearing(&carol_sid, Disappearing::AfterSend(60))
        .await
        .unwrap();
    assert!(carol.receive().await.unwrap().is_empty());
    assert_eq!(state(carol, &dave_sid).await, None);

    // 3. Unsend, while the timer runs.
    let oops = alice.send(&bob_sid, "oops").await.unwrap();
    assert_eq!(bodies(&bob.receive().await.unwrap()), ["oops"]);
    let sync = alice.db().sync_hash(&oops.hash).await.unwrap().unwrap();
    assert!(held_anywhere(alice, &sync).await);
    let unsent = alice.unsend(&oops.hash.to_string()[..12]).await.unwrap();
    assert_eq!(unsent.id, oops.hash);
    assert!(alice.db().message(&oops.hash).await.unwrap().is_none());
    assert!(!held_anywhere(alice, &sync).await, "sync copy deleted");
    assert!(bob.receive().await.unwrap().is_empty(), "nothing shown");
    assert!(bob.db().message(&oops.hash).await.unwrap().is_none());
    assert!(
        !held_anywhere(bob, &oops.hash).await,
        "recipient copy deleted"
    );
    // Only the author can unsend: Bob cannot unsend Alice's message.
    bob.send(&alice_sid, "ok").await.unwrap();
    assert!(bob.unsend(&secret.hash.to_string()).await.is_err());

    // CLI: duration parsing and requests, while the timer runs.
    let seed = net.nodes[1].addr.to_string();
    let cli_dir = tempfile::tempdir().unwrap();
    run_ok(shallot(cli_dir.path()).args(["account", "new"]));
    shallot(cli_dir.path())
        .args(["disappear", &alice_sid.to_string(), "5s"])
        .assert()
        .failure();
    let out = run_ok(shallot(cli_dir.path()).args(["requests", "--seed-node", &seed]));
    assert!(out.contains("No message requests"), "{out}");
    let out = run_ok(shallot(cli_dir.path()).args(["disappear", &alice_sid.to_string(), "5m"]));
    assert!(out.contains("300s after they are sent"), "{out}");
    let out = run_ok(shallot(cli_dir.path()).args(["profile", "--name", "Cli User"]));
    assert!(out.contains("\"Cli User\""), "{out}");
    let out = run_ok(shallot(cli_dir.path()).arg("profile"));
    assert!(out.contains("Display name: Cli User"), "{out}");
    let cli_sid = cli_session_id(cli_dir.path());
    carol.set_display_name("Carol").await.unwrap();
    carol.send(&cli_sid, "hello cli").await.unwrap();
    let out = run_ok(shallot(cli_dir.path()).arg("requests"));
    // The request shows the name the message carried (the message tells it, so a request may).
    assert!(
        out.contains(&format!("Request from Carol ({carol_sid})")),
        "{out}"
    );
    assert!(out.contains("hello cli"), "{out}");
    let out = run_ok(shallot(cli_dir.path()).args(["accept", &carol_sid.to_string()]));
    assert!(out.contains("Accepted"), "{out}");
    let out = run_ok(shallot(cli_dir.path()).args(["requests"]));
    assert!(out.contains("No message requests"), "{out}");
    let out = run_ok(shallot(cli_dir.path()).args(["send", &carol_sid.to_string(), "typo"]));
    let id = out
        .trim()
        .rsplit("(id ")
        .next()
        .unwrap()
        .trim_end_matches(')');
    assert_eq!(bodies(&carol.receive().await.unwrap()), ["typo"]);
    let out = run_ok(shallot(cli_dir.path()).args(["unsend", &id[..10]]));
    assert!(out.contains("Unsent"), "{out}");
    assert!(carol.receive().await.unwrap().is_empty());
    assert!(
        carol
            .db()
            .message(&id.parse().unwrap())
            .await
            .unwrap()
            .is_none(),
        "unsent via the CLI"
    );
    shallot(cli_dir.path())
        .args(["wipe"])
        .write_stdin("no\n")
        .assert()
        .failure();
    let out = run_ok(shallot(cli_dir.path()).args(["wipe", "--yes"]));
    assert!(out.contains("Deleted everything"), "{out}");

    // 2, continued: after the timer (plus the nodes' 10 s expiry sweep) the copy is gone from
    // every member of Bob's swarm, and locally.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(read_at.elapsed())).await;
    // `brief` expires a few seconds after `secret`; the sweep runs every 10 s on top.
    let deadline = Instant::now() + Duration::from_secs(30);
    while held_anywhere(bob, &secret.hash).await || held_anywhere(bob, &brief.hash).await {
        assert!(Instant::now() < deadline, "expired message still stored");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bob.receive().await.unwrap();
    assert!(bob.db().message(&secret.hash).await.unwrap().is_none());
    assert!(bob.db().message(&brief.hash).await.unwrap().is_none());
    let secret_sync = alice.db().sync_hash(&secret.hash).await.unwrap().unwrap();
    assert!(!held_anywhere(alice, &secret_sync).await);

    // Wipe: nothing left in Bob's swarm.
    bob.wipe().await.unwrap();
    let members = bob.client().swarm(&bob_sid.account()).await.unwrap();
    for member in &members {
        assert!(bob.peek_node(member).await.unwrap().is_empty());
    }
}
