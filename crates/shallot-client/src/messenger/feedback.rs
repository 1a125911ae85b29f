//! What receipts, typing indicators, reactions and quotes in a received `Content` are, decided
//! from the content alone (part of [`super::judge`]; no database, clock or network).
//!
//! Session names a message by its sent timestamp (receipts, from the other party, about our
//! messages) or by its sent timestamp and author (reactions and quotes).

use shallot_proto::session::protos::{
    Content, DataMessage, ReactionAction, ReceiptType, TypingAction,
};
use shallot_proto::SessionId;

use super::judge::Verdict;
use crate::db::StoredQuote;

/// How long a typing indicator lasts without a refresh: Session's typing TTL.
pub const TYPING_TTL_MS: u64 = 20_000;

/// Most timestamps of one receipt that are acted on (more are ignored).
pub const MAX_RECEIPT_TIMESTAMPS: usize = 256;

/// Longest emoji accepted, in bytes (a four-person family with skin tones is 41).
pub const MAX_EMOJI_BYTES: usize = 64;

/// A message as a reaction or quote names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef {
    /// Its sent timestamp (ms).
    pub timestamp: u64,
    /// Its author.
    pub author: SessionId,
}

/// Something others said about messages, recorded by a receive: [`super::Messenger::take_updates`]
/// hands them to a screen that shows the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// The other party of `conversation` read (or, older clients, received) these messages of
    /// ours.
    Receipt {
        /// The conversation.
        conversation: SessionId,
        /// Our messages that changed state.
        messages: Vec<shallot_proto::message_hash::MessageHash>,
        /// Read, or only delivered.
        read: bool,
    },
    /// A reaction was added or removed.
    Reaction {
        /// The conversation (the other party); in a group, the reacted message's author.
        conversation: SessionId,
        /// The group, for a reaction to a group message.
        group: Option<shallot_proto::group::GroupId>,
        /// The message reacted to.
        message: shallot_proto::message_hash::MessageHash,
        /// Who reacted.
        author: SessionId,
        /// The emoji.
        emoji: String,
        /// Whether it was taken back.
        removed: bool,
    },
}

/// An emoji as it may be kept and shown: trimmed, no control characters, 1 to
/// [`MAX_EMOJI_BYTES`] bytes.
pub fn clean_emoji(emoji: &str) -> Option<String> {
    let emoji = emoji.trim();
    (!emoji.is_empty() && emoji.len() <= MAX_EMOJI_BYTES && !emoji.chars().any(char::is_control))
        .then(|| emoji.to_owned())
}

/// The verdict on a receipt, typing indicator or reaction from `sender` (`me` when it is our
/// own sync copy), sent at `timestamp`; `None` when `content` is none of them.
pub(super) fn classify(
    me: &SessionId,
    sender: SessionId,
    timestamp: u64,
    content: &Content,
) -> Option<Verdict> {
    let from_us = sender == *me;
    if let Some(receipt) = &content.receipt_message {
        let read = match receipt.kind.map(ReceiptType::try_from) {
            Some(Ok(ReceiptType::Read)) => true,
            Some(Ok(ReceiptType::Delivery)) => false,
            _ => return Some(Verdict::Drop("receipt of unknown type".into())),
        };
        if from_us {
            return Some(Verdict::Drop("receipt from ourselves".into()));
        }
        let mut timestamps = receipt.timestamps.clone();
        timestamps.sort_unstable();
        timestamps.dedup();
        timestamps.truncate(MAX_RECEIPT_TIMESTAMPS);
        if timestamps.is_empty() {
            return Some(Verdict::Drop("receipt naming no message".into()));
        }
        return Some(Verdict::Receipt {
            from: sender,
            read,
            timestamps,
        });
    }
    if let Some(typing) = &content.typing_message {
        let started = match typing.action.map(TypingAction::try_from) {
            Some(Ok(TypingAction::Started)) => true,
            Some(Ok(TypingAction::Stopped)) => false,
            _ => return Some(Verdict::Drop("typing indicator without an action".into())),
        };
        if from_us {
            return Some(Verdict::Drop("typing indicator from ourselves".into()));
        }
        return Some(Verdict::Typing {
            from: sender,
            started,
            at: timestamp,
        });
    }
    let data = content.data_message.as_ref()?;
    let reaction = data.reaction.as_ref()?;
    Some(reaction_verdict(me, sender, data, reaction))
}

/// What a reaction says: the message it names, the emoji, and whether it is taken back; or
/// why it is dropped. The same in one-to-one conversations and groups.
pub(crate) fn read_reaction(
    reaction: &shallot_proto::session::protos::Reaction,
) -> Result<(MessageRef, String, bool), &'static str> {
    let remove = match reaction.action.map(ReactionAction::try_from) {
        Some(Ok(ReactionAction::React)) => false,
        Some(Ok(ReactionAction::Remove)) => true,
        _ => return Err("reaction without an action"),
    };
    let (Some(timestamp), Some(Ok(author))) = (
        reaction.id,
        reaction.author.as_deref().map(str::parse::<SessionId>),
    ) else {
        return Err("reaction without a valid message reference");
    };
    let Some(emoji) = reaction.emoji.as_deref().and_then(clean_emoji) else {
        return Err("reaction without a valid emoji");
    };
    Ok((MessageRef { timestamp, author }, emoji, remove))
}

fn reaction_verdict(
    me: &SessionId,
    sender: SessionId,
    data: &DataMessage,
    reaction: &shallot_proto::session::protos::Reaction,
) -> Verdict {
    let (target, emoji, remove) = match read_reaction(reaction) {
        Ok(read) => read,
        Err(why) => return Verdict::Drop(why.into()),
    };
    let conversation = if sender == *me {
        match data.sync_target.as_deref().map(str::parse::<SessionId>) {
            Some(Ok(target)) => target,
            Some(Err(_)) => return Verdict::Drop("invalid syncTarget".into()),
            None => *me,
        }
    } else {
        sender
    };
    // In a one-to-one conversation every message is ours or theirs.
    if target.author != *me && target.author != conversation {
        return Verdict::Drop("reaction to a message outside the conversation".into());
    }
    Verdict::Reaction {
        conversation,
        reactor: sender,
        target,
        emoji,
        remove,
    }
}

/// The message a visible `data` message quotes, if it is a valid reply (a quote without a
/// timestamp or a valid author is ignored; the reply still shows).
pub(crate) fn quote_of(data: &DataMessage) -> Option<StoredQuote> {
    let quote = data.quote.as_ref()?;
    let author = quote.author.as_deref()?.parse().ok()?;
    Some(StoredQuote {
        timestamp: quote.id?,
        author,
        // Cut to size when stored.
        text: quote.text.clone(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::judge::judge;
    use super::super::testing::{item, reaction, receipt, reply, typing, user, T};
    use super::*;

    #[test]
    fn receipts_name_our_messages_by_timestamp_bounded_and_only_from_others() {
        let (me, bob) = (user(), user());
        let it = item(
            &me,
            &bob,
            &receipt(ReceiptType::Read as i32, &[T + 2, T, T], T + 9),
        );
        assert_eq!(
            judge(&me, &it).verdict,
            Verdict::Receipt {
                from: bob.session_id(),
                read: true,
                timestamps: vec![T, T + 2]
            }
        );
        let delivered = item(&me, &bob, &receipt(0, &[T], T + 9));
        assert!(matches!(
            judge(&me, &delivered).verdict,
            Verdict::Receipt { read: false, .. }
        ));
        let many: Vec<u64> = (0..10_000).collect();
        let Verdict::Receipt { timestamps, .. } =
            judge(&me, &item(&me, &bob, &receipt(1, &many, T))).verdict
        else {
            panic!("a receipt");
        };
        assert_eq!(timestamps.len(), MAX_RECEIPT_TIMESTAMPS);
        for bad in [
            item(&me, &bob, &receipt(7, &[T], T)),
            item(&me, &bob, &receipt(1, &[], T)),
            item(&me, &me, &receipt(1, &[T], T)),
        ] {
            assert!(matches!(judge(&me, &bad).verdict, Verdict::Drop(_)));
        }
    }

    #[test]
    fn typing_indicators_carry_their_time_and_action() {
        let (me, bob) = (user(), user());
        assert_eq!(
            judge(&me, &item(&me, &bob, &typing(Some(0), T))).verdict,
            Verdict::Typing {
                from: bob.session_id(),
                started: true,
                at: T
            }
        );
        assert!(matches!(
            judge(&me, &item(&me, &bob, &typing(Some(1), T))).verdict,
            Verdict::Typing { started: false, .. }
        ));
        for bad in [
            item(&me, &bob, &typing(None, T)),
            item(&me, &bob, &typing(Some(5), T)),
            item(&me, &me, &typing(Some(0), T)),
        ] {
            assert!(matches!(judge(&me, &bad).verdict, Verdict::Drop(_)));
        }
    }

    #[test]
    fn reactions_name_a_message_of_the_conversation_by_timestamp_and_author() {
        let (me, bob, carol) = (user(), user(), user());
        let (m, b) = (me.session_id(), bob.session_id());
        let theirs = reaction(T - 5, &m, " 👍 ", 0, None, T);
        assert_eq!(
            judge(&me, &item(&me, &bob, &theirs)).verdict,
            Verdict::Reaction {
                conversation: b,
                reactor: b,
                target: MessageRef {
                    timestamp: T - 5,
                    author: m
                },
                emoji: "👍".into(),
                remove: false
            }
        );
        // Bob reacting to his own message; removing.
        let own = reaction(T - 5, &b, "👍", 1, None, T);
        assert!(matches!(
            judge(&me, &item(&me, &bob, &own)).verdict,
            Verdict::Reaction { remove: true, .. }
        ));
        // Our other device, for its syncTarget's conversation.
        let sync = reaction(T - 5, &b, "🎉", 0, Some(&b), T);
        assert!(matches!(
            judge(&me, &item(&me, &me, &sync)).verdict,
            Verdict::Reaction { conversation, reactor, .. } if conversation == b && reactor == m
        ));
        let c = carol.session_id();
        for bad in [
            // A message of a third party is not in this conversation.
            reaction(T - 5, &c, "👍", 0, None, T),
            reaction(T - 5, &m, "", 0, None, T),
            reaction(T - 5, &m, "\u{7}", 0, None, T),
            reaction(T - 5, &m, &"👍".repeat(17), 0, None, T),
            reaction(T - 5, &m, "👍", 9, None, T),
        ] {
            assert!(matches!(
                judge(&me, &item(&me, &bob, &bad)).verdict,
                Verdict::Drop(_)
            ));
        }
    }

    #[test]
    fn a_reply_is_shown_with_the_message_it_quotes() {
        let (me, bob) = (user(), user());
        let m = me.session_id();
        let judged = judge(
            &me,
            &item(
                &me,
                &bob,
                &reply("sure", T - 5, &m.to_string(), Some("lunch?"), T),
            ),
        );
        assert!(matches!(judged.verdict, Verdict::Show(..)));
        assert_eq!(
            judged.quote,
            Some(StoredQuote {
                timestamp: T - 5,
                author: m,
                text: Some("lunch?".into())
            })
        );
        // A quote naming no valid author is ignored; the reply still shows.
        let judged = judge(
            &me,
            &item(&me, &bob, &reply("sure", T - 5, "05zz", None, T)),
        );
        assert!(matches!(judged.verdict, Verdict::Show(..)));
        assert_eq!(judged.quote, None);
    }
}
