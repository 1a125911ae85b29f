//! The group key list as admins and members see it: rekey and confirm, members finding their
//! key among junk, supplements giving history, concurrent rekeys, expiry by swarm time, and
//! forged or malformed key messages changing nothing. Plus round trips of every key message
//! and group message for random inputs.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use proptest::prelude::*;
use shallot_proto::group::keys::{KeyMessage, MESSAGE_KEY_MULTIPLE};
use shallot_proto::group::{
    decrypt_group_message, encrypt_for_group, rekey, GroupAdmin, GroupKeys, KeyHolder, KeysError,
    SignedError, KEY_EXPIRY_MS,
};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{AccountId, Identity, Namespace, SessionId};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn hash_of(group: &GroupAdmin, data: &[u8]) -> MessageHash {
    let account: AccountId = group.id().account();
    MessageHash::compute(&account, Namespace::GROUP_KEYS, data)
}

fn people(n: u8) -> Vec<Identity> {
    (1..=n).map(|i| Identity::from_seed([i; 32])).collect()
}

fn ids(people: &[Identity]) -> Vec<SessionId> {
    people.iter().map(Identity::session_id).collect()
}

#[test]
fn rekey_confirm_and_member_receipt() {
    let admin = GroupAdmin::from_seed([0xaa; 32]);
    let members = people(4);
    let mut admin_keys = GroupKeys::new(admin.id());
    let message = admin_keys.rekey(&admin, &ids(&members)).to_vec();
    assert_eq!(admin_keys.current_generation(), Some(0));
    assert!(
        admin_keys.keys().is_empty(),
        "pending until seen on the swarm"
    );
    let pending = admin_keys.encryption_key().unwrap().clone();

    let h = hash_of(&admin, &message);
    assert!(admin_keys
        .load(KeyHolder::Admin(&admin), &message, h, 1_000)
        .unwrap());
    assert!(admin_keys.pending_message().is_none());
    assert_eq!(admin_keys.encryption_key(), Some(&pending));
    assert_eq!(
        admin_keys.active_hashes().into_iter().collect::<Vec<_>>(),
        vec![h]
    );

    for member in &members {
        let mut keys = GroupKeys::new(admin.id());
        assert!(keys
            .load(KeyHolder::Member(member), &message, h, 1_000)
            .unwrap());
        assert_eq!(keys.encryption_key(), Some(&pending));
    }
    let outsider = Identity::from_seed([0x77; 32]);
    let mut keys = GroupKeys::new(admin.id());
    assert!(!keys
        .load(KeyHolder::Member(&outsider), &message, h, 1_000)
        .unwrap());
    assert!(keys.encryption_key().is_none());
    assert_eq!(
        keys.active_hashes().len(),
        1,
        "the hash is kept even without a key"
    );
}

#[test]
fn removal_rekey_excludes_the_removed_member() {
    let admin = GroupAdmin::from_seed([0xab; 32]);
    let members = people(3);
    let first = rekey(&admin, &ids(&members), 0);
    let second = rekey(&admin, &ids(&members[..2]), 1);
    let removed = &members[2];
    let mut keys = GroupKeys::new(admin.id());
    keys.load(
        KeyHolder::Member(removed),
        &first.message,
        hash_of(&admin, &first.message),
        1,
    )
    .unwrap();
    assert!(!keys
        .load(
            KeyHolder::Member(removed),
            &second.message,
            hash_of(&admin, &second.message),
            2
        )
        .unwrap());
    let mut rng = rand::thread_rng();
    let sent = encrypt_for_group(
        &members[0],
        &admin.id(),
        &second.key,
        b"after",
        true,
        256,
        &mut rng,
    )
    .unwrap();
    assert!(decrypt_group_message(keys.decryption_keys(), &admin.id(), &sent).is_err());
    // An empty message could never be read, so it is refused up front (found by fuzzing).
    assert_eq!(
        encrypt_for_group(
            &members[0],
            &admin.id(),
            &second.key,
            b"",
            true,
            256,
            &mut rng
        ),
        Err(shallot_proto::group::GroupMessageError::Empty)
    );
}

#[test]
fn supplement_gives_history_to_a_new_member() {
    let admin = GroupAdmin::from_seed([0xac; 32]);
    let members = people(2);
    let newcomer = Identity::from_seed([0x55; 32]);
    let mut admin_keys = GroupKeys::new(admin.id());
    for (generation, at) in [(0_i64, 1_000), (1, 2_000)] {
        let message = admin_keys.rekey(&admin, &ids(&members)).to_vec();
        admin_keys
            .load(
                KeyHolder::Admin(&admin),
                &message,
                hash_of(&admin, &message),
                at,
            )
            .unwrap();
        assert_eq!(
            admin_keys.current_generation(),
            u64::try_from(generation).ok()
        );
    }
    let supplement = admin_keys
        .key_supplement(&admin, &[newcomer.session_id()])
        .unwrap();
    let mut keys = GroupKeys::new(admin.id());
    assert!(keys
        .load(
            KeyHolder::Member(&newcomer),
            &supplement,
            hash_of(&admin, &supplement),
            3_000
        )
        .unwrap());
    assert_eq!(keys.keys(), admin_keys.keys());
    // A supplement needs a recipient.
    assert_eq!(
        admin_keys.key_supplement(&admin, &[]),
        Err(KeysError::NoRecipients)
    );
}

#[test]
fn concurrent_rekeys_need_a_rekey() {
    let admin = GroupAdmin::from_seed([0xad; 32]);
    let members = people(3);
    let a = rekey(&admin, &ids(&members), 0);
    let b = rekey(&admin, &ids(&members[..2]), 0);
    let mut keys = GroupKeys::new(admin.id());
    for (m, t) in [(&a.message, 1), (&b.message, 2)] {
        keys.load(KeyHolder::Admin(&admin), m, hash_of(&admin, m), t)
            .unwrap();
    }
    assert!(keys.needs_rekey());
    let next = keys.rekey(&admin, &ids(&members)).to_vec();
    assert_eq!(keys.current_generation(), Some(1));
    keys.load(KeyHolder::Admin(&admin), &next, hash_of(&admin, &next), 3)
        .unwrap();
    assert!(!keys.needs_rekey());
    // Loading the same message again changes nothing.
    let before = keys.keys().to_vec();
    keys.load(KeyHolder::Admin(&admin), &next, hash_of(&admin, &next), 3)
        .unwrap();
    assert_eq!(keys.keys(), before.as_slice());
}

#[test]
fn old_generations_expire_by_swarm_time() {
    let admin = GroupAdmin::from_seed([0xae; 32]);
    let members = people(1);
    let mut keys = GroupKeys::new(admin.id());
    let mut hashes = Vec::new();
    for (generation, at) in [(0, 0), (1, 10 * DAY_MS), (2, 71 * DAY_MS + 1)] {
        let made = rekey(&admin, &ids(&members), generation);
        let h = hash_of(&admin, &made.message);
        hashes.push(h);
        keys.load(KeyHolder::Member(&members[0]), &made.message, h, at)
            .unwrap();
    }
    // Generation 1 was stored more than 60 days before the newest key: generation 0 goes.
    let generations: Vec<u64> = keys.keys().iter().map(|k| k.generation).collect();
    assert_eq!(generations, vec![1, 2]);
    assert!(!keys.active_hashes().contains(&hashes[0]));
    assert_eq!(KEY_EXPIRY_MS, 60 * DAY_MS);
}

#[test]
fn forged_and_malformed_key_messages_change_nothing() {
    let admin = GroupAdmin::from_seed([0xaf; 32]);
    let impostor = GroupAdmin::from_seed([0xb0; 32]);
    let members = people(2);
    let real = rekey(&admin, &ids(&members), 0);
    let forged = rekey(&impostor, &ids(&members), 0);
    let mut keys = GroupKeys::new(admin.id());
    let h = hash_of(&admin, &forged.message);
    assert_eq!(
        keys.load(KeyHolder::Member(&members[0]), &forged.message, h, 1),
        Err(KeysError::Signed(SignedError::BadSignature))
    );
    // Every truncation and every single-byte change of a real message is refused.
    for cut in 0..real.message.len() {
        assert!(KeyMessage::parse(&real.message[..cut], &admin.id()).is_err());
    }
    for i in (0..real.message.len()).step_by(7) {
        let mut bad = real.message.clone();
        bad[i] ^= 0x01;
        assert!(KeyMessage::parse(&bad, &admin.id()).is_err(), "byte {i}");
    }
    // Unsigned.
    assert_eq!(
        KeyMessage::parse(b"d1:#24:0123456789012345678901231:Gi0ee", &admin.id()),
        Err(KeysError::Signed(SignedError::Unsigned))
    );
    assert!(keys.keys().is_empty() && keys.active_hashes().is_empty());
    assert_eq!(MESSAGE_KEY_MULTIPLE, 75);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn key_messages_round_trip(seed in any::<[u8; 32]>(), n in 0_u8..8, generation in 0_u64..1000) {
        let admin = GroupAdmin::from_seed(seed);
        let members = people(n);
        let made = rekey(&admin, &ids(&members), generation);
        let parsed = KeyMessage::parse(&made.message, &admin.id()).unwrap();
        prop_assert_eq!(parsed.generation(), generation);
        prop_assert_eq!(parsed.encode(&admin), made.message);
        if let KeyMessage::Full(full) = parsed {
            prop_assert_eq!(full.open_admin(&admin).unwrap(), made.key.clone());
            for m in &members {
                prop_assert_eq!(full.open_member(m, &admin.id()), Some(made.key.clone()));
            }
        }
    }

    #[test]
    fn group_messages_round_trip(
        plaintext in proptest::collection::vec(any::<u8>(), 1..2000),
        compress in any::<bool>(),
        padding in 0_usize..600,
        key in any::<[u8; 32]>(),
    ) {
        let admin = GroupAdmin::from_seed([1; 32]);
        let sender = Identity::from_seed([2; 32]);
        let key = shallot_proto::group::GroupKey::from_bytes(key);
        let mut rng = rand::thread_rng();
        let made = encrypt_for_group(&sender, &admin.id(), &key, &plaintext, compress, padding, &mut rng).unwrap();
        if padding > 1 {
            prop_assert_eq!(made.len() % padding, 0);
        }
        let opened = decrypt_group_message([&key], &admin.id(), &made).unwrap();
        prop_assert_eq!(opened.plaintext, plaintext);
        prop_assert_eq!(opened.sender, sender.session_id());
    }
}
