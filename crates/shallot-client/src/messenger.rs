//! One-to-one messaging on top of the networking core (spec §4.5, §5): sending a text DM to a
//! recipient's swarm plus a sync copy to our own, and polling our inbox (namespace 0) from two
//! swarm members with per-node `last_hash` cursors, deduplicated and persisted in the [`Db`].
//!
//! Nothing here logs message bodies or keys; dropped messages are logged by hash only.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::Value;
use shallot_directory::NodeRecord;
use shallot_proto::message_hash::{MessageHash, RequestedHash};
use shallot_proto::namespace::NamespaceSelector;
use shallot_proto::rpc::{
    Auth, BatchResults, Delete, DeleteAll, Deleted, Expire, Request, Retrieve, RetrieveAuth,
    RetrievePage, RetrievedMessage, Store, StoreAuth, Stored, SwarmResults,
};
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::session::protos::{
    Content, DataMessage, ExpirationType, MessageRequestResponse, Profile, UnsendRequest,
};
use shallot_proto::session::{unwrap_incoming, wrap_for_recipient};
use shallot_proto::signing::{ExpireMode, SignedRequest};
use shallot_proto::{AccountId, Identity, Namespace, SessionId};

use crate::db::{
    ConversationState, Db, DbError, Direction, Disappearing, MessageState, StoredMessage,
};
use crate::error::Error;
use crate::onion_client::{decode_reply, OnionClient};
use crate::paths::GuardEntry;
use crate::pool::SnapshotNode;

/// Where [`Messenger::save_network_state`] keeps our guards.
const GUARDS_SNAPSHOT: &str = "guards";

/// The outcome of [`Messenger::receive_waiting`].
#[derive(Debug)]
pub struct Waited {
    /// Messages never seen before, as [`Messenger::receive`] returns them.
    pub messages: Vec<ReceivedMessage>,
    /// Whether the node held the request (false: it does not support waiting or was at its
    /// cap, so the caller should pause before asking again).
    pub waited: bool,
}

/// TTL of a DM on the network: 14 days (desktop's content TTL).
pub const MESSAGE_TTL_MS: u64 = 14 * 24 * 60 * 60 * 1000;

/// How many swarm members each poll asks (desktop: 2).
pub const POLL_NODES: usize = 2;

/// How long a waiting receive ([`Messenger::receive_waiting`]) asks a swarm member to hold its
/// retrieve open: our nodes grant at most 20 s by default, under the 30 s each onion hop allows.
pub const PUSH_WAIT: Duration = Duration::from_secs(20);

/// What a waiting request may take beyond its wait: the path there and back.
const PUSH_WAIT_MARGIN: Duration = Duration::from_secs(10);

/// Most retrieve rounds one [`Messenger::receive`] makes while nodes answer `more: true`.
pub const MAX_POLL_ROUNDS: usize = 8;

/// `max_size` of the namespace-0 retrieve (half the network maximum, as desktop).
const RETRIEVE_MAX_SIZE: i64 = -2;

/// `max_size` of each config namespace's retrieve (desktop: −2 × the number of them).
const CONFIG_RETRIEVE_MAX_SIZE: i64 = -8;

/// The config kinds this client syncs between devices, polled with the inbox.
pub const SYNCED_CONFIGS: [ConfigKind; 2] = [ConfigKind::UserProfile, ConfigKind::Contacts];

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
}

/// The result of [`Messenger::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The message's hash on the recipient's swarm (its id in the database).
    pub hash: String,
    /// Its timestamp (network time, ms).
    pub timestamp: u64,
    /// How many members of the recipient's swarm confirmed storing it.
    pub stored_on: u32,
    /// Whether the sync copy reached our own swarm (for our other devices).
    pub synced: bool,
    /// How long the message waited before leaving ([`crate::ClientConfig::send_jitter`]).
    pub delayed: Duration,
}

/// A message [`Messenger::receive`] saw for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Its hash on our swarm (its id in the database).
    pub hash: String,
    /// The other party of the conversation.
    pub conversation: SessionId,
    /// Who wrote it (us, for a sync copy from another of our devices).
    pub sender: SessionId,
    /// Incoming, or outgoing when it is a sync copy.
    pub direction: Direction,
    /// Message timestamp (ms).
    pub timestamp: u64,
    /// The text.
    pub body: String,
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
    identity: Identity,
    client: OnionClient,
    db: Mutex<Db>,
    /// The swarm member waiting receives go to while it answers with messages: its cursor is
    /// current, so a new wait starts at once. Forgotten after an error or a quiet wait, so the
    /// next one picks a random member (and members that missed a replica are read too).
    wait_member: Mutex<Option<shallot_proto::Ed25519Pub>>,
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("account", &self.identity.session_id())
            .finish_non_exhaustive()
    }
}

/// What one retrieved item turned out to be.
enum Verdict {
    Show(StoredMessage, Disappearing),
    /// The sender approved our message request.
    Approved(SessionId),
    /// The sender asks us to delete their message with this timestamp.
    Unsend {
        author: SessionId,
        timestamp: u64,
    },
    /// The other party (or we, from another device) changed the conversation's timer.
    Timer {
        conversation: SessionId,
        setting: Disappearing,
        from_us: bool,
    },
    Drop(String),
}

/// Network work left over by processing retrieved items.
#[derive(Default)]
struct FollowUp {
    /// Our swarm copies to shorten, with their new expiry (after-read timers).
    expire: Vec<(String, u64)>,
    /// Our swarm copies to delete (unsent by their author).
    delete: Vec<String>,
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

impl Messenger {
    /// Messaging for `identity` over `client`, persisted in `db` (which must be `identity`'s).
    /// A swarm saved in the database seeds the client's swarm cache.
    pub fn new(identity: Identity, client: OnionClient, db: Db) -> Self {
        let account = identity.session_id().account();
        if let Ok(Some(members)) = db.load_swarm(&account.to_hex()) {
            let members: Vec<_> = members.iter().map(SnapshotNode::to_record).collect();
            if !members.is_empty() {
                client.set_cached_swarm(account, members);
            }
        }
        Self::restore_guards(&client, &db);
        let messenger = Self {
            identity,
            client,
            db: Mutex::new(db),
            wait_member: Mutex::new(None),
        };
        messenger.note_correspondents(None);
        messenger
    }

    /// Tells the client our account, every account we have a conversation with and `also`
    /// (someone we are about to write to), so that nodes that see our IP stay out of their
    /// swarms ([`OnionClient::set_private_accounts`]). Called on creation and before each send
    /// and receive; a command that knows its recipient calls it before building paths.
    pub fn note_correspondents(&self, also: Option<&SessionId>) {
        let own = self.account();
        let mut accounts = vec![own];
        accounts.extend(also.map(SessionId::account).filter(|a| *a != own));
        match self.db().conversations() {
            Ok(conversations) => accounts.extend(
                conversations
                    .iter()
                    .map(|c| c.id.account())
                    .filter(|a| *a != own),
            ),
            Err(e) => tracing::debug!("could not list conversations: {e}"),
        }
        self.client.set_private_accounts(accounts);
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

    /// The local database (locked; do not hold across an await).
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn account(&self) -> AccountId {
        self.identity.session_id().account()
    }

    /// Our display name, if set.
    pub fn display_name(&self) -> Result<Option<String>, MessengerError> {
        Ok(self.db().profile_name()?)
    }

    /// Sets the display name our contacts see with our messages from now on, and pushes it to
    /// our other devices (UserProfile config). The name is trimmed; it must be 1 to
    /// [`MAX_NAME_BYTES`] bytes without control characters. It applies here even if the push
    /// fails (the error says so); the next change or [`Self::sync_config`] retries.
    pub async fn set_display_name(&self, name: &str) -> Result<String, MessengerError> {
        let cleaned = clean_display_name(name).ok_or_else(|| {
            MessengerError::Build(format!(
                "a display name must be 1 to {MAX_NAME_BYTES} bytes of printable text"
            ))
        })?;
        self.db().set_profile_name(&cleaned)?;
        self.sync_config(ConfigKind::UserProfile).await?;
        Ok(cleaned)
    }

    /// The profile sent with our messages (`None` while we have no display name).
    fn profile(&self) -> Result<Option<Profile>, MessengerError> {
        Ok(self.display_name()?.map(|name| Profile {
            display_name: Some(name),
            ..Profile::default()
        }))
    }

    /// Saves the node pool, our guards and our swarm to the database, so the next start needs
    /// no seed and keeps the same entry nodes.
    pub async fn save_network_state(&self) -> Result<(), MessengerError> {
        let swarm = self.client.swarm(&self.account()).await.unwrap_or_default();
        let db = self.db();
        db.save_pool(&self.client.pool_snapshot())?;
        db.save_json(GUARDS_SNAPSHOT, &self.client.guard_entries())?;
        if !swarm.is_empty() {
            let nodes: Vec<SnapshotNode> = swarm.iter().map(SnapshotNode::from).collect();
            db.save_swarm(&self.account().to_hex(), &nodes)?;
        }
        Ok(())
    }

    /// Pushes our profile or contact list to our swarm for our other devices if it changed
    /// since the current version, or if concurrent versions need merging: the next seqno in its
    /// namespace (2 or 3), after which the versions it replaces are deleted. Returns whether a
    /// version was pushed.
    pub async fn sync_config(&self, kind: ConfigKind) -> Result<bool, MessengerError> {
        if crate::config_sync::load_state(&self.db(), kind)?
            .heads
            .is_empty()
        {
            // This device's first push of this kind: build on the account's current version,
            // not on nothing (a seqno 1 far behind it would be dropped as stale).
            self.refresh_config(kind).await?;
        }
        let now = self.client.clock().now_ms();
        let Some(push) = crate::config_sync::prepare_push(&self.db(), &self.identity, kind, now)?
        else {
            return Ok(false);
        };
        let account = self.account();
        let namespace = kind.namespace();
        let ts = i64::try_from(now).unwrap_or(i64::MAX);
        let auth = self.auth(
            &SignedRequest::Store {
                namespace,
                sig_timestamp: now,
            }
            .message(),
        );
        let store = Store {
            account,
            namespace,
            timestamp: ts,
            expiry: ts.saturating_add(i64::try_from(CONFIG_TTL_MS).unwrap_or(i64::MAX)),
            data: push.sealed,
            auth: Some(StoreAuth {
                sig_timestamp: ts,
                auth,
            }),
        };
        let hash = store.hash().to_string();
        let (_, body) = self
            .client
            .request_swarm(&account, &Request::Store(store))
            .await?;
        if count_stored(&body) == 0 {
            return Err(Error::Rejected {
                status: 0,
                body: "no member of our swarm stored the config".into(),
            }
            .into());
        }
        let head = crate::config_sync::Head {
            storage_hash: Some(hash.clone()),
            ..push.head
        };
        crate::config_sync::record_push(&self.db(), kind, head)?;
        tracing::debug!(?kind, seqno = push.seqno, "pushed a config version");
        let replaced: Vec<String> = push.replaces.into_iter().filter(|h| *h != hash).collect();
        if let Some(request) = self.delete_request(&replaced) {
            if let Err(e) = self.client.request_swarm(&account, &request).await {
                tracing::warn!("could not delete the replaced config versions: {e}");
            }
        }
        Ok(true)
    }

    /// Fetches every version of `kind` stored in our swarm (no cursor) and takes them in.
    async fn refresh_config(&self, kind: ConfigKind) -> Result<(), MessengerError> {
        let account = self.account();
        let namespace = kind.namespace();
        let request = Request::Batch(vec![self.signed_retrieve(namespace, None)]);
        let (_, body) = self.client.request_swarm(&account, &request).await?;
        let items: Vec<(String, Vec<u8>)> = retrieve_results(&body, 1)?
            .into_iter()
            .flatten()
            .flat_map(|page| page.messages)
            .filter_map(|item| config_item(&account, namespace, &item))
            .collect();
        let now = self.client.clock().now_ms();
        let adoption = crate::config_sync::adopt(&self.db(), &self.identity, kind, &items, now)?;
        if let Some(seqno) = adoption.adopted {
            tracing::debug!(
                ?kind,
                seqno,
                "fetched the current config before a first push"
            );
        }
        Ok(())
    }

    /// [`Self::sync_config`] for a change that already took effect here: failure is logged.
    async fn sync_config_logged(&self, kind: ConfigKind) {
        if let Err(e) = self.sync_config(kind).await {
            tracing::warn!(?kind, "could not sync the change to our other devices: {e}");
        }
    }

    /// Builds the `store` of one wrapped copy of `content` to `to`'s inbox.
    fn store_request(
        &self,
        to: &SessionId,
        content: &Content,
        timestamp: u64,
        ttl_ms: u64,
    ) -> Result<Store, MessengerError> {
        let data = wrap_for_recipient(
            &self.identity,
            to,
            content,
            timestamp,
            &mut rand::rngs::OsRng,
        )
        .map_err(|e| MessengerError::Build(e.to_string()))?;
        if data.len() > shallot_proto::rpc::MAX_MESSAGE_DATA {
            return Err(MessengerError::Build("message too long".into()));
        }
        let ts = i64::try_from(timestamp).unwrap_or(i64::MAX);
        Ok(Store {
            account: to.account(),
            namespace: Namespace::DEFAULT,
            timestamp: ts,
            expiry: ts.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
            data,
            auth: None,
        })
    }

    /// Sends `text` to `recipient`: stored in their swarm's inbox (ns 0, 14-day TTL), and a sync
    /// copy (`syncTarget` = recipient) in ours for our other devices. The message is recorded
    /// before sending and its state updated with how many swarm members stored it. With
    /// [`crate::ClientConfig::send_jitter`] set, it waits a random time before leaving; with
    /// [`crate::ClientConfig::backdate`], its timestamp is a random time in the past.
    pub async fn send(
        &self,
        recipient: &SessionId,
        text: &str,
    ) -> Result<SentMessage, MessengerError> {
        // Backdated, but after the conversation's latest message: a reply never shows above
        // the message it answers.
        let latest = self.db().latest_timestamp(recipient)?.unwrap_or(0);
        let timestamp = crate::timing::backdated(
            self.client.clock().now_ms(),
            self.client.config().backdate,
            latest,
            &mut rand::thread_rng(),
        );
        let mut content = Content::text(text, timestamp);
        if let Some(data) = content.data_message.as_mut() {
            data.profile = self.profile()?;
        }
        let disappearing = self.db().disappearing(recipient)?;
        // After send: both copies live `secs`. After read: the recipient's copy waits to be read
        // (14 days), and ours (we have read it) lives `secs` from now.
        let (ttl, sync_ttl, local_expiry) = match disappearing {
            Disappearing::Off => (MESSAGE_TTL_MS, MESSAGE_TTL_MS, None),
            Disappearing::AfterSend(secs) | Disappearing::AfterRead(secs) => {
                let ms = u64::from(secs) * 1000;
                content.expiration_timer = Some(secs);
                let (kind, ttl) = if matches!(disappearing, Disappearing::AfterSend(_)) {
                    (ExpirationType::DeleteAfterSend, ms)
                } else {
                    (ExpirationType::DeleteAfterRead, MESSAGE_TTL_MS)
                };
                content.expiration_type = Some(kind as i32);
                (ttl, ms, Some(timestamp + ms))
            }
        };
        let store = self.store_request(recipient, &content, timestamp, ttl)?;
        let hash = store.hash().to_string();
        {
            let mut db = self.db();
            db.insert_message(&StoredMessage {
                id: hash.clone(),
                conversation: *recipient,
                direction: Direction::Outgoing,
                sender: self.session_id(),
                timestamp,
                body: text.to_owned(),
                state: MessageState::Sending,
            })?;
            if let Some(at) = local_expiry {
                db.set_expires(&hash, at)?;
            }
        }
        self.note_correspondents(None);

        // The timestamp is taken: the jitter separates it from the moment the onion leaves.
        let delayed = self.client.send_delay();
        if !delayed.is_zero() {
            tokio::time::sleep(delayed).await;
        }
        let stored_on = match self
            .client
            .request_swarm(&recipient.account(), &Request::Store(store))
            .await
        {
            Ok((_, body)) => count_stored(&body),
            Err(e) => {
                self.db().set_state(&hash, MessageState::Failed)?;
                return Err(e.into());
            }
        };
        let state = if stored_on == 0 {
            MessageState::Failed
        } else {
            MessageState::Stored(stored_on)
        };
        self.db().set_state(&hash, state)?;

        // The sync copy is built once the recipient's copy is on its way (it is not on the path
        // of delivery). Our own poll brings it back: it is this message, not a new one.
        let mut sync_content = content;
        if let Some(data) = sync_content.data_message.as_mut() {
            data.sync_target = Some(recipient.to_string());
        }
        let sync_store =
            self.store_request(&self.session_id(), &sync_content, timestamp, sync_ttl)?;
        let sync_hash = sync_store.hash().to_string();
        {
            let db = self.db();
            db.mark_seen(&sync_hash, Some(&hash))?;
            db.set_sync_hash(&hash, &sync_hash)?;
        }
        let synced = match self
            .client
            .request_swarm(&self.account(), &Request::Store(sync_store))
            .await
        {
            Ok((_, body)) => count_stored(&body) > 0,
            Err(e) => {
                tracing::warn!(message = %hash, "sync copy not stored: {e}");
                false
            }
        };
        Ok(SentMessage {
            hash,
            timestamp,
            stored_on,
            synced,
            delayed,
        })
    }

    /// The authenticated retrieve of `namespace` of our account for `node`, from its
    /// `last_hash` cursor.
    fn retrieve_request(
        &self,
        node_hex: &str,
        namespace: Namespace,
        wait: Option<Duration>,
    ) -> Result<Request, MessengerError> {
        let account = self.account();
        let last = self
            .db()
            .last_hash(node_hex, &account.to_hex(), namespace.0)?;
        let mut request = self.signed_retrieve(namespace, last.and_then(|h| h.parse().ok()));
        if let (Request::Retrieve(r), Some(wait)) = (&mut request, wait) {
            r.wait_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        }
        Ok(request)
    }

    /// The authenticated retrieve of `namespace` of our account after `last_hash` (`None`:
    /// everything stored).
    fn signed_retrieve(&self, namespace: Namespace, last_hash: Option<MessageHash>) -> Request {
        let account = self.account();
        let timestamp = self.client.clock().now_ms();
        let signature = self.identity.sign(
            &SignedRequest::Retrieve {
                namespace,
                timestamp,
            }
            .message(),
        );
        let max_size = if namespace == Namespace::DEFAULT {
            RETRIEVE_MAX_SIZE
        } else {
            CONFIG_RETRIEVE_MAX_SIZE
        };
        Request::Retrieve(Retrieve {
            account,
            namespace,
            auth: Some(RetrieveAuth {
                timestamp,
                auth: Auth {
                    signature,
                    pubkey_ed25519: Some(self.identity.ed25519_public()),
                    subaccount: None,
                },
            }),
            last_hash,
            max_count: None,
            max_size: Some(max_size),
            wait_ms: None,
        })
    }

    /// Polls our inbox from [`POLL_NODES`] random members of our swarm (one `batch` each),
    /// merges and deduplicates by hash, opens each message and persists it. Returns only the
    /// messages never seen before (sync copies from our other devices included, as outgoing);
    /// malformed, forged or misaddressed data is dropped with a log line.
    ///
    /// A node that answers `more: true` (a backlog larger than one reply) is asked again from
    /// the new cursor, up to [`MAX_POLL_ROUNDS`] rounds per call.
    pub async fn receive(&self) -> Result<Vec<ReceivedMessage>, MessengerError> {
        let mut shown = Vec::new();
        for _ in 0..MAX_POLL_ROUNDS {
            let (round, more, _) = self.receive_round(None).await?;
            shown.extend(round);
            if !more {
                break;
            }
        }
        Ok(shown)
    }

    /// Waits for new messages *through our onion path* ("private push"): asks one random member
    /// of our swarm for the inbox and synced config namespaces with `wait_ms`, which our nodes
    /// hold open until a message for us is stored there or `wait` (at most [`PUSH_WAIT`] is
    /// sensible) passes. The guard sees our address but not our account; the swarm member sees
    /// our account but not our address. Messages are processed as [`Self::receive`] does.
    ///
    /// [`Waited::waited`] is false when the node did not hold the request (a node that does not
    /// know `wait_ms`, such as Session's, or one at its cap): the caller should then pause for
    /// its poll interval before asking again instead of looping.
    ///
    /// When the waiting request fails (a node that refuses `wait_ms`, a path or a node gone),
    /// this polls as [`Self::receive`] does instead, and reports `waited: false`; only when that
    /// fails too is the error returned.
    pub async fn receive_waiting(&self, wait: Duration) -> Result<Waited, MessengerError> {
        match self.receive_round(Some(wait)).await {
            Ok((mut messages, more, waited)) => {
                if more {
                    messages.extend(self.receive().await?);
                }
                Ok(Waited { messages, waited })
            }
            Err(e @ MessengerError::Network(Error::ClockSkew { .. })) => Err(e),
            Err(e) => {
                tracing::debug!("waiting receive failed, polling instead: {e}");
                let messages = self.receive().await?;
                Ok(Waited {
                    messages,
                    waited: false,
                })
            }
        }
    }

    /// One poll of [`Self::receive`], or with `wait` one waiting request to one member; also
    /// says whether a node had more than it returned, and whether every answer was held (its
    /// retrieves granted a wait).
    #[allow(clippy::too_many_lines)] // One poll, step by step.
    async fn receive_round(
        &self,
        wait: Option<Duration>,
    ) -> Result<(Vec<ReceivedMessage>, bool, bool), MessengerError> {
        let account = self.account();
        self.db().delete_expired(self.client.clock().now_ms())?;
        self.note_correspondents(None);
        let mut members = self.client.swarm(&account).await?;
        members.shuffle(&mut rand::thread_rng());
        let sticky = if wait.is_some() {
            self.wait_member
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        if let Some(pos) = sticky.and_then(|k| members.iter().position(|m| m.ed25519 == k)) {
            members.swap(0, pos);
        }

        // Our inbox, then the synced config namespaces, in one batch per node.
        let namespaces: Vec<Namespace> = std::iter::once(Namespace::DEFAULT)
            .chain(SYNCED_CONFIGS.iter().map(|k| k.namespace()))
            .collect();
        // (node hex, per namespace: the messages, if that retrieve succeeded) per answering node.
        let mut answers: Vec<(String, Vec<Option<Vec<RetrievedMessage>>>)> = Vec::new();
        let mut last_error = None;
        let mut more = false;
        let mut waited = true;
        let nodes = if wait.is_some() { 1 } else { POLL_NODES };
        for member in &members {
            if answers.len() >= nodes {
                break;
            }
            let node = member.ed25519.to_hex();
            let retrieves = namespaces
                .iter()
                .map(|ns| self.retrieve_request(&node, *ns, wait))
                .collect::<Result<Vec<_>, _>>()?;
            let request = Request::Batch(retrieves);
            let reply = match wait {
                Some(wait) => {
                    let timeout = wait + PUSH_WAIT_MARGIN;
                    self.client
                        .request_node_with_timeout(member, &request, timeout)
                        .await
                }
                None => self.client.request_node(member, &request).await,
            };
            match reply {
                Ok((_, body)) => match retrieve_results(&body, namespaces.len()) {
                    Ok(pages) => {
                        more |= has_more(&pages);
                        waited &= was_held(&pages);
                        let results: Vec<Option<Vec<RetrievedMessage>>> = pages
                            .into_iter()
                            .map(|page| page.map(|p| p.messages))
                            .collect();
                        let found = results.iter().flatten().any(|m| !m.is_empty());
                        if wait.is_some() && found {
                            *self
                                .wait_member
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner) = Some(member.ed25519);
                        }
                        answers.push((node, results));
                    }
                    Err(e) => {
                        tracing::debug!(%node, "retrieve failed: {e}");
                        last_error = Some(e);
                    }
                },
                Err(Error::SwarmMoved { snodes }) => {
                    if !snodes.is_empty() {
                        self.client.set_cached_swarm(account, snodes);
                    }
                    last_error = Some(Error::SwarmMoved { snodes: Vec::new() });
                }
                Err(e @ Error::ClockSkew { .. }) => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(%node, "retrieve failed: {e}");
                    last_error = Some(e);
                }
            }
        }
        if answers.is_empty() {
            return Err(last_error
                .unwrap_or(Error::SwarmUnreachable {
                    tried: 0,
                    last: "no swarm members".into(),
                })
                .into());
        }

        // Configs first, so contacts and names are in place for the messages.
        let to_push = self.adopt_configs(&account, &answers)?;

        let mut batch_seen = HashSet::new();
        let mut shown = Vec::new();
        let mut follow = FollowUp::default();
        for (_, results) in &answers {
            for item in results.first().into_iter().flatten().flatten() {
                if let Some(m) = self.process(&account, item, &mut batch_seen, &mut follow)? {
                    shown.push(m);
                }
            }
        }
        // A message unsent by its author in the same batch is not shown at all.
        shown.retain(|m| !follow.delete.contains(&m.hash));
        self.follow_up(follow).await;
        for kind in to_push {
            self.sync_config_logged(kind).await;
        }
        // Cursors move only once everything before them is persisted.
        {
            let db = self.db();
            for (node, results) in &answers {
                for (ns, messages) in namespaces.iter().zip(results) {
                    let newest = messages.as_ref().and_then(|m| m.last());
                    if let Some(newest) = newest {
                        let hash = newest.hash.to_string();
                        db.set_last_hash(node, &account.to_hex(), ns.0, &hash)?;
                    }
                }
            }
        }
        shown.sort_by(|a, b| (a.timestamp, &a.hash).cmp(&(b.timestamp, &b.hash)));
        Ok((shown, more, waited))
    }

    /// Takes in the retrieved versions of each synced config (the results after the inbox's,
    /// per answering node, in [`SYNCED_CONFIGS`] order). Returns the kinds for which a version
    /// should be pushed: a merge of concurrent versions, or a local change re-applied.
    fn adopt_configs(
        &self,
        account: &AccountId,
        answers: &[(String, Vec<Option<Vec<RetrievedMessage>>>)],
    ) -> Result<Vec<ConfigKind>, MessengerError> {
        let mut to_push = Vec::new();
        for (index, kind) in SYNCED_CONFIGS.iter().enumerate() {
            let mut items: Vec<(String, Vec<u8>)> = Vec::new();
            for (_, results) in answers {
                for item in results.get(index + 1).into_iter().flatten().flatten() {
                    if let Some(found) = config_item(account, kind.namespace(), item) {
                        if !items.iter().any(|(h, _)| *h == found.0) {
                            items.push(found);
                        }
                    }
                }
            }
            let now = self.client.clock().now_ms();
            let adoption =
                crate::config_sync::adopt(&self.db(), &self.identity, *kind, &items, now)?;
            if let Some(seqno) = adoption.adopted {
                tracing::debug!(?kind, seqno, "adopted a config from another device");
            }
            if adoption.needs_push {
                to_push.push(*kind);
            }
        }
        Ok(to_push)
    }

    /// Handles a pushed message (see [`crate::push`]) exactly as a polled one: checks that the
    /// hash names the data, opens it, and persists it. `Some` iff it is a new visible message;
    /// a later poll does not show it again. Notifications without data, for another account or
    /// namespace, are ignored (`None`).
    pub fn accept_pushed(
        &self,
        note: &crate::push::Notification,
    ) -> Result<Option<ReceivedMessage>, MessengerError> {
        let account = self.account();
        let Some(data) = note.data.as_ref() else {
            return Ok(None);
        };
        if note.account != account || note.namespace != Namespace::DEFAULT {
            return Ok(None);
        }
        let item = RetrievedMessage {
            data: data.clone(),
            expiration: note.expiry_ms,
            hash: note.hash,
            timestamp: note.timestamp_ms,
        };
        let mut follow = FollowUp::default();
        let shown = self.process(&account, &item, &mut HashSet::new(), &mut follow)?;
        if !follow.expire.is_empty() || !follow.delete.is_empty() {
            // Pushes arrive inside the runtime: do the network part in the background.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let requests = self.follow_up_requests(follow);
                let client = self.client.clone();
                handle.spawn(async move {
                    for request in requests {
                        if let Err(e) = client.request_swarm(&account, &request).await {
                            tracing::warn!("could not update our swarm copies: {e}");
                        }
                    }
                });
            }
        }
        Ok(shown)
    }

    /// The signature fields for a request we sign with our own key.
    fn auth(&self, message: &[u8]) -> Auth {
        Auth {
            signature: self.identity.sign(message),
            pubkey_ed25519: Some(self.identity.ed25519_public()),
            subaccount: None,
        }
    }

    /// A signed `delete` of `hashes` (invalid ones skipped) from our swarm.
    fn delete_request(&self, hashes: &[String]) -> Option<Request> {
        let messages = canonical_hashes(hashes);
        if messages.is_empty() {
            return None;
        }
        let auth = self.auth(
            &SignedRequest::Delete {
                messages: &messages,
            }
            .message(),
        );
        Some(Request::Delete(Delete {
            account: self.account(),
            auth,
            messages,
            required: false,
        }))
    }

    /// A signed `expire` (shorten only) of `hashes` in our swarm to `expiry`.
    fn expire_request(&self, hashes: &[String], expiry: u64) -> Option<Request> {
        let messages = canonical_hashes(hashes);
        if messages.is_empty() {
            return None;
        }
        let expiries = vec![expiry];
        let auth = self.auth(
            &SignedRequest::Expire {
                mode: ExpireMode::Shorten,
                expiries: &expiries,
                messages: &messages,
            }
            .message(),
        );
        Some(Request::Expire(Expire {
            account: self.account(),
            auth,
            messages,
            expiries,
            mode: ExpireMode::Shorten,
        }))
    }

    fn follow_up_requests(&self, follow: FollowUp) -> Vec<Request> {
        let mut requests = Vec::new();
        let mut by_expiry = std::collections::BTreeMap::<u64, Vec<String>>::new();
        for (hash, expiry) in follow.expire {
            by_expiry.entry(expiry).or_default().push(hash);
        }
        for (expiry, hashes) in by_expiry {
            requests.extend(self.expire_request(&hashes, expiry));
        }
        requests.extend(self.delete_request(&follow.delete));
        requests
    }

    /// Sends the expires and deletes processing asked for; failures are logged only.
    async fn follow_up(&self, follow: FollowUp) {
        for request in self.follow_up_requests(follow) {
            if let Err(e) = self.client.request_swarm(&self.account(), &request).await {
                tracing::warn!("could not update our swarm copies: {e}");
            }
        }
    }

    /// Sends a control message (no visible text) to `to`'s inbox; returns how many nodes stored it.
    async fn send_control(&self, to: &SessionId, content: Content) -> Result<u32, MessengerError> {
        let timestamp = content.sig_timestamp.unwrap_or(0);
        let store = self.store_request(to, &content, timestamp, MESSAGE_TTL_MS)?;
        self.db().mark_seen(&store.hash().to_string(), None)?;
        self.note_correspondents(None);
        let delay = self.client.send_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (_, body) = self
            .client
            .request_swarm(&to.account(), &Request::Store(store))
            .await?;
        Ok(count_stored(&body))
    }

    /// Accepts `contact`'s message request: they become a contact and are told so
    /// (`MessageRequestResponse { isApproved: true }`).
    pub async fn accept(&self, contact: &SessionId) -> Result<(), MessengerError> {
        let now = self.client.clock().now_ms();
        self.db()
            .set_conversation_state(contact, ConversationState::Accepted, now)?;
        let content = Content {
            message_request_response: Some(MessageRequestResponse {
                is_approved: Some(true),
                profile: self.profile()?,
                ..MessageRequestResponse::default()
            }),
            sig_timestamp: Some(now),
            ..Content::default()
        };
        self.send_control(contact, content).await?;
        self.sync_config_logged(ConfigKind::Contacts).await;
        Ok(())
    }

    /// Declines `contact`'s message request: its messages are dropped (a later message from
    /// them makes a new request). Nothing is sent.
    pub fn decline(&self, contact: &SessionId) -> Result<(), MessengerError> {
        let db = self.db();
        db.clear_conversation(contact)?;
        db.set_conversation_state(
            contact,
            ConversationState::Declined,
            self.client.clock().now_ms(),
        )?;
        Ok(())
    }

    /// Blocks `contact`: everything they send from now on is dropped unseen, on our other
    /// devices too (Contacts config).
    pub async fn block(&self, contact: &SessionId) -> Result<(), MessengerError> {
        {
            let db = self.db();
            db.clear_conversation(contact)?;
            db.set_conversation_state(
                contact,
                ConversationState::Blocked,
                self.client.clock().now_ms(),
            )?;
        }
        self.sync_config_logged(ConfigKind::Contacts).await;
        Ok(())
    }

    /// Sets the disappearing-messages timer of the conversation with `contact` for the messages
    /// sent from now on, and tells them and our other devices: a timer-update control message
    /// (`DataMessage.flags` = `EXPIRATION_TIMER_UPDATE`, with the setting in `Content`) goes to
    /// their inbox and, with `syncTarget`, to ours; both sides' clients adopt it. The local
    /// setting applies even if sending fails (the error says so). Returns how many members of
    /// their swarm stored the update.
    pub async fn set_disappearing(
        &self,
        contact: &SessionId,
        setting: Disappearing,
    ) -> Result<u32, MessengerError> {
        let now = self.client.clock().now_ms();
        self.db().set_disappearing(contact, setting, now)?;
        let (kind, secs) = match setting {
            Disappearing::Off => (None, 0),
            Disappearing::AfterSend(s) => (Some(ExpirationType::DeleteAfterSend), s),
            Disappearing::AfterRead(s) => (Some(ExpirationType::DeleteAfterRead), s),
        };
        let update = |sync_target: Option<String>| -> Result<Content, MessengerError> {
            Ok(Content {
                data_message: Some(DataMessage {
                    flags: Some(DataMessage::FLAG_EXPIRATION_TIMER_UPDATE),
                    profile: self.profile()?,
                    sync_target,
                    ..DataMessage::default()
                }),
                expiration_type: kind.map(|k| k as i32),
                expiration_timer: Some(secs),
                sig_timestamp: Some(now),
                ..Content::default()
            })
        };
        let stored = self.send_control(contact, update(None)?).await?;
        if let Err(e) = self
            .send_control(&self.session_id(), update(Some(contact.to_string()))?)
            .await
        {
            tracing::warn!("timer update not synced to our other devices: {e}");
        }
        self.sync_config_logged(ConfigKind::Contacts).await;
        Ok(stored)
    }

    /// Deletes one of our sent messages for everyone: an `UnsendRequest` goes to the
    /// recipient, our sync copy is deleted from our swarm, and the message from our database.
    /// `id` is the message hash or an unambiguous prefix of it.
    pub async fn unsend(&self, id: &str) -> Result<StoredMessage, MessengerError> {
        let message = {
            let db = self.db();
            let ids = db.find_messages(id)?;
            let [id] = ids.as_slice() else {
                return Err(MessengerError::Build(if ids.is_empty() {
                    "no such message".into()
                } else {
                    "ambiguous message id prefix".into()
                }));
            };
            db.message(id)?
                .ok_or_else(|| MessengerError::Build("no such message".into()))?
        };
        if message.direction != Direction::Outgoing || message.sender != self.session_id() {
            return Err(MessengerError::Build(
                "only messages you sent can be unsent".into(),
            ));
        }
        let now = self.client.clock().now_ms();
        let content = Content {
            unsend_request: Some(UnsendRequest {
                timestamp: Some(message.timestamp),
                author: Some(self.session_id().to_string()),
            }),
            sig_timestamp: Some(now),
            ..Content::default()
        };
        self.send_control(&message.conversation, content.clone())
            .await?;
        // And to our own swarm, so our other devices delete their copy too.
        if let Err(e) = self.send_control(&self.session_id(), content).await {
            tracing::warn!("unsend not synced to our other devices: {e}");
        }
        let sync_hash = self.db().sync_hash(&message.id)?;
        if let Some(request) = sync_hash.and_then(|h| self.delete_request(&[h])) {
            self.client.request_swarm(&self.account(), &request).await?;
        }
        self.db().delete_message(&message.id)?;
        Ok(message)
    }

    /// Deletes everything stored for us in our swarm (`delete_all`, every namespace). Local
    /// history is kept.
    pub async fn wipe(&self) -> Result<SwarmResults<Deleted>, MessengerError> {
        let timestamp = self.client.clock().now_ms();
        let auth = self.auth(
            &SignedRequest::DeleteAll {
                namespaces: NamespaceSelector::All,
                timestamp,
            }
            .message(),
        );
        let request = Request::DeleteAll(DeleteAll {
            account: self.account(),
            auth,
            namespace: NamespaceSelector::All,
            timestamp,
        });
        let (_, body) = self.client.request_swarm(&self.account(), &request).await?;
        Ok(decode_reply("reading a delete_all reply", &body)?)
    }

    /// The hashes one swarm member currently holds in our inbox (a signed retrieve from the
    /// start, no cursor; nothing is processed or persisted).
    pub async fn peek_node(&self, member: &NodeRecord) -> Result<Vec<String>, MessengerError> {
        let mut request = self.retrieve_request("", Namespace::DEFAULT, None)?;
        if let Request::Retrieve(r) = &mut request {
            r.last_hash = None;
        }
        let (_, body) = self
            .client
            .request_node(member, &Request::Batch(vec![request]))
            .await?;
        Ok(retrieve_results(&body, 1)?
            .into_iter()
            .flatten()
            .flat_map(|page| page.messages)
            .map(|m| m.hash.to_string())
            .collect())
    }

    /// Handles one retrieved item: dedup, verify, open, persist. `Some` iff it is new and shown.
    fn process(
        &self,
        account: &AccountId,
        item: &RetrievedMessage,
        batch_seen: &mut HashSet<String>,
        follow: &mut FollowUp,
    ) -> Result<Option<ReceivedMessage>, MessengerError> {
        let hash = item.hash.to_string();
        let hash = hash.as_str();
        if !batch_seen.insert(hash.to_owned()) || self.db().is_seen(hash)? {
            return Ok(None);
        }
        let (verdict, name) = self.open(account, hash, item);
        let mut db = self.db();
        match verdict {
            Verdict::Drop(why) => {
                tracing::warn!(message = %hash, "dropping message: {why}");
                db.mark_seen(hash, None)?;
                Ok(None)
            }
            Verdict::Approved(contact) => {
                if db.conversation_state(&contact)? != Some(ConversationState::Blocked) {
                    db.set_conversation_state(
                        &contact,
                        ConversationState::Accepted,
                        self.client.clock().now_ms(),
                    )?;
                    if let Some(name) = name {
                        db.set_contact_name(&contact, &name)?;
                    }
                }
                db.mark_seen(hash, None)?;
                Ok(None)
            }
            Verdict::Timer {
                conversation,
                setting,
                from_us,
            } => {
                db.mark_seen(hash, None)?;
                // From them: only for a conversation we have and have not blocked (a stranger
                // cannot create one this way). From our other device: always.
                let ours = from_us
                    || !matches!(
                        db.conversation_state(&conversation)?,
                        None | Some(ConversationState::Blocked)
                    );
                if ours {
                    db.set_disappearing(&conversation, setting, self.client.clock().now_ms())?;
                }
                Ok(None)
            }
            Verdict::Unsend { author, timestamp } => {
                db.mark_seen(hash, None)?;
                // Theirs are in our conversation with them; ours may be in any conversation.
                let candidates = if author == self.session_id() {
                    db.all_messages()?
                } else {
                    db.messages(&author)?
                };
                let unsent: Vec<String> = candidates
                    .into_iter()
                    .filter(|m| m.sender == author && m.timestamp == timestamp)
                    .map(|m| m.id)
                    .collect();
                for id in unsent {
                    db.delete_message(&id)?;
                    follow.delete.push(id);
                }
                // Our own swarm copy of the unsend request is of no further use.
                follow.delete.push(hash.to_owned());
                Ok(None)
            }
            Verdict::Show(m, disappearing) => {
                if m.direction == Direction::Incoming
                    && db.conversation_state(&m.conversation)? == Some(ConversationState::Blocked)
                {
                    db.mark_seen(hash, None)?;
                    follow.delete.push(hash.to_owned());
                    return Ok(None);
                }
                if !db.insert_message(&m)? {
                    return Ok(None);
                }
                if let (Some(name), Direction::Incoming) = (name, m.direction) {
                    db.set_contact_name(&m.conversation, &name)?;
                }
                match disappearing {
                    Disappearing::Off => {}
                    Disappearing::AfterSend(secs) => {
                        db.set_expires(&m.id, m.timestamp + u64::from(secs) * 1000)?;
                    }
                    Disappearing::AfterRead(secs) => {
                        // Shown now, so read now: the timer starts, here and in our swarm.
                        let at = self.client.clock().now_ms() + u64::from(secs) * 1000;
                        db.set_expires(&m.id, at)?;
                        follow.expire.push((m.id.clone(), at));
                    }
                }
                Ok(Some(ReceivedMessage {
                    hash: m.id,
                    conversation: m.conversation,
                    sender: m.sender,
                    direction: m.direction,
                    timestamp: m.timestamp,
                    body: m.body,
                }))
            }
        }
    }

    /// Decodes and opens one retrieved item (pure: no database access), with the display name
    /// its sender's profile carries (for messages from others).
    fn open(
        &self,
        account: &AccountId,
        hash: &str,
        item: &RetrievedMessage,
    ) -> (Verdict, Option<String>) {
        let mut name = None;
        let verdict = self.judge(account, hash, item, &mut name);
        (verdict, name)
    }

    /// [`Self::open`]'s work; `name` receives the sender's display name once decrypted.
    fn judge(
        &self,
        account: &AccountId,
        hash: &str,
        item: &RetrievedMessage,
        name: &mut Option<String>,
    ) -> Verdict {
        // The hash names the data: a node cannot pass off other bytes under a known hash.
        if MessageHash::compute(account, Namespace::DEFAULT, &item.data) != item.hash {
            return Verdict::Drop("hash does not match the data".into());
        }
        let incoming = match unwrap_incoming(&self.identity, &item.data) {
            Ok(m) => m,
            Err(e) => return Verdict::Drop(format!("cannot open: {e}")),
        };
        let me = self.session_id();
        if incoming.sender != me {
            *name = profile_name(&incoming.content);
        }
        if let Some(unsend) = &incoming.content.unsend_request {
            return match (unsend.timestamp, unsend.author.as_deref().map(str::parse)) {
                // Only the author may unsend (us included, from another device).
                (Some(timestamp), Some(Ok(author))) if author == incoming.sender => {
                    Verdict::Unsend { author, timestamp }
                }
                _ => Verdict::Drop("unsend request not from the author".into()),
            };
        }
        if let Some(response) = &incoming.content.message_request_response {
            return if response.is_approved == Some(true) && incoming.sender != me {
                Verdict::Approved(incoming.sender)
            } else {
                Verdict::Drop("message request response not approving".into())
            };
        }
        let disappearing = content_disappearing(&incoming.content);
        if let Some(update) = incoming
            .content
            .data_message
            .as_ref()
            .filter(|d| d.flags.unwrap_or(0) & DataMessage::FLAG_EXPIRATION_TIMER_UPDATE != 0)
        {
            let conversation = if incoming.sender == me {
                match update.sync_target.as_deref().map(str::parse::<SessionId>) {
                    Some(Ok(target)) => target,
                    _ => return Verdict::Drop("timer update without a valid syncTarget".into()),
                }
            } else {
                incoming.sender
            };
            return Verdict::Timer {
                conversation,
                setting: disappearing,
                from_us: incoming.sender == me,
            };
        }
        let Some(data_message) = incoming.content.data_message else {
            return Verdict::Drop("not a visible message".into());
        };
        let Some(body) = data_message.body else {
            return Verdict::Drop("no text body".into());
        };
        let (conversation, direction) = if incoming.sender == me {
            match data_message
                .sync_target
                .as_deref()
                .map(str::parse::<SessionId>)
            {
                Some(Ok(target)) => (target, Direction::Outgoing),
                Some(Err(_)) => return Verdict::Drop("invalid syncTarget".into()),
                // Note to self.
                None => (me, Direction::Outgoing),
            }
        } else {
            (incoming.sender, Direction::Incoming)
        };
        Verdict::Show(
            StoredMessage {
                id: hash.to_owned(),
                conversation,
                direction,
                sender: incoming.sender,
                timestamp: incoming.envelope_timestamp,
                body,
                state: MessageState::Received,
            },
            disappearing,
        )
    }
}

/// Whether a retrieve batch's answer was held by its node: every retrieve succeeded and says
/// it was granted a wait (`wait_ms` > 0). A node that does not know `wait_ms` leaves it out.
/// The valid, canonical hashes among `hashes` (ours always are), for a delete or expire.
fn canonical_hashes(hashes: &[String]) -> Vec<RequestedHash> {
    hashes
        .iter()
        .filter_map(|h| h.parse::<MessageHash>().ok())
        .map(RequestedHash::from)
        .collect()
}

fn was_held(pages: &[Option<RetrievePage>]) -> bool {
    !pages.is_empty()
        && pages.iter().all(|page| {
            page.as_ref()
                .and_then(|p| p.wait_ms)
                .is_some_and(|ms| ms > 0)
        })
}

/// Whether any retrieve in a batch reply says the node holds more than it returned.
fn has_more(pages: &[Option<RetrievePage>]) -> bool {
    pages.iter().flatten().any(|page| page.more)
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

/// How many swarm members a `store` reply says stored the message (its `swarm` dict).
fn count_stored(body: &Value) -> u32 {
    SwarmResults::<Stored>::deserialize(body).map_or(0, |reply| {
        let ok = reply.swarm.values().filter(|r| r.ok().is_some()).count();
        u32::try_from(ok).unwrap_or(u32::MAX)
    })
}

/// The page of each of the `count` retrieves in a batch reply. The first (the inbox) must
/// succeed; a later one that failed is `None` (its cursor stays). A wrong swarm or a skewed
/// clock anywhere fails the whole reply.
fn retrieve_results(body: &Value, count: usize) -> Result<Vec<Option<RetrievePage>>, Error> {
    let batch: BatchResults = decode_reply("reading a batch reply", body)?;
    if batch.results.len() < count.max(1) {
        return Err(Error::protocol("reading a batch reply", "missing results"));
    }
    let mut out = Vec::with_capacity(count);
    for (index, result) in batch.results.iter().take(count).enumerate() {
        let error = match result.code {
            200 => match result.decode() {
                Ok(page) => {
                    out.push(Some(page));
                    continue;
                }
                Err(e) => Error::protocol("reading a retrieve reply", e),
            },
            421 => {
                return Err(Error::SwarmMoved {
                    snodes: crate::swarm::parse_swarm(&result.body),
                })
            }
            status @ (406 | 425) => return Err(Error::ClockSkew { status }),
            status => Error::Rejected {
                status,
                body: result.body.to_string(),
            },
        };
        if index == 0 {
            return Err(error);
        }
        tracing::debug!("retrieve {index} of a batch failed: {error}");
        out.push(None);
    }
    Ok(out)
}

/// A retrieved config item as (hash, data), if its hash names its data in `namespace`.
fn config_item(
    account: &AccountId,
    namespace: Namespace,
    item: &RetrievedMessage,
) -> Option<(String, Vec<u8>)> {
    if MessageHash::compute(account, namespace, &item.data) != item.hash {
        tracing::warn!(message = %item.hash, "dropping config message: hash does not match the data");
        return None;
    }
    Some((item.hash.to_string(), item.data.clone()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// A retrieved item whose hash names its data.
    fn item(data: &[u8]) -> Value {
        let account = AccountId::new(shallot_proto::AccountKind::Session, [1; 32]);
        let hash = MessageHash::compute(&account, Namespace::DEFAULT, data);
        json!({"data": shallot_proto::b64::encode(data), "expiration": 2, "hash": hash.to_string(),
            "timestamp": 1})
    }

    fn held(body: &Value, count: usize) -> bool {
        was_held(&retrieve_results(body, count).unwrap())
    }

    #[test]
    fn a_reply_counts_as_held_only_when_every_retrieve_was_granted_a_wait() {
        let held_both = json!({"results": [
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
        ]});
        assert!(held(&held_both, 2));
        // A node that does not know `wait_ms` (Session's) leaves it out; one at its cap says 0.
        let session = json!({"results": [{"code": 200, "body": {"messages": []}}]});
        assert!(!held(&session, 1));
        let capped = json!({"results": [{"code": 200, "body": {"messages": [], "wait_ms": 0}}]});
        assert!(!held(&capped, 1));
        let partly = json!({"results": [
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
            {"code": 200, "body": {"messages": []}},
        ]});
        assert!(!held(&partly, 2));
        let failed = json!({"results": [
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
            {"code": 401, "body": "no"},
        ]});
        assert!(!held(&failed, 2));
        assert!(!was_held(&[]));
        assert!(retrieve_results(&json!("text"), 1).is_err());
    }

    #[test]
    fn counts_members_that_stored() {
        let hash = MessageHash::from_bytes([3; 32]).to_string();
        let signature = shallot_proto::b64::encode([7u8; 64]);
        let body = json!({"swarm": {
            "aa": {"expiry": 2, "hash": hash, "signature": signature, "t": 1},
            "bb": {"failed": true, "timeout": true},
            "cc": {"already": true, "expiry": 2, "hash": hash, "signature": signature},
            "dd": {"failed": true, "bad_signature": true},
        }});
        assert_eq!(count_stored(&body), 2);
        assert_eq!(count_stored(&json!({"hash": hash})), 0);
    }

    #[test]
    fn batch_results_are_classified() {
        let ok = json!({"results": [{"code": 200, "body": {"messages": [item(b"x")]}}]});
        let pages = retrieve_results(&ok, 1).unwrap();
        assert_eq!(pages[0].as_ref().unwrap().messages[0].data, b"x");
        let denied = json!({"results": [{"code": 401, "body": "bad signature"}]});
        assert!(matches!(
            retrieve_results(&denied, 1),
            Err(Error::Rejected { status: 401, .. })
        ));
        assert!(retrieve_results(&json!({}), 1).is_err());
        // A later namespace failing leaves the inbox usable; a missing result does not.
        let mixed = json!({"results": [
            {"code": 200, "body": {"messages": []}},
            {"code": 401, "body": "no"},
        ]});
        let results = retrieve_results(&mixed, 2).unwrap();
        assert_eq!(results[0].as_ref().map(|p| p.messages.len()), Some(0));
        assert_eq!(results[1], None);
        assert!(retrieve_results(&mixed, 3).is_err());
        // An answer that is not a page fails that retrieve like an error status.
        let garbled = json!({"results": [
            {"code": 200, "body": {"messages": []}},
            {"code": 200, "body": {"messages": [{"hash": "x"}]}},
        ]});
        assert_eq!(retrieve_results(&garbled, 2).unwrap()[1], None);
        assert!(retrieve_results(&garbled, 1).is_ok());
        let moved = json!({"results": [
            {"code": 200, "body": {"messages": []}},
            {"code": 421, "body": {"snodes": []}},
        ]});
        assert!(matches!(
            retrieve_results(&moved, 2),
            Err(Error::SwarmMoved { .. })
        ));
        let skewed = json!({"results": [{"code": 425, "body": "Timestamp error"}]});
        assert!(matches!(
            retrieve_results(&skewed, 1),
            Err(Error::ClockSkew { status: 425 })
        ));
        assert!(!has_more(&retrieve_results(&mixed, 2).unwrap()));
        let paged = json!({"results": [{"code": 200, "body": {"messages": [], "more": true}}]});
        assert!(has_more(&retrieve_results(&paged, 1).unwrap()));
    }
}
