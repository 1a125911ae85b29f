//! The reference network-test suite's `test_batch`, `test_big_retrieve` and `test_ifelse` cases
//! (storage RPC spec §14; §4.2, §4.13, §4.14, §7.3) against real `shallot node` processes over
//! HTTPS. `test_batch_bt` has no counterpart: our nodes speak JSON only.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::BTreeSet;

use rand::RngCore;
use serde_json::{json, Value};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{AccountId, AccountKind, Ed25519Pub, Identity, Namespace, Signature};
use support::{b64, now_ms, user, Net};

/// Base64 of the account key's signature over `message`, as a client sends it.
fn sign(id: &Identity, message: &str) -> String {
    b64(id.sign(message.as_bytes()).to_bytes())
}

/// A groups-v2 (`03`) account: its 32 bytes are the Ed25519 key that signs for it.
fn group_account(id: &Identity) -> AccountId {
    AccountId::new(AccountKind::Group, *id.ed25519_public().as_bytes())
}

/// A `05` account whose 32 bytes are an Ed25519 key, as the reference tests use them: it signs
/// without `pubkey_ed25519`.
fn ed_session_account(id: &Identity) -> AccountId {
    AccountId::new(AccountKind::Session, *id.ed25519_public().as_bytes())
}

fn hash(account: &AccountId, namespace: i16, data: &[u8]) -> String {
    MessageHash::compute(account, Namespace(namespace), data).to_string()
}

/// Asserts that the swarm member `key_hex` signed `message` (88-char padded base64 signature).
fn assert_node_sig(key_hex: &str, message: &str, entry: &Value) {
    let key: Ed25519Pub = key_hex.parse().unwrap();
    let text = entry["signature"]
        .as_str()
        .unwrap_or_else(|| panic!("{entry}"));
    assert_eq!(text.len(), 88, "{entry}");
    let bytes = shallot_proto::b64::decode(text).unwrap();
    let sig = Signature::from_slice(&bytes).unwrap();
    assert!(
        key.verify(message.as_bytes(), &sig),
        "bad signature from {key_hex} over {message:?}: {entry}"
    );
}

/// Asserts the `swarm` dict holds exactly one successful entry per member of `members`.
fn assert_swarm<'a>(
    net: &Net,
    members: &[usize],
    body: &'a Value,
) -> &'a serde_json::Map<String, Value> {
    let swarm = body["swarm"]
        .as_object()
        .unwrap_or_else(|| panic!("{body}"));
    let keys: BTreeSet<&str> = swarm.keys().map(String::as_str).collect();
    let expected: Vec<String> = members
        .iter()
        .map(|&i| net.nodes[i].ed25519_hex())
        .collect();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(keys, expected, "{body}");
    for (key, entry) in swarm {
        assert!(entry.get("failed").is_none(), "{key}: {entry}");
    }
    swarm
}

fn store_request(account: &AccountId, timestamp: u64, ttl: u64, data: &[u8]) -> Value {
    json!({"method": "store", "params": {"pubkey": account.to_hex(), "timestamp": timestamp,
        "ttl": ttl, "data": b64(data)}})
}

/// test_batch::test_batch_json: two signed namespace-42 stores for a `03` account in one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_json() {
    let net = Net::start(&[3]).await;
    let group = user();
    let account = group_account(&group);
    let members = net.swarm_of(&account);
    let ts = now_ms();
    let ttl = 86_400_000;
    let signature = sign(&group, &format!("store42{ts}"));
    let store = |data: &[u8]| {
        json!({"method": "store", "params": {"pubkey": account.to_hex(), "namespace": 42,
            "timestamp": ts, "ttl": ttl, "data": b64(data), "signature": signature}})
    };
    let (status, body) = net
        .rpc(
            members[1],
            "batch",
            json!({"requests": [store(b"abc 123"), store(b"xyz 123")]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    let expected = [
        hash(&account, 42, b"abc 123"),
        hash(&account, 42, b"xyz 123"),
    ];
    assert_ne!(expected[0], expected[1]);
    for (result, expected) in results.iter().zip(&expected) {
        assert_eq!(result["code"], 200, "{result}");
        assert_eq!(result["body"]["hash"], *expected, "{result}");
        // Each batch result is the full recursive store answer, signed by every member.
        for (key, entry) in assert_swarm(&net, &members, &result["body"]) {
            assert_eq!(entry["hash"], *expected, "{key}: {entry}");
            assert_eq!(entry["expiry"], ts + ttl, "{key}: {entry}");
            assert_node_sig(key, expected, entry);
        }
    }
    // The batch carries no `t`/`hf` of its own.
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");

    // Both messages are in namespace 42. `batch` runs its subrequests concurrently (spec §4.13),
    // so their storage order is unspecified: compare as sets.
    let now = now_ms();
    let (status, body) = net
        .rpc(
            members[0],
            "retrieve",
            json!({"pubkey": account.to_hex(), "namespace": 42, "timestamp": now,
                "signature": sign(&group, &format!("retrieve42{now}"))}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut hashes: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hash"].as_str().unwrap())
        .collect();
    hashes.sort_unstable();
    let mut wanted = [expected[0].as_str(), expected[1].as_str()];
    wanted.sort_unstable();
    assert_eq!(hashes, wanted, "{body}");
}

/// test_batch::test_sequence: store, retrieve, store, delete_all, retrieve, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence() {
    let net = Net::start(&[3]).await;
    let id = user();
    let account = ed_session_account(&id);
    let members = net.swarm_of(&account);
    let ts = now_ms();
    let ttl = 86_400_000;
    let retrieve = json!({"method": "retrieve", "params": {"pubkey": account.to_hex(),
        "timestamp": ts, "signature": sign(&id, &format!("retrieve{ts}"))}});
    let requests = json!([
        store_request(&account, ts, ttl, b"abc 123"),
        retrieve,
        store_request(&account, ts, ttl, b"xyz 123"),
        {"method": "delete_all", "params": {"pubkey": account.to_hex(), "timestamp": ts,
            "signature": sign(&id, &format!("delete_all{ts}"))}},
        retrieve,
    ]);
    let (status, body) = net
        .rpc(members[2], "sequence", json!({ "requests": requests }))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "{body}");
    let codes: Vec<&Value> = results.iter().map(|r| &r["code"]).collect();
    assert_eq!(codes, [200; 5], "{body}");
    let h0 = hash(&account, 0, b"abc 123");
    let h1 = hash(&account, 0, b"xyz 123");
    assert_eq!(results[0]["body"]["hash"], h0);
    assert_eq!(
        results[1]["body"]["messages"],
        json!([{"data": "YWJjIDEyMw==", "expiration": ts + ttl, "hash": h0, "timestamp": ts}])
    );
    assert_eq!(results[1]["body"]["more"], false);
    assert_eq!(results[2]["body"]["hash"], h1);
    let mut both = vec![h0, h1];
    both.sort();
    let signed = format!("{}{ts}{}", account.to_hex(), both.concat());
    for (key, entry) in assert_swarm(&net, &members, &results[3]["body"]) {
        assert_eq!(entry["deleted"], json!(both), "{key}: {entry}");
        assert_node_sig(key, &signed, entry);
    }
    assert_eq!(results[4]["body"]["messages"], json!([]));
    assert_eq!(results[4]["body"]["more"], false);
}

/// test_batch::test_failing_sequence: a sequence stops at the first failure, a batch does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sequence() {
    let net = Net::start(&[3]).await;
    let id = user();
    let account = ed_session_account(&id);
    let member = net.swarm_of(&account)[0];
    let ts = now_ms();
    let requests = json!({"requests": [
        {"method": "store", "params": {"pubkey": account.to_hex(), "timestamp": ts,
            "namespace": 33, "ttl": 86_400_000, "data": b64(b"abc 123")}},
        {"method": "retrieve", "params": {"pubkey": account.to_hex(), "timestamp": ts,
            "signature": sign(&id, &format!("retrieve{ts}"))}},
    ]});
    let ((s_status, s_body), (b_status, b_body)) = tokio::join!(
        net.rpc(member, "sequence", requests.clone()),
        net.rpc(member, "batch", requests),
    );
    let refused =
        json!({"code": 401, "body": "store: signature required to store to namespace 33"});
    assert_eq!(s_status, 200, "{s_body}");
    assert_eq!(s_body, json!({ "results": [refused] }));

    assert_eq!(b_status, 200, "{b_body}");
    let results = b_body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{b_body}");
    assert_eq!(results[0], refused);
    assert_eq!(results[1]["code"], 200, "{b_body}");
    assert_eq!(results[1]["body"]["messages"], json!([]), "{b_body}");
    assert_eq!(results[1]["body"]["more"], false, "{b_body}");
}

const BIG_SIZE: usize = 70_000;
const BIG_COUNT: usize = 120;

/// The big-retrieve fixture: 120 random 70 kB messages for a `03` account, in insertion order.
struct BigStore {
    net: Net,
    member: usize,
    group: Identity,
    account: AccountId,
    hashes: Vec<String>,
    data: Vec<Vec<u8>>,
}

impl BigStore {
    /// Stores the messages with `sequence` requests of 20, so the insertion order is known.
    async fn new() -> Self {
        let net = Net::start(&[3]).await;
        let group = user();
        let account = group_account(&group);
        let members = net.swarm_of(&account);
        let member = members[0];
        let mut rng = rand::rngs::OsRng;
        let data: Vec<Vec<u8>> = (0..BIG_COUNT)
            .map(|_| {
                let mut bytes = vec![0u8; BIG_SIZE];
                rng.fill_bytes(&mut bytes);
                bytes
            })
            .collect();
        let mut hashes = Vec::with_capacity(BIG_COUNT);
        for chunk in data.chunks(20) {
            let ts = now_ms();
            let requests: Vec<Value> = chunk
                .iter()
                .map(|d| store_request(&account, ts, 600_000, d))
                .collect();
            let (status, body) = net
                .rpc(member, "sequence", json!({ "requests": requests }))
                .await;
            assert_eq!(status, 200);
            let results = body["results"].as_array().unwrap();
            assert_eq!(results.len(), chunk.len());
            for (result, d) in results.iter().zip(chunk) {
                assert_eq!(result["code"], 200, "{}", result["body"]);
                let expected = hash(&account, 0, d);
                assert_eq!(result["body"]["hash"], expected);
                assert_swarm(&net, &members, &result["body"]);
                hashes.push(expected);
            }
        }
        Self {
            net,
            member,
            group,
            account,
            hashes,
            data,
        }
    }

    /// Runs signed retrieves (extra params merged in) concurrently; returns (hashes, more).
    async fn retrieve_all(&self, extras: &[Value]) -> Vec<(Vec<String>, bool)> {
        let ts = now_ms();
        let signature = sign(&self.group, &format!("retrieve{ts}"));
        let runs = extras.iter().map(|extra| {
            let mut params = json!({"pubkey": self.account.to_hex(), "timestamp": ts,
                "signature": signature});
            for (k, v) in extra.as_object().unwrap() {
                params[k] = v.clone();
            }
            async move {
                let (status, body) = self.net.rpc(self.member, "retrieve", params).await;
                assert_eq!(status, 200, "{extra}: {body}");
                let messages = body["messages"].as_array().unwrap();
                for m in messages {
                    let i = self.index(m["hash"].as_str().unwrap());
                    assert_eq!(m["data"], b64(&self.data[i]), "{extra}");
                }
                let hashes = messages
                    .iter()
                    .map(|m| m["hash"].as_str().unwrap().to_owned())
                    .collect();
                (hashes, body["more"].as_bool().unwrap())
            }
        });
        futures_util::future::join_all(runs).await
    }

    fn index(&self, hash: &str) -> usize {
        self.hashes.iter().position(|h| h == hash).unwrap()
    }

    /// Expected result: `hashes[range]` and `more`.
    fn expect(&self, range: std::ops::Range<usize>, more: bool) -> (Vec<String>, bool) {
        (self.hashes[range].to_vec(), more)
    }

    /// test_big_retrieve::test_retrieve_count.
    async fn retrieve_count(&self) {
        let h = &self.hashes;
        let got = self
            .retrieve_all(&[
                json!({"max_count": 5}),
                json!({"max_count": 8, "last_hash": h[117]}),
                json!({"max_count": 20, "last_hash": h[110]}),
                // Exactly the last 10 fit: more is still false.
                json!({"max_count": 10, "last_hash": h[109]}),
                // 100 requested, but the implicit maximum size (7.8 MB) stops at 83.
                json!({"max_count": 100, "last_hash": h[10]}),
            ])
            .await;
        assert_eq!(got[0], self.expect(0..5, true));
        assert_eq!(got[1], self.expect(118..120, false));
        assert_eq!(got[2], self.expect(111..120, false));
        assert_eq!(got[3], self.expect(110..120, false));
        assert_eq!(got[4], self.expect(11..94, true));
    }

    /// test_big_retrieve::test_retrieve_size: each 70 kB message counts 100 + 43 + 93 333 bytes.
    async fn retrieve_size(&self) {
        let h = &self.hashes;
        let got = self
            .retrieve_all(&[
                json!({"max_size": 500_000, "last_hash": h[2]}),
                json!({"max_size": 600_000, "last_hash": h[112]}),
                json!({"max_size": -1, "last_hash": h[2]}),
                json!({"max_size": -1, "last_hash": h[110]}),
                json!({"max_size": -3, "last_hash": h[49]}),
                json!({"last_hash": h[89]}),
                json!({"last_hash": h[103]}),
            ])
            .await;
        assert_eq!(got[0], self.expect(3..8, true));
        assert_eq!(got[1], self.expect(113..119, true));
        assert_eq!(got[2], self.expect(3..86, true));
        assert_eq!(got[3], self.expect(111..120, false));
        assert_eq!(got[4], self.expect(50..77, true));
        assert_eq!(got[5], self.expect(90..106, true));
        assert_eq!(got[6], self.expect(104..120, false));
    }

    /// test_big_retrieve::test_retrieve_size_and_count: the stricter limit wins.
    async fn retrieve_size_and_count(&self) {
        let h = &self.hashes;
        let got = self
            .retrieve_all(&[
                json!({"max_count": 5, "max_size": 1_000_000, "last_hash": h[19]}),
                json!({"max_count": 10, "max_size": 700_000, "last_hash": h[29]}),
            ])
            .await;
        assert_eq!(got[0], self.expect(20..25, true));
        assert_eq!(got[1], self.expect(30..37, true));
    }
}

/// test_big_retrieve (count, size, size_and_count) over one stored set, as the reference's
/// module-scoped fixture does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_retrieve() {
    let store = BigStore::new().await;
    assert_eq!(store.hashes.len(), BIG_COUNT);
    store.retrieve_count().await;
    store.retrieve_size().await;
    store.retrieve_size_and_count().await;
}

/// test_ifelse::test_ifelse: hardfork/height/version conditions, `then`/`else`, a missing branch
/// and deep nesting ending in a batch. The local network's height is small, so the height
/// conditions are taken relative to the height the node reports (the reference uses 1234 and
/// 100 against mainnet heights).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ifelse() {
    let net = Net::start(&[3]).await;
    let id = user();
    let account: AccountId = id.session_id().into();
    let member = net.swarm_of(&account)[0];
    let ts = now_ms();
    let ttl = 86_400_000;
    let (yes, no) = (&[0x61u8, 0xeb][..], &[0x36u8, 0x8a, 0x5e][..]);
    assert_eq!((b64(yes), b64(no)), ("Yes=".to_owned(), "Nope".to_owned()));
    let store = |data: &str, ts: u64| {
        json!({"method": "store", "params": {"pubkey": account.to_hex(), "timestamp": ts,
            "ttl": ttl, "data": data}})
    };
    let net = &net;
    let ifelse = move |params: Value| async move { net.rpc(member, "ifelse", params).await };

    let (status, first) = ifelse(json!({"if": {"hf_at_least": [2_000_000]},
        "then": store("Yes=", ts), "else": store("Nope", ts)}))
    .await;
    assert_eq!(status, 200, "{first}");
    let height = first["height"].as_u64().unwrap();
    assert!(height > 0);
    let params = [
        json!({"if": {"hf_at_least": [19], "height_before": height},
            "then": store("Yes=", ts + 1), "else": store("Nope", ts + 1)}),
        json!({"if": {"hf_at_least": [19], "height_before": 123_456_789},
            "then": store("Yes=", ts + 2), "else": store("Nope", ts + 2)}),
        json!({"if": {"hf_at_least": [19]}, "then": store("Yes=", ts + 3), "else": store("Nope", ts + 3)}),
        json!({"if": {"hf_at_least": [19, 1]}, "then": store("Yes=", ts + 4)}),
        json!({"if": {"hf_before": [19]}, "then": store("Yes=", ts + 5)}),
        json!({"if": {"hf_at_least": [19]}, "else": store("Yes=", ts + 6)}),
        json!({"if": {"hf_before": [19]}, "else": store("Nope", ts + 7)}),
        json!({"if": {"hf_at_least": [19]}, "then": {"method": "ifelse", "params": {
            "if": {"hf_at_least": [19]}, "then": {"method": "ifelse", "params": {
                "if": {"height_at_least": height}, "then": {"method": "ifelse", "params": {
                    "if": {"v_at_least": [2, 2]}, "then": {"method": "ifelse", "params": {
                        "if": {"hf_before": [99_999, 99]}, "then": {"method": "batch", "params": {
                            "requests": [store("Yes=", ts + 8), store("Yes=", ts + 9), store("Yes=", ts + 10)]
                        }}
                    }}
                }}
            }}
        }}}),
    ];
    let mut r = vec![first];
    for reply in futures_util::future::join_all(params.into_iter().map(ifelse)).await {
        assert_eq!(reply.0, 200, "{}", reply.1);
        r.push(reply.1);
    }
    // The node reports its own state with every answer (the harness directory: hf 19.4).
    for (i, body) in r.iter().enumerate() {
        assert_eq!(body["hf"], json!([19, 4]), "{i}: {body}");
        assert_eq!(body["v"], json!([2, 6, 2]), "{i}: {body}");
        assert_eq!(body["height"], height, "{i}: {body}");
        assert!(body.get("t").is_none(), "{i}: {body}");
        if i != 5 && i != 6 {
            assert_eq!(body["result"]["code"], 200, "{i}: {body}");
        }
    }
    let (h_yes, h_no) = (hash(&account, 0, yes), hash(&account, 0, no));
    let expect = [
        (false, Some(&h_no)),
        (false, Some(&h_no)),
        (true, Some(&h_yes)),
        (true, Some(&h_yes)),
        (true, Some(&h_yes)),
        (false, None),
        (true, None),
        (false, Some(&h_no)),
    ];
    for (i, (condition, stored)) in expect.into_iter().enumerate() {
        assert_eq!(r[i]["condition"], condition, "{i}: {}", r[i]);
        match stored {
            Some(h) => assert_eq!(r[i]["result"]["body"]["hash"], *h, "{i}: {}", r[i]),
            None => assert!(r[i].get("result").is_none(), "{i}: {}", r[i]),
        }
    }

    let mut x = &r[8];
    for _ in 0..5 {
        assert_eq!(x["condition"], true, "{x}");
        assert_eq!(x["result"]["code"], 200, "{x}");
        x = &x["result"]["body"];
    }
    let results = x["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{x}");
    for result in results {
        assert_eq!(result["code"], 200, "{result}");
        assert_eq!(result["body"]["hash"], h_yes, "{result}");
    }

    // `ifelse` may not appear inside a batch.
    let (status, body) = net
        .rpc(
            member,
            "batch",
            json!({"requests": [{"method": "ifelse", "params": {"if": {"hf_at_least": [19]},
                "then": {"method": "info", "params": {}}, "else": {"method": "info", "params": {}}}}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        "invalid request: Invalid batch subrequest: subrequests may not contain meta-requests"
    );
}
