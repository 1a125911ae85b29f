//! Every storage RPC method, run by the executor of in-process nodes (real SQLite stores, a
//! stopped clock, swarm traffic in memory): each success with what every swarm member signed,
//! and each refusal with the reference's status and text. The same behaviour over HTTPS and
//! real processes is in `crates/shallot/tests/node_*.rs`.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use serde_json::{json, Value};
use shallot_node::exec::Origin;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::signing::SignedResponse;
use support::{b64, hashes, signed_by, Cluster, User, DAY_MS, T0};

/// One swarm (10) of three nodes.
fn swarm() -> Cluster {
    Cluster::start(&[10, 10, 10])
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// The swarm entries of a recursive answer, by node key.
fn members(body: &Value) -> &serde_json::Map<String, Value> {
    body["swarm"].as_object().unwrap()
}

/// Stores `data` in `ns` through node 0 and returns its hash; every member stores it.
async fn stored(c: &Cluster, user: &User, ns: i16, data: &[u8]) -> String {
    let (status, body) = c.rpc(0, "store", user.store(ns, data, T0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(members(&body).len(), 3, "{body}");
    body["hash"].as_str().unwrap().to_owned()
}

/// What node `i` holds for `user` in `ns`.
async fn held(c: &Cluster, i: usize, user: &User, ns: i16) -> Vec<String> {
    let (status, body) = c.rpc(i, "retrieve", user.retrieve(ns, T0)).await;
    assert_eq!(status, 200, "{body}");
    hashes(&body)
}

#[tokio::test]
async fn store_is_replicated_and_signed_by_every_member() {
    let c = swarm();
    let user = User::new(1);
    let (status, body) = c.rpc(0, "store", user.store(0, b"hello", T0)).await;
    assert_eq!(status, 200, "{body}");
    let hash = user.hash(0, b"hello");
    assert_eq!(body["hash"], hash.as_str());
    assert_eq!(body["t"], T0);
    assert_eq!(members(&body).len(), 3);
    let parsed: MessageHash = hash.parse().unwrap();
    let message = SignedResponse::Store { hash: &parsed }.message();
    for i in 0..3 {
        let entry = &members(&body)[&c.hex(i)];
        assert_eq!(entry["hash"], hash.as_str(), "{entry}");
        assert!(entry.get("already").is_none(), "{entry}");
        assert_eq!(entry["expiry"], T0 + DAY_MS, "{entry}");
        assert!(signed_by(&c.key(i), &message, entry), "node {i}: {entry}");
        // Only the entry node says its time.
        assert_eq!(entry.get("t").is_some(), i == 0, "{entry}");
        assert_eq!(held(&c, i, &user, 0).await, vec![hash.clone()], "node {i}");
    }
    // The same message again: every member already has it.
    let (status, body) = c.rpc(1, "store", user.store(0, b"hello", T0)).await;
    assert_eq!(status, 200);
    assert!(
        members(&body).values().all(|e| e["already"] == true),
        "{body}"
    );
    // A signed namespace.
    assert_eq!(
        stored(&c, &user, 5, b"config").await,
        user.hash(5, b"config")
    );
    // Node 0 stored three times (the repeat came to it forwarded).
    assert!(c.nodes[0].metrics.render(&[]).contains(
        "shallot_stores_total 3
"
    ));
}

#[tokio::test]
async fn store_refusals() {
    let c = swarm();
    let user = User::new(1);
    let mut short = user.store(0, b"x", T0);
    short["ttl"] = 5_000.into();
    let mut future = user.store(0, b"x", T0 + 11_000);
    future["ttl"] = DAY_MS.into();
    let mut unsigned = user.store(2, b"x", T0);
    unsigned.as_object_mut().unwrap().remove("signature");
    let mut forged = user.store(2, b"x", T0);
    forged["signature"] = User::new(2).sign(format!("store2{T0}")).into();
    let stale = user.store(2, b"x", T0 - 61_000);
    for (params, status, body) in [
        (short, 403, "Provided expiry/TTL is not valid."),
        (future, 406, "Timestamp error: check your clock"),
        (
            unsigned,
            401,
            "store: signature required to store to namespace 2",
        ),
        (forged, 401, "store signature verification failed"),
        (
            stale,
            406,
            "store signature timestamp too far from current time",
        ),
    ] {
        assert_eq!(c.rpc(0, "store", params).await, (status, text(body)));
    }
    for i in 0..3 {
        assert!(held(&c, i, &user, 2).await.is_empty());
    }
}

#[tokio::test]
async fn a_request_for_another_swarm_gets_421_with_its_members() {
    let c = Cluster::start(&[10, 10, 20]);
    let view = c.nodes[0].view();
    let theirs = User::in_swarm(&view, 20, 1);
    for method in ["store", "retrieve"] {
        let params = if method == "store" {
            theirs.store(0, b"x", T0)
        } else {
            theirs.retrieve(0, T0)
        };
        let (status, body) = c.rpc(0, method, params).await;
        assert_eq!(status, 421, "{body}");
        let snodes = body["snodes"].as_array().unwrap();
        assert_eq!(snodes.len(), 1, "{body}");
        assert_eq!(snodes[0]["pubkey_ed25519"], c.hex(2), "{body}");
    }
    // Swarm 10's store went to its two members only.
    let ours = User::in_swarm(&view, 10, 1);
    let (status, body) = c.rpc(0, "store", ours.store(0, b"x", T0)).await;
    assert_eq!(status, 200);
    assert_eq!(
        members(&body).keys().cloned().collect::<Vec<_>>().len(),
        2,
        "{body}"
    );
    assert!(held(&c, 1, &ours, 0).await.len() == 1);
}

#[tokio::test]
async fn retrieve_pages_and_refusals() {
    let c = swarm();
    let user = User::new(1);
    let first = stored(&c, &user, 3, b"one").await;
    let second = stored(&c, &user, 3, b"two").await;
    assert_eq!(
        held(&c, 2, &user, 3).await,
        vec![first.clone(), second.clone()]
    );
    // After `last_hash`, only the newer message.
    let mut after = user.retrieve(3, T0);
    after["last_hash"] = first.clone().into();
    let (status, body) = c.rpc(1, "retrieve", after).await;
    assert_eq!(status, 200);
    assert_eq!(hashes(&body), vec![second]);
    assert_eq!(body["more"], false);
    // One at a time: `more` says there is another.
    let mut one = user.retrieve(3, T0);
    one["max_count"] = 1.into();
    let (_, body) = c.rpc(0, "retrieve", one).await;
    assert_eq!((hashes(&body), &body["more"]), (vec![first], &json!(true)));

    let unsigned = user.params(json!({}));
    let mut forged = user.retrieve(3, T0);
    forged["signature"] = User::new(2).sign(format!("retrieve3{T0}")).into();
    for (params, status, body) in [
        (unsigned, 401, "retrieve: request signature required"),
        (forged, 401, "retrieve signature verification failed"),
        (
            user.retrieve(3, T0 - 61_000),
            406,
            "retrieve timestamp too far from current time",
        ),
    ] {
        assert_eq!(c.rpc(0, "retrieve", params).await, (status, text(body)));
    }
    // Legacy closed groups read without a signature.
    let (status, body) = c
        .rpc(0, "retrieve", user.params(json!({"namespace": -10})))
        .await;
    assert_eq!((status, hashes(&body).len()), (200, 0), "{body}");
}

#[tokio::test]
async fn delete_on_every_member_and_its_refusals() {
    let c = swarm();
    let user = User::new(1);
    let hash = stored(&c, &user, 0, b"bye").await;
    let params =
        user.params(json!({"messages": [hash], "signature": user.sign(format!("delete{hash}"))}));
    let mut forged = params.clone();
    forged["signature"] = User::new(2).sign(format!("delete{hash}")).into();
    assert_eq!(
        c.rpc(0, "delete", forged).await,
        (401, text("delete_msgs signature verification failed"))
    );
    let (status, body) = c.rpc(0, "delete", params.clone()).await;
    assert_eq!(status, 200, "{body}");
    let mut message = user.hex().into_bytes();
    message.extend_from_slice(hash.as_bytes());
    message.extend_from_slice(hash.as_bytes());
    for i in 0..3 {
        let entry = &members(&body)[&c.hex(i)];
        assert_eq!(entry["deleted"], json!([hash]), "{entry}");
        assert!(signed_by(&c.key(i), &message, entry), "node {i}");
        assert!(held(&c, i, &user, 0).await.is_empty());
    }
    // Nothing left to delete: 200 with empty lists, or 404 when the client requires a deletion.
    let (status, body) = c.rpc(0, "delete", params.clone()).await;
    assert_eq!(status, 200);
    assert!(members(&body).values().all(|e| e["deleted"] == json!([])));
    let mut required = params;
    required["required"] = true.into();
    assert_eq!(c.rpc(0, "delete", required).await.0, 404);
}

#[tokio::test]
async fn delete_all_and_its_clock_windows() {
    let c = swarm();
    let user = User::new(1);
    let a = stored(&c, &user, 0, b"a").await;
    let b = stored(&c, &user, 5, b"b").await;
    let all = |t: u64| {
        user.params(json!({"namespace": "all", "timestamp": t,
            "signature": user.sign(format!("delete_allall{t}"))}))
    };
    let mut forged = all(T0);
    forged["signature"] = User::new(2).sign(format!("delete_allall{T0}")).into();
    assert_eq!(
        c.rpc(0, "delete_all", forged).await,
        (401, text("delete_all signature verification failed"))
    );
    let stale = all(T0 - 65_000);
    assert_eq!(
        c.rpc(0, "delete_all", stale.clone()).await,
        (406, text("delete_all timestamp too far from current time"))
    );
    // A forwarded request gets 70 s: the same request from a swarm peer is run (here only).
    let (status, body) = c.call(1, "delete_all", stale, Origin::Peer).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["deleted"].is_object(), "{body}");
    assert!(held(&c, 1, &user, 0).await.is_empty());
    assert_eq!(held(&c, 0, &user, 0).await, vec![a.clone()]);

    let (status, body) = c.rpc(0, "delete_all", all(T0)).await;
    assert_eq!(status, 200, "{body}");
    let mut sorted = [a.clone(), b.clone()];
    sorted.sort();
    let message = format!("{}{T0}{}", user.hex(), sorted.concat());
    for i in [0, 2] {
        let entry = &members(&body)[&c.hex(i)];
        assert_eq!(entry["deleted"], json!({"0": [a], "5": [b]}), "{entry}");
        assert!(signed_by(&c.key(i), message.as_bytes(), entry), "node {i}");
    }
    for i in 0..3 {
        assert!(held(&c, i, &user, 0).await.is_empty());
        assert!(held(&c, i, &user, 5).await.is_empty());
    }
}

#[tokio::test]
async fn delete_before_and_its_refusals() {
    let c = swarm();
    let user = User::new(1);
    let old = stored(&c, &user, 0, b"old").await;
    c.clock.advance(10_000);
    let (status, body) = c.rpc(0, "store", user.store(0, b"new", T0 + 10_000)).await;
    assert_eq!(status, 200, "{body}");
    let new = user.hash(0, b"new");
    let before = |t: u64| {
        user.params(json!({"before": t, "signature": user.sign(format!("delete_before{t}"))}))
    };
    let mut forged = before(T0 + 5_000);
    forged["signature"] = User::new(2)
        .sign(format!("delete_before{}", T0 + 5_000))
        .into();
    assert_eq!(
        c.rpc(0, "delete_before", forged).await,
        (401, text("delete_before signature verification failed"))
    );
    assert_eq!(
        c.rpc(0, "delete_before", before(T0 + 71_000)).await,
        (401, text("delete_before timestamp too far in the future"))
    );
    let (status, body) = c.rpc(0, "delete_before", before(T0 + 5_000)).await;
    assert_eq!(status, 200, "{body}");
    for i in 0..3 {
        assert_eq!(members(&body)[&c.hex(i)]["deleted"], json!([old]));
        assert_eq!(held(&c, i, &user, 0).await, vec![new.clone()], "node {i}");
    }
}

#[tokio::test]
async fn expire_all_and_its_refusals() {
    let c = swarm();
    let user = User::new(1);
    let hash = stored(&c, &user, 0, b"a").await;
    let expire_all = |e: u64| {
        user.params(json!({"expiry": e, "signature": user.sign(format!("expire_all{e}"))}))
    };
    let mut forged = expire_all(T0 + 60_000);
    forged["signature"] = User::new(2)
        .sign(format!("expire_all{}", T0 + 60_000))
        .into();
    assert_eq!(
        c.rpc(0, "expire_all", forged).await,
        (401, text("expire_all signature verification failed"))
    );
    assert_eq!(
        c.rpc(0, "expire_all", expire_all(T0 - 61_000)).await,
        (406, text("expire_all timestamp should be >= current time"))
    );
    let (status, body) = c.rpc(0, "expire_all", expire_all(T0 + 60_000)).await;
    assert_eq!(status, 200, "{body}");
    let message = format!("{}{}{hash}", user.hex(), T0 + 60_000);
    for i in 0..3 {
        let entry = &members(&body)[&c.hex(i)];
        assert_eq!(entry["updated"], json!([hash]), "{entry}");
        assert!(signed_by(&c.key(i), message.as_bytes(), entry));
    }
    let expiries = get_expiries(&c, &user, &hash).await;
    assert_eq!(expiries, json!({hash.clone(): T0 + 60_000}));
}

async fn get_expiries(c: &Cluster, user: &User, hash: &str) -> Value {
    let params = user.params(json!({"messages": [hash], "timestamp": T0,
        "signature": user.sign(format!("get_expiries{T0}{hash}"))}));
    let (status, body) = c.rpc(2, "get_expiries", params).await;
    assert_eq!(status, 200, "{body}");
    body["expiries"].clone()
}

#[tokio::test]
async fn expire_shortens_extends_and_refuses() {
    let c = swarm();
    let user = User::new(1);
    let hash = stored(&c, &user, 0, b"a").await;
    let expire = |e: u64, flag: &str| {
        let mut p = user.params(json!({"messages": [hash], "expiry": e,
            "signature": user.sign(format!("expire{flag}{e}{hash}"))}));
        if !flag.is_empty() {
            p[flag] = true.into();
        }
        p
    };
    let later = T0 + 2 * DAY_MS;
    let sooner = T0 + DAY_MS / 2;
    // `shorten` does not lengthen: unchanged, with the current expiry.
    let (status, body) = c.rpc(0, "expire", expire(later, "shorten")).await;
    assert_eq!(status, 200, "{body}");
    for i in 0..3 {
        let entry = &members(&body)[&c.hex(i)];
        assert_eq!(entry["updated"], json!([]), "{entry}");
        assert_eq!(
            entry["unchanged"],
            json!({hash.clone(): T0 + DAY_MS}),
            "{entry}"
        );
    }
    let (status, body) = c.rpc(1, "expire", expire(sooner, "shorten")).await;
    assert_eq!(status, 200, "{body}");
    let message = format!("{}{sooner}{hash}{hash}", user.hex());
    for i in 0..3 {
        let entry = &members(&body)[&c.hex(i)];
        assert_eq!(entry["updated"], json!([hash]), "{entry}");
        assert!(
            signed_by(&c.key(i), message.as_bytes(), entry),
            "node {i}: {entry}"
        );
    }
    let (status, _) = c.rpc(0, "expire", expire(later, "")).await;
    assert_eq!(status, 200);
    assert_eq!(
        get_expiries(&c, &user, &hash).await,
        json!({hash.clone(): later})
    );
    // Capped at 30 days from now.
    let (_, body) = c.rpc(0, "expire", expire(T0 + 40 * DAY_MS, "")).await;
    assert_eq!(body["swarm"][c.hex(0)]["expiry"], T0 + 30 * DAY_MS);

    let mut forged = expire(later, "");
    forged["signature"] = User::new(2).sign(format!("expire{later}{hash}")).into();
    assert_eq!(
        c.rpc(0, "expire", forged).await,
        (401, text("expire: signature verification failed"))
    );
    assert_eq!(
        c.rpc(0, "expire", expire(T0 - 61_000, "")).await,
        (401, text("expire: timestamp should be >= current time"))
    );
}

#[tokio::test]
async fn multi_expiry_waits_for_its_hardfork() {
    let c = Cluster::with(&[10], (19, 3), &shallot_store::StoreConfig::default());
    let user = User::new(1);
    let (a, b) = (user.hash(0, b"a"), user.hash(0, b"b"));
    let (e1, e2) = (T0 + 1000, T0 + 2000);
    let params = user.params(json!({"messages": [a, b], "expiry": [e1, e2],
        "signature": user.sign(format!("expire{e1}{e2}{a}{b}"))}));
    assert_eq!(
        c.rpc(0, "expire", params).await,
        (
            403,
            text("expire: multi-expiry requests are not yet active on the network")
        )
    );
}

#[tokio::test]
async fn get_expiries_refusals() {
    let c = swarm();
    let user = User::new(1);
    let hash = stored(&c, &user, 0, b"a").await;
    let at = |t: u64, signer: &User| {
        user.params(json!({"messages": [hash], "timestamp": t,
            "signature": signer.sign(format!("get_expiries{t}{hash}"))}))
    };
    assert_eq!(
        c.rpc(0, "get_expiries", at(T0 - 61_000, &user)).await,
        (
            406,
            text("get_expiries timestamp too far from current time")
        )
    );
    assert_eq!(
        c.rpc(0, "get_expiries", at(T0, &User::new(2))).await,
        (401, text("get_expiries signature verification failed"))
    );
    let (status, body) = c.rpc(0, "get_expiries", at(T0, &user)).await;
    assert_eq!(
        (status, &body["expiries"]),
        (200, &json!({hash: T0 + DAY_MS}))
    );
}

/// A `(un)revoke_subaccount` of `token` signed by `signer` at `t`.
fn revocation(user: &User, method: &str, token: &[u8], t: u64, signer: &User) -> Value {
    let mut text = format!("{method}{t}").into_bytes();
    text.extend_from_slice(token);
    let key = if method == "revoke_subaccount" {
        "revoke"
    } else {
        "unrevoke"
    };
    user.params(json!({key: b64(token), "timestamp": t, "signature": signer.sign(&text)}))
}

#[tokio::test]
async fn a_revoked_subaccount_is_refused_on_every_member_until_unrevoked() {
    let c = swarm();
    let owner = User::new(1);
    let sub = User::new(2);
    let (token, token_sig) = owner.subaccount(&sub);
    let sub_store = |data: &str| {
        let mut p = owner.params(json!({"namespace": 5, "timestamp": T0, "ttl": DAY_MS,
            "data": b64(data), "signature": sub.sign(format!("store5{T0}")),
            "subaccount": b64(token.as_bytes()), "subaccount_sig": token_sig}));
        p["pubkey"] = owner.hex().into();
        p
    };
    let (status, body) = c.rpc(0, "store", sub_store("before")).await;
    assert_eq!(status, 200, "{body}");
    let before = owner.hash(5, b"before");
    // The subaccount's delete and expire of that message (signed by the subaccount).
    let sub_auth = |text: String, mut p: Value| {
        p["pubkey"] = owner.hex().into();
        p["signature"] = sub.sign(text).into();
        p["subaccount"] = b64(token.as_bytes()).into();
        p["subaccount_sig"] = token_sig.clone().into();
        p
    };
    let later = T0 + 2 * DAY_MS;
    let sub_expire = sub_auth(
        format!("expire{later}{before}"),
        json!({"messages": [before], "expiry": later}),
    );
    let sub_delete = sub_auth(format!("delete{before}"), json!({"messages": [before]}));

    for method in ["revoke_subaccount", "unrevoke_subaccount"] {
        let stale = revocation(&owner, method, token.as_bytes(), T0 - 61_000, &owner);
        let prefix = method;
        assert_eq!(
            c.rpc(0, method, stale).await,
            (
                406,
                text(&format!("{prefix} timestamp too far from current time"))
            )
        );
        // Only the main key may: the subaccount's own signature is refused.
        let by_sub = revocation(&owner, method, token.as_bytes(), T0, &sub);
        assert_eq!(
            c.rpc(0, method, by_sub).await,
            (
                401,
                text(&format!("{prefix} signature verification failed"))
            )
        );
    }

    let (status, body) = c
        .rpc(
            1,
            "revoke_subaccount",
            revocation(&owner, "revoke_subaccount", token.as_bytes(), T0, &owner),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut message = format!("{}{T0}", owner.hex()).into_bytes();
    message.extend_from_slice(token.as_bytes());
    for i in 0..3 {
        assert!(
            signed_by(&c.key(i), &message, &members(&body)[&c.hex(i)]),
            "node {i}"
        );
        // Refused at every member, whichever the client asks.
        let (status, body) = c.rpc(i, "store", sub_store("after")).await;
        assert_eq!(
            (status, body),
            (401, text("store signature verification failed"))
        );
        assert_eq!(
            c.rpc(i, "expire", sub_expire.clone()).await,
            (401, text("expire: signature verification failed"))
        );
        assert_eq!(
            c.rpc(i, "delete", sub_delete.clone()).await,
            (401, text("delete_msgs signature verification failed"))
        );
        assert_eq!(
            held(&c, i, &owner, 5).await,
            vec![before.clone()],
            "node {i}"
        );
    }

    let (status, body) = c
        .rpc(
            2,
            "unrevoke_subaccount",
            revocation(&owner, "unrevoke_subaccount", token.as_bytes(), T0, &owner),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(members(&body).values().all(|e| e["count"] == 1), "{body}");
    let (status, body) = c.rpc(0, "store", sub_store("again")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.rpc(1, "delete", sub_delete).await;
    assert_eq!(status, 200, "{body}");
    for i in 0..3 {
        assert_eq!(
            held(&c, i, &owner, 5).await,
            vec![owner.hash(5, b"again")],
            "node {i}"
        );
    }
}

#[tokio::test]
async fn get_swarm_info_and_oxend_request() {
    let c = Cluster::start(&[10, 10, 20]);
    let user = User::in_swarm(&c.nodes[0].view(), 20, 1);
    for method in ["get_swarm", "get_snodes_for_pubkey"] {
        let (status, body) = c.rpc(0, method, user.params(json!({}))).await;
        assert_eq!(status, 200, "{body}");
        let keys: Vec<&Value> = body["snodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| &n["pubkey_ed25519"])
            .collect();
        assert_eq!(keys, vec![&json!(c.hex(2))], "{body}");
    }
    let (status, body) = c.rpc(1, "info", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], json!([2, 6, 2]));
    assert_eq!((&body["hf"], &body["t"]), (&json!([19, 4]), &json!(T0)));

    let (status, body) = c
        .rpc(0, "oxend_request", json!({"endpoint": "get_service_nodes"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["service_node_states"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        c.rpc(
            0,
            "oxend_request",
            json!({"endpoint": "ons_resolve", "params": {"name_hash": "x"}})
        )
        .await,
        (400, text("ons_resolve is not supported on this network"))
    );
}

#[tokio::test]
async fn batch_sequence_and_ifelse() {
    let c = swarm();
    let user = User::new(1);
    let store = json!({"method": "store", "params": user.store(0, b"in a batch", T0)});
    let bad = json!({"method": "retrieve", "params": user.params(json!({}))});
    let info = json!({"method": "info", "params": {}});

    let (status, body) = c
        .rpc(0, "batch", json!({"requests": [bad, store, info]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["code"])
        .collect();
    assert_eq!(codes, vec![&json!(401), &json!(200), &json!(200)], "{body}");
    assert_eq!(
        body["results"][0]["body"],
        "retrieve: request signature required"
    );
    assert_eq!(
        held(&c, 2, &user, 0).await,
        vec![user.hash(0, b"in a batch")]
    );

    // A sequence stops at the first failure.
    let (status, body) = c
        .rpc(0, "sequence", json!({"requests": [info, bad, info]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["results"][1]["code"], 401);

    for (condition, taken) in [
        (json!({"hf_at_least": [19, 4]}), true),
        (json!({"height_at_least": 5}), false),
    ] {
        let (status, body) = c
            .rpc(0, "ifelse", json!({"if": condition, "then": info, "else": {"method": "get_swarm", "params": user.params(json!({}))}}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["condition"], taken, "{body}");
        assert_eq!(body["result"]["code"], 200);
        assert_eq!(
            body["result"]["body"].get("version").is_some(),
            taken,
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_waiting_retrieve_answers_when_a_message_arrives() {
    let c = swarm();
    let user = User::new(1);
    let mut params = user.retrieve(0, T0);
    params["wait_ms"] = 20_000.into();
    let waiting = {
        let node = c.nodes[1].clone();
        let body = json!({"method": "retrieve", "params": params}).to_string();
        let request = shallot_proto::rpc::parse_body(body.as_bytes()).unwrap();
        tokio::spawn(async move { node.execute(request, Origin::Client).await })
    };
    // Stored through node 0, replicated to node 1, which wakes its waiter.
    let hash = stored(&c, &user, 0, b"wake up").await;
    let (status, body) = support::split(waiting.await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(hashes(&body), vec![hash]);
    assert_eq!(body["wait_ms"], 20_000);
}

/// A group member's batch of retrieves of the group namespaces (kicked notices, messages,
/// Info, Members, keys), signed with its subaccount token, each asking to wait.
fn member_wait(group: &User, member: &User, token: &[u8], token_sig: &str) -> Value {
    let requests: Vec<Value> = [-11i16, 11, 13, 14, 12]
        .iter()
        .map(|ns| {
            let params = group.params(json!({"namespace": ns, "timestamp": T0,
                "signature": member.sign(format!("retrieve{}{T0}", support::ns_text(*ns))),
                "subaccount": b64(token), "subaccount_sig": token_sig, "wait_ms": 20_000}));
            json!({"method": "retrieve", "params": params})
        })
        .collect();
    json!({"requests": requests})
}

#[tokio::test]
async fn a_member_waits_on_the_group_namespaces_with_its_subaccount_until_revoked() {
    let c = swarm();
    let group = User::new(1);
    let member = User::new(2);
    let (token, token_sig) = group.subaccount(&member);
    let params = member_wait(&group, &member, token.as_bytes(), &token_sig);
    let waiting = {
        let node = c.nodes[1].clone();
        let body = json!({"method": "batch", "params": params.clone()}).to_string();
        let request = shallot_proto::rpc::parse_body(body.as_bytes()).unwrap();
        tokio::spawn(async move { node.execute(request, Origin::Client).await })
    };
    // A message stored in namespace 11 through node 0 reaches node 1, which wakes the wait.
    let hash = stored(&c, &group, 11, b"to the group").await;
    let (status, body) = support::split(waiting.await.unwrap());
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "{body}");
    for result in results {
        assert_eq!(result["code"], 200, "{body}");
        assert_eq!(result["body"]["wait_ms"], 20_000, "held: {body}");
    }
    assert_eq!(hashes(&results[1]["body"]), vec![hash], "{body}");

    // Revoked, the member still reads the kicked notices, but nothing else: the batch answers
    // at once (a refused retrieve is not waited on).
    let (status, _) = c
        .rpc(
            0,
            "revoke_subaccount",
            revocation(&group, "revoke_subaccount", token.as_bytes(), T0, &group),
        )
        .await;
    assert_eq!(status, 200);
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        c.rpc(1, "batch", params),
    );
    let (status, body) = answer.await.expect("answered without waiting");
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["code"])
        .collect();
    assert_eq!(
        codes,
        [
            &json!(200),
            &json!(401),
            &json!(401),
            &json!(401),
            &json!(401)
        ],
        "{body}"
    );
}

/// A group member's retrieve of the group messages (namespace 11), signed with its subaccount
/// token, asking to wait.
fn member_retrieve(group: &User, member: &User) -> Value {
    let (token, token_sig) = group.subaccount(member);
    group.params(json!({"namespace": 11, "timestamp": T0,
        "signature": member.sign(format!("retrieve11{T0}")),
        "subaccount": b64(token.as_bytes()), "subaccount_sig": token_sig, "wait_ms": 20_000}))
}

/// Starts `params` as a retrieve at node 1, run to its answer in the background.
fn spawn_retrieve(c: &Cluster, params: &Value) -> tokio::task::JoinHandle<(u16, Value)> {
    let node = c.nodes[1].clone();
    let body = json!({"method": "retrieve", "params": params}).to_string();
    let request = shallot_proto::rpc::parse_body(body.as_bytes()).unwrap();
    tokio::spawn(async move { support::split(node.execute(request, Origin::Client).await) })
}

#[tokio::test(start_paused = true)]
async fn every_member_of_a_large_group_gets_push_and_one_member_is_still_capped() {
    let c = swarm();
    let group = User::new(1);
    // Ten members online, one wait each, plus a first member's other seven devices: more than
    // the account's 8, but no member holds more than its own 8.
    let members: Vec<User> = (2..12).map(User::new).collect();
    let mut waits: Vec<_> = members
        .iter()
        .map(|m| spawn_retrieve(&c, &member_retrieve(&group, m)))
        .collect();
    for _ in 0..7 {
        waits.push(spawn_retrieve(&c, &member_retrieve(&group, &members[0])));
    }
    let all_held = async {
        while c.nodes[1].waiters.len() < waits.len() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), all_held)
        .await
        .expect("every member's waits held");
    // A ninth wait with the first member's token is over its cap: answered at once, not held.
    let started = tokio::time::Instant::now();
    let (status, body) = c
        .rpc(1, "retrieve", member_retrieve(&group, &members[0]))
        .await;
    assert_eq!((status, &body["wait_ms"]), (200, &json!(0)), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // Every held wait was granted its 20 s and ends at its deadline with nothing new.
    for wait in waits {
        let (status, body) = wait.await.unwrap();
        assert_eq!((status, &body["wait_ms"]), (200, &json!(20_000)), "{body}");
    }
    assert!(started.elapsed() >= std::time::Duration::from_secs(19));
    assert!(c.nodes[1].waiters.is_empty());
}

#[tokio::test]
async fn forwarded_requests_run_here_only_and_the_rest_is_refused() {
    let c = swarm();
    let user = User::new(1);
    // A forwarded store is this node's entry alone, not replicated further.
    let (status, body) = c
        .call(2, "store", user.store(0, b"x", T0), Origin::Peer)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hash"], user.hash(0, b"x"));
    assert!(body.get("swarm").is_none(), "{body}");
    assert_eq!(held(&c, 2, &user, 0).await.len(), 1);
    assert!(held(&c, 0, &user, 0).await.is_empty());

    let forward = |i: usize, body: &str| {
        let node = c.nodes[i].clone();
        let body = body.to_owned();
        async move {
            let mut seen =
                shallot_node::observe::Seen::new(&node, shallot_node::observe::Role::Replica);
            support::split(
                shallot_node::peer_inbound::forwarded(&node, body.as_bytes(), &mut seen).await,
            )
        }
    };
    assert_eq!(
        forward(0, &json!({"method": "info", "params": {}}).to_string()).await,
        (
            400,
            text("invalid request: received invalid forwarded non-forwardable request")
        )
    );
    assert_eq!(forward(0, "{").await, (400, text("invalid json")));
}

#[tokio::test]
async fn malformed_requests_are_refused_before_running() {
    let c = swarm();
    let user = User::new(1);
    assert_eq!(
        c.rpc(0, "get_stats", json!({})).await,
        (400, text("no method get_stats"))
    );
    let mut bad_data = user.store(0, b"x", T0);
    bad_data["data"] = "not base64!".into();
    assert_eq!(
        c.rpc(0, "store", bad_data).await,
        (
            400,
            text("invalid request: Invalid 'data' value: not base64 encoded")
        )
    );
    let (status, body) = c.rpc(0, "get_swarm", json!({"pubkey": "05abc"})).await;
    assert_eq!(status, 400, "{body}");
    for i in 0..3 {
        assert!(held(&c, i, &user, 0).await.is_empty());
    }
}
