//! What one item retrieved from our inbox is, decided from its bytes alone: no database,
//! clock or network, so every decision is unit-tested here.

use shallot_proto::attachment::pointer::resolve_profile_picture;
use shallot_proto::attachment::AttachmentPointer;
use shallot_proto::rpc::RetrievedMessage;
use shallot_proto::session::protos::{Content, DataMessage, ExpirationType};
use shallot_proto::session::unwrap_incoming;
use shallot_proto::{Identity, Namespace, SessionId};

use super::clean_display_name;
use super::feedback::{self, MessageRef};
use crate::db::{Direction, Disappearing, MessageState, PictureRef, StoredMessage, StoredQuote};
use shallot_proto::message_hash::MessageHash;

/// What one retrieved item turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A visible message to keep and show, with the disappearing setting it carries.
    Show(StoredMessage, Disappearing),
    /// The sender approved our message request.
    Approved(SessionId),
    /// The author asks everyone to delete their message with this timestamp.
    Unsend { author: SessionId, timestamp: u64 },
    /// The other party (or we, from another device) changed the conversation's timer.
    Timer {
        conversation: SessionId,
        setting: Disappearing,
        from_us: bool,
    },
    /// The other party read (or received) our messages sent at these timestamps.
    Receipt {
        from: SessionId,
        read: bool,
        timestamps: Vec<u64>,
    },
    /// The other party started or stopped typing, at `at` (ms).
    Typing {
        from: SessionId,
        started: bool,
        at: u64,
    },
    /// `reactor` added (or removed) `emoji` on a message of `conversation`.
    Reaction {
        conversation: SessionId,
        reactor: SessionId,
        target: MessageRef,
        emoji: String,
        remove: bool,
    },
    /// A group invite or promotion, checked ([`crate::groups::invite`]).
    Group(crate::groups::invite::GroupNote),
    /// Nothing to show or do; the reason is logged (with the hash only).
    Drop(String),
}

/// A [`Verdict`] and the display name the sender's profile carried (others' messages only).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Judged {
    pub verdict: Verdict,
    pub name: Option<String>,
    /// The profile picture the sender's profile carried (others' messages only): `Some(None)`
    /// when the profile had none (removed), with the time it dates from (seconds).
    pub picture: Option<(Option<PictureRef>, u64)>,
    /// For a shown reply: the message it quotes.
    pub quote: Option<StoredQuote>,
    /// The attachment pointers of a message to show (unchecked: they are checked when
    /// downloaded), at most [`MAX_ATTACHMENTS`].
    pub attachments: Vec<AttachmentPointer>,
}

/// Most attachments kept from one message (Session clients send at most 32).
pub const MAX_ATTACHMENTS: usize = 32;

impl From<Verdict> for Judged {
    fn from(verdict: Verdict) -> Self {
        Self {
            verdict,
            name: None,
            picture: None,
            quote: None,
            attachments: Vec::new(),
        }
    }
}

/// Judges `item`, retrieved from `me`'s inbox: its hash must name its data (a node cannot pass
/// off other bytes under a known hash), it must open for `me`, and its content decides.
pub(super) fn judge(me: &Identity, item: &RetrievedMessage) -> Judged {
    let own = me.session_id();
    if MessageHash::compute(&own.account(), Namespace::DEFAULT, &item.data) != item.hash {
        return Verdict::Drop("hash does not match the data".into()).into();
    }
    let incoming = match unwrap_incoming(me, &item.data) {
        Ok(m) => m,
        Err(e) => return Verdict::Drop(format!("cannot open: {e}")).into(),
    };
    let name = (incoming.sender != own)
        .then(|| profile_name(&incoming.content))
        .flatten();
    let picture = (incoming.sender != own)
        .then(|| profile_picture(&incoming.content, incoming.envelope_timestamp))
        .flatten();
    if let Some(update) = incoming
        .content
        .data_message
        .as_ref()
        .and_then(|d| d.group_update_message.as_ref())
    {
        let checked = crate::groups::invite::check_update(
            me,
            incoming.sender,
            incoming.envelope_timestamp,
            update,
        );
        let verdict = checked.map_or_else(Verdict::Drop, Verdict::Group);
        return Judged {
            verdict,
            name,
            picture,
            quote: None,
            attachments: Vec::new(),
        };
    }
    let quote = incoming
        .content
        .data_message
        .as_ref()
        .and_then(feedback::quote_of);
    let mut attachments = incoming
        .content
        .data_message
        .as_ref()
        .map(|d| d.attachments.clone())
        .unwrap_or_default();
    attachments.truncate(MAX_ATTACHMENTS);
    let verdict = classify(
        &own,
        item.hash,
        incoming.sender,
        incoming.envelope_timestamp,
        incoming.content,
    );
    let quote = quote.filter(|_| matches!(verdict, Verdict::Show(..)));
    if !matches!(verdict, Verdict::Show(..)) {
        attachments.clear();
    }
    Judged {
        verdict,
        name,
        picture,
        quote,
        attachments,
    }
}

/// The verdict on an opened message from `sender` to `me`.
fn classify(
    me: &SessionId,
    hash: MessageHash,
    sender: SessionId,
    timestamp: u64,
    content: Content,
) -> Verdict {
    let from_us = sender == *me;
    if let Some(unsend) = &content.unsend_request {
        return match (unsend.timestamp, unsend.author.as_deref().map(str::parse)) {
            // Only the author may unsend (us included, from another device).
            (Some(timestamp), Some(Ok(author))) if author == sender => {
                Verdict::Unsend { author, timestamp }
            }
            _ => Verdict::Drop("unsend request not from the author".into()),
        };
    }
    if let Some(verdict) = feedback::classify(me, sender, timestamp, &content) {
        return verdict;
    }
    if let Some(response) = &content.message_request_response {
        return if response.is_approved == Some(true) && !from_us {
            Verdict::Approved(sender)
        } else {
            Verdict::Drop("message request response not approving".into())
        };
    }
    let disappearing = content_disappearing(&content);
    if let Some(update) = content
        .data_message
        .as_ref()
        .filter(|d| d.flags.unwrap_or(0) & DataMessage::FLAG_EXPIRATION_TIMER_UPDATE != 0)
    {
        let conversation = if from_us {
            match update.sync_target.as_deref().map(str::parse::<SessionId>) {
                Some(Ok(target)) => target,
                _ => return Verdict::Drop("timer update without a valid syncTarget".into()),
            }
        } else {
            sender
        };
        return Verdict::Timer {
            conversation,
            setting: disappearing,
            from_us,
        };
    }
    let Some(data_message) = content.data_message else {
        return Verdict::Drop("not a visible message".into());
    };
    // A file may come without text.
    let body = match data_message.body {
        Some(body) => body,
        None if !data_message.attachments.is_empty() => String::new(),
        None => return Verdict::Drop("no text body".into()),
    };
    let (conversation, direction) = if from_us {
        match data_message
            .sync_target
            .as_deref()
            .map(str::parse::<SessionId>)
        {
            Some(Ok(target)) => (target, Direction::Outgoing),
            Some(Err(_)) => return Verdict::Drop("invalid syncTarget".into()),
            // Note to self.
            None => (*me, Direction::Outgoing),
        }
    } else {
        (sender, Direction::Incoming)
    };
    Verdict::Show(
        StoredMessage {
            id: hash,
            conversation,
            direction,
            sender,
            timestamp,
            body,
            state: MessageState::Received,
        },
        disappearing,
    )
}

/// The disappearing setting a received `Content` carries.
fn content_disappearing(content: &Content) -> Disappearing {
    let secs = content.expiration_timer.unwrap_or(0);
    match content.expiration_type.map(ExpirationType::try_from) {
        _ if secs == 0 => Disappearing::Off,
        Some(Ok(ExpirationType::DeleteAfterRead)) => Disappearing::AfterRead(secs),
        Some(Ok(ExpirationType::DeleteAfterSend)) => Disappearing::AfterSend(secs),
        _ => Disappearing::Off,
    }
}

/// The display name a received `Content` carries (a visible message's or an approval's
/// profile), cleaned for showing.
fn profile_name(content: &Content) -> Option<String> {
    content
        .data_message
        .as_ref()
        .and_then(|d| d.profile.as_ref())
        .or_else(|| {
            content
                .message_request_response
                .as_ref()
                .and_then(|r| r.profile.as_ref())
        })
        .and_then(|p| p.display_name.as_deref())
        .and_then(clean_display_name)
}

/// The profile picture a received `Content` carries: `None` without a profile or with an
/// unusable reference (bad URL or key: nothing changes), `Some(None)` for a profile without a
/// picture (removed), else the reference, with the time it dates from (the profile's
/// `lastProfileUpdateSeconds`, else the message's own time).
pub(crate) fn profile_picture(
    content: &Content,
    timestamp_ms: u64,
) -> Option<(Option<PictureRef>, u64)> {
    let (profile, key) = if let Some(d) = content.data_message.as_ref() {
        (d.profile.as_ref()?, d.profile_key.as_deref())
    } else {
        let r = content.message_request_response.as_ref()?;
        (r.profile.as_ref()?, r.profile_key.as_deref())
    };
    let updated = profile
        .last_profile_update_seconds
        .unwrap_or(timestamp_ms / 1000);
    let url = profile.profile_picture.as_deref().unwrap_or_default();
    if url.is_empty() {
        return Some((None, updated));
    }
    let key = key?;
    if url.len() > MAX_PICTURE_URL
        || resolve_profile_picture(url, key).is_err()
        || url.chars().any(char::is_control)
    {
        return None;
    }
    let picture = PictureRef {
        url: url.to_owned(),
        key: key.to_vec(),
    };
    Some((Some(picture), updated))
}

/// Longest profile picture URL kept (libsession's `profile_pic` URL limit).
pub const MAX_PICTURE_URL: usize = 223;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::{approval, item, named, text, timer, unsend, user, with_timer, T};
    use super::*;

    #[test]
    fn a_message_from_someone_else_is_shown_as_incoming_in_their_conversation() {
        let (me, alice) = (user(), user());
        let it = item(&me, &alice, &text("hi", T));
        let judged = judge(&me, &it);
        let expected = StoredMessage {
            id: it.hash,
            conversation: alice.session_id(),
            direction: Direction::Incoming,
            sender: alice.session_id(),
            timestamp: T,
            body: "hi".into(),
            state: MessageState::Received,
        };
        assert_eq!(judged.verdict, Verdict::Show(expected, Disappearing::Off));
        assert_eq!(judged.name, None, "no profile, no name");
    }

    #[test]
    fn the_senders_picture_is_taken_with_its_key_and_bad_references_change_nothing() {
        let (me, alice) = (user(), user());
        let url = "http://files.example/file/abc#p=".to_owned() + &"11".repeat(32);
        let with = |url: Option<&str>, key: Option<Vec<u8>>, at: Option<u64>| {
            let mut content = named(text("hi", T), "Alice");
            let data = content.data_message.as_mut().unwrap();
            let profile = data.profile.as_mut().unwrap();
            profile.profile_picture = url.map(str::to_owned);
            profile.last_profile_update_seconds = at;
            data.profile_key = key;
            judge(&me, &item(&me, &alice, &content)).picture
        };
        // The Ed25519 key in `p=` must be a valid point: take a real one.
        let url = url.replace(&"11".repeat(32), &alice.ed25519_public().to_hex());
        let picture = PictureRef {
            url: url.clone(),
            key: vec![9; 32],
        };
        assert_eq!(
            with(Some(&url), Some(vec![9; 32]), Some(77)),
            Some((Some(picture.clone()), 77))
        );
        // Without `lastProfileUpdateSeconds`: the message's time.
        assert_eq!(
            with(Some(&url), Some(vec![9; 32]), None),
            Some((Some(picture), T / 1000))
        );
        // A profile without a picture: removed.
        assert_eq!(with(None, None, None), Some((None, T / 1000)));
        // No key, a short key, a bad URL or one too long: nothing changes.
        assert_eq!(with(Some(&url), None, None), None);
        assert_eq!(with(Some(&url), Some(vec![9; 31]), None), None);
        assert_eq!(with(Some("ftp://x/file/a"), Some(vec![9; 32]), None), None);
        let long = format!("http://files.example/file/{}", "a".repeat(300));
        assert_eq!(with(Some(&long), Some(vec![9; 32]), None), None);
        // No profile at all, or our own message: nothing.
        assert_eq!(judge(&me, &item(&me, &alice, &text("hi", T))).picture, None);
        let mut own = named(text("hi", T), "Me");
        own.data_message.as_mut().unwrap().sync_target = Some(alice.session_id().to_string());
        assert_eq!(judge(&me, &item(&me, &me, &own)).picture, None);
    }

    #[test]
    fn the_senders_display_name_is_taken_cleaned_and_only_from_others() {
        let (me, alice) = (user(), user());
        let judged = judge(
            &me,
            &item(&me, &alice, &named(text("hi", T), " Alice\u{7} ")),
        );
        assert_eq!(judged.name.as_deref(), Some("Alice"));
        // An approval carries the approver's name too.
        let judged = judge(&me, &item(&me, &alice, &named(approval(true, T), "Al")));
        assert_eq!(judged.name.as_deref(), Some("Al"));
        // A name too long or empty once cleaned is not taken.
        let long = named(text("hi", T), &"x".repeat(101));
        assert_eq!(judge(&me, &item(&me, &alice, &long)).name, None);
        assert_eq!(
            judge(&me, &item(&me, &alice, &named(text("hi", T), "\u{7} "))).name,
            None
        );
        // Our own sync copies do not rename anyone.
        let mut sync = named(text("hi", T), "Me");
        sync.data_message.as_mut().unwrap().sync_target = Some(alice.session_id().to_string());
        assert_eq!(judge(&me, &item(&me, &me, &sync)).name, None);
    }

    #[test]
    fn our_sync_copy_is_outgoing_in_its_target_conversation_and_without_target_a_note_to_self() {
        let (me, bob) = (user(), user());
        let mut sync = text("to bob", T);
        sync.data_message.as_mut().unwrap().sync_target = Some(bob.session_id().to_string());
        let Verdict::Show(m, _) = judge(&me, &item(&me, &me, &sync)).verdict else {
            panic!("a sync copy is shown");
        };
        assert_eq!(
            (m.conversation, m.direction, m.sender),
            (bob.session_id(), Direction::Outgoing, me.session_id())
        );
        let Verdict::Show(m, _) = judge(&me, &item(&me, &me, &text("memo", T))).verdict else {
            panic!("a note to self is shown");
        };
        assert_eq!(m.conversation, me.session_id());
        assert_eq!(m.direction, Direction::Outgoing);
        let mut bad = text("?", T);
        bad.data_message.as_mut().unwrap().sync_target = Some("05nothex".into());
        assert!(matches!(
            judge(&me, &item(&me, &me, &bad)).verdict,
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn forged_hashes_foreign_data_and_invisible_content_are_dropped() {
        let (me, alice, eve) = (user(), user(), user());
        // A node passing off other bytes under a known hash.
        let mut swapped = item(&me, &alice, &text("hi", T));
        swapped.hash = item(&me, &alice, &text("other", T)).hash;
        assert_eq!(
            judge(&me, &swapped).verdict,
            Verdict::Drop("hash does not match the data".into())
        );
        // Bytes that are not an envelope, hashed correctly.
        let mut junk = item(&me, &alice, &text("hi", T));
        junk.data = b"not a message".to_vec();
        junk.hash =
            MessageHash::compute(&me.session_id().account(), Namespace::DEFAULT, &junk.data);
        assert!(matches!(judge(&me, &junk).verdict, Verdict::Drop(_)));
        // A message for someone else, stored (hash and all) in our inbox.
        let mut theirs = item(&eve, &alice, &text("hi", T));
        theirs.hash =
            MessageHash::compute(&me.session_id().account(), Namespace::DEFAULT, &theirs.data);
        assert!(matches!(judge(&me, &theirs).verdict, Verdict::Drop(_)));
        // No text: neither shown nor acted on.
        let empty = Content {
            data_message: Some(DataMessage::default()),
            sig_timestamp: Some(T),
            ..Content::default()
        };
        assert_eq!(
            judge(&me, &item(&me, &alice, &empty)).verdict,
            Verdict::Drop("no text body".into())
        );
        let nothing = Content {
            sig_timestamp: Some(T),
            ..Content::default()
        };
        assert_eq!(
            judge(&me, &item(&me, &alice, &nothing)).verdict,
            Verdict::Drop("not a visible message".into())
        );
    }

    #[test]
    fn only_the_author_may_unsend() {
        let (me, alice, mallory) = (user(), user(), user());
        let own = unsend(&alice.session_id(), 42, T);
        assert_eq!(
            judge(&me, &item(&me, &alice, &own)).verdict,
            Verdict::Unsend {
                author: alice.session_id(),
                timestamp: 42
            }
        );
        // We may unsend our own message from another device.
        let ours = unsend(&me.session_id(), 7, T);
        assert_eq!(
            judge(&me, &item(&me, &me, &ours)).verdict,
            Verdict::Unsend {
                author: me.session_id(),
                timestamp: 7
            }
        );
        // Mallory naming Alice (or us) as the author is forged.
        for victim in [alice.session_id(), me.session_id()] {
            let forged = unsend(&victim, 42, T);
            assert_eq!(
                judge(&me, &item(&me, &mallory, &forged)).verdict,
                Verdict::Drop("unsend request not from the author".into())
            );
        }
        let mut no_timestamp = unsend(&alice.session_id(), 42, T);
        no_timestamp.unsend_request.as_mut().unwrap().timestamp = None;
        assert!(matches!(
            judge(&me, &item(&me, &alice, &no_timestamp)).verdict,
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn only_an_approving_response_from_someone_else_approves() {
        let (me, alice) = (user(), user());
        assert_eq!(
            judge(&me, &item(&me, &alice, &approval(true, T))).verdict,
            Verdict::Approved(alice.session_id())
        );
        assert!(matches!(
            judge(&me, &item(&me, &alice, &approval(false, T))).verdict,
            Verdict::Drop(_)
        ));
        assert!(matches!(
            judge(&me, &item(&me, &me, &approval(true, T))).verdict,
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn messages_carry_their_disappearing_setting() {
        let (me, alice) = (user(), user());
        let cases = [
            (
                Some(ExpirationType::DeleteAfterSend),
                30,
                Disappearing::AfterSend(30),
            ),
            (
                Some(ExpirationType::DeleteAfterRead),
                60,
                Disappearing::AfterRead(60),
            ),
            (Some(ExpirationType::DeleteAfterRead), 0, Disappearing::Off),
            (None, 30, Disappearing::Off),
            (Some(ExpirationType::Unknown), 30, Disappearing::Off),
        ];
        for (kind, secs, expected) in cases {
            let content = with_timer(text("tick", T), kind, secs);
            let Verdict::Show(_, setting) = judge(&me, &item(&me, &alice, &content)).verdict else {
                panic!("shown");
            };
            assert_eq!(setting, expected, "{kind:?} {secs}");
        }
    }

    #[test]
    fn timer_updates_name_their_conversation() {
        let (me, alice, bob) = (user(), user(), user());
        let theirs = timer(Some(ExpirationType::DeleteAfterSend), 30, None, T);
        assert_eq!(
            judge(&me, &item(&me, &alice, &theirs)).verdict,
            Verdict::Timer {
                conversation: alice.session_id(),
                setting: Disappearing::AfterSend(30),
                from_us: false
            }
        );
        // From our other device, for the conversation its syncTarget names.
        let ours = timer(None, 0, Some(bob.session_id()), T);
        assert_eq!(
            judge(&me, &item(&me, &me, &ours)).verdict,
            Verdict::Timer {
                conversation: bob.session_id(),
                setting: Disappearing::Off,
                from_us: true
            }
        );
        let untargeted = timer(None, 0, None, T);
        assert!(matches!(
            judge(&me, &item(&me, &me, &untargeted)).verdict,
            Verdict::Drop(_)
        ));
    }
}
