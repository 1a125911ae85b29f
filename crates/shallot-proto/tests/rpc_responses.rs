//! Typed RPC responses (storage RPC spec §3, §4, §6): each spec-shaped example decodes and encodes
//! back to the same bytes (keys in ascending order, optional fields omitted, numbers as numbers),
//! and the forms a reference node relays from bt (`1` for `true`) still decode.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::namespace::{Namespace, NamespaceSelector};
use shallot_proto::rpc::{
    BatchResults, Deleted, Expired, Expiries, ExpiryValue, HashList, IfElseResult, Info,
    MemberFailure, MemberResult, Method, MonitorFrame, MonitorReply, MonitorSubscription,
    Notification, OxendResult, Refusal, RetrievePage, Revoked, Stored, SwarmMembers, SwarmResults,
    Unrevoked, Updated,
};
use shallot_proto::swarm::SwarmId;
use shallot_proto::AccountId;

const H1: &str = "IMR0YySXQK/E+Zreo7uKqLcyqiJbwIB8V3U9Keu/uXU";
const H2: &str = "RJlZiZe5q0xuUckjsOt7wE9rz68G+RRRz55Nb2T1PXk";
const PK05: &str = "05cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
const T: u64 = 1_700_000_000_123;
const EXPIRY: u64 = 1_700_000_300_000;

/// A member key (64 hex).
fn member(byte: &str) -> String {
    byte.repeat(32)
}

/// A syntactically valid signature, padded (88 chars).
fn sig() -> String {
    shallot_proto::b64::encode([7u8; 64])
}

/// Decodes `example` as `T`, and checks that encoding gives back exactly `example` (written with
/// its keys in ascending order, as the reference writes them).
fn round_trip<T: DeserializeOwned + Serialize>(example: &Value) -> T {
    let text = example.to_string();
    let decoded: T = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&decoded).unwrap(), text);
    // Through a `Value`, as the node writes bodies, the bytes are the same.
    assert_eq!(serde_json::to_value(&decoded).unwrap().to_string(), text);
    decoded
}

#[test]
fn store_results_round_trip_with_each_kind_of_member_entry() {
    let example = json!({
        "hash": H1, "hf": [19, 3], "t": T,
        "swarm": {
            member("aa"): {"expiry": EXPIRY, "hash": H1, "signature": sig(), "t": T},
            member("bb"): {"already": true, "expiry": EXPIRY, "hash": H1, "signature": sig()},
            member("cc"): {"failed": true, "timeout": true},
            member("dd"): {"code": "401", "failed": true,
                "reason": "store signature verification failed"},
            member("ee"): {"bad_peer_response": true, "failed": true},
            member("ff"): {"failed": true, "query_failure": true, "reason": "database is locked"},
            "zz": {"unexpected": [1, 2]},
        },
    });
    let reply: SwarmResults<Stored> = round_trip(&example);
    assert_eq!(reply.hash, Some(H1.parse().unwrap()));
    assert_eq!(reply.hf, [19, 3]);
    assert_eq!(
        reply.succeeded(),
        3,
        "two signed results and one unrecognised entry"
    );
    let own = reply.swarm[&member("aa")].ok().unwrap();
    assert_eq!((own.expiry, own.t, own.already), (EXPIRY, Some(T), false));
    assert!(reply.swarm[&member("bb")].ok().unwrap().already);
    assert_eq!(
        reply.swarm[&member("cc")],
        MemberResult::Failed(MemberFailure::timeout())
    );
    assert_eq!(
        reply.swarm[&member("dd")],
        MemberResult::Failed(MemberFailure::status(
            401,
            "store signature verification failed"
        ))
    );
    assert_eq!(
        reply.swarm[&member("ee")],
        MemberResult::Failed(MemberFailure::bad_peer_response())
    );
    assert!(matches!(
        reply.swarm["zz"],
        MemberResult::Unrecognised(Value::Object(_))
    ));

    // A forwarded member answers with its own entry only; the entry node's has no `hash` on
    // failure.
    round_trip::<MemberResult<Stored>>(&json!({"expiry": EXPIRY, "hash": H1, "signature": sig()}));
    round_trip::<SwarmResults<Stored>>(&json!({"hf": [19, 3], "swarm": {}, "t": T}));
}

#[test]
fn flags_relayed_from_bt_as_integers_decode() {
    let relayed = json!({"hf": [19, 3], "t": T, "swarm": {
        member("aa"): {"already": 1, "expiry": EXPIRY, "hash": H1, "signature": sig()},
        member("bb"): {"failed": 1, "timeout": 1},
        member("cc"): {"failed": 1, "code": "500", "reason": "request failed"},
    }});
    let reply: SwarmResults<Stored> = serde_json::from_value(relayed).unwrap();
    assert!(reply.swarm[&member("aa")].ok().unwrap().already);
    assert_eq!(
        reply.swarm[&member("bb")],
        MemberResult::Failed(MemberFailure::timeout())
    );
    assert!(reply.swarm[&member("cc")].is_failed());
    // Written back the way our nodes write them.
    let again = serde_json::to_value(&reply).unwrap();
    assert_eq!(again["swarm"][member("aa")]["already"], json!(true));
    assert_eq!(
        again["swarm"][member("bb")],
        json!({"failed": true, "timeout": true})
    );
}

#[test]
fn member_failures_have_the_spec_shapes() {
    let shape = |f: MemberFailure| serde_json::to_value(f).unwrap();
    assert_eq!(
        shape(MemberFailure::timeout()),
        json!({"failed": true, "timeout": true})
    );
    assert_eq!(
        shape(MemberFailure::bad_peer_response()),
        json!({"failed": true, "bad_peer_response": true})
    );
    assert_eq!(
        shape(MemberFailure::bad_signature()),
        json!({"failed": true, "bad_signature": true})
    );
    assert_eq!(
        shape(MemberFailure::status(406, "too old")),
        json!({"failed": true, "code": "406", "reason": "too old"})
    );
    assert_eq!(
        shape(MemberFailure::query_failure(None)),
        json!({"failed": true, "query_failure": true})
    );
    assert_eq!(
        shape(MemberFailure::quota_exceeded("full")),
        json!({"failed": true, "quota_exceeded": true, "reason": "full"})
    );
}

#[test]
fn delete_results_round_trip_for_one_namespace_and_for_all() {
    let one = json!({"hf": [19, 3], "t": T, "swarm": {
        member("aa"): {"deleted": [H1, H2], "signature": sig()},
        member("bb"): {"deleted": [], "signature": sig()},
    }});
    let reply: SwarmResults<Deleted> = round_trip(&one);
    let entry = reply.swarm[&member("aa")].ok().unwrap();
    assert_eq!(
        entry.deleted.hashes(),
        vec![H1.parse::<MessageHash>().unwrap(), H2.parse().unwrap()]
    );
    assert!(reply.swarm[&member("bb")].ok().unwrap().deleted.is_empty());

    let all = json!({"hf": [19, 3], "t": T, "swarm": {
        member("aa"): {"deleted": {"-42": [H2], "0": [H1]}, "signature": sig()},
        member("bb"): {"deleted": {}, "signature": sig()},
    }});
    let reply: SwarmResults<Deleted> = round_trip(&all);
    assert_eq!(
        reply.swarm[&member("aa")]
            .ok()
            .unwrap()
            .deleted
            .hashes()
            .len(),
        2
    );
    assert!(reply.swarm[&member("bb")].ok().unwrap().deleted.is_empty());
}

#[test]
fn hash_lists_are_sorted_by_text_and_grouped_per_namespace() {
    // Byte order and text order differ for these two ("a…" < "0…" as bytes, not as text): the
    // text order is the one written.
    let (ha, h0) = (
        MessageHash::from_bytes([0x68; 32]),
        MessageHash::from_bytes([0xd0; 32]),
    );
    let (ta, t0) = (ha.to_string(), h0.to_string());
    assert!(ha < h0 && t0 < ta);
    assert_eq!(
        serde_json::to_value(HashList::sorted(vec![ha, h0])).unwrap(),
        json!([t0, ta])
    );
    let pairs = [
        (Namespace(10), ha),
        (Namespace(2), h0),
        (Namespace(-42), ha),
    ];
    assert_eq!(
        serde_json::to_string(&HashList::for_selector(NamespaceSelector::All, &pairs)).unwrap(),
        json!({"-42": [ta], "10": [ta], "2": [t0]}).to_string()
    );
    assert_eq!(
        serde_json::to_value(HashList::for_selector(
            NamespaceSelector::One(Namespace(2)),
            &pairs
        ))
        .unwrap(),
        json!([t0, ta, ta])
    );
}

#[test]
fn expire_results_round_trip_single_multi_and_unchanged() {
    let single = json!({"expiry": EXPIRY, "signature": sig(),
        "unchanged": {H1: EXPIRY + 1}, "updated": [H2]});
    let entry: Expired = round_trip(&single);
    assert_eq!(entry.expiry, ExpiryValue::Single(EXPIRY));
    assert_eq!(
        entry.unchanged.unwrap().0,
        vec![(H1.parse().unwrap(), EXPIRY + 1)]
    );

    let multi = json!({"expiry": [EXPIRY, EXPIRY + 5], "signature": sig(), "updated": [H1, H2]});
    let entry: Expired = round_trip(&multi);
    assert_eq!(entry.expiry, ExpiryValue::Each(vec![EXPIRY, EXPIRY + 5]));
    assert!(entry.unchanged.is_none());

    // Unchanged hashes are written in text order whatever order they are held in.
    let unchanged =
        json!({"expiry": EXPIRY, "signature": sig(), "unchanged": {H1: 1, H2: 2}, "updated": []});
    let mut entry: Expired = round_trip(&unchanged);
    entry.unchanged.as_mut().unwrap().0.reverse();
    assert_eq!(
        serde_json::to_string(&entry).unwrap(),
        unchanged.to_string()
    );

    let all = json!({"signature": sig(), "updated": {"0": [H1], "5": []}});
    let entry: Updated = round_trip(&all);
    assert_eq!(entry.updated.hashes().len(), 1);
    round_trip::<Updated>(&json!({"signature": sig(), "updated": [H2]}));
}

#[test]
fn revocation_results_round_trip() {
    round_trip::<Revoked>(&json!({"signature": sig()}));
    let entry: Unrevoked = round_trip(&json!({"count": 2, "signature": sig()}));
    assert_eq!(entry.count, 2);
    let reply: SwarmResults<Unrevoked> = round_trip(&json!({"hf": [19, 3], "t": T, "swarm": {
        member("aa"): {"count": 0, "signature": sig()},
    }}));
    assert_eq!(reply.succeeded(), 1);
}

#[test]
fn retrieve_pages_round_trip() {
    let page = json!({"hf": [19, 3], "messages": [
        {"data": "aGVsbG8=", "expiration": EXPIRY, "hash": H1, "timestamp": T},
        {"data": "", "expiration": EXPIRY, "hash": H2, "timestamp": T + 1},
    ], "more": true, "t": T});
    let decoded: RetrievePage = round_trip(&page);
    assert_eq!(decoded.messages[0].data, b"hello");
    assert_eq!(decoded.messages[1].hash, H2.parse().unwrap());
    assert!(decoded.more);
    assert_eq!(decoded.wait_ms, None);

    let waited = json!({"hf": [19, 3], "messages": [], "more": false, "t": T, "wait_ms": 20000});
    assert_eq!(round_trip::<RetrievePage>(&waited).wait_ms, Some(20000));

    // Data is read padded or not; a message that is not base64 is not a message.
    let unpadded = json!({"messages": [{"data": "aGVsbG8", "expiration": 1, "hash": H1,
        "timestamp": 1}]});
    let decoded: RetrievePage = serde_json::from_value(unpadded).unwrap();
    assert_eq!(decoded.messages[0].data, b"hello");
    let bad = json!({"messages": [{"data": "*", "expiration": 1, "hash": H1, "timestamp": 1}]});
    assert!(serde_json::from_value::<RetrievePage>(bad).is_err());
    // Debug output leaves the data out.
    assert!(!format!("{:?}", decoded.messages[0]).contains("hello"));
}

#[test]
fn get_expiries_round_trips() {
    let example = json!({"expiries": {H1: EXPIRY, H2: EXPIRY + 1}});
    let decoded: Expiries = round_trip(&example);
    assert_eq!(decoded.expiries[H2], EXPIRY + 1);
    round_trip::<Expiries>(&json!({"expiries": {}}));
}

#[test]
fn swarm_members_round_trip_and_skip_bad_entries() {
    let entry = |ip: &str| {
        json!({"address": format!("{}.snode", "y".repeat(52)), "ip": ip, "port": "22021",
            "port_https": 22021, "port_omq": 22020, "port_quic": 22020,
            "pubkey_ed25519": member("bb"), "pubkey_legacy": member("aa"),
            "pubkey_x25519": member("cc")})
    };
    let example = json!({"hf": [19, 3], "snodes": [entry("10.1.2.3"), entry("10.1.2.4")],
        "swarm": "7d0", "t": T});
    let decoded: SwarmMembers = round_trip(&example);
    assert_eq!(decoded.swarm, SwarmId(2000));
    assert_eq!(decoded.snodes[1].ip.to_string(), "10.1.2.4");
    assert_eq!(
        (decoded.snodes[0].port, decoded.snodes[0].port_https),
        (22021, 22021)
    );
    assert_eq!(decoded.snodes[0].pubkey_legacy, [0xaa; 32]);

    let none = json!({"hf": [19, 3], "snodes": [], "swarm": "ffffffffffffffff", "t": T});
    assert_eq!(round_trip::<SwarmMembers>(&none).swarm, SwarmId::INVALID);

    // One malformed member does not hide the others; a bad swarm id reads as none.
    let mut broken = entry("10.1.2.5");
    broken["pubkey_ed25519"] = json!("zz");
    let lenient = json!({"snodes": [entry("10.1.2.3"), broken, 7], "swarm": "not hex"});
    let decoded: SwarmMembers = serde_json::from_value(lenient).unwrap();
    assert_eq!(decoded.snodes.len(), 1);
    assert_eq!(decoded.swarm, SwarmId::INVALID);
}

#[test]
fn info_and_oxend_answers_round_trip() {
    let info: Info = round_trip(&json!({"hf": [19, 3], "t": T, "timestamp": T,
        "version": [2, 6, 2]}));
    assert_eq!(info.version, [2, 6, 2]);
    let oxend: OxendResult = round_trip(&json!({"hf": [19, 3],
        "result": {"height": 10, "service_node_states": [], "status": "OK"}, "t": T}));
    assert_eq!(oxend.result["status"], "OK");
}

#[test]
fn batch_and_ifelse_answers_round_trip() {
    let page = json!({"hf": [19, 3], "messages": [], "more": false, "t": T});
    let batch = json!({"results": [
        {"body": page, "code": 200},
        {"body": "retrieve signature verification failed", "code": 401},
    ]});
    let decoded: BatchResults = round_trip(&batch);
    assert!(decoded.results[0].is_success());
    let first: RetrievePage = decoded.results[0].decode().unwrap();
    assert!(first.messages.is_empty());
    assert!(!decoded.results[1].is_success());
    assert_eq!(
        decoded.results[1].text(),
        "retrieve signature verification failed"
    );

    let info = json!({"hf": [19, 3], "t": T, "timestamp": T, "version": [2, 6, 2]});
    let chosen = json!({"condition": true, "height": 1234, "hf": [19, 3],
        "result": {"body": info, "code": 200}, "v": [2, 6, 2]});
    let decoded: IfElseResult = round_trip(&chosen);
    assert!(decoded.condition);
    let info: Info = decoded.result.unwrap().decode().unwrap();
    assert_eq!(info.t, T);
    let absent = json!({"condition": false, "height": 1234, "hf": [19, 3], "v": [2, 6, 2]});
    assert!(round_trip::<IfElseResult>(&absent).result.is_none());
}

#[test]
fn monitor_frames_round_trip() {
    let subscription: MonitorSubscription = round_trip(&json!({"P": member("bb"), "d": 1,
        "n": [0, 5], "s": sig(), "t": 1_700_000_000_u64}));
    assert!(subscription.want_data);
    assert_eq!(subscription.namespaces, vec![Namespace(0), Namespace(5)]);
    let by_account: MonitorSubscription =
        round_trip(&json!({"n": [-10], "p": PK05, "s": sig(), "t": 1_700_000_000_u64}));
    assert_eq!(by_account.account, Some(PK05.parse::<AccountId>().unwrap()));
    assert!(!by_account.want_data);

    assert_eq!(
        round_trip::<MonitorReply>(&json!({"success": 1})),
        MonitorReply::SUCCESS
    );
    round_trip::<MonitorReply>(&json!({"errcode": 4,
        "error": "Invalid t= signature timestamp: timestamp is too old"}));

    let with_data = json!({"@": PK05, "h": H1, "n": 0, "t": T, "z": EXPIRY, "~": "aGk="});
    let note: Notification = round_trip(&with_data);
    assert_eq!(note.data.as_deref(), Some(&b"hi"[..]));
    assert!(!format!("{note:?}").contains("aGk"));
    let plain = json!({"@": PK05, "h": H1, "n": -10, "t": T, "z": EXPIRY});
    assert_eq!(round_trip::<Notification>(&plain).namespace, Namespace(-10));

    // What a client reads off the socket.
    for (frame, kind) in [
        (with_data, "notification"),
        (json!({"success": 1}), "reply"),
        (json!({"errcode": 1, "error": "x"}), "reply"),
        (
            json!([{"success": 1}, {"errcode": 3, "error": "y"}]),
            "replies",
        ),
    ] {
        let decoded: MonitorFrame = round_trip(&frame);
        let got = match decoded {
            MonitorFrame::Notification(_) => "notification",
            MonitorFrame::Reply(_) => "reply",
            MonitorFrame::Replies(_) => "replies",
        };
        assert_eq!(got, kind, "{frame}");
    }
    assert!(serde_json::from_value::<MonitorFrame>(json!({"other": 1})).is_err());
}

#[test]
fn refusals_have_the_reference_texts_and_statuses() {
    let account: AccountId = PK05.parse().unwrap();
    let cases = [
        (
            Refusal::InvalidTtl,
            403,
            "Provided expiry/TTL is not valid.",
        ),
        (
            Refusal::StoreClock,
            406,
            "Timestamp error: check your clock",
        ),
        (
            Refusal::StoreUnsigned(Namespace(-11)),
            401,
            "store: signature required to store to namespace -11",
        ),
        (
            Refusal::RetrieveUnsigned,
            401,
            "retrieve: request signature required",
        ),
        (
            Refusal::StaleTimestamp(Method::Store),
            406,
            "store signature timestamp too far from current time",
        ),
        (
            Refusal::StaleTimestamp(Method::UnrevokeSubaccount),
            406,
            "unrevoke_subaccount timestamp too far from current time",
        ),
        (
            Refusal::BadSignature(Method::Delete),
            401,
            "delete_msgs signature verification failed",
        ),
        (
            Refusal::BadSignature(Method::Expire),
            401,
            "expire: signature verification failed",
        ),
        (
            Refusal::BadSignature(Method::GetExpiries),
            401,
            "get_expiries signature verification failed",
        ),
        (
            Refusal::BeforeInFuture,
            401,
            "delete_before timestamp too far in the future",
        ),
        (
            Refusal::ExpiryInPast,
            401,
            "expire: timestamp should be >= current time",
        ),
        (
            Refusal::ExpireAllInPast,
            406,
            "expire_all timestamp should be >= current time",
        ),
        (
            Refusal::MultiExpiryInactive,
            403,
            "expire: multi-expiry requests are not yet active on the network",
        ),
        (
            Refusal::RetrieveFailed(account),
            500,
            "Internal Server Error. Could not retrieve messages for 05cd…cd",
        ),
        (Refusal::RateLimited, 429, "Too Many Requests\n"),
        (
            Refusal::NotForwardable,
            400,
            "invalid request: received invalid forwarded non-forwardable request",
        ),
    ];
    for (refusal, status, text) in cases {
        assert_eq!(
            (refusal.status(), refusal.to_string().as_str()),
            (status, text)
        );
    }
}
