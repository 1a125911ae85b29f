//! Behaviour of the message store against real SQLite files (storage RPC spec §4, §7, §8.6).

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use shallot_proto::message_hash::MessageHash;
use shallot_proto::namespace::{Namespace, NamespaceSelector};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, AccountKind, Ed25519Pub};
use shallot_store::{
    ExpireMode, NewMessage, Store, StoreConfig, StoreError, StoreOutcome, StoredMessage,
};
use tempfile::TempDir;

const NOW: u64 = 1_700_000_000_000;
const DAY: u64 = 86_400_000;

fn account(prefix: u8, n: u8) -> AccountId {
    AccountId::new(AccountKind::from_prefix(prefix), [n; 32])
}

fn message(account: AccountId, ns: i16, data: &[u8], timestamp: u64, expiry: u64) -> NewMessage {
    let namespace = Namespace(ns);
    NewMessage {
        account,
        namespace,
        hash: MessageHash::compute(&account, namespace, data),
        timestamp,
        expiry,
        data: bytes::Bytes::copy_from_slice(data),
    }
}

fn open(dir: &TempDir) -> Store {
    open_with(dir.path(), StoreConfig::default())
}

fn open_with(dir: &Path, config: StoreConfig) -> Store {
    Store::open(dir.join("storage.db"), config).expect("open store")
}

fn hashes(store: &Store, account: &AccountId, ns: i16) -> Vec<MessageHash> {
    store
        .retrieve(account, Namespace(ns), None, None, usize::MAX)
        .expect("retrieve")
        .messages
        .iter()
        .map(|m| m.hash)
        .collect()
}

fn sorted_text(mut hashes: Vec<MessageHash>) -> Vec<MessageHash> {
    hashes.sort_by_key(ToString::to_string);
    hashes
}

#[test]
fn store_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
    assert_send_sync::<StoreError>();
}

#[test]
fn store_then_retrieve_round_trips_every_field() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let msg = message(alice, 0, b"hello", NOW, NOW + DAY);
    assert_eq!(store.store(&msg).expect("store"), StoreOutcome::New);
    let got = store
        .retrieve(&alice, Namespace(0), None, None, usize::MAX)
        .expect("retrieve");
    assert_eq!(got.messages, vec![msg]);
    assert!(!got.more);
}

#[test]
fn duplicate_store_extends_but_never_shortens_and_keeps_data() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let first = message(alice, 0, b"same", NOW, NOW + DAY);
    assert!(!store.store(&first).expect("store").already());

    // Same hash, later expiry and a different timestamp: only the expiry moves.
    let mut later = first.clone();
    later.expiry = NOW + 2 * DAY;
    later.timestamp = NOW + 5;
    assert_eq!(
        store.store(&later).expect("store"),
        StoreOutcome::Extended {
            expiry: NOW + 2 * DAY
        }
    );
    // Earlier expiry: unchanged, the stored (later) expiry is reported.
    let mut earlier = first.clone();
    earlier.expiry = NOW + DAY / 2;
    let outcome = store.store(&earlier).expect("store");
    assert_eq!(
        outcome,
        StoreOutcome::Exists {
            expiry: NOW + 2 * DAY
        }
    );
    assert!(outcome.already());
    // Equal expiry: Exists too.
    assert_eq!(
        store.store(&later).expect("store"),
        StoreOutcome::Exists {
            expiry: NOW + 2 * DAY
        }
    );

    let got = store
        .retrieve(&alice, Namespace(0), None, None, usize::MAX)
        .expect("retrieve");
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].timestamp, NOW);
    assert_eq!(got.messages[0].expiry, NOW + 2 * DAY);
    assert_eq!(got.messages[0].data, &b"same"[..]);
}

#[test]
fn public_outbox_store_replaces_the_accounts_other_messages_there() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x03, 1);
    let bob = account(0x03, 2);
    let outbox = -21;
    assert!(Namespace(outbox).is_public_outbox());

    let a1 = message(alice, outbox, b"one", NOW, NOW + DAY);
    let b1 = message(bob, outbox, b"bob", NOW, NOW + DAY);
    let other_ns = message(alice, 1, b"private", NOW, NOW + DAY);
    for msg in [&a1, &b1, &other_ns] {
        store.store(msg).expect("store");
    }
    let a2 = message(alice, outbox, b"two", NOW + 1, NOW + DAY);
    assert_eq!(store.store(&a2).expect("store"), StoreOutcome::New);
    assert_eq!(hashes(&store, &alice, outbox), vec![a2.hash]);
    // Other accounts and other namespaces are untouched.
    assert_eq!(hashes(&store, &bob, outbox), vec![b1.hash]);
    assert_eq!(hashes(&store, &alice, 1), vec![other_ns.hash]);
    // Re-storing the current message keeps it (and only it).
    assert!(store.store(&a2).expect("store").already());
    assert_eq!(hashes(&store, &alice, outbox), vec![a2.hash]);

    // An ordinary negative namespace keeps every message.
    store
        .store(&message(alice, -2, b"x", NOW, NOW + DAY))
        .expect("store");
    store
        .store(&message(alice, -2, b"y", NOW, NOW + DAY))
        .expect("store");
    assert_eq!(hashes(&store, &alice, -2).len(), 2);
}

#[test]
fn accounts_are_identified_by_type_byte_and_namespaces_are_separate() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let five = account(0x05, 9);
    let three = account(0x03, 9);
    store
        .store(&message(five, 0, b"a", NOW, NOW + DAY))
        .expect("store");
    store
        .store(&message(three, 0, b"a", NOW, NOW + DAY))
        .expect("store");
    store
        .store(&message(five, 42, b"a", NOW, NOW + DAY))
        .expect("store");
    assert_eq!(hashes(&store, &five, 0).len(), 1);
    assert_eq!(hashes(&store, &three, 0).len(), 1);
    assert_ne!(hashes(&store, &five, 0), hashes(&store, &three, 0));
    assert_eq!(hashes(&store, &five, 42).len(), 1);
    assert!(hashes(&store, &five, -42).is_empty());
    assert!(hashes(&store, &account(0x05, 10), 0).is_empty());
}

/// 70 000-byte messages count 100 + 43 + 93 333 = 93 476 bytes each (spec §7.3).
#[test]
fn retrieve_size_accounting_matches_the_spec_examples() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let msgs: Vec<StoredMessage> = (0..100u32)
        .map(|i| {
            let mut data = vec![0u8; 70_000];
            data[..4].copy_from_slice(&i.to_be_bytes());
            message(alice, 0, &data, NOW, NOW + DAY)
        })
        .collect();
    assert_eq!(store.bulk_store(&msgs).expect("bulk"), 100);

    for (max_size, expected) in [
        (7_800_000, 83),
        (7_800_000 / 5, 16),
        (7_800_000 / 3, 27),
        (500_000, 5),
    ] {
        let got = store
            .retrieve(&alice, Namespace(0), None, None, max_size)
            .expect("retrieve");
        assert_eq!(got.messages.len(), expected, "max_size {max_size}");
        assert!(got.more, "max_size {max_size}");
        // Insertion order.
        let want: Vec<_> = msgs[..expected].iter().map(|m| m.hash).collect();
        let have: Vec<_> = got.messages.iter().map(|m| m.hash).collect();
        assert_eq!(have, want);
    }

    // The first message is always returned, however small the budget.
    let got = store
        .retrieve(&alice, Namespace(0), None, None, 1)
        .expect("retrieve");
    assert_eq!(got.messages.len(), 1);
    assert!(got.more);

    // Exactly at the budget is still in; one byte less is out.
    let got = store
        .retrieve(&alice, Namespace(0), None, None, 2 * 93_476)
        .expect("retrieve");
    assert_eq!(got.messages.len(), 2);
    let got = store
        .retrieve(&alice, Namespace(0), None, None, 2 * 93_476 - 1)
        .expect("retrieve");
    assert_eq!(got.messages.len(), 1);

    // Paging from the last hash reaches the end with more = false.
    let mut last = None;
    let mut seen = 0;
    loop {
        let page = store
            .retrieve(&alice, Namespace(0), last.as_ref(), None, 7_800_000)
            .expect("retrieve");
        seen += page.messages.len();
        last = page.messages.last().map(|m| m.hash);
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, 100);
}

#[test]
fn retrieve_max_count_last_hash_and_more() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let bob = account(0x05, 2);
    let msgs: Vec<_> = (0..10u8)
        .map(|i| message(alice, 0, &[i], NOW, NOW + DAY))
        .collect();
    for msg in &msgs {
        store.store(msg).expect("store");
    }
    let other_ns = message(alice, 5, b"elsewhere", NOW, NOW + DAY);
    let bobs = message(bob, 0, b"bob", NOW, NOW + DAY);
    store.store(&other_ns).expect("store");
    store.store(&bobs).expect("store");
    let all = |r: shallot_store::Retrieved| -> (Vec<MessageHash>, bool) {
        (r.messages.iter().map(|m| m.hash).collect(), r.more)
    };
    let hashes_of = |range: std::ops::Range<usize>| -> Vec<MessageHash> {
        msgs[range].iter().map(|m| m.hash).collect()
    };
    let ns0 = Namespace(0);

    // max_count exactly the number left: more = false.
    let r = store.retrieve(&alice, ns0, None, Some(10), usize::MAX);
    assert_eq!(all(r.expect("retrieve")), (hashes_of(0..10), false));
    let r = store.retrieve(&alice, ns0, None, Some(3), usize::MAX);
    assert_eq!(all(r.expect("retrieve")), (hashes_of(0..3), true));
    // max_count 0 means unlimited.
    let r = store.retrieve(&alice, ns0, None, Some(0), usize::MAX);
    assert_eq!(all(r.expect("retrieve")), (hashes_of(0..10), false));
    // After a known hash.
    let r = store.retrieve(&alice, ns0, Some(&msgs[2].hash), Some(3), usize::MAX);
    assert_eq!(all(r.expect("retrieve")), (hashes_of(3..6), true));
    let r = store.retrieve(&alice, ns0, Some(&msgs[9].hash), None, usize::MAX);
    assert_eq!(all(r.expect("retrieve")), (vec![], false));
    // Unknown hash, another namespace's hash or another account's hash: from the start.
    for last in [MessageHash::from_bytes([7; 32]), other_ns.hash, bobs.hash] {
        let r = store.retrieve(&alice, ns0, Some(&last), Some(2), usize::MAX);
        assert_eq!(all(r.expect("retrieve")), (hashes_of(0..2), true));
    }
    // Unknown account: empty.
    let r = store.retrieve(&account(0x05, 99), ns0, None, None, usize::MAX);
    assert_eq!(all(r.expect("retrieve")), (vec![], false));
}

#[test]
fn delete_removes_only_the_accounts_messages_in_any_namespace() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let bob = account(0x05, 2);
    let a0 = message(alice, 0, b"a0", NOW, NOW + DAY);
    let a7 = message(alice, 7, b"a7", NOW, NOW + DAY);
    let keep = message(alice, 0, b"keep", NOW, NOW + DAY);
    let b0 = message(bob, 0, b"b0", NOW, NOW + DAY);
    for msg in [&a0, &a7, &keep, &b0] {
        store.store(msg).expect("store");
    }
    let unknown = MessageHash::from_bytes([1; 32]);
    let deleted = store
        .delete(&alice, &[a0.hash, a7.hash, b0.hash, unknown, a0.hash])
        .expect("delete");
    assert_eq!(deleted, sorted_text(vec![a0.hash, a7.hash]));
    assert_eq!(hashes(&store, &alice, 0), vec![keep.hash]);
    assert!(hashes(&store, &alice, 7).is_empty());
    assert_eq!(hashes(&store, &bob, 0), vec![b0.hash]);
    assert!(store
        .delete(&account(0x05, 50), &[b0.hash])
        .expect("delete")
        .is_empty());
}

#[test]
fn delete_all_one_namespace_or_all() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let bob = account(0x05, 2);
    let msgs = [
        message(alice, 0, b"1", NOW, NOW + DAY),
        message(alice, 0, b"2", NOW, NOW + DAY),
        message(alice, -42, b"3", NOW, NOW + DAY),
        message(alice, 42, b"4", NOW, NOW + DAY),
        message(bob, 0, b"5", NOW, NOW + DAY),
    ];
    for msg in &msgs {
        store.store(msg).expect("store");
    }
    let one = store
        .delete_all(&alice, NamespaceSelector::One(Namespace(0)))
        .expect("delete_all");
    let mut want = vec![(Namespace(0), msgs[0].hash), (Namespace(0), msgs[1].hash)];
    want.sort_by_key(|(ns, h)| (*ns, h.to_string()));
    assert_eq!(one, want);
    let rest = store
        .delete_all(&alice, NamespaceSelector::All)
        .expect("delete_all");
    assert_eq!(
        rest,
        vec![
            (Namespace(-42), msgs[2].hash),
            (Namespace(42), msgs[3].hash)
        ]
    );
    assert!(store
        .delete_all(&alice, NamespaceSelector::All)
        .expect("delete_all")
        .is_empty());
    assert_eq!(hashes(&store, &bob, 0), vec![msgs[4].hash]);
}

/// Quirk 4: the reference fails with "all"; here it works like delete_all.
#[test]
fn delete_before_uses_client_timestamps_and_all_works() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let old0 = message(alice, 0, b"old0", NOW - 100, NOW + DAY);
    let edge0 = message(alice, 0, b"edge0", NOW, NOW + DAY);
    let new0 = message(alice, 0, b"new0", NOW + 1, NOW + DAY);
    let old5 = message(alice, 5, b"old5", NOW - 5, NOW + DAY);
    let new5 = message(alice, 5, b"new5", NOW + 10, NOW + DAY);
    let oldm3 = message(alice, -3, b"oldm3", NOW - 7, NOW + DAY);
    for msg in [&old0, &edge0, &new0, &old5, &new5, &oldm3] {
        store.store(msg).expect("store");
    }
    let one = store
        .delete_before(&alice, NamespaceSelector::One(Namespace(5)), NOW)
        .expect("delete_before");
    assert_eq!(one, vec![(Namespace(5), old5.hash)]);

    let all = store
        .delete_before(&alice, NamespaceSelector::All, NOW)
        .expect("delete_before all");
    let mut want = vec![
        (Namespace(0), old0.hash),
        (Namespace(0), edge0.hash),
        (Namespace(-3), oldm3.hash),
    ];
    want.sort_by_key(|(ns, h)| (*ns, h.to_string()));
    assert_eq!(all, want);
    assert_eq!(hashes(&store, &alice, 0), vec![new0.hash]);
    assert_eq!(hashes(&store, &alice, 5), vec![new5.hash]);
}

#[test]
fn expire_all_only_shortens() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let bob = account(0x05, 2);
    let short = message(alice, 0, b"short", NOW, NOW + 10);
    let long = message(alice, 0, b"long", NOW, NOW + DAY);
    let long3 = message(alice, 3, b"long3", NOW, NOW + DAY);
    let bobs = message(bob, 0, b"bob", NOW, NOW + DAY);
    for msg in [&short, &long, &long3, &bobs] {
        store.store(msg).expect("store");
    }
    let target = NOW + 1000;
    let updated = store
        .expire_all(&alice, NamespaceSelector::One(Namespace(0)), target)
        .expect("expire_all");
    assert_eq!(updated, vec![(Namespace(0), long.hash)]);
    let updated = store
        .expire_all(&alice, NamespaceSelector::All, target)
        .expect("expire_all");
    assert_eq!(updated, vec![(Namespace(3), long3.hash)]);
    let expiries = store
        .get_expiries(
            &alice,
            &[
                short.hash.to_string(),
                long.hash.to_string(),
                long3.hash.to_string(),
            ],
        )
        .expect("get_expiries");
    assert_eq!(
        expiries,
        vec![
            (short.hash.to_string(), NOW + 10),
            (long.hash.to_string(), target),
            (long3.hash.to_string(), target),
        ]
    );
    let bob_exp = store
        .get_expiries(&bob, &[bobs.hash.to_string()])
        .expect("get_expiries");
    assert_eq!(bob_exp, vec![(bobs.hash.to_string(), NOW + DAY)]);
}

#[test]
fn expire_modes_shorten_extend_and_set() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let bob = account(0x05, 2);
    let a = message(alice, 0, b"a", NOW, NOW + 1000);
    let b = message(alice, 4, b"b", NOW, NOW + 3000);
    let bobs = message(bob, 0, b"bob", NOW, NOW + 1000);
    for msg in [&a, &b, &bobs] {
        store.store(msg).expect("store");
    }
    let unknown = MessageHash::from_bytes([3; 32]);
    let req = [
        (a.hash, NOW + 2000),
        (b.hash, NOW + 2000),
        (bobs.hash, NOW + 2000),
        (unknown, NOW + 2000),
    ];

    // Extend: only a (1000 < 2000); b is unchanged at 3000; bob's and unknown ignored.
    let r = store
        .expire(&alice, &req, ExpireMode::Extend)
        .expect("expire");
    assert_eq!(r.updated, vec![(a.hash, NOW + 2000)]);
    assert_eq!(r.unchanged, vec![(b.hash, NOW + 3000)]);

    // Shorten to 1500: both are above.
    let req2 = [(a.hash, NOW + 1500), (b.hash, NOW + 1500)];
    let r = store
        .expire(&alice, &req2, ExpireMode::Shorten)
        .expect("expire");
    assert_eq!(
        r.updated,
        sorted_pairs(vec![(a.hash, NOW + 1500), (b.hash, NOW + 1500)])
    );
    assert!(r.unchanged.is_empty());

    // Shorten to something later, or equal: nothing changes.
    let req3 = [(a.hash, NOW + 1500), (b.hash, NOW + 9000)];
    let r = store
        .expire(&alice, &req3, ExpireMode::Shorten)
        .expect("expire");
    assert!(r.updated.is_empty());
    assert_eq!(
        r.unchanged,
        sorted_pairs(vec![(a.hash, NOW + 1500), (b.hash, NOW + 1500)])
    );

    // Set: unconditional, per-hash values.
    let req4 = [(a.hash, NOW + 100), (b.hash, NOW + 9000)];
    let r = store
        .expire(&alice, &req4, ExpireMode::Set)
        .expect("expire");
    assert_eq!(
        r.updated,
        sorted_pairs(vec![(a.hash, NOW + 100), (b.hash, NOW + 9000)])
    );
    assert!(r.unchanged.is_empty());

    let got = store
        .get_expiries(&alice, &[a.hash.to_string(), b.hash.to_string()])
        .expect("get_expiries");
    assert_eq!(
        got,
        vec![
            (a.hash.to_string(), NOW + 100),
            (b.hash.to_string(), NOW + 9000)
        ]
    );
    // A hash listed twice ends in its last state.
    let twice = [(a.hash, NOW + 200), (a.hash, NOW + 300)];
    let r = store
        .expire(&alice, &twice, ExpireMode::Set)
        .expect("expire");
    assert_eq!(r.updated, vec![(a.hash, NOW + 300)]);
    let r = store
        .expire(&alice, &[(a.hash, NOW + 100)], ExpireMode::Set)
        .expect("expire");
    assert_eq!(r.updated, vec![(a.hash, NOW + 100)]);

    // Bob's message was never touched.
    let got = store
        .get_expiries(&bob, &[bobs.hash.to_string()])
        .expect("get_expiries");
    assert_eq!(got, vec![(bobs.hash.to_string(), NOW + 1000)]);
}

fn sorted_pairs(mut pairs: Vec<(MessageHash, u64)>) -> Vec<(MessageHash, u64)> {
    pairs.sort_by_key(|(h, _)| h.to_string());
    pairs
}

#[test]
fn get_expiries_skips_invalid_unknown_and_foreign_hashes() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let bob = account(0x05, 2);
    let a = message(alice, 0, b"a", NOW, NOW + 5);
    let b = message(bob, 0, b"b", NOW, NOW + 6);
    store.store(&a).expect("store");
    store.store(&b).expect("store");
    let a_text = a.hash.to_string();
    let b_text = b.hash.to_string();
    let got = store
        .get_expiries(
            &alice,
            &[
                "not a hash",
                "",
                a_text.as_str(),
                b_text.as_str(),
                a_text.as_str(),
            ],
        )
        .expect("get_expiries");
    assert_eq!(got, vec![(a_text, NOW + 5)]);
    let none: Vec<(String, u64)> = store
        .get_expiries(&account(0x05, 77), &[b_text.as_str()])
        .expect("get_expiries");
    assert!(none.is_empty());
}

fn token(n: u8) -> SubaccountToken {
    SubaccountToken::new(
        0x03,
        SubaccountFlags::READ | SubaccountFlags::WRITE,
        &Ed25519Pub::from_bytes([n; 32]),
    )
}

/// Quirk 7: revocations survive an empty mailbox and need no messages at all.
#[test]
fn revocations_persist_after_the_account_empties() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let group = account(0x03, 1);
    // Revoking for an account that never stored anything is recorded.
    store.revoke(&group, &[token(1)], NOW).expect("revoke");
    assert!(store.is_revoked(&group, &token(1)).expect("is_revoked"));
    assert!(!store.is_revoked(&group, &token(2)).expect("is_revoked"));
    // Same key, other type byte: a different account.
    assert!(!store
        .is_revoked(&account(0x05, 1), &token(1))
        .expect("is_revoked"));

    let msg = message(group, 11, b"m", NOW, NOW + 50);
    store.store(&msg).expect("store");
    store.revoke(&group, &[token(2)], NOW + 1).expect("revoke");
    store.delete(&group, &[msg.hash]).expect("delete");
    let msg2 = message(group, 11, b"m2", NOW, NOW + 50);
    store.store(&msg2).expect("store");
    assert_eq!(store.sweep_expired(NOW + 50).expect("sweep"), 1);
    assert!(store.is_revoked(&group, &token(1)).expect("is_revoked"));
    assert!(store.is_revoked(&group, &token(2)).expect("is_revoked"));
    assert_eq!(store.stats().expect("stats").accounts, 1);

    // Survives a reopen too.
    drop(store);
    let store = open(&dir);
    assert!(store.is_revoked(&group, &token(2)).expect("is_revoked"));

    // Unrevoking counts only existing revocations; the last one lets the account row go.
    assert_eq!(
        store
            .unrevoke(&group, &[token(1), token(3)])
            .expect("unrevoke"),
        1
    );
    assert!(!store.is_revoked(&group, &token(1)).expect("is_revoked"));
    assert_eq!(store.unrevoke(&group, &[token(2)]).expect("unrevoke"), 1);
    assert_eq!(
        store
            .unrevoke(&account(0x03, 9), &[token(2)])
            .expect("unrevoke"),
        0
    );
    let stats = store.stats().expect("stats");
    assert_eq!((stats.accounts, stats.revocations), (0, 0));
}

#[test]
fn only_the_newest_fifty_revocations_are_kept() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let group = account(0x03, 1);
    let other = account(0x03, 2);
    store.revoke(&other, &[token(200)], NOW).expect("revoke");
    for i in 0..60u8 {
        store
            .revoke(&group, &[token(i)], NOW + u64::from(i))
            .expect("revoke");
    }
    for i in 0..60u8 {
        let revoked = store.is_revoked(&group, &token(i)).expect("is_revoked");
        assert_eq!(revoked, i >= 10, "token {i}");
    }
    // Re-revoking the oldest kept token refreshes it; the next oldest lapses instead.
    store
        .revoke(&group, &[token(10)], NOW + 100)
        .expect("revoke");
    store
        .revoke(&group, &[token(100)], NOW + 101)
        .expect("revoke");
    assert!(store.is_revoked(&group, &token(10)).expect("is_revoked"));
    assert!(!store.is_revoked(&group, &token(11)).expect("is_revoked"));
    assert!(store.is_revoked(&group, &token(100)).expect("is_revoked"));

    // A batch of 50 at one instant replaces all older ones.
    let batch: Vec<_> = (150..200u8).map(token).collect();
    store.revoke(&group, &batch, NOW + 200).expect("revoke");
    assert!(!store.is_revoked(&group, &token(100)).expect("is_revoked"));
    for t in &batch {
        assert!(store.is_revoked(&group, t).expect("is_revoked"));
    }
    // Other accounts are unaffected.
    assert!(store.is_revoked(&other, &token(200)).expect("is_revoked"));
    assert_eq!(store.stats().expect("stats").revocations, 51);
}

#[test]
fn sweep_deletes_expired_messages_and_empty_accounts() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let bob = account(0x05, 2);
    let a_old = message(alice, 0, b"a_old", NOW, NOW + 10);
    let a_new = message(alice, 0, b"a_new", NOW, NOW + 20);
    let b_old = message(bob, 3, b"b_old", NOW, NOW + 10);
    for msg in [&a_old, &a_new, &b_old] {
        store.store(msg).expect("store");
    }
    assert_eq!(store.sweep_expired(NOW + 9).expect("sweep"), 0);
    // Expired-but-unswept rows are still readable (reference behaviour).
    assert_eq!(hashes(&store, &alice, 0).len(), 2);
    assert_eq!(store.sweep_expired(NOW + 10).expect("sweep"), 2);
    assert_eq!(hashes(&store, &alice, 0), vec![a_new.hash]);
    assert!(hashes(&store, &bob, 3).is_empty());
    let stats = store.stats().expect("stats");
    assert_eq!((stats.messages, stats.accounts), (1, 1));
    assert_eq!(store.sweep_expired(NOW + 20).expect("sweep"), 1);
    let stats = store.stats().expect("stats");
    assert_eq!((stats.messages, stats.accounts), (0, 0));
    // A swept duplicate can be stored fresh again.
    assert_eq!(store.store(&a_old).expect("store"), StoreOutcome::New);
}

/// Quirk 5: peer pushes keep the namespace they carry.
#[test]
fn bulk_store_ignores_duplicates_and_keeps_namespaces() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    let existing = message(alice, 0, b"existing", NOW, NOW + 100);
    store.store(&existing).expect("store");
    let mut newer_copy = existing.clone();
    newer_copy.expiry = NOW + DAY;
    let batch = vec![
        newer_copy,
        message(alice, 12, b"ns12", NOW, NOW + DAY),
        message(account(0x03, 4), -11, b"group", NOW, NOW + DAY),
        message(alice, 12, b"ns12", NOW, NOW + DAY),
    ];
    assert_eq!(store.bulk_store(&batch).expect("bulk"), 2);
    assert_eq!(hashes(&store, &alice, 12), vec![batch[1].hash]);
    assert_eq!(hashes(&store, &account(0x03, 4), -11), vec![batch[2].hash]);
    // No expiry extension from bulk pushes.
    let got = store
        .get_expiries(&alice, &[existing.hash.to_string()])
        .expect("get_expiries");
    assert_eq!(got, vec![(existing.hash.to_string(), NOW + 100)]);
    assert_eq!(store.bulk_store(&batch).expect("bulk"), 0);
    assert_eq!(store.bulk_store(&[]).expect("bulk"), 0);
    assert_eq!(store.stats().expect("stats").accounts, 2);
}

#[test]
fn export_streams_everything_in_bounded_batches() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let mut all = Vec::new();
    for i in 0..25u8 {
        let acct = account(if i % 2 == 0 { 0x05 } else { 0x03 }, i % 3);
        let msg = message(acct, i16::from(i % 4) * 10 - 20, &[i], NOW, NOW + DAY);
        store.store(&msg).expect("store");
        all.push(msg);
    }
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    store
        .for_each_batch(10, |batch| {
            sizes.push(batch.len());
            seen.extend_from_slice(batch);
            ControlFlow::Continue(())
        })
        .expect("export");
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(seen, all);

    let mut calls = 0;
    store
        .for_each_batch(10, |_| {
            calls += 1;
            ControlFlow::Break(())
        })
        .expect("export");
    assert_eq!(calls, 1);

    let (first, cursor) = store.export_batch(None, 20).expect("export");
    assert_eq!(first.len(), 20);
    let (rest, cursor) = store.export_batch(cursor, 20).expect("export");
    assert_eq!(rest.len(), 5);
    let (none, _) = store.export_batch(cursor, 20).expect("export");
    assert!(none.is_empty());
}

#[test]
fn everything_acknowledged_is_there_after_reopen() {
    let dir = TempDir::new().expect("tempdir");
    let alice = account(0x05, 1);
    let msgs: Vec<_> = (0..50u8)
        .map(|i| message(alice, i16::from(i % 3), &[i; 100], NOW, NOW + DAY))
        .collect();
    {
        let store = open(&dir);
        for msg in &msgs {
            store.store(msg).expect("store");
        }
        store.revoke(&alice, &[token(1)], NOW).expect("revoke");
        store.delete(&alice, &[msgs[0].hash]).expect("delete");
    }
    let store = open(&dir);
    let mut seen = Vec::new();
    store
        .for_each_batch(7, |batch| {
            seen.extend_from_slice(batch);
            ControlFlow::Continue(())
        })
        .expect("export");
    assert_eq!(seen, msgs[1..]);
    assert!(store.is_revoked(&alice, &token(1)).expect("is_revoked"));
}

#[test]
fn concurrent_stores_from_eight_threads_all_land() {
    let dir = TempDir::new().expect("tempdir");
    let store = Arc::new(open(&dir));
    let per_thread = 100u16;
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let acct = account(0x05, t);
                for i in 0..per_thread {
                    let msg = message(acct, 0, &i.to_be_bytes(), NOW, NOW + DAY);
                    assert_eq!(store.store(&msg).expect("store"), StoreOutcome::New);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    for t in 0..8u8 {
        assert_eq!(hashes(&store, &account(0x05, t), 0).len(), 100);
    }
    let stats = store.stats().expect("stats");
    assert_eq!(stats.messages, 800);
    assert_eq!(stats.accounts, 8);
    assert!(stats.commits >= 1 && stats.commits <= stats.committed_writes);
    assert_eq!(stats.committed_writes, 800);
}

fn small_config() -> StoreConfig {
    StoreConfig {
        max_db_bytes: 512 * 1024,
        ..StoreConfig::default()
    }
}

#[test]
fn full_database_is_a_distinct_error_and_stays_usable() {
    let dir = TempDir::new().expect("tempdir");
    let alice = account(0x05, 1);
    let mut stored = Vec::new();
    {
        let store = open_with(dir.path(), small_config());
        let mut full = None;
        for i in 0..40u32 {
            let mut data = vec![0x5a; 60_000];
            data[..4].copy_from_slice(&i.to_be_bytes());
            let msg = message(alice, 0, &data, NOW, NOW + u64::from(i) + 1);
            match store.store(&msg) {
                Ok(outcome) => {
                    assert_eq!(outcome, StoreOutcome::New);
                    stored.push(msg.hash);
                }
                Err(err) => {
                    full = Some(err);
                    break;
                }
            }
        }
        let err = full.expect("the cap must be reached");
        assert!(err.is_full(), "{err}");
        assert!(matches!(err, StoreError::Full { .. }));
        assert!(!stored.is_empty());
        // Reads still work and see exactly the acknowledged messages.
        assert_eq!(hashes(&store, &alice, 0), stored);
        // Small writes that need no new pages, and deletes, still work.
        assert_eq!(store.sweep_expired(NOW + 2).expect("sweep"), 2);
        stored.drain(..2);
        // Freed pages are reused.
        let msg = message(alice, 0, &vec![1; 60_000], NOW, NOW + DAY);
        assert_eq!(
            store.store(&msg).expect("store after sweep"),
            StoreOutcome::New
        );
        stored.push(msg.hash);
        assert!(store.stats().expect("stats").db_bytes <= 512 * 1024);
    }
    let store = open_with(dir.path(), small_config());
    assert_eq!(hashes(&store, &alice, 0), stored);
    let integrity: String = rusqlite::Connection::open(dir.path().join("storage.db"))
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |row| row.get(0)))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
}

/// Many writers racing into the cap: each gets success or `Full`, and exactly the successes
/// are durable, even when one store's failure lands in a shared transaction.
#[test]
fn full_database_under_concurrency_fails_only_the_overflowing_stores() {
    let dir = TempDir::new().expect("tempdir");
    let store = Arc::new(open_with(dir.path(), small_config()));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let acct = account(0x05, t);
                let mut ok = Vec::new();
                let mut full = Vec::new();
                for i in 0..4u8 {
                    let msg = message(acct, 0, &vec![i; 30_000], NOW, NOW + DAY);
                    match store.store(&msg) {
                        Ok(StoreOutcome::New) => ok.push(msg.hash),
                        Err(err) if err.is_full() => full.push(msg.hash),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                (t, ok, full)
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert!(results.iter().any(|(_, _, full)| !full.is_empty()));
    drop(store);
    let store = open_with(dir.path(), small_config());
    for (t, ok, full) in results {
        let present: HashSet<_> = hashes(&store, &account(0x05, t), 0).into_iter().collect();
        let want: HashSet<_> = ok.into_iter().collect();
        assert_eq!(present, want, "thread {t}");
        assert!(full.iter().all(|h| !present.contains(h)));
    }
}

#[test]
fn refuses_newer_schemas_and_foreign_databases() {
    let dir = TempDir::new().expect("tempdir");
    drop(open(&dir));
    let path = dir.path().join("storage.db");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute("UPDATE schema_version SET version = 99", []))
        .expect("bump version");
    let err = Store::open(&path, StoreConfig::default()).expect_err("newer schema");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );

    let foreign = dir.path().join("reference.db");
    rusqlite::Connection::open(&foreign)
        .and_then(|c| c.execute_batch("CREATE TABLE owners (id INTEGER PRIMARY KEY)"))
        .expect("foreign db");
    let err = Store::open(&foreign, StoreConfig::default()).expect_err("foreign");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
}

#[test]
fn checkpoint_truncates_the_wal() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let alice = account(0x05, 1);
    for i in 0..20u8 {
        store
            .store(&message(alice, 0, &[i; 1000], NOW, NOW + DAY))
            .expect("store");
    }
    let wal = dir.path().join("storage.db-wal");
    assert!(std::fs::metadata(&wal).expect("wal").len() > 0);
    // Pooled readers that have finished must not pin an old snapshot.
    assert_eq!(hashes(&store, &alice, 0).len(), 20);
    store.get_expiries(&alice, &["x"]).expect("get_expiries");
    assert!(store.checkpoint().expect("checkpoint"));
    assert_eq!(std::fs::metadata(&wal).expect("wal").len(), 0);
    assert_eq!(hashes(&store, &alice, 0).len(), 20);
    let stats = store.stats().expect("stats");
    assert!(stats.db_bytes > 20_000);
    assert_eq!(stats.max_db_bytes, shallot_store::DEFAULT_MAX_DB_BYTES);
}

const CHILD_ENV: &str = "SHALLOT_STORE_KILL_TEST_DB";

/// Runs in a child process: stores until killed, printing each acknowledged index.
fn kill_child(db: &str) {
    let store = Store::open(db, StoreConfig::default()).expect("open store");
    let alice = account(0x05, 1);
    for i in 0u32.. {
        let msg = message(alice, 0, &i.to_be_bytes(), NOW, NOW + DAY);
        store.store(&msg).expect("store");
        println!("acked {i}");
    }
}

/// An acknowledged store survives `kill -9` of the process right after the acknowledgement.
#[test]
fn acknowledged_stores_survive_kill_9() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        kill_child(&db);
        return;
    }
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("storage.db");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "acknowledged_stores_survive_kill_9",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: Option<u32> = None;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("acked ") {
            let n: u32 = n.parse().expect("index");
            acked = Some(n);
            if n >= 300 {
                break;
            }
        }
    }
    child.kill().expect("kill -9");
    // Acknowledgements already printed before the kill count too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("acked ") {
            if let Ok(n) = n.parse::<u32>() {
                acked = Some(n);
            }
        }
    }
    let _ = child.wait();
    let acked = acked.expect("child acknowledged stores");
    assert!(acked >= 300);

    let store = Store::open(&db, StoreConfig::default()).expect("reopen");
    let present: BTreeSet<MessageHash> = hashes(&store, &account(0x05, 1), 0).into_iter().collect();
    for i in 0..=acked {
        let msg = message(account(0x05, 1), 0, &i.to_be_bytes(), NOW, NOW + DAY);
        assert!(present.contains(&msg.hash), "acknowledged store {i} lost");
    }
}

/// The async store path commits exactly like the blocking one, from many tasks at once.
#[test]
fn async_stores_are_acknowledged_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("s.db"), StoreConfig::default()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let account: AccountId = format!("05{}", "77".repeat(32)).parse().unwrap();
    let outcomes = runtime.block_on(async {
        let tasks: Vec<_> = (0..64u32)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let data = i.to_le_bytes().to_vec();
                    let message = StoredMessage {
                        account,
                        namespace: Namespace(0),
                        hash: MessageHash::compute(&account, Namespace(0), &data),
                        timestamp: 1_700_000_000_000,
                        expiry: 1_700_000_100_000,
                        data: data.into(),
                    };
                    store.store_async(message).await.unwrap()
                })
            })
            .collect();
        futures_util::future::join_all(tasks).await
    });
    assert!(outcomes
        .into_iter()
        .all(|o| o.unwrap() == StoreOutcome::New));
    let page = store
        .retrieve(&account, Namespace(0), None, None, 7_800_000)
        .unwrap();
    assert_eq!(page.messages.len(), 64);
}
