//! One-to-one messaging on top of the networking core (spec §4.5, §5): sending a text DM to a
//! recipient's swarm plus a sync copy to our own, and polling our inbox (namespace 0) from two
//! swarm members with per-node `last_hash` cursors, deduplicated and persisted in the [`Db`].
//!
//! - [`outbox`]: sending messages and control messages (requests, timers, unsend, wipe).
//! - [`inbox`]: polling, waiting and pushed receives; [`waits`]: the waits kept in flight.
//! - [`judge`]: what a retrieved item is, from its bytes alone (pure).
//! - [`apply`]: what an item's verdict does to the database.
//! - [`attachments`]: sending files and downloading received ones through the file server.
//! - [`config`]: our profile and contacts, synced between our devices.
//! - [`feedback`] and [`signals`]: receipts, typing, reactions and replies, received and sent.
//! - [`signed`] and [`replies`]: the requests we sign for our swarm, and reading the replies.
//!
//! Database work runs on the database's own thread ([`DbHandle`]); nothing here holds it
//! across an await. Nothing here logs message bodies or keys; dropped messages are logged by
//! hash only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shallot_proto::message_hash::MessageHash;
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::session::protos::Profile;
use shallot_proto::{AccountId, Identity, SessionId};

use crate::db::{Conversation, Db, DbError, DbHandle, Direction};
use crate::error::Error;
use crate::onion_client::OnionClient;
use crate::paths::GuardEntry;
use crate::pool::SnapshotNode;

mod apply;
mod attachments;
mod config;
pub mod feedback;
mod inbox;
pub(crate) mod judge;
mod outbox;
mod pictures;
mod replies;
pub(crate) mod signals;
mod signed;
mod typing;

pub use feedback::{MessageRef, Update};
pub use pictures::{keep_alive_due, KeepAlive, Picture, KEEP_ALIVE_INTERVAL_SECS};
pub use signals::{AnyMessage, ReadOutcome};
pub mod waits;

pub(crate) use replies::{count_stored, retrieve_results, was_held};
#[cfg(test)]
mod testing;

/// Where [`Messenger::save_network_state`] keeps our guards.
const GUARDS_SNAPSHOT: &str = "guards";

/// TTL of a DM on the network: 14 days (desktop's content TTL).
pub const MESSAGE_TTL_MS: u64 = 14 * 24 * 60 * 60 * 1000;

/// How many swarm members each poll asks (desktop: 2).
pub const POLL_NODES: usize = 2;

/// How long a waiting receive ([`Messenger::receive_waiting`]) asks a swarm member to hold its
/// retrieve open: our nodes grant at most 20 s by default, under the 30 s each onion hop allows.
pub const PUSH_WAIT: Duration = Duration::from_secs(20);

/// What a waiting request may take beyond its wait: the path there and back.
pub(crate) const PUSH_WAIT_MARGIN: Duration = Duration::from_secs(10);

/// Most retrieve rounds one [`Messenger::receive`] makes while nodes answer `more: true`.
pub const MAX_POLL_ROUNDS: usize = 8;

/// The config kinds this client syncs between devices, polled with the inbox.
pub const SYNCED_CONFIGS: [ConfigKind; 3] = [
    ConfigKind::UserProfile,
    ConfigKind::Contacts,
    ConfigKind::UserGroups,
];

/// TTL of a config message on our swarm: 30 days (desktop's config TTL).
pub const CONFIG_TTL_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Longest display name we send or accept, in bytes (libsession's profile name limit).
pub const MAX_NAME_BYTES: usize = 100;

/// A display name as it may be shown: trimmed, without control characters, at most
/// [`MAX_NAME_BYTES`]; `None` if nothing is left or it is too long.
pub fn clean_display_name(name: &str) -> Option<String> {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned.len() <= MAX_NAME_BYTES).then(|| cleaned.to_owned())
}

/// A messaging failure.
#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// The network failed; [`Error::kind`] says what to do.
    #[error(transparent)]
    Network(#[from] Error),
    /// The local database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The message could not be built (too long, bad recipient key).
    #[error("cannot build the message: {0}")]
    Build(String),
    /// A group operation was refused.
    #[error(transparent)]
    Group(#[from] crate::groups::GroupError),
    /// An attachment could not be sent or downloaded.
    #[error(transparent)]
    Attachment(#[from] crate::attachments::AttachmentError),
    /// No stored attachment has this id (or the prefix names several).
    #[error("{0}")]
    UnknownAttachment(String),
}

/// The result of [`Messenger::send`].
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// The message's hash on the recipient's swarm (its id in the database).
    pub hash: MessageHash,
    /// Its timestamp (network time, ms).
    pub timestamp: u64,
    /// How many members of the recipient's swarm confirmed storing it.
    pub stored_on: u32,
    /// Whether the sync copy reached our own swarm (for our other devices).
    pub synced: bool,
    /// How long the message waited before leaving ([`crate::ClientConfig::send_jitter`]).
    pub delayed: Duration,
    /// The files it carries, as stored.
    pub attachments: Vec<crate::db::StoredAttachment>,
}

/// A message [`Messenger::receive`] saw for the first time.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// Its hash on our swarm (its id in the database).
    pub hash: MessageHash,
    /// The other party of the conversation.
    pub conversation: SessionId,
    /// Who wrote it (us, for a sync copy from another of our devices).
    pub sender: SessionId,
    /// Incoming, or outgoing when it is a sync copy.
    pub direction: Direction,
    /// Message timestamp (ms).
    pub timestamp: u64,
    /// The text (for a group invite: the group's name).
    pub body: String,
    /// The group it was written in (or, for an invite in our inbox, the group we are invited
    /// to); `conversation` is then the sender.
    pub group: Option<shallot_proto::group::GroupId>,
    /// Files attached to it, stored under their ids for [`Messenger::download_attachment`].
    pub attachments: Vec<crate::db::StoredAttachment>,
}

/// The outcome of [`Messenger::receive_waiting`].
#[derive(Debug)]
pub struct Waited {
    /// Messages never seen before, as [`Messenger::receive`] returns them.
    pub messages: Vec<ReceivedMessage>,
    /// Whether the node held the request (false: it does not support waiting or was at its
    /// cap, so the caller should pause before asking again).
    pub waited: bool,
}

/// An account's messaging: its identity, the network client and the local database.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use shallot_client::{ClientConfig, Db, Messenger, NetworkClock, OnionClient, Seed};
/// use shallot_proto::{Identity, SessionId};
///
/// let me = Identity::generate(&mut rand::rngs::OsRng);
/// let config = ClientConfig {
///     seeds: vec![Seed::JsonRpc("https://seed1.example:4443/json_rpc".into())],
///     ..ClientConfig::default()
/// };
/// let client = OnionClient::bootstrap(config, NetworkClock::default()).await?;
/// let db = Db::open_in_dir(std::path::Path::new("/tmp/me"), &me)?;
/// let messenger = Messenger::new(me, client, db);
///
/// messenger.set_display_name("Alice").await?;
/// let bob: SessionId = "05…66 hex characters…".parse()?;
/// let sent = messenger.send(&bob, "hello").await?;
/// println!("stored on {} members of Bob's swarm", sent.stored_on);
/// for message in messenger.receive().await? {
///     println!("{}: {}", message.sender, message.body);
/// }
/// # Ok(()) }
/// ```
pub struct Messenger {
    pub(crate) identity: Arc<Identity>,
    pub(crate) client: OnionClient,
    pub(crate) db: DbHandle,
    /// The swarm member waiting receives go to while it answers with messages: its cursor is
    /// current, so a new wait starts at once. Forgotten after an error or a quiet wait, so the
    /// next one picks a random member (and members that missed a replica are read too).
    wait_member: Mutex<Option<shallot_proto::Ed25519Pub>>,
    /// Who is typing to us ([`Messenger::is_typing`]).
    typing: Mutex<typing::Typing>,
    /// Receipts and reactions recorded and not yet taken ([`Messenger::take_updates`]).
    updates: Mutex<std::collections::VecDeque<Update>>,
    /// The waiting retrieves in flight between calls of [`Messenger::receive_waiting`].
    pub(crate) waits: waits::Waits,
    /// The accounts of the groups we are joined to, as last listed (at creation, then at each
    /// receive): their swarms are private too ([`Messenger::note_correspondents`]).
    joined_groups: Mutex<Vec<AccountId>>,
    /// Our group credentials, derived once ([`Messenger::credential`]).
    pub(crate) credentials: crate::groups::requests::Credentials,
    /// Our groups' key lists, rebuilt only when their key messages change.
    pub(crate) key_lists: Arc<crate::groups::state::KeyLists>,
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("account", &self.identity.session_id())
            .finish_non_exhaustive()
    }
}

/// Our account, `also`, everyone we have a conversation with and the groups we are joined to:
/// the accounts whose swarms must not see our IP. A group's swarm holds what we read and write
/// there (and answers our waits as a message arrives), as a correspondent's swarm does.
fn private_accounts(
    own: AccountId,
    also: Option<&SessionId>,
    conversations: &[Conversation],
    groups: &[AccountId],
) -> Vec<AccountId> {
    let mut accounts = vec![own];
    accounts.extend(also.map(SessionId::account).filter(|a| *a != own));
    accounts.extend(
        conversations
            .iter()
            .map(|c| c.id.account())
            .filter(|a| *a != own),
    );
    accounts.extend_from_slice(groups);
    accounts
}

/// The accounts of the groups among `groups` we are joined to.
pub(crate) fn joined_group_accounts(groups: &[crate::groups::Group]) -> Vec<AccountId> {
    groups
        .iter()
        .filter(|g| g.record.status == crate::groups::GroupStatus::Joined)
        .map(|g| g.id.account())
        .collect()
}

/// The profile sent with our messages (`None` while we have no display name).
pub(crate) fn profile_of(name: Option<String>) -> Option<Profile> {
    name.map(|name| Profile {
        display_name: Some(name),
        ..Profile::default()
    })
}

/// The profile and profile key sent with our one-to-one messages: display name and picture URL,
/// with the picture's key beside it (Session sends `profilePicture` and `profileKey` only
/// together). `None` while we have neither a name nor a picture.
pub(crate) fn outgoing_profile(own: &crate::db::OwnProfile) -> (Option<Profile>, Option<Vec<u8>>) {
    if own.name.is_none() && own.picture.is_none() {
        return (None, None);
    }
    let profile = Profile {
        display_name: own.name.clone(),
        profile_picture: own.picture.as_ref().map(|p| p.url.clone()),
        ..Profile::default()
    };
    (Some(profile), own.picture.as_ref().map(|p| p.key.clone()))
}

impl Messenger {
    /// Messaging for `identity` over `client`, persisted in `db` (which must be `identity`'s;
    /// it moves to a thread of its own). A swarm saved in the database seeds the client's
    /// swarm cache, and its saved guards are restored.
    pub fn new(identity: Identity, client: OnionClient, db: Db) -> Self {
        let account = identity.session_id().account();
        if let Ok(Some(members)) = db.load_swarm(&account) {
            let members: Vec<_> = members.iter().map(SnapshotNode::to_record).collect();
            if !members.is_empty() {
                client.set_cached_swarm(account, members);
            }
        }
        Self::restore_guards(&client, &db);
        let joined_groups = match db.groups() {
            Ok(groups) => joined_group_accounts(&groups),
            Err(e) => {
                tracing::debug!("could not list groups: {e}");
                Vec::new()
            }
        };
        match db.conversations() {
            Ok(conversations) => {
                client.set_private_accounts(private_accounts(
                    account,
                    None,
                    &conversations,
                    &joined_groups,
                ));
            }
            Err(e) => tracing::debug!("could not list conversations: {e}"),
        }
        Self {
            identity: Arc::new(identity),
            client,
            db: DbHandle::spawn(db),
            wait_member: Mutex::new(None),
            typing: Mutex::default(),
            updates: Mutex::default(),
            waits: waits::Waits::default(),
            joined_groups: Mutex::new(joined_groups),
            credentials: Mutex::default(),
            key_lists: Arc::default(),
        }
    }

    /// Tells the client our account, every account we have a conversation with, our joined
    /// groups (as last listed, see [`Self::note_groups`]) and `also` (someone we are about to
    /// write to), so that nodes that see our IP stay out of their swarms
    /// ([`OnionClient::set_private_accounts`]). Called on creation and before each send and
    /// receive; a command that knows its recipient calls it before building paths.
    pub async fn note_correspondents(&self, also: Option<&SessionId>) {
        let conversations = match self.db.conversations().await {
            Ok(conversations) => conversations,
            Err(e) => {
                tracing::debug!("could not list conversations: {e}");
                Vec::new()
            }
        };
        let groups = self
            .joined_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.client.set_private_accounts(private_accounts(
            self.account(),
            also,
            &conversations,
            &groups,
        ));
    }

    /// Remembers which of `groups` (every group we keep, as just listed) we are joined to,
    /// for [`Self::note_correspondents`]; the receives that list the groups call it, so a group
    /// joined or left counts from the next receive on.
    pub(crate) fn note_groups(&self, groups: &[crate::groups::Group]) {
        *self
            .joined_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = joined_group_accounts(groups);
    }

    /// Hands the guard set saved in `db` to `client` ([`OnionClient::restore_guards`]).
    /// [`Self::new`] does it, so build paths after making the messenger (or call this first):
    /// paths built before would use new guards and show our IP to more nodes.
    pub fn restore_guards(client: &OnionClient, db: &Db) {
        let entries = match db.load_json::<Vec<GuardEntry>>(GUARDS_SNAPSHOT) {
            Ok(Some(entries)) => entries,
            // Older databases kept bare keys: they start a lifetime now.
            _ => match db.load_json::<Vec<String>>(GUARDS_SNAPSHOT) {
                Ok(Some(keys)) => {
                    let now = client.clock().now_ms() / 1000;
                    let lifetime = crate::paths::GUARD_LIFETIME_MIN.as_secs();
                    keys.iter()
                        .filter_map(|k| k.parse().ok())
                        .map(|ed25519| GuardEntry {
                            ed25519,
                            added: now,
                            expires: now + lifetime,
                            failures: 0,
                        })
                        .collect()
                }
                _ => Vec::new(),
            },
        };
        if !entries.is_empty() {
            client.restore_guards(entries);
        }
    }

    /// Our Session ID.
    pub fn session_id(&self) -> SessionId {
        self.identity.session_id()
    }

    /// The network client.
    pub fn client(&self) -> &OnionClient {
        &self.client
    }

    /// The local database, on its own thread: queries are `async` and hold nothing.
    pub fn db(&self) -> &DbHandle {
        &self.db
    }

    fn account(&self) -> AccountId {
        self.identity.session_id().account()
    }

    /// Saves the node pool, our guards and our swarm to the database, so the next start needs
    /// no seed and keeps the same entry nodes.
    pub async fn save_network_state(&self) -> Result<(), MessengerError> {
        let account = self.account();
        let swarm = self.client.swarm(&account).await.unwrap_or_default();
        let pool = self.client.pool_snapshot();
        let guards = self.client.guard_entries();
        let nodes: Vec<SnapshotNode> = swarm.iter().map(SnapshotNode::from).collect();
        self.db
            .call(move |db| {
                db.save_pool(&pool)?;
                db.save_json(GUARDS_SNAPSHOT, &guards)?;
                if !nodes.is_empty() {
                    db.save_swarm(&account, &nodes)?;
                }
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::groups::{Group, GroupRecord, GroupStatus};

    fn group(seed: u8, status: GroupStatus) -> Group {
        Group {
            id: shallot_proto::group::GroupAdmin::from_seed([seed; 32]).id(),
            record: GroupRecord::new("G", status, 1_700_000_000),
        }
    }

    #[test]
    fn joined_groups_swarms_are_private_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::generate(&mut rand::rngs::OsRng);
        let db = Db::open_in_dir(dir.path(), &me).unwrap();
        let joined = group(1, GroupStatus::Joined);
        let invited = group(
            2,
            GroupStatus::Invited {
                inviter: String::new(),
            },
        );
        let kicked = group(3, GroupStatus::Kicked);
        for g in [&joined, &invited, &kicked] {
            db.save_group(g, 1).unwrap();
        }
        let client = OnionClient::new(
            crate::ClientConfig::default(),
            crate::pool::Pool::new([]),
            crate::NetworkClock::default(),
        )
        .unwrap();
        let messenger = Messenger::new(me.clone(), client.clone(), db);
        let private = || client.state().private_accounts.clone();
        // Listed at creation: our own account and the joined group's, not the others.
        assert_eq!(
            private(),
            vec![me.session_id().account(), joined.id.account()]
        );

        // Left (or kicked) since: gone from the next receive on.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            messenger.note_groups(&[group(1, GroupStatus::Kicked), invited.clone()]);
            messenger.note_correspondents(None).await;
        });
        assert_eq!(private(), vec![me.session_id().account()]);
    }
}
