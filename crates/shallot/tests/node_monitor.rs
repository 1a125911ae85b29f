//! The reference network tests for push notifications (storage RPC spec §14 test_monitor, §6),
//! against real `shallot node` processes.
//!
//! Deliberate difference from the reference: the reference subscribes with OxenMQ
//! `monitor.messages` (bt-encoded) and pushes `notify.message`; our nodes serve the same
//! subscription over a WebSocket at `GET /monitor/v1`, as JSON text frames with the same keys
//! (`p`/`P`/`S`/`T`/`d`/`n`/`s`/`t`; binary values base64, keys hex), and push notifications as
//! JSON `{"@", "h", "n", "t", "z", "~"}` (account hex, data base64). `{"success": 1}` replaces
//! `d7:successi1ee`.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, AccountKind, Identity, Namespace};
use support::clients::{monitor_ws, next_json, Ws};
use support::{b64, now_ms, user, Net};
use tokio_tungstenite::tungstenite::Message;

/// Opens the monitor WebSocket of node `i`.
async fn connect(net: &Net, i: usize) -> Ws {
    monitor_ws(net.nodes[i].addr, None).await
}

/// Sends one subscription frame and returns the node's answer.
async fn subscribe(ws: &mut Ws, request: &Value) -> Value {
    ws.send(Message::text(request.to_string())).await.unwrap();
    next_json(ws, Duration::from_secs(10))
        .await
        .expect("an answer to the subscription")
}

/// Who signs a subscription.
enum Signer<'a> {
    /// The account key itself, naming the account by `p` (type byte ‖ Ed25519 key).
    Direct(&'a Identity),
    /// A Session ID owner, naming the account by `P` (its Ed25519 key).
    Session(&'a Identity),
    /// A subaccount of the owner: (delegate key, token, owner's signature over the token).
    Sub(&'a Identity, &'a SubaccountToken, String),
}

/// A subscription for `account` (the reference's `notify_request`): the signature covers
/// `"MONITOR" ‖ account hex ‖ t (seconds) ‖ "0"/"1" ‖ namespaces joined by ","`.
fn monitor_request(
    account: &AccountId,
    signer: &Signer<'_>,
    t: u64,
    data: bool,
    namespaces: &[i16],
) -> Value {
    let ns: Vec<String> = namespaces.iter().map(ToString::to_string).collect();
    let message = format!(
        "MONITOR{}{t}{}{}",
        account.to_hex(),
        u8::from(data),
        ns.join(",")
    );
    let mut request = json!({"n": namespaces, "d": u8::from(data), "t": t});
    match signer {
        Signer::Direct(id) => {
            request["p"] = account.to_hex().into();
            request["s"] = b64(id.sign(message.as_bytes()).to_bytes()).into();
        }
        Signer::Session(id) => {
            request["P"] = id.ed25519_public().to_hex().into();
            request["s"] = b64(id.sign(message.as_bytes()).to_bytes()).into();
        }
        Signer::Sub(sub, token, token_sig) => {
            request["p"] = account.to_hex().into();
            request["s"] = b64(sub.sign(message.as_bytes()).to_bytes()).into();
            request["S"] = token_sig.clone().into();
            request["T"] = b64(token.as_bytes()).into();
        }
    }
    request
}

fn group_account(id: &Identity, prefix: u8) -> AccountId {
    AccountId::new(
        AccountKind::from_prefix(prefix),
        *id.ed25519_public().as_bytes(),
    )
}

/// A read+write subaccount of `owner` for accounts of type `prefix`.
fn make_subaccount(prefix: u8, owner: &Identity) -> (Identity, SubaccountToken, String) {
    let sub = user();
    let token = SubaccountToken::new(prefix, SubaccountFlags(0x03), &sub.ed25519_public());
    let sig = b64(token.sign(owner).to_bytes());
    (sub, token, sig)
}

fn now_s() -> u64 {
    now_ms() / 1000
}

/// Subscribes on every member of the account's swarm; each must answer `{"success": 1}`.
async fn register_everywhere(net: &Net, account: &AccountId, signer: &Signer<'_>) -> Vec<Ws> {
    let mut sockets = Vec::new();
    for i in net.swarm_of(account) {
        let mut ws = connect(net, i).await;
        let request = monitor_request(account, signer, now_s(), true, &[-5, 0, 23]);
        assert_eq!(
            subscribe(&mut ws, &request).await,
            json!({"success": 1}),
            "node {i}"
        );
        sockets.push(ws);
    }
    sockets
}

/// Stores unsigned `data` in namespace 0 of `account` through node `i`; returns (ts, expiry, hash).
async fn store_plain(net: &Net, i: usize, account: &AccountId, data: &str) -> (u64, u64, String) {
    let ts = now_ms();
    let ttl = 86_400_000;
    let (status, body) = net
        .rpc(
            i,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": ts, "ttl": ttl, "data": b64(data)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hash = MessageHash::compute(account, Namespace(0), data.as_bytes()).to_string();
    for entry in body["swarm"].as_object().unwrap().values() {
        assert_eq!(entry["hash"], hash, "{body}");
    }
    (ts, ts + ttl, hash)
}

/// Every socket gets exactly `expected` and then nothing more.
async fn expect_exactly_one(sockets: &mut [Ws], expected: &Value) {
    for (k, ws) in sockets.iter_mut().enumerate() {
        let note = next_json(ws, Duration::from_secs(5)).await;
        assert_eq!(note.as_ref(), Some(expected), "socket {k}");
    }
    for (k, ws) in sockets.iter_mut().enumerate() {
        let extra = next_json(ws, Duration::from_millis(300)).await;
        assert_eq!(extra, None, "socket {k}: a second notification");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reg_ed() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = group_account(&sk, 0x03);
    register_everywhere(&net, &account, &Signer::Direct(&sk)).await;

    // Refusals carry the reference's error codes and texts.
    let node = net.swarm_of(&account)[0];
    let mut ws = connect(&net, node).await;
    let t = now_s();
    let mut forged = monitor_request(&account, &Signer::Direct(&sk), t, true, &[0]);
    forged["d"] = 0.into();
    assert_eq!(
        subscribe(&mut ws, &forged).await,
        json!({"errcode": 5, "error": "Signature verification failed"})
    );
    let unsorted = monitor_request(&account, &Signer::Direct(&sk), t, true, &[5, 0]);
    assert_eq!(
        subscribe(&mut ws, &unsorted).await,
        json!({"errcode": 3, "error": "Invalid n= namespace list: namespaces must be ascending"})
    );
    let old = monitor_request(&account, &Signer::Direct(&sk), t - 15 * 86_400, true, &[0]);
    assert_eq!(
        subscribe(&mut ws, &old).await,
        json!({"errcode": 4, "error": "Invalid t= signature timestamp: timestamp is too old"})
    );
    // Not JSON at all (our wording of the reference's "single bencoded dict or list").
    ws.send(Message::text("d1:xi1ee")).await.unwrap();
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(10)).await,
        Some(json!({"errcode": 1,
            "error": "Invalid arguments: monitor request takes a single JSON object or list parameter"}))
    );
    let mut both = monitor_request(&account, &Signer::Direct(&sk), t, true, &[0]);
    both["P"] = sk.ed25519_public().to_hex().into();
    assert_eq!(
        subscribe(&mut ws, &both).await,
        json!({"errcode": 1, "error": "Invalid arguments: Cannot provide both p= and P= pubkey values"})
    );
    // After all those refusals the same connection still subscribes.
    let fine = monitor_request(&account, &Signer::Direct(&sk), t, false, &[0]);
    assert_eq!(subscribe(&mut ws, &fine).await, json!({"success": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reg_session() {
    let net = Net::start(&[3]).await;
    let sk = user();
    // P names the Session ID's Ed25519 key; the account is 05 ‖ its X25519 form.
    let account: AccountId = sk.session_id().into();
    register_everywhere(&net, &account, &Signer::Session(&sk)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reg_subaccount() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = group_account(&sk, 0x02);
    let (_sub, token, token_sig) = make_subaccount(0x02, &sk);
    let mut sockets = Vec::new();
    // A fresh subaccount for each member, as the reference does.
    for i in net.swarm_of(&account) {
        let (sub_i, token_i, sig_i) = make_subaccount(0x02, &sk);
        let mut ws = connect(&net, i).await;
        let request = monitor_request(
            &account,
            &Signer::Sub(&sub_i, &token_i, sig_i),
            now_s(),
            true,
            &[-5, 0, 23],
        );
        assert_eq!(subscribe(&mut ws, &request).await, json!({"success": 1}));
        sockets.push(ws);
    }

    // A token for another type byte is refused.
    let (other, other_token, other_sig) = make_subaccount(0x03, &sk);
    let request = monitor_request(
        &account,
        &Signer::Sub(&other, &other_token, other_sig),
        now_s(),
        true,
        &[0],
    );
    let answer = subscribe(&mut sockets[0], &request).await;
    assert_eq!(answer["errcode"], 5, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("Subaccount verification failed: "),
        "{answer}"
    );
    // A request signed by the owner but presented with someone's token is refused too.
    let request = monitor_request(
        &account,
        &Signer::Sub(&sk, &token, token_sig),
        now_s(),
        true,
        &[0],
    );
    assert_eq!(
        subscribe(&mut sockets[0], &request).await,
        json!({"errcode": 5, "error": "Signature verification failed"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_push() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = group_account(&sk, 0x03);
    let members = net.swarm_of(&account);

    // The first two members get direct subscriptions, the rest subaccount ones.
    let mut sockets = Vec::new();
    for (k, &i) in members.iter().enumerate() {
        let mut ws = connect(&net, i).await;
        let request = if k < 2 {
            monitor_request(&account, &Signer::Direct(&sk), now_s(), true, &[-5, 0, 23])
        } else {
            let (sub, token, sig) = make_subaccount(0x03, &sk);
            monitor_request(
                &account,
                &Signer::Sub(&sub, &token, sig),
                now_s(),
                true,
                &[-5, 0, 23],
            )
        };
        assert_eq!(subscribe(&mut ws, &request).await, json!({"success": 1}));
        sockets.push(ws);
    }

    // A (signed) message in an unmonitored namespace first: nobody hears of it. Any
    // notification for it would be queued before the store answers, so it would come first.
    let ts = now_ms();
    let (status, body) = net
        .rpc(
            members[0],
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": ts,
            "namespace": 123, "ttl": 86_400_000, "data": b64("abc 123"),
            "signature": b64(sk.sign(format!("store123{ts}").as_bytes()).to_bytes())}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (ts, exp, hash) = store_plain(&net, members[1], &account, "abc 123").await;
    let expected = json!({"@": account.to_hex(), "h": hash, "n": 0, "t": ts, "z": exp,
                          "~": b64("abc 123")});
    expect_exactly_one(&mut sockets, &expected).await;

    // Storing the same message again is no new message: no notification.
    let (status, body) = net
        .rpc(
            members[2],
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": ts,
            "ttl": 86_400_000, "data": b64("abc 123")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (k, ws) in sockets.iter_mut().enumerate() {
        let extra = next_json(ws, Duration::from_millis(300)).await;
        assert_eq!(extra, None, "socket {k}: notified of a duplicate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_multi() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let sk2 = user();
    let account = group_account(&sk, 0x03);
    let account2 = group_account(&sk2, 0x03);
    let members = net.swarm_of(&account);

    let mut sockets = Vec::new();
    for &i in &members {
        let mut ws = connect(&net, i).await;
        let t = now_s();
        let request = json!([
            monitor_request(&account2, &Signer::Direct(&sk2), t, true, &[0]),
            monitor_request(&account, &Signer::Direct(&sk), t, true, &[-5, 0, 23]),
        ]);
        assert_eq!(
            subscribe(&mut ws, &request).await,
            json!([{"success": 1}, {"success": 1}])
        );
        sockets.push(ws);
    }

    let (ts, exp, hash) = store_plain(&net, members[0], &account, "xyz 123").await;
    let expected = json!({"@": account.to_hex(), "h": hash, "n": 0, "t": ts, "z": exp,
                          "~": b64("xyz 123")});
    expect_exactly_one(&mut sockets, &expected).await;
}
