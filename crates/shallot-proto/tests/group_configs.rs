//! GroupInfo and GroupMembers configs: sealed by an admin with the current group key, opened
//! by members with any held key, refused when not signed by the group; typed views keep unknown
//! fields; the push sizes of libsession's Info test.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use proptest::prelude::*;
use shallot_proto::group::{
    open_group_config, seal_group_config, seal_signed_group_config, sign_group_config, AuthData,
    GroupAdmin, GroupConfigError, GroupConfigKind, GroupId, GroupInfo, GroupKey, GroupMember,
    GroupMembers, Removal, RemovedStatus, SendStatus, UserGroupEntry, UserGroups,
};
use shallot_proto::session::{
    encrypt_config, open_config, pad_config, seal_config, ConfigKind, ConfigMessage, Dict, Value,
};
use shallot_proto::{Identity, SessionId};

const INFO_SEED: &str = "0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210";

fn admin() -> GroupAdmin {
    GroupAdmin::from_seed(hex::decode(INFO_SEED).unwrap().try_into().unwrap())
}

#[test]
fn info_push_sizes_match_libsession() {
    // groups.json group_config_push_sizes: key 'aa'*32, name "GROUP Name" at seqno 1 → 256.
    let admin = admin();
    let key = GroupKey::from_bytes([0xaa; 32]);
    let info = GroupInfo {
        name: Some("GROUP Name".into()),
        ..GroupInfo::default()
    };
    let m1 = ConfigMessage::new(1, info.to_data());
    let sealed = seal_group_config(&m1, None, &admin, &key, GroupConfigKind::Info).unwrap();
    assert_eq!(sealed.len(), 256);
    let richer = GroupInfo {
        picture_url: Some("http://example.com/12345".into()),
        picture_key: Some(b"abcdefghijklmnopqrstuvwxyz123456".to_vec()),
        disappear_after_send_secs: 3600,
        created: 1_700_000_000,
        delete_before: 1_700_000_100,
        delete_attachments_before: 1_700_000_200,
        destroyed: true,
        ..info.clone()
    };
    let m2 = ConfigMessage::new(2, richer.to_data());
    let sealed2 =
        seal_group_config(&m2, Some(&m1.data), &admin, &key, GroupConfigKind::Info).unwrap();
    assert_eq!(sealed2.len(), 512);
    let opened = open_group_config(&sealed2, [&key], &admin.id(), GroupConfigKind::Info).unwrap();
    assert_eq!(GroupInfo::from_data(&opened.parsed.message.data), richer);
    assert_eq!(opened.parsed.message.seqno, 2);
}

#[test]
fn a_signed_config_is_what_members_decrypt_and_sealing_is_deterministic() {
    // The signed bytes are what the version's hash (in later lagged diffs) covers: admins keep
    // them, members decrypt them, and the same inputs seal to the same bytes.
    let admin = admin();
    let key = GroupKey::from_bytes([0xaa; 32]);
    let message = ConfigMessage::new(3, GroupInfo::default().to_data());
    let signed = sign_group_config(&message, None, &admin);
    let sealed = seal_signed_group_config(&signed, &key, GroupConfigKind::Info).unwrap();
    assert_eq!(
        sealed,
        seal_group_config(&message, None, &admin, &key, GroupConfigKind::Info).unwrap()
    );
    let opened = open_group_config(&sealed, [&key], &admin.id(), GroupConfigKind::Info).unwrap();
    assert_eq!(opened.plaintext, signed);
    assert_eq!(
        opened.parsed.hash,
        ConfigMessage::parse_full(&signed).unwrap().hash
    );
}

#[test]
fn configs_must_be_signed_by_the_group() {
    let admin = admin();
    let impostor = GroupAdmin::from_seed([9; 32]);
    let key = GroupKey::from_bytes([0xbb; 32]);
    let message = ConfigMessage::new(
        1,
        GroupInfo {
            name: Some("x".into()),
            ..GroupInfo::default()
        }
        .to_data(),
    );
    let forged = seal_group_config(&message, None, &impostor, &key, GroupConfigKind::Info).unwrap();
    assert_eq!(
        open_group_config(&forged, [&key], &admin.id(), GroupConfigKind::Info),
        Err(GroupConfigError::BadSignature)
    );
    // An unsigned config under the right key.
    let unsigned = encrypt_config(
        &pad_config(&message.serialize(None)),
        key.as_bytes(),
        GroupConfigKind::Info.domain(),
    )
    .unwrap();
    assert_eq!(
        open_group_config(&unsigned, [&key], &admin.id(), GroupConfigKind::Info),
        Err(GroupConfigError::Unsigned)
    );
    // Wrong key, wrong kind, truncation.
    let sealed = seal_group_config(&message, None, &admin, &key, GroupConfigKind::Info).unwrap();
    let other = GroupKey::from_bytes([1; 32]);
    assert_eq!(
        open_group_config(&sealed, [&other], &admin.id(), GroupConfigKind::Info),
        Err(GroupConfigError::NoKey)
    );
    assert_eq!(
        open_group_config(&sealed, [&key], &admin.id(), GroupConfigKind::Members),
        Err(GroupConfigError::NoKey)
    );
    for cut in 0..sealed.len() {
        assert!(
            open_group_config(&sealed[..cut], [&key], &admin.id(), GroupConfigKind::Info).is_err()
        );
    }
    // Any of several keys works.
    assert!(open_group_config(&sealed, [&other, &key], &admin.id(), GroupConfigKind::Info).is_ok());
}

#[test]
fn members_view_keeps_unknown_fields_and_rules() {
    let a = Identity::from_seed([1; 32]).session_id();
    let b = Identity::from_seed([2; 32]).session_id();
    let mut members = GroupMembers::default();
    members.members.insert(
        a,
        GroupMember {
            name: "Admin".into(),
            admin: true,
            invite: SendStatus::Sent,
            ..GroupMember::default()
        },
    );
    members.members.insert(
        b,
        GroupMember {
            invite: SendStatus::NotSent,
            supplement: true,
            removal: Removal::MemberAndMessages,
            ..GroupMember::default()
        },
    );
    let mut data = members.to_data();
    // Admins never carry an invite status; empty names are still written.
    let entry_a = data[b"m".as_slice()].as_dict().unwrap()[a.account().to_bytes().as_slice()]
        .as_dict()
        .unwrap()
        .clone();
    assert!(!entry_a.contains_key(b"I".as_slice()));
    let entry_b = data[b"m".as_slice()].as_dict().unwrap()[b.account().to_bytes().as_slice()]
        .as_dict()
        .unwrap()
        .clone();
    assert_eq!(entry_b[b"n".as_slice()], Value::from(""));
    assert_eq!(members.rekey_members(), vec![a]);
    // Unknown keys survive applying the view read back.
    if let Some(Value::Dict(m)) = data.get_mut(b"m".as_slice()) {
        if let Some(Value::Dict(e)) = m.get_mut(a.account().to_bytes().as_slice()) {
            e.insert(b"x".to_vec(), Value::Int(5));
        }
    }
    let before = data.clone();
    GroupMembers::from_data(&data).apply_to(&mut data);
    assert_eq!(data, before);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn members_configs_round_trip(
        entries in proptest::collection::btree_map(any::<[u8; 32]>(), ("[a-z]{0,8}", 0_u8..4, any::<bool>(), 0_u8..3), 0..12),
        seqno in 1_i64..1000,
    ) {
        let admin = admin();
        let key = GroupKey::from_bytes([0xcc; 32]);
        let members = GroupMembers {
            members: entries.into_iter().map(|(k, (name, invite, adm, removal))| {
                let member = GroupMember {
                    name,
                    admin: adm,
                    invite: if adm { SendStatus::Accepted } else { [SendStatus::Accepted, SendStatus::Sent, SendStatus::Failed, SendStatus::NotSent][usize::from(invite)] },
                    removal: [Removal::None, Removal::Member, Removal::MemberAndMessages][usize::from(removal)],
                    ..GroupMember::default()
                };
                (SessionId::from_x25519(shallot_proto::X25519Pub::from_bytes(k)), member)
            }).collect(),
        };
        let message = ConfigMessage::new(seqno, members.to_data());
        let sealed = seal_group_config(&message, None, &admin, &key, GroupConfigKind::Members).unwrap();
        let opened = open_group_config(&sealed, [&key], &admin.id(), GroupConfigKind::Members).unwrap();
        prop_assert_eq!(GroupMembers::from_data(&opened.parsed.message.data), members);
    }
}

#[test]
fn user_groups_entries_follow_libsession() {
    let all: serde_json::Value = serde_json::from_str(include_str!("vectors/groups.json")).unwrap();
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "user_groups_v2_entry")
        .unwrap();
    let i = &v["inputs"];
    let e = &v["expected"];
    let user_seed: [u8; 32] = hex::decode(i["user_seed"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let user = Identity::from_seed(user_seed);
    assert_eq!(
        user.ed25519_public().to_hex(),
        e["user_ed25519_pk"].as_str().unwrap()
    );
    assert_eq!(
        user.x25519_public().to_hex(),
        e["user_x25519_pk"].as_str().unwrap()
    );
    let auth =
        AuthData::from_bytes(&hex::decode(i["auth_data"].as_str().unwrap()).unwrap()).unwrap();
    let sk: [u8; 64] = hex::decode(e["group_2_loaded"]["secretkey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();

    let mut groups = UserGroups::default();
    for id in ["group_id_1", "group_id_2"] {
        let id: GroupId = i[id].as_str().unwrap().parse().unwrap();
        let mut entry = UserGroupEntry {
            auth_data: Some(auth.clone()),
            name: Some("Group".into()),
            joined_at: 1_700_000_000,
            ..UserGroupEntry::default()
        };
        entry.set_secret_key(&id, &sk);
        groups.groups.insert(id, entry);
    }
    let mut data = Dict::new();
    groups.apply_to(&mut data);
    let sealed = seal_config(
        &ConfigMessage::new(1, data),
        None,
        &user_seed,
        ConfigKind::UserGroups,
    );
    let opened = open_config(&sealed, &user_seed, ConfigKind::UserGroups).unwrap();
    let back = UserGroups::from_data(&opened.data);
    assert_eq!(back, groups);
    let stored = opened.data[b"g".as_slice()].as_dict().unwrap();
    for (name, loaded) in [
        ("group_id_1", &e["group_1_loaded"]),
        ("group_id_2", &e["group_2_loaded"]),
    ] {
        let id: GroupId = i[name].as_str().unwrap().parse().unwrap();
        let entry = stored[id.to_bytes().as_slice()].as_dict().unwrap();
        let seed = entry[b"K".as_slice()].as_bytes().unwrap();
        let expected_sk = loaded["secretkey"].as_str().unwrap();
        assert_eq!(
            hex::encode(seed),
            expected_sk.get(..64).unwrap_or(""),
            "{name}"
        );
        let auth_hex = entry
            .get(b"s".as_slice())
            .and_then(Value::as_bytes)
            .map(hex::encode);
        let expected_s = loaded["auth_data"].as_str().unwrap();
        assert_eq!(auth_hex.as_deref().unwrap_or(""), expected_s, "{name}");
    }
    // Kicked clears the credentials; destroyed is permanent.
    let id: GroupId = i["group_id_2"].as_str().unwrap().parse().unwrap();
    let entry = groups.groups.get_mut(&id).unwrap();
    entry.removed = RemovedStatus::Destroyed;
    entry.mark_kicked();
    assert_eq!(entry.removed, RemovedStatus::Destroyed);
    assert!(entry.admin_seed.is_none() && entry.auth_data.is_none());
}
