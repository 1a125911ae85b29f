//! Read receipts, typing indicators, emoji reactions and quoted replies on real node processes,
//! both ways between two accounts: Alice through the library, Bob through the `shallot` CLI
//! (`receipts`, `inbox`, `react`, `reply`, `send --wait-read`) and, for typing, the library on
//! the same data directory.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use shallot_client::{AccountStore, MessageState, Messenger, Update};
use shallot_proto::SessionId;
use support::{cli, messenger, run_ok, user, Net};

/// The `[id]` `shallot inbox` printed on the line containing `text`.
fn id_of(inbox: &str, text: &str) -> String {
    let line = inbox
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{inbox}"));
    let start = line.find('[').unwrap() + 1;
    let end = start + line[start..].find(']').unwrap();
    line[start..end].to_owned()
}

/// Receives on `m` until a message with `body` shows; returns its hash.
async fn receive_until(m: &Messenger, body: &str) -> shallot_proto::message_hash::MessageHash {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = m.receive().await.unwrap();
        if let Some(found) = got.iter().find(|r| r.body == body) {
            return found.hash;
        }
        assert!(Instant::now() < deadline, "{body:?} never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Receives on `m` until `check` holds.
async fn receive_until_true(m: &Messenger, what: &str, check: impl Fn(&Messenger) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        m.receive().await.unwrap();
        if check(m) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_typing_reactions_and_replies_both_ways() {
    let started = Instant::now();
    let net = Net::start(&[3, 3]).await;
    let seed = net.nodes[0].addr.to_string();
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = messenger(&net, user(), alice_dir.path()).await;
    let alice_sid = alice.session_id();
    let a = alice_sid.to_string();
    let bob_path = bob_dir.path();

    // Bob: a CLI account; read receipts are off until he turns them on.
    run_ok(cli(bob_path).args(["account", "new"]));
    let bob_sid: SessionId = AccountStore::new(bob_path).load().unwrap().session_id();
    let out = run_ok(cli(bob_path).arg("receipts"));
    assert!(out.contains("Read receipts are off"), "{out}");
    let out = run_ok(cli(bob_path).args(["receipts", "on"]));
    assert!(out.contains("Read receipts are on"), "{out}");

    // Bob writes first; Alice accepts and turns her receipts on.
    run_ok(cli(bob_path).args(["send", &a, "hi alice", "--seed-node", &seed]));
    let hi = receive_until(&alice, "hi alice").await;
    alice.accept(&bob_sid).await.unwrap();
    alice.set_read_receipts(true).await.unwrap();

    eprintln!("setup done at {:?}", started.elapsed());
    // 1. Alice → Bob, read by Bob's `inbox`: his READ receipt moves it to read at Alice's.
    let lunch = alice.send(&bob_sid, "lunch?").await.unwrap();
    let inbox = run_ok(cli(bob_path).args(["inbox", "--seed-node", &seed]));
    let lunch_id = id_of(&inbox, "lunch?");
    assert!(lunch.hash.to_string().starts_with(&lunch_id), "{inbox}");
    assert!(
        alice
            .wait_read(&lunch.hash, Duration::from_secs(15))
            .await
            .unwrap(),
        "Bob's read receipt"
    );
    assert!(alice.take_updates().iter().any(|u| matches!(
        u,
        Update::Receipt { read: true, messages, .. } if messages == &[lunch.hash]
    )));

    eprintln!("1 receipt done at {:?}", started.elapsed());
    // 2. Bob → Alice with --wait-read: Alice reads it (her receipts are on) and the command
    // succeeds.
    let child = cli(bob_path)
        .args([
            "send",
            &a,
            "on my way",
            "--wait-read",
            "20",
            "--seed-node",
            &seed,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let way = receive_until(&alice, "on my way").await;
    let outcome = alice.mark_read(&[way]).await.unwrap();
    assert_eq!((outcome.read, outcome.receipts), (1, 1));
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("Read by {alice_sid}")), "{stdout}");

    eprintln!("2 wait-read done at {:?}", started.elapsed());
    // ... and without a reader it times out, non-zero, saying why.
    let out = cli(bob_path)
        .args([
            "send",
            &a,
            "anyone?",
            "--wait-read",
            "2",
            "--seed-node",
            &seed,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no read receipt from"), "{stderr}");
    receive_until(&alice, "anyone?").await;
    // Bob's inbox shows the receipts it takes in.
    alice.mark_read(&[hi]).await.unwrap();
    let inbox = run_ok(cli(bob_path).args(["inbox", "--seed-node", &seed]));
    assert!(
        inbox.contains(&format!("read by {alice_sid}: [")),
        "{inbox}"
    );
    assert!(inbox.contains("] hi alice"), "{inbox}");

    eprintln!("2 timeout done at {:?}", started.elapsed());
    // 3. Reactions, both ways. Bob (CLI) reacts to Alice's message...
    let out = run_ok(cli(bob_path).args(["react", &lunch_id, "👍", "--seed-node", &seed]));
    assert!(out.contains("Sent reaction 👍"), "{out}");
    receive_until_true(&alice, "Bob's reaction", |m| {
        m.take_updates().iter().any(|u| {
            matches!(u, Update::Reaction { emoji, removed: false, author, .. }
                if emoji == "👍" && *author == bob_sid)
        })
    })
    .await;
    let reactions = alice.db().call(move |db| db.reactions(&lunch.hash)).await;
    assert_eq!(reactions.unwrap()[0].author, bob_sid);
    // ... and takes it back.
    run_ok(cli(bob_path).args(["react", &lunch_id, "👍", "--remove", "--seed-node", &seed]));
    receive_until_true(&alice, "the removal", |m| {
        m.take_updates()
            .iter()
            .any(|u| matches!(u, Update::Reaction { removed: true, .. }))
    })
    .await;
    let reactions = alice.db().call(move |db| db.reactions(&lunch.hash)).await;
    assert!(reactions.unwrap().is_empty());
    // Alice reacts to Bob's first message; Bob's inbox shows it.
    let reacted = alice
        .react(&hi.to_string()[..12], "🎉", false)
        .await
        .unwrap();
    assert_eq!(reacted.body(), "hi alice");
    let inbox = run_ok(cli(bob_path).args(["inbox", "--seed-node", &seed]));
    assert!(inbox.contains("reacted 🎉 on ["), "{inbox}");

    eprintln!("3 reactions done at {:?}", started.elapsed());
    // 4. Replies, both ways. Bob replies to "lunch?" with the CLI...
    let out = run_ok(cli(bob_path).args(["reply", &lunch_id, "noon?", "--seed-node", &seed]));
    assert!(out.contains("Replied"), "{out}");
    let noon = receive_until(&alice, "noon?").await;
    let quote = alice
        .db()
        .call(move |db| db.quote(&noon))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (quote.timestamp, quote.author, quote.text.as_deref()),
        (lunch.timestamp, alice_sid, Some("lunch?"))
    );
    // ... and Alice replies to his reply; Bob's inbox shows what it quotes.
    alice.reply(&noon.to_string(), "yes, noon").await.unwrap();
    let inbox = run_ok(cli(bob_path).args(["inbox", "--seed-node", &seed]));
    assert!(inbox.contains("    > noon?\n    yes, noon"), "{inbox}");

    eprintln!("4 replies done at {:?}", started.elapsed());
    // 5. Typing, both ways (Bob through the library on his data directory).
    let bob_identity = AccountStore::new(bob_path).load().unwrap();
    let bob = messenger(&net, bob_identity, bob_path).await;
    assert!(alice.send_typing(&bob_sid, true).await.unwrap());
    receive_until_true(&bob, "Alice typing", |m| m.is_typing(&alice_sid)).await;
    assert!(alice.send_typing(&bob_sid, false).await.unwrap());
    receive_until_true(&bob, "Alice stopped", |m| !m.is_typing(&alice_sid)).await;
    assert!(bob.send_typing(&alice_sid, true).await.unwrap());
    receive_until_true(&alice, "Bob typing", |m| m.is_typing(&bob_sid)).await;
    // His message ends it; typing indicators are never stored as messages.
    bob.send(&alice_sid, "done typing").await.unwrap();
    receive_until(&alice, "done typing").await;
    assert!(!alice.is_typing(&bob_sid));
    assert_eq!(
        alice
            .db()
            .message(&lunch.hash)
            .await
            .unwrap()
            .unwrap()
            .state,
        MessageState::Read
    );
    // A stranger gets no typing indicator.
    let carol_dir = tempfile::tempdir().unwrap();
    let carol = messenger(&net, user(), carol_dir.path()).await;
    assert!(!alice.send_typing(&carol.session_id(), true).await.unwrap());

    eprintln!("client_receipts took {:?}", started.elapsed());
}
