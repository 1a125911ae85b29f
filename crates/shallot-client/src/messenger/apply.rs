//! What the items retrieved from our inbox do to the local database: skip what was seen, judge
//! the rest ([`judge`]), and record each verdict. Runs on the database thread, one batch per job.

use std::collections::HashSet;

use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::RetrievedMessage;
use shallot_proto::{Identity, SessionId};

use super::feedback::{Update, TYPING_TTL_MS};
use super::judge::{judge, Judged, Verdict};
use super::ReceivedMessage;
use crate::db::{ConversationState, Db, DbError, Direction, Disappearing};

/// Network work left over by taking items in.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FollowUp {
    /// Our swarm copies to shorten, with their new expiry (after-read timers).
    pub expire: Vec<(MessageHash, u64)>,
    /// Our swarm copies to delete (unsent by their author, or from someone blocked).
    pub delete: Vec<MessageHash>,
    /// Our groups changed (an invite or promotion): push the UserGroups config.
    pub groups_changed: bool,
    /// Typing indicators: who, and until when (`None`: stopped, or their message arrived).
    pub typing: Vec<(SessionId, Option<u64>)>,
    /// Receipts and reactions recorded, for a screen to show.
    pub updates: Vec<Update>,
}

impl FollowUp {
    pub fn is_empty(&self) -> bool {
        self.expire.is_empty() && self.delete.is_empty()
    }
}

/// Takes `items` (retrieved from `me`'s inbox, at `now_ms`) into `db`: each hash not seen
/// before, in `db` or earlier in `items`, is judged and recorded. Returns the new visible
/// messages in item order (less those their author unsent in the same batch) and the follow-up.
pub(super) fn take_in(
    db: &mut Db,
    me: &Identity,
    items: &[RetrievedMessage],
    now_ms: u64,
) -> Result<(Vec<ReceivedMessage>, FollowUp), DbError> {
    let own = me.session_id();
    let mut batch_seen = HashSet::new();
    let mut shown = Vec::new();
    let mut follow = FollowUp::default();
    for item in items {
        if !batch_seen.insert(item.hash) || db.is_seen(&item.hash)? {
            continue;
        }
        let judged = judge(me, item);
        if let Some(m) = record(db, &own, item.hash, judged, now_ms, &mut follow)? {
            shown.push(m);
        }
    }
    shown.retain(|m| !follow.delete.contains(&m.hash));
    Ok((shown, follow))
}

/// Records what item `hash` was judged to be; `Some` iff it is a new message to show.
#[allow(clippy::too_many_lines)] // One arm per verdict.
fn record(
    db: &mut Db,
    me: &SessionId,
    hash: MessageHash,
    judged: Judged,
    now_ms: u64,
    follow: &mut FollowUp,
) -> Result<Option<ReceivedMessage>, DbError> {
    let Judged {
        verdict,
        name,
        picture,
        quote,
        attachments,
    } = judged;
    match verdict {
        Verdict::Drop(why) => {
            tracing::warn!(message = %hash, "dropping message: {why}");
            db.mark_seen(&hash, None)?;
            Ok(None)
        }
        Verdict::Group(note) => {
            db.mark_seen(&hash, None)?;
            let (shown, changed) = crate::groups::invite::record_note(db, note, hash, now_ms)?;
            follow.groups_changed |= changed;
            Ok(shown)
        }
        Verdict::Approved(contact) => {
            // An approval answers a request of ours: it never makes a stranger a contact (which
            // would also lift the request caps), only someone we wrote to.
            if db.conversation_state(&contact)? != Some(ConversationState::Blocked)
                && db.wrote_to(&contact)?
            {
                db.set_conversation_state(&contact, ConversationState::Accepted, now_ms)?;
                if let Some(name) = name {
                    db.set_contact_name(&contact, &name)?;
                }
                if let Some((picture, updated)) = picture {
                    db.record_contact_picture(&contact, picture, updated)?;
                }
            }
            db.mark_seen(&hash, None)?;
            Ok(None)
        }
        feedback
        @ (Verdict::Receipt { .. } | Verdict::Typing { .. } | Verdict::Reaction { .. }) => {
            db.mark_seen(&hash, None)?;
            record_feedback(db, me, feedback, now_ms, follow)?;
            Ok(None)
        }
        Verdict::Timer {
            conversation,
            setting,
            from_us,
        } => {
            db.mark_seen(&hash, None)?;
            // From them: only for a conversation we have and have not blocked (a stranger
            // cannot create one this way). From our other device: always.
            let ours = from_us
                || !matches!(
                    db.conversation_state(&conversation)?,
                    None | Some(ConversationState::Blocked)
                );
            if ours {
                db.set_disappearing(&conversation, setting, now_ms)?;
            }
            Ok(None)
        }
        Verdict::Unsend { author, timestamp } => {
            db.mark_seen(&hash, None)?;
            // Theirs are in our conversation with them; ours may be in any conversation.
            let candidates = if author == *me {
                db.all_messages()?
            } else {
                db.messages(&author)?
            };
            let unsent: Vec<MessageHash> = candidates
                .into_iter()
                .filter(|m| m.sender == author && m.timestamp == timestamp)
                .map(|m| m.id)
                .collect();
            for id in unsent {
                db.delete_message(&id)?;
                follow.delete.push(id);
            }
            // Our own swarm copy of the unsend request is of no further use.
            follow.delete.push(hash);
            Ok(None)
        }
        Verdict::Show(m, disappearing) => {
            if m.direction == Direction::Incoming && refused(db, &m.conversation, hash, follow)? {
                return Ok(None);
            }
            if !db.insert_message(&m)? {
                return Ok(None);
            }
            let attachments = db.insert_attachments(&m.id, &attachments)?;
            if let (Some(name), Direction::Incoming) = (name, m.direction) {
                db.set_contact_name(&m.conversation, &name)?;
            }
            if let (Some((picture, updated)), Direction::Incoming) = (picture, m.direction) {
                db.record_contact_picture(&m.conversation, picture, updated)?;
            }
            if let Some(quote) = quote {
                db.set_quote(&m.id, &quote)?;
            }
            if m.direction == Direction::Incoming {
                // Their message ends their typing.
                follow.typing.push((m.sender, None));
            }
            match disappearing {
                Disappearing::Off => {}
                Disappearing::AfterSend(secs) => {
                    db.set_expires(&m.id, m.timestamp + u64::from(secs) * 1000)?;
                }
                Disappearing::AfterRead(secs) => {
                    // Shown now, so read now: the timer starts, here and in our swarm.
                    let at = now_ms + u64::from(secs) * 1000;
                    db.set_expires(&m.id, at)?;
                    follow.expire.push((m.id, at));
                }
            }
            Ok(Some(ReceivedMessage {
                hash: m.id,
                conversation: m.conversation,
                sender: m.sender,
                direction: m.direction,
                timestamp: m.timestamp,
                body: m.body,
                group: None,
                attachments,
            }))
        }
    }
}

/// Records a receipt, typing indicator or reaction (already marked seen).
fn record_feedback(
    db: &mut Db,
    me: &SessionId,
    verdict: Verdict,
    now_ms: u64,
    follow: &mut FollowUp,
) -> Result<(), DbError> {
    match verdict {
        Verdict::Receipt {
            from,
            read,
            timestamps,
        } => {
            // Only the other party of a conversation we have can move our messages there.
            let messages = if is_open(db, &from)? {
                db.apply_receipt(&from, &timestamps, read)?
            } else {
                Vec::new()
            };
            if !messages.is_empty() {
                follow.updates.push(Update::Receipt {
                    conversation: from,
                    messages,
                    read,
                });
            }
        }
        Verdict::Typing { from, started, at } => {
            let until = at.saturating_add(TYPING_TTL_MS);
            if until > now_ms && is_open(db, &from)? {
                follow.typing.push((from, started.then_some(until)));
            }
        }
        Verdict::Reaction {
            conversation,
            reactor,
            target,
            emoji,
            remove,
        } => {
            if reactor != *me && !is_open(db, &conversation)? {
                return Ok(());
            }
            let Some(message) = db.message_by(&conversation, target.timestamp, &target.author)?
            else {
                return Ok(());
            };
            if db.set_reaction(&message.id, &reactor, &emoji, remove)? {
                follow.updates.push(Update::Reaction {
                    conversation,
                    group: None,
                    message: message.id,
                    author: reactor,
                    emoji,
                    removed: remove,
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether we have a conversation with `who` that is not blocked: only then do their
/// receipts, typing and reactions count (a stranger's create nothing).
fn is_open(db: &Db, who: &SessionId) -> Result<bool, DbError> {
    Ok(!matches!(
        db.conversation_state(who)?,
        None | Some(ConversationState::Blocked)
    ))
}

/// Whether an incoming message from `sender` is not kept (and so marked seen): everything from
/// someone blocked (also deleted from our swarm), and a stranger's message over the request caps
/// (`db::requests`).
fn refused(
    db: &Db,
    sender: &SessionId,
    hash: MessageHash,
    follow: &mut FollowUp,
) -> Result<bool, DbError> {
    if db.conversation_state(sender)? == Some(ConversationState::Blocked) {
        db.mark_seen(&hash, None)?;
        follow.delete.push(hash);
        return Ok(true);
    }
    if let Some(why) = db.request_cap(sender)? {
        tracing::warn!(message = %hash, "dropping message: {why}");
        db.mark_seen(&hash, None)?;
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::{
        approval, item, named, reaction, receipt, reply, text, timer, typing, unsend, user,
        with_timer, T,
    };
    use super::*;
    use crate::db::{MessageState, StoredMessage};
    use shallot_proto::session::protos::ExpirationType;

    /// When the batch is taken in (a little after the messages were sent).
    const NOW: u64 = T + 5_000;

    struct Inbox {
        _dir: tempfile::TempDir,
        db: Db,
        me: Identity,
    }

    impl Inbox {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let me = user();
            let db = Db::open_in_dir(dir.path(), &me).unwrap();
            Self { _dir: dir, db, me }
        }

        fn take(&mut self, items: &[RetrievedMessage]) -> (Vec<ReceivedMessage>, FollowUp) {
            take_in(&mut self.db, &self.me, items, NOW).unwrap()
        }

        fn state(&self, who: &Identity) -> Option<ConversationState> {
            self.db.conversation_state(&who.session_id()).unwrap()
        }

        fn set_state(&self, who: &Identity, state: ConversationState) {
            self.db
                .set_conversation_state(&who.session_id(), state, T)
                .unwrap();
        }

        fn name(&self, who: &Identity) -> Option<String> {
            self.db.contact_name(&who.session_id()).unwrap()
        }

        /// A message we sent to `to` from this device.
        fn sent(&mut self, to: &Identity, n: u8) {
            self.db
                .insert_message(&StoredMessage {
                    id: MessageHash::from_bytes([n; 32]),
                    conversation: to.session_id(),
                    direction: Direction::Outgoing,
                    sender: self.me.session_id(),
                    timestamp: T - 1000,
                    body: "ours".into(),
                    state: MessageState::Stored(1),
                })
                .unwrap();
        }
    }

    #[test]
    fn a_strangers_message_is_a_request_that_shows_their_name_and_a_contacts_stays_accepted() {
        let mut inbox = Inbox::new();
        let (alice, bob) = (user(), user());
        let hello = item(&inbox.me, &alice, &named(text("hello", T), "Alice"));
        let (shown, follow) = inbox.take(std::slice::from_ref(&hello));
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].body, "hello");
        assert_eq!(shown[0].hash, hello.hash);
        assert_eq!(shown[0].direction, Direction::Incoming);
        assert!(follow.is_empty());
        assert_eq!(inbox.state(&alice), Some(ConversationState::Requested));
        // The request shows the name its message carried.
        assert_eq!(inbox.name(&alice).as_deref(), Some("Alice"));
        assert_eq!(
            inbox.db.conversations().unwrap()[0].name.as_deref(),
            Some("Alice")
        );

        // Someone we wrote to first is a contact, and their reply keeps them one.
        inbox.sent(&bob, 1);
        assert_eq!(inbox.state(&bob), Some(ConversationState::Accepted));
        inbox.take(&[item(&inbox.me, &bob, &text("reply", T))]);
        assert_eq!(inbox.state(&bob), Some(ConversationState::Accepted));
        assert_eq!(inbox.db.messages(&bob.session_id()).unwrap().len(), 2);
    }

    #[test]
    fn duplicates_and_dropped_items_are_taken_in_once() {
        let mut inbox = Inbox::new();
        let alice = user();
        let hi = item(&inbox.me, &alice, &text("hi", T));
        // The same item from two swarm members in one batch.
        let (shown, _) = inbox.take(&[hi.clone(), hi.clone()]);
        assert_eq!(shown.len(), 1);
        // And again in a later poll.
        assert!(inbox.take(std::slice::from_ref(&hi)).0.is_empty());
        assert_eq!(inbox.db.messages(&alice.session_id()).unwrap().len(), 1);
        // A dropped item is remembered too, so it is not judged (or logged) again.
        let mut forged = item(&inbox.me, &alice, &text("x", T));
        forged.hash = MessageHash::from_bytes([9; 32]);
        assert!(inbox.take(&[forged.clone()]).0.is_empty());
        assert!(inbox.db.is_seen(&forged.hash).unwrap());
        assert!(inbox.db.message(&forged.hash).unwrap().is_none());
    }

    #[test]
    fn an_approval_makes_a_contact_unless_blocked() {
        let mut inbox = Inbox::new();
        let (alice, mallory) = (user(), user());
        inbox.sent(&alice, 1);
        inbox.set_state(&alice, ConversationState::Requested);
        let (shown, _) = inbox.take(&[item(&inbox.me, &alice, &named(approval(true, T), "Al"))]);
        assert!(shown.is_empty(), "an approval shows nothing");
        assert_eq!(inbox.state(&alice), Some(ConversationState::Accepted));
        assert_eq!(inbox.name(&alice).as_deref(), Some("Al"));
        inbox.set_state(&mallory, ConversationState::Blocked);
        inbox.take(&[item(&inbox.me, &mallory, &named(approval(true, T), "M"))]);
        assert_eq!(inbox.state(&mallory), Some(ConversationState::Blocked));
        assert_eq!(inbox.name(&mallory), None);
    }

    #[test]
    fn a_strangers_approval_does_not_make_a_contact() {
        let mut inbox = Inbox::new();
        let (eve, carol) = (user(), user());
        inbox.take(&[item(&inbox.me, &eve, &approval(true, T))]);
        assert_eq!(inbox.state(&eve), None, "no conversation from an approval");
        // Nor does it accept the request they sent first.
        inbox.take(&[item(&inbox.me, &carol, &text("hi", T))]);
        inbox.take(&[item(&inbox.me, &carol, &approval(true, T + 1))]);
        assert_eq!(inbox.state(&carol), Some(ConversationState::Requested));
    }

    /// `n` distinct text messages from `from`, starting at `T + first`.
    fn texts(inbox: &Inbox, from: &Identity, first: u64, n: u64) -> Vec<RetrievedMessage> {
        (first..first + n)
            .map(|i| item(&inbox.me, from, &text(&format!("m{i}"), T + i)))
            .collect()
    }

    #[test]
    fn a_strangers_request_keeps_their_first_messages_and_a_contact_is_never_capped() {
        use crate::db::MAX_REQUEST_MESSAGES_PER_SENDER as CAP;
        let mut inbox = Inbox::new();
        let (stranger, contact) = (user(), user());
        let flood = texts(&inbox, &stranger, 0, CAP as u64 + 20);
        let (shown, _) = inbox.take(&flood);
        assert_eq!(shown.len(), CAP);
        let kept = inbox.db.messages(&stranger.session_id()).unwrap();
        assert_eq!(kept.len(), CAP);
        assert_eq!(kept[0].body, "m0", "the newest are refused, the first kept");
        assert_eq!(kept[CAP - 1].body, format!("m{}", CAP - 1));
        // Refused items are remembered, so the next poll does not judge them again.
        assert!(flood.iter().all(|i| inbox.db.is_seen(&i.hash).unwrap()));
        assert_eq!(inbox.state(&stranger), Some(ConversationState::Requested));

        // A contact (we wrote first) is not a request: no cap.
        inbox.sent(&contact, 1);
        let (shown, _) = inbox.take(&texts(&inbox, &contact, 0, CAP as u64 + 20));
        assert_eq!(shown.len(), CAP + 20);
        // Once accepted, the stranger is a contact too.
        inbox.set_state(&stranger, ConversationState::Accepted);
        let (shown, _) = inbox.take(&texts(&inbox, &stranger, 500, 1));
        assert_eq!(shown.len(), 1);
    }

    #[test]
    fn requests_are_capped_in_total_and_a_new_stranger_is_refused_first() {
        use crate::db::{MAX_REQUEST_MESSAGES as TOTAL, MAX_REQUEST_MESSAGES_PER_SENDER as CAP};
        let mut inbox = Inbox::new();
        let senders: Vec<Identity> = (0..TOTAL / CAP).map(|_| user()).collect();
        for s in &senders {
            let (shown, _) = inbox.take(&texts(&inbox, s, 0, CAP as u64));
            assert_eq!(shown.len(), CAP);
        }
        // Full: one more stranger gets nothing kept, not even a conversation.
        let late = user();
        let (shown, _) = inbox.take(&texts(&inbox, &late, 0, 3));
        assert!(shown.is_empty());
        assert_eq!(inbox.state(&late), None);
        // Declining a request makes room (its messages go with it).
        inbox
            .db
            .set_conversation_state(&senders[0].session_id(), ConversationState::Declined, T)
            .unwrap();
        inbox
            .db
            .clear_conversation(&senders[0].session_id())
            .unwrap();
        let (shown, _) = inbox.take(&texts(&inbox, &late, 10, 1));
        assert_eq!(shown.len(), 1);
        assert_eq!(inbox.state(&late), Some(ConversationState::Requested));
    }

    #[test]
    fn a_blocked_senders_messages_are_dropped_and_deleted_from_our_swarm() {
        let mut inbox = Inbox::new();
        let mallory = user();
        inbox.set_state(&mallory, ConversationState::Blocked);
        let spam = item(&inbox.me, &mallory, &text("buy now", T));
        let (shown, follow) = inbox.take(std::slice::from_ref(&spam));
        assert!(shown.is_empty());
        assert_eq!(follow.delete, [spam.hash]);
        assert!(inbox.db.messages(&mallory.session_id()).unwrap().is_empty());
        assert!(inbox.db.is_seen(&spam.hash).unwrap());
    }

    #[test]
    fn the_author_can_unsend_and_a_forger_cannot() {
        let mut inbox = Inbox::new();
        let (alice, mallory) = (user(), user());
        let hi = item(&inbox.me, &alice, &text("hi", T));
        inbox.take(std::slice::from_ref(&hi));

        // Mallory claims Alice's message: nothing is deleted, and no conversation appears.
        let forged = item(&inbox.me, &mallory, &unsend(&alice.session_id(), T, T + 1));
        let (_, follow) = inbox.take(&[forged]);
        assert!(follow.delete.is_empty());
        assert!(inbox.db.message(&hi.hash).unwrap().is_some());
        assert_eq!(inbox.state(&mallory), None);

        // Alice's own request deletes it, here and (with the request) in our swarm.
        let real = item(&inbox.me, &alice, &unsend(&alice.session_id(), T, T + 2));
        let (_, follow) = inbox.take(std::slice::from_ref(&real));
        assert_eq!(follow.delete, [hi.hash, real.hash]);
        assert!(inbox.db.message(&hi.hash).unwrap().is_none());
        assert!(inbox.db.is_seen(&hi.hash).unwrap(), "not shown again");
    }

    #[test]
    fn a_message_unsent_in_the_same_batch_is_never_shown_and_we_may_unsend_our_own() {
        let mut inbox = Inbox::new();
        let alice = user();
        let oops = item(&inbox.me, &alice, &text("oops", T));
        let undo = item(&inbox.me, &alice, &unsend(&alice.session_id(), T, T + 1));
        let (shown, _) = inbox.take(&[oops, undo]);
        assert!(shown.is_empty());

        // Our other device unsends a message we sent to Alice from here.
        inbox.sent(&alice, 1);
        let ours = MessageHash::from_bytes([1; 32]);
        let undo = item(
            &inbox.me,
            &inbox.me,
            &unsend(&inbox.me.session_id(), T - 1000, T),
        );
        let (_, follow) = inbox.take(&[undo]);
        assert!(follow.delete.contains(&ours));
        assert!(inbox.db.message(&ours).unwrap().is_none());
    }

    #[test]
    fn disappearing_messages_get_their_expiry_after_send_or_after_read() {
        let mut inbox = Inbox::new();
        let alice = user();
        let kind = Some(ExpirationType::DeleteAfterSend);
        let sent = item(&inbox.me, &alice, &with_timer(text("a", T), kind, 30));
        let kind = Some(ExpirationType::DeleteAfterRead);
        let read = item(&inbox.me, &alice, &with_timer(text("b", T), kind, 60));
        let (shown, follow) = inbox.take(&[sent.clone(), read.clone()]);
        assert_eq!(shown.len(), 2);
        // After send: from the message's timestamp; nothing to tell the swarm (its TTL did).
        assert_eq!(inbox.db.expires(&sent.hash).unwrap(), Some(T + 30_000));
        // After read: read now, so from now, here and in our swarm.
        assert_eq!(inbox.db.expires(&read.hash).unwrap(), Some(NOW + 60_000));
        assert_eq!(follow.expire, [(read.hash, NOW + 60_000)]);
    }

    #[test]
    fn timer_updates_apply_to_conversations_we_have_not_to_strangers() {
        let mut inbox = Inbox::new();
        let (alice, stranger, bob) = (user(), user(), user());
        inbox.sent(&alice, 1);
        let kind = Some(ExpirationType::DeleteAfterSend);
        inbox.take(&[
            item(&inbox.me, &alice, &timer(kind, 30, None, T)),
            item(&inbox.me, &stranger, &timer(kind, 30, None, T)),
        ]);
        assert_eq!(
            inbox.db.disappearing(&alice.session_id()).unwrap(),
            Disappearing::AfterSend(30)
        );
        assert_eq!(
            inbox.state(&stranger),
            None,
            "a stranger makes no conversation"
        );
        // Our other device sets it for any conversation, even a new one.
        let kind = Some(ExpirationType::DeleteAfterRead);
        inbox.take(&[item(
            &inbox.me,
            &inbox.me,
            &timer(kind, 60, Some(bob.session_id()), T),
        )]);
        assert_eq!(
            inbox.db.disappearing(&bob.session_id()).unwrap(),
            Disappearing::AfterRead(60)
        );
    }

    #[test]
    fn receipts_move_our_messages_to_read_only_from_their_recipient() {
        let mut inbox = Inbox::new();
        let (bob, carol, mallory) = (user(), user(), user());
        inbox.sent(&bob, 1);
        inbox.sent(&carol, 2);
        let (ours_to_bob, ours_to_carol) = (
            MessageHash::from_bytes([1; 32]),
            MessageHash::from_bytes([2; 32]),
        );
        let state = |inbox: &Inbox, id| inbox.db.message(&id).unwrap().unwrap().state;
        // A stranger naming the same timestamp changes nothing, and makes no conversation.
        let (_, follow) = inbox.take(&[item(&inbox.me, &mallory, &receipt(1, &[T - 1000], T))]);
        assert!(follow.updates.is_empty());
        assert_eq!(inbox.state(&mallory), None);
        // Bob's receipt reads only our message to Bob.
        let (shown, follow) = inbox.take(&[item(&inbox.me, &bob, &receipt(1, &[T - 1000], T))]);
        assert!(shown.is_empty());
        assert_eq!(state(&inbox, ours_to_bob), MessageState::Read);
        assert_eq!(state(&inbox, ours_to_carol), MessageState::Stored(1));
        assert_eq!(
            follow.updates,
            [Update::Receipt {
                conversation: bob.session_id(),
                messages: vec![ours_to_bob],
                read: true
            }]
        );
        // A blocked contact's receipts count no more.
        inbox.set_state(&carol, ConversationState::Blocked);
        inbox.take(&[item(&inbox.me, &carol, &receipt(1, &[T - 1000], T + 1))]);
        assert_eq!(state(&inbox, ours_to_carol), MessageState::Stored(1));
    }

    #[test]
    fn typing_is_transient_expires_and_ends_with_their_message() {
        let mut inbox = Inbox::new();
        let (bob, stranger) = (user(), user());
        inbox.sent(&bob, 1);
        let (shown, follow) = inbox.take(&[
            item(&inbox.me, &bob, &typing(Some(0), T)),
            item(&inbox.me, &stranger, &typing(Some(0), T)),
            // Older than the typing TTL when it is taken in.
            item(&inbox.me, &bob, &typing(Some(0), NOW - TYPING_TTL_MS - 1)),
        ]);
        assert!(shown.is_empty());
        assert_eq!(follow.typing, [(bob.session_id(), Some(T + TYPING_TTL_MS))]);
        assert_eq!(
            inbox.db.messages(&bob.session_id()).unwrap().len(),
            1,
            "not stored"
        );
        let (_, follow) = inbox.take(&[item(&inbox.me, &bob, &typing(Some(1), T + 1))]);
        assert_eq!(follow.typing, [(bob.session_id(), None)]);
        let (_, follow) = inbox.take(&[item(&inbox.me, &bob, &text("done", T + 2))]);
        assert_eq!(follow.typing, [(bob.session_id(), None)]);
    }

    #[test]
    fn reactions_attach_to_the_named_message_of_that_conversation_only() {
        let mut inbox = Inbox::new();
        let (bob, mallory) = (user(), user());
        inbox.sent(&bob, 1);
        let ours = MessageHash::from_bytes([1; 32]);
        let me = inbox.me.session_id();
        let emoji = |inbox: &Inbox| -> Vec<(SessionId, String)> {
            let list = inbox.db.reactions(&ours).unwrap();
            list.into_iter().map(|r| (r.author, r.emoji)).collect()
        };
        inbox.take(&[
            item(&inbox.me, &bob, &reaction(T - 1000, &me, "👍", 0, None, T)),
            // No such message.
            item(
                &inbox.me,
                &bob,
                &reaction(T - 999, &me, "😮", 0, None, T + 1),
            ),
            // A stranger naming our message to Bob: not their conversation.
            item(
                &inbox.me,
                &mallory,
                &reaction(T - 1000, &me, "💩", 0, None, T + 2),
            ),
            // Our other device, in Bob's conversation.
            item(
                &inbox.me,
                &inbox.me,
                &reaction(T - 1000, &me, "🎉", 0, Some(&bob.session_id()), T + 3),
            ),
        ]);
        assert_eq!(
            emoji(&inbox),
            [(bob.session_id(), "👍".into()), (me, "🎉".into())]
        );
        assert_eq!(inbox.state(&mallory), None);
        let (_, follow) = inbox.take(&[item(
            &inbox.me,
            &bob,
            &reaction(T - 1000, &me, "👍", 1, None, T + 4),
        )]);
        assert_eq!(emoji(&inbox), [(me, "🎉".into())]);
        assert!(matches!(
            follow.updates.as_slice(),
            [Update::Reaction { removed: true, .. }]
        ));
    }

    #[test]
    fn a_reply_is_stored_with_its_quote() {
        let mut inbox = Inbox::new();
        let bob = user();
        inbox.sent(&bob, 1);
        let me = inbox.me.session_id().to_string();
        let answer = item(&inbox.me, &bob, &reply("yes", T - 1000, &me, None, T));
        let (shown, _) = inbox.take(std::slice::from_ref(&answer));
        assert_eq!(shown.len(), 1);
        let quote = inbox.db.quote(&answer.hash).unwrap().unwrap();
        assert_eq!(
            (quote.timestamp, quote.author, quote.text),
            (T - 1000, inbox.me.session_id(), None)
        );
    }
}
