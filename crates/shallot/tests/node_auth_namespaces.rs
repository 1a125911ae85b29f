//! The reference network tests for namespaces, Session auth, store/retrieve and subaccounts
//! (storage RPC spec §14: test_msg_ns, test_session_auth, test_store_retrieve,
//! test_subaccount_auth), run over HTTPS against real `shallot node` processes.
//!
//! Every signed message and every node signature is spelled out by hand here (as the Python
//! suite does) rather than built with the library's helpers, so the tests pin the wire format.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, AccountKind, Ed25519Pub, Identity, Namespace, Signature};
use support::{b64, now_ms, user, Net};

const DAY_MS: u64 = 86_400_000;

/// Base64 of `id`'s signature over `message`.
fn sign(id: &Identity, message: impl AsRef<[u8]>) -> String {
    b64(id.sign(message.as_ref()).to_bytes())
}

/// An account whose type byte is `prefix` and whose 32 bytes are `id`'s Ed25519 key (the
/// reference suite's `'03' + sk.verify_key`, also for `05`).
fn ed_account(prefix: u8, id: &Identity) -> AccountId {
    AccountId::new(
        AccountKind::from_prefix(prefix),
        *id.ed25519_public().as_bytes(),
    )
}

fn hash(account: &AccountId, ns: i16, data: &[u8]) -> String {
    MessageHash::compute(account, Namespace(ns), data).to_string()
}

/// Checks a node's base64 signature over `message` with the node key `node_hex`.
fn assert_node_sig(node_hex: &str, message: &[u8], signature: &Value) {
    let key: Ed25519Pub = node_hex.parse().unwrap();
    let bytes = shallot_proto::b64::decode(signature.as_str().unwrap()).unwrap();
    let sig = Signature::from_slice(&bytes).unwrap();
    assert!(
        key.verify(message, &sig),
        "bad signature from {node_hex} over {:?}",
        String::from_utf8_lossy(message)
    );
}

/// The `swarm` object of a recursive answer, checked to hold exactly the account's swarm members.
fn swarm_entries<'a>(
    net: &Net,
    account: &AccountId,
    body: &'a Value,
) -> &'a serde_json::Map<String, Value> {
    let swarm = body["swarm"]
        .as_object()
        .unwrap_or_else(|| panic!("{body}"));
    let keys: BTreeSet<String> = swarm.keys().cloned().collect();
    let members: BTreeSet<String> = net
        .swarm_of(account)
        .iter()
        .map(|&i| net.nodes[i].ed25519_hex())
        .collect();
    assert_eq!(keys, members, "{body}");
    swarm
}

/// A successful store answer: every member stored `expected`, signed it, and `t` is about now.
fn assert_stored(net: &Net, account: &AccountId, body: &Value, expected: &str) {
    for (key, entry) in swarm_entries(net, account, body) {
        assert!(entry.get("failed").is_none(), "{key}: {entry}");
        assert_eq!(entry["hash"], expected, "{key}: {entry}");
        assert_node_sig(key, expected.as_bytes(), &entry["signature"]);
    }
    assert_eq!(body["hash"], expected);
    let t = body["t"].as_u64().unwrap();
    assert!(now_ms().abs_diff(t) <= 30_000, "{body}");
}

/// A stored message as the reference's `store_n` keeps it.
struct Stored {
    hash: String,
    data: Vec<u8>,
    timestamp: u64,
    expiry: u64,
}

/// Stores `n` unsigned messages (namespace 0, timestamps now−i s, 30 s lifetime) on node `i`,
/// like the reference's `ss.store_n`.
async fn store_n(net: &Net, i: usize, account: &AccountId, base: &[u8], n: usize) -> Vec<Stored> {
    let mut out = Vec::new();
    for k in 0..n {
        let mut data = base.to_vec();
        data.extend_from_slice(k.to_string().as_bytes());
        let timestamp = now_ms() - 1000 * k as u64;
        let expiry = timestamp + 30_000;
        let (status, body) = net
            .rpc(
                i,
                "store",
                json!({"pubkey": account.to_hex(), "timestamp": timestamp, "expiry": expiry,
                       "data": b64(&data)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let h = hash(account, 0, &data);
        assert_stored(net, account, &body, &h);
        out.push(Stored {
            hash: h,
            data,
            timestamp,
            expiry,
        });
    }
    let distinct: BTreeSet<&str> = out.iter().map(|m| m.hash.as_str()).collect();
    assert_eq!(distinct.len(), n);
    out
}

/// Retrieve params signed by `signer` for namespace `ns` (omitted when `None`) at `ts`.
fn retrieve_params(account: &AccountId, signer: &Identity, ns: Option<i16>, ts: u64) -> Value {
    let ns_text = ns.filter(|&n| n != 0).map(|n| n.to_string());
    let mut params = json!({"pubkey": account.to_hex(), "timestamp": ts,
        "signature": sign(signer, format!("retrieve{}{ts}", ns_text.unwrap_or_default()))});
    if let Some(ns) = ns {
        params["namespace"] = ns.into();
    }
    params
}

/// Drops `t` and `hf` (checked to be present) so a retrieve answer can be compared exactly.
fn without_misc(mut body: Value) -> Value {
    let obj = body.as_object_mut().unwrap();
    assert!(obj.remove("t").unwrap().as_u64().is_some());
    assert_eq!(obj.remove("hf").unwrap(), json!([19, 4]));
    body
}

// ---------------------------------------------------------------------------------------------
// test_msg_ns

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_ns() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();
    let ttl = DAY_MS;

    // Publicly depositable namespace (divisible by 10): no signature needed.
    let (status, spub) = net
        .rpc(
            node,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": ts, "ttl": ttl,
            "namespace": 40, "data": b64("abc 123")}),
        )
        .await;
    assert_eq!(status, 200, "{spub}");
    let hpub = hash(&account, 40, b"abc 123");
    assert_stored(&net, &account, &spub, &hpub);

    // A private namespace needs the account's signature over "store" ‖ "-42" ‖ ts.
    let (status, spriv) = net
        .rpc(node, "store", json!({"pubkey": account.to_hex(), "timestamp": ts, "ttl": ttl,
            "namespace": -42, "data": b64("abc 123"), "signature": sign(&sk, format!("store-42{ts}"))}))
        .await;
    assert_eq!(status, 200, "{spriv}");
    let hpriv = hash(&account, -42, b"abc 123");
    assert_ne!(hpub, hpriv, "the namespace is part of the hash");
    assert_stored(&net, &account, &spriv, &hpriv);

    let ts = now_ms();
    let (status, rpub) = net
        .rpc(
            node,
            "retrieve",
            retrieve_params(&account, &sk, Some(40), ts),
        )
        .await;
    assert_eq!(status, 200, "{rpub}");
    let messages = rpub["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{rpub}");
    assert_eq!(messages[0]["hash"], hpub);

    let (status, rpriv) = net
        .rpc(
            node,
            "retrieve",
            retrieve_params(&account, &sk, Some(-42), ts),
        )
        .await;
    assert_eq!(status, 200, "{rpriv}");
    let messages = rpriv["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{rpriv}");
    assert_eq!(messages[0]["hash"], hpriv);

    // Reading a public inbox still needs a signature.
    let denied = net
        .rpc(
            node,
            "retrieve",
            json!({"pubkey": account.to_hex(), "timestamp": ts, "namespace": 40}),
        )
        .await;
    assert_eq!(
        denied,
        (
            400,
            json!("invalid request: Required field 'signature' missing")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_closed_ns() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();
    let ttl = DAY_MS;

    // Namespace −10 takes unsigned stores (it is a public inbox)...
    let (status, body) = net
        .rpc(
            node,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": ts, "ttl": ttl,
            "namespace": -10, "data": b64("blah blah")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let h = hash(&account, -10, b"blah blah");
    assert_stored(&net, &account, &body, &h);

    // ...and unsigned retrieves, from any member.
    for i in net.swarm_of(&account) {
        let (status, body) = net
            .rpc(
                i,
                "retrieve",
                json!({"pubkey": account.to_hex(), "namespace": -10}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            without_misc(body),
            json!({"messages": [{"data": b64("blah blah"), "expiration": ts + ttl, "hash": h,
                                 "timestamp": ts}], "more": false})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_invalid_ns() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();
    let store = |ns: Value, signature: Option<String>| {
        let mut params = json!({"pubkey": account.to_hex(), "timestamp": ts, "ttl": DAY_MS,
            "namespace": ns, "data": b64("abc 123")});
        if let Some(sig) = signature {
            params["signature"] = sig.into();
        }
        params
    };

    // Unsigned store to a private namespace.
    assert_eq!(
        net.rpc(node, "store", store(json!(42), None)).await,
        (
            401,
            json!("store: signature required to store to namespace 42")
        )
    );
    // Namespaces are 16-bit.
    assert_eq!(
        net.rpc(node, "store", store(json!(32768), None)).await,
        (
            400,
            json!("invalid request: Invalid value given for 'namespace': value out of range")
        )
    );
    // Signed by someone else.
    let dude = user();
    assert_eq!(
        net.rpc(
            node,
            "store",
            store(json!(-32123), Some(sign(&dude, format!("store-32123{ts}"))))
        )
        .await,
        (401, json!("store signature verification failed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_outbox() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();
    let ttl = 60_000;
    let exp = ts + ttl;
    let store = |data: &str, ts: u64, signed: bool| {
        let mut params = json!({"pubkey": account.to_hex(), "timestamp": ts, "ttl": ttl,
            "namespace": -1, "data": b64(data)});
        if signed {
            params["signature"] = sign(&sk, format!("store-1{ts}")).into();
        }
        params
    };
    let unauthenticated = || json!({"pubkey": account.to_hex(), "namespace": -1});

    // Storing to a public outbox needs authentication.
    assert_eq!(
        net.rpc(node, "store", store("abc 123", ts, false)).await,
        (
            401,
            json!("store: signature required to store to namespace -1")
        )
    );
    let (status, body) = net.rpc(node, "store", store("abc 456", ts, true)).await;
    assert_eq!(status, 200, "{body}");
    let h1 = hash(&account, -1, b"abc 456");
    assert_stored(&net, &account, &body, &h1);

    // Reading it does not.
    let (status, body) = net.rpc(node, "retrieve", unauthenticated()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        without_misc(body),
        json!({"messages": [{"data": b64("abc 456"), "expiration": exp, "hash": h1, "timestamp": ts}],
               "more": false})
    );

    // A new message replaces the old one, on every member.
    let (status, body) = net.rpc(node, "store", store("abc 789", ts + 1, true)).await;
    assert_eq!(status, 200, "{body}");
    let h2 = hash(&account, -1, b"abc 789");
    assert_stored(&net, &account, &body, &h2);
    for i in net.swarm_of(&account) {
        let (status, body) = net.rpc(i, "retrieve", unauthenticated()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            without_misc(body),
            json!({"messages": [{"data": b64("abc 789"), "expiration": exp + 1, "hash": h2,
                                 "timestamp": ts + 1}], "more": false})
        );
    }

    // Storing the same message again only extends its expiry: the timestamp stays, so it was
    // recognised as a duplicate rather than wiped and stored again.
    let (status, body) = net.rpc(node, "store", store("abc 789", ts + 2, true)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hash"], h2);
    for (key, entry) in swarm_entries(&net, &account, &body) {
        // Our entry node keeps JSON booleans for peers' results too (the reference turns them
        // into 1 when they travel bt-encoded).
        assert_eq!(entry["already"], true, "{key}: {entry}");
        assert_eq!(entry["expiry"], exp + 2, "{key}: {entry}");
    }
    let (status, body) = net.rpc(node, "retrieve", unauthenticated()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        without_misc(body),
        json!({"messages": [{"data": b64("abc 789"), "expiration": exp + 2, "hash": h2,
                             "timestamp": ts + 1}], "more": false})
    );
}

// ---------------------------------------------------------------------------------------------
// test_session_auth

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_auth() {
    let net = Net::start(&[3]).await;
    let sk = user();
    // A real Session ID: 05 ‖ X25519 key; signatures are made with the Ed25519 key behind it.
    let account: AccountId = sk.session_id().into();
    assert_ne!(account.key(), sk.ed25519_public().as_bytes());
    let members = net.swarm_of(&account);
    let node = members[0];
    let msgs = store_n(&net, node, &account, b"omg123", 5).await;

    let retrieve_count = |ts: u64| {
        let params = json!({"pubkey": account.to_hex(), "pubkey_ed25519": sk.ed25519_public().to_hex(),
            "timestamp": ts, "signature": sign(&sk, format!("retrieve{ts}"))});
        let net = &net;
        async move {
            let (status, body) = net.rpc(node, "retrieve", params).await;
            assert_eq!(status, 200, "{body}");
            body["messages"].as_array().unwrap().len()
        }
    };

    let ts = now_ms();
    let sig = sign(&sk, format!("delete_all{ts}"));
    let mut params = json!({"pubkey": account.to_hex(), "timestamp": ts, "signature": sig});

    // Without pubkey_ed25519 the X25519 bytes are taken as the Ed25519 key: fails.
    assert_eq!(
        net.rpc(node, "delete_all", params.clone()).await,
        (401, json!("delete_all signature verification failed"))
    );
    assert_eq!(retrieve_count(now_ms()).await, 5);

    // Some other Ed25519 key, which does not convert to the account's X25519 key: fails.
    let fake = user();
    params["pubkey_ed25519"] = fake.ed25519_public().to_hex().into();
    params["signature"] = sign(&fake, format!("delete_all{ts}")).into();
    assert_eq!(
        net.rpc(node, "delete_all", params.clone()).await,
        (401, json!("delete_all signature verification failed"))
    );
    assert_eq!(retrieve_count(now_ms()).await, 5);

    // The right one works, and the nodes sign over the 05 ‖ X25519 account hex.
    params["pubkey_ed25519"] = sk.ed25519_public().to_hex().into();
    params["signature"] = sig.into();
    let (status, body) = net.rpc(node, "delete_all", params).await;
    assert_eq!(status, 200, "{body}");
    let mut hashes: Vec<&str> = msgs.iter().map(|m| m.hash.as_str()).collect();
    hashes.sort_unstable();
    let expected_signed = format!("{}{ts}{}", account.to_hex(), hashes.concat());
    assert!(expected_signed.starts_with("05"));
    for (key, entry) in swarm_entries(&net, &account, &body) {
        assert_eq!(entry["deleted"], json!(hashes), "{key}: {entry}");
        assert_node_sig(key, expected_signed.as_bytes(), &entry["signature"]);
    }
    assert_eq!(retrieve_count(now_ms()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_session_no_ed25519() {
    let net = Net::start(&[3]).await;
    let sk = user();
    // 04 ‖ X25519 key: the Session key conversion is only for 05 accounts.
    let account = AccountId::new(AccountKind::from_prefix(4), *sk.x25519_public().as_bytes());
    let node = net.swarm_of(&account)[0];
    store_n(&net, node, &account, b"omg123", 4).await;

    let ts = now_ms();
    let params = json!({"pubkey": account.to_hex(), "pubkey_ed25519": sk.ed25519_public().to_hex(),
        "timestamp": ts, "signature": sign(&sk, format!("delete_all{ts}"))});
    assert_eq!(
        net.rpc(node, "delete_all", params).await,
        (
            400,
            json!("invalid request: pubkey_ed25519 is only permitted for 05[...] pubkeys")
        )
    );
}

// ---------------------------------------------------------------------------------------------
// test_store_retrieve

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();
    let (status, body) = net
        .rpc(
            node,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": ts, "ttl": DAY_MS,
            "data": b64("abc 123")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let h = hash(&account, 0, b"abc 123");
    assert_stored(&net, &account, &body, &h);
    assert_eq!(body["hf"], json!([19, 4]));
    // Per-member entries: hash, signature, expiry; the entry node's own also has a `t`.
    let me = net.nodes[node].ed25519_hex();
    for (key, entry) in swarm_entries(&net, &account, &body) {
        assert_eq!(entry["expiry"], ts + DAY_MS, "{key}: {entry}");
        assert!(entry.get("already").is_none(), "{key}: {entry}");
        assert_eq!(entry.get("t").is_some(), *key == me, "{key}: {entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_retrieve_unauthenticated() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let members = net.swarm_of(&account);
    let ts = now_ms();
    let (status, body) = net
        .rpc(
            members[0],
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": ts,
            "ttl": DAY_MS, "data": b64("abc 123")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_stored(&net, &account, &body, &hash(&account, 0, b"abc 123"));

    assert_eq!(
        net.rpc(members[1], "retrieve", json!({"pubkey": account.to_hex()}))
            .await,
        (401, json!("retrieve: request signature required"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_retrieve_authenticated() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let x_account: AccountId = sk.session_id().into();
    let ed_acct = ed_account(0x03, &sk);
    let node_x = net.swarm_of(&x_account)[0];
    let node_ed = net.swarm_of(&ed_acct)[1];
    let ts = now_ms();
    let ttl = DAY_MS;
    let exp = ts + ttl;

    let (status, s1) = net
        .rpc(
            node_x,
            "store",
            json!({"pubkey": x_account.to_hex(), "timestamp": ts, "ttl": ttl,
            "data": b64("abc 123")}),
        )
        .await;
    assert_eq!(status, 200, "{s1}");
    let hash1 = hash(&x_account, 0, b"abc 123");
    assert_stored(&net, &x_account, &s1, &hash1);
    let (status, s2) = net
        .rpc(
            node_ed,
            "store",
            json!({"pubkey": ed_acct.to_hex(), "timestamp": ts, "ttl": ttl,
            "data": b64("def 456")}),
        )
        .await;
    assert_eq!(status, 200, "{s2}");
    let hash2 = hash(&ed_acct, 0, b"def 456");
    assert_stored(&net, &ed_acct, &s2, &hash2);

    let sig = sign(&sk, format!("retrieve{ts}"));
    let mut bad = sig.clone().into_bytes();
    bad[4] = if bad[4] == b'z' { b'a' } else { b'z' };
    let badsig = String::from_utf8(bad).unwrap();

    // 05 account with pubkey_ed25519; 03 account whose key is the Ed25519 key itself.
    let (status, good1) = net
        .rpc(
            node_x,
            "retrieve",
            json!({"pubkey": x_account.to_hex(), "timestamp": ts,
            "signature": sig, "pubkey_ed25519": sk.ed25519_public().to_hex()}),
        )
        .await;
    assert_eq!(status, 200, "{good1}");
    assert_eq!(
        good1["messages"],
        json!([{"data": b64("abc 123"), "timestamp": ts, "expiration": exp, "hash": hash1}])
    );
    let (status, good2) = net
        .rpc(
            node_ed,
            "retrieve",
            json!({"pubkey": ed_acct.to_hex(), "timestamp": ts, "signature": sig}),
        )
        .await;
    assert_eq!(status, 200, "{good2}");
    assert_eq!(
        good2["messages"],
        json!([{"data": b64("def 456"), "timestamp": ts, "expiration": exp, "hash": hash2}])
    );

    assert_eq!(
        net.rpc(
            node_x,
            "retrieve",
            json!({"pubkey": x_account.to_hex(), "timestamp": ts,
            "signature": badsig, "pubkey_ed25519": sk.ed25519_public().to_hex()})
        )
        .await,
        (401, json!("retrieve signature verification failed"))
    );
    assert_eq!(
        net.rpc(
            node_ed,
            "retrieve",
            json!({"pubkey": ed_acct.to_hex(), "timestamp": ts, "signature": badsig})
        )
        .await,
        (401, json!("retrieve signature verification failed"))
    );
    // A timestamp without a signature.
    assert_eq!(
        net.rpc(
            node_ed,
            "retrieve",
            json!({"pubkey": ed_acct.to_hex(), "timestamp": ts})
        )
        .await,
        (
            400,
            json!("invalid request: Required field 'signature' missing")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_retrieve_multiple() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let members = net.swarm_of(&account);
    let (m1, m2) = (members[0], members[1]);

    let base: &[u8] = b"This is my message \x00<--that's a null, this is invalid utf8: \x80\xff";
    let msgs = store_n(&net, m1, &account, base, 5).await;

    let check = |body: &Value, source: &[Stored], count: usize| {
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), count, "{body}");
        for m in messages {
            let stored = source.iter().find(|s| m["hash"] == s.hash).unwrap();
            assert_eq!(m["data"], b64(&stored.data));
            assert_eq!(m["timestamp"], stored.timestamp);
            assert_eq!(m["expiration"], stored.expiry);
        }
        assert_eq!(body["more"], false);
    };

    // Another member returns all five.
    let ts = now_ms();
    let (status, body) = net
        .rpc(m2, "retrieve", retrieve_params(&account, &sk, None, ts))
        .await;
    assert_eq!(status, 200, "{body}");
    check(&body, &msgs, 5);

    let new_msgs = store_n(&net, m2, &account, b"another msg", 6).await;

    // After the last of the first five: only the six new ones.
    let mut params = retrieve_params(&account, &sk, None, ts);
    params["last_hash"] = msgs[4].hash.clone().into();
    let (status, body) = net.rpc(m1, "retrieve", params).await;
    assert_eq!(status, 200, "{body}");
    check(&body, &new_msgs, 6);

    // An unknown last_hash returns everything.
    let mut params = retrieve_params(&account, &sk, None, ts);
    params["last_hash"] = "0123456789012345678901234567890123456789123".into();
    let (status, body) = net.rpc(m2, "retrieve", params).await;
    assert_eq!(status, 200, "{body}");
    let all: Vec<Stored> = msgs.into_iter().chain(new_msgs).collect();
    check(&body, &all, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_sig_timestamp() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x05, &sk);
    let node = net.swarm_of(&account)[0];
    let ns = 123;
    let store = |data: &str, ts: u64, sig_ts: Option<u64>| {
        let signed_ts = sig_ts.unwrap_or(ts);
        let mut params = json!({"pubkey": account.to_hex(), "namespace": ns, "timestamp": ts,
            "ttl": DAY_MS, "data": b64(data), "signature": sign(&sk, format!("store{ns}{signed_ts}"))});
        if let Some(sig_ts) = sig_ts {
            params["sig_timestamp"] = sig_ts.into();
        }
        params
    };

    // The timestamp doubles as the signature timestamp.
    let ts = now_ms();
    let (status, body) = net.rpc(node, "store", store("msg1", ts, None)).await;
    assert_eq!(status, 200, "{body}");
    assert_stored(&net, &account, &body, &hash(&account, ns, b"msg1"));

    // 100 s old: fine for the message, too old for the signature.
    let old = ts - 100_000;
    assert_eq!(
        net.rpc(node, "store", store("msg2", old, None)).await,
        (
            406,
            json!("store signature timestamp too far from current time")
        )
    );

    // A current sig_timestamp with the old message timestamp works.
    let (status, body) = net
        .rpc(node, "store", store("msg3", old, Some(now_ms())))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_stored(&net, &account, &body, &hash(&account, ns, b"msg3"));
}

// ---------------------------------------------------------------------------------------------
// test_subaccount_auth

/// A delegate key, its token for accounts of type `prefix` with `flags`, and the owner's
/// signature over the token (the reference's `subaccount.make_subaccount`).
fn make_subaccount(
    prefix: u8,
    owner: &Identity,
    flags: SubaccountFlags,
) -> (Identity, SubaccountToken, String) {
    let sub = user();
    let token = SubaccountToken::new(prefix, flags, &sub.ed25519_public());
    let sig = b64(token.sign(owner).to_bytes());
    (sub, token, sig)
}

const RW: SubaccountFlags = SubaccountFlags(0x03);

/// Retrieve params for `ns`, signed by a subaccount.
fn sub_retrieve(
    account: &AccountId,
    ns: i16,
    (sub, token, token_sig): &(Identity, SubaccountToken, String),
) -> Value {
    let ts = now_ms();
    json!({"pubkey": account.to_hex(), "namespace": ns, "timestamp": ts,
        "signature": sign(sub, format!("retrieve{ns}{ts}")),
        "subaccount": b64(token.as_bytes()), "subaccount_sig": token_sig})
}

/// A master-key-signed store to `ns` (not 0).
fn signed_store(account: &AccountId, owner: &Identity, ns: i16, data: &str, ts: u64) -> Value {
    json!({"pubkey": account.to_hex(), "namespace": ns, "timestamp": ts, "ttl": DAY_MS,
        "data": b64(data), "signature": sign(owner, format!("store{ns}{ts}"))})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_subaccount() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x03, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();
    let (status, body) = net
        .rpc(
            node,
            "store",
            signed_store(&account, &sk, 42, "abc 123", ts),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let h = hash(&account, 42, b"abc 123");
    assert_stored(&net, &account, &body, &h);

    let dude = make_subaccount(0x03, &sk, RW);
    assert_eq!(
        hex::encode(dude.1.as_bytes()),
        format!("03030000{}", dude.0.ed25519_public().to_hex())
    );
    for i in net.swarm_of(&account) {
        let (status, body) = net
            .rpc(i, "retrieve", sub_retrieve(&account, 42, &dude))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["hf"], json!([19, 4]));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "{body}");
        assert_eq!(messages[0]["hash"], h);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_subaccount() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x03, &sk);
    let node = net.swarm_of(&account)[0];
    let (dude, token, token_sig) = make_subaccount(0x03, &sk, RW);
    let ts = now_ms();
    let (status, body) = net
        .rpc(
            node,
            "store",
            json!({"pubkey": account.to_hex(), "namespace": 42, "timestamp": ts,
            "ttl": DAY_MS, "data": b64("abc 123"), "signature": sign(&dude, format!("store42{ts}")),
            "subaccount": b64(token.as_bytes()), "subaccount_sig": token_sig}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hf"], json!([19, 4]));
    let h = hash(&account, 42, b"abc 123");
    assert_stored(&net, &account, &body, &h);

    // The master key reads it back.
    let (status, body) = net
        .rpc(
            node,
            "retrieve",
            retrieve_params(&account, &sk, Some(42), now_ms()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    assert_eq!(messages[0]["hash"], h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_subaccount() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x03, &sk);
    let node = net.swarm_of(&account)[0];
    let msgs = store_n(&net, node, &account, b"omg123", 3).await;
    let now = now_ms();
    for m in &msgs {
        assert!(m.expiry < now + 60_000);
    }
    let (dude, token, token_sig) = make_subaccount(0x03, &sk, RW);
    let expire = |hashes: &[&str], new_exp: u64| {
        json!({"pubkey": account.to_hex(), "subaccount": b64(token.as_bytes()),
            "subaccount_sig": token_sig, "messages": hashes, "expiry": new_exp,
            "signature": sign(&dude, format!("expire{new_exp}{}", hashes.concat()))})
    };
    // Node signature: PUBKEY_HEX ‖ expiry ‖ requested ‖ updated (sorted); no `unchanged` part,
    // since the request itself asked for neither shorten nor extend.
    let check = |body: &Value, new_exp: u64, requested: &[&str], updated: &[&str]| {
        let mut updated = updated.to_vec();
        updated.sort_unstable();
        let signed = format!(
            "{}{new_exp}{}{}",
            account.to_hex(),
            requested.concat(),
            updated.concat()
        );
        for (key, entry) in swarm_entries(&net, &account, body) {
            let keys: BTreeSet<&str> = entry
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["expiry", "updated", "signature"]),
                "{key}: {entry}"
            );
            assert_eq!(entry["expiry"], new_exp, "{key}: {entry}");
            assert_eq!(entry["updated"], json!(updated), "{key}: {entry}");
            assert_node_sig(key, signed.as_bytes(), &entry["signature"]);
        }
    };

    // Extend one message from about a minute to a day.
    let new_exp = now + DAY_MS;
    let first = [msgs[0].hash.as_str()];
    let (status, body) = net.rpc(node, "expire", expire(&first, new_exp)).await;
    assert_eq!(status, 200, "{body}");
    check(&body, new_exp, &first, &first);

    // Set all three to half a day: a token without delete access may only extend, so the first
    // message (a day) keeps its expiry.
    let new_exp = now + DAY_MS / 2;
    let all: Vec<&str> = msgs.iter().map(|m| m.hash.as_str()).collect();
    let (status, body) = net.rpc(node, "expire", expire(&all, new_exp)).await;
    assert_eq!(status, 200, "{body}");
    check(&body, new_exp, &all, &all[1..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One linear scenario, as in the reference suite.
async fn revoke_subaccount() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x03, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();

    let (status, body) = net
        .rpc(
            node,
            "store",
            signed_store(&account, &sk, 42, "abc 123", ts),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let h = hash(&account, 42, b"abc 123");
    assert_stored(&net, &account, &body, &h);
    // Namespace −11: revoked subaccounts may still read it.
    let (status, body) = net
        .rpc(
            node,
            "store",
            signed_store(&account, &sk, -11, "def 123", ts),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let revoke_allowed = hash(&account, -11, b"def 123");
    assert_stored(&net, &account, &body, &revoke_allowed);

    let dude = make_subaccount(0x03, &sk, RW);
    let can_read = |ns: i16| {
        let params = sub_retrieve(&account, ns, &dude);
        let net = &net;
        async move {
            let (status, body) = net.rpc(node, "retrieve", params).await;
            match status {
                200 => {
                    let messages = body["messages"].as_array().unwrap();
                    assert_eq!(messages.len(), 1, "{body}");
                    Some(messages[0]["hash"].as_str().unwrap().to_owned())
                }
                401 => {
                    assert_eq!(body, json!("retrieve signature verification failed"));
                    None
                }
                _ => panic!("{status} {body}"),
            }
        }
    };
    assert_eq!(can_read(42).await, Some(h.clone()));

    // (Un)revocations: signed by the master key over name ‖ ts ‖ token bytes; every member
    // signs PUBKEY_HEX ‖ ts ‖ token bytes. Revoke entries carry only the signature (the
    // reference code sends no `count` there, whatever its header says); unrevoke ones a count.
    let revocation = |method: &'static str, tokens: Vec<SubaccountToken>| {
        let key = if method == "revoke_subaccount" {
            "revoke"
        } else {
            "unrevoke"
        };
        let ts = now_ms();
        let token_bytes: Vec<u8> = tokens.iter().flat_map(|t| t.as_bytes().to_vec()).collect();
        let mut message = format!("{method}{ts}").into_bytes();
        message.extend_from_slice(&token_bytes);
        let list: Value = if tokens.len() == 1 {
            b64(tokens[0].as_bytes()).into()
        } else {
            tokens.iter().map(|t| b64(t.as_bytes())).collect()
        };
        let params = json!({"pubkey": account.to_hex(), key: list, "timestamp": ts,
            "signature": b64(sk.sign(&message).to_bytes())});
        let mut expected = format!("{}{ts}", account.to_hex()).into_bytes();
        expected.extend_from_slice(&token_bytes);
        let net = &net;
        let account = &account;
        async move {
            let (status, body) = net.rpc(node, method, params).await;
            assert_eq!(status, 200, "{body}");
            let mut counts = Vec::new();
            for (key, entry) in swarm_entries(net, account, &body) {
                assert_node_sig(key, &expected, &entry["signature"]);
                let fields = entry.as_object().unwrap().len();
                if method == "revoke_subaccount" {
                    assert_eq!(fields, 1, "{key}: {entry}");
                } else {
                    assert_eq!(fields, 2, "{key}: {entry}");
                    counts.push(entry["count"].as_u64().unwrap());
                }
            }
            counts
        }
    };

    revocation("revoke_subaccount", vec![dude.1]).await;
    assert_eq!(can_read(42).await, None);
    assert_eq!(can_read(-11).await, Some(revoke_allowed));

    assert_eq!(
        revocation("unrevoke_subaccount", vec![dude.1]).await,
        [1, 1, 1]
    );
    assert_eq!(can_read(42).await, Some(h.clone()));

    // Revoke it again, then again together with 49 others: still revoked.
    revocation("revoke_subaccount", vec![dude.1]).await;
    let mut revoke_list = vec![dude.1];
    for _ in 0..49 {
        revoke_list.push(make_subaccount(0x03, &sk, RW).1);
    }
    revocation("revoke_subaccount", revoke_list.clone()).await;
    assert_eq!(can_read(42).await, None);

    // More than 50 at once is refused.
    let mut too_many = revoke_list.clone();
    too_many.push(make_subaccount(0x03, &sk, RW).1);
    let ts = now_ms();
    let tokens: Vec<String> = too_many.iter().map(|t| b64(t.as_bytes())).collect();
    assert_eq!(
        net.rpc(
            node,
            "revoke_subaccount",
            json!({"pubkey": account.to_hex(), "revoke": tokens,
            "timestamp": ts, "signature": sign(&sk, format!("revoke_subaccount{ts}"))})
        )
        .await,
        (
            400,
            json!(
                "invalid request: invalid revoke: cannot revoke more than 50 subaccounts at once"
            )
        )
    );

    // One more revocation pushes the oldest (dude) out of the 50 that are kept.
    let another = make_subaccount(0x03, &sk, RW).1;
    revoke_list.push(another);
    revocation("revoke_subaccount", vec![another]).await;
    assert_eq!(can_read(42).await, Some(h));

    // Unrevoking all 51 plus 10 never-revoked ones removes exactly the 50 kept.
    for _ in 0..10 {
        revoke_list.push(make_subaccount(0x03, &sk, RW).1);
    }
    assert_eq!(
        revocation("unrevoke_subaccount", revoke_list).await,
        [50, 50, 50]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One linear scenario, as in the reference suite.
async fn subaccount_permissions() {
    let net = Net::start(&[3]).await;
    let sk = user();
    let account = ed_account(0x03, &sk);
    let node = net.swarm_of(&account)[0];
    let ts = now_ms();

    let keys = [
        make_subaccount(0x03, &sk, SubaccountFlags::READ), // read-only
        make_subaccount(0x03, &sk, SubaccountFlags(0)),    // nothing
        make_subaccount(0x03, &sk, SubaccountFlags(0x07)), // read, write, delete
        make_subaccount(0x03, &sk, SubaccountFlags(0x0b)), // read, write, any prefix
    ];
    for (k, prefix) in keys
        .iter()
        .zip(["03010000", "03000000", "03070000", "030b0000"])
    {
        assert_eq!(
            hex::encode(k.1.as_bytes()),
            format!("{prefix}{}", k.0.ed25519_public().to_hex())
        );
    }
    let with_sub = |params: Value, k: &(Identity, SubaccountToken, String), message: String| {
        let mut params = params;
        params["signature"] = sign(&k.0, message).into();
        params["subaccount"] = b64(k.1.as_bytes()).into();
        params["subaccount_sig"] = k.2.clone().into();
        params
    };
    let empty = json!({"messages": [], "more": false});

    for (i, k) in keys.iter().enumerate() {
        let params = with_sub(
            json!({"pubkey": account.to_hex(), "namespace": 42, "timestamp": ts}),
            k,
            format!("retrieve42{ts}"),
        );
        let (status, body) = net.rpc(node, "retrieve", params).await;
        if i == 1 {
            assert_eq!(
                (status, body),
                (401, json!("retrieve signature verification failed"))
            );
        } else {
            assert_eq!(status, 200, "{i}: {body}");
            assert_eq!(without_misc(body), empty);
        }
    }

    let h = hash(&account, 42, b"abc 123");
    for (i, k) in keys.iter().enumerate() {
        let params = with_sub(
            json!({"pubkey": account.to_hex(), "namespace": 42, "timestamp": ts, "ttl": DAY_MS,
                   "data": b64("abc 123")}),
            k,
            format!("store42{ts}"),
        );
        let (status, body) = net.rpc(node, "store", params).await;
        if i <= 1 {
            assert_eq!(
                (status, body),
                (401, json!("store signature verification failed"))
            );
        } else {
            assert_eq!(status, 200, "{i}: {body}");
            assert_stored(&net, &account, &body, &h);
        }
    }

    for (i, k) in keys.iter().enumerate() {
        let params = with_sub(
            json!({"pubkey": account.to_hex(), "messages": [h]}),
            k,
            format!("delete{h}"),
        );
        let (status, body) = net.rpc(node, "delete", params).await;
        if i == 2 {
            assert_eq!(status, 200, "{body}");
            let signed = format!("{}{h}{h}", account.to_hex());
            for (key, entry) in swarm_entries(&net, &account, &body) {
                assert_eq!(entry["deleted"], json!([h]), "{key}: {entry}");
                assert_node_sig(key, signed.as_bytes(), &entry["signature"]);
            }
        } else {
            assert_eq!(
                (status, body),
                (401, json!("delete_msgs signature verification failed")),
                "{i}"
            );
        }
    }

    // Another type byte (same swarm): only a token with the any-prefix flag works.
    let other = AccountId::new(AccountKind::from_prefix(0x99), *account.key());
    for (i, k) in keys.iter().enumerate() {
        let params = with_sub(
            json!({"pubkey": other.to_hex(), "namespace": 42, "timestamp": ts}),
            k,
            format!("retrieve42{ts}"),
        );
        let (status, body) = net.rpc(node, "retrieve", params).await;
        if i == 3 {
            assert_eq!(status, 200, "{body}");
            assert_eq!(without_misc(body), empty);
        } else {
            assert_eq!(
                (status, body),
                (401, json!("retrieve signature verification failed")),
                "{i}"
            );
        }
    }
}
