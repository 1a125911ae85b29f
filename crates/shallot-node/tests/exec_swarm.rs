//! Replication and handoff between in-process nodes (real SQLite stores, swarm traffic in
//! memory): what a client sees when a peer is down, refuses or lags behind, who may forward
//! and hand over, and where messages and revocations go when swarms change.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use shallot_directory::NodeRecord;
use shallot_node::handoff;
use shallot_node::node_api::{HandoffBatch, HandoffMessage};
use shallot_node::observe::{Role, Seen};
use shallot_node::peer_inbound;
use shallot_node::peers::{PeerError, PeerReply};
use shallot_node::state::Node;
use shallot_node::swarm_link::SwarmLink;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{Ed25519Pub, Namespace};
use shallot_store::{InboxQuota, StoreConfig};
use support::{b64, hashes, split, Cluster, User, DAY_MS, T0};

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

async fn held(c: &Cluster, i: usize, user: &User, ns: i16) -> Vec<String> {
    let (status, body) = c.rpc(i, "retrieve", user.retrieve(ns, T0)).await;
    assert_eq!(status, 200, "{body}");
    hashes(&body)
}

/// Runs the handoff node `i` plans for the change from `old` to its current view.
async fn hand_off(c: &Cluster, i: usize, old: &shallot_directory::NetworkView) {
    let node = c.nodes[i].clone();
    let new = node.view();
    let plan = handoff::plan(&node.identity.ed25519_public(), old, &new);
    handoff::execute(node, new, plan).await;
}

fn metric(node: &Node, series: &str) -> String {
    let text = node.metrics.render(&[]);
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or("absent")
        .to_owned()
}

#[tokio::test]
async fn a_dead_peer_is_a_timeout_entry_and_the_store_still_succeeds() {
    let c = Cluster::start(&[10, 10, 10]);
    let user = User::new(1);
    c.net.set_down(c.key(2), true);
    let (status, body) = c.rpc(0, "store", user.store(0, b"x", T0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["swarm"][c.hex(2)],
        json!({"failed": true, "timeout": true})
    );
    assert!(body["swarm"][c.hex(1)]["signature"].is_string(), "{body}");
    assert_eq!(metric(&c.nodes[0], "shallot_peer_failures_total"), "1");
    // With every peer down the entry node's own result still counts.
    c.net.set_down(c.key(1), true);
    let (status, body) = c.rpc(0, "store", user.store(0, b"y", T0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hash"], user.hash(0, b"y"));
}

#[tokio::test]
async fn every_member_failing_is_a_500_and_a_full_inbox_a_429() {
    let quota = StoreConfig {
        inbox_quota: InboxQuota {
            max_messages: 1,
            max_bytes: 0,
        },
        ..StoreConfig::default()
    };
    let c = Cluster::with(&[10, 10, 10], (19, 4), &quota);
    let user = User::new(1);
    let (status, _) = c.rpc(0, "store", user.store(0, b"first", T0)).await;
    assert_eq!(status, 200);
    assert_eq!(
        c.rpc(0, "store", user.store(0, b"second", T0)).await,
        (
            429,
            text("store: the recipient's inbox is full (per-account quota of unsigned messages); try later")
        )
    );
    // Signed namespaces are not under the quota.
    let (status, body) = c.rpc(0, "store", user.store(5, b"config", T0)).await;
    assert_eq!(status, 200, "{body}");

    // Databases too small for the message: every member answers query_failure.
    let tiny = StoreConfig {
        max_db_bytes: 64 * 1024,
        ..StoreConfig::default()
    };
    let c = Cluster::with(&[10, 10], (19, 4), &tiny);
    let (status, body) = c.rpc(0, "store", user.store(0, &vec![7; 76_000], T0)).await;
    assert_eq!(status, 500, "{body}");
    for i in 0..2 {
        let entry = &body["swarm"][c.hex(i)];
        assert_eq!(
            (&entry["failed"], &entry["query_failure"]),
            (&json!(true), &json!(true)),
            "{entry}"
        );
    }
    assert!(body.get("hash").is_none(), "{body}");
}

#[tokio::test]
async fn a_peer_whose_view_differs_answers_with_its_status() {
    let c = Cluster::start(&[10, 10, 10]);
    // Node 2 alone learns that it now forms swarm 20.
    let lagging = support::view(&[10, 10, 20], 2, (19, 4));
    c.nodes[2].set_view(lagging.clone());
    let user = User::in_swarm(&lagging, 10, 1);
    let (status, body) = c.rpc(0, "store", user.store(0, b"x", T0)).await;
    assert_eq!(status, 200, "{body}");
    let entry = &body["swarm"][c.hex(2)];
    assert_eq!(
        (&entry["failed"], &entry["code"]),
        (&json!(true), &json!("421")),
        "{entry}"
    );
    let reason: Value = serde_json::from_str(entry["reason"].as_str().unwrap()).unwrap();
    assert!(reason["snodes"].is_array(), "{entry}");
}

#[tokio::test]
async fn only_active_members_of_our_swarm_may_forward() {
    let c = Cluster::start(&[10, 10, 20, 0]);
    let forward_from = |sender: Option<Ed25519Pub>| {
        peer_inbound::check_forwarder(&c.nodes[0], sender)
            .err()
            .map(split)
    };
    assert_eq!(forward_from(Some(c.key(1))), None);
    assert_eq!(
        forward_from(Some(c.key(2))),
        Some((
            403,
            text(&format!(
                "node-to-node route: {} is not a member of this swarm",
                c.key(2)
            ))
        ))
    );
    assert_eq!(
        forward_from(Some(c.key(3))),
        Some((
            403,
            text(&format!(
                "node-to-node route: {} is not an active service node",
                c.key(3)
            ))
        ))
    );
    assert_eq!(
        forward_from(None),
        Some((403, text("node-to-node route: no node certificate")))
    );
    assert_eq!(c.nodes[0].peer_rejections.total(), 1);
}

#[tokio::test]
async fn a_new_member_gets_every_message_and_revocation() {
    let c = Cluster::start(&[10, 10, 0]);
    let old = c.nodes[0].view();
    let user = User::new(1);
    let mut stored = Vec::new();
    for (ns, data) in [(0, &b"a"[..]), (5, b"b"), (-10, b"c")] {
        let (status, body) = c.rpc(0, "store", user.store(ns, data, T0)).await;
        assert_eq!(status, 200, "{body}");
        stored.push((ns, user.hash(ns, data)));
    }
    let sub = User::new(2);
    let (token, token_sig) = user.subaccount(&sub);
    let mut signed = format!("revoke_subaccount{T0}").into_bytes();
    signed.extend_from_slice(token.as_bytes());
    let revoke = user.params(
        json!({"revoke": b64(token.as_bytes()), "timestamp": T0, "signature": user.sign(&signed)}),
    );
    assert_eq!(c.rpc(0, "revoke_subaccount", revoke).await.0, 200);

    c.set_swarms(&[10, 10, 10], 2);
    hand_off(&c, 0, &old).await;
    hand_off(&c, 1, &old).await;
    for (ns, hash) in &stored {
        // Kept in its namespace.
        assert_eq!(
            held(&c, 2, &user, *ns).await,
            vec![hash.clone()],
            "namespace {ns}"
        );
    }
    let sub_store = user.params(json!({"namespace": 5, "timestamp": T0, "ttl": DAY_MS,
        "data": b64("by the revoked sub"), "signature": sub.sign(format!("store5{T0}")),
        "subaccount": b64(token.as_bytes()), "subaccount_sig": token_sig}));
    assert_eq!(
        c.rpc(2, "store", sub_store).await,
        (401, text("store signature verification failed"))
    );
}

#[tokio::test]
async fn a_new_swarm_gets_only_what_maps_to_it() {
    let c = Cluster::start(&[10, 10, 0, 0]);
    let old = c.nodes[0].view();
    let new = support::view(&[10, 10, 20, 20], 2, (19, 4));
    let moving = User::in_swarm(&new, 20, 1);
    let staying = User::in_swarm(&new, 10, 1);
    for user in [&moving, &staying] {
        assert_eq!(c.rpc(0, "store", user.store(0, b"m", T0)).await.0, 200);
    }
    c.set_swarms(&[10, 10, 20, 20], 2);
    hand_off(&c, 0, &old).await;
    for i in [2, 3] {
        assert_eq!(
            held(&c, i, &moving, 0).await,
            vec![moving.hash(0, b"m")],
            "node {i}"
        );
        // Not this swarm's account: 421, and nothing was handed over.
        let (status, _) = c.rpc(i, "retrieve", staying.retrieve(0, T0)).await;
        assert_eq!(status, 421);
        let store = c.nodes[i].store.clone();
        let account = staying.account;
        let page = store
            .retrieve(&account, Namespace(0), None, None, usize::MAX)
            .unwrap();
        assert!(page.messages.is_empty(), "node {i}");
    }
}

/// A handoff batch of one message each, as node `from` sends it to node `to`.
async fn receive(
    c: &Cluster,
    from: usize,
    to: usize,
    messages: Vec<HandoffMessage>,
) -> (u16, Value) {
    let body = serde_json::to_vec(&HandoffBatch {
        version: 1,
        messages,
        revocations: Vec::new(),
    })
    .unwrap();
    raw_receive(c, from, to, &body).await
}

async fn raw_receive(c: &Cluster, from: usize, to: usize, body: &[u8]) -> (u16, Value) {
    let node = &c.nodes[to];
    let mut seen = Seen::new(node, Role::Handoff);
    split(peer_inbound::handoff(node, c.key(from), body, &mut seen).await)
}

fn message(user: &User, ns: i16, data: &[u8], timestamp: u64, expiry: u64) -> HandoffMessage {
    HandoffMessage {
        pubkey: user.account,
        namespace: Namespace(ns),
        hash: MessageHash::compute(&user.account, Namespace(ns), data),
        timestamp,
        expiry,
        data: bytes::Bytes::copy_from_slice(data),
    }
}

#[tokio::test]
async fn a_receiver_keeps_the_valid_items_and_refuses_the_rest() {
    // Node 3 leaves swarm 20; the receivers' previous view is the first one.
    let c = Cluster::start(&[10, 10, 20, 20]);
    c.set_swarms(&[10, 10, 20, 0], 2);
    let view = c.nodes[0].view();
    let ours = User::in_swarm(&view, 10, 1);
    let theirs = User::in_swarm(&view, 20, 1);
    let good = message(&ours, 0, b"good", T0, T0 + DAY_MS);
    let mut forged = message(&ours, 0, b"forged", T0, T0 + DAY_MS);
    forged.data = bytes::Bytes::from_static(b"other");
    let future = message(&ours, 0, b"future", T0 + 11_000, T0 + DAY_MS);
    let expired = message(&ours, 0, b"expired", T0 - DAY_MS, T0 - 1);
    let far = message(&ours, 0, b"far", T0, T0 + 60 * DAY_MS);
    let (status, body) = receive(&c, 1, 0, vec![good, forged, future, expired, far]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"expired": 1, "inserted": 2, "refused": 2, "revocations": 0})
    );
    let hash = ours.hash(0, b"far");
    let params = ours.params(json!({"messages": [hash], "timestamp": T0,
        "signature": ours.sign(format!("get_expiries{T0}{hash}"))}));
    let (_, body) = c.rpc(0, "get_expiries", params).await;
    assert_eq!(body["expiries"][&hash], T0 + 30 * DAY_MS, "clamped: {body}");

    // Another swarm's account: 421 so that a sender whose view is ahead retries.
    let (status, body) = receive(&c, 1, 0, vec![message(&theirs, 0, b"t", T0, T0 + DAY_MS)]).await;
    assert_eq!(
        (status, body),
        (
            421,
            text("1 handoff items refused: not this swarm's accounts")
        )
    );
    // A node of another swarm may not hand over our accounts.
    let (status, body) = receive(&c, 2, 0, vec![message(&ours, 0, b"u", T0, T0 + DAY_MS)]).await;
    assert_eq!(status, 403, "{body}");
    // A node in no swarm has no accounts.
    let (status, _) = receive(&c, 0, 3, vec![message(&ours, 0, b"v", T0, T0 + DAY_MS)]).await;
    assert_eq!(status, 503);
    let (status, body) = raw_receive(&c, 1, 0, b"{\"version\": 2, \"messages\": []}").await;
    assert_eq!((status, body), (400, text("unsupported handoff version 2")));
    let (status, _) = raw_receive(&c, 1, 0, b"not json").await;
    assert_eq!(status, 400);
}

#[tokio::test(start_paused = true)]
async fn a_handoff_to_a_dead_member_is_retried_then_counted() {
    let c = Cluster::start(&[10, 0]);
    let old = c.nodes[0].view();
    let user = User::new(1);
    assert_eq!(c.rpc(0, "store", user.store(0, b"m", T0)).await.0, 200);
    c.set_swarms(&[10, 10], 2);
    c.net.set_down(c.key(1), true);
    let started = tokio::time::Instant::now();
    hand_off(&c, 0, &old).await;
    // Retried after 1, 2, 4 and 8 s (of the paused clock), then given up.
    assert_eq!(started.elapsed().as_secs(), 15);
    assert_eq!(metric(&c.nodes[0], "shallot_peer_failures_total"), "1");
    assert!(held(&c, 1, &user, 0).await.is_empty());
}

/// A link that notes every envelope it forwards.
struct Recording {
    inner: Arc<dyn SwarmLink>,
    forwarded: Arc<Mutex<Vec<Bytes>>>,
}

impl SwarmLink for Recording {
    fn forward<'a>(
        &'a self,
        peer: &'a NodeRecord,
        envelope: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>> {
        self.forwarded.lock().unwrap().push(envelope.clone());
        self.inner.forward(peer, envelope)
    }

    fn handoff<'a>(
        &'a self,
        peer: &'a NodeRecord,
        batch: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>> {
        self.inner.handoff(peer, batch)
    }
}

#[tokio::test]
async fn replication_forwards_the_clients_bytes_as_they_came() {
    let forwarded = Arc::new(Mutex::new(Vec::new()));
    let notes = forwarded.clone();
    let c = Cluster::wrapped(&[10, 10], (19, 4), &StoreConfig::default(), move |inner| {
        Arc::new(Recording {
            inner,
            forwarded: notes.clone(),
        })
    });
    let user = User::new(1);
    // Key order, spacing and a `ttl` as the client wrote them: not how the node would write it.
    let params = user.store(0, b"as written", T0);
    let body = format!("{{ \"params\" : {params} ,\n \"method\": \"store\" }}");
    let body = Bytes::from(body);
    let request = shallot_proto::rpc::parse_body(&body).unwrap();
    let (status, reply) = split(
        c.nodes[0]
            .execute_envelope(
                request,
                shallot_node::exec::Origin::Client,
                Some(body.clone()),
            )
            .await,
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(*forwarded.lock().unwrap(), vec![body]);
    assert_eq!(
        held(&c, 1, &user, 0).await,
        vec![user.hash(0, b"as written")]
    );

    // A store inside a batch has no body of its own: it is written out, and means the same.
    forwarded.lock().unwrap().clear();
    let store = json!({"method": "store", "params": user.store(0, b"in a batch", T0)});
    let (status, _) = c.rpc(0, "batch", json!({"requests": [store]})).await;
    assert_eq!(status, 200);
    let sent = forwarded.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        shallot_proto::rpc::parse_body(&sent[0]).unwrap(),
        shallot_proto::rpc::parse_body(store.to_string().as_bytes()).unwrap()
    );
    assert_eq!(held(&c, 1, &user, 0).await.len(), 2);
}
