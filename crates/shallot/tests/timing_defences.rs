//! The timing defences against real node processes: relays that wait a random time before
//! relaying (`[onion] relay_delay_ms`), client send jitter and backdated timestamps, and cover
//! traffic (dummy sends over the client's paths). How much each one helps is measured by `shallot bench timing`.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use shallot_client::{ClientConfig, Db, Messenger, NetworkClock, OnionClient, Seed};
use shallot_node::observe::Role;
use shallot_proto::onion::{build_to_node, decode_snode_response, EncType, NodeKeys};
use shallot_proto::Identity;
use support::{user, Net};

fn keys(net: &Net, i: usize) -> NodeKeys {
    NodeKeys {
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
    }
}

/// A messenger for `identity` on `net` with the timing settings of `config`.
async fn messenger_with(
    net: &Net,
    identity: Identity,
    dir: &std::path::Path,
    config: ClientConfig,
) -> Messenger {
    let config = ClientConfig {
        seeds: net.nodes.iter().map(|n| Seed::Node(n.addr)).collect(),
        min_refresh_agreement: net.nodes.len(),
        ..config
    };
    let client = OnionClient::bootstrap(config, NetworkClock::default())
        .await
        .unwrap();
    let db = Db::open_in_dir(dir, &identity).unwrap();
    Messenger::new(identity, client, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_wait_a_random_bounded_time_before_relaying() {
    // Each of the three relaying hops (guard, middle, last) waits 0–250 ms.
    let net = Net::start_with(&[1, 1, 1, 1], &["--relay-delay-ms", "250"]).await;
    let path: Vec<NodeKeys> = (0..3).map(|i| keys(&net, i)).collect();
    let started = Instant::now();
    for _ in 0..10 {
        let info = json!({"method": "info", "params": {}}).to_string();
        let onion = build_to_node(
            &path,
            &keys(&net, 3),
            info.as_bytes(),
            EncType::XChaCha20,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        let one = Instant::now();
        let response = net
            .http
            .post(net.nodes[0].url("/onion_req/v2"))
            .body(onion.body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.unwrap();
        let reply = decode_snode_response(&onion.response_key, &body).unwrap();
        assert_eq!(reply.status, 200);
        // Three waits of at most 250 ms, plus generous room for a loaded machine.
        assert!(one.elapsed() < Duration::from_millis(750 + 5000));
    }
    // 30 waits uniform in 0–250 ms sum to 3.75 s on average; below 1.5 s with probability
    // 6^30/30! < 1e-9. Without the delay, ten requests take a fraction of that.
    let total = started.elapsed();
    assert!(total >= Duration::from_millis(1500), "{total:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_waits_backdating_keeps_order_and_dummies_look_like_sends() {
    let net = Net::start_observed(&[3, 3]).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (alice_id, bob_id) = (user(), user());
    let bob_sid = bob_id.session_id();
    let (alice_ip, bob_ip): (IpAddr, IpAddr) = ([127, 0, 207, 1].into(), [127, 0, 207, 2].into());
    let jitter = Duration::from_millis(300);
    let alice = messenger_with(
        &net,
        alice_id,
        dirs[0].path(),
        ClientConfig {
            send_jitter: jitter,
            source_ip: Some(alice_ip),
            ..ClientConfig::default()
        },
    )
    .await;
    // Bob sends dummies, at 600 a minute (about ten a second), and backdates his messages.
    let bob = messenger_with(
        &net,
        bob_id,
        dirs[1].path(),
        ClientConfig {
            cover_per_minute: 600.0,
            backdate: Duration::from_secs(2),
            source_ip: Some(bob_ip),
            ..ClientConfig::default()
        },
    )
    .await;
    bob.client().ensure_paths().await.unwrap();
    let cover = bob.client().start_cover().unwrap();
    assert!(
        alice.client().start_cover().is_none(),
        "no cover traffic unless asked for"
    );

    let mut waited = Duration::ZERO;
    let mut timestamps = Vec::new();
    for i in 0..10 {
        let started = Instant::now();
        let sent = alice
            .send(&bob_sid, &format!("jittered {i}"))
            .await
            .unwrap();
        assert!(sent.stored_on >= 1);
        assert!(sent.delayed <= jitter, "{:?}", sent.delayed);
        assert!(started.elapsed() >= sent.delayed);
        waited += sent.delayed;
        timestamps.push((sent.timestamp, sent.delayed));
    }
    // Ten waits uniform in 0–300 ms: below 300 ms in total with probability 1/10! < 3e-7.
    assert!(waited >= jitter, "{waited:?}");
    // A second at ten dummy sends a second (two requests each) leaves no dummy unsent with
    // probability e^-10; the sends above took at least that long.
    support::until(Duration::from_secs(10), "dummy requests", || {
        let sent = cover.sent();
        async move { (sent >= 4).then_some(()).ok_or(format!("{sent} sent")) }
    })
    .await;
    drop(cover);
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 10, "every jittered message arrives");
    let latest = got.iter().map(|m| m.timestamp).max().unwrap();

    // Bob answers at once: his timestamp goes back in time, but not to before the message he
    // answers, and never after now.
    let before = bob.client().clock().now_ms();
    let reply = bob.send(&alice.session_id(), "backdated").await.unwrap();
    assert!(reply.timestamp > latest && reply.timestamp <= bob.client().clock().now_ms());
    assert!(reply.timestamp + 2000 >= before);
    assert_eq!(reply.delayed, Duration::ZERO, "backdating does not wait");

    let observations = net.observations();
    // The swarm read each message's timestamp, and Alice's guard heard from her only after
    // the jitter: at least `delayed` after the timestamp.
    for (timestamp, delayed) in timestamps {
        let delayed = u64::try_from(delayed.as_millis()).unwrap();
        assert!(observations
            .iter()
            .any(|o| o.role == Role::OnionExit && o.store_timestamps.contains(&timestamp)));
        assert!(
            observations.iter().any(|o| o.role == Role::OnionGuard
                && o.peer_ip == alice_ip
                && o.at_ms >= timestamp + delayed),
            "no request at Alice's guard {delayed} ms after {timestamp}"
        );
    }
    // What Bob's guard saw of his dummies (and one send) is what Alice's saw of her sends:
    // same request and reply sizes (the smallest padding classes).
    let sizes = |ip: IpAddr| -> std::collections::BTreeSet<(u64, u64)> {
        observations
            .iter()
            .filter(|o| o.role == Role::OnionGuard && o.peer_ip == ip && o.status == 200)
            .map(|o| (o.request_bytes, o.reply_bytes))
            .collect()
    };
    let classes = [(4096, 16384)].into_iter().collect();
    assert_eq!(sizes(bob_ip), classes, "Bob's dummies and reply");
    assert_eq!(sizes(alice_ip), classes, "Alice's sends");
}
