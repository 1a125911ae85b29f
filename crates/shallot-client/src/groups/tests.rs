//! Two admins changing a group at once (no network): their concurrent Info and Members
//! versions are merged by libsession's rules, both changes survive, both admins push the same
//! signed, encrypted bytes, and a member shows the merge before it is pushed.
#![allow(clippy::unwrap_used)]

use shallot_proto::group::{seal_signed_group_config, GroupAdmin, GroupConfigKind, GroupMember};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::RetrievedMessage;
use shallot_proto::{Identity, Namespace, SessionId};

use super::admin::{next_config_version, Change};
use super::poll::{take_configs, take_keys};
use super::state::Hex;
use super::{Group, GroupRecord, GroupStatus};

/// A store on the group swarm, as a poll retrieves it.
fn stored(group: &Group, ns: Namespace, data: Vec<u8>, timestamp: u64) -> RetrievedMessage {
    RetrievedMessage {
        hash: MessageHash::compute(&group.id.account(), ns, &data),
        data,
        expiration: timestamp + 1_000_000,
        timestamp,
    }
}

/// An admin's (or member's) view of the group, before anything was polled.
fn device(admin: &GroupAdmin, seed: bool) -> Group {
    let mut group = Group {
        id: admin.id(),
        record: GroupRecord::new("", GroupStatus::Joined, 1),
    };
    if seed {
        group.record.admin_seed = Some(Hex(admin.seed().to_vec()));
    }
    group
}

/// Polls `items` of one namespace into `group` as `me`.
fn poll(group: &mut Group, me: &Identity, ns: Namespace, items: &[RetrievedMessage]) {
    let mut keys = group.keys(me);
    if ns == Namespace::GROUP_KEYS {
        take_keys(group, me, &mut keys, items);
    } else {
        let kind = if ns == Namespace::GROUP_INFO {
            GroupConfigKind::Info
        } else {
            GroupConfigKind::Members
        };
        take_configs(group, &keys, kind, items);
    }
}

/// What `push_change` stores for `change` from `group` (as admin `admin`): a key message
/// when `rekey`, then the configs that need a new version, sealed with the current key.
/// The pushing device takes its own stores in, as it records them.
fn push(
    group: &mut Group,
    me: &Identity,
    admin: &GroupAdmin,
    change: &Change,
    rekey: bool,
    at: u64,
) -> Vec<(Namespace, RetrievedMessage)> {
    let mut out = Vec::new();
    let mut keys = group.keys(me);
    if rekey || keys.needs_rekey() {
        let message = keys.rekey(admin, &change.members.rekey_members()).to_vec();
        let item = stored(group, Namespace::GROUP_KEYS, message, at);
        poll(
            group,
            me,
            Namespace::GROUP_KEYS,
            std::slice::from_ref(&item),
        );
        out.push((Namespace::GROUP_KEYS, item));
    }
    let rekeyed = !out.is_empty();
    let key = group.keys(me).encryption_key().unwrap().clone();
    for kind in [GroupConfigKind::Info, GroupConfigKind::Members] {
        let Some(signed) = next_config_version(group, admin, change, kind, rekeyed) else {
            continue;
        };
        let sealed = seal_signed_group_config(&signed, &key, kind).unwrap();
        let item = stored(group, kind.namespace(), sealed, at);
        group.add_config_versions(kind, [signed]);
        out.push((kind.namespace(), item));
    }
    out
}

/// Takes in `items` in a poll's order (keys, then Info, then Members).
fn take(group: &mut Group, me: &Identity, items: &[(Namespace, RetrievedMessage)]) {
    for ns in [
        Namespace::GROUP_KEYS,
        Namespace::GROUP_INFO,
        Namespace::GROUP_MEMBERS,
    ] {
        let of: Vec<RetrievedMessage> = items
            .iter()
            .filter(|(n, _)| *n == ns)
            .map(|(_, item)| item.clone())
            .collect();
        poll(group, me, ns, &of);
    }
}

/// What an admin's poll does on a conflict: push the change-free next version (a merge).
fn merge(
    group: &mut Group,
    me: &Identity,
    admin: &GroupAdmin,
    at: u64,
) -> Vec<(Namespace, RetrievedMessage)> {
    let change = Change::of(group);
    push(group, me, admin, &change, false, at)
}

fn member(admin: bool) -> GroupMember {
    GroupMember {
        admin,
        ..GroupMember::default()
    }
}

struct Start {
    admin: GroupAdmin,
    ids: [Identity; 4],
    alice: Group,
    bob: Group,
    carol: Group,
    created: Vec<(Namespace, RetrievedMessage)>,
}

/// Alice creates a group with Bob (an admin too) and Carol (a member); Bob and Carol polled.
fn start() -> Start {
    let admin = GroupAdmin::from_seed([7; 32]);
    let ids = [1u8, 2, 3, 4].map(|n| Identity::from_seed([n; 32]));
    let sid = |i: usize| ids[i].session_id();
    let mut alice = device(&admin, true);
    let mut change = Change::of(&alice);
    change.info.name = Some("Friends".into());
    change.members.members.insert(sid(0), member(true));
    change.members.members.insert(sid(1), member(true));
    change.members.members.insert(sid(2), member(false));
    let created = push(&mut alice, &ids[0], &admin, &change, true, 1_000);
    let mut bob = device(&admin, true);
    take(&mut bob, &ids[1], &created);
    let mut carol = device(&admin, false);
    take(&mut carol, &ids[2], &created);
    assert_eq!(bob.name(), "Friends");
    assert_eq!(carol.members().members.len(), 3);
    Start {
        admin,
        ids,
        alice,
        bob,
        carol,
        created,
    }
}

/// The newest config bytes a device holds, per kind (one version each once settled).
fn settled(group: &Group) -> (Vec<Hex>, Vec<Hex>) {
    assert!(!group.config_conflict());
    (group.record.info.clone(), group.record.members.clone())
}

#[test]
fn a_rename_and_an_add_at_once_are_merged_into_the_same_bytes_by_both_admins() {
    let Start {
        admin,
        ids,
        mut alice,
        mut bob,
        mut carol,
        ..
    } = start();
    let dave: SessionId = ids[3].session_id();

    // At once: Alice renames; Bob adds Dave, which changes the key.
    let mut rename = Change::of(&alice);
    rename.info.name = Some("Best friends".into());
    let by_alice = push(&mut alice, &ids[0], &admin, &rename, false, 2_000);
    assert_eq!(by_alice.len(), 1, "only Info changes");
    let mut add = Change::of(&bob);
    add.members.members.insert(dave, member(false));
    let by_bob = push(&mut bob, &ids[1], &admin, &add, true, 2_001);

    // Carol, a member, sees both before any admin merges: the merged view, not one winner.
    let mut both = by_alice.clone();
    both.extend(by_bob.iter().cloned());
    take(&mut carol, &ids[2], &both);
    assert!(carol.config_conflict());
    assert_eq!(carol.name(), "Best friends");
    assert!(carol.members().members.contains_key(&dave));

    // Each admin takes the other's pushes: both changes show, and a merge is due.
    take(&mut alice, &ids[0], &by_bob);
    take(&mut bob, &ids[1], &by_alice);
    for group in [&alice, &bob] {
        assert_eq!(group.name(), "Best friends");
        assert!(group.members().members.contains_key(&dave));
        assert!(group.config_conflict(), "Info has two versions");
    }

    // Both push the merge: byte for byte the same (the swarm keeps one copy).
    let merge_alice = merge(&mut alice, &ids[0], &admin, 3_000);
    let merge_bob = merge(&mut bob, &ids[1], &admin, 3_001);
    assert_eq!(merge_alice.len(), 1, "only Info had concurrent versions");
    assert_eq!(merge_alice[0].1.data, merge_bob[0].1.data);
    assert_eq!(merge_alice[0].1.hash, merge_bob[0].1.hash);
    assert_eq!(settled(&alice), settled(&bob));

    // Once the merge is in, Carol holds the same single versions, and nothing more is due.
    take(&mut carol, &ids[2], &merge_alice);
    assert_eq!(settled(&carol), settled(&alice));
    assert_eq!(carol.name(), "Best friends");
    assert!(
        merge(&mut alice, &ids[0], &admin, 4_000).is_empty(),
        "nothing left to push"
    );
}

#[test]
fn concurrent_rekeys_are_resolved_by_the_same_new_key_from_both_admins() {
    let Start {
        admin,
        ids,
        mut alice,
        mut bob,
        created,
        ..
    } = start();
    let (carol, dave) = (ids[2].session_id(), ids[3].session_id());

    // At once: Alice removes Carol, Bob adds Dave; each makes its own generation-1 key.
    let mut remove = Change::of(&alice);
    remove.members.members.remove(&carol);
    let by_alice = push(&mut alice, &ids[0], &admin, &remove, true, 2_000);
    let mut add = Change::of(&bob);
    add.members.members.insert(dave, member(false));
    let by_bob = push(&mut bob, &ids[1], &admin, &add, true, 2_001);
    take(&mut alice, &ids[0], &by_bob);
    take(&mut bob, &ids[1], &by_alice);
    for group in [&alice, &bob] {
        let members = group.members().members;
        assert!(!members.contains_key(&carol) && members.contains_key(&dave));
        assert!(group.keys(&ids[0]).needs_rekey(), "two generation-1 keys");
    }

    // Both resolve it: the same generation-2 key message for the merged members, and the
    // same configs sealed with it.
    let merge_alice = merge(&mut alice, &ids[0], &admin, 3_000);
    let merge_bob = merge(&mut bob, &ids[1], &admin, 3_001);
    let bytes = |items: &[(Namespace, RetrievedMessage)]| -> Vec<(Namespace, Vec<u8>)> {
        items.iter().map(|(n, i)| (*n, i.data.clone())).collect()
    };
    assert_eq!(merge_alice.len(), 3, "keys, Info and Members");
    assert_eq!(bytes(&merge_alice), bytes(&merge_bob));
    assert_eq!(settled(&alice), settled(&bob));
    assert!(!alice.keys(&ids[0]).needs_rekey());

    // Dave, added by Bob, reads the result; Carol's key is not in the new generation.
    let mut dave_view = device(&admin, false);
    let mut everything = created;
    everything.extend(by_alice);
    everything.extend(by_bob);
    everything.extend(merge_alice);
    take(&mut dave_view, &ids[3], &everything);
    assert_eq!(settled(&dave_view), settled(&alice));
    assert_eq!(dave_view.keys(&ids[3]).current_generation(), Some(2));
    let mut carol_view = device(&admin, false);
    take(&mut carol_view, &ids[2], &everything);
    assert_ne!(carol_view.keys(&ids[2]).current_generation(), Some(2));
}

#[test]
fn a_record_written_before_merging_reads_its_single_version() {
    let Start { alice, .. } = start();
    let one = alice.record.info[0].clone();
    let mut json = serde_json::to_value(&alice.record).unwrap();
    json["info"] = serde_json::to_value(&one).unwrap();
    json["members"] = serde_json::Value::Null;
    let old: GroupRecord = serde_json::from_value(json).unwrap();
    assert_eq!(old.info, vec![one]);
    assert!(old.members.is_empty());
}
