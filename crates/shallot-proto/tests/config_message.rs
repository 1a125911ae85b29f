//! User config messages (namespaces 2 and 3): exact bencoding, typed views, seal/open round
//! trips, key and domain separation, preservation of unknown fields, and no panics on hostile
//! input.

use proptest::prelude::*;
use shallot_proto::session::{
    config_hash, config_padded_size, encrypt_config, open_config, open_config_full, pad_config,
    seal_config, BencodeError, ConfigCryptoError, ConfigDomain, ConfigError, ConfigKind,
    ConfigMessage, ContactEntry, Contacts, Dict, ExpiryMode, UserProfile, Value,
    CONFIG_ENCRYPTION_OVERHEAD, MAX_DECOMPRESSED_CONFIG,
};
use shallot_proto::{Identity, Namespace, SessionId, X25519Pub};

const SEED: [u8; 32] = [0x42; 32];

fn key(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn dict<const N: usize>(entries: [(&str, Value); N]) -> Dict {
    entries.into_iter().map(|(k, v)| (key(k), v)).collect()
}

fn sid(byte: u8) -> SessionId {
    SessionId::from_x25519(X25519Pub::from_bytes([byte; 32]))
}

fn sid_key(id: &SessionId) -> Vec<u8> {
    id.account().to_bytes().to_vec()
}

fn sample_profile() -> UserProfile {
    UserProfile {
        name: Some("Alice".to_owned()),
        picture_url: Some("http://filev2.getsession.org/file/1234".to_owned()),
        picture_key: Some(vec![0xAB; 32]),
        note_to_self_priority: 3,
    }
}

fn sample_contacts() -> Contacts {
    let mut contacts = Contacts::default();
    contacts.contacts.insert(
        sid(1),
        ContactEntry {
            name: Some("Bob".to_owned()),
            nickname: Some("Bobby".to_owned()),
            approved: true,
            approved_me: true,
            priority: 1,
            expiry_mode: ExpiryMode::AfterSend,
            expiry_timer_secs: 3600,
            created: 1_700_000_000,
            ..ContactEntry::default()
        },
    );
    contacts.contacts.insert(
        sid(2),
        ContactEntry {
            blocked: true,
            expiry_mode: ExpiryMode::AfterRead,
            expiry_timer_secs: 60,
            picture_url: Some("http://example.invalid/p".to_owned()),
            picture_key: Some(vec![1; 32]),
            ..ContactEntry::default()
        },
    );
    contacts.contacts.insert(sid(3), ContactEntry::default());
    contacts
}

#[test]
fn known_bencoding_by_hand() {
    let message = ConfigMessage::new(5, dict([("n", "Alice".into())]));
    assert_eq!(
        message.serialize(None),
        b"d1:#i5e1:&d1:n5:Alicee1:<le1:=d1:n0:ee"
    );
    // The next version changes the name and adds a priority: only those keys are in the diff.
    let next = ConfigMessage::new(6, dict([("+", 1.into()), ("n", "Alicia".into())]));
    assert_eq!(
        next.serialize(Some(&message.data)),
        b"d1:#i6e1:&d1:+i1e1:n6:Aliciae1:<le1:=d1:+0:1:n0:ee"
    );
    // Removing the name.
    let last = ConfigMessage::new(7, dict([("+", 1.into())]));
    assert_eq!(
        last.serialize(Some(&next.data)),
        b"d1:#i7e1:&d1:+i1ee1:<le1:=d1:n1:-ee"
    );
}

/// libsession-util's user-profile test (`tests/test_config_userprofile.cpp`, "user profile C
/// API"): the hash of the empty seqno-0 message and the seqno-1 push for seed
/// `0123456789abcdef0123456789abcdef` + 16 zero bytes.
#[test]
fn libsession_user_profile_vector() {
    let seed: [u8; 32] =
        hex::decode("0123456789abcdef0123456789abcdef00000000000000000000000000000000")
            .unwrap()
            .try_into()
            .unwrap();
    let hash0 =
        hex::decode("ea173b57beca8af18c3519a7bbf69c3e7a05d1c049fa9558341d8ebb48b0c965").unwrap();
    assert_eq!(
        config_hash(&ConfigMessage::default().serialize(None)).to_vec(),
        hash0
    );

    let data_and_diff: [&[u8]; 2] = [
        b"d1:#i1e1:&d1:+i9e1:n6:Kallie1:p34:http://example.org/omg-pic-123.bmp\
          1:q32:secret78901234567890123456789012e1:<",
        b"1:=d1:+0:1:n0:1:p0:1:q0:ee",
    ];
    // libsession keeps the previous version's (empty) diff as a lagged diff; we write none.
    let lagged = [b"lli0e32:".as_slice(), &hash0, b"deee"].concat();
    let theirs = [data_and_diff[0], &lagged, data_and_diff[1]].concat();
    let ours = [data_and_diff[0], b"le", data_and_diff[1]].concat();
    let encrypted = hex::decode(
        "9693a69686da3055f1ecdfb239c3bf8e746951a36d888c2fb7c02e856a5c2091b24e39a7e1af828f\
         1fa09fe8bf7d274afde0a0847ba143c43ffb8722301b5ae32e2f078b9a5e19097403336e50b18c84\
         aade446cd2823b011f97d6ad2116a53feb814efecc086bc172d31f4214b4d7c630b63bbe575b0868\
         2d146da44915063a07a78556ab5eff4f67f6aa26211e8d330b53d28567a931028c393709a325425d\
         e7486ccde24416a7fd4a8ba5fa73899c65f4276dfaddd5b2100adcf0f793104fb235b31ce32ec656\
         056009a9ebf58d45d7d696b74e0c7ff0499c4d23204976f19561dc0dba6dc53a2497d28ce03498ea\
         49bf122762d7bc1d6d9c02f6d54f8384",
    )
    .unwrap();

    // Opening their push gives their exact plaintext and the profile they set.
    let opened = open_config_full(&encrypted, &seed, ConfigKind::UserProfile).unwrap();
    assert_eq!(opened.plaintext, theirs);
    assert_eq!(
        UserProfile::from_data(&opened.parsed.message.data),
        UserProfile {
            name: Some("Kallie".to_owned()),
            picture_url: Some("http://example.org/omg-pic-123.bmp".to_owned()),
            picture_key: Some(b"secret78901234567890123456789012".to_vec()),
            note_to_self_priority: 9,
        }
    );
    // Padding and encryption reproduce their ciphertext byte for byte.
    assert_eq!(
        encrypt_config(&pad_config(&theirs), &seed, ConfigDomain::USER_PROFILE).unwrap(),
        encrypted
    );
    // Our serialization of the same change differs only in the lagged-diff list.
    let profile = UserProfile::from_data(&opened.parsed.message.data);
    let message = ConfigMessage::new(1, profile.to_data());
    assert_eq!(message.serialize(Some(&Dict::new())), ours);
    assert_eq!(message.serialize(None), ours);
}

#[test]
fn typed_views_use_libsession_keys() {
    let profile = UserProfile {
        name: Some("Alice".to_owned()),
        note_to_self_priority: 1,
        ..UserProfile::default()
    };
    assert_eq!(
        Value::Dict(profile.to_data()).encode(),
        b"d1:+i1e1:n5:Alicee"
    );
    assert_eq!(
        Value::Dict(UserProfile::default().to_data()).encode(),
        b"de"
    );

    let mut contacts = Contacts::default();
    contacts.contacts.insert(
        sid(9),
        ContactEntry {
            name: Some("Bob".to_owned()),
            approved: true,
            expiry_mode: ExpiryMode::AfterSend,
            expiry_timer_secs: 3600,
            created: 1_700_000_000,
            ..ContactEntry::default()
        },
    );
    contacts.contacts.insert(sid(8), ContactEntry::default());
    let mut expected = b"d1:cd33:\x05".to_vec();
    expected.extend_from_slice(&[8; 32]);
    expected.extend_from_slice(b"d1:n0:e33:\x05");
    expected.extend_from_slice(&[9; 32]);
    expected.extend_from_slice(b"d1:Ei3600e1:ai1e1:ei1e1:ji1700000000e1:n3:Bobeee");
    assert_eq!(Value::Dict(contacts.to_data()).encode(), expected);
}

#[test]
fn user_profile_round_trip() {
    let profile = sample_profile();
    let message = ConfigMessage::new(1, profile.to_data());
    let sealed = seal_config(&message, None, &SEED, ConfigKind::UserProfile);
    let opened = open_config(&sealed, &SEED, ConfigKind::UserProfile).unwrap();
    assert_eq!(opened, message);
    assert_eq!(UserProfile::from_data(&opened.data), profile);
}

#[test]
fn contacts_round_trip() {
    let contacts = sample_contacts();
    let message = ConfigMessage::new(12, contacts.to_data());
    let sealed = seal_config(&message, None, &SEED, ConfigKind::Contacts);
    let opened = open_config_full(&sealed, &SEED, ConfigKind::Contacts).unwrap();
    assert_eq!(opened.parsed.message, message);
    assert_eq!(Contacts::from_data(&opened.parsed.message.data), contacts);
    assert_eq!(opened.plaintext, message.serialize(None));
    assert_eq!(opened.parsed.hash, config_hash(&opened.plaintext));
    assert_eq!(opened.parsed.seqno_hash(), (12, opened.parsed.hash));
    assert_eq!(opened.parsed.signature, None);
}

#[test]
fn sealing_is_deterministic_and_padded() {
    let message = ConfigMessage::new(1, sample_profile().to_data());
    let a = seal_config(&message, None, &SEED, ConfigKind::UserProfile);
    let b = seal_config(&message, None, &SEED, ConfigKind::UserProfile);
    assert_eq!(a, b);
    let plain_len = message.serialize(None).len();
    assert_eq!(
        a.len(),
        config_padded_size(plain_len, CONFIG_ENCRYPTION_OVERHEAD) + CONFIG_ENCRYPTION_OVERHEAD
    );
    assert_eq!(a.len() % 256, 0);
    // A big contact list moves to the 1024-byte granularity.
    let mut big = Contacts::default();
    for i in 0..60u8 {
        big.contacts.insert(
            sid(i),
            ContactEntry {
                name: Some(format!("contact number {i}")),
                ..ContactEntry::default()
            },
        );
    }
    let sealed = seal_config(
        &ConfigMessage::new(1, big.to_data()),
        None,
        &SEED,
        ConfigKind::Contacts,
    );
    assert!(sealed.len() > 5120);
    assert_eq!(sealed.len() % 1024, 0);
}

#[test]
fn wrong_key_or_domain_fails_to_decrypt() {
    let message = ConfigMessage::new(1, sample_profile().to_data());
    let sealed = seal_config(&message, None, &SEED, ConfigKind::UserProfile);
    let decryption = Err(ConfigError::Decrypt(ConfigCryptoError::Decryption));
    assert_eq!(
        open_config(&sealed, &[0x43; 32], ConfigKind::UserProfile),
        decryption
    );
    assert_eq!(
        open_config(&sealed, &SEED, ConfigKind::Contacts),
        decryption
    );
    let mut flipped = sealed.clone();
    flipped[10] ^= 1;
    assert_eq!(
        open_config(&flipped, &SEED, ConfigKind::UserProfile),
        decryption
    );
    assert_eq!(
        open_config(&sealed[..39], &SEED, ConfigKind::UserProfile),
        Err(ConfigError::Decrypt(ConfigCryptoError::TooShort {
            len: 39
        }))
    );
}

#[test]
fn leading_zeros_are_stripped_whatever_their_number() {
    let plain = ConfigMessage::new(4, dict([("n", "x".into())])).serialize(None);
    for zeros in [0, 1, 7, 300] {
        let mut padded = vec![0u8; zeros];
        padded.extend_from_slice(&plain);
        let sealed = encrypt_config(&padded, &SEED, ConfigDomain::USER_PROFILE).unwrap();
        let opened = open_config_full(&sealed, &SEED, ConfigKind::UserProfile).unwrap();
        assert_eq!(opened.plaintext, plain);
        assert_eq!(opened.parsed.message.seqno, 4);
    }
    let cases: [(&[u8], ConfigError); 3] = [
        (&[0; 100], ConfigError::Empty),
        (b"", ConfigError::Empty),
        (b"\0m(part)", ConfigError::Multipart),
    ];
    let sealed = encrypt_config(b"\0\0z(not zstd)", &SEED, ConfigDomain::USER_PROFILE).unwrap();
    assert!(matches!(
        open_config(&sealed, &SEED, ConfigKind::UserProfile),
        Err(ConfigError::Decompress(_))
    ));
    for (plain, error) in cases {
        let sealed = encrypt_config(plain, &SEED, ConfigDomain::USER_PROFILE).unwrap();
        assert_eq!(
            open_config(&sealed, &SEED, ConfigKind::UserProfile),
            Err(error)
        );
    }
}

#[test]
fn profile_apply_keeps_unknown_fields() {
    // As another client might have written it: timestamps, a reupload picture, a Pro dict.
    let old = dict([
        ("+", 2.into()),
        ("M", 1.into()),
        ("P", "http://reupload".into()),
        ("n", "Old name".into()),
        ("s", Value::Dict(dict([("r", "rotating".into())]))),
        ("t", 1_700_000_000.into()),
    ]);
    let previous = ConfigMessage::new(9, old.clone());
    let sealed = seal_config(&previous, None, &SEED, ConfigKind::UserProfile);
    let opened = open_config(&sealed, &SEED, ConfigKind::UserProfile).unwrap();

    let mut profile = UserProfile::from_data(&opened.data);
    assert_eq!(profile.name.as_deref(), Some("Old name"));
    assert_eq!(profile.note_to_self_priority, 2);
    profile.name = Some("New name".to_owned());
    let mut data = opened.data.clone();
    profile.apply_to(&mut data);

    let next = ConfigMessage::new(10, data);
    let bytes = next.serialize(Some(&opened.data));
    let parsed = ConfigMessage::parse_full(&bytes).unwrap();
    let mut expected = old;
    expected.insert(key("n"), "New name".into());
    assert_eq!(parsed.message.data, expected);
    assert_eq!(parsed.diff, dict([("n", "".into())]));

    // Applying an unchanged view changes nothing.
    let mut same = parsed.message.data.clone();
    UserProfile::from_data(&same).apply_to(&mut same);
    assert_eq!(same, parsed.message.data);
}

#[test]
fn contacts_apply_keeps_unknown_fields_and_removes_dropped_contacts() {
    let mut bob = dict([
        ("!", 1_800_000_000.into()),
        ("@", 2.into()),
        ("a", 1.into()),
        ("n", "Bob".into()),
    ]);
    let carol = dict([("n", "Carol".into()), ("b", 1.into())]);
    let group_key = {
        let mut k = vec![0x03];
        k.extend_from_slice(&[7; 32]);
        k
    };
    let old = dict([
        (
            "c",
            Value::Dict(
                [
                    (sid_key(&sid(1)), Value::Dict(bob.clone())),
                    (sid_key(&sid(2)), Value::Dict(carol)),
                    (group_key.clone(), Value::Dict(dict([("n", "?".into())]))),
                    (vec![0x05; 10], "short".into()),
                ]
                .into_iter()
                .collect(),
            ),
        ),
        ("z", "future".into()),
    ]);

    let mut contacts = Contacts::from_data(&old);
    assert_eq!(
        contacts.contacts.keys().copied().collect::<Vec<_>>(),
        [sid(1), sid(2)]
    );
    assert!(contacts.contacts[&sid(2)].blocked);
    contacts.contacts.remove(&sid(2));
    let entry = contacts.contacts.get_mut(&sid(1)).unwrap();
    entry.nickname = Some("B".to_owned());
    entry.approved = false;

    let mut data = old.clone();
    contacts.apply_to(&mut data);
    let message = ConfigMessage::new(3, data);
    let sealed = seal_config(&message, Some(&old), &SEED, ConfigKind::Contacts);
    let opened = open_config_full(&sealed, &SEED, ConfigKind::Contacts).unwrap();

    bob.remove(b"a".as_slice());
    bob.insert(key("N"), "B".into());
    let all = opened.parsed.message.data[b"c".as_slice()]
        .as_dict()
        .unwrap()
        .clone();
    assert_eq!(all[&sid_key(&sid(1))], Value::Dict(bob));
    assert!(!all.contains_key(&sid_key(&sid(2))));
    assert!(all.contains_key(&group_key));
    assert!(all.contains_key(&vec![0x05; 10]));
    assert_eq!(opened.parsed.message.data[b"z".as_slice()], "future".into());

    // The diff: Bob's changed fields, Carol's removed fields.
    let expected_diff = dict([(
        "c",
        Value::Dict(
            [
                (
                    sid_key(&sid(1)),
                    Value::Dict(dict([("N", "".into()), ("a", "-".into())])),
                ),
                (
                    sid_key(&sid(2)),
                    Value::Dict(dict([("b", "-".into()), ("n", "-".into())])),
                ),
            ]
            .into_iter()
            .collect(),
        ),
    )]);
    assert_eq!(opened.parsed.diff, expected_diff);

    // Removing every contact drops the "c" dict only if nothing else is in it.
    let mut emptied = opened.parsed.message.data.clone();
    Contacts::default().apply_to(&mut emptied);
    assert_eq!(emptied[b"c".as_slice()].as_dict().unwrap().len(), 2);
    let mut only_contacts = Contacts::default().to_data();
    sample_contacts().apply_to(&mut only_contacts);
    Contacts::default().apply_to(&mut only_contacts);
    assert!(only_contacts.is_empty());
}

#[test]
fn contact_fields_read_like_libsession() {
    let entry = ContactEntry::from_dict(&dict([
        ("e", 1.into()),
        ("E", 0.into()),
        ("a", 5.into()),
        ("j", 1_700_000_000_123.into()),
        ("p", "http://x".into()),
        ("q", "too short".into()),
    ]));
    assert_eq!(entry.expiry_mode, ExpiryMode::Off);
    assert_eq!(entry.expiry_timer_secs, 0);
    assert!(entry.approved);
    assert_eq!(entry.created, 1_700_000_000);
    assert_eq!((entry.picture_url, entry.picture_key), (None, None));
    let unknown_mode = ContactEntry::from_dict(&dict([("e", 9.into()), ("E", 30.into())]));
    assert_eq!(unknown_mode.expiry_mode, ExpiryMode::Off);
}

#[test]
fn kinds_map_to_namespaces_and_domains() {
    assert_eq!(ConfigKind::UserProfile.namespace(), Namespace(2));
    assert_eq!(ConfigKind::Contacts.namespace(), Namespace(3));
    assert_eq!(ConfigKind::ConvoInfoVolatile.namespace(), Namespace(4));
    assert_eq!(ConfigKind::UserGroups.namespace(), Namespace(5));
    assert_eq!(ConfigKind::UserProfile.domain().as_str(), "UserProfile");
    assert_eq!(ConfigKind::Contacts.domain().as_str(), "Contacts");
    for kind in ConfigKind::ALL {
        assert_eq!(ConfigKind::from_namespace(kind.namespace()), Some(kind));
    }
    assert_eq!(ConfigKind::from_namespace(Namespace(0)), None);
}

#[test]
fn seed_of_a_real_identity_works_as_key_base() {
    let identity = Identity::from_seed([5; 32]);
    let message = ConfigMessage::new(1, sample_profile().to_data());
    let sealed = seal_config(&message, None, identity.seed(), ConfigKind::UserProfile);
    assert_eq!(
        open_config(&sealed, identity.seed(), ConfigKind::UserProfile),
        Ok(message)
    );
}

#[test]
fn truncations_of_a_valid_message_are_errors() {
    let bytes = ConfigMessage::new(77, sample_contacts().to_data()).serialize(None);
    for len in 0..bytes.len() {
        assert!(ConfigMessage::parse(&bytes[..len]).is_err(), "{len}");
    }
    assert!(ConfigMessage::parse(&bytes).is_ok());
}

#[test]
fn deeply_nested_input_is_refused() {
    let mut bytes = b"d1:#i1e1:&d1:a".to_vec();
    bytes.extend(std::iter::repeat_n(b'l', 100_000));
    assert_eq!(
        ConfigMessage::parse(&bytes),
        Err(ConfigError::Bencode(BencodeError::TooDeep))
    );
    let nested_dicts = [b"d1:a".repeat(10_000), b"e".repeat(10_000)].concat();
    assert_eq!(Value::decode(&nested_dicts), Err(BencodeError::TooDeep));
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..4),
                inner,
                0..6
            )
            .prop_map(Value::Dict),
        ]
    })
}

fn data_dict() -> impl Strategy<Value = Dict> {
    proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..4), value(), 0..8)
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(".{0,20}")
}

fn contact_entry() -> impl Strategy<Value = ContactEntry> {
    (
        (text(), text(), any::<[bool; 3]>(), -2i64..3),
        (0i64..3, -5i64..100_000, -5i64..2_000_000_000),
    )
        .prop_map(
            |((name, nickname, flags, priority), (mode, timer, created))| {
                // Normalize to what the format can express, so equality is meaningful.
                let expiry_mode = ExpiryMode::from_code(mode).unwrap_or_default();
                let on = expiry_mode != ExpiryMode::Off && timer > 0;
                ContactEntry {
                    name: name.filter(|n| !n.is_empty()),
                    nickname: nickname.filter(|n| !n.is_empty()),
                    picture_url: None,
                    picture_key: None,
                    approved: flags[0],
                    approved_me: flags[1],
                    blocked: flags[2],
                    priority,
                    expiry_mode: if on { expiry_mode } else { ExpiryMode::Off },
                    expiry_timer_secs: if on { timer } else { 0 },
                    created: created.max(0),
                }
            },
        )
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(value) = Value::decode(&bytes) {
            prop_assert_eq!(value.encode(), bytes.clone());
        }
        if let Ok(parsed) = ConfigMessage::parse_full(&bytes) {
            prop_assert_eq!(parsed.hash, config_hash(&bytes));
        }
        let _ = open_config(&bytes, &SEED, ConfigKind::Contacts);
    }

    #[test]
    fn mutated_messages_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = ConfigMessage::new(3, sample_contacts().to_data()).serialize(None);
        for (at, mask) in flips {
            let at = at % bytes.len();
            bytes[at] ^= mask;
        }
        if let Ok(message) = ConfigMessage::parse(&bytes) {
            // Whatever parsed is valid data and re-serializes to a parseable message.
            let again = ConfigMessage::parse(&message.serialize(None)).unwrap();
            prop_assert_eq!(again, message);
        }
    }

    #[test]
    fn values_round_trip(value in value()) {
        let bytes = value.encode();
        prop_assert_eq!(Value::decode(&bytes), Ok(value));
    }

    #[test]
    fn messages_round_trip_with_consistent_diffs(
        seqno in any::<i64>(),
        old in data_dict(),
        new in data_dict(),
    ) {
        let message = ConfigMessage::new(seqno, new);
        let bytes = message.serialize(Some(&old));
        let parsed = ConfigMessage::parse_full(&bytes).unwrap();
        prop_assert_eq!(parsed.message.seqno, seqno);
        // Data comes back pruned; pruning is idempotent.
        let pruned = parsed.message.data.clone();
        prop_assert_eq!(ConfigMessage::new(seqno, pruned.clone()).serialize(Some(&old)), bytes);
        // Every diff key refers to a key present in old or new data.
        for key in parsed.diff.keys() {
            prop_assert!(pruned.contains_key(key) || old.contains_key(key));
        }
        // No changes, no diff.
        let unchanged = ConfigMessage::parse_full(&message.serialize(Some(&pruned))).unwrap();
        prop_assert!(unchanged.diff.is_empty());
    }

    #[test]
    fn applying_an_unchanged_view_is_a_no_op(
        junk in data_dict(),
        entries in proptest::collection::btree_map(any::<[u8; 32]>(), data_dict(), 0..4),
        prefix in prop_oneof![Just(0x05u8), any::<u8>()],
    ) {
        let mut data = junk;
        let all: Dict = entries
            .into_iter()
            .map(|(key, entry)| ([&[prefix][..], &key].concat(), Value::Dict(entry)))
            .collect();
        data.insert(key("c"), Value::Dict(all));
        // Parsing a serialization gives valid (pruned) data, as received from the network.
        let bytes = ConfigMessage::new(1, data).serialize(None);
        let data = ConfigMessage::parse(&bytes).unwrap().data;

        let mut applied = data.clone();
        UserProfile::from_data(&data).apply_to(&mut applied);
        prop_assert_eq!(&applied, &data);
        Contacts::from_data(&data).apply_to(&mut applied);
        prop_assert_eq!(&applied, &data);
    }

    #[test]
    fn typed_views_round_trip(
        name in text(),
        picture in proptest::option::of(("[a-z:/.]{1,30}", any::<[u8; 32]>())),
        priority in any::<i64>(),
        entries in proptest::collection::btree_map(any::<[u8; 32]>(), contact_entry(), 0..6),
        junk in data_dict(),
        seqno in 1i64..1_000_000,
    ) {
        let profile = UserProfile {
            name: name.filter(|n| !n.is_empty()),
            picture_url: picture.as_ref().map(|(url, _)| url.clone()),
            picture_key: picture.as_ref().map(|(_, key)| key.to_vec()),
            note_to_self_priority: priority,
        };
        // Applied onto arbitrary existing data, the view reads back exactly.
        let mut data = junk.clone();
        profile.apply_to(&mut data);
        let message = ConfigMessage::new(seqno, data);
        let sealed = seal_config(&message, Some(&junk), &SEED, ConfigKind::UserProfile);
        let opened = open_config(&sealed, &SEED, ConfigKind::UserProfile).unwrap();
        prop_assert_eq!(UserProfile::from_data(&opened.data), profile);

        let contacts = Contacts {
            contacts: entries
                .into_iter()
                .map(|(key, entry)| (SessionId::from_x25519(X25519Pub::from_bytes(key)), entry))
                .collect(),
        };
        let mut data = junk.clone();
        contacts.apply_to(&mut data);
        let message = ConfigMessage::new(seqno, data);
        let sealed = seal_config(&message, Some(&junk), &SEED, ConfigKind::Contacts);
        let opened = open_config(&sealed, &SEED, ConfigKind::Contacts).unwrap();
        prop_assert_eq!(Contacts::from_data(&opened.data), contacts);
    }
}

#[test]
fn zstd_compressed_configs_open_as_libsession_writes_them() {
    // libsession: `z` then a zstd frame of the serialized message, then padding and encryption.
    let message = ConfigMessage::new(9, dict([("n", "Compressed Alice".repeat(40).into())]));
    let plain = message.serialize(None);
    let mut compressed = b"z".to_vec();
    compressed.extend(ruzstd::encoding::compress_to_vec(
        plain.as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    assert!(compressed.len() < plain.len());
    let sealed =
        encrypt_config(&pad_config(&compressed), &SEED, ConfigDomain::USER_PROFILE).unwrap();
    let opened = open_config_full(&sealed, &SEED, ConfigKind::UserProfile).unwrap();
    // The hash covers the decompressed message, as libsession computes it.
    assert_eq!(opened.plaintext, plain);
    assert_eq!(opened.parsed.message, message);
    assert_eq!(opened.parsed.hash, config_hash(&plain));

    // A frame that inflates past the limit is refused, not allocated.
    let huge = vec![b'd'; MAX_DECOMPRESSED_CONFIG + 10];
    let mut bomb = b"z".to_vec();
    bomb.extend(ruzstd::encoding::compress_to_vec(
        huge.as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let sealed = encrypt_config(&pad_config(&bomb), &SEED, ConfigDomain::USER_PROFILE).unwrap();
    assert!(matches!(
        open_config(&sealed, &SEED, ConfigKind::UserProfile),
        Err(ConfigError::Decompress(_))
    ));
}
