//! Group admins and members on real node processes: two admins change the group at the same
//! moment (one renames it, the other adds a member, which also changes the key) and both
//! changes survive, the admins ending with byte-identical configs; then reactions and quoted
//! replies go both ways in the group, with Carol through the `shallot` CLI (`group accept`,
//! `inbox`, `react`, `reply`, `group members`) and Alice and Bob through the library.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

mod support;

use std::path::Path;
use std::time::Duration;

use shallot_client::groups::GroupStatus;
use shallot_client::{AccountStore, Messenger, Update};
use shallot_proto::group::{open_group_config, GroupConfigKind};
use shallot_proto::group::{GroupId, SendStatus};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{Identity, Namespace, SessionId};
use support::{cli, messenger, run_ok, until, user, Net};

const LIMIT: Duration = Duration::from_secs(30);

/// The `[id]` `shallot inbox` printed on the line containing `text`.
fn id_of(inbox: &str, text: &str) -> Option<String> {
    let line = inbox.lines().find(|l| l.contains(text))?;
    let start = line.find('[')? + 1;
    let end = start + line[start..].find(']')?;
    Some(line[start..end].to_owned())
}

/// Receives on `who` until a group message with `body` shows; returns its hash.
async fn wait_for(who: &Messenger, group: &GroupId, body: &str) -> MessageHash {
    until(LIMIT, body, || async {
        let got = who.receive().await.map_err(|e| e.to_string())?;
        got.iter()
            .find(|m| m.group == Some(*group) && m.body == body)
            .map(|m| m.hash)
            .ok_or_else(|| "not yet".to_owned())
    })
    .await
}

/// Runs Carol's `inbox` until its output satisfies `check`; returns everything it printed.
async fn carol_inbox(dir: &Path, seed: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let all = std::sync::Mutex::new(String::new());
    until(LIMIT, what, || async {
        let out = run_ok(cli(dir).args(["inbox", "--seed-node", seed]));
        let mut all = all.lock().unwrap();
        all.push_str(&out);
        if check(&all) {
            Ok(all.clone())
        } else {
            Err(all.clone())
        }
    })
    .await
}

/// Both admins poll until they hold the same single version of each config (nothing left to
/// merge) that `check` accepts.
async fn settle(
    alice: &Messenger,
    bob: &Messenger,
    gid: &GroupId,
    what: &str,
    check: fn(&shallot_client::groups::Group) -> bool,
) {
    until(LIMIT, what, || async {
        let _ = alice.receive().await;
        let _ = bob.receive().await;
        let (a, b) = (
            alice.group(gid).await.unwrap(),
            bob.group(gid).await.unwrap(),
        );
        if a.config_conflict() || b.config_conflict() {
            return Err("concurrent versions not merged yet".into());
        }
        if a.record.info != b.record.info || a.record.members != b.record.members {
            return Err("the admins hold different configs".into());
        }
        if !check(&a) {
            return Err(format!(
                "not yet: {:?} {:?}",
                a.name(),
                a.members().members.len()
            ));
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_at_once_then_reactions_and_replies_in_the_group() {
    let net = Net::start(&[3, 3]).await;
    let seed = net.nodes[0].addr.to_string();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let alice_seed: [u8; 32] = rand::random();
    let alice = messenger(&net, Identity::from_seed(alice_seed), dirs[0].path()).await;
    let bob = messenger(&net, user(), dirs[1].path()).await;
    alice.set_display_name("Alice").await.unwrap();
    let carol_dir = dirs[2].path();
    run_ok(cli(carol_dir).args(["account", "new"]));
    let carol: SessionId = AccountStore::new(carol_dir).load().unwrap().session_id();
    let dave = user().session_id();
    let (a, b) = (alice.session_id(), bob.session_id());

    // Alice creates the group; Bob (library) and Carol (CLI) accept; Bob becomes an admin.
    let gid = alice.create_group("Friends", &[b, carol]).await.unwrap();
    let g = gid.to_string();
    wait_for(&bob, &gid, "Friends").await;
    bob.accept_group(&gid).await.unwrap();
    carol_inbox(carol_dir, &seed, "Carol's invite", |out| out.contains(&g)).await;
    run_ok(cli(carol_dir).args(["group", "accept", &g, "--seed-node", &seed]));
    until(LIMIT, "both accepted", || async {
        let _ = alice.receive().await;
        let members = alice.group(&gid).await.unwrap().members();
        let pending = members
            .members
            .values()
            .filter(|m| m.invite != SendStatus::Accepted)
            .count();
        if pending == 0 {
            Ok(())
        } else {
            Err(format!("{pending} still invited"))
        }
    })
    .await;
    alice.promote_in_group(&gid, &b).await.unwrap();
    until(LIMIT, "Bob is an admin", || async {
        let _ = bob.receive().await;
        match bob.group(&gid).await.unwrap() {
            g if g.admin().is_some() && g.record.status == GroupStatus::Joined => Ok(()),
            _ => Err("not yet".into()),
        }
    })
    .await;
    settle(&alice, &bob, &gid, "a quiet start", |g| {
        g.name() == "Friends"
    })
    .await;

    // 1. At the same moment, without polling in between: Alice renames the group, Bob adds
    // Dave (a new key). Both push Info version n+1: a conflict whatever the order.
    let newcomers = [dave];
    let (renamed, added) = tokio::join!(
        alice.rename_group(&gid, "Best friends"),
        bob.invite_to_group(&gid, &newcomers, false)
    );
    renamed.unwrap();
    added.unwrap();
    // Each admin's poll merges the other's change and pushes the merge (the same bytes from
    // either); both end with identical single versions holding both changes.
    settle(&alice, &bob, &gid, "both changes merged", |g| {
        g.name() == "Best friends" && g.members().members.len() == 4
    })
    .await;
    let merged = alice.group(&gid).await.unwrap();
    assert!(merged.members().members.contains_key(&dave));
    assert_eq!(merged.members().members.len(), 4, "Alice, Bob, Carol, Dave");
    // The swarm shows what happened: two concurrent Info versions of one seqno, and a merge
    // one above them that absorbs both (its lagged diffs name them).
    let keys = merged.keys(&Identity::from_seed(alice_seed));
    let versions: Vec<_> = alice
        .group_stored(&gid, Namespace::GROUP_INFO)
        .await
        .unwrap()
        .iter()
        .filter_map(|item| {
            open_group_config(
                &item.data,
                keys.decryption_keys(),
                &gid,
                GroupConfigKind::Info,
            )
            .ok()
        })
        .map(|opened| opened.parsed)
        .collect();
    let top = versions.iter().max_by_key(|v| v.seqno_hash()).unwrap();
    let concurrent: Vec<_> = versions
        .iter()
        .filter(|v| v.message.seqno == top.message.seqno - 1)
        .collect();
    assert_eq!(concurrent.len(), 2, "the rename and the re-keyed Info");
    for v in concurrent {
        assert!(top.message.lagged.iter().any(|l| l.key() == v.seqno_hash()));
    }
    // Carol, a member, reads both changes.
    until(LIMIT, "Carol sees both changes", || async {
        let members = run_ok(cli(carol_dir).args(["group", "members", &g, "--seed-node", &seed]));
        let list = run_ok(cli(carol_dir).args(["group", "list", "--seed-node", &seed]));
        if members.contains(&dave.to_string()) && list.contains("Best friends") {
            Ok(())
        } else {
            Err(format!("{list}{members}"))
        }
    })
    .await;

    // 2. Reactions and quoted replies in the group. Carol reacts to Alice's message with the
    // CLI; Alice sees it on her message.
    let lunch = alice.send_to_group(&gid, "lunch?").await.unwrap();
    let inbox = carol_inbox(carol_dir, &seed, "lunch?", |out| out.contains("lunch?")).await;
    assert!(inbox.contains("[group Best friends]"), "{inbox}");
    let lunch_id = id_of(&inbox, "lunch?").unwrap();
    assert!(lunch.hash.to_string().starts_with(&lunch_id), "{inbox}");
    let out = run_ok(cli(carol_dir).args(["react", &lunch_id, "👍", "--seed-node", &seed]));
    assert!(out.contains("in group Best friends"), "{out}");
    let lunch_hash = lunch.hash;
    until(LIMIT, "Carol's reaction at Alice", || async {
        let _ = alice.receive().await;
        let reactions = alice
            .db()
            .call(move |db| db.reactions(&lunch_hash))
            .await
            .unwrap();
        if reactions
            .iter()
            .any(|r| r.author == carol && r.emoji == "👍")
        {
            Ok(())
        } else {
            Err(format!("{reactions:?}"))
        }
    })
    .await;
    assert!(alice.take_updates().iter().any(|u| matches!(
        u,
        Update::Reaction { group: Some(g), author, removed: false, .. } if *g == gid && *author == carol
    )));

    // Carol replies quoting it; Alice and Bob get the quote.
    let out = run_ok(cli(carol_dir).args(["reply", &lunch_id, "noon?", "--seed-node", &seed]));
    assert!(out.contains("the group's swarm"), "{out}");
    let noon = wait_for(&alice, &gid, "noon?").await;
    let quote = alice
        .db()
        .call(move |db| db.quote(&noon))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (quote.timestamp, quote.author, quote.text.as_deref()),
        (lunch.timestamp, a, Some("lunch?"))
    );
    wait_for(&bob, &gid, "noon?").await;

    // Bob reacts to Carol's reply and Alice answers it; Carol's inbox shows both.
    let reacted = bob
        .react(&noon.to_string()[..12], "🎉", false)
        .await
        .unwrap();
    assert_eq!(reacted.body(), "noon?");
    alice.reply(&noon.to_string(), "yes, noon").await.unwrap();
    let inbox = carol_inbox(carol_dir, &seed, "the reaction and the answer", |out| {
        out.contains("reacted 🎉 on [") && out.contains("yes, noon")
    })
    .await;
    assert!(inbox.contains("(group Best friends)"), "{inbox}");
    assert!(inbox.contains("    > noon?\n    yes, noon"), "{inbox}");

    // Taking a reaction back reaches the others too.
    run_ok(cli(carol_dir).args(["react", &lunch_id, "👍", "--remove", "--seed-node", &seed]));
    until(LIMIT, "the removal at Alice", || async {
        let _ = alice.receive().await;
        let reactions = alice
            .db()
            .call(move |db| db.reactions(&lunch_hash))
            .await
            .unwrap();
        if reactions.is_empty() {
            Ok(())
        } else {
            Err(format!("{reactions:?}"))
        }
    })
    .await;
}
