//! Real node processes on loopback under a hostile peer (issue #10 item 4): forged handoffs and
//! forwarded stores, revocations travelling with a handoff, and the per-account inbox quota.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use shallot_node::node_api::{HandoffBatch, HandoffMessage, FORWARD_PATH, HANDOFF_PATH};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, AccountKind, Identity, Namespace};
use support::clients::peer_client;
use support::{b64, now_ms, until, user, Net};

const DAY_MS: u64 = 86_400_000;

async fn post_as(
    net: &Net,
    identity: &Identity,
    to: usize,
    path: &str,
    body: String,
) -> (u16, String) {
    let response = peer_client(identity, None)
        .post(net.nodes[to].url(path))
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn handoff(messages: Vec<HandoffMessage>) -> String {
    serde_json::to_string(&HandoffBatch {
        version: 1,
        messages,
        revocations: Vec::new(),
    })
    .unwrap()
}

fn message(
    account: AccountId,
    ns: i16,
    data: &[u8],
    timestamp: u64,
    expiry: u64,
) -> HandoffMessage {
    HandoffMessage {
        pubkey: account,
        namespace: Namespace(ns),
        hash: MessageHash::compute(&account, Namespace(ns), data),
        timestamp,
        expiry,
        data: data.to_vec().into(),
    }
}

fn sign(id: &Identity, text: impl AsRef<[u8]>) -> String {
    b64(id.sign(text.as_ref()).to_bytes())
}

/// A group-style (03) account whose Ed25519 key is `owner`'s.
fn group_account(owner: &Identity) -> AccountId {
    AccountId::new(
        AccountKind::from_prefix(0x03),
        *owner.ed25519_public().as_bytes(),
    )
}

/// Retrieve params for `ns` signed by the owner, or by a subaccount `(key, token, token sig)`.
fn retrieve_params(
    account: &AccountId,
    ns: i16,
    owner: &Identity,
    sub: Option<&(Identity, SubaccountToken, String)>,
) -> Value {
    let ts = now_ms();
    let ns_text = if ns == 0 {
        String::new()
    } else {
        ns.to_string()
    };
    let signed = format!("retrieve{ns_text}{ts}");
    match sub {
        None => json!({"pubkey": account.to_hex(), "namespace": ns, "timestamp": ts,
            "signature": sign(owner, &signed)}),
        Some((key, token, token_sig)) => json!({"pubkey": account.to_hex(), "namespace": ns,
            "timestamp": ts, "signature": sign(key, &signed),
            "subaccount": b64(token.as_bytes()), "subaccount_sig": token_sig}),
    }
}

/// The hashes node `i` returns for the account's namespace (owner-signed retrieve).
async fn held(net: &Net, i: usize, account: &AccountId, ns: i16, owner: &Identity) -> Vec<String> {
    let (status, body) = net
        .rpc(i, "retrieve", retrieve_params(account, ns, owner, None))
        .await;
    assert_eq!(status, 200, "node {i}: {body}");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hash"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One scenario, step by step.
async fn forged_handoffs_and_forwards_store_nothing_and_revocations_travel() {
    let mut net = Net::start(&[2, 2]).await;
    let home = net.nodes[0].swarm;
    let (owner, account) = loop {
        let owner = user();
        let account = group_account(&owner);
        if net.swarm_of(&account).contains(&0) {
            break (owner, account);
        }
    };
    let elsewhere: AccountId = loop {
        let id: AccountId = user().session_id().into();
        if !net.swarm_of(&id).contains(&0) {
            break id;
        }
    };
    // Node 2 is in the other swarm for the whole test; node 3 moves into ours below.
    assert_eq!(net.swarm_of(&account), vec![0, 1]);

    // A message in namespace 42 and a revoked subaccount, held by nodes 0 and 1.
    let ts = now_ms();
    let (status, body) = net
        .rpc(
            0,
            "store",
            json!({"pubkey": account.to_hex(), "namespace": 42, "timestamp": ts,
            "ttl": DAY_MS, "data": b64("kept"), "signature": sign(&owner, format!("store42{ts}"))}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let kept = MessageHash::compute(&account, Namespace(42), b"kept").to_string();
    let delegate = user();
    let token = SubaccountToken::new(0x03, SubaccountFlags(0x03), &delegate.ed25519_public());
    let sub = (delegate, token, b64(token.sign(&owner).to_bytes()));
    let ts = now_ms();
    let mut signed = format!("revoke_subaccount{ts}").into_bytes();
    signed.extend_from_slice(token.as_bytes());
    let (status, body) = net
        .rpc(
            0,
            "revoke_subaccount",
            json!({"pubkey": account.to_hex(),
            "revoke": b64(token.as_bytes()), "timestamp": ts, "signature": sign(&owner, &signed)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Node 3 joins our swarm: it gets the message and the revocation by handoff, so it refuses
    // the revoked subaccount like the old members do.
    net.nodes[3].swarm = home;
    net.write_directory();
    until(
        Duration::from_secs(20),
        "node 3 to receive the handoff",
        || async {
            let (status, body) = net
                .rpc(3, "retrieve", retrieve_params(&account, 42, &owner, None))
                .await;
            if status != 200 || body["messages"].as_array().map_or(0, Vec::len) != 1 {
                return Err(format!("{status} {body}"));
            }
            let (status, body) = net
                .rpc(
                    3,
                    "retrieve",
                    retrieve_params(&account, 42, &owner, Some(&sub)),
                )
                .await;
            match status {
                401 => Ok(()),
                _ => Err(format!("revoked subaccount still reads: {status} {body}")),
            }
        },
    )
    .await;
    assert_eq!(
        held(&net, 3, &account, 42, &owner).await,
        vec![kept.clone()]
    );
    // Every node has read the new directory before the forgeries start.
    until(
        Duration::from_secs(10),
        "every node to list node 3 in our swarm",
        || async {
            for i in 0..4 {
                let (_, body) = net
                    .rpc(i, "get_swarm", json!({"pubkey": account.to_hex()}))
                    .await;
                let listed = body["snodes"].as_array().map_or(0, Vec::len);
                if listed != 3 {
                    return Err(format!("node {i} lists {listed}: {body}"));
                }
            }
            Ok(())
        },
    )
    .await;

    let now = now_ms();
    let planted = |text: &str| message(account, 0, text.as_bytes(), now, now + DAY_MS);
    let forward_store = json!({"method": "store", "params": {"pubkey": account.to_hex(),
        "timestamp": now, "ttl": DAY_MS, "data": b64("forwarded by a stranger")}})
    .to_string();

    // 1. A key that is no service node at all.
    let stranger = user();
    let (status, text) = post_as(
        &net,
        &stranger,
        0,
        HANDOFF_PATH,
        handoff(vec![planted("stranger")]),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let (status, text) = post_as(&net, &stranger, 0, FORWARD_PATH, forward_store.clone()).await;
    assert_eq!(status, 403, "{text}");

    // 2. A real node of the other swarm, which never held this account.
    let outsider = &net.nodes[2].identity;
    let (status, text) = post_as(
        &net,
        outsider,
        0,
        HANDOFF_PATH,
        handoff(vec![planted("outsider")]),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("not a member of this swarm"), "{text}");
    let (status, text) = post_as(&net, outsider, 0, FORWARD_PATH, forward_store).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("not a member of this swarm"), "{text}");
    for i in [0, 1, 3] {
        assert!(
            held(&net, i, &account, 0, &owner).await.is_empty(),
            "node {i} stored a forgery"
        );
    }

    // 3. A real member of our swarm: forged items are dropped, the valid one is stored with its
    //    expiry clamped to 30 days; an account of another swarm is refused.
    let member = &net.nodes[1].identity;
    let mut forged = planted("forged hash");
    forged.data = b"other content".to_vec().into();
    let future = message(
        account,
        0,
        b"from the future",
        now + 3_600_000,
        now + 2 * DAY_MS,
    );
    let far = message(account, 0, b"far expiry", now, now + 365 * DAY_MS);
    let (status, text) = post_as(
        &net,
        member,
        0,
        HANDOFF_PATH,
        handoff(vec![forged, future, far.clone()]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (reply["inserted"].as_u64(), reply["refused"].as_u64()),
        (Some(1), Some(2)),
        "{reply}"
    );
    let (status, body) = net
        .rpc(0, "retrieve", retrieve_params(&account, 0, &owner, None))
        .await;
    assert_eq!(status, 200, "{body}");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    assert_eq!(messages[0]["hash"], far.hash.to_string());
    let expiry = messages[0]["expiration"].as_u64().unwrap();
    assert!(
        expiry <= now_ms() + 30 * DAY_MS,
        "expiry {expiry} not clamped"
    );

    let not_ours = message(elsewhere, 0, b"not yours", now, now + DAY_MS);
    let (status, text) = post_as(&net, member, 0, HANDOFF_PATH, handoff(vec![not_ours])).await;
    assert_eq!(status, 421, "{text}");

    // The node still serves: a client store reaches every member.
    let (status, body) = net
        .rpc(
            0,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": now_ms(), "ttl": DAY_MS,
            "data": b64("a real message")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let entries = body["swarm"].as_object().unwrap();
    assert_eq!(entries.len(), 3, "{body}");
    assert!(
        entries.values().all(|e| e.get("failed").is_none()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_past_the_inbox_quota_are_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[account_limits]\ninbox_max_messages = 5\n").unwrap();
    let net =
        Net::start_with_args(&[2], vec!["--config".into(), config.display().to_string()]).await;
    let owner = user();
    let account = group_account(&owner);
    let store = |data: String| {
        let net = &net;
        async move {
            net.rpc(
                0,
                "store",
                json!({"pubkey": account.to_hex(), "timestamp": now_ms(),
                "ttl": DAY_MS, "data": b64(data)}),
            )
            .await
        }
    };
    let mut stored = Vec::new();
    for i in 0..5 {
        let (status, body) = store(format!("message {i}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["swarm"].as_object().unwrap().len(), 2, "{body}");
        stored.push(body["hash"].as_str().unwrap().to_owned());
    }
    let (status, body) = store("one too many".into()).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.as_str().unwrap().contains("inbox is full"), "{body}");
    // A message already held is still acknowledged.
    let (status, body) = store("message 0".into()).await;
    assert_eq!(status, 200, "{body}");
    // Every member still holds all five, and nothing else.
    for i in 0..2 {
        assert_eq!(held(&net, i, &account, 0, &owner).await, stored, "node {i}");
    }
    // Signed namespaces of the same account, and other accounts, are unaffected.
    let ts = now_ms();
    let (status, body) = net
        .rpc(1, "store", json!({"pubkey": account.to_hex(), "namespace": 42, "timestamp": ts,
            "ttl": DAY_MS, "data": b64("signed"), "signature": sign(&owner, format!("store42{ts}"))}))
        .await;
    assert_eq!(status, 200, "{body}");
    let other = user();
    let (status, body) = net
        .rpc(
            1,
            "store",
            json!({"pubkey": group_account(&other).to_hex(), "timestamp": now_ms(),
            "ttl": DAY_MS, "data": b64("hello")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
