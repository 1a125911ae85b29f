//! Group messages that arrive in our own inbox over the 1:1 protocol (groups spec §5.4, §7.2,
//! §7.7): invitations, checked against the group's signature and our own key before anything
//! is kept, and promotions, which carry the group seed.

use shallot_proto::group::update::GroupUpdateMessage;
use shallot_proto::group::{AdminText, AuthData, GroupAdmin, GroupId};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::subaccount::SubaccountFlags;
use shallot_proto::{Identity, SessionId};

use super::state::Hex;
use super::{Group, GroupRecord, GroupStatus};
use crate::db::{ConversationState, Db, DbError, Direction};
use crate::messenger::{clean_display_name, ReceivedMessage};

/// A checked group message from our inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupNote {
    /// `inviter` invites us to `group`, with a credential that verifies for us.
    Invite {
        /// The group.
        group: GroupId,
        /// Its name as the invite gives it.
        name: String,
        /// Our `auth_data` for the group swarm.
        auth_data: Vec<u8>,
        /// Who sent the invite.
        inviter: SessionId,
        /// When (the envelope timestamp, ms).
        timestamp: u64,
    },
    /// `from` made us an admin of `group`: here is its seed.
    Promote {
        /// The group (derived from the seed).
        group: GroupId,
        /// The group seed.
        seed: [u8; 32],
        /// The sender.
        from: SessionId,
    },
}

/// Checks a group update that `sender` sent to `me` at `timestamp` (the envelope's): an invite
/// must carry a credential the group signed for our key and the group's signature over
/// `"INVITE" ‖ our Session ID ‖ timestamp`; a promotion a 32-byte seed. Anything else (or
/// anything from ourselves) is refused with the reason.
pub fn check_update(
    me: &Identity,
    sender: SessionId,
    timestamp: u64,
    update: &GroupUpdateMessage,
) -> Result<GroupNote, String> {
    if sender == me.session_id() {
        return Err("group update from ourselves".into());
    }
    if let Some(invite) = &update.invite_message {
        let group: GroupId = invite
            .group_session_id
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| "invite without a valid group ID".to_owned())?;
        let auth = invite
            .member_auth_data
            .as_deref()
            .ok_or("invite without auth data")
            .and_then(|a| AuthData::from_bytes(a).map_err(|_| "invite auth data malformed"))?;
        auth.verify(&group, me, SubaccountFlags::READ)
            .map_err(|e| format!("invite credential refused: {e}"))?;
        let signed = AdminText::Invite {
            invitee: &me.session_id(),
            timestamp_ms: timestamp,
        }
        .verify(
            &group,
            invite.admin_signature.as_deref().unwrap_or_default(),
        );
        if !signed {
            return Err("invite not signed by the group".into());
        }
        let name = invite
            .name
            .as_deref()
            .and_then(clean_display_name)
            .unwrap_or_default();
        return Ok(GroupNote::Invite {
            group,
            name,
            auth_data: auth.as_bytes().to_vec(),
            inviter: sender,
            timestamp,
        });
    }
    if let Some(promote) = &update.promote_message {
        let seed = promote
            .group_identity_seed
            .as_deref()
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or("promotion without a 32-byte seed")?;
        return Ok(GroupNote::Promote {
            group: GroupAdmin::from_seed(seed).id(),
            seed,
            from: sender,
        });
    }
    Err("group update that does not belong in the inbox".into())
}

/// Records a checked note that arrived as item `hash`. An invite from someone
/// blocked is dropped; from an accepted contact it joins at once; from anyone else it waits as
/// a request (`group accept`). Re-invites revive a group we were removed from, never a
/// destroyed one. A promotion is taken only for a group we know. Returns the invite to show,
/// and whether our groups changed (for the UserGroups config).
pub(crate) fn record_note(
    db: &Db,
    note: GroupNote,
    hash: MessageHash,
    now_ms: u64,
) -> Result<(Option<ReceivedMessage>, bool), DbError> {
    match note {
        GroupNote::Invite {
            group,
            name,
            auth_data,
            inviter,
            timestamp,
        } => {
            let contact = db.conversation_state(&inviter)?;
            if contact == Some(ConversationState::Blocked) {
                return Ok((None, false));
            }
            let existing = db.group(&group)?;
            if let Some(g) = &existing {
                if matches!(
                    g.record.status,
                    GroupStatus::Joined | GroupStatus::Destroyed
                ) && (g.can_access() || g.record.status == GroupStatus::Destroyed)
                {
                    return Ok((None, false));
                }
            }
            let status = if contact == Some(ConversationState::Accepted) {
                GroupStatus::Joined
            } else {
                GroupStatus::Invited {
                    inviter: inviter.to_string(),
                }
            };
            // A stranger's invite waits for an answer, within the caps (`db::requests`); one
            // already waiting for this group is only refreshed.
            let waiting = existing
                .as_ref()
                .is_some_and(|g| matches!(g.record.status, GroupStatus::Invited { .. }));
            if matches!(status, GroupStatus::Invited { .. }) && !waiting {
                if let Some(why) = db.invite_cap(&inviter)? {
                    tracing::warn!(message = %hash, "dropping group invite: {why}");
                    return Ok((None, false));
                }
            }
            let joined_at = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
            let mut g = existing.unwrap_or_else(|| Group {
                id: group,
                record: GroupRecord::new(&name, status.clone(), joined_at),
            });
            g.record.status = status;
            g.record.invite_name.clone_from(&name);
            g.record.auth_data = Some(Hex(auth_data));
            g.record.admin_seed = None;
            db.save_group(&g, now_ms)?;
            let shown = ReceivedMessage {
                hash,
                conversation: inviter,
                sender: inviter,
                direction: Direction::Incoming,
                timestamp,
                body: name,
                group: Some(group),
                attachments: Vec::new(),
            };
            Ok((Some(shown), true))
        }
        GroupNote::Promote { group, seed, .. } => {
            let Some(mut g) = db.group(&group)? else {
                return Ok((None, false));
            };
            if matches!(
                g.record.status,
                GroupStatus::Destroyed | GroupStatus::Kicked
            ) {
                return Ok((None, false));
            }
            g.record.admin_seed = Some(Hex(seed.to_vec()));
            g.record.auth_data = None;
            if matches!(g.record.status, GroupStatus::Invited { .. }) {
                g.record.status = GroupStatus::Joined;
            }
            db.save_group(&g, now_ms)?;
            Ok((None, true))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shallot_proto::group::make_auth_data;
    use shallot_proto::group::update::{GroupUpdateInviteMessage, GroupUpdatePromoteMessage};

    const T: u64 = 1_700_000_000_000;

    fn user() -> Identity {
        Identity::generate(&mut rand::rngs::OsRng)
    }

    fn invite(
        admin: &GroupAdmin,
        to: &Identity,
        ts: u64,
        flags: SubaccountFlags,
    ) -> GroupUpdateMessage {
        let auth = make_auth_data(admin, &to.session_id(), flags).unwrap();
        GroupUpdateMessage {
            invite_message: Some(GroupUpdateInviteMessage {
                group_session_id: Some(admin.id().to_string()),
                name: Some("Friends".into()),
                member_auth_data: Some(auth.as_bytes().to_vec()),
                admin_signature: Some(
                    AdminText::Invite {
                        invitee: &to.session_id(),
                        timestamp_ms: ts,
                    }
                    .sign(admin)
                    .to_bytes()
                    .to_vec(),
                ),
            }),
            ..GroupUpdateMessage::default()
        }
    }

    #[test]
    fn a_signed_invite_for_us_is_taken_and_forgeries_are_refused() {
        let (me, alice, eve) = (user(), user(), user());
        let admin = GroupAdmin::from_seed([7; 32]);
        let rw = SubaccountFlags::READ | SubaccountFlags::WRITE;
        let good = invite(&admin, &me, T, rw);
        let Ok(GroupNote::Invite { group, name, .. }) =
            check_update(&me, alice.session_id(), T, &good)
        else {
            panic!("a good invite is taken");
        };
        assert_eq!((group, name.as_str()), (admin.id(), "Friends"));
        // Replayed with another envelope timestamp: the signature does not cover it.
        assert!(check_update(&me, alice.session_id(), T + 1, &good).is_err());
        // Forwarded to someone else: the credential and signature are for our key only.
        assert!(check_update(&eve, alice.session_id(), T, &good).is_err());
        // Signed by another group than it names.
        let mut forged = good.clone();
        let other = GroupAdmin::from_seed([8; 32]);
        forged.invite_message.as_mut().unwrap().group_session_id = Some(other.id().to_string());
        assert!(check_update(&me, alice.session_id(), T, &forged).is_err());
        // A credential without the read flag, and truncated auth data.
        assert!(check_update(
            &me,
            alice.session_id(),
            T,
            &invite(&admin, &me, T, SubaccountFlags::WRITE)
        )
        .is_err());
        let mut cut = good.clone();
        cut.invite_message
            .as_mut()
            .unwrap()
            .member_auth_data
            .as_mut()
            .unwrap()
            .truncate(99);
        assert!(check_update(&me, alice.session_id(), T, &cut).is_err());
        // From ourselves, or empty.
        assert!(check_update(&me, me.session_id(), T, &good).is_err());
        assert!(check_update(&me, alice.session_id(), T, &GroupUpdateMessage::default()).is_err());
    }

    /// Group `n`.
    fn group(n: u32) -> GroupId {
        let mut seed = [0; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        GroupAdmin::from_seed(seed).id()
    }

    /// A checked invite to group `n` from `inviter`.
    fn note(n: u32, inviter: &Identity) -> GroupNote {
        GroupNote::Invite {
            group: group(n),
            name: format!("group {n}"),
            auth_data: vec![0; 100],
            inviter: inviter.session_id(),
            timestamp: T,
        }
    }

    fn waiting(db: &Db) -> usize {
        db.groups()
            .unwrap()
            .iter()
            .filter(|g| matches!(g.record.status, GroupStatus::Invited { .. }))
            .count()
    }

    #[test]
    fn strangers_invites_are_capped_per_inviter_and_in_total_and_contacts_are_not() {
        use crate::db::{MAX_PENDING_INVITES as TOTAL, MAX_PENDING_INVITES_PER_INVITER as CAP};
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_in_dir(dir.path(), &user()).unwrap();
        let hash = MessageHash::from_bytes([1; 32]);
        let record = |n: u32, from: &Identity| record_note(&db, note(n, from), hash, T).unwrap();

        // One stranger: the first CAP invites wait, the next is refused.
        let spammer = user();
        let cap = u32::try_from(CAP).unwrap();
        for n in 0..cap {
            assert!(record(n, &spammer).0.is_some());
        }
        assert_eq!(record(cap, &spammer), (None, false));
        // Re-sent for a group already waiting: refreshed, not refused.
        assert!(record(0, &spammer).0.is_some());
        assert_eq!(waiting(&db), CAP);

        // Many strangers: the total holds.
        let mut n = 100;
        while waiting(&db) < TOTAL {
            let s = user();
            for _ in 0..cap.min(u32::try_from(TOTAL - waiting(&db)).unwrap()) {
                assert!(record(n, &s).0.is_some());
                n += 1;
            }
        }
        assert_eq!(record(n, &user()), (None, false));
        assert_eq!(waiting(&db), TOTAL);

        // A contact's invite joins at once, however full the box.
        let friend = user();
        db.set_conversation_state(&friend.session_id(), ConversationState::Accepted, T)
            .unwrap();
        let (shown, changed) = record(n + 1, &friend);
        assert!(shown.is_some() && changed);
        let joined = db.group(&group(n + 1)).unwrap().unwrap();
        assert_eq!(joined.record.status, GroupStatus::Joined);
    }

    #[test]
    fn a_promotion_names_the_group_its_seed_derives() {
        let (me, alice) = (user(), user());
        let promote = GroupUpdateMessage {
            promote_message: Some(GroupUpdatePromoteMessage {
                group_identity_seed: Some(vec![9; 32]),
                name: Some("x".into()),
            }),
            ..GroupUpdateMessage::default()
        };
        let Ok(GroupNote::Promote { group, .. }) =
            check_update(&me, alice.session_id(), T, &promote)
        else {
            panic!("a promotion is taken");
        };
        assert_eq!(group, GroupAdmin::from_seed([9; 32]).id());
        let mut short = promote;
        short.promote_message.as_mut().unwrap().group_identity_seed = Some(vec![9; 31]);
        assert!(check_update(&me, alice.session_id(), T, &short).is_err());
    }
}
