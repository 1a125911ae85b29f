//! The per-account quota on public-inbox (unsigned) stores, and revocations handed to a peer.

use shallot_proto::message_hash::MessageHash;
use shallot_proto::namespace::{Namespace, NamespaceSelector};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, AccountKind, Ed25519Pub};
use shallot_store::{InboxQuota, Revocation, Store, StoreConfig, StoreOutcome, StoredMessage};
use tempfile::TempDir;

const NOW: u64 = 1_700_000_000_000;

fn account(n: u8) -> AccountId {
    AccountId::new(AccountKind::from_prefix(0x05), [n; 32])
}

fn message(account: AccountId, ns: i16, data: &[u8]) -> StoredMessage {
    StoredMessage {
        account,
        namespace: Namespace(ns),
        hash: MessageHash::compute(&account, Namespace(ns), data),
        timestamp: NOW,
        expiry: NOW + 60_000,
        data: bytes::Bytes::copy_from_slice(data),
    }
}

fn open(dir: &TempDir, quota: InboxQuota) -> Store {
    Store::open(
        dir.path().join("storage.db"),
        StoreConfig {
            inbox_quota: quota,
            ..StoreConfig::default()
        },
    )
    .expect("open store")
}

#[test]
fn inbox_quota_refuses_new_messages_only() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(
        &dir,
        InboxQuota {
            max_messages: 3,
            max_bytes: 1_000,
        },
    );
    let alice = account(1);
    for i in 0..3u8 {
        assert_eq!(
            store.store(&message(alice, 0, &[i; 10])).expect("store"),
            StoreOutcome::New
        );
    }
    let refused = store.store(&message(alice, 0, b"fourth")).unwrap_err();
    assert!(refused.is_quota(), "{refused}");
    assert_eq!(store.inbox_usage(&alice).expect("usage"), (3, 30));
    // A duplicate is still answered; signed namespaces and other accounts are not limited.
    assert!(store
        .store(&message(alice, 0, &[0; 10]))
        .expect("dup")
        .already());
    assert_eq!(
        store.store(&message(alice, 1, b"signed")).expect("ns 1"),
        StoreOutcome::New
    );
    assert_eq!(
        store.store(&message(account(2), 0, b"bob")).expect("bob"),
        StoreOutcome::New
    );
    // Deleting frees room; other inbox namespaces (-10, 10) count too.
    store
        .delete_all(&alice, NamespaceSelector::One(Namespace(0)))
        .expect("delete");
    assert_eq!(store.inbox_usage(&alice).expect("usage"), (0, 0));
    store.store(&message(alice, -10, &[7; 500])).expect("-10");
    let refused = store.store(&message(alice, 10, &[8; 501])).unwrap_err();
    assert!(refused.is_quota(), "bytes count: {refused}");
    // Expiry sweeps release usage as well.
    store.sweep_expired(NOW + 120_000).expect("sweep");
    assert_eq!(store.inbox_usage(&alice).expect("usage"), (0, 0));
}

#[test]
fn import_applies_the_quota_and_keeps_revocation_times() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(
        &dir,
        InboxQuota {
            max_messages: 2,
            max_bytes: 0,
        },
    );
    let alice = account(1);
    let batch: Vec<StoredMessage> = (0..4u8).map(|i| message(alice, 0, &[i; 4])).collect();
    let token = SubaccountToken::new(
        0x05,
        SubaccountFlags::READ,
        &Ed25519Pub::from_bytes([9; 32]),
    );
    let revocation = Revocation {
        account: alice,
        token,
        timestamp: NOW - 5,
    };
    let outcome = store.import(&batch, &[revocation]).expect("import");
    assert_eq!(
        (outcome.inserted, outcome.over_quota, outcome.revocations),
        (2, 2, 1)
    );
    // Duplicates of stored messages are not "over quota".
    let again = store.import(&batch[..2], &[]).expect("import");
    assert_eq!((again.inserted, again.over_quota), (0, 0));
    assert!(store.is_revoked(&alice, &token).expect("revoked"));
    let (exported, cursor) = store.export_revocations(None, 10).expect("export");
    assert_eq!(exported, vec![revocation]);
    let (rest, _) = store.export_revocations(cursor, 10).expect("export");
    assert!(rest.is_empty());
}
