//! One-to-one messaging on top of the networking core (spec §4.5, §5): sending a text DM to a
//! recipient's swarm plus a sync copy to our own, and polling our inbox (namespace 0) from two
//! swarm members with per-node `last_hash` cursors, deduplicated and persisted in the [`Db`].
//!
//! Nothing here logs message bodies or keys; dropped messages are logged by hash only.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rand::seq::SliceRandom;
use serde_json::Value;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::{Auth, Request, Retrieve, RetrieveAuth, Store};
use shallot_proto::session::protos::Content;
use shallot_proto::session::{unwrap_incoming, wrap_for_recipient};
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Identity, Namespace, SessionId};

use crate::db::{Db, DbError, Direction, MessageState, StoredMessage};
use crate::error::Error;
use crate::onion_client::OnionClient;
use crate::pool::SnapshotNode;

/// TTL of a DM on the network: 14 days (desktop's content TTL).
pub const MESSAGE_TTL_MS: u64 = 14 * 24 * 60 * 60 * 1000;

/// How many swarm members each poll asks (desktop: 2).
pub const POLL_NODES: usize = 2;

/// `max_size` of the namespace-0 retrieve (half the network maximum, as desktop).
const RETRIEVE_MAX_SIZE: i64 = -2;

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
pub struct Messenger {
    identity: Identity,
    client: OnionClient,
    db: Mutex<Db>,
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
    Show(StoredMessage),
    Drop(String),
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
        Self {
            identity,
            client,
            db: Mutex::new(db),
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

    /// Saves the node pool and our swarm to the database, so the next start needs no seed.
    pub async fn save_network_state(&self) -> Result<(), MessengerError> {
        let swarm = self.client.swarm(&self.account()).await.unwrap_or_default();
        let db = self.db();
        db.save_pool(&self.client.pool_snapshot())?;
        if !swarm.is_empty() {
            let nodes: Vec<SnapshotNode> = swarm.iter().map(SnapshotNode::from).collect();
            db.save_swarm(&self.account().to_hex(), &nodes)?;
        }
        Ok(())
    }

    /// Builds the `store` of one wrapped copy of `content` to `to`'s inbox.
    fn store_request(
        &self,
        to: &SessionId,
        content: &Content,
        timestamp: u64,
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
            expiry: ts.saturating_add(i64::try_from(MESSAGE_TTL_MS).unwrap_or(i64::MAX)),
            data,
            auth: None,
        })
    }

    /// Sends `text` to `recipient`: stored in their swarm's inbox (ns 0, 14-day TTL), and a sync
    /// copy (`syncTarget` = recipient) in ours for our other devices. The message is recorded
    /// before sending and its state updated with how many swarm members stored it.
    pub async fn send(
        &self,
        recipient: &SessionId,
        text: &str,
    ) -> Result<SentMessage, MessengerError> {
        let timestamp = self.client.clock().now_ms();
        let content = Content::text(text, timestamp);
        let store = self.store_request(recipient, &content, timestamp)?;
        let hash = store.hash().to_string();

        let mut sync_content = content;
        if let Some(data) = sync_content.data_message.as_mut() {
            data.sync_target = Some(recipient.to_string());
        }
        let sync_store = self.store_request(&self.session_id(), &sync_content, timestamp)?;
        let sync_hash = sync_store.hash().to_string();

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
            // Our own sync copy comes back on the next poll: it is this message, not a new one.
            db.mark_seen(&sync_hash, Some(&hash))?;
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
        })
    }

    /// The authenticated retrieve of our inbox for `node`, from its `last_hash` cursor.
    fn retrieve_request(&self, node_hex: &str) -> Result<Request, MessengerError> {
        let account = self.account();
        let last = self
            .db()
            .last_hash(node_hex, &account.to_hex(), Namespace::DEFAULT.0)?;
        let timestamp = self.client.clock().now_ms();
        let signature = self.identity.sign(
            &SignedRequest::Retrieve {
                namespace: Namespace::DEFAULT,
                timestamp,
            }
            .message(),
        );
        Ok(Request::Retrieve(Retrieve {
            account,
            namespace: Namespace::DEFAULT,
            auth: Some(RetrieveAuth {
                timestamp,
                auth: Auth {
                    signature,
                    pubkey_ed25519: Some(self.identity.ed25519_public()),
                    subaccount: None,
                },
            }),
            last_hash: last.and_then(|h| h.parse().ok()),
            max_count: None,
            max_size: Some(RETRIEVE_MAX_SIZE),
        }))
    }

    /// Polls our inbox from [`POLL_NODES`] random members of our swarm (one `batch` each),
    /// merges and deduplicates by hash, opens each message and persists it. Returns only the
    /// messages never seen before (sync copies from our other devices included, as outgoing);
    /// malformed, forged or misaddressed data is dropped with a log line.
    pub async fn receive(&self) -> Result<Vec<ReceivedMessage>, MessengerError> {
        let account = self.account();
        let mut members = self.client.swarm(&account).await?;
        members.shuffle(&mut rand::thread_rng());

        // (node hex, newest hash, messages) per answering node.
        let mut answers: Vec<(String, Option<String>, Vec<Value>)> = Vec::new();
        let mut last_error = None;
        for member in &members {
            if answers.len() >= POLL_NODES {
                break;
            }
            let node = member.ed25519.to_hex();
            let batch = Request::Batch(vec![self.retrieve_request(&node)?]);
            match self.client.request_node(member, &batch).await {
                Ok((_, body)) => match retrieve_result(&body) {
                    Ok(messages) => {
                        let newest = messages
                            .last()
                            .and_then(|m| m.get("hash"))
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        answers.push((node, newest, messages));
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

        let mut batch_seen = HashSet::new();
        let mut shown = Vec::new();
        for (_, _, messages) in &answers {
            for item in messages {
                if let Some(m) = self.process(&account, item, &mut batch_seen)? {
                    shown.push(m);
                }
            }
        }
        // Cursors move only once everything before them is persisted.
        {
            let db = self.db();
            for (node, newest, _) in &answers {
                if let Some(hash) = newest {
                    db.set_last_hash(node, &account.to_hex(), Namespace::DEFAULT.0, hash)?;
                }
            }
        }
        shown.sort_by(|a, b| (a.timestamp, &a.hash).cmp(&(b.timestamp, &b.hash)));
        Ok(shown)
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
        let item = serde_json::json!({
            "hash": note.hash,
            "data": shallot_proto::b64::encode(data),
        });
        self.process(&account, &item, &mut HashSet::new())
    }

    /// Handles one retrieved item: dedup, verify, open, persist. `Some` iff it is new and shown.
    fn process(
        &self,
        account: &AccountId,
        item: &Value,
        batch_seen: &mut HashSet<String>,
    ) -> Result<Option<ReceivedMessage>, MessengerError> {
        let Some(hash) = item.get("hash").and_then(Value::as_str) else {
            tracing::warn!("dropping a retrieved item without a hash");
            return Ok(None);
        };
        if !batch_seen.insert(hash.to_owned()) || self.db().is_seen(hash)? {
            return Ok(None);
        }
        let verdict = self.open(account, hash, item);
        let mut db = self.db();
        match verdict {
            Verdict::Drop(why) => {
                tracing::warn!(message = %hash, "dropping message: {why}");
                db.mark_seen(hash, None)?;
                Ok(None)
            }
            Verdict::Show(m) => {
                if !db.insert_message(&m)? {
                    return Ok(None);
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

    /// Decodes and opens one retrieved item (pure: no database access).
    fn open(&self, account: &AccountId, hash: &str, item: &Value) -> Verdict {
        let Some(data) = item
            .get("data")
            .and_then(Value::as_str)
            .and_then(|d| shallot_proto::b64::decode(d).ok())
        else {
            return Verdict::Drop("no base64 data".into());
        };
        // The hash names the data: a node cannot pass off other bytes under a known hash.
        if MessageHash::compute(account, Namespace::DEFAULT, &data).to_string() != hash {
            return Verdict::Drop("hash does not match the data".into());
        }
        let incoming = match unwrap_incoming(&self.identity, &data) {
            Ok(m) => m,
            Err(e) => return Verdict::Drop(format!("cannot open: {e}")),
        };
        let Some(data_message) = incoming.content.data_message else {
            return Verdict::Drop("not a visible message".into());
        };
        let Some(body) = data_message.body else {
            return Verdict::Drop("no text body".into());
        };
        let me = self.session_id();
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
        Verdict::Show(StoredMessage {
            id: hash.to_owned(),
            conversation,
            direction,
            sender: incoming.sender,
            timestamp: incoming.envelope_timestamp,
            body,
            state: MessageState::Received,
        })
    }
}

/// How many swarm members a `store` reply says stored the message (its `swarm` dict).
fn count_stored(body: &Value) -> u32 {
    body.get("swarm")
        .and_then(Value::as_object)
        .map_or(0, |swarm| {
            let ok = swarm
                .values()
                .filter(|v| v.get("failed").is_none() && v.get("hash").is_some())
                .count();
            u32::try_from(ok).unwrap_or(u32::MAX)
        })
}

/// The messages of the single retrieve in a batch reply.
fn retrieve_result(body: &Value) -> Result<Vec<Value>, Error> {
    let result = body
        .get("results")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .ok_or_else(|| Error::protocol("reading a batch reply", "no results"))?;
    let code = result.get("code").and_then(Value::as_u64).unwrap_or(0);
    let inner = result.get("body").cloned().unwrap_or(Value::Null);
    match code {
        200 => {}
        421 => {
            return Err(Error::SwarmMoved {
                snodes: crate::swarm::parse_swarm(&inner),
            })
        }
        406 | 425 => {
            return Err(Error::ClockSkew {
                status: u16::try_from(code).unwrap_or(406),
            })
        }
        _ => {
            return Err(Error::Rejected {
                status: u16::try_from(code).unwrap_or(0),
                body: inner.to_string(),
            })
        }
    }
    Ok(inner
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_members_that_stored() {
        let body = json!({"swarm": {
            "aa": {"hash": "h", "t": 1},
            "bb": {"failed": true, "timeout": true},
            "cc": {"hash": "h", "already": true},
        }});
        assert_eq!(count_stored(&body), 2);
        assert_eq!(count_stored(&json!({"hash": "h"})), 0);
    }

    #[test]
    fn batch_results_are_classified() {
        let ok = json!({"results": [{"code": 200, "body": {"messages": [{"hash": "x"}]}}]});
        assert_eq!(retrieve_result(&ok).unwrap().len(), 1);
        let denied = json!({"results": [{"code": 401, "body": "bad signature"}]});
        assert!(matches!(
            retrieve_result(&denied),
            Err(Error::Rejected { status: 401, .. })
        ));
        assert!(retrieve_result(&json!({})).is_err());
    }
}
