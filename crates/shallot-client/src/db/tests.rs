#![allow(clippy::unwrap_used)]
use super::*;
use crate::pool::{PoolSnapshot, SnapshotNode};
use shallot_proto::{AccountId, AccountKind, Ed25519Pub, Namespace, SessionId};

/// A distinct message hash for each `n`.
fn h(n: u8) -> MessageHash {
    MessageHash::from_bytes([n; 32])
}

fn user() -> Identity {
    Identity::generate(&mut rand::rngs::OsRng)
}

fn message(id: MessageHash, conversation: SessionId, body: &str) -> StoredMessage {
    StoredMessage {
        id,
        conversation,
        direction: Direction::Incoming,
        sender: conversation,
        timestamp: 1_700_000_000_000,
        body: body.into(),
        state: MessageState::Received,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn conversation_states_follow_requests_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let me = user();
    let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
    let (a, b) = (user().session_id(), user().session_id());
    db.insert_message(&message(h(1), a, "hi")).unwrap();
    assert_eq!(
        db.conversation_state(&a).unwrap(),
        Some(ConversationState::Requested)
    );
    let mut out = message(h(2), b, "hello");
    out.direction = Direction::Outgoing;
    out.sender = me.session_id();
    db.insert_message(&out).unwrap();
    assert_eq!(
        db.conversation_state(&b).unwrap(),
        Some(ConversationState::Accepted)
    );
    db.insert_message(&message(h(3), b, "reply")).unwrap();
    assert_eq!(
        db.conversation_state(&b).unwrap(),
        Some(ConversationState::Accepted),
        "a reply from a contact stays accepted"
    );
    db.set_conversation_state(&a, ConversationState::Declined, 1)
        .unwrap();
    db.insert_message(&message(h(4), a, "again")).unwrap();
    assert_eq!(
        db.conversation_state(&a).unwrap(),
        Some(ConversationState::Requested),
        "a new message after a decline is a new request"
    );
    db.set_conversation_state(&a, ConversationState::Blocked, 1)
        .unwrap();
    let mut out = message(h(5), a, "sorry");
    out.direction = Direction::Outgoing;
    db.insert_message(&out).unwrap();
    assert_eq!(
        db.conversation_state(&a).unwrap(),
        Some(ConversationState::Blocked)
    );

    db.set_disappearing(&b, Disappearing::AfterRead(30), 1)
        .unwrap();
    assert_eq!(db.disappearing(&b).unwrap(), Disappearing::AfterRead(30));
    db.set_expires(&h(2), 5_000).unwrap();
    assert_eq!(db.expires(&h(2)).unwrap(), Some(5_000));
    assert_eq!(db.delete_expired(4_999).unwrap(), 0);
    assert_eq!(db.delete_expired(5_000).unwrap(), 1);
    assert!(db.message(&h(2)).unwrap().is_none());
    assert!(
        db.is_seen(&h(2)).unwrap(),
        "an expired message is not shown again"
    );
    assert_eq!(db.find_messages("").unwrap().len(), 4);
    let text = h(1).to_string();
    assert_eq!(db.find_messages(&text[..6]).unwrap(), [h(1)]);
}

#[test]
fn bodies_never_reach_the_file_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (me, bob) = (user(), user());
    let secret = "attack at dawn, bring the zebra-striped umbrella";
    {
        let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
        assert!(db
            .insert_message(&message(h(1), bob.session_id(), secret))
            .unwrap());
        db.set_contact_name(&bob.session_id(), "Bobby Tables the Third")
            .unwrap();
        let got = db.messages(&bob.session_id()).unwrap();
        assert_eq!(got[0].body, secret);
        assert_eq!(got[0].sender, bob.session_id());
        assert_eq!(
            db.conversations().unwrap()[0].name.as_deref(),
            Some("Bobby Tables the Third")
        );
        // Force everything out of the WAL into the main file.
        db.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(
        contains(&bytes, h(1).to_string().as_bytes()),
        "the id is visible (documented)"
    );
    assert!(!contains(&bytes, secret.as_bytes()));
    assert!(!contains(&bytes, b"zebra"));
    assert!(!contains(&bytes, b"Bobby Tables"));

    // Reopening with the right key works; another account's key is refused.
    let db = Db::open_in_dir(dir.path(), &me).unwrap();
    assert_eq!(db.all_messages().unwrap()[0].body, secret);
    drop(db);
    assert!(matches!(
        Db::open_in_dir(dir.path(), &user()),
        Err(DbError::Decrypt(_))
    ));
}

#[test]
fn sealed_values_are_bound_to_their_row() {
    let dir = tempfile::tempdir().unwrap();
    let (me, bob) = (user(), user());
    let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
    db.insert_message(&message(h(10), bob.session_id(), "first"))
        .unwrap();
    db.insert_message(&message(h(11), bob.session_id(), "second"))
        .unwrap();
    // Swap the sealed bodies of the two rows: both must now fail to open.
    db.conn
        .execute(
            "UPDATE messages SET body = (SELECT body FROM messages WHERE id = ?2) WHERE id = ?1",
            params![h(10).to_string(), h(11).to_string()],
        )
        .unwrap();
    assert!(matches!(db.message(&h(10)), Err(DbError::Decrypt(_))));
    assert_eq!(db.message(&h(11)).unwrap().unwrap().body, "second");
}

#[test]
fn last_hash_is_per_node_account_and_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_in_dir(dir.path(), &user()).unwrap();
    let (n1, n2) = (
        Ed25519Pub::from_bytes([1; 32]),
        Ed25519Pub::from_bytes([2; 32]),
    );
    let a = AccountId::new(AccountKind::Session, [0xaa; 32]);
    let b = AccountId::new(AccountKind::Session, [0xbb; 32]);
    let (inbox, config) = (Namespace::DEFAULT, Namespace(2));
    assert_eq!(db.last_hash(&n1, &a, inbox).unwrap(), None);
    db.set_last_hash(&n1, &a, inbox, &h(1)).unwrap();
    db.set_last_hash(&n2, &a, inbox, &h(2)).unwrap();
    db.set_last_hash(&n1, &a, config, &h(3)).unwrap();
    db.set_last_hash(&n1, &b, inbox, &h(4)).unwrap();
    db.set_last_hash(&n1, &a, inbox, &h(5)).unwrap();
    assert_eq!(db.last_hash(&n1, &a, inbox).unwrap(), Some(h(5)));
    assert_eq!(db.last_hash(&n2, &a, inbox).unwrap(), Some(h(2)));
    assert_eq!(db.last_hash(&n1, &a, config).unwrap(), Some(h(3)));
    assert_eq!(db.last_hash(&n1, &b, inbox).unwrap(), Some(h(4)));
}

#[test]
fn messages_and_hashes_are_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let (me, bob) = (user(), user());
    let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
    let m = message(h(20), bob.session_id(), "hi");
    assert!(!db.is_seen(&h(20)).unwrap());
    assert!(db.insert_message(&m).unwrap());
    assert!(!db.insert_message(&m).unwrap(), "second insert is a no-op");
    assert!(db.is_seen(&h(20)).unwrap());
    db.mark_seen(&h(30), None).unwrap();
    db.mark_seen(&h(30), None).unwrap();
    assert!(db.is_seen(&h(30)).unwrap());
    assert_eq!(db.all_messages().unwrap().len(), 1);
    db.set_state(&h(20), MessageState::Stored(3)).unwrap();
    assert_eq!(
        db.message(&h(20)).unwrap().unwrap().state,
        MessageState::Stored(3)
    );
}

#[test]
fn migrations_are_recorded_and_snapshots_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let me = user();
    let db = Db::open_in_dir(dir.path(), &me).unwrap();
    assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len());
    assert_eq!(db.load_pool().unwrap(), None);
    let pool = PoolSnapshot::default();
    db.save_pool(&pool).unwrap();
    assert_eq!(db.load_pool().unwrap(), Some(pool));
    let account = AccountId::new(AccountKind::Session, [0xaa; 32]);
    let members: [SnapshotNode; 0] = [];
    db.save_swarm(&account, &members).unwrap();
    assert_eq!(db.load_swarm(&account).unwrap(), Some(Vec::new()));
    drop(db);
    // Reopening does not re-run migrations.
    let db = Db::open_in_dir(dir.path(), &me).unwrap();
    assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len());
    db.conn
        .execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    drop(db);
    assert!(matches!(
        Db::open_in_dir(dir.path(), &me),
        Err(DbError::TooNew(99))
    ));
}

#[test]
fn requests_are_capped_by_count_and_declined_ones_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let me = user();
    let db = Db::open_in_dir(dir.path(), &me).unwrap();
    // Requests emptied by their senders' unsends hold no messages but still count.
    let waiting: Vec<SessionId> = (0..MAX_REQUESTS).map(|_| user().session_id()).collect();
    for s in &waiting {
        db.set_conversation_state(s, ConversationState::Requested, 1)
            .unwrap();
    }
    let (new, contact) = (user().session_id(), user().session_id());
    assert_eq!(
        db.request_cap(&new).unwrap(),
        Some("too many message requests")
    );
    // One already waiting may still add to its own request; a contact is never capped.
    assert_eq!(db.request_cap(&waiting[0]).unwrap(), None);
    db.set_conversation_state(&contact, ConversationState::Accepted, 1)
        .unwrap();
    assert_eq!(db.request_cap(&contact).unwrap(), None);
    // Declining one frees a place.
    db.set_conversation_state(&waiting[1], ConversationState::Declined, 1)
        .unwrap();
    assert_eq!(db.request_cap(&new).unwrap(), None);
}

#[test]
fn group_messages_disappear_at_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let me = user();
    let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
    let group = shallot_proto::group::GroupAdmin::from_seed([3; 32]).id();
    let record =
        crate::groups::GroupRecord::new("G", crate::groups::GroupStatus::Joined, 1_700_000_000);
    db.save_group(&crate::groups::Group { id: group, record }, 1)
        .unwrap();
    for (n, body) in [(1, "lasting"), (2, "fleeting")] {
        let m = crate::db::StoredGroupMessage {
            id: h(n),
            group,
            direction: Direction::Incoming,
            sender: user().session_id(),
            timestamp: 1_000,
            body: body.into(),
            state: MessageState::Received,
        };
        assert!(db.insert_group_message(&m).unwrap());
    }
    db.set_group_message_expires(&h(2), 61_000).unwrap();
    assert_eq!(db.group_message_expires(&h(1)).unwrap(), None);
    assert_eq!(db.group_message_expires(&h(2)).unwrap(), Some(61_000));
    assert_eq!(db.delete_expired(60_999).unwrap(), 0);
    assert_eq!(db.delete_expired(61_000).unwrap(), 1);
    let left: Vec<String> = db
        .group_messages(&group)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(left, ["lasting"]);
    assert!(
        db.is_seen(&h(2)).unwrap(),
        "an expired message is not taken in again"
    );
}

#[test]
fn group_attachments_are_found_by_id_and_go_with_their_message() {
    let dir = tempfile::tempdir().unwrap();
    let me = user();
    let mut db = Db::open_in_dir(dir.path(), &me).unwrap();
    let group = shallot_proto::group::GroupAdmin::from_seed([4; 32]).id();
    let record =
        crate::groups::GroupRecord::new("G", crate::groups::GroupStatus::Joined, 1_700_000_000);
    db.save_group(&crate::groups::Group { id: group, record }, 1)
        .unwrap();
    let m = crate::db::StoredGroupMessage {
        id: h(7),
        group,
        direction: Direction::Incoming,
        sender: user().session_id(),
        timestamp: 1_000,
        body: String::new(),
        state: MessageState::Received,
    };
    assert!(db.insert_group_message(&m).unwrap());
    let pointer = shallot_proto::attachment::AttachmentPointer {
        file_name: Some("photo.png".into()),
        size: Some(1234),
        ..Default::default()
    };
    let stored = db
        .insert_group_attachments(&h(7), std::slice::from_ref(&pointer))
        .unwrap();
    assert_eq!(stored.len(), 1);
    // Again: nothing changes.
    db.insert_group_attachments(&h(7), &[pointer]).unwrap();
    assert_eq!(db.attachments(&h(7)).unwrap(), stored);
    let found = db.find_attachments(&stored[0].id.as_str()[..6]).unwrap();
    assert_eq!(found, stored);
    assert_eq!(found[0].file_name(), "photo.png");
    assert_eq!(found[0].size(), 1234);
    // A 1:1 message's attachment is not a group message's.
    assert!(db
        .insert_attachments(
            &h(8),
            &stored[..1]
                .iter()
                .map(|a| a.pointer.clone())
                .collect::<Vec<_>>()
        )
        .is_err());
    db.delete_group(&group).unwrap();
    assert!(db.attachments(&h(7)).unwrap().is_empty());
    assert!(db
        .find_attachments(stored[0].id.as_str())
        .unwrap()
        .is_empty());
}
