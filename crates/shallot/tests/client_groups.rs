//! Groups against real node processes: an admin creates a group of five, messages go both
//! ways, a removed member sees the kicked notice but can neither read what follows nor reach
//! the group swarm, a promoted admin adds members with and without history, a member's second
//! device restored from the recovery phrase finds the group through UserGroups, the group
//! swarm never holds a member's Session ID in clear, and junk stored in the group swarm by a
//! member is dropped without losing anything. The CLI drives the restored device.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use shallot_client::groups::poll::open_group_message;
use shallot_client::groups::requests::Credential;
use shallot_client::groups::{admin::MEMBER_FLAGS, GroupStatus};
use shallot_client::messenger::PUSH_WAIT;
use shallot_client::{Messenger, ReceivedMessage};
use shallot_proto::group::{make_auth_data, GroupAdmin, GroupId, GroupInfo};
use shallot_proto::rpc::{Request, Retrieve, RetrieveAuth, Store, StoreAuth};
use shallot_proto::session::config_message::ConfigMessage;
use shallot_proto::signing::SignedRequest;
use shallot_proto::{mnemonic, Identity, Namespace, SessionId};
use support::{messenger, until, Net};

const LIMIT: Duration = Duration::from_secs(20);

/// Polls `who` until a message with `body` from group `group` shows; returns what came.
async fn wait_for(who: &Messenger, group: &GroupId, body: &str) -> Vec<ReceivedMessage> {
    let seen = std::sync::Mutex::new(Vec::new());
    until(LIMIT, body, || async {
        let got = who.receive().await.map_err(|e| e.to_string())?;
        let mut seen = seen.lock().unwrap();
        seen.extend(got);
        if seen
            .iter()
            .any(|m| m.group == Some(*group) && m.body == body)
        {
            Ok(std::mem::take(&mut *seen))
        } else {
            Err(format!(
                "not yet: {:?}",
                seen.iter().map(|m| &m.body).collect::<Vec<_>>()
            ))
        }
    })
    .await
}

/// Polls `who` until its record of `group` satisfies `check`.
async fn wait_status(
    who: &Messenger,
    group: &GroupId,
    what: &str,
    check: fn(&GroupStatus) -> bool,
) {
    until(LIMIT, what, || async move {
        let _ = who.receive().await;
        match who.group(group).await {
            Ok(g) if check(&g.record.status) => Ok(()),
            Ok(g) => Err(format!("{:?}", g.record.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

/// The group messages `who` holds, as texts.
async fn texts(who: &Messenger, group: &GroupId) -> Vec<String> {
    let id = *group;
    who.db()
        .call(move |db| db.group_messages(&id))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// Every item stored in namespace `ns` of the group swarm, retrieved raw by its admin.
async fn raw_items(
    admin: &Messenger,
    group: &GroupId,
    ns: Namespace,
) -> Vec<shallot_proto::rpc::RetrievedMessage> {
    admin.group_stored(group, ns).await.unwrap()
}

/// Stores `data` into namespace `ns` of the group swarm as member `me` with `auth`.
async fn member_store(
    client: &shallot_client::OnionClient,
    group: &GroupId,
    me: &Identity,
    auth: &shallot_proto::group::AuthData,
    ns: Namespace,
    data: Vec<u8>,
) -> Result<(), String> {
    let now = client.clock().now_ms();
    let message = SignedRequest::Store {
        namespace: ns,
        sig_timestamp: now,
    }
    .message();
    let auth = Credential::member(auth.clone()).auth(me, &message).unwrap();
    let ts = i64::try_from(now).unwrap();
    let store = Store {
        account: group.account(),
        namespace: ns,
        timestamp: ts,
        expiry: ts + 600_000,
        data,
        auth: Some(StoreAuth {
            sig_timestamp: ts,
            auth,
        }),
    };
    client
        .request_swarm(&group.account(), &Request::Store(store))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn shallot(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("shallot").unwrap();
    cmd.env_remove("SHALLOT_HOME").arg("--data-dir").arg(dir);
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One group's life, step by step.
async fn a_group_of_five_through_its_whole_life() {
    let net = Net::start(&[3, 3]).await;
    let dirs: Vec<_> = (0..9).map(|_| tempfile::tempdir().unwrap()).collect();
    // Carol has a recovery phrase: her second device is restored from it.
    let carol_phrase_seed: [u8; 16] = rand::random();
    let seeds: Vec<[u8; 32]> = (0..7)
        .map(|i| {
            if i == 2 {
                *Identity::from_recovery_seed(&carol_phrase_seed).seed()
            } else {
                rand::random()
            }
        })
        .collect();
    let ids: Vec<SessionId> = seeds
        .iter()
        .map(|s| Identity::from_seed(*s).session_id())
        .collect();
    let mut people = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        people.push(messenger(&net, Identity::from_seed(*seed), dirs[i].path()).await);
    }
    let [alice, bob, carol, dave, erin, frank, grace] = &people[..] else {
        unreachable!()
    };
    alice.set_display_name("Alice").await.unwrap();
    let members = &ids[1..5];

    // Alice creates the group; each invitee sees the invite as a request and accepts it.
    let gid = alice.create_group("Friends", members).await.unwrap();
    for who in [bob, carol, dave, erin] {
        let got = wait_for(who, &gid, "Friends").await;
        assert!(got
            .iter()
            .any(|m| m.group == Some(gid) && m.sender == ids[0]));
        let group = who.group(&gid).await.unwrap();
        assert!(matches!(group.record.status, GroupStatus::Invited { .. }));
        who.accept_group(&gid).await.unwrap();
        assert_eq!(
            who.group(&gid).await.unwrap().record.status,
            GroupStatus::Joined
        );
    }
    // Everyone has the member list and name from the group's signed configs.
    let group = bob.group(&gid).await.unwrap();
    assert_eq!(group.name(), "Friends");
    assert_eq!(group.members().members.len(), 5);
    assert!(group.admin().is_none());

    // Messages both ways.
    alice.send_to_group(&gid, "hello all").await.unwrap();
    for who in [bob, carol, dave, erin] {
        let got = wait_for(who, &gid, "hello all").await;
        assert!(got
            .iter()
            .any(|m| m.body == "hello all" && m.sender == ids[0]));
    }
    bob.send_to_group(&gid, "hi from bob").await.unwrap();
    for who in [alice, carol] {
        wait_for(who, &gid, "hi from bob").await;
    }
    // Private push covers the group's swarm: Carol's waiting receive (her own swarm and the
    // group's, each held through her onion path) returns Bob's next message, held and never
    // polled (a covered group is not polled while waiting).
    let pushed = async {
        loop {
            let waited = carol.receive_waiting(PUSH_WAIT).await.unwrap();
            if let Some(m) = waited.messages.iter().find(|m| m.body == "pushed to carol") {
                assert!(waited.waited, "a held wait, not a poll instead");
                return (m.group, m.sender);
            }
        }
    };
    let send = bob.send_to_group(&gid, "pushed to carol");
    let both = Box::pin(async { tokio::join!(pushed, send) });
    let (pushed, sent) = tokio::time::timeout(LIMIT, both)
        .await
        .expect("the group message arrives by private push");
    sent.unwrap();
    assert_eq!(pushed, (Some(gid), ids[1]));
    // Alice learnt from the invite responses that they joined.
    until(LIMIT, "accepted members", || async {
        let _ = alice.receive().await;
        let members = alice.group(&gid).await.unwrap().members();
        let pending = members
            .members
            .values()
            .filter(|m| m.invite != shallot_proto::group::SendStatus::Accepted)
            .count();
        if pending == 0 {
            Ok(())
        } else {
            Err(format!("{pending} still invited"))
        }
    })
    .await;

    // Erin is removed: she sees the kicked notice, cannot read what follows, cannot reach
    // the group swarm with her token.
    let admin = alice.group(&gid).await.unwrap().admin().unwrap();
    let erin_keys = erin
        .group(&gid)
        .await
        .unwrap()
        .keys(&Identity::from_seed(seeds[4]));
    alice.remove_from_group(&gid, &[ids[4]]).await.unwrap();
    wait_status(erin, &gid, "Erin kicked", |s| *s == GroupStatus::Kicked).await;
    let after = alice.send_to_group(&gid, "after erin").await.unwrap();
    wait_for(dave, &gid, "after erin").await;
    let stored = raw_items(alice, &gid, Namespace::GROUP_MESSAGES).await;
    let item = stored.iter().find(|m| m.hash == after.hash).unwrap();
    assert!(
        open_group_message(&erin_keys, &gid, &item.data).is_err(),
        "a removed member's keys do not open what follows"
    );
    let erin_auth = make_auth_data(&admin, &ids[4], MEMBER_FLAGS).unwrap();
    let timestamp = alice.client().clock().now_ms();
    let message = SignedRequest::Retrieve {
        namespace: Namespace::GROUP_MESSAGES,
        timestamp,
    }
    .message();
    let auth = Credential::member(erin_auth)
        .auth(&Identity::from_seed(seeds[4]), &message)
        .unwrap();
    let retrieve = Request::Retrieve(Retrieve {
        account: gid.account(),
        namespace: Namespace::GROUP_MESSAGES,
        auth: Some(RetrieveAuth { timestamp, auth }),
        last_hash: None,
        max_count: None,
        max_size: None,
        wait_ms: None,
    });
    let refused = erin.client().request_swarm(&gid.account(), &retrieve).await;
    assert!(
        refused.is_err(),
        "a revoked token cannot retrieve: {refused:?}"
    );
    assert!(!texts(erin, &gid).await.contains(&"after erin".to_owned()));
    assert!(erin.send_to_group(&gid, "still here?").await.is_err());

    // Bob is promoted; as admin he adds Frank without history and Grace with it.
    alice.promote_in_group(&gid, &ids[1]).await.unwrap();
    until(LIMIT, "Bob is an admin", || async {
        let _ = bob.receive().await;
        if bob.group(&gid).await.unwrap().admin().is_some() {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })
    .await;
    bob.invite_to_group(&gid, &[ids[5]], false).await.unwrap();
    bob.invite_to_group(&gid, &[ids[6]], true).await.unwrap();
    for who in [frank, grace] {
        wait_for(who, &gid, "Friends").await;
        who.accept_group(&gid).await.unwrap();
    }
    alice.send_to_group(&gid, "welcome").await.unwrap();
    wait_for(frank, &gid, "welcome").await;
    wait_for(grace, &gid, "welcome").await;
    let frank_texts = texts(frank, &gid).await;
    assert!(
        !frank_texts.contains(&"hello all".to_owned()),
        "no history: {frank_texts:?}"
    );
    let grace_texts = texts(grace, &gid).await;
    assert!(
        grace_texts.contains(&"hello all".to_owned()),
        "history: {grace_texts:?}"
    );
    frank
        .send_to_group(&gid, "thanks from frank")
        .await
        .unwrap();
    wait_for(alice, &gid, "thanks from frank").await;

    // Junk stored in the group swarm by a member (Dave, with his valid token): a key message
    // and a config signed by someone else, a truncated and a forged message. Nothing shows,
    // nothing is lost.
    wait_for(carol, &gid, "thanks from frank").await;
    let dave_id = Identity::from_seed(seeds[3]);
    let dave_auth = dave.group(&gid).await.unwrap().auth_data().unwrap();
    let impostor = GroupAdmin::from_seed(rand::random());
    let dave_keys = dave.group(&gid).await.unwrap().keys(&dave_id);
    let forged_keys = shallot_proto::group::rekey(&impostor, &ids[..4], 9).message;
    let forged_info = shallot_proto::group::seal_group_config(
        &ConfigMessage::new(
            99,
            GroupInfo {
                name: Some("Pwned".into()),
                ..GroupInfo::default()
            }
            .to_data(),
        ),
        None,
        &impostor,
        dave_keys.encryption_key().unwrap(),
        shallot_proto::group::GroupConfigKind::Info,
    )
    .unwrap();
    let real = &item.data;
    let junk = [
        (Namespace::GROUP_KEYS, forged_keys),
        (Namespace::GROUP_INFO, forged_info),
        (Namespace::GROUP_MESSAGES, real[..real.len() - 7].to_vec()),
        (
            Namespace::GROUP_MESSAGES,
            [rand::random::<[u8; 32]>(), rand::random()].concat(),
        ),
    ];
    for (ns, data) in junk {
        member_store(dave.client(), &gid, &dave_id, &dave_auth, ns, data)
            .await
            .unwrap();
    }
    let before = texts(carol, &gid).await;
    alice.send_to_group(&gid, "after the junk").await.unwrap();
    let got = wait_for(carol, &gid, "after the junk").await;
    assert_eq!(
        got.iter().filter(|m| m.group == Some(gid)).count(),
        1,
        "{got:?}"
    );
    let carol_group = carol.group(&gid).await.unwrap();
    assert_eq!(
        carol_group.name(),
        "Friends",
        "a config not signed by the group is ignored"
    );
    assert_eq!(carol_group.record.status, GroupStatus::Joined);
    let mut now_texts = texts(carol, &gid).await;
    now_texts.retain(|t| !before.contains(t));
    assert_eq!(now_texts, ["after the junk"]);

    // The group swarm never holds a member's Session ID in clear.
    for ns in shallot_client::groups::poll::POLLED {
        for stored in raw_items(alice, &gid, ns).await {
            for id in &ids {
                let x = id.x25519().as_bytes();
                let hex = id.to_string();
                let data = &stored.data;
                assert!(
                    !data.windows(32).any(|w| w == x),
                    "raw id in namespace {}",
                    ns.0
                );
                assert!(
                    !data.windows(hex.len()).any(|w| w == hex.as_bytes()),
                    "hex id in {}",
                    ns.0
                );
                assert!(
                    !data
                        .windows(64)
                        .any(|w| w.eq_ignore_ascii_case(&hex.as_bytes()[2..])),
                    "hex key in {}",
                    ns.0
                );
            }
        }
    }

    // Carol's second device, restored from her recovery phrase with the CLI, finds the group
    // through her UserGroups config and reads it; `group list` and `inbox` show it.
    let seed = net.nodes[0].addr.to_string();
    let phrase = mnemonic::encode(&carol_phrase_seed);
    let carol2 = dirs[8].path();
    run(shallot(carol2)
        .args(["account", "restore"])
        .args(phrase.split(' ')));
    let inbox = run(shallot(carol2).args(["inbox", "--seed-node", &seed]));
    assert!(inbox.contains("[group Friends] Alice"), "{inbox}");
    assert!(inbox.contains("hello all"), "{inbox}");
    let list = run(shallot(carol2).args(["group", "list", "--seed-node", &seed]));
    assert!(
        list.contains(&gid.to_string()) && list.contains("Friends") && list.contains("member"),
        "{list}"
    );
    run(shallot(carol2).args([
        "send",
        &gid.to_string(),
        "from carol's second device",
        "--seed-node",
        &seed,
    ]));
    wait_for(alice, &gid, "from carol's second device").await;
    let members =
        run(shallot(carol2).args(["group", "members", &gid.to_string(), "--seed-node", &seed]));
    assert!(
        members.contains(&ids[0].to_string()) && members.contains("admin"),
        "{members}"
    );
    assert!(
        !members.contains(&ids[4].to_string()),
        "Erin is gone: {members}"
    );

    // A disappearing timer: Alice's next message lives a minute on the group swarm, and
    // Dave's copy disappears a minute after it was sent (the group's signed setting).
    alice.set_group_timer(&gid, 60).await.unwrap();
    until(LIMIT, "the timer reaches Dave", || async {
        let _ = dave.receive().await;
        let secs = dave
            .group(&gid)
            .await
            .unwrap()
            .info()
            .disappear_after_send_secs;
        if secs == 60 {
            Ok(())
        } else {
            Err(secs.to_string())
        }
    })
    .await;
    let brief = alice.send_to_group(&gid, "gone in a minute").await.unwrap();
    wait_for(dave, &gid, "gone in a minute").await;
    let hash = brief.hash;
    let expires = dave
        .db()
        .call(move |db| db.group_message_expires(&hash))
        .await
        .unwrap();
    assert_eq!(expires, Some(brief.timestamp + 60_000));
    let stored = raw_items(alice, &gid, Namespace::GROUP_MESSAGES).await;
    let swarm_copy = stored.iter().find(|m| m.hash == brief.hash).unwrap();
    let lives = swarm_copy.expiration - brief.timestamp;
    assert!((60_000..70_000).contains(&lives), "TTL {lives} ms");

    // Rename, then destroy: members follow.
    alice.rename_group(&gid, "Old friends").await.unwrap();
    until(LIMIT, "renamed", || async {
        let _ = dave.receive().await;
        let name = dave.group(&gid).await.unwrap().name();
        if name == "Old friends" {
            Ok(())
        } else {
            Err(name)
        }
    })
    .await;
    alice.destroy_group(&gid).await.unwrap();
    wait_status(dave, &gid, "destroyed", |s| *s == GroupStatus::Destroyed).await;
}
