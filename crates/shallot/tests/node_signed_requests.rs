//! What the storage RPC spec promises about signed requests (§2.5, §2.7, §4.2–§4.9) and the node
//! protocol about peers (docs/node-protocol.md), against a real two-node swarm over HTTPS:
//!
//! - each method's clock window: a request signed 61 s ago (or 63 s ahead) is refused with the
//!   spec's status and text, and changes nothing;
//! - the wider window of a request forwarded by a swarm peer (70 s for `delete_all` and
//!   `expire_all`, none for `revoke_subaccount` or `delete_before`), a forwarded request that
//!   is not forwardable, and an onion hop number above 15;
//! - 401 for a garbage signature, another key's signature and another key claiming the
//!   account, on every signed method, with nothing changed; each request shape is first shown to
//!   succeed when the owner signs it, so a 401 is never the test's own mistake.
//!
//! Every signed text is spelled out here from the spec's table, not built with the library.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::time::Instant;

use serde_json::{json, Value};
use shallot_node::node_api::{FORWARD_PATH, ONION_PATH};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::onion::{
    decode_snode_response, encode_frame, EncType, ResponseKey, X25519Keypair,
};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, Identity, Namespace};
use support::clients::peer_client;
use support::{b64, now_ms, user, Net};

const DAY_MS: u64 = 86_400_000;
/// No hashes (methods that take none).
const NONE: &[&str] = &[];
/// Just outside the 60 s window on the stale side (the request only gets staler in transit).
const STALE_MS: u64 = 61_000;
/// Outside the window on the future side, with 3 s for the request to reach the node.
const AHEAD_MS: u64 = 63_000;

/// A Session account (`05` + X25519 key; requests carry `pubkey_ed25519`).
struct User {
    id: Identity,
    account: AccountId,
}

/// Who signs a request.
#[derive(Clone, Copy)]
enum Signer<'a> {
    /// The account's own key.
    Owner,
    /// 64 random bytes.
    Garbage,
    /// Another key's valid signature over the right text, sent with the owner's
    /// `pubkey_ed25519`.
    OtherKey(&'a Identity),
    /// Another key's valid signature, sent with that key as `pubkey_ed25519` (it does not map
    /// to the account).
    OtherClaims(&'a Identity),
}

impl User {
    fn new() -> Self {
        let id = user();
        let account = id.session_id().into();
        Self { id, account }
    }

    fn hex(&self) -> String {
        self.account.to_hex()
    }

    /// `params` with the account, `pubkey_ed25519` and a signature over `text` by `signer`.
    fn signed(&self, signer: Signer<'_>, text: &[u8], params: Value) -> Value {
        let (key, signature) = match signer {
            Signer::Owner => (self.id.ed25519_public(), b64(self.id.sign(text).to_bytes())),
            Signer::Garbage => {
                let mut junk = [0u8; 64];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut junk);
                (self.id.ed25519_public(), b64(junk))
            }
            Signer::OtherKey(other) => (self.id.ed25519_public(), b64(other.sign(text).to_bytes())),
            Signer::OtherClaims(other) => {
                (other.ed25519_public(), b64(other.sign(text).to_bytes()))
            }
        };
        let mut params = params;
        params["pubkey"] = self.hex().into();
        params["pubkey_ed25519"] = key.to_hex().into();
        params["signature"] = signature.into();
        params
    }

    /// Stores `data` (namespace 0, unsigned, one day) through node `i`; its hash.
    async fn store(&self, net: &Net, i: usize, data: &str) -> String {
        let (status, body) = net
            .rpc(
                i,
                "store",
                json!({"pubkey": self.hex(), "timestamp": now_ms(), "ttl": DAY_MS, "data": b64(data)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let hash = MessageHash::compute(&self.account, Namespace(0), data.as_bytes()).to_string();
        assert_eq!(body["hash"], hash);
        hash
    }

    /// The expiries node `i` holds for `hashes` (owner-signed `get_expiries`, now).
    async fn expiries<S: AsRef<str>>(&self, net: &Net, i: usize, hashes: &[S]) -> Value {
        let (status, body) = net
            .rpc(
                i,
                "get_expiries",
                self.request(Method::GetExpiries, Signer::Owner, now_ms(), hashes),
            )
            .await;
        assert_eq!(status, 200, "node {i}: {body}");
        body["expiries"].clone()
    }

    /// The signed params of `method` at time `t` (the method's `timestamp`, `before` or
    /// `expiry`) about `hashes` (or, for (un)revocations, `hashes[0]` as a base64 token).
    fn request<S: AsRef<str>>(
        &self,
        method: Method,
        signer: Signer<'_>,
        t: u64,
        hashes: &[S],
    ) -> Value {
        let hashes: Vec<&str> = hashes.iter().map(AsRef::as_ref).collect();
        let joined = hashes.concat();
        match method {
            Method::Retrieve => self.signed(
                signer,
                format!("retrieve{t}").as_bytes(),
                json!({"timestamp": t}),
            ),
            Method::GetExpiries => self.signed(
                signer,
                format!("get_expiries{t}{joined}").as_bytes(),
                json!({"timestamp": t, "messages": hashes}),
            ),
            Method::DeleteAll => self.signed(
                signer,
                format!("delete_all{t}").as_bytes(),
                json!({"timestamp": t}),
            ),
            Method::DeleteBefore => self.signed(
                signer,
                format!("delete_before{t}").as_bytes(),
                json!({"before": t}),
            ),
            Method::ExpireAll => self.signed(
                signer,
                format!("expire_all{t}").as_bytes(),
                json!({"expiry": t}),
            ),
            Method::Expire => self.signed(
                signer,
                format!("expire{t}{joined}").as_bytes(),
                json!({"expiry": t, "messages": hashes}),
            ),
            Method::Delete => self.signed(
                signer,
                format!("delete{joined}").as_bytes(),
                json!({"messages": hashes}),
            ),
            Method::Revoke | Method::Unrevoke => {
                let name = method.name();
                let token = shallot_proto::b64::decode(hashes[0]).unwrap();
                let mut text = format!("{name}{t}").into_bytes();
                text.extend_from_slice(&token);
                let key = if method == Method::Revoke {
                    "revoke"
                } else {
                    "unrevoke"
                };
                self.signed(signer, &text, json!({"timestamp": t, key: hashes[0]}))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Retrieve,
    GetExpiries,
    DeleteAll,
    DeleteBefore,
    ExpireAll,
    Expire,
    Delete,
    Revoke,
    Unrevoke,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Self::Retrieve => "retrieve",
            Self::GetExpiries => "get_expiries",
            Self::DeleteAll => "delete_all",
            Self::DeleteBefore => "delete_before",
            Self::ExpireAll => "expire_all",
            Self::Expire => "expire",
            Self::Delete => "delete",
            Self::Revoke => "revoke_subaccount",
            Self::Unrevoke => "unrevoke_subaccount",
        }
    }

    /// The spec's 401 text for a signature that does not verify.
    fn bad_signature_text(self) -> &'static str {
        match self {
            Self::Retrieve => "retrieve signature verification failed",
            Self::GetExpiries => "get_expiries signature verification failed",
            Self::DeleteAll => "delete_all signature verification failed",
            Self::DeleteBefore => "delete_before signature verification failed",
            Self::ExpireAll => "expire_all signature verification failed",
            Self::Expire => "expire: signature verification failed",
            Self::Delete => "delete_msgs signature verification failed",
            Self::Revoke => "revoke_subaccount signature verification failed",
            Self::Unrevoke => "unrevoke_subaccount signature verification failed",
        }
    }
}

/// A read+write subaccount of `owner`'s Session account: (key, base64 token, token signature).
fn subaccount(owner: &User) -> (Identity, String, String) {
    let sub = user();
    let token = SubaccountToken::new(0x05, SubaccountFlags(0x03), &sub.ed25519_public());
    let token_sig = b64(token.sign(&owner.id).to_bytes());
    (sub, b64(token.as_bytes()), token_sig)
}

/// Whether the subaccount may read the owner's namespace 0 at node `i`: `Some(message count)`,
/// `None` on the spec's 401.
async fn sub_reads(
    net: &Net,
    i: usize,
    owner: &User,
    sub: &(Identity, String, String),
) -> Option<usize> {
    let t = now_ms();
    let params = json!({"pubkey": owner.hex(), "pubkey_ed25519": owner.id.ed25519_public().to_hex(),
        "timestamp": t, "signature": b64(sub.0.sign(format!("retrieve{t}").as_bytes()).to_bytes()),
        "subaccount": sub.1, "subaccount_sig": sub.2});
    match net.rpc(i, "retrieve", params).await {
        (200, body) => Some(body["messages"].as_array().unwrap().len()),
        (401, body) => {
            assert_eq!(body, json!("retrieve signature verification failed"));
            None
        }
        (status, body) => panic!("subaccount retrieve at node {i}: {status} {body}"),
    }
}

/// Posts `body` to `path` of node `to` over a TLS connection proving `from`'s node key, as a
/// peer does; `headers` added.
async fn post_as_peer(
    net: &Net,
    from: usize,
    to: usize,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, bytes::Bytes) {
    let client = peer_client(&net.nodes[from].identity, None);
    let mut request = client.post(net.nodes[to].url(path)).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap())
}

/// A client envelope forwarded by node `from` to node `to` on `/snode/v1/forward`.
async fn forward(net: &Net, from: usize, to: usize, method: Method, params: Value) -> (u16, Value) {
    let body = json!({"method": method.name(), "params": params}).to_string();
    let (status, bytes) = post_as_peer(net, from, to, FORWARD_PATH, &[], body.into_bytes()).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_windows_signatures_and_peer_limits() {
    // One swarm of two: node 1 is node 0's swarm peer.
    let net = Net::start(&[2]).await;
    let started = Instant::now();
    clock_windows(&net).await;
    eprintln!("clock windows: {:?}", started.elapsed());
    let started = Instant::now();
    bad_signatures(&net).await;
    eprintln!("bad signatures: {:?}", started.elapsed());
    let started = Instant::now();
    peer_windows_and_hop_limit(&net).await;
    eprintln!("peer windows and hop limit: {:?}", started.elapsed());
}

/// Each method's window on the client route: 61 s stale and 63 s ahead are refused with the
/// spec's status and text on either member, and neither the message, its expiry nor the
/// subaccount's access changes.
#[allow(clippy::too_many_lines)] // One table of cases, then the checks that nothing changed.
async fn clock_windows(net: &Net) {
    let alice = User::new();
    let hash = alice.store(net, 0, "windows").await;
    let before = alice.expiries(net, 0, &[&hash]).await;
    let sub = subaccount(&alice);
    let token = sub.1.clone();
    assert_eq!(sub_reads(net, 1, &alice, &sub).await, Some(1));

    let stale =
        |method: Method| alice.request(method, Signer::Owner, now_ms() - STALE_MS, &[&hash]);
    let ahead =
        |method: Method| alice.request(method, Signer::Owner, now_ms() + AHEAD_MS, &[&hash]);
    let token_stale = || {
        alice.request(
            Method::Revoke,
            Signer::Owner,
            now_ms() - STALE_MS,
            &[&token],
        )
    };
    let token_ahead = || {
        alice.request(
            Method::Revoke,
            Signer::Owner,
            now_ms() + AHEAD_MS,
            &[&token],
        )
    };
    let untoken_stale = || {
        alice.request(
            Method::Unrevoke,
            Signer::Owner,
            now_ms() - STALE_MS,
            &[&token],
        )
    };
    let too_far = |name: &str| {
        (
            406,
            json!(format!("{name} timestamp too far from current time")),
        )
    };
    let cases: Vec<(&str, Value, (u16, Value))> = vec![
        ("retrieve", stale(Method::Retrieve), too_far("retrieve")),
        ("retrieve", ahead(Method::Retrieve), too_far("retrieve")),
        (
            "get_expiries",
            stale(Method::GetExpiries),
            too_far("get_expiries"),
        ),
        (
            "get_expiries",
            ahead(Method::GetExpiries),
            too_far("get_expiries"),
        ),
        (
            "revoke_subaccount",
            token_stale(),
            too_far("revoke_subaccount"),
        ),
        (
            "revoke_subaccount",
            token_ahead(),
            too_far("revoke_subaccount"),
        ),
        (
            "unrevoke_subaccount",
            untoken_stale(),
            too_far("unrevoke_subaccount"),
        ),
        (
            "delete_all",
            stale(Method::DeleteAll),
            too_far("delete_all"),
        ),
        (
            "delete_all",
            ahead(Method::DeleteAll),
            too_far("delete_all"),
        ),
        (
            "expire_all",
            stale(Method::ExpireAll),
            (406, json!("expire_all timestamp should be >= current time")),
        ),
        (
            "delete_before",
            ahead(Method::DeleteBefore),
            (401, json!("delete_before timestamp too far in the future")),
        ),
        (
            "expire",
            stale(Method::Expire),
            (401, json!("expire: timestamp should be >= current time")),
        ),
    ];
    for node in [0, 1] {
        for (method, params, expected) in &cases {
            let answer = net.rpc(node, method, params.clone()).await;
            assert_eq!(&answer, expected, "{method} at node {node}: {params}");
        }
    }
    // Nothing changed anywhere: the message, its expiry, the subaccount's access.
    for node in [0, 1] {
        assert_eq!(
            alice.expiries(net, node, &[&hash]).await,
            before,
            "node {node}"
        );
        assert_eq!(
            sub_reads(net, node, &alice, &sub).await,
            Some(1),
            "node {node}"
        );
    }

    // Inside the window (50 s either way) the same requests work: the texts above came from
    // the clock rule, not from a malformed request.
    let inside_past = now_ms() - 50_000;
    let inside_ahead = now_ms() + 50_000;
    for (method, t) in [
        (Method::Retrieve, inside_past),
        (Method::Retrieve, inside_ahead),
        (Method::GetExpiries, inside_ahead),
    ] {
        let (status, body) = net
            .rpc(
                0,
                method.name(),
                alice.request(method, Signer::Owner, t, &[&hash]),
            )
            .await;
        assert_eq!(status, 200, "{method:?} at {t}: {body}");
    }
    let (status, body) = net
        .rpc(
            0,
            "revoke_subaccount",
            alice.request(Method::Revoke, Signer::Owner, inside_past, &[&token]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sub_reads(net, 1, &alice, &sub).await, None);
}

/// Every signed method refuses a garbage signature, another key's signature and another key
/// claiming the account with the spec's 401, on either member; the owner's signature over the
/// same request works; nothing changes.
async fn bad_signatures(net: &Net) {
    let alice = User::new();
    let mallory = user();
    let hash = alice.store(net, 0, "signatures").await;
    let expiry = alice.expiries(net, 1, &[&hash]).await;
    let sub = subaccount(&alice);
    let token = sub.1.clone();

    // Times inside every window; expire / expire_all / delete_before would shorten, extend or
    // delete the message if accepted.
    let t_for = |method: Method| match method {
        Method::Expire => now_ms() + 2 * DAY_MS,
        Method::ExpireAll => now_ms() + 60_000,
        _ => now_ms(),
    };
    let subject = |method: Method| {
        if matches!(method, Method::Revoke | Method::Unrevoke) {
            token.clone()
        } else {
            hash.clone()
        }
    };
    let methods = [
        Method::Retrieve,
        Method::GetExpiries,
        Method::Expire,
        Method::ExpireAll,
        Method::Revoke,
        Method::Unrevoke,
        Method::DeleteBefore,
        Method::DeleteAll,
        Method::Delete,
    ];
    for node in [0, 1] {
        for method in methods {
            for (what, signer) in [
                ("garbage", Signer::Garbage),
                ("another key", Signer::OtherKey(&mallory)),
                (
                    "another key claiming the account",
                    Signer::OtherClaims(&mallory),
                ),
            ] {
                let params = alice.request(method, signer, t_for(method), &[&subject(method)]);
                let answer = net.rpc(node, method.name(), params).await;
                assert_eq!(
                    answer,
                    (401, json!(method.bad_signature_text())),
                    "{method:?} signed by {what} at node {node}"
                );
            }
        }
        // (Un)revocations take the main key only: a subaccount's signature is refused too.
        for method in [Method::Revoke, Method::Unrevoke] {
            let t = now_ms();
            let mut text = format!("{}{t}", method.name()).into_bytes();
            text.extend_from_slice(&shallot_proto::b64::decode(&token).unwrap());
            let key = if method == Method::Revoke {
                "revoke"
            } else {
                "unrevoke"
            };
            let params = json!({"pubkey": alice.hex(), "pubkey_ed25519": alice.id.ed25519_public().to_hex(),
                "timestamp": t, key: token, "signature": b64(sub.0.sign(&text).to_bytes()),
                "subaccount": sub.1, "subaccount_sig": sub.2});
            assert_eq!(
                net.rpc(node, method.name(), params).await,
                (401, json!(method.bad_signature_text())),
                "{method:?} signed by a subaccount at node {node}"
            );
        }
    }
    // Nothing changed: the message and its expiry on both members, the subaccount's access.
    for node in [0, 1] {
        assert_eq!(
            alice.expiries(net, node, &[&hash]).await,
            expiry,
            "node {node}"
        );
        assert_eq!(
            sub_reads(net, node, &alice, &sub).await,
            Some(1),
            "node {node}"
        );
    }

    // The owner's signature over each of the same requests works (destructive ones last).
    for method in methods {
        let params = alice.request(method, Signer::Owner, t_for(method), &[&subject(method)]);
        let (status, body) = net.rpc(0, method.name(), params).await;
        assert_eq!(status, 200, "{method:?} signed by the owner: {body}");
        match method {
            Method::Revoke => assert_eq!(sub_reads(net, 1, &alice, &sub).await, None),
            Method::Unrevoke => assert_eq!(sub_reads(net, 1, &alice, &sub).await, Some(1)),
            Method::DeleteBefore => {
                // It deleted the message (timestamp ≤ now): store it again for the rest.
                assert_eq!(alice.expiries(net, 1, &[&hash]).await, json!({}));
                alice.store(net, 0, "signatures").await;
            }
            Method::DeleteAll => {
                assert_eq!(alice.expiries(net, 1, &[&hash]).await, json!({}));
                alice.store(net, 0, "signatures").await;
            }
            _ => {}
        }
    }
    assert_eq!(alice.expiries(net, 1, &[&hash]).await, json!({}));
}

/// A swarm peer's forwarded requests get 70 s where the spec says so, and no more elsewhere;
/// a non-recursive method is refused on `/snode/v1/forward`; a hop number above 15 is refused
/// on `/snode/v1/onion`.
async fn peer_windows_and_hop_limit(net: &Net) {
    // delete_all 65 s old: refused from a client, accepted from the peer (node 1) and applied
    // at node 0 only (a forwarded request is not forwarded further).
    let bob = User::new();
    let hash = bob.store(net, 0, "forwarded delete_all").await;
    let params = bob.request(Method::DeleteAll, Signer::Owner, now_ms() - 65_000, NONE);
    assert_eq!(
        net.rpc(0, "delete_all", params.clone()).await,
        (406, json!("delete_all timestamp too far from current time"))
    );
    let (status, body) = forward(net, 1, 0, Method::DeleteAll, params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], json!([hash]), "{body}");
    assert_eq!(bob.expiries(net, 0, &[&hash]).await, json!({}));
    assert_eq!(
        bob.expiries(net, 1, &[&hash])
            .await
            .as_object()
            .unwrap()
            .len(),
        1
    );
    // 75 s old: outside the peer's window too.
    let params = bob.request(Method::DeleteAll, Signer::Owner, now_ms() - 75_000, NONE);
    assert_eq!(
        forward(net, 1, 0, Method::DeleteAll, params).await,
        (406, json!("delete_all timestamp too far from current time"))
    );

    // expire_all to 65 s ago: the same 70 s for peers.
    let carol = User::new();
    let hash = carol.store(net, 0, "forwarded expire_all").await;
    let e = now_ms() - 65_000;
    let params = carol.request(Method::ExpireAll, Signer::Owner, e, NONE);
    assert_eq!(
        net.rpc(0, "expire_all", params.clone()).await,
        (406, json!("expire_all timestamp should be >= current time"))
    );
    let (status, body) = forward(net, 1, 0, Method::ExpireAll, params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated"], json!([hash]), "{body}");
    let params = carol.request(Method::ExpireAll, Signer::Owner, now_ms() - 75_000, NONE);
    assert_eq!(
        forward(net, 1, 0, Method::ExpireAll, params).await,
        (406, json!("expire_all timestamp should be >= current time"))
    );

    // revoke_subaccount and delete_before get no wider window when forwarded.
    let sub = subaccount(&carol);
    let params = carol.request(Method::Revoke, Signer::Owner, now_ms() - 65_000, &[&sub.1]);
    assert_eq!(
        forward(net, 1, 0, Method::Revoke, params).await,
        (
            406,
            json!("revoke_subaccount timestamp too far from current time")
        )
    );
    let params = carol.request(Method::DeleteBefore, Signer::Owner, now_ms() + 65_000, NONE);
    assert_eq!(
        forward(net, 1, 0, Method::DeleteBefore, params).await,
        (401, json!("delete_before timestamp too far in the future"))
    );
    // A non-recursive method is not forwardable.
    let params = carol.request(Method::Retrieve, Signer::Owner, now_ms(), NONE);
    assert_eq!(
        forward(net, 1, 0, Method::Retrieve, params).await,
        (
            400,
            json!("invalid request: received invalid forwarded non-forwardable request")
        )
    );

    // Onion hops (1–15; below 1 reads as 1): the same valid layer for node 0 is served at hops
    // 0 and 15 and refused at 16.
    for (hop_no, expected) in [(0, 200), (15, 200), (16, 400)] {
        let node = &net.nodes[0];
        let ephemeral = X25519Keypair::generate(&mut rand::rngs::OsRng);
        let key = ResponseKey::derive(EncType::AesGcm, &ephemeral, &node.identity.x25519_public())
            .unwrap();
        let layer =
            encode_frame(br#"{"method":"info","params":{}}"#, &json!({"headers": ""})).unwrap();
        let ciphertext = key.key().encrypt(&layer, &mut rand::rngs::OsRng).unwrap();
        let headers = [
            ("x-shallot-ephemeral-key", ephemeral.public().to_hex()),
            ("x-shallot-enc-type", "aes-gcm".to_owned()),
            ("x-shallot-hop-no", hop_no.to_string()),
        ];
        let (status, body) = post_as_peer(net, 1, 0, ONION_PATH, &headers, ciphertext).await;
        assert_eq!(
            status,
            expected,
            "hop {hop_no}: {}",
            String::from_utf8_lossy(&body)
        );
        if expected == 200 {
            let reply = decode_snode_response(&key, &body).unwrap();
            assert_eq!(reply.status, 200);
            assert!(reply.body.to_json().unwrap()["version"].is_array());
        } else {
            assert_eq!(&body[..], b"onion request max path length exceeded");
        }
    }
}
