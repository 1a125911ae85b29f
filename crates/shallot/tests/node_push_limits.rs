//! Push subscriptions under a flood (issue #10 item 4), and push connections that stop
//! answering pings (item 1), against real `shallot node` processes on loopback.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shallot_proto::{AccountId, Identity};
use support::clients::{next_json, try_monitor_ws, Ws};
use support::{b64, now_ms, user, Net};
use tokio_tungstenite::tungstenite::Message;

/// Opens node 0's monitor WebSocket from the loopback address `source` (per-address caps).
async fn connect_from(net: &Net, source: Ipv4Addr) -> Ws {
    try_connect_from(net, source).await.unwrap()
}

/// [`connect_from`], or the handshake's error.
async fn try_connect_from(
    net: &Net,
    source: Ipv4Addr,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    try_monitor_ws(net.nodes[0].addr, Some(source)).await
}

/// A subscription to `id`'s Session account, namespace 0, signed by it (spec §6.1).
fn subscription(id: &Identity) -> Value {
    let account: AccountId = id.session_id().into();
    let t = now_ms() / 1000;
    let message = format!("MONITOR{}{t}00", account.to_hex());
    json!({"P": id.ed25519_public().to_hex(), "n": [0], "d": 0, "t": t,
        "s": b64(id.sign(message.as_bytes()).to_bytes())})
}

/// Sends `users`' subscriptions as one list frame; returns how many succeeded and the refusals.
async fn subscribe_all(ws: &mut Ws, users: &[Identity]) -> (usize, Vec<Value>) {
    let frame: Vec<Value> = users.iter().map(subscription).collect();
    ws.send(Message::text(Value::Array(frame).to_string()))
        .await
        .unwrap();
    let answer = next_json(ws, Duration::from_secs(10)).await.unwrap();
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), users.len());
    let ok = answers
        .iter()
        .filter(|a| **a == json!({"success": 1}))
        .count();
    let refused: Vec<Value> = answers
        .iter()
        .filter(|a| a.get("errcode").is_some())
        .cloned()
        .collect();
    assert_eq!(ok + refused.len(), users.len());
    (ok, refused)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn users(n: usize) -> Vec<Identity> {
    (0..n).map(|_| user()).collect()
}

async fn config_net(toml: &str) -> (Net, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, toml).unwrap();
    let net =
        Net::start_with_args(&[1], vec!["--config".into(), config.display().to_string()]).await;
    (net, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_flood_hits_the_caps_and_others_still_get_pushes() {
    let (net, _dir) = config_net(
        "[account_limits]\nmonitor_max_per_connection = 20\nmonitor_max_per_ip = 30\nmonitor_max_total = 50\n\
         monitor_max_connections_per_ip = 2\n",
    )
    .await;
    let pid = net.pids()[0];
    let rss_before = rss_kib(pid);
    let attacker = Ipv4Addr::new(127, 200, 0, 1);

    // One connection: 20 of 25 accepted (per connection); a second one from the same address
    // gets 10 more (per address).
    let mut a1 = connect_from(&net, attacker).await;
    let (ok, refused) = subscribe_all(&mut a1, &users(25)).await;
    assert_eq!(ok, 20, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| r["errcode"] == 7 && r["error"].as_str().unwrap().contains("per connection")),
        "{refused:?}"
    );
    let mut a2 = connect_from(&net, attacker).await;
    let (ok, refused) = subscribe_all(&mut a2, &users(25)).await;
    assert_eq!(ok, 10, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| r["error"].as_str().unwrap().contains("per client address")),
        "{refused:?}"
    );
    // A third push connection from that address is refused before the upgrade.
    match try_connect_from(&net, attacker).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!(
            "a third connection was not refused: {:?}",
            other.map(|_| ())
        ),
    }

    // Another client can still subscribe.
    let alice = user();
    let mut legit = connect_from(&net, Ipv4Addr::new(127, 200, 0, 2)).await;
    assert_eq!(
        subscribe_all(&mut legit, std::slice::from_ref(&alice))
            .await
            .0,
        1
    );

    // Many connections from other addresses fill the node to its total, and no further.
    let mut flood = Vec::new();
    let mut accepted = 0;
    for k in 0..10u8 {
        let mut ws = connect_from(&net, Ipv4Addr::new(127, 200, 1, k)).await;
        let (ok, refused) = subscribe_all(&mut ws, &users(20)).await;
        accepted += ok;
        assert!(refused.iter().all(|r| r["errcode"] == 7), "{refused:?}");
        flood.push(ws);
    }
    assert_eq!(accepted, 50 - 31, "the total cap is 50");
    let mut late = connect_from(&net, Ipv4Addr::new(127, 200, 2, 1)).await;
    let (ok, refused) = subscribe_all(&mut late, &users(1)).await;
    assert_eq!(ok, 0);
    assert!(
        refused[0]["error"].as_str().unwrap().contains("maximum"),
        "{refused:?}"
    );
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS {rss_before} KiB -> {rss_after} KiB"
    );

    // The subscribed client still gets its pushes.
    let account: AccountId = alice.session_id().into();
    let (status, body) = net
        .rpc(
            0,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": now_ms(), "ttl": 60_000,
            "data": b64("still pushed")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let note = next_json(&mut legit, Duration::from_secs(5)).await.unwrap();
    assert_eq!(note["@"], account.to_hex());

    // Once the flood's connections close, their subscriptions are freed.
    for mut ws in flood.drain(..) {
        ws.close(None).await.unwrap();
    }
    let bob = user();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, refused) = subscribe_all(&mut late, std::slice::from_ref(&bob)).await;
        if ok == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after the flood closed: {refused:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = (a1, a2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_connections_that_stop_answering_pings_are_closed() {
    let (net, _dir) =
        config_net("[account_limits]\nmonitor_ping_secs = 1\nmonitor_idle_secs = 3\n").await;
    let silent_user = user();
    let mut silent = connect_from(&net, Ipv4Addr::LOCALHOST).await;
    assert_eq!(
        subscribe_all(&mut silent, std::slice::from_ref(&silent_user))
            .await
            .0,
        1
    );
    let alive_user = user();
    let mut alive = connect_from(&net, Ipv4Addr::LOCALHOST).await;
    assert_eq!(
        subscribe_all(&mut alive, std::slice::from_ref(&alive_user))
            .await
            .0,
        1
    );

    // The live client keeps reading (and so answers pings) for 5 s; the silent one reads nothing.
    assert_eq!(next_json(&mut alive, Duration::from_secs(5)).await, None);

    // The silent connection was closed by the node: reading now finds pings, then the end.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match silent.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return true,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the silent connection is still open");

    // The live one still gets pushes.
    let account: AccountId = alive_user.session_id().into();
    let (status, body) = net
        .rpc(
            0,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": now_ms(), "ttl": 60_000,
            "data": b64("ping pong")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let note = next_json(&mut alive, Duration::from_secs(5)).await.unwrap();
    assert_eq!(note["@"], account.to_hex());
}
